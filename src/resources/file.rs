//! `file`: a regular file with exact content, mode and ownership.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::attrs::{Mode, State, attr_changes};
use super::plan::{Batched, Change, Op, Plan, PlanContext, Step, Touch, UserOp, unified_diff};
use super::script::{Record, Script};
use super::{Access, Kind, PathKind, PathState, ResourceError};
use crate::content::Content;
use crate::profile::Origin;
use crate::render::{Redactor, RenderError, Renderer};
use crate::transport::quote;

/// Largest current content fetched for `--diff`; bigger files show a summary.
const DIFF_LIMIT: u64 = 256 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub path: String,
    #[serde(default)]
    pub state: State,
    /// Inline content (templated like every string field).
    pub content: Option<String>,
    /// A file copied byte for byte from the profile's `files/` directory.
    pub src: Option<String>,
    /// A minijinja template from the profile's `templates/` directory.
    pub template: Option<String>,
    pub mode: Option<Mode>,
    pub owner: Option<String>,
    pub group: Option<String>,
    /// Keep the previous version beside the file as `PATH.parc-backup`.
    #[serde(default)]
    pub backup: bool,
    /// Never show this file's content (diffs, reports): it holds secrets.
    #[serde(default)]
    pub secret: bool,
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
    /// The bytes to install, filled in by rendering from content/src/template.
    #[serde(skip)]
    pub resolved: Option<Arc<Content>>,
}

impl File {
    /// Read the content the rendered fields name (`content`, `src` under
    /// `files/` or `template` under `templates/`) into `resolved`; says
    /// whether the template read a secret. A `secret: true` file's content
    /// is taught to `redactor` line by line.
    pub(crate) fn resolve(
        &mut self,
        renderer: &Renderer,
        origin: &Origin,
        ctx: &minijinja::Value,
        redactor: &mut Redactor,
    ) -> Result<bool, RenderError> {
        let at = |field: &str| origin.locate(&format!("file.{field}"));
        let chosen = [
            self.content.is_some(),
            self.src.is_some(),
            self.template.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        if chosen > 1 {
            return Err(RenderError::At {
                location: origin.locate("file"),
                message: format!(
                    "file {}: give only one of content, src, template",
                    self.path
                ),
            });
        }
        let mut tainted = false;
        let bytes = if let Some(c) = &self.content {
            Some(Content::shared(c.clone().into_bytes()))
        } else if let Some(src) = &self.src {
            Some(renderer.read_file(src, &at("src"))?)
        } else if let Some(t) = &self.template {
            let (text, secret) = renderer.render_template(t, ctx, &at("template"), redactor)?;
            tainted = secret;
            Some(Content::shared(text.into_bytes()))
        } else {
            None
        };
        // A `secret: true` file's content is secret line by line: a
        // command that prints it, or a test that greps it, shows none.
        if self.secret
            && let Some(all) = bytes
                .as_ref()
                .map(Content::whole)
                .transpose()
                .map_err(|e| RenderError::At {
                    location: at("src"),
                    message: format!("source file: {e}"),
                })?
            && let Ok(text) = std::str::from_utf8(&all)
        {
            text.lines().for_each(|line| redactor.taint(line));
        }
        self.resolved = bytes;
        Ok(tainted)
    }

    /// The new content as text for a diff: not of a secret, nor of a file
    /// larger than [`crate::content::IN_MEMORY_MAX`] (read where it is,
    /// never whole, and far past what a diff helps with).
    fn new_text(&self, data: &Content, ctx: &PlanContext) -> Option<String> {
        if self.secret || !ctx.diff {
            return None;
        }
        std::str::from_utf8(data.in_memory()?)
            .ok()
            .map(str::to_string)
    }
}

impl Kind for File {
    fn label(&self) -> String {
        format!("file {}", self.path)
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

    fn probe(&self, id: &str, s: &mut Script, ctx: &PlanContext) {
        let stat = s.stat(&self.path);
        s.sh(&format!("parc_rec {id}; {stat}"));
        if !self.follow {
            let check = s.path_check(&self.path);
            s.sh(&check);
        }
        if ctx.diff && !self.secret {
            let blob = s.blob(id, "content", &self.path, Some(DIFF_LIMIT));
            match super::user_owner(self.owner.as_deref()) {
                // In a directory its owner owns (the path check just made
                // says so), the content is read as the owner, who makes the
                // change (plan_as): root reading there by path could be sent
                // to a root file of the same name.
                Some(user) if !self.follow => {
                    let mine = s.capture(id, "content_as", DIFF_LIMIT);
                    s.sh(&format!(
                        "if [ \"$_why\" = owner ]; then parc_read_as {} {} {mine} {}; else {blob}; fi",
                        quote(user),
                        quote(&self.path),
                        DIFF_LIMIT + 1
                    ));
                }
                _ => s.sh(&blob),
            }
        }
    }

    fn plan(&self, probed: &Record, ctx: &PlanContext) -> Result<Plan, ResourceError> {
        let label = self.label();
        let access = super::check_path(probed, &label, self.follow, self.owner.as_deref())?;
        let now = PathState::read(probed, "", &label)?;
        if let Access::User(user) = access {
            return self.plan_as(user, &now, probed, ctx);
        }
        if self.state == State::Absent {
            return Ok(match now.kind {
                PathKind::Absent => Plan::NoChange,
                PathKind::Dir => return Err(self.is_a_directory()),
                _ => Plan::Change(Change {
                    touches: vec![Touch::Path(self.path.clone())],
                    what: vec!["remove".into()],
                    diff: None,
                    step: Step(vec![Op::Batch(Batched::Remove {
                        path: self.path.clone(),
                        recursive: false,
                    })]),
                }),
            });
        }
        let Some(data) = self.resolved.clone() else {
            return Err(self.no_content());
        };
        let want_sha = data.sha256();
        match &now.kind {
            PathKind::Absent => Ok(Plan::Change(Change {
                touches: vec![Touch::Path(self.path.clone())],
                what: vec![format!("create ({} bytes)", data.len())],
                diff: self
                    .new_text(&data, ctx)
                    .map(|new| unified_diff(&self.path, "", &new)),
                step: Step(vec![
                    Op::NeedParent(self.path.clone()),
                    Op::Put {
                        data,
                        dest: self.path.clone(),
                        mode: Some(self.mode.map_or(0o644, |m| m.0)),
                        owner: self.owner.clone(),
                        group: self.group.clone(),
                        stage: now.stage.clone(),
                    },
                ]),
            })),
            PathKind::File { sha256 } => {
                let (mut what, fixes) = attr_changes(
                    now.attrs.as_ref(),
                    self.mode,
                    self.owner.as_deref(),
                    self.group.as_deref(),
                    &self.path,
                );
                if sha256.as_deref() == Some(want_sha) {
                    return Ok(if what.is_empty() {
                        Plan::NoChange
                    } else {
                        Plan::Change(Change {
                            touches: vec![Touch::Path(self.path.clone())],
                            what,
                            diff: None,
                            step: Step(fixes.into_iter().map(Op::Batch).collect()),
                        })
                    });
                }
                what.insert(0, format!("content ({} bytes)", data.len()));
                let diff = match (self.new_text(&data, ctx), probed.blobs.get("content")) {
                    (Some(new), Some(old)) => Some(unified_diff(
                        &self.path,
                        &String::from_utf8_lossy(old),
                        &new,
                    )),
                    _ => None,
                };
                let mut ops = Vec::new();
                if self.backup {
                    ops.push(Op::Sh(format!(
                        "cp -p -- {} {}",
                        quote(&self.path),
                        quote(&format!("{}.parc-backup", self.path))
                    )));
                }
                // Keep what the declaration leaves unspecified as it is on the host.
                ops.push(Op::Put {
                    data,
                    dest: self.path.clone(),
                    mode: self.mode.map(|m| m.0).or(now.mode()),
                    owner: self.owner.clone().or(now.owner()),
                    group: self.group.clone().or(now.group()),
                    stage: now.stage.clone(),
                });
                Ok(Plan::Change(Change {
                    touches: vec![Touch::Path(self.path.clone())],
                    what,
                    diff,
                    step: Step(ops),
                }))
            }
            _ => Err(self.not_a_file(&now)),
        }
    }
}

impl File {
    /// `state: absent` where a directory stands.
    fn is_a_directory(&self) -> ResourceError {
        ResourceError::Conflict {
            resource: self.label(),
            reason: "is a directory; use a `dir` resource with state: absent to remove it".into(),
        }
    }

