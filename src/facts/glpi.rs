//! Facts as a GLPI native inventory (the JSON glpi-agent sends), one document
//! per host, for the asset register desktop-support teams already keep in
//! GLPI. Only what the probe knows is filled in; GLPI keeps its own values
//! for the rest.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::{Facts, Package, PackageDb};

/// The GLPI document of one host. `now` dates the boot time from the uptime.
pub fn render(facts: &Facts, now: jiff::Timestamp) -> Value {
    let mb = |bytes: u64| bytes / (1024 * 1024);
    let mut content = Map::new();
    content.insert(
        "versionclient".into(),
        json!(format!("parc-{}", env!("CARGO_PKG_VERSION"))),
    );
    content.insert(
        "hardware".into(),
        json!({"name": facts.hostname, "memory": mb(facts.memory.total_bytes)}),
    );
    let d = &facts.dmi;
    let mut bios = json!({
        "smanufacturer": d.vendor, "smodel": d.product, "ssn": d.serial,
        "bmanufacturer": d.bios_vendor, "bversion": d.bios_version,
    });
    if let Some(date) = bios_date(&d.bios_date) {
        bios["bdate"] = json!(date);
    }
    content.insert("bios".into(), bios);
    let mut os = json!({
        "name": facts.os.id, "version": facts.os.version_id,
        "full_name": facts.os.pretty_name, "kernel_name": "linux",
        "kernel_version": facts.kernel, "arch": facts.arch,
    });
    let uptime = jiff::SignedDuration::from_secs(facts.uptime_seconds as i64);
    if let Ok(boot) = now.checked_sub(uptime) {
        os["boot_time"] = json!(boot.strftime("%Y-%m-%d %H:%M:%S").to_string());
    }
    content.insert("operatingsystem".into(), os);
    content.insert(
        "cpus".into(),
        json!([{"name": facts.cpu.model, "thread": facts.cpu.count}]),
    );
    content.insert(
        "memories".into(),
        json!([{"caption": "System memory", "capacity": mb(facts.memory.total_bytes)}]),
    );
    let storages: Vec<Value> = facts
        .disks
        .iter()
        .map(|disk| {
            json!({"name": disk.name, "model": disk.model, "type": "disk",
                   "disksize": mb(disk.size_bytes)})
        })
        .collect();
    content.insert("storages".into(), json!(storages));
    let networks: Vec<Value> = facts.interfaces.iter().map(network).collect();
    content.insert("networks".into(), json!(networks));
    // No list rather than a wrong one: GLPI would take the empty list of a
    // failed query for software uninstalled.
    if let Some(packages) = facts.packages.as_ref().filter(|p| !p.unreadable) {
        let softwares: Vec<Value> = packages
            .list
            .iter()
            .map(|p| software(p, packages.database, &facts.os.id))
            .collect();
        content.insert("softwares".into(), json!(softwares));
    }
    json!({
        "action": "inventory",
        "deviceid": device_id(facts),
        "itemtype": "Computer",
        "content": content,
    })
}

/// Stable per machine: the host name glpi-agent starts its ids with, then a
/// digest of the installation's machine-id (else of the firmware identity
/// and first MAC), so a reinstalled or renamed machine is told apart by GLPI's
/// own rules on serials, not mixed up by parc.
pub fn device_id(facts: &Facts) -> String {
    let identity = if facts.machine_id.is_empty() {
        let mac = facts.interfaces.first().map_or("", |i| i.mac.as_str());
        format!(
            "{}\0{}\0{}\0{mac}",
            facts.dmi.vendor, facts.dmi.product, facts.dmi.serial
        )
    } else {
        facts.machine_id.clone()
    };
    let digest = Sha256::digest(identity.as_bytes());
    let hex = crate::image::digest::hex(&digest[..8]);
    format!("{}-{hex}", facts.hostname)
}

/// Firmware dates are `MM/DD/YYYY`; GLPI wants `YYYY-MM-DD`.
fn bios_date(date: &str) -> Option<String> {
    let mut parts = date.split('/');
    let (m, d, y) = (parts.next()?, parts.next()?, parts.next()?);
    let all_digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    (parts.next().is_none() && all_digits(m, 2) && all_digits(d, 2) && all_digits(y, 4))
        .then(|| format!("{y}-{m}-{d}"))
}

/// A package as glpi-agent describes it, so GLPI's software dictionary
/// aggregates parc's entries and the agent's alike: for dpkg the publisher is
/// the distribution as `lsb_release -i` names it (glpi-agent's choice, as
/// Debian packages have no vendor), for rpm the package's vendor.
fn software(p: &Package, db: PackageDb, os_id: &str) -> Value {
    let mut s = Map::new();
    s.insert("name".into(), json!(p.name));
    let mut text = |key: &str, value: &str| {
        if !value.is_empty() {
            s.insert(key.into(), json!(value));
        }
    };
    text("version", &p.version);
    text("arch", &p.arch);
    text("system_category", &p.category);
    match db {
        PackageDb::Dpkg => {
            let mut chars = os_id.chars();
            let distributor: String = chars
                .next()
                .map(|first| first.to_uppercase().chain(chars).collect())
                .unwrap_or_default();
            text("publisher", &distributor);
        }
        PackageDb::Rpm | PackageDb::Apk => text("publisher", &p.publisher),
    }
    let from = match db {
        PackageDb::Dpkg => "deb",
        PackageDb::Rpm => "rpm",
        PackageDb::Apk => "apk",
    };
    s.insert("from".into(), json!(from));
    if let Some(size) = p.size_bytes {
        s.insert("filesize".into(), json!(size));
    }
    if let Some(installed) = p.installed {
        s.insert(
            "install_date".into(),
            json!(installed.strftime("%Y-%m-%d").to_string()),
        );
    }
    Value::Object(s)
}

fn network(iface: &super::Interface) -> Value {
    let mut n = json!({"description": iface.name, "mac": iface.mac});
    let v4 = iface.addresses.iter().find(|a| !a.contains(':'));
    if let Some((addr, prefix)) = v4.and_then(|a| a.split_once('/')) {
        n["ipaddress"] = json!(addr);
        if let Ok(bits) = prefix.parse::<u32>().map(|p| p.min(32)) {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            n["ipmask"] = json!(std::net::Ipv4Addr::from(mask).to_string());
        }
    }
    let v6 = iface.addresses.iter().find(|a| a.contains(':'));
    if let Some((addr, _)) = v6.and_then(|a| a.split_once('/')) {
        n["ipaddress6"] = json!(addr);
    }
    n
}
