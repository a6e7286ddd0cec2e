//! Ansible's INI inventory, read unchanged and resolved as Ansible's `ini`
//! plugin resolves it (`lib/ansible/plugins/inventory/ini.py`): sections
//! `[group]`, `[group:vars]` and `[group:children]`; host lines with inline
//! variables (`ws-001 ansible_host=10.0.0.5 ansible_port=2222 desk=B12`),
//! split as Python's `shlex` splits them; values typed by [`pyliteral`];
//! comments starting with `#` or `;`; hosts before any section are
//! `ungrouped`. A child group may be named before its own section; a group
//! never defined is an error, as in Ansible.

use std::path::Path;

use indexmap::IndexMap;

use super::ansible::{Data, UNGROUPED};
use super::model::Inventory;
use super::{InventoryError, pyliteral, ranges};
use crate::location::Location;

#[derive(Clone, Copy, PartialEq)]
enum Section {
    Hosts,
    Vars,
    Children,
}

/// A group named before it was defined: its section's line, and for a
/// child, the groups waiting for it.
struct Pending {
    line: usize,
    section: Section,
    parents: Vec<String>,
}

pub fn parse(text: &str, path: &Path) -> Result<Inventory, InventoryError> {
    let mut data = Data::new(path);
    let mut pending: IndexMap<String, Pending> = IndexMap::new();
    let mut group = UNGROUPED.to_string();
    let mut section = Section::Hosts;
    for (i, raw) in text.lines().enumerate() {
        let lineno = i + 1;
        let line = raw.trim();
        let column = raw.len() - raw.trim_start().len() + 1;
        let invalid = |message: String| InventoryError::Invalid {
            location: Location {
                file: path.to_path_buf(),
                line: lineno,
                column,
            },
            message,
        };
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some((name, kind)) = section_header(line) {
            section = match kind {
                None | Some("hosts") => Section::Hosts,
                Some("vars") => Section::Vars,
                Some("children") => Section::Children,
                Some(other) => {
                    return Err(invalid(format!(
                        "section [{name}:{other}] has an unknown type: expected [{name}], [{name}:vars] or [{name}:children]"
                    )));
                }
            };
            group = name.to_string();
            if !data.has_group(name) {
                if section == Section::Vars && !pending.contains_key(name) {
                    pending.insert(
                        name.to_string(),
                        Pending {
                            line: lineno,
                            section,
                            parents: vec![],
                        },
                    );
                }
                data.add_group(name);
            }
            if section != Section::Vars
                && let Some(p) = pending.get(name)
            {
                match p.section {
                    Section::Children => add_pending_children(&mut data, name, &mut pending),
                    _ => {
                        pending.shift_remove(name);
                    }
                }
            }
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            return Err(invalid(format!(
                "`{line}` is not a section: expected [GROUP], [GROUP:vars] or [GROUP:children], without spaces"
            )));
        }
        match section {
            Section::Hosts => {
                let tokens = shlex_split(line).map_err(|why| invalid(why.into()))?;
                let Some((pattern, assignments)) = tokens.split_first() else {
                    continue;
                };
                if pattern == "---" {
                    return Err(invalid(
                        "`---` starts a YAML document, not an INI host line: check the YAML above or below it".into(),
                    ));
                }
                let (names, port) = ranges::host_pattern(pattern).map_err(&invalid)?;
                if pattern.ends_with(':') && port.is_none() {
                    return Err(invalid(format!(
                        "host `{pattern}` ends in `:`: expected a port number after it"
                    )));
                }
                let mut vars = Vec::new();
                for a in assignments {
                    let Some((k, v)) = a.split_once('=') else {
                        return Err(invalid(format!(
                            "`{a}` after host `{pattern}`: expected a variable as key=value"
                        )));
                    };
                    vars.push((k.to_string(), pyliteral::value(v)));
                }
                for host in names {
                    data.add_host(&host, &group, port);
                    for (k, v) in &vars {
                        data.set_host_var(&host, k.clone(), v.clone());
                    }
                }
            }
            Section::Vars => {
                let Some((k, v)) = line.split_once('=') else {
                    return Err(invalid(format!(
                        "`{line}` in [{group}:vars]: expected a variable as key=value"
                    )));
                };
                data.set_group_var(&group, k.trim().to_string(), pyliteral::value(v.trim()));
            }
            Section::Children => {
                let child = group_name(line).ok_or_else(|| {
                    invalid(format!(
                        "`{line}` in [{group}:children]: expected a group name"
                    ))
                })?;
                if data.has_group(child) {
                    data.add_child(&group, child);
                } else if let Some(p) = pending.get_mut(child) {
                    p.parents.push(group.clone());
                } else {
                    pending.insert(
                        child.to_string(),
                        Pending {
                            line: lineno,
                            section: Section::Children,
                            parents: vec![group.clone()],
                        },
                    );
                }
            }
        }
    }
    if let Some((name, p)) = pending.first() {
        let message = match p.section {
            Section::Vars => format!(
                "section [{name}:vars] is for a group defined nowhere: expected a [{name}] or [{name}:children] section"
            ),
            _ => format!(
                "section [{}:children] names group `{name}`, defined nowhere: expected a [{name}] or [{name}:children] section",
                p.parents.last().map_or("?", String::as_str)
            ),
        };
        return Err(InventoryError::Invalid {
            location: Location {
                file: path.to_path_buf(),
                line: p.line,
                column: 1,
            },
            message,
        });
    }
    data.finish()
}

