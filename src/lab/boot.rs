//! Booting hosts: spawn every start script at once, then wait for every sshd.
//!
//! Hosts are started detached (`setsid --fork`) so they outlive `parc lab up` and
//! are not children of it: nobody has to reap them, and a terminal hang-up does not
//! reach them.

use std::fs::OpenOptions;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::layout::HostDir;
use super::procs::is_alive;
use super::require::Tools;
use super::{Init, LabError};

/// How long a host may take from spawn to accepting TCP connections on port 22.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// The same for systemd hosts, which boot a whole system before sshd, all at
/// once on a machine that may have few cores.
const SYSTEMD_START_TIMEOUT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(20);
const CONNECT_TIMEOUT: Duration = Duration::from_millis(200);
/// Lines of a host's log quoted in a start error.
const LOG_TAIL_LINES: usize = 15;

pub(crate) struct Boot<'a> {
    pub name: &'a str,
    pub address: Ipv4Addr,
    pub dir: &'a HostDir,
    pub init: Init,
}

/// Whether something accepts TCP connections on `address:22`.
pub(crate) fn accepts(address: Ipv4Addr) -> bool {
    TcpStream::connect_timeout(&SocketAddr::from((address, 22)), CONNECT_TIMEOUT).is_ok()
}

/// Starts `hosts` in parallel and returns their sshd pids, in the same order.
pub(crate) fn start(tools: &Tools, hosts: &[Boot<'_>]) -> Result<Vec<u32>, LabError> {
    let mut launchers = Vec::with_capacity(hosts.len());
    for host in hosts {
        match std::fs::remove_file(host.dir.pid_file()) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LabError::io("remove", host.dir.pid_file())(e)),
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(host.dir.log())
            .map_err(LabError::io("open", host.dir.log()))?;
        let log_err = log
            .try_clone()
            .map_err(LabError::io("open", host.dir.log()))?;
        let mut command = Command::new(&tools.setsid);
        command
            .arg("--fork")
            .arg(&tools.unshare)
            .args([
                "--mount",
                "--uts",
                "--propagation",
                "private",
                "--fork",
                "sh",
            ])
            .arg(host.dir.script())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let child = command.spawn().map_err(|source| LabError::Spawn {
            command: format!("{command:?}"),
            source,
        })?;
        launchers.push((command, child));
    }
    // `setsid --fork` returns as soon as the detached host process exists.
    for (host, (command, mut child)) in hosts.iter().zip(launchers) {
        let status = child.wait().map_err(|source| LabError::Spawn {
            command: format!("{command:?}"),
            source,
        })?;
        if !status.success() {
            return Err(LabError::HostDied {
                host: host.name.to_string(),
                log_tail: log_tail(&host.dir.log()),
            });
        }
    }
    wait_listening(hosts)
}

fn wait_listening(hosts: &[Boot<'_>]) -> Result<Vec<u32>, LabError> {
    let timeout = if hosts.iter().any(|h| h.init == Init::Systemd) {
        SYSTEMD_START_TIMEOUT
    } else {
        START_TIMEOUT
    };
    let deadline = Instant::now() + timeout;
    let mut pids = vec![0u32; hosts.len()];
    let mut pending: Vec<usize> = (0..hosts.len()).collect();
    loop {
        let mut still = Vec::with_capacity(pending.len());
        for i in pending {
            let host = &hosts[i];
            if pids[i] == 0 {
                pids[i] = read_pid(&host.dir.pid_file()).unwrap_or(0);
            }
            if pids[i] != 0 && !is_alive(pids[i]) {
                return Err(died(host));
            }
            if pids[i] == 0 || !accepts(host.address) {
                still.push(i);
            }
        }
        pending = still;
        let Some(&first) = pending.first() else {
            break;
        };
        if Instant::now() >= deadline {
            let host = &hosts[first];
            return Err(LabError::StartTimeout {
                host: host.name.to_string(),
                address: host.address,
                secs: timeout.as_secs(),
                log_tail: log_tail(&host.dir.log()),
            });
        }
        std::thread::sleep(POLL);
    }
    Ok(pids)
}

fn died(host: &Boot<'_>) -> LabError {
    LabError::HostDied {
        host: host.name.to_string(),
        log_tail: log_tail(&host.dir.log()),
    }
}

/// A systemd host's PID 1 as the controller numbers it, found from the start
/// script's shell (which outlives reboots): the shell's child is
/// systemd-nspawn, whose child is the host's systemd. `None` between two boots.
pub(crate) fn container_init(launcher: u32) -> Option<u32> {
    let first_child = |pid: u32| -> Option<u32> {
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
        children.split_whitespace().next()?.parse().ok()
    };
    first_child(first_child(launcher)?)
}

/// The script may still be writing the file; a partial read is simply retried.
fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

pub(crate) fn log_tail(path: &Path) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
            if tail.is_empty() {
                "(log is empty)".to_string()
            } else {
                tail
            }
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let text: String = (1..=40).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&path, text).unwrap();
        let tail = log_tail(&path);
        assert!(tail.starts_with("line 26\n"), "{tail}");
        assert!(tail.ends_with("line 40"));
        assert!(log_tail(&dir.path().join("missing")).contains("cannot read"));
    }
}
