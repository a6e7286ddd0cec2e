//! `-e`: extra variables, read as `ansible-playbook -e` reads them (Ansible's
//! `load_extra_vars`, `parse_kv` and `split_args`), since technicians bring
//! their command lines from Ansible:
//!
//! - `KEY=VALUE`, several in one argument separated by spaces, a value in
//!   quotes when it holds one: **strings**, whatever they look like
//!   (`version=1.10` stays `1.10`, `mode=0755` stays `0755`);
//! - `{...}` or `[...]`: YAML (JSON is YAML), which must be a mapping: typed
//!   values, any nesting;
//! - `@FILE`: a YAML file holding a mapping.
//!
//! YAML is read as Ansible reads it (YAML 1.1: `0644` is octal, `yes` true),
//! by the inventory's reader.
//!
//! Later arguments replace earlier keys. Errors never quote a value: it may be
//! a secret; [`redact`] shows an argument without its secrets, read the same
//! way.

use std::path::{Path, PathBuf};

use super::yaml11;
use super::{InventoryError, Vars};

#[derive(Debug, thiserror::Error)]
pub enum ExtraVarError {
    #[error("-e `{item}`: expected KEY=VALUE, a mapping ({{...}}) or @FILE")]
    NotAssignment { item: String },
    #[error("-e #{index}: a quote or a {{{{ }}}}, {{% %}} or {{# #}} block is not closed")]
    Unbalanced { index: usize },
    #[error("-e #{index}: a file? Read variables from a file with -e @FILE")]
    BarePath { index: usize },
    #[error("-e #{index}: cannot read this mapping of variables: {reason}")]
    Mapping { index: usize, reason: String },
    #[error("-e @FILE: {0}")]
    Read(crate::confine::ReadError),
    #[error("-e @{}: holds no mapping of variables", path.display())]
    NoMapping { path: PathBuf },
    #[error("-e @{0}")]
    File(InventoryError),
}

/// The YAML of an argument or a file, read as Ansible reads it once it is
/// known not to nest deeper than parc takes (the inventory's bound: nesting
/// deep enough would exhaust the stack building or dropping the value).
fn yaml(text: &str, path: &Path) -> Result<serde_json::Value, InventoryError> {
    crate::location::prescan(path, text)?;
    yaml11::from_str(text, path)
}

/// Every `-e` of the command line, in order, into one set of variables.
pub fn parse(items: &[String]) -> Result<Vars, ExtraVarError> {
    let mut vars = Vars::new();
    for (i, item) in items.iter().enumerate() {
        let index = i + 1;
        if let Some(file) = item.strip_prefix('@') {
            vars.extend(from_file(Path::new(file))?);
        } else if item.starts_with(['/', '.']) {
            return Err(ExtraVarError::BarePath { index });
        } else if item.trim_start().starts_with(['{', '[']) {
            // The reason never quotes the text: the parser's message and
            // where it stopped.
            let mapping = match yaml(item, Path::new("")) {
                Ok(serde_json::Value::Object(map)) => Ok(map),
                Ok(_) => Err("not a mapping".to_string()),
                Err(InventoryError::Invalid { location, message }) => Err(format!(
                    "{message} (line {}, column {})",
                    location.line, location.column
                )),
                Err(e) => Err(e.to_string()),
            }
            .map_err(|reason| ExtraVarError::Mapping { index, reason })?;
            vars.extend(mapping);
        } else {
            for token in split(item).ok_or(ExtraVarError::Unbalanced { index })? {
                let (key, value) =
                    assignment(&token).ok_or_else(|| ExtraVarError::NotAssignment {
                        item: token.clone(),
                    })?;
                vars.insert(key, serde_json::Value::String(value));
            }
        }
    }
    Ok(vars)
}

