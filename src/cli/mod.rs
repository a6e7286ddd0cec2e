//! Command line: parse, load inputs, hand over to the engine, render the result.
//!
//! No orchestration lives here: each subcommand is a few lines that call into
//! `engine` and `ui`. Errors are rendered once, in [`main`], with their exit code.

mod commands;
mod image;
mod session;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::error::{Exit, ParcError, exit_code};
use crate::transport::known_hosts::HostKeyPolicy;

#[derive(Debug, Parser)]
#[command(
    name = "parc",
    version,
    about = "Deploy, verify and image fleets of workstations over SSH, agentless",
    propagate_version = true,
    after_long_help = exit_codes_help()
)]
pub struct Cli {
    /// Inventory file (parc's YAML layout, or Ansible's YAML or INI). Default: $PARC_INVENTORY,
    /// then ./inventory.yml, then ./lab/inventory.yml.
    #[arg(short, long, global = true, env = "PARC_INVENTORY")]
    inventory: Option<PathBuf>,

    /// More logging (-v: info, -vv: debug, -vvv: trace); logs go to stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    /// Print one JSON event per line on stdout instead of human output.
    #[arg(long, global = true)]
    json: bool,

    /// Override every host's host-key policy (else the inventory's, else ssh
    /// config's `StrictHostKeyChecking`). `off` accepts unknown and changed keys
    /// with a warning; revoked keys are refused under every policy.
    #[arg(long, global = true, value_enum)]
    host_key_policy: Option<HostKeyPolicy>,

    /// Seconds to wait for a host to accept the connection and authenticate.
    #[arg(long, global = true, default_value_t = 10)]
    connect_timeout: u64,

    /// Seconds a script that only reads a host (its facts, the probe, the
    /// verification tests, plus their own `timeout:`s) may run before parc
    /// gives up on it: the host fails, parc stops what the script left
    /// running there, and the rollout goes on. 0: wait for ever.
    #[arg(long, global = true, default_value_t = crate::engine::connect::DEFAULT_READ_TIMEOUT)]
    read_timeout: u64,

    /// Ask for the sudo password of hosts with `become` (else $PARC_BECOME_PASSWORD,
    /// else sudo must not need one).
    #[arg(long, global = true)]
    ask_become_pass: bool,

    /// Where each run leaves its report (runs/<run id>/report.json and report.html).
    #[arg(long, global = true, env = "PARC_RUNS_DIR", default_value = "runs")]
    runs_dir: PathBuf,

    /// Also keep FILE up to date for Prometheus' node_exporter textfile
    /// collector (name it `*.prom` in its directory): each host's end state,
    /// last run and last success times, changed and failed counts, duration,
    /// per action. Written whole and renamed over the old one.
    #[arg(long, global = true, env = "PARC_METRICS", value_name = "FILE")]
    metrics: Option<PathBuf>,

    /// Let profiles, templates and their files be read from DIR although it
    /// lies outside the profile tree (repeatable). Without it, a `src`,
    /// `include`, template or symlink that resolves out of the tree is refused.
    /// Recorded in the run's report.
    #[arg(long, global = true, value_name = "DIR")]
    allow_outside: Vec<PathBuf>,

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
        /// Output kept per host and stream (`64KiB`, `1MiB`, ...); the rest is
        /// read, counted and dropped, and the output shown as cut.
        #[arg(long, value_name = "SIZE", default_value = "1MiB")]
        max_output: bytesize::ByteSize,
        /// The command (after `--`), run with sh -c on each host.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Inventory the hardware and OS of every host matching PATTERN (one exec per host).
    Facts {
        pattern: String,
        #[arg(long, value_enum, default_value_t = FactsFormat::Table)]
        format: FactsFormat,
        /// With --format glpi: the directory to write one HOST.json per host to.
        #[arg(short, long, value_name = "DIR")]
        output: Option<PathBuf>,
        /// With --format glpi: send each host's inventory to this GLPI server
        /// URL as glpi-agent does (e.g. https://glpi.example/front/inventory.php).
        #[arg(long, value_name = "URL", value_parser = crate::facts::glpi_server::check_url)]
        post: Option<String>,
        /// With --post: trust only the CA certificates of this PEM file for
        /// GLPI's HTTPS certificate (a company CA), as glpi-agent's
        /// --ca-cert-file does. Default: the Mozilla roots built into parc.
        #[arg(long, value_name = "FILE", requires = "post")]
        ca_cert: Option<PathBuf>,
        /// With --post: authenticate to GLPI as USER (HTTP basic, as GLPI's
        /// inventory settings may ask), the password read from
        /// $PARC_GLPI_PASSWORD: never from the command line, which every
        /// local user can read.
        #[arg(long, value_name = "USER", requires = "post")]
        post_user: Option<String>,
        #[arg(long, default_value_t = 64)]
        parallel: usize,
    },
    /// Converge hosts to the profiles of a playbook (batched, in parallel).
    Apply(ApplyArgs),
    /// What `apply` would change, host by host; changes nothing (= apply --check).
    Plan(ApplyArgs),
    /// Check hosts against the `verify:` tests of a playbook's or a profile's
    /// profiles (changes nothing; exit 3 when a test fails).
    Verify(VerifyArgs),
    /// Restore hosts from the journals a run left on them (also after a crash).
    Rollback {
        /// The run id (shown at the start of every run, and in reports).
        run_id: crate::engine::RunId,
        /// Only these hosts (default: every host of the inventory).
        #[arg(long, default_value = "all")]
        limit: String,
        #[arg(long, default_value_t = 64)]
        parallel: usize,
    },
    /// Show a past run from its report: the latest one, or RUN_ID.
    Report {
        /// Run id, or a unique start or end of one (such as its last 4 characters).
        run_id: Option<String>,
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
        /// Print the path of the run's report.html (to open or attach to a ticket).
        #[arg(long, conflicts_with = "format")]
        html: bool,
        /// One host in full: every resource with its diff and output, every
        /// test (with --format json: its records).
        #[arg(long, value_name = "NAME", conflicts_with = "html")]
        host: Option<String>,
    },
    /// Disk images: build and verify manifests, deploy to many hosts, capture.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// The inventory as parc resolves it: `--list` prints the JSON
    /// `ansible-inventory --list` prints (groups, hosts, merged variables).
    Inventory {
        /// Print every group and host, with each host's merged variables.
        #[arg(long, required = true)]
        list: bool,
        /// Listed in every host's variables, over its own, as
        /// `ansible-inventory -e` lists them.
        #[command(flatten)]
        extra_vars: ExtraVarArgs,
    },
    /// Sandboxed workstations on this machine (real sshd in namespaces) for trying parc.
    #[command(subcommand)]
    Lab(crate::lab::cli::LabCommand),
}

