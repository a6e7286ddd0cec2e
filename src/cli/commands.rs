//! One function per subcommand: inputs in, engine call, rendering out.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;

use super::{ApplyArgs, Cli, Command, FactsFormat, ReportFormat};
use crate::engine::connect::ConnectOptions;
use crate::engine::events::{Event, Events, Outcome};
use crate::engine::fleet::FleetContext;
use crate::engine::rollout::{self, RolloutOptions};
use crate::engine::{adhoc, gather, new_run_id, rollback};
use crate::error::{ParcError, exit, exit_for};
use crate::inventory::{Inventory, Vars};
use crate::playbook::Playbook;
use crate::report::{self, ReportError, ReportWriter, RunMeta, RunsDir};
use crate::ui;

pub async fn dispatch(cli: Cli) -> Result<u8, ParcError> {
    match &cli.command {
        Command::Lab(cmd) => {
            crate::lab::cli::run(cmd.clone())?;
            Ok(0)
        }
        Command::Run {
            pattern,
            parallel,
            command,
        } => {
            let (ctx, monitor, report_rx) = prepare(
                &cli,
                *parallel,
                ui::Options {
                    show_output: true,
                    show_changes: false,
                },
            )?;
            let hosts = select(&ctx, pattern)?;
            let run_id = new_run_id();
            let report = record(&cli, report_rx, &run_id, None)?;
            let (_, summary) = adhoc::run(&ctx, &run_id, hosts, command.join(" ")).await;
            finish(&cli, ctx, monitor, report).await;
            Ok(exit_for(&summary))
        }
        Command::Rollback {
            run_id,
            limit,
            parallel,
        } => {
            let (ctx, monitor, report_rx) = prepare(
                &cli,
                *parallel,
                ui::Options {
                    show_output: false,
                    show_changes: true,
                },
            )?;
            let hosts = select(&ctx, limit)?;
            let this_run = new_run_id();
            let report = record(&cli, report_rx, &this_run, None)?;
            let (_, summary) = rollback::run(&ctx, &this_run, hosts, run_id.clone()).await;
            finish(&cli, ctx, monitor, report).await;
            Ok(if summary.failed + summary.unreachable > 0 {
                exit_for(&summary)
            } else if summary.rolled_back == 0 {
                // No host had that journal: most likely a mistyped run id.
                exit::HOSTS_FAILED
            } else {
                exit::OK
            })
        }
        Command::Image(cmd) => super::image::run(&cli, cmd).await,
        Command::Apply(args) => apply(&cli, args, args.check).await,
        Command::Plan(args) => apply(&cli, args, true).await,
        Command::Verify(args) => super::verify::verify(&cli, args).await,
        Command::Report {
            run_id,
            format,
            html,
        } => show_report(&cli, run_id.as_deref(), *format, *html),
        Command::Facts {
            pattern,
            format,
            parallel,
        } => {
            let (ctx, monitor, report_rx) = prepare(
                &cli,
                *parallel,
                ui::Options {
                    show_output: false,
                    show_changes: false,
                },
            )?;
            let hosts = select(&ctx, pattern)?;
            let run_id = new_run_id();
            let report = record(&cli, report_rx, &run_id, None)?;
            let (results, summary) = gather::run(&ctx, &run_id, hosts).await;
            finish(&cli, ctx, monitor, report).await;
            if !cli.json {
                let rows: Vec<(String, crate::facts::Facts)> = results
                    .into_iter()
                    .filter_map(|(h, o)| match o {
                        Outcome::Facts { facts } => Some((h, *facts)),
                        _ => None,
                    })
                    .collect();
                let text = match format {
                    FactsFormat::Table => crate::facts::render_table(&rows),
                    FactsFormat::Csv => crate::facts::render_csv(&rows),
                    FactsFormat::Json => {
                        let records: Vec<_> = rows
                            .iter()
                            .map(|(h, f)| serde_json::json!({"host": h, "facts": f}))
                            .collect();
                        serde_json::to_string_pretty(&records).expect("facts serialize") + "\n"
                    }
                };
                print(&text, "facts")?;
            }
            Ok(exit_for(&summary))
        }
    }
}

