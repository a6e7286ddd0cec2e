//! Values in Ansible INI inventories, typed as Ansible types them: each value
//! goes through Python's `ast.literal_eval`, and what is not a Python literal
//! stays the string it was written as. So `port=2222` is a number,
//! `debug=True` a boolean, `pkgs="['vim', 'git']"` a list, but `on=yes` and
//! `mode=0644` (a syntax error in Python 3) are strings.
//!
//! This is the part of Python's grammar `literal_eval` accepts: numbers with
//! at most one sign, strings (prefixes, escapes, adjacent concatenation),
//! `True`/`False`/`None`, lists, tuples and dicts (JSON arrays and objects).
//! Complex numbers, integers beyond 64 bits and infinite floats have no JSON
//! form; they stay strings.

use serde_json::{Map, Number, Value};

/// The value Ansible's INI parser gives `text`.
pub fn value(text: &str) -> Value {
    literal(text).unwrap_or_else(|| Value::String(text.to_string()))
}

/// `text` as a Python literal, or `None` when it is not one.
fn literal(text: &str) -> Option<Value> {
    let mut p = Parser {
        chars: text.chars().collect(),
        pos: 0,
    };
    let v = p.expr()?;
    p.skip_blank();
    (p.pos == p.chars.len()).then_some(v)
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

impl Parser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).copied()
    }

    /// Spaces, tabs, form feeds and a `#` comment to the end.
    fn skip_blank(&mut self) {
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\x0c' => self.pos += 1,
                '#' => self.pos = self.chars.len(),
                _ => break,
            }
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_blank();
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expr(&mut self) -> Option<Value> {
        self.skip_blank();
        let c = self.peek()?;
        match c {
            '[' => {
                self.pos += 1;
                Some(Value::Array(self.items(']')?.0))
            }
            '(' => {
                self.pos += 1;
                let (items, trailing_comma) = self.items(')')?;
                // `(x)` is x; `(x,)` and `()` are tuples.
                if items.len() == 1 && !trailing_comma {
                    items.into_iter().next()
                } else {
                    Some(Value::Array(items))
                }
            }
            '{' => {
                self.pos += 1;
                self.dict()
            }
            '+' | '-' => {
                self.pos += 1;
                self.skip_blank();
                let n = self.number()?;
                if c == '+' {
                    return Some(n);
                }
                match n {
                    Value::Number(n) => negate(&n).map(Value::Number),
                    _ => None,
                }
            }
            '.' if self.peek_at(1) == Some('.') => {
                // `...` (Ellipsis): Ansible turns it back into the text.
                (self.peek_at(2) == Some('.')).then(|| {
                    self.pos += 3;
                    Value::String("...".into())
                })
            }
            c if c.is_ascii_digit() || c == '.' => self.number(),
            _ => self.strings_or_name(),
        }
    }

    /// Comma-separated values up to `close`; whether a comma came last.
    fn items(&mut self, close: char) -> Option<(Vec<Value>, bool)> {
        let mut items = Vec::new();
        let mut trailing = false;
        loop {
            if self.eat(close) {
                return Some((items, trailing));
            }
            items.push(self.expr()?);
            trailing = self.eat(',');
            if !trailing {
                return self.eat(close).then_some((items, false));
            }
        }
    }

    fn dict(&mut self) -> Option<Value> {
        if self.eat('}') {
            return Some(Value::Object(Map::new()));
        }
        let first = self.expr()?;
        if !self.eat(':') {
            // A set: Ansible makes it a list.
            let mut items = vec![first];
            while self.eat(',') {
                if self.eat('}') {
                    return Some(Value::Array(items));
                }
                items.push(self.expr()?);
            }
            return self.eat('}').then_some(Value::Array(items));
        }
        let mut map = Map::new();
        let mut key = first;
        loop {
            let v = self.expr()?;
            map.insert(key_text(&key)?, v);
            if !self.eat(',') {
                return self.eat('}').then_some(Value::Object(map));
            }
            if self.eat('}') {
                return Some(Value::Object(map));
            }
            key = self.expr()?;
            if !self.eat(':') {
                return None;
            }
        }
    }

    fn digits(&mut self, radix: u32) -> Option<String> {
        // digit (_? digit)*
        let mut out = String::new();
        loop {
            match self.peek() {
                Some(c) if c.is_digit(radix) => {
                    out.push(c);
                    self.pos += 1;
                }
                Some('_')
                    if !out.is_empty() && self.peek_at(1).is_some_and(|d| d.is_digit(radix)) =>
                {
                    self.pos += 1;
                }
                _ => break,
            }
        }
        (!out.is_empty()).then_some(out)
    }

    fn number(&mut self) -> Option<Value> {
        let radix = match (self.peek(), self.peek_at(1).map(|c| c.to_ascii_lowercase())) {
            (Some('0'), Some('x')) => 16,
            (Some('0'), Some('o')) => 8,
            (Some('0'), Some('b')) => 2,
            _ => 10,
        };
        let n = if radix != 10 {
            self.pos += 2;
            if self.peek() == Some('_') {
                self.pos += 1;
            }
            let d = self.digits(radix)?;
            Value::Number(u64::from_str_radix(&d, radix).ok()?.into())
        } else {
            let int = if self.peek() == Some('.') {
                None
            } else {
                Some(self.digits(10)?)
            };
            let mut float = false;
            let mut text = int.clone().unwrap_or_default();
            if self.peek() == Some('.') {
                self.pos += 1;
                float = true;
                text.push('.');
                match self.digits(10) {
                    Some(f) => text.push_str(&f),
                    None if int.is_none() => return None,
                    None => text.push('0'),
                }
            }
            if matches!(self.peek(), Some('e' | 'E')) {
                let save = self.pos;
                self.pos += 1;
                let mut exp = String::from("e");
                if let Some(s @ ('+' | '-')) = self.peek() {
                    exp.push(s);
                    self.pos += 1;
                }
                match self.digits(10) {
                    Some(d) => {
                        float = true;
                        text.push_str(&exp);
                        text.push_str(&d);
                    }
                    None => self.pos = save,
                }
            }
            if float {
                let f: f64 = text.parse().ok()?;
                Value::Number(Number::from_f64(f).filter(|_| f.is_finite())?)
            } else {
                // Python 3 refuses leading zeros on a non-zero integer.
                if text.len() > 1
                    && text.starts_with('0')
                    && !text.trim_start_matches('0').is_empty()
                {
                    return None;
                }
                Value::Number(text.parse::<u64>().ok()?.into())
            }
        };
        // `1abc`, `0x1g`, `3j`: not a literal this reader types.
        if self.peek().is_some_and(is_ident) {
            return None;
        }
        Some(n)
    }

    /// One or more adjacent string literals, or `True`/`False`/`None`.
    fn strings_or_name(&mut self) -> Option<Value> {
        let start = self.pos;
        while self.peek().is_some_and(is_ident) {
            self.pos += 1;
        }
        let word: String = self.chars[start..self.pos].iter().collect();
        if !matches!(self.peek(), Some('\'' | '"')) {
            return match word.as_str() {
                "True" => Some(Value::Bool(true)),
                "False" => Some(Value::Bool(false)),
                "None" => Some(Value::Null),
                _ => None,
            };
        }
        self.pos = start;
        let mut out = String::new();
        let mut bytes = None;
        loop {
            self.skip_blank();
            let start = self.pos;
            while self.peek().is_some_and(is_ident) {
                self.pos += 1;
            }
            let prefix: String = self.chars[start..self.pos]
                .iter()
                .collect::<String>()
                .to_ascii_lowercase();
            if !matches!(self.peek(), Some('\'' | '"')) {
                self.pos = start;
                break;
            }
            let (raw, is_bytes) = match prefix.as_str() {
                "" | "u" => (false, false),
                "r" => (true, false),
                "b" => (false, true),
                "br" | "rb" => (true, true),
                _ => return None,
            };
            // Python refuses to join bytes and text.
            if *bytes.get_or_insert(is_bytes) != is_bytes {
                return None;
            }
            out.push_str(&self.string(raw, is_bytes)?);
        }
        Some(Value::String(out))
    }

    /// A quoted string; the position is on its opening quote.
    fn string(&mut self, raw: bool, bytes: bool) -> Option<String> {
        let q = self.peek()?;
        let triple = self.peek_at(1) == Some(q) && self.peek_at(2) == Some(q);
        self.pos += if triple { 3 } else { 1 };
        let mut out = String::new();
        loop {
            let c = self.peek()?;
            if bytes && !c.is_ascii() {
                return None;
            }
            if c == q && (!triple || (self.peek_at(1) == Some(q) && self.peek_at(2) == Some(q))) {
                self.pos += if triple { 3 } else { 1 };
                return Some(out);
            }
            self.pos += 1;
            if c != '\\' {
                out.push(c);
                continue;
            }
            let e = self.peek()?;
            self.pos += 1;
            if raw {
                out.push('\\');
                out.push(e);
                continue;
            }
            match e {
                '\\' | '\'' | '"' => out.push(e),
                'a' => out.push('\x07'),
                'b' => out.push('\x08'),
                'f' => out.push('\x0c'),
                'n' => out.push('\n'),
                'r' => out.push('\r'),
                't' => out.push('\t'),
                'v' => out.push('\x0b'),
                '0'..='7' => {
                    let mut n = e.to_digit(8)?;
                    for _ in 0..2 {
                        match self.peek().and_then(|d| d.to_digit(8)) {
                            Some(d) => {
                                n = n * 8 + d;
                                self.pos += 1;
                            }
                            None => break,
                        }
                    }
                    out.push(char::from_u32(n)?);
                }
                'x' => out.push(self.hex(2)?),
                'u' if !bytes => out.push(self.hex(4)?),
                'U' if !bytes => out.push(self.hex(8)?),
                // `\N{NAME}` needs Unicode's name table: left as text.
                'N' if !bytes => return None,
                _ => {
                    out.push('\\');
                    out.push(e);
                }
            }
        }
    }

    fn hex(&mut self, n: usize) -> Option<char> {
        let digits: String = self.chars.get(self.pos..self.pos + n)?.iter().collect();
        let v = u32::from_str_radix(&digits, 16).ok()?;
        self.pos += n;
        char::from_u32(v)
    }
}

