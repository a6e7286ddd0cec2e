//! `parc report`: a past run for a person to read. Hosts whose lines would
//! read the same (state, play, counts, and every change or failure listed)
//! are one group, so a rollout to 200 identical workstations reads as one
//! paragraph; groups needing attention come first. `--host` shows one host
//! in full: every resource, diffs, output and tests.

use std::fmt::Write;

use jiff::tz::TimeZone;
use serde_json::Value;

use super::record::{HostRecord, Report};
use crate::ui::lines;

pub fn render(report: &Report, tz: &TimeZone) -> String {
    let mut out = header(report, tz);
    let plan = report.action == "plan";
    let mut hosts: Vec<&HostRecord> = report.hosts.iter().collect();
    hosts.sort_by_key(|h| h.attention());
    // Hosts with the same summary line and the same listed changes, in the
    // order of the first of each.
    let mut groups: Vec<(String, String, Vec<&HostRecord>)> = Vec::new();
    for h in hosts {
        let (line, details) = (summary_fields(h, plan), changes(h));
        match groups
            .iter_mut()
            .find(|(l, d, _)| *l == line && *d == details)
        {
            Some((_, _, members)) => members.push(h),
            None => groups.push((line, details, vec![h])),
        }
    }
    for (line, details, members) in &groups {
        let slowest = members.iter().map(|h| h.elapsed_ms).max().unwrap_or(0);
        let secs = slowest as f64 / 1000.0;
        match members.as_slice() {
            [h] => {
                let _ = writeln!(out, "{} | {line} | {secs:.2}s", h.host);
            }
            _ => {
                let names: Vec<&str> = members.iter().map(|h| h.host.as_str()).collect();
                let same = match (details.is_empty(), members[0].attention()) {
                    (true, _) => "",
                    (false, 2..) => " — same changes",
                    (false, _) => " — same reasons",
                };
                let _ = writeln!(
                    out,
                    "{} hosts: {line}{same} | up to {secs:.2}s\n    {}",
                    members.len(),
                    host_ranges(&names)
                );
            }
        }
        out.push_str(details);
    }
    footer(&mut out, report);
    // Host names, errors and output in the record came from hosts.
    lines::escape_controls(&out)
}

/// One host of the run in full, or `None` if the run did not report it.
pub fn render_host(report: &Report, host: &str, tz: &TimeZone) -> Option<String> {
    let records: Vec<&HostRecord> = report.hosts.iter().filter(|h| h.host == host).collect();
    if records.is_empty() {
        return None;
    }
    let mut out = header(report, tz);
    let plan = report.action == "plan";
    for h in records {
        let _ = writeln!(
            out,
            "{} | {} | {:.2}s | {} remote commands",
            h.host,
            summary_fields(h, plan),
            h.elapsed_ms as f64 / 1000.0,
            h.execs
        );
        out.push_str(&full(h));
    }
    Some(lines::escape_controls(&out))
}

fn header(report: &Report, tz: &TimeZone) -> String {
    let local = |ts: jiff::Timestamp| {
        ts.to_zoned(tz.clone())
            .strftime("%Y-%m-%d %H:%M:%S %Z")
            .to_string()
    };
    let m = &report.meta;
    let mut out = format!("run {}: parc {}", report.run_id, report.action);
    if let Some(p) = &m.playbook {
        let _ = write!(out, " {}", p.display());
    }
    let _ = writeln!(out, " by {} on {}", m.operator, m.controller);
    for d in &m.allow_outside {
        let _ = writeln!(
            out,
            "profiles were allowed to read files outside their tree, from {}",
            d.display()
        );
    }
    let _ = write!(out, "started {}", local(report.started));
    match report.finished {
        Some(end) => {
            let _ = writeln!(out, ", finished {}", local(end));
        }
        None => out.push_str(", did not finish\n"),
    }
    out
}

fn footer(out: &mut String, report: &Report) {
    match (&report.summary, report.elapsed_ms) {
        (Some(s), Some(ms)) => out.push_str(&lines::summary(&report.action, s, ms)),
        _ => {
            let _ = write!(
                out,
                "{}: did not finish, {} of {} hosts reported",
                report.action,
                report.hosts.len(),
                report.targets.len()
            );
        }
    }
    out.push('\n');
}

