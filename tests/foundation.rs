//! Foundation on a real lab: ad-hoc runs, facts, unreachable hosts, host keys.
//! Needs root and openssh-server (`.ci/run` installs it).

mod common;

use std::collections::BTreeSet;
use std::process::Output;

use common::{TestLab, events, finished};

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Per-host lines of `parc run` go to stdout, the summary to stderr.
fn all_output(o: &Output) -> String {
    format!("{}{}", stdout(o), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn run_prints_every_hostname_and_facts_gives_one_record_per_host() {
    common::require_root_and_sshd();
    let lab = TestLab::start(20);

    let out = lab
        .parc()
        .args(["run", "all", "--", "hostname"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    // Each host's output line after its name: `ws-001: ws-001`.
    let names: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.split_once(": "))
        .filter(|(host, name)| host == name)
        .map(|(_, name)| name)
        .collect();
    assert_eq!(
        names.len(),
        20,
        "20 distinct hostnames expected in:\n{text}"
    );
    for h in &lab.lab.hosts {
        assert!(
            names.contains(h.name.as_str()),
            "{} missing in:\n{text}",
            h.name
        );
    }

    let out = lab
        .parc()
        .args(["facts", "all", "--format", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let records: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(records.len(), 20);
    let hosts: BTreeSet<&str> = records
        .iter()
        .map(|r| r["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts.len(), 20);
    for r in &records {
        assert_eq!(
            r["facts"]["hostname"], r["host"],
            "each host reports its own hostname"
        );
        assert!(r["facts"]["memory"]["total_bytes"].as_u64().unwrap() > 0);
        assert!(!r["facts"]["kernel"].as_str().unwrap().is_empty());
    }

    let out = lab
        .parc()
        .args(["facts", "ws-00*", "--format", "csv"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out).lines().count(),
        1 + 9,
        "header + ws-001..ws-009"
    );
}

#[test]
fn a_stopped_host_is_unreachable_not_failed() {
    common::require_root_and_sshd();
    let lab = TestLab::start(50);
    let stopped = lab.lab.hosts[17].name.clone();
    let st = lab
        .parc()
        .args(["lab", "stop", &stopped])
        .arg("--dir")
        .arg(&lab.lab.dir)
        .status()
        .unwrap();
    assert!(st.success());

    let out = lab
        .parc()
        .args(["--json", "run", "all", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "unreachable hosts give exit code 4"
    );
    let ev = events(&out);
    let done = finished(&ev);
    assert_eq!(done.len(), 50);
    let ok = done.iter().filter(|e| e["state"] == "ok").count();
    let unreachable: Vec<_> = done
        .iter()
        .filter(|e| e["state"] == "unreachable")
        .collect();
    assert_eq!(ok, 49);
    assert_eq!(unreachable.len(), 1);
    assert_eq!(unreachable[0]["host"], stopped.as_str());
    let summary = ev.iter().find(|e| e["event"] == "run_finished").unwrap();
    assert_eq!(summary["summary"]["unreachable"], 1);
    assert_eq!(summary["summary"]["failed"], 0);

    // A command failing on a reachable host is a failure, and outranks unreachable.
    let out = lab
        .parc()
        .args(["run", "all", "--", "test $(hostname) != ws-003"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}

fn key_line(lab: &TestLab, host: usize) -> String {
    let addr = lab.lab.hosts[host].address.to_string();
    std::fs::read_to_string(&lab.lab.known_hosts)
        .unwrap()
        .lines()
        .find(|l| l.split_whitespace().next() == Some(addr.as_str()))
        .unwrap_or_else(|| panic!("{addr} not in known_hosts"))
        .to_string()
}

/// The newest run's report.json and report.html.
fn last_report(lab: &TestLab) -> (serde_json::Value, String) {
    let runs = lab.dir().parent().unwrap().join("runs");
    let mut dirs: Vec<_> = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    let last = dirs.last().expect("a run directory");
    let json = std::fs::read_to_string(last.join("report.json")).unwrap();
    let html = std::fs::read_to_string(last.join("report.html")).unwrap();
    (serde_json::from_str(&json).unwrap(), html)
}

/// A refused host key is an alarm: the host ends `untrusted` everywhere (JSON
/// events, terminal, report.json and report.html), the run exits 3, and the
/// message says what it means and how to fix it.
fn assert_untrusted(lab: &TestLab, out: &Output, host: &str, must_contain: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        !err.contains('\u{1b}'),
        "no colour codes when stderr is not a terminal: {err}"
    );
    let ev = events(out);
    let done = finished(&ev);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["host"], host);
    assert_eq!(done[0]["state"], "untrusted");
    let message = done[0]["outcome"]["error"].as_str().unwrap();
    for m in must_contain.iter().chain(&[
        "nothing was sent to this host",
        "someone may be impersonating it",
    ]) {
        assert!(message.contains(m), "{m:?} not in {message}");
    }
    let summary = ev.iter().find(|e| e["event"] == "run_finished").unwrap();
    assert_eq!(summary["summary"]["untrusted"], 1);
    let (json, html) = last_report(lab);
    assert_eq!(json["hosts"][0]["state"], "untrusted", "{json}");
    assert!(html.contains("state-untrusted"));
    // The terminal shows it too.
    let plain = lab
        .parc()
        .args(["run", host, "--", "true"])
        .output()
        .unwrap();
    assert_eq!(plain.status.code(), Some(3));
    assert!(
        all_output(&plain).contains("UNTRUSTED"),
        "{}",
        all_output(&plain)
    );
}

#[test]
fn changed_and_revoked_host_keys_are_untrusted_and_accept_new_learns() {
    common::require_root_and_sshd();
    let lab = TestLab::start(3);
    let kh = lab.lab.known_hosts.clone();
    let original = std::fs::read_to_string(&kh).unwrap();
    let h0 = lab.lab.hosts[0].name.clone();
    let h1 = lab.lab.hosts[1].name.clone();

    // Changed: host 0's line now carries host 1's key.
    let line0 = key_line(&lab, 0);
    let line1 = key_line(&lab, 1);
    let addr0 = lab.lab.hosts[0].address.to_string();
    let forged = line1.replacen(&lab.lab.hosts[1].address.to_string(), &addr0, 1);
    std::fs::write(&kh, original.replace(&line0, &forged)).unwrap();
    let fp = |line: &str| {
        let out = std::process::Command::new("ssh-keygen")
            .args(["-l", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(line.as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    };
    let out = lab
        .parc()
        .args(["--json", "run", &h0, "--", "touch /root/should-not-exist"])
        .output()
        .unwrap();
    let changed_at = format!("{}:", kh.display());
    let removal = format!("ssh-keygen -R {addr0} -f {}", kh.display());
    assert_untrusted(
        &lab,
        &out,
        &h0,
        &["CHANGED", &changed_at, &removal, &fp(&line0), &fp(&line1)],
    );
    assert!(
        lab.host_file(0, "/root/should-not-exist").is_none(),
        "nothing ran"
    );

    // Revoked: refused even with accept-new.
    let key1 = line1
        .split_whitespace()
        .skip(1)
        .collect::<Vec<_>>()
        .join(" ");
    std::fs::write(&kh, format!("{original}@revoked * {key1}\n")).unwrap();
    let out = lab
        .parc()
        .args([
            "--json",
            "--host-key-policy",
            "accept-new",
            "run",
            &h1,
            "--",
            "true",
        ])
        .output()
        .unwrap();
    let revoked_at = format!("{}:{}", kh.display(), original.lines().count() + 1);
    assert_untrusted(&lab, &out, &h1, &["REVOKED", &revoked_at, &fp(&line1)]);

    // Unknown: strict refuses (unreachable: not an alarm), accept-new learns and
    // appends, then strict accepts.
    std::fs::write(&kh, "").unwrap();
    let out = lab
        .parc()
        .args(["run", &h0, "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let out = lab
        .parc()
        .args(["--host-key-policy", "accept-new", "run", &h0, "--", "true"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // ssh-keygen finds it, hashed or not (Debian's ssh_config hashes).
    let found = std::process::Command::new("ssh-keygen")
        .args(["-F", &addr0, "-f"])
        .arg(&kh)
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "{}",
        std::fs::read_to_string(&kh).unwrap()
    );
    let out = lab
        .parc()
        .args(["run", &h0, "--", "true"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "the learned key is trusted afterwards"
    );
}

#[test]
fn bad_inventory_and_pattern_are_usage_errors() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let out = lab
        .parc()
        .args(["run", "nosuch-*", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nosuch-*"));

    let bad = lab.lab.dir.join("bad.yml");
    std::fs::write(&bad, "hosts:\n  ws-001:\n    adress: 127.0.0.1\n").unwrap();
    let out = lab
        .parc()
        .arg("-i")
        .arg(&bad)
        .args(["run", "all", "--", "true"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("{}:3:", bad.display())),
        "file:line:col in: {err}"
    );
    assert!(err.contains("adress"), "{err}");
}

#[test]
fn jump_hosts_and_ssh_config_are_honoured() {
    common::require_root_and_sshd();
    let lab = TestLab::start(2);
    // ws-002 is reached through ws-001 (ProxyJump), named by inventory host.
    let inv = std::fs::read_to_string(lab.inventory()).unwrap();
    let a1 = lab.lab.hosts[1].address.to_string();
    let jumped = inv.replace(
        &format!("address: {a1}"),
        &format!("address: {a1}\n    jump: {}", lab.lab.hosts[0].name),
    );
    let path = lab.lab.dir.join("jump.yml");
    std::fs::write(&path, jumped).unwrap();
    // Every login to ws-001 shows in its sshd log; the run targets ws-002 only.
    let log = lab
        .lab
        .dir
        .join("hosts")
        .join(&lab.lab.hosts[0].name)
        .join("log");
    let logins = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("Accepted publickey")
            .count()
    };
    let before = logins();
    let out = lab
        .parc()
        .arg("-i")
        .arg(&path)
        .args([
            "--json",
            "run",
            &lab.lab.hosts[1].name,
            "--",
            "echo $SSH_CONNECTION",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = events(&out);
    let done = finished(&ev);
    assert_eq!(done[0]["state"], "ok");
    assert!(
        done[0]["outcome"]["stdout"]
            .as_str()
            .unwrap()
            .contains(&format!("{a1} 22"))
    );
    assert_eq!(
        logins(),
        before + 1,
        "parc logged in to the jump host once, to reach ws-002"
    );
}
