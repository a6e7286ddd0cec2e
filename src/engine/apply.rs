//! Converging one host: facts, render, ONE probe exec, local plan, ONE apply
//! exec, and at most one more exec for notified handlers.
//!
//! The state machine is linear and each phase is announced as an event; a
//! failure at any phase ends the host with the first error (already redacted).

use std::collections::BTreeSet;
use std::sync::Arc;

use minijinja::Value;

use super::events::{Events, Outcome, ResourceReport, ResourceStatus};
use super::gather::facts_of;
use crate::inventory::{Inventory, Vars};
use crate::profile::{Declared, Profile};
use crate::render::{Redactor, Renderer};
use crate::resources::script::{Record, Script};
use crate::resources::{Plan, PlanContext, Resource};
use crate::transport::Transport;

/// Everything one play needs to converge any of its hosts.
pub struct ApplyJob {
    pub profile: Profile,
    pub play_vars: Vars,
    pub extra_vars: Vars,
    pub secret_vars: Vec<String>,
    /// `parc plan`: stop after planning.
    pub check: bool,
    pub diff: bool,
}

/// A resource of this host after rendering, with its decision.
struct Item {
    label: String,
    resource: Resource,
    notify: Vec<String>,
    plan: Option<Plan>,
    report: ResourceReport,
}

impl ApplyJob {
    /// Variables for `host`: profile defaults < inventory (groups, then host) <
    /// play vars < `-e`, plus `facts`, `inventory_hostname` and `group_names`.
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

    fn redactor(&self, vars: &Vars) -> Redactor {
        Redactor::from_vars(
            vars,
            self.profile.secret_vars.iter().chain(&self.secret_vars),
        )
    }
}

