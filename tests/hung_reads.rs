//! Reads that never end (a hung network mount, a file a local user swapped
//! for a FIFO, a guard or test command that waits for ever): past
//! `--read-timeout` the host fails and says why, parc stops what the read
//! left running on the host and releases its lock, and the run ends. Before,
//! the run waited for ever, holding the host's lock and its batch. Needs root
//! and openssh-server; the never-ending read is a command guard (`unless:`),
//! which the probe runs, standing in for a hung `stat`.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{TestLab, events, finished, play};

/// `command` to its end, or killed (and the test failed) after `limit`:
/// the run must end by itself.
fn within(mut command: Command, limit: Duration) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "parc was still running after {limit:?}: {}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

/// Processes on this machine (the lab's hosts share its process IDs) whose
/// command line is `argv`.
fn running(argv: &[&str]) -> usize {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|c| *c == want)
        .count()
}

fn apply(lab: &TestLab, pb: &Path, read_timeout: &str) -> (Output, Vec<serde_json::Value>) {
    let mut parc = lab.parc();
    parc.args(["--json", "--read-timeout", read_timeout, "apply"])
        .arg(pb);
    let out = within(parc, Duration::from_secs(90));
    let ev = events(&out);
    (out, ev)
}

fn hung_guard(seconds: &str) -> String {
    format!(
        "resources:\n  - file: {{path: /etc/parc-hung-done, content: \"x\\n\"}}\n  \
         - command: {{run: 'true', unless: 'sleep {seconds}'}}\n"
    )
}

fn after_hang(lab: &TestLab, ev: &[serde_json::Value], seconds: &str) {
    let f = finished(ev);
    assert_eq!(f.len(), 1, "{ev:?}");
    assert_eq!(f[0]["state"], "failed", "{ev:?}");
    let text = serde_json::to_string(&f[0]).unwrap();
    assert!(
        text.contains("probing did not finish within 2 s (--read-timeout)"),
        "{text}"
    );
    assert!(
        text.contains("nothing had been changed on the host"),
        "{text}"
    );
    let gave_up: Vec<_> = ev.iter().filter(|e| e["event"] == "gave_up").collect();
    assert_eq!(gave_up.len(), 1, "{ev:?}");
    let what = gave_up[0]["what"].as_str().unwrap();
    assert!(what.contains("parc stopped what the script"), "{what}");
    // Stopped on the host, not left to sleep its hour.
    assert_eq!(running(&["sleep", seconds]), 0, "{ev:?}");
    assert!(lab.host_file(0, "/etc/parc-hung-done").is_none());
    // The lock is gone and the run is in the host's history as failed.
    assert_lock_free(lab);
    let history = lab.host_file(0, "/var/lib/parc/history.log").unwrap();
    let last = String::from_utf8_lossy(&history)
        .lines()
        .last()
        .unwrap()
        .to_string();
    assert!(
        last.contains("action=apply") && last.contains("state=failed"),
        "{last}"
    );
    // The run's record says what parc stopped on the host.
    let run = ev[0]["run_id"].as_str().unwrap();
    let report = lab
        .dir()
        .parent()
        .unwrap()
        .join("runs")
        .join(run)
        .join("report.json");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let notes = report["hosts"][0]["notes"].to_string();
    assert!(notes.contains("parc stopped what the script"), "{report}");
}

/// On a Debian host (dash) the probe runs in the lock's own shell: the
/// shell that would read the release is the one stuck. It is stopped by an
/// exec of its own, which then releases the lock, and the next run needs no
/// `--break-lock`.
#[test]
fn a_probe_that_never_ends_fails_its_host_and_frees_its_lock() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let dir = tempfile::tempdir().unwrap();
    let pb = play(dir.path(), "hung", &hung_guard("3017"), "");
    let (_, ev) = apply(&lab, &pb, "2");
    let text = serde_json::to_string(&ev).unwrap();
    assert!(text.contains("the lock is released"), "{text}");
    after_hang(&lab, &ev, "3017");

    let pb = play(
        dir.path(),
        "fine",
        "resources:\n  - file: {path: /etc/parc-hung-done, content: \"x\\n\"}\n",
        "",
    );
    let (out, ev) = apply(&lab, &pb, "2");
    assert!(out.status.success(), "{ev:?}");
    assert_eq!(lab.host_file(0, "/etc/parc-hung-done").unwrap(), b"x\n");
}

