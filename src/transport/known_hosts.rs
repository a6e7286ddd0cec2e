//! Host-key verification against OpenSSH `known_hosts` files, deciding exactly
//! as the OpenSSH 9.2 client does (`sshconnect.c` `check_host_key`,
//! `hostfile.c`), proven against it by the differential test in
//! `tests/host_keys.rs`.
//!
//! Written here rather than taken from russh because russh's helper ignores
//! `@revoked` markers, wildcard patterns and global files, and all of them matter
//! on a real fleet. The rules, in OpenSSH's words (sshd(8) "SSH_KNOWN_HOSTS FILE
//! FORMAT"):
//! - every user file, then every global file, is read; lines whose host field
//!   matches the looked-up name count (comma-separated `*`/`?` patterns, `!`
//!   negation, hashed `|1|salt|hmac` names, all case-insensitive);
//! - keys are compared decoded (an `rsa-sha2-256` line names an RSA key; a blob
//!   whose real type is not the declared one, or that does not decode, is a bad
//!   line and never a known key);
//! - the offered key equal to a known key is trusted; any other known key, of any
//!   type, makes the host CHANGED; no key at all makes it new;
//! - a matching `@revoked` line wins over everything;
//! - for a non-22 port the name is `[host]:port`, and a host new under that name is
//!   looked up again under the bare name (trusted only if a key matches there);
//! - `HostKeyAlias` replaces the name, for lookups and writes.

use std::collections::HashSet;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use russh::keys::HashAlg;
use russh::keys::ssh_key::public::KeyData;

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
    /// Accept unknown keys (recorded, as OpenSSH's `StrictHostKeyChecking no`
    /// does) and changed keys (not recorded); parc warns. Revoked keys are still
    /// refused.
    Off,
}

impl HostKeyPolicy {
    /// OpenSSH's `StrictHostKeyChecking` value, as written in a config or an
    /// `-o` option, or as `ssh -G` prints it (`true`/`false`). `ask` cannot prompt
    /// in a fleet run and OpenSSH refuses in batch mode, so it is strict.
    pub fn from_ssh_option(value: &str) -> Option<Self> {
        match value.to_ascii_lowercase().as_str() {
            "yes" | "true" | "ask" => Some(HostKeyPolicy::Strict),
            "accept-new" => Some(HostKeyPolicy::AcceptNew),
            "no" | "off" | "false" => Some(HostKeyPolicy::Off),
            _ => None,
        }
    }
}

/// Where and how one host's key is checked: the ssh options that matter, after
/// inventory, command line and ssh config were merged.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostKeyCheck {
    pub policy: HostKeyPolicy,
    /// `UserKnownHostsFile`: read first; accept-new writes to the first one.
    /// Empty (`none`) means nothing is ever recorded.
    pub user_files: Vec<PathBuf>,
    /// `GlobalKnownHostsFile`: read after the user files, never written.
    pub global_files: Vec<PathBuf>,
    /// `HostKeyAlias`: the name looked up and written instead of the host's.
    pub alias: Option<String>,
    /// `HashKnownHosts`: accept-new writes `|1|salt|hmac` instead of the name.
    pub hash: bool,
}

impl HostKeyCheck {
    /// Every file read, user files first, as OpenSSH reads them.
    pub fn files(&self) -> impl Iterator<Item = &PathBuf> {
        self.user_files.iter().chain(&self.global_files)
    }

