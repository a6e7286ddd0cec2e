//! Templating with minijinja, strict about undefined variables.
//!
//! Every string field of a resource is a template, `template:` files are rendered
//! from the profile's `templates/` directory, and `when:` is a minijinja
//! expression. Any error points at the exact field or template line, naming the
//! offending variable, because "undefined value" alone helps nobody at 2 a.m.

mod number;
mod redact;

pub use number::Number;
pub use redact::{LINE_CUT, OUTPUT_CUT, REDACTED, Redactor, looks_secret};

use std::path::Path;
use std::sync::{Arc, Mutex};

use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::confine::Tree;
use crate::content::Content;
use crate::location::Location;
use crate::profile::Origin;

/// Where a profile tree keeps templates and verbatim files.
pub const TEMPLATES: &str = "templates";
pub const FILES: &str = "files";

/// Template instructions one render may run. Real templates (a config file
/// looping over a few thousand items) use tens of thousands; a loop meant to
/// exhaust the controller's memory or time stops here, with its location.
pub const FUEL: u64 = 250_000;

/// A declared item with more to resolve than its string fields, after they
/// are rendered: what a field names (a template, a file of the profile tree)
/// read through the [`Renderer`], so each kind says how its fields render
/// and this module names none.
pub trait Resolve: Serialize + DeserializeOwned {
    /// Resolve what the rendered fields name; `origin` locates errors.
    /// Returns whether what was read is secret (a template reading a secret
    /// variable): the item's content is then secret as a whole. Anything
    /// read that must be hidden wherever it flows is taught to `redactor`.
    fn resolve(
        &mut self,
        renderer: &Renderer,
        origin: &Origin,
        ctx: &Value,
        redactor: &mut Redactor,
    ) -> Result<bool, RenderError>;
}

pub struct Renderer {
    env: Environment<'static>,
    tree: Tree,
}

/// A filter that passes its value through and notes it (see
/// [`Renderer::taint`]): how a secret expression's value is seen as
/// rendered, inside loops too.
const RECORD: &str = "__parc_record";

/// Settings shared by rendering and the recording pass.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    env.set_fuel(Some(FUEL));
    // `run: "useradd -- {{ name | quote }}"`: a value as one shell word,
    // through the quoting function parc's own scripts use, so a profile can
    // follow the rule they follow (an inventory value is data, not shell).
    env.add_filter("quote", |v: Value| crate::transport::quote(&v.to_string()));
    env
}

/// A declared item after rendering, and what of it may be shown.
pub struct Rendered<T> {
    pub value: T,
    /// `value` with every field rendered from a secret replaced by
    /// [`REDACTED`], to make labels from; `None` when such a field no longer
    /// fits its type (a `uid` rendered from a secret).
    pub shown: Option<T>,
    /// Some field (or the `template:`) read a secret: the item's content is
    /// secret, so no diff of it is shown.
    pub tainted: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{location}: {message}")]
    At { location: Location, message: String },
}

