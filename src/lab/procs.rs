//! Finding and stopping a lab's processes through /proc.
//!
//! A host is "every process in its mount namespace", not "the sshd pid we
//! recorded": sessions, things started over ssh and detached watchdogs all live
//! there, and a recorded pid may belong to an unrelated process after a reboot.
//!
//! A process *belongs* to a lab directory when its root is under it (sshd and
//! everything it starts are chrooted into a host's `merged`), or when it runs a
//! host's start script (the launcher, `unshare` and the script itself, before
//! the chroot), or when it runs in a systemd host's cgroup (see `cgroups`: the
//! root of a process inside systemd-nspawn does not show from outside). Every
//! process sharing a mount namespace with a belonging process
//! is part of the lab too.
//!
//! Namespaces are identified by their inode number, which the kernel hands out
//! again as soon as a namespace dies. While stopping a lab we therefore hold each
//! of its namespaces open: otherwise a lab booting next to us could receive the
//! number of a namespace we just emptied, and we would kill its hosts.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::layout::SCRIPT;
use super::{LabError, cgroups};

/// What sshd and its sessions get to exit cleanly before SIGKILL.
const GRACE: Duration = Duration::from_secs(2);
/// How long SIGKILLed processes may take to disappear before we report them.
const KILL_WAIT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(25);

/// One live process, as far as we could read it (it may exit while we look).
#[derive(Debug)]
pub(crate) struct Proc {
    pub pid: u32,
    root: Option<PathBuf>,
    /// Inode number of the mount namespace.
    ns: Option<u64>,
    args: Vec<String>,
    /// For a process of a systemd host: its lab group as a path (see [`cgroups`]).
    group: Option<PathBuf>,
}

pub(crate) fn scan() -> Result<Vec<Proc>, LabError> {
    let entries = std::fs::read_dir("/proc").map_err(LabError::io("list", "/proc"))?;
    Ok(entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .map(|pid| Proc {
            pid,
            root: std::fs::read_link(format!("/proc/{pid}/root")).ok(),
            // Zombies and kernel threads have no readable namespace link; they hold
            // no mounts and cannot be signalled away, so they never join a lab.
            ns: std::fs::metadata(format!("/proc/{pid}/ns/mnt"))
                .ok()
                .map(|m| m.ino()),
            args: std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|raw| {
                    raw.split(|&b| b == 0)
                        .map(|arg| String::from_utf8_lossy(arg).into_owned())
                        .collect()
                })
                .unwrap_or_default(),
            group: cgroups::of(pid).and_then(|g| cgroups::host_path(&g)),
        })
        .collect())
}

/// See the module documentation. `prefix` is a lab's `hosts` directory or one
/// host's directory.
pub(crate) fn belongs(p: &Proc, prefix: &Path) -> bool {
    p.root.as_deref().is_some_and(|r| r.starts_with(prefix))
        || p.group.as_deref().is_some_and(|g| g.starts_with(prefix))
        || p.args
            .iter()
            .map(Path::new)
            .any(|arg| arg.starts_with(prefix) && arg.file_name().is_some_and(|f| f == SCRIPT))
}

pub(crate) fn any_belongs(procs: &[Proc], prefix: &Path) -> bool {
    procs.iter().any(|p| belongs(p, prefix))
}

/// Whether `pid` is a live process rooted (or, on a systemd host, grouped)
/// under `prefix`: guards against a pid recorded before a reboot now naming
/// some unrelated process.
pub(crate) fn is_running_under(pid: u32, prefix: &Path) -> bool {
    std::fs::read_link(format!("/proc/{pid}/root")).is_ok_and(|r| r.starts_with(prefix))
        || cgroups::of(pid)
            .and_then(|g| cgroups::host_path(&g))
            .is_some_and(|g| g.starts_with(prefix))
}

/// The processes of a lab (or host), re-evaluated on every scan so that processes
/// forked or namespaces created meanwhile are caught too.
struct Members<'a> {
    prefix: &'a Path,
    /// Never pinned, whatever runs in it, so that no mistake can make parc kill
    /// its own machine: a belonging process found in it (a launcher that has not
    /// called unshare yet) is stopped on its own.
    own_ns: u64,
    /// The lab's namespaces, held open so their numbers cannot be reused while
    /// we act on them.
    pinned: BTreeMap<u64, File>,
}

impl<'a> Members<'a> {
    fn new(prefix: &'a Path) -> Result<Self, LabError> {
        let own_ns = std::fs::metadata("/proc/self/ns/mnt")
            .map_err(LabError::io("read", "/proc/self/ns/mnt"))?
            .ino();
        Ok(Members {
            prefix,
            own_ns,
            pinned: BTreeMap::new(),
        })
    }

