use super::*;

const K1: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICA2p1UkIQ/yMAzHfnp6FGpdPToJKKyJ9zm0fRZJRCsm c1";
const K2: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINAAhSEFByIE+r3Pk1pU4pNv6znnkpHcDGUlG8Cm/i8t c2";
const EC: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBBGORk3D8cTRQiJA+hHNFX4VY292DkMV4NKfOi3bcQteaedY94in1FevEXJqvs5SMARo0REp8YnEE2s1qf7/fU4= e";
const RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDFW1VowsQeyADNuMoC/LLbFDbyOi4VA1dX8Ugk9QBzk0shjGQkG9o7mm8w3EAyi5XGTyLOGwcPN3mRvf8UHGSHLKkFnAEtpyfA1S8JrlpSIv4hY+vcp+B2OZSMe5ShjgzmMPxbpjNDR3k6HORnUWPW3SlRVvbpRfdS2bWJXq9kyw== r";

fn kh(text: &str) -> KnownHosts {
    KnownHosts::parse(text.as_bytes(), Path::new("kh")).0
}

fn bad(text: &[u8]) -> Vec<usize> {
    KnownHosts::parse(text, Path::new("kh"))
        .1
        .iter()
        .map(|b| b.line)
        .collect()
}

/// `TYPE BASE64` of a test key, without its comment.
fn key(k: &str) -> String {
    k.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

fn blob(k: &str) -> &str {
    k.split_whitespace().nth(1).unwrap()
}

fn data(k: &str) -> KeyData {
    russh::keys::PublicKey::from_openssh(k)
        .unwrap()
        .key_data()
        .clone()
}

fn check(text: &str, name: &str, k: &str) -> Verdict {
    kh(text).check(name, &data(k))
}

fn trusted(v: &Verdict) -> bool {
    matches!(v, Verdict::Trusted { .. })
}

fn files(dir: &Path, policy: HostKeyPolicy) -> HostKeyCheck {
    HostKeyCheck {
        policy,
        user_files: vec![dir.join("sub/known_hosts"), dir.join("user2")],
        global_files: vec![dir.join("global")],
        alias: None,
        hash: false,
    }
}

#[test]
fn fingerprint_matches_ssh_keygen() {
    assert_eq!(
        fingerprint(&data(K1)),
        "SHA256:JvjCDascWqH1DEC3RE+2xfvi+B1mTJEIS/73f+Z86Bw"
    );
}

#[test]
fn plain_patterns_wildcards_and_negation() {
    let k = format!(
        "# comment\n\nws-1,10.0.0.1 {}\n*.corp.example,!evil.corp.example {}\nlab-?? {}\ngarbage\n",
        key(K1),
        key(K1),
        key(K1)
    );
    assert!(matches!(
        check(&k, "ws-1", K1),
        Verdict::Trusted { line: 3, .. }
    ));
    assert!(trusted(&check(&k, "10.0.0.1", K1)));
    assert!(matches!(
        check(&k, "pc7.corp.example", K1),
        Verdict::Trusted { line: 4, .. }
    ));
    assert_eq!(check(&k, "evil.corp.example", K1), Verdict::Unknown);
    assert!(matches!(
        check(&k, "lab-07", K1),
        Verdict::Trusted { line: 5, .. }
    ));
    assert_eq!(check(&k, "lab-7", K1), Verdict::Unknown);
    assert_eq!(check(&k, "other", K1), Verdict::Unknown);
}

#[test]
fn names_compare_case_insensitively() {
    let k = format!("WS-1.Corp.EXAMPLE,!BAD.corp.example {}\n", key(K1));
    let c = HostKeyCheck::default();
    assert_eq!(c.lookup_name("ws-1.CORP.example", 22), "ws-1.corp.example");
    assert!(trusted(&check(
        &k,
        &c.lookup_name("Ws-1.corp.Example", 22),
        K1
    )));
    let k = format!("*.corp.example,!BAD.corp.example {}\n", key(K1));
    assert_eq!(
        check(&k, &lookup_name("bad.CORP.example", 22), K1),
        Verdict::Unknown
    );
    // Hashed names are hashes of the lowercase name.
    let hashed = format!("{} {}\n", hash_with_salt(&[7; 20], "ws-9"), key(K1));
    assert!(trusted(&check(&hashed, &lookup_name("WS-9", 22), K1)));
}

#[test]
fn non_standard_ports_use_brackets() {
    let k = format!("[ws-1]:2222 {}\n[10.0.0.*]:2222 {}\n", key(K1), key(K1));
    assert!(trusted(&check(&k, &lookup_name("ws-1", 2222), K1)));
    assert_eq!(check(&k, &lookup_name("ws-1", 22), K1), Verdict::Unknown);
    assert!(trusted(&check(&k, &lookup_name("10.0.0.9", 2222), K1)));
    assert_eq!(lookup_name("h", 22), "h");
    assert_eq!(lookup_name("h", 2200), "[h]:2200");
}

#[test]
fn a_non_22_port_falls_back_to_the_bare_host_only_for_an_equal_key() {
    let dir = tempfile::tempdir().unwrap();
    let c = files(dir.path(), HostKeyPolicy::Strict);
    std::fs::write(&c.global_files[0], format!("ws-1 {}\n", key(K1))).unwrap();
    assert_eq!(
        verify(&c, "ws-1", 2222, &data(K1)).unwrap(),
        Accepted::Known
    );
    // Another key under the bare name is not a change of `[ws-1]:2222`: it is new.
    let err = verify(&c, "ws-1", 2222, &data(K2)).unwrap_err();
    assert!(matches!(err, HostKeyError::Unknown { .. }), "{err}");
    let learn = HostKeyCheck {
        policy: HostKeyPolicy::AcceptNew,
        ..c.clone()
    };
    assert!(matches!(
        verify(&learn, "ws-1", 2222, &data(K2)).unwrap(),
        Accepted::Learned { .. }
    ));
    assert_eq!(
        std::fs::read_to_string(&c.user_files[0]).unwrap(),
        format!("[ws-1]:2222 {}\n", key(K2))
    );
    // An alias turns the fallback off.
    let aliased = HostKeyCheck {
        alias: Some("other".into()),
        ..c
    };
    assert!(verify(&aliased, "ws-1", 2222, &data(K1)).is_err());
}

#[test]
fn hashed_entries() {
    let line = format!(
        "{} {}\n",
        hash_with_salt(b"0123456789abcdefghij", "[ws-9]:2222"),
        key(K1)
    );
    assert!(trusted(&check(&line, "[ws-9]:2222", K1)));
    assert_eq!(check(&line, "ws-9", K1), Verdict::Unknown);
    assert!(matches!(
        check(&line, "[ws-9]:2222", K2),
        Verdict::Changed { .. }
    ));
    // A salt that is not 20 bytes, or a hash field that is not one, is a bad line.
    let short = format!(
        "|1|{}|{} {}\n",
        STANDARD.encode(b"short"),
        STANDARD.encode([0; 20]),
        key(K1)
    );
    assert_eq!(bad(short.as_bytes()), vec![1]);
    assert_eq!(bad(format!("|2|abc {}\n", key(K1)).as_bytes()), vec![1]);
}

#[test]
fn hashed_entries_from_ssh_keygen() {
    if std::process::Command::new("ssh-keygen")
        .arg("-?")
        .output()
        .is_err()
    {
        eprintln!("ssh-keygen not installed: hashed entries checked by hand only");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("kh");
    std::fs::write(&f, format!("10.9.8.7 {}\n", key(K1))).unwrap();
    let st = std::process::Command::new("ssh-keygen")
        .arg("-H")
        .arg("-f")
        .arg(&f)
        .output()
        .unwrap();
    assert!(st.status.success());
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(text.starts_with("|1|"), "{text}");
    assert!(trusted(&check(&text, "10.9.8.7", K1)));
}

#[test]
fn keys_compare_decoded_not_as_text() {
    // rsa-sha2-* lines name the RSA key.
    for name in ["ssh-rsa", "rsa-sha2-256", "rsa-sha2-512"] {
        let k = format!("ws-1 {name} {}\n", blob(RSA));
        assert!(trusted(&check(&k, "ws-1", RSA)), "{name}");
    }
    // A declared type that is not the blob's real type is a bad line, never a key.
    let lying = format!(
        "ws-1 ssh-ed25519 {}\nws-1 ecdsa-sha2-nistp384 {}\n",
        blob(RSA),
        blob(EC)
    );
    assert_eq!(bad(lying.as_bytes()), vec![1, 2]);
    assert_eq!(check(&lying, "ws-1", RSA), Verdict::Unknown);
    // Blobs that do not decode: missing padding, bad characters, trailing bytes.
    let unpadded = blob(EC).trim_end_matches('=');
    let mut trailing = STANDARD.decode(blob(K1)).unwrap();
    trailing.push(0);
    let text = format!(
        "ws-1 {} {unpadded}\nws-1 ssh-ed25519 AAAA!!!!\nws-1 ssh-ed25519 {}\n",
        EC.split(' ').next().unwrap(),
        STANDARD.encode(trailing)
    );
    assert_eq!(bad(text.as_bytes()), vec![1, 2, 3]);
    assert_eq!(check(&text, "ws-1", K1), Verdict::Unknown);
    // A comment, tabs and a CRLF ending do not matter.
    let k = format!("ws-1\t{}\t\tsome comment\r\n", key(K1));
    assert!(trusted(&check(&k, "ws-1", K1)));
}

#[test]
fn bad_lines_are_skipped_and_named_never_fatal() {
    let mut text = b"# ok\n".to_vec();
    text.extend_from_slice(b"ws-1\n"); // 2: no key
    text.extend_from_slice(b"ws-1 ssh-foo AAAA\n"); // 3: unknown type
    text.extend_from_slice(b"@bogus ws-1 ssh-ed25519 AAAA\n"); // 4: unknown marker
    text.extend_from_slice(b"ws-\xff\xfe 1 ssh-ed25519\n"); // 5: not UTF-8, broken
    text.extend_from_slice(format!("ws-1 {} ", key(K1)).as_bytes()); // 6: fine
    text.extend_from_slice(b"\xff comment\n");
    text.extend_from_slice(format!("ws-1 {}", key(K2)).as_bytes()); // 7: fine, no final newline
    assert_eq!(bad(&text), vec![2, 3, 4, 5]);
    let k = KnownHosts::parse(&text, Path::new("kh")).0;
    assert!(matches!(
        k.check("ws-1", &data(K1)),
        Verdict::Trusted { line: 6, .. }
    ));
    assert!(matches!(
        k.check("ws-1", &data(K2)),
        Verdict::Trusted { line: 7, .. }
    ));
    // An unreadable file (here a directory) is skipped, not fatal.
    let dir = tempfile::tempdir().unwrap();
    let c = HostKeyCheck {
        user_files: vec![dir.path().to_path_buf(), dir.path().join("kh")],
        ..HostKeyCheck::default()
    };
    std::fs::write(dir.path().join("kh"), format!("ws-1 {}\n", key(K1))).unwrap();
    assert_eq!(verify(&c, "ws-1", 22, &data(K1)).unwrap(), Accepted::Known);
}

#[test]
fn another_key_type_is_changed_under_every_policy() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = files(dir.path(), HostKeyPolicy::AcceptNew);
    std::fs::create_dir_all(dir.path().join("sub")).unwrap();
    std::fs::write(&c.user_files[0], format!("ws-1 {}\n", key(EC))).unwrap();
    for policy in [HostKeyPolicy::Strict, HostKeyPolicy::AcceptNew] {
        c.policy = policy;
        let err = verify(&c, "ws-1", 22, &data(K1)).unwrap_err();
        assert!(
            matches!(&err, HostKeyError::Changed(c) if c.line == 1),
            "{err}"
        );
        assert!(err.is_alarm());
    }
    assert_eq!(
        std::fs::read_to_string(&c.user_files[0]).unwrap(),
        format!("ws-1 {}\n", key(EC)),
        "accept-new learns nothing from a changed host"
    );
}

#[test]
fn changed_key_names_the_line_both_fingerprints_and_the_removal() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("known_hosts");
    std::fs::write(&f, format!("# x\n[ws-1]:2222 {}\n", key(K1))).unwrap();
    let c = HostKeyCheck {
        policy: HostKeyPolicy::AcceptNew,
        user_files: vec![f.clone()],
        ..HostKeyCheck::default()
    };
    let err = verify(&c, "ws-1", 2222, &data(K2)).unwrap_err();
    let msg = err.to_string().replace(&f.display().to_string(), "KH");
    insta::assert_snapshot!(msg);
    assert!(msg.contains("KH:2"));
    assert!(msg.contains("ssh-keygen -R '[ws-1]:2222' -f KH"));
    assert!(msg.contains(&fingerprint(&data(K1))) && msg.contains(&fingerprint(&data(K2))));
}

