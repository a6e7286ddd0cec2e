//! `become` on a real lab host with the real sudo (needs root, openssh-server
//! and sudo): the password parc sends for hosts whose sudo asks for one must
//! reach sudo only. A host whose sudo does not ask (NOPASSWD, or credentials
//! it still holds) leaves that line on the command's stdin, where it was read
//! as the first line of parc's script, ahead of the files it carries.

mod common;

use std::path::Path;

use common::TestLab;

const PASSWORD: &str = "Become-8q1z-Canary";

/// Adds `user` to lab host 0 (the lab's key opens every account), with
/// PASSWORD as password and the sudo rights `rule` gives (`NOPASSWD: ALL`:
/// sudo never asks; `ALL`: it asks for PASSWORD).
fn sudoer(lab: &TestLab, user: &str, rule: &str) {
    let out = lab.ssh(
        0,
        &format!(
            "useradd -m {user} && echo '{user}:{PASSWORD}' | chpasswd \
             && echo '{user} ALL=(ALL) {rule}' > /etc/sudoers.d/{user} \
             && chmod 440 /etc/sudoers.d/{user}"
        ),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The lab's inventory, connecting as `user` with `become`.
fn inventory_as(lab: &TestLab, user: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(lab.inventory()).unwrap();
    let text = text.replace(
        "  user: root\n",
        &format!("  user: {user}\n  become: true\n"),
    );
    assert!(text.contains("become: true"), "{text}");
    let path = lab.dir().join(format!("inventory-{user}.yml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn clean(what: &str, text: &str) {
    assert!(
        !text.contains(PASSWORD),
        "the password leaked into {what}:\n{text}"
    );
}

/// Applies `playbook` as `user` with `become` and the password given, on a
/// host whose sudo asks for it or not: the files are what the profile says,
/// root's, and the password is in no output and no report.
fn applies_as(lab: &TestLab, user: &str, playbook: &Path) {
    let out = lab
        .parc()
        .env("PARC_INVENTORY", inventory_as(lab, user))
        .env("PARC_BECOME_PASSWORD", PASSWORD)
        .args(["--json", "apply"])
        .arg(playbook)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "as {user}: {stdout}\n{stderr}");
    clean("stdout", &stdout);
    clean("stderr", &stderr);
    let conf = lab.host_file(0, &format!("/etc/parc-{user}.conf")).unwrap();
    assert_eq!(conf, format!("written as root for {user}\n").as_bytes());
    let blob = lab.host_file(0, &format!("/opt/parc-{user}.bin")).unwrap();
    assert_eq!(blob, blob_bytes());
    let owner = lab.ssh(0, &format!("stat -c %U:%G /etc/parc-{user}.conf"));
    assert_eq!(String::from_utf8_lossy(&owner.stdout), "root:root\n");
    for run in std::fs::read_dir(lab.dir().parent().unwrap().join("runs")).unwrap() {
        let report = run.unwrap().path().join("report.json");
        clean("a report", &std::fs::read_to_string(report).unwrap());
    }
}

/// Bytes no line of a script would hold: a payload shifted by a line reads
/// otherwise.
fn blob_bytes() -> Vec<u8> {
    (0..4096u32).map(|i| (i * 7 % 251) as u8).collect()
}

#[test]
fn the_become_password_reaches_sudo_only() {
    common::require_root_and_sshd();
    if std::process::Command::new("sudo")
        .arg("-V")
        .output()
        .is_err()
    {
        panic!(
            "needs sudo on this machine (the lab's hosts share its programs): scripts/install-deps installs it"
        );
    }
    let lab = TestLab::start(1);
    let dir = lab.dir().parent().unwrap().to_path_buf();
    sudoer(&lab, "trusted", "NOPASSWD: ALL");
    sudoer(&lab, "asked", "ALL");
    std::fs::create_dir_all(dir.join("profiles/files")).unwrap();
    std::fs::write(dir.join("profiles/files/blob.bin"), blob_bytes()).unwrap();
    for user in ["trusted", "asked"] {
        let yaml = format!(
            "resources:\n  - file: {{path: /etc/parc-{user}.conf, content: \"written as root for {user}\\n\"}}\n  - file: {{path: /opt/parc-{user}.bin, src: blob.bin}}\n"
        );
        let playbook = common::play(&dir, user, &yaml, "");
        applies_as(&lab, user, &playbook);
    }
}
