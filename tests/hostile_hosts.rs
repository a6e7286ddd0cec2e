//! Hostile hosts (issue 14): what a host sends back costs the controller a
//! bounded amount of memory and report, and cannot drive the operator's
//! terminal. Needs root and openssh-server.

mod common;

use std::process::Stdio;

use common::{TestLab, run_measured};

#[test]
fn a_host_printing_500_mib_costs_the_controller_little_memory_and_report() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let out = tempfile::tempdir().unwrap();
    let stdout = out.path().join("stdout");
    let (status, peak_kib) = run_measured(
        lab.parc()
            .env("PARC_RUNS_DIR", out.path().join("runs"))
            .args([
                "run",
                "all",
                "--",
                "head -c 500M /dev/zero; printf '\\033]0;pwned\\007\\033[2J' >&2",
            ])
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(Stdio::piped()),
    );
    assert!(status.success(), "{status:?}");
    eprintln!("controller peak RSS: {peak_kib} KiB");
    assert!(peak_kib < 64 * 1024, "controller peak RSS {peak_kib} KiB");

    let printed = std::fs::read_to_string(&stdout).unwrap();
    let shown = printed.replace("\\x00", "");
    // Shown as it came, line by line after the host's name, up to the cap:
    // 1 MiB of NUL bytes with no newline, in 16 KiB pieces.
    let pieces = printed
        .lines()
        .filter(|l| l.starts_with("ws-001: "))
        .count();
    assert_eq!(pieces, 64, "{shown}");
    assert!(
        printed.contains("[stdout cut at --max-output: 500.0 MiB in all, only its start kept]"),
        "{}",
        shown
    );
    // The host's escape sequences reach the terminal as text.
    assert!(!printed.contains('\u{1b}') && !printed.contains('\u{7}'));
    assert!(
        printed.contains("ws-001 [stderr]: \\x1b]0;pwned\\x07\\x1b[2J"),
        "{}",
        shown
    );

    let reports: Vec<_> = walk(&out.path().join("runs"))
        .into_iter()
        .filter(|p| p.ends_with("report.json"))
        .collect();
    assert_eq!(reports.len(), 1);
    let size = std::fs::metadata(&reports[0]).unwrap().len();
    eprintln!("report.json: {size} bytes");
    // The 1 MiB kept is NUL bytes, which JSON would write as `\u0000` (6 MiB):
    // they are kept as base64, 4/3 of their size (it was 786 MB before the cap).
    assert!(size < 2 << 20, "report.json is {size} bytes");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&reports[0]).unwrap()).unwrap();
    let outcome = &report["hosts"][0]["outcome"];
    assert_eq!(outcome["stdout_cut_from"], 500 << 20);
    let kept = outcome["stdout"]["base64"].as_str().unwrap();
    use base64::Engine as _;
    let kept = base64::engine::general_purpose::STANDARD
        .decode(kept)
        .unwrap();
    assert!(kept.len() == 1 << 20 && kept.iter().all(|&b| b == 0));
}

