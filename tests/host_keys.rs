//! The host-key decision, proven against the OpenSSH client as the oracle.
//!
//! Every case gives `ssh -F CFG -o BatchMode=yes HOST true` and parc the same
//! ssh config, known_hosts files and server; both must connect or both refuse.
//! After an accept-new (or `no`) case, each tool is run (strict) on the files the other
//! one wrote, and they must agree again; a key parc learned must be one OpenSSH
//! trusts. Cases come from a table: every rule of issue 13, under strict and
//! accept-new, against hosts offering one key type (ed25519, ecdsa, rsa) and
//! several.
//!
//! The servers: lab host 0 (its own ed25519 key), and three more sshd on
//! addresses of the lab's subnet (ed25519+ecdsa+rsa on ports 22 and 2222,
//! ecdsa only, rsa only), authorizing the lab's client key.
//! Needs root, sshd and ssh (`.ci/run` installs them).

mod common;

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};

use common::{TestLab, events, finished};

/// ssh processes run at once for the oracle.
const ORACLE_PARALLEL: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Srv {
    /// Lab host 0: ed25519 only.
    Lab,
    /// ed25519, ecdsa and rsa, on ports 22 and 2222.
    Multi,
    Ecdsa,
    Rsa,
}

/// Public keys (`TYPE BASE64`) of the servers and of impostors.
struct Keys {
    lab: String,
    /// Multi's three keys.
    a_ed: String,
    b_ec: String,
    c_rsa: String,
    ec: String,
    rsa: String,
    /// Keys no server has, one per type.
    x_ed: String,
    y_ec: String,
    z_rsa: String,
}

struct World {
    keys: Keys,
    subnet: u8,
    client_key: PathBuf,
}

impl World {
    fn addr(&self, srv: Srv) -> Ipv4Addr {
        match srv {
            Srv::Lab => Ipv4Addr::new(127, self.subnet, 0, 1),
            Srv::Multi => Ipv4Addr::new(127, self.subnet, 200, 1),
            Srv::Ecdsa => Ipv4Addr::new(127, self.subnet, 200, 2),
            Srv::Rsa => Ipv4Addr::new(127, self.subnet, 200, 3),
        }
    }

    /// The key the server presents when the client knows nothing (OpenSSH's
    /// order puts ed25519 first).
    fn own(&self, srv: Srv) -> &str {
        match srv {
            Srv::Lab => &self.keys.lab,
            Srv::Multi => &self.keys.a_ed,
            Srv::Ecdsa => &self.keys.ec,
            Srv::Rsa => &self.keys.rsa,
        }
    }

    /// Another key of the same type as [`World::own`].
    fn other_same(&self, srv: Srv) -> &str {
        match srv {
            Srv::Lab | Srv::Multi => &self.keys.x_ed,
            Srv::Ecdsa => &self.keys.y_ec,
            Srv::Rsa => &self.keys.z_rsa,
        }
    }

    /// A key of a type the server does not present by default.
    fn other_type(&self, srv: Srv) -> &str {
        match srv {
            Srv::Lab | Srv::Multi => &self.keys.y_ec,
            Srv::Ecdsa | Srv::Rsa => &self.keys.x_ed,
        }
    }
}

/// Where the policy is set: the ssh config, or an `-o` option (Ansible's
/// `ansible_ssh_common_args` for parc, the command line for ssh).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PolicyIn {
    Config,
    Option,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UserFiles {
    /// `UserKnownHostsFile DIR/u1 DIR/u2`.
    Two,
    None,
    /// `UserKnownHostsFile DIR/u_%h`.
    Token,
}

#[derive(Debug, Clone)]
struct Case {
    what: String,
    srv: Srv,
    port: u16,
    policy: &'static str,
    policy_in: PolicyIn,
    user_files: UserFiles,
    alias: Option<&'static str>,
    hash: bool,
    u1: Vec<u8>,
    u2: Option<Vec<u8>>,
    global: Option<Vec<u8>>,
}

