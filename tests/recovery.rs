//! Journal, rollback and recovery on a real lab (needs root and openssh-server).

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::state::{host_view, upper_paths};
use common::{TestLab, events, finished};

/// Changes of every kind over existing and new paths, then (optionally) a failure.
const CHANGES: &str = r#"
resources:
  - file: {path: /etc/motd, content: "changed by parc\n", mode: "0600"}
  - file: {path: /etc/issue, content: "new issue\n"}
  - dir: {path: /etc/parc-test/deep, mode: "0750"}
  - file: {path: /etc/parc-test/deep/conf, content: "x=1\n", mode: "0640", group: daemon}
  - symlink: {path: /etc/parc-test/link, target: /etc/motd}
  - line: {path: /etc/environment, line: "PARC_TEST=1"}
  - dir: {path: /srv, mode: "0711"}
  - command:
      run: "echo 'made by a command' > /etc/parc-test/cmd"
      creates: /etc/parc-test/cmd
  - command:
      run: "mkdir -p /opt/parc-undo && touch /opt/parc-undo/x"
      undo: "rm -rf /opt/parc-undo"
"#;

fn views(
    lab: &TestLab,
    extra: &[Vec<PathBuf>],
) -> Vec<std::collections::BTreeMap<PathBuf, Option<common::state::Entry>>> {
    lab.lab
        .hosts
        .iter()
        .enumerate()
        .map(|(i, h)| host_view(&h.upper, &h.root(), extra.get(i).map_or(&[][..], |v| v)))
        .collect()
}

#[test]
fn on_failure_rollback_restores_the_host_exactly() {
    common::require_root_and_sshd();
    let lab = TestLab::start(2);
    let dir = tempfile::tempdir().unwrap();
    let profile = format!("{CHANGES}  - command: {{run: \"echo broken >&2; exit 7\"}}\n");
    let pb = common::play(dir.path(), "profile", &profile, "  on_failure: rollback\n");
    let before = Snapshot::take(&lab);

    let out = lab
        .parc()
        .arg("--json")
        .arg("apply")
        .arg(&pb)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let ev = events(&out);
    for e in finished(&ev) {
        assert_eq!(e["state"], "rolled_back", "{e:#}");
        let r = &e["outcome"]["recovery"];
        assert_eq!(r["action"], "rolled_back");
        assert!(
            r["reason"].as_str().unwrap().contains("broken"),
            "the reason names the failure: {r}"
        );
        assert!(r.get("restore_problems").is_none());
    }
    // Every path the run wrote is back as it was: content, mode, owner, and
    // created paths gone. Compare over the paths written before and after.
    before.assert_restored(&lab, "on_failure: rollback");
    assert!(
        lab.host_file(0, "/opt/parc-undo/x").is_none(),
        "the command's undo ran"
    );
    assert!(
        lab.host_file(0, "/etc/parc-test/cmd").is_none(),
        "the command's `creates` path is journaled"
    );
}

#[test]
fn parc_rollback_restores_every_host_after_the_controller_was_killed() {
    common::require_root_and_sshd();
    let lab = TestLab::start(10);
    let dir = tempfile::tempdir().unwrap();
    // Many changes, then a slow step: the controller dies while hosts are mid-apply.
    let mut profile = String::from(CHANGES);
    for i in 0..30 {
        profile.push_str(&format!(
            "  - file: {{path: /etc/parc-test/f{i}, content: \"{i}\\n\"}}\n"
        ));
    }
    profile.push_str("  - command: {run: \"sleep 3\"}\n  - file: {path: /etc/parc-test/after-sleep, content: \"late\\n\"}\n");
    let pb = common::play(dir.path(), "profile", &profile, "");
    let before = Snapshot::take(&lab);

    let (mut child, run_id, _output) = spawn_apply(&lab, &pb);
    // Wait until every host is inside its apply exec (journal written, files
    // changed, the sleep running), then kill the controller outright.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let started = (0..10)
            .filter(|&i| {
                lab.host_file(i, &format!("/var/lib/parc/journal/{run_id}/state"))
                    .is_some()
                    && lab.host_file(i, "/etc/parc-test/f29").is_some()
            })
            .count();
        if started == 10 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "hosts never reached the apply step"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(
        lab.host_file(3, "/etc/parc-test/f10").is_some(),
        "host 3 was changed before the kill"
    );

    let out = lab
        .parc()
        .arg("--json")
        .arg("rollback")
        .arg(&run_id)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = events(&out);
    let done = finished(&ev);
    assert_eq!(done.len(), 10);
    assert!(
        done.iter().all(|e| e["state"] == "rolled_back"),
        "{done:#?}"
    );
    // The apply the controller left running on each host (its `sleep 3`,
    // then a file) was stopped before the restore, and the rollback said so.
    let took_over: Vec<&str> = ev
        .iter()
        .filter(|e| e["event"] == "lock_taken_over")
        .filter_map(|e| e["what"].as_str())
        .filter(|w| w.starts_with("killed the processes"))
        .collect();
    assert_eq!(took_over.len(), 10, "{ev:#?}");
    // Had the orphaned step finished after the restore, its file would
    // appear now: the restore must win. Check the final state.
    std::thread::sleep(std::time::Duration::from_secs(4));
    before.assert_restored(&lab, "after the controller was killed");
}

#[test]
fn a_second_concurrent_rollout_is_refused_by_the_lock() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let dir = tempfile::tempdir().unwrap();
    let pb = common::play(
        dir.path(),
        "profile",
        "resources:\n  - file: {path: /etc/parc-lock-test, content: \"1\\n\"}\n  - command: {run: \"sleep 2\"}\n",
        "",
    );
    let mut first = lab
        .parc()
        .arg("apply")
        .arg(&pb)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while lab.host_file(0, "/var/lib/parc/lock/pid").is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the first run never took the lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let second = lab.parc().arg("apply").arg(&pb).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&second.stdout),
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(second.status.code(), Some(3), "{text}");
    assert!(text.contains("locked by another rollout"), "{text}");
    assert!(
        first.wait().unwrap().success(),
        "the first run is not disturbed"
    );
    assert!(
        lab.host_file(0, "/var/lib/parc/lock").is_none(),
        "released at the end"
    );
    let history =
        String::from_utf8(lab.host_file(0, "/var/lib/parc/history.log").unwrap()).unwrap();
    assert_eq!(
        history.lines().count(),
        1,
        "one line per run that held the lock: {history}"
    );
    assert!(
        history.contains("action=apply") && history.contains("state=changed"),
        "{history}"
    );
}

