//! `parc verify`: facts, then every test of every play the host is in, judged
//! from ONE exec (two per host in all, whatever the number of tests).
//!
//! Templates in tests see exactly what `apply` gives resources (profile vars,
//! inventory, play vars, `-e`, facts), so a test can say "the file apply wrote
//! for this host" and verification stays meaningful per host.

use std::sync::Arc;

use minijinja::Value;

use super::apply::host_vars;
use super::error::HostError;
use super::fleet::{self, FleetContext};
use super::gather::facts_of;
use crate::events::{Events, Outcome, Summary};
use crate::inventory::{Inventory, Vars};
use crate::playbook::Play;
use crate::profile::Profile;
use crate::render::{REDACTED, Redactor, RenderError, Renderer};
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

/// Verify `host`; its outcome is redacted as a whole with the host's
/// secrets, as [`crate::engine::apply::apply_host`]'s is.
pub async fn verify_host(
    plays: Arc<Vec<VerifyPlay>>,
    inventory: Arc<Inventory>,
    host: String,
    t: Arc<dyn Transport>,
    events: Events,
) -> Outcome {
    let mut redactor = Redactor::default();
    let mut outcome = verify_host_with(plays, inventory, host, t, events, &mut redactor).await;
    outcome.redact(&redactor);
    outcome
}

/// [`verify_host`], leaving the host's redactor in `redactor`.
async fn verify_host_with(
    plays: Arc<Vec<VerifyPlay>>,
    inventory: Arc<Inventory>,
    host: String,
    t: Arc<dyn Transport>,
    events: Events,
    redactor: &mut Redactor,
) -> Outcome {
    events.phase(&host, "facts");
    let facts = match facts_of(t.as_ref()).await {
        Ok(f) => serde_json::to_value(f).expect("facts serialize"),
        Err(e) => return host_failed(HostError::Facts(e)),
    };
    events.phase(&host, "rendering");
    let mut tests = Vec::new();
    for play in plays.iter().filter(|p| p.hosts.contains(&host)) {
        let vars = host_vars(
            &play.profile,
            &play.play_vars,
            &play.extra_vars,
            &inventory,
            &host,
            &facts,
        );
        let mut play_redactor = Redactor::for_host(
            &vars,
            play.profile.secret_vars.iter().chain(&play.secret_vars),
            &play.extra_vars,
        );
        let rendered = render_tests(&play.profile, &vars, &mut play_redactor);
        *redactor = std::mem::take(redactor).union(play_redactor);
        match rendered {
            Ok(rendered) => tests.extend(rendered),
            Err(e) => {
                return Outcome::Invalid {
                    error: e.to_string(),
                };
            }
        }
    }
    events.phase(&host, "verifying");
    match run_tests(t.as_ref(), &tests, redactor).await {
        Ok(results) => Outcome::Verified { results },
        Err(e) => host_failed(HostError::script(e, "verifying")),
    }
}

/// The outcome of a host whose verification could not run: unreachable when
/// the connection broke, failed otherwise.
fn host_failed(e: HostError) -> Outcome {
    let error = e.to_string();
    if e.is_connection_lost() {
        Outcome::Unreachable { error }
    } else {
        Outcome::Failed { error }
    }
}

/// The play's tests for one host: `when` evaluated, string fields rendered,
/// each named as it may be shown (fields read from secrets hidden); fields
/// read from secrets taint `redactor`.
pub(crate) fn render_tests(
    profile: &Profile,
    vars: &Vars,
    redactor: &mut Redactor,
) -> Result<Vec<Test>, RenderError> {
    let ctx = Value::from_serialize(vars);
    let renderer = Renderer::new(&profile.tree);
    let mut tests = Vec::new();
    for d in &profile.verify {
        if let Some(expr) = &d.test.when {
            let keep = renderer.when(expr, &ctx, &d.origin.locate("when"))?;
            if !keep {
                continue;
            }
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
