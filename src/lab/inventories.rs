//! The two inventories a lab writes: parc's native one, and an Ansible one so the
//! benchmarks can run Ansible against the very same hosts.
//!
//! Paths are absolute so both files work from any working directory.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use serde::Serialize;

use super::LabError;
use crate::transport::quote;

/// A lab host as the inventories need it.
pub(crate) struct Entry<'a> {
    pub name: &'a str,
    pub address: Ipv4Addr,
}

/// `lab` (all), `canary` (first host), `wave1` (first half, rounded up) and
/// `wave2` (the rest): the groups a staged rollout demo needs.
fn groups<'a>(hosts: &[Entry<'a>]) -> BTreeMap<&'static str, Vec<&'a str>> {
    let names: Vec<&str> = hosts.iter().map(|h| h.name).collect();
    let half = names.len().div_ceil(2);
    BTreeMap::from([
        ("lab", names.clone()),
        ("canary", names.iter().take(1).copied().collect()),
        ("wave1", names[..half].to_vec()),
        ("wave2", names[half..].to_vec()),
    ])
}

const HEADER: &str = "# Written by `parc lab up`; removed by `parc lab down`.\n";

#[derive(Serialize)]
struct Native<'a> {
    defaults: NativeDefaults<'a>,
    hosts: BTreeMap<&'a str, NativeHost>,
    groups: BTreeMap<&'static str, NativeGroup<'a>>,
}

#[derive(Serialize)]
struct NativeDefaults<'a> {
    user: &'static str,
    identity_file: &'a str,
    known_hosts: &'a str,
}

#[derive(Serialize)]
struct NativeHost {
    address: Ipv4Addr,
}

#[derive(Serialize)]
struct NativeGroup<'a> {
    hosts: Vec<&'a str>,
}

/// parc's native inventory. `key` and `known_hosts` must be UTF-8 absolute paths
/// (the lab directory was checked for that).
pub(crate) fn native(
    hosts: &[Entry<'_>],
    key: &str,
    known_hosts: &str,
    path: &Path,
) -> Result<String, LabError> {
    let doc = Native {
        defaults: NativeDefaults {
            user: "root",
            identity_file: key,
            known_hosts,
        },
        hosts: hosts
            .iter()
            .map(|h| (h.name, NativeHost { address: h.address }))
            .collect(),
        groups: groups(hosts)
            .into_iter()
            .map(|(name, hosts)| (name, NativeGroup { hosts }))
            .collect(),
    };
    render(&doc, path)
}

#[derive(Serialize)]
struct AnsibleRoot<'a> {
    all: AnsibleAll<'a>,
}

#[derive(Serialize)]
struct AnsibleAll<'a> {
    vars: AnsibleVars<'a>,
    hosts: BTreeMap<&'a str, AnsibleHost>,
    children: BTreeMap<&'static str, AnsibleGroup<'a>>,
}

#[derive(Serialize)]
struct AnsibleVars<'a> {
    ansible_user: &'static str,
    ansible_ssh_private_key_file: &'a str,
    ansible_ssh_common_args: String,
}

#[derive(Serialize)]
struct AnsibleHost {
    ansible_host: Ipv4Addr,
}

#[derive(Serialize)]
struct AnsibleGroup<'a> {
    /// Ansible lists group members as a mapping of name to (here empty) host vars.
    hosts: BTreeMap<&'a str, ()>,
}

/// Ansible's YAML inventory layout, pinned to the lab's known_hosts exactly like
/// the native one so both tools do the same host key checking.
pub(crate) fn ansible(
    hosts: &[Entry<'_>],
    key: &str,
    known_hosts: &str,
    path: &Path,
) -> Result<String, LabError> {
    let doc = AnsibleRoot {
        all: AnsibleAll {
            vars: AnsibleVars {
                ansible_user: "root",
                ansible_ssh_private_key_file: key,
                ansible_ssh_common_args: format!(
                    "-o {} -o StrictHostKeyChecking=yes",
                    quote(&known_hosts_option(known_hosts))
                ),
            },
            hosts: hosts
                .iter()
                .map(|h| {
                    (
                        h.name,
                        AnsibleHost {
                            ansible_host: h.address,
                        },
                    )
                })
                .collect(),
            children: groups(hosts)
                .into_iter()
                .map(|(name, members)| {
                    let hosts = members.into_iter().map(|m| (m, ())).collect();
                    (name, AnsibleGroup { hosts })
                })
                .collect(),
        },
    };
    render(&doc, path)
}

/// `UserKnownHostsFile=PATH` as one ssh argument. ssh itself splits the value on
/// whitespace (it takes a list of files), so a path with spaces needs ssh's own
/// double quotes, on top of any shell quoting. The lab directory cannot contain
/// `"` or `\`, so nothing inside needs escaping.
pub(crate) fn known_hosts_option(path: &str) -> String {
    if path.contains(char::is_whitespace) {
        format!("UserKnownHostsFile=\"{path}\"")
    } else {
        format!("UserKnownHostsFile={path}")
    }
}

fn render(doc: &impl Serialize, path: &Path) -> Result<String, LabError> {
    serde_norway::to_string(doc)
        .map(|yaml| format!("{HEADER}{yaml}"))
        .map_err(|source| LabError::Yaml {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Vec<Entry<'static>> {
        vec![
            Entry {
                name: "ws-001",
                address: Ipv4Addr::new(127, 100, 0, 1),
            },
            Entry {
                name: "ws-002",
                address: Ipv4Addr::new(127, 100, 0, 2),
            },
            Entry {
                name: "ws-003",
                address: Ipv4Addr::new(127, 100, 0, 3),
            },
        ]
    }

    #[test]
    fn native_inventory() {
        let yaml = native(
            &hosts(),
            "/lab/id_ed25519",
            "/lab/known_hosts",
            Path::new("inv"),
        )
        .unwrap();
        insta::assert_snapshot!(yaml);
    }

    #[test]
    fn ansible_inventory() {
        let yaml = ansible(
            &hosts(),
            "/my lab/id_ed25519",
            "/my lab/known_hosts",
            Path::new("inv"),
        )
        .unwrap();
        insta::assert_snapshot!(yaml);
    }

    #[test]
    fn a_single_host_is_canary_and_wave1() {
        let one = &hosts()[..1];
        let groups = groups(one);
        assert_eq!(groups["canary"], ["ws-001"]);
        assert_eq!(groups["wave1"], ["ws-001"]);
        assert!(groups["wave2"].is_empty());
    }
}
