//! Text shared by the plain and TTY reporters, so both say the same thing.

use std::collections::HashMap;

use super::Options;
use crate::engine::imaging::sent_summary;
use crate::engine::output::OutputStream;
use crate::events::{Event, HostState, ImageReport, Outcome, ResourceStatus, Summary, Wire};
use crate::verify::TestResult;

/// The human text for an event, if it prints anything, safe for a terminal.
pub fn event(ev: &Event, action: &str, options: Options) -> Option<String> {
    event_text(ev, action, options).map(|t| escape_controls(&t))
}

/// `text` with every control character but newline and tab written as a
/// visible escape (`\x1b`). Output, file names and errors come from hosts,
/// whose users are not trusted: an ESC or OSC sequence in them must not
/// recolour, retitle or rewrite the operator's terminal. parc's own text
/// holds no control characters, so whole lines are escaped.
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

fn event_text(ev: &Event, action: &str, options: Options) -> Option<String> {
    match ev {
        Event::RunStarted {
            run_id,
            action,
            hosts,
        } => Some(format!("{action}: run {run_id} on {} hosts", hosts.len())),
        // Shown line by line as it arrives, by [`OutputLines`].
        Event::HostPhase { .. } | Event::HostProgress { .. } | Event::HostOutput { .. } => None,
        Event::HostRebooted { host, took_ms } => Some(format!(
            "  {host}: rebooted, back after {:.1}s",
            *took_ms as f64 / 1000.0
        )),
        Event::LockTakenOver { .. } | Event::GaveUp { .. } => ev
            .host_note()
            .map(|(host, note)| format!("  {host}: {note}")),
        Event::HostFinished {
            host,
            state,
            elapsed_ms,
            outcome,
            ..
        } => Some(host_finished(host, *state, *elapsed_ms, outcome, options)),
        Event::PlayStarted {
            play,
            hosts,
            batches,
        } => Some(format!(
            "== play {play}: {} hosts in {} batch{} ({})",
            hosts.len(),
            batches.len(),
            if batches.len() == 1 { "" } else { "es" },
            batches
                .iter()
                .map(|b| b.len().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Event::BatchStarted { index, hosts, .. } => {
            Some(format!("-- batch {}: {} hosts", index + 1, hosts.len()))
        }
        Event::PlayAborted {
            play,
            reason,
            skipped,
        } => Some(format!(
            "!! play {play} aborted: {reason}; {} hosts not started",
            skipped.len()
        )),
        Event::RunFinished {
            summary,
            elapsed_ms,
            ..
        } => Some(self::summary(action, summary, *elapsed_ms)),
    }
}

fn label(state: HostState) -> String {
    match state {
        HostState::Ok | HostState::Changed => state.as_str().to_string(),
        other => other.as_str().to_uppercase(),
    }
}

pub fn host_finished(
    host: &str,
    state: HostState,
    elapsed_ms: u64,
    outcome: &Outcome,
    options: Options,
) -> String {
    let secs = elapsed_ms as f64 / 1000.0;
    let label = label(state);
    let mut out = match outcome {
        Outcome::Command { status, .. } => format!("{host} | {label} | {status} | {secs:.2}s"),
        Outcome::Facts { .. } => format!("{host} | {label} | {secs:.2}s"),
        Outcome::Unreachable { error }
        | Outcome::Untrusted { error }
        | Outcome::Failed { error }
        | Outcome::Invalid { error } => {
            format!("{host} | {label} | {error}")
        }
        Outcome::Skipped { reason } => format!("{host} | {label} | {reason}"),
        Outcome::Restored { journals, problems } => {
            let mut line = format!("{host} | {label} | restored {}", journals.join(", "));
            for p in problems {
                line.push_str(&format!("\n    restore mismatch: {p}"));
            }
            line
        }
        Outcome::Image(r) => image_line(host, &label, r, secs),
        Outcome::Captured(c) => format!(
            "{host} | {label} | {} from {} into {} ({} zero chunks of {}), manifest {} | {secs:.2}s",
            bytes(c.bytes),
            c.source,
            c.image,
            c.zero_chunks,
            c.chunks,
            c.manifest
        ),
        Outcome::Applied {
            check, resources, ..
        } => {
            let count = |s: ResourceStatus| resources.iter().filter(|r| r.status == s).count();
            let head = if *check {
                format!(
                    "{} will change, {} unknown, {} no change",
                    count(ResourceStatus::WillChange),
                    count(ResourceStatus::Unknown),
                    count(ResourceStatus::NoChange)
                )
            } else {
                // Steps whose result never came back (the exec was lost).
                let unknown = match count(ResourceStatus::Unknown) {
                    0 => String::new(),
                    n => format!(", {n} unknown"),
                };
                format!(
                    "{} changed, {} unchanged{unknown}",
                    count(ResourceStatus::Changed),
                    count(ResourceStatus::NoChange)
                )
            };
            format!("{host} | {label} | {head} | {secs:.2}s")
        }
        Outcome::Verified { results } => {
            let failed = results.iter().filter(|r| !r.passed).count();
            format!(
                "{host} | {label} | {} passed, {failed} failed | {secs:.2}s",
                results.len() - failed
            )
        }
    };
    match outcome {
        // The output itself was shown as it came (`OutputLines`).
        Outcome::Command {
            stdout_cut_from,
            stderr_cut_from,
            ..
        } if options.show_output => {
            for (name, cut) in [("stdout", stdout_cut_from), ("stderr", stderr_cut_from)] {
                if let Some(total) = cut {
                    out.push_str(&format!(
                        "\n    [{name} cut at --max-output: {} in all, only its start kept]",
                        bytes(*total)
                    ));
                }
            }
        }
        Outcome::Applied {
            resources,
            error,
            recovery,
            ..
        } => {
            for r in resources {
                if !options.show_changes && r.status != ResourceStatus::Failed {
                    continue;
                }
                let tag = match r.status {
                    ResourceStatus::NoChange | ResourceStatus::Skipped => continue,
                    ResourceStatus::WillChange => "will change",
                    ResourceStatus::Unknown => "unknown",
                    ResourceStatus::Changed => "changed",
                    ResourceStatus::Failed => "FAILED",
                    ResourceStatus::NotRun => "not run",
                };
                out.push_str(&format!("\n    {tag:<11} {}", r.resource));
                if !r.changes.is_empty() {
                    out.push_str(&format!(": {}", r.changes.join(", ")));
                }
                for text in [&r.error, &r.output].into_iter().flatten() {
                    for l in text.lines() {
                        out.push_str("\n        ");
                        out.push_str(l);
                    }
                }
                if let Some(d) = &r.diff {
                    for l in d.lines() {
                        out.push_str("\n      ");
                        out.push_str(l);
                    }
                }
            }
            if let Some(r) = recovery {
                out.push_str(&format!("\n    {}: {}", r.action_label(), r.reason));
                for p in &r.restore_problems {
                    out.push_str(&format!("\n        restore mismatch: {p}"));
                }
                if let Some(e) = &r.error {
                    out.push_str(&format!("\n        {e}"));
                }
            }
            if let (Some(e), false) = (
                error,
                resources.iter().any(|r| r.status == ResourceStatus::Failed),
            ) {
                out.push_str(&format!("\n    error: {e}"));
            }
        }
        Outcome::Verified { results } => verified_lines(&mut out, results),
        _ => {}
    }
    out
}

/// Command output as it streams in from hosts running at once, shown line by
/// line, each line after its host's name (`ws-001: ...`, `ws-001 [stderr]:
/// ...`), so that lines of different hosts never mix. A line longer than
/// [`OutputLines::LINE_MAX`] is shown in pieces of that size: what waits here
/// for its newline stays small whatever a host prints.
#[derive(Debug, Default)]
pub struct OutputLines {
    partial: HashMap<(String, OutputStream), Vec<u8>>,
}

impl OutputLines {
    pub const LINE_MAX: usize = 16 << 10;

    /// The lines to show for `ev`: those a host's output completes, and a
    /// host's last unfinished lines before its result.
    pub fn event(&mut self, ev: &Event) -> Option<String> {
        match ev {
            Event::HostOutput {
                host,
                stream,
                chunk,
            } => self.push(host, *stream, &chunk.0),
            Event::HostFinished { host, .. } => self.finish(host),
            _ => None,
        }
    }

    /// The lines `chunk` completes, ready for a terminal.
    fn push(&mut self, host: &str, stream: OutputStream, chunk: &[u8]) -> Option<String> {
        let buf = self.partial.entry((host.to_string(), stream)).or_default();
        buf.extend_from_slice(chunk);
        let mut text = String::new();
        let mut start = 0;
        while let Some(end) = buf[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|n| start + n)
            .or_else(|| (buf.len() - start >= Self::LINE_MAX).then_some(start + Self::LINE_MAX))
        {
            output_line(&mut text, host, stream, &buf[start..end]);
            start = if buf.get(end) == Some(&b'\n') {
                end + 1
            } else {
                end
            };
        }
        buf.drain(..start);
        (!text.is_empty()).then(|| escape_controls(&text))
    }

    /// The last lines of `host`'s streams, which ended without a newline.
    fn finish(&mut self, host: &str) -> Option<String> {
        let mut text = String::new();
        for stream in [OutputStream::Stdout, OutputStream::Stderr] {
            if let Some(rest) = self.partial.remove(&(host.to_string(), stream))
                && !rest.is_empty()
            {
                output_line(&mut text, host, stream, &rest);
            }
        }
        (!text.is_empty()).then(|| escape_controls(&text))
    }
}

fn output_line(text: &mut String, host: &str, stream: OutputStream, line: &[u8]) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if !text.is_empty() {
        text.push('\n');
    }
    let tag = match stream {
        OutputStream::Stdout => "",
        OutputStream::Stderr => " [stderr]",
    };
    text.push_str(&format!("{host}{tag}: {}", String::from_utf8_lossy(line)));
}

/// Failed tests, each failed check with what was expected and what was found.
/// Passed tests are only counted (in the host line): with hundreds of hosts,
/// listing them would bury the failures.
fn verified_lines(out: &mut String, results: &[TestResult]) {
    for r in results.iter().filter(|r| !r.passed) {
        out.push_str(&format!("\n    FAILED  {}", r.name));
        for c in r.checks.iter().filter(|c| !c.passed) {
            out.push_str(&format!("\n        {}: expected {}", c.what, c.expected));
            let mut actual = c.actual.lines();
            out.push_str(&format!(", got {}", actual.next().unwrap_or("")));
            for l in actual {
                out.push_str("\n          ");
                out.push_str(l);
            }
        }
    }
}

/// One row of the end-of-run recap, for runs that converge hosts.
pub fn recap_row(host: &str, state: HostState, outcome: &Outcome) -> Option<String> {
    let Outcome::Applied { resources, .. } = outcome else {
        return match outcome {
            Outcome::Skipped { .. } | Outcome::Unreachable { .. } | Outcome::Untrusted { .. } => {
                Some(format!("  {host:<16} {:<12}", state.as_str()))
            }
            _ => None,
        };
    };
    let count = |s: ResourceStatus| resources.iter().filter(|r| r.status == s).count();
    Some(format!(
        "  {host:<16} {:<12} changed={} unchanged={} failed={} skipped={}",
        state.as_str(),
        count(ResourceStatus::Changed) + count(ResourceStatus::WillChange),
        count(ResourceStatus::NoChange),
        count(ResourceStatus::Failed),
        count(ResourceStatus::Skipped),
    ))
}

/// The recap printed before the summary line: every host, failures first.
pub fn recap(rows: &mut [(HostState, String)]) -> Option<String> {
    recap_text(rows).map(|t| escape_controls(&t))
}

fn recap_text(rows: &mut [(HostState, String)]) -> Option<String> {
    if rows.is_empty() {
        return None;
    }
    rows.sort_by_key(|(state, row)| {
        let rank = match state {
            HostState::Failed | HostState::Untrusted => 0,
            HostState::Unreachable => 1,
            HostState::Skipped => 2,
            HostState::Changed => 3,
            HostState::Ok => 4,
            HostState::RolledBack => 0,
            HostState::Degraded => 1,
        };
        (rank, row.clone())
    });
    let mut out = String::from("RECAP");
    for (_, row) in rows.iter() {
        out.push('\n');
        out.push_str(row);
    }
    Some(out)
}

/// An image deploy's bytes so far, beside its progress bar.
pub fn wire_progress(w: &Wire) -> String {
    format!(
        "{} {} read, {} sent ({:.0}%)",
        w.source_format,
        bytes(w.read_bytes),
        bytes(w.sent_bytes),
        w.sent_bytes as f64 * 100.0 / w.read_bytes.max(1) as f64
    )
}

fn bytes(n: u64) -> String {
    bytesize::ByteSize(n).display().iec().to_string()
}

fn image_line(host: &str, label: &str, r: &ImageReport, secs: f64) -> String {
    let moved = format!(
        "{}, {} zeroed, {} already there",
        sent_summary(r),
        bytes(r.bytes_zeroed),
        bytes(r.bytes_matched)
    );
    let rewrites = match r.rewrites {
        0 => String::new(),
        n => format!(", {n} chunk(s) rewritten"),
    };
    match &r.error {
        Some(e) if r.bytes_sent + r.bytes_zeroed > 0 => {
            format!("{host} | {label} | {} | {moved} before: {e}", r.target)
        }
        Some(e) => format!("{host} | {label} | {} | {e}", r.target),
        None => format!(
            "{host} | {label} | {} | {moved}{rewrites}; every chunk verified on the storage ({} reads) | {secs:.2}s",
            r.target, r.readback
        ),
    }
}

pub fn summary(action: &str, s: &Summary, elapsed_ms: u64) -> String {
    let mut parts = vec![format!("{} ok", s.ok)];
    if s.changed > 0 || action == "apply" {
        parts.push(format!("{} changed", s.changed));
    }
    parts.push(format!("{} failed", s.failed));
    parts.push(format!("{} unreachable", s.unreachable));
    for (n, what) in [
        (s.untrusted, "UNTRUSTED"),
        (s.degraded, "degraded"),
        (s.rolled_back, "rolled back"),
        (s.skipped, "skipped"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    format!(
        "{action}: {} ({} hosts, {:.2}s)",
        parts.join(", "),
        s.total(),
        elapsed_ms as f64 / 1000.0
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::output::HostBytes;
    use crate::events::ResourceReport;
    use crate::transport::ExitStatus;

    const ALL: Options = Options {
        show_output: true,
        show_changes: true,
    };

    #[test]
    fn control_characters_from_hosts_reach_the_terminal_as_text() {
        let host = "ws-\u{1b}[31m";
        let mut lines = OutputLines::default();
        let out = b"\x1b]0;pwned\x07\x1b[2Jtab\there\r\xc2\x9b31m\r\npartial";
        let shown = lines.push(host, OutputStream::Stdout, out).unwrap();
        assert_eq!(
            shown,
            "ws-\\x1b[31m: \\x1b]0;pwned\\x07\\x1b[2Jtab\there\\x0d\\x9b31m"
        );
        assert_eq!(lines.finish(host).as_deref(), Some("ws-\\x1b[31m: partial"));
        let o = Outcome::Command {
            status: ExitStatus::Code(0),
            stdout: HostBytes(out.to_vec()),
            stderr: HostBytes::default(),
            stdout_cut_from: Some(5 << 30),
            stderr_cut_from: None,
        };
        let ev = Event::HostFinished {
            host: host.into(),
            state: HostState::Ok,
            elapsed_ms: 1,
            execs: 1,
            outcome: o,
        };
        let text = event(&ev, "run", ALL).unwrap();
        assert_eq!(
            text,
            "ws-\\x1b[31m | ok | exit 0 | 0.00s\n    [stdout cut at --max-output: 5.0 GiB in all, only its start kept]"
        );
    }

    /// Hosts printing at once: whole lines, each after its host, and a line
    /// without end shown in bounded pieces.
    #[test]
    fn streamed_output_is_shown_in_whole_lines_per_host() {
        let mut lines = OutputLines::default();
        assert_eq!(
            lines.push("a", OutputStream::Stdout, b"one\ntw"),
            Some("a: one".into())
        );
        assert_eq!(lines.push("b", OutputStream::Stderr, b"oops"), None);
        assert_eq!(
            lines.push("a", OutputStream::Stdout, b"o\n\nthree"),
            Some("a: two\na: ".into())
        );
        assert_eq!(lines.finish("b").as_deref(), Some("b [stderr]: oops"));
        assert_eq!(lines.finish("a").as_deref(), Some("a: three"));
        assert_eq!(lines.finish("a"), None);
        let long = vec![b'x'; OutputLines::LINE_MAX * 2 + 1];
        let shown = lines.push("c", OutputStream::Stdout, &long).unwrap();
        assert_eq!(shown.lines().count(), 2);
        assert_eq!(lines.finish("c").as_deref(), Some("c: x"));
    }

    #[test]
    fn command_lines() {
        let o = Outcome::Command {
            status: ExitStatus::Code(2),
            stdout: HostBytes(b"a\nb\n".to_vec()),
            stderr: HostBytes(b"oops\n".to_vec()),
            stdout_cut_from: None,
            stderr_cut_from: Some(3 << 20),
        };
        insta::assert_snapshot!(host_finished("ws-001", HostState::Failed, 1234, &o, ALL));
        let u = Outcome::Unreachable {
            error: "connection refused".into(),
        };
        insta::assert_snapshot!(host_finished("ws-002", HostState::Unreachable, 5, &u, ALL));
        let s = Summary {
            ok: 49,
            unreachable: 1,
            ..Summary::default()
        };
        insta::assert_snapshot!(summary("run", &s, 2500));
    }

    #[test]
    fn untrusted_hosts_stand_out() {
        let u = Outcome::Untrusted {
            error: "host key for ws-003 has CHANGED: ...".into(),
        };
        let line = host_finished("ws-003", u.state(), 5, &u, ALL);
        assert_eq!(
            line,
            "ws-003 | UNTRUSTED | host key for ws-003 has CHANGED: ..."
        );
        let s = Summary {
            ok: 49,
            untrusted: 1,
            ..Summary::default()
        };
        assert_eq!(
            summary("run", &s, 2500),
            "run: 49 ok, 0 failed, 0 unreachable, 1 UNTRUSTED (50 hosts, 2.50s)"
        );
        let mut rows = vec![
            (HostState::Ok, "ok row".to_string()),
            (HostState::Untrusted, "untrusted row".to_string()),
        ];
        assert_eq!(
            recap(&mut rows).unwrap(),
            "RECAP\nuntrusted row\nok row",
            "failures first"
        );
    }

    #[test]
    fn apply_lines() {
        let r = |resource: &str, status, changes: &[&str]| ResourceReport {
            resource: resource.into(),
            status,
            changes: changes.iter().map(|c| c.to_string()).collect(),
            diff: None,
            output: None,
            error: None,
            rebooted_ms: None,
        };
        let o = Outcome::Applied {
            check: true,
            resources: vec![
                r(
                    "file /etc/motd",
                    ResourceStatus::WillChange,
                    &["create (12 bytes)"],
                ),
                r("dir /srv", ResourceStatus::NoChange, &[]),
                r("command update-ca", ResourceStatus::Unknown, &["run"]),
            ],
            error: None,
            verification: vec![],
            recovery: None,
        };
        insta::assert_snapshot!(host_finished("ws-003", HostState::Ok, 300, &o, ALL));
    }

    #[test]
    fn verify_lines_show_failed_checks_only() {
        use crate::verify::Check;
        let ok = TestResult {
            name: "file /etc/motd".into(),
            kind: "file",
            passed: true,
            checks: vec![Check::equal("exists", "present", "present")],
        };
        let bad = TestResult {
            name: "sshd config is valid".into(),
            kind: "command",
            passed: false,
            checks: vec![
                Check::equal(
                    "exit status",
                    "0",
                    "255 (stderr: line 3: Bad option\nline 9: x)",
                ),
                Check::equal("stdout", "a", "a"),
            ],
        };
        let o = Outcome::Verified {
            results: vec![ok, bad],
        };
        insta::assert_snapshot!(host_finished("ws-004", o.state(), 820, &o, ALL));
    }

    #[test]
    fn image_lines() {
        let mut r = ImageReport {
            target: "/dev/sda".into(),
            image_bytes: 256 << 20,
            bytes_sent: 4 << 20,
            bytes_matched: 252 << 20,
            chunks_sent: 1,
            rewrites: 1,
            readback: "direct".into(),
            verified: true,
            ..ImageReport::default()
        };
        let o = Outcome::Image(r.clone());
        insta::assert_snapshot!(host_finished("ws-004", HostState::Changed, 2100, &o, ALL));
        r.verified = false;
        r.error = Some("/dev/sda is mounted (at /mnt): ...".into());
        r.bytes_sent = 0;
        let o = Outcome::Image(r.clone());
        insta::assert_snapshot!(host_finished("ws-005", HostState::Failed, 40, &o, ALL));
        r.error = None;
        r.verified = true;
        r.source_format = "zstd".into();
        r.bytes_read = 40 << 20;
        r.bytes_sent = 9 << 20;
        r.ratio = 9.0 / 40.0;
        r.decompressed_on = Some("target".into());
        assert_eq!(
            sent_summary(&r),
            "40.0 MiB of zstd image sent as 9.0 MiB (22%, decompressed on the target)"
        );
        r.source_format = "raw".into();
        assert_eq!(sent_summary(&r), "9.0 MiB sent");
    }
}
