//! What `~/.ssh/config` says about a host.
//!
//! Where an OpenSSH client exists, `ssh -G HOST` is asked: it applies `Match`,
//! `Include` and first-match-wins exactly as `ssh` would, without connecting.
//! Without a client, a small parser reads the config file for the keywords parc
//! uses (Host, HostName, Port, User, IdentityFile, ProxyJump, ConnectTimeout and
//! the host-key options: UserKnownHostsFile, GlobalKnownHostsFile, HostKeyAlias,
//! StrictHostKeyChecking, HashKnownHosts, HostKeyAlgorithms).

use std::path::PathBuf;
use std::sync::LazyLock;

use tokio::sync::Semaphore;

use super::known_hosts::HostKeyPolicy;

/// How many `ssh -G` may run at once: one per core. Each is a whole OpenSSH
/// client (about 8 MiB resident) that spends its few milliseconds on the CPU,
/// so more at once finish no sooner. With 50 hosts connecting at once, up to
/// 45 MiB of them were alive together beside parc, and every host reached its
/// handshake at about the same moment, holding its buffers together; taken a
/// core at a time, the hosts connect in turn (parc's own peak for a no-change
/// run at 50 hosts: 32 -> 25 MiB; wall time within the lab's noise).
static SSH_G_SLOTS: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())));

