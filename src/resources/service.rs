//! `service`: whether a systemd unit is enabled at boot and running now.
//!
//! Only systemd for now. `restarted` and `reloaded` are actions rather than
//! states: they always act, which is what handlers want (`notify: [restart ssh]`).

use serde::{Deserialize, Serialize};

use super::plan::{Batched, Change, Op, Plan, PlanContext, Step, Touch};
use super::script::{Record, Script};
use super::{Kind, ResourceError};
use crate::transport::quote;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub name: String,
    /// Started at boot; omitted: left as it is.
    pub enabled: Option<bool>,
    /// Omitted: left as it is.
    pub state: Option<ServiceState>,
    pub when: Option<String>,
    #[serde(default)]
    pub notify: Vec<String>,
    /// `--tags` / `--skip-tags` select resources by these.
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceState {
    Started,
    Stopped,
    Restarted,
    /// Reload when running, start otherwise (a reload of a stopped unit fails).
    Reloaded,
}

/// `systemctl is-active` answers meaning the unit runs or is about to.
const RUNNING: &[&str] = &["active", "activating", "reloading"];
/// `systemctl is-enabled` answers meaning it starts at boot.
const ENABLED: &[&str] = &["enabled", "enabled-runtime"];
/// Answers for units that cannot be enabled or disabled (no `[Install]`
/// section, or enabled through another unit): `enabled` leaves them alone.
const FIXED: &[&str] = &["static", "indirect", "generated", "transient", "alias"];

impl Kind for Service {
    fn label(&self) -> String {
        format!("service {}", self.name)
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
        let unit = s.unit(&self.name);
        s.sh(&format!(
            "parc_rec {id}\n\
             {unit}\n\
             if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then\n\
             parc_kv manager systemd\n\
             parc_kv load \"$_ul\"\n\
             parc_kv active \"$_ua\"\n\
             parc_kv enabled \"$_ue\"\n\
             fi"
        ));
    }

    fn plan(&self, probed: &Record, _ctx: &PlanContext) -> Result<Plan, ResourceError> {
        let label = self.label();
        if probed.get("manager") != Some("systemd") {
            return Err(ResourceError::NoServiceManager { resource: label });
        }
        if self.enabled.is_none() && self.state.is_none() {
            return Err(ResourceError::Invalid {
                resource: label,
                reason: "declares neither `enabled` nor `state`, so there is nothing to manage"
                    .into(),
            });
        }
        let load = probed.get("load").unwrap_or("");
        // Not found before the run: an earlier resource of this run may install
        // its unit file (or package), so the step checks again once systemd has
        // reloaded its units, and fails then if the unit still does not exist.
        let installed_by_run = matches!(load, "not-found" | "");
        if !installed_by_run && load != "loaded" {
            return Err(ResourceError::Conflict {
                resource: label,
                reason: if load == "masked" {
                    "the unit is masked; unmask it (systemctl unmask) before parc can manage it"
                        .into()
                } else {
                    format!("the unit could not be loaded (LoadState={load})")
                },
            });
        }
        let n = quote(&self.name);
        let (mut what, mut ops, mut undo) = (Vec::new(), Vec::new(), Vec::new());
        let unit = |verb: &'static str| {
            Op::Batch(Batched::Systemctl {
                verb,
                unit: self.name.clone(),
            })
        };
        let enabled_now = if installed_by_run {
            "not-found"
        } else {
            probed.get("enabled").unwrap_or("")
        };
        match self.enabled {
            Some(true) if !ENABLED.contains(&enabled_now) && !FIXED.contains(&enabled_now) => {
                what.push("enable".to_string());
                ops.push(unit("enable"));
                undo.push(format!("systemctl disable -- {n}"));
            }
            Some(false) if ENABLED.contains(&enabled_now) => {
                what.push("disable".to_string());
                ops.push(unit("disable"));
                undo.push(format!("systemctl enable -- {n}"));
            }
            _ => {}
        }
        let running = !installed_by_run && RUNNING.contains(&probed.get("active").unwrap_or(""));
        match self.state {
            Some(ServiceState::Started) if !running => {
                what.push("start".into());
                ops.push(unit("start"));
                undo.push(format!("systemctl stop -- {n}"));
            }
            Some(ServiceState::Stopped) if running => {
                what.push("stop".into());
                ops.push(unit("stop"));
                undo.push(format!("systemctl start -- {n}"));
            }
            Some(ServiceState::Restarted) => {
                what.push("restart".into());
                ops.push(unit("restart"));
            }
            Some(ServiceState::Reloaded) => {
                what.push("reload".into());
                ops.push(Op::Sh(format!(
                    "if systemctl is-active --quiet -- {n}; then {}; else {}; fi",
                    checked("reload", &n),
                    checked("start", &n)
                )));
            }
            _ => {}
        }
        if what.is_empty() {
            return Ok(Plan::NoChange);
        }
        // Undone newest first, so stop before disable (and start after enable).
        undo.reverse();
        ops.insert(
            0,
            if installed_by_run {
                Op::Sh(load_units(&n))
            } else {
                Op::Batch(Batched::UnitsReload {
                    unit: self.name.clone(),
                })
            },
        );
        Ok(Plan::Change(Change {
            what,
            diff: None,
            step: Step(ops),
            touches: if undo.is_empty() {
                vec![]
            } else {
                vec![Touch::Undo(undo.join("\n"))]
            },
        }))
    }
}

