//! One converge of one host: facts, render, ONE probe exec (which also reads
//! the verification tests when no probe finds a change coming), local plan,
//! then, when there are changes, ONE apply exec (journal first, then the
//! handlers its changes notify and the tests, when the controller can tell
//! before it runs that nothing else runs after it), else at most one more
//! exec for the handlers and one for the tests.

use std::collections::BTreeSet;

use minijinja::Value;

use super::job::ApplyJob;
use super::reboot::{self, Rebooted, Reconnected};
use super::steps::{
    Around, Item, Steps, Written, decide, render_all, run_script, run_steps, steps_script,
};
use crate::engine::error::HostError;
use crate::engine::gather::{GatherError, facts_of};
use crate::events::{Events, ResourceReport, ResourceStatus};
use crate::facts::Facts;
use crate::inventory::{Inventory, Vars};
use crate::journal;
use crate::render::{Redactor, RenderError, Renderer};
use crate::resources::script::{Record, Script, Within};
use crate::resources::{Op, Plan, PlanContext, Reboot, Resource, Touch};
use crate::transport::Transport;
use crate::verify::{self, Test, TestResult, run_tests};

/// What a converge did.
pub struct Converged {
    pub resources: Vec<ResourceReport>,
    /// The first error, if the host failed. [`HostError::Render`] means the
    /// input is at fault and nothing was sent to the host.
    pub error: Option<HostError>,
    /// A journal was written: there is something to roll back.
    pub journaled: bool,
    /// The apply failed before its first change (its journal never
    /// completed): a restore only cleans up after it.
    pub unchanged: bool,
    /// The journal was already restored (by the host's dead-man watchdog).
    pub restored: bool,
    /// Results of the profile's verification tests (run when the apply worked).
    pub verification: Vec<TestResult>,
    /// The host's secrets, as tainted by rendering its resources and tests:
    /// what the host's outcome is redacted with.
    pub redactor: Redactor,
    /// The host rebooted: the connection and lock to go on with.
    pub reconnected: Option<Reconnected>,
    /// The host rebooted and parc cannot reach it any more: nothing else
    /// (rollback, fallback) can be tried.
    pub cut_off: bool,
}

impl Converged {
    /// A template or field that does not render for this host: nothing was
    /// sent to it.
    fn invalid(error: RenderError) -> Self {
        Converged::failed(HostError::Render(error), vec![], false)
    }

    fn failed(error: HostError, resources: Vec<ResourceReport>, journaled: bool) -> Self {
        Converged {
            error: Some(error),
            ..Converged::ok(resources, journaled)
        }
    }

    /// No error (yet): what the converge goes on from.
    fn ok(resources: Vec<ResourceReport>, journaled: bool) -> Self {
        Converged {
            resources,
            error: None,
            journaled,
            unchanged: false,
            restored: false,
            verification: vec![],
            redactor: Redactor::default(),
            reconnected: None,
            cut_off: false,
        }
    }
}

/// `facts`: already gathered (with the lock), or `None` to gather them here.
pub async fn converge(
    job: &ApplyJob,
    inventory: &Inventory,
    host: &str,
    t: &dyn Transport,
    events: &Events,
    facts: Option<Result<Facts, GatherError>>,
) -> Converged {
    events.phase(host, "facts");
    let facts = match facts {
        Some(f) => f,
        None => facts_of(t, job.connect.read_timeout).await,
    };
    let facts = match facts {
        Ok(f) => serde_json::to_value(f).expect("facts serialize"),
        Err(e) => return Converged::failed(HostError::Facts(e), vec![], false),
    };
    let vars = job.play.vars_for(inventory, host, &facts);
    let mut redactor = job.play.redactor(&vars);
    let mut done = converge_vars(job, inventory, host, t, events, &vars, &mut redactor).await;
    done.redactor = redactor;
    done
}