/// `LABEL | play | N changed, M failed`: what a host's line says besides its
/// name and time.
fn summary_fields(h: &HostRecord, plan: bool) -> String {
    let mut out = match h.state.as_str() {
        "ok" | "changed" => h.state.clone(),
        other => other.to_uppercase(),
    };
    if let Some(p) = &h.play {
        let _ = write!(out, " | {p}");
    }
    if let (Some(c), Some(f)) = (h.changed, h.failed) {
        let verb = if plan { "will change" } else { "changed" };
        let _ = write!(out, " | {c} {verb}, {f} failed");
    }
    out
}

/// Host names in their order, consecutive numbers written as a range:
/// `ws-001..ws-018, ws-020`.
fn host_ranges(names: &[&str]) -> String {
    // (prefix, width, number) of a name ending in digits.
    fn split(n: &str) -> Option<(&str, usize, u64)> {
        let prefix = n.trim_end_matches(|c: char| c.is_ascii_digit());
        let num = &n[prefix.len()..];
        num.parse::<u64>().ok().map(|v| (prefix, num.len(), v))
    }
    let follows = |a: &str, b: &str| match (split(a), split(b)) {
        (Some((pa, wa, va)), Some((pb, wb, vb))) => pa == pb && wa == wb && va + 1 == vb,
        _ => false,
    };
    let mut parts = Vec::new();
    let mut i = 0;
    while i < names.len() {
        let mut j = i;
        while j + 1 < names.len() && follows(names[j], names[j + 1]) {
            j += 1;
        }
        match j - i {
            0 => parts.push(names[i].to_string()),
            1 => parts.push(format!("{}, {}", names[i], names[j])),
            _ => parts.push(format!("{}..{}", names[i], names[j])),
        }
        i = j + 1;
    }
    parts.join(", ")
}

/// The indented lines under a host in the summary: what changed or failed,
/// and why.
fn changes(h: &HostRecord) -> String {
    details(h, false)
}

/// Everything the record holds about a host: every resource with its diff
/// and output, every test.
fn full(h: &HostRecord) -> String {
    details(h, true)
}

fn details(h: &HostRecord, all: bool) -> String {
    let mut out = String::new();
    let indented = |out: &mut String, text: &str| {
        for l in text.lines() {
            let _ = writeln!(out, "        {l}");
        }
    };
    let outcome = h.outcome();
    let resources = outcome.get("resources").and_then(Value::as_array);
    for r in resources.into_iter().flatten() {
        let get = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
        let tag = match get("status") {
            "no_change" | "skipped" if !all => continue,
            "failed" => "FAILED".to_string(),
            other => other.replace('_', " "),
        };
        let _ = write!(out, "    {tag:<11} {}", get("resource"));
        let changes: Vec<&str> = r
            .get("changes")
            .and_then(Value::as_array)
            .map(|c| c.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if !changes.is_empty() {
            let _ = write!(out, ": {}", changes.join(", "));
        }
        out.push('\n');
        if all {
            indented(&mut out, get("diff"));
            indented(&mut out, get("output"));
        }
        indented(&mut out, get("error"));
    }
    // Tests: each failed check with what was expected and found (with
    // `all`, the passed tests too).
    let tests = ["results", "verification"]
        .iter()
        .filter_map(|k| outcome.get(k).and_then(Value::as_array))
        .flatten();
    for t in tests {
        let passed = t.get("passed").and_then(Value::as_bool) != Some(false);
        if passed && !all {
            continue;
        }
        let name = t.get("name").and_then(Value::as_str).unwrap_or_default();
        let tag = if passed { "passed" } else { "FAILED" };
        let _ = writeln!(out, "    {tag:<11} {name}");
        let checks = t.get("checks").and_then(Value::as_array);
        for c in checks.into_iter().flatten() {
            let get = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default();
            if c.get("passed").and_then(Value::as_bool) == Some(false) {
                let (what, expected, actual) = (get("what"), get("expected"), get("actual"));
                let _ = writeln!(out, "        {what}: expected {expected}, got {actual}");
            }
        }
    }
    let resource_failed = resources
        .into_iter()
        .flatten()
        .any(|r| r.get("error").is_some());
    if let Some(e) = HostRecord::error(&outcome).filter(|_| !resource_failed) {
        for l in e.lines() {
            let _ = writeln!(out, "    {l}");
        }
    }
    out
}
