//! `parc lab` against real sshd processes (needs root and openssh-server).

mod common;

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use common::{TestLab, require_root_and_sshd};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use parc::lab::{LabError, LabSpec};

fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "command failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn accepts(lab: &TestLab, host: usize) -> bool {
    let address = SocketAddr::from((lab.lab.hosts[host].address, 22));
    TcpStream::connect_timeout(&address, Duration::from_millis(500)).is_ok()
}

/// Every path under `dir` with its modification time and size.
fn tree(dir: &Path) -> BTreeMap<PathBuf, (SystemTime, u64)> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        out.insert(path.clone(), (meta.modified().unwrap(), meta.len()));
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                stack.push(entry.unwrap().path());
            }
        }
    }
    out
}

/// A process's mount namespace, held open: namespace numbers are reused as soon
/// as a namespace dies, and labs of concurrently running tests keep creating new
/// ones, so a namespace is only identified reliably while it is held.
struct Namespace(std::fs::File);

impl Namespace {
    fn of(pid: u32) -> Namespace {
        Namespace(std::fs::File::open(format!("/proc/{pid}/ns/mnt")).expect("process runs"))
    }

    fn id(&self) -> u64 {
        self.0.metadata().unwrap().ino()
    }
}

/// Pids of live processes in one of `namespaces`.
fn processes_in(namespaces: &[Namespace]) -> Vec<u32> {
    let ids: Vec<u64> = namespaces.iter().map(Namespace::id).collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            std::fs::metadata(format!("/proc/{pid}/ns/mnt")).is_ok_and(|m| ids.contains(&m.ino()))
        })
        .collect()
}

#[test]
fn each_host_answers_ssh_with_its_own_hostname() {
    let lab = TestLab::start(3);
    let names: Vec<String> = (0..3).map(|i| stdout(&lab.ssh(i, "hostname"))).collect();
    assert_eq!(names, ["ws-001", "ws-002", "ws-003"]);
    let inventory = std::fs::read_to_string(lab.inventory()).unwrap();
    assert!(inventory.contains(&format!("address: {}", lab.lab.hosts[2].address)));
}

#[test]
fn a_file_written_on_one_host_stays_on_that_host() {
    let lab = TestLab::start(3);
    let path = "/root/parc-lab-test-marker";
    stdout(&lab.ssh(0, &format!("echo written-on-ws-001 > {path}")));

    let upper = lab.lab.hosts[0].upper.join(path.trim_start_matches('/'));
    assert_eq!(std::fs::read(upper).unwrap(), b"written-on-ws-001\n");
    assert_eq!(lab.host_file(0, path).unwrap(), b"written-on-ws-001\n");
    assert_eq!(lab.host_file(1, path), None);
    assert!(
        !lab.lab.hosts[1]
            .upper
            .join("root/parc-lab-test-marker")
            .exists()
    );
    assert!(!Path::new(path).exists(), "the file leaked onto the real /");
    assert_eq!(
        stdout(&lab.ssh(1, &format!("test -e {path} && echo yes || echo no"))),
        "no"
    );
}

#[test]
fn ssh_sessions_leave_the_upper_dir_unchanged() {
    let lab = TestLab::start(1);
    let upper = &lab.lab.hosts[0].upper;
    let before = tree(upper);
    stdout(&lab.ssh(0, "true"));
    stdout(&lab.ssh(0, "true"));
    // A terminal session is what makes sshd write wtmp and lastlog.
    stdout(&lab.ssh_with(0, &["-tt"], "true"));
    assert_eq!(
        tree(upper),
        before,
        "an ssh session wrote to the host's disk"
    );
}

