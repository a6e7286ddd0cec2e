//! parc's own inventory layout: strict, every unknown key is an error.

use std::path::Path;

use indexmap::IndexMap;
use serde::Deserialize;

use super::model::Inventory;
use super::{Become, ConnectionKind, ConnectionParams, Group, Host, InventoryError, Vars, paths};
use crate::location::{PositionMap, YamlRefusal, yaml_refusal};
use crate::transport::known_hosts::HostKeyPolicy;

/// Native if the top level uses any of parc's own keys, in whatever YAML
/// style (block, flow, JSON): `root` is `text` as YAML, or `None` when no
/// YAML reader took it; then it is told by its lines, so that the parser
/// whose error the user reads is the layout they wrote.
pub fn is_native(root: Option<&serde_json::Value>, text: &str) -> bool {
    const KEYS: [&str; 3] = ["hosts", "groups", "defaults"];
    match root {
        Some(serde_json::Value::Object(top)) => top.keys().any(|k| KEYS.contains(&k.as_str())),
        Some(_) => false,
        None => text
            .lines()
            .any(|l| KEYS.iter().any(|k| l.starts_with(&format!("{k}:")))),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    defaults: Connection,
    #[serde(default)]
    vars: Vars,
    #[serde(default)]
    hosts: IndexMap<String, Option<HostSpec>>,
    #[serde(default)]
    groups: IndexMap<String, Option<GroupSpec>>,
}

/// Connection fields shared by `defaults` and each host.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Connection {
    port: Option<u16>,
    user: Option<String>,
    identity_file: Option<String>,
    jump: Option<String>,
    known_hosts: Option<String>,
    host_key_policy: Option<HostKeyPolicy>,
    connection: Option<ConnectionKind>,
    #[serde(rename = "become")]
    become_: Option<BecomeSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HostSpec {
    address: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    identity_file: Option<String>,
    jump: Option<String>,
    known_hosts: Option<String>,
    host_key_policy: Option<HostKeyPolicy>,
    connection: Option<ConnectionKind>,
    #[serde(rename = "become")]
    become_: Option<BecomeSpec>,
    #[serde(default)]
    vars: Vars,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupSpec {
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default)]
    children: Vec<String>,
    #[serde(default)]
    vars: Vars,
}

/// `become: true`, or `become: {user: admin, password_env: VAR}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum BecomeSpec {
    Enabled(bool),
    With(BecomeFields),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct BecomeFields {
    user: Option<String>,
    password_env: Option<String>,
}

impl BecomeSpec {
    pub(super) fn resolve(&self) -> Option<Become> {
        match self {
            BecomeSpec::Enabled(false) => None,
            BecomeSpec::Enabled(true) => Some(Become {
                user: "root".into(),
                password_env: None,
            }),
            BecomeSpec::With(f) => Some(Become {
                user: f.user.clone().unwrap_or_else(|| "root".into()),
                password_env: f.password_env.clone(),
            }),
        }
    }
}

pub fn parse(text: &str, path: &Path) -> Result<Inventory, InventoryError> {
    let file: File = serde_norway::from_str(text).map_err(|e| yaml_refusal(path, text, e))?;
    let positions = PositionMap::build(path, text);
    let invalid = |yaml_path: &str, message: String| InventoryError::Invalid {
        location: positions.locate(yaml_path),
        message,
    };
    let resolve = |p: &Option<String>| p.as_deref().map(|p| paths::resolve(path, p));
    let d = &file.defaults;
    let mut hosts = IndexMap::new();
    for (name, spec) in file.hosts {
        let h = spec.unwrap_or_default();
        let connection = ConnectionParams {
            kind: h.connection.or(d.connection).unwrap_or_default(),
            address: h.address,
            port: h.port.or(d.port),
            user: h.user.or_else(|| d.user.clone()),
            identity_file: resolve(&h.identity_file).or_else(|| resolve(&d.identity_file)),
            jump: h.jump.or_else(|| d.jump.clone()),
            known_hosts: resolve(&h.known_hosts).or_else(|| resolve(&d.known_hosts)),
            host_key_policy: h.host_key_policy.or(d.host_key_policy),
            ssh_args: Default::default(),
            become_: h
                .become_
                .or_else(|| d.become_.clone())
                .and_then(|b| b.resolve()),
        };
        hosts.insert(
            name.clone(),
            Host {
                name,
                connection,
                vars: h.vars,
            },
        );
    }
    let mut groups = IndexMap::new();
    for (name, spec) in file.groups {
        let g = spec.unwrap_or_default();
        if name == "all" {
            return Err(invalid(
                &format!("groups.{name}"),
                "`all` is implicit: put inventory-wide variables under the top-level `vars`".into(),
            ));
        }
        for (i, h) in g.hosts.iter().enumerate() {
            if !hosts.contains_key(h) {
                return Err(invalid(
                    &format!("groups.{name}.hosts.{i}"),
                    format!("group `{name}` lists host `{h}`, which is not defined under `hosts`"),
                ));
            }
        }
        groups.insert(
            name.clone(),
            Group {
                name,
                hosts: g.hosts,
                children: g.children,
                vars: g.vars,
            },
        );
    }
    for g in groups.values() {
        for (i, c) in g.children.iter().enumerate() {
            if !groups.contains_key(c) {
                return Err(invalid(
                    &format!("groups.{}.children.{i}", g.name),
                    format!(
                        "group `{}` lists child group `{c}`, which is not defined under `groups`",
                        g.name
                    ),
                ));
            }
        }
    }
    let inventory = Inventory {
        path: path.to_path_buf(),
        hosts,
        groups,
        vars: file.vars,
        var_files: Default::default(),
        top_groups: Vec::new(),
    };
    inventory.check_cycles()?;
    Ok(inventory)
}

impl From<YamlRefusal> for InventoryError {
    fn from(r: YamlRefusal) -> Self {
        match r {
            YamlRefusal::At { location, message } => InventoryError::Invalid { location, message },
            YamlRefusal::File { path, message } => {
                InventoryError::InvalidNoLocation { path, message }
            }
        }
    }
}
