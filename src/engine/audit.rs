//! `parc verify` on the fleet, an audit of hosts against their plays' tests
//! (`crate::verify` holds the test kinds): facts, then every test of every
//! play the host is in, judged from ONE exec (two per host in all, whatever
//! the number of tests).
//!
//! Templates in tests see exactly what `apply` gives resources (profile vars,
//! inventory, play vars, `-e`, facts), so a test can say "the file apply wrote
//! for this host" and verification stays meaningful per host.

use std::sync::Arc;

use super::context::PlayContext;
use super::error::HostError;
use super::fleet::{self, FleetContext};
use super::gather::facts_of;
use crate::events::{Events, Outcome, Summary};
use crate::inventory::{Inventory, Vars};
use crate::playbook::Play;
use crate::render::Redactor;
use crate::transport::Transport;
use crate::verify::run_tests;

/// One play's tests, the variables they are rendered with, and their hosts.
pub struct VerifyPlay {
    /// The same context `apply` renders the play's resources with.
    pub play: PlayContext,
    pub hosts: Vec<String>,
}

impl VerifyPlay {
    /// The tests of `play` for `hosts`, with `-e` variables: the same
    /// variables `apply` gives the play's resources.
    pub fn new(play: &Play, hosts: Vec<String>, extra_vars: &Vars) -> VerifyPlay {
        VerifyPlay {
            play: PlayContext::new(play, &play.profile, extra_vars),
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
    let within = ctx.options.read_timeout;
    fleet::run(ctx, run_id, "verify", hosts, move |host, t| {
        verify_host(
            plays.clone(),
            inventory.clone(),
            host,
            t,
            events.clone(),
            within,
        )
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
    read_timeout: Option<std::time::Duration>,
) -> Outcome {
    let mut redactor = Redactor::default();
    let mut outcome = verify_host_with(
        plays,
        inventory,
        host,
        t,
        events,
        read_timeout,
        &mut redactor,
    )
    .await;
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
    read_timeout: Option<std::time::Duration>,
    redactor: &mut Redactor,
) -> Outcome {
    events.phase(&host, "facts");
    let facts = match facts_of(t.as_ref(), read_timeout).await {
        Ok(f) => serde_json::to_value(f).expect("facts serialize"),
        Err(e) => return host_failed(HostError::Facts(e)),
    };
    events.phase(&host, "rendering");
    let mut tests = Vec::new();
    for play in plays.iter().filter(|p| p.hosts.contains(&host)) {
        let vars = play.play.vars_for(&inventory, &host, &facts);
        let mut play_redactor = play.play.redactor(&vars);
        let rendered = play.play.render_tests(&vars, &mut play_redactor);
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
    match run_tests(t.as_ref(), &tests, redactor, read_timeout).await {
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
