//! parc reads inventories as Ansible does, shown against Ansible itself: for
//! every inventory under tests/ansible_inventory/ (one directory per case, the
//! inventory file beside its `group_vars/` and `host_vars/`), the JSON of
//! `ansible-inventory -i FILE --list` and of `parc -i FILE inventory --list`
//! must be equal once parsed. ansible-core is installed by
//! scripts/install-ansible (CI runs it); without it this test fails rather
//! than passing silently.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The one in the virtualenv scripts/install-ansible makes
/// (`$PARC_ANSIBLE_VENV`, else /opt/parc-ansible), else the one on PATH.
fn ansible_inventory() -> PathBuf {
    let venv = std::env::var_os("PARC_ANSIBLE_VENV").unwrap_or("/opt/parc-ansible".into());
    let candidates = [
        Some(Path::new(&venv).join("bin/ansible-inventory")),
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("ansible-inventory"))
                .find(|p| p.is_file())
        }),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "ansible-inventory not found: it is the oracle this test compares parc with. \
                 Install it with scripts/install-ansible (ansible-core from PyPI into the \
                 virtualenv $PARC_ANSIBLE_VENV, default /opt/parc-ansible; .ci/run does)."
            )
        })
}

/// The `--list` JSON a command prints for `inventory`, run from an empty
/// directory so that no ansible.cfg or vars directory of the caller counts.
fn list(mut cmd: Command, inventory: &Path, cwd: &Path) -> Result<Value, String> {
    let out = cmd
        .current_dir(cwd)
        .env("ANSIBLE_NOCOLOR", "1")
        .env_remove("ANSIBLE_CONFIG")
        .output()
        .map_err(|e| format!("cannot run {cmd:?}: {e}"))?;
    serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "{} gave no JSON ({e}): {}",
            inventory.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Where two `--list` outputs differ: a line per group or host.
fn differences(ansible: &Value, parc: &Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let obj = |v: &Value| v.as_object().cloned().unwrap_or_default();
    let (a, p) = (obj(ansible), obj(parc));
    let mut out = Vec::new();
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(p.keys()).collect();
    for k in keys.into_iter().filter(|k| *k != "_meta") {
        if a.get(k) != p.get(k) {
            out.push(format!(
                "group {k}: ansible {:?}, parc {:?}",
                a.get(k),
                p.get(k)
            ));
        }
    }
    let hostvars = |m: &serde_json::Map<String, Value>| {
        m.get("_meta")
            .and_then(|m| m.get("hostvars"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_else(|| empty.clone())
    };
    let (ah, ph) = (hostvars(&a), hostvars(&p));
    let hosts: std::collections::BTreeSet<&String> = ah.keys().chain(ph.keys()).collect();
    for h in hosts {
        if ah.get(h) != ph.get(h) {
            out.push(format!(
                "hostvars of {h}: ansible {}, parc {}",
                ah.get(h).map_or("none".into(), Value::to_string),
                ph.get(h).map_or("none".into(), Value::to_string)
            ));
        }
    }
    if out.is_empty() && ansible != parc {
        out.push(format!("ansible {ansible}, parc {parc}"));
    }
    out
}

/// Where the `--list` of `ansible` and of `parc` differ, named `name`, or
/// why either gave none.
fn compare(
    name: &str,
    ansible: Command,
    parc: Command,
    inventory: &Path,
    cwd: &Path,
) -> Option<String> {
    match (list(ansible, inventory, cwd), list(parc, inventory, cwd)) {
        (Ok(a), Ok(p)) => {
            let d = differences(&a, &p);
            (!d.is_empty()).then(|| format!("{name}:\n  {}", d.join("\n  ")))
        }
        (a, p) => Some(format!(
            "{name}: ansible {}, parc {}",
            a.err().unwrap_or_else(|| "ok".into()),
            p.err().unwrap_or_else(|| "ok".into())
        )),
    }
}

#[test]
fn parc_lists_every_inventory_of_the_corpus_as_ansible_inventory_does() {
    let ansible = ansible_inventory();
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ansible_inventory");
    let cwd = tempfile::tempdir().unwrap();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    let mut failures = Vec::new();
    for case in &cases {
        let files: Vec<PathBuf> = std::fs::read_dir(case)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        let [inventory] = &files[..] else {
            panic!(
                "{}: expected one inventory file beside its var directories",
                case.display()
            );
        };
        let mut a = Command::new(&ansible);
        a.arg("-i").arg(inventory).arg("--list");
        let mut p = Command::new(env!("CARGO_BIN_EXE_parc"));
        p.arg("-i").arg(inventory).args(["inventory", "--list"]);
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        failures.extend(compare(&name, a, p, inventory, cwd.path()));
    }
    let agreed = cases.len() - failures.len();
    println!(
        "parc and ansible-inventory agree on {agreed} of {} inventories",
        cases.len()
    );
    assert!(
        cases.len() >= 30,
        "the corpus has {} inventories",
        cases.len()
    );
    assert!(
        failures.is_empty(),
        "parc and ansible-inventory differ on {} of {} inventories:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// `-e` as Ansible reads it, shown against Ansible: the same arguments given
/// to `ansible-inventory --list` and to `parc inventory --list` list the same
/// variables for every host (`KEY=VALUE` strings whatever they look like,
/// several in one argument, quoted values, escapes; typed values from a
/// mapping or a file read as YAML 1.1; later over earlier, and over the
/// host's own), and both refuse an argument left open.
#[test]
fn extra_vars_are_read_as_ansible_reads_them() {
    let ansible = ansible_inventory();
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("hosts.ini");
    std::fs::write(&inventory, "[ws]\nws1 port=22 mode=0644\nws2\n").unwrap();
    let file = dir.path().join("vars.yml");
    std::fs::write(
        &file,
        "nested: {a: [1, 2]}\nversion: 1.10\nmode: 0644\nflag: yes\n",
    )
    .unwrap();
    let at_file = format!("@{}", file.display());
    let sets: Vec<Vec<&str>> = vec![
        vec!["port=2222 mode=0755", "version=1.10", "flag=true zip=01234"],
        vec![
            r#"msg="hello  world" q='it is' eq=a=b empty="#,
            r"tab=a\tb nl=a\nb",
        ],
        vec![
            "port=1",
            r#"{"port": 2, "db": {"port": 5432}}"#,
            "{mode: 0755, on: yes}",
        ],
        vec!["t={{ a | int }} u=1", r#"x="{{ b }} c" y='d e'"#],
        vec![&at_file, "version=2"],
    ];
    let cwd = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for set in &sets {
        let mut a = Command::new(&ansible);
        a.arg("-i").arg(&inventory).arg("--list");
        let mut p = Command::new(env!("CARGO_BIN_EXE_parc"));
        p.arg("-i").arg(&inventory).args(["inventory", "--list"]);
        for arg in set {
            a.args(["-e", arg]);
            p.args(["-e", arg]);
        }
        failures.extend(compare(&format!("{set:?}"), a, p, &inventory, cwd.path()));
    }
    for open in ["a='open", "b={{ x"] {
        for mut cmd in [Command::new(&ansible), {
            let mut p = Command::new(env!("CARGO_BIN_EXE_parc"));
            p.arg("inventory");
            p
        }] {
            cmd.arg("-i").arg(&inventory).args(["--list", "-e", open]);
            let ok = cmd
                .current_dir(cwd.path())
                .output()
                .unwrap()
                .status
                .success();
            if ok {
                failures.push(format!("{cmd:?} accepted `{open}`"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