/// The profile's resources and handlers rendered for one host. The renderer
/// (every template compiled) is dropped here, before the host's first exec:
/// rendering runs on a worker thread without waiting, so only as many hosts
/// as there are workers hold one at once, rather than every host of the run.
#[allow(clippy::type_complexity)]
fn render_profile(
    job: &ApplyJob,
    vars: &Vars,
    redactor: &mut Redactor,
) -> Result<(Vec<Item>, Vec<(String, Item)>), RenderError> {
    let ctx = Value::from_serialize(vars);
    let renderer = Renderer::new(&job.play.profile.tree);
    let items = render_all(&renderer, &job.play.profile.resources, &ctx, redactor)?;
    let mut handlers: Vec<(String, Item)> = Vec::new();
    for (name, d) in &job.play.profile.handlers {
        let mut v = render_all(&renderer, std::slice::from_ref(d), &ctx, redactor)?;
        handlers.push((name.clone(), v.remove(0)));
    }
    Ok((items, handlers))
}

/// [`converge`] once the host's variables are known; rendering taints
/// `redactor`.
async fn converge_vars(
    job: &ApplyJob,
    inventory: &Inventory,
    host: &str,
    t: &dyn Transport,
    events: &Events,
    vars: &Vars,
    redactor: &mut Redactor,
) -> Converged {
    events.phase(host, "rendering");
    let (mut items, mut handlers) = match render_profile(job, vars, redactor) {
        Ok(rendered) => rendered,
        Err(e) => return Converged::invalid(e),
    };

    // The verification tests, rendered once for wherever they run: the probe
    // exec, the apply exec or their own. Not when planning: a plan runs no
    // test command. Tests that do not render run nowhere; `verified` reports
    // why.
    let tests = match job.check || job.play.profile.verify.is_empty() {
        true => Ok(Vec::new()),
        false => job.play.render_tests(vars, redactor),
    };
    let ready: &[Test] = tests.as_deref().unwrap_or_default();
    // ONE exec: the state of every resource and handler, and the tests'
    // when nothing is missing (see `verify::probe_if_converged`).
    events.phase(host, "probing");
    let plan_ctx = PlanContext { diff: job.diff };
    let script = probe_script(&items, &handlers, &plan_ctx, ready);
    let within = verify::time_for(job.connect.read_timeout, ready);
    let probe = match script.assemble().run_read_only(t, within).await {
        Ok(out) if out.status.success() => out,
        Ok(out) => {
            return Converged::failed(
                HostError::ProbeFailed {
                    status: out.status,
                    stderr: out.stderr.trim().to_string(),
                },
                vec![],
                false,
            );
        }
        Err(e) => {
            return Converged::failed(HostError::script(e, "probing"), vec![], false);
        }
    };

    let probed = &probe.records;
    let empty = Record::default();
    let mut first_error = None;
    let mut written = Written::new(&items);
    for (i, item) in items.iter_mut().enumerate() {
        if item.report.status == ResourceStatus::Skipped {
            continue;
        }
        let probed = probed.get(&i.to_string()).unwrap_or(&empty);
        let record = written.view(item, probed);
        decide(item, record, &plan_ctx, job.check, &mut first_error);
        written.note(item, probed);
    }
    for (i, (_, item)) in handlers.iter_mut().enumerate() {
        let record = probed.get(&format!("h{i}")).unwrap_or(&empty);
        decide(item, record, &plan_ctx, true, &mut None);
    }
    if job.check || first_error.is_some() {
        if !job.check {
            // Nothing is applied when planning failed: say so for every change.
            for item in items.iter_mut().filter(|i| i.plan.is_some()) {
                item.report.status = ResourceStatus::NotRun;
            }
        }
        let resources = items.into_iter().map(|i| i.report).collect();
        return Converged {
            error: first_error,
            ..Converged::ok(resources, false)
        };
    }

    // ONE exec: the journal, then every change in declaration order, stopping
    // at the first failure. Reboots come after it (see `reboot.rs`).
    let (pending, reboots): (Vec<usize>, Vec<usize>) = (0..items.len())
        .filter(|&i| items[i].plan.is_some())
        .partition(|&i| !is_reboot(&items[i]));
    for &i in &reboots {
        items[i].report.status = ResourceStatus::NotRun;
    }
    let journaled = !pending.is_empty();
    if !journaled && reboots.is_empty() {
        let resources = items.into_iter().map(|i| i.report).collect();
        // Read by the probe exec when it found nothing missing.
        let tests = if probed.contains_key(&format!("{VERIFY}0")) {
            Tests::Judged(verify::judge(ready, VERIFY, &probe, redactor))
        } else {
            Tests::ToRun(tests)
        };
        return verified(job, t, events, host, redactor, resources, false, tests).await;
    }
    let mut hitems: Vec<Item> = Vec::with_capacity(handlers.len());
    let mut names: Vec<String> = Vec::with_capacity(handlers.len());
    for (name, mut item) in handlers {
        item.report.resource = format!("handler `{name}`: {}", item.label);
        names.push(name);
        hitems.push(item);
    }
    // Handlers that run at the end of the apply exec rather than in one of
    // their own (see `in_apply`).
    let inline = if journaled {
        in_apply(&items, &pending, &names, &hitems)
    } else {
        Some(Vec::new())
    };
    // When nothing can run after the apply exec (no handler exec, no
    // reboot), the verification tests run at its end: a first run costs
    // the host one exec (a shell and its reader of stdin) less. Not under a
    // dead-man switch: its watchdog stops the apply exec's processes when
    // the window ends, and a test it cut short would read as a failed test
    // rather than as the expired window.
    let inline_tests: &[Test] = match inline {
        Some(_) if journaled && reboots.is_empty() && job.confirm.is_none() => ready,
        _ => &[],
    };
    let inline = inline.unwrap_or_default();
    let mut judged = None;
    if journaled {
        events.phase(host, "applying");
        let journal = Journal {
            run_id: &job.run_id,
            keep: job.keep_journals,
            confirm: job.confirm,
        };
        let script = apply_script(&journal, &items, &pending, &hitems, &inline, inline_tests);
        let first_test = format!("@@r {VERIFY}0");
        let applied = run_script(
            t,
            script,
            &mut [
                Steps {
                    items: &mut items,
                    which: &pending,
                    prefix: "",
                },
                Steps {
                    items: &mut hitems,
                    which: &inline,
                    prefix: "h",
                },
            ],
            redactor,
            Some(journal::COMPLETE_RECORD),
            // The tests come after every change: their clock starts with
            // the first one's record.
            verify::time_for(job.connect.read_timeout, inline_tests)
                .filter(|_| !inline_tests.is_empty())
                .map(|limit| Within {
                    limit,
                    from: Some(&first_test),
                }),
        )
        .await;
        let out = match applied {
            Ok(out) => out,
            Err(e) => {
                // Every change succeeded: a handler failed, reported as one
                // that ran in its own exec would be.
                let handler_failed = pending.iter().all(|&i| {
                    matches!(
                        items[i].report.status,
                        ResourceStatus::Changed | ResourceStatus::NoChange
                    )
                });
                let mut resources: Vec<ResourceReport> =
                    items.into_iter().map(|i| i.report).collect();
                if handler_failed {
                    resources.extend(inline.iter().map(|&i| hitems[i].report.clone()));
                }
                let mut done = Converged::failed(e.error, resources, true);
                // A failed handler came after every change: the host changed.
                done.unchanged = !handler_failed && !e.maybe_changed;
                return done;
            }
        };
        if !inline_tests.is_empty() {
            judged = Some(verify::judge(inline_tests, VERIFY, &out, redactor));
        }
    }

    // Handlers notified by changed resources: at most one more exec. What they
    // run is also recorded in the journal, to re-run after a restore. Reboot
    // handlers come after it, with the reboot resources.
    let notified: BTreeSet<&str> = items
        .iter()
        .filter(|i| i.report.status == ResourceStatus::Changed)
        .flat_map(|i| i.notify.iter().map(String::as_str))
        .collect();
    let (wanted, hreboots): (Vec<usize>, Vec<usize>) = (0..hitems.len())
        .filter(|&i| notified.contains(names[i].as_str()) && hitems[i].plan.is_some())
        .partition(|&i| !is_reboot(&hitems[i]));
    // A notified handler that cannot run on this host (its plan failed, such
    // as a `service` or `reboot` without systemd) fails the host: skipping it
    // would report a change whose consequence never happened.
    let refused: Vec<usize> = (0..hitems.len())
        .filter(|&i| {
            notified.contains(names[i].as_str())
                && hitems[i].report.status == ResourceStatus::Failed
        })
        .collect();
    let mut error = refused.first().map(|&i| HostError::HandlerCannotRun {
        handler: names[i].clone(),
        why: (hitems[i].report.error.as_deref())
            .unwrap_or("its plan failed")
            .to_string(),
    });
    // Those the apply exec ran are done.
    let own_exec: Vec<usize> = (wanted.iter().copied())
        .filter(|i| !inline.contains(i))
        .collect();
    if error.is_none() && !own_exec.is_empty() {
        events.phase(host, "handlers");
        let mut script = Script::new();
        journal::post_restore(
            &mut script,
            &job.run_id,
            &handler_commands(&hitems, &own_exec),
        );
        if let Err(e) = run_steps(
            t,
            &mut hitems,
            &own_exec,
            "h",
            redactor,
            script,
            Around {
                trailer: &[],
                first_change: None,
            },
        )
        .await
        {
            error = Some(e.error);
        }
    }
    for &i in &hreboots {
        hitems[i].report.status = ResourceStatus::NotRun;
    }
    if !refused.is_empty() {
        for &i in &wanted {
            hitems[i].report.status = ResourceStatus::NotRun;
        }
    }
    let mut rebooted = None;
    if error.is_none() && !(reboots.is_empty() && hreboots.is_empty()) {
        let timeout = (reboots.iter().map(|&i| &items[i]))
            .chain(hreboots.iter().map(|&i| &hitems[i]))
            .filter_map(|item| match &item.resource {
                Resource::Reboot(r) => Some(r.timeout()),
                _ => None,
            })
            .max()
            .unwrap_or(Reboot::DEFAULT_TIMEOUT);
        let done = reboot::reboot(job, inventory, host, t, events, timeout, journaled).await;
        for &i in &reboots {
            note_reboot(&mut items[i].report, &done);
        }
        for &i in &hreboots {
            note_reboot(&mut hitems[i].report, &done);
        }
        rebooted = Some(done);
    }
    let mut resources: Vec<ResourceReport> = items.into_iter().map(|i| i.report).collect();
    resources.extend(
        (wanted.iter().chain(&hreboots).chain(&refused)).map(|&i| hitems[i].report.clone()),
    );
    if let Some(error) = error {
        return Converged::failed(error, resources, true);
    }
    let tests = match judged {
        Some(results) => Tests::Judged(results),
        None => Tests::ToRun(tests),
    };
    match rebooted {
        None => verified(job, t, events, host, redactor, resources, journaled, tests).await,
        Some(Rebooted::Back { reconnected, .. }) => {
            let t = reconnected.transport.clone();
            let mut done = verified(
                job,
                t.as_ref(),
                events,
                host,
                redactor,
                resources,
                journaled,
                tests,
            )
            .await;
            done.reconnected = Some(reconnected);
            done
        }
        Some(Rebooted::Failed { error, reconnected }) => Converged {
            cut_off: error.cut_off(),
            reconnected,
            ..Converged::failed(HostError::Reboot(error), resources, journaled)
        },
    }
}