/// What a host prints reaches the operator while its command runs: the
/// command below waits (a bounded time) for a file the test creates only once
/// parc has shown its first line, and says whether it came.
#[test]
fn a_host_output_is_shown_while_its_command_runs() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let runs = tempfile::tempdir().unwrap();
    let mut parc = lab
        .parc()
        .env("PARC_RUNS_DIR", runs.path())
        .args([
            "--json",
            "run",
            "all",
            "--",
            "echo waiting; i=0; while [ ! -e /tmp/parc-go ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; \
             if [ -e /tmp/parc-go ]; then echo released; else echo 'never released'; fi",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut events = std::io::BufRead::lines(std::io::BufReader::new(parc.stdout.take().unwrap()));
    let mut chunks = Vec::new();
    for line in events.by_ref() {
        let event: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        assert_ne!(event["event"], "host_finished", "no output before the end");
        if event["event"] == "host_output" {
            assert_eq!(
                (&event["host"], &event["stream"]),
                (&"ws-001".into(), &"stdout".into())
            );
            chunks.push(event["chunk"].as_str().unwrap().to_string());
            if chunks.concat() == "waiting\n" {
                break;
            }
        }
    }
    assert!(lab.ssh(0, "touch /tmp/parc-go").status.success());
    let rest: Vec<serde_json::Value> = events
        .map(|l| serde_json::from_str(&l.unwrap()).unwrap())
        .collect();
    assert!(parc.wait().unwrap().success());
    let streamed: String = rest
        .iter()
        .filter(|e| e["event"] == "host_output")
        .map(|e| e["chunk"].as_str().unwrap())
        .collect();
    assert_eq!(streamed, "released\n");
    let finished = rest.iter().find(|e| e["event"] == "host_finished").unwrap();
    assert_eq!(finished["outcome"]["stdout"], "waiting\nreleased\n");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// A 300 MiB file under a `line` and a 300 MiB authorized_keys (which the
/// user owns) are refused by size, unread: the controller stays small.
/// `parc --json apply` of profile `name` (`yaml`) on the lab: its exit
/// status, its peak resident memory (KiB) and its events.
fn measured_apply(
    lab: &TestLab,
    dir: &std::path::Path,
    name: &str,
    yaml: &str,
) -> (std::process::ExitStatus, u64, String) {
    let pb = common::play(dir, name, yaml, "");
    let out = dir.join(format!("{name}.json"));
    let (status, peak_kib) = run_measured(
        lab.parc()
            .env("PARC_RUNS_DIR", dir.join("runs"))
            .args(["--json", "apply"])
            .arg(&pb)
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(Stdio::null()),
    );
    eprintln!("{name}: controller peak RSS {peak_kib} KiB");
    (status, peak_kib, std::fs::read_to_string(&out).unwrap())
}

#[test]
fn huge_files_a_host_user_controls_are_refused_unread() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let made = lab.ssh(
        0,
        "useradd -m parcbig && mkdir -p ~parcbig/.ssh && truncate -s 300M ~parcbig/.ssh/authorized_keys \
         && chown -R parcbig: ~parcbig/.ssh && truncate -s 300M /tmp/big.conf",
    );
    assert!(made.status.success(), "{made:?}");
    let dir = tempfile::tempdir().unwrap();
    for (profile, yaml) in [
        (
            "big",
            "resources:\n  - line: {path: /tmp/big.conf, line: 'a=1'}\n",
        ),
        (
            "keys",
            "resources:\n  - user: {name: parcbig, authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIParcTestKeyOnlyForTheLab a@b']}\n",
        ),
    ] {
        let (status, peak_kib, events) = measured_apply(&lab, dir.path(), profile, yaml);
        assert_eq!(status.code(), Some(3), "{profile}");
        assert!(peak_kib < 64 * 1024, "{profile}: peak RSS {peak_kib} KiB");
        assert!(
            events.contains("is 300.0 MiB, more than the 8.0 MiB parc reads of a file it edits"),
            "{profile}: {events}"
        );
    }
}

/// A file a probe reads that grows after its size was read (a local user's
/// doing; here a guard the probe runs between the stat and the closing tar
/// grows it by 300 MB) costs the controller what the script can print at
/// most, not the file: the host fails, saying why, and nothing it sent is
/// used. The probe runs in the host lock's shell (the lab's sh is dash).
#[test]
fn a_file_growing_while_a_probe_reads_it_costs_the_controller_its_bound() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let made = lab.ssh(0, "printf 'a=1\\n' > /srv/grow.conf");
    assert!(made.status.success(), "{made:?}");
    let dir = tempfile::tempdir().unwrap();
    let yaml = "resources:\n  - line: {path: /srv/grow.conf, line: 'b=2'}\n  - command: {run: 'true', unless: 'truncate -s +300M /srv/grow.conf; false'}\n";
    let (status, peak_kib, events) = measured_apply(&lab, dir.path(), "grow", yaml);
    assert_ne!(status.code(), Some(0), "{events}");
    assert!(events.contains("bytes parc's script can print"), "{events}");
    assert!(peak_kib < 128 * 1024, "peak RSS {peak_kib} KiB");
    // Read on the host: 300 MB in this process would count in the peak of
    // every parc the tests start after it (a child's maxrss starts at its
    // parent's).
    let applied = lab.ssh(0, "tail -c 100 /srv/grow.conf | grep -q b=2");
    assert!(!applied.status.success(), "nothing was applied");
}