pub async fn apply_host(
    job: Arc<ApplyJob>,
    inventory: Arc<Inventory>,
    host: String,
    t: Arc<dyn Transport>,
    events: Events,
) -> Outcome {
    let failed = |error: String, resources: Vec<ResourceReport>| Outcome::Applied {
        check: job.check,
        resources,
        error: Some(error),
    };
    events.phase(&host, "facts");
    let facts = match facts_of(t.as_ref()).await {
        Ok(f) => serde_json::to_value(f).expect("facts serialize"),
        Err(e) => return failed(format!("gathering facts: {e}"), vec![]),
    };
    let vars = job.vars_for(&inventory, &host, &facts);
    let redactor = job.redactor(&vars);
    let ctx = Value::from_serialize(&vars);
    let renderer = Renderer::new(&job.profile.dir);

    events.phase(&host, "rendering");
    let mut items = match render_all(&renderer, &job.profile.resources, &ctx) {
        Ok(items) => items,
        Err(e) => return failed(redactor.redact(&e), vec![]),
    };
    let handlers: Vec<(String, Item)> = match job
        .profile
        .handlers
        .iter()
        .map(|(name, d)| {
            render_all(&renderer, std::slice::from_ref(d), &ctx)
                .map(|mut v| (name.clone(), v.remove(0)))
        })
        .collect::<Result<_, _>>()
    {
        Ok(h) => h,
        Err(e) => return failed(redactor.redact(&e), vec![]),
    };

    // ONE exec: the state of every resource and handler.
    events.phase(&host, "probing");
    let plan_ctx = PlanContext { diff: job.diff };
    let mut probe = Script::new();
    for (i, item) in items.iter().enumerate() {
        if item.report.status != ResourceStatus::Skipped {
            item.resource
                .kind()
                .probe(&i.to_string(), &mut probe, &plan_ctx);
        }
    }
    for (i, (_, item)) in handlers.iter().enumerate() {
        item.resource
            .kind()
            .probe(&format!("h{i}"), &mut probe, &plan_ctx);
    }
    let probed = match probe.run(t.as_ref()).await {
        Ok(out) if out.status.success() => out.records,
        Ok(out) => {
            return failed(
                format!(
                    "the probe script failed ({}): {}",
                    out.status,
                    redactor.redact(out.stderr.trim())
                ),
                vec![],
            );
        }
        Err(e) => return failed(format!("connection lost while probing: {e}"), vec![]),
    };

    let empty = Record::default();
    let mut first_error = None;
    for (i, item) in items.iter_mut().enumerate() {
        if item.report.status == ResourceStatus::Skipped {
            continue;
        }
        let record = probed.get(&i.to_string()).unwrap_or(&empty);
        decide(
            item,
            record,
            &plan_ctx,
            job.check,
            &redactor,
            &mut first_error,
        );
    }
    let mut handler_items: Vec<(String, Item)> = handlers;
    for (i, (_, item)) in handler_items.iter_mut().enumerate() {
        let record = probed.get(&format!("h{i}")).unwrap_or(&empty);
        let mut ignored = None;
        decide(item, record, &plan_ctx, true, &redactor, &mut ignored);
    }
    if job.check || first_error.is_some() {
        let resources = items.into_iter().map(|i| i.report).collect();
        return match first_error {
            Some(e) => failed(e, resources),
            None => Outcome::Applied {
                check: true,
                resources,
                error: None,
            },
        };
    }

    // ONE exec: every change, in declaration order, stopping at the first failure.
    let pending: Vec<usize> = (0..items.len())
        .filter(|&i| items[i].plan.is_some())
        .collect();
    if !pending.is_empty() {
        events.phase(&host, "applying");
        if let Err(e) = run_steps(t.as_ref(), &mut items, &pending, "", &redactor).await {
            let resources = items.into_iter().map(|i| i.report).collect();
            return failed(e, resources);
        }
    }

    // Handlers notified by changed resources: at most one more exec.
    let notified: BTreeSet<&str> = items
        .iter()
        .filter(|i| i.report.status == ResourceStatus::Changed)
        .flat_map(|i| i.notify.iter().map(String::as_str))
        .collect();
    let mut handler_error = None;
    let wanted: Vec<usize> = handler_items
        .iter()
        .enumerate()
        .filter(|(_, (name, item))| notified.contains(name.as_str()) && item.plan.is_some())
        .map(|(i, _)| i)
        .collect();
    let mut handler_reports = Vec::new();
    if !wanted.is_empty() {
        events.phase(&host, "handlers");
        let mut hitems: Vec<Item> = handler_items
            .into_iter()
            .map(|(name, mut item)| {
                item.report.resource = format!("handler `{name}`: {}", item.label);
                item
            })
            .collect();
        if let Err(e) = run_steps(t.as_ref(), &mut hitems, &wanted, "h", &redactor).await {
            handler_error = Some(e);
        }
        handler_reports = wanted
            .into_iter()
            .map(|i| hitems[i].report.clone())
            .collect();
    }
    let mut resources: Vec<ResourceReport> = items.into_iter().map(|i| i.report).collect();
    resources.extend(handler_reports);
    Outcome::Applied {
        check: false,
        resources,
        error: handler_error,
    }
}

/// Render every declared resource, evaluating `when:` first.
fn render_all(
    renderer: &Renderer,
    declared: &[Declared],
    ctx: &Value,
) -> Result<Vec<Item>, String> {
    declared
        .iter()
        .map(|d| {
            let kind = d.resource.kind();
            let label = kind.label();
            let notify = kind.notify().to_vec();
            let skipped = match kind.when() {
                Some(expr) => {
                    let at = d.origin.locate(&format!("{}.when", d.resource.kind_name()));
                    !renderer.when(expr, ctx, &at).map_err(|e| e.to_string())?
                }
                None => false,
            };
            let resource = if skipped {
                d.resource.clone()
            } else {
                renderer
                    .resource(&d.resource, &d.origin, ctx)
                    .map_err(|e| e.to_string())?
            };
            let label = if skipped {
                label
            } else {
                resource.kind().label()
            };
            Ok(Item {
                report: ResourceReport {
                    resource: label.clone(),
                    status: if skipped {
                        ResourceStatus::Skipped
                    } else {
                        ResourceStatus::NoChange
                    },
                    changes: vec![],
                    diff: None,
                    output: None,
                    error: None,
                },
                label,
                resource,
                notify,
                plan: None,
            })
        })
        .collect()
}