#[test]
fn dead_man_switch_restores_a_host_that_cut_off_ssh() {
    common::require_root_and_sshd();
    let lab = TestLab::start(2);
    let dir = tempfile::tempdir().unwrap();
    // Move the host's sshd from port 22 to 2222 and restart it: remote access
    // on the usual port is gone. The lab's sshd reads /run/parc-lab/sshd_config.
    let profile = r#"
resources:
  - line:
      path: /run/parc-lab/sshd_config
      regexp: "^ListenAddress "
      line: "ListenAddress {{ listen }}"
      notify: [restart sshd]
  - file: {path: /etc/parc-deadman, content: "moved\n"}
handlers:
  restart sshd:
    command: {run: "kill -HUP $(cat /run/parc-lab/sshd.pid)"}
"#;
    let pb = common::play(dir.path(), "profile", profile, "  confirm: 20s\n");
    // One host with a harmless address change (same port): it must confirm fine.
    let inv = std::fs::read_to_string(lab.inventory()).unwrap();
    let a0 = lab.lab.hosts[0].address.to_string();
    let a1 = lab.lab.hosts[1].address.to_string();
    let inv = inv
        .replace(
            &format!("address: {a0}"),
            &format!("address: {a0}\n    vars: {{listen: \"{a0}:2222\"}}"),
        )
        .replace(
            &format!("address: {a1}"),
            &format!("address: {a1}\n    vars: {{listen: \"{a1}:22\"}}"),
        );
    let inventory = dir.path().join("inventory.yml");
    std::fs::write(&inventory, inv).unwrap();

    let out = lab
        .parc()
        .arg("-i")
        .arg(&inventory)
        .arg("--json")
        .arg("apply")
        .arg(&pb)
        .output()
        .unwrap();
    let ev = events(&out);
    let done = finished(&ev);
    let state = |host: &str| done.iter().find(|e| e["host"] == host).copied().unwrap();
    let h0 = state(&lab.lab.hosts[0].name);
    assert_eq!(h0["state"], "rolled_back", "never success: {h0:#}");
    let reason = h0["outcome"]["recovery"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("not confirmed") && reason.contains("dead-man"),
        "{reason}"
    );
    assert!(
        h0["outcome"]["recovery"].get("restore_problems").is_none(),
        "{h0:#}"
    );
    // The host restored itself and is reachable on port 22 again.
    assert!(lab.ssh(0, "true").status.success(), "port 22 is back");
    assert!(lab.host_file(0, "/etc/parc-deadman").is_none());
    let config = String::from_utf8(lab.host_file(0, "/run/parc-lab/sshd_config").unwrap()).unwrap();
    assert!(
        config.contains(&format!("ListenAddress {a0}:22")),
        "{config}"
    );
    let restored_by = lab.host_file(
        0,
        &format!(
            "/var/lib/parc/journal/{}/restored_by",
            ev[0]["run_id"].as_str().unwrap()
        ),
    );
    assert_eq!(
        restored_by.as_deref(),
        Some(&b"watchdog\n"[..]),
        "the host, not the controller, restored itself"
    );
    // The other host keeps port 22 (its line is already as declared),
    // confirmed over a new connection and keeps its change.
    let h1 = state(&lab.lab.hosts[1].name);
    assert_eq!(h1["state"], "changed", "{h1:#}");
    assert!(lab.host_file(1, "/etc/parc-deadman").is_some());
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn failed_verification_degrades_hosts_to_their_verified_fallback() {
    common::require_root_and_sshd();
    let lab = TestLab::start(10);
    let dir = tempfile::tempdir().unwrap();
    common::profile(
        dir.path(),
        "lite-fallback",
        r#"
resources:
  - file: {path: /etc/parc-degraded, content: "degraded\n"}
verify:
  - file: {path: /etc/parc-degraded, contains: "degraded"}
"#,
    );
    let pb = common::play(
        dir.path(),
        "profile",
        r#"
fallback: lite-fallback
resources:
  - file: {path: /etc/parc-app.conf, content: "mode={{ app_mode }}\n"}
  - file: {path: /etc/motd, content: "managed\n"}
verify:
  - file: {path: /etc/parc-app.conf, contains: "mode=good"}
"#,
        "  vars: {}\n",
    );
    // Three hosts get a value that fails verification.
    let mut inv = std::fs::read_to_string(lab.inventory()).unwrap();
    for (i, h) in lab.lab.hosts.iter().enumerate() {
        let mode = if [2, 5, 8].contains(&i) {
            "bad"
        } else {
            "good"
        };
        inv = inv.replace(
            &format!("address: {}\n", h.address),
            &format!("address: {}\n    vars: {{app_mode: {mode}}}\n", h.address),
        );
    }
    let inventory = dir.path().join("inventory.yml");
    std::fs::write(&inventory, inv).unwrap();
    let before = views(&lab, &[]);
    let runs = dir.path().join("runs");
    let out = lab
        .parc()
        .arg("-i")
        .arg(&inventory)
        .arg("--runs-dir")
        .arg(&runs)
        .arg("--json")
        .arg("apply")
        .arg(&pb)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let ev = events(&out);
    let run_id = ev[0]["run_id"].as_str().unwrap().to_string();
    for e in finished(&ev) {
        let i: usize = e["host"].as_str().unwrap()[3..].parse::<usize>().unwrap() - 1;
        if [2, 5, 8].contains(&i) {
            assert_eq!(e["state"], "degraded", "{e:#}");
            let r = &e["outcome"]["recovery"];
            assert!(r["reason"].as_str().unwrap().contains("mode=good"), "{r}");
            // Pre-run state plus exactly the fallback's change.
            assert!(lab.host_file(i, "/etc/parc-app.conf").is_none());
            assert_eq!(
                lab.host_file(i, "/etc/parc-degraded").unwrap(),
                b"degraded\n"
            );
            let after = host_view(&lab.lab.hosts[i].upper, &lab.lab.hosts[i].root(), &[]);
            for (path, entry) in &before[i] {
                assert_eq!(
                    after.get(path),
                    Some(entry),
                    "host {i}: {} changed",
                    path.display()
                );
            }
            let motd = lab.host_file(i, "/etc/motd").unwrap();
            assert_ne!(
                motd, b"managed\n",
                "the failed profile's motd was rolled back"
            );
        } else {
            assert_eq!(e["state"], "changed", "{e:#}");
            // The tests ran at the end of the apply exec, on what it wrote.
            assert_eq!(e["execs"], 3, "lock and facts, probe, apply: {e:#}");
            let tests = e["outcome"]["verification"].as_array().unwrap();
            assert_eq!(tests.len(), 1, "{e:#}");
            assert_eq!(tests[0]["passed"], true, "{e:#}");
            assert_eq!(
                lab.host_file(i, "/etc/parc-app.conf").unwrap(),
                b"mode=good\n"
            );
            assert!(lab.host_file(i, "/etc/parc-degraded").is_none());
        }
    }
    // The intervention record says so per host.
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(runs.join(&run_id).join("report.json")).unwrap())
            .unwrap();
    let degraded: Vec<&str> = report["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["state"] == "degraded")
        .map(|h| h["host"].as_str().unwrap())
        .collect();
    assert_eq!(degraded.len(), 3, "{report:#}");
    assert_eq!(report["summary"]["changed"], 7);
}

/// A lab of `hosts` hosts and a playbook applying `profile` to all of them.
fn lab_and_playbook(
    hosts: usize,
    profile: &str,
    play_extra: &str,
) -> (TestLab, tempfile::TempDir, PathBuf) {
    common::require_root_and_sshd();
    let lab = TestLab::start(hosts);
    let dir = tempfile::tempdir().unwrap();
    let pb = common::play(dir.path(), "profile", profile, play_extra);
    (lab, dir, pb)
}

/// `parc --json apply PLAYBOOK` started in the background, its run id, and
/// its output (kept open: parc must not see a broken pipe before it is killed).
fn spawn_apply(
    lab: &TestLab,
    pb: &Path,
) -> (
    std::process::Child,
    String,
    std::io::BufReader<std::process::ChildStdout>,
) {
    let mut child = lab
        .parc()
        .arg("--json")
        .arg("apply")
        .arg(pb)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    let run_id = serde_json::from_str::<serde_json::Value>(&first).unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    (child, run_id, stdout)
}

/// `parc --json ARGS` on the lab; its output.
fn parc_json<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(
    lab: &TestLab,
    args: I,
) -> std::process::Output {
    lab.parc().arg("--json").args(args).output().unwrap()
}

/// `cmd` on host `host` over the real OpenSSH client; its stdout, trimmed.
fn on_host(lab: &TestLab, host: usize, cmd: &str) -> String {
    let out = lab.ssh(host, cmd);
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn rollback_of_managed_symlinks_leaves_what_they_point_to_alone() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let dir = tempfile::tempdir().unwrap();
    // Links to a directory and to a file (like /etc/localtime), replaced by
    // parc, then a failure: the restore puts the links back and must not
    // chmod through them (a link's own mode is 0777).
    on_host(
        &lab,
        0,
        "mkdir -p /srv/parc-d1 && chmod 0755 /srv/parc-d1 && echo utc > /srv/parc-d1-zone \
         && chmod 0644 /srv/parc-d1-zone && ln -s /srv/parc-d1 /etc/parc-d1-dir \
         && ln -s /srv/parc-d1-zone /etc/parc-d1-zone",
    );
    let pb = common::play(
        dir.path(),
        "profile",
        r#"
resources:
  - symlink: {path: /etc/parc-d1-dir, target: /etc/motd}
  - symlink: {path: /etc/parc-d1-zone, target: /etc/motd}
  - command: {run: "echo broken >&2; exit 7"}
"#,
        "  on_failure: rollback\n",
    );
    let out = parc_json(&lab, [Path::new("apply"), &pb]);
    let ev = events(&out);
    let done = finished(&ev);
    assert_eq!(done[0]["state"], "rolled_back", "{:#}", done[0]);
    assert_eq!(
        on_host(
            &lab,
            0,
            "stat -c '%a %U' /srv/parc-d1 /srv/parc-d1-zone; readlink /etc/parc-d1-dir /etc/parc-d1-zone"
        ),
        "755 root\n644 root\n/srv/parc-d1\n/srv/parc-d1-zone"
    );
    // `parc rollback` of the same run later takes the same path.
    let run_id = ev[0]["run_id"].as_str().unwrap();
    let out = parc_json(&lab, ["rollback", run_id]);
    assert_eq!(finished(&events(&out))[0]["state"], "rolled_back");
    assert_eq!(
        on_host(&lab, 0, "stat -c '%a' /srv/parc-d1 /srv/parc-d1-zone"),
        "755\n644"
    );
}

/// A journal restores nothing as root through a directory a user turned
/// into a symbolic link after the apply: the entry of a directory made in a
/// user's home would otherwise `rm -rf` whatever the link points to (here a
/// root directory standing for /etc). The directory was made as that user,
/// and is removed as that user, who may not remove root's; the entry is
/// reported.
#[test]
fn a_restore_acts_through_no_link_a_user_made_since() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let dir = tempfile::tempdir().unwrap();
    on_host(
        &lab,
        0,
        "useradd -m parcjr && mkdir /home/parcjr/.config && chown parcjr: /home/parcjr/.config \
         && mkdir -p /srv/parc-victim/systemd && echo keep > /srv/parc-victim/systemd/keep",
    );
    let pb = common::play(
        dir.path(),
        "profile",
        "resources:\n  - dir: {path: /home/parcjr/.config/systemd, owner: parcjr}\n",
        "",
    );
    let out = parc_json(&lab, [Path::new("apply"), &pb]);
    let ev = events(&out);
    assert_eq!(
        finished(&ev)[0]["state"],
        "changed",
        "{:#}",
        finished(&ev)[0]
    );
    // What the user may do to their own home before a rollback.
    on_host(
        &lab,
        0,
        "runuser -u parcjr -- sh -c 'mv ~/.config ~/.config.old && ln -s /srv/parc-victim ~/.config'",
    );
    let run_id = ev[0]["run_id"].as_str().unwrap();
    let out = parc_json(&lab, ["rollback", run_id]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        on_host(&lab, 0, "cat /srv/parc-victim/systemd/keep"),
        "keep",
        "the restore deleted through the link: {text}"
    );
    assert!(text.contains("is now a symbolic link"), "{text}");
    assert_ne!(finished(&events(&out))[0]["state"], "rolled_back", "{text}");
}

