//! Run one action on many hosts at once.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tokio::task::JoinSet;

use super::connect::{ConnectOptions, connect};
use crate::events::{Event, Events, HostState, Outcome, Summary};
use crate::inventory::Inventory;
use crate::transport::Transport;
use crate::transport::counting::Counting;

/// What every fleet action needs besides the action itself.
#[derive(Clone)]
pub struct FleetContext {
    pub inventory: Arc<Inventory>,
    pub options: ConnectOptions,
    pub events: Events,
    /// Hosts worked on at once (`--parallel`).
    pub parallel: usize,
}

/// A whole run of one action: `RunStarted`, every host, `RunFinished`.
pub async fn run<F, Fut>(
    ctx: &FleetContext,
    run_id: &str,
    action_name: &str,
    hosts: Vec<String>,
    action: F,
) -> (Vec<(String, Outcome)>, Summary)
where
    F: Fn(String, Arc<dyn Transport>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let started = Instant::now();
    ctx.events.send(Event::RunStarted {
        run_id: run_id.to_string(),
        action: action_name.to_string(),
        hosts: hosts.clone(),
    });
    let results = each(ctx, hosts, ctx.parallel, action).await;
    let summary = summarize(results.iter().map(|(_, o)| Counted::of(o)));
    ctx.events.send(Event::RunFinished {
        run_id: run_id.to_string(),
        summary: summary.clone(),
        elapsed_ms: started.elapsed().as_millis() as u64,
    });
    (results, summary)
}

pub fn summarize(hosts: impl IntoIterator<Item = Counted>) -> Summary {
    let mut summary = Summary::default();
    for Counted { state, invalid } in hosts {
        summary.add(state);
        if invalid {
            summary.invalid_input += 1;
        }
    }
    summary
}

/// What a run's summary counts of a host: all that an apply keeps of it
/// once its `HostFinished` event is out. Holding every host's outcome (its
/// resource reports) to the end of the run cost an apply of `mixed` 33 KiB
/// a host for nothing (heaptrack, 200 hosts 64 at once: 6 MiB).
#[derive(Debug, Clone, Copy)]
pub struct Counted {
    state: HostState,
    invalid: bool,
}

impl Counted {
    pub fn of(o: &Outcome) -> Counted {
        Counted {
            state: o.state(),
            invalid: matches!(o, Outcome::Invalid { .. }),
        }
    }
}

/// Connect to each host (at most `parallel` at once), run `action` on it, and
/// report each host as it finishes. Returns outcomes in the order of `hosts`.
pub async fn each<F, Fut>(
    ctx: &FleetContext,
    hosts: Vec<String>,
    parallel: usize,
    action: F,
) -> Vec<(String, Outcome)>
where
    F: Fn(String, Arc<dyn Transport>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let budget = Arc::new(Budget::unlimited());
    each_within(ctx, hosts, parallel, budget, action, Outcome::clone).await
}

/// A play's failure budget (`max_failures`), shared by its batches: hosts that
/// fail count against it as they finish, and once it is exceeded no further
/// host is started, also within the batch under way.
#[derive(Debug)]
pub struct Budget {
    limit: Option<usize>,
    failures: AtomicUsize,
}

impl Budget {
    pub fn new(limit: Option<usize>) -> Self {
        Budget {
            limit,
            failures: AtomicUsize::new(0),
        }
    }

    fn unlimited() -> Self {
        Self::new(None)
    }

    pub fn failures(&self) -> usize {
        self.failures.load(Ordering::SeqCst)
    }

    /// More hosts failed than the budget allows.
    pub fn exceeded(&self) -> Option<usize> {
        self.limit.filter(|&limit| self.failures() > limit)
    }
}

/// [`each`], starting no host once `budget` is exceeded: those not started
/// are reported skipped. Of each host's outcome, once its event is sent,
/// only what `keep` takes of it is returned.
pub async fn each_within<F, Fut, K>(
    ctx: &FleetContext,
    hosts: Vec<String>,
    parallel: usize,
    budget: Arc<Budget>,
    action: F,
    keep: fn(&Outcome) -> K,
) -> Vec<(String, K)>
where
    F: Fn(String, Arc<dyn Transport>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
    K: Send + 'static,
{
    // A host's task is spawned only when one of the `parallel` slots is free:
    // a spawned task holds its whole future (about 13 KiB for an apply) from
    // the start, so spawning every host up front, each waiting for a permit,
    // cost the controller 6 MiB at 500 hosts before any of them connected.
    let parallel = parallel.max(1);
    let mut set = JoinSet::new();
    let mut results: Vec<(usize, String, K)> = Vec::with_capacity(hosts.len());
    let mut join = |joined: Result<(usize, String, K), tokio::task::JoinError>| match joined {
        Ok(r) => results.push(r),
        // A panicking action is a parc bug; keep the rest of the fleet going.
        Err(e) => tracing::error!("a host task failed: {e}"),
    };
    for (index, name) in hosts.iter().cloned().enumerate() {
        while set.len() >= parallel {
            if let Some(joined) = set.join_next().await {
                join(joined);
            }
        }
        let ctx = ctx.clone();
        let action = action.clone();
        let budget = budget.clone();
        set.spawn(async move {
            let t0 = Instant::now();
            let (outcome, execs) = match budget.exceeded() {
                Some(limit) => {
                    let reason = format!(
                        "not started: {} hosts failed, more than max_failures ({limit})",
                        budget.failures()
                    );
                    (Outcome::Skipped { reason }, 0)
                }
                None => on_host(&ctx, &name, action).await,
            };
            if outcome.state().is_failure() {
                budget.failures.fetch_add(1, Ordering::SeqCst);
            }
            let kept = keep(&outcome);
            ctx.events.send(Event::HostFinished {
                host: name.clone(),
                state: outcome.state(),
                elapsed_ms: t0.elapsed().as_millis() as u64,
                execs,
                outcome,
            });
            (index, name, kept)
        });
    }
    while let Some(joined) = set.join_next().await {
        join(joined);
    }
    results.sort_by_key(|(i, _, _)| *i);
    results.into_iter().map(|(_, n, o)| (n, o)).collect()
}

async fn on_host<F, Fut>(ctx: &FleetContext, name: &str, action: F) -> (Outcome, u32)
where
    F: Fn(String, Arc<dyn Transport>) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let Some(host) = ctx.inventory.host(name) else {
        let error = format!("{name} is not in the inventory");
        return (Outcome::Failed { error }, 0);
    };
    ctx.events.phase(name, "connecting");
    match connect(&ctx.inventory, host, &ctx.options).await {
        Err(e) if e.is_host_key_alarm() => (
            Outcome::Untrusted {
                error: e.to_string(),
            },
            0,
        ),
        Err(e) => (
            Outcome::Unreachable {
                error: e.to_string(),
            },
            0,
        ),
        Ok(transport) => {
            let counted = Arc::new(Counting::new(transport));
            let outcome = action(name.to_string(), counted.clone()).await;
            (outcome, counted.execs())
        }
    }
}
