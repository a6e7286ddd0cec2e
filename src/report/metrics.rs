//! `--metrics FILE`: how each host ended, for Prometheus' node_exporter
//! textfile collector, so a dashboard or an alert sees a fleet that drifts or
//! a laptop that has not converged for a week.
//!
//! The file is one more reading of the finished run's record. It holds every
//! host parc ever ran an action on, not only this run's: a retry of three
//! laptops must not make the rest of the fleet vanish from the dashboard. So
//! the previous file is read back, this run's hosts replace their own series
//! (per action: a `plan` does not overwrite what the last `apply` said), and
//! a host's last success survives runs in which it failed.
//!
//! Written whole to a temporary file in the same directory, then renamed over
//! the old one: the collector reads either the old file or the new one, never
//! half of one. Two runs finishing at once take turns through a lock file, so
//! neither loses the other's hosts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use jiff::Timestamp;

use super::record::{HostRecord, Report};
use crate::location::Location;

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("cannot update the metrics file {path}: {source}; it was left as it was")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{location}: {message}, so this is not a metrics file parc wrote; it was left as it was (move it away, or choose another --metrics FILE)"
    )]
    NotOurs { location: Location, message: String },
}

/// Every metric parc writes, in the file's order, with its help text.
const METRICS: [(&str, &str); 6] = [
    (
        STATE,
        "How the host ended the last run of this action (the series with its state is 1).",
    ),
    (
        LAST_RUN,
        "When the last run of this action on the host finished, in Unix seconds.",
    ),
    (
        LAST_SUCCESS,
        "When a run of this action last ended ok or changed on the host, in Unix seconds.",
    ),
    (
        CHANGED,
        "Resources changed (or, for plan, that would change) on the host in the last run of this action.",
    ),
    (
        FAILED,
        "Resources (or, for verify, tests) that failed on the host in the last run of this action.",
    ),
    (
        DURATION,
        "How long the last run of this action took on the host, in seconds.",
    ),
];
const STATE: &str = "parc_host_state";
const LAST_RUN: &str = "parc_host_last_run_timestamp_seconds";
const LAST_SUCCESS: &str = "parc_host_last_success_timestamp_seconds";
const CHANGED: &str = "parc_host_resources_changed";
const FAILED: &str = "parc_host_resources_failed";
const DURATION: &str = "parc_host_duration_seconds";

/// Labels in the order they are written; `state` only on [`STATE`].
type Labels = Vec<(String, String)>;
/// Every series of the file, by metric then labels.
type Series = BTreeMap<(String, Labels), f64>;

/// Fold `report` into the metrics file at `path`.
pub fn update(path: &Path, report: &Report) -> Result<(), MetricsError> {
    let io = |source| MetricsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    // Beside the file, not in it: the collector reads only `*.prom`.
    let lock = std::fs::File::create(dir.join(format!(".{name}.lock"))).map_err(io)?;
    lock.lock().map_err(io)?;
    let previous = match std::fs::read_to_string(path) {
        Ok(text) => parse(&text, path)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Series::new(),
        Err(e) => return Err(io(e)),
    };
    let series = merge(previous, report);
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io)?;
    // The collector runs as another user: readable by all, as node_exporter's
    // own examples make it (a temporary file is created 0600).
    tmp.write_all(render(&series).as_bytes())
        .and_then(|()| {
            let mode = std::os::unix::fs::PermissionsExt::from_mode(0o644);
            tmp.as_file().set_permissions(mode)
        })
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// The previous series, without this run's hosts (for this run's action),
/// then this run's hosts.
fn merge(mut series: Series, report: &Report) -> Series {
    let at = seconds(report.finished.unwrap_or_else(Timestamp::now));
    let action = report.action.as_str();
    for (host, records) in by_host(report) {
        let labels = vec![
            ("action".to_string(), action.to_string()),
            ("host".to_string(), host.to_string()),
        ];
        let key = |metric: &str| (metric.to_string(), labels.clone());
        let last_success = series.get(&key(LAST_SUCCESS)).copied();
        series.retain(|(_, l), _| l[..2.min(l.len())] != labels[..]);
        // The state needing the most attention, as `parc report` sorts them.
        let end = records
            .iter()
            .min_by_key(|r| r.attention())
            .map_or("ok", |r| r.state.as_str());
        let mut state = labels.clone();
        state.push(("state".to_string(), end.to_string()));
        series.insert((STATE.to_string(), state), 1.0);
        series.insert(key(LAST_RUN), at);
        let success = records
            .iter()
            .all(|r| matches!(r.state.as_str(), "ok" | "changed"));
        if let Some(t) = if success { Some(at) } else { last_success } {
            series.insert(key(LAST_SUCCESS), t);
        }
        let sum = |f: fn(&HostRecord) -> Option<usize>| {
            records.iter().filter_map(|r| f(r)).sum::<usize>() as f64
        };
        series.insert(key(CHANGED), sum(|r| r.changed));
        series.insert(key(FAILED), sum(|r| r.failed));
        let ms: u64 = records.iter().map(|r| r.elapsed_ms).sum();
        series.insert(key(DURATION), ms as f64 / 1000.0);
    }
    series
}