#[test]
fn revoked_keys_are_refused_under_every_policy_in_any_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = files(dir.path(), HostKeyPolicy::Strict);
    std::fs::write(&c.user_files[1], format!("ws-1 {}\n", key(K1))).unwrap();
    std::fs::write(&c.global_files[0], format!("@revoked ws-* {}\n", key(K1))).unwrap();
    for policy in [
        HostKeyPolicy::Strict,
        HostKeyPolicy::AcceptNew,
        HostKeyPolicy::Off,
    ] {
        c.policy = policy;
        let err = verify(&c, "ws-1", 22, &data(K1)).unwrap_err();
        assert!(
            matches!(err, HostKeyError::Revoked { line: 1, .. }),
            "{policy:?}: {err}"
        );
    }
    // Only for hosts its patterns match.
    std::fs::write(&c.user_files[1], format!("pc-1 {}\n", key(K1))).unwrap();
    c.policy = HostKeyPolicy::Strict;
    assert_eq!(verify(&c, "pc-1", 22, &data(K1)).unwrap(), Accepted::Known);
    let msg = verify(&c, "ws-1", 22, &data(K1))
        .unwrap_err()
        .to_string()
        .replace(&dir.path().display().to_string(), "DIR");
    insta::assert_snapshot!(msg);
}

