//! `parc lab ...` subcommands: short, plain output meant to be read by a person
//! (and `status --json` for scripts).

use std::io::Write;
use std::path::{Path, PathBuf};

use bytesize::ByteSize;

use super::inventories::known_hosts_option;
use super::{Init, Lab, LabError, LabSpec};
use crate::transport::quote;

#[derive(Debug, Clone, clap::Subcommand)]
pub enum LabCommand {
    /// Start sandboxed workstations on this machine (needs root).
    Up {
        /// Number of hosts (ws-001, ws-002, ...).
        #[arg(long, default_value_t = 3)]
        hosts: usize,
        /// Lab directory: keys, inventories and each host's files.
        #[arg(long, default_value = "lab")]
        dir: PathBuf,
        /// Hosts get addresses 127.SUBNET.x.y; use different subnets for labs that
        /// run at the same time.
        #[arg(long, default_value_t = 100)]
        subnet: u8,
        /// Write parc's inventory here instead of DIR/inventory.yml.
        #[arg(long)]
        inventory: Option<PathBuf>,
        /// Give each host a sparse disk image of this size at /dev/parc-disk (e.g. 256MiB).
        #[arg(long, value_name = "SIZE")]
        disk_size: Option<ByteSize>,
        /// What the hosts boot: `none` (sshd alone, instant) or `systemd` (a real
        /// init as PID 1; builds a Debian root file system once, ~260 MB).
        #[arg(long, value_enum, default_value = "none")]
        init: Init,
        /// Where `--init systemd` caches the root file system it builds.
        #[arg(long, value_name = "DIR", default_value = super::DEFAULT_ROOTFS_CACHE)]
        rootfs_cache: PathBuf,
    },
    /// Stop every host of the lab and remove the lab's files.
    Down {
        #[arg(long, default_value = "lab")]
        dir: PathBuf,
    },
    /// Show which hosts run and accept SSH connections.
    Status {
        #[arg(long, default_value = "lab")]
        dir: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Kill one host as if it lost power (its files are kept).
    Stop {
        name: String,
        #[arg(long, default_value = "lab")]
        dir: PathBuf,
    },
    /// Boot a stopped host again.
    Start {
        name: String,
        #[arg(long, default_value = "lab")]
        dir: PathBuf,
    },
}

pub fn run(cmd: LabCommand) -> Result<(), LabError> {
    match cmd {
        LabCommand::Up {
            hosts,
            dir,
            subnet,
            inventory,
            disk_size,
            init,
            rootfs_cache,
        } => {
            let spec = LabSpec {
                dir,
                hosts,
                subnet,
                inventory,
                disk_size: disk_size.map_or(0, |size| size.as_u64()),
                init,
                rootfs_cache,
            };
            let lab = super::up(&spec)?;
            say(&up_summary(&lab, disk_size))
        }
        LabCommand::Down { dir } => {
            let absolute_dir = absolute(&dir);
            let report = super::down(&dir)?;
            let stopped = match report.stopped.len() {
                0 => "no host was running".to_string(),
                n => format!(
                    "stopped {} ({} processes)",
                    plural(n, "host"),
                    report.processes
                ),
            };
            let removed = if report.removed.contains(&absolute_dir) {
                format!("removed {}", shown(&dir))
            } else {
                format!("removed the lab files in {}", shown(&dir))
            };
            say(&format!("lab down: {stopped}; {removed}"))
        }
        LabCommand::Status { dir, json } => {
            let hosts = super::status(&dir)?;
            if json {
                let text =
                    serde_json::to_string_pretty(&hosts).map_err(|e| LabError::Output(e.into()))?;
                return say(&text);
            }
            let table: Vec<String> = hosts
                .iter()
                .map(|h| {
                    format!(
                        "{}  {:<15}  {:<7}  {}",
                        h.name,
                        h.address,
                        if h.running { "running" } else { "stopped" },
                        if h.listening { "listening" } else { "refusing" }
                    )
                })
                .collect();
            say(&table.join("\n"))
        }
        LabCommand::Stop { name, dir } => {
            super::stop_host(&dir, &name)?;
            say(&format!(
                "lab stop: {name} is down (its files are kept; `parc lab start {name}` boots it again)"
            ))
        }
        LabCommand::Start { name, dir } => {
            super::start_host(&dir, &name)?;
            let lab = super::load(&dir)?;
            let address = lab.hosts.iter().find(|h| h.name == name).map(|h| h.address);
            match address {
                Some(address) => say(&format!("lab start: {name} is up on {address}")),
                None => say(&format!("lab start: {name} is up")),
            }
        }
    }
}

fn up_summary(lab: &Lab, disk: Option<ByteSize>) -> String {
    let (Some(first), Some(last)) = (lab.hosts.first(), lab.hosts.last()) else {
        return "lab up: no hosts".to_string();
    };
    let hosts = if lab.hosts.len() == 1 {
        format!("1 host {} on {}", first.name, first.address)
    } else {
        format!(
            "{} hosts {}..{} on {}-{}",
            lab.hosts.len(),
            first.name,
            last.name,
            first.address,
            last.address
        )
    };
    let disk = disk.map_or(String::new(), |size| {
        format!("; {} disk at /dev/parc-disk", size.display().iec())
    });
    format!(
        "lab up: {hosts}; inventory {}{disk}\ntry: ssh -i {} -o {} root@{} hostname",
        shown(&lab.inventory),
        quote(&shown(&lab.key)),
        quote(&known_hosts_option(&shown(&lab.known_hosts))),
        first.address
    )
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// Paths under the working directory are shown relative to it, as the user
/// probably typed them.
fn shown(path: &Path) -> String {
    let cwd = std::env::current_dir()
        .ok()
        .and_then(|d| std::fs::canonicalize(d).ok());
    let relative = cwd.as_deref().and_then(|cwd| path.strip_prefix(cwd).ok());
    match relative {
        Some(rel) if !rel.as_os_str().is_empty() => rel.display().to_string(),
        _ => path.display().to_string(),
    }
}

fn say(text: &str) -> Result<(), LabError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").map_err(LabError::Output)
}
