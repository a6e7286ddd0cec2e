//! Names, addresses and on-disk layout of a lab.
//!
//! Kept in one place because `up`, `down`, `start_host` and the tests must agree on
//! them exactly: `down` finds a lab's processes by the paths defined here, not by
//! trusting recorded pids that may have been reused since a reboot.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use super::{LabError, LabSpec};

/// 250 hosts per /24 keeps the last octet in 1..=250, clear of .0 and .255, which
/// people read as network and broadcast addresses even on loopback.
const HOSTS_PER_BLOCK: usize = 250;
pub(crate) const MAX_HOSTS: usize = HOSTS_PER_BLOCK * 256;

/// `ws-001`, `ws-002`, ...: three digits, more when the lab has more than 999 hosts,
/// so that names sort in host order.
pub(crate) fn host_name(index: usize, total: usize) -> String {
    let width = total.to_string().len().max(3);
    format!("ws-{:0width$}", index + 1)
}

/// Host `index` (0-based) lives at 127.SUBNET.(index / 250).(index % 250 + 1).
pub(crate) fn host_address(subnet: u8, index: usize) -> Ipv4Addr {
    // Both casts are in range: validate() caps index below MAX_HOSTS.
    Ipv4Addr::new(
        127,
        subnet,
        (index / HOSTS_PER_BLOCK) as u8,
        (index % HOSTS_PER_BLOCK + 1) as u8,
    )
}

pub(crate) fn validate(spec: &LabSpec) -> Result<(), LabError> {
    if spec.subnet == 0 || spec.subnet == 255 {
        return Err(LabError::BadSubnet {
            subnet: spec.subnet,
        });
    }
    if spec.hosts == 0 {
        return Err(LabError::NoHosts);
    }
    if spec.hosts > MAX_HOSTS {
        return Err(LabError::TooManyHosts {
            hosts: spec.hosts,
            max: MAX_HOSTS,
        });
    }
    Ok(())
}

/// The lab directory ends up inside overlay mount options, which separate fields
/// with `,` and layers with `:` and offer no portable escaping, and inside ssh
/// options, where `"` and `\\` are quoting characters.
pub(crate) fn check_dir_path(dir: &Path) -> Result<(), LabError> {
    let text = check_utf8("lab directory", dir)?;
    let bad = |reason| LabError::BadPath {
        what: "lab directory",
        path: dir.to_path_buf(),
        reason,
    };
    if text.contains([',', ':', '\\', '"']) || text.chars().any(char::is_control) {
        return Err(bad(
            "its path contains `,`, `:`, `\\`, `\"` or a control character, which overlay mount options and ssh options cannot carry",
        ));
    }
    Ok(())
}

/// Paths end up in YAML inventories and state.json, which only carry UTF-8.
pub(crate) fn check_utf8<'a>(what: &'static str, path: &'a Path) -> Result<&'a str, LabError> {
    path.to_str().ok_or_else(|| LabError::BadPath {
        what,
        path: path.to_path_buf(),
        reason: "its path is not UTF-8",
    })
}

/// Files `up` writes directly into the lab directory. `down` removes exactly these
/// (plus the inventory wherever it was written) and never anything else.
pub(crate) const STATE: &str = "state.json";
pub(crate) const STATE_TMP: &str = "state.json.tmp";
pub(crate) const HOSTS: &str = "hosts";
pub(crate) const KEY: &str = "id_ed25519";
pub(crate) const KEY_PUB: &str = "id_ed25519.pub";
pub(crate) const KNOWN_HOSTS: &str = "known_hosts";
pub(crate) const INVENTORY: &str = "inventory.yml";
pub(crate) const ANSIBLE_INVENTORY: &str = "ansible-inventory.yml";
/// Name of each host's start script; also how `down` recognises a host that is
/// still booting.
pub(crate) const SCRIPT: &str = "start.sh";
pub(crate) const LAB_FILES: [&str; 6] = [
    HOSTS,
    KEY,
    KEY_PUB,
    KNOWN_HOSTS,
    INVENTORY,
    ANSIBLE_INVENTORY,
];

