//! `parc rollback RUN_ID`: restore hosts from a run's journals, later, from
//! another parc process (also after the controller crashed mid-run).

use std::sync::Arc;

use super::events::{Outcome, Summary};
use super::fleet::{self, FleetContext};
use crate::journal;
use crate::transport::Transport;

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
    fleet::run(
        ctx,
        run_id,
        "rollback",
        hosts,
        move |host, t: Arc<dyn Transport>| {
            let events = events.clone();
            let target_run = target_run.clone();
            async move {
                events.phase(&host, "restoring");
                // The fallback's journal is newer: undo it first.
                let mut restored = Vec::new();
                let mut problems = Vec::new();
                for j in [format!("{target_run}-fallback"), target_run.to_string()] {
                    let out = match journal::restore_script(&j).run(t.as_ref()).await {
                        Ok(out) => out,
                        Err(e) => {
                            return Outcome::Failed {
                                error: format!("connection lost while restoring {j}: {e}"),
                            };
                        }
                    };
                    if out.status == crate::transport::ExitStatus::Code(NO_JOURNAL) {
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
        },
    )
    .await
}