/// The `-e` option, as `apply`, `plan`, `verify` and `inventory` take it.
#[derive(Debug, clap::Args)]
struct ExtraVarArgs {
    /// Extra variables, highest precedence (repeatable), as in Ansible:
    /// `KEY=VALUE` (several, space-separated; values are strings), a YAML or
    /// JSON mapping for typed values (`-e '{"port": 2222}'`), or `@FILE`.
    #[arg(
        short = 'e',
        long = "extra-vars",
        visible_alias = "extra-var",
        value_name = "VARS"
    )]
    items: Vec<String>,
}

impl ExtraVarArgs {
    fn parse(&self) -> Result<crate::inventory::Vars, ParcError> {
        Ok(crate::inventory::extra_vars::parse(&self.items)?)
    }
}

#[derive(Debug, clap::Args)]
struct ApplyArgs {
    /// Playbook file (a YAML list of plays).
    playbook: PathBuf,
    /// Only hosts also matching this pattern.
    #[arg(long)]
    limit: Option<String>,
    #[command(flatten)]
    extra_vars: ExtraVarArgs,
    /// Hosts worked on at once, unless the play sets `parallel`.
    #[arg(long, default_value_t = 64)]
    parallel: usize,
    /// Change nothing: plan only (what `parc plan` does).
    #[arg(long)]
    check: bool,
    /// Show unified diffs of text files (secrets redacted).
    #[arg(long)]
    diff: bool,
    /// Break a stale host lock left by an interrupted run (its process is gone).
    #[arg(long)]
    break_lock: bool,
    #[command(flatten)]
    tags: TagArgs,
}

/// Which resources and tests a run takes, by their `tags:`.
#[derive(Debug, clap::Args)]
struct TagArgs {
    /// Only resources and tests with one of these tags (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "TAGS")]
    tags: Vec<String>,
    /// Never resources and tests with one of these tags (comma-separated).
    #[arg(long, value_delimiter = ',', value_name = "TAGS")]
    skip_tags: Vec<String>,
}

impl TagArgs {
    fn filter(&self) -> crate::profile::TagFilter {
        crate::profile::TagFilter {
            only: self.tags.clone(),
            skip: self.skip_tags.clone(),
        }
    }
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// A playbook file (its plays' profiles and hosts), a profile file, or the
    /// name of a profile in ./profiles.
    target: String,
    /// Hosts to verify. With a playbook: only play hosts also matching it.
    /// With a profile: required, as a profile names no hosts.
    #[arg(long, value_name = "PATTERN")]
    on: Option<String>,
    #[arg(long, value_enum, default_value_t = VerifyFormat::Table)]
    format: VerifyFormat,
    /// Write the result here instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    #[command(flatten)]
    extra_vars: ExtraVarArgs,
    /// Hosts verified at once.
    #[arg(long, default_value_t = 64)]
    parallel: usize,
    #[command(flatten)]
    tags: TagArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum VerifyFormat {
    /// A row per host, then every failed check.
    Table,
    /// One record per host with every result.
    Json,
    /// JUnit XML, for CI systems.
    Junit,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ReportFormat {
    /// For a person: hosts that ended alike as one group, those needing
    /// attention first.
    Text,
    /// report.json as written.
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FactsFormat {
    Table,
    Json,
    Csv,
    /// One GLPI native inventory per host, with its installed packages, for
    /// GLPI's asset register (`-o DIR`, `--post URL` or both).
    Glpi,
}

/// The exit statuses, for `parc --help`: the same table as the README's.
fn exit_codes_help() -> String {
    let rows: Vec<String> = Exit::ALL
        .iter()
        .map(|e| format!("  {}  {}", e.code(), e.meaning()))
        .collect();
    format!("Exit status:\n{}", rows.join("\n"))
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
            return ExitCode::from(Exit::Internal.code());
        }
    };
    let ended = runtime.block_on(commands::dispatch(cli));
    if let Err(e) = &ended {
        report_error(e);
    }
    ExitCode::from(exit_code(&ended).code())
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
        // Colour codes only for a person at a terminal, never in a log file or a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}
