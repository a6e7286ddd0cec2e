//! `parc rollback RUN_ID`: restore hosts from a run's journals, later, from
//! another parc process (also after the controller crashed mid-run).

use std::sync::Arc;

use super::fleet::{self, FleetContext};
use super::lock::{HostLock, LockError, Operator, history_line};
use crate::events::{Events, Outcome, Summary};
use crate::journal::{self, Fate, Restore};
use crate::transport::Transport;

pub async fn run(
    ctx: &FleetContext,
    run_id: &str,
    hosts: Vec<String>,
    target_run: String,
) -> (Vec<(String, Outcome)>, Summary) {
    let events = ctx.events.clone();
    let target_run = Arc::new(target_run);
    let operator = Arc::new(Operator::current(run_id));
    fleet::run(
        ctx,
        run_id,
        "rollback",
        hosts,
        move |host, t: Arc<dyn Transport>| {
            let events = events.clone();
            let target_run = target_run.clone();
            let operator = operator.clone();
            async move {
                events.phase(&host, "locking");
                // Taking over the run's own stale lock is the point of a rollback
                // after a crash; any other holder is respected.
                let lock =
                    match HostLock::acquire(t.clone(), &operator, false, Some(&target_run)).await {
                        Ok(lock) => lock,
                        Err(e @ LockError::Transport(_)) => {
                            return Outcome::Unreachable {
                                error: e.to_string(),
                            };
                        }
                        Err(e) => {
                            return Outcome::Failed {
                                error: e.to_string(),
                            };
                        }
                    };
                lock.announce(&events, &host);
                let t = lock.transport(t);
                let outcome = restore_host(t.as_ref(), &host, &target_run, &events).await;
                let history = history_line(&operator, "rollback", outcome.state().as_str());
                lock.release(&history, &events, &host).await;
                outcome
            }
        },
    )
    .await
}

async fn restore_host(t: &dyn Transport, host: &str, target_run: &str, events: &Events) -> Outcome {
    events.phase(host, "restoring");
    // The fallback's journal is newer: undo it first.
    let mut restored = Vec::new();
    let mut problems = Vec::new();
    let mut untouched = format!("no journal of run {target_run} on this host");
    for j in [format!("{target_run}-fallback"), target_run.to_string()] {
        match journal::restore(t, &j, Fate::Rollback).await {
            Ok(Restore::Checked(p)) => {
                problems.extend(p);
                restored.push(j);
            }
            Ok(Restore::NothingChanged(why)) if j == target_run => untouched = why,
            Ok(Restore::NothingChanged(_)) => {}
            Err(e) if e.is_connection_lost() => {
                return Outcome::Unreachable {
                    error: e.to_string(),
                };
            }
            Err(e) => {
                return Outcome::Failed {
                    error: e.to_string(),
                };
            }
        }
    }
    if restored.is_empty() {
        return Outcome::Skipped {
            reason: format!("nothing to restore: {untouched}"),
        };
    }
    Outcome::Restored {
        journals: restored,
        problems,
    }
}
