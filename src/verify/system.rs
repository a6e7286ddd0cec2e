//! `package`, `service`, `dns`, `mount` and `kernel_param`: the system around
//! the files.

use serde::{Deserialize, Serialize};

use super::probe::{Check, Probe, Probed};
use crate::resources::script::Script;
use crate::transport::quote;

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageTest {
    pub name: String,
    #[serde(default = "yes")]
    pub installed: bool,
    /// The installed version, exactly or as a prefix not followed by a digit:
    /// `1:9.2` accepts `1:9.2p1-2` and `1:9.2.1` but not `1:9.20`.
    pub version: Option<String>,
}

impl Probe for PackageTest {
    fn label(&self) -> String {
        format!("package {}", self.name)
    }

    fn probe(&self, id: &str, s: &mut Script) {
        s.sh(&format!("pv_start {id}"));
        // The manager's answer for every package of the script comes from
        // one process (Script::package): i0= and v0=.
        let dpkg = s.package("apt", &self.name, 0);
        let rpm = s.package("rpm", &self.name, 0);
        let apk = s.package("apk", &self.name, 0);
        let pacman = s.package("pacman", &self.name, 0);
        s.sh(&format!(
            "if pv_have dpkg-query; then echo manager=dpkg; {dpkg}
elif pv_have rpm; then echo manager=rpm; {rpm}
elif pv_have apk; then echo manager=apk; {apk}
elif pv_have pacman; then echo manager=pacman; {pacman}
else echo manager=none; fi"
        ));
        s.sh("pv_end");
    }

