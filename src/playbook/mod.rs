//! Playbooks: which profiles go to which hosts, in what batches, with what
//! failure budget.
//!
//! ```yaml
//! - name: Office rollout
//!   hosts: office
//!   profiles: [office]
//!   vars: {proxy: "http://proxy:3128"}
//!   batches: [1, 10%, 100%]   # canary, then waves; the last size repeats
//!   parallel: 20
//!   max_failures: 10%         # count or percentage of the play's hosts
//! ```

mod batches;

pub use batches::{Amount, batches};

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::inventory::Vars;
use crate::profile::{self, Profile, ProfileError};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaySpec {
    pub name: Option<String>,
    pub hosts: String,
    #[serde(default)]
    pub profiles: Vec<String>,
    #[serde(default)]
    pub vars: Vars,
    #[serde(default)]
    pub secret_vars: Vec<String>,
    /// Batch sizes; empty means all hosts in one batch.
    #[serde(default)]
    pub batches: Vec<Amount>,
    /// Hosts worked on at once within a batch (default: the CLI's --parallel).
    pub parallel: Option<usize>,
    /// Failed + unreachable hosts tolerated before later batches are cancelled.
    pub max_failures: Option<Amount>,
    /// What to do with a host whose apply or verification fails. Default:
    /// `fallback` when the profile names one, else `rollback`.
    pub on_failure: Option<OnFailure>,
    /// Journals kept on each host (older ones are pruned).
    pub keep_journals: Option<usize>,
    /// Dead-man switch (`90s`, `2m`): each host restores itself unless parc
    /// confirms the change over a new connection within this time.
    #[serde(default, deserialize_with = "batches::duration")]
    pub confirm: Option<std::time::Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Restore the host exactly to its state before the run.
    Rollback,
    /// Roll back, then converge the profile's `fallback:` profile (degraded mode).
    Fallback,
    /// Leave the host as applied and report it failed.
    Keep,
}

/// A play ready to run: its profiles loaded and merged.
#[derive(Debug, Clone)]
pub struct Play {
    pub name: String,
    pub spec: PlaySpec,
    pub profile: Profile,
    /// The fallback profile named by the play's profiles, loaded.
    pub fallback: Option<Profile>,
}

impl Play {
    /// `on_failure` as it applies: explicit, else fallback when there is one.
    pub fn on_failure(&self) -> OnFailure {
        self.spec.on_failure.unwrap_or(if self.fallback.is_some() {
            OnFailure::Fallback
        } else {
            OnFailure::Rollback
        })
    }
}

#[derive(Debug)]
pub struct Playbook {
    pub path: PathBuf,
    pub plays: Vec<Play>,
}

#[derive(Debug, thiserror::Error)]
pub enum PlaybookError {
    #[error("cannot read playbook {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error("{path}: play `{play}` lists no profiles")]
    NoProfiles { path: PathBuf, play: String },
}

/// Where a playbook's profiles live: `../profiles` beside the playbooks
/// directory (the layout of this repository), else `./profiles`.
pub fn profiles_dir(playbook: &Path) -> PathBuf {
    let beside = playbook
        .parent()
        .and_then(Path::parent)
        .map(|p| p.join("profiles"));
    match beside {
        Some(p) if p.is_dir() => p,
        _ => PathBuf::from("profiles"),
    }
}

pub fn load(path: &Path) -> Result<Playbook, PlaybookError> {
    let text = std::fs::read_to_string(path).map_err(|source| PlaybookError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let specs: Vec<PlaySpec> =
        serde_norway::from_str(&text).map_err(|e| profile::yaml_error(path, e))?;
    let dir = profiles_dir(path);
    let mut plays = Vec::new();
    for (i, spec) in specs.into_iter().enumerate() {
        let name = spec
            .name
            .clone()
            .unwrap_or_else(|| format!("play {}", i + 1));
        if spec.profiles.is_empty() {
            return Err(PlaybookError::NoProfiles {
                path: path.to_path_buf(),
                play: name,
            });
        }
        let profile = profile::load_many(&dir, &spec.profiles)?;
        let fallback = match &profile.fallback {
            Some(name) => Some(profile::load(&dir, name)?),
            None => None,
        };
        plays.push(Play {
            name,
            spec,
            profile,
            fallback,
        });
    }
    Ok(Playbook {
        path: path.to_path_buf(),
        plays,
    })
}
