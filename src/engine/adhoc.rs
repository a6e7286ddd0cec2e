//! `parc run`: one shell command on every selected host.

use std::sync::Arc;

use super::fleet::{self, FleetContext};
use super::output::{HostBytes, OutputStream, Streamed};
use crate::events::{Outcome, Summary};
use crate::transport::Transport;

/// Each host's output is sent on as it arrives and kept up to `max_output`
/// bytes per stream: a host printing gigabytes costs the controller that much
/// memory, not gigabytes.
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
                let mut out = Streamed::new(&events, &host, OutputStream::Stdout, max_output);
                let mut err = Streamed::new(&events, &host, OutputStream::Stderr, max_output);
                let status = t.exec(&command, &mut &b""[..], &mut out, &mut err).await;
                let (stdout, stderr) = (out.finish(), err.finish());
                match status {
                    Ok(status) => Outcome::Command {
                        status,
                        stdout_cut_from: stdout.cut_from(),
                        stderr_cut_from: stderr.cut_from(),
                        stdout: HostBytes(stdout.bytes),
                        stderr: HostBytes(stderr.bytes),
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
