//! The only contract between the engine and whatever shows its progress.
//!
//! The engine never prints: it sends [`Event`]s. The terminal (indicatif or plain
//! lines), the `--json` stream and the run reports are all consumers of this enum,
//! so adding a reporter never touches orchestration code.
//!
//! Texts in events are already redacted: each host's task redacts its
//! [`Outcome`] as a whole with the host's redactor before returning it
//! ([`Outcome::redact`]). The consumers could not do it (they never see a
//! host's variables), and a consumer added later has nothing to forget.

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::engine::output::{HostBytes, OutputStream};
use crate::facts::Facts;
use crate::render::Redactor;
use crate::transport::ExitStatus;
use crate::verify::TestResult;

/// Where a host ended up. Shown everywhere, counted in summaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum HostState {
    /// Everything already as declared (or the command succeeded).
    Ok,
    /// parc changed something on the host.
    Changed,
    Failed,
    Unreachable,
    /// Refused before anything was sent: its host key is changed or revoked, so
    /// someone may be impersonating it. An alarm, not a network failure.
    Untrusted,
    /// Not attempted: its play was aborted past the failure budget.
    Skipped,
    /// Failed, rolled back, and converged to the profile's fallback, which
    /// passed its own verification: usable and reachable, not as designed.
    Degraded,
    /// Failed and restored to its state before the run.
    RolledBack,
}

impl HostState {
    pub fn as_str(self) -> &'static str {
        match self {
            HostState::Ok => "ok",
            HostState::Changed => "changed",
            HostState::Failed => "failed",
            HostState::Unreachable => "unreachable",
            HostState::Untrusted => "untrusted",
            HostState::Skipped => "skipped",
            HostState::Degraded => "degraded",
            HostState::RolledBack => "rolled_back",
        }
    }

    /// Counts against a play's failure budget.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            HostState::Failed
                | HostState::Unreachable
                | HostState::Untrusted
                | HostState::Degraded
                | HostState::RolledBack
        )
    }
}

/// What a host produced, by kind of run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Outcome {
    /// `parc run`: the command ran; success is decided by its exit status.
    Command {
        status: ExitStatus,
        /// The start of the output, at most `--max-output` bytes of it
        /// (already shown as it came, by [`Event::HostOutput`]).
        stdout: HostBytes,
        stderr: HostBytes,
        /// The stream's full size, when it was longer than what was kept.
        #[serde(skip_serializing_if = "Option::is_none")]
        stdout_cut_from: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        stderr_cut_from: Option<u64>,
    },
    /// `parc facts`.
    Facts { facts: Box<Facts> },
    /// The host could not be reached or authenticated: nothing ran on it.
    Unreachable { error: String },
    /// The host's key is changed or revoked: parc refused it, nothing was sent.
    Untrusted { error: String },
    /// Something ran but parc could not finish its work on the host.
    Failed { error: String },
    /// The input does not render for this host (a template, a field, a
    /// `when`): the fault is in the profile, not on the host, and nothing was
    /// sent to it. The run exits 2, bad input, rather than 3.
    Invalid { error: String },
    /// `parc apply` / `parc plan`: what happened to each resource.
    Applied {
        /// Check mode (`parc plan`): nothing was changed.
        check: bool,
        resources: Vec<ResourceReport>,
        /// Set when the host failed: the first error, already redacted.
        error: Option<String>,
        /// The profile's verification tests, run after the changes.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        verification: Vec<TestResult>,
        /// What parc did about a failure (`on_failure`).
        #[serde(skip_serializing_if = "Option::is_none")]
        recovery: Option<Recovery>,
    },
    /// `parc verify`: every test of the host, each with its checks.
    Verified { results: Vec<TestResult> },
    /// Not attempted.
    Skipped { reason: String },
    /// `parc rollback`: journals restored, and what did not match them after.
    Restored {
        journals: Vec<String>,
        problems: Vec<String>,
    },
    /// `parc image deploy`: what one target received and how it was checked.
    Image(ImageReport),
    /// `parc image capture`: the image written from the host's disk.
    Captured(CaptureReport),
}

/// What parc did after a host failed its apply or its verification.
#[derive(Debug, Clone, Serialize)]
pub struct Recovery {
    /// Why: the apply error, failed tests, or a missing confirmation.
    pub reason: String,
    pub action: RecoveryAction,
    /// Entries that did not match the journal after the restore.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub restore_problems: Vec<String>,
    /// The fallback profile's resources, when one was applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Vec<ResourceReport>>,
    /// The fallback profile's own verification.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fallback_verification: Vec<TestResult>,
    /// Why the recovery itself failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An image deploy's bytes so far: what compression saves on the wire.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Wire {
    /// raw, zstd or qcow2.
    pub source_format: String,
    /// Disk bytes of the chunks sent.
    pub read_bytes: u64,
    /// Bytes that crossed the connection for them.
    pub sent_bytes: u64,
}

