//! What the machine must provide before a lab can start.
//!
//! Checked up front so that a missing package produces one clear message naming
//! the Debian package, instead of a half-started lab and an obscure shell error in
//! a host log.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::LabError;

/// Where Debian installs the tools. The host start script sets exactly this PATH,
/// so a tool found here is the tool the script will run.
pub(crate) const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Inside each host sshd is exec'd at this path (the host's root is an overlay of
/// the real `/`), so it must exist at exactly this place.
pub(crate) const SSHD: &str = "/usr/sbin/sshd";

/// Tools the controller runs directly, resolved to absolute paths.
#[derive(Debug, Clone)]
pub(crate) struct Tools {
    pub setsid: PathBuf,
    pub unshare: PathBuf,
    pub ssh_keygen: PathBuf,
}

/// Root check, then tools.
pub(crate) fn check() -> Result<Tools, LabError> {
    check_root(nix::unistd::geteuid().as_raw())?;
    let dirs: Vec<PathBuf> = SYSTEM_PATH.split(':').map(PathBuf::from).collect();
    check_tools(&dirs, Path::new(SSHD))
}

pub(crate) fn check_root(euid: u32) -> Result<(), LabError> {
    if euid == 0 {
        Ok(())
    } else {
        Err(LabError::NotRoot { uid: euid })
    }
}

pub(crate) fn check_tools(dirs: &[PathBuf], sshd: &Path) -> Result<Tools, LabError> {
    let find = |tool: &'static str, package: &'static str| {
        find_tool(tool, dirs).ok_or(LabError::MissingTool { tool, package })
    };
    let unshare = find("unshare", "util-linux")?;
    let setsid = find("setsid", "util-linux")?;
    // Only the host start script runs these; checking them here turns a failed
    // boot with a log to read into an install instruction.
    find("mount", "mount")?;
    find("chroot", "coreutils")?;
    find("hostname", "hostname")?;
    let ssh_keygen = find("ssh-keygen", "openssh-client")?;
    if !is_executable(sshd) {
        return Err(LabError::MissingTool {
            tool: SSHD,
            package: "openssh-server",
        });
    }
    Ok(Tools {
        setsid,
        unshare,
        ssh_keygen,
    })
}

/// What `--init systemd` needs on top of [`check`]: systemd-nspawn to boot the
/// hosts, debootstrap to build their root file system. Returns debootstrap.
pub(crate) fn check_systemd() -> Result<PathBuf, LabError> {
    let dirs: Vec<PathBuf> = SYSTEM_PATH.split(':').map(PathBuf::from).collect();
    let find = |tool: &'static str, package: &'static str| {
        find_tool(tool, &dirs).ok_or(LabError::MissingTool { tool, package })
    };
    find("systemd-nspawn", "systemd-container")?;
    find("debootstrap", "debootstrap")
}

fn find_tool(name: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    dirs.iter()
        .map(|dir| dir.join(name))
        .find(|path| is_executable(path))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_root_is_refused_with_advice() {
        let err = check_root(1000).unwrap_err();
        assert!(matches!(err, LabError::NotRoot { uid: 1000 }));
        let msg = err.to_string();
        assert!(msg.contains("parc lab needs root"), "{msg}");
        assert!(msg.contains("sudo parc lab up"), "{msg}");
        check_root(0).unwrap();
    }

    fn fake_bin(dir: &Path, names: &[&str]) {
        for name in names {
            let path = dir.join(name);
            std::fs::write(&path, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }

    #[test]
    fn missing_tool_names_its_debian_package() {
        let bin = tempfile::tempdir().unwrap();
        fake_bin(
            bin.path(),
            &["unshare", "setsid", "mount", "chroot", "hostname"],
        );
        let sshd = bin.path().join("sshd");
        fake_bin(bin.path(), &["sshd"]);
        let err = check_tools(&[bin.path().to_path_buf()], &sshd).unwrap_err();
        assert!(matches!(
            err,
            LabError::MissingTool {
                tool: "ssh-keygen",
                package: "openssh-client"
            }
        ));
        assert!(err.to_string().contains("apt-get install openssh-client"));
    }

    #[test]
    fn missing_sshd_asks_for_openssh_server() {
        let bin = tempfile::tempdir().unwrap();
        fake_bin(
            bin.path(),
            &[
                "unshare",
                "setsid",
                "mount",
                "chroot",
                "hostname",
                "ssh-keygen",
            ],
        );
        let err = check_tools(&[bin.path().to_path_buf()], &bin.path().join("sshd")).unwrap_err();
        assert!(matches!(
            err,
            LabError::MissingTool {
                package: "openssh-server",
                ..
            }
        ));
    }

    #[test]
    fn non_executable_file_does_not_count_as_a_tool() {
        let bin = tempfile::tempdir().unwrap();
        std::fs::write(bin.path().join("unshare"), "").unwrap();
        assert_eq!(find_tool("unshare", &[bin.path().to_path_buf()]), None);
    }
}
