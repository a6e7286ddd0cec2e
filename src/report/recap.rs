//! `parc report`: a past run in the words of the live recap, hosts needing
//! attention first.

use std::fmt::Write;

use jiff::tz::TimeZone;
use serde_json::Value;

use super::record::{HostRecord, Report};
use crate::ui::lines;

pub fn render(report: &Report, tz: &TimeZone) -> String {
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
    let mut hosts: Vec<&HostRecord> = report.hosts.iter().collect();
    hosts.sort_by_key(|h| h.attention());
    for h in hosts {
        host(&mut out, h, report.action == "plan");
    }
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
    // Host names, errors and output in the record came from hosts.
    lines::escape_controls(&out)
}

fn host(out: &mut String, h: &HostRecord, plan: bool) {
    let label = match h.state.as_str() {
        "ok" | "changed" => h.state.clone(),
        other => other.to_uppercase(),
    };
    let _ = write!(out, "{} | {label}", h.host);
    if let Some(p) = &h.play {
        let _ = write!(out, " | {p}");
    }
    if let (Some(c), Some(f)) = (h.changed, h.failed) {
        let verb = if plan { "will change" } else { "changed" };
        let _ = write!(out, " | {c} {verb}, {f} failed");
    }
    let _ = writeln!(out, " | {:.2}s", h.elapsed_ms as f64 / 1000.0);
    let resources = h.outcome.get("resources").and_then(Value::as_array);
    for r in resources.into_iter().flatten() {
        let get = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or_default();
        let tag = match get("status") {
            "no_change" | "skipped" => continue,
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
        for l in get("error").lines() {
            let _ = writeln!(out, "        {l}");
        }
    }
    // Verification: each failed check with what was expected and found.
    let results = h.outcome.get("results").and_then(Value::as_array);
    for t in results.into_iter().flatten() {
        if t.get("passed").and_then(Value::as_bool) != Some(false) {
            continue;
        }
        let name = t.get("name").and_then(Value::as_str).unwrap_or_default();
        let _ = writeln!(out, "    FAILED      {name}");
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
    if let Some(e) = h.error().filter(|_| !resource_failed) {
        for l in e.lines() {
            let _ = writeln!(out, "    {l}");
        }
    }
}
