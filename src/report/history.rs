//! `/var/lib/parc/history.log` on each target: one line per run that touched
//! it, so whoever is at a workstation can see what parc did to it, when and on
//! whose behalf, without access to the controller's run reports.

use jiff::Timestamp;

use crate::transport::quote;

pub const HISTORY_LOG: &str = "/var/lib/parc/history.log";

/// Longest a field may get: keeps every line far below PIPE_BUF, so one
/// `>>` append is one write(2) that concurrent runs cannot interleave.
const FIELD_MAX: usize = 80;

/// The line recorded for one run on one host:
/// `2026-11-28T22:15:02Z run=20261128T231502-3f9a action=apply operator=alice state=changed`.
///
/// Fields are `key=value` with spaces, newlines and other odd characters
/// replaced by `_`, so the log stays one run per line and `grep run=ID`
/// or `awk` work on it.
pub fn history_line(
    time: Timestamp,
    run_id: &str,
    action: &str,
    operator: &str,
    state: &str,
) -> String {
    format!(
        "{} run={} action={} operator={} state={}",
        time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        field(run_id),
        field(action),
        field(operator),
        field(state)
    )
}

fn field(value: &str) -> String {
    let clean: String = value
        .chars()
        .take(FIELD_MAX)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-@:+/".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.is_empty() {
        "-".to_string()
    } else {
        clean
    }
}

/// The sh command that appends `line` (from [`history_line`]) to the
/// target's history log, creating `/var/lib/parc` if needed. Run it as root,
/// like the apply itself.
pub fn history_append_command(line: &str) -> String {
    append_command(HISTORY_LOG, line)
}

fn append_command(log: &str, line: &str) -> String {
    let dir = std::path::Path::new(log)
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".to_string());
    format!(
        "mkdir -p {} && printf '%s\\n' {} >> {}",
        quote(&dir),
        quote(line),
        quote(log)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> Timestamp {
        "2026-11-28T22:15:02.75Z".parse().unwrap()
    }

    #[test]
    fn one_line_of_key_values_whatever_the_operator_is_called() {
        let line = history_line(
            at(),
            "20261128T231502-3f9a",
            "apply",
            "eve\nrun=forged x'$(reboot)",
            "changed",
        );
        assert_eq!(
            line,
            "2026-11-28T22:15:02Z run=20261128T231502-3f9a action=apply \
             operator=eve_run_forged_x___reboot_ state=changed"
        );
        let long = history_line(at(), &"a".repeat(500), "", "bob", "ok");
        assert!(long.len() < 200, "{long}");
        assert!(long.contains(" action=- "), "{long}");
    }

    #[test]
    fn the_command_appends_exactly_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("sub dir/history.log");
        let log = log.to_str().unwrap();
        let first = history_line(at(), "r1", "apply", "alice", "changed");
        let second = history_line(at(), "r2", "rollback", "bob's", "rolled_back");
        for line in [&first, &second] {
            let status = std::process::Command::new("sh")
                .args(["-c", &append_command(log, line)])
                .status()
                .unwrap();
            assert!(status.success());
        }
        let text = std::fs::read_to_string(log).unwrap();
        assert_eq!(text, format!("{first}\n{second}\n"));
        assert!(history_append_command(&first).ends_with(">> /var/lib/parc/history.log"));
    }
}
