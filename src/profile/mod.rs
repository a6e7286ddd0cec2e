//! Profiles: the declared state of a workstation, composed with `include`.
//!
//! A profile file is YAML with `vars`, `include`, `secret_vars`, `resources`,
//! `handlers` and `verify` (tests, see `crate::verify`). Loading resolves
//! includes depth-first (an included profile's resources and tests come first,
//! each profile at most once; the includer's vars win) and keeps, for every
//! resource and test, where it came from so later errors (templates, `when`)
//! can point at `file:line:column`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;
use serde::Deserialize;

use crate::confine::{ReadError, Tree};
use crate::inventory::Vars;
use crate::location::{Location, PositionMap, YamlRefusal, from_yaml, prescan, yaml_refusal};
use crate::render::{FILES, TEMPLATES};
use crate::resources::Resource;
use crate::verify::Test;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    include: Vec<String>,
    #[serde(default)]
    vars: Vars,
    #[serde(default)]
    secret_vars: Vec<String>,
    #[serde(default)]
    resources: Vec<Resource>,
    #[serde(default)]
    handlers: IndexMap<String, Resource>,
    #[serde(default)]
    verify: Vec<Test>,
    /// Profile converged when this one fails (degraded mode).
    #[serde(default)]
    fallback: Option<String>,
}

/// Where a declared item was written, for error messages.
#[derive(Debug, Clone)]
pub struct Origin {
    pub profile: String,
    /// YAML path of the item, e.g. `resources.3` or `handlers.restart ssh`.
    pub yaml_path: String,
    pub positions: Arc<PositionMap>,
}

impl Origin {
    /// Location of a field of this item (`field` like `file.content`).
    pub fn locate(&self, field: &str) -> Location {
        if field.is_empty() {
            self.positions.locate(&self.yaml_path)
        } else {
            self.positions
                .locate(&format!("{}.{field}", self.yaml_path))
        }
    }
}

#[derive(Debug, Clone)]
pub struct Declared {
    pub resource: Resource,
    pub origin: Origin,
}

/// A verification test with where it was written.
#[derive(Debug, Clone)]
pub struct DeclaredTest {
    pub test: Test,
    pub origin: Origin,
}

/// A profile with its includes resolved.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub description: Option<String>,
    /// Directory holding the profile files, `templates/` and `files/`: the
    /// tree its files, templates and includes must stay in.
    pub tree: Tree,
    pub vars: Vars,
    pub secret_vars: BTreeSet<String>,
    pub resources: Vec<Declared>,
    pub handlers: IndexMap<String, Declared>,
    pub verify: Vec<DeclaredTest>,
    /// The degraded-mode profile to converge when this one fails.
    pub fallback: Option<String>,
}

/// `--tags` / `--skip-tags`: which resources and tests a run takes, by their
/// `tags:`. With tags to take, only resources and tests carrying one of them;
/// never one carrying a tag to skip. Handlers are not filtered: they run when
/// a resource that ran notified them, and only then.
#[derive(Debug, Clone, Default)]
pub struct TagFilter {
    pub only: Vec<String>,
    pub skip: Vec<String>,
}

impl TagFilter {
    pub fn takes(&self, tags: &[String]) -> bool {
        let listed = |list: &[String]| tags.iter().any(|t| list.contains(t));
        (self.only.is_empty() || listed(&self.only)) && !listed(&self.skip)
    }
}

impl Profile {
    /// Its first `reboot`, among resources then handlers.
    pub fn first_reboot(&self) -> Option<&Declared> {
        (self.resources.iter().chain(self.handlers.values()))
            .find(|d| matches!(d.resource, Resource::Reboot(_)))
    }

    /// This profile with only the resources and tests `filter` takes.
    pub fn with_tags(mut self, filter: &TagFilter) -> Profile {
        self.resources
            .retain(|d| filter.takes(d.resource.kind().tags()));
        self.verify.retain(|d| filter.takes(&d.test.tags));
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("profile `{name}` not found: no file {path}")]
    NotFound { name: String, path: PathBuf },
    #[error("{location}: profile `{name}` not found: no file {}", path.display())]
    NotFoundAt {
        location: Location,
        name: String,
        path: PathBuf,
    },
    #[error("cannot read profile: {source}")]
    Read { source: ReadError },
    /// A profile named where it was written (an `include:`, a play's
    /// `profiles:`) that cannot be read or lies outside the tree.
    #[error("{location}: {source}")]
    Refused {
        location: Location,
        source: ReadError,
    },
    #[error("{location}: {message}")]
    Invalid { location: Location, message: String },
    #[error("{path}: {message}")]
    InvalidNoLocation { path: PathBuf, message: String },
    #[error("profile include cycle: {chain}")]
    Cycle { chain: String },
    #[error(
        "{location}: handler `{handler}` is notified but not defined in this profile or its includes"
    )]
    UnknownHandler { location: Location, handler: String },
}

