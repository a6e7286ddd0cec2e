//! `parc verify`: facts, then every test of every play the host is in, judged
//! from ONE exec (two per host in all, whatever the number of tests).
//!
//! Templates in tests see exactly what `apply` gives resources (profile vars,
//! inventory, play vars, `-e`, facts), so a test can say "the file apply wrote
//! for this host" and verification stays meaningful per host.

use std::sync::Arc;

use minijinja::Value;

use super::apply::host_vars;
use super::events::{Events, Outcome, Summary};
use super::fleet::{self, FleetContext};
use super::gather::facts_of;
use crate::inventory::{Inventory, Vars};
use crate::playbook::Play;
use crate::profile::Profile;
use crate::render::{Redactor, Renderer};
use crate::transport::Transport;
use crate::verify::{Test, run_tests};

/// One play's tests, the variables they are rendered with, and their hosts.
pub struct VerifyPlay {
    pub profile: Profile,
    pub play_vars: Vars,
    pub extra_vars: Vars,
    pub secret_vars: Vec<String>,
    pub hosts: Vec<String>,
}

impl VerifyPlay {
    /// The tests of `play` for `hosts`, with `-e` variables: the same
    /// variables `apply` gives the play's resources.
    pub fn new(play: &Play, hosts: Vec<String>, extra_vars: &Vars) -> VerifyPlay {
        VerifyPlay {
            profile: play.profile.clone(),
            play_vars: play.spec.vars.clone(),
            extra_vars: extra_vars.clone(),
            secret_vars: play.spec.secret_vars.clone(),
            hosts,
        }
    }
}

/// Verify every host of `plays`. A host in several plays is verified once,
/// with the tests of all of them.
pub async fn run(
    ctx: &FleetContext,
    run_id: &str,
    plays: Vec<VerifyPlay>,
) -> (Vec<(String, Outcome)>, Summary) {
    let mut hosts: Vec<String> = Vec::new();
    for h in plays.iter().flat_map(|p| &p.hosts) {
        if !hosts.contains(h) {
            hosts.push(h.clone());
        }
    }
    let plays = Arc::new(plays);
    let (inventory, events) = (ctx.inventory.clone(), ctx.events.clone());
    fleet::run(ctx, run_id, "verify", hosts, move |host, t| {
        verify_host(plays.clone(), inventory.clone(), host, t, events.clone())
    })
    .await
}

pub async fn verify_host(
    plays: Arc<Vec<VerifyPlay>>,
    inventory: Arc<Inventory>,
    host: String,
    t: Arc<dyn Transport>,
    events: Events,
) -> Outcome {
    events.phase(&host, "facts");
    let facts = match facts_of(t.as_ref()).await {
        Ok(f) => serde_json::to_value(f).expect("facts serialize"),
        Err(e) => {
            return Outcome::Failed {
                error: format!("gathering facts: {e}"),
            };
        }
    };
    events.phase(&host, "rendering");
    let mut tests = Vec::new();
    let mut redactor = Redactor::default();
    for play in plays.iter().filter(|p| p.hosts.contains(&host)) {
        let vars = host_vars(
            &play.profile,
            &play.play_vars,
            &play.extra_vars,
            &inventory,
            &host,
            &facts,
        );
        let play_redactor = Redactor::from_vars(
            &vars,
            play.profile.secret_vars.iter().chain(&play.secret_vars),
        );
        match render_tests(&play.profile, &vars) {
            Ok(rendered) => tests.extend(rendered),
            Err(error) => {
                return Outcome::Invalid {
                    error: play_redactor.redact(&error),
                };
            }
        }
        redactor = redactor.union(play_redactor);
    }
    events.phase(&host, "verifying");
    match run_tests(t.as_ref(), &tests, &redactor).await {
        Ok(results) => Outcome::Verified { results },
        Err(e) => Outcome::Failed {
            error: format!("connection lost while verifying: {e}"),
        },
    }
}

/// The play's tests for one host: `when` evaluated, string fields rendered.
pub(crate) fn render_tests(profile: &Profile, vars: &Vars) -> Result<Vec<Test>, String> {
    let ctx = Value::from_serialize(vars);
    let renderer = Renderer::new(&profile.tree);
    let mut tests = Vec::new();
    for d in &profile.verify {
        if let Some(expr) = &d.test.when {
            let keep = renderer
                .when(expr, &ctx, &d.origin.locate("when"))
                .map_err(|e| e.to_string())?;
            if !keep {
                continue;
            }
        }
        tests.push(
            renderer
                .fields(&d.test, &d.origin, &ctx)
                .map_err(|e| e.to_string())?,
        );
    }
    Ok(tests)
}
