//! The result of `parc verify` for people (a table), programs (JSON) and CI
//! systems (JUnit XML: a test suite per host, a test case per test).

use std::fmt::Write as _;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::TestResult;
use crate::events::Outcome;

/// Passed and failed tests of a host, or `None` when it was not verified.
fn counts(outcome: &Outcome) -> Option<(usize, usize)> {
    match outcome {
        Outcome::Verified { results } => {
            let failed = results.iter().filter(|r| !r.passed).count();
            Some((results.len() - failed, failed))
        }
        _ => None,
    }
}

/// Why a host has no results (unreachable, facts or rendering failed, skipped).
fn error(outcome: &Outcome) -> Option<&str> {
    match outcome {
        Outcome::Failed { error }
        | Outcome::Unreachable { error }
        | Outcome::Untrusted { error } => Some(error),
        Outcome::Skipped { reason } => Some(reason),
        _ => None,
    }
}

/// A row per host with its counts, then every failed check with expected and
/// actual values, and the error of every host that could not be verified.
pub fn table(hosts: &[(String, Outcome)]) -> String {
    let width = hosts.iter().map(|(h, _)| h.len()).max().unwrap_or(0).max(4);
    let mut out = format!(
        "{:<width$}  {:<11}  {:>6}  {:>6}\n",
        "HOST", "STATE", "PASSED", "FAILED"
    );
    for (host, outcome) in hosts {
        let state = outcome.state().as_str();
        let (passed, failed) = counts(outcome).map_or(("-".into(), "-".into()), |(p, f)| {
            (p.to_string(), f.to_string())
        });
        let _ = writeln!(out, "{host:<width$}  {state:<11}  {passed:>6}  {failed:>6}");
    }
    let mut problems = String::new();
    for (host, outcome) in hosts {
        if let Some(e) = error(outcome) {
            let _ = writeln!(problems, "{host}: {e}");
        }
        if let Outcome::Verified { results } = outcome {
            for r in results.iter().filter(|r| !r.passed) {
                for c in r.checks.iter().filter(|c| !c.passed) {
                    let _ = writeln!(
                        problems,
                        "{host}: {} [{}]: expected {}, got {}",
                        r.name,
                        c.what,
                        c.expected,
                        c.actual.replace('\n', "\n    ")
                    );
                }
            }
        }
    }
    if !problems.is_empty() {
        out.push_str("\nFailed:\n");
        out.push_str(&problems);
    }
    out
}

/// One record per host: its state, counts and every result with every check.
pub fn json(hosts: &[(String, Outcome)]) -> String {
    let records: Vec<serde_json::Value> = hosts
        .iter()
        .map(|(host, outcome)| {
            let (passed, failed) = counts(outcome).unwrap_or_default();
            let results: &[TestResult] = match outcome {
                Outcome::Verified { results } => results,
                _ => &[],
            };
            serde_json::json!({
                "host": host,
                "state": outcome.state(),
                "passed": passed,
                "failed": failed,
                "error": error(outcome),
                "results": results,
            })
        })
        .collect();
    serde_json::to_string_pretty(&records).expect("results serialize") + "\n"
}

/// JUnit XML. A host that could not be verified is one test case in error, so
/// CI counts it instead of silently dropping the host.
pub fn junit(hosts: &[(String, Outcome)]) -> Result<String, quick_junit::SerializeError> {
    let mut report = Report::new("parc verify");
    for (host, outcome) in hosts {
        let mut suite = TestSuite::new(host.as_str());
        match outcome {
            Outcome::Verified { results } => {
                for r in results {
                    let status = if r.passed {
                        TestCaseStatus::success()
                    } else {
                        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                        status.set_message(failure_message(r));
                        status.set_type(r.kind);
                        status
                    };
                    let mut case = TestCase::new(r.name.as_str(), status);
                    case.set_classname(format!("{host}.{}", r.kind));
                    suite.add_test_case(case);
                }
            }
            other => {
                let status = match other {
                    Outcome::Skipped { reason } => {
                        let mut s = TestCaseStatus::skipped();
                        s.set_message(reason.as_str());
                        s
                    }
                    _ => {
                        let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                        s.set_message(error(other).unwrap_or("not verified"));
                        s.set_type(other.state().as_str());
                        s
                    }
                };
                let mut case = TestCase::new("verification", status);
                case.set_classname(host.as_str());
                suite.add_test_case(case);
            }
        }
        report.add_test_suite(suite);
    }
    report.to_string()
}

/// `what: expected X, got Y` for each failed check, one per line.
fn failure_message(r: &TestResult) -> String {
    r.checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| format!("{}: expected {}, got {}", c.what, c.expected, c.actual))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::Check;

    fn hosts() -> Vec<(String, Outcome)> {
        let result = |name: &str, checks: Vec<Check>| TestResult {
            name: name.into(),
            kind: "file",
            passed: checks.iter().all(|c| c.passed),
            checks,
        };
        vec![
            (
                "ws-001".into(),
                Outcome::Verified {
                    results: vec![result(
                        "file /etc/motd",
                        vec![Check::equal("exists", "present", "present")],
                    )],
                },
            ),
            (
                "ws-002".into(),
                Outcome::Verified {
                    results: vec![
                        result(
                            "file /etc/motd",
                            vec![Check::equal("exists", "present", "present")],
                        ),
                        result(
                            "lpoptions <ok> & \"quoted\"",
                            vec![Check::equal("exists", "present", "absent")],
                        ),
                    ],
                },
            ),
            (
                "ws-003".into(),
                Outcome::Unreachable {
                    error: "connection refused".into(),
                },
            ),
        ]
    }

    #[test]
    fn table_lists_failures_after_the_rows() {
        insta::assert_snapshot!(table(&hosts()));
    }

    #[test]
    fn json_has_one_record_per_host() {
        let v: serde_json::Value = serde_json::from_str(&json(&hosts())).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 3);
        assert_eq!(v[1]["state"], "failed");
        assert_eq!(v[1]["failed"], 1);
        assert_eq!(v[1]["results"][1]["checks"][0]["actual"], "absent");
        assert_eq!(v[2]["error"], "connection refused");
    }

    #[test]
    fn junit_counts_tests_and_failures() {
        let xml = junit(&hosts()).unwrap();
        assert!(
            xml.contains(
                r#"<testsuites name="parc verify" tests="4" skipped="0" failures="1" errors="1">"#
            ),
            "{xml}"
        );
        assert!(
            xml.contains("exists: expected present, got absent"),
            "{xml}"
        );
        assert!(
            xml.contains("lpoptions &lt;ok&gt; &amp; &quot;quoted&quot;"),
            "{xml}"
        );
    }
}
