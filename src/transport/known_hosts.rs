//! Host-key verification against OpenSSH `known_hosts` files.
//!
//! Written here rather than taken from russh because russh's helper ignores
//! `@revoked` markers and wildcard patterns, and both matter on a real fleet:
//! a revoked key must be refused whatever else trusts it, and `*.corp.example`
//! entries are common. Semantics follow OpenSSH (sshd(8) "SSH_KNOWN_HOSTS FILE
//! FORMAT"): comma-separated patterns with `*`/`?` and `!` negation, `[host]:port`
//! for non-22 ports, hashed `|1|salt|hmac` entries, `@revoked`, and
//! `@cert-authority` lines (ignored: parc does not use host certificates).

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use hmac::{Hmac, Mac};

/// What to do with a host key that known_hosts does not vouch for.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyPolicy {
    /// Refuse unknown keys (OpenSSH `StrictHostKeyChecking yes`).
    #[default]
    Strict,
    /// Trust an unknown key on first use and append it; still refuse changed or revoked keys.
    AcceptNew,
    /// Do not verify at all. Only with an explicit flag; parc warns.
    Off,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
    CertAuthority,
}

#[derive(Debug, Clone)]
struct Entry {
    file: PathBuf,
    line: usize,
    marker: Marker,
    patterns: String,
    /// `algo base64`, normalized (no comment).
    key: String,
}

/// The parsed entries of one or more known_hosts files.
#[derive(Debug, Clone, Default)]
pub struct KnownHosts {
    entries: Vec<Entry>,
}

/// The verdict for one host and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Trusted {
        file: PathBuf,
        line: usize,
    },
    Unknown,
    Changed {
        file: PathBuf,
        line: usize,
        known_fingerprint: String,
    },
    Revoked {
        file: PathBuf,
        line: usize,
    },
}

/// How a key was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// known_hosts vouches for it.
    Known,
    /// Unknown, trusted on first use (`accept-new`) and appended to `file`.
    Learned { file: PathBuf },
    /// Not checked (`off`): the caller warns.
    Unchecked,
}

#[derive(Debug, thiserror::Error)]
pub enum HostKeyError {
    #[error(
        "host key for {host} is unknown: it is in none of {files} (server offered {fingerprint}). \
         parc refused to connect and changed nothing on this host. If this is a new machine, verify \
         the fingerprint and run again with `--host-key-policy accept-new` to record it"
    )]
    Unknown {
        host: String,
        files: String,
        fingerprint: String,
    },
    #[error(
        "host key for {host} has CHANGED: known_hosts {file}:{line} holds {known}, the server offered \
         {offered}. parc refused to connect and changed nothing on this host: this is either a \
         man-in-the-middle attack or a reinstalled machine. If the machine was reinstalled, remove the \
         old key (`ssh-keygen -R {host} -f {file}`) and run again with `--host-key-policy accept-new`"
    )]
    Changed {
        host: String,
        file: PathBuf,
        line: usize,
        known: String,
        offered: String,
    },
    #[error(
        "host key for {host} ({fingerprint}) is revoked by {file}:{line}. parc refused to connect, \
         whatever the host-key policy, and changed nothing on this host"
    )]
    Revoked {
        host: String,
        file: PathBuf,
        line: usize,
        fingerprint: String,
    },
    #[error("cannot record the new host key of {host} in {file}: {source}")]
    Write {
        host: String,
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read known_hosts file {file}: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
}

/// `host` for port 22, else `[host]:port`, as OpenSSH writes and looks up names.
pub fn lookup_name(host: &str, port: u16) -> String {
    if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    }
}

/// `algo base64` without any comment.
fn normalize(key: &str) -> String {
    key.split_whitespace().take(2).collect::<Vec<_>>().join(" ")
}

fn algorithm(key: &str) -> &str {
    key.split_whitespace().next().unwrap_or("")
}

/// `SHA256:...` as `ssh-keygen -l` prints it.
pub fn fingerprint(key: &str) -> Option<String> {
    use sha2::Digest;
    let blob = STANDARD.decode(key.split_whitespace().nth(1)?).ok()?;
    Some(format!(
        "SHA256:{}",
        STANDARD_NO_PAD.encode(sha2::Sha256::digest(&blob))
    ))
}

