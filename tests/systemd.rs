//! Lab hosts that boot a real systemd as PID 1 (`parc lab up --init systemd`), and
//! the `service` resource and verify kind proven against it. Slower than the other
//! groups (each lab boots whole systems; the first run builds the cached root file
//! system with debootstrap), so `.ci/run` runs this binary on its own, after them.
//! Needs root, systemd-container and debootstrap (`scripts/install-deps systemd`).
//! Every test is `#[ignore]`d so that the fast group (`cargo test`) skips them
//! visibly; the systemd group is `cargo test --test systemd -- --ignored`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{TestLab, finished};

fn start(hosts: usize) -> TestLab {
    TestLab::start_with(hosts, &["--init", "systemd"])
}

/// Output of a command over SSH, which must succeed.
fn run(lab: &TestLab, host: usize, command: &str) -> String {
    let out = lab.ssh(host, command);
    assert!(
        out.status.success(),
        "{command}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn all_output(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn verify(lab: &TestLab, pb: &Path) -> Output {
    lab.parc()
        .args(["--json", "verify"])
        .arg(pb)
        .output()
        .unwrap()
}

/// `systemctl QUERY UNIT`'s answer (is-active, is-enabled...), whatever its status.
fn systemctl(lab: &TestLab, query: &str, unit: &str) -> String {
    run(lab, 0, &format!("systemctl {query} {unit} || true"))
}

/// A profile `demo` and a playbook applying it with `vars`.
fn setup(dir: &Path, profile: &str, vars: &str) -> PathBuf {
    std::fs::create_dir_all(dir.join("profiles")).unwrap();
    std::fs::create_dir_all(dir.join("playbooks")).unwrap();
    std::fs::write(dir.join("profiles/demo.yml"), profile).unwrap();
    let pb = dir.join("playbooks/play.yml");
    std::fs::write(
        &pb,
        format!("- hosts: all\n  profiles: [demo]\n  vars: {{{vars}}}\n"),
    )
    .unwrap();
    pb
}

/// Lab processes and cgroups left once `lab down` returned.
fn leftovers(lab_dir: &Path) -> Vec<String> {
    let mut left = Vec::new();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir = lab_dir.to_str().unwrap();
    left.extend(
        mounts
            .lines()
            .filter(|l| l.contains(dir))
            .map(|l| format!("mount {l}")),
    );
    for hierarchy in [
        "/sys/fs/cgroup",
        "/sys/fs/cgroup/unified",
        "/sys/fs/cgroup/systemd",
    ] {
        let group = Path::new(hierarchy).join("parc-lab").join(&dir[1..]);
        if group.exists() {
            left.push(format!("cgroup {}", group.display()));
        }
    }
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cgroup = std::fs::read_to_string(entry.path().join("cgroup")).unwrap_or_default();
        if cgroup.contains(dir) {
            left.push(format!("process {}", entry.file_name().to_string_lossy()));
        }
    }
    left
}

#[test]
#[ignore = "systemd group: cargo test --test systemd -- --ignored (.ci/run)"]
fn hosts_boot_systemd_and_lab_down_leaves_nothing() {
    common::require_root_and_sshd();
    let lab = start(2);
    for host in 0..2 {
        assert_eq!(run(&lab, host, "cat /proc/1/comm"), "systemd");
        assert_eq!(run(&lab, host, "hostname"), format!("ws-00{}", host + 1));
        // Every unit of the boot came up: the host is as healthy as a workstation.
        let state = lab.ssh(host, "systemctl is-system-running --wait");
        assert_eq!(
            String::from_utf8_lossy(&state.stdout).trim(),
            "running",
            "{}",
            run(&lab, host, "systemctl --failed --no-legend; true")
        );
        assert_eq!(run(&lab, host, "systemctl is-active ssh.service"), "active");
    }
    let ids: Vec<String> = (0..2)
        .map(|h| run(&lab, h, "cat /etc/machine-id"))
        .collect();
    assert_ne!(ids[0], ids[1], "each host has its own machine id");
    // The host's files, as the host sees them, are readable from the controller.
    assert_eq!(
        lab.host_file(1, "/etc/hostname").as_deref(),
        Some(&b"ws-002\n"[..])
    );

    let lab_dir = lab.dir().to_path_buf();
    let down = lab.down();
    assert!(down.status.success(), "{}", all_output(&down));
    assert_eq!(leftovers(&lab_dir), Vec::<String>::new());
}

