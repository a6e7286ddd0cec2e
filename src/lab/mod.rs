//! `parc lab`: sandboxed workstations on the controller itself.
//!
//! Every integration test and the demo need real SSH targets, and real machines or
//! VMs are too slow and too heavy to start per test. A lab host is instead a real
//! OpenSSH sshd running in its own mount and UTS namespace, chrooted into an overlay
//! of the controller's `/`: it looks like a full Debian workstation, boots in
//! milliseconds, costs one process, and every change made on it lands in its overlay
//! upper directory, where tests can inspect exactly what a deployment wrote.
//!
//! Hosts listen on their own loopback address (`127.SUBNET.x.y`, port 22), so
//! inventories look like a real fleet and each host has its own host key.

mod boot;
mod cgroups;
pub mod cli;
mod create;
mod error;
mod inventories;
mod keys;
mod layout;
mod lifecycle;
mod procs;
mod require;
mod rootfs;
mod script;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

pub use create::up;
pub use error::LabError;
pub use lifecycle::{down, start_host, status, stop_host};
pub use rootfs::DEFAULT_CACHE as DEFAULT_ROOTFS_CACHE;

/// What runs as a host's first process.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Init {
    /// No init: sshd itself in a mount namespace over the controller's own `/`.
    /// Starts in milliseconds and downloads nothing.
    #[default]
    None,
    /// systemd as PID 1 (systemd-nspawn) over a cached Debian bookworm tree, for
    /// services, handlers and anything that needs a real service manager.
    Systemd,
}

/// What `up` should create.
#[derive(Debug, Clone)]
pub struct LabSpec {
    /// Lab directory; created if missing. Everything the lab writes goes here
    /// (except `inventory`, when given).
    pub dir: PathBuf,
    pub hosts: usize,
    /// Second octet of the hosts' addresses, 1..=254.
    pub subnet: u8,
    /// Where to write the native inventory instead of `DIR/inventory.yml`.
    pub inventory: Option<PathBuf>,
    /// Size in bytes of a sparse disk image per host, shown in the host as
    /// `/dev/parc-disk`; 0 for none.
    pub disk_size: u64,
    pub init: Init,
    /// Where `--init systemd` keeps the root file system it builds once.
    pub rootfs_cache: PathBuf,
}

/// A running lab, as recorded in `DIR/state.json`. All paths are absolute.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Lab {
    pub dir: PathBuf,
    pub hosts: Vec<LabHost>,
    pub inventory: PathBuf,
    /// Client private key authorized on every host.
    pub key: PathBuf,
    pub known_hosts: PathBuf,
    /// Labs recorded before `--init` existed had no init.
    #[serde(default)]
    pub init: Init,
    /// The shared lower layer of systemd hosts; `None` for namespace hosts, whose
    /// lower layer is the controller's `/`.
    #[serde(default)]
    pub rootfs: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LabHost {
    pub name: String,
    pub address: Ipv4Addr,
    /// sshd's pid; with `--init systemd` the pid of the start script's shell,
    /// which boots the host again after each reboot. 0 while the host is being
    /// created.
    pub pid: u32,
    /// Labs recorded before `--init` existed had no init.
    #[serde(default)]
    pub init: Init,
    /// The host's overlay upper directory: exactly the files changed on the host.
    pub upper: PathBuf,
    pub disk: Option<PathBuf>,
}

impl LabHost {
    /// The host's filesystem as the host itself sees it, readable from the
    /// controller without SSH. Only valid while the host runs: after `stop_host` /
    /// `start_host` the pid changes, so reload the lab with [`load`].
    pub fn root(&self) -> PathBuf {
        // A systemd host's files are seen through its current PID 1, which
        // changes when the host reboots.
        let pid = match self.init {
            Init::None => Some(self.pid),
            Init::Systemd => boot::container_init(self.pid),
        };
        PathBuf::from(format!("/proc/{}/root", pid.unwrap_or(0)))
    }
}

/// What `down` did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DownReport {
    /// Hosts that were still running.
    pub stopped: Vec<String>,
    /// Processes stopped, sshd and everything started over SSH.
    pub processes: usize,
    /// Files and directories removed.
    pub removed: Vec<PathBuf>,
}

/// One line of `parc lab status`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HostStatus {
    pub name: String,
    pub address: Ipv4Addr,
    /// Some process still runs in the host (its sshd, a session, a watchdog).
    pub running: bool,
    /// Port 22 of the host's address accepts TCP connections.
    pub listening: bool,
}

/// Reads the lab recorded in `DIR/state.json`.
pub fn load(dir: &Path) -> Result<Lab, LabError> {
    let path = dir.join(layout::STATE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(LabError::NotUp {
                dir: dir.to_path_buf(),
            });
        }
        Err(e) => return Err(LabError::io("read", path)(e)),
    };
    serde_json::from_str(&text).map_err(|source| LabError::State { path, source })
}

/// Writes the state atomically, so a crash mid-write cannot leave a lab that
/// `down` is unable to read.
fn save(lab: &Lab) -> Result<(), LabError> {
    let path = lab.dir.join(layout::STATE);
    let tmp = lab.dir.join(layout::STATE_TMP);
    // Cannot fail in practice: every path in a Lab was checked to be UTF-8.
    let json = serde_json::to_string_pretty(lab)
        .map_err(|e| LabError::io("write", &path)(std::io::Error::other(e)))?;
    std::fs::write(&tmp, json + "\n").map_err(LabError::io("write", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(LabError::io("write", &path))
}
