//! What planning decides for one resource on one host.

use std::sync::Arc;

use super::script::Script;
use crate::content::Content;
use crate::transport::{quote, quote_words};

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
    /// `Path` (or `Attrs` with `attrs_only`) of a path in a directory
    /// `user` owns, which the change makes as that user ([`Op::AsUser`]):
    /// the journal copies and restores it as that user too, so its copy
    /// holds only what the user may read, and its restore writes only where
    /// the user may.
    User {
        user: String,
        path: String,
        attrs_only: bool,
    },
}

impl Touch {
    /// The path whose state the journal saves, if any.
    pub fn path(&self) -> Option<&str> {
        match self {
            Touch::Path(p) | Touch::Attrs(p) | Touch::User { path: p, .. } => Some(p),
            Touch::Undo(_) => None,
        }
    }

    /// Whether only the path's mode and owner are saved.
    pub fn attrs_only(&self) -> bool {
        match self {
            Touch::Attrs(_) => true,
            Touch::User { attrs_only, .. } => *attrs_only,
            Touch::Path(_) | Touch::Undo(_) => false,
        }
    }
}

/// The sh that converges one resource: run in a subshell with `set -e`.
#[derive(Debug, Clone, Default)]
pub struct Step(pub Vec<Op>);

#[derive(Debug, Clone)]
pub enum Op {
    Sh(String),
    /// One command (or pipeline, or `if`) whose exit status says whether it
    /// worked: a step of such ops runs in the apply's own shell, with no
    /// subshell of its own (see [`Step::is_plain`]).
    Run(String),
    /// Create a directory and its missing parents, the directory itself with
    /// `mode`. Kept apart from `Sh` so that the apply can create the
    /// directories of consecutive steps with one `mkdir` (see
    /// [`mkdir_batches`]); the step then finds its directory there.
    Mkdir {
        path: String,
        mode: Option<u32>,
    },
    /// Fail, saying so, unless the parent directory of the path exists.
    NeedParent(String),
    /// Install bytes atomically (temp file + fsync + rename).
    Put {
        data: Arc<Content>,
        dest: String,
        mode: Option<u32>,
        owner: Option<String>,
        group: Option<String>,
        /// Where to stage the temp file: the nearest directory above `dest`
        /// that the probe found (its `stage` field); `None` writes it in the
        /// step itself.
        stage: Option<String>,
    },
    /// A command on one path that takes many: see [`Batched`].
    Batch(Batched),
    /// Make `dest` a symbolic link to `target`, replacing what is there in
    /// one rename: staged like a [`Op::Put`] where the probe found a
    /// directory above `dest` (its `stage` field), else `ln -sfn`.
    Link {
        target: String,
        dest: String,
        stage: Option<String>,
    },
    /// A change in a directory `user` owns, made as `user` (`parc_as`):
    /// root acting there by path could be sent anywhere by that user
    /// swapping a directory for a link between parc's check and its write;
    /// the user can do no more than the user may.
    AsUser {
        user: String,
        op: UserOp,
    },
    /// `chown -h SPEC PATH` as root, from PATH's directory entered and
    /// checked as the working directory (`parc_chown_in`): what the user
    /// may not do in their own directory (take a directory given to them).
    ChownIn {
        spec: String,
        path: String,
    },
}

/// What [`Op::AsUser`] does.
#[derive(Debug, Clone)]
pub enum UserOp {
    /// Write `data` as `dest` (a temp file beside it, synced, renamed),
    /// with `mode`, and `group` unless `None` (the user's own otherwise).
    Put {
        data: Arc<Content>,
        dest: String,
        mode: u32,
        group: Option<String>,
    },
    /// `mkdir -p`, the directory itself with `mode`.
    Mkdir { path: String, mode: Option<u32> },
    /// The mode (the user's `chmod` follows a link only where the user may).
    Chmod { path: String, mode: u32 },
    /// Remove a file or a link.
    Remove { path: String },
}

/// A command on one path that takes many paths: consecutive steps made only
/// of such ops share one process a command (`rm -f -- A B C`) instead of one
/// a path, run before the first of them; each step then runs its own only
/// when that one failed, to report its error (see `engine::apply::steps`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Batched {
    /// The mode, never through a link (`parc_chmod`).
    Chmod { mode: u32, path: String },
    /// Owner, or owner and group (`owner:group`), of the path itself (`-h`).
    Chown { spec: String, path: String },
    /// Group of the path itself (`-h`).
    Chgrp { group: String, path: String },
    /// Remove the path (a file or a link), or the tree under it.
    Remove { path: String, recursive: bool },
    /// Reload systemd's unit files if this unit's changed since systemd
    /// read them (a `file` resource of the run may have written it): one
    /// `systemctl show` and at most one `daemon-reload` for many units.
    UnitsReload { unit: String },
    /// `systemctl VERB` the unit (enable, disable, start, stop, restart).
    /// Many units share one systemctl: one reload of systemd's
    /// configuration for all the enables, their jobs run together. Alone,
    /// a failure quotes the unit's status.
    Systemctl { verb: &'static str, unit: String },
    /// A package manager's `command` (install, upgrade or remove:
    /// `Manager::install` and its kin) for a resource's packages. The
    /// packages of consecutive package steps share one run of the manager,
    /// which resolves and unpacks them together: one `apt-get` for a
    /// profile's packages rather than one a resource, each loading the
    /// package cache and running dpkg and its triggers.
    Packages { command: String, names: Vec<String> },
}