const UNIT_PROFILE: &str = r#"
resources:
  - file:
      path: /etc/systemd/system/parc-demo.service
      content: |
        [Unit]
        Description=parc demo service {{ version }}
        [Service]
        ExecStart=/bin/sh -c 'echo {{ version }} > /run/parc-demo.version; exec sleep infinity'
        [Install]
        WantedBy=multi-user.target
      notify: [restart demo]
  - service: {name: parc-demo.service, enabled: true, state: started}
handlers:
  restart demo:
    service: {name: parc-demo.service, state: restarted}
verify:
  - service: {name: parc-demo.service, running: true, enabled: true}
  - file: {path: /run/parc-demo.version, contains: "{{ version }}"}
"#;

fn main_pid(lab: &TestLab) -> String {
    run(
        lab,
        0,
        "systemctl show -p MainPID --value parc-demo.service",
    )
}

#[test]
#[ignore = "systemd group: cargo test --test systemd -- --ignored (.ci/run)"]
fn a_unit_file_enabled_started_and_restarted_only_when_changed() {
    common::require_root_and_sshd();
    let lab = start(1);
    let dir = tempfile::tempdir().unwrap();

    // A unit that does not exist yet is installed, loaded, enabled and started
    // in one run.
    let pb = setup(dir.path(), UNIT_PROFILE, "version: v1");
    let (out, ev) = lab.apply_json(&pb);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert_eq!(finished(&ev)[0]["state"], "changed");
    assert_eq!(
        run(&lab, 0, "systemctl is-enabled parc-demo.service"),
        "enabled"
    );
    assert_eq!(run(&lab, 0, "cat /run/parc-demo.version"), "v1");
    let first = main_pid(&lab);
    assert_ne!(first, "0");

    // Nothing changed: no restart.
    let (out, ev) = lab.apply_json(&pb);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert_eq!(finished(&ev)[0]["state"], "ok", "{}", all_output(&out));
    assert_eq!(main_pid(&lab), first, "restarted although nothing changed");

    // A changed unit file: systemd reloads it and the handler restarts the
    // service, which now runs the new definition.
    let pb = setup(dir.path(), UNIT_PROFILE, "version: v2");
    let (out, _) = lab.apply_json(&pb);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert_eq!(run(&lab, 0, "cat /run/parc-demo.version"), "v2");
    assert_ne!(main_pid(&lab), first);
    assert_eq!(
        run(
            &lab,
            0,
            "systemctl show -p NeedDaemonReload --value parc-demo.service"
        ),
        "no"
    );
    assert!(
        run(
            &lab,
            0,
            "systemctl show -p Description --value parc-demo.service"
        )
        .ends_with("v2")
    );

    let out = verify(&lab, &pb);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));

    // Stopped behind parc's back: verify names it, as systemd reports it.
    run(&lab, 0, "systemctl stop parc-demo.service");
    let out = verify(&lab, &pb);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        all_output(&out).contains("inactive"),
        "{}",
        all_output(&out)
    );
}

#[test]
#[ignore = "systemd group: cargo test --test systemd -- --ignored (.ci/run)"]
fn units_are_disabled_and_stopped_and_masked_ones_refused() {
    common::require_root_and_sshd();
    let lab = start(1);
    let dir = tempfile::tempdir().unwrap();
    run(
        &lab,
        0,
        // Where packages install units: a unit in /etc cannot be masked.
        "printf '[Service]\\nExecStart=/bin/sleep infinity\\n[Install]\\nWantedBy=multi-user.target\\n' \
         > /usr/lib/systemd/system/parc-idle.service && systemctl daemon-reload \
         && systemctl enable --now parc-idle.service",
    );
    let pb = setup(
        dir.path(),
        "resources:\n  - service: {name: parc-idle.service, enabled: false, state: stopped}\n",
        "",
    );
    let (out, ev) = lab.apply_json(&pb);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert_eq!(finished(&ev)[0]["state"], "changed");
    assert_eq!(
        systemctl(&lab, "is-enabled", "parc-idle.service"),
        "disabled"
    );
    assert_eq!(
        systemctl(&lab, "is-active", "parc-idle.service"),
        "inactive"
    );
    let (out, ev) = lab.apply_json(&pb);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert_eq!(finished(&ev)[0]["state"], "ok");

    run(&lab, 0, "systemctl mask parc-idle.service");
    let pb = setup(
        dir.path(),
        "resources:\n  - service: {name: parc-idle.service, state: started}\n",
        "",
    );
    let (out, ev) = lab.apply_json(&pb);
    assert_ne!(out.status.code(), Some(0));
    let error = finished(&ev)[0]["outcome"]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(error.contains("masked"), "{}", all_output(&out));
    assert_eq!(
        systemctl(&lab, "is-active", "parc-idle.service"),
        "inactive"
    );
}

