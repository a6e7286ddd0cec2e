//! The shell script that boots one host, and the files it installs.
//!
//! Booting is a shell script rather than Rust because it must run *inside* the new
//! mount and UTS namespaces created by `unshare`, then `exec` into sshd so the pid
//! the script records is sshd's. Keeping it on disk also lets `start_host` reboot a
//! host exactly as `up` booted it, and lets a person read what a host is.

use std::net::Ipv4Addr;

use super::cgroups;
use super::layout::HostDir;
use super::require::{SSHD, SYSTEM_PATH};
use crate::transport::quote;

/// Login records that sshd writes on every terminal session (`wtmp`, `lastlog`)
/// or failed login (`btmp`). Inside the host they are covered by empty files on
/// the host's /run tmpfs, so that "a second run changes nothing" checks see only
/// what a deployment changed. Regular files rather than /dev/null, because sshd
/// refuses a lastlog that is not a regular file and tells the SSH client so.
const SILENCED_LOGS: [&str; 3] = ["wtmp", "lastlog", "btmp"];

pub(crate) fn start_script(host: &HostDir, name: &str, with_disk: bool) -> String {
    let host_dir = quote(&host.0.to_string_lossy());
    let name_q = quote(name);
    let logs = SILENCED_LOGS.join(" ");
    let disk = if with_disk {
        "# The disk image appears as /dev/parc-disk, in this host's private /dev only.\n\
         : > \"$M/dev/parc-disk\"\n\
         mount --bind \"$H/disk.img\" \"$M/dev/parc-disk\"\n"
    } else {
        ""
    };
    format!(
        r#"#!/bin/sh
# Boots lab host {name}; written by `parc lab up`, run inside `unshare --mount --uts`.
set -eu
PATH={SYSTEM_PATH}
export PATH
H={host_dir}
M="$H/merged"
# exec keeps this pid, so it becomes sshd's pid.
echo $$ > "$H/pid"
mount -t overlay overlay -o "lowerdir=/,upperdir=$H/upper,workdir=$H/work" "$M"
mount --rbind /proc "$M/proc"
mount --rbind /sys "$M/sys"
# /dev is an overlay of the real /dev so that files created in it stay private to
# this host instead of appearing in the real /dev.
mount -t tmpfs -o mode=0755 tmpfs "$H/devfs"
mkdir "$H/devfs/upper" "$H/devfs/work"
mount -t overlay overlay -o "lowerdir=/dev,upperdir=$H/devfs/upper,workdir=$H/devfs/work" "$M/dev"
mount --rbind /dev/pts "$M/dev/pts"
mount -t tmpfs -o mode=1777 tmpfs "$M/dev/shm"
mount -t tmpfs -o mode=0755 tmpfs "$M/run"
mount -t tmpfs -o mode=1777 tmpfs "$M/tmp"
mkdir -p "$M/run/sshd" "$M/run/parc-lab"
cp "$H/config/sshd_config" "$H/config/host_key" "$H/config/authorized_keys" "$M/run/parc-lab/"
mkdir "$M/run/parc-lab/log"
for f in {logs}; do
  [ -e "$M/var/log/$f" ] || : > "$M/var/log/$f"
  : > "$M/run/parc-lab/log/$f"
  mount --bind "$M/run/parc-lab/log/$f" "$M/var/log/$f"
done
# Plain shell rc files on first boot only: later boots keep what deployments wrote.
for f in bashrc profile; do
  [ -e "$H/upper/root/.$f" ] || cp "$H/config/$f" "$M/root/.$f"
done
{disk}hostname {name_q}
exec chroot "$M" {SSHD} -D -e -f /run/parc-lab/sshd_config
"#
    )
}

