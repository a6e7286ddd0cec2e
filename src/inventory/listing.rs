//! The resolved inventory in the shape `ansible-inventory --list` prints, so
//! the two can be compared (and scripts written for one read the other):
//! every group reachable from `all` with its `hosts` and `children` (empty
//! keys and empty groups left out), and every host's merged variables under
//! `_meta.hostvars`.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::ansible::UNGROUPED;
use super::model::Inventory;

impl Inventory {
    /// `extra`: the command line's `-e`, over every host's own variables, as
    /// `ansible-inventory -e` lists them.
    pub fn ansible_list(&self, extra: &super::Vars) -> Value {
        let mut out = Map::new();
        let mut seen = BTreeSet::new();
        self.list_group("all", &mut out, &mut seen);
        let hostvars: Map<String, Value> = self
            .hosts
            .keys()
            .map(|h| {
                let mut vars = self.vars_for(h);
                vars.extend(extra.clone());
                (h.clone(), vars)
            })
            .filter(|(_, v)| !v.is_empty())
            .map(|(h, v)| (h, Value::Object(v)))
            .collect();
        out.insert(
            "_meta".into(),
            json!({"hostvars": hostvars, "profile": "inventory_legacy"}),
        );
        Value::Object(out)
    }

    /// `all`'s children as Ansible orders them: `ungrouped`, the groups
    /// written under `all`, then every other group nested in none.
    fn top_level(&self) -> Vec<&str> {
        let mut out = vec![UNGROUPED];
        let nested: BTreeSet<&str> = self
            .groups
            .values()
            .flat_map(|g| g.children.iter().map(String::as_str))
            .collect();
        let rootless = self
            .groups
            .keys()
            .map(String::as_str)
            .filter(|g| !nested.contains(g));
        for g in self.top_groups.iter().map(String::as_str).chain(rootless) {
            if !out.contains(&g) {
                out.push(g);
            }
        }
        out
    }

    /// Hosts in no group but `ungrouped` (parc's own layout has no such group).
    fn ungrouped(&self) -> Vec<&str> {
        match self.groups.get(UNGROUPED) {
            Some(g) => g.hosts.iter().map(String::as_str).collect(),
            None => self
                .hosts
                .keys()
                .map(String::as_str)
                .filter(|h| self.groups_of(h).is_empty())
                .collect(),
        }
    }

    fn list_group<'a>(
        &'a self,
        name: &'a str,
        out: &mut Map<String, Value>,
        seen: &mut BTreeSet<&'a str>,
    ) {
        let (hosts, children): (Vec<&str>, Vec<&str>) = match name {
            "all" => (vec![], self.top_level()),
            UNGROUPED => (self.ungrouped(), vec![]),
            _ => match self.groups.get(name) {
                Some(g) => (
                    g.hosts.iter().map(String::as_str).collect(),
                    g.children.iter().map(String::as_str).collect(),
                ),
                None => (vec![], vec![]),
            },
        };
        let mut entry = Map::new();
        if !hosts.is_empty() {
            entry.insert("hosts".into(), json!(hosts));
        }
        if !children.is_empty() {
            entry.insert("children".into(), json!(children));
        }
        for child in &children {
            if seen.insert(child) {
                self.list_group(child, out, seen);
            }
        }
        if !entry.is_empty() {
            out.insert(name.to_string(), Value::Object(entry));
        }
    }
}
