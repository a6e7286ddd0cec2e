//! `parc rollback RUN_ID`: restore hosts from a run's journals, later, from
//! another parc process (also after the controller crashed mid-run).

use std::sync::Arc;

use super::events::{Events, Outcome, Summary};
use super::fleet::{self, FleetContext};
use super::lock::{HostLock, Operator, history_line};
use crate::journal;
use crate::transport::{ExitStatus, Transport};

/// Exit status of the restore script when the host has no such journal.
const NO_JOURNAL: u32 = 3;

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
                        Err(e) => {
                            return Outcome::Failed {
                                error: e.to_string(),
                            };
                        }
                    };
                let outcome = restore_host(t.as_ref(), &host, &target_run, &events).await;
                let history = history_line(&operator, "rollback", outcome.state().as_str());
                lock.release(&history).await;
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
    for j in [format!("{target_run}-fallback"), target_run.to_string()] {
        let out = match journal::restore_script(&j).run(t).await {
            Ok(out) => out,
            Err(e) => {
                return Outcome::Failed {
                    error: e.while_doing(&format!("restoring {j}")),
                };
            }
        };
        if out.status == ExitStatus::Code(NO_JOURNAL) {
            continue;
        }
        match journal::restore_problems(&out.records) {
            Ok(p) => problems.extend(p),
            Err(e) => {
                return Outcome::Failed {
                    error: format!("restoring {j}: {e} ({})", out.stderr.trim()),
                };
            }
        }
        restored.push(j);
    }
    if restored.is_empty() {
        return Outcome::Skipped {
            reason: format!("no journal of run {target_run} on this host"),
        };
    }
    Outcome::Restored {
        journals: restored,
        problems,
    }
}
