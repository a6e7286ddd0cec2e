//! Inventory: which machines exist, how to reach them, and their variables.
//!
//! Three layouts are read, told apart by content: parc's own YAML (strict:
//! every unknown key is an error with its location), and Ansible's YAML and
//! INI inventories, unchanged, so a team can bring what it has. All produce
//! the same [`Inventory`].
//!
//! Variable precedence, lowest first (shallow merge: a key replaces the whole
//! value), Ansible's:
//! 1. inventory-wide `vars` (Ansible: `all.vars`, `[all:vars]`);
//! 2. group vars, outer groups before the groups nested in them; groups at the
//!    same depth in alphabetical order;
//! 3. `group_vars/all`, then `group_vars/GROUP` in the order of 2;
//! 4. the host's own vars, then `host_vars/HOST`.
//!
//! A play then layers profile defaults below and playbook vars and `-e` above.

mod ansible;
pub mod extra_vars;
mod ini;
mod listing;
mod model;
mod native;
mod paths;
mod pattern;
mod pyliteral;
mod ranges;
mod var_dirs;
pub(crate) mod yaml11;

use std::path::PathBuf;

use crate::location::Location;
use crate::transport::known_hosts::HostKeyPolicy;
use crate::transport::ssh_config::SshArgs;

/// Variables as parsed from YAML. JSON values because minijinja, reports and
/// `--json` output all consume serde values.
pub type Vars = serde_json::Map<String, serde_json::Value>;

/// How parc reaches a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionKind {
    #[default]
    Ssh,
    /// Run on the controller itself (no SSH), e.g. for imaging a local file.
    Local,
}

/// Privilege escalation for non-root users.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Become {
    /// Target user, `root` unless set.
    pub user: String,
    /// Environment variable holding the sudo password; `None` means sudo must not ask
    /// (NOPASSWD) or the CLI prompts for it.
    pub password_env: Option<String>,
}

/// Connection settings of a host after defaults were applied. Every field left
/// `None` falls back to `~/.ssh/config` (via `ssh -G`) and then to OpenSSH defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ConnectionParams {
    pub kind: ConnectionKind,
    pub address: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub identity_file: Option<PathBuf>,
    /// Jump host: an inventory host name or `[user@]host[:port]`.
    pub jump: Option<String>,
    pub known_hosts: Option<PathBuf>,
    pub host_key_policy: Option<HostKeyPolicy>,
    /// `-F` and `-o` options for OpenSSH (Ansible's `ansible_ssh_common_args` and
    /// `ansible_ssh_extra_args`): given to `ssh -G`, so they mean what they mean
    /// to ssh.
    pub ssh_args: SshArgs,
    pub become_: Option<Become>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Host {
    pub name: String,
    pub connection: ConnectionParams,
    /// The host's own variables (not merged with groups; see `Inventory::vars_for`).
    pub vars: Vars,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Group {
    pub name: String,
    pub hosts: Vec<String>,
    pub children: Vec<String>,
    pub vars: Vars,
}

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("cannot read inventory: {source}")]
    Read { source: crate::confine::ReadError },
    #[error("{location}: {message}")]
    Invalid { location: Location, message: String },
    #[error("{path}: {message}")]
    InvalidNoLocation { path: PathBuf, message: String },
}

#[derive(Debug, thiserror::Error)]
pub enum PatternError {
    #[error("empty host pattern: give `all`, a group, a host name or a glob such as `ws-*`")]
    Empty,
    #[error("host pattern `{pattern}`: `{term}` matches no host or group in {inventory}")]
    NoMatch {
        pattern: String,
        term: String,
        inventory: PathBuf,
    },
    #[error(
        "host pattern `{pattern}` selects no host (its exclusions/intersections removed them all)"
    )]
    EmptyResult { pattern: String },
    #[error("host pattern `{pattern}`: bad term `{term}`: {reason}")]
    BadTerm {
        pattern: String,
        term: String,
        reason: String,
    },
    #[error("host pattern `{term}`: {source}")]
    PastRun {
        term: String,
        source: Box<crate::report::ReportError>,
    },
    #[error("host pattern `{term}`: no host ended so in run {run_id}; nothing to retry")]
    NoPastHost { term: String, run_id: String },
    #[error(
        "host pattern `{term}`: the hosts that ended so in run {run_id} ({}) are no longer in the inventory",
        hosts.join(", ")
    )]
    PastHostsGone {
        term: String,
        run_id: String,
        hosts: Vec<String>,
    },
}

pub use model::Inventory;

#[cfg(test)]
mod tests;
