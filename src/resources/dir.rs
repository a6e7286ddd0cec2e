//! `dir`: a directory with mode and ownership.

use serde::{Deserialize, Serialize};

use super::attrs::{Mode, State, attr_changes};
use super::plan::{Batched, Change, Op, Plan, PlanContext, Step, Touch};
use super::script::{Record, Script};
use super::{Kind, PathKind, PathState, ResourceError};
use crate::transport::quote;

/// Directories parc refuses to delete whatever a profile says.
const PROTECTED: &[&str] = &[
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/proc", "/root", "/sbin", "/sys",
    "/usr", "/var",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dir {
    pub path: String,
    #[serde(default)]
    pub state: State,
    pub mode: Option<Mode>,
    pub owner: Option<String>,
    pub group: Option<String>,
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

impl Kind for Dir {
    fn label(&self) -> String {
        format!("dir {}", self.path)
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
        let p = quote(&self.path);
        let stat = s.stat(&self.path);
        s.sh(&format!("parc_rec {id}; {stat}"));
        if !self.follow {
            let check = s.path_check(&self.path);
            s.sh(&check);
        }
        // `mkdir -p` may create missing parents too: the journal must know the
        // highest one it creates, to remove it on rollback.
        s.sh(&format!(
            "_p={p}; _top=; while [ ! -e \"$_p\" ] && [ \"$_p\" != / ]; do _top=$_p; parc_dirname \"$_p\"; _p=$_d; done; parc_kv created_from \"$_top\""
        ));
    }
    fn plan(&self, probed: &Record, _ctx: &PlanContext) -> Result<Plan, ResourceError> {
        super::check_path(probed, &self.label(), self.follow, self.owner.as_deref())?;
        let now = PathState::read(probed, "", &self.label())?;
        match (self.state, &now.kind) {
            (State::Absent, PathKind::Absent) => Ok(Plan::NoChange),
            (State::Absent, PathKind::Dir) => {
                let normalized = self.path.trim_end_matches('/');
                if PROTECTED.contains(&normalized) || normalized.is_empty() {
                    return Err(ResourceError::Invalid {
                        resource: self.label(),
                        reason: "refusing to remove a system directory".into(),
                    });
                }
                Ok(Plan::Change(Change {
                    touches: vec![Touch::Path(self.path.clone())],
                    what: vec!["remove (recursively)".into()],
                    diff: None,
                    step: Step(vec![Op::Batch(Batched::Remove {
                        path: self.path.clone(),
                        recursive: true,
                    })]),
                }))
            }
            (_, PathKind::Absent) => {
                let top = probed
                    .get("created_from")
                    .filter(|t| !t.is_empty() && self.path.starts_with(*t))
                    .unwrap_or(&self.path)
                    .to_string();
                let mut ops = vec![Op::Mkdir {
                    path: self.path.clone(),
                    mode: self.mode.map(|Mode(m)| m),
                }];
                let (_, fixes) = attr_changes(
                    None,
                    None,
                    self.owner.as_deref(),
                    self.group.as_deref(),
                    &self.path,
                );
                ops.extend(fixes.into_iter().map(Op::Batch));
                Ok(Plan::Change(Change {
                    touches: vec![Touch::Path(top)],
                    what: vec!["create".into()],
                    diff: None,
                    step: Step(ops),
                }))
            }
            (State::Present, PathKind::Dir) => {
                let (what, fixes) = attr_changes(
                    now.attrs.as_ref(),
                    self.mode,
                    self.owner.as_deref(),
                    self.group.as_deref(),
                    &self.path,
                );
                Ok(if what.is_empty() {
                    Plan::NoChange
                } else {
                    Plan::Change(Change {
                        touches: vec![Touch::Attrs(self.path.clone())],
                        what,
                        diff: None,
                        step: Step(fixes.into_iter().map(Op::Batch).collect()),
                    })
                })
            }
            _ => Err(ResourceError::Conflict {
                resource: self.label(),
                reason: format!(
                    "exists but is a {}, not a directory; remove it first",
                    now.what()
                ),
            }),
        }
    }
}