fn hashed(name: &str) -> String {
    let salt: Vec<u8> = name.bytes().cycle().take(20).collect();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&salt).unwrap();
    mac.update(name.as_bytes());
    format!(
        "|1|{}|{}",
        STANDARD.encode(&salt),
        STANDARD.encode(mac.finalize().into_bytes())
    )
}

fn lookup(addr: Ipv4Addr, port: u16) -> String {
    if port == 22 {
        addr.to_string()
    } else {
        format!("[{addr}]:{port}")
    }
}

/// The table of cases.
fn cases(w: &World) -> Vec<Case> {
    // (what, server, port, alias, user_files, hash, u1, u2, global)
    type Row = (
        String,
        Srv,
        u16,
        Option<&'static str>,
        UserFiles,
        bool,
        String,
        Option<String>,
        Option<String>,
    );
    let mut rows: Vec<Row> = Vec::new();
    let mut plain = |what: &str, srv: Srv, u1: String, u2: Option<String>, g: Option<String>| {
        rows.push((
            format!("{srv:?}: {what}"),
            srv,
            22,
            None,
            UserFiles::Two,
            false,
            u1,
            u2,
            g,
        ))
    };
    for srv in [Srv::Lab, Srv::Multi, Srv::Ecdsa, Srv::Rsa] {
        let n = lookup(w.addr(srv), 22);
        let own = w.own(srv);
        let [o1, o2, o3, _] = w.addr(srv).octets();
        plain("nothing known", srv, String::new(), None, None);
        plain("its key", srv, format!("{n} {own}\n"), None, None);
        plain(
            "another key of the same type",
            srv,
            format!("{n} {}\n", w.other_same(srv)),
            None,
            None,
        );
        plain(
            "a key of another type only",
            srv,
            format!("{n} {}\n", w.other_type(srv)),
            None,
            None,
        );
        plain(
            "its key, hashed name",
            srv,
            format!("{} {own}\n", hashed(&n)),
            None,
            None,
        );
        plain(
            "another key, hashed name",
            srv,
            format!("{} {}\n", hashed(&n), w.other_same(srv)),
            None,
            None,
        );
        plain(
            "its key under a wildcard",
            srv,
            format!("{o1}.{o2}.*.?,{o1}.{o2}.{o3}.* {own}\n"),
            None,
            None,
        );
        plain(
            "its key under a wildcard that negates it",
            srv,
            format!("{o1}.{o2}.*,!{n} {own}\n"),
            None,
            None,
        );
        plain(
            "its key, and revoked",
            srv,
            format!("{n} {own}\n@revoked * {own}\n"),
            None,
            None,
        );
        plain(
            "its key, revoked for another host only",
            srv,
            format!("{n} {own}\n@revoked 10.9.9.9,other {own}\n"),
            None,
            None,
        );
        plain(
            "its key in the second user file",
            srv,
            format!("other {own}\n"),
            Some(format!("{n} {own}\n")),
            None,
        );
        plain(
            "its key in the global file",
            srv,
            String::new(),
            None,
            Some(format!("{n} {own}\n")),
        );
        plain(
            "its key, revoked in the global file",
            srv,
            format!("{n} {own}\n"),
            None,
            Some(format!("@revoked {n} {own}\n")),
        );
        plain(
            "another key in the global file",
            srv,
            String::new(),
            None,
            Some(format!("{n} {}\n", w.other_same(srv))),
        );
        plain(
            "another key in the second user file",
            srv,
            String::new(),
            Some(format!("{n} {}\n", w.other_same(srv))),
            None,
        );
        plain(
            "its key as a @cert-authority only",
            srv,
            format!("@cert-authority {n} {own}\n"),
            None,
            None,
        );
    }
    let k = &w.keys;
    let m = lookup(w.addr(Srv::Multi), 22);
    let r = lookup(w.addr(Srv::Rsa), 22);
    let e = lookup(w.addr(Srv::Ecdsa), 22);
    let blob = |key: &str| key.split(' ').nth(1).unwrap().to_string();
    plain(
        "only its ecdsa key known",
        Srv::Multi,
        format!("{m} {}\n", k.b_ec),
        None,
        None,
    );
    plain(
        "only its rsa key known",
        Srv::Multi,
        format!("{m} {}\n", k.c_rsa),
        None,
        None,
    );
    plain(
        "its ed25519 key and an impostor ecdsa key",
        Srv::Multi,
        format!("{m} {}\n{m} {}\n", k.y_ec, k.a_ed),
        None,
        None,
    );
    plain(
        "its ecdsa key and an impostor rsa key",
        Srv::Multi,
        format!("{m} {}\n{m} {}\n", k.z_rsa, k.b_ec),
        None,
        None,
    );
    plain(
        "its rsa key as rsa-sha2-512",
        Srv::Multi,
        format!("{m} rsa-sha2-512 {}\n", blob(&k.c_rsa)),
        None,
        None,
    );
    plain(
        "its key as rsa-sha2-256",
        Srv::Rsa,
        format!("{r} rsa-sha2-256 {}\n", blob(&k.rsa)),
        None,
        None,
    );
    plain(
        "its rsa blob declared ssh-ed25519",
        Srv::Rsa,
        format!("{r} ssh-ed25519 {}\n", blob(&k.rsa)),
        None,
        None,
    );
    plain(
        "its ecdsa blob declared nistp384",
        Srv::Ecdsa,
        format!("{e} ecdsa-sha2-nistp384 {}\n", blob(&k.ec)),
        None,
        None,
    );
    plain(
        "its key without base64 padding",
        Srv::Ecdsa,
        format!(
            "{e} ecdsa-sha2-nistp256 {}\n",
            blob(&k.ec).trim_end_matches('=')
        ),
        None,
        None,
    );
    plain(
        "its key with a corrupt base64 character",
        Srv::Rsa,
        format!("{r} ssh-rsa {}!\n", blob(&k.rsa)),
        None,
        None,
    );
    plain(
        "malformed lines, then its key",
        Srv::Multi,
        format!(
            "{m}\n{m} ssh-foo AAAA\n@bogus {m} {}\n{m} ssh-ed25519\n|1|bad {}\n{m} {}\n",
            k.a_ed, k.a_ed, k.a_ed
        ),
        None,
        None,
    );
    plain(
        "malformed lines only",
        Srv::Lab,
        format!("garbage\n{} ssh-ed25519\n", lookup(w.addr(Srv::Lab), 22)),
        None,
        None,
    );
    let mut rows_bytes: Vec<(String, Srv, Vec<u8>)> = Vec::new();
    let mut invalid = format!("{m} {} ", k.a_ed).into_bytes();
    invalid.extend_from_slice(b"comm\xffent\n");
    rows_bytes.push((
        "its key with a non-UTF-8 comment".into(),
        Srv::Multi,
        invalid,
    ));
    let mut invalid = b"ws-\xff\xfe ssh-ed25519 AAAA\n".to_vec();
    invalid.extend_from_slice(format!("{m} {}\n", k.a_ed).as_bytes());
    rows_bytes.push(("a non-UTF-8 line, then its key".into(), Srv::Multi, invalid));
    let mut invalid = format!("{m} ssh-ed25519 ").into_bytes();
    invalid.extend_from_slice(b"AAAA\xff\xff\n");
    rows_bytes.push(("a non-UTF-8 key only".into(), Srv::Multi, invalid));
    rows_bytes.push((
        "its key, no final newline".into(),
        Srv::Ecdsa,
        format!("{e} {}", k.ec).into_bytes(),
    ));
    rows_bytes.push((
        "another host's line, no final newline".into(),
        Srv::Ecdsa,
        format!("other {}", k.ec).into_bytes(),
    ));

    // Ports: Multi listens on 2222 too.
    let mp = lookup(w.addr(Srv::Multi), 2222);
    let ma = w.addr(Srv::Multi).to_string();
    let [p1, p2, p3, _] = w.addr(Srv::Multi).octets();
    let mut port = |what: &str, u1: String| {
        rows.push((
            format!("Multi:2222: {what}"),
            Srv::Multi,
            2222,
            None,
            UserFiles::Two,
            false,
            u1,
            None,
            None,
        ))
    };
    for (what, u1) in [
        ("nothing known", String::new()),
        ("its key as [host]:port", format!("{mp} {}\n", k.a_ed)),
        (
            "its key under the bare host only",
            format!("{ma} {}\n", k.a_ed),
        ),
        (
            "another key under the bare host only",
            format!("{ma} {}\n", k.x_ed),
        ),
        ("another key as [host]:port", format!("{mp} {}\n", k.x_ed)),
        (
            "its key as [wildcard]:port",
            format!("[{p1}.{p2}.{p3}.*]:2222 {}\n", k.a_ed),
        ),
        (
            "its key, hashed [host]:port",
            format!("{} {}\n", hashed(&mp), k.a_ed),
        ),
        (
            "its key under the bare host, revoked for the bare host",
            format!("{ma} {}\n@revoked {ma} {}\n", k.a_ed, k.a_ed),
        ),
        (
            "its key as [host]:port, revoked for [host]:port",
            format!("{mp} {}\n@revoked {mp} {}\n", k.a_ed, k.a_ed),
        ),
        (
            "only its rsa key as [host]:port",
            format!("{mp} {}\n", k.c_rsa),
        ),
    ] {
        port(what, u1);
    }

    // HostKeyAlias.
    let mut alias = |what: &str, port: u16, u1: String| {
        rows.push((
            format!("Multi:{port} alias Desk-7: {what}"),
            Srv::Multi,
            port,
            Some("Desk-7"),
            UserFiles::Two,
            false,
            u1,
            None,
            None,
        ))
    };
    for (what, port, u1) in [
        ("nothing known", 22, String::new()),
        (
            "its key under the alias",
            22,
            format!("desk-7 {}\n", k.a_ed),
        ),
        (
            "its key under the ALIAS",
            2222,
            format!("DESK-7 {}\n", k.a_ed),
        ),
        (
            "its key under the address only",
            22,
            format!("{m} {}\n", k.a_ed),
        ),
        (
            "another key under the alias",
            22,
            format!("desk-7 {}\n", k.x_ed),
        ),
    ] {
        alias(what, port, u1);
    }

    // HashKnownHosts, UserKnownHostsFile none and %-tokens.
    for (what, srv, files, hash, u1, g) in [
        (
            "hashing, nothing known",
            Srv::Rsa,
            UserFiles::Two,
            true,
            String::new(),
            None,
        ),
        (
            "hashing, its key",
            Srv::Rsa,
            UserFiles::Two,
            true,
            format!("{r} {}\n", k.rsa),
            None,
        ),
        (
            "no user file, nothing known",
            Srv::Lab,
            UserFiles::None,
            false,
            String::new(),
            None,
        ),
        (
            "no user file, its key in the global file",
            Srv::Ecdsa,
            UserFiles::None,
            false,
            String::new(),
            Some(format!("{e} {}\n", k.ec)),
        ),
        (
            "user file named with %h, nothing known",
            Srv::Multi,
            UserFiles::Token,
            false,
            String::new(),
            None,
        ),
        (
            "user file named with %h, its key",
            Srv::Multi,
            UserFiles::Token,
            false,
            format!("{m} {}\n", k.a_ed),
            None,
        ),
    ] {
        rows.push((
            format!("{srv:?}: {what}"),
            srv,
            22,
            None,
            files,
            hash,
            u1,
            None,
            g,
        ));
    }

    let mut out = Vec::new();
    let mut push = |what: String,
                    srv,
                    port,
                    alias,
                    user_files,
                    hash,
                    u1: Vec<u8>,
                    u2: Option<String>,
                    g: Option<String>| {
        // `no` too on the host offering every type: revoked keys aside, where
        // parc refuses and OpenSSH connects (see the README).
        let no = srv == Srv::Multi && !what.contains("revoked");
        let policies = ["yes", "accept-new", "no"];
        for &policy in &policies[..if no { 3 } else { 2 }] {
            let policy_in = PolicyIn::Config;
            out.push(Case {
                what: what.clone(),
                srv,
                port,
                policy,
                policy_in,
                user_files,
                alias,
                hash,
                u1: u1.clone(),
                u2: u2.clone().map(String::into_bytes),
                global: g.clone().map(String::into_bytes),
            });
        }
    };
    for (what, srv, port, alias, files, hash, u1, u2, g) in rows {
        push(what, srv, port, alias, files, hash, u1.into_bytes(), u2, g);
    }
    for (what, srv, u1) in rows_bytes {
        push(what, srv, 22, None, UserFiles::Two, false, u1, None, None);
    }
    // The policy from an Ansible `-o` option, and `ask` (which cannot prompt).
    for (what, srv, u1) in [
        ("nothing known", Srv::Multi, String::new()),
        (
            "a key of another type only",
            Srv::Lab,
            format!("{} {}\n", lookup(w.addr(Srv::Lab), 22), k.y_ec),
        ),
        ("its key", Srv::Rsa, format!("{r} {}\n", k.rsa)),
    ] {
        for (policy, policy_in) in [
            ("accept-new", PolicyIn::Option),
            ("yes", PolicyIn::Option),
            ("ask", PolicyIn::Config),
        ] {
            out.push(Case {
                what: format!("{srv:?}: {what}"),
                srv,
                port: 22,
                policy,
                policy_in,
                user_files: UserFiles::Two,
                alias: None,
                hash: false,
                u1: u1.clone().into_bytes(),
                u2: None,
                global: None,
            });
        }
    }
    out
}

