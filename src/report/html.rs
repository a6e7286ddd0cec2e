//! report.html: one self-contained page a technician opens offline or attaches
//! to a ticket. No script and nothing fetched: the CSS is inline and host rows
//! expand with plain `<details>`. maud escapes every value it interpolates.
//!
//! States are styled by their serialized name (`state-<name>`), and a state
//! with no rule of its own gets the "needs attention" colour, so new engine
//! states show up correctly before anyone styles them.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde_json::Value;

use super::record::{HostRecord, Report};

pub(super) const CSS: &str = include_str!("report.css");

/// Outcome fields shown by a dedicated view; any other field (such as ones
/// the engine adds later) is shown as JSON rather than dropped.
const SHOWN: &[&str] = &[
    "kind",
    "check",
    "error",
    "reason",
    "resources",
    "results",
    "status",
    "stdout",
    "stderr",
    "facts",
];

/// The page, with times shown in `tz` (the controller's zone when written).
pub fn render(report: &Report, tz: &TimeZone) -> String {
    let mut hosts: Vec<&HostRecord> = report.hosts.iter().collect();
    hosts.sort_by_key(|h| h.attention());
    let title = title(report, tz);
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(CSS)) }
            }
            body {
                h1 { (title) }
                (meta(report, tz))
                (banner(report))
                (counts(report))
                (plays(report))
                h2 { "Hosts" }
                (host_table(report, &hosts))
                footer {
                    "parc run report (format " (report.format) "). "
                    "The same record, for tools, is report.json next to this file."
                }
            }
        }
    }
    .into_string()
}

fn title(report: &Report, tz: &TimeZone) -> String {
    let mut title = format!("parc {}", report.action);
    if let Some(name) = report.meta.playbook.as_ref().and_then(|p| p.file_name()) {
        title.push(' ');
        title.push_str(&name.to_string_lossy());
    }
    format!(
        "{title} \u{2014} {} \u{2014} {}",
        local(report.started, tz),
        report.meta.operator.user
    )
}

