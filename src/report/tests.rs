use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::html::render as render_html;
use super::record::{HostRecord, Persist, Report};
use super::store::{HOSTS_JSONL, REPORT_JSON};
use super::*;
use crate::events::{Event, HostState, Outcome, ResourceReport, ResourceStatus, Summary};

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(1_795_904_102 + secs).unwrap()
}

fn meta() -> RunMeta {
    RunMeta {
        command_line: [
            "parc",
            "apply",
            "playbooks/rollout.yml",
            "-e",
            "share_password=<redacted>",
        ]
        .map(String::from)
        .to_vec(),
        operator: Operator {
            user: "alice".into(),
            uid: 0,
            sudo: true,
        },
        controller: "helpdesk-01".into(),
        inventory: Some("/srv/parc/inventory.yml".into()),
        playbook: Some("/srv/parc/playbooks/rollout.yml".into()),
        allow_outside: vec![],
    }
}

fn resource(name: &str, status: ResourceStatus) -> ResourceReport {
    ResourceReport {
        resource: name.into(),
        status,
        changes: Vec::new(),
        diff: None,
        output: None,
        error: None,
        rebooted_ms: None,
    }
}

fn finished(host: &str, state: HostState, elapsed_ms: u64, outcome: Outcome) -> Event {
    Event::HostFinished {
        host: host.into(),
        state,
        elapsed_ms,
        execs: 3,
        outcome,
    }
}

const HOSTS: [&str; 4] = ["ws-001", "ws-002", "ws-003", "ws-004"];

/// A rollout where the canary changes, the second batch fails and is
/// unreachable, and the budget aborts the last batch; plus text that must be
/// escaped.
fn rollout_events() -> Vec<Event> {
    let hosts = HOSTS.map(String::from).to_vec();
    let motd = ResourceReport {
        changes: vec!["content".into(), "mode 0644".into()],
        diff: Some(
            "--- /etc/motd\n+++ /etc/motd\n@@ -1 +1 @@\n-Welcome\n+Welcome <script>alert(1)</script>\n"
                .into(),
        ),
        ..resource("file /etc/motd", ResourceStatus::Changed)
    };
    let failing = ResourceReport {
        output: Some("updating certificates & keys\n".into()),
        error: Some("exit 1: update-ca-certificates: not found".into()),
        ..resource("command update-ca-certificates", ResourceStatus::Failed)
    };
    vec![
        Event::RunStarted {
            run_id: "20261128T231502-3f9a".into(),
            action: "apply".into(),
            hosts: hosts.clone(),
        },
        Event::PlayStarted {
            play: "Office rollout".into(),
            hosts: hosts.clone(),
            batches: vec![
                hosts[..1].to_vec(),
                hosts[1..3].to_vec(),
                hosts[3..].to_vec(),
            ],
        },
        Event::BatchStarted {
            play: "Office rollout".into(),
            index: 0,
            hosts: hosts[..1].to_vec(),
        },
        Event::HostPhase {
            host: "ws-001".into(),
            phase: "connecting".into(),
        },
        finished(
            "ws-001",
            HostState::Changed,
            1250,
            Outcome::Applied {
                check: false,
                resources: vec![motd.clone(), resource("dir /srv", ResourceStatus::NoChange)],
                error: None,
                verification: vec![],
                recovery: None,
            },
        ),
        Event::BatchStarted {
            play: "Office rollout".into(),
            index: 1,
            hosts: hosts[1..3].to_vec(),
        },
        finished(
            "ws-003",
            HostState::Unreachable,
            10_004,
            Outcome::Unreachable {
                error: "cannot connect to ws-003 (127.0.0.3:22): connection refused".into(),
            },
        ),
        finished(
            "ws-002",
            HostState::Failed,
            2100,
            Outcome::Applied {
                check: false,
                resources: vec![
                    motd,
                    failing,
                    resource("line /etc/hosts", ResourceStatus::NotRun),
                ],
                error: Some("exit 1: update-ca-certificates: not found".into()),
                verification: vec![],
                recovery: None,
            },
        ),
        Event::PlayAborted {
            play: "Office rollout".into(),
            reason: "2 hosts failed or were unreachable, more than max_failures (1)".into(),
            skipped: vec!["ws-004".into()],
        },
        finished(
            "ws-004",
            HostState::Skipped,
            0,
            Outcome::Skipped {
                reason: "play aborted: failure budget exceeded".into(),
            },
        ),
        Event::RunFinished {
            run_id: "20261128T231502-3f9a".into(),
            summary: Summary {
                changed: 1,
                failed: 1,
                unreachable: 1,
                skipped: 1,
                ..Summary::default()
            },
            elapsed_ms: 12_345,
        },
    ]
}