/// Boots a `--init systemd` host: its root is an overlay of the cached Debian tree
/// `lower`, and `systemd-nspawn --boot` runs that tree's systemd as PID 1 in new
/// PID, mount, UTS and IPC namespaces, sharing the controller's network so that
/// sshd can listen on the host's own loopback address.
///
/// `--register=no --keep-unit`: the controller's init need not be systemd, so
/// there is no machined to register with nor a unit to create. Resolver and time
/// zone are left as the tree has them (`off`) so that the controller's files are
/// never copied into the host's upper layer.
pub(crate) fn systemd_start_script(
    host: &HostDir,
    name: &str,
    lower: &str,
    with_disk: bool,
) -> String {
    let host_dir = quote(&host.0.to_string_lossy());
    // The disk image appears as /dev/parc-disk in the container's own /dev.
    let disk = if with_disk {
        " \\\n  --bind=\"$H/disk.img:/dev/parc-disk\""
    } else {
        ""
    };
    let lower = quote(lower);
    let name_q = quote(name);
    let cgroup_mounts = cgroups::MOUNTS.join(" ");
    let cgroup_top = cgroups::TOP;
    format!(
        r#"#!/bin/sh
# Boots lab host {name} with systemd as PID 1; written by `parc lab up`, run inside
# `unshare --mount`.
set -eu
PATH={SYSTEM_PATH}
export PATH
H={host_dir}
M="$H/merged"
L={lower}
# This shell stays for the host's life, across reboots; its pid is recorded.
echo $$ > "$H/pid"
# A cgroup of its own in each hierarchy, named after this directory: nspawn
# creates the host's groups under it, and `parc lab down` finds the host by it.
for c in {cgroup_mounts}; do
  [ -e "$c/cgroup.procs" ] || continue
  mkdir -p "$c/{cgroup_top}$H"
  echo $$ > "$c/{cgroup_top}$H/cgroup.procs"
done
mount -t overlay overlay -o "lowerdir=$L,upperdir=$H/upper,workdir=$H/work" "$M"
# The lab's sshd settings, key and the client key, refreshed on every boot.
mkdir -p "$M{SYSTEMD_LAB_DIR}" "$M/etc/systemd/system/ssh.service.d"
cp "$H/config/sshd_config" "$H/config/host_key" "$H/config/authorized_keys" "$M{SYSTEMD_LAB_DIR}/"
cp "$H/config/ssh-lab.conf" "$M/etc/systemd/system/ssh.service.d/parc-lab.conf"
# A reboot inside the host ends systemd-nspawn with status 133: boot again, over
# the same overlay (files kept, /run fresh), as a machine does. A poweroff (0)
# or a failure ends the host.
while :; do
  status=0
  systemd-nspawn --quiet --register=no --keep-unit --boot --machine={name_q} \
    --console=pipe --resolv-conf=off --timezone=off --link-journal=no -D "$M"{disk} || status=$?
  [ "$status" -eq 133 ] || exit "$status"
done
"#
    )
}

/// Drop-in for the host's `ssh.service`: the same commands as Debian's unit, with
/// the lab's config, so that `systemctl reload ssh` and `sshd -t` behave as on a
/// workstation while sshd listens on the host's address only.
pub(crate) fn ssh_dropin() -> String {
    let config = format!("{SYSTEMD_LAB_DIR}/sshd_config");
    format!(
        "# Written by `parc lab up`: the lab host's sshd listens on its own address.\n\
         [Service]\n\
         ExecStartPre=\n\
         ExecStartPre=/usr/sbin/sshd -t -f {config}\n\
         ExecStart=\n\
         ExecStart=/usr/sbin/sshd -D -f {config} $SSHD_OPTS\n\
         ExecReload=\n\
         ExecReload=/usr/sbin/sshd -t -f {config}\n\
         ExecReload=/bin/kill -HUP $MAINPID\n"
    )
}

/// Where a namespace host's sshd finds its config, key and authorized keys.
pub(crate) const NAMESPACE_LAB_DIR: &str = "/run/parc-lab";
/// The same on a systemd host: persistent, because /run is the host's own tmpfs
/// there and sshd must find its files after a reboot.
pub(crate) const SYSTEMD_LAB_DIR: &str = "/etc/parc-lab";