fn from_file(path: &Path) -> Result<Vars, ExtraVarError> {
    // A regular file only: a FIFO named here would wait for a writer.
    let text = crate::confine::read_regular_to_string(path).map_err(ExtraVarError::Read)?;
    match yaml(&text, path).map_err(ExtraVarError::File)? {
        serde_json::Value::Object(map) => Ok(map),
        _ => Err(ExtraVarError::NoMapping {
            path: path.to_path_buf(),
        }),
    }
}

/// `item` (one `-e` argument) as it may be shown, in a run's report: the
/// value of every key `secret` names replaced by `redacted`, read as
/// [`parse`] reads it. In a mapping (the argument, or a value that is one)
/// at any depth; an argument that cannot be read (or that `parse` refuses)
/// is replaced whole, since nothing says which part of it is secret. A file
/// (`@FILE`) is only named.
pub fn redact(item: &str, secret: &dyn Fn(&str) -> bool, redacted: &str) -> String {
    if item.starts_with('@') {
        return item.to_string();
    }
    if item.trim_start().starts_with(['{', '[']) {
        return redact_mapping(item, secret, redacted);
    }
    let Some(tokens) = split(item) else {
        return redacted.to_string();
    };
    // A word that is no assignment makes the argument one `parse` refuses,
    // and nothing says whether it is a secret: the whole is replaced.
    let Some(pairs) = tokens
        .into_iter()
        .map(|token| assignment(&token).map(|pair| (token, pair)))
        .collect::<Option<Vec<_>>>()
    else {
        return redacted.to_string();
    };
    let shown: Vec<String> = pairs
        .into_iter()
        .map(|(token, (key, value))| {
            if secret(&key) {
                // The spaces that followed the token stay.
                let tail = &token[token.trim_end_matches(' ').len()..];
                format!("{key}={redacted}{tail}")
            } else if value.trim_start().starts_with('{') {
                format!("{key}={}", redact_mapping(&value, secret, redacted))
            } else {
                token
            }
        })
        .collect();
    shown.join(" ")
}

/// A mapping as compact JSON with the values of secret keys replaced, at
/// any depth; wholly replaced if it cannot be read.
fn redact_mapping(text: &str, secret: &dyn Fn(&str) -> bool, redacted: &str) -> String {
    fn walk(v: &mut serde_json::Value, secret: &dyn Fn(&str) -> bool, redacted: &str) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, item) in map.iter_mut() {
                    if secret(k) {
                        *item = redacted.into();
                    } else {
                        walk(item, secret, redacted);
                    }
                }
            }
            serde_json::Value::Array(items) => {
                items.iter_mut().for_each(|i| walk(i, secret, redacted))
            }
            _ => {}
        }
    }
    match yaml(text, Path::new("")) {
        Ok(mut v) => {
            walk(&mut v, secret, redacted);
            v.to_string()
        }
        Err(_) => redacted.to_string(),
    }
}

/// Ansible's `split_args`: the argument split at spaces, except inside quotes
/// and jinja2 blocks; a run of spaces stays with the token before it (the
/// value is trimmed later). `None` when a quote or block is left open.
fn split(args: &str) -> Option<Vec<String>> {
    let mut params: Vec<String> = Vec::new();
    let mut quote: Option<char> = None;
    let (mut print, mut block, mut comment) = (0usize, 0usize, 0usize);
    let lines: Vec<&str> = args.split('\n').collect();
    for (line_idx, line) in lines.iter().enumerate() {
        let mut continued = false;
        for (idx, token) in line.split(' ').enumerate() {
            if token.is_empty() && idx != 0 {
                match params.last_mut() {
                    Some(last) => last.push(' '),
                    None => params.push(" ".into()),
                }
                continue;
            }
            if token == "\\" && quote.is_none() {
                continued = true;
                continue;
            }
            let was_quoted = quote.is_some();
            quote = quote_state(token, quote);
            let in_block = print > 0 || block > 0 || comment > 0;
            let mut appended = false;
            if quote.is_some() && !was_quoted && !in_block {
                params.push(token.to_string());
                appended = true;
            } else if in_block || quote.is_some() || was_quoted {
                let last = params.last_mut()?;
                if idx > 0 {
                    last.push(' ');
                }
                last.push_str(token);
                appended = true;
            }
            for (depth, open, close) in [
                (&mut print, "{{", "}}"),
                (&mut block, "{%", "%}"),
                (&mut comment, "{#", "#}"),
            ] {
                let before = *depth;
                *depth = jinja_depth(token, before, open, close);
                if *depth != before && !appended {
                    params.push(token.to_string());
                    appended = true;
                }
            }
            let outside = print == 0 && block == 0 && comment == 0 && quote.is_none();
            if outside && !appended && !token.is_empty() {
                params.push(token.to_string());
            }
        }
        if lines.len() > 1 && line_idx != lines.len() - 1 && !continued {
            match params.last_mut() {
                Some(last) => last.push('\n'),
                None => params.push("\n".into()),
            }
        }
    }
    (print == 0 && block == 0 && comment == 0 && quote.is_none()).then_some(params)
}

