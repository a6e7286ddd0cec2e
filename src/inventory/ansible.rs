//! Ansible's YAML inventory layout, read unchanged:
//! `all: {hosts: {name: {vars...}}, children: {group: {...}}, vars: {...}}`,
//! with host ranges (`ws-[001:050]`, [`ranges`]) and the `group_vars/` and
//! `host_vars/` directories beside the file ([`var_dirs`]).
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

use super::model::Inventory;
use super::native::yaml_error;
use super::{
    Become, ConnectionKind, ConnectionParams, Group, Host, InventoryError, Vars, paths, ranges,
    var_dirs,
};
use crate::location::PositionMap;
use crate::transport::ssh_config::SshArgs;

struct Builder<'a> {
    path: &'a Path,
    positions: PositionMap,
    hosts: IndexMap<String, Vars>,
    groups: IndexMap<String, Group>,
    all_vars: Vars,
}

pub fn parse(text: &str, path: &Path) -> Result<Inventory, InventoryError> {
    let root: Value = serde_norway::from_str(text).map_err(|e| yaml_error(path, text, e))?;
    let mut b = Builder {
        path,
        positions: PositionMap::build(path, text),
        hosts: IndexMap::new(),
        groups: IndexMap::new(),
        all_vars: Vars::new(),
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
    b.read_var_dirs()?;
    let mut inventory = Inventory {
        path: path.to_path_buf(),
        hosts: b
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
        groups: b.groups,
        vars: b.all_vars,
    };
    inventory
        .check_cycles()
        .map_err(|chain| InventoryError::InvalidNoLocation {
            path: path.to_path_buf(),
            message: format!("groups nest in a cycle: {chain}"),
        })?;
    let names: Vec<String> = inventory.hosts.keys().cloned().collect();
    for name in names {
        let vars = inventory.vars_for(&name);
        let connection = connection_from_vars(&vars, path);
        if let Some(h) = inventory.hosts.get_mut(&name) {
            h.connection = connection;
        }
    }
    Ok(inventory)
}

impl Builder<'_> {
    /// `group_vars/` and `host_vars/` beside the inventory file, over what the
    /// file itself sets.
    fn read_var_dirs(&mut self) -> Result<(), InventoryError> {
        let base = self.path.parent().unwrap_or(Path::new("."));
        let (groups, hosts) = (base.join("group_vars"), base.join("host_vars"));
        if groups.is_dir() {
            self.all_vars.extend(var_dirs::load(&groups, "all")?);
            for (name, group) in &mut self.groups {
                group.vars.extend(var_dirs::load(&groups, name)?);
            }
        }
        if hosts.is_dir() {
            for (name, vars) in &mut self.hosts {
                vars.extend(var_dirs::load(&hosts, name)?);
            }
        }
        Ok(())
    }

    fn invalid(&self, yaml_path: &str, message: String) -> InventoryError {
        InventoryError::Invalid {
            location: self.positions.locate(yaml_path),
            message,
        }
    }

    fn group(&mut self, name: &str, def: &Value, ypath: &str) -> Result<(), InventoryError> {
        let is_all = name == "all";
        if !is_all && !self.groups.contains_key(name) {
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
            match key.as_str() {
                "vars" => {
                    let Value::Object(vars) = value else {
                        return Err(self.invalid(
                            &kpath,
                            format!("`vars` of group `{name}` must be a mapping"),
                        ));
                    };
                    let target = if is_all {
                        &mut self.all_vars
                    } else {
                        &mut self.groups[name].vars
                    };
                    target.extend(vars.clone());
                }
                "hosts" => {
                    let hosts = match value {
                        Value::Null => continue,
                        Value::Object(h) => h,
                        _ => {
                            return Err(self.invalid(
                                &kpath,
                                format!(
                                    "`hosts` of group `{name}` must be a mapping of host names"
                                ),
                            ));
                        }
                    };
                    for (entry_name, hvars) in hosts {
                        let hpath = format!("{kpath}.{entry_name}");
                        let hvars = match hvars {
                            Value::Null => None,
                            Value::Object(v) => Some(v),
                            _ => {
                                return Err(self.invalid(
                                    &hpath,
                                    format!(
                                        "host `{entry_name}` must map to its variables (or nothing)"
                                    ),
                                ));
                            }
                        };
                        let names =
                            ranges::expand(entry_name).map_err(|m| self.invalid(&hpath, m))?;
                        for host in names {
                            let entry = self.hosts.entry(host.clone()).or_default();
                            if let Some(v) = hvars {
                                entry.extend(v.clone());
                            }
                            if !is_all {
                                let g = &mut self.groups[name];
                                if !g.hosts.contains(&host) {
                                    g.hosts.push(host);
                                }
                            }
                        }
                    }
                }
                "children" => {
                    let children = match value {
                        Value::Null => continue,
                        Value::Object(c) => c,
                        _ => {
                            return Err(self.invalid(
                                &kpath,
                                format!("`children` of group `{name}` must be a mapping of groups"),
                            ));
                        }
                    };
                    for (child, cdef) in children {
                        self.group(child, cdef, &format!("{kpath}.{child}"))?;
                        if !is_all {
                            let g = &mut self.groups[name];
                            if !g.children.contains(child) {
                                g.children.push(child.clone());
                            }
                        }
                    }
                }
                other => {
                    return Err(self.invalid(&kpath, format!(
                        "unknown key `{other}` in group `{name}`: a group has only `hosts`, `children` and `vars` (in {})",
                        self.path.display()
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
