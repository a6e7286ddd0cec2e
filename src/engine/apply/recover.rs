//! Recovery: what `on_failure` does to a host whose converge failed.
//!
//! Lifecycle: a failed converge (apply/mod.rs), or an unconfirmed change
//! whose dead-man switch acted (confirm.rs), comes here with what was done
//! ([`Converged`]'s flags: journaled, already restored, unchanged).
//! `keep` leaves the host as it is (deciding the journal's fate `keep` when a
//! watchdog is armed, so it does not restore the host later); `rollback`
//! restores the journal, unless the watchdog already did; `fallback` restores,
//! then converges the profile's fallback, itself rolled back if it fails.
//! The [`Recovery`] returned says what the host ended as; the caller builds
//! the outcome from it. Both callers use this module, neither the other.

use super::converge::{self, Converged};
use super::job::ApplyJob;
use crate::engine::error::HostError;
use crate::events::{Events, Recovery, RecoveryAction};
use crate::inventory::Inventory;
use crate::journal::{self, Fate, Restore};
use crate::playbook::OnFailure;
use crate::transport::Transport;

/// Apply the play's `on_failure` to a host whose converge failed.
pub(super) async fn recover(
    job: &ApplyJob,
    inventory: &Inventory,
    host: &str,
    t: &dyn Transport,
    events: &Events,
    done: &Converged,
    reason: &HostError,
) -> Recovery {
    let mut recovery = Recovery {
        reason: reason.to_string(),
        action: RecoveryAction::Kept,
        restore_problems: vec![],
        fallback: None,
        fallback_verification: vec![],
        error: None,
    };
    if job.on_failure == OnFailure::Keep {
        if done.journaled && !done.restored && job.confirm.is_some() {
            keep(t, &job.run_id, &mut recovery).await;
        }
        return recovery;
    }
    if done.journaled && !done.restored {
        events.phase(host, "rolling back");
        let fate = match job.on_failure {
            OnFailure::Fallback => Fate::Fallback,
            OnFailure::Rollback | OnFailure::Keep => Fate::Rollback,
        };
        match journal::restore(t, &job.run_id, fate).await {
            Ok(Restore::Checked(problems)) if problems.is_empty() => {}
            Ok(Restore::Checked(problems)) => {
                recovery.action = RecoveryAction::Failed;
                recovery.error = Some(format!(
                    "the restore left {} thing(s) as the journal did not say (a path, an undo command): the host needs a technician",
                    problems.len()
                ));
                recovery.restore_problems = problems;
                return recovery;
            }
            Ok(Restore::NothingChanged(why)) => {
                // Nothing had changed, so nothing was rolled back: the host simply failed.
                recovery.error = Some(format!("nothing had been changed on the host ({why})"));
                return recovery;
            }
            Err(e) if done.unchanged => {
                recovery.error = Some(format!(
                    "nothing had been changed on the host (its apply stopped before its first change), \
                     but removing what it left failed: {e}"
                ));
                return recovery;
            }
            Err(e) => {
                recovery.action = RecoveryAction::Failed;
                recovery.error = Some(format!(
                    "rollback failed: {e}. The journal stays on the host: run `parc rollback {}` once it is reachable",
                    job.run_id
                ));
                return recovery;
            }
        }
    }
    recovery.action = RecoveryAction::RolledBack;
    // A read that never ended (a hung mount) would hang the fallback's too.
    let fallback = job.fallback.as_ref().filter(|_| !reason.is_timed_out());
    let (OnFailure::Fallback, Some(fallback)) = (job.on_failure, fallback) else {
        if !done.journaled {
            // Nothing had changed, so nothing was rolled back: the host simply failed.
            recovery.action = RecoveryAction::Kept;
            recovery.error = Some("nothing had been changed on the host".into());
        }
        if job.on_failure == OnFailure::Fallback && reason.is_timed_out() {
            let said = recovery
                .error
                .take()
                .map_or(String::new(), |e| format!("{e}; "));
            recovery.error = Some(format!(
                "{said}the fallback profile was not tried: what held up the read may hold up its own"
            ));
        }
        return recovery;
    };
    events.phase(host, "applying fallback");
    // Facts are gathered again: the host may be reached over a new
    // connection here (after the dead-man switch), and this path is rare.
    let fb = converge::converge(fallback, inventory, host, t, events, None).await;
    recovery.fallback = Some(fb.resources.clone());
    recovery.fallback_verification = fb.verification.clone();
    match &fb.error {
        None => recovery.action = RecoveryAction::Degraded,
        Some(e) => {
            recovery.action = RecoveryAction::Failed;
            let undone = if fb.journaled {
                match journal::restore(t, &fallback.run_id, Fate::Rollback).await {
                    Ok(Restore::Checked(p)) if p.is_empty() => {
                        "its changes were rolled back".to_string()
                    }
                    Ok(Restore::Checked(p)) => {
                        format!("rolling it back left {} mismatches", p.len())
                    }
                    Ok(Restore::NothingChanged(why)) => format!("it changed nothing ({why})"),
                    Err(e) => format!("rolling it back failed: {e}"),
                }
            } else {
                "it changed nothing".to_string()
            };
            recovery.error = Some(format!("the fallback profile failed too ({e}); {undone}"));
        }
    }
    // The fallback profile has secrets of its own.
    recovery.redact(&fb.redactor);
    recovery
}

/// `on_failure: keep` with a dead-man switch: decide the host's fate `keep`,
/// disarming its watchdog, so a host reported kept is not restored later. If
/// the watchdog decided first, report what it did instead.
async fn keep(t: &dyn Transport, run_id: &str, recovery: &mut Recovery) {
    match journal::decide(t, run_id, Fate::Keep).await {
        Ok(journal::Decided {
            fate: Some(Fate::Watchdog),
            restore,
        }) => {
            recovery.reason = format!(
                "{}; the host's dead-man switch restored it before parc could keep it",
                recovery.reason
            );
            match restore {
                Some(Ok(Restore::Checked(problems))) if problems.is_empty() => {
                    recovery.action = RecoveryAction::RolledBack;
                }
                Some(Ok(Restore::Checked(problems))) => {
                    recovery.action = RecoveryAction::Failed;
                    recovery.restore_problems = problems;
                }
                Some(Ok(Restore::NothingChanged(why))) => {
                    recovery.error = Some(format!("nothing had been changed on the host ({why})"));
                }
                Some(Err(e)) => {
                    recovery.action = RecoveryAction::Failed;
                    recovery.error = Some(e.to_string());
                }
                None => {}
            }
        }
        Ok(_) => {}
        Err(e) => {
            recovery.error = Some(format!(
                "could not disarm the host's dead-man switch ({e}): it will restore the host when its window ends"
            ))
        }
    }
}