fn local(ts: Timestamp, tz: &TimeZone) -> String {
    ts.to_zoned(tz.clone())
        .strftime("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

fn secs(ms: u64) -> String {
    format!("{:.2}s", ms as f64 / 1000.0)
}

fn words(name: &str) -> String {
    name.replace('_', " ")
}

fn meta(report: &Report, tz: &TimeZone) -> Markup {
    let m = &report.meta;
    let command = shlex::try_join(m.command_line.iter().map(String::as_str))
        .unwrap_or_else(|_| m.command_line.join(" "));
    html! {
        dl.meta {
            dt { "Run" } dd { code { (report.run_id) } }
            dt { "Operator" } dd { (m.operator) " on " code { (m.controller) } }
            dt { "Started" } dd { (local(report.started, tz)) }
            dt { "Finished" }
            dd {
                @match (report.finished, report.elapsed_ms) {
                    (Some(end), Some(ms)) => { (local(end, tz)) " (" (secs(ms)) ")" }
                    (Some(end), None) => { (local(end, tz)) }
                    (None, _) => { "did not finish" }
                }
            }
            @if let Some(p) = &m.inventory { dt { "Inventory" } dd { code { (p.display()) } } }
            @if let Some(p) = &m.playbook { dt { "Playbook" } dd { code { (p.display()) } } }
            @for d in &m.allow_outside {
                dt { "Read outside the profiles" } dd { code { (d.display()) } }
            }
            dt { "Command" } dd { code { (command) } }
        }
    }
}

fn banner(report: &Report) -> Markup {
    if report.finished.is_some() {
        return html! {};
    }
    let missing = report.unreported();
    html! {
        p.banner {
            "This run has no end: the controller stopped before it finished (or it is still running). "
            @if !missing.is_empty() {
                (missing.len()) " hosts never reported: " (missing.join(", ")) "."
            }
        }
    }
}

fn counts(report: &Report) -> Markup {
    let total: usize = report.counts().iter().map(|(_, n)| n).sum();
    html! {
        div.counts {
            @for (state, n) in report.counts() {
                span class={ "count state-" (state) @if n == 0 { " zero" } } {
                    b { (n) } " " (words(&state))
                }
            }
            span.count.total { b { (total) } " hosts" }
        }
    }
}

fn plays(report: &Report) -> Markup {
    if report.plays.is_empty() {
        return html! {};
    }
    html! {
        h2 { "Plays" }
        ul.plays {
            @for p in &report.plays {
                li {
                    b { (p.name) } ": " (p.hosts.len()) " hosts in " (p.batches.len()) " batches ("
                    (p.batches.iter().map(|b| b.len().to_string()).collect::<Vec<_>>().join(", "))
                    "), " (p.batches_started) " started"
                    @if let Some(a) = &p.aborted {
                        div.aborted {
                            "Aborted: " (a.reason) ". Not started: " (a.skipped.join(", ")) "."
                        }
                    }
                }
            }
        }
    }
}

fn host_table(report: &Report, hosts: &[&HostRecord]) -> Markup {
    if hosts.is_empty() {
        return html! { p { "No host reported." } };
    }
    let changed = if report.action == "plan" {
        "Would change"
    } else {
        "Changed"
    };
    html! {
        div.hosts {
            div.row.head {
                span { "Host" } span { "State" } span.num { (changed) }
                span.num { "Failed" } span.num { "Duration" }
            }
            @for h in hosts { (host(h)) }
        }
    }
}

fn host(h: &HostRecord) -> Markup {
    let count = |n: Option<usize>| n.map(|n| n.to_string()).unwrap_or_default();
    html! {
        details class={ "host state-" (h.state) } {
            summary.row {
                span {
                    span.name { (h.host) }
                    @if let Some(p) = &h.play { span.play { (p) } }
                }
                span class={ "state state-" (h.state) } { (words(&h.state)) }
                span.num { (count(h.changed)) }
                span.num { (count(h.failed)) }
                span.num { (secs(h.elapsed_ms)) }
            }
            div.body { (host_body(h)) }
        }
    }
}

fn host_body(h: &HostRecord) -> Markup {
    let o = &h.outcome();
    let text = |k: &str| o.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let extra: Vec<(&String, &Value)> = o
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !SHOWN.contains(&k.as_str()))
                .collect()
        })
        .unwrap_or_default();
    html! {
        p { (h.execs) " remote commands, " (secs(h.elapsed_ms)) "." }
        @for note in &h.notes { p { (note) } }
        @if let Some(e) = text("error") { p.error { (e) } }
        @if let Some(r) = text("reason") { p { (r) } }
        @if let Some(rs) = o.get("resources").and_then(Value::as_array) { (resources(rs)) }
        @if let Some(ts) = o.get("results").and_then(Value::as_array) { (tests(ts)) }
        @if let Some(s) = o.get("status") { p { "Command ended: " (exit_status(s)) "." } }
        @if let Some(t) = output(o.get("stdout")) { h4 { "Output" } pre { (t) } }
        @if let Some(t) = output(o.get("stderr")) { h4 { "Errors" } pre { (t) } }
        @if let Some(f) = o.get("facts") { (facts(f)) }
        @for (k, v) in extra {
            h4 { (words(k)) }
            pre { (serde_json::to_string_pretty(v).unwrap_or_default()) }
        }
    }
}

/// A command's output as report.json holds it (see `HostBytes`): a string,
/// or `{"base64": ...}` for bytes that are not text, shown decoded, with
/// what is not UTF-8 replaced and control characters escaped.
fn output(v: Option<&Value>) -> Option<String> {
    use base64::Engine as _;
    let text = match v? {
        Value::String(s) => s.clone(),
        v => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.get("base64")?.as_str()?)
                .ok()?;
            String::from_utf8_lossy(&bytes).into_owned()
        }
    };
    (!text.is_empty()).then(|| crate::ui::lines::escape_controls(&text))
}

