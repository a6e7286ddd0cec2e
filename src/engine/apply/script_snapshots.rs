//! The shell parc generates, shown: the probe, apply, handler, verify and
//! journal scripts a host receives for one small fixed profile, as insta
//! snapshots (`snapshots/*script_snapshots*.snap`), so that any change to
//! the generated sh shows in review, line by line. `scripts/shellcheck`
//! lints them (with the libraries put back in place of their `# @include`
//! lines, which [`expand`] proves is the script sent, byte for byte).
//!
//! Fixed inputs make them the same on every build: the profile and its
//! variables, the probed state of the host (hand-made records, as a fresh
//! Debian workstation would print them), the run id and the name of the
//! staged temp files.

use std::path::Path;

use minijinja::Value;

use super::converge::{Journal, apply_script, handler_commands, probe_script};
use super::steps::{Item, decide, render_all, steps_script};
use crate::confine::Tree;
use crate::events::ResourceStatus;
use crate::journal::{self, Fate, JOURNAL_SH};
use crate::render::{Redactor, Renderer};
use crate::resources::script::{Assembled, LIB, Record, Script};
use crate::resources::{Plan, PlanContext, Resource};
use crate::transport::quote;

/// Every kind of resource, over new and existing paths; two consecutive
/// directories and two consecutive files in one directory (batched), a
/// handler, and verification tests of several kinds.
const PROFILE: &str = r#"
resources:
  - dir: {path: /srv/kiosk, mode: "0750", owner: root, group: adm}
  - dir: {path: /srv/kiosk/conf}
  - file: {path: /srv/kiosk/conf/app.ini, content: "site={{ site }}\n", mode: "0640"}
  - file: {path: /etc/motd, template: motd.j2, notify: [refresh]}
  - file: {path: /etc/issue.net, content: "Managed by parc\n"}
  - symlink: {path: /srv/kiosk/current, target: /srv/kiosk/conf}
  - line: {path: /etc/environment, line: "KIOSK_SITE={{ site }}", regexp: "^KIOSK_SITE="}
  - group: {name: kiosk-admins}
  - user: {name: kiosk, groups: [kiosk-admins], authorized_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForSnapshotsOnly kiosk@lab"]}
  - package: {names: [htop, chromium]}
  - service: {name: ssh, state: started, enabled: true}
  - command:
      run: "update-ca-certificates"
      creates: /etc/ssl/certs/kiosk.pem
      undo: "update-ca-certificates --fresh"
handlers:
  refresh:
    command: {run: "systemctl reload ssh"}
verify:
  - file: {path: /etc/motd, contains: "{{ site }}", mode: "0644"}
  - command: {run: "test -d /srv/kiosk", exit: 0}
  - user: {name: kiosk, groups: [kiosk-admins]}
  - package: {name: htop}
  - port: {port: 22}
  - http: {url: "http://127.0.0.1/", status: 200}
"#;

const MOTD: &str = "Welcome to {{ site }}, {{ facts.hostname }}\n";

const RUN_ID: &str = "20261206T071500Z-snapshot";

/// The libraries a script carries, each shown as one `# @include` line.
fn includes() -> [(&'static str, &'static str); 3] {
    [
        (LIB, "src/resources/lib.sh"),
        (crate::verify::LIB, "src/verify/lib.sh"),
        (JOURNAL_SH, "src/journal/journal.sh"),
    ]
}

/// `script` with each library replaced by its `# @include PATH` line, and
/// the journal's restore.sh (a quoted copy of two libraries) by a word
/// naming it.
fn shown(script: &str) -> String {
    let mut text = script.replace(&quote(&journal::restore_sh()), "'[restore.sh]'");
    for (lib, path) in includes() {
        text = text.replace(lib, &format!("# @include {path}\n"));
    }
    text
}

/// [`shown`] undone (but for restore.sh): what `scripts/shellcheck` lints.
fn expand(shown: &str) -> String {
    let mut text = shown.to_string();
    for (lib, path) in includes() {
        text = text.replace(&format!("# @include {path}\n"), lib);
    }
    text
}

/// The snapshot of an assembled script: what the command line and stdin
/// carry (as comments), then the script as shown.
fn snapshot(a: &Assembled) -> String {
    let mut text = format!("# exec: {}\n", a.command());
    for member in members(&a.archive().to_vec()) {
        text.push_str(&format!("# stdin, staged: {member}\n"));
    }
    if a.payload().len() > 0 {
        text.push_str(&format!("# stdin, stash: {} bytes\n", a.payload().len()));
    }
    let whole = a.script();
    let script = shown(&whole);
    if !script.contains("'[restore.sh]'") {
        assert_eq!(expand(&script), whole, "every library is shown whole");
    }
    text.push_str(&script);
    text
}

/// The staging archive's members: path, mode, size.
fn members(archive: &[u8]) -> Vec<String> {
    if archive.is_empty() {
        return vec![];
    }
    let mut ar = tar::Archive::new(archive);
    ar.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            format!(
                "/{} {:o} {} bytes",
                e.path().unwrap().display(),
                h.mode().unwrap(),
                h.size().unwrap()
            )
        })
        .collect()
}

