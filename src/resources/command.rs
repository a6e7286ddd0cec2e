//! `command`: run a shell command, guarded so that re-runs are idempotent.
//!
//! Guards are checked by the probe (so `parc plan` knows whether the command
//! will run): `creates` (skip if the path exists), `removes` (skip unless it
//! exists), `unless` (skip if this command succeeds), `only_if` (run only if
//! it succeeds). Guard commands must not change the host: they also run in
//! check mode.
//!
//! `changed_when` decides whether a run counts as a change: omitted, a run that
//! exits 0 is a change; `false` never reports a change (informational
//! commands, still run on every apply); a minijinja expression over `rc` and
//! `output` (stdout and stderr together), e.g. `"'updated' in output"`. A
//! non-zero exit status fails the resource whatever `changed_when` says.

use serde::{Deserialize, Serialize};

use super::plan::{Change, Plan, PlanContext, Step, Touch};
use super::script::{Record, Script};
use super::{ChangedWhenError, Kind, ResourceError};
use crate::transport::{quote, sh_hidden};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Command {
    /// The command, run with `sh -c`.
    pub run: String,
    pub creates: Option<String>,
    pub removes: Option<String>,
    pub unless: Option<String>,
    pub only_if: Option<String>,
    pub changed_when: Option<ChangedWhen>,
    /// Working directory.
    pub chdir: Option<String>,
    /// sh that reverses the command, run when the host is rolled back.
    pub undo: Option<String>,
    /// How long the command may run (`10m`, `90s`) before `timeout` stops
    /// it, and the resource fails: a command waiting for ever (a prompt, a
    /// lock, a download that stalled) would hold the host's apply, its lock
    /// and its batch. None by default, as for `sh -c` itself.
    #[serde(
        default,
        deserialize_with = "crate::playbook::duration",
        serialize_with = "super::reboot::seconds"
    )]
    pub timeout: Option<std::time::Duration>,
    pub when: Option<String>,
    #[serde(default)]
    pub notify: Vec<String>,
    /// `--tags` / `--skip-tags` select resources by these.
    #[serde(default)]
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum ChangedWhen {
    Always(bool),
    Expression(String),
}

impl Command {
    fn guarded(&self) -> bool {
        self.creates.is_some()
            || self.removes.is_some()
            || self.unless.is_some()
            || self.only_if.is_some()
    }

    /// Whether every successful run counts as a change, whatever it prints:
    /// the controller need not read the output to know.
    pub fn changes_when_it_succeeds(&self) -> bool {
        matches!(self.changed_when, None | Some(ChangedWhen::Always(true)))
    }

    /// Whether a successful run changed something, per `changed_when`.
    pub fn changed(&self, rc: i32, output: &str) -> Result<bool, ChangedWhenError> {
        match &self.changed_when {
            None => Ok(true),
            Some(ChangedWhen::Always(b)) => Ok(*b),
            Some(ChangedWhen::Expression(e)) => {
                let env = minijinja::Environment::new();
                let expr = env
                    .compile_expression(e)
                    .map_err(|err| ChangedWhenError::Syntax {
                        expr: e.clone(),
                        reason: err.to_string(),
                    })?;
                expr.eval(minijinja::context! { rc => rc, output => output })
                    .map(|v| v.is_true())
                    .map_err(|err| ChangedWhenError::Eval {
                        expr: e.clone(),
                        reason: err.to_string(),
                    })
            }
        }
    }
}

