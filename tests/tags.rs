//! `--tags` / `--skip-tags` on a real lab host (needs root and openssh-server):
//! a tagged subset changes alone, and only the handlers its resources notify run.

mod common;

use common::TestLab;

const PROFILE: &str = r#"
resources:
  - file: {path: /etc/parc-tag-motd, content: "motd\n", tags: [motd], notify: [mark motd]}
  - file: {path: /etc/parc-tag-other, content: "other\n", notify: [mark other]}
  - file: {path: /etc/parc-tag-slow, content: "slow\n", tags: [motd, slow], notify: [mark other]}
handlers:
  mark motd:
    command: {run: "echo motd >> /etc/parc-tag-handlers"}
  mark other:
    command: {run: "echo other >> /etc/parc-tag-handlers"}
verify:
  - tags: [motd]
    file: {path: /etc/parc-tag-motd, contains: motd}
  - file: {path: /etc/parc-tag-other, contains: other}
"#;

#[test]
fn a_tagged_subset_changes_alone() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let dir = tempfile::tempdir().unwrap();
    let pb = common::play(dir.path(), "tagged", PROFILE, "");
    let run = |args: &[&str]| {
        let out = lab
            .parc()
            .current_dir(dir.path())
            .args(args)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    };
    let file = |p: &str| lab.host_file(0, p).map(|b| String::from_utf8(b).unwrap());
    let pb = pb.to_str().unwrap();

    let (code, out) = run(&["apply", pb, "--tags", "motd", "--skip-tags", "slow"]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(file("/etc/parc-tag-motd").as_deref(), Some("motd\n"));
    assert_eq!(file("/etc/parc-tag-other"), None, "untagged: not taken");
    assert_eq!(file("/etc/parc-tag-slow"), None, "skipped tag wins");
    assert_eq!(
        file("/etc/parc-tag-handlers").as_deref(),
        Some("motd\n"),
        "only the handler a resource that ran notified"
    );

    let (code, out) = run(&["verify", pb, "--on", "all", "--tags", "motd"]);
    assert_eq!(code, Some(0), "only the tagged test: {out}");
    let (code, out) = run(&["verify", pb, "--on", "all"]);
    assert_eq!(code, Some(3), "the untagged test fails: {out}");

    let (code, out) = run(&["plan", pb, "--skip-tags", "motd"]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("parc-tag-other") && !out.contains("parc-tag-slow"),
        "{out}"
    );
    assert_eq!(file("/etc/parc-tag-other"), None, "plan changes nothing");

    let (code, out) = run(&["apply", pb]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(file("/etc/parc-tag-other").as_deref(), Some("other\n"));
    assert_eq!(file("/etc/parc-tag-slow").as_deref(), Some("slow\n"));
    assert_eq!(
        file("/etc/parc-tag-handlers").as_deref(),
        Some("motd\nother\n"),
        "unchanged motd notified nothing; other ran once for two resources"
    );
}
