//! Profiles, playbooks and rollouts on a real lab (needs root and openssh-server).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{TestLab, events, finished};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Every path under a host's overlay upper dir with its mtime, size and mode:
/// if this does not change, parc wrote nothing on the host. parc's own
/// bookkeeping under /var/lib/parc (the lock taken for the run, one line per
/// run in history.log) is left out: it records the run, it is not the host's
/// managed state.
fn tree(root: &Path) -> BTreeMap<PathBuf, (i64, i64, u64, u32)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            if entry.path().starts_with(root.join("var/lib/parc")) {
                continue;
            }
            let meta = std::fs::symlink_metadata(entry.path()).unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            }
            out.insert(
                entry.path().strip_prefix(root).unwrap().to_path_buf(),
                (meta.mtime(), meta.mtime_nsec(), meta.size(), meta.mode()),
            );
        }
    }
    out
}

fn trees(lab: &TestLab) -> Vec<BTreeMap<PathBuf, (i64, i64, u64, u32)>> {
    lab.lab.hosts.iter().map(|h| tree(&h.upper)).collect()
}

fn apply_json(lab: &TestLab, args: &[&str]) -> (Output, Vec<serde_json::Value>) {
    let out = lab.parc().arg("--json").args(args).output().unwrap();
    let ev = events(&out);
    (out, ev)
}

#[test]
fn rollout_converges_20_hosts_and_a_second_run_writes_nothing() {
    common::require_root_and_sshd();
    let lab = TestLab::start(20);
    let playbook = repo("playbooks/rollout.yml");
    let pb = playbook.to_str().unwrap();
    let (out, ev) = apply_json(&lab, &["apply", pb]);
    let done = finished(&ev);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}\n{done:#?}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(done.len(), 20);
    assert!(done.iter().all(|e| e["state"] == "changed"), "{done:#?}");
    // Canary first, then 10%, then the rest.
    let batches: Vec<usize> = ev
        .iter()
        .filter(|e| e["event"] == "batch_started")
        .map(|e| e["hosts"].as_array().unwrap().len())
        .collect();
    assert_eq!(batches, vec![1, 2, 17]);
    for (i, h) in lab.lab.hosts.iter().enumerate() {
        let managed = String::from_utf8(lab.host_file(i, "/etc/parc/managed").unwrap()).unwrap();
        assert!(managed.contains(&format!("host={}", h.name)), "{managed}");
        let printers =
            String::from_utf8(lab.host_file(i, "/etc/cups/printers.conf").unwrap()).unwrap();
        assert!(printers.contains("<Printer hp-2nd-floor>"));
        let creds =
            String::from_utf8(lab.host_file(i, "/etc/parc/share-credentials").unwrap()).unwrap();
        assert!(creds.contains("password=change-me-in-the-inventory"));
        assert!(lab.host_file(i, "/etc/profile.d/parc-proxy.sh").is_some());
    }
    let all_output = String::from_utf8_lossy(&out.stdout);
    assert!(
        !all_output.contains("change-me-in-the-inventory"),
        "the secret leaked into events"
    );

    let before = trees(&lab);
    let (out, ev) = apply_json(&lab, &["apply", pb]);
    assert_eq!(out.status.code(), Some(0));
    let done = finished(&ev);
    assert!(
        done.iter().all(|e| e["state"] == "ok"),
        "second run changes nothing: {done:#?}"
    );
    let summary = ev.iter().find(|e| e["event"] == "run_finished").unwrap();
    assert_eq!(summary["summary"]["changed"], 0);
    assert_eq!(before, trees(&lab), "the second run wrote on some host");
}

/// Write a profiles dir with one profile of `n` file resources, and a playbook for it.
fn numbered_profile(dir: &Path, n: usize) -> PathBuf {
    std::fs::create_dir_all(dir.join("profiles")).unwrap();
    std::fs::create_dir_all(dir.join("playbooks")).unwrap();
    let mut yaml = String::from("resources:\n  - dir: {path: /srv/many}\n");
    for i in 1..n {
        yaml.push_str(&format!("  - file: {{path: /srv/many/f{i}, content: \"file {i} on {{{{ inventory_hostname }}}}\\n\"}}\n"));
    }
    std::fs::write(dir.join(format!("profiles/many{n}.yml")), yaml).unwrap();
    let pb = dir.join(format!("playbooks/many{n}.yml"));
    std::fs::write(&pb, format!("- hosts: all\n  profiles: [many{n}]\n")).unwrap();
    pb
}

