//! Command line: parse, load inputs, hand over to the engine, render the result.
//!
//! No orchestration lives here: each subcommand is a few lines that call into
//! `engine` and `ui`. Errors are rendered once, in [`main`], with their exit code.

mod commands;
mod image;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::error::{ParcError, exit};
use crate::transport::known_hosts::HostKeyPolicy;

#[derive(Debug, Parser)]
#[command(
    name = "parc",
    version,
    about = "Deploy, verify and image fleets of workstations over SSH, agentless",
    propagate_version = true
)]
pub struct Cli {
    /// Inventory file (parc or Ansible YAML layout). Default: $PARC_INVENTORY,
    /// then ./inventory.yml, then ./lab/inventory.yml.
    #[arg(short, long, global = true, env = "PARC_INVENTORY")]
    inventory: Option<PathBuf>,

    /// More logging (-v: info, -vv: debug, -vvv: trace); logs go to stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    /// Print one JSON event per line on stdout instead of human output.
    #[arg(long, global = true)]
    json: bool,

    /// Override every host's host-key policy. `off` disables verification and
    /// is only ever used when given here explicitly.
    #[arg(long, global = true, value_enum)]
    host_key_policy: Option<HostKeyPolicy>,

    /// Seconds to wait for a host to accept the connection and authenticate.
    #[arg(long, global = true, default_value_t = 10)]
    connect_timeout: u64,

    /// Ask for the sudo password of hosts with `become` (else $PARC_BECOME_PASSWORD,
    /// else sudo must not need one).
    #[arg(long, global = true)]
    ask_become_pass: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a shell command on every host matching PATTERN, in parallel.
    Run {
        /// Host pattern: all, group, host, glob (ws-*), union a,b, exclusion !x, intersection &y.
        pattern: String,
        /// Hosts worked on at once.
        #[arg(long, default_value_t = 64)]
        parallel: usize,
        /// The command (after `--`), run with sh -c on each host.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Inventory the hardware and OS of every host matching PATTERN (one exec per host).
    Facts {
        pattern: String,
        #[arg(long, value_enum, default_value_t = FactsFormat::Table)]
        format: FactsFormat,
        #[arg(long, default_value_t = 64)]
        parallel: usize,
    },
    /// Converge hosts to the profiles of a playbook (batched, in parallel).
    Apply(ApplyArgs),
    /// What `apply` would change, host by host; changes nothing (= apply --check).
    Plan(ApplyArgs),
    /// Disk images: build and verify manifests, deploy to many hosts, capture.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Sandboxed workstations on this machine (real sshd in namespaces) for trying parc.
    #[command(subcommand)]
    Lab(crate::lab::cli::LabCommand),
}

#[derive(Debug, clap::Args)]
struct ApplyArgs {
    /// Playbook file (a YAML list of plays).
    playbook: PathBuf,
    /// Only hosts also matching this pattern.
    #[arg(long)]
    limit: Option<String>,
    /// Extra variable, highest precedence (repeatable); VALUE is read as YAML.
    #[arg(short = 'e', long = "extra-var", value_name = "KEY=VALUE")]
    extra_vars: Vec<String>,
    /// Hosts worked on at once, unless the play sets `parallel`.
    #[arg(long, default_value_t = 64)]
    parallel: usize,
    /// Change nothing: plan only (what `parc plan` does).
    #[arg(long)]
    check: bool,
    /// Show unified diffs of text files (secrets redacted).
    #[arg(long)]
    diff: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FactsFormat {
    Table,
    Json,
    Csv,
}

/// Entry point of the `parc` binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("parc: cannot start the async runtime: {e}");
            return ExitCode::from(exit::INTERNAL);
        }
    };
    match runtime.block_on(commands::dispatch(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            report_error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

fn report_error(e: &ParcError) {
    eprintln!("parc: error: {e}");
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "parc=info",
        2 => "parc=debug",
        _ => "parc=trace,russh=debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PARC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
