//! Human and spreadsheet views of many hosts' facts.
//!
//! The table is for a technician's terminal, so it is one line per host with the
//! few things people look for; the CSV is for the asset register, so it carries
//! every identifying column and keeps lists in one cell each.

use std::net::IpAddr;

use super::{Disk, Facts};

/// One row per host: HOST OS KERNEL ARCH CPU MEM DISKS SERIAL ADDRESS.
pub fn render_table(rows: &[(String, Facts)]) -> String {
    let header = [
        "HOST", "OS", "KERNEL", "ARCH", "CPU", "MEM", "DISKS", "SERIAL", "ADDRESS",
    ];
    let mut table: Vec<Vec<String>> = vec![header.iter().map(|h| h.to_string()).collect()];
    for (host, f) in rows {
        let cpu = match (f.cpu.count, f.cpu.model.as_str()) {
            (0, "") => String::new(),
            (0, model) => model.to_string(),
            (count, "") => format!("{count} CPUs"),
            (count, model) => format!("{count} x {model}"),
        };
        let disks: Vec<String> = f.disks.iter().map(short_disk).collect();
        let cells = [
            host.clone(),
            os(f),
            f.kernel.clone(),
            f.arch.clone(),
            cpu,
            size(f.memory.total_bytes),
            disks.join(", "),
            f.dmi.serial.clone(),
            main_address(f).unwrap_or_default(),
        ];
        table.push(cells.into_iter().map(dash_if_empty).collect());
    }
    let mut widths = vec![0; header.len()];
    for row in &table {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &table {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// Asset-register columns, one row per host, lists joined with `; `.
pub fn render_csv(rows: &[(String, Facts)]) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let header = [
        "host",
        "hostname",
        "vendor",
        "product",
        "serial",
        "os_id",
        "os_version",
        "os_name",
        "kernel",
        "arch",
        "cpu_model",
        "cpu_count",
        "memory_gib",
        "disks",
        "macs",
        "addresses",
        "uptime_seconds",
    ];
    let mut records = vec![header.map(String::from).to_vec()];
    for (host, f) in rows {
        let disks: Vec<String> = f
            .disks
            .iter()
            .map(|d| format!("{} {}", short_disk(d), d.model).trim().to_string())
            .collect();
        let macs: Vec<String> = f
            .interfaces
            .iter()
            .filter(|i| !i.mac.is_empty())
            .map(|i| format!("{} {}", i.name, i.mac))
            .collect();
        let addresses: Vec<String> = f
            .interfaces
            .iter()
            .flat_map(|i| i.addresses.iter().map(move |a| format!("{} {a}", i.name)))
            .collect();
        records.push(vec![
            host.clone(),
            f.hostname.clone(),
            f.dmi.vendor.clone(),
            f.dmi.product.clone(),
            f.dmi.serial.clone(),
            f.os.id.clone(),
            f.os.version_id.clone(),
            f.os.pretty_name.clone(),
            f.kernel.clone(),
            f.arch.clone(),
            f.cpu.model.clone(),
            f.cpu.count.to_string(),
            format!("{:.1}", gib(f.memory.total_bytes)),
            disks.join("; "),
            macs.join("; "),
            addresses.join("; "),
            f.uptime_seconds.to_string(),
        ]);
    }
    for record in &records {
        // Writing equal-length records into a Vec cannot fail.
        writer
            .write_record(record)
            .expect("CSV into memory cannot fail");
    }
    let bytes = writer.into_inner().expect("CSV into memory cannot fail");
    String::from_utf8(bytes).expect("CSV of UTF-8 strings is UTF-8")
}

fn dash_if_empty(cell: String) -> String {
    if cell.is_empty() { "-".into() } else { cell }
}

/// `debian 12` reads better in a narrow column than the pretty name.
fn os(f: &Facts) -> String {
    if f.os.id.is_empty() {
        f.os.pretty_name.clone()
    } else {
        format!("{} {}", f.os.id, f.os.version_id)
            .trim()
            .to_string()
    }
}

fn short_disk(d: &Disk) -> String {
    let kind = if d.rotational { "hdd" } else { "ssd" };
    format!("{} {} {kind}", d.name, size(d.size_bytes))
}

fn gib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

/// Binary units, GiB for everything a workstation usually has.
fn size(bytes: u64) -> String {
    const TIB: u64 = 1 << 40;
    match bytes {
        0 => String::new(),
        b if b >= TIB => format!("{:.1} TiB", b as f64 / TIB as f64),
        b if b >= 1 << 30 => format!("{:.1} GiB", gib(b)),
        b => format!("{:.0} MiB", b as f64 / (1u64 << 20) as f64),
    }
}

/// The address people would type to reach the host: the first routable IPv4,
/// else the first non-link-local IPv6. Interfaces are already ordered with the
/// default-route one first.
fn main_address(f: &Facts) -> Option<String> {
    let all = || {
        f.interfaces
            .iter()
            .flat_map(|i| &i.addresses)
            .filter_map(|a| {
                let ip: IpAddr = a.split('/').next()?.parse().ok()?;
                Some(ip)
            })
    };
    let v4 =
        all().find(|ip| matches!(ip, IpAddr::V4(v4) if !v4.is_link_local() && !v4.is_loopback()));
    let v6 = || {
        all().find(
            |ip| matches!(ip, IpAddr::V6(v6) if !v6.is_unicast_link_local() && !v6.is_loopback()),
        )
    };
    v4.or_else(v6).map(|ip| ip.to_string())
}
