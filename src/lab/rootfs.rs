//! The root file system of `--init systemd` hosts: one Debian bookworm tree built
//! once with debootstrap and shared read-only by every host as its overlay's lower
//! layer.
//!
//! It lives in a cache directory that outlives labs (debootstrap downloads about
//! 260 MB and takes most of a minute), is built into a temporary directory and
//! renamed into place only when complete, so a killed build is never booted, and
//! is built under a lock so that labs started at the same time build it once.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::LabError;

/// Where the root file system is cached unless `--rootfs-cache` says otherwise.
pub const DEFAULT_CACHE: &str = "/var/cache/parc-lab";
/// Name of the finished tree inside the cache directory.
const NAME: &str = "bookworm-systemd";
const SUITE: &str = "bookworm";
const MIRROR: &str = "http://deb.debian.org/debian";
/// What a systemd workstation needs to be managed over SSH: an init, the
/// `systemctl` that talks to it over D-Bus, and sshd.
const PACKAGES: &str = "systemd,systemd-sysv,openssh-server,dbus";
/// Units that only make sense on a console or real hardware and would otherwise
/// fail or wait on every boot, leaving the host `degraded`.
const MASKED: [&str; 2] = ["console-getty.service", "getty@tty1.service"];

/// Returns the cached root file system, building it first when missing.
pub(crate) fn ensure(cache: &Path, debootstrap: &Path) -> Result<PathBuf, LabError> {
    let root = cache.join(NAME);
    if root.is_dir() {
        return Ok(root);
    }
    std::fs::create_dir_all(cache).map_err(LabError::io("create", cache))?;
    let lock_path = cache.join(format!("{NAME}.lock"));
    let lock = File::create(&lock_path).map_err(LabError::io("create", &lock_path))?;
    // Blocks while another parc builds it; the kernel drops the lock if that one dies.
    lock.lock().map_err(LabError::io("lock", &lock_path))?;
    if root.is_dir() {
        return Ok(root);
    }
    // Under the lock, a temporary tree can only be left over by a killed build.
    let tmp = cache.join(format!("{NAME}.partial"));
    if tmp.symlink_metadata().is_ok() {
        // A build killed while configuring packages leaves /proc and /sys
        // mounted inside: detach them so that removing the tree stays inside it.
        unmount_under(&tmp)?;
        std::fs::remove_dir_all(&tmp).map_err(LabError::io("remove", &tmp))?;
    }
    let log_path = cache.join(format!("{NAME}.log"));
    let log = File::create(&log_path).map_err(LabError::io("create", &log_path))?;
    let log_err = log.try_clone().map_err(LabError::io("open", &log_path))?;
    let mut command = Command::new(debootstrap);
    command
        .args(["--variant=minbase", &format!("--include={PACKAGES}"), SUITE])
        .arg(&tmp)
        .arg(MIRROR)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    let status = command.status().map_err(|source| LabError::Spawn {
        command: format!("{command:?}"),
        source,
    })?;
    if !status.success() {
        return Err(LabError::RootfsBuild {
            log: log_path.clone(),
            log_tail: super::boot::log_tail(&log_path),
        });
    }
    prepare(&tmp)?;
    std::fs::rename(&tmp, &root).map_err(LabError::io("rename", &tmp))?;
    Ok(root)
}

/// Detaches every mount at or below `dir`, deepest first.
fn unmount_under(dir: &Path) -> Result<(), LabError> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(LabError::io("read", "/proc/self/mountinfo"))?;
    // The mount point is the fifth field; mountinfo escapes spaces as \040, and
    // the cache path cannot contain any (it is checked like the lab directory).
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|point| point.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for point in points {
        let mut command = Command::new("umount");
        command.args(["--lazy", "--"]).arg(&point);
        let output = command.output().map_err(|source| LabError::Spawn {
            command: format!("{command:?}"),
            source,
        })?;
        if !output.status.success() {
            return Err(LabError::Command {
                command: format!("{command:?}"),
                status: output.status,
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
            });
        }
    }
    Ok(())
}

/// Makes the fresh tree boot cleanly in a container: no console logins, and no
/// machine id, which each host gets its own of in its upper layer.
fn prepare(root: &Path) -> Result<(), LabError> {
    let units = root.join("etc/systemd/system");
    for unit in MASKED {
        let link = units.join(unit);
        std::os::unix::fs::symlink("/dev/null", &link).map_err(LabError::io("create", &link))?;
    }
    let machine_id = root.join("etc/machine-id");
    std::fs::write(&machine_id, "").map_err(LabError::io("write", &machine_id))
}

/// A fresh 128-bit machine id in the form systemd writes to /etc/machine-id.
pub(crate) fn machine_id() -> Result<String, LabError> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).map_err(|e| {
        LabError::io("read", "the kernel's random source")(std::io::Error::other(e.to_string()))
    })?;
    Ok(format!("{:032x}\n", u128::from_be_bytes(bytes)))
}
