//! Reading the probe's `key=value` lines back into [`Facts`].
//!
//! Strict on purpose: any line this side does not understand is an error naming
//! it, because a silently half-read probe would put wrong hardware in an asset
//! register. Empty values are accepted as "unknown", since the probe prints a key
//! even when the host had nothing to say about it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{
    Disk, Facts, Interface, MAX_PACKAGE_FIELD, MAX_PACKAGES, Package, PackageDb, Packages,
};

/// The first line the probe prints. Anything before it (a login script's chatter
/// under bash, which reads `.bashrc` even for ssh commands) is skipped.
const HEADER: &str = "parc-facts=1";

/// Why the probe output could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FactsError {
    #[error(
        "the output contains no `{HEADER}` line, so it did not come from this version of \
         parc's facts probe (the target may lack a POSIX sh, or the probe was killed before it \
         printed anything); no facts were recorded for this host"
    )]
    MissingHeader,
    #[error(
        "line {line} of the facts probe output (`{text}`) {problem}; no facts were recorded \
         for this host, because a partly understood probe could describe the wrong machine"
    )]
    BadLine {
        line: usize,
        text: String,
        problem: LineProblem,
    },
}

/// What was wrong with one probe line.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LineProblem {
    #[error("is not a `key=value` line")]
    NotKeyValue,
    #[error("has the key `{0}`, which the probe never prints")]
    UnknownKey(String),
    #[error("should hold a whole number for `{0}`")]
    NotANumber(&'static str),
    #[error("should be `disk=NAME SECTORS ROTATIONAL(0|1) MODEL`")]
    BadDisk,
    #[error("should be `iface=NAME MAC`")]
    BadInterface,
    #[error("should be `addr=NAME ADDRESS[/PREFIX or /NETMASK]`")]
    BadAddress,
    #[error("should be `inet6=NAME HEX_ADDRESS HEX_PREFIX_LENGTH`")]
    BadInet6,
    #[error("should be `packages=dpkg`, `packages=rpm` or `packages=apk`")]
    BadPackageDb,
    #[error("comes before the `packages=` line that says which database it is from")]
    PackageWithoutDb,
    #[error(
        "should be `pkg=` and seven %XX-escaped fields separated by tabs, the first (the name) not empty"
    )]
    BadPackage,
}

/// Parse the probe's standard output.
pub fn parse(stdout: &str) -> Result<Facts, FactsError> {
    let mut lines = stdout.lines().enumerate();
    if !lines.any(|(_, l)| l.trim() == HEADER) {
        return Err(FactsError::MissingHeader);
    }
    let mut facts = Facts::default();
    let mut default_route = None;
    for (index, text) in lines {
        if text.trim().is_empty() {
            continue;
        }
        let bad = |problem| FactsError::BadLine {
            line: index + 1,
            text: text.to_string(),
            problem,
        };
        let (key, value) = text.split_once('=').ok_or(bad(LineProblem::NotKeyValue))?;
        let key = key.trim();
        // Package fields are escaped and may end empty: their tabs are kept.
        let value = if key == "pkg" { value } else { value.trim() };
        apply(&mut facts, &mut default_route, key, value).map_err(bad)?;
    }
    if facts.os.family.is_empty() {
        facts.os.family = facts.os.id.clone();
    }
    if let Some(name) = default_route
        && let Some(pos) = facts.interfaces.iter().position(|i| i.name == name)
    {
        let main = facts.interfaces.remove(pos);
        facts.interfaces.insert(0, main);
    }
    Ok(facts)
}

