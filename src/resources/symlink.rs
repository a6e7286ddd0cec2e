//! `symlink`: a symbolic link pointing at `target`.

use serde::{Deserialize, Serialize};

use super::attrs::State;
use super::plan::{Batched, Change, Op, Plan, PlanContext, Step, Touch};
use super::script::{Record, Script};
use super::{Kind, PathKind, PathState, ResourceError};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Symlink {
    pub path: String,
    /// What the link points at (required when present).
    pub target: Option<String>,
    #[serde(default)]
    pub state: State,
    /// Replace a regular file standing where the link should be.
    #[serde(default)]
    pub force: bool,
    /// Reach `path` even through a symbolic link, or a directory another user
    /// owns, above it (refused otherwise: a local user could redirect the change).
    #[serde(default)]
    pub follow: bool,
    pub when: Option<String>,
    #[serde(default)]
    pub notify: Vec<String>,
    /// `--tags` / `--skip-tags` select resources by these.
    #[serde(default)]
    pub tags: Vec<String>,
}

impl Kind for Symlink {
    fn label(&self) -> String {
        format!("symlink {}", self.path)
    }
    fn when(&self) -> Option<&str> {
        self.when.as_deref()
    }
    fn notify(&self) -> &[String] {
        &self.notify
    }
    fn tags(&self) -> &[String] {
        &self.tags
    }
    fn follows_links(&self) -> bool {
        self.follow
    }
    fn probe(&self, id: &str, s: &mut Script, _ctx: &PlanContext) {
        let stat = s.stat(&self.path);
        s.sh(&format!("parc_rec {id}; {stat}"));
        if !self.follow {
            let check = s.path_check(&self.path);
            s.sh(&check);
        }
    }
    fn plan(&self, probed: &Record, _ctx: &PlanContext) -> Result<Plan, ResourceError> {
        super::check_path(probed, &self.label(), self.follow, None)?;
        let now = PathState::read(probed, "", &self.label())?;
        if self.state == State::Absent {
            return match now.kind {
                PathKind::Absent => Ok(Plan::NoChange),
                PathKind::Link { .. } => Ok(Plan::Change(Change {
                    touches: vec![Touch::Path(self.path.clone())],
                    what: vec!["remove".into()],
                    diff: None,
                    step: Step(vec![Op::Batch(Batched::Remove {
                        path: self.path.clone(),
                        recursive: false,
                    })]),
                })),
                _ => Err(ResourceError::Conflict {
                    resource: self.label(),
                    reason: format!("is a {}, not a symlink: parc leaves it alone", now.what()),
                }),
            };
        }
        let Some(target) = &self.target else {
            return Err(ResourceError::Invalid {
                resource: self.label(),
                reason: "a present symlink needs `target`".into(),
            });
        };
        if target.is_empty() || target.contains('\0') {
            return Err(ResourceError::Invalid {
                resource: self.label(),
                reason: "a symlink's `target` must be a non-empty path without NUL bytes".into(),
            });
        }
        // One rename puts the new link over whatever stands there (an old
        // link, or the regular file `force` replaces).
        let link = Step(vec![
            Op::NeedParent(self.path.clone()),
            Op::Link {
                target: target.clone(),
                dest: self.path.clone(),
                stage: now.stage.clone(),
            },
        ]);
        match &now.kind {
            PathKind::Link { target: t } if t == target => Ok(Plan::NoChange),
            PathKind::Link { target: t } => Ok(Plan::Change(Change {
                touches: vec![Touch::Path(self.path.clone())],
                what: vec![format!("target {t} -> {target}")],
                diff: None,
                step: link,
            })),
            PathKind::Absent => Ok(Plan::Change(Change {
                touches: vec![Touch::Path(self.path.clone())],
                what: vec![format!("create -> {target}")],
                diff: None,
                step: link,
            })),
            PathKind::File { .. } if self.force => Ok(Plan::Change(Change {
                touches: vec![Touch::Path(self.path.clone())],
                what: vec![format!("replace regular file with link -> {target}")],
                diff: None,
                step: link,
            })),
            _ => Err(ResourceError::Conflict {
                resource: self.label(),
                reason: format!(
                    "a {} stands there; set `force: true` to replace a regular file",
                    now.what()
                ),
            }),
        }
    }
}
