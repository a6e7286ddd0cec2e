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

pub use command::CommandTest;
pub use file::FileTest;
pub use net::{HttpTest, PortTest, Protocol};
pub use probe::{Check, Probe, Probed, SHOWN_LIMIT, TestResult};
pub use spec::{Number, Spec, Test};
pub use system::{DnsTest, KernelParamTest, MountTest, PackageTest, ServiceTest};
pub use users::{GroupTest, UserTest};

use crate::render::Redactor;
use crate::resources::script::Script;
use crate::transport::{Transport, TransportError};

/// The sh helpers every verification script carries after the resources library.
const LIB: &str = include_str!("lib.sh");

/// Run `tests` on the host behind `t` in exactly one exec and judge them.
///
/// A test whose record is missing or cut short (the script died, the connection
/// dropped mid-output) fails with the script's status and stderr instead of
/// passing silently. Only a transport failure is an error.
pub async fn run_tests(
    t: &dyn Transport,
    tests: &[Test],
    redactor: &Redactor,
) -> Result<Vec<TestResult>, TransportError> {
    let mut script = Script::new();
    script.sh(LIB);
    for (i, test) in tests.iter().enumerate() {
        test.spec.probe().probe(&i.to_string(), &mut script);
    }
    let out = script.run(t).await?;
    Ok(tests
        .iter()
        .enumerate()
        .map(|(i, test)| {
            let checks = match out.records.get(&i.to_string()) {
                Some(r) if r.get("end") == Some("yes") => test.spec.probe().evaluate(&Probed(r)),
                _ => vec![Check::impossible(
                    "probe",
                    "the test's state, reported by the verification script",
                    format!(
                        "nothing: the script stopped before this test ({}): {}",
                        out.status,
                        probe::clip(out.stderr.trim())
                    ),
                )],
            };
            redact(
                TestResult {
                    name: test.label(),
                    kind: test.spec.kind_name(),
                    passed: checks.iter().all(|c| c.passed),
                    checks,
                },
                redactor,
            )
        })
        .collect())
}

/// Expected values come from rendered templates and actual ones from the host:
/// either can hold a secret.
fn redact(mut result: TestResult, redactor: &Redactor) -> TestResult {
    result.name = redactor.redact(&result.name);
    for c in &mut result.checks {
        for text in [&mut c.what, &mut c.expected, &mut c.actual] {
            *text = redactor.redact(text);
        }
    }
    result
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::resources::script::Record;
    use crate::transport::local::LocalTransport;

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

    /// Every kind's probe, for real on this machine, in one script: the script
    /// exits 0, every record is complete, and the results are what this
    /// machine is.
    #[tokio::test]
    async fn one_local_script_runs_every_kind() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("it's here");
        std::fs::write(&f, "host=ws-001\nsecret=hunter22\n").unwrap();
        let f = f.display();
        let yaml = format!(
            "
- file: {{path: \"{f}\", contains: 'host=ws-001', matches: '^secret=\\w+$', mode: '0644'}}
- file: {{path: /nonexistent/parc, exists: false}}
- name: echo works
  command: {{run: 'echo hello; echo warn >&2', stdout_contains: hello, stderr_contains: warn}}
- command: {{run: 'sleep 5', timeout: 1}}
- command: {{run: 'exit 3', exit: 3}}
- user: {{name: root, uid: 0, groups: [root]}}
- user: {{name: parc-nobody-here, exists: false}}
- group: {{name: root}}
- package: {{name: parc-no-such-package, installed: false}}
- service: {{name: parc-no-such-service, running: false}}
- port: {{port: 1, listening: false}}
- http: {{url: 'http://127.0.0.1:1/', timeout: 2}}
- dns: {{name: localhost}}
- mount: {{path: /proc, fstype: proc}}
- kernel_param: {{name: kernel.ostype, value: Linux}}
- kernel_param: {{name: parc.no.such, value: x}}
"
        );
        let tests: Vec<Test> = crate::profile::from_yaml(&yaml).unwrap();
        let vars: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"pw": "hunter22"}"#).unwrap();
        let redactor = Redactor::from_vars(&vars, &["pw".to_string()]);
        let results = run_tests(&LocalTransport, &tests, &redactor).await.unwrap();
        assert_eq!(results.len(), tests.len());
        let outcome: Vec<(&str, bool)> = results.iter().map(|r| (r.kind, r.passed)).collect();
        let systemd = std::path::Path::new("/run/systemd/system").exists();
        assert_eq!(
            outcome,
            [
                ("file", true),
                ("file", true),
                ("command", true),
                ("command", false),
                ("command", true),
                ("user", true),
                ("user", true),
                ("group", true),
                ("package", true),
                // Without systemd a service test fails, saying why.
                ("service", systemd),
                ("port", true),
                ("http", false),
                ("dns", true),
                ("mount", true),
                ("kernel_param", true),
                ("kernel_param", false),
            ],
            "{results:#?}"
        );
        assert_eq!(results[2].name, "echo works");
        assert!(
            results[3].checks[0].actual.contains("timeout"),
            "{:?}",
            results[3]
        );
        assert!(
            results[11].checks[0].actual.starts_with("no response"),
            "{:?}",
            results[11]
        );
        let text = serde_json::to_string(&results).unwrap();
        assert!(!text.contains("hunter22"), "a secret leaked: {text}");
    }

    /// A real HTTP exchange through whichever of curl or wget this machine has.
    #[tokio::test]
    async fn http_status_and_body_from_a_local_server() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let _ = conn
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nConnection: close\r\n\r\nparc-verified")
                    .await;
            }
        });
        let yaml = format!(
            "- http: {{url: 'http://{addr}/', body_contains: verified}}\n- http: {{url: 'http://{addr}/', status: 404}}\n"
        );
        let tests: Vec<Test> = crate::profile::from_yaml(&yaml).unwrap();
        let results = run_tests(&LocalTransport, &tests, &Redactor::default())
            .await
            .unwrap();
        assert!(results[0].passed, "{results:#?}");
        assert_eq!(results[1].checks[0].actual, "200");
        assert!(!results[1].passed);
    }

    #[tokio::test]
    async fn a_script_that_dies_fails_the_tests_it_did_not_reach() {
        let tests: Vec<Test> =
            crate::profile::from_yaml("- command: {run: 'kill -9 $PPID'}\n- file: {path: /}\n")
                .unwrap();
        let results = run_tests(&LocalTransport, &tests, &Redactor::default())
            .await
            .unwrap();
        assert!(results.iter().all(|r| !r.passed), "{results:#?}");
        assert!(results[1].checks[0].actual.contains("the script stopped"));
    }
}
