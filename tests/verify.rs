//! `parc verify` on a real lab (needs root and openssh-server).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{TestLab, events, finished};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Remote execs of each host in a `--json` run.
fn execs(ev: &[serde_json::Value]) -> Vec<u64> {
    finished(ev)
        .iter()
        .map(|e| e["execs"].as_u64().unwrap())
        .collect()
}

#[test]
fn verify_passes_after_the_rollout_and_names_what_broke() {
    common::require_root_and_sshd();
    let lab = TestLab::start(3);
    let rollout = repo("playbooks/rollout.yml");
    let out = lab.parc().arg("apply").arg(&rollout).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let verify = repo("playbooks/verify.yml");
    let out = lab
        .parc()
        .args(["--json", "verify"])
        .arg(&verify)
        .output()
        .unwrap();
    let ev = events(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{:#?}",
        stderr(&out),
        finished(&ev)
    );
    let done = finished(&ev);
    assert_eq!(done.len(), 3);
    assert!(done.iter().all(|e| e["state"] == "ok"), "{done:#?}");
    let tests = done[0]["outcome"]["results"].as_array().unwrap().len();
    assert!(
        tests > 20,
        "the office profile and its base declare {tests} tests"
    );
    // Facts, then every test in one exec, whatever the number of tests.
    assert_eq!(execs(&ev), [2, 2, 2]);
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("one.yml");
    std::fs::write(&one, "verify:\n  - file: {path: /etc/parc/managed}\n").unwrap();
    let out = lab
        .parc()
        .args(["--json", "verify"])
        .arg(&one)
        .args(["--on", "all"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        execs(&events(&out)),
        [2, 2, 2],
        "1 test costs what {tests} tests cost"
    );

    // Drift on one host: a file removed, a mode loosened.
    let broken = &lab.lab.hosts[1].name;
    let out = lab
        .parc()
        .args([
            "run",
            broken,
            "--",
            "rm /etc/cups/lpoptions && chmod 0644 /etc/parc/share-credentials",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let json = dir.path().join("result.json");
    let out = lab
        .parc()
        .arg("verify")
        .arg(&verify)
        .args(["--format", "json", "-o"])
        .arg(&json)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let text = std::fs::read_to_string(&json).unwrap();
    assert!(
        !text.contains("change-me-in-the-inventory"),
        "the share password leaked"
    );
    let records: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let states: Vec<&str> = records
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["ok", "failed", "ok"]);
    let host = &records[1];
    assert_eq!(host["host"], broken.as_str());
    assert_eq!(host["failed"], 2);
    let failed_checks: Vec<(String, String, String, String)> = host["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["passed"] == false)
        .flat_map(|r| {
            r["checks"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["passed"] == false)
                .map(|c| {
                    let s = |v: &serde_json::Value| v.as_str().unwrap().to_string();
                    (
                        s(&r["name"]),
                        s(&c["what"]),
                        s(&c["expected"]),
                        s(&c["actual"]),
                    )
                })
        })
        .collect();
    assert_eq!(
        failed_checks,
        [
            (
                "file /etc/cups/lpoptions".to_string(),
                "exists".to_string(),
                "present".to_string(),
                "absent".to_string()
            ),
            (
                "share credentials, readable by root only".to_string(),
                "mode".to_string(),
                "0600".to_string(),
                "0644".to_string()
            ),
        ]
    );

    // JUnit, read by a real XML parser.
    let xml = dir.path().join("report.xml");
    let out = lab
        .parc()
        .arg("verify")
        .arg(&verify)
        .args(["--format", "junit", "-o"])
        .arg(&xml)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let parsed = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
print(root.tag, len(root.findall('testsuite')), len(list(root.iter('testcase'))), len(list(root.iter('failure'))))
for f in root.iter('failure'): print(f.get('message').splitlines()[0])",
        )
        .arg(&xml)
        .output()
        .expect("python3 runs");
    assert!(parsed.status.success(), "{}", stderr(&parsed));
    let report = String::from_utf8(parsed.stdout).unwrap();
    let mut lines = report.lines();
    assert_eq!(
        lines.next(),
        Some(format!("testsuites 3 {} 2", 3 * tests).as_str()),
        "{report}"
    );
    assert_eq!(lines.next(), Some("exists: expected present, got absent"));
    assert_eq!(lines.next(), Some("mode: expected 0600, got 0644"));

    // The human table names the host and the check.
    let out = lab.parc().arg("verify").arg(&verify).output().unwrap();
    assert_eq!(out.status.code(), Some(3));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains(&format!(
            "{broken}: file /etc/cups/lpoptions [exists]: expected present, got absent"
        )),
        "{table}"
    );
}

#[test]
fn every_standard_profile_passes_its_own_tests_once_applied() {
    common::require_root_and_sshd();
    let profiles = [
        "base-workstation",
        "office",
        "developer",
        "kiosk",
        "degraded",
    ];
    let lab = TestLab::start(profiles.len());
    // One play per profile, each on its own host, using the repository's profiles.
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(repo("profiles"), dir.path().join("profiles")).unwrap();
    std::fs::create_dir(dir.path().join("playbooks")).unwrap();
    let playbook: String = profiles
        .iter()
        .zip(&lab.lab.hosts)
        .map(|(p, h)| format!("- name: {p}\n  hosts: {}\n  profiles: [{p}]\n", h.name))
        .collect();
    let pb = dir.path().join("playbooks/all.yml");
    std::fs::write(&pb, playbook).unwrap();

    // Lab hosts share the controller's kernel: the developer profile's sysctl
    // handler must write the value the machine already has.
    let watches = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches").unwrap();
    let keep = format!("inotify_watches={}", watches.trim());
    let out = lab
        .parc()
        .arg("apply")
        .arg(&pb)
        .args(["-e", &keep])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = lab
        .parc()
        .args(["--json", "verify"])
        .arg(&pb)
        .args(["-e", &keep])
        .output()
        .unwrap();
    let ev = events(&out);
    let failures: Vec<_> = finished(&ev)
        .into_iter()
        .filter(|e| e["state"] != "ok")
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(finished(&ev).len(), profiles.len());
}

/// An apply that finds nothing to change reads the tests in its probe exec
/// (2 execs: the lock with the facts, the probe); a host whose resources
/// are all there but differ (drift) still has its tests judged after the
/// apply fixed it, not on what the probe saw; a failed test fails a host
/// that needed no change.
#[test]
fn an_apply_that_changes_nothing_reads_its_tests_in_its_probe_exec() {
    common::require_root_and_sshd();
    let lab = TestLab::start(2);
    let dir = tempfile::tempdir().unwrap();
    let pb = common::play(
        dir.path(),
        "spec",
        r#"
resources:
  - file: {path: /etc/parc-spec.conf, content: "site=lab\n"}
verify:
  - file: {path: /etc/parc-spec.conf, contains: "site=lab"}
  - command: {run: "test -e /etc/parc-spec-ok", exit: 0}
"#,
        "",
    );

    let on = |host: usize, cmd: &str| {
        let name = &lab.lab.hosts[host].name;
        let out = lab.parc().args(["run", name, "--", cmd]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    };
    on(0, "touch /etc/parc-spec-ok");
    on(1, "touch /etc/parc-spec-ok");
    // Per host: state, execs, and whether every test passed.
    let apply = || {
        let (out, ev) = lab.apply_json(&pb);
        let mut ended = finished(&ev);
        ended.sort_by_key(|e| e["host"].as_str().unwrap().to_string());
        let hosts: Vec<(String, u64, bool)> = ended
            .iter()
            .map(|e| {
                let tests = e["outcome"]["verification"].as_array().unwrap();
                assert_eq!(tests.len(), 2, "{e:#}");
                let passed = tests.iter().all(|t| t["passed"] == true);
                let state = e["state"].as_str().unwrap().to_string();
                (state, e["execs"].as_u64().unwrap(), passed)
            })
            .collect();
        (out.status.code(), hosts)
    };
    let changed = ("changed".to_string(), 3, true);
    let ok = ("ok".to_string(), 2, true);
    assert_eq!(apply(), (Some(0), vec![changed.clone(), changed.clone()]));
    assert_eq!(apply(), (Some(0), vec![ok.clone(), ok.clone()]));

    // Drift: the file is there, with other content. The probe exec's read
    // of the tests (which saw it) is dropped; the apply's is what counts.
    on(0, "echo site=drift > /etc/parc-spec.conf");
    assert_eq!(apply(), (Some(0), vec![changed, ok.clone()]));
    assert_eq!(
        lab.host_file(0, "/etc/parc-spec.conf").unwrap(),
        b"site=lab\n"
    );

    // Nothing to change, and a test fails: the host fails.
    on(1, "rm /etc/parc-spec-ok");
    let (code, hosts) = apply();
    assert_eq!(code, Some(3), "{hosts:?}");
    assert_eq!(hosts[0], ok);
    assert_eq!((hosts[1].1, hosts[1].2), (2, false), "{hosts:?}");
    assert_ne!(hosts[1].0, "ok", "{hosts:?}");
}