#[test]
fn unknown_keys_strict_accept_new_and_off() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("sub/known_hosts");
    let mut c = files(dir.path(), HostKeyPolicy::Strict);
    let err = verify(&c, "10.1.1.1", 2222, &data(K1)).unwrap_err();
    assert!(!err.is_alarm());
    let msg = err
        .to_string()
        .replace(&dir.path().display().to_string(), "DIR");
    insta::assert_snapshot!(msg);
    c.policy = HostKeyPolicy::AcceptNew;
    assert_eq!(
        verify(&c, "10.1.1.1", 2222, &data(K1)).unwrap(),
        Accepted::Learned { file: f.clone() }
    );
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        format!("[10.1.1.1]:2222 {}\n", key(K1))
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::metadata(f.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    c.policy = HostKeyPolicy::Strict;
    assert_eq!(
        verify(&c, "10.1.1.1", 2222, &data(K1)).unwrap(),
        Accepted::Known
    );
    // A learned key still protects against a later change, but for `off`.
    c.policy = HostKeyPolicy::AcceptNew;
    assert!(matches!(
        verify(&c, "10.1.1.1", 2222, &data(K2)),
        Err(HostKeyError::Changed(_))
    ));
    c.policy = HostKeyPolicy::Off;
    assert_eq!(
        verify(&c, "10.1.1.1", 2222, &data(K2)).unwrap(),
        Accepted::Unchecked
    );
    // `off` records a new key as OpenSSH's `StrictHostKeyChecking no` does.
    assert_eq!(
        verify(&c, "10.1.1.2", 22, &data(K2)).unwrap(),
        Accepted::Learned { file: f.clone() }
    );
    let text = std::fs::read_to_string(&f).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
}

