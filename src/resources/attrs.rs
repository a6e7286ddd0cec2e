//! Attribute types shared by file-like resources.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::path_state::Attrs;
use super::plan::{Batched, Op, UserOp};

/// `present` (default) or `absent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    #[default]
    Present,
    Absent,
}

/// Permission bits. Written as a string `"0644"` (recommended) or, as people do,
/// an unquoted `0644`/`644` which YAML reads as a number: its decimal digits are
/// taken as the octal digits the author meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode(pub u32);

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(u64),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Text(s) => s,
            Raw::Number(n) => n.to_string(),
        };
        match crate::numbers::mode(&text) {
            Some(m) => Ok(Mode(m)),
            None => Err(serde::de::Error::custom(format!(
                "mode `{text}` is not an octal permission such as \"0644\" or \"0755\""
            ))),
        }
    }
}

impl Serialize for Mode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:04o}", self.0))
    }
}

/// Differences between declared and probed mode/owner/group, as human lines,
/// plus the ops that fix them (applied to `path`): batchable, so that the
/// fixes of consecutive resources share their processes.
pub fn attr_changes(
    current: Option<&Attrs>,
    mode: Option<Mode>,
    owner: Option<&str>,
    group: Option<&str>,
    path: &str,
) -> (Vec<String>, Vec<Batched>) {
    let mut what = Vec::new();
    let mut ops = Vec::new();
    let path = path.to_string();
    if let Some(Mode(m)) = mode {
        let now = current.map(|a| a.mode);
        if now != Some(m) {
            what.push(format!(
                "mode {} -> {:04o}",
                now.map_or("?".into(), |c| format!("{c:04o}")),
                m
            ));
            ops.push(Batched::Chmod {
                mode: m,
                path: path.clone(),
            });
        }
    }
    // -h: the link itself, never what it points to. One chown sets both
    // when both change: a process per path, not per attribute.
    let (owner_now, group_now) = (current.map(|a| &*a.owner), current.map(|a| &*a.group));
    let owner = owner.filter(|&want| owner_now != Some(want));
    let group = group.filter(|&want| group_now != Some(want));
    for (key, want, now) in [("owner", owner, owner_now), ("group", group, group_now)] {
        if let Some(want) = want {
            what.push(format!("{key} {} -> {want}", now.unwrap_or("?")));
        }
    }
    match (owner, group) {
        (Some(o), Some(g)) => ops.push(Batched::Chown {
            spec: format!("{o}:{g}"),
            path,
        }),
        (Some(o), None) => ops.push(Batched::Chown {
            spec: o.to_string(),
            path,
        }),
        (None, Some(g)) => ops.push(Batched::Chgrp {
            group: g.to_string(),
            path,
        }),
        (None, None) => {}
    }
    (what, ops)
}

/// The ops applying `fixes` ([`attr_changes`]'s) to a directory in `user`'s
/// own directories: its owner and group first, by root's `chown -h` from the
/// directory above it ([`Op::ChownIn`]: what the user may not do), then its
/// mode as the user, who owns it by then ([`Op::AsUser`]).
pub fn dir_fixes_as(user: &str, fixes: Vec<Batched>) -> Vec<Op> {
    let (modes, owners): (Vec<_>, Vec<_>) = fixes
        .into_iter()
        .partition(|f| matches!(f, Batched::Chmod { .. }));
    owners
        .into_iter()
        .chain(modes)
        .filter_map(|fix| match fix {
            Batched::Chown { spec, path } => Some(Op::ChownIn { spec, path }),
            Batched::Chgrp { group, path } => Some(Op::ChownIn {
                spec: format!(":{group}"),
                path,
            }),
            Batched::Chmod { mode, path } => Some(Op::AsUser {
                user: user.to_string(),
                op: UserOp::Chmod { path, mode },
            }),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_from_strings_and_numbers() {
        let m: Mode = serde_norway::from_str("\"0644\"").unwrap();
        assert_eq!(m, Mode(0o644));
        let m: Mode = serde_norway::from_str("755").unwrap();
        assert_eq!(m, Mode(0o755));
        let m: Mode = serde_norway::from_str("\"1777\"").unwrap();
        assert_eq!(m, Mode(0o1777));
        let e = serde_norway::from_str::<Mode>("\"0689\"").unwrap_err();
        assert!(e.to_string().contains("not an octal permission"), "{e}");
    }
}
