//! How a test is written in a profile's `verify:` list.
//!
//! ```yaml
//! verify:
//!   - file: {path: /etc/motd, contains: "managed by parc"}
//!   - name: the support account can log in
//!     when: admin_user != ""
//!     user: {name: "{{ admin_user }}", uid: "{{ admin_uid }}"}
//! ```
//!
//! `name`, `when` and `tags` (selected by `--tags` / `--skip-tags`) sit
//! beside the kind key rather than inside it, as in an
//! Ansible task, because several kinds (`user`, `group`, `package`, ...) already
//! use `name` for what they check.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::command::CommandTest;
use super::file::FileTest;
use super::net::{HttpTest, PortTest};
use super::probe::Probe;
use super::system::{DnsTest, KernelParamTest, MountTest, PackageTest, ServiceTest};
use super::users::{GroupTest, UserTest};

/// One declared test: an optional report name and condition, and what to check.
#[derive(Debug, Clone, Serialize)]
pub struct Test {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// minijinja expression over the host's vars and facts; false skips the test.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// `--tags` / `--skip-tags` select tests by these.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(flatten)]
    pub spec: Spec,
}

/// What a test checks, by kind.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Spec {
    File(FileTest),
    Command(CommandTest),
    User(UserTest),
    Group(GroupTest),
    Package(PackageTest),
    Service(ServiceTest),
    Port(PortTest),
    Http(HttpTest),
    Dns(DnsTest),
    Mount(MountTest),
    KernelParam(KernelParamTest),
}

const KINDS: &[&str] = &[
    "file",
    "command",
    "user",
    "group",
    "package",
    "service",
    "port",
    "http",
    "dns",
    "mount",
    "kernel_param",
];

impl Spec {
    /// The YAML key of this kind.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Spec::File(_) => "file",
            Spec::Command(_) => "command",
            Spec::User(_) => "user",
            Spec::Group(_) => "group",
            Spec::Package(_) => "package",
            Spec::Service(_) => "service",
            Spec::Port(_) => "port",
            Spec::Http(_) => "http",
            Spec::Dns(_) => "dns",
            Spec::Mount(_) => "mount",
            Spec::KernelParam(_) => "kernel_param",
        }
    }

    pub fn probe(&self) -> &dyn Probe {
        match self {
            Spec::File(t) => t,
            Spec::Command(t) => t,
            Spec::User(t) => t,
            Spec::Group(t) => t,
            Spec::Package(t) => t,
            Spec::Service(t) => t,
            Spec::Port(t) => t,
            Spec::Http(t) => t,
            Spec::Dns(t) => t,
            Spec::Mount(t) => t,
            Spec::KernelParam(t) => t,
        }
    }
}

impl Test {
    /// The time the test gives itself (`timeout:`, in seconds), which the
    /// script that runs it is allowed beside `--read-timeout`.
    pub fn own_time(&self) -> u64 {
        let t = match &self.spec {
            Spec::Command(c) => c.timeout.as_ref(),
            Spec::Http(h) => h.timeout.as_ref(),
            _ => None,
        };
        t.and_then(crate::render::Number::value).unwrap_or(0)
    }

    /// Marks what was rendered from a secret, as `shown` (this test with
    /// such fields hidden; `None` when one no longer fit its type) tells:
    /// the probes keep those values off the host's command lines.
    pub fn note_secrets(&mut self, shown: Option<&Test>) {
        if let Spec::Http(h) = &mut self.spec {
            h.secret_url = match shown.map(|t| &t.spec) {
                Some(Spec::Http(s)) => s.url != h.url,
                _ => true,
            };
        }
    }

    /// The name shown in reports: the declared one, else the kind and its subject.
    pub fn label(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| self.spec.probe().label())
    }
}

impl<'de> Deserialize<'de> for Test {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(TestVisitor)
    }
}

struct TestVisitor;

