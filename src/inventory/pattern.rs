//! Host patterns, Ansible-compatible: `all`, group, host, glob (`ws-0*`), union
//! `a,b` (or `a:b`), intersection `&y`, exclusion `!x`; and parc's own
//! `@failed`, `@unreachable`, `@untrusted` (`@RUN_ID:failed` for an older run):
//! the hosts that ended so in the last run's record, to retry only those.
//!
//! Evaluation: the union of the plain terms (or every host when there are only
//! `&`/`!` terms), then each intersection, then each exclusion. A term that
//! matches nothing is an error rather than a silent no-op: a typo in `--limit`
//! must not turn into "ran on zero machines, exit 0".

use std::collections::BTreeSet;

use super::model::Inventory;
use super::{Host, PatternError};
use crate::report::{PastState, RunsDir};

enum Op {
    Union,
    Intersect,
    Exclude,
}

/// `runs`: where `@failed`-style terms read past runs; `None` where a pattern
/// cannot mean a past run (a playbook's `hosts:`).
pub fn select<'a>(
    inv: &'a Inventory,
    pattern: &str,
    runs: Option<&RunsDir>,
) -> Result<Vec<&'a Host>, PatternError> {
    let terms = split_terms(pattern);
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
    let hosts_of = |term: &str| match term.strip_prefix('@') {
        Some(past) => past_matches(inv, pattern, term, past, runs),
        None => matches(inv, pattern, term),
    };
    let mut selected: BTreeSet<&str> = BTreeSet::new();
    let has_union = parsed.iter().any(|(op, _)| matches!(op, Op::Union));
    if !has_union {
        selected.extend(inv.hosts.keys().map(String::as_str));
    }
    for (op, term) in &parsed {
        if matches!(op, Op::Union) {
            selected.extend(hosts_of(term)?);
        }
    }
    for (op, term) in &parsed {
        if matches!(op, Op::Intersect) {
            let m = hosts_of(term)?;
            selected.retain(|h| m.contains(h));
        }
    }
    for (op, term) in &parsed {
        if matches!(op, Op::Exclude) {
            // An exclusion that matches nothing is harmless but likely a typo: still refuse.
            let m = hosts_of(term)?;
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

/// Terms split at `,` and `:`, except the `:` of `@RUN_ID:STATE`.
fn split_terms(pattern: &str) -> Vec<&str> {
    let names_a_run = |term: &str| {
        term.trim_start_matches(['!', '&'])
            .strip_prefix('@')
            .is_some_and(|r| r.parse::<PastState>().is_err())
    };
    let mut terms = Vec::new();
    for part in pattern.split(',') {
        let (mut start, mut joined) = (0, false);
        for (i, _) in part.match_indices(':') {
            if !joined && names_a_run(part[start..i].trim()) {
                joined = true;
                continue;
            }
            terms.push(part[start..i].trim());
            (start, joined) = (i + 1, false);
        }
        terms.push(part[start..].trim());
    }
    terms.retain(|t| !t.is_empty());
    terms
}

/// `@STATE` or `@RUN_ID:STATE` (`past` is what follows the `@`): the hosts of
/// the inventory that ended in that state in the run's record.
fn past_matches<'a>(
    inv: &'a Inventory,
    pattern: &str,
    term: &str,
    past: &str,
    runs: Option<&RunsDir>,
) -> Result<BTreeSet<&'a str>, PatternError> {
    let bad = |reason: String| PatternError::BadTerm {
        pattern: pattern.to_string(),
        term: term.to_string(),
        reason,
    };
    let (run, state) = match past.split_once(':') {
        Some((run, state)) => (Some(run), state),
        None => (None, past),
    };
    let state: PastState = state.parse().map_err(bad)?;
    let Some(runs) = runs else {
        return Err(bad(
            "past runs can only be named on the command line (--limit, a command's PATTERN)".into(),
        ));
    };
    let past = runs
        .hosts_ended(run, state)
        .map_err(|source| PatternError::PastRun {
            term: term.to_string(),
            source: Box::new(source),
        })?;
    let out: BTreeSet<&str> = inv
        .hosts
        .keys()
        .filter(|h| past.hosts.contains(h.as_str()))
        .map(String::as_str)
        .collect();
    if past.hosts.is_empty() {
        return Err(PatternError::NoPastHost {
            term: term.to_string(),
            run_id: past.run_id,
        });
    }
    if out.is_empty() {
        return Err(PatternError::PastHostsGone {
            term: term.to_string(),
            run_id: past.run_id,
            hosts: past.hosts.into_iter().collect(),
        });
    }
    Ok(out)
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