/// How the apply exec keeps its journal.
pub(super) struct Journal<'a> {
    pub run_id: &'a str,
    pub keep: usize,
    pub confirm: Option<std::time::Duration>,
}

/// The record prefix of the verification tests a probe or apply exec reads.
const VERIFY: &str = "v";

/// The apply exec's script: the journal of what `pending` items touch,
/// their steps, then the steps of the `inline` handlers (see `in_apply`),
/// recorded first to re-run after a restore, then the probes of `tests`
/// (records `v0`, `v1`...), reached only when every step succeeded.
pub(super) fn apply_script(
    journal: &Journal<'_>,
    items: &[Item],
    pending: &[usize],
    hitems: &[Item],
    inline: &[usize],
    tests: &[Test],
) -> Script {
    let mut script = Script::new();
    journal::begin(
        &mut script,
        journal.run_id,
        &touches(items, pending),
        journal.keep,
        journal.confirm,
    );
    let mut script = steps_script(
        items,
        pending,
        "",
        script,
        &[journal::finish_line().to_string()],
    );
    if !inline.is_empty() {
        journal::post_restore_in_apply(
            &mut script,
            journal.run_id,
            &handler_commands(hitems, inline),
        );
        script = steps_script(hitems, inline, "h", script, &[]);
    }
    if !tests.is_empty() {
        verify::probe_into(tests, VERIFY, &mut script);
    }
    script
}

