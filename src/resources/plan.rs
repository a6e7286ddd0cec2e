//! What planning decides for one resource on one host.

use std::sync::Arc;

use super::script::Script;
use crate::transport::quote;

/// Planning inputs beyond the resource and its probed state.
#[derive(Debug, Clone, Default)]
pub struct PlanContext {
    /// Fetch current contents and produce unified diffs (`--diff`).
    pub diff: bool,
}

/// The decision for one resource.
#[derive(Debug, Clone)]
pub enum Plan {
    /// Already as declared: nothing is sent.
    NoChange,
    /// Will change, and we know how.
    Change(Change),
    /// Runs on apply, but whether it changes anything cannot be known before
    /// (commands without guards).
    Unknown(Change),
}

#[derive(Debug, Clone)]
pub struct Change {
    /// Human-readable changes, one per line ("create", "mode 0600 -> 0644").
    pub what: Vec<String>,
    /// Unified diff of text content, when asked for and meaningful.
    pub diff: Option<String>,
    pub step: Step,
    /// What the journal must save before this change, so it can be undone.
    pub touches: Vec<Touch>,
}

/// Something a change alters, as the journal records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touch {
    /// The path's whole state (content, mode, owner; "absent" if missing).
    Path(String),
    /// Only mode and owner (a directory whose contents are not ours).
    Attrs(String),
    /// A command to run on rollback (for changes no path captures).
    Undo(String),
}

/// The sh that converges one resource: run in a subshell with `set -e`.
#[derive(Debug, Clone, Default)]
pub struct Step(pub Vec<Op>);

#[derive(Debug, Clone)]
pub enum Op {
    Sh(String),
    /// Install bytes atomically (temp file + fsync + rename).
    Put {
        data: Arc<Vec<u8>>,
        dest: String,
        mode: Option<u32>,
        owner: Option<String>,
        group: Option<String>,
    },
}

impl Step {
    pub fn sh(line: impl Into<String>) -> Step {
        Step(vec![Op::Sh(line.into())])
    }

    /// Write this step as sh function `name` into `script`.
    pub fn write(&self, name: &str, script: &mut Script) {
        let mut body = Vec::new();
        for op in &self.0 {
            match op {
                Op::Sh(s) => body.push(s.clone()),
                Op::Put {
                    data,
                    dest,
                    mode,
                    owner,
                    group,
                } => body.push(script.put(data, dest, *mode, owner.as_deref(), group.as_deref())),
            }
        }
        if body.is_empty() {
            body.push(":".into());
        }
        script.sh(&format!("{name}() {{\n{}\n}}", body.join("\n")));
    }
}

/// Unified diff between two texts, labelled with the path.
pub fn unified_diff(path: &str, old: &str, new: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("{path} (current)"), &format!("{path} (parc)"))
        .to_string()
}

/// `parent dir exists` guard so a missing directory gives a clear error.
pub fn need_parent(path: &str) -> String {
    let parent = std::path::Path::new(path)
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/".into());
    format!(
        "[ -d {q} ] || {{ echo \"parent directory {p} does not exist (declare a dir resource for it)\" >&2; exit 1; }}",
        q = quote(&parent),
        p = parent.replace(['"', '$', '`', '\\'], "_")
    )
}