/// One case's files in `dir`, with the policy given.
fn write_case(w: &World, case: &Case, dir: &Path, policy: &str) {
    std::fs::create_dir_all(dir).unwrap();
    let u1 = match case.user_files {
        UserFiles::Token => dir.join(format!("u_{}", w.addr(case.srv))),
        _ => dir.join("u1"),
    };
    std::fs::write(&u1, &case.u1).unwrap();
    if let Some(u2) = &case.u2 {
        std::fs::write(dir.join("u2"), u2).unwrap();
    }
    if let Some(g) = &case.global {
        std::fs::write(dir.join("g"), g).unwrap();
    }
    let d = dir.display();
    let mut cfg = format!(
        "Host *\n  HostName {}\n  Port {}\n  User root\n  IdentityFile {}\n  IdentitiesOnly yes\n  \
         ConnectTimeout 20\n  LogLevel ERROR\n  GlobalKnownHostsFile {d}/g\n",
        w.addr(case.srv),
        case.port,
        w.client_key.display()
    );
    match (case.user_files, case.policy_in) {
        (_, PolicyIn::Option) => {}
        (UserFiles::Two, _) => cfg.push_str(&format!("  UserKnownHostsFile {d}/u1 {d}/u2\n")),
        (UserFiles::None, _) => cfg.push_str("  UserKnownHostsFile none\n"),
        (UserFiles::Token, _) => cfg.push_str(&format!("  UserKnownHostsFile {d}/u_%h\n")),
    }
    if case.policy_in == PolicyIn::Config {
        cfg.push_str(&format!("  StrictHostKeyChecking {policy}\n"));
    }
    if let Some(a) = case.alias {
        cfg.push_str(&format!("  HostKeyAlias {a}\n"));
    }
    if case.hash {
        cfg.push_str("  HashKnownHosts yes\n");
    }
    std::fs::write(dir.join("cfg"), cfg).unwrap();
}