/// The handlers (indices into `hitems`, named `names`) the apply exec of
/// `pending` runs at its end, after every change succeeded: those the
/// changes notify, when the controller knows before the run that each
/// change that succeeds is reported changed (no `changed_when` to read
/// from its output) and every notified handler can run, and none is a
/// `reboot` (its own step, see `reboot.rs`). This saves the handlers' exec
/// (a shell and its reader of stdin) on a first run. Otherwise, `None`:
/// they run in an exec of their own once the controller has read the apply.
/// `Some` says no handler runs after the apply exec.
fn in_apply(
    items: &[Item],
    pending: &[usize],
    names: &[String],
    hitems: &[Item],
) -> Option<Vec<usize>> {
    let notified: BTreeSet<&str> = (pending.iter())
        .flat_map(|&i| items[i].notify.iter().map(String::as_str))
        .collect();
    if notified.is_empty() {
        return Some(Vec::new());
    }
    let decided = pending.iter().all(|&i| match &items[i].resource {
        Resource::Command(c) => c.changes_when_it_succeeds(),
        _ => true,
    });
    if !decided {
        return None;
    }
    let notified: Vec<usize> = (0..hitems.len())
        .filter(|&i| notified.contains(names[i].as_str()))
        .collect();
    let runnable = notified
        .iter()
        .all(|&i| hitems[i].report.status != ResourceStatus::Failed && !is_reboot(&hitems[i]));
    if !runnable {
        return None;
    }
    Some(
        (notified.into_iter())
            .filter(|&i| hitems[i].plan.is_some())
            .collect(),
    )
}

