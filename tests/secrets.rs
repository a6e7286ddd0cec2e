//! Secrets on a real lab (needs root and openssh-server): canary secrets used
//! everywhere a secret can hide (a path, a command, a nested map, `-e` JSON, a
//! `secret: true` file, a failing command echoing them, a verification test),
//! and not one of them, nor their upper/lower case, nor a slice of them (the
//! start of one the host's 1 MiB cut of a step's output splits included), in
//! any output parc produces.

mod common;

use std::path::Path;
use std::process::Output;

use common::TestLab;

/// A profile var listed in the play's `secret_vars`.
const PW: &str = "Canary-7f3q-Secret";
/// A leaf of a map-valued secret var (the profile's `secret_vars`).
const NESTED: &str = "Nested-9k2w-Token";
/// An item of a list under the same secret var.
const LISTED: &str = "Listed-5h1x-Item";
/// Given as `-e '{"db_password": ...}'`: secret by its name alone.
const EXTRA: &str = "Extra-4m8z-Json";
/// The content of a `secret: true` file, printed by a command.
const FILE: &str = "Fresh-3j7p-Line";
/// A secret holding a quote and a backslash, which an escaped spelling
/// (`Quo\"te\\Core...`) would show past the redactor: its tail is a canary.
const QUOTED: &str = r#"Quo"te\Core-6d2n-Mark"#;
const QUOTED_TAIL: &str = "Core-6d2n-Mark";

const PROFILE: &str = r#"
secret_vars: [vault]
vars:
  vault:
    db: {token: Nested-9k2w-Token}
    list: [Listed-5h1x-Item]
resources:
  - dir: {path: "/srv/{{ pw }}"}
  - file:
      path: /etc/app.conf
      content: "token={{ vault.db.token }}\nlisted={{ vault.list[0] }}\ndb={{ db_password }}\n"
  - file: {path: /etc/secret.conf, secret: true, content: "Fresh-3j7p-Line\n"}
  - command: {run: "echo '{{ pw | upper }}' >/dev/null"}
  - command:
      run: "head -c 1048570 /dev/zero | tr '\\0' x; echo {{ pw }}; cat /etc/secret.conf; echo {{ pw | upper }} {{ pw[1:] }} {{ vault.db.token | upper }} {{ db_password[2:] }}; echo {{ vault.list[0] | lower }} >&2; {% for t in vault.list %}echo {{ t | upper }}; {% endfor %}exit 3"
verify:
  - command: {run: "echo {{ pw | upper }} {{ vault.db.token[3:] }}; exit 1"}
  - file: {path: "/srv/{{ pw }}/{{ db_password | upper }}"}
  - command: {run: "true", stdout_contains: "{{ quoted }}"}
"#;

const PLAYBOOK: &str = "- hosts: all\n  profiles: [secrets]\n  on_failure: keep\n  secret_vars: [pw, quoted]\n  vars:\n    pw: Canary-7f3q-Secret\n    quoted: 'Quo\"te\\Core-6d2n-Mark'\n";