    /// The name known_hosts is searched for: the alias, else `host` or
    /// `[host]:port`, lowercase as OpenSSH makes it.
    pub fn lookup_name(&self, host: &str, port: u16) -> String {
        match &self.alias {
            Some(alias) => alias.to_ascii_lowercase(),
            None => lookup_name(host, port),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    hosts: String,
    key: KeyData,
}

/// The usable entries of one or more known_hosts files.
#[derive(Debug, Clone, Default)]
pub struct KnownHosts {
    entries: Vec<Entry>,
}

/// A line of a known_hosts file that is not used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    pub file: PathBuf,
    pub line: usize,
    pub reason: &'static str,
}

/// The verdict for one name and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Trusted {
        file: PathBuf,
        line: usize,
    },
    Unknown,
    /// Known under this name with other keys only: the last one read is named, as
    /// OpenSSH's "Offending key" does.
    Changed {
        file: PathBuf,
        line: usize,
        known_fingerprint: String,
        known_type: String,
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
    /// Unknown, trusted on first use (`accept-new`, or `off`) and appended to `file`.
    Learned { file: PathBuf },
    /// Unknown, trusted on first use, but it could not be recorded:
    /// OpenSSH connects anyway, and so does parc, with a warning.
    NotRecorded { file: PathBuf, reason: String },
    /// Changed, accepted anyway (`off`): the caller warns.
    Unchecked,
}

/// Why a host key was refused. Every message says what happened to the host
/// (nothing was sent) and what to do.
#[derive(Debug, thiserror::Error)]
pub enum HostKeyError {
    #[error(
        "host key for {host} is unknown: {name} is in none of {files} (server offered {key_type} \
         {fingerprint}). parc refused to connect; nothing was sent to this host. If this is a new \
         machine, verify the fingerprint and run again with `--host-key-policy accept-new` to record it"
    )]
    Unknown {
        host: String,
        name: String,
        files: String,
        key_type: String,
        fingerprint: String,
    },
    #[error(transparent)]
    Changed(Box<ChangedKey>),
    #[error(
        "host key for {host} ({key_type} {fingerprint}) is REVOKED by {file}:{line}. parc refused to \
         connect, whatever the host-key policy; nothing was sent to this host; someone may be \
         impersonating it with a stolen key"
    )]
    Revoked {
        host: String,
        file: PathBuf,
        line: usize,
        key_type: String,
        fingerprint: String,
    },
}

/// A host known with other keys than the one it offered (boxed in
/// [`HostKeyError`]: it carries both keys and where the old one is).
#[derive(Debug, thiserror::Error)]
#[error(
    "host key for {host} has CHANGED: {file}:{line} holds {known_type} {known} for {name}, the \
     server offered {offered_type} {offered}. parc refused to connect; nothing was sent to this \
     host; someone may be impersonating it. If the machine was reinstalled, verify the new \
     fingerprint, remove the old key (`ssh-keygen -R {} -f {}`) and run again with \
     `--host-key-policy accept-new`",
    super::quote(name),
    super::quote(&file.display().to_string())
)]
pub struct ChangedKey {
    pub host: String,
    /// The name looked up: `[host]:port`, or the alias.
    pub name: String,
    pub file: PathBuf,
    pub line: usize,
    pub known_type: String,
    pub known: String,
    pub offered_type: String,
    pub offered: String,
}

impl HostKeyError {
    /// Changed and revoked keys are alarms (someone may be impersonating the
    /// host); an unknown key is only a host not yet recorded.
    pub fn is_alarm(&self) -> bool {
        matches!(
            self,
            HostKeyError::Changed(_) | HostKeyError::Revoked { .. }
        )
    }
}