/// sshd settings for a lab host. The pid file lets a profile restart this
/// sshd (`kill -HUP`) the way a real host restarts its service. Limits are raised because tests and benchmarks
/// open many sessions at once against a single host, and the defaults would make
/// sshd drop connections at random (MaxStartups) or refuse channels (MaxSessions).
/// `dir` is where the host finds its lab files: `/run/parc-lab` on namespace hosts,
/// [`SYSTEMD_LAB_DIR`] on systemd hosts, whose /run systemd mounts itself.
pub(crate) fn sshd_config(address: Ipv4Addr, dir: &str, pid_file: &str) -> String {
    format!(
        "# sshd of a parc lab host; written by `parc lab up`.\n\
         ListenAddress {address}:22\n\
         HostKey {dir}/host_key\n\
         AuthorizedKeysFile {dir}/authorized_keys\n\
         UsePAM no\n\
         PidFile {pid_file}\n\
         StrictModes no\n\
         PermitRootLogin prohibit-password\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UseDNS no\n\
         PrintMotd no\n\
         PrintLastLog no\n\
         MaxStartups 200\n\
         MaxSessions 100\n\
         Subsystem sftp internal-sftp\n"
    )
}

/// Replaces the controller's own `/root/.bashrc` in every host: the one on this
/// machine runs `pyenv init`, which costs ~80 ms per command and rewrites files
/// under /root on every login.
pub(crate) const BASHRC: &str = "# ~/.bashrc of a parc lab host (written by `parc lab up`).\n";

pub(crate) const PROFILE: &str = "# ~/.profile of a parc lab host (written by `parc lab up`).\n\
if [ -n \"${BASH:-}\" ] && [ -f ~/.bashrc ]; then . ~/.bashrc; fi\n";

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn script_quotes_the_host_dir_once_and_uses_it_everywhere() {
        let dir = "/tmp/it's a \"lab\" $HOME/hosts/ws-001";
        let script = start_script(&HostDir(PathBuf::from(dir)), "ws-001", false);
        let assignment = script.lines().find(|l| l.starts_with("H=")).unwrap();
        let echoed = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{assignment}; printf %s \"$H\""))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&echoed.stdout), dir);
        assert_eq!(script.matches("ws-001").count(), 3, "{script}");
        assert!(!script.contains("parc-disk"));
        assert!(script.ends_with(
            "hostname ws-001\nexec chroot \"$M\" /usr/sbin/sshd -D -e -f /run/parc-lab/sshd_config\n"
        ));
    }

    #[test]
    fn script_binds_the_disk_only_when_asked() {
        let host = HostDir(PathBuf::from("/lab/hosts/ws-002"));
        let script = start_script(&host, "ws-002", true);
        assert!(script.contains("mount --bind \"$H/disk.img\" \"$M/dev/parc-disk\"\n"));
    }

    #[test]
    fn script_is_valid_sh() {
        let host = HostDir(PathBuf::from("/lab/hosts/ws-001"));
        let status = std::process::Command::new("sh")
            .arg("-n")
            .arg("-c")
            .arg(start_script(&host, "ws-001", true))
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[test]
    fn systemd_script_is_valid_sh_and_boots_again_after_a_reboot() {
        let host = HostDir(PathBuf::from("/lab/hosts/ws-001"));
        let script = systemd_start_script(&host, "ws-001", "/var/cache/parc-lab/x", true);
        let status = std::process::Command::new("sh")
            .arg("-n")
            .arg("-c")
            .arg(&script)
            .status()
            .unwrap();
        assert!(status.success());
        assert!(script.contains("--machine=ws-001 \\\n"), "{script}");
        assert!(script.contains("--bind=\"$H/disk.img:/dev/parc-disk\""));
        assert!(script.contains("[ \"$status\" -eq 133 ] || exit \"$status\""));
    }

    #[test]
    fn sshd_listens_only_on_the_host_address() {
        let config = sshd_config(
            Ipv4Addr::new(127, 100, 0, 7),
            NAMESPACE_LAB_DIR,
            "/run/parc-lab/sshd.pid",
        );
        assert!(config.contains("ListenAddress 127.100.0.7:22\n"));
        assert!(config.contains("PasswordAuthentication no\n"));
    }
}