fn is_reboot(item: &Item) -> bool {
    matches!(item.resource, Resource::Reboot(_))
}

/// A `reboot`'s line in the host's report: how long the host took, or why
/// it did not come back into the run.
fn note_reboot(report: &mut ResourceReport, done: &Rebooted) {
    match done {
        Rebooted::Back { took, .. } => {
            report.status = ResourceStatus::Changed;
            report.rebooted_ms = Some(took.as_millis() as u64);
            report.output = Some(format!(
                "went down and answered again from a new boot after {:.1}s",
                took.as_secs_f64()
            ));
        }
        Rebooted::Failed { error, .. } => {
            report.status = ResourceStatus::Failed;
            report.error = Some(error.to_string());
        }
    }
}

/// The one probe script: the state of every resource not skipped, as
/// record `i` for `items[i]`, of every handler, as record `hI`, and of
/// `tests` (`vI`) when nothing was found missing.
pub(super) fn probe_script(
    items: &[Item],
    handlers: &[(String, Item)],
    ctx: &PlanContext,
    tests: &[Test],
) -> Script {
    let mut probe = Script::new();
    for (i, item) in items.iter().enumerate() {
        if item.report.status != ResourceStatus::Skipped {
            item.resource.kind().probe(&i.to_string(), &mut probe, ctx);
        }
    }
    if !tests.is_empty() {
        // Whether the resources have a change coming: the handlers' probes
        // (commands that run only when notified) do not count.
        probe.sh("PARC_RESOURCES_PENDING=${PARC_PENDING:-}");
    }
    for (i, (_, item)) in handlers.iter().enumerate() {
        item.resource
            .kind()
            .probe(&format!("h{i}"), &mut probe, ctx);
    }
    if !tests.is_empty() {
        verify::probe_if_converged(tests, VERIFY, &mut probe);
    }
    probe
}