async fn apply(cli: &Cli, args: &ApplyArgs, check: bool) -> Result<u8, ParcError> {
    let playbook = crate::playbook::load(&args.playbook)?;
    let options = RolloutOptions {
        limit: args.limit.clone(),
        check,
        diff: args.diff,
        extra_vars: parse_extra_vars(&args.extra_vars)?,
        break_lock: args.break_lock,
    };
    let details = check || args.diff || cli.verbose > 0;
    let (ctx, monitor, report_rx) = prepare(
        cli,
        args.parallel,
        ui::Options {
            show_output: false,
            show_changes: details,
        },
    )?;
    let play_hosts = rollout::select_hosts(&ctx, &playbook, options.limit.as_deref())?;
    let run_id = new_run_id();
    let report = record(cli, report_rx, &run_id, Some(&playbook))?;
    let (_, summary) = rollout::run(&ctx, &run_id, &playbook, play_hosts, &options).await;
    finish(cli, ctx, monitor, report).await;
    Ok(exit_for(&summary))
}

/// `parc report`: a past run, read back from its report.
fn show_report(
    cli: &Cli,
    run_id: Option<&str>,
    format: ReportFormat,
    html: bool,
) -> Result<u8, ParcError> {
    let dir = RunsDir::new(&cli.runs_dir).find(run_id)?;
    let text = if html {
        // Absolute: it is pasted into tickets and browsers, not used from here.
        let path = absolute(&dir.join(report::REPORT_HTML));
        if !path.is_file() {
            let source = std::io::Error::from(std::io::ErrorKind::NotFound);
            return Err(ReportError::Read { path, source }.into());
        }
        format!("{}\n", path.display())
    } else {
        match format {
            // As written: fields this parc does not know survive.
            ReportFormat::Json => {
                let path = dir.join(report::REPORT_JSON);
                std::fs::read_to_string(&path)
                    .map_err(|source| ReportError::Read { path, source })?
            }
            ReportFormat::Text => {
                report::render_recap(&RunsDir::load(&dir)?, &jiff::tz::TimeZone::system())
            }
        }
    };
    print(&text, "the report")?;
    Ok(exit::OK)
}

fn print(text: &str, what: &'static str) -> Result<(), ParcError> {
    std::io::stdout()
        .write_all(text.as_bytes())
        .map_err(|source| ParcError::Output { what, source })
}

/// `-e key=value`: the value is YAML, so `-e port=2222` is a number and
/// `-e debug=true` a boolean, as in Ansible.
pub(super) fn parse_extra_vars(items: &[String]) -> Result<Vars, ParcError> {
    let mut vars = Vars::new();
    for item in items {
        let Some((k, v)) = item.split_once('=') else {
            return Err(ParcError::ExtraVar { item: item.clone() });
        };
        let value: serde_json::Value =
            serde_norway::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.to_string()));
        vars.insert(k.trim().to_string(), value);
    }
    Ok(vars)
}

pub(super) type Monitor = tokio::task::JoinHandle<()>;
pub(super) type ReportTask = tokio::task::JoinHandle<Result<PathBuf, ReportError>>;

pub(super) fn select(ctx: &FleetContext, pattern: &str) -> Result<Vec<String>, ParcError> {
    Ok(ctx
        .inventory
        .select(pattern)?
        .into_iter()
        .map(|h| h.name.clone())
        .collect())
}

/// Load the inventory and start the display. The second receiver gets the
/// same events for the run report, started by [`record`] once the hosts are
/// known, so a bad pattern leaves no empty run behind.
/// Load the inventory and start the display.
pub(super) fn prepare(
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
/// is contacted.
pub(super) fn record(
    cli: &Cli,
    rx: UnboundedReceiver<Event>,
    run_id: &str,
    playbook: Option<&Playbook>,
) -> Result<ReportTask, ParcError> {
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
    };
    let writer = ReportWriter::create(&RunsDir::new(&cli.runs_dir), run_id, meta)?;
    Ok(report::spawn(writer, rx))
}

/// Paths in the record must still mean something when read from elsewhere.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Let the display and the report drain every event before the command
/// prints its result. A report that could not be written does not change
/// the exit code, which says how the hosts ended, but is said loudly.
pub(super) async fn finish(cli: &Cli, ctx: FleetContext, monitor: Monitor, report: ReportTask) {
    drop(ctx);
    let _ = monitor.await;
    match report.await {
        Ok(Ok(html)) if !cli.json => eprintln!("report: {}", html.display()),
        Ok(Ok(_)) => {}
        Ok(Err(e)) => eprintln!("parc: warning: {e}"),
        Err(e) => eprintln!("parc: warning: the run report was not finished: {e}"),
    }
}

fn inventory_path(cli: &Cli) -> Result<PathBuf, ParcError> {
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
