//! Ansible's YAML inventory layout, read unchanged:
//! `all: {hosts: {name: {vars...}}, children: {group: {...}}, vars: {...}}`,
//! with host ranges (`ws-[001:050]`, [`ranges`]) and the `group_vars/` and
//! `host_vars/` directories beside the file ([`var_dirs`]), typed as YAML 1.1
//! as Ansible types them ([`super::yaml11`]).
//!
//! Connection settings come from Ansible's own variables (`ansible_host`,
//! `ansible_port`, `ansible_user`, `ansible_ssh_private_key_file`,
//! `ansible_connection`, `ansible_become`, `ansible_become_user`, and the `-F`
//! and `-o` options inside `ansible_ssh_common_args` / `ansible_ssh_extra_args`,
//! which go to `ssh -G` as they would go to ssh), with the usual variable
//! precedence.

use std::path::Path;

use indexmap::IndexMap;
use serde_json::Value;

use super::model::{Inventory, VarFiles};
use super::{
    Become, ConnectionKind, ConnectionParams, Group, Host, InventoryError, Vars, paths, ranges,
    var_dirs,
};
use crate::location::PositionMap;
use crate::transport::ssh_config::SshArgs;

/// `root`: `text` as [`super::yaml11`] read it (once, also to tell the layout).
pub fn parse(
    root: Result<Value, InventoryError>,
    text: &str,
    path: &Path,
) -> Result<Inventory, InventoryError> {
    let root = root?;
    let mut b = Builder {
        positions: PositionMap::build(path, text),
        data: Data::new(path),
    };
    match root {
        Value::Null => {}
        Value::Object(top) => {
            for (name, def) in top {
                let ypath = name.clone();
                b.group(&name, &def, &ypath)?;
            }
        }
        _ => {
            return Err(b.invalid("", "an inventory is a mapping of groups (`all:` with `hosts`, `children`, `vars`), or parc's layout (`hosts:`, `groups:`)".into()));
        }
    }
    b.data.finish()
}

/// Ansible's inventory data as its parsers build it (`InventoryData`):
/// groups and hosts in the order first seen, each variable set replacing its
/// key. Shared by the YAML and INI readers so both resolve the same way.
pub(super) struct Data<'a> {
    path: &'a Path,
    hosts: IndexMap<String, Vars>,
    groups: IndexMap<String, Group>,
    all_vars: Vars,
    top_groups: Vec<String>,
}

/// The group of hosts in no other group. Ansible makes it right after `all`,
/// so it comes first among `all`'s children.
pub(super) const UNGROUPED: &str = "ungrouped";

impl<'a> Data<'a> {
    pub(super) fn new(path: &'a Path) -> Self {
        let mut d = Data {
            path,
            hosts: IndexMap::new(),
            groups: IndexMap::new(),
            all_vars: Vars::new(),
            top_groups: Vec::new(),
        };
        d.add_group(UNGROUPED);
        d
    }

    pub(super) fn has_group(&self, name: &str) -> bool {
        name == "all" || self.groups.contains_key(name)
    }

    pub(super) fn add_group(&mut self, name: &str) {
        if !self.has_group(name) {
            self.groups.insert(
                name.to_string(),
                Group {
                    name: name.to_string(),
                    hosts: vec![],
                    children: vec![],
                    vars: Vars::new(),
                },
            );
        }
    }

    /// Add `host` to `group` (`all` adds it to no group). A port written with
    /// the host (`ws-1:2222`) becomes `ansible_port` when the host is new, as
    /// in Ansible.
    pub(super) fn add_host(&mut self, host: &str, group: &str, port: Option<u16>) {
        if !self.hosts.contains_key(host) {
            let mut vars = Vars::new();
            if let Some(p) = port {
                vars.insert("ansible_port".into(), p.into());
            }
            self.hosts.insert(host.to_string(), vars);
        }
        if let Some(g) = self.groups.get_mut(group)
            && !g.hosts.iter().any(|h| h == host)
        {
            g.hosts.push(host.to_string());
        }
    }