/// Makes systemd read its unit files, and checks that the unit exists now: it
/// did not when the host was probed, and an earlier resource of this run (a
/// `file`, a package) may have installed it. A unit that did exist gets
/// `Batched::UnitsReload` instead: a reload only if its file changed since
/// systemd read it (otherwise `systemctl` starts or restarts the old
/// definition and only warns), decided on the host at apply time, since the
/// probe ran before any file was written.
fn load_units(n: &str) -> String {
    format!(
        "systemctl daemon-reload\n\
         parc_load=$(systemctl show -p LoadState --value -- {n})\n\
         if [ \"$parc_load\" != loaded ]; then \
         printf '%s: no such unit on this host (is its package installed?)\\n' {n} >&2; false; fi"
    )
}

/// `systemctl VERB -- UNIT`, and when it fails the unit's status as systemd
/// reports it (state, exit code, last log lines): the reason a unit failed is
/// there, not in systemctl's own one-line message. Bounded: the lines come from
/// the host.
pub(crate) fn checked(verb: &str, n: &str) -> String {
    format!(
        "{{ systemctl {verb} -- {n} || {{ systemctl status --no-pager --full --lines={STATUS_LINES} -- {n} 2>&1 \
         | head -c {STATUS_BYTES} >&2; false; }}; }}"
    )
}

/// How much of `systemctl status` a failure report quotes.
const STATUS_LINES: usize = 10;
const STATUS_BYTES: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::{change, record, step_sh};

    fn service(yaml: &str) -> Service {
        crate::location::from_yaml(yaml).unwrap()
    }

    fn systemd(active: &str, enabled: &str) -> Record {
        record(&[
            ("manager", "systemd"),
            ("load", "loaded"),
            ("active", active),
            ("enabled", enabled),
        ])
    }

    #[test]
    fn no_service_manager_is_a_clear_error() {
        let e = service("{name: ssh, state: started}")
            .plan(&record(&[]), &PlanContext::default())
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "service ssh: this host has no running service manager (systemd); parc cannot manage services here"
        );
    }

    #[test]
    fn enables_and_starts_only_what_differs() {
        let ctx = PlanContext::default();
        let s = service("{name: ssh, enabled: true, state: started}");
        assert!(matches!(
            s.plan(&systemd("active", "enabled"), &ctx).unwrap(),
            Plan::NoChange
        ));
        assert!(matches!(
            s.plan(&systemd("active", "static"), &ctx).unwrap(),
            Plan::NoChange
        ));
        let c = change(s.plan(&systemd("inactive", "disabled"), &ctx).unwrap());
        assert_eq!(c.what, ["enable", "start"]);
        let sh = step_sh(&c);
        let lines: Vec<&str> = sh.lines().collect();
        assert_eq!(lines.len(), 3, "{sh}");
        assert_eq!(lines[0], "parc_units_reload ssh", "{sh}");
        assert!(
            lines[1].starts_with("{ systemctl enable -- ssh || "),
            "{sh}"
        );
        assert!(lines[2].starts_with("{ systemctl start -- ssh || "), "{sh}");
        assert_eq!(
            c.touches,
            [Touch::Undo(
                "systemctl stop -- ssh\nsystemctl disable -- ssh".into()
            )]
        );
        let c = change(s.plan(&systemd("failed", "enabled"), &ctx).unwrap());
        assert_eq!(c.what, ["start"]);
    }

    #[test]
    fn disables_and_stops() {
        let ctx = PlanContext::default();
        let s = service("{name: cups, enabled: false, state: stopped}");
        assert!(matches!(
            s.plan(&systemd("inactive", "disabled"), &ctx).unwrap(),
            Plan::NoChange
        ));
        let c = change(s.plan(&systemd("active", "enabled"), &ctx).unwrap());
        assert_eq!(c.what, ["disable", "stop"]);
    }

    #[test]
    fn restarted_and_reloaded_always_act() {
        let ctx = PlanContext::default();
        let c = change(
            service("{name: ssh, state: restarted}")
                .plan(&systemd("active", "enabled"), &ctx)
                .unwrap(),
        );
        let sh = step_sh(&c);
        assert!(
            sh.ends_with(
                "\n{ systemctl restart -- ssh || { systemctl status --no-pager --full \
                 --lines=10 -- ssh 2>&1 | head -c 4096 >&2; false; }; }"
            ),
            "{sh}"
        );
        assert!(c.touches.is_empty());
        let c = change(
            service("{name: ssh, state: reloaded}")
                .plan(&systemd("active", "enabled"), &ctx)
                .unwrap(),
        );
        assert!(step_sh(&c).contains("systemctl reload -- ssh"));
    }

    #[test]
    fn a_unit_missing_before_the_run_is_checked_after_a_daemon_reload() {
        // An earlier `file` resource of the same run may write the unit.
        let ctx = PlanContext::default();
        let s = service("{name: demo, enabled: true, state: started}");
        let mut r = systemd("inactive", "");
        r.fields.insert("load".into(), "not-found".into());
        let c = change(s.plan(&r, &ctx).unwrap());
        assert_eq!(c.what, ["enable", "start"]);
        let sh = step_sh(&c);
        assert!(sh.starts_with("systemctl daemon-reload\n"), "{sh}");
        assert!(sh.contains("no such unit on this host"), "{sh}");
        // The check runs on a real sh: a unit still unknown fails the step.
        let check: String = sh.lines().skip(1).take(2).collect::<Vec<_>>().join("\n");
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("systemctl() {{ echo not-found; }}\n{check}"))
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "demo: no such unit on this host (is its package installed?)\n"
        );
    }

    #[test]
    fn masked_units_are_errors() {
        let ctx = PlanContext::default();
        let s = service("{name: nope, state: started}");
        let mut r = systemd("inactive", "");
        r.fields.insert("load".into(), "masked".into());
        assert!(s.plan(&r, &ctx).unwrap_err().to_string().contains("masked"));
        let e = service("{name: ssh}").plan(&systemd("active", "enabled"), &ctx);
        assert!(matches!(e, Err(ResourceError::Invalid { .. })));
    }
}
