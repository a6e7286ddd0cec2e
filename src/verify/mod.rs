//! Verification tests: what a profile promises about a workstation, checked
//! after the fact (post-install checks, drift detection).
//!
//! Architecture note: like resources, each test kind (`file`, `command`,
//! `user`, ...) is a probe fragment plus a local judgement. All the tests of a
//! host are appended to ONE script, so verifying a host costs one exec however
//! many tests its profiles declare; the script prints raw state (stat fields,
//! file bytes, /proc tables, command output) and every comparison happens here,
//! on the controller, where regexes and parsing behave the same for every
//! target (GNU or busybox). Each result carries the expected and actual value
//! of every check, because "failed" alone sends a technician on a hunt.

mod command;
mod file;
mod net;
mod probe;
pub mod report;
mod spec;
mod system;
mod users;

#[cfg(test)]
mod local_tests;

pub use probe::{Check, Probe, Probed, TestResult, clip};
pub use spec::Test;

use std::time::Duration;

use crate::render::Redactor;
use crate::resources::script::{Script, ScriptError, ScriptOutput, Within};
use crate::transport::Transport;

/// The sh helpers every verification script carries after the resources library.
pub(crate) const LIB: &str = include_str!("lib.sh");

/// Run `tests` on the host behind `t` in exactly one exec and judge them.
///
/// A test whose record is missing or cut short (the script died, the connection
/// dropped mid-output) fails with the script's status and stderr instead of
/// passing silently. Only a transport failure is an error.
pub async fn run_tests(
    t: &dyn Transport,
    tests: &[Test],
    redactor: &Redactor,
    read_timeout: Option<Duration>,
) -> Result<Vec<TestResult>, ScriptError> {
    let within = Within::whole(time_for(read_timeout, tests));
    let out = probe_script(tests).run_within(t, within).await?;
    Ok(judge(tests, "", &out, redactor))
}

/// How long a script that runs `tests` may take: `read_timeout` (`None`:
/// for ever), plus the time each test gives itself.
pub fn time_for(read_timeout: Option<Duration>, tests: &[Test]) -> Option<Duration> {
    let own: u64 = tests.iter().map(Test::own_time).sum();
    read_timeout.map(|t| t + Duration::from_secs(own))
}

/// The results of `tests`, whose probes `out` printed as records
/// `{prefix}{i}` (see [`probe_into`]).
pub(crate) fn judge(
    tests: &[Test],
    prefix: &str,
    out: &ScriptOutput,
    redactor: &Redactor,
) -> Vec<TestResult> {
    tests
        .iter()
        .enumerate()
        .map(|(i, test)| {
            let checks = match out.records.get(&format!("{prefix}{i}")) {
                Some(r) if r.get("end") == Some("yes") => test.spec.probe().evaluate(&Probed(r)),
                _ => vec![Check::impossible(
                    "probe",
                    "the test's state, reported by the verification script",
                    format!(
                        "nothing: the script stopped before this test ({}): {}",
                        out.status,
                        probe::clip(&redactor.redact(out.stderr.trim()))
                    ),
                )],
            };
            let mut result = TestResult {
                name: test.label(),
                kind: test.spec.kind_name(),
                passed: checks.iter().all(|c| c.passed),
                checks,
            };
            result.redact(redactor);
            result
        })
        .collect()
}

/// The one script that prints the state of every test, record `i` for `tests[i]`.
pub(crate) fn probe_script(tests: &[Test]) -> Script {
    let mut script = Script::new();
    probe_into(tests, "", &mut script);
    script
}

/// Append to the probe `script` of a host's resources the probes of
/// `tests`, as records `{prefix}{i}`, run only when no probe before them
/// found a change coming (something missing, a command that will run:
/// `PARC_PENDING`, lib.sh, as the script saved it in
/// `PARC_RESOURCES_PENDING` once the resources were probed, before handlers
/// that may never run): such a host probably needs no change, and if so its
/// tests have been read without an exec of their own, in the same round of
/// reads as its resources (nothing in a probe exec changes the host).
/// Elsewhere (a first run) they cost nothing but a few more names in its
/// batched reads.
pub(crate) fn probe_if_converged(tests: &[Test], prefix: &str, script: &mut Script) {
    script.sh("if [ -z \"${PARC_RESOURCES_PENDING:-}\" ]; then");
    append_probes(tests, prefix, script);
    script.sh("fi");
}

/// Append to `script` the probes of `tests`, as records `{prefix}{i}`,
/// reading the host as the lines already in `script` leave it: an apply
/// exec verifies the host it changed without an exec of its own.
pub(crate) fn probe_into(tests: &[Test], prefix: &str, script: &mut Script) {
    script.read_again();
    append_probes(tests, prefix, script);
}

/// The probe of each test, as record `{prefix}{i}`, with the library they
/// call.
fn append_probes(tests: &[Test], prefix: &str, script: &mut Script) {
    script.lib(LIB);
    for (i, test) in tests.iter().enumerate() {
        test.spec.probe().probe(&format!("{prefix}{i}"), script);
    }
}

impl TestResult {
    /// Expected values come from rendered templates and actual ones from the
    /// host: either can hold a secret.
    pub fn redact(&mut self, redactor: &Redactor) {
        redactor.redact_in(&mut self.name);
        for c in &mut self.checks {
            for text in [&mut c.what, &mut c.expected, &mut c.actual] {
                redactor.redact_in(text);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::resources::script::Record;

    /// A probed record made by hand: fields and blobs.
    pub fn record(fields: &[(&str, &str)], blobs: &[(&str, &str)]) -> Record {
        Record {
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            blobs: blobs
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
            rc: None,
        }
    }

    pub fn passed(checks: &[Check]) -> bool {
        !checks.is_empty() && checks.iter().all(|c| c.passed)
    }
}