/// The `-o` options a case gives on the command line (Ansible's args for parc).
fn options(case: &Case, dir: &Path, policy: &str) -> Vec<String> {
    match case.policy_in {
        PolicyIn::Config => vec![],
        PolicyIn::Option => vec![
            format!("StrictHostKeyChecking={policy}"),
            format!(
                "UserKnownHostsFile={} {}",
                dir.join("u1").display(),
                dir.join("u2").display()
            ),
        ],
    }
}

/// Whether OpenSSH connects: `ssh -F CFG -o BatchMode=yes [-o ...] case true`,
/// [`ORACLE_PARALLEL`] at a time.
fn oracle(runs: &[(PathBuf, Vec<String>)]) -> Vec<(bool, String)> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results = std::sync::Mutex::new(vec![(false, String::new()); runs.len()]);
    std::thread::scope(|s| {
        for _ in 0..ORACLE_PARALLEL {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((dir, opts)) = runs.get(i) else {
                        break;
                    };
                    let mut c = Command::new("ssh");
                    c.arg("-F")
                        .arg(dir.join("cfg"))
                        .args(["-o", "BatchMode=yes"]);
                    for o in opts {
                        c.arg("-o").arg(o);
                    }
                    let out = c
                        .args(["case", "true"])
                        .stdin(Stdio::null())
                        .output()
                        .expect("run ssh");
                    results.lock().unwrap()[i] = (
                        out.status.success(),
                        String::from_utf8_lossy(&out.stderr).trim().to_string(),
                    );
                }
            });
        }
    });
    results.into_inner().unwrap()
}