impl<'de> Visitor<'de> for TestVisitor {
    type Value = Test;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "a test: a map with one kind key ({}) and optionally `name`, `when` and `tags`",
            KINDS.join(", ")
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Test, A::Error> {
        let (mut name, mut when, mut tags, mut spec) = (None, None, Vec::new(), None::<Spec>);
        while let Some(key) = map.next_key::<String>()? {
            let parsed = match key.as_str() {
                "name" => {
                    name = Some(map.next_value()?);
                    continue;
                }
                "when" => {
                    when = Some(map.next_value()?);
                    continue;
                }
                "tags" => {
                    tags = map.next_value()?;
                    continue;
                }
                "file" => Spec::File(map.next_value()?),
                "command" => Spec::Command(map.next_value()?),
                "user" => Spec::User(map.next_value()?),
                "group" => Spec::Group(map.next_value()?),
                "package" => Spec::Package(map.next_value()?),
                "service" => Spec::Service(map.next_value()?),
                "port" => Spec::Port(map.next_value()?),
                "http" => Spec::Http(map.next_value()?),
                "dns" => Spec::Dns(map.next_value()?),
                "mount" => Spec::Mount(map.next_value()?),
                "kernel_param" => Spec::KernelParam(map.next_value()?),
                other => {
                    return Err(de::Error::custom(format!(
                        "unknown test kind `{other}`: expected one of {} (besides `name`, `when` and `tags`)",
                        KINDS.join(", ")
                    )));
                }
            };
            if let Some(first) = &spec {
                return Err(de::Error::custom(format!(
                    "a test checks one kind, but this one has both `{}` and `{}`: split it into two tests",
                    first.kind_name(),
                    parsed.kind_name()
                )));
            }
            spec = Some(parsed);
        }
        let spec = spec.ok_or_else(|| {
            de::Error::custom(format!(
                "this test says nothing to check: add one of {}",
                KINDS.join(", ")
            ))
        })?;
        Ok(Test {
            name,
            when,
            tags,
            spec,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::Number;

    fn tests(yaml: &str) -> Result<Vec<Test>, serde_norway::Error> {
        crate::location::from_yaml(yaml)
    }

    #[test]
    fn kinds_names_and_conditions() {
        let t = tests(
            "
- file: {path: /etc/motd, contains: x}
- name: admin
  when: admin_user != ''
  user: {name: localadmin, uid: '{{ admin_uid }}'}
- kernel_param: {name: net.ipv4.ip_forward, value: '0'}
- port: {port: 22, protocol: udp}
",
        )
        .unwrap();
        assert_eq!(t[0].label(), "file /etc/motd");
        assert_eq!(t[1].label(), "admin");
        assert_eq!(t[1].when.as_deref(), Some("admin_user != ''"));
        let Spec::User(u) = &t[1].spec else {
            panic!("user expected")
        };
        assert_eq!(u.uid, Some(Number::Template("{{ admin_uid }}".into())));
        assert_eq!(t[2].spec.kind_name(), "kernel_param");
        assert_eq!(t[3].label(), "port 22/udp");
    }

    #[test]
    fn serializes_back_to_the_same_shape() {
        let t = tests("- name: n\n  port: {port: 22}\n").unwrap();
        let json = serde_json::to_value(&t[0]).unwrap();
        assert_eq!(json["name"], "n");
        assert_eq!(json["port"]["port"], 22);
        let back: Test = serde_json::from_value(json).unwrap();
        assert_eq!(back.label(), "n");
    }

    #[test]
    fn mistakes_are_refused_with_their_line() {
        for (yaml, words) in [
            ("- fiel: {path: /x}\n", "unknown test kind `fiel`"),
            (
                "- file: {path: /x}\n  command: {run: x}\n",
                "both `file` and `command`",
            ),
            ("- name: lonely\n", "says nothing to check"),
            (
                "- file: {path: /x, colour: red}\n",
                "unknown field `colour`",
            ),
            (
                "- user: {name: a, uid: abc}\n",
                "`abc` is not a whole number",
            ),
        ] {
            let e = tests(yaml).unwrap_err();
            assert!(e.to_string().contains(words), "{yaml}: {e}");
            assert!(e.location().is_some(), "{yaml}: no location in {e}");
        }
    }
}
