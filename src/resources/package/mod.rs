//! `package`: software installed (or not) through the host's package manager,
//! or from a `.deb` shipped in the profile's `files/`.
//!
//! The probe detects the manager (apt, dnf, yum, apk, pacman, zypper) and each
//! package's installed version; the plan then sends one command for all the
//! packages of the resource that need it. `latest` compares with the package
//! metadata the host already has: it never refreshes it (apt's lists are only
//! updated when an install fails, to retry once).

mod deb;
mod manager;

use serde::{Deserialize, Serialize};

use super::plan::{Batched, Change, Op, Plan, PlanContext, Step, Touch};
use super::script::{Record, Script};
use super::{Kind, ResourceError};
use crate::profile::Origin;
use crate::render::{RenderError, Renderer};
use crate::transport::quote;

pub use deb::DebFile;
use manager::Manager;

/// Where a `.deb` waits on the host between its transfer and `dpkg -i`:
/// root-only, unlike /tmp, so nobody can swap it in between.
const DEB_DIR: &str = "/var/lib/parc/packages";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    pub name: Option<String>,
    /// Several packages, handled in one command.
    #[serde(default)]
    pub names: Vec<String>,
    /// A `.deb` in the profile's `files/` directory (hosts with dpkg only).
    pub deb: Option<String>,
    #[serde(default)]
    pub state: PackageState,
    pub when: Option<String>,
    #[serde(default)]
    pub notify: Vec<String>,
    /// `--tags` / `--skip-tags` select resources by these.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The `.deb`, read and parsed by rendering.
    #[serde(skip)]
    pub resolved: Option<DebFile>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackageState {
    #[default]
    Present,
    Absent,
    /// Installed, and upgraded when the host's repositories offer a newer version.
    Latest,
}

impl Package {
    /// Read and parse the `.deb` the rendered `deb:` names (under `files/`)
    /// into `resolved`; an error points at the field.
    pub(crate) fn resolve(
        &mut self,
        renderer: &Renderer,
        origin: &Origin,
    ) -> Result<(), RenderError> {
        let Some(deb) = &self.deb else {
            return Ok(());
        };
        let at = origin.locate("package.deb");
        let bytes = renderer.read_file(deb, &at)?;
        let parsed = DebFile::parse(bytes).map_err(|e| RenderError::At {
            location: at,
            message: format!("package {deb}: {e}"),
        })?;
        self.resolved = Some(parsed);
        Ok(())
    }

    fn invalid(&self, reason: impl Into<String>) -> ResourceError {
        ResourceError::Invalid {
            resource: self.label(),
            reason: reason.into(),
        }
    }

    /// The package names of a `name:`/`names:` resource.
    fn names(&self) -> Vec<&str> {
        self.name
            .iter()
            .chain(&self.names)
            .map(String::as_str)
            .collect()
    }

    /// The declared names, checked: exactly one of name, names and deb.
    fn checked_names(&self) -> Result<Vec<&str>, ResourceError> {
        let names = self.names();
        match (names.is_empty(), self.deb.is_some()) {
            (true, false) => {
                return Err(self.invalid("declares no package: give name, names or deb"));
            }
            (false, true) => {
                return Err(self.invalid("give either name/names or deb, not both"));
            }
            _ => {}
        }
        if self.name.is_some() && !self.names.is_empty() {
            return Err(self.invalid("give either name or names, not both"));
        }
        if let Some(bad) = names
            .iter()
            .find(|n| n.is_empty() || n.starts_with('-') || n.chars().any(char::is_whitespace))
        {
            return Err(self.invalid(format!(
                "`{bad}` is not a package name (empty, starting with `-` or holding spaces); nothing is installed or removed"
            )));
        }
        Ok(names)
    }

    fn plan_names(&self, names: &[&str], probed: &Record) -> Result<Plan, ResourceError> {
        let manager = probed
            .get("manager")
            .and_then(Manager::from_probe)
            .ok_or_else(|| ResourceError::Unsupported {
                resource: self.label(),
                reason:
                    "no package manager parc knows (apt, dnf, yum, apk, pacman, zypper) was found"
                        .into(),
            })?;
        let installed = |i: usize| probed.get(&format!("i{i}")) == Some("yes");
        let version = |i: usize| probed.get(&format!("v{i}")).unwrap_or("");
        let (mut what, mut ops, mut undo) = (Vec::new(), Vec::new(), Vec::new());
        let run = |command: String, names: &[&str]| {
            Op::Batch(Batched::Packages {
                command,
                names: names.iter().map(|n| n.to_string()).collect(),
            })
        };
        if self.state == PackageState::Absent {
            let present: Vec<usize> = (0..names.len()).filter(|&i| installed(i)).collect();
            if present.is_empty() {
                return Ok(Plan::NoChange);
            }
            let gone: Vec<&str> = present.iter().map(|&i| names[i]).collect();
            what.push(format!("remove {}", gone.join(", ")));
            ops.push(run(manager.remove(), &gone));
            let pins: Vec<(&str, &str)> = present.iter().map(|&i| (names[i], version(i))).collect();
            undo.extend(manager.reinstall(&pins));
        } else {
            let missing: Vec<&str> = (0..names.len())
                .filter(|&i| !installed(i))
                .map(|i| names[i])
                .collect();
            if !missing.is_empty() {
                what.push(format!("install {}", missing.join(", ")));
                ops.push(run(manager.install().into(), &missing));
                undo.push(manager.remove_all(&missing));
            }
            let stale: Vec<usize> = (0..names.len())
                .filter(|&i| self.state == PackageState::Latest && installed(i))
                .filter(|&i| probed.get(&format!("u{i}")).is_some())
                .collect();
            if !stale.is_empty() {
                for &i in &stale {
                    what.push(match probed.get(&format!("u{i}")) {
                        Some("newer") | None => {
                            format!("upgrade {} (from {})", names[i], version(i))
                        }
                        Some(to) => format!("upgrade {} {} -> {to}", names[i], version(i)),
                    });
                }
                let upgraded: Vec<&str> = stale.iter().map(|&i| names[i]).collect();
                ops.push(run(manager.upgrade().into(), &upgraded));
                let pins: Vec<(&str, &str)> =
                    stale.iter().map(|&i| (names[i], version(i))).collect();
                undo.extend(manager.reinstall(&pins));
            }
            if what.is_empty() {
                return Ok(Plan::NoChange);
            }
        }
        Ok(change(what, Step(ops), undo))
    }

