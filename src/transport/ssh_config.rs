//! What `~/.ssh/config` says about a host.
//!
//! Where an OpenSSH client exists, `ssh -G HOST` is asked: it applies `Match`,
//! `Include` and first-match-wins exactly as `ssh` would, without connecting.
//! Without a client, a small parser reads the config file for the keywords parc
//! uses (Host, HostName, Port, User, IdentityFile, ProxyJump,
//! UserKnownHostsFile, ConnectTimeout).

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshResolved {
    pub hostname: String,
    pub port: u16,
    pub user: Option<String>,
    /// Identity files that exist (ssh -G also lists defaults that usually don't).
    pub identity_files: Vec<PathBuf>,
    pub proxy_jump: Option<String>,
    pub user_known_hosts_files: Vec<PathBuf>,
    pub connect_timeout: Option<u64>,
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

pub fn resolve(alias: &str, config_file: Option<&Path>) -> Result<SshResolved, SshConfigError> {
    let mut cmd = std::process::Command::new("ssh");
    cmd.arg("-G");
    if let Some(f) = config_file {
        cmd.arg("-F").arg(f);
    }
    // `--` keeps an alias starting with `-` from being read as an option.
    cmd.arg("--").arg(alias);
    match cmd.output() {
        Ok(out) if out.status.success() => {
            Ok(from_ssh_g(&String::from_utf8_lossy(&out.stdout), alias))
        }
        Ok(out) => Err(SshConfigError::SshG {
            alias: alias.to_string(),
            reason: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let path = config_file
                .map(Path::to_path_buf)
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
            Ok(parse_config(&text, alias))
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

fn empty(alias: &str) -> SshResolved {
    SshResolved {
        hostname: alias.to_string(),
        port: 22,
        user: None,
        identity_files: vec![],
        proxy_jump: None,
        user_known_hosts_files: vec![],
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
        "userknownhostsfile" => r.user_known_hosts_files.extend(
            value
                .split_whitespace()
                .filter(|f| *f != "none")
                .map(expand),
        ),
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

/// Minimal `ssh_config` reader: `Host` blocks with wildcard and `!` patterns,
/// first value wins, `Match` blocks skipped (ssh -G handles them where present).
pub fn parse_config(text: &str, alias: &str) -> SshResolved {
    let mut r = empty(alias);
    let mut seen: Vec<String> = Vec::new();
    let mut active = true;
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once(|c: char| c.is_whitespace() || c == '=') {
            Some((k, v)) => (
                k.to_lowercase(),
                v.trim().trim_start_matches('=').trim().trim_matches('"'),
            ),
            None => continue,
        };
        match key.as_str() {
            "host" => {
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
            "match" => active = false,
            "include" => {
                tracing::warn!("ssh config Include is not followed without an OpenSSH client")
            }
            // First obtained value wins, except IdentityFile which accumulates.
            _ if active && (key == "identityfile" || !seen.contains(&key)) => {
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
        let r = parse_config(CONFIG, "ws-12");
        assert_eq!(r.user.as_deref(), Some("tech"));
        assert_eq!(r.port, 2222);
        assert_eq!(r.proxy_jump.as_deref(), Some("bastion"));
        assert_eq!(r.hostname, "ws-12.corp.example");
        let t = parse_config(CONFIG, "ws-test");
        assert_eq!(t.user.as_deref(), Some("fallback"));
        assert_eq!(t.proxy_jump, None);
        let b = parse_config(CONFIG, "bastion");
        assert_eq!(b.hostname, "192.0.2.10");
        assert_eq!(b.user.as_deref(), Some("jump"));
    }

    #[test]
    fn ssh_g_is_the_source_of_truth_when_present() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config");
        let key = dir.path().join("fleet");
        std::fs::write(&key, "").unwrap();
        std::fs::write(
            &cfg,
            format!("Host ws-*\n  User tech\n  Port 2222\n  ProxyJump bastion\n  IdentityFile {}\n  UserKnownHostsFile {}/kh\n", key.display(), dir.path().display()),
        )
        .unwrap();
        match resolve("ws-12", Some(&cfg)) {
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
}
