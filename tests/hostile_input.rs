//! Hostile input on the controller (issue 14): profile trees that try to read
//! controller files, files that never end, and what the command line says.
//! These need no lab: every refusal happens before any host is contacted.

use std::path::Path;
use std::process::{Command, Output};

fn parc(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_parc"))
        .current_dir(dir)
        .env_remove("PARC_INVENTORY")
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A playbooks/ and profiles/ layout in a fresh directory, with a stand-in
/// for /etc/shadow beside it.
fn layout(profile: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("profiles/files")).unwrap();
    std::fs::create_dir_all(root.join("profiles/templates")).unwrap();
    std::fs::create_dir_all(root.join("playbooks")).unwrap();
    std::fs::write(root.join("shadow"), "root:$6$secret:::\n").unwrap();
    std::fs::write(root.join("profiles/p.yml"), profile).unwrap();
    std::fs::write(
        root.join("playbooks/site.yml"),
        "- hosts: all\n  profiles: [p]\n",
    )
    .unwrap();
    std::fs::write(
        root.join("inventory.yml"),
        "hosts:\n  ws1: {addr: 127.0.0.1}\n",
    )
    .unwrap();
    dir
}

#[test]
fn a_src_leaving_the_profile_tree_is_refused_before_any_host() {
    let dir = layout("resources:\n  - file:\n      path: /tmp/x\n      src: ../../etc/passwd\n");
    let out = parc(dir.path(), &["plan", "playbooks/site.yml"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("profiles/p.yml:4:12: "), "{err}");
    assert!(
        err.contains("outside") && err.contains("--allow-outside"),
        "{err}"
    );
}

#[test]
fn a_symlink_in_files_pointing_out_is_refused_unless_allowed() {
    let dir = layout("resources:\n  - file: {path: /tmp/x, src: link}\n");
    std::os::unix::fs::symlink(
        dir.path().join("shadow"),
        dir.path().join("profiles/files/link"),
    )
    .unwrap();
    let out = parc(dir.path(), &["verify", "profiles/p.yml", "--on", "all"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("profiles/p.yml:2:31: "), "{err}");
    assert!(err.contains("shadow, outside"), "{err}");

    // Allowed explicitly, the same profile loads (and then finds no tests).
    let allow = dir.path().to_str().unwrap();
    let out = parc(
        dir.path(),
        &[
            "verify",
            "profiles/p.yml",
            "--on",
            "all",
            "--allow-outside",
            allow,
        ],
    );
    assert!(
        stderr(&out).contains("declares no tests"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_fifo_named_as_a_playbook_or_profile_does_not_hang() {
    let dir = layout("resources: []\n");
    for fifo in ["playbooks/fifo.yml", "profiles/fifo.yml"] {
        nix::unistd::mkfifo(&dir.path().join(fifo), nix::sys::stat::Mode::S_IRWXU).unwrap();
    }
    std::fs::write(
        dir.path().join("playbooks/site.yml"),
        "- hosts: all\n  profiles: [fifo]\n",
    )
    .unwrap();
    for args in [
        &["plan", "playbooks/fifo.yml"][..],
        &["plan", "playbooks/site.yml"][..],
    ] {
        let out = parc(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains("is a FIFO"), "{}", stderr(&out));
    }
}

#[test]
fn yaml_nested_100000_deep_is_refused_at_once_with_exit_2() {
    let n = 100_000;
    let deep = format!("resources: {}{}\n", "[".repeat(n), "]".repeat(n));
    let dir = layout(&deep);
    let out = parc(dir.path(), &["plan", "playbooks/site.yml"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("profiles/p.yml:1:"), "{err}");
    assert!(err.contains("nested more than 100 levels deep"), "{err}");

    // The same for a playbook and an inventory.
    let items = format!("{}x\n", "- ".repeat(n));
    std::fs::write(dir.path().join("playbooks/site.yml"), &items).unwrap();
    let out = parc(dir.path(), &["plan", "playbooks/site.yml"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("playbooks/site.yml:1:"),
        "{}",
        stderr(&out)
    );
    std::fs::write(
        dir.path().join("inventory.yml"),
        format!("hosts:\n  ws1: {deep}"),
    )
    .unwrap();
    let out = parc(dir.path(), &["run", "all", "--", "true"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("inventory.yml:2:"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_fifo_as_inventory_does_not_hang() {
    let dir = layout("resources: []\n");
    std::fs::remove_file(dir.path().join("inventory.yml")).unwrap();
    nix::unistd::mkfifo(
        &dir.path().join("inventory.yml"),
        nix::sys::stat::Mode::S_IRWXU,
    )
    .unwrap();
    let out = parc(dir.path(), &["run", "all", "--", "true"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("is a FIFO"), "{}", stderr(&out));
}