#[test]
fn accept_new_writes_what_openssh_writes() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("kh");
    std::fs::write(&f, format!("other {}", key(K2))).unwrap();
    let mut c = HostKeyCheck {
        policy: HostKeyPolicy::AcceptNew,
        user_files: vec![f.clone()],
        alias: Some("MyAlias".into()),
        ..HostKeyCheck::default()
    };
    verify(&c, "ws-1", 2222, &data(K1)).unwrap();
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        format!("other {}\nmyalias {}\n", key(K2), key(K1)),
        "a newline first, the alias, lowercase"
    );
    c.alias = None;
    c.hash = true;
    verify(&c, "WS-2", 22, &data(K1)).unwrap();
    let text = std::fs::read_to_string(&f).unwrap();
    let last = text.lines().last().unwrap();
    assert!(
        last.starts_with("|1|") && last.ends_with(&key(K1)),
        "{last}"
    );
    assert!(trusted(&check(&text, "ws-2", K1)));
    // No user file, or a name OpenSSH would not record: refused, nothing written.
    c.user_files.clear();
    assert!(verify(&c, "ws-3", 22, &data(K1)).is_err());
}

#[test]
fn cert_authority_lines_do_not_trust_plain_keys_and_files_combine() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    std::fs::write(&a, format!("@cert-authority * {}\n", key(K1))).unwrap();
    std::fs::write(&b, format!("ws-2 {}\n", key(K2))).unwrap();
    let k = KnownHosts::load([&a, &b]);
    assert_eq!(k.check("ws-1", &data(K1)), Verdict::Unknown);
    assert!(matches!(
        k.check("ws-2", &data(K2)),
        Verdict::Trusted { line: 1, .. }
    ));
}

#[test]
fn algorithms_of_known_kinds_go_first_unless_the_best_is_known() {
    let defaults: Vec<String> = [
        "ssh-ed25519",
        "ecdsa-sha2-nistp256",
        "rsa-sha2-512",
        "rsa-sha2-256",
    ]
    .map(String::from)
    .to_vec();
    let k = kh(&format!(
        "ws-1 {}\nws-1 {}\nws-2 {}\n",
        key(RSA),
        key(EC),
        key(K1)
    ));
    assert_eq!(
        k.algorithm_order("ws-1", &defaults),
        [
            "ecdsa-sha2-nistp256",
            "rsa-sha2-512",
            "rsa-sha2-256",
            "ssh-ed25519"
        ]
    );
    assert_eq!(k.algorithm_order("ws-2", &defaults), defaults);
    assert_eq!(k.algorithm_order("ws-3", &defaults), defaults);
}

#[test]
fn policies_from_ssh_options() {
    use HostKeyPolicy::*;
    for (v, p) in [
        ("yes", Some(Strict)),
        ("true", Some(Strict)),
        ("ask", Some(Strict)),
        ("accept-new", Some(AcceptNew)),
        ("no", Some(Off)),
        ("off", Some(Off)),
        ("false", Some(Off)),
        ("maybe", None),
    ] {
        assert_eq!(HostKeyPolicy::from_ssh_option(v), p, "{v}");
    }
}
