//! Rebooting a host in the middle of its converge, on purpose (`reboot`
//! resources and handlers, see `resources::reboot`), and going on with it.
//!
//! After the apply exec and the handlers' exec: one exec claims the journal's
//! fate as `rebooting` and says when the host's PID 1 started, one more runs
//! `systemctl --no-block reboot`. parc then reconnects through the same path
//! as every connection ([`connect`]: the host key is checked again, a changed
//! one is an alarm, not a retry) until PID 1's start differs, that is until
//! the host went down and came back, within the reboot's timeout. It takes
//! the host lock again (kept on the host, as this run's, across the reboot),
//! and the converge goes on over the new connection: verification, the
//! dead-man confirmation, `on_failure`.
//!
//! The journal and the dead-man switch: a lost connection is not a failure
//! here. The connection the run started with is expected to die; nothing is
//! rolled back for it. The host's watchdog, armed by the apply, would restore
//! the host if its window ended while the host reboots; the `rebooting` claim
//! (`parc_decide`, one atomic `ln -s`) makes it stand down instead, and if the
//! watchdog decided first the host is not rebooted at all. The reboot ends
//! the watchdog anyway (a transient unit or a process of the old boot). Once
//! the host is back, the claim is withdrawn and a new watchdog armed for the
//! play's whole `confirm:` window, counted from then: the confirmation that
//! follows, over a new connection, still proves the host reachable after its
//! reboot, and the host restores itself if it never comes. A host that does
//! not come back in time fails, saying so; parc cannot reach it to roll it
//! back, and its journal keeps the claim: nothing restores it by itself (it
//! rebooted on purpose; whether it is broken is for a technician to see),
//! `parc rollback RUN_ID` does once it is reachable.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::job::ApplyJob;
use crate::engine::connect::connect;
use crate::engine::error::HostError;
use crate::engine::lock::HostLock;
use crate::events::{Event, Events};
use crate::inventory::{Host, Inventory};
use crate::journal;
use crate::transport::Transport;

/// The host's connection and lock once it is back: those the run started
/// with ended with the old boot.
pub struct Reconnected {
    pub transport: Arc<dyn Transport>,
    pub lock: HostLock,
    /// When the host was back, which the confirmation window counts from.
    pub at: Instant,
}

/// Why a reboot did not bring the host back into the run.
#[derive(Debug, thiserror::Error)]
pub enum RebootError {
    #[error(
        "the host was not rebooted: its dead-man switch had decided its fate first ({0}; is the confirm window shorter than the apply?)"
    )]
    WatchdogFirst(String),
    #[error("the host was not rebooted: {0}")]
    NotStarted(String),
    #[error(
        "the host did not come back from its reboot within {}: {last}. Nothing more was done to it, \
         and it could not be rolled back; its journal stays on the host: run `parc rollback {run_id}` \
         once it is reachable",
        humanize(*.timeout)
    )]
    NotBack {
        timeout: Duration,
        last: String,
        run_id: String,
    },
    #[error(
        "back from its reboot, the host presents a key parc does not trust ({0}); nothing more was sent to it"
    )]
    Untrusted(String),
    #[error(
        "back from its reboot, but its lock could not be taken again ({0}); nothing more was done to it"
    )]
    Relock(String),
    #[error(
        "back from its reboot, but its journal's fate was decided meanwhile (`{0}`): not verified"
    )]
    DecidedMeanwhile(String),
}

impl RebootError {
    /// parc has no usable connection to the host any more: nothing else
    /// (rollback, fallback) can be tried.
    pub fn cut_off(&self) -> bool {
        matches!(
            self,
            RebootError::NotBack { .. } | RebootError::Untrusted(_) | RebootError::Relock(_)
        )
    }
}

/// What [`reboot`] did.
pub enum Rebooted {
    /// The host answered from its new boot, `took` after the reboot command.
    Back {
        took: Duration,
        reconnected: Reconnected,
    },
    /// With the connection to go on with, when the host is back.
    Failed {
        error: RebootError,
        reconnected: Option<Reconnected>,
    },
}

impl Rebooted {
    fn failed(error: RebootError) -> Self {
        Rebooted::Failed {
            error,
            reconnected: None,
        }
    }
}

/// Pause between attempts to reach a rebooting host.
const RETRY: Duration = Duration::from_secs(1);

