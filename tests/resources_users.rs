//! Users, groups and packages on a real lab (needs root, openssh-server and
//! dpkg-deb): what lands in /etc/passwd, /etc/group, /etc/shadow, the key file
//! and dpkg's database, as the host itself sees them.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::TestLab;

const HASH: &str = "$6$parcsalt$3b1v0hJ7mQ9n2Wc8pZ5xY4kL6tR0eA1sD3fG7hJ9kL2mN4bV6cX8zQ1wE3rT5yU7iO9pA2sD4fG6hJ8kL0zX1";
const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIParcTestKeyOnlyForTheLab admin@desk";

/// A profile with one group, one user (all fields, keys), system packages
/// already installed on the lab's base system, and a local .deb.
fn profile(extra: &str) -> String {
    format!(
        r#"
resources:
  - group: {{name: parcprint, gid: 4343}}
  - user:
      name: parcadmin
      uid: 4242
      group: parcadmin
      groups: [parcprint, adm]
      shell: /bin/bash
      comment: "Parc admin"
      password: "{HASH}"
      authorized_keys: ["{KEY}"]
      exclusive_keys: true
  - user: {{name: parcnobody, state: absent}}
  - package: {{names: [coreutils, bash]}}
  - package: {{deb: parc-tool.deb}}
{extra}"#
    )
}