    fn plan_deb(&self, probed: &Record) -> Result<Plan, ResourceError> {
        let Some(deb) = &self.resolved else {
            return Err(self.invalid("its .deb file was not loaded"));
        };
        if probed.get("manager") != Some("dpkg") {
            return Err(ResourceError::Unsupported {
                resource: self.label(),
                reason: "installing a .deb needs dpkg, which this host does not have".into(),
            });
        }
        let installed = (probed.get("i0") == Some("yes")).then(|| probed.get("v0").unwrap_or(""));
        let p = quote(&deb.package);
        let reinstall_old = |old: &str| {
            Manager::Apt
                .reinstall(&[(deb.package.as_str(), old)])
                .into_iter()
        };
        match (self.state, installed) {
            (PackageState::Latest, _) => Err(self.invalid(
                "state: latest cannot apply to a .deb (the file is the version); use present",
            )),
            (PackageState::Absent, None) => Ok(Plan::NoChange),
            (PackageState::Absent, Some(old)) => Ok(change(
                vec![format!("remove {}", deb.package)],
                Step::sh(format!("dpkg -r {p}")),
                reinstall_old(old).collect(),
            )),
            (PackageState::Present, Some(v)) if v == deb.version => Ok(Plan::NoChange),
            (PackageState::Present, old) => {
                let from = self.deb.as_deref().unwrap_or_default();
                let tmp = format!("{DEB_DIR}/{}_{}.deb", deb.package, &deb.data.sha256()[..12]);
                let t = quote(&tmp);
                let step = Step(vec![
                    Op::Sh(format!("mkdir -p -m 700 {DEB_DIR}")),
                    Op::Put {
                        data: deb.data.clone(),
                        dest: tmp.clone(),
                        mode: Some(0o600),
                        owner: None,
                        group: None,
                        // Its directory is made by this very step.
                        stage: None,
                    },
                    Op::Sh(format!(
                        "DEBIAN_FRONTEND=noninteractive dpkg -i --force-confdef --force-confold {t} || {{ parc_rc=$?; rm -f {t}; exit $parc_rc; }}\nrm -f {t}"
                    )),
                ]);
                let (what, undo) = match old {
                    None => (
                        format!("install {} {} (from {from})", deb.package, deb.version),
                        vec![format!("dpkg -r {p}")],
                    ),
                    Some(old) => (
                        format!("{} {old} -> {} (from {from})", deb.package, deb.version),
                        reinstall_old(old).collect(),
                    ),
                };
                Ok(change(vec![what], step, undo))
            }
        }
    }
}

fn change(what: Vec<String>, step: Step, undo: Vec<String>) -> Plan {
    Plan::Change(Change {
        what,
        diff: None,
        step,
        touches: if undo.is_empty() {
            vec![]
        } else {
            vec![Touch::Undo(undo.join("\n"))]
        },
    })
}

impl Kind for Package {
    fn label(&self) -> String {
        match &self.deb {
            Some(deb) => format!("package {deb}"),
            None => format!("package {}", self.names().join(", ")),
        }
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
        s.sh(&format!("parc_rec {id}"));
        if self.deb.is_some() {
            if let Some(deb) = &self.resolved {
                let query = s.package("apt", &deb.package, 0);
                s.sh(&format!(
                    "if command -v dpkg-query >/dev/null 2>&1; then parc_kv manager dpkg; {query}; fi"
                ));
            }
            return;
        }
        s.sh("parc_pkg_manager; parc_kv manager \"$parc_pm\"");
        for (i, name) in self.names().iter().enumerate() {
            let query = s.package("\"$parc_pm\"", name, i);
            s.sh(&query);
            if self.state == PackageState::Latest {
                let upgradable = s.upgradable("\"$parc_pm\"", name, i);
                s.sh(&upgradable);
            }
        }
    }

    fn plan(&self, probed: &Record, _ctx: &PlanContext) -> Result<Plan, ResourceError> {
        let names = self.checked_names()?;
        if names.is_empty() {
            self.plan_deb(probed)
        } else {
            self.plan_names(&names, probed)
        }
    }
}

#[cfg(test)]
mod tests;
