//! Helpers for the plan tests of every kind: hand-made probe records and a
//! readable view of the planned step.

use super::plan::{Change, Op, Plan};
use super::script::Record;

pub fn record(fields: &[(&str, &str)]) -> Record {
    let mut r = Record::default();
    for (k, v) in fields {
        r.fields.insert(k.to_string(), v.to_string());
    }
    r
}

pub fn change(plan: Plan) -> Change {
    match plan {
        Plan::Change(c) => c,
        other => panic!("expected a change, got {other:?}"),
    }
}

/// The step as text, `Put` ops shown as `put DEST MODE OWNER`.
pub fn step_sh(c: &Change) -> String {
    c.step
        .0
        .iter()
        .map(|op| match op {
            Op::Sh(s) => s.clone(),
            Op::Put {
                dest, mode, owner, ..
            } => format!(
                "put {dest} {:o} {}",
                mode.unwrap_or(0),
                owner.as_deref().unwrap_or("-")
            ),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The bytes a `Put` op of the step installs at `dest`.
pub fn put_data(c: &Change, dest: &str) -> Option<String> {
    c.step.0.iter().find_map(|op| match op {
        Op::Put { data, dest: d, .. } if d == dest => {
            Some(String::from_utf8_lossy(data).into_owned())
        }
        _ => None,
    })
}