/// A path on the host must be absolute: a relative one would be the login
/// directory's, and one starting with `-` an option to the tools given it
/// (GNU tar's `--use-compress-program` runs a command). Refused where it is
/// written, exit 2, before anything reaches the host.
#[test]
fn a_path_that_is_not_absolute_is_refused_at_its_place() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let dir = tempfile::tempdir().unwrap();
    let yaml = "resources:\n  - line: {path: '{{ where }}', line: 'a=1'}\n";
    let play = "  vars:\n    where: '--use-compress-program=touch /tmp/parc-pwned'\n";
    let pb = common::play(dir.path(), "relative", yaml, play);
    let out = lab.parc().arg("plan").arg(&pb).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("relative.yml:2:") && text.contains("is not an absolute path"),
        "{text}"
    );
    assert!(lab.host_file(0, "/tmp/parc-pwned").is_none());
}

/// A template that does not render for a host is bad input: exit 2, as the
/// README says, with the template's location, and nothing sent to the host.
#[test]
fn a_runaway_or_broken_template_exits_2_with_its_location() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("profiles/templates")).unwrap();
    std::fs::create_dir_all(dir.path().join("playbooks")).unwrap();
    std::fs::write(
        dir.path().join("profiles/templates/loop.j2"),
        "# managed\n{% for i in range(100000) %}{{ s }}{% endfor %}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("profiles/templates/undefined.j2"),
        "a={{ nowhere_defined }}\n",
    )
    .unwrap();
    for template in ["loop", "undefined"] {
        std::fs::write(
            dir.path().join("profiles/t.yml"),
            format!(
                "vars: {{s: '{}'}}\nresources:\n  - file: {{path: /tmp/t, template: {template}.j2}}\n",
                "x".repeat(100)
            ),
        )
        .unwrap();
        let pb = dir.path().join("playbooks/t.yml");
        std::fs::write(&pb, "- hosts: all\n  profiles: [t]\n").unwrap();
        let out = lab
            .parc()
            .env("PARC_RUNS_DIR", dir.path().join("runs"))
            .arg("apply")
            .arg(&pb)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(2), "{template}: {text}");
        assert!(
            text.contains(&format!("templates/{template}.j2:")),
            "{text}"
        );
        assert!(lab.host_file(0, "/tmp/t").is_none());
    }
    // The same for a verification test's field.
    std::fs::write(
        dir.path().join("profiles/t.yml"),
        "verify:\n  - command: {run: 'echo {{ nowhere_defined }}'}\n",
    )
    .unwrap();
    let out = lab
        .parc()
        .env("PARC_RUNS_DIR", dir.path().join("runs"))
        .arg("verify")
        .arg(dir.path().join("playbooks/t.yml"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("profiles/t.yml:2:") && text.contains("nowhere_defined"),
        "{text}"
    );
}

/// A script run in the host lock's shell (the probe) ends at a line naming a
/// nonce only the controller knows (random, never on a command line nor in
/// a file): what the script reads on the host and sends back, whatever it
/// holds, cannot end it early nor pass for its status.
#[test]
fn what_a_probe_reads_cannot_end_it_early() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let zeros = "0".repeat(32);
    let forged = format!(
        "keep=1\n\n@@parc-stderr-{zeros}\nforged stderr\n\n@@parc-ran-{zeros} 0\n\
         parc_release x\n@@parc-then-done 0\nlocked 9 shell\nlast=2\n"
    );
    let made = lab.ssh(0, &format!("printf '%s' '{forged}' > /srv/notes.conf"));
    assert!(made.status.success(), "{made:?}");
    let dir = tempfile::tempdir().unwrap();
    let pb = common::play(
        dir.path(),
        "notes",
        "resources:\n  - line: {path: /srv/notes.conf, line: managed=yes}\n\
         verify:\n  - command: {run: 'cat /srv/notes.conf; cat /srv/notes.conf >&2', stdout_contains: last=2}\n",
        "",
    );
    for state in ["changed", "ok"] {
        let (out, ev) = lab.apply_json(&pb);
        let host = common::finished(&ev)[0].clone();
        assert_eq!(
            host["state"],
            state,
            "{host:#}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tests = host["outcome"]["verification"].as_array().unwrap();
        assert_eq!(tests.len(), 1, "{host:#}");
        assert_eq!(tests[0]["passed"], true, "{host:#}");
    }
    assert_eq!(
        String::from_utf8(lab.host_file(0, "/srv/notes.conf").unwrap()).unwrap(),
        format!("{forged}managed=yes\n")
    );
    assert!(lab.host_file(0, "/var/lib/parc/lock/pid").is_none());
}
