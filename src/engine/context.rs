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
            test.note_secrets(rendered.shown.as_ref());
            test.name = Some(redactor.redact(&name));
            tests.push(test);
        }
        Ok(tests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test field rendered from a secret is marked so, for the probes
    /// that must keep it off the host's command lines.
    #[test]
    fn tests_note_which_urls_were_rendered_from_secrets() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("p.yml"),
            "secret_vars: [token]\nverify:\n  \
             - http: {url: \"https://intranet/?t={{ token }}\"}\n  \
             - http: {url: \"https://intranet/{{ site }}\"}\n",
        )
        .unwrap();
        let tree = crate::confine::Tree::new(dir.path(), &[]);
        let play = PlayContext {
            profile: crate::profile::load(&tree, "p").unwrap(),
            play_vars: Vars::default(),
            extra_vars: Vars::default(),
            secret_vars: Vec::new(),
        };
        let vars: Vars =
            serde_json::from_value(serde_json::json!({"token": "s3cret", "site": "east"})).unwrap();
        let mut redactor = play.redactor(&vars);
        let tests = play.render_tests(&vars, &mut redactor).unwrap();
        // Only the first keeps its url from busybox's wget, which would
        // take it as an argument.
        let secret: Vec<bool> = tests
            .iter()
            .map(|t| {
                let (_, stdin) = crate::verify::probe_script(std::slice::from_ref(t)).finish();
                String::from_utf8_lossy(&stdin.to_vec()).contains("wget_argv_only")
            })
            .collect();
        assert_eq!(secret, [true, false]);
    }
}