fn folded(events: &[Event]) -> Report {
    let mut report = Report::new("20261128T231502-3f9a", meta(), at(0));
    for (i, e) in events.iter().enumerate() {
        report.record(e, at(i as i64));
    }
    report
}

#[test]
fn html_snapshot() {
    let html = render_html(&folded(&rollout_events()), &TimeZone::UTC);
    assert!(!html.contains("<script>"), "unescaped diff text");
    assert!(html.contains("Welcome &lt;script&gt;alert(1)&lt;/script&gt;"));
    // One tag per line, so a change shows as a readable diff.
    insta::assert_snapshot!(
        html.replace(html::CSS, "/* report.css */")
            .replace("><", ">\n<")
    );
}

#[test]
fn recap_snapshot() {
    insta::assert_snapshot!(render_recap(&folded(&rollout_events()), &TimeZone::UTC));
}

#[test]
fn records_plays_batches_and_hosts_in_target_order() {
    let report = folded(&rollout_events());
    assert_eq!(report.action, "apply");
    assert_eq!(report.finished, Some(at(10)));
    let order: Vec<(&str, &str)> = report
        .hosts
        .iter()
        .map(|h| (h.host.as_str(), h.state.as_str()))
        .collect();
    assert_eq!(
        order,
        [
            ("ws-001", "changed"),
            ("ws-002", "failed"),
            ("ws-003", "unreachable"),
            ("ws-004", "skipped")
        ]
    );
    let ws2 = &report.hosts[1];
    assert_eq!((ws2.changed, ws2.failed), (Some(1), Some(1)));
    assert_eq!(ws2.play.as_deref(), Some("Office rollout"));
    assert_eq!(report.hosts[2].changed, None);
    let play = &report.plays[0];
    assert_eq!(play.batches_started, 2);
    assert_eq!(play.aborted.as_ref().unwrap().skipped, ["ws-004"]);
    assert_eq!(
        report.counts(),
        [
            ("ok", 0),
            ("changed", 1),
            ("failed", 1),
            ("unreachable", 1),
            ("untrusted", 0),
            ("skipped", 1),
            ("degraded", 0),
            ("rolled_back", 0)
        ]
        .map(|(s, n)| (s.to_string(), n))
    );
}