impl Kind for Command {
    fn label(&self) -> String {
        let first = self.run.lines().next().unwrap_or("");
        let short: String = first.chars().take(60).collect();
        format!(
            "command {short}{}",
            if short.len() < self.run.len() {
                "…"
            } else {
                ""
            }
        )
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
    /// Each guard that skips the command says so; when none does, the
    /// command will run and the host has a change coming (`PARC_PENDING`).
    fn probe(&self, id: &str, s: &mut Script, _ctx: &PlanContext) {
        s.sh(&format!("parc_rec {id}; _cs="));
        if let Some(p) = &self.creates {
            s.sh(&format!(
                "if [ -e {} ]; then echo creates=exists; _cs=1; fi",
                quote(p)
            ));
        }
        if let Some(p) = &self.removes {
            s.sh(&format!(
                "if [ ! -e {} ]; then echo removes=absent; _cs=1; fi",
                quote(p)
            ));
        }
        if let Some(c) = &self.unless {
            s.sh(&format!(
                "if {} </dev/null >/dev/null 2>&1; then echo unless=succeeded; _cs=1; fi",
                sh_hidden("", c)
            ));
        }
        if let Some(c) = &self.only_if {
            s.sh(&format!(
                "if ! {} </dev/null >/dev/null 2>&1; then echo only_if=failed; _cs=1; fi",
                sh_hidden("", c)
            ));
        }
        s.sh("[ -n \"$_cs\" ] || PARC_PENDING=1");
    }
    fn plan(&self, probed: &Record, _ctx: &PlanContext) -> Result<Plan, ResourceError> {
        for (key, value) in [
            ("creates", "exists"),
            ("removes", "absent"),
            ("unless", "succeeded"),
            ("only_if", "failed"),
        ] {
            if probed.get(key) == Some(value) {
                return Ok(Plan::NoChange);
            }
        }
        // One command whose status is the step's: it runs in the apply's
        // shell, without a subshell (`chdir`'s is the command's own process).
        let secs = self.timeout.map(|t| t.as_secs().max(1));
        let timed = secs.map_or(String::new(), |s| format!("timeout {s} "));
        let sh = match &self.chdir {
            Some(dir) => format!(
                "(cd {} && {} </dev/null)",
                quote(dir),
                sh_hidden(&format!("exec {timed}"), &self.run)
            ),
            None => format!("{} </dev/null", sh_hidden(&timed, &self.run)),
        };
        // What `timeout` stopping it looks like is said in its output.
        let sh = match secs {
            Some(s) => format!("{{ {sh}; parc_timed_out {s} $?; }}"),
            None => sh,
        };
        // A command is only reversible as far as it says: its `undo`, and the
        // path it `creates`.
        let mut touches: Vec<Touch> = self.undo.iter().map(|u| Touch::Undo(u.clone())).collect();
        touches.extend(self.creates.iter().map(|p| Touch::Path(p.clone())));
        let change = Change {
            touches,
            what: vec!["run".into()],
            diff: None,
            step: Step::run(sh),
        };
        // Guards that let it through mean it will run and (by convention) change
        // something; without guards, or with changed_when, nobody can know.
        Ok(if self.guarded() && self.changed_when.is_none() {
            Plan::Change(change)
        } else {
            Plan::Unknown(change)
        })
    }
    fn changed_after(&self, rc: i32, output: &str) -> Result<bool, ChangedWhenError> {
        self.changed(rc, output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(yaml: &str) -> Command {
        serde_norway::from_str(yaml).unwrap()
    }

    #[test]
    fn guards_decide_the_plan() {
        let c = cmd("{run: 'make install', creates: /opt/x}");
        let mut r = Record::default();
        assert!(matches!(
            c.plan(&r, &PlanContext::default()).unwrap(),
            Plan::Change(_)
        ));
        r.fields.insert("creates".into(), "exists".into());
        assert!(matches!(
            c.plan(&r, &PlanContext::default()).unwrap(),
            Plan::NoChange
        ));
        let bare = cmd("{run: 'date'}");
        assert!(matches!(
            bare.plan(&Record::default(), &PlanContext::default())
                .unwrap(),
            Plan::Unknown(_)
        ));
    }

    /// The exact step: `timeout` before the command's own shell, and its
    /// status handed to `parc_timed_out`, which says when it stopped it.
    #[test]
    fn a_timeout_runs_the_command_under_timeout() {
        let step = |yaml: &str| match cmd(yaml).plan(&Record::default(), &PlanContext::default()) {
            Ok(Plan::Unknown(c)) => match &c.step.0[..] {
                [super::super::plan::Op::Run(sh)] => sh.clone(),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        };
        assert_eq!(
            step("{run: 'apt-get update', timeout: 90s}"),
            "{ PARC_RUN='apt-get update' timeout 90 sh -c 'parc_run=$PARC_RUN; unset PARC_RUN; \
             eval \"$parc_run\"' </dev/null; parc_timed_out 90 $?; }"
        );
        assert_eq!(
            step("{run: make, chdir: /src, timeout: 2m}"),
            "{ (cd /src && PARC_RUN=make exec timeout 120 sh -c 'parc_run=$PARC_RUN; unset PARC_RUN; \
             eval \"$parc_run\"' </dev/null); parc_timed_out 120 $?; }"
        );
        assert_eq!(
            step("{run: make}"),
            "PARC_RUN=make sh -c 'parc_run=$PARC_RUN; unset PARC_RUN; eval \"$parc_run\"' </dev/null"
        );
        assert!(serde_norway::from_str::<Command>("{run: x, timeout: soon}").is_err());
    }

    #[test]
    fn changed_when() {
        assert!(cmd("{run: x}").changed(0, "").unwrap());
        assert!(!cmd("{run: x, changed_when: false}").changed(0, "").unwrap());
        let e = cmd("{run: x, changed_when: \"'updated' in output\"}");
        assert!(e.changed(0, "1 updated").unwrap());
        assert!(!e.changed(0, "nothing").unwrap());
        assert!(
            cmd("{run: x, changed_when: \"rc ==\"}")
                .changed(0, "")
                .is_err()
        );
    }
}