#[test]
#[ignore = "systemd group: cargo test --test systemd -- --ignored (.ci/run)"]
fn a_failing_unit_is_reported_with_its_status() {
    common::require_root_and_sshd();
    let lab = start(1);
    let dir = tempfile::tempdir().unwrap();
    let profile = r#"
resources:
  - file:
      path: /etc/systemd/system/parc-broken.service
      content: |
        [Service]
        Type=oneshot
        ExecStart=/bin/sh -c 'echo parc-broken: /etc/parc-broken.conf is missing >&2; exit 3'
  - service: {name: parc-broken.service, state: started}
"#;
    let pb = setup(dir.path(), profile, "");
    let (out, ev) = lab.apply_json(&pb);
    let text = all_output(&out);
    assert_ne!(out.status.code(), Some(0), "{text}");
    // The failure rolled the host back: the unit file is gone again.
    assert_eq!(finished(&ev)[0]["state"], "rolled_back", "{text}");
    assert_eq!(
        lab.host_file(0, "/etc/systemd/system/parc-broken.service"),
        None
    );
    // The error quotes the unit's status as systemd shows it: the exit code and
    // what the service itself logged, which is why it failed.
    let error = finished(&ev)[0]["outcome"]["error"].as_str().unwrap();
    assert!(
        error.contains("service parc-broken.service failed"),
        "{text}"
    );
    assert!(error.contains("status=3"), "{text}");
    assert!(error.contains("/etc/parc-broken.conf is missing"), "{text}");
}

#[test]
#[ignore = "systemd group: cargo test --test systemd -- --ignored (.ci/run)"]
fn the_office_rollout_reloads_sshd_through_systemd_converges_and_verifies() {
    common::require_root_and_sshd();
    let lab = start(2);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let rollout = repo.join("playbooks/rollout.yml");
    // CUPS on the first host only (a stand-in unit of the same name: the lab's
    // root file system has no CUPS), running, as on an office workstation.
    run(
        &lab,
        0,
        "printf '[Service]\\nExecStart=/bin/sleep infinity\\n[Install]\\nWantedBy=multi-user.target\\n' \
         > /usr/lib/systemd/system/cups.service && systemctl daemon-reload \
         && systemctl enable --now cups.service",
    );
    let pid = |host: usize, unit: &str| {
        run(
            &lab,
            host,
            &format!("systemctl show -p MainPID --value {unit}"),
        )
    };
    let journald: Vec<String> = (0..2).map(|h| pid(h, "systemd-journald")).collect();
    let cups = pid(0, "cups.service");
    let (out, ev) = lab.apply_json(&rollout);
    let text = all_output(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    // journald read its new size limit (restarted by its handler); CUPS
    // restarted where it runs and nowhere else; timesyncd, which does not run
    // in a container, left alone, saying so.
    for (host, before) in journald.iter().enumerate() {
        assert_ne!(&pid(host, "systemd-journald"), before, "{text}");
        assert_eq!(
            run(&lab, host, "systemctl is-active systemd-journald"),
            "active"
        );
    }
    assert_ne!(pid(0, "cups.service"), cups, "{text}");
    assert_eq!(run(&lab, 0, "systemctl is-active cups.service"), "active");
    let handler = |host: usize, name: &str| {
        let done = finished(&ev);
        let entry = done
            .iter()
            .find(|e| e["host"] == format!("ws-00{}", host + 1))
            .unwrap();
        entry["outcome"]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| {
                r["resource"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("handler `{name}`"))
            })
            .unwrap_or_else(|| panic!("no handler {name}: {text}"))
            .clone()
    };
    assert_eq!(handler(0, "restart cups")["status"], "changed", "{text}");
    assert!(
        handler(1, "restart cups")["output"]
            .as_str()
            .unwrap_or_default()
            .contains("cups not running here"),
        "{text}"
    );
    assert!(
        handler(0, "restart timesyncd")["output"]
            .as_str()
            .unwrap_or_default()
            .contains("systemd-timesyncd not running here"),
        "{text}"
    );
    for host in 0..2 {
        // The hardening drop-in was checked with `sshd -t` and sshd reloaded by
        // systemd (not skipped for want of an init), and it still serves.
        let log = run(&lab, host, "journalctl -u ssh.service -o cat --no-pager");
        assert!(log.contains("Received SIGHUP"), "{log}");
        assert_eq!(run(&lab, host, "systemctl is-active ssh.service"), "active");
    }
    assert!(
        !all_output(&out).contains("no systemd"),
        "{}",
        all_output(&out)
    );
    assert!(finished(&ev).iter().all(|e| e["state"] == "changed"));

    let journald: Vec<String> = (0..2).map(|h| pid(h, "systemd-journald")).collect();
    let cups = pid(0, "cups.service");
    let (out, ev) = lab.apply_json(&rollout);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert!(
        finished(&ev).iter().all(|e| e["state"] == "ok"),
        "a second rollout changed something: {}",
        all_output(&out)
    );
    // Nothing changed, so no handler restarted anything.
    for (host, before) in journald.iter().enumerate() {
        assert_eq!(&pid(host, "systemd-journald"), before);
    }
    assert_eq!(pid(0, "cups.service"), cups);
    let out = verify(&lab, &repo.join("playbooks/verify.yml"));
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
}