#[test]
fn a_run_allowed_to_read_outside_the_profiles_says_so_everywhere() {
    let mut report = folded(&rollout_events());
    report.meta.allow_outside = vec!["/srv/shared".into()];
    let json = serde_json::to_string(&report).unwrap();
    assert!(
        json.contains(r#""allow_outside":["/srv/shared"]"#),
        "{json}"
    );
    assert!(
        render_recap(&report, &TimeZone::UTC)
            .contains("profiles were allowed to read files outside their tree, from /srv/shared")
    );
    let html = render_html(&report, &TimeZone::UTC);
    assert!(html.contains("Read outside the profiles"), "{html}");
    // A confined run's record says nothing of it.
    report.meta.allow_outside.clear();
    assert!(
        !serde_json::to_string(&report)
            .unwrap()
            .contains("allow_outside")
    );
}

#[test]
fn a_run_cut_short_still_says_who_started_what_and_what_is_missing() {
    let events = rollout_events();
    let report = folded(&events[..7]);
    assert_eq!(report.finished, None);
    assert_eq!(report.unreported(), ["ws-002", "ws-004"]);
    assert_eq!(
        report.counts(),
        [("changed", 1), ("unreachable", 1)].map(|(s, n)| (s.to_string(), n))
    );
    let html = render_html(&report, &TimeZone::UTC);
    assert!(html.contains("2 hosts never reported: ws-002, ws-004."));
    assert!(
        render_recap(&report, &TimeZone::UTC).contains("did not finish, 2 of 4 hosts reported")
    );
}

#[test]
fn a_host_skipped_for_a_play_that_never_started_is_not_put_in_the_aborted_one() {
    let mut events = rollout_events();
    let last = events.pop().unwrap();
    events.push(finished(
        "ws-004",
        HostState::Skipped,
        0,
        Outcome::Skipped {
            reason: "an earlier play was aborted".into(),
        },
    ));
    events.push(last);
    let report = folded(&events);
    let plays: Vec<Option<&str>> = report
        .hosts
        .iter()
        .filter(|h| h.host == "ws-004")
        .map(|h| h.play.as_deref())
        .collect();
    assert_eq!(plays, [Some("Office rollout"), None]);
}

/// Two runs started in the same second may draw the same tail: the second
/// draws again rather than refusing to start (CI saw one refused).
#[test]
fn a_taken_run_id_is_drawn_again() {
    let dir = tempfile::tempdir().unwrap();
    let runs = RunsDir::new(dir.path().join("runs"));
    let first = ReportWriter::create(&runs, || "20261128T231500-0001".to_string(), meta()).unwrap();
    first.finish().unwrap();
    let mut draws = ["20261128T231500-0001", "20261128T231500-0002"].into_iter();
    let second = ReportWriter::create(&runs, || draws.next().unwrap().to_string(), meta()).unwrap();
    assert_eq!(second.run_id(), "20261128T231500-0002");
}

#[test]
fn writer_saves_at_checkpoints_and_runs_are_found_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let runs = RunsDir::new(dir.path().join("runs"));
    assert!(matches!(runs.find(None), Err(ReportError::NoRuns { .. })));

    let events = rollout_events();
    let mut writer =
        ReportWriter::create(&runs, || "20261128T231502-3f9a".to_string(), meta()).unwrap();
    writer.event(&events[0], at(0)).unwrap();
    let started = RunsDir::load(&dir.path().join("runs/20261128T231502-3f9a")).unwrap();
    assert_eq!(started.targets.len(), 4, "the start is on disk at once");
    for e in &events[1..] {
        writer.event(e, at(1)).unwrap();
    }
    let html = writer.finish().unwrap().html;
    assert!(std::fs::read_to_string(&html).unwrap().contains("ws-004"));

    for id in ["20261128T231500-0001", "20261129T080000-3f9b"] {
        let w = ReportWriter::create(&runs, || id.to_string(), meta()).unwrap();
        w.finish().unwrap();
    }
    assert!(matches!(
        ReportWriter::create(&runs, || "20261128T231500-0001".to_string(), meta()),
        Err(ReportError::CreateRunDir { .. })
    ));
    let name = |p: std::path::PathBuf| p.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(name(runs.find(None).unwrap()), "20261129T080000-3f9b");
    assert_eq!(
        name(runs.find(Some("3f9a")).unwrap()),
        "20261128T231502-3f9a"
    );
    assert_eq!(
        name(runs.find(Some("20261128T231502")).unwrap()),
        "20261128T231502-3f9a"
    );
    let run = runs.find(Some("3f9a")).unwrap();
    let loaded = RunsDir::load(&run).unwrap();
    assert_eq!(loaded.hosts.len(), 4);
    let appended = std::fs::read_to_string(run.join(HOSTS_JSONL)).unwrap();
    assert_eq!(appended.lines().count(), 4, "one line per host as it ended");
    assert_eq!(
        RunsDir::load_json(&run).unwrap(),
        std::fs::read_to_string(run.join(REPORT_JSON)).unwrap(),
        "a finished run's report is read as written"
    );
    assert_eq!(loaded.summary.unwrap().failed, 1);
    match runs.find(Some("nope")) {
        Err(e @ ReportError::UnknownRun { .. }) => assert!(
            e.to_string()
                .ends_with("20261129T080000-3f9b, 20261128T231502-3f9a, 20261128T231500-0001"),
            "{e}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        runs.find(Some("20261128")),
        Err(ReportError::AmbiguousRun { .. })
    ));
}

