//! Shared by every integration test: a real `parc lab` started through the real
//! binary, on a subnet no other concurrently running test process uses.

// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

pub mod procs;
pub mod state;

use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output};
use std::time::Duration;

/// Lock files for subnets handed to test labs. Shared by all test processes on the
/// machine (cargo nextest runs every test in its own process).
const LOCK_DIR: &str = "/tmp/parc-test-subnets";
const SUBNETS: std::ops::RangeInclusive<u8> = 150..=250;

pub struct TestLab {
    pub lab: parc::lab::Lab,
    dir: tempfile::TempDir,
    is_down: bool,
    // Declared last so the subnet is released only after the lab is down.
    _subnet: SubnetLock,
}

impl TestLab {
    /// Starts `hosts` hosts with `parc lab up`.
    pub fn start(hosts: usize) -> TestLab {
        Self::start_with(hosts, &[])
    }

    /// Like [`TestLab::start`], with extra `parc lab up` arguments such as
    /// `["--disk-size", "1MiB"]`.
    pub fn start_with(hosts: usize, extra_args: &[&str]) -> TestLab {
        require_root_and_sshd();
        let subnet = SubnetLock::acquire();
        let dir = tempfile::Builder::new()
            .prefix("parc-lab-")
            .tempdir()
            .expect("create a temporary directory for the lab");
        let lab_dir = dir.path().join("lab");
        let output = Command::new(env!("CARGO_BIN_EXE_parc"))
            .args(["lab", "up", "--hosts", &hosts.to_string(), "--subnet"])
            .arg(subnet.subnet.to_string())
            .arg("--dir")
            .arg(&lab_dir)
            .args(extra_args)
            .output()
            .expect("run parc lab up");
        assert!(
            output.status.success(),
            "parc lab up failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let lab = parc::lab::load(&lab_dir).expect("read the state of the lab just started");
        TestLab {
            lab,
            dir,
            is_down: false,
            _subnet: subnet,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.lab.dir
    }

    pub fn inventory(&self) -> &Path {
        &self.lab.inventory
    }

    /// The parc binary, run from the lab directory's parent with the lab inventory.
    pub fn parc(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_parc"));
        command
            .current_dir(self.dir.path())
            .env("PARC_INVENTORY", self.inventory());
        command
    }

    /// `parc --json apply PLAYBOOK`: its output and its events.
    pub fn apply_json(&self, playbook: &Path) -> (Output, Vec<serde_json::Value>) {
        let out = self
            .parc()
            .arg("--json")
            .arg("apply")
            .arg(playbook)
            .output()
            .expect("run parc apply");
        let ev = events(&out);
        (out, ev)
    }

    /// The real OpenSSH client, pinned to the lab's key and known_hosts, ignoring
    /// the user's ~/.ssh/config.
    pub fn ssh(&self, host: usize, command: &str) -> Output {
        self.ssh_with(host, &[], command)
    }

    /// [`TestLab::ssh`] with extra client options, such as `["-tt"]`.
    pub fn ssh_with(&self, host: usize, options: &[&str], command: &str) -> Output {
        Command::new("ssh")
            .arg("-F")
            .arg("/dev/null")
            .arg("-i")
            .arg(&self.lab.key)
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                self.lab.known_hosts.display()
            ))
            .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
            .args(options)
            .arg(format!("root@{}", self.lab.hosts[host].address))
            .arg(command)
            .output()
            .expect("run ssh")
    }

    /// A file as host `host` (0-based) sees it, read without SSH; `None` if absent.
    /// Re-reads the lab state, so it follows hosts restarted with `start_host`.
    pub fn host_file(&self, host: usize, path: &str) -> Option<Vec<u8>> {
        let lab = parc::lab::load(&self.lab.dir).ok()?;
        let root = lab.hosts.get(host)?.root();
        std::fs::read(root.join(path.trim_start_matches('/'))).ok()
    }