#[test]
#[ignore = "systemd group: cargo test --test systemd -- --ignored (.ci/run)"]
fn dead_man_switch_outlives_the_ssh_service_and_restores_the_host() {
    common::require_root_and_sshd();
    let lab = start(1);
    let dir = tempfile::tempdir().unwrap();
    // A hardened host where stopping ssh.service ends every session and all
    // they started (KillMode=control-group, as logind does to a session's
    // scope): a watchdog started from the SSH session dies with it.
    run(
        &lab,
        0,
        "mkdir -p /etc/systemd/system/ssh.service.d && printf '[Service]\\nKillMode=control-group\\n' \
         > /etc/systemd/system/ssh.service.d/zz-kill.conf && systemctl daemon-reload",
    );
    let address = lab.lab.hosts[0].address;
    // Moves sshd off port 22 and restarts it: remote access is gone.
    let profile = format!(
        r#"
resources:
  - line:
      path: /etc/parc-lab/sshd_config
      regexp: "^ListenAddress "
      line: "ListenAddress {address}:2222"
      notify: [restart sshd]
  - file: {{path: /etc/parc-deadman, content: "moved\n"}}
handlers:
  restart sshd:
    service: {{name: ssh.service, state: restarted}}
"#
    );
    let pb = setup(dir.path(), &profile, "");
    let play = std::fs::read_to_string(&pb).unwrap() + "  confirm: 20s\n";
    std::fs::write(&pb, play).unwrap();
    let (out, ev) = lab.apply_json(&pb);
    let text = all_output(&out);
    // Restarting ssh.service cut the apply's own session: the controller cannot
    // roll back and says so, and it never reports success. A session lost
    // mid-step reads as unreachable (issue 16), which the host now is.
    let done = finished(&ev);
    assert_eq!(done[0]["state"], "unreachable", "{text}");
    assert!(
        text.contains("parc rollback"),
        "the consequence is stated: {text}"
    );
    // The watchdog, armed before the change, restores the host by itself once
    // the confirmation window is over, and restarts sshd on port 22.
    let restored_by = format!(
        "/var/lib/parc/journal/{}/restored_by",
        ev[0]["run_id"].as_str().unwrap()
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while lab.host_file(0, &restored_by).is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let restored_by = lab.host_file(0, &restored_by);
    assert_eq!(
        restored_by.as_deref(),
        Some(&b"watchdog\n"[..]),
        "the host, not the controller, restored itself: {text}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !lab.ssh(0, "true").status.success() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    assert_eq!(run(&lab, 0, "systemctl is-active ssh.service"), "active");
    assert_eq!(lab.host_file(0, "/etc/parc-deadman"), None);
}

#[test]
#[ignore = "systemd group: cargo test --test systemd -- --ignored (.ci/run)"]
fn a_host_reboots_like_a_machine_and_comes_back() {
    common::require_root_and_sshd();
    let lab = start(1);
    // PID 1's start time, in clock ticks since the controller booted: a new
    // systemd after the reboot (boot_id would not tell, containers share it).
    let pid1_start = |lab: &TestLab| run(lab, 0, "cut -d' ' -f22 /proc/1/stat");
    let before = pid1_start(&lab);
    run(
        &lab,
        0,
        "echo kept > /etc/parc-kept && echo gone > /run/parc-gone",
    );
    let _ = lab.ssh(0, "systemctl reboot");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut after = before.clone();
    while after == before && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let out = lab.ssh(0, "cut -d' ' -f22 /proc/1/stat");
        if out.status.success() {
            after = String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
    }
    assert_ne!(after, before, "the host did not come back from its reboot");
    assert_eq!(run(&lab, 0, "cat /proc/1/comm"), "systemd");
    assert_eq!(run(&lab, 0, "cat /etc/parc-kept"), "kept");
    assert_eq!(
        run(&lab, 0, "test -e /run/parc-gone || echo fresh"),
        "fresh"
    );
    // The controller follows the new PID 1.
    assert_eq!(
        lab.host_file(0, "/etc/parc-kept").as_deref(),
        Some(&b"kept\n"[..])
    );
    let lab_dir = lab.dir().to_path_buf();
    let down = lab.down();
    assert!(down.status.success(), "{}", all_output(&down));
    assert_eq!(leftovers(&lab_dir), Vec::<String>::new());
}

/// A kernel-like change that needs a reboot: the handler reboots the host,
/// which must be back (and verified) before the run goes on.
const REBOOT_PROFILE: &str = r#"
resources:
  - file: {path: /etc/parc-kernel, content: "{{ version }}\n", notify: [reboot]}
handlers:
  reboot:
    reboot: {timeout: 2m}
verify:
  - name: the host booted since the change
    command: {run: "test ! -e /run/parc-before-reboot"}
  - file: {path: /etc/parc-kernel, contains: "{{ version }}"}
"#;

/// The `reboot` lines of a host's outcome.
fn reboot_lines(host: &serde_json::Value) -> Vec<&serde_json::Value> {
    host["outcome"]["resources"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter(|r| r["resource"].as_str().unwrap_or("").contains("reboot"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
#[ignore = "systemd group: cargo test --test systemd -- --ignored (.ci/run)"]
fn a_reboot_handler_reboots_the_canary_first_and_verifies_after_it() {
    common::require_root_and_sshd();
    let lab = start(2);
    let dir = tempfile::tempdir().unwrap();
    let pb = setup(dir.path(), REBOOT_PROFILE, "version: v1");
    // A canary batch, then the rest; a dead-man switch over the reboot.
    let play = std::fs::read_to_string(&pb).unwrap() + "  batches: [1, 100%]\n  confirm: 60s\n";
    std::fs::write(&pb, play).unwrap();
    for host in 0..2 {
        run(&lab, host, "touch /run/parc-before-reboot");
    }
    let (out, ev) = lab.apply_json(&pb);
    let text = all_output(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let done = finished(&ev);
    for host in &done {
        assert_eq!(host["state"], "changed", "{text}");
        // The report shows the reboot and how long it took.
        let lines = reboot_lines(host);
        assert_eq!(lines.len(), 1, "{text}");
        assert_eq!(lines[0]["status"], "changed", "{text}");
        assert!(lines[0]["rebooted_ms"].as_u64().unwrap() > 0, "{text}");
        // Verified after the reboot: /run was emptied by it.
        let tests = host["outcome"]["verification"].as_array().unwrap();
        assert!(tests.iter().all(|t| t["passed"] == true), "{text}");
    }
    // The canary rebooted and came back before the second batch started;
    // the second host rebooted within its own batch.
    let at = |pred: &dyn Fn(&serde_json::Value) -> bool| {
        ev.iter().position(pred).unwrap_or_else(|| panic!("{text}"))
    };
    let canary = at(&|e| e["event"] == "host_rebooted" && e["host"] == "ws-001");
    let second_batch = at(&|e| e["event"] == "batch_started" && e["index"] == 1);
    let second = at(&|e| e["event"] == "host_rebooted" && e["host"] == "ws-002");
    assert!(canary < second_batch && second_batch < second, "{text}");
    let run_id = ev[0]["run_id"].as_str().unwrap();
    for host in 0..2 {
        assert_eq!(run(&lab, host, "cat /etc/parc-kernel"), "v1");
        assert_eq!(
            run(
                &lab,
                host,
                "test -e /run/parc-before-reboot || echo rebooted"
            ),
            "rebooted"
        );
        // The confirmation reached the host after its reboot: its watchdog
        // neither restored it nor will; the lock taken again was released.
        assert_eq!(
            run(
                &lab,
                host,
                &format!("readlink /var/lib/parc/journal/{run_id}/fate")
            ),
            "confirmed"
        );
        assert_eq!(
            run(&lab, host, "test -e /var/lib/parc/lock || echo free"),
            "free"
        );
        assert!(
            run(&lab, host, "tail -n 1 /var/lib/parc/history.log")
                .contains(&format!("run={run_id} action=apply")),
        );
    }
    // Nothing changed: nothing notifies the handler, no reboot.
    let (out, ev) = lab.apply_json(&pb);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert!(finished(&ev).iter().all(|e| e["state"] == "ok"));
    assert!(!ev.iter().any(|e| e["event"] == "host_rebooted"));
}

#[test]
#[ignore = "systemd group: cargo test --test systemd -- --ignored (.ci/run)"]
fn a_host_that_does_not_come_back_from_its_reboot_fails_saying_so() {
    common::require_root_and_sshd();
    let lab = start(1);
    let dir = tempfile::tempdir().unwrap();
    // sshd will not start in the next boot: the host never answers again.
    run(
        &lab,
        0,
        "touch /run/parc-reboot-required && systemctl mask ssh.service",
    );
    let profile = r#"
resources:
  - file: {path: /etc/parc-updated, content: "yes\n"}
  - reboot: {when_exists: /run/parc-reboot-required, timeout: 15s}
"#;
    let pb = setup(dir.path(), profile, "");
    let (out, ev) = lab.apply_json(&pb);
    let text = all_output(&out);
    assert_ne!(out.status.code(), Some(0), "{text}");
    let done = finished(&ev);
    assert_eq!(done[0]["state"], "failed", "{text}");
    let error = done[0]["outcome"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("did not come back from its reboot within 15s"),
        "{text}"
    );
    let run_id = ev[0]["run_id"].as_str().unwrap();
    assert!(error.contains(&format!("parc rollback {run_id}")), "{text}");
    let lines = reboot_lines(done[0]);
    assert_eq!(lines[0]["status"], "failed", "{text}");
    assert!(!ev.iter().any(|e| e["event"] == "host_rebooted"));
    // It did reboot (a new PID 1), and its journal says parc rebooted it on
    // purpose: nothing restores it by itself.
    let lab_now = parc::lab::load(lab.dir()).unwrap();
    let root = lab_now.hosts[0].root();
    let fate = std::fs::read_link(root.join(format!("var/lib/parc/journal/{run_id}/fate")));
    assert_eq!(fate.unwrap().to_string_lossy(), "rebooting", "{text}");
    assert_eq!(
        lab.host_file(0, "/etc/parc-updated").as_deref(),
        Some(&b"yes\n"[..])
    );
    assert_eq!(lab.host_file(0, "/run/parc-reboot-required"), None);
}

/// What parc reads of a host's units (every unit of a script from one
/// `systemctl show` and one `systemctl is-enabled`) is what `systemctl`
/// says of each unit on its own: for units running and stopped, enabled,
/// disabled, static, masked, an alias and a unit that does not exist, in
/// the `service` verify kind's report and in the `service` resource's plan.
#[test]
#[ignore = "systemd group: cargo test --test systemd -- --ignored (.ci/run)"]
fn units_read_together_read_as_systemctl_tells_each() {
    common::require_root_and_sshd();
    let lab = start(1);
    let dir = tempfile::tempdir().unwrap();
    run(
        &lab,
        0,
        "unit() { printf '[Service]\\nExecStart=/bin/sleep infinity\\n%b' \"$2\" > /usr/lib/systemd/system/$1.service; } \
         && unit parc-on '[Install]\\nWantedBy=multi-user.target\\n' \
         && unit parc-off '[Install]\\nWantedBy=multi-user.target\\n' \
         && unit parc-static '' && unit parc-masked '' \
         && systemctl daemon-reload && systemctl enable --now parc-on.service \
         && systemctl start parc-static.service && systemctl mask parc-masked.service",
    );
    let units = [
        "parc-on.service",
        "parc-off.service",
        "parc-static.service",
        "parc-masked.service",
        "sshd.service",
        "ssh",
        "parc-none.service",
    ];
    let tests: String = units
        .iter()
        .map(|u| format!("  - service: {{name: {u}, running: true, enabled: true}}\n"))
        .collect();
    let pb = setup(dir.path(), &format!("verify:\n{tests}"), "");
    let out = verify(&lab, &pb);
    assert_eq!(out.status.code(), Some(3), "{}", all_output(&out));
    let ev = common::events(&out);
    let results = finished(&ev)[0]["outcome"]["results"].as_array().unwrap();
    assert_eq!(results.len(), units.len());
    for (unit, result) in units.iter().zip(results) {
        let actual = |what: &str| -> String {
            result["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["what"] == what)
                .map(|c| c["actual"].as_str().unwrap().to_string())
                .unwrap()
        };
        let one = |query: &str| systemctl(&lab, query, unit);
        assert_eq!(actual("running"), one("is-active"), "{unit}: {result:#}");
        let enabled = one("is-enabled");
        let enabled = if enabled.is_empty() {
            "unknown"
        } else {
            &enabled
        };
        assert_eq!(actual("enabled"), enabled, "{unit}: {result:#}");
    }

    // The resource plans from the same reads: the stopped and disabled unit
    // is enabled and started, the others left as they are.
    let resources: String = ["parc-on.service", "parc-off.service", "ssh"]
        .iter()
        .map(|u| format!("  - service: {{name: {u}, enabled: true, state: started}}\n"))
        .collect();
    let pb = setup(dir.path(), &format!("resources:\n{resources}"), "");
    let (out, ev) = lab.apply_json(&pb);
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    let host = &finished(&ev)[0];
    let statuses: Vec<&str> = host["outcome"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["no_change", "changed", "no_change"], "{host:#}");
    assert_eq!(systemctl(&lab, "is-active", "parc-off.service"), "active");
}

/// Consecutive service steps share their systemctl (one `enable` for all
/// the units, one `start`): when one unit of them fails, the host's error
/// is still that unit's, with its status, and the others converge alone.
#[test]
#[ignore = "systemd group: cargo test --test systemd -- --ignored (.ci/run)"]
fn services_started_together_report_the_one_that_fails() {
    common::require_root_and_sshd();
    let lab = start(1);
    let dir = tempfile::tempdir().unwrap();
    run(
        &lab,
        0,
        "for u in parc-a parc-b; do printf '[Service]\\nExecStart=/bin/sleep infinity\\n[Install]\\nWantedBy=multi-user.target\\n' \
         > /usr/lib/systemd/system/$u.service; done \
         && printf '[Service]\\nType=oneshot\\nExecStart=/bin/sh -c \"echo parc-bad refuses >&2; exit 3\"\\n' \
         > /usr/lib/systemd/system/parc-bad.service && systemctl daemon-reload",
    );
    let units = |bad: bool| {
        let mut yaml = String::from("resources:\n");
        for u in ["parc-a", "parc-b"] {
            yaml.push_str(&format!(
                "  - service: {{name: {u}.service, enabled: true, state: started}}\n"
            ));
        }
        if bad {
            yaml.push_str("  - service: {name: parc-bad.service, state: started}\n");
        }
        setup(dir.path(), &yaml, "")
    };
    let (out, ev) = lab.apply_json(&units(true));
    let text = all_output(&out);
    assert_ne!(out.status.code(), Some(0), "{text}");
    let host = &finished(&ev)[0];
    assert_eq!(host["state"], "rolled_back", "{text}");
    let error = host["outcome"]["error"].as_str().unwrap();
    assert!(error.contains("service parc-bad.service failed"), "{text}");
    assert!(error.contains("status=3"), "{text}");
    for u in ["parc-a", "parc-b"] {
        assert_eq!(
            systemctl(&lab, "is-enabled", &format!("{u}.service")),
            "disabled"
        );
        assert_eq!(
            systemctl(&lab, "is-active", &format!("{u}.service")),
            "inactive"
        );
    }

    let (out, ev) = lab.apply_json(&units(false));
    assert_eq!(out.status.code(), Some(0), "{}", all_output(&out));
    assert_eq!(finished(&ev)[0]["state"], "changed");
    for u in ["parc-a", "parc-b"] {
        assert_eq!(
            systemctl(&lab, "is-enabled", &format!("{u}.service")),
            "enabled"
        );
        assert_eq!(
            systemctl(&lab, "is-active", &format!("{u}.service")),
            "active"
        );
    }
}