#[test]
fn hosts_that_ended_after_the_last_checkpoint_survive_a_killed_controller() {
    let dir = tempfile::tempdir().unwrap();
    let runs = RunsDir::new(dir.path());
    let events = rollout_events();
    let mut writer =
        ReportWriter::create(&runs, || "20261128T231502-3f9a".to_string(), meta()).unwrap();
    // Start, play, first batch, then two hosts end before the next checkpoint.
    for e in [&events[0], &events[1], &events[2], &events[4], &events[6]] {
        writer.event(e, at(1)).unwrap();
    }
    drop(writer);
    let run = dir.path().join("20261128T231502-3f9a");
    let on_disk: Report =
        serde_json::from_str(&std::fs::read_to_string(run.join(REPORT_JSON)).unwrap()).unwrap();
    assert!(
        on_disk.hosts.is_empty(),
        "report.json is only rewritten at checkpoints"
    );

    let ended = |report: &Report| -> Vec<(String, String)> {
        report
            .hosts
            .iter()
            .map(|h| (h.host.clone(), h.state.clone()))
            .collect()
    };
    let both = [
        ("ws-001".to_string(), "changed".to_string()),
        ("ws-003".to_string(), "unreachable".to_string()),
    ];
    let loaded = RunsDir::load(&run).unwrap();
    assert_eq!(ended(&loaded), both);
    assert_eq!(loaded.hosts[0].play.as_deref(), Some("Office rollout"));
    assert_eq!(loaded.unreported(), ["ws-002", "ws-004"]);
    let json: Report = serde_json::from_str(&RunsDir::load_json(&run).unwrap()).unwrap();
    assert_eq!(
        ended(&json),
        both,
        "`parc report --format json` shows them too"
    );
    let unreachable = runs.hosts_ended(None, PastState::Unreachable).unwrap();
    assert_eq!(
        unreachable.hosts.into_iter().collect::<Vec<_>>(),
        ["ws-003"]
    );

    // A write the controller did not complete is left out.
    let jsonl = run.join(HOSTS_JSONL);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&jsonl)
        .unwrap();
    std::io::Write::write_all(&mut file, br#"{"host":"ws-002","pl"#).unwrap();
    assert_eq!(ended(&RunsDir::load(&run).unwrap()), both);

    // A complete line that is not a host record is damage, shown where it is.
    std::io::Write::write_all(&mut file, b"\n").unwrap();
    let err = RunsDir::load(&run).unwrap_err().to_string();
    assert!(err.contains("hosts.jsonl:3:"), "{err}");
}

#[test]
fn records_appended_for_a_host_skipped_in_several_plays_are_all_kept() {
    let skipped = |play: Option<&str>| HostRecord {
        host: "ws-004".into(),
        play: play.map(String::from),
        state: "skipped".into(),
        elapsed_ms: 0,
        execs: 0,
        changed: None,
        failed: None,
        outcome_json: serde_json::value::to_raw_value(&serde_json::Value::Null).unwrap(),
        notes: Vec::new(),
    };
    let mut report = Report::new("r", meta(), at(0));
    report.hosts = vec![skipped(Some("a")), skipped(None)];
    let appended = vec![
        skipped(Some("a")),
        skipped(None),
        skipped(None),
        skipped(Some("b")),
    ];
    let missing = report.ended_since_checkpoint(appended);
    let plays: Vec<_> = missing.iter().map(|h| h.play.as_deref()).collect();
    assert_eq!(plays, [None, Some("b")]);
}

#[test]
fn the_latest_of_runs_started_in_the_same_second_is_the_one_started_last() {
    let dir = tempfile::tempdir().unwrap();
    let runs = RunsDir::new(dir.path());
    for id in ["20261128T231502-ffff", "20261128T231502-0000"] {
        ReportWriter::create(&runs, || id.to_string(), meta())
            .unwrap()
            .finish()
            .unwrap();
    }
    assert_eq!(
        runs.runs().unwrap(),
        ["20261128T231502-ffff", "20261128T231502-0000"]
    );
    assert!(runs.find(None).unwrap().ends_with("20261128T231502-0000"));
}

#[test]
fn a_damaged_report_points_at_the_spot() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(REPORT_JSON), "{\n  \"run_id\": 3\n}").unwrap();
    let err = RunsDir::load(dir.path()).unwrap_err();
    assert!(err.to_string().contains("report.json:2:"), "{err}");
}