    /// Nest `child` (an existing group) in `parent`.
    pub(super) fn add_child(&mut self, parent: &str, child: &str) {
        let list = if parent == "all" {
            &mut self.top_groups
        } else {
            match self.groups.get_mut(parent) {
                Some(g) => &mut g.children,
                None => return,
            }
        };
        if !list.iter().any(|c| c == child) {
            list.push(child.to_string());
        }
    }

    pub(super) fn set_group_var(&mut self, group: &str, key: String, value: Value) {
        if group == "all" {
            self.all_vars.insert(key, value);
        } else if let Some(g) = self.groups.get_mut(group) {
            g.vars.insert(key, value);
        }
    }

    pub(super) fn set_host_var(&mut self, host: &str, key: String, value: Value) {
        if let Some(h) = self.hosts.get_mut(host) {
            h.insert(key, value);
        }
    }

    /// Ansible's `reconcile_inventory` (a host is in `ungrouped` when, and
    /// only when, it is in no other group), then the var directories and each
    /// host's connection settings.
    pub(super) fn finish(self) -> Result<Inventory, InventoryError> {
        let path = self.path;
        let mut inventory = Inventory {
            path: path.to_path_buf(),
            hosts: self
                .hosts
                .into_iter()
                .map(|(name, vars)| {
                    let host = Host {
                        name: name.clone(),
                        connection: ConnectionParams::default(),
                        vars,
                    };
                    (name, host)
                })
                .collect(),
            groups: self.groups,
            vars: self.all_vars,
            var_files: VarFiles::default(),
            top_groups: self.top_groups,
        };
        inventory.check_cycles()?;
        let names: Vec<String> = inventory.hosts.keys().cloned().collect();
        let grouped: Vec<bool> = names
            .iter()
            .map(|h| inventory.groups_of(h).iter().any(|g| *g != UNGROUPED))
            .collect();
        if let Some(ungrouped) = inventory.groups.get_mut(UNGROUPED) {
            for (name, grouped) in names.iter().zip(grouped) {
                if grouped {
                    ungrouped.hosts.retain(|h| h != name);
                } else if !ungrouped.hosts.contains(name) {
                    ungrouped.hosts.push(name.clone());
                }
            }
        }
        inventory.var_files = read_var_dirs(&inventory)?;
        for name in names {
            let vars = inventory.vars_for(&name);
            let connection = connection_from_vars(&vars, path);
            if let Some(h) = inventory.hosts.get_mut(&name) {
                h.connection = connection;
            }
        }
        Ok(inventory)
    }
}

/// `group_vars/` and `host_vars/` beside the inventory file.
fn read_var_dirs(inventory: &Inventory) -> Result<VarFiles, InventoryError> {
    let base = inventory.path.parent().unwrap_or(Path::new("."));
    let (groups, hosts) = (base.join("group_vars"), base.join("host_vars"));
    let mut files = VarFiles::default();
    if groups.is_dir() {
        files.all = var_dirs::load(&groups, "all")?;
        for name in inventory.groups.keys() {
            let vars = var_dirs::load(&groups, name)?;
            files.groups.insert(name.clone(), vars);
        }
    }
    if hosts.is_dir() {
        for name in inventory.hosts.keys() {
            let vars = var_dirs::load(&hosts, name)?;
            files.hosts.insert(name.clone(), vars);
        }
    }
    Ok(files)
}

/// The YAML reader: walks the document and fills [`Data`].
struct Builder<'a> {
    positions: PositionMap,
    data: Data<'a>,
}

