//! Hostile hosts and hostile input on a real lab (needs root and
//! openssh-server): a local user of a managed machine plants symlinks, odd
//! names and forged output, and an operator's values carry shell syntax.
//! Each attack here made parc act as root on the wrong file before it was
//! refused; every test checks the host's own files, not parc's account of them.

mod common;

use sha2::Digest;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use common::{TestLab, finished};

/// A playbook applying `profile` (the YAML of a profile) to every host,
/// keeping what a failed host changed (these tests look at it).
fn playbook(dir: &Path, profile: &str) -> PathBuf {
    common::play(dir, "hostile", profile, "  on_failure: keep\n")
}

/// The host's filesystem as it sees it.
fn root(lab: &TestLab) -> PathBuf {
    parc::lab::load(lab.dir()).unwrap().hosts[0].root()
}

fn on_host(lab: &TestLab, path: &str) -> PathBuf {
    root(lab).join(path.trim_start_matches('/'))
}

fn sh(lab: &TestLab, command: &str) {
    let out = lab.ssh(0, command);
    assert!(out.status.success(), "{command}: {out:?}");
}

/// Every error text the run reported for its one host.
fn errors(ev: &[serde_json::Value]) -> String {
    let host = finished(ev);
    assert_eq!(host.len(), 1, "{ev:?}");
    host[0].to_string()
}