#[test]
fn verification_results_show_failed_checks_first_with_expected_and_actual() {
    use crate::verify::{Check, TestResult};
    let test = |name: &str, checks: Vec<Check>| TestResult {
        name: name.into(),
        kind: "file",
        passed: checks.iter().all(|c| c.passed),
        checks,
    };
    let outcome = Outcome::Verified {
        results: vec![
            test(
                "file /etc/motd",
                vec![Check::equal("exists", "present", "present")],
            ),
            test(
                "file /etc/cups/lpoptions",
                vec![Check::equal("exists", "present", "absent")],
            ),
        ],
    };
    let events = vec![
        Event::RunStarted {
            run_id: "r".into(),
            action: "verify".into(),
            hosts: vec!["ws-001".into()],
        },
        finished("ws-001", outcome.state(), 700, outcome),
    ];
    let report = folded(&events);
    let recap = render_recap(&report, &TimeZone::UTC);
    assert!(
        recap.contains(
            "FAILED      file /etc/cups/lpoptions\n        exists: expected present, got absent"
        ),
        "{recap}"
    );
    assert!(
        !recap.contains("/etc/motd"),
        "passed tests are not listed: {recap}"
    );
    let html = render_html(&report, &TimeZone::UTC);
    let failed = html
        .find("<code>file /etc/cups/lpoptions</code>")
        .expect("failed test shown");
    let passed = html.find("1 test passed").expect("passed tests folded");
    assert!(failed < passed, "failed tests come first");
    assert!(html.contains("<pre>absent</pre>"), "actual value shown");
}

/// `--limit @failed` and the like: the hosts of the inventory that ended so in
/// the last run, or in the one named.
#[test]
fn past_states_select_the_hosts_that_ended_so() {
    let dir = tempfile::tempdir().unwrap();
    let runs = RunsDir::new(dir.path());
    let mut writer =
        ReportWriter::create(&runs, || "20261128T231502-3f9a".to_string(), meta()).unwrap();
    for e in &rollout_events() {
        writer.event(e, at(1)).unwrap();
    }
    writer.finish().unwrap();
    let inv = crate::inventory::Inventory::from_str(
        "hosts: {ws-001: , ws-002: , ws-003: , ws-004: , ws-005: }\n",
        std::path::Path::new("inv.yml"),
    )
    .unwrap();
    let names = |pattern: &str| -> Result<Vec<String>, String> {
        inv.select_retrying(pattern, &runs)
            .map(|hs| hs.into_iter().map(|h| h.name.clone()).collect())
            .map_err(|e| e.to_string())
    };
    assert_eq!(names("@failed").unwrap(), ["ws-002"]);
    assert_eq!(names("@unreachable").unwrap(), ["ws-003"]);
    assert_eq!(names("@failed,@unreachable").unwrap(), ["ws-002", "ws-003"]);
    assert_eq!(
        names("@failed:@unreachable:ws-005").unwrap(),
        ["ws-002", "ws-003", "ws-005"]
    );
    assert_eq!(names("all:!@failed:!@unreachable").unwrap().len(), 3);
    assert_eq!(names("@3f9a:failed").unwrap(), ["ws-002"]);
    assert_eq!(
        names("ws-001:@3f9a:unreachable:ws-004").unwrap(),
        ["ws-001", "ws-003", "ws-004"]
    );
    assert_eq!(
        names("ws-00*:&@20261128T231502-3f9a:failed").unwrap(),
        ["ws-002"]
    );

    let e = names("@untrusted").unwrap_err();
    assert_eq!(
        e,
        "host pattern `@untrusted`: no host ended so in run 20261128T231502-3f9a; nothing to retry"
    );
    let e = names("@changd").unwrap_err();
    assert!(e.contains("`changd` is not a state"), "{e}");
    let e = names("@nope:failed").unwrap_err();
    assert!(e.contains("no run `nope`"), "{e}");
    assert!(
        inv.select("@failed")
            .unwrap_err()
            .to_string()
            .contains("only be named on the command line"),
        "a playbook's hosts: cannot name a past run"
    );
    let gone = crate::inventory::Inventory::from_str(
        "hosts: {ws-001: }\n",
        std::path::Path::new("inv.yml"),
    )
    .unwrap();
    let e = gone
        .select_retrying("@failed", &runs)
        .unwrap_err()
        .to_string();
    assert!(e.contains("(ws-002) are no longer in the inventory"), "{e}");

    let empty = RunsDir::new(dir.path().join("none"));
    let e = inv
        .select_retrying("@failed", &empty)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("host pattern `@failed`: no run reports in"),
        "{e}"
    );
}