    fn scan(&mut self) -> Result<Vec<u32>, LabError> {
        let procs = scan()?;
        for p in procs.iter().filter(|p| belongs(p, self.prefix)) {
            let Some(ns) = p.ns else { continue };
            if ns == self.own_ns || self.pinned.contains_key(&ns) {
                continue;
            }
            // If the process died since the scan, its namespace may already carry
            // another lab's number; the inode check refuses to pin that one.
            let path = format!("/proc/{}/ns/mnt", p.pid);
            if let Ok(file) = File::open(&path)
                && file.metadata().is_ok_and(|m| m.ino() == ns)
            {
                self.pinned.insert(ns, file);
            }
        }
        let me = std::process::id();
        Ok(procs
            .iter()
            .filter(|p| p.pid != me)
            .filter(|p| {
                belongs(p, self.prefix) || p.ns.is_some_and(|ns| self.pinned.contains_key(&ns))
            })
            .map(|p| p.pid)
            .collect())
    }
}

fn signal_all(pids: &[u32], signal: Signal) -> Result<(), LabError> {
    for &pid in pids {
        let Ok(raw) = i32::try_from(pid) else {
            continue;
        };
        match kill(Pid::from_raw(raw), signal) {
            // Exited between the scan and the signal: that is what we wanted.
            Ok(()) | Err(nix::Error::ESRCH) => {}
            Err(source) => {
                return Err(LabError::Signal {
                    pid,
                    signal: signal.as_str(),
                    source,
                });
            }
        }
    }
    Ok(())
}

/// Stops every process of the lab or host under `prefix`: SIGTERM, then SIGKILL
/// for whatever is left after the grace period, then waits until none remain (once
/// the last process of a namespace is gone the kernel drops its mounts). Returns
/// how many processes were stopped.
pub(crate) fn kill_all(prefix: &Path) -> Result<usize, LabError> {
    let mut members = Members::new(prefix)?;
    let mut seen: BTreeSet<u32> = BTreeSet::new();
    let mut left = members.scan()?;
    seen.extend(&left);
    signal_all(&left, Signal::SIGTERM)?;
    let grace_end = Instant::now() + GRACE;
    while !left.is_empty() && Instant::now() < grace_end {
        std::thread::sleep(POLL);
        left = members.scan()?;
        // Processes forked after the first scan (a new ssh session) get SIGTERM too.
        signal_all(
            &left
                .iter()
                .copied()
                .filter(|p| !seen.contains(p))
                .collect::<Vec<_>>(),
            Signal::SIGTERM,
        )?;
        seen.extend(&left);
    }
    let kill_end = Instant::now() + KILL_WAIT;
    while !left.is_empty() {
        if Instant::now() >= kill_end {
            return Err(LabError::ProcessesRemain { pids: left });
        }
        signal_all(&left, Signal::SIGKILL)?;
        std::thread::sleep(POLL);
        left = members.scan()?;
        seen.extend(&left);
    }
    Ok(seen.len())
}

/// Whether `pid` is alive (not gone and not a zombie).
pub(crate) fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // The state letter follows the command name, which may itself contain ')'.
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc(root: &str, args: &[&str]) -> Proc {
        Proc {
            pid: 1,
            root: Some(PathBuf::from(root)),
            ns: None,
            args: args.iter().map(|a| a.to_string()).collect(),
            group: None,
        }
    }

    #[test]
    fn hosts_are_recognised_by_root_or_start_script() {
        let host = Path::new("/lab/hosts/ws-001");
        assert!(belongs(&proc("/lab/hosts/ws-001/merged", &["sshd"]), host));
        assert!(belongs(
            &proc(
                "/",
                &["unshare", "--mount", "sh", "/lab/hosts/ws-001/start.sh"]
            ),
            host
        ));
        assert!(!belongs(
            &proc("/", &["tail", "-f", "/lab/hosts/ws-001/log"]),
            host
        ));
        assert!(!belongs(
            &proc("/lab/hosts/ws-0010/merged", &["sshd"]),
            host
        ));
        assert!(!belongs(
            &proc("/", &["sh", "/lab/hosts/ws-002/start.sh"]),
            host
        ));
    }

    #[test]
    fn the_controllers_own_namespace_is_never_a_lab_namespace() {
        // Every process is rooted under `/`, so all of them belong...
        let mut members = Members::new(Path::new("/")).unwrap();
        let pids = members.scan().unwrap();
        // ...but our namespace is not learned, so only belonging processes count,
        // never "everything in the controller's namespace".
        assert!(!members.pinned.contains_key(&members.own_ns));
        assert!(!pids.contains(&std::process::id()));
    }

    #[test]
    fn liveness_follows_the_process() {
        assert!(is_alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        // Unreaped it is a zombie, which does not count as alive.
        while is_alive(pid) {
            std::thread::sleep(POLL);
        }
        child.wait().unwrap();
        assert!(!is_alive(pid));
    }
}