impl Batched {
    /// The paths (or units, or packages) the op acts on: one but for
    /// packages.
    pub fn operands(&self) -> &[String] {
        match self {
            Batched::Chmod { path, .. }
            | Batched::Chown { path, .. }
            | Batched::Chgrp { path, .. }
            | Batched::Remove { path, .. } => std::slice::from_ref(path),
            Batched::UnitsReload { unit } | Batched::Systemctl { unit, .. } => {
                std::slice::from_ref(unit)
            }
            Batched::Packages { names, .. } => names,
        }
    }

    /// The operands, quoted, as words of a command.
    pub fn words(&self) -> String {
        quote_words(self.operands())
    }

    /// Whether the op runs a package manager: package ops are batched only
    /// with package ops, since a package may bring any path (a mode fixed
    /// on a package's file must come after its install, as declared).
    pub fn is_package(&self) -> bool {
        matches!(self, Batched::Packages { .. })
    }

    /// What ops that can share a process share: the command without its
    /// paths, as sh (the batch's, or a function taking name-path pairs).
    pub fn command(&self) -> String {
        match self {
            Batched::Chmod { mode, .. } => format!("parc_chmod_all {mode:o}"),
            Batched::Chown { spec, .. } => format!("chown -h -- {}", quote(spec)),
            Batched::Chgrp { group, .. } => format!("chgrp -h -- {}", quote(group)),
            Batched::Remove { recursive, .. } => {
                format!("rm -{}f --", if *recursive { "r" } else { "" })
            }
            Batched::UnitsReload { .. } => "parc_units_reload".into(),
            Batched::Systemctl { verb, .. } => format!("systemctl {verb} --"),
            Batched::Packages { command, .. } => command.clone(),
        }
    }

    /// The sh for this op alone.
    pub fn alone(&self) -> String {
        let p = self.words();
        match self {
            Batched::Chmod { mode, .. } => format!("parc_chmod {mode:o} {p}"),
            Batched::Systemctl { verb, .. } => super::service::checked(verb, &p),
            _ => format!("{} {p}", self.command()),
        }
    }
}

/// The name of the variable a batch sets once it did op `op` of step
/// function `step` (see [`Batched`]).
pub fn batch_done(step: &str, op: usize) -> String {
    format!("PARC_B_{step}_{op}")
}

impl Step {
    pub fn sh(line: impl Into<String>) -> Step {
        Step(vec![Op::Sh(line.into())])
    }

    /// A step of one command, whose status is the step's ([`Op::Run`]).
    pub fn run(command: impl Into<String>) -> Step {
        Step(vec![Op::Run(command.into())])
    }

    /// Whether the step is only ops parc writes itself, each one command
    /// that returns its status: then it runs in the apply's own shell, its
    /// ops chained with `&&`, instead of a `set -e` subshell (a fork per step,
    /// and a profile is mostly such steps).
    pub fn is_plain(&self) -> bool {
        self.0.iter().all(|op| !matches!(op, Op::Sh(_)))
    }

    /// Define this step as sh function `name` in `script`'s setup.
    pub fn write(&self, name: &str, script: &mut Script) {
        let mut body = Vec::new();
        for (i, op) in self.0.iter().enumerate() {
            match op {
                Op::Sh(s) | Op::Run(s) => body.push(s.clone()),
                Op::Batch(b) => body.push(format!(
                    "{{ [ -n \"${{{}:-}}\" ] || {}; }}",
                    batch_done(name, i),
                    b.alone()
                )),
                Op::NeedParent(path) => body.push(need_parent(path)),
                Op::Mkdir { path, mode } => body.push(format!(
                    "[ -d {p} ] || {}",
                    mkdir_line(*mode, &[path]),
                    p = quote(path)
                )),
                Op::Put {
                    data,
                    dest,
                    mode,
                    owner,
                    group,
                    stage,
                } => body.push(script.put(
                    data,
                    dest,
                    *mode,
                    owner.as_deref(),
                    group.as_deref(),
                    stage.as_deref(),
                )),
                Op::Link {
                    target,
                    dest,
                    stage,
                } => body.push(script.link(target, dest, stage.as_deref())),
                Op::AsUser { user, op } => body.push(script.as_user(user, op)),
                Op::ChownIn { spec, path } => body.push(format!(
                    "parc_chown_in {} {}",
                    quote(spec),
                    quote(path.trim_end_matches('/'))
                )),
            }
        }
        if body.is_empty() {
            body.push(":".into());
        }
        let join = if self.is_plain() { " &&\n" } else { "\n" };
        script.setup(&format!("{name}() {{\n{}\n}}", body.join(join)));
    }
}