/// A later run of `action` in which `ended` hosts finished so, 100 s after
/// the rollout's report.
fn later_run(action: &str, ended: &[(&str, HostState)]) -> Report {
    let mut report = Report::new("20261128T233142-0b1d", meta(), at(100));
    let mut events = vec![Event::RunStarted {
        run_id: "20261128T233142-0b1d".into(),
        action: action.into(),
        hosts: ended.iter().map(|(h, _)| h.to_string()).collect(),
    }];
    for (host, state) in ended {
        let status = match state {
            HostState::Failed => ResourceStatus::Failed,
            _ => ResourceStatus::Changed,
        };
        let outcome = Outcome::Applied {
            check: action == "plan",
            resources: vec![resource("file /etc/motd", status)],
            error: None,
            verification: vec![],
            recovery: None,
        };
        events.push(finished(host, *state, 1500, outcome));
    }
    events.push(Event::RunFinished {
        run_id: "20261128T233142-0b1d".into(),
        summary: Summary::default(),
        elapsed_ms: 1500,
    });
    for e in &events {
        report.record(e, at(100));
    }
    report
}

/// The samples of a metrics file as the Prometheus project's own Python
/// client parses them (Debian's python3-prometheus-client, which
/// scripts/install-deps installs), sorted: (metric, labels, value).
type Sample = (String, std::collections::BTreeMap<String, String>, f64);
fn prometheus_parse(text: &str) -> Vec<Sample> {
    const PARSE: &str = include_str!("../../tests/prometheus_parse.py");
    let mut child = std::process::Command::new("/usr/bin/python3")
        .args(["-c", PARSE])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 (scripts/install-deps installs python3-prometheus-client)");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser refused the file (is python3-prometheus-client installed?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut samples: Vec<Sample> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    samples.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    samples
}

/// The samples of `host` for `action`, as `metric[:state] value`.
fn host_samples(samples: &[Sample], action: &str, host: &str) -> Vec<String> {
    samples
        .iter()
        .filter(|(_, l, _)| l["action"] == action && l["host"] == host)
        .map(|(m, l, v)| match l.get("state") {
            Some(state) => format!("{m}:{state} {v}"),
            None => format!("{m} {v}"),
        })
        .collect()
}

#[test]
fn metrics_keep_other_hosts_and_last_successes_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("parc.prom");
    let rollout = folded(&rollout_events());
    update_metrics(&path, &rollout).unwrap();
    let first = std::fs::read_to_string(&path).unwrap();
    insta::assert_snapshot!(first);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o644,
        "readable by the collector's user"
    );

    // ws-001 fails after its success; ws-003, off at first, converges; a
    // plan on ws-002 has series of its own.
    let later = later_run(
        "apply",
        &[
            ("ws-001", HostState::Failed),
            ("ws-003", HostState::Changed),
        ],
    );
    update_metrics(&path, &later).unwrap();
    update_metrics(&path, &later_run("plan", &[("ws-002", HostState::Changed)])).unwrap();
    let samples = prometheus_parse(&std::fs::read_to_string(&path).unwrap());
    let (t0, t1) = (
        rollout.finished.unwrap().as_second(),
        later.finished.unwrap().as_second(),
    );
    assert_eq!(
        host_samples(&samples, "apply", "ws-001"),
        [
            "parc_host_duration_seconds 1.5".to_string(),
            format!("parc_host_last_run_timestamp_seconds {t1}"),
            format!("parc_host_last_success_timestamp_seconds {t0}"),
            "parc_host_resources_changed 0".into(),
            "parc_host_resources_failed 1".into(),
            "parc_host_state:failed 1".into(),
        ],
        "the success before the failure is kept"
    );
    assert!(
        host_samples(&samples, "apply", "ws-003")
            .contains(&format!("parc_host_last_success_timestamp_seconds {t1}")),
        "{samples:#?}"
    );
    let before = prometheus_parse(&first);
    for host in ["ws-002", "ws-004"] {
        assert_eq!(
            host_samples(&samples, "apply", host),
            host_samples(&before, "apply", host),
            "{host}, not in the later run, is kept as it was"
        );
    }
    assert_eq!(
        host_samples(&samples, "plan", "ws-002").len(),
        6,
        "a plan is its own action"
    );
}

