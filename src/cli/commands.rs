//! One function per subcommand: inputs in, engine call, rendering out.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{ApplyArgs, Cli, Command, FactsFormat};
use crate::engine::connect::ConnectOptions;
use crate::engine::events::{Events, Outcome};
use crate::engine::fleet::FleetContext;
use crate::engine::rollout::{self, RolloutOptions};
use crate::engine::{adhoc, gather, new_run_id};
use crate::error::{ParcError, exit_for};
use crate::inventory::{Inventory, Vars};
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
            let (ctx, monitor) = prepare(&cli, *parallel, true)?;
            let hosts = select(&ctx, pattern)?;
            let (_, summary) = adhoc::run(&ctx, &new_run_id(), hosts, command.join(" ")).await;
            finish(ctx, monitor).await;
            Ok(exit_for(&summary))
        }
        Command::Image(cmd) => super::image::run(&cli, cmd).await,
        Command::Apply(args) => apply(&cli, args, args.check).await,
        Command::Plan(args) => apply(&cli, args, true).await,
        Command::Facts {
            pattern,
            format,
            parallel,
        } => {
            let (ctx, monitor) = prepare(&cli, *parallel, false)?;
            let hosts = select(&ctx, pattern)?;
            let (results, summary) = gather::run(&ctx, &new_run_id(), hosts).await;
            finish(ctx, monitor).await;
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
                std::io::stdout()
                    .write_all(text.as_bytes())
                    .map_err(|source| ParcError::Output {
                        what: "facts",
                        source,
                    })?;
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
    };
    let (ctx, monitor) = prepare(cli, args.parallel, false)?;
    let play_hosts = rollout::select_hosts(&ctx, &playbook, options.limit.as_deref())?;
    let (_, summary) = rollout::run(&ctx, &new_run_id(), &playbook, play_hosts, &options).await;
    finish(ctx, monitor).await;
    Ok(exit_for(&summary))
}

/// `-e key=value`: the value is YAML, so `-e port=2222` is a number and
/// `-e debug=true` a boolean, as in Ansible.
fn parse_extra_vars(items: &[String]) -> Result<Vars, ParcError> {
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

pub(super) fn select(ctx: &FleetContext, pattern: &str) -> Result<Vec<String>, ParcError> {
    Ok(ctx
        .inventory
        .select(pattern)?
        .into_iter()
        .map(|h| h.name.clone())
        .collect())
}

/// Load the inventory and start the display.
pub(super) fn prepare(
    cli: &Cli,
    parallel: usize,
    show_output: bool,
) -> Result<(FleetContext, Monitor), ParcError> {
    let inventory = Inventory::load(&inventory_path(cli)?)?;
    let (events, rx) = Events::channel();
    let monitor = ui::spawn(ui::Mode::detect(cli.json), ui::Options { show_output }, rx);
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
    Ok((ctx, monitor))
}

/// Let the monitor drain every event before the command prints its result.
pub(super) async fn finish(ctx: FleetContext, monitor: Monitor) {
    drop(ctx);
    let _ = monitor.await;
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