/// Changes and failures first; resources already as declared are folded
/// away, as they are most of a converged profile and bury what happened.
fn resources(list: &[Value]) -> Markup {
    let quiet = |r: &&Value| {
        matches!(
            r.get("status").and_then(Value::as_str),
            Some("no_change" | "skipped")
        )
    };
    let (calm, notable): (Vec<&Value>, Vec<&Value>) = list.iter().partition(quiet);
    html! {
        @if !notable.is_empty() { (resource_table(&notable)) }
        @if !calm.is_empty() {
            details.calm {
                summary {
                    (calm.len()) @if calm.len() == 1 { " resource" } @else { " resources" }
                    " unchanged or skipped"
                }
                (resource_table(&calm))
            }
        }
    }
}

fn resource_table(list: &[&Value]) -> Markup {
    let field = |r: &Value, k: &str| r.get(k).and_then(Value::as_str).map(str::to_string);
    html! {
        table {
            thead { tr { th { "Status" } th { "Resource" } th { "Changes" } } }
            tbody {
                @for r in list {
                    @let status = field(r, "status").unwrap_or_default();
                    @let changes: Vec<&str> = r.get("changes").and_then(Value::as_array)
                        .map(|c| c.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
                    tr class=(status) {
                        td.status { (words(&status)) }
                        td { code { (field(r, "resource").unwrap_or_default()) } }
                        td { (changes.join(", ")) }
                    }
                    @for key in ["error", "output", "diff"] {
                        @if let Some(t) = field(r, key) {
                            tr class=(status) {
                                td {}
                                td colspan="2" {
                                    @if key == "diff" { pre { (diff(&t)) } }
                                    @else { pre class=(key) { (t) } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Verification results: failed tests first with every check's expected and
/// actual value; passed tests folded away like unchanged resources.
fn tests(list: &[Value]) -> Markup {
    let passed = |t: &&Value| t.get("passed").and_then(Value::as_bool) == Some(true);
    let (ok, failed): (Vec<&Value>, Vec<&Value>) = list.iter().partition(passed);
    html! {
        @if !failed.is_empty() { (test_table(&failed)) }
        @if !ok.is_empty() {
            details.calm {
                summary { (ok.len()) @if ok.len() == 1 { " test passed" } @else { " tests passed" } }
                (test_table(&ok))
            }
        }
    }
}

fn test_table(list: &[&Value]) -> Markup {
    let field = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    html! {
        table {
            thead { tr { th { "Check" } th { "Test" } th { "Expected" } th { "Actual" } } }
            tbody {
                @for t in list {
                    @for c in t.get("checks").and_then(Value::as_array).into_iter().flatten() {
                        @let ok = c.get("passed").and_then(Value::as_bool) == Some(true);
                        tr class=(if ok { "passed" } else { "failed" }) {
                            td.status { (if ok { "passed" } else { "failed" }) " " (field(c, "what")) }
                            td { code { (field(t, "name")) } }
                            td { pre { (field(c, "expected")) } }
                            td { pre { (field(c, "actual")) } }
                        }
                    }
                }
            }
        }
    }
}

fn diff(text: &str) -> Markup {
    html! {
        @for line in text.lines() {
            @let class = if line.starts_with("@@") { Some("hunk") }
                else if line.starts_with('+') && !line.starts_with("+++") { Some("add") }
                else if line.starts_with('-') && !line.starts_with("---") { Some("del") }
                else { None };
            span class=[class] { (line) } "\n"
        }
    }
}

/// `{"kind": "code", "value": 2}` as the live display says it.
fn exit_status(s: &Value) -> String {
    match (s.get("kind").and_then(Value::as_str), s.get("value")) {
        (Some("code"), Some(v)) => format!("exit {v}"),
        (Some("signal"), Some(Value::String(v))) => format!("killed by signal {v}"),
        _ => "no exit status (connection lost)".to_string(),
    }
}

/// Facts as `path: value` rows, whatever their nesting.
fn facts(f: &Value) -> Markup {
    let mut rows = Vec::new();
    flatten("", f, &mut rows);
    html! {
        h4 { "Facts" }
        table { tbody { @for (k, v) in rows { tr { th { (k) } td { (v) } } } } }
    }
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        Value::Object(m) => m.iter().for_each(|(k, v)| flatten(&key(k), v, out)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, v)| flatten(&key(&i.to_string()), v, out)),
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}
