//! What a workstation is, gathered in one round trip.
//!
//! Targets are only guaranteed sshd and a POSIX sh (often busybox), so facts come
//! from a shell probe that reads /proc and /sys and prints a line format rather
//! than from an agent or from tools like `lsblk`/`ip` that may be missing. Keeping
//! it to one exec per host is what makes `parc facts` over hundreds of hosts fast,
//! and keeping the parsing on this side is what lets it be tested without hosts.

pub mod glpi;
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

/// Far above what the facts probe prints (a few KiB), far below what would
/// strain the controller: a host cannot flood it through its facts.
pub const OUTPUT_LIMIT: usize = 1 << 20;

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
