//! `file`: a regular file with exact content, mode and ownership.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::attrs::{Mode, State, attr_changes};
use super::plan::{Batched, Change, Op, Plan, PlanContext, Step, Touch, unified_diff};
use super::script::{Record, Script};
use super::{Kind, PathKind, PathState, ResourceError};
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
            s.sh(&blob);
        }
    }

    fn plan(&self, probed: &Record, ctx: &PlanContext) -> Result<Plan, ResourceError> {
        let label = self.label();
        super::check_path(probed, &label, self.follow, self.owner.as_deref())?;
        let p = quote(&self.path);
        let now = PathState::read(probed, "", &label)?;
        if self.state == State::Absent {
            return Ok(match now.kind {
                PathKind::Absent => Plan::NoChange,
                PathKind::Dir => {
                    return Err(ResourceError::Conflict {
                        resource: label,
                        reason:
                            "is a directory; use a `dir` resource with state: absent to remove it"
                                .into(),
                    });
                }
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
            return Err(ResourceError::Invalid {
                resource: label,
                reason: "declares no content: give one of content, src or template".into(),
            });
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
                        "cp -p -- {p} {}",
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
            _ => Err(ResourceError::Conflict {
                resource: label,
                reason: format!(
                    "exists as a {} and parc only replaces regular files; remove it first",
                    now.what()
                ),
            }),
        }
    }
}
