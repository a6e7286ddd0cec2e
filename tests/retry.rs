//! `--limit @unreachable` on a real lab (needs root and openssh-server): a
//! laptop that was off during a rollout is retried alone once it is back; the
//! metrics file (`PARC_METRICS`) says so to Prometheus all along.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::TestLab;

/// host -> metric (with `:state` for the state) -> value, as the Prometheus
/// project's Python client parses the file (python3-prometheus-client).
fn metrics(path: &Path) -> BTreeMap<String, BTreeMap<String, f64>> {
    let out = std::process::Command::new("/usr/bin/python3")
        .args(["-c", include_str!("prometheus_parse.py")])
        .stdin(std::fs::File::open(path).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut hosts: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let (metric, labels, value): (String, BTreeMap<String, String>, f64) =
            serde_json::from_str(line).unwrap();
        assert_eq!(labels["action"], "apply");
        let name = match labels.get("state") {
            Some(s) => format!("{metric}:{s}"),
            None => metric,
        };
        hosts
            .entry(labels["host"].clone())
            .or_default()
            .insert(name, value);
    }
    hosts
}

#[test]
fn a_host_that_was_off_is_retried_alone_once_back() {
    common::require_root_and_sshd();
    let lab = TestLab::start(3);
    let dir = tempfile::tempdir().unwrap();
    let pb = common::play(
        dir.path(),
        "motd",
        "resources:\n  - file: {path: /etc/parc-retry, content: \"hello\\n\"}\n",
        "",
    );
    let off = lab.lab.hosts[1].name.clone();
    std::fs::create_dir(dir.path().join("textfile")).unwrap();
    let prom = dir.path().join("textfile/parc.prom");
    let lab_cmd = |verb: &str| {
        let st = lab
            .parc()
            .args(["lab", verb, &off, "--dir"])
            .arg(&lab.lab.dir)
            .status()
            .unwrap();
        assert!(st.success(), "lab {verb} {off}");
    };
    let apply = |limit: Option<&str>| {
        let mut cmd = lab.parc();
        cmd.current_dir(dir.path())
            .env("PARC_METRICS", &prom)
            .args(["--json", "--connect-timeout", "3", "apply"])
            .arg(&pb);
        if let Some(l) = limit {
            cmd.args(["--limit", l]);
        }
        let out = cmd.output().unwrap();
        let ev = common::events(&out);
        let ended: Vec<(String, String)> = common::finished(&ev)
            .iter()
            .map(|e| {
                (
                    e["host"].as_str().unwrap().to_string(),
                    e["state"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        (
            out.status.code(),
            ended,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    lab_cmd("stop");
    let (code, ended, err) = apply(None);
    assert_eq!(code, Some(4), "{ended:?} {err}");
    assert_eq!(
        ended.iter().filter(|(_, s)| s == "changed").count(),
        2,
        "{ended:?}"
    );
    assert!(
        ended.contains(&(off.clone(), "unreachable".into())),
        "{ended:?}"
    );
    assert_eq!(lab.host_file(1, "/etc/parc-retry"), None);
    // The only run so far (later ones may start within the same second).
    let runs: Vec<String> = std::fs::read_dir(dir.path().join("runs"))
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let first_run = runs[0].clone();
    // The run read back for a person: the host that was off first, the two
    // that changed alike as one group.
    let report = |args: &[&str]| {
        let out = lab
            .parc()
            .current_dir(dir.path())
            .arg("report")
            .args(args)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8(out.stdout).unwrap())
    };
    let (code, text) = report(&[]);
    assert_eq!(code, Some(0));
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle}: {text}"))
    };
    let unreachable = at(&format!("{off} | UNREACHABLE"));
    let group = at("2 hosts: changed | play 1 | 1 changed, 0 failed — same changes");
    assert!(unreachable < group, "{text}");
    let (code, text) = report(&["--host", &lab.lab.hosts[0].name]);
    assert_eq!(code, Some(0));
    assert!(
        text.contains("changed     file /etc/parc-retry: "),
        "{text}"
    );
    let (code, _) = report(&["--host", "nosuch"]);
    assert_eq!(code, Some(2));
    let before = metrics(&prom);
    assert_eq!(before.len(), 3);
    let on = &lab.lab.hosts[0].name;
    assert_eq!(before[on]["parc_host_state:changed"], 1.0);
    assert_eq!(before[on]["parc_host_resources_changed"], 1.0);
    assert_eq!(before[&off]["parc_host_state:unreachable"], 1.0);
    assert!(!before[&off].contains_key("parc_host_last_success_timestamp_seconds"));

    let (code, ended, err) = apply(Some("@failed"));
    assert_eq!(
        code,
        Some(2),
        "no host failed: a usage error, nothing run: {ended:?}"
    );
    assert!(err.contains("no host ended so in run"), "{err}");
    assert!(ended.is_empty());

    lab_cmd("start");
    let (code, ended, err) = apply(Some("@unreachable"));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        ended,
        [(off.clone(), "changed".to_string())],
        "only the host that was off"
    );
    assert_eq!(
        lab.host_file(1, "/etc/parc-retry").as_deref(),
        Some(&b"hello\n"[..])
    );
    let after = metrics(&prom);
    assert_eq!(
        after[on], before[on],
        "a host the retry left alone keeps its series"
    );
    assert_eq!(after[&off]["parc_host_state:changed"], 1.0);
    assert!(
        after[&off]["parc_host_last_success_timestamp_seconds"]
            >= before[on]["parc_host_last_success_timestamp_seconds"]
    );

    // The last run is now the retry, where nothing was unreachable; the first
    // run is still named by its id.
    let (code, _, err) = apply(Some("@unreachable"));
    assert_eq!(code, Some(2), "{err}");
    let first = format!("@{first_run}:unreachable");
    let (code, ended, err) = apply(Some(&first));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(ended, [(off, "ok".to_string())], "already converged");
}