#[test]
fn metrics_escape_host_names_and_refuse_to_overwrite_a_foreign_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("parc.prom");
    let odd = "ws-\"01\"\\\n}, x=\"y\"";
    update_metrics(&path, &later_run("apply", &[(odd, HostState::Changed)])).unwrap();
    // Read back by parc itself for the second run, then by Prometheus' parser.
    update_metrics(
        &path,
        &later_run("apply", &[("ws-002", HostState::Changed)]),
    )
    .unwrap();
    let samples = prometheus_parse(&std::fs::read_to_string(&path).unwrap());
    assert_eq!(
        host_samples(&samples, "apply", odd).len(),
        6,
        "{samples:#?}"
    );
    assert_eq!(samples.len(), 12, "{samples:#?}");

    std::fs::write(&path, "node_load1 0.5\n").unwrap();
    let e = update_metrics(&path, &later_run("apply", &[("ws-002", HostState::Ok)])).unwrap_err();
    assert!(
        e.to_string().starts_with(&format!(
            "{}:1:1: expected `metric{{labels}} value`",
            path.display()
        )),
        "{e}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "node_load1 0.5\n");
    std::fs::write(&path, "node_load1{cpu=\"0\"} 0.5\n").unwrap();
    let e = update_metrics(&path, &later_run("apply", &[("ws-002", HostState::Ok)])).unwrap_err();
    assert!(
        e.to_string()
            .contains(":1:1: `node_load1` is not a metric parc writes"),
        "{e}"
    );
}

/// A collector reading while parc writes sees a whole file, old or new, and
/// no temporary file is left behind.
#[test]
fn metrics_are_replaced_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("parc.prom");
    let report = folded(&rollout_events());
    update_metrics(&path, &report).unwrap();
    let whole = std::fs::read_to_string(&path).unwrap();
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..200 {
                update_metrics(&path, &report).unwrap();
            }
            done.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        let mut reads = 0;
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            assert_eq!(std::fs::read_to_string(&path).unwrap(), whole);
            reads += 1;
        }
        assert!(reads > 0);
    });
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, [".parc.prom.lock", "parc.prom"]);
}

/// 18 workstations with the same changes read as one group; the failed and
/// the unreachable come first with their reasons.
#[test]
fn recap_groups_hosts_that_ended_alike() {
    let names: Vec<String> = (1..=21).map(|i| format!("ws-{i:03}")).collect();
    let motd = ResourceReport {
        changes: vec!["content".into()],
        ..resource("file /etc/motd", ResourceStatus::Changed)
    };
    let applied = |resources: Vec<ResourceReport>, error: Option<&str>| Outcome::Applied {
        check: false,
        resources,
        error: error.map(String::from),
        verification: vec![],
        recovery: None,
    };
    let mut events = vec![Event::RunStarted {
        run_id: "20261128T231502-3f9a".into(),
        action: "apply".into(),
        hosts: names.clone(),
    }];
    for (i, host) in names.iter().enumerate() {
        let (state, outcome) = match i {
            // Numbered apart: ws-001..ws-006, ws-008..ws-019 and ws-021.
            6 => (
                HostState::Failed,
                applied(
                    vec![ResourceReport {
                        error: Some("exit 100: dpkg was interrupted".into()),
                        ..resource("package cups", ResourceStatus::Failed)
                    }],
                    Some("exit 100: dpkg was interrupted"),
                ),
            ),
            19 => (
                HostState::Unreachable,
                Outcome::Unreachable {
                    error: format!("cannot connect to {host}: connection refused"),
                },
            ),
            _ => (
                HostState::Changed,
                applied(
                    vec![motd.clone(), resource("dir /srv", ResourceStatus::NoChange)],
                    None,
                ),
            ),
        };
        events.push(finished(host, state, 1000 + i as u64, outcome));
    }
    events.push(Event::RunFinished {
        run_id: "20261128T231502-3f9a".into(),
        summary: Summary {
            changed: 19,
            failed: 1,
            unreachable: 1,
            ..Summary::default()
        },
        elapsed_ms: 4000,
    });
    let report = folded(&events);
    insta::assert_snapshot!(render_recap(&report, &TimeZone::UTC));
}

