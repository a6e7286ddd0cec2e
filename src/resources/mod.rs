//! Resource kinds: what a profile can declare about a workstation.
//!
//! Architecture note: each kind (one file each) knows three things: the sh that
//! prints its current state (*probe*), how to compare that state with the
//! declaration (*plan*, run locally on the controller), and the sh step that
//! converges it (part of the plan). The engine concatenates all probes into one
//! script and all steps into another (see `script.rs`), so a host costs a fixed
//! number of round trips however many resources its profiles declare. Check mode
//! (`parc plan`) simply stops after planning.

mod accounts;
mod attrs;
mod command;
mod dir;
mod file;
mod group;
mod line;
mod package;
mod path_state;
mod payload;
mod plan;
mod reboot;
pub mod script;
mod service;
mod stage;
mod symlink;
#[cfg(test)]
pub(crate) mod testing;
mod user;

use serde::{Deserialize, Serialize};

pub use attrs::Mode;
pub use command::Command;
pub use dir::Dir;
pub use file::File;
pub use group::Group;
pub use line::Line;
pub use package::Package;
pub use path_state::{PathKind, PathState};
pub use plan::{
    Batched, Op, Plan, PlanContext, Step, Touch, batch_done, lies_below, mkdir_batches,
};
pub use reboot::Reboot;
pub use service::Service;
pub use symlink::Symlink;
pub use user::User;

use crate::profile::Origin;
use crate::render::{Redactor, RenderError, Renderer, Resolve};
use script::{Record, Script};

/// The most parc reads of a file it edits in place (a `line`'s file, a
/// user's authorized_keys): such files are often written by the host's
/// users, who must not be able to make the controller hold gigabytes.
pub(crate) const EDIT_LIMIT: u64 = 8 << 20;

/// The refusal of a file of `size` bytes over [`EDIT_LIMIT`]; `None` when it
/// is within it.
pub(crate) fn too_large(resource: String, path: &str, size: u64) -> Option<ResourceError> {
    if size <= EDIT_LIMIT {
        return None;
    }
    let iec = |n: u64| bytesize::ByteSize(n).display().iec().to_string();
    Some(ResourceError::Invalid {
        resource,
        reason: format!(
            "{path} is {}, more than the {} parc reads of a file it edits; it was not read and was left as it is",
            iec(size),
            iec(EDIT_LIMIT)
        ),
    })
}

/// One declared resource. YAML: `- file: {path: /etc/motd, content: "..."}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resource {
    Dir(Dir),
    File(File),
    Symlink(Symlink),
    Line(Line),
    Command(Command),
    User(User),
    Group(Group),
    Package(Package),
    Service(Service),
    Reboot(Reboot),
}

/// Behaviour shared by every kind.
pub trait Kind {
    /// Short human label: `file /etc/motd`.
    fn label(&self) -> String;
    /// `when:` condition, if any (evaluated before probing).
    fn when(&self) -> Option<&str>;
    /// Handlers to notify when this resource changes.
    fn notify(&self) -> &[String];
    /// Tags, which `--tags` / `--skip-tags` select the resource by.
    fn tags(&self) -> &[String];
    /// Append sh that prints this resource's state as record `id`.
    fn probe(&self, id: &str, script: &mut Script, ctx: &PlanContext);
    /// Compare the probed state with the declaration.
    fn plan(&self, probed: &Record, ctx: &PlanContext) -> Result<Plan, ResourceError>;
    /// Whether the paths this resource touches may be reached through a
    /// symbolic link or a directory another user owns (`follow: true`):
    /// otherwise parc refuses them, as a local user could redirect the change.
    fn follows_links(&self) -> bool {
        false
    }
    /// Whether a step that exited 0 changed the host. Only commands can say no.
    fn changed_after(&self, _rc: i32, _output: &str) -> Result<bool, ChangedWhenError> {
        Ok(true)
    }
}

impl Resource {
    /// The YAML key of this kind (`file`, `dir`, ...).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Resource::Dir(_) => "dir",
            Resource::File(_) => "file",
            Resource::Symlink(_) => "symlink",
            Resource::Line(_) => "line",
            Resource::Command(_) => "command",
            Resource::User(_) => "user",
            Resource::Group(_) => "group",
            Resource::Package(_) => "package",
            Resource::Service(_) => "service",
            Resource::Reboot(_) => "reboot",
        }
    }

    /// The paths on the host this resource names, rendered, with their
    /// field: each must be absolute ([`Resolve::resolve`] refuses others).
    fn host_paths(&self) -> Vec<(&'static str, &str)> {
        match self {
            Resource::Dir(r) => vec![("path", r.path.as_str())],
            Resource::File(r) => vec![("path", r.path.as_str())],
            Resource::Symlink(r) => vec![("path", r.path.as_str())],
            Resource::Line(r) => vec![("path", r.path.as_str())],
            Resource::Command(r) => [
                ("creates", &r.creates),
                ("removes", &r.removes),
                ("chdir", &r.chdir),
            ]
            .into_iter()
            .filter_map(|(field, p)| Some((field, p.as_deref()?)))
            .collect(),
            Resource::User(_)
            | Resource::Group(_)
            | Resource::Package(_)
            | Resource::Service(_)
            | Resource::Reboot(_) => Vec::new(),
        }
    }

    pub fn kind(&self) -> &dyn Kind {
        match self {
            Resource::Dir(r) => r,
            Resource::File(r) => r,
            Resource::Symlink(r) => r,
            Resource::Line(r) => r,
            Resource::Command(r) => r,
            Resource::User(r) => r,
            Resource::Group(r) => r,
            Resource::Package(r) => r,
            Resource::Service(r) => r,
            Resource::Reboot(r) => r,
        }
    }
}