/// A host's verification tests on their way to a verdict, rendered once
/// before its probe for whichever exec reads them.
enum Tests {
    /// Read by an exec that did other work too (the probe's, the apply's).
    Judged(Vec<TestResult>),
    /// To read in an exec of their own, or why they did not render.
    ToRun(Result<Vec<Test>, RenderError>),
}

/// The verdict of the profile's verification tests, read in ONE exec of
/// their own unless another exec read them; failed tests fail the host.
#[allow(clippy::too_many_arguments)]
async fn verified(
    job: &ApplyJob,
    t: &dyn Transport,
    events: &Events,
    host: &str,
    redactor: &mut Redactor,
    resources: Vec<ResourceReport>,
    journaled: bool,
    tests: Tests,
) -> Converged {
    let mut done = Converged {
        error: None,
        ..Converged::ok(resources, journaled)
    };
    if job.play.profile.verify.is_empty() {
        return done;
    }
    events.phase(host, "verifying");
    let results = match tests {
        Tests::Judged(results) => Ok(results),
        Tests::ToRun(Ok(tests)) => run_tests(t, &tests, redactor, job.connect.read_timeout).await,
        Tests::ToRun(Err(e)) => {
            done.error = Some(HostError::TestsRender(e));
            return done;
        }
    };
    match results {
        Ok(results) => {
            let failed: Vec<String> = results
                .iter()
                .filter(|r| !r.passed)
                .map(|r| {
                    let checks: Vec<String> = r
                        .checks
                        .iter()
                        .filter(|c| !c.passed)
                        .map(|c| format!("{}: expected {}, got {}", c.what, c.expected, c.actual))
                        .collect();
                    format!("{} ({})", r.name, checks.join("; "))
                })
                .collect();
            if !failed.is_empty() {
                done.error = Some(HostError::Verification(failed));
            }
            done.verification = results;
        }
        Err(e) => done.error = Some(HostError::script(e, "verifying")),
    }
    done
}

/// Everything the pending changes alter, each path once, in order, with the
/// step (item index) that alters it.
pub(super) fn touches(items: &[Item], pending: &[usize]) -> Vec<(usize, Touch)> {
    let mut out: Vec<(usize, Touch)> = Vec::new();
    for &i in pending {
        let Some(Plan::Change(c) | Plan::Unknown(c)) = &items[i].plan else {
            continue;
        };
        for t in &c.touches {
            let dup = t
                .path()
                .and_then(|p| out.iter().position(|(_, o)| o.path() == Some(p)));
            match dup {
                // A full save beats an attributes-only one for the same path.
                Some(k) if out[k].1.attrs_only() && !t.attrs_only() => out[k] = (i, t.clone()),
                Some(_) => {}
                None => out.push((i, t.clone())),
            }
        }
    }
    out
}

/// The sh lines to run after a restore for the handlers that will run: a
/// handler's `undo:` when it declares one (`update-ca-certificates --fresh`
/// forgets what the restored files no longer list), else the handler itself
/// again, so services reload the restored configuration.
pub(super) fn handler_commands(items: &[Item], wanted: &[usize]) -> Vec<String> {
    wanted
        .iter()
        .filter_map(|&i| match &items[i].plan {
            Some(Plan::Change(c) | Plan::Unknown(c)) => Some(c),
            _ => None,
        })
        .flat_map(|change| {
            let undo: Vec<String> = change
                .touches
                .iter()
                .filter_map(|t| match t {
                    Touch::Undo(sh) => Some(sh.clone()),
                    Touch::Path(_) | Touch::Attrs(_) | Touch::User { .. } => None,
                })
                .collect();
            if !undo.is_empty() {
                return undo;
            }
            change
                .step
                .0
                .iter()
                .filter_map(|op| match op {
                    Op::Sh(s) | Op::Run(s) => Some(s.clone()),
                    Op::Batch(b) => Some(b.alone()),
                    Op::Put { .. }
                    | Op::Link { .. }
                    | Op::Mkdir { .. }
                    | Op::NeedParent(_)
                    | Op::AsUser { .. }
                    | Op::ChownIn { .. } => None,
                })
                .collect()
        })
        .collect()
}
