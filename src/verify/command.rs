//! `command`: a command's exit status and output.
//!
//! The command runs with `sh -c`, stdin from /dev/null, under `timeout` when
//! the test sets one and the host has the tool (GNU and busybox both do). It
//! must not change the host: verification is meant to be run again and again.

use serde::{Deserialize, Serialize};

use super::probe::{CONTENT_LIMIT, Check, Probe, Probed, clip, contains_check, matches_check};
use crate::render::Number;
use crate::resources::script::Script;
use crate::transport::{quote, sh_hidden};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandTest {
    pub run: String,
    /// Expected exit status (default 0).
    pub exit: Option<Number>,
    pub stdout_contains: Option<String>,
    pub stdout_matches: Option<String>,
    pub stderr_contains: Option<String>,
    /// Seconds before the command is killed.
    pub timeout: Option<Number>,
}

/// Exit statuses of `timeout` when it killed the command (GNU; busybox's TERM).
const TIMED_OUT: [&str; 2] = ["124", "143"];

impl Probe for CommandTest {
    fn label(&self) -> String {
        let first = self.run.lines().next().unwrap_or("");
        let short: String = first.chars().take(60).collect();
        let more = if short.len() < self.run.len() {
            "…"
        } else {
            ""
        };
        format!("command {short}{more}")
    }

    fn probe(&self, id: &str, s: &mut Script) {
        // One extra byte tells the controller the output was cut.
        let out = s.capture(id, "stdout", CONTENT_LIMIT as u64);
        let err = s.capture(id, "stderr", CONTENT_LIMIT as u64);
        let run = |via: &str| format!("{} </dev/null >{out} 2>{err}", sh_hidden(via, &self.run));
        s.sh(&format!("pv_start {id}"));
        match &self.timeout {
            Some(secs) => s.sh(&format!(
                "if pv_have timeout; then echo timeout=yes; {}; else {}; fi",
                run(&format!("timeout {} ", quote(&secs.to_string()))),
                run("")
            )),
            None => s.sh(&run("")),
        }
        s.sh("echo \"rc=$?\"; pv_end");
    }

    fn evaluate(&self, probed: &Probed) -> Vec<Check> {
        let rc = probed.get("rc").unwrap_or("unknown");
        let (stdout, out_cut) = probed.content("stdout").unwrap_or_default();
        let (stderr, err_cut) = probed.content("stderr").unwrap_or_default();
        let want = self.exit.clone().unwrap_or(Number::Value(0)).to_string();
        let mut checks = Vec::new();
        let timed_out = probed.yes("timeout") && TIMED_OUT.contains(&rc);
        let actual = match (&self.timeout, timed_out) {
            (Some(secs), true) => format!("{rc}: killed after the {secs}s timeout"),
            _ if rc == want || stderr.trim().is_empty() => rc.to_string(),
            _ => format!("{rc} (stderr: {})", clip(stderr.trim_end())),
        };
        checks.push(Check::new(
            "exit status",
            want.clone(),
            actual,
            rc == want && !timed_out,
        ));
        if let Some(needle) = &self.stdout_contains {
            checks.push(contains_check("stdout", needle, &stdout, out_cut, true));
        }
        if let Some(pattern) = &self.stdout_matches {
            checks.push(matches_check("stdout", pattern, &stdout, out_cut, true));
        }
        if let Some(needle) = &self.stderr_contains {
            checks.push(contains_check("stderr", needle, &stderr, err_cut, true));
        }
        checks
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{passed, record};
    use super::*;

    fn test(yaml: &str) -> CommandTest {
        serde_norway::from_str(yaml).unwrap()
    }

    #[test]
    fn exit_status_and_output() {
        let t = test(
            "{run: 'sshd -t', stdout_contains: ok, stdout_matches: '^a+$', stderr_contains: warn}",
        );
        let r = record(
            &[("rc", "0")],
            &[("stdout", "ok\naaa\n"), ("stderr", "warn: x\n")],
        );
        assert!(passed(&t.evaluate(&Probed(&r))));

        let r = record(
            &[("rc", "255")],
            &[("stdout", "nope\n"), ("stderr", "bad config line 3\n")],
        );
        let checks = t.evaluate(&Probed(&r));
        assert_eq!(checks[0].expected, "0");
        assert_eq!(checks[0].actual, "255 (stderr: bad config line 3)");
        assert_eq!(checks[1].actual, "not found in 5 bytes: nope\n");
        assert!(checks.iter().all(|c| !c.passed));
    }

    #[test]
    fn expected_failure_and_timeout() {
        let t = test("{run: 'false', exit: 1}");
        assert!(passed(&t.evaluate(&Probed(&record(&[("rc", "1")], &[])))));
        let slow = test("{run: 'sleep 9', timeout: 2, exit: 124}");
        let r = record(&[("rc", "124"), ("timeout", "yes")], &[]);
        let checks = slow.evaluate(&Probed(&r));
        assert!(!checks[0].passed, "a timeout never passes");
        assert_eq!(checks[0].actual, "124: killed after the 2s timeout");
    }

    #[test]
    fn long_output_is_clipped_in_results() {
        let t = test("{run: x, stdout_contains: needle}");
        let long = "y".repeat(10_000);
        let r = record(&[("rc", "0")], &[("stdout", &long)]);
        let checks = t.evaluate(&Probed(&r));
        assert!(checks[1].actual.len() < 4200, "{}", checks[1].actual.len());
        assert!(checks[1].actual.contains("bytes cut"));
    }
}
