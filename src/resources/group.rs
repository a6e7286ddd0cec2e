//! `group`: a local group with an optional fixed gid.

use serde::{Deserialize, Serialize};

use super::accounts::{Tools, check_id, check_name, group_exists_sh};
use super::attrs::State;
use super::plan::{Change, Plan, PlanContext, Step, Touch};
use super::script::{Record, Script};
use super::{Kind, ResourceError};
use crate::render::Number;
use crate::transport::quote;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub name: String,
    /// A number, or a template that renders to one.
    pub gid: Option<Number>,
    #[serde(default)]
    pub state: State,
    pub when: Option<String>,
    #[serde(default)]
    pub notify: Vec<String>,
    /// `--tags` / `--skip-tags` select resources by these.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A group entry as `getent group` prints it.
struct Entry {
    gid: u32,
    members: Vec<String>,
}

impl Entry {
    fn parse(line: &str) -> Option<Entry> {
        let mut fields = line.split(':');
        let (_, _, gid, members) = (
            fields.next()?,
            fields.next()?,
            fields.next()?,
            fields.next()?,
        );
        Some(Entry {
            gid: crate::numbers::id(gid)?,
            members: members
                .split(',')
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }
}

impl Group {
    fn change(&self, what: String, sh: String, undo: String) -> Plan {
        Plan::Change(Change {
            what: vec![what],
            diff: None,
            step: Step::run(sh),
            touches: vec![Touch::Undo(undo)],
        })
    }

    /// sh recreating the group as it was (members that still exist rejoin it).
    fn recreate(&self, tools: Tools, entry: &Entry) -> String {
        let n = quote(&self.name);
        let mut sh = vec![match tools {
            Tools::Shadow => format!("groupadd -g {} {n}", entry.gid),
            Tools::Busybox => format!("addgroup -g {} {n}", entry.gid),
        }];
        for m in &entry.members {
            let m = quote(m);
            sh.push(match tools {
                Tools::Shadow => format!("usermod -a -G {n} {m} || true"),
                Tools::Busybox => format!("addgroup {m} {n} || true"),
            });
        }
        format!(
            "if ! {}; then\n{}\nfi",
            group_exists_sh(&self.name),
            sh.join("\n")
        )
    }
}

impl Kind for Group {
    fn label(&self) -> String {
        format!("group {}", self.name)
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
        let group = s.getent("group", &self.name);
        s.sh(&format!(
            "parc_rec {id}; parc_account_tools groupadd addgroup\n\
             if {group}; then parc_kv entry \"$_ge\"; fi"
        ));
    }

    fn plan(&self, probed: &Record, _ctx: &PlanContext) -> Result<Plan, ResourceError> {
        let label = self.label();
        check_name(&self.name, &label, "group name")?;
        check_id(self.gid.as_ref(), &label, "gid")?;
        let n = quote(&self.name);
        let entry = match probed.get("entry") {
            None => None,
            Some(line) => Some(Entry::parse(line).ok_or_else(|| ResourceError::Conflict {
                resource: label.clone(),
                reason: format!("the group database returned an unreadable entry `{line}`"),
            })?),
        };
        let delete = |tools| match tools {
            Tools::Shadow => format!("groupdel {n}"),
            Tools::Busybox => format!("delgroup {n}"),
        };
        match (self.state, entry) {
            (State::Absent, None) => Ok(Plan::NoChange),
            (State::Absent, Some(entry)) => {
                let tools = Tools::of(probed, &label, "groupdel")?;
                Ok(self.change("remove".into(), delete(tools), self.recreate(tools, &entry)))
            }
            (State::Present, None) => {
                let tools = Tools::of(probed, &label, "groupadd")?;
                let gid = self
                    .gid
                    .as_ref()
                    .map(|g| format!(" -g {g}"))
                    .unwrap_or_default();
                let create = match tools {
                    Tools::Shadow => format!("groupadd{gid} {n}"),
                    Tools::Busybox => format!("addgroup{gid} {n}"),
                };
                let undo = format!(
                    "if {}; then {}; fi",
                    group_exists_sh(&self.name),
                    delete(tools)
                );
                let what = match &self.gid {
                    Some(g) => format!("create (gid {g})"),
                    None => "create".into(),
                };
                Ok(self.change(what, create, undo))
            }
            (State::Present, Some(entry)) => match self.gid.as_ref().and_then(Number::value) {
                Some(want) if want != u64::from(entry.gid) => {
                    if Tools::of(probed, &label, "groupmod")? == Tools::Busybox {
                        return Err(ResourceError::Unsupported {
                            resource: label,
                            reason: format!(
                                "its gid is {} but {want} is declared, and busybox cannot change a group's gid (install the shadow utilities)",
                                entry.gid
                            ),
                        });
                    }
                    Ok(self.change(
                        format!(
                            "gid {} -> {want} (files keep the old gid: chgrp them if needed)",
                            entry.gid
                        ),
                        format!("groupmod -g {want} {n}"),
                        format!("groupmod -g {} {n}", entry.gid),
                    ))
                }
                _ => Ok(Plan::NoChange),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::{change, record, step_sh};

    fn group(yaml: &str) -> Group {
        crate::location::from_yaml(yaml).unwrap()
    }

    #[test]
    fn creates_with_the_tools_the_host_has() {
        let g = group("{name: printing, gid: 1600}");
        let ctx = PlanContext::default();
        let c = change(g.plan(&record(&[("tools", "shadow")]), &ctx).unwrap());
        assert_eq!(c.what, ["create (gid 1600)"]);
        assert_eq!(step_sh(&c), "groupadd -g 1600 printing");
        assert!(matches!(&c.touches[0], Touch::Undo(u) if u.contains("groupdel printing")));
        let c = change(g.plan(&record(&[("tools", "busybox")]), &ctx).unwrap());
        assert_eq!(step_sh(&c), "addgroup -g 1600 printing");
        let e = g.plan(&record(&[("tools", "none")]), &ctx).unwrap_err();
        assert!(matches!(e, ResourceError::Unsupported { .. }), "{e}");
    }

    #[test]
    fn changes_only_a_different_gid() {
        let ctx = PlanContext::default();
        let same = record(&[("tools", "shadow"), ("entry", "printing:x:1600:bob")]);
        let g = group("{name: printing, gid: 1600}");
        assert!(matches!(g.plan(&same, &ctx).unwrap(), Plan::NoChange));
        let any = group("{name: printing}");
        assert!(matches!(any.plan(&same, &ctx).unwrap(), Plan::NoChange));
        let moved = group("{name: printing, gid: 1700}");
        let c = change(moved.plan(&same, &ctx).unwrap());
        assert!(c.what[0].starts_with("gid 1600 -> 1700"), "{:?}", c.what);
        assert_eq!(step_sh(&c), "groupmod -g 1700 printing");
        assert_eq!(c.touches, [Touch::Undo("groupmod -g 1600 printing".into())]);
        let busybox = record(&[("tools", "busybox"), ("entry", "printing:x:1600:")]);
        let e = moved.plan(&busybox, &ctx).unwrap_err().to_string();
        assert!(e.contains("busybox cannot change"), "{e}");
    }

    #[test]
    fn removes_and_remembers_how_to_recreate() {
        let ctx = PlanContext::default();
        let g = group("{name: printing, state: absent}");
        assert!(matches!(
            g.plan(&record(&[("tools", "shadow")]), &ctx).unwrap(),
            Plan::NoChange
        ));
        let c = change(
            g.plan(
                &record(&[("tools", "shadow"), ("entry", "printing:x:1600:bob,ann")]),
                &ctx,
            )
            .unwrap(),
        );
        assert_eq!(step_sh(&c), "groupdel printing");
        let [Touch::Undo(undo)] = c.touches.as_slice() else {
            panic!("{:?}", c.touches)
        };
        assert!(undo.contains("groupadd -g 1600 printing"), "{undo}");
        assert!(undo.contains("usermod -a -G printing bob"), "{undo}");
        assert!(undo.contains("usermod -a -G printing ann"), "{undo}");
    }

    #[test]
    fn refuses_names_the_tools_would_misread() {
        let e = group("{name: '-f'}")
            .plan(&record(&[("tools", "shadow")]), &PlanContext::default())
            .unwrap_err();
        assert!(matches!(e, ResourceError::Invalid { .. }), "{e}");
    }
}