fn decide(
    item: &mut Item,
    record: &Record,
    ctx: &PlanContext,
    check: bool,
    redactor: &Redactor,
    first_error: &mut Option<String>,
) {
    match item.resource.kind().plan(record, ctx) {
        Ok(Plan::NoChange) => item.report.status = ResourceStatus::NoChange,
        Ok(plan @ (Plan::Change(_) | Plan::Unknown(_))) => {
            let (change, status) = match &plan {
                Plan::Change(c) => (c, ResourceStatus::WillChange),
                Plan::Unknown(c) => (c, ResourceStatus::Unknown),
                Plan::NoChange => unreachable!("matched above"),
            };
            item.report.changes = change.what.iter().map(|w| redactor.redact(w)).collect();
            item.report.diff = change.diff.as_deref().map(|d| redactor.redact(d));
            if check {
                item.report.status = status;
            }
            item.plan = Some(plan);
        }
        Err(e) => {
            let msg = redactor.redact(&e.to_string());
            item.report.status = ResourceStatus::Failed;
            item.report.error = Some(msg.clone());
            first_error.get_or_insert(msg);
        }
    }
}

/// Apply the steps of `which` items in one exec and record each result.
async fn run_steps(
    t: &dyn Transport,
    items: &mut [Item],
    which: &[usize],
    prefix: &str,
    redactor: &Redactor,
) -> Result<(), String> {
    let mut script = Script::new();
    for &i in which {
        let step = match &items[i].plan {
            Some(Plan::Change(c) | Plan::Unknown(c)) => &c.step,
            _ => continue,
        };
        step.write(&format!("step_{prefix}{i}"), &mut script);
    }
    for &i in which {
        script.sh(&format!("parc_step {prefix}{i} step_{prefix}{i}"));
    }
    let out = script
        .run(t)
        .await
        .map_err(|e| format!("connection lost while applying: {e}"))?;
    let mut error = None;
    for &i in which {
        let item = &mut items[i];
        match out
            .records
            .get(&format!("{prefix}{i}"))
            .and_then(|r| r.rc.map(|rc| (rc, r)))
        {
            Some((0, r)) => {
                let output = redactor.redact(r.text("out").trim_end());
                item.report.output = (!output.is_empty()).then(|| truncate(&output));
                match item.resource.kind().changed_after(0, &r.text("out")) {
                    Ok(true) => item.report.status = ResourceStatus::Changed,
                    Ok(false) => item.report.status = ResourceStatus::NoChange,
                    Err(e) => {
                        item.report.status = ResourceStatus::Failed;
                        item.report.error = Some(e.clone());
                        error.get_or_insert(format!("{}: {e}", item.label));
                    }
                }
            }
            Some((rc, r)) => {
                let output = redactor.redact(r.text("out").trim());
                item.report.status = ResourceStatus::Failed;
                item.report.error = Some(format!("step failed (exit {rc})"));
                item.report.output = (!output.is_empty()).then(|| truncate(&output));
                error.get_or_insert(format!(
                    "{} failed: {}",
                    item.label,
                    if output.is_empty() {
                        format!("exit {rc}")
                    } else {
                        output
                    }
                ));
            }
            None if error.is_some() => item.report.status = ResourceStatus::NotRun,
            None => {
                item.report.status = ResourceStatus::Failed;
                let msg = format!(
                    "{}: the apply script stopped before this step ({}): {}",
                    item.label,
                    out.status,
                    redactor.redact(out.stderr.trim())
                );
                item.report.error = Some(msg.clone());
                error = Some(msg);
            }
        }
    }
    match error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Output kept in reports: the end of it, where errors usually are.
fn truncate(text: &str) -> String {
    const KEEP: usize = 4096;
    if text.len() <= KEEP {
        return text.to_string();
    }
    let mut start = text.len() - KEEP;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("[... {start} bytes cut ...]\n{}", &text[start..])
}