fn record(fields: &[(&str, &str)]) -> Record {
    let mut r = Record::default();
    for (k, v) in fields {
        r.fields.insert(k.to_string(), v.to_string());
    }
    r
}

/// What the probe of a fresh Debian workstation prints for `resource`:
/// nothing of the profile there yet, ssh installed and stopped.
fn probed(resource: &Resource) -> Record {
    let absent = |stage: &str| record(&[("type", "none"), ("stage", stage)]);
    match resource {
        // Not in the fixed profile: it has no probe of its own.
        Resource::Reboot(_) => Record::default(),
        Resource::Dir(_) => {
            let mut r = absent("/srv");
            r.fields.insert("created_from".into(), "/srv/kiosk".into());
            r
        }
        Resource::File(f) if f.path.starts_with("/etc") => absent("/etc"),
        Resource::File(_) | Resource::Symlink(_) => absent("/srv"),
        Resource::Line(_) => {
            let content = b"PATH=\"/usr/local/bin:/usr/bin:/bin\"\n";
            let sha = crate::content::sha256_hex(content);
            let mut r = record(&[
                ("type", "file"),
                ("stage", "/etc"),
                ("sha256", &sha),
                ("mode", "644"),
                ("owner", "root"),
                ("group", "root"),
                ("size", "35"),
                ("links", "1"),
            ]);
            r.blobs.insert("content".into(), content.to_vec());
            r
        }
        Resource::User(_) => record(&[
            ("tools", "shadow"),
            ("present", "no"),
            ("home", "/home/kiosk"),
            ("ssh_type", "none"),
            ("keys_type", "none"),
        ]),
        Resource::Group(_) => record(&[("tools", "shadow")]),
        Resource::Package(_) => record(&[("manager", "apt")]),
        Resource::Service(_) => record(&[
            ("manager", "systemd"),
            ("load", "loaded"),
            ("active", "inactive"),
            ("enabled", "disabled"),
        ]),
        Resource::Command(_) => Record::default(),
    }
}

/// The profile, rendered and planned against [`probed`] states.
struct Planned {
    items: Vec<Item>,
    handlers: Vec<(String, Item)>,
    profile: crate::profile::Profile,
    vars: crate::inventory::Vars,
}

fn planned(dir: &Path) -> Planned {
    std::fs::create_dir_all(dir.join("templates")).unwrap();
    std::fs::write(dir.join("kiosk.yml"), PROFILE).unwrap();
    std::fs::write(dir.join("templates/motd.j2"), MOTD).unwrap();
    let profile = crate::profile::load(&Tree::new(dir, &[]), "kiosk").unwrap();
    let vars: crate::inventory::Vars = serde_json::from_value(serde_json::json!({
        "site": "lab-east",
        "facts": {"hostname": "ws-001"},
    }))
    .unwrap();
    let ctx = Value::from_serialize(&vars);
    let renderer = Renderer::new(&profile.tree);
    let mut redactor = Redactor::default();
    let mut items = render_all(&renderer, &profile.resources, &ctx, &mut redactor).unwrap();
    let mut handlers: Vec<(String, Item)> = profile
        .handlers
        .iter()
        .map(|(name, d)| {
            let mut v =
                render_all(&renderer, std::slice::from_ref(d), &ctx, &mut redactor).unwrap();
            (name.clone(), v.remove(0))
        })
        .collect();
    let ctx = PlanContext { diff: false };
    for item in items.iter_mut().chain(handlers.iter_mut().map(|(_, i)| i)) {
        let record = probed(&item.resource);
        let mut error = None;
        decide(item, &record, &ctx, false, &mut error);
        assert!(error.is_none(), "{}: {error:?}", item.label);
        assert!(
            matches!(item.plan, Some(Plan::Change(_) | Plan::Unknown(_))),
            "{} changes",
            item.label
        );
        assert_ne!(item.report.status, ResourceStatus::Failed);
    }
    Planned {
        items,
        handlers,
        profile,
        vars,
    }
}

