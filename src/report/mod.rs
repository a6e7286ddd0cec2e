//! Run reports: the intervention record of every run.
//!
//! A technician must be able to say, weeks later, who changed what on which
//! workstation and how it ended, and attach that to a ticket. So every run
//! leaves `runs/<run id>/report.json` (for tools and `parc report`) and a
//! self-contained `report.html` (for people, readable offline). Those two are
//! rewritten at checkpoints (start, plays, batches, aborts, end); between
//! them each host's record is appended to `hosts.jsonl` as it ends, and read
//! back into the report of a run that never finished.
//!
//! The writer is just another consumer of engine events, next to the display:
//! the engine never knows a report exists. Host states and outcomes are kept as
//! their serialized form, so states and outcome fields the engine adds later
//! (degraded, rolled back, verification results) reach the report untouched.

mod html;
mod meta;
mod metrics;
mod recap;
mod record;
mod store;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinHandle;

use crate::events::Event;
use crate::location::Location;

pub use meta::{Operator, controller_hostname, redact_command_line};
pub use metrics::update as update_metrics;
pub use recap::{render as render_recap, render_host as render_host_recap};
pub use record::RunMeta;
pub use store::{PastState, REPORT_HTML, Recorded, ReportWriter, RunsDir};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(
        "cannot create {path}: {source}; the run was not started, because it would leave no record (choose another place with --runs-dir or PARC_RUNS_DIR)"
    )]
    CreateRunDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot write the run report {path}: {source}; the hosts were worked on, but this run has no complete record"
    )]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{location}: not a parc run report ({message}); this run cannot be shown, other runs are not affected"
    )]
    Parse { location: Location, message: String },
    #[error(
        "no run reports in {dir}: every apply, plan, run and facts writes one there (use --runs-dir or PARC_RUNS_DIR if they are kept elsewhere)"
    )]
    NoRuns { dir: PathBuf },
    #[error("no run `{id}` in {dir}; the most recent runs are: {}", recent.join(", "))]
    UnknownRun {
        id: String,
        dir: PathBuf,
        recent: Vec<String>,
    },
    #[error(
        "run {run_id} has no result for host `{host}`; it set out to work on: {}",
        hosts.join(", ")
    )]
    UnknownHost {
        host: String,
        run_id: String,
        hosts: Vec<String>,
    },
    #[error("run id `{id}` matches several runs ({}); give more of it", matches.join(", "))]
    AmbiguousRun { id: String, matches: Vec<String> },
}

/// Record every event of a run until the engine drops its sender, then write
/// the final report.
pub fn spawn(
    mut writer: ReportWriter,
    mut rx: UnboundedReceiver<Event>,
) -> JoinHandle<Result<Recorded, ReportError>> {
    tokio::spawn(async move {
        // Checkpoints during the run write through blocking std::fs: small files,
        // a handful of times per run, on a runtime thread no display depends on.
        while let Some(event) = rx.recv().await {
            if let Err(e) = writer.event(&event, jiff::Timestamp::now()) {
                // The final write may still succeed; warn now in case it does not.
                tracing::warn!("{e}");
            }
        }
        writer.finish()
    })
}
