//! `parc run`: one shell command on every selected host.

use std::sync::Arc;

use super::events::{Outcome, Summary};
use super::fleet::{self, FleetContext};
use crate::transport::Transport;

pub async fn run(
    ctx: &FleetContext,
    run_id: &str,
    hosts: Vec<String>,
    command: String,
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
                match t.exec_capture(&command, b"").await {
                    Ok(out) => Outcome::Command {
                        status: out.status,
                        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
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