/// Where root's `sh` is bash, which reads a script whole before it runs it,
/// the probe gets an exec of its own: that exec's process group, recorded
/// in the lock, is stopped before the lock's shell releases the lock.
#[test]
fn a_probe_in_an_exec_of_its_own_is_stopped_too() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let sh = lab.ssh(0, "ln -sf bash /bin/sh && ls -l /bin/sh");
    assert!(sh.status.success(), "{sh:?}");
    let dir = tempfile::tempdir().unwrap();
    let pb = play(dir.path(), "hung", &hung_guard("3018"), "");
    let (_, ev) = apply(&lab, &pb, "2");
    after_hang(&lab, &ev, "3018");
}

/// On a first run the tests are read by the apply exec itself, after its
/// changes: their clock starts with the first test. Past it, the host is
/// rolled back like one whose tests failed, and the test left running is
/// stopped before the lock is released.
#[test]
fn tests_that_never_end_after_the_changes_roll_the_host_back() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let dir = tempfile::tempdir().unwrap();
    let pb = play(
        dir.path(),
        "hung",
        "resources:\n  - file: {path: /etc/parc-hung-done, content: \"x\\n\"}\n\
         verify:\n  - command: {run: 'sleep 3020'}\n",
        "",
    );
    let (_, ev) = apply(&lab, &pb, "2");
    rolled_back_and_stopped(
        &lab,
        &ev,
        "verifying did not finish within 2 s (--read-timeout)",
        "/etc/parc-hung-done",
        "3020",
    );
    assert_lock_free(&lab);
}

/// A profile's own command that waits for ever: with `timeout:` it is
/// stopped there, its resource fails and says why, and the host is rolled
/// back.
#[test]
fn a_command_past_its_timeout_is_stopped_and_its_host_rolled_back() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let dir = tempfile::tempdir().unwrap();
    let pb = play(
        dir.path(),
        "slow",
        "resources:\n  - file: {path: /etc/parc-slow-done, content: \"x\\n\"}\n  \
         - command: {run: 'sleep 3031', creates: /etc/parc-slow, timeout: 2s}\n",
        "",
    );
    let (_, ev) = apply(&lab, &pb, "600");
    rolled_back_and_stopped(
        &lab,
        &ev,
        "parc: stopped when it ran past its timeout of 2 s (exit 124)",
        "/etc/parc-slow-done",
        "3031",
    );
}

/// The run's one host ended rolled back, saying `says`; the file it made
/// (`made`) is gone, and nothing runs `sleep SECONDS` any more.
fn rolled_back_and_stopped(
    lab: &TestLab,
    ev: &[serde_json::Value],
    says: &str,
    made: &str,
    seconds: &str,
) {
    let f = finished(ev);
    assert_eq!(f[0]["state"], "rolled_back", "{ev:?}");
    let text = serde_json::to_string(&f[0]).unwrap();
    assert!(text.contains(says), "{text}");
    assert!(lab.host_file(0, made).is_none(), "{ev:?}");
    assert_eq!(running(&["sleep", seconds]), 0, "{ev:?}");
}

/// No lock is left on the lab's host.
fn assert_lock_free(lab: &TestLab) {
    let lock = lab.ssh(0, "test -e /var/lib/parc/lock && echo held || echo free");
    assert_eq!(String::from_utf8_lossy(&lock.stdout).trim(), "free");
}

/// `parc verify` holds no lock, whose release would stop what a read left
/// running: the read's own exec says where it works, and parc stops its
/// process group when it gives up, before the run ends.
#[test]
fn a_verify_that_never_ends_leaves_nothing_running() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let dir = tempfile::tempdir().unwrap();
    let pb = play(
        dir.path(),
        "hung",
        "resources: []\nverify:\n  - command: {run: 'sleep 3041'}\n",
        "",
    );
    let mut parc = lab.parc();
    parc.args(["--json", "--read-timeout", "2", "verify"])
        .arg(&pb);
    let out = within(parc, Duration::from_secs(60));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("did not finish within 2 s"), "{text}");
    assert_eq!(running(&["sleep", "3041"]), 0, "{text}");
    let left = lab.ssh(0, "ls -d /tmp/parc.* 2>/dev/null; true");
    assert!(left.stdout.is_empty(), "{left:?}");
}
