//! The sh each package manager needs: install, upgrade, remove, and the
//! standalone commands the journal runs to undo them.
//!
//! Undo commands run from the journal's restore script, without parc's sh
//! library, and depend on the package still being available from the host's
//! repositories: rolling back packages is best effort, unlike files.
//!
//! No command here puts `--` before the names, against the house rule for
//! operands: dnf 5 (Fedora's `dnf` since 41) refuses it ("Unknown argument
//! \"--\" for command \"install\"": its parser in libdnf5-cli matches `--`
//! against its named options and fails). Instead, a name starting with `-`
//! is refused before any command is built (`Package::checked_names`), so no name
//! can be read as an option by any manager.

use crate::transport::{quote, quote_words};

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

    /// The command installing the package names that follow it.
    pub fn install(self) -> &'static str {
        match self {
            // Retries after `apt-get update` once when the lists are missing or stale.
            Manager::Apt => "parc_apt_install --no-install-recommends",
            Manager::Dnf => "dnf install -y",
            Manager::Yum => "yum install -y",
            Manager::Apk => "apk add",
            Manager::Pacman => "pacman -S --noconfirm --needed",
            Manager::Zypper => "zypper -n install",
        }
    }

    /// The command upgrading the installed package names that follow it to
    /// the newest version the host's repositories offer.
    pub fn upgrade(self) -> &'static str {
        match self {
            Manager::Apt => "parc_apt_install --no-install-recommends --only-upgrade",
            Manager::Dnf => "dnf upgrade -y",
            Manager::Yum => "yum update -y",
            Manager::Apk => "apk add -u",
            Manager::Pacman => "pacman -S --noconfirm",
            Manager::Zypper => "zypper -n update",
        }
    }

    /// The command removing the package names that follow it
    /// (configuration files stay, where the manager keeps them). Standalone
    /// (no sh library): also the undo of an install ([`Manager::remove_all`]).
    pub fn remove(self) -> String {
        match self {
            Manager::Apt => format!("{APT} remove"),
            Manager::Dnf => "dnf remove -y".into(),
            Manager::Yum => "yum remove -y".into(),
            Manager::Apk => "apk del".into(),
            Manager::Pacman => "pacman -R --noconfirm".into(),
            Manager::Zypper => "zypper -n remove".into(),
        }
    }

    /// Standalone sh removing `names`: the undo of their install. With apt,
    /// only those installed: the undo also runs after the install failed
    /// (a name no repository knows), and `apt-get remove` of a name it
    /// does not know fails, which the restore would report as a problem
    /// on a host it restored whole. (Run on a restore only: a `dpkg-query`
    /// a name costs nothing in an apply.)
    pub fn remove_all(self, names: &[&str]) -> String {
        match self {
            Manager::Apt => format!(
                "set --; for p in {}; do [ \"$(dpkg-query -W -f '${{db:Status-Status}}' \"$p\" 2>/dev/null)\" != installed ] || set -- \"$@\" \"$p\"; done; [ $# -eq 0 ] || {} \"$@\"",
                quote_words(names),
                self.remove()
            ),
            _ => format!("{} {}", self.remove(), quote_words(names)),
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