    fn evaluate(&self, probed: &Probed) -> Vec<Check> {
        let expected = if self.installed {
            "installed"
        } else {
            "not installed"
        };
        if probed.get("manager") == Some("none") {
            return vec![Check::impossible(
                "installed",
                expected,
                "unknown: no package manager found on the host (dpkg, rpm, apk or pacman)",
            )];
        }
        let installed = probed.yes("i0");
        let mut checks = vec![Check::equal(
            "installed",
            expected,
            if installed {
                "installed"
            } else {
                "not installed"
            },
        )];
        if let (Some(want), true, true) = (&self.version, installed, self.installed) {
            let have = probed.get("v0").unwrap_or("");
            let prefix = have.strip_prefix(want.as_str()).is_some_and(|rest| {
                rest.is_empty() || !rest.starts_with(|c: char| c.is_ascii_digit())
            });
            checks.push(Check::new("version", want.as_str(), have, prefix));
        }
        checks
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceTest {
    pub name: String,
    pub running: Option<bool>,
    pub enabled: Option<bool>,
}

/// `systemctl is-enabled` answers that mean the unit starts at boot.
const ENABLED: [&str; 3] = ["enabled", "enabled-runtime", "alias"];

impl Probe for ServiceTest {
    fn label(&self) -> String {
        format!("service {}", self.name)
    }

    fn probe(&self, id: &str, s: &mut Script) {
        let unit = s.unit(&self.name);
        s.sh(&format!(
            "pv_start {id}
{unit}
if [ -d /run/systemd/system ] && pv_have systemctl; then echo systemd=yes
  pv_kv_line active \"$_ua\"
  pv_kv_line enabled \"$_ue\"
fi
pv_end"
        ));
    }

    fn evaluate(&self, probed: &Probed) -> Vec<Check> {
        // A bare `service: {name: x}` means "x runs".
        let running = self.running.or(self.enabled.is_none().then_some(true));
        let systemd = probed.yes("systemd");
        [("running", running), ("enabled", self.enabled)]
            .into_iter()
            .filter_map(|(what, want)| Some((what, want?)))
            .map(|(what, want)| {
                let expected = match (what, want) {
                    ("running", true) => "running",
                    ("running", false) => "stopped",
                    (_, true) => "enabled",
                    (_, false) => "disabled",
                };
                if !systemd {
                    return Check::impossible(
                        what,
                        expected,
                        "unknown: the host does not run systemd, the only service manager parc checks",
                    );
                }
                let (actual, is) = if what == "running" {
                    let active = probed.get("active").unwrap_or("unknown");
                    (active, active == "active")
                } else {
                    let enabled = probed.get("enabled").unwrap_or("unknown");
                    (enabled, ENABLED.contains(&enabled))
                };
                Check::new(what, expected, actual, is == want)
            })
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsTest {
    pub name: String,
    #[serde(default = "yes")]
    pub resolves: bool,
    /// An address the name must resolve to (among others).
    pub address: Option<String>,
}

impl Probe for DnsTest {
    fn label(&self) -> String {
        format!("dns {}", self.name)
    }

    fn probe(&self, id: &str, s: &mut Script) {
        // Without getent (busybox): /etc/hosts, then the DNS through nslookup,
        // whose output is "Address: IP" or, in old versions, "Address 1: IP NAME".
        // A name starting with - (no host's) would be an option to both: it
        // does not resolve.
        s.sh(&format!(
            "pv_start {id}; pv_n={n}; pv_a=
case $pv_n in -*) ;; *)
if pv_have getent; then pv_a=$(getent hosts \"$pv_n\" | awk '{{ print $1 }}')
else
  pv_a=$(pv_n=\"$pv_n\" awk '!/^[ \t]*#/ {{ for (i = 2; i <= NF; i++) if ($i == ENVIRON[\"pv_n\"]) print $1 }}' /etc/hosts 2>/dev/null)
  if [ -z \"$pv_a\" ] && pv_have nslookup; then
    pv_a=$(nslookup \"$pv_n\" 2>/dev/null | awk '/^Name:/ {{ n = 1; next }} n && /^Address/ {{ sub(/^Address( [0-9]+)?:[ \t]*/, \"\"); print $1 }}')
  fi
fi ;;
esac
pv_s=; set -f
for pv_x in $pv_a; do pv_s=\"$pv_s${{pv_s:+ }}$pv_x\"; done
set +f; parc_kv addresses \"$pv_s\"
pv_end",
            n = quote(&self.name)
        ));
    }

    fn evaluate(&self, probed: &Probed) -> Vec<Check> {
        let expected = if self.resolves {
            "resolves"
        } else {
            "does not resolve"
        };
        let addresses: Vec<&str> = probed
            .get("addresses")
            .unwrap_or("")
            .split_whitespace()
            .collect();
        let actual = if addresses.is_empty() {
            "does not resolve".to_string()
        } else {
            format!("resolves to {}", addresses.join(", "))
        };
        let mut checks = vec![Check::new(
            "resolves",
            expected,
            actual.clone(),
            addresses.is_empty() != self.resolves,
        )];
        if let (Some(want), true) = (&self.address, self.resolves) {
            checks.push(Check::new(
                "address",
                want.as_str(),
                actual,
                addresses.contains(&want.as_str()),
            ));
        }
        checks
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MountTest {
    pub path: String,
    pub fstype: Option<String>,
}

impl Probe for MountTest {
    fn label(&self) -> String {
        format!("mount {}", self.path)
    }

    fn probe(&self, id: &str, s: &mut Script) {
        // One copy of the mount table for every mount test.
        let limit = super::probe::CONTENT_LIMIT;
        let (copy, first) = s.capture_shared(id, "mounts", "mounts", limit as u64);
        s.sh(&format!("pv_start {id}"));
        if first {
            s.sh(&format!("pv_copy /proc/mounts {copy} {limit}"));
        }
        s.sh("pv_end");
    }

    fn evaluate(&self, probed: &Probed) -> Vec<Check> {
        let Some((table, cut)) = probed.content("mounts") else {
            return vec![Check::impossible(
                "mounted",
                "a mount point",
                "unknown: /proc/mounts is not readable on the host",
            )];
        };
        let want = normalize(&self.path);
        // The last entry for a mount point is the one on top.
        let fstype = table
            .lines()
            .filter_map(|l| {
                let mut f = l.split(' ');
                let (_, point, fstype) = (f.next()?, f.next()?, f.next()?);
                (normalize(&unescape(point)) == want).then_some(fstype)
            })
            .next_back();
        // A table cut short (more mounts than parc reads) may hold the
        // mount point past the cut, or a mount on top of the one read.
        let unknown = |what: &str, expected: &str| {
            Check::impossible(
                what,
                expected,
                "unknown: /proc/mounts was longer than parc reads, and a later entry may say otherwise",
            )
        };
        let mut checks = vec![match (fstype, cut) {
            (None, true) => unknown("mounted", "a mount point"),
            _ => Check::new(
                "mounted",
                "a mount point",
                fstype.map_or("not a mount point".to_string(), |t| {
                    format!("mounted ({t})")
                }),
                fstype.is_some(),
            ),
        }];
        if let (Some(want), Some(have)) = (&self.fstype, fstype) {
            checks.push(match cut {
                true => unknown("fstype", want),
                false => Check::equal("fstype", want.as_str(), have),
            });
        }
        checks
    }
}

fn normalize(path: &str) -> &str {
    match path.trim_end_matches('/') {
        "" => "/",
        p => p,
    }
}

/// /proc/mounts writes space, tab, newline and backslash as `\040`-style octal.
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut rest = field;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest
            .get(i + 1..i + 4)
            .and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(c) => {
                out.push(char::from(c));
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelParamTest {
    /// sysctl name: `net.ipv4.ip_forward` (or with `/` separators).
    pub name: String,
    /// Compared with whitespace squeezed, so `32768 60999` matches the tab-separated value.
    pub value: String,
}

impl KernelParamTest {
    /// The file under /proc/sys, as sysctl maps names: dots are separators
    /// unless the name uses slashes (then dots belong to a component, such as an
    /// interface name like `eth0.100`).
    fn proc_path(&self) -> Option<String> {
        let parts: Vec<&str> = if self.name.contains('/') {
            self.name.split('/').collect()
        } else {
            self.name.split('.').collect()
        };
        let bad = |p: &&str| p.is_empty() || *p == "." || *p == "..";
        (!parts.iter().any(bad)).then(|| format!("/proc/sys/{}", parts.join("/")))
    }
}

impl Probe for KernelParamTest {
    fn label(&self) -> String {
        format!("kernel_param {}", self.name)
    }

    fn probe(&self, id: &str, s: &mut Script) {
        s.sh(&format!("pv_start {id}"));
        if let Some(path) = self.proc_path() {
            let copy = s.capture(id, "value", 65536);
            s.sh(&format!("pv_copy_small {} {copy}", quote(&path)));
        }
        s.sh("pv_end");
    }

    fn evaluate(&self, probed: &Probed) -> Vec<Check> {
        let squeeze = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        let want = squeeze(&self.value);
        let (actual, passed) = match (self.proc_path(), probed.content("value")) {
            (None, _) => ("not a kernel parameter name".to_string(), false),
            (Some(path), None) => (format!("no such parameter ({path} is not readable)"), false),
            (Some(_), Some((text, _))) => {
                let actual = squeeze(&text);
                let passed = actual == want;
                (actual, passed)
            }
        };
        vec![Check::new("value", want, actual, passed)]
    }
}

#[cfg(test)]
#[path = "system_tests.rs"]
mod tests;
