//! `parc apply` / `parc plan`: plays, batches (canary first, then waves) and the
//! failure budget that stops a bad rollout before it reaches everyone.

use std::sync::Arc;
use std::time::Instant;

use super::apply::{ApplyJob, apply_host};
use super::context::PlayContext;
use super::fleet::{self, Budget, Counted, FleetContext};
use super::lock::Operator;
use crate::events::{Event, HostState, Outcome, Summary};
use crate::image::deploy::DeployJob;
use crate::image::deploy::helper::Helper;
use crate::inventory::{PatternError, Vars};
use crate::journal;
use crate::playbook::{OnFailure, Playbook, batches};

#[derive(Debug, Clone, Default)]
pub struct RolloutOptions {
    pub check: bool,
    pub diff: bool,
    pub extra_vars: Vars,
    pub break_lock: bool,
}

/// Hosts of each play, resolved before anything connects so a bad pattern fails
/// the run up front; only those in `limit` when given (the hosts `--limit`
/// selected).
pub fn select_hosts(
    ctx: &FleetContext,
    playbook: &Playbook,
    limit: Option<&[String]>,
) -> Result<Vec<Vec<String>>, PatternError> {
    playbook
        .plays
        .iter()
        .map(|play| {
            let hosts = ctx.inventory.select(&play.spec.hosts)?;
            Ok(hosts
                .into_iter()
                .map(|h| h.name.clone())
                .filter(|h| limit.as_ref().is_none_or(|l| l.contains(h)))
                .collect())
        })
        .collect()
}

pub async fn run(
    ctx: &FleetContext,
    run_id: &str,
    playbook: &Playbook,
    play_hosts: Vec<Vec<String>>,
    options: &RolloutOptions,
) -> Summary {
    let started = Instant::now();
    let action = if options.check { "plan" } else { "apply" };
    ctx.events.send(Event::RunStarted {
        run_id: run_id.to_string(),
        action: action.to_string(),
        hosts: play_hosts.iter().flatten().cloned().collect(),
    });
    let operator = Operator::current(run_id);
    let mut all = Vec::new();
    let mut aborted = false;
    for (play, hosts) in playbook.plays.iter().zip(play_hosts) {
        if aborted {
            all.extend(skip(ctx, &hosts, "an earlier play was aborted"));
            continue;
        }
        let waves = batches(&hosts, &play.spec.batches);
        ctx.events.send(Event::PlayStarted {
            play: play.name.clone(),
            hosts: hosts.clone(),
            batches: waves.clone(),
        });
        let keep_journals = play.spec.keep_journals.unwrap_or(journal::DEFAULT_KEEP);
        let fallback = play.fallback.as_ref().map(|profile| {
            Arc::new(ApplyJob {
                play: PlayContext::new(play, profile, &options.extra_vars),
                check: options.check,
                diff: options.diff,
                run_id: format!("{run_id}-fallback"),
                // A failing fallback is undone; there is nothing behind it.
                on_failure: OnFailure::Rollback,
                fallback: None,
                keep_journals,
                operator: operator.clone(),
                break_lock: options.break_lock,
                // The fallback keeps remote access by design; confirming it
                // would only repeat the check that already failed.
                confirm: None,
                connect: ctx.options.clone(),
                image: None,
            })
        });
        let image = play
            .image
            .clone()
            .zip(play.spec.image.as_ref())
            .map(|(source, stage)| {
                Arc::new(DeployJob {
                    source,
                    target: stage.target.clone(),
                    force: stage.force,
                    max_rate: None,
                    helper: Helper::locate().map(Arc::new),
                })
            });
        let job = Arc::new(ApplyJob {
            play: PlayContext::new(play, &play.profile, &options.extra_vars),
            check: options.check,
            diff: options.diff,
            run_id: run_id.to_string(),
            on_failure: play.on_failure(),
            fallback,
            keep_journals,
            operator: operator.clone(),
            break_lock: options.break_lock,
            confirm: play.spec.confirm,
            connect: ctx.options.clone(),
            image,
        });
        let budget = Arc::new(Budget::new(
            play.spec.max_failures.map(|m| m.budget(hosts.len())),
        ));
        let parallel = play.spec.parallel.unwrap_or(ctx.parallel);
        for (index, wave) in waves.iter().enumerate() {
            if let Some(limit) = budget.exceeded() {
                let rest: Vec<String> = waves[index..].iter().flatten().cloned().collect();
                ctx.events.send(Event::PlayAborted {
                    play: play.name.clone(),
                    reason: format!(
                        "{} hosts failed, were rolled back or degraded, or were untrusted or unreachable: more than max_failures ({limit})",
                        budget.failures()
                    ),
                    skipped: rest.clone(),
                });
                all.extend(skip(ctx, &rest, "play aborted: failure budget exceeded"));
                aborted = true;
                break;
            }
            ctx.events.send(Event::BatchStarted {
                play: play.name.clone(),
                index,
                hosts: wave.clone(),
            });
            let (job, inventory, events) = (job.clone(), ctx.inventory.clone(), ctx.events.clone());
            let results = fleet::each_within(
                ctx,
                wave.clone(),
                parallel,
                budget.clone(),
                move |host, t| apply_host(job.clone(), inventory.clone(), host, t, events.clone()),
                Counted::of,
            )
            .await;
            all.extend(results.into_iter().map(|(_, counted)| counted));
        }
    }
    let summary = fleet::summarize(all);
    ctx.events.send(Event::RunFinished {
        run_id: run_id.to_string(),
        summary: summary.clone(),
        elapsed_ms: started.elapsed().as_millis() as u64,
    });
    summary
}

/// Report hosts that will not be attempted, so every host appears in the recap.
fn skip(ctx: &FleetContext, hosts: &[String], reason: &str) -> Vec<Counted> {
    hosts
        .iter()
        .map(|h| {
            let outcome = Outcome::Skipped {
                reason: reason.to_string(),
            };
            let counted = Counted::of(&outcome);
            ctx.events.send(Event::HostFinished {
                host: h.clone(),
                state: HostState::Skipped,
                elapsed_ms: 0,
                execs: 0,
                outcome,
            });
            counted
        })
        .collect()
}