#[test]
fn one_host_in_full_with_diffs_output_and_unchanged_resources() {
    let report = folded(&rollout_events());
    let text = render_host_recap(&report, "ws-002", &TimeZone::UTC).unwrap();
    insta::assert_snapshot!(text);
    assert!(render_host_recap(&report, "ws-999", &TimeZone::UTC).is_none());
}

/// A command's output reaches report.json as text when it is text and as
/// base64 when that is shorter (NUL bytes); the page shows both decoded, with
/// control characters escaped.
#[test]
fn command_output_is_kept_compactly_and_shown_decoded() {
    use crate::engine::output::HostBytes;
    use crate::transport::ExitStatus;
    let mut report = Report::new("20261128T231502-3f9a", meta(), at(0));
    let outcome = Outcome::Command {
        status: ExitStatus::Code(0),
        stdout: HostBytes([b"nul:".as_slice(), &[0; 64]].concat()),
        stderr: HostBytes(b"warning <b>\n".to_vec()),
        stdout_cut_from: Some(1 << 30),
        stderr_cut_from: None,
    };
    report.record(&finished("ws-001", HostState::Ok, 5, outcome), at(1));
    let json = serde_json::to_value(&report).unwrap();
    let out = &json["hosts"][0]["outcome"];
    assert!(
        out["stdout"]["base64"]
            .as_str()
            .unwrap()
            .starts_with("bnVsOgAA")
    );
    assert_eq!(out["stderr"], "warning <b>\n");
    assert_eq!(out["stdout_cut_from"], 1 << 30);
    let page = render_html(&report, &TimeZone::UTC);
    assert!(
        page.contains(&format!("nul:{}", "\\x00".repeat(64))),
        "{page}"
    );
    assert!(page.contains("warning &lt;b&gt;"), "{page}");
}

/// A host's outcome, kept as its JSON text, is laid out in report.json as
/// any other value: indented like the rest of the pretty file, and read
/// back whole.
#[test]
fn a_kept_outcome_is_written_as_a_value_and_read_back() {
    let mut report = Report::new("20261207T021502-3f9a", meta(), at(0));
    let outcome = Outcome::Failed {
        error: "disk full".to_string(),
    };
    report.record(&finished("ws-001", HostState::Failed, 5, outcome), at(1));
    let pretty = serde_json::to_string_pretty(&report).unwrap();
    assert!(
        pretty.contains("\"outcome\": {\n        \"kind\": \"failed\",\n        \"error\": \"disk full\"\n      }"),
        "{pretty}"
    );
    let back: Report = serde_json::from_str(&pretty).unwrap();
    assert_eq!(back.hosts[0].outcome(), report.hosts[0].outcome());
    assert_eq!(
        HostRecord::error(&back.hosts[0].outcome()),
        Some("disk full")
    );
}

/// What parc did on a host besides its outcome (processes it killed taking
/// over a stale lock, or stopping a read it gave up on) is in that host's
/// record, in report.json and the page, and read back with it.
#[test]
fn what_parc_stopped_on_a_host_is_in_its_record() {
    let mut report = Report::new("20261208T013000-3f9a", meta(), at(0));
    for event in [
        Event::LockTakenOver {
            host: "ws-001".into(),
            what: "killed the processes the interrupted run r left running".into(),
        },
        Event::GaveUp {
            host: "ws-001".into(),
            what: "parc stopped what the script it stopped waiting for left running".into(),
        },
    ] {
        assert_eq!(report.record(&event, at(1)), Persist::Nothing);
    }
    let outcome = Outcome::Failed {
        error: "probing did not finish within 2 s".to_string(),
    };
    report.record(
        &finished(
            "ws-002",
            HostState::Ok,
            5,
            Outcome::Failed {
                error: String::new(),
            },
        ),
        at(1),
    );
    report.record(&finished("ws-001", HostState::Failed, 5, outcome), at(2));
    assert!(report.hosts[0].notes.is_empty());
    let notes = &report.hosts[1].notes;
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].starts_with("took over a stale lock: killed"));
    let back: Report = serde_json::from_str(&serde_json::to_string(&report).unwrap()).unwrap();
    assert_eq!(&back.hosts[1].notes, notes);
    assert!(
        !serde_json::to_string(&report.hosts[0])
            .unwrap()
            .contains("notes")
    );
    let page = render_html(&report, &TimeZone::UTC);
    assert!(page.contains("parc stopped what the script it stopped waiting for left running"));
}