/// How each kind renders beyond its string fields: a file reads its
/// content, a package its `.deb`; the others have nothing more.
impl Resolve for Resource {
    fn resolve(
        &mut self,
        renderer: &Renderer,
        origin: &Origin,
        ctx: &minijinja::Value,
        redactor: &mut Redactor,
    ) -> Result<bool, RenderError> {
        for (field, path) in self.host_paths() {
            if !path.starts_with('/') {
                return Err(RenderError::At {
                    location: origin.locate(&format!("{}.{field}", self.kind_name())),
                    message: format!(
                        "`{path}` is not an absolute path: a path on the host is read from / (a relative one would be the login directory's, and one starting with - an option to the tools given it); nothing was sent to this host"
                    ),
                });
            }
        }
        match self {
            Resource::File(f) => f.resolve(renderer, origin, ctx, redactor),
            Resource::Package(p) => p.resolve(renderer, origin).map(|()| false),
            Resource::Dir(_)
            | Resource::Symlink(_)
            | Resource::Line(_)
            | Resource::Command(_)
            | Resource::User(_)
            | Resource::Group(_)
            | Resource::Service(_)
            | Resource::Reboot(_) => Ok(false),
        }
    }
}

/// Who changes a path the probe checked (see [`check_path`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Access {
    /// root, by path: nothing above it is another user's to swap (or
    /// `follow: true` says the place is trusted).
    Root,
    /// The resource's owner, who owns a directory above it: the change is
    /// made as that user ([`plan::Op::AsUser`]), whom a swap of their own
    /// directories can send only where they may write.
    User(String),
}

/// `owner` when it names a user other than root: the user a path in their
/// own directories is changed as ([`Access::User`]).
pub(crate) fn user_owner(owner: Option<&str>) -> Option<&str> {
    owner.filter(|o| !matches!(*o, "root" | "0"))
}

/// Refuse `path` when the probe found a directory above it through which a
/// local user could redirect a change parc makes as root (see `parc_unsafe`
/// in lib.sh): a symbolic link, a directory its group or everyone may write
/// in without the sticky bit, or a directory another user owns, unless the
/// resource gives the file to a user (`owner:`), who then makes the change
/// ([`Access::User`]), or says `follow: true`.
pub(crate) fn check_path(
    probed: &Record,
    label: &str,
    follow: bool,
    owner: Option<&str>,
) -> Result<Access, ResourceError> {
    let user = user_owner(owner);
    let (Some(dir), false) = (probed.get("unsafe"), follow) else {
        return Ok(Access::Root);
    };
    let why = match (probed.get("unsafe_why"), user) {
        (Some("owner"), Some(user)) => return Ok(Access::User(user.to_string())),
        (Some("owner"), None) => "is owned by another user than root, who could replace what it holds while parc writes there".to_string(),
        (Some(who @ ("group" | "others")), _) => format!(
            "is a directory {} may write in (without the sticky bit): they could replace what it holds while parc writes there",
            if who == "group" { "its group" } else { "others" }
        ),
        _ => "is a symbolic link, which a local user may have planted to redirect the change".to_string(),
    };
    Err(ResourceError::Conflict {
        resource: label.to_string(),
        reason: format!(
            "unsafe path: {dir} {why}; nothing is done to it (set `follow: true` on the resource if this is intended)"
        ),
    })
}

/// A resource that cannot be planned on this host. The host fails; others go on.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ResourceError {
    #[error("{resource}: {reason}")]
    Conflict { resource: String, reason: String },
    #[error("{resource}: {reason}")]
    Invalid { resource: String, reason: String },
    /// The host lacks the tools this resource needs.
    #[error("{resource}: {reason}; parc cannot converge this resource on this host")]
    Unsupported { resource: String, reason: String },
    #[error(
        "{resource}: this host has no running service manager (systemd); parc cannot manage services here"
    )]
    NoServiceManager { resource: String },
}

/// A command's `changed_when` that cannot be evaluated after its step ran.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ChangedWhenError {
    #[error("bad changed_when `{expr}`: {reason}")]
    Syntax { expr: String, reason: String },
    #[error("changed_when `{expr}`: {reason}")]
    Eval { expr: String, reason: String },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::local::LocalTransport;

    /// A probe reports state; whatever it finds, the probe script itself succeeds
    /// (its exit status is how parc tells "probe broken" from "state found").
    #[tokio::test]
    async fn probes_succeed_whatever_they_find() {
        let yaml = "
- file: {path: /nonexistent/parc/x, content: a}
- dir: {path: /nonexistent/parc}
- symlink: {path: /nonexistent/parc/l, target: /x}
- line: {path: /nonexistent/parc/f, line: a}
- command: {run: 'true', creates: /nonexistent/parc/c, removes: /, unless: 'false', only_if: 'true'}
- user: {name: parc-nobody-here, home: /nonexistent/parc/h, authorized_keys: [k]}
- user: {name: root, authorized_keys: [k]}
- group: {name: parc-nobody-here}
- package: {names: [coreutils, parc-not-a-package], state: latest}
- service: {name: ssh, state: started}
";
        let resources: Vec<Resource> = crate::location::from_yaml(yaml).unwrap();
        for r in &resources {
            let mut s = Script::new();
            r.kind().probe("0", &mut s, &PlanContext { diff: true });
            let out = s.run(&LocalTransport).await.unwrap();
            assert!(out.status.success(), "{}: {}", r.kind().label(), out.stderr);
            assert!(out.records.contains_key("0"));
        }
    }
}
