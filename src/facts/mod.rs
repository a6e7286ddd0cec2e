//! What a workstation is, gathered in one round trip.
//!
//! Targets are only guaranteed sshd and a POSIX sh (often busybox), so facts come
//! from a shell probe that reads /proc and /sys and prints a line format rather
//! than from an agent or from tools like `lsblk`/`ip` that may be missing. Keeping
//! it to one exec per host is what makes `parc facts` over hundreds of hosts fast,
//! and keeping the parsing on this side is what lets it be tested without hosts.

pub mod glpi;
pub mod glpi_server;
mod parse;
mod render;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use parse::{FactsError, parse};
pub use render::{render_csv, render_table};

/// The probe script; its output is what [`parse`] reads.
pub const PROBE: &str = include_str!("probe.sh");

/// The command that runs [`PROBE`] on a target.
///
/// Wrapped in `sh -c` because ssh hands the command to the user's login shell,
/// which may be fish or csh on a technician-configured account; `exec`, so
/// that the login shell becomes that sh rather than start it.
pub fn probe_command() -> String {
    format!("exec sh -c {}", crate::transport::quote(PROBE))
}

/// The command that runs [`PROBE`] and lists the installed packages too, for
/// GLPI inventories (`parc facts --format glpi`): [`probe_command`] plus the
/// probe's switch, which carries the bounds the probe cuts the list to.
pub fn inventory_probe_command() -> String {
    let script =
        format!("parc_packages='{MAX_PACKAGES} {PACKAGES_BYTES} {MAX_PACKAGE_FIELD}'\n{PROBE}");
    format!("sh -c {}", crate::transport::quote(&script))
}

/// At most this many packages per host: several times what a desktop
/// installation holds (2,000 to 5,000), so only a hostile or broken package
/// database is cut.
pub const MAX_PACKAGES: usize = 20_000;

/// At most this many bytes of package lines per host.
pub const PACKAGES_BYTES: usize = 4 << 20;

/// Each package field (name, version, ...) is cut to this many bytes.
pub const MAX_PACKAGE_FIELD: usize = 256;

/// Far above what the facts probe prints (a few KiB), far below what would
/// strain the controller: a host cannot flood it through its facts.
pub const OUTPUT_LIMIT: usize = 1 << 20;

/// [`OUTPUT_LIMIT`] for [`inventory_probe_command`]: the facts, then the
/// package lines the probe stops at [`PACKAGES_BYTES`].
pub const INVENTORY_OUTPUT_LIMIT: usize = OUTPUT_LIMIT + PACKAGES_BYTES;

/// Everything known about one host. Missing information is an empty string or
/// zero rather than an error, because a partial inventory of a locked-down or
/// odd machine is still worth having.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct Facts {
    pub hostname: String,
    pub os: Os,
    pub kernel: String,
    pub arch: String,
    pub cpu: Cpu,
    pub memory: Memory,
    pub disks: Vec<Disk>,
    /// The interface carrying the IPv4 default route comes first, so templates and
    /// reports can treat `interfaces[0]` as the host's main network connection.
    pub interfaces: Vec<Interface>,
    pub dmi: Dmi,
    pub uptime_seconds: u64,
    /// /etc/machine-id: set once per installation, so it names the machine
    /// across renames and new network cards. Empty where there is none.
    pub machine_id: String,
    /// Installed packages: only gathered for GLPI inventories (see
    /// [`inventory_probe_command`]), and `None` on a host without dpkg, rpm
    /// or apk. Not serialized: up to [`PACKAGES_BYTES`] per host, they would
    /// swell every run report that records facts, and templates never see
    /// them (apply does not list packages).
    #[serde(skip)]
    pub packages: Option<Packages>,
}

/// The installed packages of a host, as its package database lists them.
#[derive(Debug, Clone, PartialEq)]
pub struct Packages {
    pub database: PackageDb,
    pub list: Vec<Package>,
    /// Entries not in `list`: past [`MAX_PACKAGES`] or [`PACKAGES_BYTES`], or
    /// unreadable. Non-zero means the list is incomplete.
    pub left_out: u64,
    /// The database query failed: `list` holds what it printed before, and
    /// is no statement about what is installed.
    pub unreadable: bool,
}

/// Which package database a host's packages were read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PackageDb {
    Dpkg,
    Rpm,
    Apk,
}

/// One installed package. Text fields are as the database has them (cut to
/// [`MAX_PACKAGE_FIELD`] bytes), empty when it has none.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub arch: String,
    pub size_bytes: Option<u64>,
    /// dpkg's section, rpm's group.
    pub category: String,
    /// rpm only: dpkg and apk do not record when a package was installed.
    pub installed: Option<jiff::Timestamp>,
    /// rpm's vendor.
    pub publisher: String,
}

/// Values from /etc/os-release, unquoted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct Os {
    pub id: String,
    pub version_id: String,
    pub pretty_name: String,
    /// os-release's `ID_LIKE` (a space-separated list, e.g. `rhel centos fedora`), or
    /// `id` when the distribution is its own family, so templates can branch on
    /// Debian-like vs RHEL-like without listing every derivative.
    pub family: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct Cpu {
    pub model: String,
    /// Logical processors the kernel sees.
    pub count: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct Memory {
    pub total_bytes: u64,
    pub available_bytes: u64,
}

/// A whole block device (not a partition); loop, ram and zram devices are left out
/// because they say nothing about the hardware.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct Disk {
    pub name: String,
    pub size_bytes: u64,
    pub rotational: bool,
    pub model: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct Interface {
    pub name: String,
    pub mac: String,
    /// `address/prefix`, IPv4 before IPv6.
    pub addresses: Vec<String>,
}

/// Firmware identity, the columns an asset register is keyed on. Empty when
/// unreadable: the serial is root-only on most distributions.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct Dmi {
    pub vendor: String,
    pub product: String,
    pub serial: String,
    pub bios_vendor: String,
    pub bios_version: String,
    /// As the firmware gives it, usually `MM/DD/YYYY`.
    pub bios_date: String,
}
