use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::*;
use crate::engine::events::{Event, HostState, Outcome, ResourceReport, ResourceStatus, Summary};

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

#[test]
fn writer_saves_at_checkpoints_and_runs_are_found_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let runs = RunsDir::new(dir.path().join("runs"));
    assert!(matches!(runs.find(None), Err(ReportError::NoRuns { .. })));

    let events = rollout_events();
    let mut writer = ReportWriter::create(&runs, "20261128T231502-3f9a", meta()).unwrap();
    writer.event(&events[0], at(0)).unwrap();
    let started = RunsDir::load(writer.dir()).unwrap();
    assert_eq!(started.targets.len(), 4, "the start is on disk at once");
    for e in &events[1..] {
        writer.event(e, at(1)).unwrap();
    }
    let html = writer.finish().unwrap();
    assert!(std::fs::read_to_string(&html).unwrap().contains("ws-004"));

    for id in ["20261128T231500-0001", "20261129T080000-3f9b"] {
        let w = ReportWriter::create(&runs, id, meta()).unwrap();
        w.finish().unwrap();
    }
    assert!(matches!(
        ReportWriter::create(&runs, "20261128T231500-0001", meta()),
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
    let loaded = RunsDir::load(&runs.find(Some("3f9a")).unwrap()).unwrap();
    assert_eq!(loaded.hosts.len(), 4);
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
fn the_latest_of_runs_started_in_the_same_second_is_the_one_started_last() {
    let dir = tempfile::tempdir().unwrap();
    let runs = RunsDir::new(dir.path());
    for id in ["20261128T231502-ffff", "20261128T231502-0000"] {
        ReportWriter::create(&runs, id, meta())
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
