//! `line`: ensure one line in a text file (or replace the line matching a
//! regexp, or remove it).
//!
//! The file is fetched by the probe and edited on the controller with Rust's
//! regex, so what the plan shows is exactly what lands; the result is written
//! back atomically like any file, keeping its mode and owner.

use serde::{Deserialize, Serialize};

use super::attrs::{Mode, State};
use super::plan::{Change, Op, Plan, PlanContext, Step, Touch, unified_diff};
use super::script::{Record, Script};
use super::{EDIT_LIMIT, Kind, PathKind, PathState, ResourceError, too_large};
use crate::content::sha256_hex;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Line {
    pub path: String,
    /// The exact line wanted (without newline). Optional with `state: absent` + `regexp`.
    pub line: Option<String>,
    /// Lines matching this are replaced (present: the last match) or removed (absent).
    pub regexp: Option<String>,
    #[serde(default)]
    pub state: State,
    /// Create the file when missing (with `mode`, default 0644).
    #[serde(default = "yes")]
    pub create: bool,
    pub mode: Option<Mode>,
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

fn yes() -> bool {
    true
}

impl Line {
    fn invalid(&self, reason: impl Into<String>) -> ResourceError {
        ResourceError::Invalid {
            resource: self.label(),
            reason: reason.into(),
        }
    }

    /// The edited text, from the current one.
    pub fn edit(&self, current: &str) -> Result<String, ResourceError> {
        let regex = match &self.regexp {
            Some(r) => Some(
                regex::Regex::new(r).map_err(|e| self.invalid(format!("bad regexp `{r}`: {e}")))?,
            ),
            None => None,
        };
        let matches = |l: &str| match (&regex, &self.line) {
            (Some(re), _) => re.is_match(l),
            (None, Some(want)) => l == want,
            (None, None) => false,
        };
        let mut lines: Vec<String> = current.lines().map(str::to_string).collect();
        match self.state {
            State::Absent => {
                if regex.is_none() && self.line.is_none() {
                    return Err(self.invalid("state: absent needs `line` or `regexp`"));
                }
                lines.retain(|l| !matches(l));
            }
            State::Present => {
                let Some(want) = &self.line else {
                    return Err(self.invalid("state: present needs `line`"));
                };
                if want.contains('\n') {
                    return Err(self.invalid("`line` must be a single line"));
                }
                if regex.is_none() && lines.iter().any(|l| l == want) {
                    return Ok(current.to_string());
                }
                match lines.iter().rposition(|l| matches(l)) {
                    Some(i) => lines[i] = want.clone(),
                    None => lines.push(want.clone()),
                }
            }
        }
        let mut text = lines.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        // An unchanged file keeps its exact bytes (e.g. a missing final newline).
        if text.trim_end_matches('\n') == current.trim_end_matches('\n') {
            return Ok(current.to_string());
        }
        Ok(text)
    }
}

impl Kind for Line {
    fn label(&self) -> String {
        format!("line in {}", self.path)
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
        let blob = s.blob(id, "content", &self.path, Some(EDIT_LIMIT));
        s.sh(&format!("parc_rec {id}; {stat}; {blob}"));
        if !self.follow {
            let check = s.path_check(&self.path);
            s.sh(&check);
        }
    }
    fn plan(&self, probed: &Record, ctx: &PlanContext) -> Result<Plan, ResourceError> {
        super::check_path(probed, &self.label(), self.follow, None)?;
        let now = PathState::read(probed, "", &self.label())?;
        let sha256 = match &now.kind {
            PathKind::File {
                sha256: Some(sha256),
            } => Some(sha256.as_str()),
            PathKind::Absent => None,
            _ => {
                return Err(ResourceError::Conflict {
                    resource: self.label(),
                    reason: format!("is a {}, not a regular file", now.what()),
                });
            }
        };
        let exists = sha256.is_some();
        if !exists && (self.state == State::Absent || !self.create) {
            return if self.state == State::Absent {
                Ok(Plan::NoChange)
            } else {
                Err(self.invalid("the file does not exist and `create: false`"))
            };
        }
        if exists && let Some(e) = too_large(self.label(), &self.path, now.size()) {
            return Err(e);
        }
        // The content comes back apart from the stat: editing anything but
        // the bytes that were hashed could lose the rest of the file.
        if exists
            && probed
                .blobs
                .get("content")
                .map(|b| sha256_hex(b))
                .as_deref()
                != sha256
        {
            return Err(self.invalid(
                "its content could not be read whole (is it being written right now?); it was left as it is",
            ));
        }
        let current = probed.text("content");
        let new = self.edit(&current)?;
        if sha256 == Some(sha256_hex(new.as_bytes()).as_str()) {
            return Ok(Plan::NoChange);
        }
        let mode = self.mode.map(|m| m.0).or(now.mode()).unwrap_or(0o644);
        let mut ops = Vec::new();
        if !exists {
            ops.push(Op::NeedParent(self.path.clone()));
        }
        ops.push(Op::Put {
            data: crate::content::Content::shared(new.clone().into_bytes()),
            dest: self.path.clone(),
            mode: Some(mode),
            owner: now.owner(),
            group: now.group(),
            stage: now.stage.clone(),
        });
        let what = match (exists, self.state) {
            (false, _) => "create file with the line".to_string(),
            (true, State::Present) => "set line".to_string(),
            (true, State::Absent) => "remove matching lines".to_string(),
        };
        Ok(Plan::Change(Change {
            touches: vec![Touch::Path(self.path.clone())],
            what: vec![what],
            diff: ctx.diff.then(|| unified_diff(&self.path, &current, &new)),
            step: Step(ops),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(yaml: &str) -> Line {
        serde_norway::from_str(yaml).unwrap()
    }

    #[test]
    fn appends_replaces_and_removes() {
        let l = line("{path: /e, line: 'http_proxy=b'}");
        assert_eq!(l.edit("a\n").unwrap(), "a\nhttp_proxy=b\n");
        assert_eq!(l.edit("a\nhttp_proxy=b\n").unwrap(), "a\nhttp_proxy=b\n");
        let r = line("{path: /e, line: 'http_proxy=b', regexp: '^http_proxy='}");
        assert_eq!(
            r.edit("http_proxy=a\nx\nhttp_proxy=c\n").unwrap(),
            "http_proxy=a\nx\nhttp_proxy=b\n"
        );
        let a = line("{path: /e, regexp: '^#?PermitRootLogin', state: absent}");
        assert_eq!(a.edit("x\n#PermitRootLogin yes\ny").unwrap(), "x\ny\n");
        assert_eq!(
            a.edit("x\ny").unwrap(),
            "x\ny",
            "unchanged keeps exact bytes"
        );
        let bad = line("{path: /e, line: x, regexp: '('}");
        assert!(bad.edit("").unwrap_err().to_string().contains("bad regexp"));
    }
}
