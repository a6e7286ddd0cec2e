//! Host patterns, Ansible-compatible: `all`, group, host, glob (`ws-0*`), union
//! `a,b` (or `a:b`), intersection `&y`, exclusion `!x`.
//!
//! Evaluation: the union of the plain terms (or every host when there are only
//! `&`/`!` terms), then each intersection, then each exclusion. A term that
//! matches nothing is an error rather than a silent no-op: a typo in `--limit`
//! must not turn into "ran on zero machines, exit 0".

use std::collections::BTreeSet;

use super::model::Inventory;
use super::{Host, PatternError};

enum Op {
    Union,
    Intersect,
    Exclude,
}

pub fn select<'a>(inv: &'a Inventory, pattern: &str) -> Result<Vec<&'a Host>, PatternError> {
    let terms: Vec<&str> = pattern
        .split([',', ':'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    if terms.is_empty() {
        return Err(PatternError::Empty);
    }
    let parsed: Vec<(Op, &str)> = terms
        .iter()
        .map(|t| match (t.strip_prefix('!'), t.strip_prefix('&')) {
            (Some(rest), _) => (Op::Exclude, rest),
            (_, Some(rest)) => (Op::Intersect, rest),
            _ => (Op::Union, *t),
        })
        .collect();
    let mut selected: BTreeSet<&str> = BTreeSet::new();
    let has_union = parsed.iter().any(|(op, _)| matches!(op, Op::Union));
    if !has_union {
        selected.extend(inv.hosts.keys().map(String::as_str));
    }
    for (op, term) in &parsed {
        if matches!(op, Op::Union) {
            selected.extend(matches(inv, pattern, term)?);
        }
    }
    for (op, term) in &parsed {
        if matches!(op, Op::Intersect) {
            let m = matches(inv, pattern, term)?;
            selected.retain(|h| m.contains(h));
        }
    }
    for (op, term) in &parsed {
        if matches!(op, Op::Exclude) {
            // An exclusion that matches nothing is harmless but likely a typo: still refuse.
            let m = matches(inv, pattern, term)?;
            selected.retain(|h| !m.contains(h));
        }
    }
    if selected.is_empty() {
        return Err(PatternError::EmptyResult {
            pattern: pattern.to_string(),
        });
    }
    // Inventory order, not alphabetical: ws-2 before ws-10 when written so.
    Ok(inv
        .hosts
        .values()
        .filter(|h| selected.contains(h.name.as_str()))
        .collect())
}

fn matches<'a>(
    inv: &'a Inventory,
    pattern: &str,
    term: &str,
) -> Result<BTreeSet<&'a str>, PatternError> {
    let mut out = BTreeSet::new();
    if term.is_empty() {
        return Err(PatternError::BadTerm {
            pattern: pattern.to_string(),
            term: term.to_string(),
            reason: "`!` and `&` need a host or group after them".into(),
        });
    }
    if term == "all" || term == "*" {
        out.extend(inv.hosts.keys().map(String::as_str));
        return Ok(out);
    }
    if let Some((name, _)) = inv.hosts.get_key_value(term) {
        out.insert(name.as_str());
    }
    if inv.groups.contains_key(term) {
        out.extend(inv.group_hosts(term));
    }
    if out.is_empty() && term.contains(['*', '?', '[']) {
        let glob = globset::Glob::new(term)
            .map_err(|e| PatternError::BadTerm {
                pattern: pattern.to_string(),
                term: term.to_string(),
                reason: e.kind().to_string(),
            })?
            .compile_matcher();
        out.extend(
            inv.hosts
                .keys()
                .filter(|h| glob.is_match(h.as_str()))
                .map(String::as_str),
        );
        for g in inv.groups.keys().filter(|g| glob.is_match(g.as_str())) {
            out.extend(inv.group_hosts(g));
        }
    }
    if out.is_empty() {
        return Err(PatternError::NoMatch {
            pattern: pattern.to_string(),
            term: term.to_string(),
            inventory: inv.path.clone(),
        });
    }
    Ok(out)
}
