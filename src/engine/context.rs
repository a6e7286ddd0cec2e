//! What a play gives each of its hosts: variables, the redactor of their
//! secrets, and the play's tests rendered with them.
//!
//! Apply and verify both start from a [`PlayContext`], so a test run by
//! `parc verify` sees exactly what `apply` gave the play's resources (profile
//! vars, inventory, play vars, `-e`, facts), and secrets are hidden the same
//! way in both.

use minijinja::Value;

use crate::inventory::{Inventory, Vars};
use crate::playbook::Play;
use crate::profile::Profile;
use crate::render::{REDACTED, Redactor, RenderError, Renderer};
use crate::verify::Test;

/// One play's profile and the variables it is rendered with.
pub struct PlayContext {
    pub profile: Profile,
    pub play_vars: Vars,
    pub extra_vars: Vars,
    /// The playbook's `secret_vars` (the profile's own are in `profile`).
    pub secret_vars: Vec<String>,
}

impl PlayContext {
    /// `play` converging `profile` (its own, or its fallback), with `-e`
    /// variables.
    pub fn new(play: &Play, profile: &Profile, extra_vars: &Vars) -> PlayContext {
        PlayContext {
            profile: profile.clone(),
            play_vars: play.spec.vars.clone(),
            extra_vars: extra_vars.clone(),
            secret_vars: play.spec.secret_vars.clone(),
        }
    }

    /// Variables for `host`: profile defaults < inventory (groups, then host)
    /// < play vars < `-e`, plus `facts`, `inventory_hostname` and
    /// `group_names`.
    pub fn vars_for(&self, inventory: &Inventory, host: &str, facts: &serde_json::Value) -> Vars {
        let mut vars = self.profile.vars.clone();
        for layer in [
            inventory.vars_for(host),
            self.play_vars.clone(),
            self.extra_vars.clone(),
        ] {
            vars.extend(layer);
        }
        vars.insert("facts".into(), facts.clone());
        vars.insert("inventory_hostname".into(), host.into());
        let groups: Vec<serde_json::Value> = inventory
            .groups_of(host)
            .into_iter()
            .map(serde_json::Value::from)
            .collect();
        vars.insert("group_names".into(), groups.into());
        vars
    }

    /// The redactor of a host with `vars`: the profile's and the playbook's
    /// secret variables, and secret `-e` values.
    pub fn redactor(&self, vars: &Vars) -> Redactor {
        Redactor::for_host(
            vars,
            self.profile.secret_vars.iter().chain(&self.secret_vars),
            &self.extra_vars,
        )
    }

    /// The profile's tests for one host: `when` evaluated, string fields
    /// rendered, each named as it may be shown (fields read from secrets
    /// hidden); fields read from secrets taint `redactor`.
    pub fn render_tests(
        &self,
        vars: &Vars,
        redactor: &mut Redactor,
    ) -> Result<Vec<Test>, RenderError> {
        let ctx = Value::from_serialize(vars);
        let renderer = Renderer::new(&self.profile.tree);
        let mut tests = Vec::new();
        for d in &self.profile.verify {
            if let Some(expr) = &d.test.when
                && !renderer.when(expr, &ctx, &d.origin.locate("when"))?
            {
                continue;
            }
            let rendered = renderer.fields(&d.test, &d.origin, &ctx, redactor)?;
            let name = match &rendered.shown {
                Some(shown) => shown.label(),
                None => format!("{} {REDACTED}", d.test.spec.kind_name()),
            };
            let mut test = rendered.value;
            test.name = Some(redactor.redact(&name));
            tests.push(test);
        }
        Ok(tests)
    }
}