/// One host's directory, `DIR/hosts/<name>/`.
#[derive(Debug, Clone)]
pub(crate) struct HostDir(pub PathBuf);

impl HostDir {
    pub fn new(lab_dir: &Path, name: &str) -> Self {
        HostDir(lab_dir.join(HOSTS).join(name))
    }
    /// Overlay upper layer: every change made on the host, and nothing else.
    pub fn upper(&self) -> PathBuf {
        self.0.join("upper")
    }
    pub fn work(&self) -> PathBuf {
        self.0.join("work")
    }
    /// Mount point of the host's root; only populated inside its namespace.
    pub fn merged(&self) -> PathBuf {
        self.0.join("merged")
    }
    /// Mount point for the tmpfs that carries the host's private `/dev` layer.
    pub fn devfs(&self) -> PathBuf {
        self.0.join("devfs")
    }
    /// sshd config, host key, authorized keys and shell rc files, copied in at boot.
    pub fn config(&self) -> PathBuf {
        self.0.join("config")
    }
    pub fn disk(&self) -> PathBuf {
        self.0.join("disk.img")
    }
    pub fn script(&self) -> PathBuf {
        self.0.join(SCRIPT)
    }
    pub fn log(&self) -> PathBuf {
        self.0.join("log")
    }
    /// Written by the start script with its own pid, which sshd keeps through exec.
    pub fn pid_file(&self) -> PathBuf {
        self.0.join("pid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(hosts: usize, subnet: u8) -> LabSpec {
        LabSpec {
            dir: PathBuf::from("lab"),
            hosts,
            subnet,
            inventory: None,
            disk_size: 0,
            init: Default::default(),
            rootfs_cache: PathBuf::from("/var/cache/parc-lab"),
        }
    }

    #[test]
    fn names_are_zero_padded_to_sort_in_order() {
        assert_eq!(host_name(0, 3), "ws-001");
        assert_eq!(host_name(19, 20), "ws-020");
        assert_eq!(host_name(998, 999), "ws-999");
        assert_eq!(host_name(0, 1000), "ws-0001");
        assert_eq!(host_name(999, 1000), "ws-1000");
    }

    #[test]
    fn addresses_fill_250_per_block() {
        assert_eq!(host_address(100, 0), Ipv4Addr::new(127, 100, 0, 1));
        assert_eq!(host_address(100, 249), Ipv4Addr::new(127, 100, 0, 250));
        assert_eq!(host_address(100, 250), Ipv4Addr::new(127, 100, 1, 1));
        assert_eq!(
            host_address(7, MAX_HOSTS - 1),
            Ipv4Addr::new(127, 7, 255, 250)
        );
    }

    #[test]
    fn subnet_zero_and_bad_counts_are_refused() {
        assert!(matches!(
            validate(&spec(3, 0)),
            Err(LabError::BadSubnet { subnet: 0 })
        ));
        assert!(matches!(
            validate(&spec(3, 255)),
            Err(LabError::BadSubnet { subnet: 255 })
        ));
        assert!(matches!(validate(&spec(0, 100)), Err(LabError::NoHosts)));
        assert!(matches!(
            validate(&spec(MAX_HOSTS + 1, 100)),
            Err(LabError::TooManyHosts { .. })
        ));
        validate(&spec(MAX_HOSTS, 1)).unwrap();
        validate(&spec(1, 254)).unwrap();
    }

    #[test]
    fn dir_paths_that_break_overlay_options_are_refused() {
        check_dir_path(Path::new("/tmp/my lab")).unwrap();
        for bad in [
            "/tmp/a,b",
            "/tmp/a:b",
            "/tmp/a\\b",
            "/tmp/a\"b",
            "/tmp/a\nb",
        ] {
            assert!(
                matches!(
                    check_dir_path(Path::new(bad)),
                    Err(LabError::BadPath { .. })
                ),
                "{bad:?} accepted"
            );
        }
    }
}
