//! Bounded fuzzing of what parc loads from the controller (issue 14):
//! profiles, playbooks, inventories and templates, mutated from the
//! repository's own files a few thousand times with a fixed seed. Every
//! mutant must load or be refused with an error, without a panic, within a
//! generous time bound; refusals point at `file:line:column`. A handful of
//! refused mutants then go through the real binary, which must exit 2.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use parc::confine::Tree;
use parc::inventory::Inventory;
use parc::render::{Redactor, Renderer};

/// Mutants per seed file.
const ROUNDS: usize = 120;
/// A hang, not a slow case: loading any of these takes milliseconds.
const HANG: Duration = Duration::from_secs(20);

/// A small deterministic generator (xorshift), so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Fragments that mean something to YAML, minijinja or parc.
const TOKENS: &[&str] = &[
    "[",
    "]",
    "{",
    "}",
    ": ",
    "- ",
    "'",
    "\"",
    "\n",
    "\t",
    "  ",
    "#",
    "&a ",
    "*a",
    "!!binary ",
    "!file ",
    "? ",
    "|",
    ">",
    "---\n",
    "...\n",
    "{{",
    "}}",
    "{%",
    "%}",
    "{% for i in range(100000) %}",
    "{% endfor %}",
    "{% include 'x' %}",
    "{% import '/etc/passwd' as p %}",
    "{{ undefined_var }}",
    "../",
    "/etc/passwd",
    "include: [../../x]\n",
    "src: ../../etc/shadow",
    "~",
    "null",
    "-1",
    "99999999999999999999999",
    "0o777",
    "1e400",
    "\u{1b}]0;x\u{7}",
    "\0",
    "\u{feff}",
    "é",
    "\r",
    "resources:",
    "file:",
    "hosts:",
    "groups:",
    "vars:",
    "profiles:",
    "when: ",
    "notify: [x]",
];

fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(out.len() + 1);
        match rng.below(9) {
            0 => {
                let end = (at + rng.below(40)).min(out.len());
                out.drain(at..end);
            }
            1 | 2 => {
                let token = TOKENS[rng.below(TOKENS.len())].as_bytes();
                out.splice(at..at, token.iter().copied());
            }
            3 => {
                let end = (at + rng.below(80)).min(out.len());
                let copy = out[at..end].to_vec();
                let to = rng.below(out.len() + 1);
                out.splice(to..to, copy);
            }
            4 => {
                if at < out.len() {
                    out[at] = rng.next() as u8;
                }
            }
            5 => {
                // Deep nesting, some of it past the limit.
                let n = rng.below(300);
                let open = if rng.below(2) == 0 { "[" } else { "- " };
                out.splice(at..at, open.repeat(n).bytes());
            }
            6 => {
                // Re-indent a line.
                let line_start = out[..at]
                    .iter()
                    .rposition(|b| *b == b'\n')
                    .map_or(0, |i| i + 1);
                let spaces = rng.below(9);
                out.splice(line_start..line_start, std::iter::repeat_n(b' ', spaces));
            }
            7 => out.truncate(at),
            _ => {
                // Swap two lines.
                let text = String::from_utf8_lossy(&out).into_owned();
                let mut lines: Vec<&str> = text.lines().collect();
                if lines.len() > 1 {
                    let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
                    lines.swap(a, b);
                }
                out = lines.join("\n").into_bytes();
            }
        }
    }
    out
}

/// `file:line:column: ` at the start of an error, or after a prefix such
/// as "cannot read profile: " that names the file.
fn has_location(message: &str) -> bool {
    message.split(": ").any(|part| {
        let mut it = part.rsplitn(3, ':');
        let (col, line, file) = (it.next(), it.next(), it.next());
        matches!((col, line, file), (Some(c), Some(l), Some(f))
            if !f.is_empty() && c.parse::<u32>().is_ok() && l.parse::<u32>().is_ok())
    })
}

/// Run `load` on another thread: `Err` holds what went wrong as a failure
/// of the test (a panic or a hang), `Ok` the loader's own result.
fn guarded<F>(what: &str, load: F) -> Result<Result<(), String>, String>
where
    F: FnOnce() -> Result<(), String> + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(load));
        let _ = tx.send(result);
    });
    match rx.recv_timeout(HANG) {
        Ok(Ok(result)) => Ok(result),
        Ok(Err(_)) => Err(format!("{what}: panicked")),
        Err(_) => Err(format!("{what}: no answer within {HANG:?}")),
    }
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn seeds(dir: &str, ext: &str) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(repo().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(ext))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

const INVENTORIES: &[&str] = &[
    "defaults:\n  user: root\n  port: 22\nhosts:\n  ws-001: {address: 10.0.0.1, vars: {desk: 1}}\n  ws-002:\n    address: 10.0.0.2\n    port: 2222\ngroups:\n  office: {hosts: [ws-001], children: [lab], vars: {level: office}}\n  lab: {hosts: [ws-002]}\n",
    "all:\n  vars:\n    ansible_user: root\n  children:\n    office:\n      hosts:\n        ws[01:03]:\n          ansible_host: 10.0.0.1\n        desk: {ansible_host: 10.0.1.1, ansible_port: 2200}\n      vars: {proxy: 'http://p:3128'}\n",
];

/// A copy of the repository's profiles/ and playbooks/ to mutate in.
fn copy_tree(to: &Path) {
    for sub in [
        "profiles",
        "profiles/templates",
        "profiles/files",
        "playbooks",
    ] {
        std::fs::create_dir_all(to.join(sub)).unwrap();
        for entry in std::fs::read_dir(repo().join(sub)).unwrap() {
            let p = entry.unwrap().path();
            if p.is_file() {
                std::fs::copy(&p, to.join(sub).join(p.file_name().unwrap())).unwrap();
            }
        }
    }
}