/// A playbook's host has one record per play it was in.
fn by_host(report: &Report) -> BTreeMap<&str, Vec<&HostRecord>> {
    let mut hosts: BTreeMap<&str, Vec<&HostRecord>> = BTreeMap::new();
    for r in &report.hosts {
        hosts.entry(r.host.as_str()).or_default().push(r);
    }
    hosts
}

fn seconds(t: Timestamp) -> f64 {
    t.as_millisecond() as f64 / 1000.0
}

fn render(series: &Series) -> String {
    let mut out = String::new();
    for (metric, help) in METRICS {
        let _ = writeln!(out, "# HELP {metric} {help}");
        let _ = writeln!(out, "# TYPE {metric} gauge");
        let of_metric = series
            .range((metric.to_string(), Labels::new())..)
            .take_while(|((m, _), _)| m == metric);
        for ((_, labels), value) in of_metric {
            let labels: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let _ = writeln!(out, "{metric}{{{}}} {value}", labels.join(","));
        }
    }
    out
}

/// Label values as the text format escapes them.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The series of a file this module wrote: `metric{k="v",...} value` lines
/// and `#` comments. Nothing else is accepted: a file that is not parc's is
/// not overwritten.
fn parse(text: &str, path: &Path) -> Result<Series, MetricsError> {
    let mut series = Series::new();
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let not_ours = |column: usize, message: &str| MetricsError::NotOurs {
            location: Location {
                file: path.to_path_buf(),
                line: i + 1,
                column: column + 1,
            },
            message: message.to_string(),
        };
        let Some((metric, rest)) = line.split_once('{') else {
            return Err(not_ours(0, "expected `metric{labels} value`"));
        };
        if !METRICS.iter().any(|(m, _)| *m == metric) {
            return Err(not_ours(
                0,
                &format!("`{metric}` is not a metric parc writes"),
            ));
        }
        let mut labels = Labels::new();
        let mut chars = rest.char_indices().peekable();
        let offset = metric.len() + 1;
        let end = loop {
            let Some((start, _)) = chars.peek().copied() else {
                return Err(not_ours(line.len(), "unterminated labels"));
            };
            if rest[start..].starts_with('}') {
                break start + 1;
            }
            let Some(eq) = rest[start..].find("=\"") else {
                return Err(not_ours(offset + start, "expected label=\"value\""));
            };
            let key = rest[start..start + eq].to_string();
            if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(not_ours(offset + start, "expected a label name"));
            }
            let mut value = String::new();
            chars.nth(eq + 1);
            loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, c @ ('\\' | '"'))) => value.push(c),
                        _ => return Err(not_ours(offset + start, "bad escape in a label value")),
                    },
                    Some((_, '"')) => break,
                    Some((_, c)) => value.push(c),
                    None => return Err(not_ours(line.len(), "unterminated label value")),
                }
            }
            labels.push((key, value));
            if let Some((_, ',')) = chars.peek() {
                chars.next();
            }
        };
        let value = rest[end..]
            .strip_prefix(' ')
            .and_then(|v| v.parse::<f64>().ok())
            .ok_or_else(|| not_ours(offset + end, "expected one space and a number"))?;
        series.insert((metric.to_string(), labels), value);
    }
    Ok(series)
}
