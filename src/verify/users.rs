//! `user` and `group`: accounts exist (or not), with their ids and memberships.
//!
//! Read through `getent` (so LDAP/SSSD accounts count), else straight from
//! /etc/passwd and /etc/group on hosts without it (busybox).

use serde::{Deserialize, Serialize};

use super::probe::{Check, Probe, Probed, presence};
use crate::render::Number;
use crate::resources::script::Script;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserTest {
    pub name: String,
    #[serde(default = "yes")]
    pub exists: bool,
    pub uid: Option<Number>,
    /// Groups the user must be in (primary or supplementary); others may exist.
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupTest {
    pub name: String,
    #[serde(default = "yes")]
    pub exists: bool,
    /// Users that must be listed as members; others may be.
    #[serde(default)]
    pub members: Vec<String>,
}

fn yes() -> bool {
    true
}

/// sh printing `found=yes` and `f3=`, `f4=`, ... (the colon-separated fields
/// from the third) of the `db` entry (passwd or group) named `name`.
fn entry(s: &mut Script, db: &str, name: &str) -> String {
    format!("{} && pv_entry \"$_ge\"", s.getent(db, name))
}

/// Every name in `want` is in `have`.
fn includes(what: &str, want: &[String], have: &[&str]) -> Check {
    let missing: Vec<&str> = want
        .iter()
        .map(String::as_str)
        .filter(|w| !have.contains(w))
        .collect();
    let actual = if have.is_empty() {
        "none".to_string()
    } else {
        have.join(", ")
    };
    let actual = if missing.is_empty() {
        actual
    } else {
        format!("{actual} (missing: {})", missing.join(", "))
    };
    Check::new(
        what,
        format!("includes {}", want.join(", ")),
        actual,
        missing.is_empty(),
    )
}

impl Probe for UserTest {
    fn label(&self) -> String {
        format!("user {}", self.name)
    }

    fn probe(&self, id: &str, s: &mut Script) {
        s.sh(&format!("pv_start {id}"));
        let entry = entry(s, "passwd", &self.name);
        s.sh(&entry);
        if !self.groups.is_empty() {
            let passwd = s.getent("passwd", &self.name);
            let groups = s.user_groups(&self.name, "\"$pv_g\"", &self.groups);
            s.sh(&format!(
                "if {passwd}; then pv_g=${{_ge#*:*:*:}}; pv_g=${{pv_g%%:*}}; {groups}; \
                 pv_kv_line groups \"$_gp$_gs\"; fi"
            ));
        }
        s.sh("pv_end");
    }

    fn evaluate(&self, probed: &Probed) -> Vec<Check> {
        let found = probed.yes("found");
        let mut checks = vec![Check::equal(
            "exists",
            presence(self.exists),
            presence(found),
        )];
        if !found || !self.exists {
            return checks;
        }
        if let Some(uid) = &self.uid {
            checks.push(Check::equal(
                "uid",
                uid.to_string(),
                probed.get("f3").unwrap_or("unknown"),
            ));
        }
        if !self.groups.is_empty() {
            let have: Vec<&str> = probed
                .get("groups")
                .unwrap_or("")
                .split_whitespace()
                .collect();
            checks.push(includes("groups", &self.groups, &have));
        }
        checks
    }
}

impl Probe for GroupTest {
    fn label(&self) -> String {
        format!("group {}", self.name)
    }

    fn probe(&self, id: &str, s: &mut Script) {
        s.sh(&format!("pv_start {id}"));
        let entry = entry(s, "group", &self.name);
        s.sh(&entry);
        s.sh("pv_end");
    }

    fn evaluate(&self, probed: &Probed) -> Vec<Check> {
        let found = probed.yes("found");
        let mut checks = vec![Check::equal(
            "exists",
            presence(self.exists),
            presence(found),
        )];
        if found && self.exists && !self.members.is_empty() {
            let have: Vec<&str> = probed
                .get("f4")
                .unwrap_or("")
                .split(',')
                .filter(|m| !m.is_empty())
                .collect();
            checks.push(includes("members", &self.members, &have));
        }
        checks
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{passed, record};
    use super::*;

    #[test]
    fn user_uid_and_groups() {
        let t: UserTest =
            serde_norway::from_str("{name: localadmin, uid: 1500, groups: [sudo, users]}").unwrap();
        let r = record(
            &[
                ("found", "yes"),
                ("f3", "1500"),
                ("groups", "localadmin sudo users"),
            ],
            &[],
        );
        assert!(passed(&t.evaluate(&Probed(&r))));
        let r = record(
            &[
                ("found", "yes"),
                ("f3", "1001"),
                ("groups", "localadmin users"),
            ],
            &[],
        );
        let checks = t.evaluate(&Probed(&r));
        assert_eq!(
            (checks[1].expected.as_str(), checks[1].actual.as_str()),
            ("1500", "1001")
        );
        assert_eq!(checks[2].actual, "localadmin, users (missing: sudo)");
        let missing = t.evaluate(&Probed(&record(&[], &[])));
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].actual, "absent");
        let gone: UserTest = serde_norway::from_str("{name: olduser, exists: false}").unwrap();
        assert!(passed(&gone.evaluate(&Probed(&record(&[], &[])))));
    }

    #[test]
    fn group_members() {
        let t: GroupTest = serde_norway::from_str("{name: developers, members: [alice]}").unwrap();
        let r = record(
            &[("found", "yes"), ("f3", "1001"), ("f4", "alice,bob")],
            &[],
        );
        assert!(passed(&t.evaluate(&Probed(&r))));
        let r = record(&[("found", "yes"), ("f3", "1001")], &[]);
        let checks = t.evaluate(&Probed(&r));
        assert_eq!(checks[1].actual, "none (missing: alice)");
    }
}
