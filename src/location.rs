//! Source locations for errors about user-written files.
//!
//! Every error about a YAML file a technician wrote carries one of these, so the
//! message can point at `file:line:column` instead of describing the problem vaguely.

use std::fmt;
use std::path::{Path, PathBuf};

/// A position in a user file; line and column are 1-based, as editors show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// Location of a YAML parser error in `text`: where the parser stopped
    /// when it says; else (a second document, which it refuses without a
    /// place) where a second parser sees the second document start or fails.
    pub fn from_yaml(
        file: &std::path::Path,
        text: &str,
        err: &serde_norway::Error,
    ) -> Option<Self> {
        let at = |line, column| Location {
            file: file.to_path_buf(),
            line,
            column,
        };
        if let Some(l) = err.location() {
            return Some(at(l.line(), l.column()));
        }
        let mut parser = yaml_rust2::parser::Parser::new_from_str(text);
        let mut documents = 0;
        loop {
            match parser.next_token() {
                Ok((yaml_rust2::parser::Event::DocumentStart, mark)) => {
                    documents += 1;
                    if documents == 2 {
                        return Some(at(mark.line(), mark.col() + 1));
                    }
                }
                Ok((yaml_rust2::parser::Event::StreamEnd, _)) => return None,
                Ok(_) => {}
                Err(e) => return Some(at(e.marker().line(), e.marker().col() + 1)),
            }
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// Where each value of a YAML document starts, by path (`resources.3.file.content`).
///
/// serde gives locations only for parse errors; errors found later (an undefined
/// template variable in a field, a bad `when` expression, a missing template file)
/// look their field up here so they can still point at `file:line:column`.
#[derive(Debug, Clone, Default)]
pub struct PositionMap {
    file: PathBuf,
    positions: std::collections::HashMap<String, (usize, usize)>,
}

impl PositionMap {
    /// Index `text`. A document that does not parse yields an empty map: the
    /// serde parse of the same text reports that error with its own location.
    pub fn build(file: &std::path::Path, text: &str) -> Self {
        let mut builder = PathBuilder::default();
        let mut parser = yaml_rust2::parser::Parser::new_from_str(text);
        let _ = parser.load(&mut builder, false);
        PositionMap {
            file: file.to_path_buf(),
            positions: builder.positions,
        }
    }

    /// The location of the value at `path`, or of its nearest recorded ancestor.
    pub fn locate(&self, path: &str) -> Location {
        let mut p = path;
        loop {
            if let Some(&(line, column)) = self.positions.get(p) {
                return Location {
                    file: self.file.clone(),
                    line,
                    column,
                };
            }
            match p.rfind('.') {
                Some(i) => p = &p[..i],
                None => {
                    return Location {
                        file: self.file.clone(),
                        line: 1,
                        column: 1,
                    };
                }
            }
        }
    }
}

/// The deepest nesting parc accepts in a YAML file it reads. Real profiles,
/// playbooks and inventories nest a handful of levels; a file nested tens of
/// thousands deep makes YAML parsers take minutes or overflow their stack.
pub const MAX_YAML_DEPTH: usize = 100;

/// What the pre-scan of a YAML text refuses, before any parser sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Nested deeper than [`MAX_YAML_DEPTH`]; where the limit was passed.
    TooDeep(Location),
    /// A second document, which the parser would refuse without saying where.
    SecondDocument(Location),
}

impl Refused {
    pub fn location(&self) -> &Location {
        match self {
            Refused::TooDeep(l) | Refused::SecondDocument(l) => l,
        }
    }

    /// What is wrong, without the location (errors print it up front).
    pub fn message(&self) -> String {
        match self {
            Refused::TooDeep(_) => format!(
                "nested more than {MAX_YAML_DEPTH} levels deep; parc does not read YAML this deep"
            ),
            Refused::SecondDocument(_) => {
                "a second YAML document starts here; parc reads one document per file".to_string()
            }
        }
    }
}

/// A YAML file refused: at its `file:line:column` when the parser (or the
/// pre-scan) says where, else the file. Profiles, playbooks and inventories
/// turn this into their own error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum YamlRefusal {
    At { location: Location, message: String },
    File { path: PathBuf, message: String },
}

impl From<Refused> for YamlRefusal {
    fn from(r: Refused) -> Self {
        YamlRefusal::At {
            message: r.message(),
            location: r.location().clone(),
        }
    }
}

