//! The sh each package manager needs: install, upgrade, remove, and the
//! standalone commands the journal runs to undo them.
//!
//! Undo commands run from the journal's restore script, without parc's sh
//! library, and depend on the package still being available from the host's
//! repositories: rolling back packages is best effort, unlike files.

use crate::transport::quote;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Manager {
    Apt,
    Dnf,
    Yum,
    Apk,
    Pacman,
    Zypper,
}

/// apt-get without questions; configuration files the admin changed are kept.
const APT: &str = "DEBIAN_FRONTEND=noninteractive apt-get -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold";

impl Manager {
    /// From the probe's `manager=` (`parc_pkg_manager` in lib.sh).
    pub fn from_probe(name: &str) -> Option<Manager> {
        Some(match name {
            "apt" => Manager::Apt,
            "dnf" => Manager::Dnf,
            "yum" => Manager::Yum,
            "apk" => Manager::Apk,
            "pacman" => Manager::Pacman,
            "zypper" => Manager::Zypper,
            _ => return None,
        })
    }

    /// Install the missing `names` in one command.
    pub fn install(self, names: &[&str]) -> String {
        let names = words(names);
        match self {
            // Retries after `apt-get update` once when the lists are missing or stale.
            Manager::Apt => format!("parc_apt_install --no-install-recommends {names}"),
            Manager::Dnf => format!("dnf install -y {names}"),
            Manager::Yum => format!("yum install -y {names}"),
            Manager::Apk => format!("apk add {names}"),
            Manager::Pacman => format!("pacman -S --noconfirm --needed {names}"),
            Manager::Zypper => format!("zypper -n install {names}"),
        }
    }

    /// Upgrade installed `names` to the newest version the host's repositories offer.
    pub fn upgrade(self, names: &[&str]) -> String {
        let names = words(names);
        match self {
            Manager::Apt => {
                format!("parc_apt_install --no-install-recommends --only-upgrade {names}")
            }
            Manager::Dnf => format!("dnf upgrade -y {names}"),
            Manager::Yum => format!("yum update -y {names}"),
            Manager::Apk => format!("apk add -u {names}"),
            Manager::Pacman => format!("pacman -S --noconfirm {names}"),
            Manager::Zypper => format!("zypper -n update {names}"),
        }
    }

    /// Remove `names` (configuration files stay, where the manager keeps them).
    /// Standalone: also used as the undo of an install.
    pub fn remove(self, names: &[&str]) -> String {
        let names = words(names);
        match self {
            Manager::Apt => format!("{APT} remove {names}"),
            Manager::Dnf => format!("dnf remove -y {names}"),
            Manager::Yum => format!("yum remove -y {names}"),
            Manager::Apk => format!("apk del {names}"),
            Manager::Pacman => format!("pacman -R --noconfirm {names}"),
            Manager::Zypper => format!("zypper -n remove {names}"),
        }
    }

    /// Standalone sh putting back `(name, version)` pairs, for undoing a
    /// removal or an upgrade. `None` where the manager cannot install a given
    /// version from its repositories (pacman).
    pub fn reinstall(self, pinned: &[(&str, &str)]) -> Option<String> {
        let pin = |sep: &str| {
            pinned
                .iter()
                .map(|(n, v)| match v {
                    &"" => quote(n),
                    v => quote(&format!("{n}{sep}{v}")),
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        Some(match self {
            Manager::Apt => format!("{APT} --allow-downgrades install {}", pin("=")),
            Manager::Dnf => format!("dnf install -y {}", pin("-")),
            Manager::Yum => format!("yum install -y {}", pin("-")),
            Manager::Apk => format!("apk add {}", pin("=")),
            Manager::Zypper => format!("zypper -n install --oldpackage {}", pin("=")),
            Manager::Pacman => return None,
        })
    }
}

/// Quoted words joined by spaces.
fn words(names: &[&str]) -> String {
    names.iter().map(|n| quote(n)).collect::<Vec<_>>().join(" ")
}
