//! The loaded inventory and the queries the rest of parc makes of it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use super::{Group, Host, InventoryError, PatternError, Vars};

#[derive(Debug, Clone)]
pub struct Inventory {
    pub path: PathBuf,
    pub(super) hosts: IndexMap<String, Host>,
    pub(super) groups: IndexMap<String, Group>,
    /// Inventory-wide variables (the implicit group `all`).
    pub(super) vars: Vars,
    /// What `group_vars/` and `host_vars/` beside the file set: a layer of
    /// its own, because Ansible ranks it above every variable the inventory
    /// file sets for groups (see [`Inventory::vars_for`]).
    pub(super) var_files: VarFiles,
    /// Groups written as children of `all`, in the order written (Ansible
    /// lists them first among `all`'s children).
    pub(super) top_groups: Vec<String>,
}

/// Variables from `group_vars/` and `host_vars/` files, by group or host.
#[derive(Debug, Clone, Default)]
pub(super) struct VarFiles {
    pub all: Vars,
    pub groups: IndexMap<String, Vars>,
    pub hosts: IndexMap<String, Vars>,
}

impl Inventory {
    /// Read and parse an inventory file, detecting its layout.
    pub fn load(path: &Path) -> Result<Self, InventoryError> {
        let text = crate::confine::read_regular_to_string(path)
            .map_err(|source| InventoryError::Read { source })?;
        Self::from_str(&text, path)
    }

    /// Parse inventory text; `path` is used for messages and relative paths.
    pub fn from_str(text: &str, path: &Path) -> Result<Self, InventoryError> {
        let inventory = if super::ini::looks_like_ini(text) {
            super::ini::parse(text, path)?
        } else {
            // YAML: its nesting is bounded before a parser sees it.
            crate::location::prescan(path, text)?;
            let root = super::yaml11::from_str(text, path);
            if super::native::is_native(root.as_ref().ok(), text) {
                super::native::parse(text, path)?
            } else {
                super::ansible::parse(root, text, path)?
            }
        };
        inventory.check_one_name_per_machine(text)?;
        Ok(inventory)
    }

    pub fn select(&self, pattern: &str) -> Result<Vec<&Host>, PatternError> {
        super::pattern::select(self, pattern, None)
    }

    /// [`Inventory::select`], with `@failed`-style terms read from `runs`.
    pub fn select_retrying(
        &self,
        pattern: &str,
        runs: &crate::report::RunsDir,
    ) -> Result<Vec<&Host>, PatternError> {
        super::pattern::select(self, pattern, Some(runs))
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.get(name)
    }

    pub fn hosts(&self) -> impl Iterator<Item = &Host> {
        self.hosts.values()
    }

    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    /// Hosts of a group, including those of its nested children.
    pub fn group_hosts(&self, group: &str) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        let mut stack = vec![group];
        let mut seen = BTreeSet::new();
        while let Some(g) = stack.pop() {
            if !seen.insert(g) {
                continue;
            }
            if let Some(group) = self.groups.get(g) {
                out.extend(group.hosts.iter().map(String::as_str));
                stack.extend(group.children.iter().map(String::as_str));
            }
        }
        out
    }

    /// Groups `host` belongs to, directly or through nesting (not `all`), sorted.
    pub fn groups_of(&self, host: &str) -> Vec<&str> {
        self.groups
            .keys()
            .filter(|g| self.group_hosts(g).contains(host))
            .map(String::as_str)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// Group depths: groups nested in no other are at depth 1 (`all` is 0);
    /// a child is one deeper than its deepest parent.
    fn depths(&self) -> BTreeMap<&str, usize> {
        let mut depth: BTreeMap<&str, usize> =
            self.groups.keys().map(|g| (g.as_str(), 1)).collect();
        // Cycles are rejected at load time, so this settles within |groups| rounds.
        for _ in 0..self.groups.len() {
            let mut changed = false;
            for g in self.groups.values() {
                let d = depth[g.name.as_str()];
                for c in &g.children {
                    if let Some(cd) = depth.get_mut(c.as_str())
                        && *cd < d + 1
                    {
                        *cd = d + 1;
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        depth
    }

    /// The host's variables merged by precedence (see the module doc), as
    /// Ansible's default `VARIABLE_PRECEDENCE` orders them.
    pub fn vars_for(&self, host: &str) -> Vars {
        let depths = self.depths();
        let mut groups: Vec<&str> = self.groups_of(host);
        groups.sort_by_key(|g| (depths.get(g).copied().unwrap_or(1), *g));
        let files = &self.var_files;
        let mut vars = self.vars.clone();
        for g in &groups {
            if let Some(group) = self.groups.get(*g) {
                vars.extend(group.vars.clone());
            }
        }
        vars.extend(files.all.clone());
        for g in &groups {
            if let Some(v) = files.groups.get(*g) {
                vars.extend(v.clone());
            }
        }
        if let Some(h) = self.hosts.get(host) {
            vars.extend(h.vars.clone());
        }
        if let Some(v) = files.hosts.get(host) {
            vars.extend(v.clone());
        }
        vars
    }

    /// Reject two names for one machine: two SSH hosts with the same address,
    /// port and jump host. Worked on at once, each would take the other's
    /// lock and journal for its own. Names without an address are compared
    /// as the name itself, as OpenSSH would resolve them; a `~/.ssh/config`
    /// alias pointing at another host's address is not seen here.
    fn check_one_name_per_machine(&self, text: &str) -> Result<(), InventoryError> {
        let mut seen: BTreeMap<(String, u16, Option<&str>), &str> = BTreeMap::new();
        for h in self.hosts.values() {
            let c = &h.connection;
            if c.kind != super::ConnectionKind::Ssh {
                continue;
            }
            let address = c.address.as_deref().unwrap_or(&h.name);
            let key = (
                address.to_ascii_lowercase(),
                c.port.unwrap_or(22),
                c.jump.as_deref(),
            );
            if let Some(first) = seen.insert(key, &h.name) {
                let positions = crate::location::PositionMap::build(&self.path, text);
                return Err(InventoryError::Invalid {
                    location: positions.locate(&format!("hosts.{}", h.name)),
                    message: format!(
                        "hosts `{first}` and `{}` both reach {address} port {}{}: one machine must have one name, or runs would work on it twice at once and mix up its journals",
                        h.name,
                        c.port.unwrap_or(22),
                        c.jump
                            .as_deref()
                            .map(|j| format!(" through {j}"))
                            .unwrap_or_default()
                    ),
                });
            }
        }
        Ok(())
    }

    /// Reject groups whose children lead back to themselves.
    pub(super) fn check_cycles(&self) -> Result<(), InventoryError> {
        self.find_cycle()
            .map_err(|chain| InventoryError::InvalidNoLocation {
                path: self.path.clone(),
                message: format!("groups nest in a cycle: {chain}"),
            })
    }

    fn find_cycle(&self) -> Result<(), String> {
        fn visit<'a>(
            inv: &'a Inventory,
            g: &'a str,
            path: &mut Vec<&'a str>,
        ) -> Result<(), String> {
            if path.contains(&g) {
                path.push(g);
                return Err(path.join(" -> "));
            }
            path.push(g);
            if let Some(group) = inv.groups.get(g) {
                for c in &group.children {
                    visit(inv, c, path)?;
                }
            }
            path.pop();
            Ok(())
        }
        for g in self.groups.keys() {
            visit(self, g, &mut Vec::new())?;
        }
        Ok(())
    }
}