/// Now that `group` is defined, nest it in the groups that named it.
fn add_pending_children(data: &mut Data, group: &str, pending: &mut IndexMap<String, Pending>) {
    let Some(p) = pending.shift_remove(group) else {
        return;
    };
    for parent in p.parents {
        data.add_child(&parent, group);
        if pending
            .get(&parent)
            .is_some_and(|pp| pp.section == Section::Children)
        {
            add_pending_children(data, &parent, pending);
        }
    }
}

/// Characters a group name cannot hold in a section header.
fn name_char(c: char) -> bool {
    c != ':' && c != ']' && !c.is_whitespace()
}

/// Only blanks, or a `#` comment, after a header or a child's name.
fn trailing_ok(rest: &str) -> bool {
    let rest = rest.trim_start();
    rest.is_empty() || rest.starts_with('#')
}

/// `[name]` or `[name:kind]`, then only a comment.
fn section_header(line: &str) -> Option<(&str, Option<&str>)> {
    let rest = line.strip_prefix('[')?;
    let end = rest.find(|c| !name_char(c)).unwrap_or(rest.len());
    let (name, rest) = rest.split_at(end);
    if name.is_empty() {
        return None;
    }
    let (kind, rest) = match rest.strip_prefix(':') {
        Some(r) => {
            let end = r
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(r.len());
            if end == 0 {
                return None;
            }
            (Some(&r[..end]), &r[end..])
        }
        None => (None, rest),
    };
    let rest = rest.strip_prefix(']')?;
    trailing_ok(rest).then_some((name, kind))
}

/// A line of `[group:children]`: a name, then only a comment.
fn group_name(line: &str) -> Option<&str> {
    let end = line.find(|c| !name_char(c)).unwrap_or(line.len());
    let (name, rest) = line.split_at(end);
    (!name.is_empty() && trailing_ok(rest)).then_some(name)
}

/// Python's `shlex.split(line, comments=True)`, which Ansible splits host
/// lines with: POSIX quoting, where a `#` outside quotes ends the line even in
/// the middle of a word, and a backslash inside double quotes escapes only `"`
/// and `\`. (The `shlex` crate follows the shell, which differs on both.)
fn shlex_split(line: &str) -> Result<Vec<String>, &'static str> {
    let mut tokens = Vec::new();
    let mut chars = line.chars();
    let mut token = String::new();
    // Whether the current token has started (it may be empty: `''`).
    let mut open = false;
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                if open {
                    tokens.push(std::mem::take(&mut token));
                    open = false;
                }
            }
            '#' => break,
            '\\' => {
                token.push(chars.next().ok_or("no character after the final `\\`")?);
                open = true;
            }
            '\'' | '"' => {
                open = true;
                loop {
                    let q = chars.next().ok_or(if c == '"' {
                        "a `\"` opens a quotation that does not close"
                    } else {
                        "a `'` opens a quotation that does not close"
                    })?;
                    if q == c {
                        break;
                    }
                    if q == '\\' && c == '"' {
                        let e = chars
                            .next()
                            .ok_or("a `\"` opens a quotation that does not close")?;
                        if e != '"' && e != '\\' {
                            token.push('\\');
                        }
                        token.push(e);
                    } else {
                        token.push(q);
                    }
                }
            }
            _ => {
                token.push(c);
                open = true;
            }
        }
    }
    if open {
        tokens.push(token);
    }
    Ok(tokens)
}

/// Whether `text` reads as an INI inventory rather than YAML: its first line
/// that is neither blank nor a comment is a `[section]`, or a host line
/// (a word, then `key=value` words), which YAML cannot be.
pub fn looks_like_ini(text: &str) -> bool {
    let Some(first) = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with(['#', ';']))
    else {
        return false;
    };
    if first.starts_with('[') {
        // A section, or one meant as such (`[web servers]`, which the INI
        // reader then points at); a YAML flow list has commas.
        return section_header(first).is_some() || first.ends_with(']') && !first.contains(',');
    }
    !first.starts_with(['-', '{', '"', '\''])
        && !first.contains(": ")
        && !first.ends_with(':')
        && shlex_split(first).is_ok_and(|t| t.iter().skip(1).all(|w| w.contains('=')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_as_python_shlex_splits() {
        let s = |l: &str| shlex_split(l).unwrap();
        assert_eq!(s("a  b=1\tc"), ["a", "b=1", "c"]);
        assert_eq!(s(r##"h x="a b"#c y=a#b"##), ["h", "x=a b"]);
        assert_eq!(
            s(r##"h x='a "b"' y="a \"q\" \n""##),
            ["h", r#"x=a "b""#, r#"y=a "q" \n"#]
        );
        assert_eq!(s(r"h x=a\ b z=''"), ["h", "x=a b", "z="]);
        assert_eq!(s("h ''"), ["h", ""]);
        assert!(shlex_split("h x='a").is_err());
        assert!(shlex_split("h x=\\").is_err());
    }

    #[test]
    fn headers() {
        assert_eq!(section_header("[web]"), Some(("web", None)));
        assert_eq!(
            section_header("[web:vars] # c"),
            Some(("web", Some("vars")))
        );
        assert_eq!(section_header("[web:]"), None);
        assert_eq!(section_header("[web x]"), None);
        assert_eq!(group_name("web  # c"), Some("web"));
        assert_eq!(group_name("web x"), None);
    }

    #[test]
    fn format_by_content() {
        assert!(looks_like_ini("# c\n[web]\nws1\n"));
        assert!(looks_like_ini("ws1 ansible_host=1.2.3.4\n"));
        assert!(looks_like_ini("ws1\n"));
        assert!(!looks_like_ini("all:\n  hosts:\n"));
        assert!(!looks_like_ini("hosts: {}\n"));
        assert!(!looks_like_ini("[1, 2]\n"));
        assert!(!looks_like_ini("- a\n"));
        assert!(!looks_like_ini(""));
    }
}
