//! Run reports on a real lab (needs root and openssh-server): every run leaves
//! report.json and report.html, and `parc report` reads them back.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::TestLab;

const SECRET: &str = "change-me-in-the-inventory";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn run_dirs(runs: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(runs)
        .unwrap_or_else(|e| panic!("{}: {e}", runs.display()))
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn apply_leaves_a_json_and_html_record_that_parc_report_reads_back() {
    common::require_root_and_sshd();
    let lab = TestLab::start(3);
    let pb = repo("playbooks/rollout.yml");
    // The secret again on the command line: the record must not keep it there either.
    let out = lab
        .parc()
        .args(["apply", "--diff", pb.to_str().unwrap(), "-e"])
        .arg(format!("share_password={SECRET}"))
        .output()
        .unwrap();
    ok(&out, 0);

    // Default runs dir: ./runs, next to where parc ran.
    let runs = lab.dir().parent().unwrap().join("runs");
    let dirs = run_dirs(&runs);
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let id = dirs[0].file_name().unwrap().to_str().unwrap().to_string();
    let json_text = std::fs::read_to_string(dirs[0].join("report.json")).unwrap();
    let html = std::fs::read_to_string(dirs[0].join("report.html")).unwrap();
    assert!(!json_text.contains(SECRET), "secret in report.json");
    assert!(!html.contains(SECRET), "secret in report.html");
    let appended = std::fs::read_to_string(dirs[0].join("hosts.jsonl")).unwrap();
    assert_eq!(appended.lines().count(), 3, "one line per host as it ended");
    assert!(!appended.contains(SECRET), "secret in hosts.jsonl");
    assert!(
        text(&out.stderr).contains(&format!("report: runs/{id}/report.html")),
        "{}",
        text(&out.stderr)
    );

    let report: serde_json::Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(report["run_id"], id.as_str());
    assert_eq!(report["action"], "apply");
    assert_eq!(report["playbook"], pb.to_str().unwrap());
    assert!(report["finished"].is_string());
    assert!(!report["operator"]["user"].as_str().unwrap().is_empty());
    assert_eq!(report["summary"]["changed"], 3);
    assert_eq!(report["plays"][0]["batches_started"], 3);
    let line: Vec<&str> = report["command_line"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(line.last(), Some(&"share_password=<redacted>"));
    let hosts = report["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 3);
    for (h, expected) in hosts.iter().zip(&lab.lab.hosts) {
        assert_eq!(h["host"], expected.name.as_str());
        assert_eq!(h["state"], "changed");
        assert!(h["elapsed_ms"].as_u64().unwrap() > 0);
        let resources = h["outcome"]["resources"].as_array().unwrap();
        let creds = resources
            .iter()
            .find(|r| r["resource"] == "file /etc/parc/share-credentials")
            .expect("the credentials file is listed");
        assert_eq!(creds["status"], "changed");
        assert!(h["changed"].as_u64().unwrap() as usize <= resources.len());
        assert!(
            html.contains(&format!("<span class=\"name\">{}</span>", expected.name)),
            "{} has no row in report.html",
            expected.name
        );
    }
    assert_eq!(
        html.matches("<details class=\"host state-changed\"")
            .count(),
        3
    );

    let recap = lab.parc().arg("report").output().unwrap();
    ok(&recap, 0);
    let recap = text(&recap.stdout);
    assert!(
        recap.starts_with(&format!("run {id}: parc apply")),
        "{recap}"
    );
    // The three hosts changed alike: one group naming them.
    let hosts = &lab.lab.hosts;
    assert!(recap.contains("3 hosts: changed |"), "{recap}");
    assert!(recap.contains("— same changes"), "{recap}");
    assert!(
        recap.contains(&format!("    {}..{}\n", hosts[0].name, hosts[2].name)),
        "{recap}"
    );
    assert!(
        recap.contains("apply: 0 ok, 3 changed, 0 failed, 0 unreachable (3 hosts"),
        "{recap}"
    );

    let json = lab
        .parc()
        .args(["report", &id, "--format", "json"])
        .output()
        .unwrap();
    ok(&json, 0);
    let again: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(again, report);

    let path = lab.parc().args(["report", "--html"]).output().unwrap();
    ok(&path, 0);
    let path = PathBuf::from(text(&path.stdout).trim_end());
    assert!(path.is_absolute() && path.is_file(), "{}", path.display());
}

#[test]
fn failed_hosts_come_first_and_unknown_runs_list_the_recent_ones() {
    common::require_root_and_sshd();
    let lab = TestLab::start(3);
    let runs = tempfile::tempdir().unwrap();
    let parc = || {
        let mut c = lab.parc();
        c.env("PARC_RUNS_DIR", runs.path());
        c
    };
    ok(&parc().args(["facts", "all"]).output().unwrap(), 0);
    let failing = &lab.lab.hosts[1].name;
    let out = parc()
        .args([
            "run",
            "all",
            "--",
            &format!("[ \"$(hostname)\" != {failing} ]"),
        ])
        .output()
        .unwrap();
    ok(&out, 3);
    let ids: Vec<String> = run_dirs(runs.path())
        .iter()
        .map(|d| d.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");

    let recap = parc().arg("report").output().unwrap();
    ok(&recap, 0);
    let recap = text(&recap.stdout);
    let hosts: Vec<&str> = recap.lines().skip(2).collect();
    assert!(
        hosts[0].starts_with(&format!("{failing} | FAILED | ")),
        "{recap}"
    );
    assert!(
        recap.contains("run: 2 ok, 1 failed, 0 unreachable"),
        "{recap}"
    );

    // The facts run, found by the tail of its id.
    let facts_id = ids
        .iter()
        .find(|id| {
            let r = std::fs::read_to_string(runs.path().join(id).join("report.json")).unwrap();
            r.contains("\"action\": \"facts\"")
        })
        .unwrap();
    let tail = &facts_id[facts_id.len() - 4..];
    let json = parc()
        .args(["report", tail, "--format", "json"])
        .output()
        .unwrap();
    ok(&json, 0);
    let facts: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    for (h, expected) in facts["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&lab.lab.hosts)
    {
        assert_eq!(h["outcome"]["facts"]["hostname"], expected.name.as_str());
    }

    let unknown = parc().args(["report", "no-such-run"]).output().unwrap();
    ok(&unknown, 2);
    let err = text(&unknown.stderr);
    for id in &ids {
        assert!(err.contains(id.as_str()), "{err}");
    }
}