/// The file of profile `name` in `dir` (`name` may also be a path to a .yml file).
pub fn profile_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(profile_file(name))
}

/// The file of profile `name`, relative to its directory.
fn profile_file(name: &str) -> PathBuf {
    if name.ends_with(".yml") || name.ends_with(".yaml") {
        PathBuf::from(name)
    } else {
        PathBuf::from(format!("{name}.yml"))
    }
}

/// Load profile `name` from `tree`, with its includes.
pub fn load(tree: &Tree, name: &str) -> Result<Profile, ProfileError> {
    load_many(tree, &[(name.to_string(), None)])
}

/// Load several profiles as one (a play's `profiles:` list): resources in
/// order, each file once, later profiles' vars winning. Each name comes with
/// where it was written, if it was.
pub fn load_many(
    tree: &Tree,
    names: &[(String, Option<Location>)],
) -> Result<Profile, ProfileError> {
    let mut profile = Profile {
        name: names
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join("+"),
        description: None,
        tree: tree.clone(),
        vars: Vars::new(),
        secret_vars: BTreeSet::new(),
        resources: Vec::new(),
        handlers: IndexMap::new(),
        verify: Vec::new(),
        fallback: None,
    };
    let mut seen = BTreeSet::new();
    for (name, at) in names {
        load_into(
            tree,
            name,
            at.as_ref(),
            &mut profile,
            &mut seen,
            &mut Vec::new(),
        )?;
    }
    check_notify(&profile)?;
    check_reboots(&profile)?;
    check_sources(&profile)?;
    Ok(profile)
}

fn load_into(
    tree: &Tree,
    name: &str,
    at: Option<&Location>,
    into: &mut Profile,
    seen: &mut BTreeSet<PathBuf>,
    chain: &mut Vec<String>,
) -> Result<(), ProfileError> {
    let path = profile_path(tree.dir(), name);
    if chain.iter().any(|c| c == name) {
        chain.push(name.to_string());
        return Err(ProfileError::Cycle {
            chain: chain.join(" -> "),
        });
    }
    if !seen.insert(path.clone()) {
        return Ok(()); // already included through another path
    }
    let text = tree
        .read_to_string(&profile_file(name))
        .map_err(|source| match (at, &source) {
            (Some(location), e) if e.is_not_found() => ProfileError::NotFoundAt {
                location: location.clone(),
                name: name.to_string(),
                path: path.clone(),
            },
            (None, e) if e.is_not_found() => ProfileError::NotFound {
                name: name.to_string(),
                path: path.clone(),
            },
            (Some(location), _) => ProfileError::Refused {
                location: location.clone(),
                source,
            },
            (None, _) => ProfileError::Read { source },
        })?;
    prescan(&path, &text)?;
    let file: ProfileFile = from_yaml(&text).map_err(|e| yaml_refusal(&path, &text, e))?;
    let positions = Arc::new(PositionMap::build(&path, &text));
    chain.push(name.to_string());
    for (i, inc) in file.include.iter().enumerate() {
        let at = positions.locate(&format!("include.{i}"));
        load_into(tree, inc, Some(&at), into, seen, chain)?;
    }
    chain.pop();
    if into.description.is_none() || chain.is_empty() {
        into.description = file.description.or(into.description.take());
    }
    // Shallow merge: the includer's value replaces an included default.
    for (k, v) in file.vars {
        into.vars.insert(k, v);
    }
    into.secret_vars.extend(file.secret_vars);
    if file.fallback.is_some() {
        into.fallback = file.fallback;
    }
    for (i, resource) in file.resources.into_iter().enumerate() {
        into.resources.push(Declared {
            resource,
            origin: Origin {
                profile: name.to_string(),
                yaml_path: format!("resources.{i}"),
                positions: positions.clone(),
            },
        });
    }
    for (hname, resource) in file.handlers {
        let origin = Origin {
            profile: name.to_string(),
            yaml_path: format!("handlers.{hname}"),
            positions: positions.clone(),
        };
        into.handlers.insert(hname, Declared { resource, origin });
    }
    for (i, test) in file.verify.into_iter().enumerate() {
        into.verify.push(DeclaredTest {
            test,
            origin: Origin {
                profile: name.to_string(),
                yaml_path: format!("verify.{i}"),
                positions: positions.clone(),
            },
        });
    }
    Ok(())
}