/// Reboot `host` over `t`, wait for it, and reconnect (see the module).
/// `journaled`: the run wrote a journal, whose watchdog is re-armed.
pub async fn reboot(
    job: &ApplyJob,
    inventory: &Inventory,
    host: &str,
    t: &dyn Transport,
    events: &Events,
    timeout: Duration,
    journaled: bool,
) -> Rebooted {
    events.phase(host, "rebooting");
    let claimed = match journal::reboot_claim_script(&job.run_id).run(t).await {
        Ok(out) => out,
        Err(e) => {
            return Rebooted::failed(RebootError::NotStarted(
                HostError::script(e, "preparing it").to_string(),
            ));
        }
    };
    let record = claimed.records.get("reboot");
    let field = |k: &str| record.and_then(|r| r.get(k)).filter(|v| !v.is_empty());
    if let Some(fate) = field("refused") {
        return Rebooted::failed(RebootError::WatchdogFirst(fate.to_string()));
    }
    let Some(boot) = field("boot").map(str::to_string) else {
        return Rebooted::failed(RebootError::NotStarted(format!(
            "parc could not read when its PID 1 started, so it could not tell when it is back ({}): {}",
            claimed.status,
            claimed.stderr.trim()
        )));
    };
    let started = Instant::now();
    match t.exec_capture("systemctl --no-block reboot", b"").await {
        Ok(out) if !out.status.success() => {
            return Rebooted::failed(RebootError::NotStarted(format!(
                "systemctl reboot failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        // A connection lost here is the host going down.
        Ok(_) | Err(_) => {}
    }
    events.phase(host, "waiting for the host to come back");
    let not_back = |last: String| {
        Rebooted::failed(RebootError::NotBack {
            timeout,
            last,
            run_id: job.run_id.clone(),
        })
    };
    let Some(entry) = inventory.host(host) else {
        return not_back(format!("{host} left the inventory"));
    };
    let window = job.confirm.filter(|_| journaled);
    let deadline = started + timeout;
    let mut last = "it never answered".to_string();
    let (transport, fate) = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return not_back(last);
        }
        match tokio::time::timeout(left, attempt(job, inventory, entry, &boot, window)).await {
            Err(_) => last = "the last attempt to reach it did not finish".into(),
            Ok(Attempt::Back(t, fate)) => break (t, fate),
            Ok(Attempt::Untrusted(e)) => return Rebooted::failed(RebootError::Untrusted(e)),
            Ok(Attempt::NotYet(why)) => {
                last = why;
                tokio::time::sleep(RETRY.min(left)).await;
            }
        }
    };
    let took = started.elapsed();
    let at = Instant::now();
    let lock =
        match HostLock::acquire(transport.clone(), &job.operator, false, Some(&job.run_id)).await {
            Ok(lock) => lock,
            Err(e) => return Rebooted::failed(RebootError::Relock(e.to_string())),
        };
    events.send(Event::HostRebooted {
        host: host.to_string(),
        took_ms: took.as_millis() as u64,
    });
    let reconnected = Reconnected {
        transport: lock.transport(transport),
        lock,
        at,
    };
    match fate {
        Some(fate) => Rebooted::Failed {
            error: RebootError::DecidedMeanwhile(fate),
            reconnected: Some(reconnected),
        },
        None => Rebooted::Back { took, reconnected },
    }
}

enum Attempt {
    /// A new boot answers; who decided the journal's fate meanwhile, if anyone.
    Back(Arc<dyn Transport>, Option<String>),
    NotYet(String),
    Untrusted(String),
}

/// One try at reaching the host in a new boot.
async fn attempt(
    job: &ApplyJob,
    inventory: &Inventory,
    entry: &Host,
    before: &str,
    window: Option<Duration>,
) -> Attempt {
    let t = match connect(inventory, entry, &job.connect).await {
        Ok(t) => t,
        Err(e) if e.is_host_key_alarm() => return Attempt::Untrusted(e.to_string()),
        Err(e) => return Attempt::NotYet(e.to_string()),
    };
    let out = match journal::reboot_back_script(&job.run_id, before, window)
        .run(t.as_ref())
        .await
    {
        Ok(out) => out,
        Err(e) => {
            return Attempt::NotYet(HostError::script(e, "asking when it booted").to_string());
        }
    };
    let record = out.records.get("boot");
    match record.and_then(|r| r.get("boot")) {
        Some(now) if !now.is_empty() && now != before => {
            let fate = record.and_then(|r| r.get("fate")).filter(|f| !f.is_empty());
            Attempt::Back(t, fate.map(str::to_string))
        }
        Some(_) => {
            Attempt::NotYet("it answered, still in the boot it had before the reboot".into())
        }
        None => Attempt::NotYet(format!(
            "it answered but could not say when it booted ({}): {}",
            out.status,
            out.stderr.trim()
        )),
    }
}

/// `90s`, `10m`, `1m 30s`.
pub fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 60, s % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m {s}s"),
    }
}
