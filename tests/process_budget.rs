//! The cost of a host is the processes it starts (issue 17): a bound on them
//! for the `mixed` profile (tests/fixtures/mixed: every resource kind the
//! namespace lab supports, 6 verification commands), counted on a real lab
//! host with strace attached to its sshd (needs root, openssh-server, strace;
//! rpmbuild for the rpm host).
//!
//! The bounds are on the processes parc starts; the profile's own commands
//! (its `command` resources, handlers and verification commands, and
//! everything they start) are counted apart: they are the work asked for.

mod common;

use std::path::Path;

use common::TestLab;
use common::procs::{Processes, Tracer};

/// Issue 17's bounds on the processes parc may start on a host: an apply
/// that changes nothing (15 measured), and a first run (59 measured, 17 of
/// them forks inside `useradd` and `groupadd`, which try nscd and
/// sss_cache whether or not they are installed).
const GOAL: Bounds = Bounds {
    no_change: 25,
    first_run: 60,
};

struct Bounds {
    no_change: usize,
    first_run: usize,
}

/// Applies `playbook` with strace on the host's sshd: the host's outcome
/// (its `host_finished` event) and the processes it started.
fn traced_apply(lab: &TestLab, playbook: &Path) -> (serde_json::Value, Processes) {
    let tracer = Tracer::attach(lab.lab.hosts[0].pid);
    let (out, ev) = lab.apply_json(playbook);
    let processes = tracer.finish();
    let finished = common::finished(&ev);
    assert_eq!(
        finished.len(),
        1,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let host = finished[0].clone();
    assert!(
        out.status.success(),
        "apply failed ({}): {}\n{}",
        host["state"],
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (host, processes)
}

#[test]
fn a_host_starts_few_processes_whatever_its_profile() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let work = tempfile::tempdir().unwrap();
    let playbook = common::mixed_fixture(work.path());
    let (host, first) = traced_apply(&lab, &playbook);
    assert_eq!(host["state"], "changed");
    let (host, again) = traced_apply(&lab, &playbook);
    assert_eq!(host["state"], "ok", "the second run changes nothing");
    for (run, p) in [("first run", &first), ("no change", &again)] {
        eprintln!(
            "{run}: {} processes, {} of them parc's: {}",
            p.total(),
            p.parc(),
            p.programs()
        );
    }
    let Bounds {
        no_change,
        first_run,
    } = GOAL;
    assert!(
        first.parc() <= first_run,
        "a first run started {} processes besides the profile's commands (bound {first_run}): {}",
        first.parc(),
        first.programs()
    );
    assert!(
        again.parc() <= no_change,
        "an apply that changed nothing started {} processes besides the profile's commands \
         (bound {no_change}): {}",
        again.parc(),
        again.programs()
    );
}

/// The probe runs in the host lock's shell rather than a session of its own
/// (a fork of sshd, a login shell, `sh` and its reader of stdin): an apply
/// that changes nothing opens one session on the host. Where `sh` is bash,
/// which reads a script from a pipe only once it has all of it, the probe
/// has its session, and the apply ends the same.
#[test]
fn an_apply_that_changes_nothing_opens_one_session_unless_sh_is_bash() {
    common::require_root_and_sshd();
    let lab = TestLab::start(2);
    let sh = lab.lab.hosts[1].root().join("usr/bin/sh");
    std::fs::remove_file(&sh).unwrap();
    std::os::unix::fs::symlink("bash", &sh).unwrap();
    let work = tempfile::tempdir().unwrap();
    let playbook = common::mixed_fixture(work.path());
    let states = |ev: &[serde_json::Value]| -> Vec<String> {
        common::finished(ev)
            .iter()
            .map(|h| h["state"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let (out, ev) = lab.apply_json(&playbook);
    assert_eq!(
        states(&ev),
        ["changed", "changed"],
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (host, sessions) in [(0, 1), (1, 2)] {
        let tracer = Tracer::attach(lab.lab.hosts[host].pid);
        let (out, ev) = lab.apply_json(&playbook);
        let processes = tracer.finish();
        assert_eq!(
            states(&ev),
            ["ok", "ok"],
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for h in common::finished(&ev) {
            let tests = h["outcome"]["verification"].as_array().unwrap();
            assert!(
                !tests.is_empty() && tests.iter().all(|t| t["passed"] == true),
                "{h:#}"
            );
            // Lock and facts, then the probe (with the tests): two round
            // trips, whether the probe has a session or not.
            assert_eq!(h["execs"], 2, "{h:#}");
        }
        assert_eq!(
            processes.sessions(),
            sessions,
            "host {host}: {}",
            processes.programs()
        );
    }
    // Every lock was released: the history has each run's line.
    for host in 0..2 {
        let history = lab.host_file(host, "/var/lib/parc/history.log").unwrap();
        assert_eq!(String::from_utf8_lossy(&history).lines().count(), 3);
        assert!(lab.host_file(host, "/var/lib/parc/lock/pid").is_none());
    }
}

/// busybox's sh runs what comes on its stdin as it comes too: on a host with
/// nothing but busybox, a run that changes nothing opens one session, and
/// its tests (run by the probe in the lock's shell) pass.
#[test]
fn a_busybox_host_runs_its_probe_in_the_lock_shell() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    lab.busybox_only(0);
    let dir = tempfile::tempdir().unwrap();
    let pb = common::play(
        dir.path(),
        "small",
        "resources:\n  - file: {path: /etc/parc-small.conf, content: \"a=1\\n\"}\n\
         verify:\n  - command: {run: 'grep -q a=1 /etc/parc-small.conf'}\n",
        "",
    );
    let (host, _) = traced_apply(&lab, &pb);
    assert_eq!(host["state"], "changed", "{host:#}");
    let (host, processes) = traced_apply(&lab, &pb);
    assert_eq!(host["state"], "ok", "{host:#}");
    let tests = host["outcome"]["verification"].as_array().unwrap();
    assert_eq!(tests.len(), 1, "{host:#}");
    assert_eq!(tests[0]["passed"], true, "{host:#}");
    assert_eq!(processes.sessions(), 1, "{}", processes.programs());
    assert!(lab.host_file(0, "/var/lib/parc/lock/pid").is_none());
}

/// What an apply starts does not depend on how many paths it changes: ten
/// directories given a group, ten files and ten links into a directory cost
/// what one of each does, when they are made and when the files and links
/// are changed (the journal saves every path it replaces with the same few
/// processes: one `stat`, one `tar`, one `sha256sum`). Links are staged with
/// the files and renamed with them, one `mv` for a directory, never an `ln`
/// a link; the new directories get their group from one `chgrp`.
#[test]
fn ten_files_and_links_cost_what_one_of_each_does() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let dir = tempfile::tempdir().unwrap();
    let play = |name: &str, n: usize, target: &str| {
        let mut yaml = format!("resources:\n  - dir: {{path: /srv/{name}}}\n");
        for i in 0..n {
            yaml.push_str(&format!(
                "  - dir: {{path: /srv/{name}/d{i}, group: daemon}}\n"
            ));
        }
        for i in 0..n {
            yaml.push_str(&format!(
                "  - file: {{path: /srv/{name}/f{i}, content: \"{target}{i}\\n\"}}\n  \
                 - symlink: {{path: /srv/{name}/l{i}, target: {target}{i}}}\n"
            ));
        }
        common::play(dir.path(), name, &yaml, "")
    };
    // The host's first run also creates parc's own directories.
    let (host, _) = traced_apply(&lab, &play("warm", 1, "/etc/motd"));
    assert_eq!(host["state"], "changed", "{host:#}");
    let mut counts = Vec::new();
    for (name, n) in [("one", 1), ("ten", 10)] {
        let mut started = Vec::new();
        for target in ["/etc/motd", "/etc/issue"] {
            let (host, processes) = traced_apply(&lab, &play(name, n, target));
            assert_eq!(host["state"], "changed", "{host:#}");
            let root = lab.lab.hosts[0].root().join(format!("srv/{name}"));
            for i in 0..n {
                assert_eq!(
                    std::fs::read_link(root.join(format!("l{i}")))
                        .unwrap()
                        .to_str(),
                    Some(format!("{target}{i}").as_str())
                );
                assert_eq!(
                    std::fs::read_to_string(root.join(format!("f{i}"))).unwrap(),
                    format!("{target}{i}\n")
                );
            }
            started.push((processes.parc(), processes.programs()));
        }
        counts.push(started);
    }
    same_cost(&["made", "changed"], &counts[0], &counts[1]);
}

/// Fixing the mode and group of ten files, then removing them, costs what
/// doing so for one does: consecutive mode, owner and removal steps share
/// one `chmod`, one `chgrp`, one `rm` (never through a link: a link standing
/// where a mode is fixed is refused by its own step).
#[test]
fn ten_mode_fixes_and_removals_cost_what_one_does() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let dir = tempfile::tempdir().unwrap();
    let play = |name: &str, n: usize, attrs: &str| {
        let mut yaml = format!("resources:\n  - dir: {{path: /srv/{name}}}\n");
        for i in 0..n {
            yaml.push_str(&format!(
                "  - file: {{path: /srv/{name}/f{i}, content: \"{i}\\n\"{attrs}}}\n"
            ));
        }
        common::play(dir.path(), name, &yaml, "")
    };
    let (host, _) = traced_apply(&lab, &play("warm", 1, ""));
    assert_eq!(host["state"], "changed", "{host:#}");
    let runs = [
        ("made", ""),
        ("mode and group fixed", ", mode: '0600', group: daemon"),
        ("removed", ", state: absent"),
    ];
    let mut counts = Vec::new();
    for (name, n) in [("one", 1), ("ten", 10)] {
        let mut started = Vec::new();
        for (what, attrs) in runs {
            let (host, processes) = traced_apply(&lab, &play(name, n, attrs));
            assert_eq!(host["state"], "changed", "{what}: {host:#}");
            for i in 0..n {
                let f = lab.lab.hosts[0].root().join(format!("srv/{name}/f{i}"));
                match what {
                    "removed" => assert!(!f.exists(), "{f:?}"),
                    "mode and group fixed" => {
                        use std::os::unix::fs::MetadataExt;
                        let meta = std::fs::metadata(&f).unwrap();
                        assert_eq!(meta.mode() & 0o7777, 0o600);
                        assert_eq!(meta.gid(), 1, "daemon's group");
                    }
                    _ => assert!(f.exists()),
                }
            }
            started.push((processes.parc(), processes.programs()));
        }
        counts.push(started);
    }
    let whats: Vec<&str> = runs.iter().map(|(what, _)| *what).collect();
    same_cost(&whats, &counts[0], &counts[1]);
}

/// For each run (named in `whats`), the processes parc started for one
/// item of each kind and for many: the same number. Shows the many's.
fn same_cost(whats: &[&str], one: &[(usize, String)], many: &[(usize, String)]) {
    for (run, what) in whats.iter().enumerate() {
        eprintln!("{what}: {} processes ({})", many[run].0, many[run].1);
        assert_eq!(
            one[run].0, many[run].0,
            "{what}: one {}; many {}",
            one[run].1, many[run].1
        );
    }
}

/// A verification costs the same processes whether it runs one test of each
/// kind or five: files, accounts, packages, ports, mounts and kernel
/// parameters are read for all their tests at once (a port's tables and the
/// mount table once, a parameter by the shell).
#[test]
fn five_tests_of_each_kind_cost_what_one_does() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let dir = tempfile::tempdir().unwrap();
    let kinds: [(&str, [&str; 5]); 7] = [
        (
            "file",
            [
                "/etc/hostname",
                "/etc/hosts",
                "/etc/passwd",
                "/etc/group",
                "/etc/shadow",
            ],
        ),
        ("user", ["root", "daemon", "bin", "sys", "sync"]),
        ("group", ["root", "daemon", "bin", "sys", "adm"]),
        (
            "package",
            ["openssh-server", "dash", "bash", "coreutils", "tar"],
        ),
        ("port", ["22", "1", "2", "3", "4"]),
        ("mount", ["/", "/proc", "/sys", "/dev", "/run"]),
        (
            "kernel_param",
            [
                "kernel.ostype",
                "kernel.hostname",
                "kernel.osrelease",
                "vm.swappiness",
                "kernel.pid_max",
            ],
        ),
    ];
    let play = |name: &str, n: usize| {
        let mut yaml = String::from("verify:\n");
        for (kind, values) in &kinds {
            for v in &values[..n] {
                let test = match *kind {
                    "file" | "mount" => format!("{{path: {v}}}"),
                    "port" => format!("{{port: {v}}}"),
                    "kernel_param" => format!("{{name: {v}, value: x}}"),
                    _ => format!("{{name: {v}}}"),
                };
                yaml.push_str(&format!("  - {kind}: {test}\n"));
            }
        }
        common::play(dir.path(), name, &yaml, "")
    };
    let mut counts = Vec::new();
    for (name, n) in [("one", 1), ("five", 5)] {
        let pb = play(name, n);
        let tracer = Tracer::attach(lab.lab.hosts[0].pid);
        let out = lab
            .parc()
            .arg("--json")
            .arg("verify")
            .arg(&pb)
            .output()
            .unwrap();
        let processes = tracer.finish();
        let events = common::events(&out);
        let results: usize = common::finished(&events)
            .iter()
            .map(|h| h["outcome"]["results"].as_array().map_or(0, Vec::len))
            .sum();
        assert_eq!(results, 7 * n, "{}", String::from_utf8_lossy(&out.stdout));
        counts.push(processes);
    }
    eprintln!(
        "five of each: {} processes ({})",
        counts[1].total(),
        counts[1].programs()
    );
    costs_as_much(&counts[0], &counts[1]);
}

/// Users' authorized_keys are probed with one `stat` and one read each
/// (`dd`, into the probe's closing tar), never a hash, `wc` or `cat`: a
/// run that changes nothing costs two processes a user with keys (their
/// paths come from passwd as the probe runs, too late for its batched
/// stat).
#[test]
fn users_with_keys_cost_two_processes_each_when_nothing_changes() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let dir = tempfile::tempdir().unwrap();
    let play = |name: &str, n: usize| {
        let mut yaml = String::from("resources:\n");
        for i in 0..n {
            yaml.push_str(&format!(
                "  - user: {{name: parc-{name}-{i}, authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIParcTestKeyOnlyForTheLab u{i}@lab']}}\n"
            ));
        }
        common::play(dir.path(), name, &yaml, "")
    };
    let mut counts = Vec::new();
    for (name, n) in [("one", 1), ("five", 5)] {
        let pb = play(name, n);
        let (host, _) = traced_apply(&lab, &pb);
        assert_eq!(host["state"], "changed", "{host:#}");
        let (host, processes) = traced_apply(&lab, &pb);
        assert_eq!(host["state"], "ok", "{host:#}");
        counts.push((processes.parc(), processes.programs()));
    }
    eprintln!("five users: {} processes ({})", counts[1].0, counts[1].1);
    assert_eq!(
        counts[1].0,
        counts[0].0 + 2 * 4,
        "one user {}; five {}",
        counts[0].1,
        counts[1].1
    );
}

/// Copies `files` into directory `dir` (made if missing).
fn copy_to(files: &[std::path::PathBuf], dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for file in files {
        std::fs::copy(file, dir.join(file.file_name().unwrap())).unwrap();
    }
}

/// A repository in `dir` offering alpha 1.3-1, multi 2.5-1 and beta
/// 1.0-1, as dnf and zypper read one (createrepo_c's metadata, without its
/// sqlite files, which sqlite cannot open through /proc/PID/root and
/// neither needs).
fn rpm_repository(dir: &Path) {
    let build = tempfile::tempdir().unwrap();
    let rpms = [
        rpm_package(build.path(), "alpha", "1.3-1", "noarch"),
        rpm_package(build.path(), "multi", "2.5-1", "noarch"),
        rpm_package(build.path(), "beta", "1.0-1", "noarch"),
    ];
    copy_to(&rpms, dir);
    succeeds(
        std::process::Command::new("createrepo_c")
            .args(["-q", "--no-database"])
            .arg(dir),
        "createrepo_c (apt-get install createrepo-c",
    );
}

/// Installs with rpm, on lab host 0, alpha 1.2-3 and multi for two
/// architectures (2.0-1 x86_64, 2.0-2 noarch, listed first).
fn install_rpms(lab: &TestLab) {
    let build = tempfile::tempdir().unwrap();
    let rpms = [
        rpm_package(build.path(), "alpha", "1.2-3", "noarch"),
        rpm_package(build.path(), "multi", "2.0-1", "x86_64"),
        rpm_package(build.path(), "multi", "2.0-2", "noarch"),
    ];
    copy_to(&rpms, &lab.lab.hosts[0].root().join("root/parc-rpms"));
    host_runs(lab, "rpm -i --nodeps --ignorearch /root/parc-rpms/*.rpm");
}

/// Runs `command` on lab host 0 as root, which must succeed.
fn host_runs(lab: &TestLab, command: &str) {
    let out = lab.ssh(0, command);
    assert!(
        out.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts that reading many items started as many processes on the host
/// as reading one.
fn costs_as_much(one: &Processes, many: &Processes) {
    assert_eq!(
        one.total(),
        many.total(),
        "one: {}; many: {}",
        one.programs(),
        many.programs()
    );
}

/// Runs a tool the test needs on the controller, which must succeed;
/// `needs` says where the tool comes from.
fn succeeds(command: &mut std::process::Command, needs: &str) {
    let out = command.output().unwrap_or_else(|e| {
        panic!("this test needs {needs}; scripts/install-deps installs it): {e}")
    });
    assert!(
        out.status.success(),
        "{:?}: {}",
        command,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An rpm package built by rpmbuild (no files), in `dir`.
fn rpm_package(dir: &Path, name: &str, version: &str, arch: &str) -> std::path::PathBuf {
    let (version, release) = version.split_once('-').unwrap();
    let spec = dir.join(format!("{name}-{arch}.spec"));
    std::fs::write(
        &spec,
        format!(
            "Name: {name}\nVersion: {version}\nRelease: {release}\nSummary: parc test\n\
             License: MIT\nBuildArch: {arch}\n%description\nparc test\n%files\n"
        ),
    )
    .unwrap();
    succeeds(
        std::process::Command::new("rpmbuild")
            .arg("--define")
            .arg(format!("_topdir {}", dir.join("top").display()))
            .args(["--define", "_build_id_links none", "-bb", "--target", arch])
            .arg(&spec),
        "rpmbuild (apt-get install rpm",
    );
    dir.join(format!(
        "top/RPMS/{arch}/{name}-{version}-{release}.{arch}.rpm"
    ))
}

/// Makes lab host 0 a host of another package manager than dpkg: the
/// tools named are gone from it (those it has), and `manager`, when given,
/// is a command of that name running that sh (parc finds it there).
fn package_host(lab: &TestLab, gone: &[&str], manager: Option<(&str, &str)>) {
    let root = lab.lab.hosts[0].root();
    for tool in gone {
        let path = root.join("usr/bin").join(tool);
        if path.exists() {
            std::fs::remove_file(path).unwrap();
        }
    }
    if let Some((manager, sh)) = manager {
        let path = root.join("usr/local/bin").join(manager);
        std::fs::write(&path, format!("#!/bin/sh\n{sh}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// A playbook of `resources` and a package test for each of `names`, with a
/// version no package has: each test's last check shows what it read.
fn package_tests(dir: &Path, name: &str, resources: &str, names: &[&str]) -> std::path::PathBuf {
    let mut yaml = format!("resources:\n{resources}verify:\n");
    for n in names {
        yaml.push_str(&format!("  - package: {{name: '{n}', version: '0'}}\n"));
    }
    common::play(dir, name, &yaml, "")
}

/// Verifies `playbook` on lab host 0: what each package test read (its
/// version, or "not installed") and the processes the host started.
fn package_reads(lab: &TestLab, playbook: &Path) -> (Vec<String>, Processes) {
    let tracer = Tracer::attach(lab.lab.hosts[0].pid);
    let out = lab
        .parc()
        .arg("--json")
        .arg("verify")
        .arg(playbook)
        .output()
        .unwrap();
    let processes = tracer.finish();
    let events = common::events(&out);
    let results = common::finished(&events)[0]["outcome"]["results"].clone();
    let read = results
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let checks = r["checks"].as_array().unwrap();
            let last = checks.last().unwrap();
            last["actual"].as_str().unwrap().to_string()
        })
        .collect();
    (read, processes)
}

/// Applies `playbook` to lab host 0 and checks it changed nothing.
fn changes_nothing(lab: &TestLab, playbook: &Path) {
    let (out, ev) = lab.apply_json(playbook);
    let host = common::finished(&ev)[0].clone();
    assert_eq!(
        host["state"],
        "ok",
        "{host:#}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What `command` (NAME appended, quoted) prints first on lab host 0, the
/// package manager asked about one name: `keep` keeps the part of the line
/// that is the version; "not installed" when it fails.
fn asked_alone(
    lab: &TestLab,
    command: &str,
    names: &[&str],
    keep: fn(&str) -> &str,
) -> Vec<String> {
    names
        .iter()
        .map(|n| {
            let out = lab.ssh(0, &format!("{command} -- '{n}'"));
            let text = String::from_utf8_lossy(&out.stdout);
            match (out.status.success(), text.lines().next()) {
                (true, Some(line)) => keep(line).to_string(),
                _ => "not installed".to_string(),
            }
        })
        .collect()
}

/// On a host whose packages are rpm's, every package a probe or a
/// verification reads comes from one `rpm -q` (as dpkg's from one
/// dpkg-query), and reads as `rpm -q NAME` asked alone tells it: a name
/// installed for two architectures, a full name, a name.arch, one missing,
/// one ending in `.rpm` (for which rpm prints nothing). A name rpm's own
/// answer could be confused with (it holds the words ending each answer)
/// makes each be asked alone, with the same answers.
#[test]
fn rpm_packages_are_read_together_as_rpm_tells_each() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    // A dnf for parc to find, never run here.
    package_host(&lab, &["dpkg-query", "apt-get"], Some(("dnf", "exit 1")));
    install_rpms(&lab);
    let names = [
        "alpha",
        "multi",
        "nope",
        "alpha-1.2-3",
        "multi.x86_64",
        "gone.rpm",
    ];
    let alone = asked_alone(
        &lab,
        "rpm -q --qf '%{VERSION}-%{RELEASE}\\n'",
        &names,
        |l| l,
    );
    assert_eq!(
        alone[1], "2.0-2",
        "multi is installed twice, the noarch one listed first"
    );
    let dir = tempfile::tempdir().unwrap();
    let resources =
        "  - package: {names: [alpha, multi]}\n  - package: {name: nope, state: absent}\n";
    let play = |name: &str, names: &[&str]| package_tests(dir.path(), name, resources, names);
    let (one, one_cost) = package_reads(&lab, &play("one", &names[..1]));
    assert_eq!(one, alone[..1]);
    let (all, all_cost) = package_reads(&lab, &play("all", &names));
    assert_eq!(all, alone, "{names:?}");
    eprintln!(
        "{} package tests: {} processes ({})",
        names.len(),
        all_cost.total(),
        all_cost.programs()
    );
    costs_as_much(&one_cost, &all_cost);
    let confusing = [&names[..], &["parc end"]].concat();
    let (each, _) = package_reads(&lab, &play("confusing", &confusing));
    assert_eq!(each[..names.len()], alone[..], "{confusing:?}");
    assert_eq!(each[names.len()], "not installed");
    // The resources read the same way: installed (alpha, multi) and absent
    // (nope) as declared, so nothing is changed (the host's dnf would fail).
    changes_nothing(&lab, &play("apply", &[]));
}

/// Plans (`apply --check`) one `package` resource keeping `names` at their
/// latest version on lab host 0: the upgrades planned ("upgrade NAME ...")
/// and the processes the host started.
fn planned_upgrades(lab: &TestLab, dir: &Path, names: &[&str]) -> (Vec<String>, Processes) {
    let yaml = format!(
        "resources:\n  - package: {{names: [{}], state: latest}}\n",
        names
            .iter()
            .map(|n| format!("'{n}'"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let pb = common::play(dir, &format!("latest{}", names.len()), &yaml, "");
    let tracer = Tracer::attach(lab.lab.hosts[0].pid);
    let out = lab
        .parc()
        .args(["--json", "apply", "--check"])
        .arg(&pb)
        .output()
        .unwrap();
    let processes = tracer.finish();
    let events = common::events(&out);
    let host = common::finished(&events)[0].clone();
    let upgrades = host["outcome"]["resources"][0]["changes"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|c| c.as_str())
                .filter(|c| c.starts_with("upgrade "))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    (upgrades, processes)
}

/// On an rpm host with dnf, packages kept at their latest version ask dnf
/// about upgrades with one `dnf list --upgrades` for all of them (dnf
/// starts Python and reads its repositories' metadata each time), and plan
/// the upgrades `dnf list --upgrades NAME` asked alone offers: for names,
/// a name.arch, a name-version and a pattern (those last asked alone).
#[test]
fn dnf_latest_packages_ask_dnf_once_as_dnf_tells_each() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    package_host(&lab, &["dpkg-query", "apt-get", "apt-cache"], None);
    install_rpms(&lab);
    let root = lab.lab.hosts[0].root();
    rpm_repository(&root.join("srv/parc-rpmrepo"));
    std::fs::create_dir_all(root.join("etc/yum.repos.d")).unwrap();
    std::fs::write(
        root.join("etc/yum.repos.d/parc.repo"),
        "[parc]\nname=parc\nbaseurl=file:///srv/parc-rpmrepo\ngpgcheck=0\n",
    )
    .unwrap();
    let names = [
        "alpha",
        "multi",
        "beta",
        "alpha.noarch",
        "multi-2.0",
        "alph*",
    ];
    // The upgrades dnf offers for what is installed, asked name by name.
    let upgradable: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| {
            let asked = |command: &str| lab.ssh(0, &format!("{command} -- '{n}'")).status.success();
            asked("rpm -q") && asked("dnf -q list --upgrades")
        })
        .collect();
    assert_eq!(upgradable, ["alpha", "multi", "alpha.noarch"]);
    let dir = tempfile::tempdir().unwrap();
    let plan = |names: &[&str]| {
        let (upgrades, processes) = planned_upgrades(&lab, dir.path(), names);
        let names: Vec<String> = upgrades
            .iter()
            .filter_map(|u| u.strip_prefix("upgrade ")?.split(' ').next())
            .map(str::to_string)
            .collect();
        (names, processes)
    };
    let (upgrades, _) = plan(&names);
    assert_eq!(upgrades, upgradable);
    let (_, one) = plan(&names[..1]);
    let (_, three) = plan(&names[..3]);
    costs_as_much(&one, &three);
}

/// On an rpm host with zypper, packages kept at their latest version are
/// looked up in one `zypper list-updates` (which lists every update,
/// whatever it is asked), and the upgrades planned are those zypper's table
/// lists.
#[test]
fn zypper_latest_packages_read_one_list_of_updates() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    package_host(
        &lab,
        &["dpkg-query", "apt-get", "apt-cache", "dnf", "pacman"],
        None,
    );
    let root = lab.lab.hosts[0].root();
    // zypper reads rpm's database where rpm keeps it on SUSE, not in
    // Debian's ~/.rpmdb.
    std::fs::write(root.join("root/.rpmmacros"), "%_dbpath /var/lib/rpm\n").unwrap();
    install_rpms(&lab);
    rpm_repository(&root.join("srv/parc-rpmrepo"));
    std::fs::create_dir_all(root.join("etc/zypp/repos.d")).unwrap();
    std::fs::write(
        root.join("etc/zypp/repos.d/parc.repo"),
        "[parc]\nname=parc\nbaseurl=file:///srv/parc-rpmrepo\nenabled=1\ngpgcheck=0\nautorefresh=1\n",
    )
    .unwrap();
    // What zypper's table lists (its Name column).
    let table = lab.ssh(0, "zypper -n -q list-updates");
    let listed: Vec<String> = String::from_utf8_lossy(&table.stdout)
        .lines()
        .filter_map(|l| Some(l.split('|').nth(2)?.trim().to_string()))
        .filter(|n| n != "Name")
        .collect();
    assert_eq!(listed, ["alpha", "multi"]);
    let dir = tempfile::tempdir().unwrap();
    let names = ["alpha", "multi", "beta"];
    let (upgrades, three) = planned_upgrades(&lab, dir.path(), &names);
    let upgraded: Vec<&str> = upgrades
        .iter()
        .filter_map(|u| u.strip_prefix("upgrade ")?.split(' ').next())
        .collect();
    assert_eq!(upgraded, listed);
    let (_, one) = planned_upgrades(&lab, dir.path(), &names[..1]);
    costs_as_much(&one, &three);
}

/// On a host whose packages are pacman's, the packages a probe or a
/// verification reads come from one `pacman -Q` when all are installed,
/// and one `pacman -T` more for those that are not, and read as `pacman -Q
/// NAME` asked alone tells it: names, names a package provides (with a
/// version or not), a `local/` name, missing ones. The database is written
/// as pacman keeps it (a desc file a package); pacman reads it.
#[test]
fn pacman_packages_are_read_together_as_pacman_tells_each() {
    common::require_root_and_sshd();
    assert!(
        std::process::Command::new("pacman")
            .arg("--version")
            .output()
            .is_ok(),
        "this test needs pacman (apt-get install pacman-package-manager; scripts/install-deps installs it)"
    );
    let lab = TestLab::start(1);
    package_host(&lab, &["dpkg-query", "apt-get", "rpm", "dnf"], None);
    let local = lab.lab.hosts[0].root().join("var/lib/pacman/local");
    std::fs::create_dir_all(&local).unwrap();
    std::fs::write(local.join("ALPM_DB_VERSION"), "9\n").unwrap();
    for (name, version, provides) in [
        ("alpha", "1.2-3", "alpha-virt"),
        ("beta-x", "2:0.1-1", ""),
        ("gamma", "5-1", "virt=3"),
    ] {
        let entry = local.join(format!("{name}-{version}"));
        std::fs::create_dir_all(&entry).unwrap();
        std::fs::write(
            entry.join("desc"),
            format!(
                "%NAME%\n{name}\n\n%VERSION%\n{version}\n\n%ARCH%\nany\n\n%PROVIDES%\n{provides}\n\n"
            ),
        )
        .unwrap();
        std::fs::write(entry.join("files"), "").unwrap();
    }
    let names = [
        "alpha",
        "nope",
        "virt",
        "beta-x",
        "alpha-virt",
        "gamma>=4",
        "gamma>9",
        "local/alpha",
        "gone",
    ];
    let alone = asked_alone(&lab, "pacman -Q", &names, |l| {
        l.split_once(' ').map_or(l, |(_, v)| v)
    });
    assert_eq!(alone[2], "5-1", "virt is gamma's");
    let dir = tempfile::tempdir().unwrap();
    let resources =
        "  - package: {names: [alpha, gamma]}\n  - package: {name: nope, state: absent}\n";
    let play = |name: &str, names: &[&str]| package_tests(dir.path(), name, resources, names);
    let (all, _) = package_reads(&lab, &play("all", &names));
    assert_eq!(all, alone, "{names:?}");
    // Installed, every one: the cost of one; some missing: one process more.
    let (_, one) = package_reads(&lab, &play("one", &["alpha"]));
    let (_, installed) = package_reads(&lab, &play("installed", &["alpha", "beta-x", "gamma"]));
    let (_, missing) = package_reads(&lab, &play("missing", &["alpha", "nope", "beta-x", "gone"]));
    eprintln!(
        "three installed: {} processes ({}); two of four missing: {} ({})",
        installed.total(),
        installed.programs(),
        missing.total(),
        missing.programs()
    );
    costs_as_much(&one, &installed);
    assert_eq!(
        installed.total() + 1,
        missing.total(),
        "{}",
        missing.programs()
    );
    // The resources read the same way: installed (alpha, gamma) and absent
    // (nope) as declared, so nothing is changed (pacman has no repository
    // here to install from).
    changes_nothing(&lab, &play("apply", &[]));
}

/// On a host whose packages are apk's, the packages a probe or a
/// verification reads come from one `awk` over apk's database of installed
/// packages, whatever their number; a name no package there has (missing,
/// or what a package provides) is asked of apk alone. There is no apk on
/// this lab: a stand-in answers those (`apk info -e [-v] -- NAME`), and
/// counts its runs.
#[test]
fn apk_packages_are_read_from_one_pass_over_the_database() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let stand_in = "echo \"$*\" >> /root/apk-asked\n\
        case $* in 'info -e -v -- virt') echo gamma-5-r1 ;; 'info -e -- virt') ;; *) exit 1 ;; esac";
    package_host(
        &lab,
        &["dpkg-query", "apt-get", "rpm", "dnf", "pacman"],
        Some(("apk", stand_in)),
    );
    let root = lab.lab.hosts[0].root();
    std::fs::create_dir_all(root.join("lib/apk/db")).unwrap();
    std::fs::write(
        root.join("lib/apk/db/installed"),
        "C:Q1x=\nP:alpha\nV:1.2-r3\nA:x86_64\n\nP:beta=x\nV:2.0-r0\n\nP:gamma\nV:5-r1\np:virt\n\n",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let resources =
        "  - package: {names: [alpha, gamma]}\n  - package: {name: nope, state: absent}\n";
    let play = |name: &str, names: &[&str]| package_tests(dir.path(), name, resources, names);
    let (all, _) = package_reads(
        &lab,
        &play("all", &["alpha", "beta=x", "nope", "virt", "gamma"]),
    );
    assert_eq!(
        all,
        ["1.2-r3", "2.0-r0", "not installed", "gamma-5-r1", "5-r1"]
    );
    let asked = std::fs::read_to_string(root.join("root/apk-asked")).unwrap();
    assert_eq!(
        asked.lines().collect::<Vec<_>>(),
        ["info -e -- nope", "info -e -- virt", "info -e -v -- virt"],
        "apk is asked only about the names the database has no package of"
    );
    let (_, one) = package_reads(&lab, &play("one", &["alpha"]));
    let (_, three) = package_reads(&lab, &play("three", &["alpha", "beta=x", "gamma"]));
    costs_as_much(&one, &three);
    changes_nothing(&lab, &play("apply", &[]));
}

/// Stanzas of dpkg's status file: a package installed for two
/// architectures, one removed with its configuration kept, one half
/// installed, and one with an epoch whose description holds field names.
const DPKG_STANZAS: &str = "
Package: parc-multi
Status: install ok installed
Maintainer: parc <parc@example.org>
Architecture: amd64
Multi-Arch: same
Version: 1.0-1
Description: parc test package
 installed for two architectures

Package: parc-multi
Status: install ok installed
Maintainer: parc <parc@example.org>
Architecture: i386
Multi-Arch: same
Version: 1.0-1
Description: parc test package
 installed for two architectures

Package: parc-conf
Status: deinstall ok config-files
Maintainer: parc <parc@example.org>
Architecture: amd64
Version: 2.0-1
Conffiles:
 /etc/parc-conf.conf 0123456789abcdef0123456789abcdef
Description: parc test package
 removed, its configuration kept

Package: parc-half
Status: install reinstreq half-installed
Maintainer: parc <parc@example.org>
Architecture: all
Version: 3.0
Description: parc test package
 half installed

Package: parc-epoch
Status: install ok installed
Maintainer: parc <parc@example.org>
Architecture: all
Version: 1:2.0-1
Description: parc test package
 Package: parc-fake
 Status: install ok installed
 Version: 6.6
";

/// On a dpkg host, every package a probe or a verification reads comes
/// from one awk over dpkg's status file (dpkg-query loads dpkg's whole
/// database: three times the cost of the awk), and reads as `dpkg-query -W
/// NAME` asked alone tells it. Where that file is not all dpkg-query reads
/// (an update an interrupted dpkg did not merge, triggers to incorporate),
/// or a name is a pattern or names an architecture, dpkg-query is asked,
/// and answers otherwise than the file would.
#[test]
fn dpkg_packages_are_read_from_the_status_file_as_dpkg_query_tells_each() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let db = lab.lab.hosts[0].root().join("var/lib/dpkg");
    let mut status = std::fs::read_to_string(db.join("status")).unwrap();
    status.push_str(DPKG_STANZAS);
    std::fs::write(db.join("status"), status).unwrap();
    let names = [
        "coreutils",
        "parc-multi",
        "parc-conf",
        "parc-half",
        "parc-epoch",
        "parc-fake",
        "parc-nope",
    ];
    let alone = |names: &[&str]| {
        asked_alone(
            &lab,
            "dpkg-query -W -f '${db:Status-Status} ${Version}\\n'",
            names,
            |l| l.strip_prefix("installed ").unwrap_or("not installed"),
        )
    };
    let expected = alone(&names);
    assert_eq!(
        expected[1..],
        [
            "1.0-1",
            "not installed",
            "not installed",
            "1:2.0-1",
            "not installed",
            "not installed"
        ]
    );
    let dir = tempfile::tempdir().unwrap();
    let resources = "  - package: {name: coreutils}\n";
    let play = |name: &str, names: &[&str]| package_tests(dir.path(), name, resources, names);
    let (read, cost) = package_reads(&lab, &play("file", &names));
    assert_eq!(read, expected, "{names:?}");
    assert_eq!(cost.runs("dpkg-query"), 0, "{}", cost.programs());
    let (_, one) = package_reads(&lab, &play("one", &names[..1]));
    costs_as_much(&one, &cost);

    // Names dpkg-query matches otherwise than by equality.
    let patterns = ["parc-multi:i386", "parc-epo*"];
    let (read, cost) = package_reads(&lab, &play("patterns", &[&names[..], &patterns].concat()));
    assert_eq!(read, [expected.clone(), alone(&patterns)].concat());
    assert_eq!(cost.runs("dpkg-query"), 1, "{}", cost.programs());

    // State the status file does not hold yet.
    let update = "Package: parc-nope\nStatus: install ok installed\nMaintainer: parc <parc@example.org>\nArchitecture: all\nVersion: 9\nDescription: parc test package\n not merged\n";
    std::fs::write(db.join("updates/0000"), update).unwrap();
    let (read, cost) = package_reads(&lab, &play("update", &names));
    assert_eq!(read[6], "9", "parc-nope, from the update");
    assert_eq!(read, alone(&names));
    assert_eq!(cost.runs("dpkg-query"), 1, "{}", cost.programs());
    std::fs::remove_file(db.join("updates/0000")).unwrap();
    // libc-bin's ldconfig trigger, activated by parc-epoch: dpkg-query shows
    // both as waiting for triggers, neither installed.
    std::fs::write(db.join("triggers/Unincorp"), "ldconfig parc-epoch\n").unwrap();
    let triggered = [&names[..], &["libc-bin"]].concat();
    let (read, _) = package_reads(&lab, &play("triggers", &triggered));
    assert_eq!(read[4], "not installed", "parc-epoch awaits a trigger");
    assert_eq!(read[7], "not installed", "libc-bin has a trigger pending");
    assert_eq!(read, alone(&triggered));
}

/// Packages kept at their latest version ask apt about upgrades with one
/// `apt-cache policy` for all of them (two and two `sed` a package before),
/// and plan the upgrades `apt-cache policy NAME` asked alone offers.
#[test]
fn latest_packages_ask_apt_once_as_apt_tells_each() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let names = ["bash", "coreutils", "dash", "tar", "openssh-server", "g++"];
    // The upgrades apt offers, asked package by package.
    let mut offered = Vec::new();
    for name in names {
        let out = lab.ssh(0, &format!("apt-cache policy -- '{name}'"));
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.trim_start().strip_prefix(key))
                .unwrap_or("")
                .to_string()
        };
        let (installed, candidate) = (field("Installed: "), field("Candidate: "));
        if installed != "(none)"
            && !installed.is_empty()
            && candidate != "(none)"
            && candidate != installed
        {
            offered.push(format!("upgrade {name} {installed} -> {candidate}"));
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let plan = |names: &[&str]| planned_upgrades(&lab, dir.path(), names);
    let (upgrades, all) = plan(&names);
    assert_eq!(upgrades, offered);
    let (_, one) = plan(&names[..1]);
    eprintln!(
        "{} latest packages: {} processes ({})",
        names.len(),
        all.total(),
        all.programs()
    );
    costs_as_much(&one, &all);
}

/// A .deb of package `name` (no files), built by dpkg-deb in `dir`: its
/// stanza for a repository's Packages index.
fn deb_package(dir: &Path, name: &str) -> String {
    let pkg = dir.join(name);
    std::fs::create_dir_all(pkg.join("DEBIAN")).unwrap();
    std::fs::write(
        pkg.join("DEBIAN/control"),
        format!(
            "Package: {name}\nVersion: 1.0-1\nArchitecture: all\nMaintainer: parc <parc@example.org>\nDescription: parc test\n"
        ),
    )
    .unwrap();
    let deb = dir.join(format!("{name}.deb"));
    succeeds(
        std::process::Command::new("dpkg-deb")
            .args(["--root-owner-group", "--build"])
            .arg(&pkg)
            .arg(&deb),
        "dpkg-deb (apt-get install dpkg",
    );
    let bytes = std::fs::read(&deb).unwrap();
    use sha2::Digest;
    let sha256 = format!("{:x}", sha2::Sha256::digest(&bytes));
    format!(
        "Package: {name}\nVersion: 1.0-1\nArchitecture: all\nMaintainer: parc <parc@example.org>\n\
         Filename: ./{name}.deb\nSize: {}\nSHA256: {sha256}\nDescription: parc test\n\n",
        bytes.len()
    )
}

/// The packages of consecutive `package` resources are installed by one
/// `apt-get` (from a repository on the lab host, as apt reads one); when
/// that fails, each resource's packages are installed alone, so the error
/// is the resource's own, and the rollback removes what the others
/// installed.
#[test]
fn consecutive_package_resources_share_one_apt_get() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let root = lab.lab.hosts[0].root();
    let repo = root.join("srv/parc-repo");
    std::fs::create_dir_all(&repo).unwrap();
    let index: String = ["parc-pa", "parc-pb", "parc-pc", "parc-pd"]
        .iter()
        .map(|n| deb_package(&repo, n))
        .collect();
    std::fs::write(repo.join("Packages"), index).unwrap();
    // That repository alone: no network, and apt-get update is quick.
    let _ = std::fs::remove_file(root.join("etc/apt/sources.list"));
    for entry in std::fs::read_dir(root.join("etc/apt/sources.list.d")).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    std::fs::write(
        root.join("etc/apt/sources.list.d/parc.list"),
        "deb [trusted=yes] file:/srv/parc-repo ./\n",
    )
    .unwrap();
    host_runs(&lab, "apt-get update");
    let status = |name: &str| {
        let out = lab.ssh(
            0,
            &format!("dpkg-query -W -f '${{db:Status-Status}}' {name} 2>/dev/null; true"),
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let dir = tempfile::tempdir().unwrap();
    let pb = common::play(
        dir.path(),
        "three",
        "resources:\n  - package: {name: parc-pa}\n  - package: {names: [parc-pb, parc-pc]}\n",
        "",
    );
    let (host, processes) = traced_apply(&lab, &pb);
    assert_eq!(host["state"], "changed", "{host:#}");
    for name in ["parc-pa", "parc-pb", "parc-pc"] {
        assert_eq!(status(name), "installed", "{name}");
    }
    eprintln!("two package resources: {}", processes.programs());
    assert_eq!(processes.runs("apt-get"), 1, "{}", processes.programs());
    let pb = common::play(
        dir.path(),
        "failing",
        "resources:\n  - package: {name: parc-pd}\n  - package: {name: parc-none}\n",
        "  on_failure: rollback\n",
    );
    let (out, ev) = lab.apply_json(&pb);
    assert!(!out.status.success());
    let host = common::finished(&ev)[0].clone();
    assert_eq!(host["state"], "rolled_back", "{host:#}");
    let resources = host["outcome"]["resources"].as_array().unwrap();
    let failed: Vec<&str> = resources
        .iter()
        .filter(|r| r["status"] == "failed")
        .map(|r| r["resource"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["package parc-none"], "{host:#}");
    assert_ne!(status("parc-pd"), "installed", "parc-pd was removed again");
}
