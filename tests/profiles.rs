//! Every standard profile converges on a lab host and is idempotent
//! (needs root and openssh-server).

mod common;

use std::path::Path;

use common::TestLab;

#[test]
fn every_standard_profile_converges_and_reapplies_cleanly() {
    common::require_root_and_sshd();
    let profiles = [
        "base-workstation",
        "office",
        "developer",
        "kiosk",
        "degraded",
    ];
    let lab = TestLab::start(profiles.len());
    let dir = tempfile::tempdir().unwrap();
    let mut plays = String::new();
    for (i, p) in profiles.iter().enumerate() {
        plays.push_str(&format!(
            "- name: {p}\n  hosts: {}\n  profiles: [{p}]\n",
            lab.lab.hosts[i].name
        ));
    }
    // A playbooks/ dir beside a link to the repository's profiles/: the layout
    // parc resolves profiles from.
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::os::unix::fs::symlink(repo.join("profiles"), dir.path().join("profiles")).unwrap();
    std::fs::create_dir(dir.path().join("playbooks")).unwrap();
    let pb = dir.path().join("playbooks/standard.yml");
    std::fs::write(&pb, plays).unwrap();
    let run = |expect: &str| {
        let out = lab
            .parc()
            .arg("--json")
            .arg("apply")
            .arg(&pb)
            .output()
            .unwrap();
        let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let done: Vec<_> = events
            .iter()
            .filter(|e| e["event"] == "host_finished")
            .collect();
        assert_eq!(done.len(), profiles.len());
        for e in &done {
            assert_eq!(e["state"], expect, "{e:#}");
        }
        out.status.code()
    };
    let first = run("changed");
    let second = run("ok");
    assert_eq!((first, second), (Some(0), Some(0)));
    // A few things each profile is for.
    let text =
        |i: usize, p: &str| String::from_utf8(lab.host_file(i, p).unwrap_or_default()).unwrap();
    assert!(text(0, "/etc/passwd").contains("localadmin:x:1500:"));
    assert!(
        text(0, "/etc/ssh/sshd_config.d/50-parc-hardening.conf")
            .contains("PasswordAuthentication no")
    );
    assert!(text(1, "/etc/cups/printers.conf").contains("<Printer canon-reception>"));
    assert!(text(2, "/etc/group").contains("developers:"));
    assert!(
        text(3, "/etc/lightdm/lightdm.conf.d/50-parc-kiosk.conf").contains("autologin-user=kiosk")
    );
    assert!(text(4, "/etc/parc/degraded").contains("DEGRADED"));
}