/// A symlink whose target carries newlines and forged record lines: once
/// printed with `echo`, it became `type=dir` for a `dir` resource (chmod
/// through the link made a 0600 file 0755), a whole record for the resource
/// after it (which then reported "no change" and was never deployed).
#[test]
fn forged_probe_records_are_data() {
    let lab = TestLab::start(1);
    let secret = on_host(&lab, "/etc/parc-secret");
    std::fs::write(&secret, "root only\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let want = "deployed\n";
    let sha = format!("{:x}", sha2::Sha256::digest(want.as_bytes()));
    // Both forms reach the probe: a real newline, and the two characters
    // backslash-n that dash's echo turns into one.
    let forged = format!(
        "/etc/parc-secret\ntype=dir\n@@r 1\ntype=file\nsha256={sha}\nmode=644\nowner=root\ngroup=root\\n@@r 2\\ntype=file\\nsha256={sha}"
    );
    symlink(&forged, on_host(&lab, "/srv/evil")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pb = playbook(
        dir.path(),
        "resources:\n\
         \x20 - dir: {path: /srv/evil, mode: \"0755\"}\n\
         \x20 - file: {path: /etc/parc-one, content: \"deployed\\n\"}\n\
         \x20 - file: {path: /etc/parc-two, content: \"deployed\\n\"}\n",
    );
    let (out, ev) = lab.apply_json(&pb);
    let meta = std::fs::metadata(&secret).unwrap();
    assert_eq!(
        meta.permissions().mode() & 0o7777,
        0o600,
        "chmod went through the link: {out:?}"
    );
    // The dir resource is refused (a symlink stands there), and the host stops
    // there: the files after it are not deployed, and nothing says they were.
    let report = errors(&ev);
    assert!(report.contains("link"), "{report}");
    let link = std::fs::read_link(on_host(&lab, "/srv/evil")).unwrap();
    assert_eq!(link.as_os_str().as_encoded_bytes(), forged.as_bytes());
    for f in ["/etc/parc-one", "/etc/parc-two"] {
        assert!(
            !report.contains("no change") || on_host(&lab, f).exists(),
            "{f} reported unchanged but absent: {report}"
        );
    }

    // Without the refused resource, both files land: no forged record can
    // make one of them "already there".
    let pb = playbook(
        dir.path(),
        "resources:\n\
         \x20 - symlink: {path: /srv/evil, target: /etc/parc-secret, force: true}\n\
         \x20 - file: {path: /etc/parc-one, content: \"deployed\\n\"}\n\
         \x20 - file: {path: /etc/parc-two, content: \"deployed\\n\"}\n",
    );
    let (out, ev) = lab.apply_json(&pb);
    assert!(out.status.success(), "{out:?}");
    for f in ["/etc/parc-one", "/etc/parc-two"] {
        assert_eq!(
            std::fs::read_to_string(on_host(&lab, f)).unwrap_or_default(),
            want,
            "{f}: {ev:?}"
        );
    }
    assert_eq!(
        std::fs::read_link(on_host(&lab, "/srv/evil")).unwrap(),
        Path::new("/etc/parc-secret")
    );
}

/// alice links ~/.ssh/authorized_keys to /etc/shadow, with a target that
/// forges `type=file`: parc read the shadow file through the link and wrote
/// it, with the declared key appended, into a file alice owns.
#[test]
fn authorized_keys_never_read_through_a_link() {
    let lab = TestLab::start(1);
    sh(
        &lab,
        "useradd -m -s /bin/sh alice && mkdir -m 700 /home/alice/.ssh && chown alice: /home/alice/.ssh",
    );
    symlink(
        "/etc/shadow\ntype=file",
        on_host(&lab, "/home/alice/.ssh/authorized_keys"),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pb = playbook(
        dir.path(),
        "resources:\n  - user: {name: alice, authorized_keys: [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIParcKey k\"]}\n",
    );
    let (out, ev) = lab.apply_json(&pb);
    let keys = on_host(&lab, "/home/alice/.ssh/authorized_keys");
    let content = std::fs::read(&keys).unwrap_or_default();
    assert!(
        !String::from_utf8_lossy(&content).contains("root:"),
        "shadow copied into alice's file: {out:?}"
    );
    assert!(!out.status.success(), "{out:?}");
    assert!(errors(&ev).contains("symlink"), "{ev:?}");
    // What the report carries came from the probe: no shadow line either.
    assert!(!String::from_utf8_lossy(&out.stdout).contains("root:$"));
}

/// alice turns ~/.config into a link to /etc/profile.d: managing
/// ~/.config/x.sh for her created a root-run login script she owns.
#[test]
fn symlinked_parents_are_refused() {
    let lab = TestLab::start(1);
    sh(&lab, "useradd -m -s /bin/sh alice");
    let profile_d = on_host(&lab, "/etc/profile.d");
    std::fs::create_dir_all(&profile_d).unwrap();
    symlink("/etc/profile.d", on_host(&lab, "/home/alice/.config")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pb = playbook(
        dir.path(),
        "resources:\n  - file: {path: /home/alice/.config/x.sh, content: \"echo hi\\n\", owner: alice}\n",
    );
    let (out, ev) = lab.apply_json(&pb);
    assert!(!out.status.success(), "{out:?}");
    assert!(!profile_d.join("x.sh").exists(), "written through the link");
    let report = errors(&ev);
    assert!(
        report.contains("/home/alice/.config") && report.contains("unsafe"),
        "{report}"
    );

    // `follow: true` says the link is wanted.
    let pb = playbook(
        dir.path(),
        "resources:\n  - file: {path: /home/alice/.config/x.sh, content: \"echo hi\\n\", follow: true}\n",
    );
    let (out, _) = lab.apply_json(&pb);
    assert!(out.status.success(), "{out:?}");
    assert!(profile_d.join("x.sh").exists());
}

/// Files and directories given to alice in her own directories: parc checked
/// them before writing, but wrote there as root, by path. alice swaps
/// `~/.config` for a link to `/etc/xdg` and `~/.local` for one to
/// `/etc/profile.d` after parc's checks (here the profile's first command,
/// run as alice, stands for her at that moment): root gave her
/// `/etc/xdg/autostart` (every user's login programs), made
/// `/etc/xdg/new` hers, and chmod'ed a login script in `/etc/profile.d`. Made
/// as alice, each change fails where alice may not write, and the files are
/// as they were.
#[test]
fn changes_in_a_users_directories_are_made_as_that_user() {
    let lab = TestLab::start(1);
    sh(
        &lab,
        "useradd -m -s /bin/sh alice && mkdir -p /etc/xdg/autostart /etc/profile.d \
         && printf 'echo hi\\n' > /etc/profile.d/x.sh && chmod 644 /etc/profile.d/x.sh \
         && mkdir -p /home/alice/.config/autostart /home/alice/.local \
         && chown alice: /home/alice/.config /home/alice/.local \
         && cp -p /etc/profile.d/x.sh /home/alice/.local/x.sh && chown alice: /home/alice/.local/x.sh",
    );
    let swap = "mv /home/alice/.config /home/alice/.config.away && ln -s /etc/xdg /home/alice/.config \
                && mv /home/alice/.local /home/alice/.local.away && ln -s /etc/profile.d /home/alice/.local";
    let unswap = "rm /home/alice/.config /home/alice/.local && mv /home/alice/.config.away /home/alice/.config \
                  && mv /home/alice/.local.away /home/alice/.local";
    let dir = tempfile::tempdir().unwrap();
    let meta = |p: &str| std::fs::symlink_metadata(on_host(&lab, p)).unwrap();
    use std::os::unix::fs::MetadataExt;
    // Each alone: a host's apply stops at its first failure.
    for resource in [
        "dir: {path: /home/alice/.config/autostart, owner: alice, mode: '0755'}",
        "dir: {path: /home/alice/.config/new, owner: alice}",
        "file: {path: /home/alice/.local/x.sh, content: \"echo hi\\n\", owner: alice, mode: '0755'}",
    ] {
        let pb = playbook(
            dir.path(),
            &format!(
                "resources:\n  - command: {{run: {}}}\n  - {resource}\n",
                serde_json::to_string(&format!(
                    "setpriv --reuid=alice --regid=alice --init-groups sh -c '{swap}'"
                ))
                .unwrap()
            ),
        );
        let (out, ev) = lab.apply_json(&pb);
        assert_eq!(
            meta("/etc/xdg/autostart").uid(),
            0,
            "root gave /etc/xdg/autostart away: {ev:?}"
        );
        assert!(
            !on_host(&lab, "/etc/xdg/new").exists(),
            "root made /etc/xdg/new: {ev:?}"
        );
        assert_eq!(meta("/etc/profile.d/x.sh").mode() & 0o7777, 0o644, "{ev:?}");
        assert_eq!(meta("/etc/profile.d/x.sh").uid(), 0, "{ev:?}");
        assert!(!out.status.success(), "{resource}: {out:?}");
        sh(&lab, unswap);
    }

    // In place, the same profile makes alice's files hers, as she would.
    let pb = playbook(
        dir.path(),
        "resources:\n\
         \x20 - dir: {path: /home/alice/.config/autostart, owner: alice, mode: '0700'}\n\
         \x20 - dir: {path: /home/alice/.config/new, owner: alice}\n\
         \x20 - file: {path: /home/alice/.local/x.sh, content: \"echo hi\\n\", owner: alice, mode: '0755'}\n",
    );
    let (out, ev) = lab.apply_json(&pb);
    assert!(out.status.success(), "{out:?} {ev:?}");
    let alice = meta("/home/alice").uid();
    for (p, mode) in [
        ("/home/alice/.config/autostart", 0o700),
        ("/home/alice/.config/new", 0o755),
        ("/home/alice/.local/x.sh", 0o755),
    ] {
        assert_eq!(
            (meta(p).uid(), meta(p).mode() & 0o7777),
            (alice, mode),
            "{p}"
        );
    }

    // Her file's current content, for a diff, is read as her too.
    let pb = playbook(
        dir.path(),
        "resources:\n  - file: {path: /home/alice/.local/x.sh, content: \"echo bye\\n\", owner: alice, mode: '0755'}\n",
    );
    let plan = lab
        .parc()
        .args(["plan", "--diff"])
        .arg(&pb)
        .output()
        .unwrap();
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&plan.stdout),
        String::from_utf8_lossy(&plan.stderr)
    );
    assert!(
        shown.contains("-echo hi") && shown.contains("+echo bye"),
        "{shown}"
    );

    // A rollback puts them back as alice: the journal's copy of her file
    // was read as her, and is written back as her.
    let pb = common::play(
        dir.path(),
        "hostile",
        "resources:\n\
         \x20 - dir: {path: /home/alice/.config/autostart, owner: alice, mode: '0750'}\n\
         \x20 - dir: {path: /home/alice/.config/newer/deeper, owner: alice}\n\
         \x20 - file: {path: /home/alice/.local/x.sh, content: \"echo bye\\n\", owner: alice, mode: '0600'}\n\
         \x20 - command: {run: 'false'}\n",
        "  on_failure: rollback\n",
    );
    let (out, ev) = lab.apply_json(&pb);
    assert!(!out.status.success(), "{out:?}");
    assert!(format!("{ev:?}").contains("rolled_back"), "{ev:?}");
    assert_eq!(
        std::fs::read(on_host(&lab, "/home/alice/.local/x.sh")).unwrap(),
        b"echo hi\n"
    );
    for (p, mode) in [
        ("/home/alice/.config/autostart", 0o700),
        ("/home/alice/.local/x.sh", 0o755),
    ] {
        assert_eq!(
            (meta(p).uid(), meta(p).mode() & 0o7777),
            (alice, mode),
            "{p}"
        );
    }
    assert!(!on_host(&lab, "/home/alice/.config/newer").exists());
}

/// A host with no way to act as a user (Debian's busybox: no runuser, no
/// su, and a setpriv without --reuid): a change in a user's directories is
/// not made at all, rather than made as root, and the host says why.
#[test]
fn without_a_way_to_act_as_the_user_nothing_is_done_as_root() {
    let lab = TestLab::start(1);
    sh(
        &lab,
        "useradd -m -s /bin/sh carol && mkdir /home/carol/.config && chown carol: /home/carol/.config",
    );
    lab.busybox_only(0);
    let dir = tempfile::tempdir().unwrap();
    let pb = playbook(
        dir.path(),
        "resources:\n  - file: {path: /home/carol/.config/x, content: \"x\\n\", owner: carol}\n",
    );
    let (out, ev) = lab.apply_json(&pb);
    assert!(!out.status.success(), "{out:?}");
    assert!(!on_host(&lab, "/home/carol/.config/x").exists());
    assert!(
        errors(&ev).contains("cannot act as carol on this host"),
        "{ev:?}"
    );
}

/// bob's `authorized_keys` is root's (an admin copied it in; bob may read it), in bob's own
/// `~/.ssh`. bob swaps `~/.ssh` for a link to a directory of root's after
/// parc's checks (the profile's first command, run as bob, stands for him):
/// root's `chown -h` of the key file, by path, gave bob root's key file
/// there. Written as bob, the change fails where bob may not write.
#[test]
fn authorized_keys_in_a_users_directories_are_written_as_that_user() {
    let lab = TestLab::start(1);
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIParcKey k";
    sh(
        &lab,
        &format!(
            "useradd -m -s /bin/sh bob && mkdir -m 700 /home/bob/.ssh /etc/parc-root-ssh \
             && chown bob: /home/bob/.ssh \
             && echo '{key}' > /home/bob/.ssh/authorized_keys && chmod 644 /home/bob/.ssh/authorized_keys \
             && cp -p /home/bob/.ssh/authorized_keys /etc/parc-root-ssh/authorized_keys"
        ),
    );
    let swap = "mv /home/bob/.ssh /home/bob/.ssh.away && ln -s /etc/parc-root-ssh /home/bob/.ssh";
    let dir = tempfile::tempdir().unwrap();
    let user = format!("user: {{name: bob, authorized_keys: [\"{key}\"]}}");
    let pb = playbook(
        dir.path(),
        &format!(
            "resources:\n  - command: {{run: {}}}\n  - {user}\n",
            serde_json::to_string(&format!(
                "setpriv --reuid=bob --regid=bob --init-groups sh -c '{swap}'"
            ))
            .unwrap()
        ),
    );
    let (out, ev) = lab.apply_json(&pb);
    use std::os::unix::fs::MetadataExt;
    let meta = |p: &str| std::fs::symlink_metadata(on_host(&lab, p)).unwrap();
    assert_eq!(
        meta("/etc/parc-root-ssh/authorized_keys").uid(),
        0,
        "given away: {ev:?}"
    );
    assert_eq!(meta("/etc/parc-root-ssh").uid(), 0, "given away: {ev:?}");
    assert!(!out.status.success(), "{out:?}");

    // In place, bob's key file becomes his, written by him.
    sh(
        &lab,
        "rm /home/bob/.ssh && mv /home/bob/.ssh.away /home/bob/.ssh",
    );
    let pb = playbook(dir.path(), &format!("resources:\n  - {user}\n"));
    let (out, ev) = lab.apply_json(&pb);
    assert!(out.status.success(), "{out:?} {ev:?}");
    let bob = meta("/home/bob").uid();
    let keys = meta("/home/bob/.ssh/authorized_keys");
    assert_eq!((keys.uid(), keys.mode() & 0o7777), (bob, 0o600));
    assert_eq!(
        std::fs::read_to_string(on_host(&lab, "/home/bob/.ssh/authorized_keys")).unwrap(),
        format!("{key}\n")
    );
}

/// Names from a directory service (an AD-joined workstation's "domain
/// users") hold spaces: the batched `stat` printed them between the mode and
/// the size, so every field after them shifted (a file in such a group read
/// as size "users"). Its names now come last, after the numbers, whole.
#[test]
fn owner_and_group_names_with_spaces_are_read_whole() {
    let lab = TestLab::start(1);
    sh(
        &lab,
        "echo 'domain users:x:5000:' >> /etc/group \
         && echo 'ad user:x:5001:5000::/nonexistent:/bin/sh' >> /etc/passwd \
         && mkdir -p /srv/ad/d && printf 'x\\n' > /srv/ad/f \
         && chown 5001:5000 /srv/ad/f /srv/ad/d && chmod 640 /srv/ad/f && chmod 750 /srv/ad/d",
    );
    let dir = tempfile::tempdir().unwrap();
    let pb = playbook(
        dir.path(),
        "resources:\n\
         \x20 - file: {path: /srv/ad/f, content: \"x\\n\", owner: ad user, group: domain users, mode: '0640'}\n\
         \x20 - dir: {path: /srv/ad/d, owner: ad user, group: domain users, mode: '0750'}\n",
    );
    let (out, ev) = lab.apply_json(&pb);
    assert!(out.status.success(), "{out:?} {ev:?}");
    assert_eq!(finished(&ev)[0]["state"], "ok", "{ev:?}");

    // The journal keeps them whole too: a rollback gives them back.
    let pb = common::play(
        dir.path(),
        "hostile",
        "resources:\n\
         \x20 - file: {path: /srv/ad/f, content: \"y\\n\", owner: root, group: root, mode: '0600'}\n\
         \x20 - dir: {path: /srv/ad/d, owner: root, group: root, mode: '0700'}\n\
         \x20 - command: {run: 'false'}\n",
        "  on_failure: rollback\n",
    );
    let (_, ev) = lab.apply_json(&pb);
    assert_eq!(finished(&ev)[0]["state"], "rolled_back", "{ev:?}");
    use std::os::unix::fs::MetadataExt;
    for (p, mode) in [("/srv/ad/f", 0o640), ("/srv/ad/d", 0o750)] {
        let m = std::fs::symlink_metadata(on_host(&lab, p)).unwrap();
        assert_eq!(
            (m.uid(), m.gid(), m.mode() & 0o7777),
            (5001, 5000, mode),
            "{p}"
        );
    }
    assert_eq!(std::fs::read(on_host(&lab, "/srv/ad/f")).unwrap(), b"x\n");
}

/// A directory root owns but others may write in, without the sticky bit
/// (an admin's `chmod 777 /srv/drop`, a group-writable `/srv/team`): any user
/// who can write there can rename what parc checked and put their own
/// directory or link in its place between parc's look and its write. Refused
/// like a link or another user's directory, naming the directory; a sticky
/// one (/tmp) is fine, and `follow: true` says the place is trusted.
#[test]
fn writable_parents_without_the_sticky_bit_are_refused() {
    let lab = TestLab::start(1);
    sh(
        &lab,
        "mkdir -p /srv/drop/app /srv/team/app && chmod 0777 /srv/drop && chmod 2775 /srv/team \
         && mkdir -p /tmp/parc-sticky",
    );
    let dir = tempfile::tempdir().unwrap();
    for (path, unsafe_dir, how) in [
        ("/srv/drop/app/secret.conf", "/srv/drop", "others"),
        ("/srv/team/app/secret.conf", "/srv/team", "its group"),
    ] {
        for resource in [
            format!("file: {{path: {path}, content: \"k=v\\n\", mode: '0600'}}"),
            format!("line: {{path: {path}, line: 'k=v'}}"),
            format!("dir: {{path: {path}.d}}"),
            format!("symlink: {{path: {path}.link, target: /etc/hostname}}"),
        ] {
            let pb = playbook(dir.path(), &format!("resources:\n  - {resource}\n"));
            let (out, ev) = lab.apply_json(&pb);
            assert!(!out.status.success(), "{resource}: {out:?}");
            for p in [
                path.to_string(),
                format!("{path}.d"),
                format!("{path}.link"),
            ] {
                assert!(!on_host(&lab, &p).exists(), "{resource}: {p} written");
            }
            let report = errors(&ev);
            assert!(
                report.contains(&format!("unsafe path: {unsafe_dir} "))
                    && report.contains(&format!("{how} may write")),
                "{resource}: {report}"
            );
        }
    }

    // The sticky bit keeps others from renaming what is not theirs.
    let pb = playbook(
        dir.path(),
        "resources:\n  - file: {path: /tmp/parc-sticky/x, content: \"a\\n\"}\n",
    );
    let (out, _) = lab.apply_json(&pb);
    assert!(out.status.success(), "{out:?}");
    assert!(on_host(&lab, "/tmp/parc-sticky/x").exists());

    // `follow: true` says the place is trusted.
    let pb = playbook(
        dir.path(),
        "resources:\n  - file: {path: /srv/drop/app/secret.conf, content: \"k=v\\n\", follow: true}\n",
    );
    let (out, _) = lab.apply_json(&pb);
    assert!(out.status.success(), "{out:?}");
    assert!(on_host(&lab, "/srv/drop/app/secret.conf").exists());
}

/// Shell syntax in values an operator or a profile gives never runs.
#[test]
fn values_with_shell_syntax_never_run() {
    let lab = TestLab::start(1);
    let marker = on_host(&lab, "/tmp/pwned");
    let dir = tempfile::tempdir().unwrap();
    let pb = playbook(
        dir.path(),
        "resources:\n\
         \x20 - user: {name: bob, home: \"/nonexistent/$(touch /tmp/pwned)\", authorized_keys: [\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIParcKey k\"]}\n",
    );
    let (out, _) = lab.apply_json(&pb);
    assert!(!marker.exists(), "user.home ran as root: {out:?}");

    // A symlink target that looks like an option is a target.
    let pb = playbook(
        dir.path(),
        "resources:\n  - symlink: {path: /srv/opt-link, target: \"--target-directory=/tmp\"}\n",
    );
    let (out, _) = lab.apply_json(&pb);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read_link(on_host(&lab, "/srv/opt-link")).unwrap(),
        Path::new("--target-directory=/tmp")
    );

    // A run id is checked before anything is sent.
    let out = lab
        .parc()
        .args(["rollback", "x$(touch /tmp/pwned)"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(!marker.exists(), "a run id ran as root");
}

/// The hostile values: record separators (a newline, the two characters
/// backslash-n), quotes, command substitution, separators, option-like and
/// `..` words, control characters, globs, a 4 KB string.
fn payloads() -> Vec<String> {
    let mut p: Vec<String> = [
        "nl\nline",
        "back\\nslash-n",
        "it's",
        "\"dq\"",
        "$(touch /tmp/pwned)",
        "`touch /tmp/pwned`",
        "a;touch /tmp/pwned",
        "x && touch /tmp/pwned",
        "x | touch /tmp/pwned",
        "-leading-dash",
        "--target-directory=/tmp",
        "..",
        "ctl\x01\x1b[31mred\x1b]0;title\x07",
        "sp ace\ttab",
        "*glob?[a]",
        "${HOME}$PATH",
        "%s%n%d",
        "#hash",
        "~tilde",
        "ü-utf8-é",
        "@@r 0",
        "type=dir",
        "trailing-nl\n",
        "back\\slash\\",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // 4 KB, within a link target's limit (PATH_MAX, 4096 with its NUL).
    p.push("4k".repeat(2000));
    p
}

/// A YAML double-quoted scalar holding exactly `s` (JSON's escapes are YAML's).
fn yaml(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// `payload` as one path component: no `/`, at most 200 bytes, never `.` or `..`.
fn component(n: usize, payload: &str) -> String {
    let mut c = format!("{n}-{}", payload.replace('/', "_"));
    c.truncate(200);
    c
}

/// Every payload in every path, content, link target and line field: each
/// lands byte for byte, a second run finds nothing to change, the
/// verification tests of the same values pass, and nothing ran.
#[test]
fn hostile_values_land_byte_for_byte() {
    let lab = TestLab::start(1);
    let payloads = payloads();
    let mut resources = String::from("resources:\n  - dir: {path: /srv/h, mode: \"0755\"}\n");
    let mut verify = String::from("verify:\n");
    for (n, p) in payloads.iter().enumerate() {
        let c = component(n, p);
        let (file, dir, link, lines) = (
            format!("/srv/h/f{c}"),
            format!("/srv/h/d{c}"),
            format!("/srv/h/l{c}"),
            format!("/srv/h/n{c}"),
        );
        // A line is one line: its payload without newlines.
        let line = p.replace('\n', " ");
        resources.push_str(&format!(
            "  - file: {{path: {}, content: {}}}\n\
             \x20 - dir: {{path: {}}}\n\
             \x20 - symlink: {{path: {}, target: {}}}\n\
             \x20 - line: {{path: {}, line: {}}}\n",
            yaml(&file),
            yaml(p),
            yaml(&dir),
            yaml(&link),
            yaml(p),
            yaml(&lines),
            yaml(&line),
        ));
        verify.push_str(&format!(
            "  - file: {{path: {}, contains: {}}}\n\
             \x20 - file: {{path: {}, exists: true}}\n",
            yaml(&file),
            yaml(p),
            yaml(&link),
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let pb = playbook(dir.path(), &format!("{resources}{verify}"));
    let (out, ev) = lab.apply_json(&pb);
    assert!(out.status.success(), "{out:?}");
    for (n, p) in payloads.iter().enumerate() {
        let c = component(n, p);
        let file = on_host(&lab, &format!("/srv/h/f{c}"));
        assert_eq!(
            std::fs::read(&file).unwrap_or_default(),
            p.as_bytes(),
            "content of {c:?}"
        );
        assert!(on_host(&lab, &format!("/srv/h/d{c}")).is_dir(), "{c:?}");
        let link = std::fs::read_link(on_host(&lab, &format!("/srv/h/l{c}"))).unwrap();
        assert_eq!(link.as_os_str().as_encoded_bytes(), p.as_bytes(), "{c:?}");
        let lines = std::fs::read(on_host(&lab, &format!("/srv/h/n{c}"))).unwrap();
        assert_eq!(
            lines,
            format!("{}\n", p.replace('\n', " ")).as_bytes(),
            "{c:?}"
        );
    }
    assert!(!on_host(&lab, "/tmp/pwned").exists(), "a value ran");
    assert_eq!(finished(&ev)[0]["state"], "changed", "{ev:?}");

    // What the host now holds reads back as exactly what was declared.
    let (out, ev) = lab.apply_json(&pb);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(finished(&ev)[0]["state"], "ok", "{ev:?}");
    assert!(!on_host(&lab, "/tmp/pwned").exists(), "a value ran");
}

/// Account fields carry the same values to useradd: each is stored exactly
/// or refused by the host's tools with a message, and none runs.
#[test]
fn hostile_values_in_accounts_never_run() {
    let lab = TestLab::start(1);
    let dir = tempfile::tempdir().unwrap();
    for (n, p) in payloads().iter().enumerate() {
        let pb = playbook(
            dir.path(),
            &format!(
                "resources:\n  - user: {{name: hostile{n}, comment: {}, home: {}, authorized_keys: [{}]}}\n",
                yaml(p),
                yaml(&format!("/srv/homes/{}", component(n, p))),
                yaml(
                    &format!("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIParcKey {p}").replace('\n', " ")
                ),
            ),
        );
        let (out, ev) = lab.apply_json(&pb);
        assert!(!on_host(&lab, "/tmp/pwned").exists(), "{p:?} ran: {out:?}");
        let state = finished(&ev)[0]["state"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(state == "changed" || state == "failed", "{p:?}: {ev:?}");
        if state == "failed" {
            assert!(!errors(&ev).is_empty());
        }
    }
}

/// The kinds whose values the host's tools judge (package and service
/// names, command guards) and every verification kind: each payload is
/// probed, planned and verified, and none runs. A value the host cannot take
/// fails the host with a message; it never breaks the output parc reads.
#[test]
fn hostile_values_in_other_kinds_and_tests_never_run() {
    let lab = TestLab::start(1);
    let dir = tempfile::tempdir().unwrap();
    for (n, p) in payloads().iter().enumerate() {
        let y = yaml(p);
        let c = yaml(&format!("/srv/c/{}", component(n, p)));
        let pb = playbook(
            dir.path(),
            &format!(
                "resources:\n\
                 \x20 - command: {{run: \"true\", creates: {c}, removes: {c}, unless: \"false\"}}\n\
                 \x20 - group: {{name: {y}}}\n\
                 \x20 - package: {{names: [{y}]}}\n\
                 \x20 - service: {{name: {y}}}\n\
                 verify:\n\
                 \x20 - file: {{path: {c}, exists: false}}\n\
                 \x20 - command: {{run: \"printf '%s\\\\n' '@@r 0' end=yes '@@blob x 99'\", stdout_contains: {y}}}\n\
                 \x20 - user: {{name: {y}, exists: false}}\n\
                 \x20 - group: {{name: {y}, exists: false}}\n\
                 \x20 - package: {{name: {y}, installed: false}}\n\
                 \x20 - service: {{name: {y}, running: false}}\n\
                 \x20 - http: {{url: {y}, timeout: 1}}\n\
                 \x20 - dns: {{name: {y}, resolves: false}}\n\
                 \x20 - mount: {{path: {c}}}\n\
                 \x20 - kernel_param: {{name: {y}, value: {y}}}\n"
            ),
        );
        let (out, ev) = lab.apply_json(&pb);
        assert!(!on_host(&lab, "/tmp/pwned").exists(), "{p:?} ran: {out:?}");
        assert_eq!(finished(&ev).len(), 1, "{p:?}: {out:?}");
        verify_never_runs(&lab, &pb, p);
    }
}

/// The remaining string fields that reach a host: owners and groups, a
/// line's regexp, a command's directory, account shells and groups (one
/// resource per run, so that each reaches the host or is refused on its
/// own), and the fields verification tests compare on the host. Each
/// payload is refused (by parc, or by the host's tools quoting it back
/// exactly: `chown: invalid user: '$(touch /tmp/pwned)'`) or taken as a
/// value; none runs, none breaks the output parc reads back, and tests fail
/// as tests (exit 3).
#[test]
fn hostile_values_in_the_other_fields_never_run() {
    let lab = TestLab::start(1);
    let dir = tempfile::tempdir().unwrap();
    sh(&lab, "mkdir -p /srv/o");
    for (n, p) in payloads().iter().enumerate() {
        let y = yaml(p);
        let f = yaml(&format!("/srv/o/{}", component(n, p)));
        for resource in [
            format!("file: {{path: /srv/o/f, content: x, owner: {y}}}"),
            format!("file: {{path: /srv/o/f, content: x, group: {y}}}"),
            format!("dir: {{path: /srv/o/d, owner: {y}, group: {y}}}"),
            format!("line: {{path: /srv/o/l, line: x, regexp: {y}, create: true}}"),
            format!("command: {{run: \"true\", chdir: {y}}}"),
            format!("user: {{name: other{n}, shell: {y}}}"),
            format!("user: {{name: other{n}, group: {y}}}"),
            format!("user: {{name: other{n}, groups: [{y}]}}"),
        ] {
            let pb = playbook(dir.path(), &format!("resources:\n  - {resource}\n"));
            let (out, ev) = lab.apply_json(&pb);
            assert!(
                !on_host(&lab, "/tmp/pwned").exists(),
                "{resource} ran: {out:?}"
            );
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(!text.contains("output was refused"), "{resource}: {text}");
            assert_eq!(finished(&ev).len(), 1, "{resource}: {out:?}");
            if finished(&ev)[0]["state"] == "failed" {
                assert!(!errors(&ev).is_empty());
            }
        }
        let pb = playbook(
            dir.path(),
            &format!(
                "verify:\n\
                 \x20 - file: {{path: {f}, owner: {y}, group: {y}, matches: {y}, sha256: {y}}}\n\
                 \x20 - command: {{run: \"echo hi\", stdout_matches: {y}, stderr_contains: {y}}}\n\
                 \x20 - package: {{name: coreutils, version: {y}}}\n\
                 \x20 - dns: {{name: localhost, address: {y}}}\n\
                 \x20 - mount: {{path: /, fstype: {y}}}\n\
                 \x20 - user: {{name: root, groups: [{y}]}}\n\
                 \x20 - group: {{name: root, members: [{y}]}}\n\
                 \x20 - http: {{url: \"http://127.0.0.1:9/\", body_contains: {y}, timeout: 1}}\n"
            ),
        );
        verify_never_runs(&lab, &pb, p);
    }
}

/// `parc verify` of `pb`, whose tests carry `payload`: nothing ran, the
/// tests fail as tests (exit 3), never break the run or the output parc reads.
fn verify_never_runs(lab: &TestLab, pb: &Path, payload: &str) {
    let out = lab
        .parc()
        .args(["--json", "verify"])
        .arg(pb)
        .output()
        .unwrap();
    assert!(
        !on_host(lab, "/tmp/pwned").exists(),
        "{payload:?} ran: {out:?}"
    );
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "{payload:?}: {out:?}"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("output was refused"), "{payload:?}: {text}");
}

/// Variables reach a host through templates: each payload given as a
/// playbook variable and as an inventory host variable lands exactly where a
/// template puts it, and nothing runs.
#[test]
fn hostile_variables_land_through_templates() {
    let lab = TestLab::start(1);
    let dir = tempfile::tempdir().unwrap();
    // The lab's inventory, with host vars.
    let mut inventory: serde_json::Value =
        serde_norway::from_str(&std::fs::read_to_string(lab.inventory()).unwrap()).unwrap();
    let hosts = dir.path().join("inventory.yml");
    for (n, p) in payloads().iter().enumerate() {
        let pb = playbook(
            dir.path(),
            "resources:\n\
             \x20 - dir: {path: /srv/v}\n\
             \x20 - file: {path: \"/srv/v/f{{ n }}\", content: \"{{ v }}\"}\n\
             \x20 - symlink: {path: \"/srv/v/l{{ n }}\", target: \"{{ v }}\"}\n\
             \x20 - file: {path: \"/srv/v/h{{ n }}\", content: \"{{ hv }}\"}\n",
        );
        let mut play = std::fs::read_to_string(&pb).unwrap();
        play.push_str(&format!("  vars: {{n: {n}, v: {}}}\n", yaml(p)));
        std::fs::write(&pb, play).unwrap();
        // The same payload as the host's own variable in the inventory.
        inventory["hosts"]["ws-001"]["vars"] = serde_json::json!({ "hv": p });
        std::fs::write(&hosts, serde_norway::to_string(&inventory).unwrap()).unwrap();
        let out = lab
            .parc()
            .env("PARC_INVENTORY", &hosts)
            .args(["--json", "apply"])
            .arg(&pb)
            .output()
            .unwrap();
        assert!(out.status.success(), "{p:?}: {out:?}");
        assert_eq!(
            std::fs::read(on_host(&lab, &format!("/srv/v/h{n}"))).unwrap(),
            p.as_bytes(),
            "{p:?}"
        );
        assert_eq!(
            std::fs::read(on_host(&lab, &format!("/srv/v/f{n}"))).unwrap(),
            p.as_bytes(),
            "{p:?}"
        );
        let link = std::fs::read_link(on_host(&lab, &format!("/srv/v/l{n}"))).unwrap();
        assert_eq!(link.as_os_str().as_encoded_bytes(), p.as_bytes(), "{p:?}");
        assert!(!on_host(&lab, "/tmp/pwned").exists(), "{p:?} ran");
    }
}

/// `parc verify` of a playbook whose first test reads a root-only token of
/// 21 bytes through a link a user made, and whose second passes: the first
/// fails unread, saying why, and the token's size is nowhere.
fn first_not_read_second_passed(lab: &TestLab, pb: &Path) {
    let out = lab
        .parc()
        .args(["--json", "verify"])
        .arg(pb)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("21 bytes"), "{text}");
    assert!(
        text.contains("not read: a link on the way to it lies in a directory a user may change"),
        "{text}"
    );
    let ev = common::events(&out);
    let results = &finished(&ev)[0]["outcome"]["results"];
    assert_eq!(results[0]["passed"], false, "{text}");
    assert_eq!(results[1]["passed"], true, "{text}");
}

/// A link root made may point into a user's tree (`/srv/site ->
/// /home/alice/site`): followed, its target is walked one directory at a
/// time like any path, so a link alice puts in her own tree on the way is
/// not followed either (the kernel, resolving the whole target at once,
/// would follow hers).
#[test]
fn a_link_root_made_into_a_users_tree_is_walked_not_resolved_whole() {
    let lab = TestLab::start(1);
    sh(
        &lab,
        "useradd -m -s /bin/sh alice && mkdir -m 700 /etc/parc-private2 \
         && echo 'token=root-only-5521' > /etc/parc-private2/app.conf \
         && ln -s /etc/parc-private2 /home/alice/site && chown -h alice: /home/alice/site \
         && ln -s /home/alice/site /srv/site \
         && mkdir -p /home/alice/real && echo 'theme=light' > /home/alice/real/app.conf \
         && chown -R alice: /home/alice/real && ln -s ../home/alice/real /srv/real",
    );
    let dir = tempfile::tempdir().unwrap();
    let pb = playbook(
        dir.path(),
        "verify:\n\
         \x20 - file: {path: /srv/site/app.conf, contains: theme=dark}\n\
         \x20 - file: {path: /srv/real/app.conf, contains: theme=light}\n",
    );
    first_not_read_second_passed(&lab, &pb);
}

/// A `file` test of a file in alice's directories: alice swaps
/// `~/.config` for a link to a directory of root's holding a file of the
/// same name. Root read that file for the test: the test's verdict was
/// root's file's (whether it held the pattern), and a failed one gave its
/// size in the operator's report ("not found in 21 bytes"). Now the read walks from `/` one
/// directory at a time and stops at a link in a user's directory; links
/// root made in its own directories (`/lib -> usr/lib`) are still followed.
#[test]
fn a_file_test_does_not_read_through_a_link_a_user_made() {
    let lab = TestLab::start(1);
    sh(
        &lab,
        "useradd -m -s /bin/sh alice && mkdir -m 700 /etc/parc-private \
         && echo 'token=root-only-4417' > /etc/parc-private/app.conf \
         && ln -s /etc/parc-private /home/alice/.config && chown -h alice: /home/alice/.config \
         && mkdir /etc/parc-real && echo 'theme=light' > /etc/parc-real/app.conf \
         && ln -s parc-real /etc/parc-linked",
    );
    let dir = tempfile::tempdir().unwrap();
    let pb = playbook(
        dir.path(),
        "verify:\n\
         \x20 - file: {path: /home/alice/.config/app.conf, contains: theme=dark}\n\
         \x20 - file: {path: /etc/parc-linked/app.conf, contains: theme=light}\n",
    );
    first_not_read_second_passed(&lab, &pb);
}
