//! PLACEHOLDER until the sshkeys branch is merged.
use std::path::{Path, PathBuf};
#[derive(Debug, Clone)]
pub struct SshResolved {
    pub hostname: String,
    pub port: u16,
    pub user: Option<String>,
    pub identity_files: Vec<PathBuf>,
    pub proxy_jump: Option<String>,
    pub user_known_hosts_files: Vec<PathBuf>,
    pub connect_timeout: Option<u64>,
}
#[derive(Debug, thiserror::Error)]
pub enum SshConfigError {
    #[error("x")]
    X,
}
pub fn resolve(alias: &str, _config_file: Option<&Path>) -> Result<SshResolved, SshConfigError> {
    Ok(SshResolved {
        hostname: alias.into(),
        port: 22,
        user: None,
        identity_files: vec![],
        proxy_jump: None,
        user_known_hosts_files: vec![],
        connect_timeout: None,
    })
}