fn negate(n: &Number) -> Option<Number> {
    if let Some(u) = n.as_u64() {
        return i64::try_from(u)
            .ok()
            .map(|i| Number::from(-i))
            .or_else(|| (u == 1 << 63).then(|| Number::from(i64::MIN)));
    }
    Number::from_f64(-n.as_f64()?)
}

/// A dict key as Python's `json.dumps` writes it.
fn key_text(key: &Value) -> Option<String> {
    match key {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some("null".into()),
        // Lists and dicts are not hashable in Python.
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::value;
    use serde_json::json;

    #[test]
    fn typed_as_python_literal_eval_types_them() {
        let cases = [
            ("2222", json!(2222)),
            ("-5", json!(-5)),
            ("+5", json!(5)),
            ("--5", json!("--5")),
            ("1_000", json!(1000)),
            ("0x1F", json!(31)),
            ("0o17", json!(15)),
            ("0b101", json!(5)),
            ("010", json!("010")),
            ("00", json!(0)),
            ("1.5", json!(1.5)),
            ("1.", json!(1.0)),
            (".5", json!(0.5)),
            ("1e3", json!(1000.0)),
            ("True", json!(true)),
            ("true", json!("true")),
            ("yes", json!("yes")),
            ("None", json!(null)),
            ("'a b'", json!("a b")),
            ("\"it's\"", json!("it's")),
            ("'a' \"b\"", json!("ab")),
            ("r'\\d'", json!("\\d")),
            ("'\\x41\\n\\q'", json!("A\n\\q")),
            ("b'ab'", json!("ab")),
            ("[1, 'a', [True]]", json!([1, "a", [true]])),
            ("(1, 2)", json!([1, 2])),
            ("(1)", json!(1)),
            ("(1,)", json!([1])),
            ("{'a': 1, 2: None,}", json!({"a": 1, "2": null})),
            ("{}", json!({})),
            ("[1, 2", json!("[1, 2")),
            ("1 # note", json!(1)),
            ("hello # note", json!("hello # note")),
            ("  7", json!(7)),
            ("3j", json!("3j")),
            ("0644", json!("0644")),
            ("1.2.3.4", json!("1.2.3.4")),
            ("...", json!("...")),
            ("-True", json!("-True")),
            ("f'x'", json!("f'x'")),
            ("", json!("")),
        ];
        for (text, want) in cases {
            assert_eq!(value(text), want, "{text:?}");
        }
    }
}
