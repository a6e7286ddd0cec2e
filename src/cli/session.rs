//! What every fleet command does around its engine call: load the inventory,
//! start the display, pick the hosts, open the run's report; at the end, let
//! the display and the report drain. One place, so that no command forgets a
//! step or does them in another order.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

use super::Cli;
use crate::engine::connect::ConnectOptions;
use crate::engine::fleet::FleetContext;
use crate::engine::new_run_id;
use crate::error::ParcError;
use crate::events::{Event, Events};
use crate::inventory::Inventory;
use crate::playbook::Playbook;
use crate::report::{self, ReportError, ReportWriter, RunMeta, RunsDir};
use crate::ui;

/// One fleet command's run, between [`Session::start`] and [`Session::finish`].
pub(super) struct Session {
    pub ctx: FleetContext,
    pub run_id: String,
    monitor: Monitor,
    report: ReportTask,
}

impl Session {
    /// `hosts` picks the hosts from the loaded inventory before the run's
    /// report is opened, so a bad pattern leaves no empty run behind.
    /// `playbook` names the secrets to redact from the recorded command line.
    pub fn start<H>(
        cli: &Cli,
        parallel: usize,
        display: ui::Options,
        playbook: Option<&Playbook>,
        hosts: impl FnOnce(&FleetContext) -> Result<H, ParcError>,
    ) -> Result<(Session, H), ParcError> {
        let (ctx, monitor, report_rx) = prepare(cli, parallel, display)?;
        let hosts = hosts(&ctx)?;
        let (run_id, report) = record(cli, report_rx, playbook)?;
        let session = Session {
            ctx,
            run_id,
            monitor,
            report,
        };
        Ok((session, hosts))
    }

    /// Let the display and the report drain every event before the command
    /// prints its result. A report that could not be written does not change
    /// the exit code, which says how the hosts ended, but is said loudly.
    pub async fn finish(self, cli: &Cli) {
        drop(self.ctx);
        let _ = self.monitor.await;
        match self.report.await {
            Ok(Ok(recorded)) => {
                if !cli.json {
                    eprintln!("report: {}", recorded.html.display());
                }
                // Like the report, metrics say how the hosts ended; failing to
                // write them does not change that.
                if let Some(path) = &cli.metrics
                    && let Err(e) = report::update_metrics(path, &recorded.report)
                {
                    eprintln!("parc: warning: {e}");
                }
            }
            Ok(Err(e)) => eprintln!("parc: warning: {e}"),
            Err(e) => eprintln!("parc: warning: the run report was not finished: {e}"),
        }
    }
}

type Monitor = tokio::task::JoinHandle<()>;
type ReportTask = tokio::task::JoinHandle<Result<report::Recorded, ReportError>>;

/// The hosts `pattern` names on the command line, where `@failed` and the
/// like read the runs directory.
pub(super) fn select(
    ctx: &FleetContext,
    cli: &Cli,
    pattern: &str,
) -> Result<Vec<String>, ParcError> {
    Ok(ctx
        .inventory
        .select_retrying(pattern, &RunsDir::new(&cli.runs_dir))?
        .into_iter()
        .map(|h| h.name.clone())
        .collect())
}

/// Load the inventory and start the display. The second receiver gets the
/// same events for the run report, started by [`record`] once the hosts are
/// known.
fn prepare(
    cli: &Cli,
    parallel: usize,
    display: ui::Options,
) -> Result<(FleetContext, Monitor, UnboundedReceiver<Event>), ParcError> {
    let inventory = Inventory::load(&inventory_path(cli)?)?;
    let (events, [display_rx, report_rx]) = Events::fan_out();
    let monitor = ui::spawn(ui::Mode::detect(cli.json), display, display_rx);
    let options = ConnectOptions {
        host_key_policy: cli.host_key_policy,
        connect_timeout: Duration::from_secs(cli.connect_timeout),
        read_timeout: (cli.read_timeout > 0).then(|| Duration::from_secs(cli.read_timeout)),
        become_password: become_password(cli),
    };
    let ctx = FleetContext {
        inventory: Arc::new(inventory),
        options,
        events,
        parallel,
    };
    Ok((ctx, monitor, report_rx))
}

/// Start the run's report: its directory is created here, before any host
/// is contacted, and claims the run's id.
fn record(
    cli: &Cli,
    rx: UnboundedReceiver<Event>,
    playbook: Option<&Playbook>,
) -> Result<(String, ReportTask), ParcError> {
    let secret_names: Vec<String> = playbook
        .map(|pb| {
            pb.plays
                .iter()
                .flat_map(|p| p.spec.secret_vars.iter().chain(&p.profile.secret_vars))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let meta = RunMeta {
        command_line: report::redact_command_line(&args, &secret_names),
        operator: report::Operator::current(),
        controller: report::controller_hostname(),
        inventory: inventory_path(cli).ok().map(|p| absolute(&p)),
        playbook: playbook.map(|pb| absolute(&pb.path)),
        allow_outside: cli.allow_outside.iter().map(|d| absolute(d)).collect(),
    };
    let writer = ReportWriter::create(&RunsDir::new(&cli.runs_dir), new_run_id, meta)?;
    Ok((writer.run_id().to_string(), report::spawn(writer, rx)))
}

/// Paths in the record must still mean something when read from elsewhere.
pub(super) fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

pub(super) fn inventory_path(cli: &Cli) -> Result<PathBuf, ParcError> {
    if let Some(p) = &cli.inventory {
        return Ok(p.clone());
    }
    ["inventory.yml", "lab/inventory.yml"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .ok_or(ParcError::NoInventory)
}

fn become_password(cli: &Cli) -> Option<String> {
    if let Ok(p) = std::env::var("PARC_BECOME_PASSWORD") {
        return Some(p);
    }
    if cli.ask_become_pass {
        // No echo: the password must not land in a terminal scrollback or a recording.
        return rpassword::prompt_password("sudo password: ").ok();
    }
    None
}