impl Builder<'_> {
    fn invalid(&self, yaml_path: &str, message: String) -> InventoryError {
        InventoryError::Invalid {
            location: self.positions.locate(yaml_path),
            message,
        }
    }

    /// A group's mapping, as Ansible's YAML plugin walks it.
    fn group(&mut self, name: &str, def: &Value, ypath: &str) -> Result<(), InventoryError> {
        self.data.add_group(name);
        let map = match def {
            Value::Null => return Ok(()),
            Value::Object(m) => m,
            _ => {
                return Err(self.invalid(
                    ypath,
                    format!("group `{name}` must be a mapping with `hosts`, `children` or `vars`"),
                ));
            }
        };
        for (key, value) in map {
            let kpath = format!("{ypath}.{key}");
            let entries = match value {
                Value::Null => continue,
                Value::Object(m) => m,
                _ if !matches!(key.as_str(), "vars" | "hosts" | "children") => &Vars::new(),
                _ => {
                    return Err(self.invalid(
                        &kpath,
                        format!("`{key}` of group `{name}` must be a mapping"),
                    ));
                }
            };
            match key.as_str() {
                "vars" => {
                    for (k, v) in entries {
                        self.data.set_group_var(name, k.clone(), v.clone());
                    }
                }
                "hosts" => {
                    for (entry, hvars) in entries {
                        let hpath = format!("{kpath}.{entry}");
                        let hvars = match hvars {
                            Value::Null => None,
                            Value::Object(v) => Some(v),
                            _ => {
                                return Err(self.invalid(
                                    &hpath,
                                    format!(
                                        "host `{entry}` must map to its variables (or nothing)"
                                    ),
                                ));
                            }
                        };
                        let (names, port) =
                            ranges::host_pattern(entry).map_err(|m| self.invalid(&hpath, m))?;
                        for host in names {
                            self.data.add_host(&host, name, port);
                            for (k, v) in hvars.into_iter().flatten() {
                                self.data.set_host_var(&host, k.clone(), v.clone());
                            }
                        }
                    }
                }
                "children" => {
                    for (child, cdef) in entries {
                        self.group(child, cdef, &format!("{kpath}.{child}"))?;
                        self.data.add_child(name, child);
                    }
                }
                other => {
                    return Err(self.invalid(&kpath, format!(
                        "unknown key `{other}` in group `{name}`: a group has only `hosts`, `children` and `vars`"
                    )));
                }
            }
        }
        Ok(())
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => matches!(s.to_lowercase().as_str(), "yes" | "true" | "on" | "1"),
        Value::Number(n) => n.as_i64() == Some(1),
        _ => false,
    }
}

/// The `-F FILE` and `-o OPTION` arguments Ansible gives ssh, in the order ssh
/// sees them (common, then extra: the first value of an option wins). Other
/// arguments are not about how a host is reached and verified.
fn ssh_args(args: impl Iterator<Item = String>) -> SshArgs {
    let mut out = SshArgs::default();
    for line in args {
        let words = shlex::split(&line).unwrap_or_default();
        let mut words = words.into_iter();
        while let Some(w) = words.next() {
            let (flag, attached) = match w.strip_prefix("-o").or_else(|| w.strip_prefix("-F")) {
                Some(rest) => (&w[..2], rest.to_string()),
                None => continue,
            };
            let Some(value) = Some(attached)
                .filter(|a| !a.is_empty())
                .or_else(|| words.next())
            else {
                continue;
            };
            if flag == "-o" {
                out.options.push(value);
            } else if out.config_file.is_none() {
                out.config_file = Some(value.into());
            }
        }
    }
    out
}

fn connection_from_vars(vars: &Vars, inventory: &Path) -> ConnectionParams {
    let get = |k: &str| vars.get(k).and_then(text);
    let ssh_args = ssh_args(
        ["ansible_ssh_common_args", "ansible_ssh_extra_args"]
            .iter()
            .filter_map(|k| get(k)),
    );
    ConnectionParams {
        kind: match get("ansible_connection").as_deref() {
            Some("local") => ConnectionKind::Local,
            _ => ConnectionKind::Ssh,
        },
        address: get("ansible_host"),
        port: get("ansible_port").and_then(|p| p.parse().ok()),
        user: get("ansible_user"),
        identity_file: get("ansible_ssh_private_key_file").map(|p| paths::resolve(inventory, &p)),
        jump: None,
        known_hosts: None,
        host_key_policy: None,
        ssh_args,
        become_: vars
            .get("ansible_become")
            .filter(|v| truthy(v))
            .map(|_| Become {
                user: get("ansible_become_user").unwrap_or_else(|| "root".into()),
                password_env: None,
            }),
    }
}