    fn no_content(&self) -> ResourceError {
        ResourceError::Invalid {
            resource: self.label(),
            reason: "declares no content: give one of content, src or template".into(),
        }
    }

    /// Neither a regular file nor absent: parc does not replace it.
    fn not_a_file(&self, now: &PathState) -> ResourceError {
        ResourceError::Conflict {
            resource: self.label(),
            reason: format!(
                "exists as a {} and parc only replaces regular files; remove it first",
                now.what()
            ),
        }
    }

    /// The plan for a file in a directory `user` (its owner) owns: every
    /// change is made as `user` ([`Access::User`]). A file whose owner,
    /// mode or group is not as declared is written again by the user (its
    /// content is known), rather than given to the user by root: root's
    /// `chown` would give the user any file the user hard-linked there.
    fn plan_as(
        &self,
        user: String,
        now: &PathState,
        probed: &Record,
        ctx: &PlanContext,
    ) -> Result<Plan, ResourceError> {
        let touch = |attrs_only| Touch::User {
            user: user.clone(),
            path: self.path.clone(),
            attrs_only,
        };
        if self.state == State::Absent {
            return match now.kind {
                PathKind::Absent => Ok(Plan::NoChange),
                PathKind::Dir => Err(self.is_a_directory()),
                _ => Ok(Plan::Change(Change {
                    touches: vec![touch(false)],
                    what: vec!["remove".into()],
                    diff: None,
                    step: Step(vec![Op::AsUser {
                        user: user.clone(),
                        op: UserOp::Remove {
                            path: self.path.clone(),
                        },
                    }]),
                })),
            };
        }
        let Some(data) = self.resolved.clone() else {
            return Err(self.no_content());
        };
        let (mut what, old, group) = match &now.kind {
            PathKind::Absent => (
                vec![format!("create ({} bytes)", data.len())],
                Some(String::new()),
                None,
            ),
            PathKind::File { sha256 } => {
                let (mut what, _) = attr_changes(
                    now.attrs.as_ref(),
                    self.mode,
                    Some(&user),
                    self.group.as_deref(),
                    &self.path,
                );
                // Only a content that changes has a diff.
                let mut old = None;
                if sha256.as_deref() != Some(data.sha256()) {
                    what.insert(0, format!("content ({} bytes)", data.len()));
                    // Read as the user (probe); one byte past the limit: cut.
                    old = (probed.blobs.get("content_as"))
                        .filter(|b| b.len() as u64 <= DIFF_LIMIT)
                        .map(|b| String::from_utf8_lossy(b).into_owned());
                } else if what.is_empty() {
                    return Ok(Plan::NoChange);
                }
                // The user's file keeps its group unless one is declared.
                let group = now
                    .group()
                    .filter(|_| now.owner().as_deref() == Some(&*user));
                (what, old, group)
            }
            _ => return Err(self.not_a_file(now)),
        };
        what.push(format!("written as {user}, who owns a directory above it"));
        let diff = match (self.new_text(&data, ctx), old) {
            (Some(new), Some(old)) => Some(unified_diff(&self.path, &old, &new)),
            _ => None,
        };
        let mut ops = vec![Op::NeedParent(self.path.clone())];
        if self.backup && now.kind != PathKind::Absent {
            ops.push(Op::Sh(format!(
                "parc_as {} cp -p -- {} {} </dev/null",
                quote(&user),
                quote(&self.path),
                quote(&format!("{}.parc-backup", self.path))
            )));
        }
        ops.push(Op::AsUser {
            user: user.clone(),
            op: UserOp::Put {
                data,
                dest: self.path.clone(),
                mode: self.mode.map(|m| m.0).or(now.mode()).unwrap_or(0o644),
                group: self.group.clone().or(group),
            },
        });
        Ok(Plan::Change(Change {
            touches: vec![touch(false)],
            what,
            diff,
            step: Step(ops),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::{change, in_alices_directory, step_sh};

    fn file(yaml: &str) -> File {
        let mut f: File = crate::location::from_yaml(yaml).unwrap();
        f.resolved = Some(Content::shared(b"hi\n".to_vec()));
        f
    }

    /// Every change to a file given to a user, in that user's directories,
    /// is made as the user; one whose owner or mode drifted is written again
    /// (root's chown would give away any file hard-linked in its place).
    #[test]
    fn a_users_file_in_the_users_directories_is_written_as_the_user() {
        let f = file("{path: /home/alice/.config/x, content: hi, owner: alice, mode: '0600'}");
        let ctx = PlanContext::default();
        let c = change(
            f.plan(&in_alices_directory(&[("type", "none")]), &ctx)
                .unwrap(),
        );
        assert_eq!(
            step_sh(&c),
            "[ -d /home/alice/.config ] || { printf '%s\\n' 'parent directory /home/alice/.config does not exist (declare a dir resource for it)' >&2; false; }\n\
             as alice: put /home/alice/.config/x 600 -"
        );
        assert_eq!(
            c.touches,
            [Touch::User {
                user: "alice".into(),
                path: "/home/alice/.config/x".into(),
                attrs_only: false
            }]
        );
        let sha = Content::shared(b"hi\n".to_vec()).sha256().to_string();
        let same = |owner: &str, mode: &str| {
            in_alices_directory(&[
                ("type", "file"),
                ("sha256", &sha),
                ("mode", mode),
                ("owner", owner),
                ("group", "staff"),
                ("size", "3"),
                ("links", "1"),
            ])
        };
        assert!(matches!(
            f.plan(&same("alice", "600"), &ctx),
            Ok(Plan::NoChange)
        ));
        // Her file keeps its group; root's file becomes hers, in her group.
        let c = change(f.plan(&same("alice", "644"), &ctx).unwrap());
        assert!(step_sh(&c).ends_with("as alice: put /home/alice/.config/x 600 staff"));
        let c = change(f.plan(&same("root", "600"), &ctx).unwrap());
        assert!(step_sh(&c).ends_with("as alice: put /home/alice/.config/x 600 -"));
        // Without an owner, the place is refused, as before.
        let root = file("{path: /home/alice/.config/x, content: hi}");
        let e = root.plan(&same("alice", "600"), &ctx).unwrap_err();
        assert!(e.to_string().contains("unsafe path: /home/alice"), "{e}");
        let gone = file("{path: /home/alice/.config/x, state: absent, owner: alice}");
        let c = change(gone.plan(&same("alice", "600"), &ctx).unwrap());
        assert_eq!(step_sh(&c), "as alice: rm /home/alice/.config/x");
    }
}
