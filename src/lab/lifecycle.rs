//! Operations on an existing lab: tear down, inspect, stop and restart hosts.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::boot::{self, Boot};
use super::layout::{self, HostDir};
use super::{DownReport, HostStatus, Lab, LabError, cgroups, load, procs, require, save};

/// How long removing a host directory may fail with EBUSY: the kernel releases a
/// namespace's mounts shortly after its last process is reaped, not instantly.
const BUSY_RETRY: Duration = Duration::from_secs(5);

/// Stops every process of the lab (sshd, sessions, anything started over SSH) and
/// removes everything `up` created. Works when the hosts already died.
pub fn down(dir: &Path) -> Result<DownReport, LabError> {
    require::check_root(nix::unistd::geteuid().as_raw())?;
    match load(dir) {
        Ok(lab) => teardown(&canonical(dir)?, Some(&lab.inventory)),
        // An unreadable state must not make the lab impossible to remove: processes
        // are found through /proc and the files have fixed names.
        Err(LabError::State { .. }) => teardown(&canonical(dir)?, None),
        Err(e) => Err(e),
    }
}

fn canonical(dir: &Path) -> Result<PathBuf, LabError> {
    std::fs::canonicalize(dir).map_err(LabError::io("resolve", dir))
}

/// Kills the lab's processes, then removes its files, state.json last so that an
/// interrupted teardown can be retried with `parc lab down`.
pub(crate) fn teardown(dir: &Path, inventory: Option<&Path>) -> Result<DownReport, LabError> {
    let hosts_dir = dir.join(layout::HOSTS);
    let procs = procs::scan()?;
    let mut stopped: Vec<String> = match std::fs::read_dir(&hosts_dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|name| procs::any_belongs(&procs, &HostDir::new(dir, name).0))
            .collect(),
        Err(_) => Vec::new(),
    };
    stopped.sort();
    let processes = procs::kill_all(&hosts_dir)?;
    cgroups::remove(&hosts_dir)?;

    let mut removed = Vec::new();
    if hosts_dir.symlink_metadata().is_ok() {
        remove_dir_retrying(&hosts_dir)?;
        removed.push(hosts_dir);
    }
    let inventory = inventory.map_or_else(|| dir.join(layout::INVENTORY), Path::to_path_buf);
    let files = [
        layout::KEY,
        layout::KEY_PUB,
        layout::KNOWN_HOSTS,
        layout::ANSIBLE_INVENTORY,
        layout::STATE_TMP,
    ];
    let mut paths: Vec<PathBuf> = files.iter().map(|f| dir.join(f)).collect();
    paths.push(inventory);
    paths.push(dir.join(layout::STATE));
    for path in paths {
        match std::fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LabError::io("remove", path)(e)),
        }
    }
    // Only succeeds when nothing else lives in the directory, which is the case
    // when `up` created it.
    if std::fs::remove_dir(dir).is_ok() {
        removed.push(dir.to_path_buf());
    }
    Ok(DownReport {
        stopped,
        processes,
        removed,
    })
}

fn remove_dir_retrying(path: &Path) -> Result<(), LabError> {
    retry_busy(path, "remove", |p| std::fs::remove_dir_all(p))
}

/// Runs `op` on `path` until it stops failing with EBUSY or [`BUSY_RETRY`] has
/// passed: the kernel releases a dead namespace's mounts, or an emptied
/// cgroup, a moment after the last process is reaped.
pub(crate) fn retry_busy(
    path: &Path,
    action: &'static str,
    op: impl Fn(&Path) -> std::io::Result<()>,
) -> Result<(), LabError> {
    let deadline = Instant::now() + BUSY_RETRY;
    loop {
        match op(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::ResourceBusy && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(LabError::io(action, path)(e)),
        }
    }
}

/// Whether each host runs and accepts connections.
pub fn status(dir: &Path) -> Result<Vec<HostStatus>, LabError> {
    require::check_root(nix::unistd::geteuid().as_raw())?;
    let lab = load(dir)?;
    let procs = procs::scan()?;
    Ok(lab
        .hosts
        .iter()
        .map(|h| HostStatus {
            name: h.name.clone(),
            address: h.address,
            running: procs::any_belongs(&procs, &HostDir::new(&lab.dir, &h.name).0),
            listening: boot::accepts(h.address),
        })
        .collect())
}

fn find(lab: &Lab, name: &str) -> Result<usize, LabError> {
    lab.hosts
        .iter()
        .position(|h| h.name == name)
        .ok_or_else(|| LabError::UnknownHost {
            dir: lab.dir.clone(),
            name: name.to_string(),
            known: lab
                .hosts
                .iter()
                .map(|h| h.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// Kills every process of one host, as if the machine lost power; its upper
/// directory (the host's disk) is kept for `start_host`.
pub fn stop_host(dir: &Path, name: &str) -> Result<(), LabError> {
    require::check_root(nix::unistd::geteuid().as_raw())?;
    let mut lab = load(dir)?;
    let index = find(&lab, name)?;
    kill_host(&lab, name)?;
    lab.hosts[index].pid = 0;
    save(&lab)
}

fn kill_host(lab: &Lab, name: &str) -> Result<usize, LabError> {
    let dir = HostDir::new(&lab.dir, name).0;
    let killed = procs::kill_all(&dir)?;
    cgroups::remove(&dir)?;
    Ok(killed)
}

/// Boots a stopped host again with the same address, keys and upper directory.
/// A host that runs and listens is left alone; one that is half dead (sshd gone
/// but a session left over) is stopped completely first.
pub fn start_host(dir: &Path, name: &str) -> Result<(), LabError> {
    let tools = require::check()?;
    let mut lab = load(dir)?;
    let index = find(&lab, name)?;
    let host_dir = HostDir::new(&lab.dir, name);
    let host = &lab.hosts[index];
    if procs::is_running_under(host.pid, &host_dir.0) && boot::accepts(host.address) {
        return Ok(());
    }
    kill_host(&lab, name)?;
    let pids = boot::start(
        &tools,
        &[Boot {
            name,
            address: host.address,
            dir: &host_dir,
            init: lab.init,
        }],
    )?;
    // start() returns one pid per host it was given.
    lab.hosts[index].pid = pids[0];
    save(&lab)
}
