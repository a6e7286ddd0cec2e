//! Converging one host, and what happens when that fails.
//!
//! Architecture note: [`apply_host`] is the per-host state machine: the host
//! lock, the play's `image:` stage if any, then `converge` (facts, render, ONE probe exec, local plan, ONE apply exec that
//! first writes the journal, at most one more exec for handlers), then, on any
//! failure, the play's `on_failure`: `rollback` restores the journal, `fallback`
//! restores then converges the profile's fallback, `keep` leaves the host as
//! it is. Each phase is announced as an event; nothing here prints.

mod confirm;
mod converge;
mod reboot;
#[cfg(test)]
mod script_snapshots;
mod steps;

use std::sync::Arc;

use super::context::PlayContext;
use super::error::HostError;
use super::gather::{GatherError, facts_from_lock};
use super::imaging;
use super::lock::{HostLock, Operator, history_line};
use crate::events::{Events, Outcome, Recovery, RecoveryAction, ResourceReport};
use crate::facts::Facts;
use crate::image::deploy::DeployJob;
use crate::inventory::Inventory;
use crate::journal::{self, Fate, Restore};
use crate::playbook::OnFailure;
use crate::render::Redactor;
use crate::transport::Transport;

pub use converge::Converged;
pub(crate) use reboot::RebootError;

/// Everything one play needs to converge any of its hosts.
pub struct ApplyJob {
    /// The profile and the variables its hosts are rendered with.
    pub play: PlayContext,
    /// `parc plan`: stop after planning.
    pub check: bool,
    pub diff: bool,
    /// Names the journal on every host (`/var/lib/parc/journal/<run_id>`).
    pub run_id: String,
    pub on_failure: OnFailure,
    /// The job converging the profile's fallback, for `on_failure: fallback`.
    pub fallback: Option<Arc<ApplyJob>>,
    pub keep_journals: usize,
    /// Who runs this, for the host lock and history.
    pub operator: Operator,
    /// Break a stale lock left by an interrupted run (`--break-lock`).
    pub break_lock: bool,
    /// Dead-man switch: the host restores itself unless confirmed within this.
    pub confirm: Option<std::time::Duration>,
    /// How to reach hosts again (the confirmation uses a new connection).
    pub connect: crate::engine::connect::ConnectOptions,
    /// The play's `image:` stage, written under the host lock before the
    /// profile (a failed image skips the profile).
    pub image: Option<Arc<DeployJob>>,
}

/// Converge `host`. The outcome returned is redacted as a whole, here, with
/// the host's redactor: the events and reports made from it carry no secret,
/// and their consumers (terminal, `--json`, report files) never need the
/// host's variables. Redacting the whole outcome at the one place it leaves
/// the host's task, rather than each text where it is made, means a text
/// added to the outcome later cannot be forgotten.
pub async fn apply_host(
    job: Arc<ApplyJob>,
    inventory: Arc<Inventory>,
    host: String,
    t: Arc<dyn Transport>,
    events: Events,
) -> Outcome {
    let mut redactor = Redactor::default();
    let mut outcome = apply_host_with(job, inventory, host, t, events, &mut redactor).await;
    outcome.redact(&redactor);
    outcome
}

/// [`apply_host`], leaving the host's redactor in `redactor`.
async fn apply_host_with(
    job: Arc<ApplyJob>,
    inventory: Arc<Inventory>,
    host: String,
    t: Arc<dyn Transport>,
    events: Events,
    redactor: &mut Redactor,
) -> Outcome {
    if job.check {
        // Planning changes nothing: no lock, no journal, no history.
        let stage = match &job.image {
            Some(image) => Some(
                imaging::play_stage(image.clone(), true, host.clone(), t.clone(), events.clone())
                    .await,
            ),
            None => None,
        };
        let done = converged_outcome(&job, &inventory, &host, t.as_ref(), &events, None).await;
        *redactor = done.redactor;
        return with_stage(stage, done.outcome);
    }
    events.phase(&host, "locking");
    // The facts probe rides in the lock's exec, unless an image stage comes
    // first: facts then describe the host as imaged, as they did before.
    let then = job.image.is_none().then_some(crate::facts::PROBE);
    let (lock, facts) =
        match HostLock::acquire_then(t.clone(), &job.operator, job.break_lock, None, then).await {
            Ok((lock, facts)) => (lock, then.map(|_| facts_from_lock(facts))),
            Err(e) => {
                let e = HostError::Lock(e);
                if e.is_connection_lost() {
                    return Outcome::Unreachable {
                        error: e.to_string(),
                    };
                }
                return Outcome::apply_failed(false, vec![], vec![], e.to_string(), None);
            }
        };
    lock.announce(&events, &host);
    let t = lock.transport(t);
    let mut stage = None;
    if let Some(image) = &job.image {
        let report = imaging::play_stage(
            image.clone(),
            false,
            host.clone(),
            t.clone(),
            events.clone(),
        )
        .await;
        let failed = report.error.clone();
        let nothing_else =
            job.play.profile.resources.is_empty() && job.play.profile.verify.is_empty();
        if failed.is_some() || nothing_else {
            let outcome = match failed {
                Some(e) => {
                    let error = HostError::ImageStage(e).to_string();
                    Outcome::apply_failed(false, vec![report], vec![], error, None)
                }
                None => Outcome::applied(false, vec![report], vec![]),
            };
            let history = history_line(&job.operator, "apply", outcome.state().as_str());
            lock.release(&history).await;
            return outcome;
        }
        stage = Some(report);
    }
    let mut armed = std::time::Instant::now();
    let done = converged_outcome(&job, &inventory, &host, t.as_ref(), &events, facts).await;
    *redactor = done.redactor;
    let (mut outcome, journaled) = (done.outcome, done.journaled);
    // After a reboot the lock is the one taken again over the new connection
    // (the first one ended with the old boot), and the watchdog's window
    // starts again from then.
    let lock = match done.reconnected {
        Some(back) => {
            armed = back.at;
            back.lock
        }
        None => lock,
    };
    if let (Some(window), true, Outcome::Applied { error: None, .. }) =
        (job.confirm, journaled, &outcome)
    {
        outcome =
            confirm::confirm_or_recover(&job, &inventory, &host, &events, outcome, armed, window)
                .await;
    }
    let outcome = with_stage(stage, outcome);
    let history = history_line(&job.operator, "apply", outcome.state().as_str());
    lock.release(&history).await;
    outcome
}