impl Renderer {
    /// Templates come from `<profile dir>/templates`, raw files from
    /// `<profile dir>/files`; neither may lead out of the profile tree, even
    /// through `{% include %}`, `{% import %}` or a symlink. Each host has a
    /// renderer of its own, and so reads the templates again: as the run
    /// first read them, or not at all (`Tree::read_for_hosts`).
    pub fn new(tree: &Tree) -> Self {
        let mut env = environment();
        let loader_tree = tree.clone();
        env.set_loader(move |name| {
            match loader_tree.read_for_hosts(&Path::new(TEMPLATES).join(name)) {
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

    /// Render one string field; `at` is where the field's value starts. Says
    /// whether it read a secret, after teaching `redactor` its rendered text
    /// and the value of each of its expressions that reads a secret.
    fn render_field(
        &self,
        source: &str,
        ctx: &Value,
        at: &Location,
        redactor: &mut Redactor,
    ) -> Result<(String, bool), RenderError> {
        if !source.contains("{{") && !source.contains("{%") {
            return Ok((source.to_string(), false));
        }
        let text = self
            .env
            .render_named_str("field", source, ctx)
            .map_err(|e| field_error(&e, source, at))?;
        let secret = reads_secret(source, redactor);
        if secret {
            self.taint("field", source, &text, ctx, redactor);
        }
        Ok((text, secret))
    }

    /// Teach `redactor` a text rendered from a secret: the whole of it, and
    /// the value of each `{{ }}` expression of its template that reads a
    /// secret, as it was rendered (what a command run on the host may echo
    /// back alone): the template is rendered again with each such expression
    /// passed through [`RECORD`], and so is every template it includes.
    fn taint(
        &self,
        name: &str,
        source: &str,
        rendered: &str,
        ctx: &Value,
        redactor: &mut Redactor,
    ) {
        redactor.taint(rendered);
        let mut env = environment();
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let sink = recorded.clone();
        env.add_filter(RECORD, move |v: Value| {
            sink.lock().expect("not poisoned").push(v.to_string());
            v
        });
        // Sources come through the renderer's own loader (it refuses paths
        // out of templates/), rewritten.
        let (plain, names) = (self.env.clone(), redactor.clone());
        env.set_loader(move |name| {
            Ok(plain
                .get_template(name)
                .ok()
                .map(|t| recording(t.source(), &names)))
        });
        // It rendered once already: an error here can only come from the
        // rewriting, and then the whole text is what covers the secrets.
        let _ = env.render_named_str(name, &recording(source, redactor), ctx);
        let seen = std::mem::take(&mut *recorded.lock().expect("not poisoned"));
        for value in &seen {
            redactor.taint(value);
        }
    }

    /// Render `templates/<name>`; says whether it read a secret, as
    /// [`Renderer::render_field`] does.
    pub fn render_template(
        &self,
        name: &str,
        ctx: &Value,
        at: &Location,
        redactor: &mut Redactor,
    ) -> Result<(String, bool), RenderError> {
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
        let rendered = tmpl.render(ctx).map_err(|e| {
            let file = self.tree.dir().join(TEMPLATES).join(name);
            let source = self
                .tree
                .read_to_string(&Path::new(TEMPLATES).join(name))
                .unwrap_or_default();
            RenderError::At {
                location: location_in(&file, &source, &e, 1, 1),
                message: template_error_message(&e, Some(&source)),
            }
        })?;
        let secret = self.template_reads_secret(name, redactor);
        if secret {
            self.taint(name, tmpl.source(), &rendered, ctx, redactor);
        }
        Ok((rendered, secret))
    }

    /// Whether template `name`, or a template it includes, imports or
    /// extends (at any depth), reads a secret.
    fn template_reads_secret(&self, name: &str, redactor: &Redactor) -> bool {
        let mut names = vec![name.to_string()];
        let mut next = 0;
        while let Some(name) = names.get(next).cloned() {
            next += 1;
            let Ok(tmpl) = self.env.get_template(&name) else {
                continue;
            };
            if reads_secret(tmpl.source(), redactor) {
                return true;
            }
            for code in blocks(tmpl.source(), "{%", "%}") {
                let code = code.trim_matches(['-', '+']).trim_start();
                if ["include ", "import ", "from ", "extends "]
                    .iter()
                    .any(|k| code.starts_with(k))
                {
                    for other in string_literals(code) {
                        if !names.iter().any(|n| n == other) {
                            names.push(other.to_string());
                        }
                    }
                }
            }
        }
        false
    }

    /// Content of `files/<name>`, copied verbatim; one content shared by every
    /// host of the run (see [`Tree::read_shared`]).
    pub fn read_file(&self, name: &str, at: &Location) -> Result<Arc<Content>, RenderError> {
        self.tree
            .read_shared(&Path::new(FILES).join(name))
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
    /// Fields reading a secret taint `redactor` and are hidden in `shown`.
    pub fn fields<T: Serialize + DeserializeOwned>(
        &self,
        decl: &T,
        origin: &Origin,
        ctx: &Value,
        redactor: &mut Redactor,
    ) -> Result<Rendered<T>, RenderError> {
        let mut value = serde_json::to_value(decl).expect("declared items serialize");
        let mut secret = Vec::new();
        self.walk(&mut value, "", "", origin, ctx, redactor, &mut secret)?;
        let mut shown = value.clone();
        for pointer in &secret {
            if let Some(field) = shown.pointer_mut(pointer) {
                *field = REDACTED.into();
            }
        }
        let value = serde_json::from_value(value).map_err(|e| RenderError::At {
            location: origin.locate(""),
            message: format!("after rendering its templates: {e}"),
        })?;
        Ok(Rendered {
            value,
            shown: serde_json::from_value(shown).ok(),
            tainted: !secret.is_empty(),
        })
    }

    /// Render a declared item whole: every string field (see
    /// [`Renderer::fields`]), then what its kind resolves beyond them
    /// (see [`Resolve`]): a file's content, a package's `.deb`. Rendering
    /// knows no kind; each says how it resolves.
    pub fn resource<T: Resolve>(
        &self,
        decl: &T,
        origin: &Origin,
        ctx: &Value,
        redactor: &mut Redactor,
    ) -> Result<Rendered<T>, RenderError> {
        let mut out = self.fields(decl, origin, ctx, redactor)?;
        out.tainted |= out.value.resolve(self, origin, ctx, redactor)?;
        Ok(out)
    }

    /// Render the strings under `v`; `path` locates them for errors,
    /// `pointer` (a JSON pointer) is collected in `secret` for each field
    /// that read a secret.
    #[allow(clippy::too_many_arguments)]
    fn walk(
        &self,
        v: &mut serde_json::Value,
        path: &str,
        pointer: &str,
        origin: &Origin,
        ctx: &Value,
        redactor: &mut Redactor,
        secret: &mut Vec<String>,
    ) -> Result<(), RenderError> {
        match v {
            serde_json::Value::String(s) => {
                let (text, read_secret) =
                    self.render_field(s, ctx, &origin.locate(path), redactor)?;
                *s = text;
                if read_secret {
                    secret.push(pointer.to_string());
                }
            }
            serde_json::Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    let key = i.to_string();
                    let pointer = format!("{pointer}/{key}");
                    let path = join(path, &key);
                    self.walk(item, &path, &pointer, origin, ctx, redactor, secret)?;
                }
            }
            serde_json::Value::Object(map) => {
                for (k, item) in map.iter_mut() {
                    if k != "when" {
                        let pointer =
                            format!("{pointer}/{}", k.replace('~', "~0").replace('/', "~1"));
                        let path = join(path, k);
                        self.walk(item, &path, &pointer, origin, ctx, redactor, secret)?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Whether the template `source` reads a secret variable. Every identifier
/// in its `{{ }}` and `{% %}` blocks counts, attribute names and loop
/// variables included: reading too much as secret only hides more, and
/// minijinja's `undeclared_variables` misses the variable of a slice
/// (`{{ pw[1:] }}`), the very transformation that must not leak.
fn reads_secret(source: &str, redactor: &Redactor) -> bool {
    redactor.reads_secret(
        blocks(source, "{{", "}}")
            .chain(blocks(source, "{%", "%}"))
            .flat_map(identifiers),
    )
}

/// `source` with each `{{ }}` expression that reads a secret passed through
/// [`RECORD`]. Read as secret: the secret variables, and the names a
/// `{% for %}`, `{% set %}` or `{% with %}` binds from them.
fn recording(source: &str, redactor: &Redactor) -> String {
    let mut derived: Vec<&str> = Vec::new();
    for code in blocks(source, "{%", "%}") {
        let code = code.trim_matches(['-', '+']).trim();
        let bound = if let Some(rest) = code.strip_prefix("for ") {
            rest.split_once(" in ")
        } else if let Some(rest) = code
            .strip_prefix("set ")
            .or_else(|| code.strip_prefix("with "))
        {
            rest.split_once('=')
        } else {
            None
        };
        let Some((names, expr)) = bound else {
            continue;
        };
        if identifiers(expr).any(|w| redactor.reads_secret([w]) || derived.contains(&w)) {
            derived.extend(identifiers(names));
        }
    }
    let secret =
        |code: &str| identifiers(code).any(|w| redactor.reads_secret([w]) || derived.contains(&w));
    let mut out = String::with_capacity(source.len() + 64);
    let mut rest = source;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start + 2..].find("}}") else {
            break;
        };
        let code = &rest[start + 2..start + 2 + len];
        out.push_str(&rest[..start]);
        if secret(code) {
            let inner = code.trim_start_matches(['-', '+']);
            let open = &code[..code.len() - inner.len()];
            let expr = inner.trim_end_matches(['-', '+']);
            let close = &inner[expr.len()..];
            out.push_str(&format!("{{{{{open} ({expr}) | {RECORD} {close}}}}}"));
        } else {
            out.push_str(&rest[start..start + 2 + len + 2]);
        }
        rest = &rest[start + 2 + len + 2..];
    }
    out.push_str(rest);
    out
}

/// The code inside each `open … close` block of a template.
fn blocks<'a>(
    source: &'a str,
    open: &'static str,
    close: &'static str,
) -> impl Iterator<Item = &'a str> {
    let mut rest = source;
    std::iter::from_fn(move || {
        let start = rest.find(open)? + open.len();
        let len = rest[start..].find(close)?;
        let code = &rest[start..start + len];
        rest = &rest[start + len + close.len()..];
        Some(code)
    })
}

/// The contents of the quoted strings of a piece of template code.
fn string_literals(code: &str) -> impl Iterator<Item = &str> {
    let mut rest = code;
    std::iter::from_fn(move || {
        let start = rest.find(['"', '\''])?;
        let quote = rest[start..].chars().next()?;
        let len = rest[start + 1..].find(quote)?;
        let literal = &rest[start + 1..start + 1 + len];
        rest = &rest[start + 1 + len + 1..];
        Some(literal)
    })
}

/// Words of template syntax, never a variable.
const KEYWORDS: &[&str] = &[
    "for",
    "in",
    "if",
    "else",
    "elif",
    "not",
    "and",
    "or",
    "is",
    "set",
    "with",
    "recursive",
    "true",
    "false",
    "none",
    "True",
    "False",
    "None",
];

/// The words of a piece of template code that could name a variable.
fn identifiers(code: &str) -> impl Iterator<Item = &str> {
    code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'))
        .filter(|w| !KEYWORDS.contains(w))
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
    use crate::resources::Resource;

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
                    .resource(
                        &d.resource,
                        &d.origin,
                        &Value::from(()),
                        &mut Redactor::default(),
                    )
                    .map(|r| r.value)
                    .map_err(|e| e.to_string())
            })
            .collect()
    }

    /// `quote` makes a value one shell word, whatever it holds: sh run on
    /// this machine gives it back as it was.
    #[test]
    fn the_quote_filter_makes_one_shell_word() {
        let hostile = "a b'c\"$(touch /tmp/parc-q)`x`;\n-- -rf *";
        let yaml = "resources:\n  - command: {run: \"printf %s {{ v | quote }}\"}\n";
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.yml"), yaml).unwrap();
        let tree = Tree::new(dir.path(), &[]);
        let profile = crate::profile::load(&tree, "p").unwrap();
        let d = &profile.resources[0];
        let vars = serde_json::json!({ "v": hostile });
        let r = Renderer::new(&tree)
            .resource(
                &d.resource,
                &d.origin,
                &Value::from_serialize(&vars),
                &mut Redactor::default(),
            )
            .unwrap();
        let Resource::Command(c) = &r.value else {
            panic!("{:?}", r.value)
        };
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&c.run)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), hostile);
        assert!(!Path::new("/tmp/parc-q").exists());
    }

    #[test]
    fn a_field_reading_a_secret_is_secret_whole_and_each_of_its_expressions() {
        let vars: crate::inventory::Vars = serde_json::from_str(
            r#"{"pw": "Hunter-22x", "vault": {"db": ["tok-456"]}, "who": "alice"}"#,
        )
        .unwrap();
        let mut redactor = Redactor::for_host(
            &vars,
            &["pw".to_string(), "vault".to_string()],
            &Default::default(),
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("p.yml"),
            "resources:\n  - command: {run: \"echo {{ who }} {{ pw | upper }} {{- pw[2:] }}; {% for t in vault.db %}echo {{ t | upper -}} {% endfor %}; exit 1\", chdir: \"/home/{{ who }}\"}\n",
        )
        .unwrap();
        let tree = Tree::new(dir.path(), &[]);
        let profile = crate::profile::load(&tree, "p").unwrap();
        let d = &profile.resources[0];
        let r = Renderer::new(&tree)
            .resource(
                &d.resource,
                &d.origin,
                &Value::from_serialize(&vars),
                &mut redactor,
            )
            .unwrap();
        assert!(r.tainted);
        let shown = r.shown.unwrap();
        assert_eq!(shown.kind().label(), "command <redacted>");
        let Resource::Command(c) = &shown else {
            panic!("{shown:?}")
        };
        assert_eq!(
            c.chdir.as_deref(),
            Some("/home/alice"),
            "not read from a secret"
        );
        assert_eq!(
            redactor.redact("HUNTER-22X nter-22x TOK-456 alice"),
            "<redacted> <redacted> <redacted> alice"
        );
    }

    #[test]
    fn a_template_file_is_secret_when_a_template_it_includes_reads_a_secret() {
        let vars: crate::inventory::Vars =
            serde_json::from_str(r#"{"pw": "Hunter-22x", "who": "alice"}"#).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("templates")).unwrap();
        for (name, text) in [
            ("plain.j2", "user={{ who }}\n"),
            (
                "outer.j2",
                "{% include 'plain.j2' %}{% include \"inner.j2\" %}",
            ),
            ("inner.j2", "password={{ pw | upper }}\n"),
        ] {
            std::fs::write(dir.path().join("templates").join(name), text).unwrap();
        }
        std::fs::write(
            dir.path().join("p.yml"),
            "resources:\n  - file: {path: /a, template: plain.j2}\n  - file: {path: /b, template: outer.j2}\n",
        )
        .unwrap();
        let tree = Tree::new(dir.path(), &[]);
        let profile = crate::profile::load(&tree, "p").unwrap();
        let renderer = Renderer::new(&tree);
        let mut redactor = Redactor::for_host(&vars, &["pw".to_string()], &Default::default());
        let tainted: Vec<bool> = profile
            .resources
            .iter()
            .map(|d| {
                let ctx = Value::from_serialize(&vars);
                renderer
                    .resource(&d.resource, &d.origin, &ctx, &mut redactor)
                    .unwrap()
                    .tainted
            })
            .collect();
        assert_eq!(tainted, [false, true]);
        assert_eq!(
            redactor.redact("user=alice\npassword=HUNTER-22X\n"),
            "<redacted>\n"
        );
        assert_eq!(redactor.redact("HUNTER-22X alice"), "<redacted> alice");
    }

    #[test]
    fn recording_wraps_only_expressions_over_secrets_or_names_bound_from_them() {
        let vars: crate::inventory::Vars = serde_json::from_str(r#"{"pw": "x"}"#).unwrap();
        let r = Redactor::for_host(&vars, &["pw".to_string()], &Default::default());
        let source = "{{ host }} {{- pw[1:] -}} {% for c in pw if c in host %}{{ c }}{{ host if c }}{% endfor %}{{ other }}";
        assert_eq!(
            recording(source, &r),
            "{{ host }} {{- ( pw[1:] ) | __parc_record -}} {% for c in pw if c in host %}{{ ( c ) | __parc_record }}{{ ( host if c ) | __parc_record }}{% endfor %}{{ other }}"
        );
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
                assert_eq!(r.data.whole().unwrap()[..], deb[..]);
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
                        &mut Redactor::default(),
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
                    &mut Redactor::default(),
                )
                .map(|_| ())
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
                &mut Redactor::default(),
            )
            .unwrap();
        let Resource::File(f) = r.value else { panic!() };
        assert_eq!(
            f.resolved.unwrap().whole().unwrap()[..],
            b"root:$6$secret:::\n"[..]
        );
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
                    .resource(&d.resource, &d.origin, &ctx, &mut Redactor::default())
                    .map(|_| ())
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