#[test]
fn a_stopped_host_refuses_connections_until_started() {
    let lab = TestLab::start(2);
    stdout(&lab.ssh(1, "echo kept > /root/survives-reboot"));

    parc::lab::stop_host(lab.dir(), "ws-002").unwrap();
    assert!(
        !accepts(&lab, 1),
        "ws-002 still accepts connections after stop_host"
    );
    assert!(accepts(&lab, 0), "stopping ws-002 affected ws-001");
    assert!(lab.lab.hosts[1].upper.join("root/survives-reboot").exists());

    parc::lab::start_host(lab.dir(), "ws-002").unwrap();
    assert!(accepts(&lab, 1));
    assert_eq!(
        stdout(&lab.ssh(1, "hostname; cat /root/survives-reboot")),
        "ws-002\nkept"
    );
    assert_eq!(
        lab.host_file(1, "/root/survives-reboot").unwrap(),
        b"kept\n"
    );
}

#[test]
fn down_stops_every_process_and_removes_the_lab() {
    let lab = TestLab::start(2);
    // A detached watchdog, like the ones deployments leave behind.
    let watchdog: u32 =
        stdout(&lab.ssh(0, "setsid sleep 600 < /dev/null > /dev/null 2>&1 & echo $!"))
            .parse()
            .unwrap();
    let namespaces: Vec<Namespace> = lab.lab.hosts.iter().map(|h| Namespace::of(h.pid)).collect();
    let dir = lab.dir().to_path_buf();
    let before = processes_in(&namespaces);
    assert!(
        before.contains(&watchdog),
        "watchdog {watchdog} not found in {before:?}"
    );
    assert!(before.contains(&lab.lab.hosts[1].pid));

    let output = lab.down();
    assert!(stdout(&output).starts_with("lab down: stopped 2 hosts"));
    assert_eq!(processes_in(&namespaces), Vec::<u32>::new());
    assert!(!dir.exists(), "{} was not removed", dir.display());
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mountinfo.contains(dir.to_str().unwrap()));
}

#[test]
fn down_cleans_up_after_the_hosts_died() {
    let lab = TestLab::start(2);
    // What a reboot does: every process gone without any cleanup.
    for host in &lab.lab.hosts {
        for pid in processes_in(&[Namespace::of(host.pid)]) {
            // unshare exits by itself once sshd is gone, so ESRCH is expected.
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
    let dir = lab.dir().to_path_buf();
    stdout(&lab.down());
    assert!(!dir.exists());
}

#[test]
fn up_refuses_a_directory_whose_lab_runs() {
    let lab = TestLab::start(1);
    let spec = LabSpec {
        dir: lab.dir().to_path_buf(),
        hosts: 1,
        subnet: 254,
        inventory: None,
        disk_size: 0,
        init: Default::default(),
        rootfs_cache: PathBuf::from("/var/cache/parc-lab"),
    };
    assert!(matches!(
        parc::lab::up(&spec),
        Err(LabError::AlreadyUp { .. })
    ));
    stdout(&lab.ssh(0, "true"));
}

#[test]
fn up_refuses_subnet_zero() {
    require_root_and_sshd();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("lab");
    let output = Command::new(env!("CARGO_BIN_EXE_parc"))
        .args(["lab", "up", "--subnet", "0", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("subnet 0 is refused"));
    assert!(!dir.exists(), "a refused up created {}", dir.display());
}

#[test]
fn the_disk_image_is_the_hosts_dev_parc_disk() {
    let lab = TestLab::start_with(1, &["--disk-size", "1MiB"]);
    assert_eq!(stdout(&lab.ssh(0, "stat -c %s /dev/parc-disk")), "1048576");
    stdout(&lab.ssh(
        0,
        "printf parc | dd of=/dev/parc-disk bs=1 seek=4096 conv=notrunc 2>/dev/null",
    ));
    let disk = lab.lab.hosts[0].disk.as_ref().expect("host has a disk");
    let image = std::fs::read(disk).unwrap();
    assert_eq!(image.len(), 1 << 20);
    assert_eq!(&image[4096..4100], b"parc");
    assert!(
        !Path::new("/dev/parc-disk").exists(),
        "the disk leaked into the real /dev"
    );
}