#[test]
fn a_crash_while_saving_the_journal_never_deletes_what_it_was_saving() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let dir = tempfile::tempdir().unwrap();
    // A directory with files, whose attributes the run changes (like
    // /etc/ssh), and a `stat` first in PATH that kills the whole apply exec
    // at the moment the journal saves that directory (once).
    on_host(
        &lab,
        0,
        r#"mkdir -p /etc/parc-d5 && echo a > /etc/parc-d5/a && echo b > /etc/parc-d5/b && chmod 0755 /etc/parc-d5
cat > /usr/local/bin/stat <<'W'
#!/bin/sh
for last; do :; done
if [ "$last" = /etc/parc-d5 ] && ls -d /var/lib/parc/journal/*/entries >/dev/null 2>&1 && mkdir /root/parc-d5-fired 2>/dev/null; then kill -9 0; fi
exec /usr/bin/stat "$@"
W
chmod 0755 /usr/local/bin/stat"#,
    );
    let pb = common::play(
        dir.path(),
        "profile",
        r#"
resources:
  - file: {path: /etc/parc-d5-before, content: "x\n"}
  - dir: {path: /etc/parc-d5, mode: "0700"}
  - file: {path: /etc/parc-d5-after, content: "y\n"}
"#,
        "  on_failure: rollback\n",
    );
    let out = parc_json(&lab, [Path::new("apply"), &pb]);
    let ev = events(&out);
    let run_id = ev[0]["run_id"].as_str().unwrap().to_string();
    let host = finished(&ev)[0].clone();
    assert_eq!(host["state"], "failed", "{host:#}");
    let recovery = host["outcome"]["recovery"].to_string();
    assert!(
        recovery.contains("nothing had been changed") && recovery.contains("never completed"),
        "{recovery}"
    );
    // The directory as it was, and neither file created: the kill came
    // before the first change.
    let listing = "stat -c '%a' /etc/parc-d5; ls /etc/parc-d5; ls -d /etc/parc-d5-before /etc/parc-d5-after 2>/dev/null | wc -l";
    let expected = "755\na\nb\n0";
    assert_eq!(on_host(&lab, 0, listing), expected);
    // `parc rollback` of that run later says so and deletes nothing either.
    let out = parc_json(&lab, ["rollback", &run_id]);
    let host = finished(&events(&out))[0].clone();
    assert_eq!(host["state"], "skipped", "{host:#}");
    assert!(
        host["outcome"]["reason"]
            .as_str()
            .unwrap()
            .contains("never completed"),
        "{host:#}"
    );
    assert_eq!(on_host(&lab, 0, listing), expected);

    // A complete journal with an entry that lost its completion marker (a
    // disk that lied): that entry is refused, by name, and nothing deleted.
    on_host(&lab, 0, "rm /usr/local/bin/stat");
    let out = parc_json(&lab, [Path::new("apply"), &pb]);
    let ev = events(&out);
    assert_eq!(finished(&ev)[0]["state"], "changed");
    let run_id = ev[0]["run_id"].as_str().unwrap().to_string();
    on_host(
        &lab,
        0,
        &format!("cd /var/lib/parc/journal/{run_id}/entries && cat 1.path && rm 1.done 1.type"),
    );
    let out = parc_json(&lab, ["rollback", &run_id]);
    let host = finished(&events(&out))[0].clone();
    assert_eq!(host["state"], "failed", "{host:#}");
    let problems = host["outcome"]["problems"].to_string();
    assert!(
        problems.contains("/etc/parc-d5") && problems.contains("not restored"),
        "{problems}"
    );
    assert_eq!(
        on_host(&lab, 0, "stat -c '%a' /etc/parc-d5; ls /etc/parc-d5"),
        "700\na\nb"
    );
}

/// The journal's copy of a directory (`cp -a`, for a `dir` the run removes)
/// cut short by a crash: what was being copied is left whole, and neither the
/// failed apply nor a later `parc rollback` acts on the partial copy. (The
/// test above crashes while saving attributes only, which copies nothing.)
#[test]
fn a_crash_while_copying_a_directory_into_the_journal_deletes_nothing() {
    let (lab, _dir, pb) = lab_and_playbook(
        1,
        r#"
resources:
  - file: {path: /etc/parc-d7-before, content: "x\n"}
  - dir: {path: /etc/parc-d7, state: absent}
"#,
        "  on_failure: rollback\n",
    );
    // A `cp` first in PATH that copies one file of the directory, then
    // kills the whole apply exec (once).
    on_host(
        &lab,
        0,
        r#"mkdir -p /etc/parc-d7 && echo a > /etc/parc-d7/a && echo b > /etc/parc-d7/b
cat > /usr/local/bin/cp <<'W'
#!/bin/sh
if [ "$1" = -a ] && [ "$2" = /etc/parc-d7 ] && mkdir /root/parc-d7-fired 2>/dev/null; then
  mkdir "$3" && /usr/bin/cp -a /etc/parc-d7/a "$3/" && kill -9 0
fi
exec /usr/bin/cp "$@"
W
chmod 0755 /usr/local/bin/cp"#,
    );
    let out = parc_json(&lab, [Path::new("apply"), &pb]);
    let ev = events(&out);
    let run_id = ev[0]["run_id"].as_str().unwrap().to_string();
    let host = finished(&ev)[0].clone();
    assert_eq!(host["state"], "failed", "{host:#}");
    assert_eq!(
        on_host(&lab, 0, "ls -d /root/parc-d7-fired"),
        "/root/parc-d7-fired",
        "the copy was cut short"
    );
    let recovery = host["outcome"]["recovery"].to_string();
    assert!(recovery.contains("never completed"), "{recovery}");
    let listing = "ls /etc/parc-d7; ls -d /etc/parc-d7-before 2>/dev/null | wc -l";
    assert_eq!(on_host(&lab, 0, listing), "a\nb\n0");
    let out = parc_json(&lab, ["rollback", &run_id]);
    let host = finished(&events(&out))[0].clone();
    assert_eq!(host["state"], "skipped", "{host:#}");
    assert_eq!(on_host(&lab, 0, listing), "a\nb\n0");
}

/// Who decided the fate of run `run_id` on host `host` (the journal's `fate`
/// link), read from the host's disk.
fn fate(lab: &TestLab, host: usize, run_id: &str) -> Option<String> {
    let link = lab.lab.hosts[host]
        .root()
        .join(format!("var/lib/parc/journal/{run_id}/fate"));
    std::fs::read_link(link)
        .ok()
        .map(|t| t.to_string_lossy().into_owned())
}

/// The lab inventory with `vars` (a YAML flow mapping) for each host.
fn inventory_with(lab: &TestLab, dir: &Path, vars: impl Fn(usize) -> String) -> PathBuf {
    let mut inv = std::fs::read_to_string(lab.inventory()).unwrap();
    for (i, h) in lab.lab.hosts.iter().enumerate() {
        inv = inv.replace(
            &format!("address: {}\n", h.address),
            &format!("address: {}\n    vars: {}\n", h.address, vars(i)),
        );
    }
    let path = dir.join("inventory.yml");
    std::fs::write(&path, inv).unwrap();
    path
}

#[test]
fn a_confirmation_racing_the_dead_man_window_reports_what_the_host_ended_as() {
    // A 2 s window and a handler that takes most of it: the confirmation
    // lands around the moment the watchdog wakes, a little earlier or later
    // on each host.
    let (lab, dir, pb) = lab_and_playbook(
        10,
        r#"
resources:
  - file: {path: /etc/parc-race, content: "{{ round }}\n", notify: [settle]}
handlers:
  settle:
    command: {run: "sleep {{ nap }}"}
"#,
        "  confirm: 2s\n",
    );
    let inventory = inventory_with(&lab, dir.path(), |i| {
        format!("{{nap: \"1.{}\"}}", 55 + 5 * i)
    });
    let mut tries = 0;
    for round in 0..3 {
        let round_var = format!("round={round}");
        let args: [&std::ffi::OsStr; 6] = [
            "-i".as_ref(),
            inventory.as_ref(),
            "apply".as_ref(),
            pb.as_ref(),
            "-e".as_ref(),
            round_var.as_ref(),
        ];
        let out = parc_json(&lab, args);
        let ev = events(&out);
        let run_id = ev[0]["run_id"].as_str().unwrap();
        for e in finished(&ev) {
            let i: usize = e["host"].as_str().unwrap()[3..].parse::<usize>().unwrap() - 1;
            let content = lab.host_file(i, "/etc/parc-race");
            let ours = content.as_deref() == Some(format!("{round}\n").as_bytes());
            let fate = fate(&lab, i, run_id);
            match e["state"].as_str().unwrap() {
                "changed" => {
                    assert_eq!(fate.as_deref(), Some("confirmed"), "host {i}: {e:#}");
                    assert!(
                        ours,
                        "host {i} reported changed, but it was restored: {e:#}"
                    );
                }
                "rolled_back" => {
                    assert_eq!(fate.as_deref(), Some("watchdog"), "host {i}: {e:#}");
                    assert!(!ours, "host {i} reported rolled back, but kept the change");
                }
                other => panic!("host {i} ended {other}: {e:#}"),
            }
            tries += 1;
        }
    }
    assert_eq!(tries, 30);
}

#[test]
fn on_failure_keep_disarms_the_dead_man_switch() {
    let (lab, _dir, pb) = lab_and_playbook(
        2,
        r#"
resources:
  - file: {path: /etc/parc-kept, content: "kept\n"}
  - command: {run: "echo broken >&2; exit 7"}
"#,
        "  on_failure: keep\n  confirm: 2s\n",
    );
    let out = parc_json(&lab, [Path::new("apply"), &pb]);
    let ev = events(&out);
    let run_id = ev[0]["run_id"].as_str().unwrap().to_string();
    for e in finished(&ev) {
        assert_eq!(e["state"], "failed", "{e:#}");
        assert_eq!(e["outcome"]["recovery"]["action"], "kept", "{e:#}");
    }
    // Well past the window: the hosts are still as reported, and the
    // journal records who decided.
    std::thread::sleep(std::time::Duration::from_secs(5));
    for i in 0..2 {
        assert_eq!(
            lab.host_file(i, "/etc/parc-kept").as_deref(),
            Some(&b"kept\n"[..]),
            "host {i} was restored after being reported kept"
        );
        assert_eq!(fate(&lab, i, &run_id).as_deref(), Some("keep"));
    }
}

#[test]
fn a_lock_without_owner_is_not_broken_silently_and_lock_errors_are_real() {
    let (lab, _dir, pb) = lab_and_playbook(
        1,
        "resources:\n  - file: {path: /etc/parc-d6, content: \"1\\n\"}\n",
        "",
    );
    // A lock directory with no record of who made it.
    on_host(&lab, 0, "mkdir -p /var/lib/parc/lock");
    let out = parc_json(&lab, [Path::new("apply"), &pb]);
    let host = finished(&events(&out))[0].clone();
    let error = host["outcome"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("stale lock"), "{host:#}");
    assert!(lab.host_file(0, "/etc/parc-d6").is_none());
    assert!(
        lab.lab.hosts[0].root().join("var/lib/parc/lock").is_dir(),
        "left for the operator"
    );
    // A read-only /var/lib/parc: its real error, not "locked by another rollout ()".
    on_host(
        &lab,
        0,
        "rmdir /var/lib/parc/lock && mount --bind /var/lib/parc /var/lib/parc && mount -o remount,bind,ro /var/lib/parc",
    );
    let out = parc_json(&lab, [Path::new("apply"), &pb]);
    on_host(&lab, 0, "umount /var/lib/parc");
    let host = finished(&events(&out))[0].clone();
    let error = host["outcome"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("Read-only file system") && !error.contains("locked by another"),
        "{host:#}"
    );
    assert!(lab.host_file(0, "/etc/parc-d6").is_none());
    // --break-lock does break an ownerless lock.
    on_host(&lab, 0, "mkdir -p /var/lib/parc/lock");
    let out = parc_json(&lab, [Path::new("apply"), &pb, Path::new("--break-lock")]);
    assert_eq!(finished(&events(&out))[0]["state"], "changed");
}

#[test]
fn a_full_disk_is_reported_with_the_targets_own_error() {
    let big = "x".repeat(64 * 1024);
    let (lab, _dir, pb) = lab_and_playbook(
        1,
        &format!("resources:\n  - file: {{path: /srv/parc-full/big, content: \"{big}\"}}\n"),
        "  on_failure: rollback\n",
    );
    // The host's report of an apply with `setup` done on the host, undone
    // by `cleanup` after. Nothing changes, so no rollback ever fails.
    let attempt = |setup: &str, cleanup: &str| {
        on_host(&lab, 0, setup);
        let out = parc_json(&lab, [Path::new("apply"), &pb]);
        let host = finished(&events(&out))[0].to_string();
        on_host(&lab, 0, cleanup);
        assert!(!host.contains("rollback failed"), "{host}");
        assert!(!host.contains("journal stays on the host"), "{host}");
        host
    };
    let host = attempt(
        "mkdir -p /srv/parc-full && mount -t tmpfs -o size=32k tmpfs /srv/parc-full \
         && (dd if=/dev/zero of=/srv/parc-full/fill bs=4k 2>/dev/null; true)",
        "umount /srv/parc-full",
    );
    assert!(host.contains("No space left on device"), "{host}");
    assert!(host.contains("/srv/parc-full"), "names the path: {host}");
    assert!(!host.contains("File exists"), "{host}");
    // A read-only directory: the same, with its own error.
    let host = attempt(
        "mount --bind /srv/parc-full /srv/parc-full && mount -o remount,bind,ro /srv/parc-full",
        "umount /srv/parc-full",
    );
    assert!(host.contains("Read-only file system"), "{host}");
    // A full /var/lib/parc (where parc's scripts run from: private
    // directories the host lock makes inside itself).
    let host = attempt(
        "mkdir -p /var/lib/parc && mount -t tmpfs -o size=16k,mode=700 tmpfs /var/lib/parc \
         && (dd if=/dev/zero of=/var/lib/parc/fill bs=4k 2>/dev/null; true)",
        "umount /var/lib/parc",
    );
    assert!(host.contains("No space left on device"), "{host}");
}

#[test]
fn the_failure_budget_stops_within_a_batch() {
    // One batch of six, one host at a time, four of them broken (a directory
    // stands where the file goes): once two failed, no further host starts.
    let (lab, _dir, pb) = lab_and_playbook(
        6,
        "resources:\n  - file: {path: /etc/parc-budget, content: \"ok\\n\"}\n",
        "  batches: [100%]\n  parallel: 1\n  max_failures: 1\n",
    );
    for i in 0..4 {
        on_host(&lab, i, "mkdir /etc/parc-budget");
    }
    let out = parc_json(&lab, [Path::new("apply"), &pb]);
    let ev = events(&out);
    let done = finished(&ev);
    let count = |state: &str| done.iter().filter(|e| e["state"] == state).count();
    assert_eq!(done.len(), 6, "every host is reported once: {done:#?}");
    assert_eq!(count("failed"), 2, "{done:#?}");
    // Whatever order the hosts run in, at most the two good ones ran before
    // the second failure: the rest were skipped.
    assert_eq!(
        count("failed") + count("changed") + count("skipped"),
        6,
        "{done:#?}"
    );
    assert!(count("skipped") >= 2, "{done:#?}");
    // No host starts once the budget is spent.
    let second_failure = ev
        .iter()
        .enumerate()
        .filter(|(_, e)| e["event"] == "host_finished" && e["state"] == "failed")
        .nth(1)
        .map(|(i, _)| i)
        .unwrap();
    assert!(
        ev[second_failure..]
            .iter()
            .all(|e| !(e["event"] == "host_phase" && e["phase"] == "connecting")),
        "a host started after the budget was spent: {ev:#?}"
    );
    for e in &done {
        let i: usize = e["host"].as_str().unwrap()[3..].parse::<usize>().unwrap() - 1;
        if e["state"] == "skipped" {
            let reason = e["outcome"]["reason"].as_str().unwrap();
            assert!(reason.contains("max_failures"), "{reason}");
            assert!(
                lab.host_file(i, "/etc/parc-budget").is_none()
                    || lab.lab.hosts[i].root().join("etc/parc-budget").is_dir(),
                "host {i} was left untouched"
            );
        }
    }
}

#[test]
fn a_handler_with_undo_runs_its_undo_after_a_rollback() {
    let (lab, _dir, pb) = lab_and_playbook(
        1,
        r#"
resources:
  - file: {path: /etc/parc-h, content: "new\n", notify: [refresh]}
handlers:
  refresh:
    command: {run: "echo ran >> /root/parc-h-log", undo: "echo undone >> /root/parc-h-log"}
verify:
  - file: {path: /etc/parc-h, contains: "never"}
"#,
        "  on_failure: rollback\n",
    );
    let out = parc_json(&lab, [Path::new("apply"), &pb]);
    assert_eq!(finished(&events(&out))[0]["state"], "rolled_back");
    assert!(lab.host_file(0, "/etc/parc-h").is_none());
    assert_eq!(
        lab.host_file(0, "/root/parc-h-log").as_deref(),
        Some(&b"ran\nundone\n"[..]),
        "the handler ran once, then its undo after the restore"
    );
}

/// An undo command that fails leaves the host as the journal did not say:
/// a restore problem, not a clean rollback. What an undo prints may hold a
/// secret it was rendered with, or a local user's text: it stays on the
/// host, in the journal only root reads, never among the restore's records.
#[test]
fn a_failed_undo_is_reported_and_what_it_printed_stays_on_the_host() {
    let (lab, _dir, pb) = lab_and_playbook(
        1,
        r#"
resources:
  - file: {path: /etc/parc-u, content: "new\n"}
  - command:
      run: "true"
      undo: "printf '@@r restore\\nincomplete=forged\\n'"
  - command:
      run: "true"
      undo: "echo undo-said-this >&2; exit 4"
  - command: {run: "exit 7"}
"#,
        "  on_failure: rollback\n",
    );
    let out = parc_json(&lab, [Path::new("apply"), &pb]);
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ev = events(&out);
    let host = &finished(&ev)[0];
    assert_eq!(host["state"], "failed", "{host:#}");
    let r = &host["outcome"]["recovery"];
    assert_eq!(r["action"], "failed", "{r:#}");
    let problems = r["restore_problems"].to_string();
    assert!(
        problems.contains("undo") && problems.contains("exit 4"),
        "{problems}"
    );
    assert_eq!(
        r["restore_problems"].as_array().map(Vec::len),
        Some(1),
        "{problems}"
    );
    assert!(
        lab.host_file(0, "/etc/parc-u").is_none(),
        "the file was restored"
    );
    assert!(
        !printed.contains("forged"),
        "an undo's stdout is not a record"
    );
    assert!(!printed.contains("undo-said-this"), "{printed}");
    let kept = on_host(&lab, 0, "cat /var/lib/parc/journal/*/entries/*.undo.out");
    assert!(
        kept.contains("undo-said-this") && kept.contains("forged"),
        "{kept}"
    );
}

/// A rollback undoes what the apply did, not what it never reached: the
/// undo of a command after the step that failed never runs (an undo that
/// puts a backup back would otherwise overwrite what the host holds now).
#[test]
fn the_undo_of_a_step_never_reached_does_not_run() {
    let (lab, _dir, pb) = lab_and_playbook(
        1,
        r#"
resources:
  - file: {path: /etc/parc-r, content: "new\n"}
  - command: {run: "echo ran >> /root/parc-undo-log", undo: "echo undone >> /root/parc-undo-log"}
  - command: {run: "exit 7"}
  - command: {run: "echo never >> /root/parc-undo-log", undo: "echo undone-never >> /root/parc-undo-log"}
"#,
        "  on_failure: rollback\n",
    );
    let out = parc_json(&lab, [Path::new("apply"), &pb]);
    let ev = events(&out);
    let host = &finished(&ev)[0];
    assert_eq!(host["state"], "rolled_back", "{host:#}");
    assert!(
        lab.host_file(0, "/etc/parc-r").is_none(),
        "the file was restored"
    );
    assert_eq!(
        lab.host_file(0, "/root/parc-undo-log").as_deref(),
        Some(&b"ran\nundone\n"[..]),
        "only the command that ran was undone"
    );
}

/// Every handler that ran is re-run (or undone) after a restore, and one
/// that fails there is a problem of the restore, whichever it is: not only
/// the last one's status counts.
#[test]
fn a_handler_failing_after_a_restore_is_reported_whichever_it_is() {
    let (lab, _dir, pb) = lab_and_playbook(
        1,
        r#"
resources:
  - file: {path: /etc/parc-h2, content: "new\n", notify: [first, second]}
handlers:
  first:
    command: {run: "true", undo: "exit 5"}
  second:
    command: {run: "true", undo: "echo undone >> /root/parc-h2-log"}
verify:
  - file: {path: /etc/parc-h2, contains: "never"}
"#,
        "  on_failure: rollback\n",
    );
    let out = parc_json(&lab, [Path::new("apply"), &pb]);
    let ev = events(&out);
    let host = &finished(&ev)[0];
    assert_eq!(host["state"], "failed", "{host:#}");
    let problems = host["outcome"]["recovery"]["restore_problems"].to_string();
    assert!(problems.contains("exit 5"), "{problems}");
    assert!(
        lab.host_file(0, "/etc/parc-h2").is_none(),
        "the file was restored"
    );
    assert_eq!(
        lab.host_file(0, "/root/parc-h2-log").as_deref(),
        Some(&b"undone\n"[..]),
        "the handler after the failing one ran too"
    );
}

/// Every path of each host's upper dir, before a run, as the host sees it.
struct Snapshot {
    paths: Vec<Vec<PathBuf>>,
    views: Vec<std::collections::BTreeMap<PathBuf, Option<common::state::Entry>>>,
}

impl Snapshot {
    fn take(lab: &TestLab) -> Snapshot {
        Snapshot {
            paths: lab
                .lab
                .hosts
                .iter()
                .map(|h| upper_paths(&h.upper))
                .collect(),
            views: views(lab, &[]),
        }
    }

    /// Every host looks as it did (content, mode, owner, link target; paths
    /// written since are gone), over the paths written before and since.
    fn assert_restored(&self, lab: &TestLab, when: &str) {
        let all: Vec<Vec<PathBuf>> = lab
            .lab
            .hosts
            .iter()
            .zip(&self.paths)
            .map(|(h, b)| b.iter().cloned().chain(upper_paths(&h.upper)).collect())
            .collect();
        let after = views(lab, &all);
        for (i, (b, a)) in self.views.iter().zip(&after).enumerate() {
            for (path, entry) in a {
                let expected = b.get(path).cloned().unwrap_or_else(|| {
                    host_view(
                        Path::new("/nonexistent"),
                        Path::new("/"),
                        std::slice::from_ref(path),
                    )
                    .remove(path)
                    .unwrap()
                });
                assert_eq!(
                    entry,
                    &expected,
                    "{when}: host {i}: {} differs after rollback",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn rollback_after_a_sigkill_at_ten_points_of_an_apply_restores_every_host() {
    let mut profile = String::from(CHANGES);
    profile.push_str("  - command: {run: \"sleep 0.5\"}\n");
    for i in 0..20 {
        profile.push_str(&format!(
            "  - file: {{path: /etc/parc-test/f{i}, content: \"{i}\\n\", mode: \"0600\"}}\n"
        ));
    }
    profile.push_str(
        "  - symlink: {path: /etc/parc-test/zone, target: /srv}\n  - command: {run: \"sleep 0.5\"}\n  - line: {path: /etc/environment, line: \"PARC_LATE=1\"}\n",
    );
    let (lab, _dir, pb) = lab_and_playbook(10, &profile, "");
    let before = Snapshot::take(&lab);
    for (point, delay_ms) in [0u64, 150, 300, 500, 700, 900, 1200, 1500, 1900, 2500]
        .into_iter()
        .enumerate()
    {
        let (mut child, run_id, _output) = spawn_apply(&lab, &pb);
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let out = parc_json(&lab, ["rollback", &run_id]);
        let ev = events(&out);
        let done = finished(&ev);
        // Every host answers: a rollback reporting no host must not pass.
        assert_eq!(
            done.len(),
            10,
            "kill point {point} ({delay_ms} ms): {ev:#?}"
        );
        for e in done {
            let at = format!("kill point {point} ({delay_ms} ms): {e:#}");
            match e["state"].as_str() {
                Some("rolled_back") => {}
                // Skipped only because the killed run never changed the
                // host (its journal absent or never completed), not for
                // any other reason (a lock still held by the killed run).
                Some("skipped") => {
                    let reason = e["outcome"]["reason"].as_str().unwrap_or_default();
                    assert!(reason.starts_with("nothing to restore: "), "{at}");
                }
                _ => panic!("{at}"),
            }
        }
        before.assert_restored(&lab, &format!("kill point {point} ({delay_ms} ms)"));
    }
}

#[test]
fn a_dead_man_window_ending_during_the_apply_stops_it_before_restoring() {
    let (lab, _dir, pb) = lab_and_playbook(
        1,
        r#"
resources:
  - file: {path: /etc/parc-slow-a, content: "a\n"}
  - command: {run: "sleep 4"}
  - file: {path: /etc/parc-slow-b, content: "b\n"}
"#,
        "  confirm: 1s\n",
    );
    let out = parc_json(&lab, [Path::new("apply"), &pb]);
    let ev = events(&out);
    let host = finished(&ev)[0].clone();
    assert_eq!(host["state"], "rolled_back", "{host:#}");
    let run_id = ev[0]["run_id"].as_str().unwrap();
    assert_eq!(fate(&lab, 0, run_id).as_deref(), Some("watchdog"));
    // Had the apply gone on under the restore, its last file would be here.
    std::thread::sleep(std::time::Duration::from_secs(4));
    assert!(lab.host_file(0, "/etc/parc-slow-a").is_none());
    assert!(lab.host_file(0, "/etc/parc-slow-b").is_none());
}

/// On a host with nothing but busybox (its tar, dd, stat, cp, sha256sum), an
/// apply installs files (staged by busybox tar, sliced without GNU dd's
/// byte flags), saves its journal, and restores it: after a failure
/// (`on_failure: rollback`) and after a run that worked (`parc rollback`).
#[test]
fn install_and_rollback_on_a_busybox_only_host() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    lab.busybox_only(0);
    let dir = tempfile::tempdir().unwrap();
    let failing = common::play(
        dir.path(),
        "profile",
        &format!("{CHANGES}  - command: {{run: \"echo broken >&2; exit 7\"}}\n"),
        "  on_failure: rollback\n",
    );
    let before = Snapshot::take(&lab);
    let out = parc_json(&lab, [Path::new("apply"), &failing]);
    let host = finished(&events(&out))[0].clone();
    assert_eq!(host["state"], "rolled_back", "{host:#}");
    assert!(
        host["outcome"]["recovery"]
            .get("restore_problems")
            .is_none()
    );
    before.assert_restored(&lab, "busybox: after on_failure: rollback");

    let dir = tempfile::tempdir().unwrap();
    let working = common::play(dir.path(), "profile", CHANGES, "");
    let out = parc_json(&lab, [Path::new("apply"), &working]);
    let ev = events(&out);
    let host = finished(&ev)[0].clone();
    assert_eq!(host["state"], "changed", "{host:#}");
    assert_eq!(
        on_host(
            &lab,
            0,
            "cat /etc/motd /etc/parc-test/deep/conf; stat -c '%a %G' /etc/motd /etc/parc-test/deep/conf /etc/parc-test/deep; readlink /etc/parc-test/link; grep -c PARC_TEST=1 /etc/environment"
        ),
        "changed by parc\nx=1\n600 root\n640 daemon\n750 root\n/etc/motd\n1"
    );
    let run_id = ev[0]["run_id"].as_str().unwrap();
    let out = parc_json(&lab, ["rollback", run_id]);
    let host = finished(&events(&out))[0].clone();
    assert_eq!(host["state"], "rolled_back", "{host:#}");
    before.assert_restored(&lab, "busybox: after parc rollback");
}

/// A handler that cannot run on the host (a `reboot` without systemd: a plain
/// lab host) is not skipped in silence: the change that needed it is rolled
/// back, and the report says why.
#[test]
fn a_notified_handler_that_cannot_run_here_fails_the_host() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let dir = tempfile::tempdir().unwrap();
    let pb = common::play(
        dir.path(),
        "profile",
        r#"
resources:
  - file: {path: /etc/parc-kernel, content: "new\n", notify: [reboot]}
handlers:
  reboot:
    reboot: {}
"#,
        "",
    );
    let (out, ev) = lab.apply_json(&pb);
    let done = finished(&ev);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(done[0]["state"], "rolled_back", "{text}");
    let error = done[0]["outcome"]["error"].as_str().unwrap();
    assert!(
        error.starts_with(
            "handler `reboot` cannot run on this host: reboot: this host has no running systemd"
        ),
        "{text}"
    );
    assert_eq!(lab.host_file(0, "/etc/parc-kernel"), None);
}

/// The pids of `root`'s descendants whose command name starts with `sshd`
/// (the per-connection monitor and session processes, `sshd-session` too),
/// read from /proc: the lab's hosts share the controller's pid namespace.
fn sshd_sessions_under(root: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let comm = head.split_once(" (").map_or("", |(_, c)| c).to_string();
        let ppid = rest.split(' ').nth(1).and_then(|p| p.parse::<u32>().ok());
        if let Some(ppid) = ppid {
            parent_of.push((pid, ppid, comm));
        }
    }
    let mut tree = vec![root];
    let mut next = 0;
    while let Some(&parent) = tree.get(next) {
        next += 1;
        tree.extend(
            parent_of
                .iter()
                .filter(|(_, ppid, _)| *ppid == parent)
                .map(|(pid, _, _)| *pid),
        );
    }
    parent_of
        .iter()
        .filter(|(pid, _, comm)| *pid != root && tree.contains(pid) && comm.starts_with("sshd"))
        .map(|(pid, _, _)| *pid)
        .collect()
}

/// A connection that breaks while the host applies (its sshd session
/// killed, as a network cut or an sshd restart would) leaves parc not
/// knowing what the host did, and unable to roll it back over that
/// connection: the host is reported `unreachable`, not `failed`, in the
/// events and the report, and the run exits 4.
#[test]
fn a_connection_lost_mid_apply_reads_as_unreachable() {
    let (lab, _dir, pb) = lab_and_playbook(
        1,
        r#"
resources:
  - file: {path: /etc/parc-before-cut, content: "x\n"}
  - command: {run: "touch /etc/parc-cut-marker; while [ ! -e /etc/parc-cut-release ]; do sleep 0.1; done"}
"#,
        "",
    );
    let (mut child, run_id, output) = spawn_apply(&lab, &pb);
    // Cut only once the host is inside the blocking step: its journal is
    // written and the step has started (it made the marker).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while lab.host_file(0, "/etc/parc-cut-marker").is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the host never reached the blocking step"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(
        lab.host_file(0, &format!("/var/lib/parc/journal/{run_id}/state"))
            .is_some(),
        "the journal was written before the step"
    );
    let sessions = sshd_sessions_under(lab.lab.hosts[0].pid);
    assert!(!sessions.is_empty(), "parc's sshd session is found");
    for pid in &sessions {
        // A session may exit on its own once its sibling is killed.
        let _ = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    }
    let status = child.wait().unwrap();
    // Let the orphaned step end (the lab's teardown would stop it too).
    std::fs::write(lab.lab.hosts[0].root().join("etc/parc-cut-release"), b"").unwrap();
    let lines: Vec<serde_json::Value> = std::io::BufRead::lines(output)
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    let done = finished(&lines);
    assert_eq!(done.len(), 1, "{lines:#?}");
    assert_eq!(done[0]["state"], "unreachable", "{:#}", done[0]);
    let error = done[0]["outcome"]["error"].as_str().unwrap();
    // The step's channel closed without an exit status (or the exec broke),
    // and the rollback over the same connection could not run either.
    assert!(
        error.contains("connection lost") && error.contains("rollback failed"),
        "{error}"
    );
    assert_eq!(status.code(), Some(4), "no host failed, one unreachable");
    let summary = lines.iter().find(|e| e["event"] == "run_finished").unwrap();
    assert_eq!(summary["summary"]["unreachable"], 1, "{summary:#}");
    assert_eq!(summary["summary"]["failed"], 0, "{summary:#}");
    let runs = lab.dir().parent().unwrap().join("runs").join(&run_id);
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(runs.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["hosts"][0]["state"], "unreachable", "{report:#}");
}