/// One target of an image deploy. Byte counts are image bytes (the wire also
/// carries SSH framing and a few bytes of commands per run).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImageReport {
    pub target: String,
    pub image_bytes: u64,
    /// How the image file stores the disk: raw, zstd (seekable) or qcow2.
    pub source_format: String,
    /// Disk bytes of the chunks sent, as read from the image (decompressed).
    pub bytes_read: u64,
    /// Bytes that crossed the connection for those chunks: compressed where
    /// they travel compressed, else `bytes_read`.
    pub bytes_sent: u64,
    /// `bytes_sent / bytes_read` (1 when nothing was sent).
    pub ratio: f64,
    /// Where a compressed image's chunks were decompressed: "target" (by
    /// parc's helper) or "controller" (the target has sh alone, so it got raw
    /// bytes). Absent for raw images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decompressed_on: Option<String>,
    /// All-zero chunks zeroed (or hole-punched) by the target itself: not sent.
    pub bytes_zeroed: u64,
    /// Chunks the target already held: not sent.
    pub bytes_matched: u64,
    pub chunks_sent: usize,
    pub chunks_zeroed: usize,
    /// Chunk writes repeated because the read-back differed.
    pub rewrites: usize,
    /// How written chunks were read back: direct, nocache, drop_caches or cache.
    pub readback: String,
    /// The target ran parc's image helper (else its sh and core utilities).
    pub helper: bool,
    /// Every chunk of the target matched the manifest at the end.
    pub verified: bool,
    /// When (ms after the host's start) the target had hashed every chunk.
    pub probe_ms: u64,
    /// When the first chunk byte was sent, and how long sending lasted.
    pub transfer_start_ms: u64,
    pub transfer_ms: u64,
    /// Until the target confirmed the last read-back and flushed its storage.
    pub total_ms: u64,
    /// Set when the host failed (refusal, write error, lost connection).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl ImageReport {
    /// Failed unless the whole target was verified; changed if anything was
    /// written.
    pub fn state(&self) -> HostState {
        if self.error.is_some() || !self.verified {
            HostState::Failed
        } else if self.chunks_sent + self.chunks_zeroed > 0 {
            HostState::Changed
        } else {
            HostState::Ok
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecoveryAction {
    /// `on_failure: keep`: left as applied.
    Kept,
    RolledBack,
    /// Rolled back, then the fallback profile applied and verified.
    Degraded,
    /// The rollback or fallback did not complete: the host needs a technician.
    Failed,
}

impl Recovery {
    pub fn action_label(&self) -> &'static str {
        match self.action {
            RecoveryAction::Kept => "failed, host left as it is",
            RecoveryAction::RolledBack => "rolled back",
            RecoveryAction::Degraded => "degraded (rolled back, fallback applied)",
            RecoveryAction::Failed => "RECOVERY FAILED",
        }
    }
}

/// The image a capture wrote.
#[derive(Debug, Clone, Serialize)]
pub struct CaptureReport {
    pub source: String,
    pub image: String,
    pub manifest: String,
    pub bytes: u64,
    pub zero_chunks: usize,
    pub chunks: usize,
    pub sha256: String,
}

/// One resource on one host, as reporters and reports show it. Every text in
/// here went through the host's redactor (see [`Outcome::redact`]).
#[derive(Debug, Clone, Serialize)]
pub struct ResourceReport {
    pub resource: String,
    pub status: ResourceStatus,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// A `reboot` that ran: milliseconds from the reboot command until the
    /// host answered from its new boot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebooted_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResourceStatus {
    /// Already as declared.
    NoChange,
    /// Check mode: would change.
    WillChange,
    /// Check mode: runs on apply, effect unknown beforehand. Applying: its
    /// step's result never came back (the exec was lost, or given up on).
    Unknown,
    Changed,
    /// `when:` was false.
    Skipped,
    Failed,
    /// An earlier resource failed, so this one was not attempted.
    NotRun,
}

impl Outcome {
    pub fn state(&self) -> HostState {
        match self {
            Outcome::Command { status, .. } if status.success() => HostState::Ok,
            Outcome::Command { .. } | Outcome::Failed { .. } | Outcome::Invalid { .. } => {
                HostState::Failed
            }
            Outcome::Facts { .. } => HostState::Ok,
            Outcome::Unreachable { .. } => HostState::Unreachable,
            Outcome::Untrusted { .. } => HostState::Untrusted,
            Outcome::Skipped { .. } => HostState::Skipped,
            Outcome::Restored { problems, .. } if problems.is_empty() => HostState::RolledBack,
            Outcome::Restored { .. } => HostState::Failed,
            Outcome::Applied {
                recovery: Some(r), ..
            } => match r.action {
                RecoveryAction::Kept | RecoveryAction::Failed => HostState::Failed,
                RecoveryAction::RolledBack => HostState::RolledBack,
                RecoveryAction::Degraded => HostState::Degraded,
            },
            Outcome::Applied { error: Some(_), .. } => HostState::Failed,
            Outcome::Applied {
                check: false,
                resources,
                ..
            } if resources
                .iter()
                .any(|r| r.status == ResourceStatus::Changed) =>
            {
                HostState::Changed
            }
            Outcome::Applied { .. } => HostState::Ok,
            Outcome::Verified { results } if results.iter().all(|r| r.passed) => HostState::Ok,
            Outcome::Verified { .. } => HostState::Failed,
            Outcome::Image(r) => r.state(),
            Outcome::Captured(_) => HostState::Ok,
        }
    }
}

impl Outcome {
    /// An apply (`check`: a plan) that went through: what it did to each
    /// resource, and the profile's tests.
    pub fn applied(
        check: bool,
        resources: Vec<ResourceReport>,
        verification: Vec<TestResult>,
    ) -> Outcome {
        Outcome::Applied {
            check,
            resources,
            error: None,
            verification,
            recovery: None,
        }
    }

    /// An apply that failed with `error`; `recovery` is what parc did about
    /// it (none for a plan, or when there was nothing to recover).
    pub fn apply_failed(
        check: bool,
        resources: Vec<ResourceReport>,
        verification: Vec<TestResult>,
        error: String,
        recovery: Option<Recovery>,
    ) -> Outcome {
        Outcome::Applied {
            check,
            resources,
            error: Some(error),
            verification,
            recovery,
        }
    }

    /// Hide the host's secrets in every text of the outcome. Kinds whose texts
    /// never come from the host's variables are listed, so that a new kind
    /// must be decided on here.
    pub fn redact(&mut self, r: &Redactor) {
        match self {
            Outcome::Applied {
                resources,
                error,
                verification,
                recovery,
                ..
            } => {
                resources.iter_mut().for_each(|x| x.redact(r));
                error.iter_mut().for_each(|e| r.redact_in(e));
                verification.iter_mut().for_each(|t| t.redact(r));
                recovery.iter_mut().for_each(|x| x.redact(r));
            }
            Outcome::Verified { results } => results.iter_mut().for_each(|t| t.redact(r)),
            Outcome::Failed { error }
            | Outcome::Unreachable { error }
            | Outcome::Untrusted { error }
            | Outcome::Invalid { error } => r.redact_in(error),
            Outcome::Restored { problems, .. } => problems.iter_mut().for_each(|p| r.redact_in(p)),
            Outcome::Command { .. }
            | Outcome::Facts { .. }
            | Outcome::Skipped { .. }
            | Outcome::Image(_)
            | Outcome::Captured(_) => {}
        }
    }
}

impl Recovery {
    /// See [`Outcome::redact`].
    pub fn redact(&mut self, r: &Redactor) {
        r.redact_in(&mut self.reason);
        self.restore_problems
            .iter_mut()
            .for_each(|p| r.redact_in(p));
        self.fallback.iter_mut().flatten().for_each(|x| x.redact(r));
        self.fallback_verification
            .iter_mut()
            .for_each(|t| t.redact(r));
        self.error.iter_mut().for_each(|e| r.redact_in(e));
    }
}

impl ResourceReport {
    /// See [`Outcome::redact`].
    pub fn redact(&mut self, r: &Redactor) {
        r.redact_in(&mut self.resource);
        self.changes.iter_mut().for_each(|c| r.redact_in(c));
        for text in [&mut self.diff, &mut self.output, &mut self.error]
            .into_iter()
            .flatten()
        {
            r.redact_in(text);
        }
    }
}

/// Per-state host counts at the end of a run. Deserialized from past run
/// reports, where a count added since the report was written reads as zero.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Summary {
    pub ok: usize,
    pub changed: usize,
    pub failed: usize,
    pub unreachable: usize,
    pub untrusted: usize,
    pub skipped: usize,
    pub degraded: usize,
    pub rolled_back: usize,
    /// Of the failed hosts, those failed by bad input (`Outcome::Invalid`).
    #[serde(skip_serializing_if = "is_zero")]
    pub invalid_input: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Summary {
    pub fn add(&mut self, state: HostState) {
        match state {
            HostState::Ok => self.ok += 1,
            HostState::Changed => self.changed += 1,
            HostState::Failed => self.failed += 1,
            HostState::Unreachable => self.unreachable += 1,
            HostState::Untrusted => self.untrusted += 1,
            HostState::Skipped => self.skipped += 1,
            HostState::Degraded => self.degraded += 1,
            HostState::RolledBack => self.rolled_back += 1,
        }
    }
    pub fn total(&self) -> usize {
        self.ok
            + self.changed
            + self.failed
            + self.unreachable
            + self.untrusted
            + self.skipped
            + self.degraded
            + self.rolled_back
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum Event {
    RunStarted {
        run_id: String,
        action: String,
        hosts: Vec<String>,
    },
    /// A host entered a phase (connecting, running, probing, ...).
    HostPhase { host: String, phase: String },
    /// A stale lock left by an interrupted run was taken over: what was done
    /// about that run's processes still running on the host (killed, or
    /// none found).
    LockTakenOver { host: String, what: String },
    /// A script that only reads the host ran past `--read-timeout` and parc
    /// stopped waiting for it: what was then done, before the lock was
    /// released, about what it left running on the host.
    GaveUp { host: String, what: String },
    /// A host rebooted on purpose (a `reboot` resource or handler) answered
    /// again from its new boot, `took_ms` after the reboot command; its
    /// converge goes on.
    HostRebooted { host: String, took_ms: u64 },
    /// Bytes of a long transfer that are done on a host (image deploy: chunks
    /// found matching, zeroed or sent; the read-back that follows is its own
    /// phase; capture: bytes received).
    HostProgress {
        host: String,
        done_bytes: u64,
        total_bytes: u64,
        /// Image deploys: what was read from the image and sent so far.
        #[serde(skip_serializing_if = "Option::is_none")]
        wire: Option<Wire>,
    },
    /// Bytes a command printed on a host (`parc run`), sent as they arrive,
    /// until the stream's `--max-output`: the rest is only counted, and the
    /// host's result says how much there was. A chunk ends on a character
    /// boundary when the output is UTF-8, not on a line.
    HostOutput {
        host: String,
        stream: OutputStream,
        chunk: HostBytes,
    },
    HostFinished {
        host: String,
        state: HostState,
        elapsed_ms: u64,
        /// Remote commands run on the host (round trips), for the record.
        execs: u32,
        outcome: Outcome,
    },
    PlayStarted {
        play: String,
        hosts: Vec<String>,
        batches: Vec<Vec<String>>,
    },
    BatchStarted {
        play: String,
        index: usize,
        hosts: Vec<String>,
    },
    /// The play's failure budget was exceeded: later batches are not started.
    PlayAborted {
        play: String,
        reason: String,
        skipped: Vec<String>,
    },
    RunFinished {
        run_id: String,
        summary: Summary,
        elapsed_ms: u64,
    },
}

impl Event {
    /// What parc did on a host besides its outcome (a stale lock's
    /// takeover, a read it gave up on), as said under the host and kept in
    /// its record: the host and the text.
    pub fn host_note(&self) -> Option<(&str, String)> {
        match self {
            Event::LockTakenOver { host, what } => {
                Some((host, format!("took over a stale lock: {what}")))
            }
            Event::GaveUp { host, what } => Some((host, what.clone())),
            _ => None,
        }
    }
}

/// Sending side handed to the engine. Sending never fails from the engine's view:
/// a reporter that went away must not abort a rollout.
#[derive(Debug, Clone)]
pub struct Events(std::sync::Arc<[mpsc::UnboundedSender<Event>]>);

impl Events {
    /// One receiver per consumer (display, run report, ...), each getting every
    /// event in order. Separate queues rather than a consumer forwarding to the
    /// next, so a slow report write never delays the display, and the engine
    /// still only emits.
    pub fn fan_out<const N: usize>() -> (Events, [mpsc::UnboundedReceiver<Event>; N]) {
        let mut senders = Vec::with_capacity(N);
        let receivers = std::array::from_fn(|_| {
            let (tx, rx) = mpsc::unbounded_channel();
            senders.push(tx);
            rx
        });
        (Events(senders.into()), receivers)
    }

    pub fn send(&self, event: Event) {
        if let Some((last, rest)) = self.0.split_last() {
            for tx in rest {
                let _ = tx.send(event.clone());
            }
            let _ = last.send(event);
        }
    }
    pub fn phase(&self, host: &str, phase: &str) {
        self.send(Event::HostPhase {
            host: host.to_string(),
            phase: phase.to_string(),
        });
    }
}
