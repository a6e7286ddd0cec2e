//! Templating with minijinja, strict about undefined variables.
//!
//! Every string field of a resource is a template, `template:` files are rendered
//! from the profile's `templates/` directory, and `when:` is a minijinja
//! expression. Any error points at the exact field or template line, naming the
//! offending variable, because "undefined value" alone helps nobody at 2 a.m.

mod number;
mod redact;

pub use number::Number;
pub use redact::{REDACTED, Redactor};

use std::path::Path;

use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::confine::Tree;
use crate::location::Location;
use crate::profile::Origin;
use crate::resources::{DebFile, Resource};

/// Where a profile tree keeps templates and verbatim files.
pub const TEMPLATES: &str = "templates";
pub const FILES: &str = "files";

/// Template instructions one render may run. Real templates (a config file
/// looping over a few thousand items) use tens of thousands; a loop meant to
/// exhaust the controller's memory or time stops here, with its location.
pub const FUEL: u64 = 250_000;

pub struct Renderer {
    env: Environment<'static>,
    tree: Tree,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{location}: {message}")]
    At { location: Location, message: String },
}

impl Renderer {
    /// Templates come from `<profile dir>/templates`, raw files from
    /// `<profile dir>/files`; neither may lead out of the profile tree, even
    /// through `{% include %}`, `{% import %}` or a symlink.
    pub fn new(tree: &Tree) -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(true);
        env.set_fuel(Some(FUEL));
        let loader_tree = tree.clone();
        env.set_loader(move |name| {
            match loader_tree.read_to_string(&Path::new(TEMPLATES).join(name)) {
                Ok(text) => Ok(Some(text)),
                Err(e) if e.is_not_found() => Ok(None),
                Err(e) => Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    e.to_string(),
                )),
            }
        });
        Renderer {
            env,
            tree: tree.clone(),
        }
    }

    /// Render one string field; `at` is where the field's value starts.
    pub fn render_field(
        &self,
        source: &str,
        ctx: &Value,
        at: &Location,
    ) -> Result<String, RenderError> {
        if !source.contains("{{") && !source.contains("{%") {
            return Ok(source.to_string());
        }
        self.env
            .render_named_str("field", source, ctx)
            .map_err(|e| field_error(&e, source, at))
    }

    /// Render `templates/<name>`.
    pub fn render_template(
        &self,
        name: &str,
        ctx: &Value,
        at: &Location,
    ) -> Result<String, RenderError> {
        let tmpl = self.env.get_template(name).map_err(|e| RenderError::At {
            location: at.clone(),
            message: match e.kind() {
                minijinja::ErrorKind::TemplateNotFound => format!(
                    "template `{name}` not found (looked in {})",
                    self.tree.dir().join(TEMPLATES).display()
                ),
                _ => template_error_message(&e, None),
            },
        })?;
        tmpl.render(ctx).map_err(|e| {
            let file = self.tree.dir().join(TEMPLATES).join(name);
            let source = self
                .tree
                .read_to_string(&Path::new(TEMPLATES).join(name))
                .unwrap_or_default();
            RenderError::At {
                location: location_in(&file, &source, &e, 1, 1),
                message: template_error_message(&e, Some(&source)),
            }
        })
    }

    /// Bytes of `files/<name>`, copied verbatim.
    pub fn read_file(&self, name: &str, at: &Location) -> Result<Vec<u8>, RenderError> {
        self.tree
            .read(&Path::new(FILES).join(name))
            .map_err(|e| RenderError::At {
                location: at.clone(),
                message: format!("source file: {e}"),
            })
    }

    /// Evaluate a `when:` expression.
    pub fn when(&self, expr: &str, ctx: &Value, at: &Location) -> Result<bool, RenderError> {
        let compiled = self
            .env
            .compile_expression(expr)
            .map_err(|e| RenderError::At {
                location: at.clone(),
                message: format!(
                    "bad `when` expression `{expr}`: {}",
                    template_error_message(&e, Some(expr))
                ),
            })?;
        compiled
            .eval(ctx)
            .map(|v| v.is_true())
            .map_err(|e| RenderError::At {
                location: at.clone(),
                message: format!(
                    "`when` expression `{expr}`: {}",
                    template_error_message(&e, Some(expr))
                ),
            })
    }

    /// Render every string field of a declared item (a resource, a test; not
    /// `when`, which is an expression) through its serde form, so each kind
    /// needs no rendering code of its own. A field whose rendered text no longer
    /// fits its type (a `uid` template that renders to `abc`) is refused here.
    pub fn fields<T: Serialize + DeserializeOwned>(
        &self,
        decl: &T,
        origin: &Origin,
        ctx: &Value,
    ) -> Result<T, RenderError> {
        let mut value = serde_json::to_value(decl).expect("declared items serialize");
        self.walk(&mut value, "", origin, ctx)?;
        serde_json::from_value(value).map_err(|e| RenderError::At {
            location: origin.locate(""),
            message: format!("after rendering its templates: {e}"),
        })
    }

    /// Render every string field of a declared resource, resolve file content
    /// from content/src/template, and load and read a package's `.deb`.
    pub fn resource(
        &self,
        decl: &Resource,
        origin: &Origin,
        ctx: &Value,
    ) -> Result<Resource, RenderError> {
        let mut rendered = self.fields(decl, origin, ctx)?;
        if let Resource::File(f) = &mut rendered {
            let at = |field: &str| origin.locate(&format!("file.{field}"));
            let chosen = [f.content.is_some(), f.src.is_some(), f.template.is_some()]
                .iter()
                .filter(|x| **x)
                .count();
            if chosen > 1 {
                return Err(RenderError::At {
                    location: origin.locate("file"),
                    message: format!("file {}: give only one of content, src, template", f.path),
                });
            }
            let bytes = if let Some(c) = &f.content {
                Some(c.clone().into_bytes())
            } else if let Some(src) = &f.src {
                Some(self.read_file(src, &at("src"))?)
            } else if let Some(t) = &f.template {
                Some(self.render_template(t, ctx, &at("template"))?.into_bytes())
            } else {
                None
            };
            f.resolved = bytes.map(std::sync::Arc::new);
        }
        if let Resource::Package(p) = &mut rendered
            && let Some(deb) = &p.deb
        {
            let at = origin.locate("package.deb");
            let bytes = self.read_file(deb, &at)?;
            let parsed = DebFile::parse(bytes).map_err(|e| RenderError::At {
                location: at,
                message: format!("package {deb}: {e}"),
            })?;
            p.resolved = Some(parsed);
        }
        Ok(rendered)
    }

    fn walk(
        &self,
        v: &mut serde_json::Value,
        path: &str,
        origin: &Origin,
        ctx: &Value,
    ) -> Result<(), RenderError> {
        match v {
            serde_json::Value::String(s) => {
                *s = self.render_field(s, ctx, &origin.locate(path))?;
            }
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.walk(item, &join(path, &i.to_string()), origin, ctx)?;
                }
            }
            serde_json::Value::Object(map) => {
                for (k, item) in map.iter_mut() {
                    if k != "when" {
                        self.walk(item, &join(path, k), origin, ctx)?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The failing expression's text, e.g. the undefined variable's name.
fn culprit(e: &minijinja::Error, source: &str) -> Option<String> {
    let range = e.range()?;
    source
        .get(range)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn template_error_message(e: &minijinja::Error, source: Option<&str>) -> String {
    let what = source.and_then(|s| culprit(e, s));
    match (e.kind(), what) {
        (minijinja::ErrorKind::UndefinedError, Some(name)) => format!(
            "undefined variable `{name}` (define it in the profile's vars, the inventory, the playbook or with -e)"
        ),
        (_, Some(name)) => format!(
            "{} (at `{name}`)",
            e.detail().unwrap_or(&e.kind().to_string())
        ),
        (_, None) => e
            .detail()
            .map_or_else(|| e.kind().to_string(), str::to_string),
    }
}

/// Error inside an inline field: the field's location, moved to the line of the
/// string where the error is.
fn field_error(e: &minijinja::Error, source: &str, at: &Location) -> RenderError {
    RenderError::At {
        location: location_in(&at.file, source, e, at.line, at.column),
        message: template_error_message(e, Some(source)),
    }
}

fn location_in(
    file: &Path,
    source: &str,
    e: &minijinja::Error,
    base_line: usize,
    base_col: usize,
) -> Location {
    let (line, col) = match e.range() {
        Some(r) => {
            let before = &source[..r.start.min(source.len())];
            let line = before.matches('\n').count();
            let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1);
            (line, col)
        }
        None => (e.line().unwrap_or(1).saturating_sub(1), 0),
    };
    Location {
        file: file.to_path_buf(),
        line: base_line + line,
        column: if line == 0 { base_col + col } else { col + 1 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Render every resource of a one-profile dir holding `yaml` and `files`.
    fn render(yaml: &str, files: &[(&str, &[u8])]) -> Vec<Result<Resource, String>> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("files")).unwrap();
        for (name, data) in files {
            std::fs::write(dir.path().join("files").join(name), data).unwrap();
        }
        std::fs::write(dir.path().join("p.yml"), yaml).unwrap();
        let profile = crate::profile::load(&Tree::new(dir.path(), &[]), "p").unwrap();
        let renderer = Renderer::new(&profile.tree);
        profile
            .resources
            .iter()
            .map(|d| {
                renderer
                    .resource(&d.resource, &d.origin, &Value::from(()))
                    .map_err(|e| e.to_string())
            })
            .collect()
    }

    #[test]
    fn uid_and_gid_may_be_templates() {
        let yaml = "resources:\n  - user: {name: desk, uid: \"{{ 1000 + 500 }}\"}\n  - group: {name: staff, gid: \"{{ 1500 + 1 }}\"}\n";
        let out = render(yaml, &[]);
        match &out[0] {
            Ok(Resource::User(u)) => {
                assert_eq!(u.uid.as_ref().and_then(Number::value), Some(1500))
            }
            other => panic!("{other:?}"),
        }
        match &out[1] {
            Ok(Resource::Group(g)) => {
                assert_eq!(g.gid.as_ref().and_then(Number::value), Some(1501))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_package_deb_is_loaded_and_read_or_the_error_points_at_it() {
        let dir = tempfile::tempdir().unwrap();
        let deb = crate::resources::testing::build_deb(dir.path(), "parc-tool", "gzip");
        let yaml = "resources:\n  - package: {deb: tool.deb}\n  - package:\n      deb: missing.deb\n  - package: {deb: script.sh}\n";
        let out = render(yaml, &[("tool.deb", &deb), ("script.sh", b"#!/bin/sh\n")]);
        match &out[0] {
            Ok(Resource::Package(p)) => {
                let r = p.resolved.as_ref().unwrap();
                assert_eq!(
                    (r.package.as_str(), r.version.as_str()),
                    ("parc-tool", "1:2.0-1")
                );
                assert_eq!(*r.data, deb);
            }
            other => panic!("{other:?}"),
        }
        let missing = out[1].as_ref().unwrap_err();
        assert!(
            missing.contains("p.yml:4:12: source file: cannot read"),
            "{missing}"
        );
        let bad = out[2].as_ref().unwrap_err();
        assert!(
            bad.contains("p.yml:5:20: package script.sh: it is not a Debian package"),
            "{bad}"
        );
    }

    /// The attacks of issue 14: each would have copied a controller file
    /// (here a stand-in for /etc/shadow beside the profile tree) to targets.
    #[test]
    fn profiles_cannot_read_controller_files_outside_their_tree() {
        let base = tempfile::tempdir().unwrap();
        let secret = base.path().join("shadow");
        std::fs::write(&secret, "root:$6$secret:::\n").unwrap();
        let dir = base.path().join("profiles");
        for sub in ["files", "templates"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::os::unix::fs::symlink(&secret, dir.join("files/link")).unwrap();
        std::os::unix::fs::symlink(&secret, dir.join("templates/link.j2")).unwrap();
        std::fs::write(dir.join("templates/inc.j2"), "{% include '../../shadow' %}").unwrap();
        std::fs::write(
            dir.join("templates/abs.j2"),
            "{% import '/etc/passwd' as x %}",
        )
        .unwrap();
        std::fs::write(dir.join("files/ok"), "fine").unwrap();
        let tree = Tree::new(&dir, &[]);
        let renderer = Renderer::new(&tree);
        let cases = [
            ("src: ../../etc/passwd", "etc/passwd"),
            ("src: /etc/passwd", "/etc/passwd"),
            ("src: ../../shadow", "shadow"),
            ("src: link", "shadow"),
            ("template: link.j2", "shadow"),
            ("src: '{{ \"../../shadow\" }}'", "shadow"),
        ];
        for (field, resolved) in cases {
            let yaml = format!("resources:\n  - file:\n      path: /x\n      {field}\n");
            std::fs::write(dir.join("p.yml"), &yaml).unwrap();
            let err = match crate::profile::load(&tree, "p") {
                Err(e) => e.to_string(),
                Ok(p) => renderer
                    .resource(
                        &p.resources[0].resource,
                        &p.resources[0].origin,
                        &Value::from(()),
                    )
                    .map(|_| ())
                    .unwrap_err()
                    .to_string(),
            };
            assert!(err.contains(":4:"), "{field}: {err}");
            assert!(err.contains("outside"), "{field}: {err}");
            assert!(err.contains(resolved), "{field}: {err}");
        }
        for template in ["inc.j2", "abs.j2"] {
            let yaml = format!("resources:\n  - file: {{path: /x, template: {template}}}\n");
            std::fs::write(dir.join("p.yml"), &yaml).unwrap();
            let p = crate::profile::load(&tree, "p").unwrap();
            let err = renderer
                .resource(
                    &p.resources[0].resource,
                    &p.resources[0].origin,
                    &Value::from(()),
                )
                .unwrap_err()
                .to_string();
            assert!(err.contains("outside"), "{template}: {err}");
            assert!(!err.contains("root:"), "{template}: {err}");
        }
        std::fs::write(dir.join("p.yml"), "include: [../x]\nresources: []\n").unwrap();
        std::fs::write(base.path().join("x.yml"), "resources: []\n").unwrap();
        let err = crate::profile::load(&tree, "p").unwrap_err().to_string();
        assert!(
            err.contains("p.yml:1:11: ") && err.contains("outside"),
            "{err}"
        );

        // The operator may allow a directory explicitly.
        std::fs::write(
            dir.join("p.yml"),
            "resources:\n  - file: {path: /x, src: link}\n",
        )
        .unwrap();
        let allowed = Tree::new(&dir, &[base.path().to_path_buf()]);
        let p = crate::profile::load(&allowed, "p").unwrap();
        let r = Renderer::new(&allowed)
            .resource(
                &p.resources[0].resource,
                &p.resources[0].origin,
                &Value::from(()),
            )
            .unwrap();
        let Resource::File(f) = r else { panic!() };
        assert_eq!(f.resolved.unwrap().as_slice(), b"root:$6$secret:::\n");
    }

    #[test]
    fn a_runaway_template_loop_runs_out_of_fuel_at_its_place() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("templates")).unwrap();
        std::fs::write(
            dir.path().join("templates/loop.j2"),
            "ok\n{% for i in range(100000) %}{{ s }}{% endfor %}\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("p.yml"),
            "resources:\n  - file: {path: /x, template: loop.j2}\n  - file: {path: /y, content: \"{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}{% endfor %}{% endfor %}\"}\n",
        )
        .unwrap();
        let tree = Tree::new(dir.path(), &[]);
        let profile = crate::profile::load(&tree, "p").unwrap();
        let renderer = Renderer::new(&tree);
        let ctx = minijinja::context! { s => "x".repeat(1000) };
        let errors: Vec<String> = profile
            .resources
            .iter()
            .map(|d| {
                renderer
                    .resource(&d.resource, &d.origin, &ctx)
                    .unwrap_err()
                    .to_string()
            })
            .collect();
        assert!(errors[0].contains("templates/loop.j2:2:"), "{}", errors[0]);
        assert!(errors[0].contains("fuel"), "{}", errors[0]);
        assert!(errors[1].contains("p.yml:3:"), "{}", errors[1]);
        assert!(errors[1].contains("fuel"), "{}", errors[1]);
    }
}