/// Ansible's `_get_quote_state`: the quote left open after `token`.
fn quote_state(token: &str, mut quote: Option<char>) -> Option<char> {
    let mut prev = None;
    for c in token.chars() {
        if (c == '"' || c == '\'') && prev != Some('\\') {
            match quote {
                Some(q) if q == c => quote = None,
                Some(_) => {}
                None => quote = Some(c),
            }
        }
        prev = Some(c);
    }
    quote
}

/// Ansible's `_count_jinja2_blocks`.
fn jinja_depth(token: &str, depth: usize, open: &str, close: &str) -> usize {
    let (opened, closed) = (token.matches(open).count(), token.matches(close).count());
    (depth + opened).saturating_sub(closed)
}

/// Ansible's `parse_kv` for one token: escapes decoded, split at the first
/// `=` that is not escaped (and not the first character), key and value
/// trimmed, the value's surrounding quotes removed.
fn assignment(token: &str) -> Option<(String, String)> {
    let x = decode_escapes(token);
    let chars: Vec<(usize, char)> = x.char_indices().collect();
    let pos = chars
        .iter()
        .enumerate()
        .skip(1)
        .find(|&(i, &(_, c))| c == '=' && chars[i - 1].1 != '\\')
        .map(|(_, &(byte, _))| byte)?;
    let value = x[pos + 1..].trim();
    Some((x[..pos].trim().to_string(), unquote(value).to_string()))
}

/// Ansible's `unquote`.
fn unquote(v: &str) -> &str {
    let b = v.as_bytes();
    let quoted = b.len() > 1
        && b[0] == b[b.len() - 1]
        && (b[0] == b'"' || b[0] == b'\'')
        && b[b.len() - 2] != b'\\';
    if quoted { &v[1..v.len() - 1] } else { v }
}