    /// Makes host `host` a busybox-only host: every command a session runs
    /// (parc's execs included) runs in a mount namespace where every bin
    /// directory holds nothing but busybox's applets, as on a minimal target.
    /// root's login shell becomes a wrapper that sets this up, so sshd and
    /// the lab are untouched. Panics when busybox is missing (`.ci/run`
    /// installs it): a test that needs it must not pass without it.
    pub fn busybox_only(&self, host: usize) {
        let busybox = ["/usr/bin/busybox", "/bin/busybox"]
            .into_iter()
            .find(|p| Path::new(p).is_file())
            .expect("this test needs busybox (apt-get install busybox; scripts/install-deps installs it)");
        let root = self.lab.hosts[host].root();
        let bb = root.join("opt/parc-busybox");
        std::fs::create_dir_all(&bb).unwrap();
        std::fs::copy(busybox, bb.join("busybox")).unwrap();
        let list = Command::new(busybox).arg("--list").output().unwrap();
        for applet in String::from_utf8_lossy(&list.stdout).lines() {
            if applet != "busybox" {
                std::os::unix::fs::symlink("busybox", bb.join(applet)).unwrap();
            }
        }
        // Runs with the host's own sh and unshare, then only busybox is left.
        let login = r#"#!/bin/sh
exec unshare -m -- /bin/sh -c '
for d in /bin /sbin /usr/bin /usr/sbin /usr/local/bin /usr/local/sbin; do
  if [ -d "$d" ] && [ ! -L "$d" ]; then mount --bind /opt/parc-busybox "$d" || exit 125; fi
done
exec /opt/parc-busybox/sh "$@"' sh "$@"
"#;
        let shell = root.join("opt/parc-busybox-login");
        std::fs::write(&shell, login).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&shell, std::fs::Permissions::from_mode(0o755)).unwrap();
        let passwd = root.join("etc/passwd");
        let text = std::fs::read_to_string(&passwd).unwrap();
        let text: String = text
            .lines()
            .map(|l| match l.strip_prefix("root:") {
                Some(rest) => {
                    let fields: Vec<&str> = rest.rsplitn(2, ':').collect();
                    format!("root:{}:/opt/parc-busybox-login\n", fields[1])
                }
                None => format!("{l}\n"),
            })
            .collect();
        std::fs::write(&passwd, text).unwrap();
        let out = self.ssh(
            host,
            "for t in tar stat dd; do readlink -f \"$(command -v $t)\"; done | sed 's|.*/||'; command -v bash dpkg-query useradd; true",
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "busybox\n".repeat(3),
            "only busybox is reachable on host {host}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs `parc lab down` now instead of on drop, for tests of `down` itself.
    pub fn down(mut self) -> Output {
        self.is_down = true;
        self.run_down()
    }

    fn run_down(&self) -> Output {
        Command::new(env!("CARGO_BIN_EXE_parc"))
            .args(["lab", "down", "--dir"])
            .arg(&self.lab.dir)
            .output()
            .expect("run parc lab down")
    }
}

impl Drop for TestLab {
    fn drop(&mut self) {
        if self.is_down {
            return;
        }
        let output = self.run_down();
        if !output.status.success() {
            eprintln!(
                "parc lab down --dir {} failed: {}",
                self.lab.dir.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}

/// Panics unless the machine can run a lab, with the fix in the message.
pub fn require_root_and_sshd() {
    let root = nix::unistd::geteuid().is_root();
    let sshd = Path::new("/usr/sbin/sshd").exists();
    assert!(
        root && sshd,
        "this integration test needs root and openssh-server (apt-get install \
         openssh-server); .ci/run installs it (root: {root}, /usr/sbin/sshd: {sshd})"
    );
}

/// An exclusive lock on one subnet, held for the life of a test lab.
///
/// flock rather than lock directories: the kernel releases it when the owning
/// process dies, however it dies, so there is no stale lock to reclaim and no race
/// between two processes reclaiming the same one.
struct SubnetLock {
    subnet: u8,
    _file: File,
}

impl SubnetLock {
    fn acquire() -> SubnetLock {
        std::fs::create_dir_all(LOCK_DIR).expect("create the subnet lock directory");
        for subnet in SUBNETS {
            let path = PathBuf::from(format!("{LOCK_DIR}/{subnet}.lock"));
            let mut file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => continue,
                Err(TryLockError::Error(e)) => panic!("lock {}: {e}", path.display()),
            }
            // A lab leaked by a killed test process keeps its addresses although
            // its lock is gone: skip the subnet rather than fail to start.
            let first = SocketAddr::from((Ipv4Addr::new(127, subnet, 0, 1), 22));
            if TcpStream::connect_timeout(&first, Duration::from_millis(200)).is_ok() {
                continue;
            }
            // For people looking at the directory; the lock itself is what counts.
            let _ = file.set_len(0);
            let _ = writeln!(file, "{}", std::process::id());
            return SubnetLock {
                subnet,
                _file: file,
            };
        }
        panic!(
            "every test subnet ({}..={}) is in use; stale labs may be running \
             (look for `sshd -D -e -f /run/parc-lab/sshd_config` processes)",
            SUBNETS.start(),
            SUBNETS.end()
        );
    }
}

/// The JSON events of a `parc --json` run, one per stdout line; a line that is
/// not JSON fails the test.
pub fn events(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// The `host_finished` events among `ev`.
pub fn finished(ev: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    ev.iter()
        .filter(|e| e["event"] == "host_finished")
        .collect()
}

/// Run `command` to its end; its exit status and peak resident memory in KiB,
/// from the kernel's own accounting of that one child.
// The child is reaped by wait4 here, which std cannot see.
#[allow(clippy::zombie_processes)]
pub fn run_measured(command: &mut Command) -> (ExitStatus, u64) {
    let child = command.spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value; wait4 fills it for this
    // child only, which std has not reaped (its Child is never waited on).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4: {}", std::io::Error::last_os_error());
    (ExitStatus::from_raw(status), usage.ru_maxrss as u64)
}

/// Writes profile NAME (`yaml`) as `dir/profiles/NAME.yml`, making the
/// directory.
pub fn profile(dir: &Path, name: &str, yaml: &str) {
    std::fs::create_dir_all(dir.join("profiles")).unwrap();
    std::fs::write(dir.join(format!("profiles/{name}.yml")), yaml).unwrap();
}

/// A playbook of one play applying profile NAME (`yaml`, written by
/// [`profile`]) to every host, with `play_extra` (YAML lines indented as the
/// play's keys) added to the play: `dir/playbooks/NAME.yml`.
pub fn play(dir: &Path, name: &str, yaml: &str, play_extra: &str) -> PathBuf {
    profile(dir, name, yaml);
    std::fs::create_dir_all(dir.join("playbooks")).unwrap();
    let pb = dir.join(format!("playbooks/{name}.yml"));
    std::fs::write(
        &pb,
        format!("- hosts: all\n  profiles: [{name}]\n{play_extra}"),
    )
    .unwrap();
    pb
}

/// The `mixed` fixture (tests/fixtures/mixed) copied to `dir`, with the 1 MiB wallpaper it names: bytes
/// that do not compress, generated rather than kept in the repository.
pub fn mixed_fixture(dir: &Path) -> PathBuf {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mixed");
    copy_tree(&fixture, dir);
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let wallpaper: Vec<u8> = (0..1 << 20)
        .map(|_| {
            // xorshift64: the same bytes on every run, no pattern to compress.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    std::fs::write(dir.join("profiles/files/wallpaper.bin"), wallpaper).unwrap();
    dir.join("playbooks/mixed.yml")
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}
