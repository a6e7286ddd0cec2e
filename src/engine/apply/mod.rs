//! Converging one host, and what happens when that fails.
//!
//! Architecture note: [`apply_host`] is the per-host state machine: the host
//! lock, the play's `image:` stage if any, then `converge` (facts, render,
//! ONE probe exec, local plan, ONE apply exec that first writes the journal
//! and, when nothing else runs after it, ends with the handlers and the
//! verification tests; else one more exec for each), then, on any failure,
//! the play's `on_failure` (recover.rs): `rollback` restores the journal,
//! `fallback` restores then converges the profile's fallback, `keep` leaves
//! the host as it is. With a dead-man switch, a change that cannot be
//! confirmed over a new connection (confirm.rs) goes through the same
//! recovery. The phases take the play's [`ApplyJob`] from job.rs; this module
//! calls them and none of them calls back into it. Each phase is announced
//! as an event; nothing here prints.

mod confirm;
mod converge;
mod job;
mod reboot;
mod recover;
#[cfg(test)]
mod script_snapshots;
mod steps;

use std::sync::Arc;

use super::error::HostError;
use super::gather::{GatherError, facts_from_lock};
use super::imaging;
use super::lock::{HostLock, history_line};
use crate::events::{Events, Outcome, Recovery, RecoveryAction, ResourceReport};
use crate::facts::Facts;
use crate::inventory::Inventory;
use crate::playbook::OnFailure;
use crate::render::Redactor;
use crate::transport::Transport;

pub use converge::Converged;
pub use job::ApplyJob;
pub(crate) use reboot::RebootError;

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
    let (lock, facts) = match HostLock::acquire_then(
        t.clone(),
        &job.operator,
        job.break_lock,
        None,
        then,
        job.connect.read_timeout,
    )
    .await
    {
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
            lock.release(&history, &events, &host).await;
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
    lock.release(&history, &events, &host).await;
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
        recover::recover(job, inventory, host, t, events, &done, &reason).await
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