/// Every spelling of every canary that must not appear.
fn forbidden() -> Vec<String> {
    let mut out = Vec::new();
    for c in [PW, NESTED, LISTED, EXTRA, FILE, QUOTED, QUOTED_TAIL] {
        out.extend([
            c.to_string(),
            c.to_uppercase(),
            c.to_lowercase(),
            c[1..].to_string(),
            c[2..].to_string(),
            c[3..].to_string(),
        ]);
    }
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn assert_clean(what: &str, text: &str) {
    for f in forbidden() {
        assert!(!text.contains(&f), "`{f}` leaked into {what}:\n{text}");
    }
    // The failing command prints 1 MiB less 6 bytes of `x`, then PW: the
    // host cuts its output inside PW, whose start must not show.
    let start = format!("x{}", &PW[..6]);
    assert!(
        !text.contains(&start),
        "`{start}` (a cut PW) leaked into {what}"
    );
}

fn assert_clean_output(what: &str, out: &Output) {
    assert_clean(&format!("the stdout of {what}"), &text(&out.stdout));
    assert_clean(&format!("the stderr of {what}"), &text(&out.stderr));
}

#[test]
fn canary_secrets_appear_in_no_output() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let dir = lab.dir().parent().unwrap().to_path_buf();
    std::fs::create_dir_all(dir.join("profiles")).unwrap();
    std::fs::create_dir_all(dir.join("playbooks")).unwrap();
    std::fs::write(dir.join("profiles/secrets.yml"), PROFILE).unwrap();
    let pb = dir.join("playbooks/secrets.yml");
    std::fs::write(&pb, PLAYBOOK).unwrap();
    let pb = pb.to_str().unwrap();
    // Old contents holding secrets parc does not know any more (rotated ones):
    // only taint, not matching known values, keeps them out of a diff.
    let old = lab.ssh(
        0,
        &format!(
            "printf 'old={}\\n' >/etc/app.conf && printf 'old {} {}\\n' >/etc/secret.conf",
            PW.to_uppercase(),
            NESTED,
            NESTED.to_lowercase()
        ),
    );
    assert!(old.status.success(), "{}", text(&old.stderr));
    let extra = format!("{{\"db_password\": \"{EXTRA}\"}}");

    let plan = lab
        .parc()
        .args(["-vvv", "plan", "--diff", pb, "-e", &extra])
        .output()
        .unwrap();
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan.stderr));
    assert!(
        text(&plan.stderr).contains("<redacted>"),
        "{}\n{}",
        text(&plan.stdout),
        text(&plan.stderr)
    );
    assert_clean_output("parc plan", &plan);

    let json = lab
        .parc()
        .args(["--json", "-vvv", "apply", "--diff", pb, "-e", &extra])
        .output()
        .unwrap();
    assert_ne!(json.status.code(), Some(0), "the last command fails");
    let events = common::events(&json);
    let done = common::finished(&events);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0]["state"], "failed", "{:#?}", done[0]);
    let resources = done[0]["outcome"]["resources"].as_array().unwrap();
    assert_eq!(resources.last().unwrap()["status"], "failed");
    assert_clean_output("parc --json apply", &json);

    // The secrets did reach the host: the outputs hide them, the host has them.
    let conf = text(&lab.host_file(0, "/etc/app.conf").unwrap());
    assert!(
        conf.contains(&format!("token={NESTED}")) && conf.contains(&format!("db={EXTRA}")),
        "{conf}"
    );
    assert_eq!(
        text(&lab.host_file(0, "/etc/secret.conf").unwrap()),
        format!("{FILE}\n")
    );
    assert!(lab.ssh(0, &format!("test -d /srv/{PW}")).status.success());

    let plain = lab
        .parc()
        .args(["-vvv", "apply", "--diff", pb, "-e", &extra])
        .output()
        .unwrap();
    assert_ne!(plain.status.code(), Some(0));
    assert!(
        text(&plain.stdout).contains("exit 3") || text(&plain.stderr).contains("exit 3"),
        "the failing command ran: {}\n{}",
        text(&plain.stdout),
        text(&plain.stderr)
    );
    assert_clean_output("parc apply", &plain);

    let verify = lab
        .parc()
        .args(["-vvv", "verify", pb, "-e", &extra])
        .output()
        .unwrap();
    assert_ne!(verify.status.code(), Some(0), "the command test fails");
    assert_clean_output("parc verify", &verify);
    let verify_json = lab
        .parc()
        .args(["--json", "verify", pb, "-e", &extra])
        .output()
        .unwrap();
    assert_clean_output("parc --json verify", &verify_json);

    let recap = lab.parc().arg("report").output().unwrap();
    assert_clean_output("parc report", &recap);

    let runs = dir.join("runs");
    let mut reports = 0;
    for run in std::fs::read_dir(&runs).unwrap() {
        let run = run.unwrap().path();
        for name in ["report.json", "report.html"] {
            let path = run.join(name);
            assert_clean(&path.display().to_string(), &read(&path));
            reports += 1;
        }
    }
    assert_eq!(reports, 2 * 5, "one report per run");
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A command rendered from a secret runs with its text in its shell's
/// environment (root's alone to read), not on a command line, which every
/// local user of the host may list (`ps`, /proc/PID/cmdline) while it runs:
/// a `command` resource and a `command` test.
#[test]
fn a_running_command_shows_no_secret_to_local_users() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let dir = lab.dir().parent().unwrap().to_path_buf();
    let run = "echo {{ pw }} >/dev/null; sleep 2";
    let yaml = format!(
        "resources:\n  - command: {{run: \"{run}\"}}\nverify:\n  - command: {{run: \"{run}\"}}\n"
    );
    // A canary of its own: the lab's hosts share the machine's processes,
    // and the other test's commands name theirs.
    let secret = "Running-2c6v-Secret";
    let play = format!("  secret_vars: [pw]\n  vars:\n    pw: {secret}\n");
    let playbook = common::play(&dir, "running", &yaml, &play);
    let mut apply = lab
        .parc()
        .arg("apply")
        .arg(&playbook)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut seen = String::new();
    while apply.try_wait().unwrap().is_none() {
        let ps = lab.ssh(0, "runuser -u nobody -- ps -eo args");
        seen.push_str(&text(&ps.stdout));
    }
    assert!(apply.wait().unwrap().success());
    assert!(
        seen.matches("sleep 2").count() >= 2,
        "both commands were seen running: {seen}"
    );
    assert!(
        !seen.contains(secret),
        "a local user saw the secret in the processes: {seen}"
    );
}