fn fixed(mut script: Script) -> Assembled {
    script.fix_token("0123456789abcdef");
    script.assemble()
}

#[test]
fn the_probe_script() {
    let dir = tempfile::tempdir().unwrap();
    let p = planned(dir.path());
    let tests = tests_of(&p);
    let script = probe_script(&p.items, &p.handlers, &PlanContext { diff: true }, &tests);
    insta::assert_snapshot!("probe", snapshot(&fixed(script)));
}

/// The snapshots' journal: the fixed run id, the default number kept.
fn journal_with(confirm: Option<std::time::Duration>) -> Journal<'static> {
    Journal {
        run_id: RUN_ID,
        keep: journal::DEFAULT_KEEP,
        confirm,
    }
}

#[test]
fn the_apply_script() {
    let dir = tempfile::tempdir().unwrap();
    let p = planned(dir.path());
    let pending: Vec<usize> = (0..p.items.len()).collect();
    let journal = journal_with(Some(std::time::Duration::from_secs(120)));
    let script = apply_script(&journal, &p.items, &pending, &[], &[], &[]);
    insta::assert_snapshot!("apply", snapshot(&fixed(script)));
}

/// Handlers the changes notify, run at the end of the apply exec: only the
/// tail differs from the apply script's.
#[test]
fn the_apply_script_with_its_handlers() {
    let dir = tempfile::tempdir().unwrap();
    let p = planned(dir.path());
    let pending: Vec<usize> = (0..p.items.len()).collect();
    let hitems: Vec<Item> = p.handlers.into_iter().map(|(_, i)| i).collect();
    let journal = journal_with(None);
    let script = fixed(apply_script(
        &journal,
        &p.items,
        &pending,
        &hitems,
        &[0],
        &[],
    ));
    let text = snapshot(&script);
    let tail = &text[text.find("step_h0() {").expect("the handler's step")..];
    insta::assert_snapshot!("apply_handlers", tail);
}

/// The verification tests at the end of the apply exec, after
/// `echo applied`: read again once every step ran (their batched reads come
/// after the steps), as records `vN`.
#[test]
fn the_apply_script_with_its_tests() {
    let dir = tempfile::tempdir().unwrap();
    let p = planned(dir.path());
    let pending: Vec<usize> = (0..p.items.len()).collect();
    let journal = journal_with(None);
    let tests = tests_of(&p);
    let script = apply_script(&journal, &p.items, &pending, &[], &[], &tests);
    insta::assert_snapshot!("apply_tests", snapshot(&fixed(script)));
}

#[test]
fn the_handlers_script() {
    let dir = tempfile::tempdir().unwrap();
    let p = planned(dir.path());
    let items: Vec<Item> = p.handlers.into_iter().map(|(_, i)| i).collect();
    let wanted = [0];
    let mut script = Script::new();
    journal::post_restore(&mut script, RUN_ID, &handler_commands(&items, &wanted));
    let script = steps_script(&items, &wanted, "h", script, &[]);
    insta::assert_snapshot!("handlers", snapshot(&fixed(script)));
}

/// The profile's verification tests, rendered.
fn tests_of(p: &Planned) -> Vec<crate::verify::Test> {
    let play = crate::engine::context::PlayContext {
        profile: p.profile.clone(),
        play_vars: Default::default(),
        extra_vars: Default::default(),
        secret_vars: Vec::new(),
    };
    play.render_tests(&p.vars, &mut Redactor::default())
        .unwrap()
}

#[test]
fn the_verify_script() {
    let dir = tempfile::tempdir().unwrap();
    let p = planned(dir.path());
    let script = crate::verify::probe_script(&tests_of(&p));
    insta::assert_snapshot!("verify", snapshot(&fixed(script)));
}

#[test]
fn the_journal_scripts() {
    insta::assert_snapshot!("restore.sh", shown(&journal::restore_sh()));
    for (name, script) in [
        ("rollback", journal::restore_script(RUN_ID, Fate::Rollback)),
        ("inspect", journal::inspect_script(RUN_ID)),
        ("decide", journal::decide_script(RUN_ID, Fate::Confirmed)),
    ] {
        insta::assert_snapshot!(name, snapshot(&fixed(script)));
    }
    insta::assert_snapshot!("confirm", journal::confirm_command(RUN_ID));
}