/// The image stage's line first among the host's changes.
fn with_stage(stage: Option<ResourceReport>, mut outcome: Outcome) -> Outcome {
    if let (Some(stage), Outcome::Applied { resources, .. }) = (stage, &mut outcome) {
        resources.insert(0, stage);
    }
    outcome
}

/// What [`converged_outcome`] leaves for the rest of the host's job.
struct HostResult {
    outcome: Outcome,
    /// A journal was written: there is something the dead-man switch guards.
    journaled: bool,
    /// The host's redactor.
    redactor: Redactor,
    /// The host rebooted: the connection and lock to go on with.
    reconnected: Option<reboot::Reconnected>,
}

/// Converge, then apply `on_failure` if it failed (over the connection made
/// after a reboot, if the host rebooted).
async fn converged_outcome(
    job: &ApplyJob,
    inventory: &Inventory,
    host: &str,
    t: &dyn Transport,
    events: &Events,
    facts: Option<Result<Facts, GatherError>>,
) -> HostResult {
    let mut done = converge::converge(job, inventory, host, t, events, facts).await;
    let redactor = std::mem::take(&mut done.redactor);
    let reconnected = done.reconnected.take();
    let journaled = done.journaled;
    let outcome = match done.error.take() {
        None => Outcome::applied(job.check, done.resources, done.verification),
        Some(reason) => {
            // After a reboot, whatever is left to do goes over the new connection.
            let t = reconnected.as_ref().map_or(t, |r| r.transport.as_ref());
            failed_outcome(job, inventory, host, t, events, done, reason).await
        }
    };
    HostResult {
        outcome,
        journaled,
        redactor,
        reconnected,
    }
}

/// The outcome of a host whose converge failed for `reason`, after
/// `on_failure` was applied to it.
async fn failed_outcome(
    job: &ApplyJob,
    inventory: &Inventory,
    host: &str,
    t: &dyn Transport,
    events: &Events,
    done: Converged,
    reason: HostError,
) -> Outcome {
    if let HostError::Render(e) = &reason {
        let error = e.to_string();
        return Outcome::Invalid { error };
    }
    if reason.is_connection_lost() && !done.journaled {
        // Lost before anything was sent that changes the host.
        let error = reason.to_string();
        return Outcome::Unreachable { error };
    }
    if job.check {
        let error = reason.to_string();
        return Outcome::apply_failed(true, done.resources, done.verification, error, None);
    }
    let recovery = if done.cut_off {
        // The host rebooted and cannot be reached again: nothing can be undone.
        Recovery {
            reason: reason.to_string(),
            action: match job.on_failure {
                OnFailure::Keep => RecoveryAction::Kept,
                OnFailure::Rollback | OnFailure::Fallback => RecoveryAction::Failed,
            },
            restore_problems: vec![],
            fallback: None,
            fallback_verification: vec![],
            error: Some(
                "parc cannot reach the host since its reboot: nothing was rolled back".into(),
            ),
        }
    } else {
        recover(job, inventory, host, t, events, &done, &reason).await
    };
    if reason.is_connection_lost()
        && matches!(
            recovery.action,
            RecoveryAction::Failed | RecoveryAction::Kept
        )
    {
        // The connection broke while applying and parc could not undo the
        // change either: what the host did is unknown, so it is unreachable,
        // not failed, with what parc knows of it.
        let error = match &recovery.error {
            Some(e) => format!("{reason}; {e}"),
            None => reason.to_string(),
        };
        return Outcome::Unreachable { error };
    }
    Outcome::apply_failed(
        false,
        done.resources,
        done.verification,
        reason.to_string(),
        Some(recovery),
    )
}

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
                    "the restore left {} path(s) different from the journal: the host needs a technician",
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
    let (OnFailure::Fallback, Some(fallback)) = (job.on_failure, &job.fallback) else {
        if !done.journaled {
            // Nothing had changed, so nothing was rolled back: the host simply failed.
            recovery.action = RecoveryAction::Kept;
            recovery.error = Some("nothing had been changed on the host".into());
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