/// `host` for port 22, else `[host]:port`, lowercase, as OpenSSH writes and
/// looks up names.
pub fn lookup_name(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 22 || port == 0 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

/// `SHA256:...` as `ssh-keygen -l` prints it.
pub fn fingerprint(key: &KeyData) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The key type as OpenSSH names it in messages (`ssh-ed25519`, `ssh-rsa`, ...).
pub fn key_type(key: &KeyData) -> String {
    match plain(key) {
        KeyData::Rsa(_) => "ssh-rsa".to_string(),
        other => other.algorithm().as_str().to_string(),
    }
}

/// OpenSSH's key "type" (`sshkey_type_plain` plus the ECDSA curve): what two
/// keys must share to be compared, and what a line's declared type must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Rsa,
    Dsa,
    Ed25519,
    Ecdsa(&'static str),
    SkEd25519,
    SkEcdsa,
}

/// The kind a key-type name declares and whether it is a certificate type, by
/// OpenSSH's table of full names (`peek_type_nid`); `None` for unknown names.
fn declared_kind(name: &str) -> Option<(Kind, bool)> {
    let (plain, cert) = match name.strip_suffix("-cert-v01@openssh.com") {
        Some(p) => (p, true),
        None => (name, false),
    };
    let kind = match plain {
        "ssh-rsa" | "rsa-sha2-256" | "rsa-sha2-512" => Kind::Rsa,
        "ssh-dss" => Kind::Dsa,
        "ssh-ed25519" => Kind::Ed25519,
        "ecdsa-sha2-nistp256" => Kind::Ecdsa("nistp256"),
        "ecdsa-sha2-nistp384" => Kind::Ecdsa("nistp384"),
        "ecdsa-sha2-nistp521" => Kind::Ecdsa("nistp521"),
        "sk-ssh-ed25519@openssh.com" => Kind::SkEd25519,
        "sk-ecdsa-sha2-nistp256@openssh.com" => Kind::SkEcdsa,
        _ => return None,
    };
    Some((kind, cert))
}

fn plain(key: &KeyData) -> &KeyData {
    match key {
        KeyData::Certificate(cert) => cert.public_key(),
        other => other,
    }
}

fn kind_of(key: &KeyData) -> Option<Kind> {
    Some(match plain(key) {
        KeyData::Rsa(_) => Kind::Rsa,
        KeyData::Dsa(_) => Kind::Dsa,
        KeyData::Ed25519(_) => Kind::Ed25519,
        KeyData::Ecdsa(k) => Kind::Ecdsa(match k.curve() {
            russh::keys::EcdsaCurve::NistP256 => "nistp256",
            russh::keys::EcdsaCurve::NistP384 => "nistp384",
            russh::keys::EcdsaCurve::NistP521 => "nistp521",
        }),
        KeyData::SkEd25519(_) => Kind::SkEd25519,
        KeyData::SkEcdsaSha2NistP256(_) => Kind::SkEcdsa,
        _ => return None,
    })
}

/// `sshkey_equal`: same kind and same public part (a certificate line compares
/// by the key it certifies).
fn same_key(a: &KeyData, b: &KeyData) -> bool {
    plain(a) == plain(b)
}

/// `sshkey_read`: `TYPE BASE64` where the blob decodes (strict base64, as
/// OpenSSH's `b64_pton`: padding required, whitespace ignored), holds nothing
/// after the key, and is of the declared type.
fn parse_key(declared: &str, blob: &str) -> Result<KeyData, &'static str> {
    let (kind, cert) = declared_kind(declared).ok_or("unknown key type")?;
    let text: String = blob.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let bytes = STANDARD
        .decode(text.as_bytes())
        .map_err(|_| "key is not valid base64")?;
    let key = russh::keys::PublicKey::from_bytes(&bytes)
        .map_err(|_| "key does not decode")?
        .key_data()
        .clone();
    if kind_of(&key) != Some(kind) || key.is_certificate() != cert {
        return Err("key is not of the type the line declares");
    }
    Ok(key)
}

