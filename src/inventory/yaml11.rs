//! YAML read as Ansible reads it (PyYAML, YAML 1.1), for Ansible's YAML
//! inventories and the `group_vars/` and `host_vars/` files: an unquoted
//! `yes`, `on` or `off` is a boolean, `0644` an octal number, `1:30` the
//! sexagesimal 90, `1e3` a string. serde's YAML 1.2 reading would give
//! other values than Ansible for the same file; parc's own layout keeps it.
//! Anchors, aliases and `<<` merge keys are resolved.

use std::collections::HashMap;
use std::path::Path;

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::InventoryError;
use crate::location::Location;

/// The first document of `text` (`null` when there is none). Like
/// Ansible's loader, JSON is tried first (its `1e3` is a number).
pub fn from_str(text: &str, path: &Path) -> Result<Value, InventoryError> {
    if let Ok(v) = serde_json::from_str(text) {
        return Ok(v);
    }
    let mut b = Builder::default();
    Parser::new_from_str(text)
        .load(&mut b, false)
        .map_err(|e| InventoryError::Invalid {
            location: Location {
                file: path.to_path_buf(),
                line: e.marker().line(),
                column: e.marker().col() + 1,
            },
            message: e.info().to_string(),
        })?;
    Ok(b.done.unwrap_or(Value::Null))
}

enum Node {
    Seq(Vec<Value>, usize),
    /// Entries in order, a key waiting for its value, and the anchor.
    Map(Vec<(Value, Value)>, Option<Value>, usize),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Node>,
    anchors: HashMap<usize, Value>,
    done: Option<Value>,
}

impl Builder {
    fn push_value(&mut self, v: Value, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, v.clone());
        }
        match self.stack.last_mut() {
            None => {
                self.done.get_or_insert(v);
            }
            Some(Node::Seq(items, _)) => items.push(v),
            Some(Node::Map(entries, key, _)) => match key.take() {
                None => *key = Some(v),
                Some(k) => entries.push((k, v)),
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, _mark: Marker) {
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let v = scalar(text, style, tag.as_ref());
                self.push_value(v, anchor);
            }
            Event::Alias(id) => {
                let v = self.anchors.get(&id).cloned().unwrap_or(Value::Null);
                self.push_value(v, 0);
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Node::Seq(vec![], anchor)),
            Event::MappingStart(anchor, _) => self.stack.push(Node::Map(vec![], None, anchor)),
            Event::SequenceEnd => {
                if let Some(Node::Seq(items, anchor)) = self.stack.pop() {
                    self.push_value(Value::Array(items), anchor);
                }
            }
            Event::MappingEnd => {
                if let Some(Node::Map(entries, _, anchor)) = self.stack.pop() {
                    self.push_value(Value::Object(merge(entries)), anchor);
                }
            }
            _ => {}
        }
    }
}

/// A mapping's entries, `<<` merge keys below the keys written beside them.
fn merge(entries: Vec<(Value, Value)>) -> Map<String, Value> {
    let mut merged = Map::new();
    let mut own = Map::new();
    for (k, v) in entries {
        if k == Value::String("<<".into()) {
            let sources = match v {
                Value::Array(items) => items,
                other => vec![other],
            };
            for s in sources {
                if let Value::Object(m) = s {
                    for (mk, mv) in m {
                        merged.entry(mk).or_insert(mv);
                    }
                }
            }
        } else {
            own.insert(key_text(&k), v);
        }
    }
    merged.extend(own);
    merged
}

/// A key as Python's `json.dumps` writes a non-string key.
fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

fn scalar(text: String, style: TScalarStyle, tag: Option<&Tag>) -> Value {
    let explicit_str = tag.is_some_and(|t| t.suffix == "str" || t.suffix == "unsafe");
    if style != TScalarStyle::Plain || explicit_str {
        return Value::String(text);
    }
    resolve(&text).unwrap_or(Value::String(text))
}

/// PyYAML's implicit resolvers for a plain scalar.
fn resolve(s: &str) -> Option<Value> {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Some(Value::Null),
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            return Some(Value::Bool(true));
        }
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            return Some(Value::Bool(false));
        }
        _ => {}
    }
    int(s).or_else(|| float(s))
}

fn split_sign(s: &str) -> (bool, &str) {
    match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    }
}

fn all(s: &str, f: impl Fn(char) -> bool) -> bool {
    !s.is_empty() && s.chars().all(f)
}

fn signed(neg: bool, n: u64) -> Option<Value> {
    if neg {
        i64::try_from(n).ok().map(|i| Value::from(-i))
    } else {
        Some(Value::from(n))
    }
}

