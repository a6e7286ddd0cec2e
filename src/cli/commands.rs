//! One function per subcommand: inputs in, engine call, rendering out. The
//! steps around every engine call are [`Session`]'s.

use std::io::Write;

use super::session::{Session, absolute, select};
use super::{ApplyArgs, Cli, Command, FactsFormat, ReportFormat};
use crate::engine::rollout::{self, RolloutOptions};
use crate::engine::{adhoc, gather, rollback};
use crate::error::{Ended, ParcError};
use crate::events::Outcome;
use crate::report::{self, ReportError, RunsDir};
use crate::ui;

pub async fn dispatch(cli: Cli) -> Result<Ended, ParcError> {
    match &cli.command {
        Command::Lab(cmd) => {
            crate::lab::cli::run(cmd.clone())?;
            Ok(Ended::Done)
        }
        Command::Run {
            pattern,
            parallel,
            max_output,
            command,
        } => {
            let display = ui::Options {
                show_output: true,
                show_changes: false,
            };
            let (s, hosts) = Session::start(&cli, *parallel, display, None, |ctx| {
                select(ctx, &cli, pattern)
            })?;
            let max_output = usize::try_from(max_output.as_u64()).unwrap_or(usize::MAX);
            let (_, summary) =
                adhoc::run(&s.ctx, &s.run_id, hosts, command.join(" "), max_output).await;
            s.finish(&cli).await;
            Ok(Ended::Run(summary))
        }
        Command::Rollback {
            run_id,
            limit,
            parallel,
        } => {
            let display = ui::Options {
                show_output: false,
                show_changes: true,
            };
            let (s, hosts) = Session::start(&cli, *parallel, display, None, |ctx| {
                select(ctx, &cli, limit)
            })?;
            let (_, summary) = rollback::run(&s.ctx, &s.run_id, hosts, run_id.to_string()).await;
            s.finish(&cli).await;
            Ok(Ended::Rollback(summary))
        }
        Command::Inventory {
            list: _,
            extra_vars,
        } => {
            let extra = extra_vars.parse()?;
            let inventory =
                crate::inventory::Inventory::load(&super::session::inventory_path(&cli)?)?;
            let mut text =
                serde_json::to_string_pretty(&inventory.ansible_list(&extra)).map_err(|e| {
                    ParcError::Output {
                        what: "the inventory",
                        source: e.into(),
                    }
                })?;
            text.push('\n');
            print(&text, "the inventory")?;
            Ok(Ended::Done)
        }
        Command::Image(cmd) => super::image::run(&cli, cmd).await,
        Command::Apply(args) => apply(&cli, args, args.check).await,
        Command::Plan(args) => apply(&cli, args, true).await,
        Command::Verify(args) => super::verify::verify(&cli, args).await,
        Command::Report {
            run_id,
            format,
            html,
            host,
        } => show_report(&cli, run_id.as_deref(), *format, *html, host.as_deref()),
        Command::Facts {
            pattern,
            format,
            output,
            post,
            ca_cert,
            post_user,
            parallel,
        } => {
            let glpi = matches!(format, FactsFormat::Glpi);
            if glpi && output.is_none() && post.is_none() {
                return Err(ParcError::GlpiNowhere);
            }
            if !glpi && post.is_some() {
                return Err(ParcError::PostNeedsGlpi);
            }
            // Before any host is asked: a CA file or password that is not
            // there stops the command with nothing gathered.
            let post = match post {
                Some(url) => Some((
                    url.as_str(),
                    crate::facts::glpi_server::Access::new(
                        ca_cert.as_deref(),
                        post_user.as_deref(),
                    )?,
                )),
                None => None,
            };
            let display = ui::Options {
                show_output: false,
                show_changes: false,
            };
            let (s, hosts) = Session::start(&cli, *parallel, display, None, |ctx| {
                select(ctx, &cli, pattern)
            })?;
            let what = if glpi {
                gather::Gather::FactsAndPackages
            } else {
                gather::Gather::Facts
            };
            let (results, summary) = gather::run(&s.ctx, &s.run_id, hosts, what).await;
            s.finish(&cli).await;
            let rows: Vec<(String, crate::facts::Facts)> = results
                .into_iter()
                .filter_map(|(h, o)| match o {
                    Outcome::Facts { facts } => Some((h, *facts)),
                    _ => None,
                })
                .collect();
            let text = match format {
                FactsFormat::Glpi => {
                    return glpi_inventories(&rows, output.as_deref(), post, summary).await;
                }
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
            if !cli.json {
                print(&text, "facts")?;
            }
            Ok(Ended::Run(summary))
        }
    }
}

/// `parc facts --format glpi`: one inventory per gathered host, written to
/// `output`, sent to `post`, or both (the same document each way).
async fn glpi_inventories(
    rows: &[(String, crate::facts::Facts)],
    output: Option<&std::path::Path>,
    post: Option<(&str, crate::facts::glpi_server::Access)>,
    run: crate::events::Summary,
) -> Result<Ended, ParcError> {
    let now = jiff::Timestamp::now();
    let inventories: Vec<(String, serde_json::Value)> = rows
        .iter()
        .map(|(host, facts)| (host.clone(), crate::facts::glpi::render(facts, now)))
        .collect();
    for (host, facts) in rows {
        let Some(packages) = &facts.packages else {
            continue;
        };
        if packages.unreadable {
            eprintln!(
                "{host}: its package database could not be read: its inventory has no \
                 software list this time"
            );
        } else if packages.left_out > 0 {
            eprintln!(
                "{host}: {} installed packages are not in its inventory (over {} entries or {} \
                 of package lines, or unreadable in its package database)",
                packages.left_out,
                crate::facts::MAX_PACKAGES,
                bytesize::ByteSize(crate::facts::PACKAGES_BYTES as u64),
            );
        }
    }
    if let Some(dir) = output {
        write_glpi(dir, &inventories)?;
    }
    let Some((url, access)) = post else {
        return Ok(Ended::Run(run));
    };
    let server = crate::facts::glpi_server::Server::new(url, access);
    // One host after the other: GLPI imports each inventory before it answers.
    let sent = tokio::task::spawn_blocking(move || {
        inventories
            .into_iter()
            .map(|(host, doc)| {
                let result = server.post(&doc);
                (host, result)
            })
            .collect::<Vec<_>>()
    })
    .await
    .expect("posting inventories does not panic");
    let mut not_sent = 0;
    for (host, result) in &sent {
        match result {
            Ok(()) => eprintln!("{host}: inventory sent to GLPI"),
            Err(e) => {
                not_sent += 1;
                eprintln!("{host}: inventory not in GLPI: {e}");
            }
        }
    }
    Ok(Ended::Inventory { run, not_sent })
}

async fn apply(cli: &Cli, args: &ApplyArgs, check: bool) -> Result<Ended, ParcError> {
    let playbook =
        crate::playbook::load(&args.playbook, &cli.allow_outside)?.with_tags(&args.tags.filter());
    let options = RolloutOptions {
        check,
        diff: args.diff,
        extra_vars: args.extra_vars.parse()?,
        break_lock: args.break_lock,
    };
    let display = ui::Options {
        show_output: false,
        show_changes: check || args.diff || cli.verbose > 0,
    };
    let (s, play_hosts) = Session::start(cli, args.parallel, display, Some(&playbook), |ctx| {
        let limit = args
            .limit
            .as_deref()
            .map(|p| select(ctx, cli, p))
            .transpose()?;
        Ok(rollout::select_hosts(ctx, &playbook, limit.as_deref())?)
    })?;
    let summary = rollout::run(&s.ctx, &s.run_id, &playbook, play_hosts, &options).await;
    s.finish(cli).await;
    Ok(Ended::Run(summary))
}

/// One GLPI inventory per host, `DIR/HOST.json`, each written whole then
/// renamed: an import job reading the directory never takes half a file.
fn write_glpi(
    dir: &std::path::Path,
    inventories: &[(String, serde_json::Value)],
) -> Result<(), ParcError> {
    let failed = |path: std::path::PathBuf| move |source| ParcError::WriteFile { path, source };
    std::fs::create_dir_all(dir).map_err(failed(dir.to_path_buf()))?;
    for (host, doc) in inventories {
        // Inventory names are the files' names: nothing that leaves DIR.
        let name: String = host
            .chars()
            .map(|c| if c == '/' || c.is_control() { '_' } else { c })
            .collect();
        let path = dir.join(format!("{}.json", name.trim_start_matches('.')));
        let text = serde_json::to_string_pretty(doc).expect("JSON values serialize") + "\n";
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(failed(path.clone()))?;
        std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(failed(path.clone()))?;
        tmp.persist(&path)
            .map_err(|e| failed(path.clone())(e.error))?;
    }
    Ok(())
}

/// `parc report`: a past run, read back from its report.
fn show_report(
    cli: &Cli,
    run_id: Option<&str>,
    format: ReportFormat,
    html: bool,
    host: Option<&str>,
) -> Result<Ended, ParcError> {
    let dir = RunsDir::new(&cli.runs_dir).find(run_id)?;
    let text = if let Some(host) = host {
        let report = RunsDir::load(&dir)?;
        let unknown = || ReportError::UnknownHost {
            host: host.to_string(),
            run_id: report.run_id.clone(),
            hosts: report.targets.clone(),
        };
        match format {
            ReportFormat::Text => {
                report::render_host_recap(&report, host, &jiff::tz::TimeZone::system())
                    .ok_or_else(unknown)?
            }
            ReportFormat::Json => {
                let records: Vec<_> = report.hosts.iter().filter(|h| h.host == host).collect();
                if records.is_empty() {
                    return Err(unknown().into());
                }
                serde_json::to_string_pretty(&records).map_err(|e| ParcError::Output {
                    what: "the report",
                    source: e.into(),
                })? + "\n"
            }
        }
    } else if html {
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
            ReportFormat::Json => RunsDir::load_json(&dir)?,
            ReportFormat::Text => {
                report::render_recap(&RunsDir::load(&dir)?, &jiff::tz::TimeZone::system())
            }
        }
    };
    print(&text, "the report")?;
    Ok(Ended::Done)
}

/// A command's result on stdout. Tables and CSV carry what hosts reported
/// (hostnames, serials, test output): on a terminal their control
/// characters are escaped; piped, the data stays as it is.
pub(super) fn print(text: &str, what: &'static str) -> Result<(), ParcError> {
    let mut stdout = std::io::stdout();
    let text = if std::io::IsTerminal::is_terminal(&stdout) {
        std::borrow::Cow::Owned(crate::ui::lines::escape_controls(text))
    } else {
        std::borrow::Cow::Borrowed(text)
    };
    stdout
        .write_all(text.as_bytes())
        .map_err(|source| ParcError::Output { what, source })
}