/// OpenSSH wildcard match: `*` any run, `?` one character.
fn wildcard(pattern: &[u8], name: &[u8]) -> bool {
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < name.len() {
        if pi < pattern.len() && (pattern[pi] == b'?' || pattern[pi] == name[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < pattern.len() && pattern[pi] == b'*' {
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
    while pi < pattern.len() && pattern[pi] == b'*' {
        pi += 1;
    }
    pi == pattern.len()
}

const HASH_MAGIC: &str = "|1|";
/// HMAC-SHA1 salt and digest length.
const SHA1_LEN: usize = 20;

fn hash_with_salt(salt: &[u8], name: &str) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(salt).expect("HMAC accepts any key length");
    mac.update(name.as_bytes());
    format!(
        "{HASH_MAGIC}{}|{}",
        STANDARD.encode(salt),
        STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// A hashed host field as `host_hash` checks it: the salt must decode to 20
/// bytes, and the whole field must equal the recomputed hash. `None` when the
/// field is malformed (OpenSSH then treats the line as bad).
fn hashed_match(field: &str, name: &str) -> Option<bool> {
    let rest = field.strip_prefix(HASH_MAGIC)?;
    let (salt, _) = rest.split_once('|')?;
    let salt = STANDARD.decode(salt).ok()?;
    if salt.len() != SHA1_LEN {
        return None;
    }
    Some(hash_with_salt(&salt, name) == field)
}

/// Whether a line's host field applies to `name` (already lowercase): some
/// pattern matches and no negated pattern does; patterns compare lowercase.
/// `None` for a malformed hashed field.
fn host_matches(field: &str, name: &str) -> Option<bool> {
    if field.starts_with('|') {
        return hashed_match(field, name);
    }
    let pattern = field.to_ascii_lowercase();
    let mut matched = false;
    for pat in pattern.split(',') {
        match pat.strip_prefix('!') {
            Some(neg) if wildcard(neg.as_bytes(), name.as_bytes()) => return Some(false),
            Some(_) => {}
            None if wildcard(pat.as_bytes(), name.as_bytes()) => matched = true,
            None => {}
        }
    }
    Some(matched)
}

/// One known_hosts line as `hostkeys_foreach_file` reads it. `Ok(None)` for
/// comments and blank lines.
fn parse_line(line: &str) -> Result<Option<(Marker, &str, KeyData)>, &'static str> {
    let is_blank = |c: char| c == ' ' || c == '\t';
    let mut rest = line.trim_start_matches(is_blank);
    if rest.is_empty() || rest.starts_with('#') {
        return Ok(None);
    }
    let mut marker = Marker::None;
    while let Some(after) = rest.strip_prefix('@') {
        if marker != Marker::None {
            return Err("more than one marker");
        }
        let end = after.find(is_blank).ok_or("marker without a host field")?;
        marker = match &after[..end] {
            "revoked" => Marker::Revoked,
            "cert-authority" => Marker::CertAuthority,
            _ => return Err("unknown marker"),
        };
        rest = after[end..].trim_start_matches(is_blank);
    }
    let end = rest.find(is_blank).unwrap_or(rest.len());
    let hosts = &rest[..end];
    let rest = rest[end..].trim_start_matches(is_blank);
    if rest.is_empty() || rest.starts_with('#') {
        return Err("no key after the host field");
    }
    let end = rest.find(is_blank).ok_or("no key after the key type")?;
    let declared = &rest[..end];
    let rest = rest[end..].trim_start_matches(is_blank);
    if rest.is_empty() {
        return Err("no key after the key type");
    }
    let blob = &rest[..rest.find(is_blank).unwrap_or(rest.len())];
    Ok(Some((marker, hosts, parse_key(declared, blob)?)))
}

/// Bad lines are warned about once per process, not once per host connecting.
fn warn_once(bad: &BadLine) {
    static WARNED: OnceLock<Mutex<HashSet<(PathBuf, usize)>>> = OnceLock::new();
    let mut warned = WARNED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if warned.insert((bad.file.clone(), bad.line)) {
        tracing::warn!(
            "{}:{}: {}; line skipped (as OpenSSH does)",
            bad.file.display(),
            bad.line,
            bad.reason
        );
    }
}

impl KnownHosts {
    /// Load several files in order, warning about what cannot be used. Nothing
    /// here is fatal: a missing file is empty, an unreadable one (or a directory)
    /// is skipped, as OpenSSH does.
    pub fn load<'a>(files: impl IntoIterator<Item = &'a PathBuf>) -> Self {
        let mut all = KnownHosts::default();
        for f in files {
            match std::fs::read(f) {
                Ok(bytes) => {
                    let (known, bad) = Self::parse(&bytes, f);
                    all.entries.extend(known.entries);
                    bad.iter().for_each(warn_once);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(
                        "cannot read known_hosts file {}: {e}; skipped (as OpenSSH does)",
                        f.display()
                    )
                }
            }
        }
        all
    }

    /// Parse one file's bytes; lines are split on `\n` and cut at a NUL, as C
    /// reads them. Bytes that are not UTF-8 never match an ASCII host name nor
    /// decode as base64, so replacing them loses nothing.
    pub fn parse(bytes: &[u8], file: &Path) -> (Self, Vec<BadLine>) {
        let mut entries = Vec::new();
        let mut bad = Vec::new();
        for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
            let raw = raw.split(|b| *b == 0).next().unwrap_or_default();
            let text = String::from_utf8_lossy(raw);
            let line = i + 1;
            match parse_line(&text) {
                Ok(None) => {}
                Ok(Some((marker, hosts, key))) => {
                    if hosts.starts_with('|') && hashed_match(hosts, "").is_none() {
                        bad.push(BadLine {
                            file: file.to_path_buf(),
                            line,
                            reason: "malformed hashed host name",
                        });
                        continue;
                    }
                    entries.push(Entry {
                        file: file.to_path_buf(),
                        line,
                        marker,
                        hosts: hosts.to_string(),
                        key,
                    })
                }
                Err(reason) => bad.push(BadLine {
                    file: file.to_path_buf(),
                    line,
                    reason,
                }),
            }
        }
        (KnownHosts { entries }, bad)
    }

    fn for_name<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries
            .iter()
            .filter(move |e| host_matches(&e.hosts, name) == Some(true))
    }

    /// `check_key_in_hostkeys`: the first equal key trusts, any other key means
    /// changed, a matching revocation wins.
    pub fn check(&self, name: &str, key: &KeyData) -> Verdict {
        if let Some(r) = self
            .for_name(name)
            .find(|e| e.marker == Marker::Revoked && same_key(&e.key, key))
        {
            return Verdict::Revoked {
                file: r.file.clone(),
                line: r.line,
            };
        }
        let mut verdict = Verdict::Unknown;
        for e in self.for_name(name).filter(|e| e.marker == Marker::None) {
            if same_key(&e.key, key) {
                return Verdict::Trusted {
                    file: e.file.clone(),
                    line: e.line,
                };
            }
            verdict = Verdict::Changed {
                file: e.file.clone(),
                line: e.line,
                known_fingerprint: fingerprint(&e.key),
                known_type: key_type(&e.key),
            };
        }
        verdict
    }

    /// `order_hostkeyalgs`: the host-key algorithms to offer, from `configured`
    /// (ssh's `HostKeyAlgorithms`, in its order). When a key of the kind of the
    /// first algorithm is known, the list is used as is; otherwise algorithms of
    /// kinds known for `name` go first, the rest keep their order. Without this a
    /// host recorded with only its ECDSA key would present Ed25519 and be
    /// refused as changed.
    pub fn algorithm_order(&self, name: &str, configured: &[String]) -> Vec<String> {
        let known: Vec<Kind> = self
            .for_name(name)
            .filter(|e| e.marker == Marker::None)
            .filter_map(|e| kind_of(&e.key))
            .collect();
        let is_known =
            |alg: &String| declared_kind(alg).is_some_and(|(kind, _)| known.contains(&kind));
        if configured.first().is_some_and(is_known) {
            return configured.to_vec();
        }
        let (first, last): (Vec<String>, Vec<String>) =
            configured.iter().cloned().partition(is_known);
        first.into_iter().chain(last).collect()
    }
}

/// Characters OpenSSH never writes into a known_hosts name
/// (`check_host_key`: "invalid hostname; will not record").
fn recordable(host: &str) -> bool {
    !host.contains(['@', '?', '*', '#', '[', ']', '|', '\'', '"', '\\'])
}

/// The whole decision, as the SSH transport calls it after the server presented
/// `key` (`check_host_key` in OpenSSH's sshconnect.c).
pub fn verify(
    check: &HostKeyCheck,
    host: &str,
    port: u16,
    key: &KeyData,
) -> Result<Accepted, HostKeyError> {
    let known = KnownHosts::load(check.files());
    let name = check.lookup_name(host, port);
    let offered = fingerprint(key);
    match known.check(&name, key) {
        Verdict::Trusted { .. } => Ok(Accepted::Known),
        Verdict::Revoked { file, line } => Err(HostKeyError::Revoked {
            host: host.to_string(),
            file,
            line,
            key_type: key_type(key),
            fingerprint: offered,
        }),
        Verdict::Changed { .. } if check.policy == HostKeyPolicy::Off => Ok(Accepted::Unchecked),
        Verdict::Changed {
            file,
            line,
            known_fingerprint,
            known_type,
        } => Err(HostKeyError::Changed(Box::new(ChangedKey {
            host: host.to_string(),
            name,
            file,
            line,
            known_type,
            known: known_fingerprint,
            offered_type: key_type(key),
            offered,
        }))),
        Verdict::Unknown => {
            // A host new as `[host]:port` is trusted by a matching key recorded
            // for the bare host: OpenSSH's quiet second lookup, which trusts only
            // an equal key and otherwise (changed, revoked, unknown) leaves the
            // host new under its `[host]:port` name.
            if check.alias.is_none()
                && port != 22
                && matches!(
                    known.check(&lookup_name(host, 22), key),
                    Verdict::Trusted { .. }
                )
            {
                return Ok(Accepted::Known);
            }
            let unknown = || HostKeyError::Unknown {
                host: host.to_string(),
                name: name.clone(),
                files: check
                    .files()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                key_type: key_type(key),
                fingerprint: offered.clone(),
            };
            // OpenSSH refuses a new key it could not record, whatever the policy.
            let Some(file) = check.user_files.first().filter(|_| recordable(host)) else {
                return Err(unknown());
            };
            // `off` records a new key just as accept-new does (OpenSSH's
            // `StrictHostKeyChecking no` adds it too).
            match check.policy {
                HostKeyPolicy::Strict => Err(unknown()),
                HostKeyPolicy::AcceptNew | HostKeyPolicy::Off => {
                    match append(file, &name, key, check.hash) {
                        Ok(()) => Ok(Accepted::Learned { file: file.clone() }),
                        Err(e) => Ok(Accepted::NotRecorded {
                            file: file.clone(),
                            reason: e.to_string(),
                        }),
                    }
                }
            }
        }
    }
}

/// The line OpenSSH's `write_host_entry` writes: the name (or its hash) and
/// the key, no comment.
fn entry_line(name: &str, key: &KeyData, hash: bool) -> std::io::Result<String> {
    let host = if hash {
        let mut salt = [0u8; SHA1_LEN];
        getrandom::getrandom(&mut salt).map_err(|e| std::io::Error::other(e.to_string()))?;
        hash_with_salt(&salt, name)
    } else {
        name.to_string()
    };
    let text = russh::keys::PublicKey::from(key.clone())
        .to_openssh()
        .map_err(std::io::Error::other)?;
    Ok(format!("{host} {}\n", text.trim_end()))
}

/// Append a learned key as OpenSSH does: the file's directory created (mode
/// 0700) if missing, a newline first if the file lacks a final one, the file
/// created with mode 0600.
fn append(file: &Path, name: &str, key: &KeyData, hash: bool) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let line = entry_line(name, key, hash)?;
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .mode(0o600)
        .open(file)?;
    let mut text = String::new();
    if f.seek(SeekFrom::End(-1)).is_ok() {
        let mut last = [0u8; 1];
        f.read_exact(&mut last)?;
        if last[0] != b'\n' {
            text.push('\n');
        }
    }
    text.push_str(&line);
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests;