/// Whether parc connects, for every run at once: one Ansible inventory host per
/// run, `-F` and `-o` in `ansible_ssh_common_args`.
fn parc(runs: &[(PathBuf, Vec<String>)], work: &Path) -> Vec<(bool, String)> {
    let mut inventory = String::from("all:\n  hosts:\n");
    for (i, (dir, opts)) in runs.iter().enumerate() {
        let mut args = format!("-F {}", dir.join("cfg").display());
        for o in opts {
            args.push_str(&format!(" -o '{o}'"));
        }
        inventory.push_str(&format!(
            "    run-{i:03}:\n      ansible_ssh_common_args: \"{args}\"\n"
        ));
    }
    let inv = work.join(format!("inventory-{}.yml", runs.len()));
    std::fs::write(&inv, inventory).unwrap();
    let out: Output = Command::new(env!("CARGO_BIN_EXE_parc"))
        .current_dir(work)
        .arg("--json")
        .arg("-i")
        .arg(&inv)
        .args(["run", "all", "--parallel", "16", "--", "true"])
        .output()
        .expect("run parc");
    let ev = events(&out);
    let done = finished(&ev);
    assert_eq!(
        done.len(),
        runs.len(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (0..runs.len())
        .map(|i| {
            let e = done
                .iter()
                .find(|e| e["host"] == format!("run-{i:03}").as_str())
                .unwrap();
            (
                e["state"] == "ok",
                format!("{}: {}", e["state"], e["outcome"]["error"]),
            )
        })
        .collect()
}

/// The known_hosts files of a case directory (all but the ssh config), by name.
fn known_hosts_files(dir: &Path) -> Vec<(std::ffi::OsString, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|f| f.unwrap())
        .filter(|f| f.file_name() != "cfg")
        .map(|f| (f.file_name(), std::fs::read(f.path()).unwrap()))
        .collect();
    files.sort();
    files
}

fn keygen(dir: &Path, name: &str, kind: &str) -> String {
    let path = dir.join(name);
    let mut c = Command::new("ssh-keygen");
    c.args(["-q", "-N", "", "-C", "", "-t", kind]);
    if kind == "rsa" {
        c.args(["-b", "2048"]);
    }
    let out = c.arg("-f").arg(&path).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(dir.join(format!("{name}.pub"))).unwrap();
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The extra sshd servers, stopped when dropped.
struct Servers(Vec<Child>);

impl Drop for Servers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start_sshd(
    dir: &Path,
    name: &str,
    listen: &[SocketAddr],
    keys: &[&str],
    client_pub: &Path,
) -> Child {
    let mut cfg = String::new();
    for l in listen {
        cfg.push_str(&format!("ListenAddress {l}\n"));
    }
    for k in keys {
        cfg.push_str(&format!("HostKey {}\n", dir.join(k).display()));
    }
    cfg.push_str(&format!(
        "AuthorizedKeysFile {}\nUsePAM no\nPidFile none\nStrictModes no\n\
         PermitRootLogin prohibit-password\nPasswordAuthentication no\n\
         KbdInteractiveAuthentication no\nUseDNS no\nPrintMotd no\nPrintLastLog no\n\
         MaxStartups 200\nMaxSessions 100\n",
        client_pub.display()
    ));
    let path = dir.join(format!("sshd_{name}"));
    std::fs::write(&path, cfg).unwrap();
    let child = Command::new("/usr/sbin/sshd")
        .args(["-D", "-e", "-f"])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sshd");
    for l in listen {
        let mut up = false;
        for _ in 0..100 {
            if TcpStream::connect_timeout(l, Duration::from_millis(100)).is_ok() {
                up = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(up, "sshd {name} does not listen on {l}");
    }
    child
}

#[test]
fn parc_decides_host_keys_as_the_openssh_client_does() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let work = tempfile::Builder::new()
        .prefix("parc-host-keys-")
        .tempdir()
        .unwrap();
    let kd = work.path().join("keys");
    std::fs::create_dir_all(&kd).unwrap();
    let lab_line = std::fs::read_to_string(&lab.lab.known_hosts).unwrap();
    let keys = Keys {
        lab: lab_line
            .split_whitespace()
            .skip(1)
            .take(2)
            .collect::<Vec<_>>()
            .join(" "),
        a_ed: keygen(&kd, "a_ed", "ed25519"),
        b_ec: keygen(&kd, "b_ec", "ecdsa"),
        c_rsa: keygen(&kd, "c_rsa", "rsa"),
        ec: keygen(&kd, "ec", "ecdsa"),
        rsa: keygen(&kd, "rsa", "rsa"),
        x_ed: keygen(&kd, "x_ed", "ed25519"),
        y_ec: keygen(&kd, "y_ec", "ecdsa"),
        z_rsa: keygen(&kd, "z_rsa", "rsa"),
    };
    let w = World {
        keys,
        subnet: lab.lab.hosts[0].address.octets()[1],
        client_key: lab.lab.key.clone(),
    };
    // sshd refuses to start without its privilege separation directory.
    std::fs::create_dir_all("/run/sshd").unwrap();
    let client_pub = PathBuf::from(format!("{}.pub", lab.lab.key.display()));
    let at = |srv, port| SocketAddr::from((w.addr(srv), port));
    let _servers = Servers(vec![
        start_sshd(
            &kd,
            "multi",
            &[at(Srv::Multi, 22), at(Srv::Multi, 2222)],
            &["a_ed", "b_ec", "c_rsa"],
            &client_pub,
        ),
        start_sshd(&kd, "ecdsa", &[at(Srv::Ecdsa, 22)], &["ec"], &client_pub),
        start_sshd(&kd, "rsa", &[at(Srv::Rsa, 22)], &["rsa"], &client_pub),
    ]);

    let cases = cases(&w);
    assert!(cases.len() >= 100, "{} cases", cases.len());
    let dir = |i: usize, tool: &str| work.path().join(format!("case-{i:03}/{tool}"));

    // Each tool on its own copy of the same files.
    let mut ssh_runs = Vec::new();
    let mut parc_runs = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        for (tool, runs) in [("ssh", &mut ssh_runs), ("parc", &mut parc_runs)] {
            let d = dir(i, tool);
            write_case(&w, c, &d, c.policy);
            runs.push((d.clone(), options(c, &d, c.policy)));
        }
    }
    let by_ssh = oracle(&ssh_runs);
    let by_parc = parc(&parc_runs, work.path());

    // After accept-new, each tool (strict) on the files the other one wrote, and
    // on its own for reference.
    // Only where a tool wrote something: elsewhere the strict run on the same
    // files is a case of the table already.
    let learning: Vec<usize> = (0..cases.len())
        .filter(|i| ["accept-new", "no"].contains(&cases[*i].policy))
        .filter(|&i| {
            let pristine = dir(i, "pristine");
            write_case(&w, &cases[i], &pristine, cases[i].policy);
            ["ssh", "parc"]
                .iter()
                .any(|tool| known_hosts_files(&dir(i, tool)) != known_hosts_files(&pristine))
        })
        .collect();
    let mut cross = Vec::new();
    for &i in &learning {
        for (from, to) in [("ssh", "x-ssh-wrote"), ("parc", "x-parc-wrote")] {
            let d = dir(i, to);
            write_case(&w, &cases[i], &d, "yes");
            for (name, content) in known_hosts_files(&dir(i, from)) {
                std::fs::write(d.join(name), content).unwrap();
            }
            cross.push((d.clone(), options(&cases[i], &d, "yes")));
        }
    }
    let cross_ssh = oracle(&cross);
    let cross_parc = parc(&cross, work.path());

    let mut agree = 0;
    let mut disagree = Vec::new();
    let mut compare = |what: String, ssh: &(bool, String), parc: &(bool, String)| {
        if ssh.0 == parc.0 {
            agree += 1;
        } else {
            disagree.push(format!(
                "{what}: OpenSSH {} ({}), parc {} ({})",
                if ssh.0 { "connects" } else { "refuses" },
                ssh.1,
                if parc.0 { "connects" } else { "refuses" },
                parc.1
            ));
        }
    };
    for (i, c) in cases.iter().enumerate() {
        let policy = match c.policy_in {
            PolicyIn::Config => format!("StrictHostKeyChecking {} in ssh config", c.policy),
            PolicyIn::Option => format!("-o StrictHostKeyChecking={}", c.policy),
        };
        compare(
            format!("case {i} [{}; {policy}]", c.what),
            &by_ssh[i],
            &by_parc[i],
        );
    }
    for (j, &i) in learning.iter().enumerate() {
        let c = &cases[i];
        compare(
            format!("case {i} [{}] strict on what OpenSSH wrote", c.what),
            &cross_ssh[2 * j],
            &cross_parc[2 * j],
        );
        compare(
            format!("case {i} [{}] strict on what parc wrote", c.what),
            &cross_ssh[2 * j + 1],
            &cross_parc[2 * j + 1],
        );
    }
    // Files one tool learned a key into (it trusts them afterwards) that the
    // other one trusts too: the disagreements above would catch any other.
    let learned_and_trusted = (0..cross.len())
        .filter(|&k| cross_ssh[k].0 && cross_parc[k].0)
        .count();
    let connected = by_ssh.iter().filter(|r| r.0).count();
    println!(
        "host-key differential against {}: {} cases ({connected} connect, {} refused), \
         {agree} verdicts agree ({learned_and_trusted} files learned into trusted by \
         both tools), {} disagree",
        String::from_utf8_lossy(&Command::new("ssh").arg("-V").output().unwrap().stderr).trim(),
        cases.len(),
        cases.len() - connected,
        disagree.len()
    );
    assert!(disagree.is_empty(), "{}", disagree.join("\n"));
}
