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
//!   image:                    # optional, deployed to each host before its profiles
//!     file: ../images/golden.img   # relative to the playbook
//!     target: /dev/sda
//! ```

mod batches;

pub use batches::{Amount, batches, duration};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::confine::{ReadError, Tree, read_regular_to_string};
use crate::image::{ImageError, ImageSource};
use crate::location::{self, Location, PositionMap};

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
    /// A disk image written to each host before its profiles are applied.
    pub image: Option<ImageStage>,
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

/// The `image:` stage of a play: a fresh machine gets the golden image, then
/// the profiles make it its user's workstation, in one rollout.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageStage {
    /// The image file, relative to the playbook's directory; its manifest must
    /// be beside it (`parc image build`).
    pub file: PathBuf,
    /// Device or disk file on each host.
    pub target: String,
    /// Write even if the target is mounted (never if it backs the running system).
    #[serde(default)]
    pub force: bool,
}

/// A play ready to run: its profiles loaded and merged.
#[derive(Debug, Clone)]
pub struct Play {
    pub name: String,
    pub spec: PlaySpec,
    pub profile: Profile,
    /// The fallback profile named by the play's profiles, loaded.
    pub fallback: Option<Profile>,
    /// The `image:` stage's image, already checked against its manifest.
    pub image: Option<Arc<ImageSource>>,
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

impl Playbook {
    /// Every play's profiles (fallbacks included) cut down to what `--tags`
    /// and `--skip-tags` take.
    pub fn with_tags(mut self, filter: &crate::profile::TagFilter) -> Playbook {
        for play in &mut self.plays {
            play.profile = play.profile.clone().with_tags(filter);
            play.fallback = play.fallback.take().map(|f| f.with_tags(filter));
        }
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlaybookError {
    #[error("cannot read playbook: {source}")]
    Read { source: ReadError },
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error("{location}: play `{play}` lists no profiles and no image, so it would do nothing")]
    NoProfiles { location: Location, play: String },
    #[error("{location}: play `{play}`: {source}")]
    Image {
        location: Location,
        play: String,
        source: Box<ImageError>,
    },
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

/// Load a playbook and its profiles. Profiles and the files they name must
/// stay inside the profiles directory, or in one of `allow_outside`.
pub fn load(path: &Path, allow_outside: &[PathBuf]) -> Result<Playbook, PlaybookError> {
    let text = read_regular_to_string(path).map_err(|source| PlaybookError::Read { source })?;
    location::prescan(path, &text).map_err(ProfileError::from)?;
    let specs: Vec<PlaySpec> = serde_norway::from_str(&text)
        .map_err(|e| ProfileError::from(location::yaml_refusal(path, &text, e)))?;
    let tree = Tree::new(&profiles_dir(path), allow_outside);
    let positions = PositionMap::build(path, &text);
    let mut plays = Vec::new();
    for (i, spec) in specs.into_iter().enumerate() {
        let name = spec
            .name
            .clone()
            .unwrap_or_else(|| format!("play {}", i + 1));
        if spec.profiles.is_empty() && spec.image.is_none() {
            return Err(PlaybookError::NoProfiles {
                location: positions.locate(&i.to_string()),
                play: name,
            });
        }
        let names: Vec<_> = (spec.profiles.iter().enumerate())
            .map(|(j, n)| {
                (
                    n.clone(),
                    Some(positions.locate(&format!("{i}.profiles.{j}"))),
                )
            })
            .collect();
        let profile = profile::load_many(&tree, &names)?;
        let fallback = match &profile.fallback {
            Some(name) => Some(profile::load(&tree, name)?),
            None => None,
        };
        // The fallback converges a host being recovered, over the connection
        // its recovery holds: parc does not take such a host down again.
        if let Some(d) = fallback.as_ref().and_then(Profile::first_reboot) {
            return Err(ProfileError::Invalid {
                location: d.origin.locate("reboot"),
                message: format!(
                    "profile `{}` is a fallback profile, which cannot reboot: it is applied to hosts being recovered",
                    d.origin.profile
                ),
            }
            .into());
        }
        let image = match &spec.image {
            None => None,
            Some(stage) => {
                let file = path.parent().unwrap_or(Path::new(".")).join(&stage.file);
                let source = ImageSource::open(&file).map_err(|source| PlaybookError::Image {
                    location: positions.locate(&format!("{i}.image.file")),
                    play: name.clone(),
                    source: Box::new(source),
                })?;
                Some(Arc::new(source))
            }
        };
        plays.push(Play {
            name,
            spec,
            profile,
            fallback,
            image,
        });
    }
    Ok(Playbook {
        path: path.to_path_buf(),
        plays,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_stage_alone_is_a_play_and_a_bad_image_points_at_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("golden.img");
        std::fs::write(&image, vec![1u8; 65536]).unwrap();
        crate::image::build(&image, 65536, &|_| {}).unwrap();
        let book = dir.path().join("site.yml");
        std::fs::write(
            &book,
            "- hosts: all\n  image: {file: golden.img, target: /dev/sda}\n",
        )
        .unwrap();
        let loaded = load(&book, &[]).unwrap();
        assert!(loaded.plays[0].image.is_some());
        assert!(loaded.plays[0].profile.resources.is_empty());

        std::fs::write(
            &book,
            "- hosts: all\n  image:\n    file: missing.img\n    target: /dev/sda\n",
        )
        .unwrap();
        let err = load(&book, &[]).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("{}:3:11: play `play 1`", book.display())),
            "{err}"
        );
        assert!(err.contains("parc image build"), "{err}");

        std::fs::write(&book, "- hosts: all\n").unwrap();
        let err = load(&book, &[]).unwrap_err().to_string();
        assert!(err.contains("no profiles and no image"), "{err}");
    }

    #[test]
    fn a_fallback_profile_cannot_reboot() {
        let dir = tempfile::tempdir().unwrap();
        let profiles = dir.path().join("profiles");
        let books = dir.path().join("playbooks");
        std::fs::create_dir_all(&profiles).unwrap();
        std::fs::create_dir_all(&books).unwrap();
        std::fs::write(profiles.join("main.yml"), "fallback: safe\nresources: []\n").unwrap();
        std::fs::write(
            profiles.join("safe.yml"),
            "resources:\n  - reboot: {when_exists: /run/reboot-required}\n",
        )
        .unwrap();
        let book = books.join("site.yml");
        std::fs::write(&book, "- hosts: all\n  profiles: [main]\n").unwrap();
        let err = load(&book, &[]).unwrap_err().to_string();
        assert!(err.contains("safe.yml:2:"), "{err}");
        assert!(
            err.contains("fallback profile, which cannot reboot"),
            "{err}"
        );
    }
}