/// Refuse, before any host is contacted, a `src`, `template` or `deb` that
/// leads out of the profile tree or is not a regular file. Names built by a
/// template are checked when rendered, as are files that do not exist yet.
fn check_sources(p: &Profile) -> Result<(), ProfileError> {
    for d in &p.resources {
        let named = match &d.resource {
            Resource::File(f) => [
                (FILES, "file.src", f.src.as_deref()),
                (TEMPLATES, "file.template", f.template.as_deref()),
            ],
            Resource::Package(pkg) => [
                (FILES, "package.deb", pkg.deb.as_deref()),
                (FILES, "", None),
            ],
            _ => continue,
        };
        for (sub, field, name) in named {
            let Some(name) = name.filter(|n| !n.contains("{{") && !n.contains("{%")) else {
                continue;
            };
            if let Err(e) = p.tree.check(&Path::new(sub).join(name))
                && !e.is_not_found()
            {
                return Err(ProfileError::Refused {
                    location: d.origin.locate(field),
                    source: e,
                });
            }
        }
    }
    Ok(())
}

/// A `reboot` in `resources:` reboots when its `when_exists:` path exists;
/// without one it would reboot the host on every run (as a handler, it
/// reboots when notified).
fn check_reboots(p: &Profile) -> Result<(), ProfileError> {
    match p.resources.iter().find(
        |d| matches!(&d.resource, crate::resources::Resource::Reboot(r) if r.when_exists.is_none()),
    ) {
        Some(d) => Err(ProfileError::Invalid {
            location: d.origin.locate("reboot"),
            message: "a `reboot` resource needs `when_exists:` (such as /run/reboot-required), \
                      or it would reboot the host on every run; to reboot after a change, \
                      make it a handler and notify it"
                .into(),
        }),
        None => Ok(()),
    }
}

fn check_notify(p: &Profile) -> Result<(), ProfileError> {
    for d in &p.resources {
        for h in d.resource.kind().notify() {
            if !p.handlers.contains_key(h) {
                return Err(ProfileError::UnknownHandler {
                    location: d
                        .origin
                        .locate(&format!("{}.notify", d.resource.kind_name())),
                    handler: h.clone(),
                });
            }
        }
    }
    Ok(())
}

impl From<YamlRefusal> for ProfileError {
    fn from(r: YamlRefusal) -> Self {
        match r {
            YamlRefusal::At { location, message } => ProfileError::Invalid { location, message },
            YamlRefusal::File { path, message } => {
                ProfileError::InvalidNoLocation { path, message }
            }
        }
    }
}

#[cfg(test)]
mod tag_tests {
    use super::TagFilter;

    #[test]
    fn tags_take_and_skip() {
        let t = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let all = TagFilter::default();
        assert!(all.takes(&[]) && all.takes(&t(&["a"])));
        let only = TagFilter {
            only: t(&["motd"]),
            skip: vec![],
        };
        assert!(only.takes(&t(&["motd", "x"])) && !only.takes(&[]) && !only.takes(&t(&["x"])));
        let skip = TagFilter {
            only: vec![],
            skip: t(&["slow"]),
        };
        assert!(skip.takes(&[]) && !skip.takes(&t(&["slow", "motd"])));
    }
}

#[cfg(test)]
mod reboot_tests {
    use super::*;

    #[test]
    fn a_reboot_resource_without_a_condition_is_refused_where_written() {
        let dir = tempfile::tempdir().unwrap();
        let write = |text: &str| std::fs::write(dir.path().join("p.yml"), text).unwrap();
        let tree = Tree::new(dir.path(), &[]);
        write("resources:\n  - file: {path: /etc/x, content: x}\n  - reboot: {timeout: 5m}\n");
        let e = load(&tree, "p").unwrap_err().to_string();
        assert!(e.contains("p.yml:3:"), "{e}");
        assert!(e.contains("needs `when_exists:`"), "{e}");
        // With a condition, or as a handler, it loads.
        write("resources:\n  - reboot: {when_exists: /run/reboot-required}\n");
        load(&tree, "p").unwrap();
        write(
            "resources:\n  - file: {path: /etc/x, content: x, notify: [reboot]}\nhandlers:\n  reboot: {reboot: {}}\n",
        );
        load(&tree, "p").unwrap();
    }
}
