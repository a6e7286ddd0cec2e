//! `reboot`: restart the host, wait until it is back, and go on with the run.
//!
//! A resource kind rather than a play step, because what needs a reboot is
//! something a profile changed (a kernel, a driver, a setting read only at
//! boot), and profiles already say "this change needs that action" with
//! `notify:` and handlers: as a handler, `reboot` runs when a resource that
//! changed notifies it. In `resources:` it needs `when_exists:`, a path whose
//! presence on the host asks for a reboot (`/run/reboot-required`, which
//! Debian's packages leave); without it, it would reboot on every run, and the
//! profile is refused when loaded. A play step could do neither without a
//! second notification mechanism, and would reboot hosts that need nothing.
//!
//! The reboot is not a step of the apply exec (the host goes down under it):
//! the engine runs the apply to its end (journal, every change, the other
//! handlers), then reboots the host once, however many `reboot`s asked, waits
//! for it to come back, and verifies it (see `engine::apply::reboot`). So a
//! reboot lies within its host's job, and within its batch: the canary batch
//! reboots before any later batch starts.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::plan::{Change, Plan, PlanContext, Step};
use super::script::{Record, Script};
use super::{Kind, ResourceError};
use crate::transport::quote;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reboot {
    /// Reboot only when this path exists on the host (`/run/reboot-required`).
    /// Required in `resources:`; a handler without it reboots when notified.
    /// Name a path only root can create: whoever can create it can have the
    /// host rebooted by the next run.
    pub when_exists: Option<String>,
    /// How long the host may take to go down and answer again over SSH
    /// (`10m`, `90s`); past it, the host fails. Default [`Reboot::DEFAULT_TIMEOUT`].
    #[serde(
        default,
        deserialize_with = "crate::playbook::duration",
        serialize_with = "seconds"
    )]
    pub timeout: Option<Duration>,
    pub when: Option<String>,
    /// `--tags` / `--skip-tags` select resources by these.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// Written back as whole seconds, which [`crate::playbook::duration`] reads
/// (resources go through their serde form when rendered).
pub(super) fn seconds<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    d.map(|d| d.as_secs().max(1)).serialize(s)
}

impl Reboot {
    /// How long a host may take to come back when `timeout:` is not given: a
    /// workstation's firmware and disk checks can take minutes.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(Self::DEFAULT_TIMEOUT)
    }
}

impl Kind for Reboot {
    fn label(&self) -> String {
        match &self.when_exists {
            Some(path) => format!("reboot when {path} exists"),
            None => "reboot".to_string(),
        }
    }
    fn when(&self) -> Option<&str> {
        self.when.as_deref()
    }
    fn notify(&self) -> &[String] {
        &[]
    }
    fn tags(&self) -> &[String] {
        &self.tags
    }

    fn probe(&self, id: &str, s: &mut Script, _ctx: &PlanContext) {
        let asked = match &self.when_exists {
            Some(path) => format!(
                "\nif [ -e {p} ] || [ -L {p} ]; then parc_kv asked yes; fi",
                p = quote(path)
            ),
            None => String::new(),
        };
        s.sh(&format!(
            "parc_rec {id}\n\
             if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then parc_kv manager systemd; fi{asked}"
        ));
    }

    fn plan(&self, probed: &Record, _ctx: &PlanContext) -> Result<Plan, ResourceError> {
        if self.when_exists.is_some() && probed.get("asked") != Some("yes") {
            return Ok(Plan::NoChange);
        }
        // Only through systemd for now: it stops services in order and syncs
        // disks, and parc cannot tell a container's `reboot` from its host's
        // elsewhere.
        if probed.get("manager") != Some("systemd") {
            return Err(ResourceError::Unsupported {
                resource: self.label(),
                reason: "this host has no running systemd, which parc reboots hosts through".into(),
            });
        }
        Ok(Plan::Change(Change {
            what: vec![match &self.when_exists {
                Some(path) => format!("reboot ({path} exists)"),
                None => "reboot".into(),
            }],
            diff: None,
            // Never run in the apply exec: the engine reboots the host after it.
            step: Step::default(),
            touches: vec![],
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::{change, record};

    fn reboot(yaml: &str) -> Reboot {
        crate::location::from_yaml(yaml).unwrap()
    }

    #[test]
    fn reboots_when_its_path_exists_and_only_through_systemd() {
        let ctx = PlanContext::default();
        let r = reboot("{when_exists: /run/reboot-required, timeout: 2m}");
        assert_eq!(r.timeout(), Duration::from_secs(120));
        let systemd = record(&[("manager", "systemd")]);
        assert!(matches!(r.plan(&systemd, &ctx).unwrap(), Plan::NoChange));
        let asked = record(&[("manager", "systemd"), ("asked", "yes")]);
        let c = change(r.plan(&asked, &ctx).unwrap());
        assert_eq!(c.what, ["reboot (/run/reboot-required exists)"]);
        assert!(c.step.0.is_empty() && c.touches.is_empty());
        let e = r.plan(&record(&[("asked", "yes")]), &ctx).unwrap_err();
        assert!(e.to_string().contains("no running systemd"), "{e}");
        // A handler reboots whenever it is notified.
        let h = reboot("{}");
        assert_eq!(h.timeout(), Reboot::DEFAULT_TIMEOUT);
        assert!(matches!(h.plan(&systemd, &ctx).unwrap(), Plan::Change(_)));
    }

    #[test]
    fn the_timeout_survives_rendering() {
        let r = reboot("{timeout: 90s}");
        let back: Reboot = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(back.timeout(), Duration::from_secs(90));
        assert!(crate::location::from_yaml::<Reboot>("{timeout: soon}").is_err());
    }
}
