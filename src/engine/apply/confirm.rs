//! The dead-man switch, controller side.
//!
//! The apply exec armed a watchdog on the host that restores the journal
//! unless the journal is marked `confirmed` in time. Confirming over a NEW
//! connection proves the change did not cut off remote access (sshd config,
//! firewall, network): if that connection cannot be made, parc does not
//! pretend; it waits for the watchdog, reconnects, checks what the host did,
//! and reports the host rolled back (or degraded, after converging the
//! fallback), with the reason.

use std::time::{Duration, Instant};

use super::converge::Converged;
use super::job::ApplyJob;
use super::recover::recover;
use crate::engine::connect::connect;
use crate::engine::error::{ConfirmError, HostError};
use crate::events::{Events, Outcome, Recovery, RecoveryAction};
use crate::inventory::Inventory;
use crate::journal;

/// Extra time given to the watchdog to restore and restart services.
const GRACE: Duration = Duration::from_secs(5);
/// How long to keep trying to reach a host after its watchdog should have fired.
const RECONNECT_FOR: Duration = Duration::from_secs(30);

pub(super) async fn confirm_or_recover(
    job: &ApplyJob,
    inventory: &Inventory,
    host: &str,
    events: &Events,
    outcome: Outcome,
    armed: Instant,
    window: Duration,
) -> Outcome {
    events.phase(host, "confirming over a new connection");
    let reason = match confirm(job, inventory, host).await {
        Ok(()) => return outcome,
        Err(reason) => reason,
    };
    let confirmed = outcome.clone();
    let Outcome::Applied {
        resources,
        verification,
        ..
    } = outcome
    else {
        return outcome;
    };
    events.phase(host, "waiting for the host's dead-man switch");
    let wake = armed + window + GRACE;
    tokio::time::sleep_until(wake.into()).await;
    let reason = HostError::Unconfirmed(reason);
    let mut recovery = Recovery {
        reason: reason.to_string(),
        action: RecoveryAction::Failed,
        restore_problems: vec![],
        fallback: None,
        fallback_verification: vec![],
        error: None,
    };
    let Some(host_entry) = inventory.host(host) else {
        return applied(resources, verification, reason, recovery);
    };
    let deadline = Instant::now() + RECONNECT_FOR;
    let t = loop {
        match connect(inventory, host_entry, &job.connect).await {
            Ok(t) => break t,
            Err(e) if Instant::now() > deadline => {
                recovery.error = Some(format!(
                    "still unreachable after its dead-man switch should have restored it ({e}): \
                     the host needs a technician on site"
                ));
                return applied(resources, verification, reason, recovery);
            }
            Err(_) => tokio::time::sleep(Duration::from_secs(2)).await,
        }
    };
    let inspected = match journal::inspect_script(&job.run_id).run(t.as_ref()).await {
        Ok(out) => out,
        Err(e) => {
            recovery.error = Some(format!("reconnected but could not read the journal: {e}"));
            return applied(resources, verification, reason, recovery);
        }
    };
    let journal = inspected.records.get("journal");
    let field = |k: &str| journal.and_then(|r| r.get(k)).unwrap_or("").to_string();
    let (fate, state) = (field("fate"), field("state"));
    // The state the journal ended in is the one reported.
    let restored = match journal::Fate::parse(&fate) {
        // The confirmation landed; only its answer was lost.
        Some(journal::Fate::Confirmed) => return confirmed,
        Some(journal::Fate::Watchdog) if state == "rolled_back" => true,
        // No one decided: the watchdog is gone (a reboot?). parc decides now.
        None => false,
        Some(other) => {
            recovery.error = Some(format!(
                "reachable again, but its journal says `{state}` (decided by {}), not rolled back: check the host",
                other.as_str()
            ));
            return applied(resources, verification, reason, recovery);
        }
    };
    // The watchdog restored the host (or parc restores it now); go on as for
    // any failure (fallback...).
    // Only the flags are read: the reason is passed on its own.
    let done = Converged {
        resources: resources.clone(),
        error: None,
        journaled: true,
        unchanged: false,
        restored,
        verification: verification.clone(),
        redactor: Default::default(),
        reconnected: None,
        cut_off: false,
    };
    let mut recovery = recover(job, inventory, host, t.as_ref(), events, &done, &reason).await;
    if let (true, Ok(journal::Restore::Checked(problems))) =
        (restored, journal::restore_result(&inspected.records))
    {
        recovery.restore_problems = problems;
    }
    recovery.reason = if restored {
        format!("{reason}; the host restored itself (dead-man switch)")
    } else {
        format!("{reason}; the host's dead-man switch did not act, so parc decided")
    };
    applied(resources, verification, recovery.reason.clone(), recovery)
}

/// The outcome of an unconfirmed change: what was applied and verified
/// before the host was cut off stays in the report, with what happened next.
fn applied(
    resources: Vec<crate::events::ResourceReport>,
    verification: Vec<crate::verify::TestResult>,
    reason: impl ToString,
    recovery: Recovery,
) -> Outcome {
    Outcome::apply_failed(
        false,
        resources,
        verification,
        reason.to_string(),
        Some(recovery),
    )
}

/// Open a new connection and mark the journal confirmed.
async fn confirm(job: &ApplyJob, inventory: &Inventory, host: &str) -> Result<(), ConfirmError> {
    let entry = inventory
        .host(host)
        .ok_or_else(|| ConfirmError::LeftInventory { host: host.into() })?;
    let t = connect(inventory, entry, &job.connect)
        .await
        .map_err(ConfirmError::Connect)?;
    let out = t
        .exec_capture(&journal::confirm_command(&job.run_id), b"")
        .await
        .map_err(ConfirmError::Broke)?;
    let said = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if said == "confirmed" {
        Ok(())
    } else {
        Err(ConfirmError::Refused { said })
    }
}