fn apply(
    facts: &mut Facts,
    default_route: &mut Option<String>,
    key: &str,
    value: &str,
) -> Result<(), LineProblem> {
    match key {
        "hostname" => facts.hostname = value.to_string(),
        "os_id" => facts.os.id = unquote(value),
        "os_version_id" => facts.os.version_id = unquote(value),
        "os_pretty_name" => facts.os.pretty_name = unquote(value),
        "os_id_like" => facts.os.family = unquote(value),
        "kernel" => facts.kernel = value.to_string(),
        "arch" => facts.arch = value.to_string(),
        "cpu_model" => facts.cpu.model = value.to_string(),
        "cpu_count" => facts.cpu.count = number(value, "cpu_count")?,
        "mem_total_kb" => facts.memory.total_bytes = kib(value, "mem_total_kb")?,
        "mem_available_kb" => facts.memory.available_bytes = kib(value, "mem_available_kb")?,
        "disk" => facts.disks.push(disk(value)?),
        "iface" => {
            let (name, mac) = value.split_once(' ').unwrap_or((value, ""));
            if name.is_empty() {
                return Err(LineProblem::BadInterface);
            }
            interface(facts, name).mac = mac.trim().to_string();
        }
        "default_route" if !value.is_empty() => *default_route = Some(value.to_string()),
        "default_route" => {}
        "addr" => {
            let (name, address) = value.split_once(' ').ok_or(LineProblem::BadAddress)?;
            let cidr = cidr(address.trim()).ok_or(LineProblem::BadAddress)?;
            interface(facts, name).addresses.push(cidr);
        }
        "inet6" => {
            let (name, cidr) = inet6(value).ok_or(LineProblem::BadInet6)?;
            interface(facts, name).addresses.push(cidr);
        }
        "dmi_vendor" => facts.dmi.vendor = value.to_string(),
        "dmi_product" => facts.dmi.product = value.to_string(),
        "dmi_serial" => facts.dmi.serial = value.to_string(),
        "bios_vendor" => facts.dmi.bios_vendor = value.to_string(),
        "bios_version" => facts.dmi.bios_version = value.to_string(),
        "bios_date" => facts.dmi.bios_date = value.to_string(),
        "machine_id" => facts.machine_id = value.to_string(),
        "packages" => {
            let database = match value {
                "dpkg" => PackageDb::Dpkg,
                "rpm" => PackageDb::Rpm,
                "apk" => PackageDb::Apk,
                _ => return Err(LineProblem::BadPackageDb),
            };
            facts.packages = Some(Packages {
                database,
                list: Vec::new(),
                left_out: 0,
                unreadable: false,
            });
        }
        "pkg" => {
            let packages = facts
                .packages
                .as_mut()
                .ok_or(LineProblem::PackageWithoutDb)?;
            let package = package(packages.database, value).ok_or(LineProblem::BadPackage)?;
            // The probe stops at the same bound; a host is not trusted to.
            if packages.list.len() < MAX_PACKAGES {
                packages.list.push(package);
            } else {
                packages.left_out += 1;
            }
        }
        "packages_unreadable" => {
            let packages = facts
                .packages
                .as_mut()
                .ok_or(LineProblem::PackageWithoutDb)?;
            packages.unreadable = true;
        }
        "packages_left_out" => {
            let packages = facts
                .packages
                .as_mut()
                .ok_or(LineProblem::PackageWithoutDb)?;
            let left_out: u64 = number(value, "packages_left_out")?;
            packages.left_out = packages.left_out.saturating_add(left_out);
        }
        // /proc/uptime has centiseconds; whole seconds are all anyone reports.
        "uptime" => {
            let whole = value.split_once('.').map_or(value, |(s, _)| s);
            facts.uptime_seconds = number(whole, "uptime")?;
        }
        other => return Err(LineProblem::UnknownKey(other.to_string())),
    }
    Ok(())
}

/// A `pkg=` line's fields, NAME VERSION ARCH SIZE CATEGORY INSTALLED
/// PUBLISHER, each %XX-escaped by the probe. A size or date the database got
/// wrong is left unknown rather than failing the host's facts.
fn package(db: PackageDb, value: &str) -> Option<Package> {
    let fields: Vec<String> = value.split('\t').map(unescape_field).collect();
    let [name, version, arch, size, category, installed, publisher] =
        <[String; 7]>::try_from(fields).ok()?;
    if name.is_empty() {
        return None;
    }
    // dpkg counts KiB; rpm and apk bytes.
    let unit = if db == PackageDb::Dpkg { 1024 } else { 1 };
    Some(Package {
        name,
        version,
        arch,
        size_bytes: size.parse::<u64>().ok().and_then(|s| s.checked_mul(unit)),
        category,
        installed: installed
            .parse::<i64>()
            .ok()
            .and_then(|s| jiff::Timestamp::from_second(s).ok()),
        publisher,
    })
}

