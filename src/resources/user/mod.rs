//! `user`: a local account, its groups, password hash and SSH keys.
//!
//! One step does everything in order (create or modify the account, then its
//! `~/.ssh/authorized_keys`), so a user and its keys land in the same apply. The
//! password is only ever a crypt(3) hash, compared with the one in
//! /etc/shadow; it is a secret, so no change line, error or debug output shows
//! it.

mod account;
mod keys;

use serde::{Deserialize, Serialize};

use super::accounts::{Tools, check_id, check_name};
use super::attrs::State;
use super::plan::{Change, Op, Plan, PlanContext, Step};
use super::script::{Record, Script};
use super::{Kind, ResourceError};
use crate::render::Number;
use crate::transport::quote;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    #[serde(default)]
    pub state: State,
    /// A number, or a template that renders to one.
    pub uid: Option<Number>,
    /// Primary group, by name or gid.
    pub group: Option<String>,
    /// Supplementary groups: ensured (added to) unless `groups_exclusive`.
    pub groups: Option<Vec<String>>,
    /// `groups` is the complete list: the user leaves any other group.
    #[serde(default)]
    pub groups_exclusive: bool,
    pub shell: Option<String>,
    /// Changing it on an existing user does not move the old home's contents.
    pub home: Option<String>,
    pub comment: Option<String>,
    pub password: Option<PasswordHash>,
    pub authorized_keys: Option<Vec<String>>,
    /// `authorized_keys` is the whole file; otherwise each key is ensured present.
    #[serde(default)]
    pub exclusive_keys: bool,
    /// With `state: absent`, also delete the home directory (kept by default).
    #[serde(default)]
    pub remove_home: bool,
    pub when: Option<String>,
    #[serde(default)]
    pub notify: Vec<String>,
    /// `--tags` / `--skip-tags` select resources by these.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A crypt(3) password hash such as `mkpasswd -m sha-512` prints.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PasswordHash(pub String);

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(<hidden>)")
    }
}

impl PasswordHash {
    /// Whether this looks like a hash rather than a clear-text password: a
    /// modular `$id$...` hash, a 13-character DES hash, or a locked (`!`, `*`)
    /// one. The value itself never appears in the error.
    fn check(&self, resource: &str) -> Result<(), ResourceError> {
        let h = self.0.trim_start_matches('!');
        let crypt_chars = |s: &str| {
            s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '/'))
        };
        let valid = (h.starts_with('$') && !h.contains([':', '\n', ' ']))
            || (h.len() == 13 && crypt_chars(h))
            || (h.is_empty() && !self.0.is_empty())
            || h == "*";
        let reason = if self.0.is_empty() {
            "an empty `password` hash would let anyone log in without a password; use \"!\" to lock the password instead"
        } else {
            "`password` must be a crypt hash (e.g. from `mkpasswd -m sha-512` or `openssl passwd -6`), not the password itself"
        };
        if valid {
            Ok(())
        } else {
            Err(ResourceError::Invalid {
                resource: resource.to_string(),
                reason: format!("{reason}; the account is left unchanged"),
            })
        }
    }
}

/// The account as the probe found it.
struct Current {
    uid: u32,
    gid: u32,
    comment: String,
    home: String,
    shell: String,
    /// Primary group name.
    group: String,
    /// Supplementary group names.
    groups: Vec<String>,
    /// From /etc/shadow; `None` when the probe could not read it (not root).
    hash: Option<String>,
}

impl Current {
    fn parse(probed: &Record) -> Option<Current> {
        let line = probed.get("passwd")?;
        let f: Vec<&str> = line.split(':').collect();
        let [_, _, uid, gid, comment, home, shell] = f.as_slice() else {
            return None;
        };
        let group = probed.get("group").unwrap_or_default().to_string();
        Some(Current {
            uid: crate::numbers::id(uid)?,
            gid: crate::numbers::id(gid)?,
            comment: comment.to_string(),
            home: home.to_string(),
            shell: shell.to_string(),
            groups: probed
                .get("groups")
                .unwrap_or_default()
                .split_whitespace()
                .filter(|g| *g != group)
                .map(str::to_string)
                .collect(),
            group,
            hash: probed.get("shadow").map(str::to_string),
        })
    }
}

/// What one part of the plan (account, keys) contributes to the change.
#[derive(Default)]
struct Part {
    what: Vec<String>,
    ops: Vec<Op>,
    touches: Vec<super::plan::Touch>,
}

impl User {
    fn current(&self, probed: &Record) -> Result<Option<Current>, ResourceError> {
        if probed.get("present") != Some("yes") {
            return Ok(None);
        }
        Current::parse(probed)
            .map(Some)
            .ok_or_else(|| ResourceError::Conflict {
                resource: self.label(),
                reason: "the account database returned an unreadable passwd entry".into(),
            })
    }
}