#[test]
fn mutated_profiles_playbooks_inventories_and_templates_never_panic_or_hang() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().to_path_buf();
    copy_tree(&root);
    let mut rng = Rng(0x5eed_1400_cafe_f00d);
    let mut failures = Vec::new();
    let (mut cases, mut refused) = (0usize, 0usize);
    let mut check = |what: String, result: Result<Result<(), String>, String>| {
        cases += 1;
        match result {
            Err(failure) => failures.push(failure),
            Ok(Err(message)) => {
                refused += 1;
                if !has_location(&message) {
                    failures.push(format!("{what}: error without file:line:column: {message}"));
                }
            }
            Ok(Ok(())) => {}
        }
    };

    for (name, seed) in seeds("profiles", ".yml") {
        let path = root.join("profiles").join(&name);
        for round in 0..ROUNDS {
            std::fs::write(&path, mutate(&seed, &mut rng)).unwrap();
            let tree = Tree::new(&root.join("profiles"), &[]);
            let profile = name.trim_end_matches(".yml").to_string();
            check(
                format!("profile {name} round {round}"),
                guarded(&name, move || {
                    parc::profile::load(&tree, &profile)
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }),
            );
        }
        std::fs::write(&path, &seed).unwrap();
    }

    for (name, seed) in seeds("playbooks", ".yml") {
        let path = root.join("playbooks").join(&name);
        for round in 0..ROUNDS {
            std::fs::write(&path, mutate(&seed, &mut rng)).unwrap();
            let path = path.clone();
            check(
                format!("playbook {name} round {round}"),
                guarded(&name, move || {
                    parc::playbook::load(&path, &[])
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }),
            );
        }
        std::fs::write(&path, &seed).unwrap();
    }

    for (i, seed) in INVENTORIES.iter().enumerate() {
        for round in 0..ROUNDS * 4 {
            let text = String::from_utf8_lossy(&mutate(seed.as_bytes(), &mut rng)).into_owned();
            check(
                format!("inventory {i} round {round}"),
                guarded("inventory", move || {
                    Inventory::from_str(&text, Path::new("inv.yml"))
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }),
            );
        }
    }

    // Templates render for one host's variables; errors name the template.
    let vars = template_vars();
    let profile_yml = root.join("profiles/fuzz-template.yml");
    for (name, seed) in seeds("profiles/templates", ".j2") {
        let path = root.join("profiles/templates").join(&name);
        std::fs::write(
            &profile_yml,
            format!("resources:\n  - file: {{path: /x, template: {name}}}\n"),
        )
        .unwrap();
        for round in 0..ROUNDS {
            std::fs::write(&path, mutate(&seed, &mut rng)).unwrap();
            let tree = Tree::new(&root.join("profiles"), &[]);
            let vars = vars.clone();
            check(
                format!("template {name} round {round}"),
                guarded(&name, move || {
                    let profile =
                        parc::profile::load(&tree, "fuzz-template").map_err(|e| e.to_string())?;
                    let d = &profile.resources[0];
                    Renderer::new(&tree)
                        .resource(&d.resource, &d.origin, &vars, &mut Redactor::default())
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }),
            );
        }
        std::fs::write(&path, &seed).unwrap();
    }

    eprintln!("{cases} mutants, {refused} refused");
    assert!(
        cases > 2000 && refused > cases / 10,
        "{cases} cases, {refused} refused"
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Variables the standard profiles' templates use, from their own vars.
fn template_vars() -> minijinja::Value {
    let mut vars = serde_json::Map::new();
    for (name, _) in seeds("profiles", ".yml") {
        let tree = Tree::new(&repo().join("profiles"), &[]);
        if let Ok(p) = parc::profile::load(&tree, name.trim_end_matches(".yml")) {
            vars.extend(p.vars);
        }
    }
    vars.insert("inventory_hostname".into(), "ws-001".into());
    vars.insert("group_names".into(), serde_json::json!(["office"]));
    vars.insert(
        "facts".into(),
        serde_json::json!({"os": {"id": "debian", "version": "12"}, "hostname": "ws-001"}),
    );
    minijinja::Value::from_serialize(&vars)
}

/// Refused files reach the operator as exit 2 and `file:line:column`.
#[test]
fn the_command_line_exits_2_with_a_location_for_refused_files() {
    let work = tempfile::tempdir().unwrap();
    let root: PathBuf = work.path().to_path_buf();
    copy_tree(&root);
    std::fs::write(root.join("inventory.yml"), INVENTORIES[0]).unwrap();
    let bad = [
        (
            "profiles/office.yml",
            "resources:\n  - file: {path: /x, colour: red}\n",
        ),
        ("profiles/office.yml", "resources: [[[\n"),
        ("profiles/office.yml", "include: [../../etc/passwd]\n"),
        (
            "playbooks/rollout.yml",
            "- hosts: all\n  profiles: [office\n",
        ),
        (
            "playbooks/rollout.yml",
            "- hosts: all\n  profile: [office]\n",
        ),
        ("inventory.yml", "hosts:\n  a: {adress: 1}\n"),
    ];
    for (file, text) in bad {
        let seed = std::fs::read(root.join(file)).unwrap();
        std::fs::write(root.join(file), text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_parc"))
            .current_dir(&root)
            .env_remove("PARC_INVENTORY")
            .args(["plan", "playbooks/rollout.yml"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file}: {err}");
        assert!(has_location(&err) && err.contains(file), "{file}: {err}");
        std::fs::write(root.join(file), seed).unwrap();
    }
}
