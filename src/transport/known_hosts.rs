//! API CONTRACT (filled in by the known_hosts work).
use std::path::PathBuf;

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

#[derive(Debug, thiserror::Error)]
pub enum HostKeyError {
    #[error("placeholder {0}")]
    Placeholder(String),
}

pub enum Accepted {
    Known,
    Learned { file: PathBuf },
    Unchecked,
}

pub fn verify(
    _policy: HostKeyPolicy,
    _files: &[PathBuf],
    _host: &str,
    _port: u16,
    _key_openssh: &str,
) -> Result<Accepted, HostKeyError> {
    unimplemented!()
}