/// Refuse, before parsing, YAML nested too deep to parse in reasonable time
/// or holding several documents (see [`check_yaml_text`]).
pub fn prescan(path: &Path, text: &str) -> Result<(), YamlRefusal> {
    Ok(check_yaml_text(path, text)?)
}

/// A YAML/serde error with its location when the parser knows it.
pub fn yaml_refusal(path: &Path, text: &str, e: serde_norway::Error) -> YamlRefusal {
    match Location::from_yaml(path, text, &e) {
        Some(location) => YamlRefusal::At {
            location,
            message: strip_location(&e.to_string()),
        },
        None => YamlRefusal::File {
            path: path.to_path_buf(),
            message: e.to_string(),
        },
    }
}

/// serde_norway appends " at line L column C" to messages; we print it up front.
pub fn strip_location(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Parse YAML where enums (resource kinds) are written as one-key maps,
/// `- file: {...}`, the way people write YAML, rather than as `!file` tags.
pub fn from_yaml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, serde_norway::Error> {
    serde_norway::with::singleton_map_recursive::deserialize(serde_norway::Deserializer::from_str(
        text,
    ))
}

/// Refuse `text` if its nesting, by indentation, `- ` items and `[`/`{`,
/// goes past [`MAX_YAML_DEPTH`], or if it holds more than one document. One
/// linear pass. An over-estimate of depth (an indented block scalar counts
/// its indentation) is fine: the limit is far above real files.
pub fn check_yaml_text(file: &std::path::Path, text: &str) -> Result<(), Refused> {
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    // Whether a document has content yet, and whether `...` ended it.
    let (mut content, mut ended) = (false, false);
    let at = |line: usize, column: usize| Location {
        file: file.to_path_buf(),
        line,
        column,
    };
    for (n, line) in text.lines().enumerate() {
        let marker = |m: &str| line == m || line.starts_with(&format!("{m} "));
        if marker("---") {
            if content || ended {
                return Err(Refused::SecondDocument(at(n + 1, 1)));
            }
            content = true; // `--- value` or a document's start
            continue;
        }
        if marker("...") {
            ended = true;
            continue;
        }
        let body = line.trim_start_matches(' ');
        if !body.is_empty() && !body.starts_with('#') && !body.starts_with('%') {
            if ended {
                return Err(Refused::SecondDocument(at(n + 1, 1)));
            }
            content = true;
        }
        if flow == 0 && !body.is_empty() && !body.starts_with('#') {
            // Block nesting: enclosing indentations, plus `- - x` items.
            let mut indent = line.len() - body.len();
            let mut rest = body;
            loop {
                while indents.last().is_some_and(|&top| top >= indent) {
                    indents.pop();
                }
                indents.push(indent);
                match rest.strip_prefix("- ").or_else(|| rest.strip_prefix("-\t")) {
                    Some(after) => {
                        let after_trimmed = after.trim_start();
                        indent += 2 + after.len() - after_trimmed.len();
                        rest = after_trimmed;
                    }
                    None => break,
                }
            }
        }
        let mut quote = None;
        for (col, c) in line.char_indices() {
            match (quote, c) {
                (None, '#') if col == 0 || line[..col].ends_with([' ', '\t']) => break,
                (None, '"' | '\'') => quote = Some(c),
                (None, '[' | '{') => flow += 1,
                (None, ']' | '}') => flow = flow.saturating_sub(1),
                (Some(q), c) if c == q => quote = None,
                _ => {}
            }
            if indents.len() + flow > MAX_YAML_DEPTH {
                return Err(Refused::TooDeep(at(n + 1, line[..col].chars().count() + 1)));
            }
        }
        if indents.len() + flow > MAX_YAML_DEPTH {
            return Err(Refused::TooDeep(at(n + 1, 1)));
        }
    }
    Ok(())
}

enum Frame {
    Map { key: Option<String> },
    Seq { index: usize },
}

#[derive(Default)]
struct PathBuilder {
    stack: Vec<Frame>,
    positions: std::collections::HashMap<String, (usize, usize)>,
}

impl PathBuilder {
    fn current_path(&self) -> String {
        let mut parts = Vec::new();
        for f in &self.stack {
            match f {
                Frame::Map { key: Some(k) } => parts.push(k.clone()),
                Frame::Map { key: None } => {}
                Frame::Seq { index } => parts.push(index.to_string()),
            }
        }
        parts.join(".")
    }

    /// Called for a node in value position: records it, then advances the parent.
    fn value_at(&mut self, mark: yaml_rust2::scanner::Marker) {
        let path = self.current_path();
        self.positions
            .entry(path)
            .or_insert((mark.line(), mark.col() + 1));
    }

    fn after_value(&mut self) {
        match self.stack.last_mut() {
            Some(Frame::Map { key }) => *key = None,
            Some(Frame::Seq { index }) => *index += 1,
            None => {}
        }
    }

    fn expecting_key(&self) -> bool {
        matches!(self.stack.last(), Some(Frame::Map { key: None }))
    }
}

impl yaml_rust2::parser::MarkedEventReceiver for PathBuilder {
    fn on_event(&mut self, ev: yaml_rust2::parser::Event, mark: yaml_rust2::scanner::Marker) {
        use yaml_rust2::parser::Event;
        match ev {
            Event::Scalar(value, ..) => {
                if self.expecting_key() {
                    if let Some(Frame::Map { key }) = self.stack.last_mut() {
                        *key = Some(value);
                    }
                } else {
                    self.value_at(mark);
                    self.after_value();
                }
            }
            Event::Alias(_) if !self.expecting_key() => {
                self.value_at(mark);
                self.after_value();
            }
            Event::MappingStart(..) => {
                if !self.stack.is_empty() || self.positions.is_empty() {
                    self.value_at(mark);
                }
                self.stack.push(Frame::Map { key: None });
            }
            Event::SequenceStart(..) => {
                self.value_at(mark);
                self.stack.push(Frame::Seq { index: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
                self.after_value();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_yaml_is_refused_quickly_with_its_place() {
        let path = std::path::Path::new("p.yml");
        let n = 100_000;
        let flow = format!("a: {}{}\n", "[".repeat(n), "]".repeat(n));
        let e = check_yaml_text(path, &flow).unwrap_err();
        assert_eq!(e.location().to_string(), "p.yml:1:103");
        let block: String = (0..1000)
            .map(|i| format!("{}k:\n", " ".repeat(i)))
            .collect();
        assert_eq!(
            check_yaml_text(path, &block).unwrap_err().location().line,
            101
        );
        let items = format!("{}x\n", "- ".repeat(n));
        assert_eq!(
            check_yaml_text(path, &items).unwrap_err().location().line,
            1
        );
        // Brackets in strings and comments, and real files, are fine.
        let fine = "a: '[[[['\nb: \"{{{\" # [[[[\nc:\n  - d: [1, {e: 2}]\n    f: |\n        x\n";
        assert_eq!(check_yaml_text(path, fine), Ok(()));
        for two in ["a: 1\n---\nb: 2\n", "a: 1\n...\nb: 2\n", "--- 1\n--- 2\n"] {
            let e = check_yaml_text(path, two).unwrap_err();
            assert!(matches!(e, Refused::SecondDocument(_)), "{two:?}");
        }
        for one in ["---\na: 1\n", "---\na: 1\n...\n", "%YAML 1.2\n---\na: 1\n"] {
            assert_eq!(check_yaml_text(path, one), Ok(()), "{one:?}");
        }
        for dir in ["profiles", "playbooks", "bench/profiles", "bench/playbooks"] {
            for entry in std::fs::read_dir(dir).unwrap() {
                let p = entry.unwrap().path();
                if p.extension().is_some_and(|e| e == "yml") {
                    let text = std::fs::read_to_string(&p).unwrap();
                    assert_eq!(check_yaml_text(&p, &text), Ok(()), "{}", p.display());
                }
            }
        }
    }

    #[test]
    fn finds_nested_values() {
        let text = "vars:\n  a: 1\nresources:\n  - file:\n      path: /etc/x\n      content: \"{{ y }}\"\n  - dir: {path: /d}\n";
        let m = PositionMap::build(std::path::Path::new("p.yml"), text);
        assert_eq!(
            m.locate("resources.0.file.content").to_string(),
            "p.yml:6:16"
        );
        assert_eq!(m.locate("resources.1.dir.path").to_string(), "p.yml:7:17");
        assert_eq!(
            m.locate("resources.1.dir.nothing").to_string(),
            "p.yml:7:10"
        );
        assert_eq!(m.locate("vars.a").to_string(), "p.yml:2:6");
    }
}
