//! `parc run`: one shell command on every selected host.

use std::sync::Arc;

use super::fleet::{self, FleetContext};
use crate::events::{Outcome, Summary};
use crate::transport::Transport;

/// Each host's output is kept up to `max_output` bytes per stream: a host
/// printing gigabytes costs the controller that much memory, not gigabytes.
pub async fn run(
    ctx: &FleetContext,
    run_id: &str,
    hosts: Vec<String>,
    command: String,
    max_output: usize,
) -> (Vec<(String, Outcome)>, Summary) {
    let command = Arc::new(command);
    let events = ctx.events.clone();
    fleet::run(
        ctx,
        run_id,
        "run",
        hosts,
        move |host, t: Arc<dyn Transport>| {
            let command = command.clone();
            let events = events.clone();
            async move {
                events.phase(&host, "running");
                match t.exec_capped(&command, max_output).await {
                    Ok((status, stdout, stderr)) => Outcome::Command {
                        status,
                        stdout: String::from_utf8_lossy(&stdout.bytes).into_owned(),
                        stderr: String::from_utf8_lossy(&stderr.bytes).into_owned(),
                        stdout_cut_from: stdout.cut_from(),
                        stderr_cut_from: stderr.cut_from(),
                    },
                    Err(e) => Outcome::Failed {
                        error: format!("connection lost while running the command: {e}"),
                    },
                }
            }
        },
    )
    .await
}