/// OpenSSH 9.2's default `HostKeyAlgorithms`, for when no client is installed to
/// say what it is (certificate types left out: parc does not use them).
const DEFAULT_HOST_KEY_ALGORITHMS: &[&str] = &[
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "rsa-sha2-512",
    "rsa-sha2-256",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshResolved {
    pub hostname: String,
    pub port: u16,
    pub user: Option<String>,
    /// Identity files that exist (ssh -G also lists defaults that usually don't).
    pub identity_files: Vec<PathBuf>,
    pub proxy_jump: Option<String>,
    /// `UserKnownHostsFile`, expanded; empty for `none`.
    pub user_known_hosts_files: Vec<PathBuf>,
    /// `GlobalKnownHostsFile`, expanded; empty for `none`.
    pub global_known_hosts_files: Vec<PathBuf>,
    pub host_key_alias: Option<String>,
    /// `StrictHostKeyChecking`; OpenSSH's default `ask` is strict for parc.
    pub host_key_policy: HostKeyPolicy,
    pub hash_known_hosts: bool,
    /// `HostKeyAlgorithms`, in preference order.
    pub host_key_algorithms: Vec<String>,
    pub connect_timeout: Option<u64>,
}

/// How to ask about a host: the config file (`ssh -F`) and `-o` options, as
/// given to OpenSSH (for example in Ansible's `ansible_ssh_common_args`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SshArgs {
    pub config_file: Option<PathBuf>,
    /// `Keyword=value` or `Keyword value`, as after `-o`.
    pub options: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SshConfigError {
    #[error("`ssh -G {alias}` failed: {reason}")]
    SshG { alias: String, reason: String },
    #[error("cannot read ssh config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Asks `ssh -G` (OpenSSH's own reading of its config), else reads the config
/// file. Async rather than on a blocking thread: a run connecting to many
/// hosts at once held a thread (and its stack) per host while `ssh` ran.
pub async fn resolve(alias: &str, args: &SshArgs) -> Result<SshResolved, SshConfigError> {
    let mut cmd = tokio::process::Command::new("ssh");
    cmd.arg("-G");
    if let Some(f) = &args.config_file {
        cmd.arg("-F").arg(f);
    }
    for o in &args.options {
        cmd.arg("-o").arg(o);
    }
    // `--` keeps an alias starting with `-` from being read as an option.
    cmd.arg("--").arg(alias);
    // Never closed, so acquiring cannot fail; were it to, run unthrottled.
    let slot = SSH_G_SLOTS.acquire().await.ok();
    let output = cmd.output().await;
    drop(slot);
    match output {
        Ok(out) if out.status.success() => {
            Ok(from_ssh_g(&String::from_utf8_lossy(&out.stdout), alias))
        }
        Ok(out) => Err(SshConfigError::SshG {
            alias: alias.to_string(),
            reason: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let path = args
                .config_file
                .clone()
                .or_else(|| home().map(|h| h.join(".ssh/config")));
            let text = match &path {
                Some(p) => match std::fs::read_to_string(p) {
                    Ok(t) => t,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                    Err(source) => {
                        return Err(SshConfigError::Read {
                            path: p.clone(),
                            source,
                        });
                    }
                },
                None => String::new(),
            };
            Ok(parse_config(&args.options, &text, alias))
        }
        Err(e) => Err(SshConfigError::SshG {
            alias: alias.to_string(),
            reason: e.to_string(),
        }),
    }
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

fn expand(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), home()) {
        (Some(rest), Some(h)) => h.join(rest),
        _ => PathBuf::from(p),
    }
}

fn files(value: &str) -> Vec<PathBuf> {
    if value.eq_ignore_ascii_case("none") {
        return vec![];
    }
    value.split_whitespace().map(expand).collect()
}

/// OpenSSH's defaults, as `ssh -G` prints them for an empty config.
fn empty(alias: &str) -> SshResolved {
    SshResolved {
        hostname: alias.to_string(),
        port: 22,
        user: None,
        identity_files: vec![],
        proxy_jump: None,
        user_known_hosts_files: files("~/.ssh/known_hosts ~/.ssh/known_hosts2"),
        global_known_hosts_files: files("/etc/ssh/ssh_known_hosts /etc/ssh/ssh_known_hosts2"),
        host_key_alias: None,
        host_key_policy: HostKeyPolicy::Strict,
        hash_known_hosts: false,
        host_key_algorithms: DEFAULT_HOST_KEY_ALGORITHMS
            .iter()
            .map(|a| a.to_string())
            .collect(),
        connect_timeout: None,
    }
}

fn apply(r: &mut SshResolved, key: &str, value: &str, alias: &str) {
    match key {
        "hostname" => r.hostname = value.replace("%h", alias),
        "port" => r.port = value.parse().unwrap_or(22),
        "user" => r.user = Some(value.to_string()),
        "identityfile" => r.identity_files.push(expand(value)),
        "proxyjump" if value != "none" => r.proxy_jump = Some(value.to_string()),
        "userknownhostsfile" => r.user_known_hosts_files = files(value),
        "globalknownhostsfile" => r.global_known_hosts_files = files(value),
        "hostkeyalias" => r.host_key_alias = Some(value.to_ascii_lowercase()),
        "stricthostkeychecking" => {
            if let Some(p) = HostKeyPolicy::from_ssh_option(value) {
                r.host_key_policy = p
            }
        }
        "hashknownhosts" => r.hash_known_hosts = matches!(value, "yes" | "true"),
        "hostkeyalgorithms" => {
            r.host_key_algorithms = value.split(',').map(str::to_string).collect()
        }
        "connecttimeout" => r.connect_timeout = value.parse().ok().filter(|t| *t > 0),
        _ => {}
    }
}

/// Parse `ssh -G` output (`keyword value` per line, keywords lowercase).
fn from_ssh_g(out: &str, alias: &str) -> SshResolved {
    let mut r = empty(alias);
    for line in out.lines() {
        if let Some((k, v)) = line.split_once(' ') {
            apply(&mut r, k, v.trim(), alias);
        }
    }
    r.identity_files.retain(|f| f.exists());
    r
}

/// `Keyword value`, `Keyword=value` or `Keyword = value`, keyword lowercase.
fn keyword(line: &str) -> Option<(String, &str)> {
    let (k, v) = line.split_once(|c: char| c.is_whitespace() || c == '=')?;
    Some((
        k.to_lowercase(),
        v.trim().trim_start_matches('=').trim().trim_matches('"'),
    ))
}

/// Minimal `ssh_config` reader: `-o` options first, then `Host` blocks with
/// wildcard and `!` patterns, first value wins, `Match` blocks skipped (ssh -G
/// handles them where present).
pub fn parse_config(options: &[String], text: &str, alias: &str) -> SshResolved {
    let mut r = empty(alias);
    let mut seen: Vec<String> = Vec::new();
    let mut active = true;
    let lines = options.iter().map(|o| (true, o.as_str()));
    for (is_option, raw) in lines.chain(text.lines().map(|l| (false, l))) {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = keyword(line) else {
            continue;
        };
        match key.as_str() {
            "host" if !is_option => {
                let mut matched = false;
                let mut negated = false;
                for pat in value.split_whitespace() {
                    match pat.strip_prefix('!') {
                        Some(neg) if glob(neg, alias) => negated = true,
                        None if glob(pat, alias) => matched = true,
                        _ => {}
                    }
                }
                active = matched && !negated;
            }
            "match" if !is_option => active = false,
            "include" => {
                tracing::warn!("ssh config Include is not followed without an OpenSSH client")
            }
            // First obtained value wins, except IdentityFile which accumulates.
            _ if (active || is_option) && (key == "identityfile" || !seen.contains(&key)) => {
                apply(&mut r, &key, value, alias);
                seen.push(key);
            }
            _ => {}
        }
    }
    r
}

fn glob(pattern: &str, name: &str) -> bool {
    globset::Glob::new(pattern)
        .map(|g| g.compile_matcher().is_match(name))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "\
Host bastion
    HostName 192.0.2.10
    User jump
Host ws-* !ws-test
    User tech
    Port 2222
    ProxyJump bastion
    IdentityFile ~/.ssh/fleet
Host *
    User fallback
    Port 22
    HostName %h.corp.example
";

    #[test]
    fn first_value_wins_with_wildcards_and_negation() {
        let r = parse_config(&[], CONFIG, "ws-12");
        assert_eq!(r.user.as_deref(), Some("tech"));
        assert_eq!(r.port, 2222);
        assert_eq!(r.proxy_jump.as_deref(), Some("bastion"));
        assert_eq!(r.hostname, "ws-12.corp.example");
        let t = parse_config(&[], CONFIG, "ws-test");
        assert_eq!(t.user.as_deref(), Some("fallback"));
        assert_eq!(t.proxy_jump, None);
        let b = parse_config(&[], CONFIG, "bastion");
        assert_eq!(b.hostname, "192.0.2.10");
        assert_eq!(b.user.as_deref(), Some("jump"));
    }

    #[tokio::test]
    async fn ssh_g_is_the_source_of_truth_when_present() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config");
        let key = dir.path().join("fleet");
        std::fs::write(&key, "").unwrap();
        std::fs::write(
            &cfg,
            format!("Host ws-*\n  User tech\n  Port 2222\n  ProxyJump bastion\n  IdentityFile {}\n  UserKnownHostsFile {}/kh\n", key.display(), dir.path().display()),
        )
        .unwrap();
        match resolve(
            "ws-12",
            &SshArgs {
                config_file: Some(cfg.clone()),
                options: vec![],
            },
        )
        .await
        {
            Ok(r) => {
                assert_eq!(r.hostname, "ws-12");
                assert_eq!(r.port, 2222);
                assert_eq!(r.user.as_deref(), Some("tech"));
                assert_eq!(r.proxy_jump.as_deref(), Some("bastion"));
                assert_eq!(r.identity_files, vec![key]);
                assert_eq!(r.user_known_hosts_files, vec![dir.path().join("kh")]);
            }
            Err(e) => panic!("{e}"),
        }
    }

    #[tokio::test]
    async fn host_key_options_from_config_and_o_options_with_ssh_g_or_without() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config");
        let d = dir.path().display();
        let text = format!(
            "Host ws-*\n  HostName 10.0.0.7\n  Port 2222\n  UserKnownHostsFile {d}/a_%h {d}/b\n  GlobalKnownHostsFile {d}/g\n  HostKeyAlias Desk-7\n  StrictHostKeyChecking ask\n  HashKnownHosts yes\n  HostKeyAlgorithms ecdsa-sha2-nistp256,ssh-ed25519\n"
        );
        std::fs::write(&cfg, &text).unwrap();
        let args = SshArgs {
            config_file: Some(cfg),
            options: vec!["StrictHostKeyChecking=accept-new".into()],
        };
        let r = resolve("ws-7", &args).await.unwrap();
        assert_eq!(
            r.user_known_hosts_files,
            vec![dir.path().join("a_10.0.0.7"), dir.path().join("b")]
        );
        assert_eq!(r.global_known_hosts_files, vec![dir.path().join("g")]);
        assert_eq!(r.host_key_alias.as_deref(), Some("desk-7"));
        assert_eq!(r.host_key_policy, HostKeyPolicy::AcceptNew, "-o wins");
        assert!(r.hash_known_hosts);
        assert_eq!(
            r.host_key_algorithms,
            ["ecdsa-sha2-nistp256", "ssh-ed25519"]
        );
        // The reader used without a client agrees (but for %-tokens).
        let f = parse_config(&args.options, &text, "ws-7");
        assert_eq!(f.global_known_hosts_files, r.global_known_hosts_files);
        assert_eq!(f.host_key_alias, r.host_key_alias);
        assert_eq!(f.host_key_policy, r.host_key_policy);
        assert_eq!(f.hash_known_hosts, r.hash_known_hosts);
        // `none` reads nothing; the defaults are OpenSSH's.
        let n = parse_config(&["UserKnownHostsFile=none".into()], "", "x");
        assert!(n.user_known_hosts_files.is_empty());
        assert_eq!(
            n.global_known_hosts_files,
            [
                PathBuf::from("/etc/ssh/ssh_known_hosts"),
                PathBuf::from("/etc/ssh/ssh_known_hosts2")
            ]
        );
        assert_eq!(n.host_key_policy, HostKeyPolicy::Strict);
    }
}
