use super::*;

const K1: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICA2p1UkIQ/yMAzHfnp6FGpdPToJKKyJ9zm0fRZJRCsm c1";
const K2: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINAAhSEFByIE+r3Pk1pU4pNv6znnkpHcDGUlG8Cm/i8t c2";

fn kh(text: &str) -> KnownHosts {
    KnownHosts::parse(text, Path::new("kh"))
}

fn key(k: &str) -> String {
    normalize(k)
}

#[test]
fn fingerprint_matches_ssh_keygen() {
    assert_eq!(
        fingerprint(K1).unwrap(),
        "SHA256:JvjCDascWqH1DEC3RE+2xfvi+B1mTJEIS/73f+Z86Bw"
    );
}

#[test]
fn plain_patterns_wildcards_and_negation() {
    let k = kh(&format!(
        "# comment\n\nws-1,10.0.0.1 {}\n*.corp.example,!evil.corp.example {}\nlab-?? {}\ngarbage\n",
        key(K1),
        key(K1),
        key(K1)
    ));
    assert!(matches!(
        k.check("ws-1", 22, K1),
        Verdict::Trusted { line: 3, .. }
    ));
    assert!(matches!(
        k.check("10.0.0.1", 22, K1),
        Verdict::Trusted { .. }
    ));
    assert!(matches!(
        k.check("pc7.corp.example", 22, K1),
        Verdict::Trusted { line: 4, .. }
    ));
    assert_eq!(k.check("evil.corp.example", 22, K1), Verdict::Unknown);
    assert!(matches!(
        k.check("lab-07", 22, K1),
        Verdict::Trusted { line: 5, .. }
    ));
    assert_eq!(k.check("lab-7", 22, K1), Verdict::Unknown);
    assert_eq!(k.check("other", 22, K1), Verdict::Unknown);
}

#[test]
fn non_standard_ports_use_brackets() {
    let k = kh(&format!(
        "[ws-1]:2222 {}\n[10.0.0.*]:2222 {}\n",
        key(K1),
        key(K1)
    ));
    assert!(matches!(k.check("ws-1", 2222, K1), Verdict::Trusted { .. }));
    assert_eq!(k.check("ws-1", 22, K1), Verdict::Unknown);
    assert!(matches!(
        k.check("10.0.0.9", 2222, K1),
        Verdict::Trusted { .. }
    ));
    assert_eq!(lookup_name("h", 22), "h");
    assert_eq!(lookup_name("h", 2200), "[h]:2200");
}

#[test]
fn hashed_entries() {
    // |1|salt|HMAC-SHA1(salt, name), computed here so the test needs no ssh-keygen.
    let salt = b"0123456789abcdefghij";
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(salt).unwrap();
    mac.update(b"[ws-9]:2222");
    let hash = mac.finalize().into_bytes();
    let line = format!(
        "|1|{}|{} {}\n",
        STANDARD.encode(salt),
        STANDARD.encode(hash),
        key(K1)
    );
    let k = kh(&line);
    assert!(matches!(k.check("ws-9", 2222, K1), Verdict::Trusted { .. }));
    assert_eq!(k.check("ws-9", 22, K1), Verdict::Unknown);
    assert!(matches!(k.check("ws-9", 2222, K2), Verdict::Changed { .. }));
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
    assert!(matches!(
        kh(&text).check("10.9.8.7", 22, K1),
        Verdict::Trusted { .. }
    ));
}

#[test]
fn changed_key_names_the_line_and_both_fingerprints() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("known_hosts");
    std::fs::write(&f, format!("# x\nws-1 {}\n", key(K1))).unwrap();
    let err = verify(
        HostKeyPolicy::AcceptNew,
        std::slice::from_ref(&f),
        "ws-1",
        22,
        K2,
    )
    .unwrap_err();
    let msg = err.to_string().replace(&f.display().to_string(), "KH");
    insta::assert_snapshot!(msg);
    assert!(msg.contains("KH:2"));
    assert!(msg.contains(&fingerprint(K1).unwrap()) && msg.contains(&fingerprint(K2).unwrap()));
}

#[test]
fn revoked_keys_are_refused_under_every_policy() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("known_hosts");
    std::fs::write(&f, format!("ws-1 {}\n@revoked * {}\n", key(K1), key(K1))).unwrap();
    for policy in [
        HostKeyPolicy::Strict,
        HostKeyPolicy::AcceptNew,
        HostKeyPolicy::Off,
    ] {
        let err = verify(policy, std::slice::from_ref(&f), "ws-1", 22, K1).unwrap_err();
        assert!(
            matches!(err, HostKeyError::Revoked { line: 2, .. }),
            "{policy:?}: {err}"
        );
    }
    let msg = verify(
        HostKeyPolicy::Strict,
        std::slice::from_ref(&f),
        "ws-1",
        22,
        K1,
    )
    .unwrap_err()
    .to_string()
    .replace(&f.display().to_string(), "KH");
    insta::assert_snapshot!(msg);
}

#[test]
fn unknown_keys_strict_accept_new_and_off() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("sub/known_hosts");
    let files = vec![f.clone(), dir.path().join("missing")];
    let err = verify(HostKeyPolicy::Strict, &files, "10.1.1.1", 2222, K1).unwrap_err();
    let msg = err
        .to_string()
        .replace(&dir.path().display().to_string(), "DIR");
    insta::assert_snapshot!(msg);
    assert_eq!(
        verify(HostKeyPolicy::Off, &files, "10.1.1.1", 2222, K1).unwrap(),
        Accepted::Unchecked
    );
    assert!(!f.exists(), "off never writes");
    assert_eq!(
        verify(HostKeyPolicy::AcceptNew, &files, "10.1.1.1", 2222, K1).unwrap(),
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
        verify(HostKeyPolicy::Strict, &files, "10.1.1.1", 2222, K1).unwrap(),
        Accepted::Known
    );
    // A learned key still protects against a later change.
    assert!(matches!(
        verify(HostKeyPolicy::AcceptNew, &files, "10.1.1.1", 2222, K2),
        Err(HostKeyError::Changed { .. })
    ));
}

#[test]
fn cert_authority_lines_do_not_trust_plain_keys_and_files_combine() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    std::fs::write(&a, format!("@cert-authority * {}\n", key(K1))).unwrap();
    std::fs::write(&b, format!("ws-2 {}\n", key(K2))).unwrap();
    let k = KnownHosts::load(&[a, b]).unwrap();
    assert_eq!(k.check("ws-1", 22, K1), Verdict::Unknown);
    assert!(matches!(
        k.check("ws-2", 22, K2),
        Verdict::Trusted { line: 1, .. }
    ));
}

#[test]
fn another_key_type_is_unknown_not_changed() {
    let ecdsa = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPkIHKTXk9pDpPd6ZGnScGmT6gE1Ywvbyhnyw1kPnGSo+/uFhVpZJHmsu4oM2Cr5v9DUsfJMzmBQ7SzfCNA56fo=";
    let k = kh(&format!("ws-1 {ecdsa}\n"));
    assert_eq!(k.check("ws-1", 22, K1), Verdict::Unknown);
    assert_eq!(
        k.known_algorithms("ws-1", 22),
        vec!["ecdsa-sha2-nistp256".to_string()]
    );
    assert!(k.known_algorithms("ws-2", 22).is_empty());
}