/// `mkdir -p [-m MODE] PATH...`: `-m` gives each new directory its mode
/// exactly, whatever the umask, without a chmod process; parents it creates
/// get the default.
pub fn mkdir_line(mode: Option<u32>, paths: &[&String]) -> String {
    let paths = quote_words(paths);
    match mode {
        Some(m) => format!("mkdir -p -m {m:o} -- {paths}"),
        None => format!("mkdir -p -- {paths}"),
    }
}

/// The `mkdir` lines creating, in as few processes as is safe, the
/// directories of a run of consecutive steps, each given as its `Mkdir` op's
/// (path, mode) in order.
///
/// Why: process start-up is most of an apply's cost, and a workstation
/// profile declares its directory layout as one block. Directories of one
/// mode share a `mkdir`, which creates them in the declared order. A
/// directory may join an earlier group of its mode only if no directory it
/// would overtake is above it: `mkdir -p` would otherwise create that parent
/// first with the default mode. Each step still runs `[ -d P ] || mkdir …`,
/// so a failure here is reported by the step it belongs to.
pub fn mkdir_batches(dirs: &[(&String, Option<u32>)]) -> Vec<String> {
    let mut groups: Vec<(Option<u32>, Vec<&String>)> = Vec::new();
    for &(path, mode) in dirs {
        let join = groups.iter().rposition(|(m, _)| *m == mode).filter(|&g| {
            groups[g + 1..]
                .iter()
                .all(|(_, paths)| !paths.iter().any(|p| lies_below(path, p)))
        });
        match join {
            Some(g) => groups[g].1.push(path),
            None => groups.push((mode, vec![path])),
        }
    }
    groups
        .iter()
        .map(|(mode, paths)| format!("{} 2>/dev/null", mkdir_line(*mode, paths)))
        .collect()
}

/// Whether `path` lies below directory `dir` (as text: `/srv/x/y` below
/// `/srv/x` and `/srv/x/`, not `/srv/xy`; everything below `/`).
pub fn lies_below(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    dir.is_empty()
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
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
        "[ -d {q} ] || {{ printf '%s\\n' {m} >&2; false; }}",
        q = quote(&parent),
        m = quote(&format!(
            "parent directory {parent} does not exist (declare a dir resource for it)"
        ))
    )
}

#[cfg(test)]
mod tests {
    use super::mkdir_batches;

    fn batches(dirs: &[(&str, Option<u32>)]) -> Vec<String> {
        let owned: Vec<(String, Option<u32>)> =
            dirs.iter().map(|(p, m)| (p.to_string(), *m)).collect();
        let refs: Vec<(&String, Option<u32>)> = owned.iter().map(|(p, m)| (p, *m)).collect();
        mkdir_batches(&refs)
            .into_iter()
            .map(|l| l.trim_end_matches(" 2>/dev/null").to_string())
            .collect()
    }

    #[test]
    fn directories_of_one_mode_share_a_mkdir_unless_that_would_skip_a_parent() {
        assert_eq!(
            batches(&[
                ("/a", Some(0o755)),
                ("/b", Some(0o750)),
                ("/c", Some(0o755)),
                ("/d d", None),
            ]),
            [
                "mkdir -p -m 755 -- /a /c",
                "mkdir -p -m 750 -- /b",
                "mkdir -p -- '/d d'"
            ]
        );
        // /b/c cannot go before /b: `mkdir -p` would make /b 755.
        assert_eq!(
            batches(&[
                ("/a", Some(0o755)),
                ("/b", Some(0o700)),
                ("/b/c", Some(0o755)),
            ]),
            [
                "mkdir -p -m 755 -- /a",
                "mkdir -p -m 700 -- /b",
                "mkdir -p -m 755 -- /b/c"
            ]
        );
        // /bc is not below /b.
        assert_eq!(
            batches(&[
                ("/a", Some(0o755)),
                ("/b", Some(0o700)),
                ("/bc", Some(0o755))
            ]),
            ["mkdir -p -m 755 -- /a /bc", "mkdir -p -m 700 -- /b"]
        );
    }
}