/// `[-+]?(0b[01_]+ | 0[0-7_]+ | 0 | [1-9][0-9_]* | 0x[0-9a-fA-F_]+ | [1-9][0-9_]*(:[0-5]?[0-9])+)`
fn int(s: &str) -> Option<Value> {
    let (neg, body) = split_sign(s);
    let clean = |d: &str| d.replace('_', "");
    let parse = |d: &str, radix| u64::from_str_radix(&clean(d), radix).ok();
    let n = if let Some(b) = body.strip_prefix("0b") {
        all(b, |c| matches!(c, '0' | '1' | '_')).then(|| parse(b, 2))??
    } else if let Some(h) = body.strip_prefix("0x") {
        all(h, |c| c.is_ascii_hexdigit() || c == '_').then(|| parse(h, 16))??
    } else if body == "0" {
        0
    } else if let Some(o) = body.strip_prefix('0') {
        all(o, |c| matches!(c, '0'..='7' | '_')).then(|| parse(o, 8))??
    } else if body.contains(':') {
        sexagesimal(body)?
    } else {
        let ok = body.starts_with(|c: char| c.is_ascii_digit())
            && all(body, |c| c.is_ascii_digit() || c == '_');
        ok.then(|| parse(body, 10))??
    };
    signed(neg, n)
}

/// `[1-9][0-9_]*(:[0-5]?[0-9])+`: base 60 (floats add a fraction after it).
fn sexagesimal(body: &str) -> Option<u64> {
    let mut parts = body.split(':');
    let first = parts.next()?;
    let ok = first.starts_with(|c: char| matches!(c, '1'..='9'))
        && all(first, |c| c.is_ascii_digit() || c == '_');
    if !ok {
        return None;
    }
    let mut n: u64 = first.replace('_', "").parse().ok()?;
    for p in parts {
        let ok = (1..=2).contains(&p.len())
            && all(p, |c| c.is_ascii_digit())
            && (p.len() == 1 || p.as_bytes()[0] <= b'5');
        if !ok {
            return None;
        }
        n = n.checked_mul(60)?.checked_add(p.parse().ok()?)?;
    }
    Some(n)
}

/// PyYAML's float: a `.` is required, an exponent needs its sign
/// (`1.0e+3`); `.inf` and `.nan` have no JSON form and stay strings.
fn float(s: &str) -> Option<Value> {
    let (neg, body) = split_sign(s);
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    if let Some(e) = exp {
        let digits = e.strip_prefix(['+', '-'])?;
        if !all(digits, |c| c.is_ascii_digit()) {
            return None;
        }
    }
    let (int_part, frac) = mantissa.split_once('.')?;
    let int_ok = if int_part.contains(':') {
        exp.is_none() && sexagesimal(int_part).is_some()
    } else {
        int_part.is_empty() && !frac.is_empty()
            || int_part.starts_with(|c: char| c.is_ascii_digit())
                && all(int_part, |c| c.is_ascii_digit() || c == '_')
    };
    if !int_ok || !frac.chars().all(|c| c.is_ascii_digit() || c == '_') {
        return None;
    }
    let f = if int_part.contains(':') {
        sexagesimal(int_part)? as f64
            + format!("0.{}", frac.replace('_', "")).parse::<f64>().ok()?
    } else {
        let text = format!(
            "{}.{}{}",
            if int_part.is_empty() { "0" } else { int_part },
            frac,
            exp.map(|e| format!("e{e}")).unwrap_or_default()
        )
        .replace('_', "");
        text.parse::<f64>().ok()?
    };
    let f = if neg { -f } else { f };
    Number::from_f64(f).map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn load(text: &str) -> Value {
        from_str(text, Path::new("v.yml")).unwrap()
    }

    #[test]
    fn plain_scalars_as_pyyaml_reads_them() {
        let cases = [
            ("yes", json!(true)),
            ("Off", json!(false)),
            ("'yes'", json!("yes")),
            ("!!str on", json!("on")),
            ("~", json!(null)),
            ("", json!(null)),
            ("0644", json!(420)),
            ("0o644", json!("0o644")),
            ("0x1F", json!(31)),
            ("0b101", json!(5)),
            ("1_000", json!(1000)),
            ("-5", json!(-5)),
            ("1:30", json!(90)),
            ("1.5", json!(1.5)),
            ("1e3", json!("1e3")),
            ("1.0e+3", json!(1000.0)),
            (".5", json!(0.5)),
            ("1.", json!(1.0)),
            ("1.2.3", json!("1.2.3")),
            ("10.0.0.1", json!("10.0.0.1")),
            ("2222", json!(2222)),
            ("y", json!("y")),
            (".inf", json!(".inf")),
        ];
        for (text, want) in cases {
            assert_eq!(load(&format!("v: {text}\n"))["v"], want, "{text:?}");
        }
    }

    #[test]
    fn anchors_merges_and_errors() {
        let v = load("base: &b {a: 1, b: 1}\nuse: {<<: *b, b: 2}\nlist: [*b]\nyes: 1\n");
        assert_eq!(v["use"], json!({"a": 1, "b": 2}));
        assert_eq!(v["list"], json!([{"a": 1, "b": 1}]));
        assert_eq!(v["true"], json!(1), "keys are resolved too");
        let e = from_str("a: [1\n", Path::new("v.yml"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("v.yml:"), "{e}");
    }
}