/// The profiles dir (with `files/parc-tool.deb` built by dpkg-deb) and a playbook.
fn setup(dir: &Path, profile: &str, play_extra: &str) -> PathBuf {
    let pkg = dir.join("build/parc-tool");
    std::fs::create_dir_all(pkg.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(pkg.join("usr/share/parc-tool")).unwrap();
    std::fs::write(
        pkg.join("DEBIAN/control"),
        "Package: parc-tool\nVersion: 1.0-1\nArchitecture: all\nMaintainer: parc <parc@example.org>\nDescription: parc lab test package\n",
    )
    .unwrap();
    std::fs::write(
        pkg.join("usr/share/parc-tool/marker"),
        "installed by parc\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("profiles/files")).unwrap();
    let built = std::process::Command::new("dpkg-deb")
        .args(["--root-owner-group", "--build"])
        .arg(&pkg)
        .arg(dir.join("profiles/files/parc-tool.deb"))
        .output()
        .expect("dpkg-deb runs (apt-get install dpkg)");
    assert!(built.status.success(), "{built:?}");
    std::fs::write(dir.join("profiles/accounts.yml"), profile).unwrap();
    std::fs::create_dir_all(dir.join("playbooks")).unwrap();
    let pb = dir.join("playbooks/play.yml");
    std::fs::write(
        &pb,
        format!("- hosts: all\n  profiles: [accounts]\n{play_extra}"),
    )
    .unwrap();
    pb
}

fn apply(lab: &TestLab, pb: &Path) -> (Output, Vec<serde_json::Value>) {
    let out = lab
        .parc()
        .arg("--json")
        .arg("apply")
        .arg(pb)
        .output()
        .unwrap();
    let ev = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    (out, ev)
}

/// The end state of each host, in host order (hosts finish in any order).
fn host_states(ev: &[serde_json::Value]) -> Vec<String> {
    let mut done: Vec<(String, String)> = ev
        .iter()
        .filter(|e| e["event"] == "host_finished")
        .map(|e| {
            let field = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (field("host"), field("state"))
        })
        .collect();
    done.sort();
    done.into_iter().map(|(_, state)| state).collect()
}

fn text(lab: &TestLab, host: usize, path: &str) -> String {
    String::from_utf8(lab.host_file(host, path).unwrap_or_default()).unwrap()
}

/// The entry for `name` in a colon-separated database file of the host.
fn entry(lab: &TestLab, host: usize, db: &str, name: &str) -> Option<String> {
    text(lab, host, db)
        .lines()
        .find(|l| l.split(':').next() == Some(name))
        .map(str::to_string)
}

/// The host's filesystem as it sees it (follows restarted hosts).
fn root(lab: &TestLab, host: usize) -> PathBuf {
    parc::lab::load(lab.dir()).unwrap().hosts[host].root()
}

fn meta(lab: &TestLab, host: usize, path: &str) -> std::fs::Metadata {
    std::fs::metadata(root(lab, host).join(path.trim_start_matches('/')))
        .unwrap_or_else(|e| panic!("host {host}: {path}: {e}"))
}

fn dpkg_status(lab: &TestLab, host: usize) -> String {
    let out = lab.ssh(
        host,
        "dpkg-query -W -f '${db:Status-Status} ${Version}' parc-tool 2>/dev/null; true",
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn accounts_keys_and_packages_converge_then_stay_put() {
    common::require_root_and_sshd();
    let lab = TestLab::start(2);
    let dir = tempfile::tempdir().unwrap();
    let pb = setup(dir.path(), &profile(""), "");

    let (out, ev) = apply(&lab, &pb);
    let all_output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{all_output}");
    assert_eq!(host_states(&ev), ["changed", "changed"], "{all_output}");
    assert!(
        !all_output.contains(HASH),
        "the password hash leaked into the output"
    );
    assert!(all_output.contains("password hash set"), "{all_output}");

    for host in 0..2 {
        let group = entry(&lab, host, "/etc/group", "parcprint").expect("group created");
        assert_eq!(group, "parcprint:x:4343:parcadmin");
        let own = entry(&lab, host, "/etc/group", "parcadmin").expect("user's own group");
        let gid: u32 = own.split(':').nth(2).unwrap().parse().unwrap();
        assert_eq!(
            entry(&lab, host, "/etc/passwd", "parcadmin").unwrap(),
            format!("parcadmin:x:4242:{gid}:Parc admin:/home/parcadmin:/bin/bash")
        );
        let adm = entry(&lab, host, "/etc/group", "adm").unwrap();
        assert!(
            adm.ends_with("parcadmin") || adm.contains("parcadmin,"),
            "{adm}"
        );
        let shadow = entry(&lab, host, "/etc/shadow", "parcadmin").unwrap();
        assert_eq!(shadow.split(':').nth(1), Some(HASH));
        assert!(entry(&lab, host, "/etc/passwd", "parcnobody").is_none());

        let keys = "/home/parcadmin/.ssh/authorized_keys";
        assert_eq!(text(&lab, host, keys), format!("{KEY}\n"));
        let (file, ssh) = (
            meta(&lab, host, keys),
            meta(&lab, host, "/home/parcadmin/.ssh"),
        );
        assert_eq!(file.mode() & 0o7777, 0o600);
        assert_eq!((file.uid(), file.gid()), (4242, gid));
        assert_eq!(ssh.mode() & 0o7777, 0o700);
        assert_eq!((ssh.uid(), ssh.gid()), (4242, gid));
        assert_eq!(meta(&lab, host, "/home/parcadmin").uid(), 4242);

        assert_eq!(dpkg_status(&lab, host), "installed 1.0-1");
        assert_eq!(
            text(&lab, host, "/usr/share/parc-tool/marker"),
            "installed by parc\n"
        );
        let pushed = std::fs::read_dir(root(&lab, host).join("var/lib/parc/packages"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(pushed, 0, "the pushed .deb is removed after dpkg -i");
    }

    // The same run again finds nothing to do.
    let (out, ev) = apply(&lab, &pb);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(host_states(&ev), ["ok", "ok"], "second run changes nothing");

    // Drift is repaired: a key file made group-readable, an extra key, a
    // user dropped from a group.
    lab.ssh(
        1,
        "chmod 644 /home/parcadmin/.ssh/authorized_keys && echo 'ssh-rsa AAAAintruder x' >> /home/parcadmin/.ssh/authorized_keys && gpasswd -d parcadmin parcprint",
    );
    let (out, ev) = apply(&lab, &pb);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(host_states(&ev), ["ok", "changed"]);
    let keys = "/home/parcadmin/.ssh/authorized_keys";
    assert_eq!(text(&lab, 1, keys), format!("{KEY}\n"));
    assert_eq!(meta(&lab, 1, keys).mode() & 0o7777, 0o600);
    assert_eq!(
        entry(&lab, 1, "/etc/group", "parcprint").unwrap(),
        "parcprint:x:4343:parcadmin"
    );
}

#[test]
fn a_failed_apply_rolls_back_accounts_and_packages() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let dir = tempfile::tempdir().unwrap();
    let failing = "  - command: {run: \"echo broken >&2; exit 7\"}\n";
    let pb = setup(dir.path(), &profile(failing), "  on_failure: rollback\n");
    let before: Vec<String> = ["/etc/passwd", "/etc/group", "/etc/shadow"]
        .iter()
        .map(|p| text(&lab, 0, p))
        .collect();

    let (out, ev) = apply(&lab, &pb);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(host_states(&ev), ["rolled_back"]);
    let after: Vec<String> = ["/etc/passwd", "/etc/group", "/etc/shadow"]
        .iter()
        .map(|p| text(&lab, 0, p))
        .collect();
    assert_eq!(before, after, "account databases are back as they were");
    assert!(
        !root(&lab, 0).join("home/parcadmin").exists(),
        "the home useradd created is gone"
    );
    assert!(
        !dpkg_status(&lab, 0).starts_with("installed"),
        "the .deb was removed again"
    );
}