/// OpenSSH wildcard match: `*` any run, `?` one character.
fn wildcard(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

fn hashed_match(entry: &str, name: &str) -> bool {
    let mut parts = entry.trim_start_matches("|1|").splitn(2, '|');
    let (Some(salt), Some(hash)) = (parts.next(), parts.next()) else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (STANDARD.decode(salt), STANDARD.decode(hash)) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<sha1::Sha1>::new_from_slice(&salt) else {
        return false;
    };
    mac.update(name.as_bytes());
    mac.verify_slice(&hash).is_ok()
}

/// Whether a line's host field applies to `name`: some pattern matches and no
/// negated pattern does.
fn host_matches(patterns: &str, name: &str) -> bool {
    if patterns.starts_with("|1|") {
        return hashed_match(patterns, name);
    }
    let mut matched = false;
    for pat in patterns.split(',') {
        if let Some(neg) = pat.strip_prefix('!') {
            if wildcard(neg, name) {
                return false;
            }
        } else if wildcard(pat, name) {
            matched = true;
        }
    }
    matched
}

impl KnownHosts {
    /// Load several files; a missing file is just empty (as for OpenSSH).
    pub fn load(files: &[PathBuf]) -> Result<Self, HostKeyError> {
        let mut all = KnownHosts::default();
        for f in files {
            match std::fs::read_to_string(f) {
                Ok(text) => all.entries.extend(Self::parse(&text, f).entries),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(HostKeyError::Read {
                        file: f.clone(),
                        source,
                    });
                }
            }
        }
        Ok(all)
    }

    pub fn parse(text: &str, file: &Path) -> Self {
        let mut entries = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let mut first = words.next().unwrap_or("");
            let marker = match first {
                "@revoked" => Marker::Revoked,
                "@cert-authority" => Marker::CertAuthority,
                _ => Marker::None,
            };
            if marker != Marker::None {
                first = words.next().unwrap_or("");
            }
            let (Some(algo), Some(blob)) = (words.next(), words.next()) else {
                tracing::debug!(
                    "{}:{}: not a known_hosts entry, skipped",
                    file.display(),
                    i + 1
                );
                continue;
            };
            entries.push(Entry {
                file: file.to_path_buf(),
                line: i + 1,
                marker,
                patterns: first.to_string(),
                key: format!("{algo} {blob}"),
            });
        }
        KnownHosts { entries }
    }

    /// Key types known_hosts holds for this host, so the client can ask the
    /// server for one of those first (as OpenSSH does). Without this, a host
    /// recorded with only its ECDSA key would present Ed25519 and look changed.
    pub fn known_algorithms(&self, host: &str, port: u16) -> Vec<String> {
        let name = lookup_name(host, port);
        let mut out: Vec<String> = Vec::new();
        for e in &self.entries {
            if e.marker == Marker::None && host_matches(&e.patterns, &name) {
                let algo = algorithm(&e.key).to_string();
                if !out.contains(&algo) {
                    out.push(algo);
                }
            }
        }
        out
    }

    pub fn check(&self, host: &str, port: u16, key: &str) -> Verdict {
        let key = normalize(key);
        let name = lookup_name(host, port);
        if let Some(r) = self
            .entries
            .iter()
            .find(|e| e.marker == Marker::Revoked && e.key == key)
        {
            return Verdict::Revoked {
                file: r.file.clone(),
                line: r.line,
            };
        }
        let matching: Vec<&Entry> = self
            .entries
            .iter()
            .filter(|e| e.marker == Marker::None && host_matches(&e.patterns, &name))
            .collect();
        if let Some(t) = matching.iter().find(|e| e.key == key) {
            return Verdict::Trusted {
                file: t.file.clone(),
                line: t.line,
            };
        }
        // Only a different key of the SAME type means "changed": another
        // type is simply not known yet (OpenSSH treats it so too).
        match matching
            .iter()
            .find(|e| algorithm(&e.key) == algorithm(&key))
        {
            Some(other) => Verdict::Changed {
                file: other.file.clone(),
                line: other.line,
                known_fingerprint: fingerprint(&other.key).unwrap_or_else(|| other.key.clone()),
            },
            None => Verdict::Unknown,
        }
    }
}

/// The whole policy decision, as the SSH transport calls it after the server
/// presented `key`.
pub fn verify(
    policy: HostKeyPolicy,
    files: &[PathBuf],
    host: &str,
    port: u16,
    key: &str,
) -> Result<Accepted, HostKeyError> {
    let offered = fingerprint(key).unwrap_or_else(|| normalize(key));
    let known = KnownHosts::load(files)?;
    match known.check(host, port, key) {
        Verdict::Revoked { file, line } => Err(HostKeyError::Revoked {
            host: host.to_string(),
            file,
            line,
            fingerprint: offered,
        }),
        Verdict::Trusted { .. } => Ok(Accepted::Known),
        _ if policy == HostKeyPolicy::Off => Ok(Accepted::Unchecked),
        Verdict::Changed {
            file,
            line,
            known_fingerprint,
        } => Err(HostKeyError::Changed {
            host: host.to_string(),
            file,
            line,
            known: known_fingerprint,
            offered,
        }),
        Verdict::Unknown => match (policy, files.first()) {
            (HostKeyPolicy::AcceptNew, Some(file)) => {
                append(file, host, port, key).map_err(|source| HostKeyError::Write {
                    host: host.to_string(),
                    file: file.clone(),
                    source,
                })?;
                Ok(Accepted::Learned { file: file.clone() })
            }
            _ => Err(HostKeyError::Unknown {
                host: host.to_string(),
                files: files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                fingerprint: offered,
            }),
        },
    }
}

fn append(file: &Path, host: &str, port: u16, key: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(file)?;
    writeln!(f, "{} {}", lookup_name(host, port), normalize(key))?;
    f.sync_all()
}

#[cfg(test)]
mod tests;