impl Kind for User {
    fn label(&self) -> String {
        format!("user {}", self.name)
    }
    fn when(&self) -> Option<&str> {
        self.when.as_deref()
    }
    fn notify(&self) -> &[String] {
        &self.notify
    }
    fn tags(&self) -> &[String] {
        &self.tags
    }

    fn probe(&self, id: &str, s: &mut Script, _ctx: &PlanContext) {
        let n = quote(&self.name);
        let (passwd, shadow) = (
            s.getent("passwd", &self.name),
            s.getent("shadow", &self.name),
        );
        let named: Vec<String> = (self.group.iter())
            .filter(|g| g.parse::<u32>().is_err())
            .chain(self.groups.iter().flatten())
            .cloned()
            .collect();
        let groups = s.user_groups(&self.name, "\"$parc_g\"", &named);
        s.sh(&format!(
            "parc_rec {id}; parc_account_tools useradd adduser\n\
             if {passwd}; then parc_u=$_ge\n\
             parc_kv present yes; parc_kv passwd \"$parc_u\"\n\
             parc_g=${{parc_u#*:*:*:}}; parc_g=${{parc_g%%:*}}; {groups}\n\
             parc_kv group \"$_gp\"; parc_kv groups \"$_gp$_gs\"\n\
             if {shadow}; then parc_s=${{_ge#*:}}; parc_kv shadow \"${{parc_s%%:*}}\"; fi\n\
             parc_h=$parc_u; for _i in 1 2 3 4 5; do parc_h=${{parc_h#*:}}; done; parc_h=${{parc_h%%:*}}\n\
             else\n\
             parc_kv present no\n\
             parc_home_base; parc_h=\"$_hb/\"{n}\n\
             fi"
        ));
        if let Some(home) = &self.home {
            s.sh(&format!("parc_h={}", quote(home)));
        }
        s.sh("parc_kv home \"$parc_h\"; if [ -d \"$parc_h\" ]; then parc_kv home_exists yes; fi");
        if self.authorized_keys.is_some() {
            // Read as root from a directory the user owns: never through a
            // link a user could have made (~/.ssh entered by `parc_walk`,
            // `parc_copy_walked`, the file opened without following one),
            // not when the stat found it
            // larger than EDIT_LIMIT (the
            // plan refuses it), else at most EDIT_LIMIT bytes and one more,
            // which tells it grew, into a capture that the probe's closing
            // tar brings back. The paths come from passwd as the probe runs,
            // so they are not in its batched stat: one stat of their own, and
            // no hash (the keys are read whole).
            let limit = super::EDIT_LIMIT;
            let keys = s.capture(id, "keys", limit);
            s.sh(&format!(
                "parc_k=\"$parc_h/.ssh/authorized_keys\"\n\
                 parc_stat_now \"$parc_h\" home_ \"$parc_h/.ssh\" ssh_ \"$parc_k\" keys_\n\
                 if [ \"$_sp\" = \"$parc_k\" ] && [ \"$_s\" -le {limit} ]; then\n\
                 parc_copy_walked \"$parc_k\" {keys} {} || rm -f {keys}\n\
                 fi",
                limit + 1
            ));
        }
    }

    fn plan(&self, probed: &Record, _ctx: &PlanContext) -> Result<Plan, ResourceError> {
        let label = self.label();
        check_name(&self.name, &label, "user name")?;
        check_id(self.uid.as_ref(), &label, "uid")?;
        // The primary group may be given by gid; supplementary ones by name only.
        if let Some(g) = &self.group
            && crate::numbers::id(g).is_none()
        {
            check_name(g, &label, "group name")?;
        }
        for g in self.groups.iter().flatten() {
            check_name(g, &label, "group name")?;
        }
        if let Some(p) = &self.password {
            p.check(&label)?;
        }
        let current = self.current(probed)?;
        let tools = || Tools::of(probed, &label, "useradd");
        let mut parts = match (self.state, &current) {
            (State::Absent, None) => return Ok(Plan::NoChange),
            (State::Absent, Some(cur)) => vec![account::delete(self, tools()?, cur)],
            (State::Present, None) => vec![account::create(self, tools()?, probed)],
            (State::Present, Some(cur)) => vec![account::modify(self, tools, cur)?],
        };
        if self.state == State::Present {
            parts.push(keys::plan(self, probed, current.as_ref())?);
        }
        let mut change = Change {
            what: vec![],
            diff: None,
            step: Step(vec![]),
            touches: vec![],
        };
        for part in parts {
            change.what.extend(part.what);
            change.step.0.extend(part.ops);
            change.touches.extend(part.touches);
        }
        Ok(if change.what.is_empty() {
            Plan::NoChange
        } else {
            Plan::Change(change)
        })
    }
}

#[cfg(test)]
mod tests;
