//! `dir`: a directory with mode and ownership.

use serde::{Deserialize, Serialize};

use super::attrs::{Mode, State, attr_changes, dir_fixes_as};
use super::plan::{Batched, Change, Op, Plan, PlanContext, Step, Touch, UserOp};
use super::script::{Record, Script};
use super::{Access, Kind, PathKind, PathState, ResourceError};
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
    /// Reach `path`, as root, even through a symbolic link, or a directory
    /// another user owns, above it (refused otherwise: a local user could
    /// redirect the change; but in `owner`'s own directories, where the
    /// change is made as `owner`).
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
        let access = super::check_path(probed, &self.label(), self.follow, self.owner.as_deref())?;
        let now = PathState::read(probed, "", &self.label())?;
        if let Access::User(user) = access {
            return self.plan_as(user, &now, probed);
        }
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
                let top = self.created_top(probed);
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

impl Dir {
    /// The highest directory the step's `mkdir -p` creates (the probe's
    /// `created_from`): the journal removes it on rollback.
    fn created_top(&self, probed: &Record) -> String {
        probed
            .get("created_from")
            .filter(|t| !t.is_empty() && self.path.starts_with(*t))
            .unwrap_or(&self.path)
            .to_string()
    }

    /// The plan for a directory in a directory `user` (its owner) owns: made
    /// and given its mode as `user` ([`Access::User`]); only what the user may
    /// not do (take a directory root owns, set a group the user is not in) is
    /// root's `chown -h`, from the directory above it entered and checked
    /// ([`Op::ChownIn`]). Not removed: root's `rm -rf` there could be sent
    /// elsewhere, and the user's could not save what it removes.
    fn plan_as(
        &self,
        user: String,
        now: &PathState,
        probed: &Record,
    ) -> Result<Plan, ResourceError> {
        let label = self.label();
        match (self.state, &now.kind) {
            (State::Absent, PathKind::Absent) => Ok(Plan::NoChange),
            (State::Absent, _) => Err(ResourceError::Conflict {
                resource: label,
                reason: format!(
                    "lies in a directory {user} owns, who could send a removal made as root elsewhere; parc does not remove it (set `follow: true` if the place is trusted)"
                ),
            }),
            (State::Present, PathKind::Absent) => {
                let top = self.created_top(probed);
                let mut ops = vec![Op::AsUser {
                    user: user.clone(),
                    op: UserOp::Mkdir {
                        path: self.path.clone(),
                        mode: self.mode.map(|Mode(m)| m),
                    },
                }];
                if let Some(g) = &self.group {
                    ops.push(Op::ChownIn {
                        spec: format!(":{g}"),
                        path: self.path.clone(),
                    });
                }
                Ok(Plan::Change(Change {
                    touches: vec![Touch::User {
                        user: user.clone(),
                        path: top,
                        attrs_only: false,
                    }],
                    what: vec![format!("create (as {user}, who owns a directory above it)")],
                    diff: None,
                    step: Step(ops),
                }))
            }
            (State::Present, PathKind::Dir) => {
                let (what, fixes) = attr_changes(
                    now.attrs.as_ref(),
                    self.mode,
                    Some(&user),
                    self.group.as_deref(),
                    &self.path,
                );
                if what.is_empty() {
                    return Ok(Plan::NoChange);
                }
                let ops = dir_fixes_as(&user, fixes);
                Ok(Plan::Change(Change {
                    touches: vec![Touch::User {
                        user,
                        path: self.path.clone(),
                        attrs_only: true,
                    }],
                    what,
                    diff: None,
                    step: Step(ops),
                }))
            }
            _ => Err(ResourceError::Conflict {
                resource: label,
                reason: format!(
                    "exists but is a {}, not a directory; remove it first",
                    now.what()
                ),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::{change, in_alices_directory, step_sh};

    /// A directory given to a user, in that user's directories: made and
    /// given its mode by the user; taking one root owns, or setting a group,
    /// is root's `chown -h` from the directory above it, entered and checked.
    #[test]
    fn a_users_directory_in_the_users_directories_is_made_as_the_user() {
        let d: Dir = crate::location::from_yaml(
            "{path: /home/alice/.config/autostart, owner: alice, group: staff, mode: '0700'}",
        )
        .unwrap();
        let ctx = PlanContext::default();
        let c = change(
            d.plan(&in_alices_directory(&[("type", "none")]), &ctx)
                .unwrap(),
        );
        assert_eq!(
            step_sh(&c),
            "as alice: mkdir -p -m 700 -- /home/alice/.config/autostart\n\
             chown-in :staff /home/alice/.config/autostart"
        );
        let now = in_alices_directory(&[
            ("type", "dir"),
            ("mode", "755"),
            ("owner", "root"),
            ("group", "root"),
        ]);
        let c = change(d.plan(&now, &ctx).unwrap());
        assert_eq!(
            step_sh(&c),
            "chown-in alice:staff /home/alice/.config/autostart\n\
             as alice: chmod 700 /home/alice/.config/autostart"
        );
        let gone: Dir = crate::location::from_yaml(
            "{path: /home/alice/.config/autostart, owner: alice, state: absent}",
        )
        .unwrap();
        let e = gone.plan(&now, &ctx).unwrap_err();
        assert!(e.to_string().contains("does not remove it"), "{e}");
    }
}