/// One field, unescaped, as UTF-8 (invalid bytes replaced), no longer than
/// [`MAX_PACKAGE_FIELD`] bytes whatever the probe sent.
fn unescape_field(field: &str) -> String {
    let mut text = percent_encoding::percent_decode_str(field)
        .decode_utf8_lossy()
        .into_owned();
    if text.len() > MAX_PACKAGE_FIELD {
        let mut end = MAX_PACKAGE_FIELD;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

fn number<T: std::str::FromStr + Default>(
    value: &str,
    key: &'static str,
) -> Result<T, LineProblem> {
    if value.is_empty() {
        return Ok(T::default());
    }
    value.parse().map_err(|_| LineProblem::NotANumber(key))
}

fn kib(value: &str, key: &'static str) -> Result<u64, LineProblem> {
    number::<u64>(value, key)?
        .checked_mul(1024)
        .ok_or(LineProblem::NotANumber(key))
}

/// os-release values are shell-quoted (`PRETTY_NAME="Debian GNU/Linux 12"`).
fn unquote(raw: &str) -> String {
    match shlex::split(raw) {
        Some(words) => words.join(" "),
        None => raw.to_string(),
    }
}

fn disk(value: &str) -> Result<Disk, LineProblem> {
    let mut parts = value.splitn(4, ' ');
    let name = parts.next().filter(|n| !n.is_empty());
    let sectors = parts.next().and_then(|s| s.parse::<u64>().ok());
    let rotational = match parts.next() {
        Some("0") => Some(false),
        Some("1") => Some(true),
        _ => None,
    };
    match (name, sectors.and_then(|s| s.checked_mul(512)), rotational) {
        (Some(name), Some(size_bytes), Some(rotational)) => Ok(Disk {
            name: name.to_string(),
            size_bytes,
            rotational,
            model: parts.next().unwrap_or("").trim().to_string(),
        }),
        _ => Err(LineProblem::BadDisk),
    }
}

/// The interface called `name`, added if the probe listed an address for an
/// interface /sys did not show.
fn interface<'a>(facts: &'a mut Facts, name: &str) -> &'a mut Interface {
    let pos = match facts.interfaces.iter().position(|i| i.name == name) {
        Some(pos) => pos,
        None => {
            facts.interfaces.push(Interface {
                name: name.to_string(),
                ..Interface::default()
            });
            facts.interfaces.len() - 1
        }
    };
    &mut facts.interfaces[pos]
}

/// `ADDRESS`, `ADDRESS/LEN` or `ADDRESS/NETMASK` (ifconfig) as canonical `ADDRESS/LEN`.
fn cidr(text: &str) -> Option<String> {
    let (address, suffix) = match text.split_once('/') {
        Some((a, s)) => (a, Some(s)),
        None => (text, None),
    };
    let address: IpAddr = address.parse().ok()?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    let len = match suffix {
        None => max,
        Some(s) if s.contains('.') => {
            let mask = u32::from(s.parse::<Ipv4Addr>().ok()?);
            (mask.leading_ones() + mask.trailing_zeros() == 32).then(|| mask.leading_ones())?
        }
        Some(s) => s.parse().ok().filter(|len| *len <= max)?,
    };
    Some(format!("{address}/{len}"))
}

/// A /proc/net/if_inet6 row: 32 hex digits of address, prefix length in hex.
fn inet6(value: &str) -> Option<(&str, String)> {
    let mut parts = value.split(' ');
    let name = parts.next().filter(|n| !n.is_empty())?;
    let hex = parts.next().filter(|h| h.len() == 32)?;
    let address = Ipv6Addr::from(u128::from_str_radix(hex, 16).ok()?);
    let len = u8::from_str_radix(parts.next()?, 16)
        .ok()
        .filter(|l| *l <= 128)?;
    parts
        .next()
        .is_none()
        .then(|| (name, format!("{address}/{len}")))
}