/// Ansible's `_decode_escapes`: `\\`, `\'`, `\"`, `\a \b \f \n \r \t \v`,
/// `\xHH`, `\uHHHH` and `\UHHHHHHHH` (not `\N{name}`); any other backslash
/// stays as it is.
fn decode_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let hex = |digits: usize| {
            after
                .get(1..=digits)
                .filter(|h| h.chars().all(|c| c.is_ascii_hexdigit()))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .and_then(char::from_u32)
        };
        let (decoded, used) = match after.chars().next() {
            Some('x') => (hex(2), 3),
            Some('u') => (hex(4), 5),
            Some('U') => (hex(8), 9),
            Some(c @ ('\\' | '\'' | '"')) => (Some(c), 1),
            Some('a') => (Some('\u{7}'), 1),
            Some('b') => (Some('\u{8}'), 1),
            Some('f') => (Some('\u{c}'), 1),
            Some('n') => (Some('\n'), 1),
            Some('r') => (Some('\r'), 1),
            Some('t') => (Some('\t'), 1),
            Some('v') => (Some('\u{b}'), 1),
            _ => (None, 0),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &after[used..];
            }
            None => {
                out.push('\\');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(items: &[&str]) -> serde_json::Value {
        let items: Vec<String> = items.iter().map(|s| s.to_string()).collect();
        serde_json::Value::Object(parse(&items).unwrap())
    }

    /// The values `ansible-inventory --list -e ...` (ansible-core 2.19) gives
    /// for these; tests/ansible_inventory.rs checks them against it.
    #[test]
    fn assignments_are_strings_as_in_ansible() {
        assert_eq!(
            vars(&["port=2222 mode=0755", "version=1.10", "flag=true"]),
            json!({"port": "2222", "mode": "0755", "version": "1.10", "flag": "true"})
        );
        assert_eq!(
            vars(&[r#"msg="hello  world" q='it is' eq=a=b empty= tab=a\tb"#]),
            json!({"msg": "hello  world", "q": "it is", "eq": "a=b", "empty": "", "tab": "a\tb"})
        );
        assert_eq!(
            vars(&["a=1", r#"{"a": 2, "db": {"port": 5432}}"#]),
            json!({"a": 2, "db": {"port": 5432}})
        );
        assert_eq!(
            vars(&["t={{ a | int }} u=1"]),
            json!({"t": "{{ a | int }}", "u": "1"})
        );
    }

    #[test]
    fn errors_never_quote_a_mapping() {
        for bad in [
            r#"{"db_password": "hunter22""#,
            "{hunter22}: [",
            "{",
            "[1, 2]",
        ] {
            let e = parse(&[bad.to_string()]).unwrap_err().to_string();
            assert!(e.starts_with("-e #1: cannot read this mapping"), "{e}");
            assert!(!e.contains("hunter22"), "{e}");
        }
        for (bad, says) in [
            ("a='open", "not closed"),
            ("./vars.yml", "-e @FILE"),
            ("loose", "expected KEY=VALUE"),
        ] {
            let e = parse(&[bad.to_string()]).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    /// Nesting deep enough to exhaust the stack, were it built into a value,
    /// is an error inline and in a file (the YAML reader's depth limit), and
    /// is redacted whole from the report's command line.
    #[test]
    fn deep_nesting_is_refused_not_a_crash() {
        let deep = format!("{{a: {}{}}}", "[".repeat(200_000), "]".repeat(200_000));
        let e = parse(std::slice::from_ref(&deep)).unwrap_err().to_string();
        assert!(e.starts_with("-e #1: cannot read this mapping"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("deep.yml");
        std::fs::write(&f, &deep).unwrap();
        assert!(parse(&[format!("@{}", f.display())]).is_err());
        // Block sequences nest two columns a level.
        std::fs::write(&f, format!("a:\n  {}x\n", "- ".repeat(100_000))).unwrap();
        assert!(parse(&[format!("@{}", f.display())]).is_err());
        assert_eq!(redact(&deep, &|_| false, "<redacted>"), "<redacted>");
    }

    /// A FIFO named by `-e @FILE` is refused, not waited on for a writer.
    #[test]
    fn a_fifo_is_no_file_of_variables() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("vars.yml");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let e = parse(&[format!("@{}", fifo.display())])
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }

    #[test]
    fn a_file_of_variables_and_where_it_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("vars.yml");
        std::fs::write(&f, "port: 2222\nmode: 0644\nlist: [1, 2]\n").unwrap();
        let arg = format!("@{}", f.display());
        assert_eq!(
            vars(&[&arg]),
            json!({"port": 2222, "mode": 420, "list": [1, 2]})
        );
        std::fs::write(&f, "port: 2222\nlist: [1, 2\n").unwrap();
        let e = parse(&[arg]).unwrap_err().to_string();
        assert!(e.starts_with(&format!("-e @{}:", f.display())), "{e}");
        assert!(e.contains(":3:"), "{e}");
    }
}