#[test]
fn remote_execs_per_host_do_not_grow_with_resources() {
    common::require_root_and_sshd();
    let lab = TestLab::start(2);
    let dir = tempfile::tempdir().unwrap();
    let mut counts = Vec::new();
    for n in [5, 50] {
        let pb = numbered_profile(dir.path(), n);
        let (out, ev) = apply_json(&lab, &["apply", pb.to_str().unwrap()]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let execs: Vec<u64> = finished(&ev)
            .iter()
            .map(|e| e["execs"].as_u64().unwrap())
            .collect();
        counts.push(execs);
        assert_eq!(
            lab.host_file(1, &format!("/srv/many/f{}", n - 1)).unwrap(),
            format!("file {} on {}\n", n - 1, lab.lab.hosts[1].name).as_bytes()
        );
    }
    assert_eq!(
        counts[0], counts[1],
        "execs per host: 5 resources {:?} vs 50 resources {:?}",
        counts[0], counts[1]
    );
    assert_eq!(
        counts[0],
        vec![3, 3],
        "lock (with the facts probe) + probe + apply"
    );
}

#[test]
fn plan_changes_nothing_and_lists_exactly_what_apply_changes() {
    common::require_root_and_sshd();
    let lab = TestLab::start(3);
    // One host already has part of the state.
    let st = lab
        .parc()
        .args([
            "run",
            &lab.lab.hosts[0].name,
            "--",
            "mkdir -p /etc/parc && echo 'Europe/Paris' > /etc/timezone",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let pb = repo("playbooks/rollout.yml");
    let before = trees(&lab);
    let (out, plan) = apply_json(&lab, &["plan", "--diff", pb.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(before, trees(&lab), "plan wrote on a host");
    let (out, applied) = apply_json(&lab, &["apply", pb.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    let listed = |ev: &[serde_json::Value], statuses: &[&str]| -> BTreeMap<String, Vec<String>> {
        finished(ev)
            .iter()
            .map(|e| {
                let names = e["outcome"]["resources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|r| statuses.contains(&r["status"].as_str().unwrap()))
                    .map(|r| r["resource"].as_str().unwrap().to_string())
                    .collect();
                (e["host"].as_str().unwrap().to_string(), names)
            })
            .collect()
    };
    let planned = listed(&plan, &["will_change"]);
    let changed = listed(&applied, &["changed"]);
    // Handlers appear in apply only; resources otherwise match one for one.
    let changed_resources: BTreeMap<String, Vec<String>> = changed
        .into_iter()
        .map(|(h, v)| {
            (
                h,
                v.into_iter()
                    .filter(|r| !r.starts_with("handler"))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(planned, changed_resources);
    let host0 = &planned[&lab.lab.hosts[0].name];
    assert!(
        !host0.iter().any(|r| r == "file /etc/timezone"),
        "already in place on host 0: {host0:?}"
    );
    assert!(
        planned[&lab.lab.hosts[1].name]
            .iter()
            .any(|r| r == "file /etc/timezone")
    );
    // --diff shows content, but never the secret.
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("change-me-in-the-inventory"));
    let plan_text = serde_json::to_string(&plan).unwrap();
    assert!(
        plan_text.contains("+Europe/Paris"),
        "diff of /etc/timezone expected"
    );
    assert!(!plan_text.contains("change-me-in-the-inventory"));
}

#[test]
fn failure_budget_stops_the_rollout_before_the_last_batch() {
    common::require_root_and_sshd();
    let lab = TestLab::start(10);
    let dir = tempfile::tempdir().unwrap();
    let pb = common::play(
        dir.path(),
        "conf",
        "resources:\n  - file: {path: /etc/parc-test.conf, content: \"ok\\n\"}\n",
        "  name: waves\n  batches: [1, 50%, 100%]\n  max_failures: 1\n",
    );
    // Two broken hosts in the second batch: a directory stands where the file goes.
    let broken = format!("{},{}", lab.lab.hosts[2].name, lab.lab.hosts[4].name);
    assert!(
        lab.parc()
            .args(["run", &broken, "--", "mkdir /etc/parc-test.conf"])
            .status()
            .unwrap()
            .success()
    );

    let (out, ev) = apply_json(&lab, &["apply", pb.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    let aborted = ev
        .iter()
        .find(|e| e["event"] == "play_aborted")
        .expect("play aborted");
    assert!(aborted["reason"].as_str().unwrap().contains("max_failures"));
    let state = |i: usize| {
        finished(&ev)
            .iter()
            .find(|e| e["host"] == lab.lab.hosts[i].name.as_str())
            .map(|e| e["state"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(state(0), "changed");
    assert_eq!(state(2), "failed");
    assert_eq!(state(4), "failed");
    for i in 6..10 {
        assert_eq!(state(i), "skipped", "host {i} is in the last batch");
        assert!(lab.host_file(i, "/etc/parc-test.conf").is_none());
    }
    let plain = lab
        .parc()
        .args(["apply", pb.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&plain.stderr).contains("aborted"));
}

#[test]
fn hostile_names_are_never_interpreted_by_the_shell() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let dir = tempfile::tempdir().unwrap();
    let profile = r#"
vars:
  evil: "a'b\"c $(touch /tmp/pwned1) `touch /tmp/pwned2`; touch /tmp/pwned3"
  evil_name: "a'b\"c $(id>pwned7) `id>pwned8`; id>pwned9 *"
resources:
  - dir: {path: "/srv/sp ace $(touch /tmp/pwned4)"}
  - file:
      path: "/srv/sp ace $(touch /tmp/pwned4)/{{ evil_name }}"
      content: "{{ evil }}\n"
  - file:
      path: "/srv/new\nline"
      content: "x\n"
  - line:
      path: "/srv/sp ace $(touch /tmp/pwned4)/l'ines"
      line: "value=$(touch /tmp/pwned5)"
  # A second line in the same file adds to the first instead of undoing it.
  - line:
      path: "/srv/sp ace $(touch /tmp/pwned4)/l'ines"
      regexp: "^second="
      line: "second='2'"
  - command:
      run: "printf '%s' \"$0\" > /srv/arg"
      creates: "/srv/it's $(touch /tmp/pwned6)"
"#;
    let pb = common::play(dir.path(), "evil", profile, "");
    let (out, ev) = apply_json(&lab, &["apply", pb.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{:#?}", finished(&ev));
    let evil = "a'b\"c $(touch /tmp/pwned1) `touch /tmp/pwned2`; touch /tmp/pwned3";
    let evil_name = "a'b\"c $(id>pwned7) `id>pwned8`; id>pwned9 *";
    let base = "/srv/sp ace $(touch /tmp/pwned4)";
    assert_eq!(
        lab.host_file(0, &format!("{base}/{evil_name}")).unwrap(),
        format!("{evil}\n").as_bytes()
    );
    assert_eq!(lab.host_file(0, "/srv/new\nline").unwrap(), b"x\n");
    assert_eq!(
        lab.host_file(0, &format!("{base}/l'ines")).unwrap(),
        b"value=$(touch /tmp/pwned5)\nsecond='2'\n"
    );
    for i in 7..=9 {
        for dir in ["/", "/root", "/srv", "/tmp"] {
            assert!(
                lab.host_file(0, &format!("{dir}/pwned{i}")).is_none(),
                "{dir}/pwned{i} exists: injection"
            );
        }
    }
    for i in 1..=6 {
        assert!(
            lab.host_file(0, &format!("/tmp/pwned{i}")).is_none(),
            "pwned{i} exists: injection"
        );
    }
    // Idempotent with hostile names too.
    let (_, ev) = apply_json(&lab, &["apply", pb.to_str().unwrap()]);
    let changed: Vec<_> = finished(&ev)[0]["outcome"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "changed")
        .map(|r| r["resource"].clone())
        .collect();
    assert_eq!(
        changed,
        vec![serde_json::json!("command printf '%s' \"$0\" > /srv/arg")],
        "only the unguarded-by-file command reruns"
    );
}

fn apply_profile(lab: &TestLab, dir: &Path, profile_yaml: &str, files: &[(&str, &str)]) -> Output {
    std::fs::create_dir_all(dir.join("profiles/templates")).unwrap();
    std::fs::create_dir_all(dir.join("playbooks")).unwrap();
    std::fs::write(dir.join("profiles/p.yml"), profile_yaml).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join("profiles/templates").join(name), text).unwrap();
    }
    let pb = dir.join("playbooks/p.yml");
    std::fs::write(&pb, "- hosts: all\n  profiles: [p]\n").unwrap();
    lab.parc().arg("apply").arg(&pb).output().unwrap()
}

#[test]
fn bad_inputs_point_at_file_line_and_column() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("profiles/p.yml");
    let p = p.display();
    // (profile, template files, exit code, expected location prefix, expected words)
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, i32, String, &'a str);
    let cases: Vec<Case> = vec![
        (
            "resources:\n  - fiel: {path: /x}\n",
            vec![],
            2,
            format!("{p}:2:"),
            "unknown variant `fiel`",
        ),
        (
            "resources:\n  - file: {path: /x, content: a, colour: red}\n",
            vec![],
            2,
            format!("{p}:2:"),
            "unknown field `colour`",
        ),
        (
            // The mapping never closes: the parser finds out at the end.
            "resources:\n  - file: {path: /x\n",
            vec![],
            2,
            format!("{p}:3:1:"),
            "did not find expected ',' or '}'",
        ),
        (
            "resources:\n  - file:\n      path: /x\n      content: \"v={{ ntp_srver }}\"\n",
            vec![],
            2,
            format!("{p}:4:"),
            "ntp_srver",
        ),
        (
            "resources:\n  - file: {path: /x, template: t.j2}\n",
            vec![("t.j2", "line1\nline2 {{ foo.bar }}\n")],
            2,
            "templates/t.j2:2:".to_string(),
            "foo",
        ),
        (
            "resources:\n  - file: {path: /x, template: nope.j2}\n",
            vec![],
            2,
            format!("{p}:2:"),
            "nope.j2",
        ),
        (
            "resources:\n  - file: {path: /x, content: a, when: \"facts.os.id ==\"}\n",
            vec![],
            2,
            format!("{p}:2:"),
            "when",
        ),
    ];
    for (yaml, files, code, location, needle) in cases {
        assert!(!needle.is_empty(), "every case names what its error says");
        let out = apply_profile(&lab, dir.path(), yaml, &files);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{yaml}\n{err}");
        assert!(
            err.contains(&location),
            "expected {location} for:\n{yaml}\ngot: {err}"
        );
        assert!(
            err.contains(needle),
            "expected {needle:?} for:\n{yaml}\ngot: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}
