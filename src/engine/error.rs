//! Why one host's work stopped, typed until the host's [`Outcome`] is made.
//!
//! The engine's stages return these rather than text so that the one place
//! that builds the outcome can tell a lost connection (the host reads as
//! unreachable) from a failed step, and input that does not render (exit 2,
//! nothing sent) from a failure on the host. Texts are made by `Display`,
//! only when an event or report needs them.
//!
//! [`Outcome`]: crate::events::Outcome

use super::gather::GatherError;
use super::lock::LockError;
use crate::render::RenderError;
use crate::resources::script::{FrameError, ScriptError};
use crate::resources::{ChangedWhenError, ResourceError};
use crate::transport::{ExitStatus, TransportError};

/// Why converging or verifying one host failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// An exec could not run or its connection broke midway: parc cannot know
    /// what the host did, and the host reads as unreachable.
    #[error("connection lost while {doing}: {source}")]
    ConnectionLost {
        doing: &'static str,
        #[source]
        source: TransportError,
    },
    /// A script ran but printed what parc cannot trust; nothing of it is used.
    #[error(
        "the host's output was refused ({source}): a value read on the host may have tried to pass for parc's own output; parc stopped while {doing}"
    )]
    Refused {
        doing: &'static str,
        #[source]
        source: FrameError,
    },
    #[error(
        "the host sent more than the {max} bytes parc's script can print (a file it read grew while it was read?): nothing of it is used; parc stopped while {doing}"
    )]
    TooLong { doing: &'static str, max: usize },
    /// A script that only reads the host ran past `--read-timeout`.
    #[error(
        "{doing} did not finish within {secs} s (--read-timeout): parc stopped waiting (a hung mount or directory service, a file swapped for a FIFO, or a guard or test command that never ends?)"
    )]
    TimedOut { doing: &'static str, secs: u64 },
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("gathering facts: {0}")]
    Facts(#[from] GatherError),
    /// The input does not render for this host: nothing was sent to it.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The profile's tests do not render, after the changes were applied.
    #[error(transparent)]
    TestsRender(RenderError),
    #[error("the probe script failed ({status}): {stderr}")]
    ProbeFailed { status: ExitStatus, stderr: String },
    /// A resource cannot be planned against what the probe found.
    #[error(transparent)]
    Plan(#[from] ResourceError),
    /// A step exited non-zero; `detail` is its (redacted) output or status.
    #[error("{resource} failed: {detail}")]
    StepFailed { resource: String, detail: String },
    /// The apply script ended before it reached this resource's step.
    #[error("{resource}: the apply script stopped before this step ({status}): {stderr}")]
    StepStopped {
        resource: String,
        status: ExitStatus,
        stderr: String,
    },
    #[error("{resource}: {source}")]
    ChangedWhen {
        resource: String,
        #[source]
        source: ChangedWhenError,
    },
    /// Tests that failed after the changes: each test's name and failed checks.
    #[error("verification failed: {}", .0.join(" | "))]
    Verification(Vec<String>),
    /// The play's image stage failed (its report says why).
    #[error("the image stage failed, so the profiles were not applied: {0}")]
    ImageStage(String),
    /// A notified handler cannot run on this host (a `service` or `reboot`
    /// without systemd): the change that needed it is not kept.
    #[error("handler `{handler}` cannot run on this host: {why}")]
    HandlerCannotRun { handler: String, why: String },
    /// A `reboot` did not bring the host back into the run.
    #[error(transparent)]
    Reboot(#[from] super::apply::RebootError),
    /// The dead-man switch was not confirmed over a new connection.
    #[error("the change was not confirmed: {0}")]
    Unconfirmed(#[from] ConfirmError),
}

impl HostError {
    /// A script's failure while `doing` ("probing", "applying", ...).
    pub fn script(e: ScriptError, doing: &'static str) -> HostError {
        match e {
            ScriptError::Transport(source) => HostError::ConnectionLost { doing, source },
            ScriptError::Frame(source) => HostError::Refused { doing, source },
            ScriptError::TooLong { max } => HostError::TooLong { doing, max },
            ScriptError::TimedOut { secs } => HostError::TimedOut { doing, secs },
        }
    }

    /// The connection to the host broke (or could not carry an exec): the
    /// host is unreachable rather than failed. A script whose channel closed
    /// without an exit status ([`ExitStatus::Unknown`]: the server or the
    /// connection died under it, as when the host's sshd session is killed
    /// mid-apply) counts: nothing says the host failed, only that parc lost
    /// sight of it.
    pub fn is_connection_lost(&self) -> bool {
        match self {
            HostError::ConnectionLost { .. } | HostError::Lock(LockError::Transport(_)) => true,
            HostError::StepStopped {
                status: ExitStatus::Unknown,
                ..
            }
            | HostError::ProbeFailed {
                status: ExitStatus::Unknown,
                ..
            } => true,
            HostError::Facts(e) => e.is_connection_lost(),
            _ => false,
        }
    }

    /// A script that only reads the host ran past `--read-timeout`.
    pub fn is_timed_out(&self) -> bool {
        matches!(
            self,
            HostError::TimedOut { .. } | HostError::Facts(GatherError::TimedOut { .. })
        )
    }
}

/// Why confirming a change over a new connection failed.
#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    #[error("{host} left the inventory")]
    LeftInventory { host: String },
    #[error("cannot open a new connection: {0}")]
    Connect(#[source] TransportError),
    #[error("the new connection broke: {0}")]
    Broke(#[source] TransportError),
    #[error(
        "the journal said {said} when confirming (the watchdog may have fired: the window is too short?)"
    )]
    Refused { said: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lost() -> TransportError {
        TransportError::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset))
    }

    /// A broken connection while applying is told from a failed step: the
    /// first reads as unreachable, the second as failed, with the texts the
    /// reports always showed.
    #[test]
    fn a_lost_connection_is_not_a_failed_step() {
        let applying = HostError::script(ScriptError::Transport(lost()), "applying");
        assert!(applying.is_connection_lost());
        assert!(
            applying
                .to_string()
                .starts_with("connection lost while applying: ")
        );
        let step = HostError::StepFailed {
            resource: "file /etc/motd".into(),
            detail: "exit 1".into(),
        };
        assert!(!step.is_connection_lost());
        assert_eq!(step.to_string(), "file /etc/motd failed: exit 1");
        let stopped = |status| HostError::StepStopped {
            resource: "command sleep".into(),
            status,
            stderr: String::new(),
        };
        assert!(stopped(ExitStatus::Unknown).is_connection_lost());
        assert!(!stopped(ExitStatus::Code(1)).is_connection_lost());
        assert!(!stopped(ExitStatus::Signal("KILL".into())).is_connection_lost());
        assert!(HostError::Facts(GatherError::Unfinished).is_connection_lost());
        assert!(HostError::Lock(LockError::Transport(lost())).is_connection_lost());
        let refused = HostError::script(ScriptError::Frame(FrameError::BadFrame), "probing");
        assert!(!refused.is_connection_lost());
        assert!(
            refused
                .to_string()
                .ends_with("; parc stopped while probing")
        );
    }
}
