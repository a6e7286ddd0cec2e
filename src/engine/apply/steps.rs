//! The pieces of a converge: render, decide, and run steps in one exec.

use std::collections::{HashMap, HashSet};
use std::ops::Range;

use minijinja::Value;

use crate::engine::error::HostError;
use crate::events::{ResourceReport, ResourceStatus};
use crate::profile::Declared;
use crate::render::{REDACTED, Redactor, RenderError, Renderer};
use crate::resources::script::{Record, Script, ScriptError, ScriptOutput, Within};
use crate::resources::{
    Batched, Op, Plan, PlanContext, Resource, Step, batch_done, lies_below, mkdir_batches,
};
use crate::transport::Transport;
use crate::verify::clip;

/// A resource of this host after rendering, with its decision.
pub(super) struct Item {
    /// How the resource is shown: fields rendered from a secret hidden.
    pub label: String,
    /// Some field read a secret: no diff of its content is shown.
    pub secret: bool,
    pub resource: Resource,
    pub notify: Vec<String>,
    pub plan: Option<Plan>,
    pub report: ResourceReport,
}

/// Render every declared resource, evaluating `when:` first; fields read
/// from secrets taint `redactor`.
pub(super) fn render_all(
    renderer: &Renderer,
    declared: &[Declared],
    ctx: &Value,
    redactor: &mut Redactor,
) -> Result<Vec<Item>, RenderError> {
    declared
        .iter()
        .map(|d| {
            let kind = d.resource.kind();
            let label = kind.label();
            let notify = kind.notify().to_vec();
            let skipped = match kind.when() {
                Some(expr) => {
                    let at = d.origin.locate(&format!("{}.when", d.resource.kind_name()));
                    !renderer.when(expr, ctx, &at)?
                }
                None => false,
            };
            let (resource, label, secret) = if skipped {
                (d.resource.clone(), label, false)
            } else {
                let r = renderer.resource(&d.resource, &d.origin, ctx, redactor)?;
                let label = match &r.shown {
                    Some(shown) => shown.kind().label(),
                    None => format!("{} {REDACTED}", d.resource.kind_name()),
                };
                (r.value, label, r.tainted)
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
                    rebooted_ms: None,
                },
                label,
                secret,
                resource,
                notify,
                plan: None,
            })
        })
        .collect()
}

/// What earlier resources of this run will have written, so that a later
/// `line` on the same file edits that, not the bytes probed before the run:
/// several `line`s on one file (or a `file` then a `line`) compose instead of
/// each undoing the previous one.
pub(super) struct Written {
    /// Files some `line` resource edits: only their writes are remembered
    /// (copying and hashing every installed file would be wasted).
    edited: HashSet<String>,
    files: HashMap<String, Record>,
}

impl Written {
    pub fn new(items: &[Item]) -> Self {
        let edited = items
            .iter()
            .filter_map(|i| match &i.resource {
                Resource::Line(l) => Some(l.path.clone()),
                _ => None,
            })
            .collect();
        Written {
            edited,
            files: HashMap::new(),
        }
    }

    /// The state `item` must be planned against.
    pub fn view<'a>(&'a self, item: &Item, probed: &'a Record) -> &'a Record {
        match &item.resource {
            Resource::Line(l) => self.files.get(&l.path).unwrap_or(probed),
            _ => probed,
        }
    }

    /// Remember the files `item`'s decided step writes, as a probe would
    /// show them after it ran.
    pub fn note(&mut self, item: &Item, probed: &Record) {
        let Some(Plan::Change(c) | Plan::Unknown(c)) = &item.plan else {
            return;
        };
        for op in &c.step.0 {
            let Op::Put {
                data,
                dest,
                mode,
                owner,
                group,
                ..
            } = op
            else {
                continue;
            };
            if !self.edited.contains(dest) {
                continue;
            }
            let before = self.files.get(dest).unwrap_or(probed);
            // As parc_stat prints it: what the put sets, else what stood
            // there, else what a new file of root's gets (umask 022).
            let keep = |k: &str, set: Option<String>, new: &str| {
                let v = set.or_else(|| before.get(k).map(str::to_string));
                (k.to_string(), v.unwrap_or_else(|| new.to_string()))
            };
            let mut after = Record::default();
            after.fields.extend([
                ("type".to_string(), "file".to_string()),
                ("sha256".to_string(), data.sha256().to_string()),
                keep("mode", mode.map(|m| format!("{m:o}")), "644"),
                keep("owner", owner.clone(), "root"),
                keep("group", group.clone(), "root"),
            ]);
            if let Some(stage) = before.get("stage") {
                after.fields.insert("stage".into(), stage.to_string());
            }
            // Unreadable (changed since it was hashed): no content, and the
            // `line` refuses to edit what it cannot read whole.
            if let Ok(bytes) = data.whole() {
                after.blobs.insert("content".into(), bytes.into_owned());
            }
            self.files.insert(dest.clone(), after);
        }
    }
}

pub(super) fn decide(
    item: &mut Item,
    record: &Record,
    ctx: &PlanContext,
    check: bool,
    first_error: &mut Option<HostError>,
) {
    match item.resource.kind().plan(record, ctx) {
        Ok(Plan::NoChange) => item.report.status = ResourceStatus::NoChange,
        Ok(plan @ (Plan::Change(_) | Plan::Unknown(_))) => {
            let (change, status) = match &plan {
                Plan::Change(c) => (c, ResourceStatus::WillChange),
                Plan::Unknown(c) => (c, ResourceStatus::Unknown),
                Plan::NoChange => unreachable!("matched above"),
            };
            item.report.changes = change.what.clone();
            // Both sides of a secret item's diff hold secrets, known or not
            // (the old content may hold a rotated password).
            item.report.diff = (!item.secret).then(|| change.diff.clone()).flatten();
            if check {
                item.report.status = status;
            }
            item.plan = Some(plan);
        }
        Err(e) => {
            item.report.status = ResourceStatus::Failed;
            item.report.error = Some(e.to_string());
            first_error.get_or_insert(HostError::Plan(e));
        }
    }
}

/// The maximal runs of consecutive positions of `steps` whose step matches.
/// What a step printed, as the host sent it (at most `PARC_OUT_MAX` bytes,
/// lib.sh), saying so when it was cut.
fn step_output(r: &Record) -> String {
    let mut text = r.text("out");
    if let Some(all) = r.get("out_cut_from") {
        let kept = r.blobs.get("out").map_or(0, Vec::len) as u64;
        // The mark tells the redactor the text may end inside a secret.
        text.push_str(&format!(
            "{}{all} bytes in all, only the first {} kept]",
            crate::render::OUTPUT_CUT,
            bytesize::ByteSize(kept).display().iec()
        ));
    }
    text
}

fn runs(steps: &[(usize, &Step)], matches: impl Fn(&Step) -> bool) -> Vec<Range<usize>> {
    let mut runs: Vec<Range<usize>> = Vec::new();
    for (n, (_, step)) in steps.iter().enumerate() {
        if !matches(step) {
            continue;
        }
        match runs.last_mut() {
            Some(run) if run.end == n => run.end = n + 1,
            _ => runs.push(n..n + 1),
        }
    }
    runs
}

/// The sh around a run of steps: `trailer` runs after every step succeeded
/// (what runs before the first one is already in the script's body).
pub(super) struct Around<'a> {
    pub trailer: &'a [String],
    /// A record the script prints just before the first change: when it
    /// is missing from a failed run's output, the run changed nothing.
    pub first_change: Option<&'a str>,
}

/// Why a run of steps failed.
#[derive(Debug)]
pub(super) struct StepsFailed {
    pub error: HostError,
    /// The run may have changed the host (it got past `first_change`, or
    /// parc cannot know: the connection broke).
    pub maybe_changed: bool,
}

/// `script` with the steps of `which` items added (record `{prefix}{i}`
/// for `items[i]`), then `trailer`: step functions in its setup, the calls
/// in its body, in order, each run of consecutive directory creations or
/// file installs batched (one `mkdir` per mode, one `mv` per directory),
/// and each run of consecutive mode, owner or removal ops (one process a
/// command, see [`batch_lines`]).
pub(super) fn steps_script(
    items: &[Item],
    which: &[usize],
    prefix: &str,
    mut script: Script,
    trailer: &[String],
) -> Script {
    let steps: Vec<(usize, &Step)> = which
        .iter()
        .filter_map(|&i| match &items[i].plan {
            Some(Plan::Change(c) | Plan::Unknown(c)) => Some((i, &c.step)),
            _ => None,
        })
        .collect();
    for &i in which {
        if let Some(Plan::Change(c) | Plan::Unknown(c)) = &items[i].plan
            && !items[i].resource.kind().follows_links()
        {
            for touch in &c.touches {
                if let Some(p) = touch.path() {
                    script.guard(p);
                }
            }
        }
    }
    // How many files were staged before each step (and after the last).
    let mut staged = Vec::with_capacity(steps.len() + 1);
    for &(i, step) in &steps {
        staged.push(script.staged());
        step.write(&format!("step_{prefix}{i}"), &mut script);
    }
    staged.push(script.staged());
    // Lines to run before the step at a position: one `mkdir` per mode for
    // consecutive steps creating directories, one `mv` per directory for
    // consecutive steps only installing files (see resources::stage).
    let mut before: HashMap<usize, Vec<String>> = HashMap::new();
    // For a position with lines before it: the last position they act for.
    let mut covers: HashMap<usize, usize> = HashMap::new();
    let mut cover = |run: &Range<usize>| {
        let last = covers.entry(run.start).or_insert(run.start);
        *last = (*last).max(run.end - 1);
    };
    fn mkdir_of(step: &Step) -> Option<(&String, Option<u32>)> {
        match step.0.first() {
            Some(Op::Mkdir { path, mode }) => Some((path, *mode)),
            _ => None,
        }
    }
    // The batchable ops of steps `run`, each with the variable its step
    // reads (see batch_lines).
    let batch_ops = |run: Range<usize>| -> Vec<(String, &Batched)> {
        steps[run]
            .iter()
            .flat_map(|&(i, step)| {
                step.0
                    .iter()
                    .enumerate()
                    .filter_map(move |(n, op)| match op {
                        Op::Batch(b) => Some((batch_done(&format!("step_{prefix}{i}"), n), b)),
                        _ => None,
                    })
            })
            .collect()
    };
    for run in runs(&steps, |s| mkdir_of(s).is_some()) {
        if run.len() > 1 {
            let dirs: Vec<_> = steps[run.clone()]
                .iter()
                .filter_map(|(_, s)| mkdir_of(s))
                .collect();
            cover(&run);
            let lines = before.entry(run.start).or_default();
            lines.extend(mkdir_batches(&dirs));
            // Then the owners of the new directories (a Mkdir step's other
            // ops), once they exist.
            let owned = |s: &Step| s.0[1..].iter().all(|op| matches!(op, Op::Batch(_)));
            if steps[run.clone()].iter().all(|(_, s)| owned(s)) {
                lines.extend(batch_lines(&batch_ops(run)));
            }
        }
    }
    let installs = |s: &Step| {
        s.0.iter()
            .any(|op| matches!(op, Op::Put { .. } | Op::Link { .. }))
            && s.0
                .iter()
                .all(|op| matches!(op, Op::Put { .. } | Op::Link { .. } | Op::NeedParent(_)))
    };
    for run in runs(&steps, installs) {
        if let Some(line) = script.rename_together(staged[run.start]..staged[run.end]) {
            cover(&run);
            before.entry(run.start).or_default().push(line);
        }
    }
    // Package steps in runs of their own (see Batched::is_package).
    for packages in [false, true] {
        let batched = |s: &Step| {
            s.0.iter()
                .all(|op| matches!(op, Op::Batch(b) if b.is_package() == packages))
        };
        for run in runs(&steps, batched) {
            cover(&run);
            before
                .entry(run.start)
                .or_default()
                .extend(batch_lines(&batch_ops(run)));
        }
    }
    // The resource steps of an apply say, before each, the last step that
    // what runs next may act for (`parc_reach`): a step that fails writes it
    // in the journal, and a restore runs no undo of a step after it
    // (`parc_step_done`). Not the handlers' (after every resource step).
    let mut reach = None;
    for (n, &(i, step)) in steps.iter().enumerate() {
        let last = steps[covers.get(&n).map_or(n, |&c| c.max(n))].0;
        if prefix.is_empty() && reach.is_none_or(|r| last > r) {
            script.sh(&format!("parc_reach {last}"));
            reach = Some(last);
        }
        for line in before.get(&n).into_iter().flatten() {
            script.sh(line);
        }
        let runner = if step.is_plain() {
            "parc_step_plain"
        } else {
            "parc_step"
        };
        script.sh(&format!("{runner} {prefix}{i} step_{prefix}{i}"));
    }
    for line in trailer {
        script.sh(line);
    }
    script
}

/// The lines running the ops of a run of consecutive steps made only of
/// batchable ops (each with the variable its step reads), one process a
/// command (a mode, an owner, a removal, a `systemctl` verb) instead of one
/// an operand.
///
/// Why: a workstation profile fixes modes or removes files by the dozen, and
/// each process costs milliseconds on the target. A command runs for its
/// paths in the order declared; each step still runs its own op when the
/// batch did not (its variable unset), so a failure is reported by the step
/// it belongs to. A run that removes a path another of its ops touches (or
/// a tree another op lies in) is not batched: there the order matters.
fn batch_lines(ops: &[(String, &Batched)]) -> Vec<String> {
    // Modes and owners of one path commute; a removal does not with
    // anything else done to its path or below it.
    let removes = |x: &Batched, y: &Batched| match x {
        Batched::Remove { path, recursive } => y
            .operands()
            .iter()
            .any(|o| o == path || (*recursive && lies_below(o, path))),
        _ => false,
    };
    for (n, (_, a)) in ops.iter().enumerate() {
        for (_, b) in &ops[n + 1..] {
            if removes(a, b) || removes(b, a) {
                return Vec::new();
            }
        }
    }
    let mut groups: Vec<(String, Vec<&(String, &Batched)>)> = Vec::new();
    for op in ops {
        let command = op.1.command();
        match groups.iter_mut().find(|(c, _)| *c == command) {
            Some((_, members)) => members.push(op),
            None => groups.push((command, vec![op])),
        }
    }
    // All or nothing: an op left to its step would run after the batched
    // ones, out of its step's order (a unit's reload after its start). Not
    // worth it when no command has two operands.
    if groups.iter().all(|(_, members)| members.len() < 2) {
        return Vec::new();
    }
    groups
        .into_iter()
        .map(|(command, members)| match members[0].1 {
            // A function: it leaves links out, and sets the variables of
            // the paths it changed.
            Batched::Chmod { .. } => {
                let pairs: Vec<String> = members
                    .iter()
                    .map(|(done, b)| format!("{done} {}", b.words()))
                    .collect();
                format!("{command} {}", pairs.join(" "))
            }
            // What it prints goes nowhere: the script's own output is its
            // records, and a failure is told by the op run alone.
            _ => {
                let words: Vec<String> = members.iter().map(|(_, b)| b.words()).collect();
                let done: Vec<String> = members.iter().map(|(d, _)| format!("{d}=1")).collect();
                format!(
                    "{command} {} >/dev/null 2>&1 && {}",
                    words.join(" "),
                    done.join(" ")
                )
            }
        })
        .collect()
}

/// Apply the steps of `which` items in one exec and record each result.
/// `script` may already hold a preamble (the journal).
pub(super) async fn run_steps(
    t: &dyn Transport,
    items: &mut [Item],
    which: &[usize],
    prefix: &str,
    redactor: &Redactor,
    script: Script,
    around: Around<'_>,
) -> Result<(), StepsFailed> {
    let script = steps_script(items, which, prefix, script, around.trailer);
    run_script(
        t,
        script,
        &mut [Steps {
            items,
            which,
            prefix,
        }],
        redactor,
        around.first_change,
        None,
    )
    .await
    .map(|_| ())
}

/// Items whose steps one script runs, as record `{prefix}{i}` for
/// `items[i]` (see [`steps_script`]).
pub(super) struct Steps<'a> {
    pub items: &'a mut [Item],
    pub which: &'a [usize],
    pub prefix: &'a str,
}

/// Run `script`, built with the steps of every group in order, in one exec
/// and record each step's result: after the first failure, the steps left
/// (of this group or a later one) did not run. The script's output, for
/// the records of what it ran after the steps.
/// `within`: when parc gives up on the script's reads (the tests an apply
/// runs after its changes): past it, the host fails with its steps'
/// results unknown, which its recovery then undoes.
pub(super) async fn run_script(
    t: &dyn Transport,
    script: Script,
    groups: &mut [Steps<'_>],
    redactor: &Redactor,
    first_change: Option<&str>,
    within: Option<Within<'_>>,
) -> Result<ScriptOutput, StepsFailed> {
    let out = match script.run_within(t, within).await {
        Ok(out) => out,
        Err(e) => {
            // No step's result came back: whether each ran is unknown,
            // not "no change".
            for g in groups.iter_mut() {
                for &i in g.which {
                    g.items[i].report.status = ResourceStatus::Unknown;
                }
            }
            let error = match e {
                ScriptError::TimedOut { .. } => HostError::script(e, "verifying"),
                e => HostError::script(e, "applying"),
            };
            return Err(StepsFailed {
                error,
                maybe_changed: true,
            });
        }
    };
    let mut error = None;
    for g in groups.iter_mut() {
        record_steps(g, &out, redactor, &mut error);
    }
    match error {
        Some(error) => Err(StepsFailed {
            error,
            maybe_changed: first_change.is_none_or(|mark| out.records.contains_key(mark)),
        }),
        None => Ok(out),
    }
}

/// Each step's result in `out` on its item's report; the first error.
fn record_steps(
    g: &mut Steps<'_>,
    out: &ScriptOutput,
    redactor: &Redactor,
    error: &mut Option<HostError>,
) {
    let Steps {
        items,
        which,
        prefix,
    } = g;
    for &i in which.iter() {
        let item = &mut items[i];
        match out
            .records
            .get(&format!("{prefix}{i}"))
            .and_then(|r| r.rc.map(|rc| (rc, r)))
        {
            Some((0, r)) => {
                // Redacted before it is clipped: a cut could leave part of a secret.
                let output = redactor.redact(step_output(r).trim_end());
                item.report.output = (!output.is_empty()).then(|| clip(&output));
                match item.resource.kind().changed_after(0, &r.text("out")) {
                    Ok(true) => item.report.status = ResourceStatus::Changed,
                    Ok(false) => item.report.status = ResourceStatus::NoChange,
                    Err(source) => {
                        item.report.status = ResourceStatus::Failed;
                        item.report.error = Some(source.to_string());
                        error.get_or_insert(HostError::ChangedWhen {
                            resource: item.label.clone(),
                            source,
                        });
                    }
                }
            }
            Some((rc, r)) => {
                let output = redactor.redact(step_output(r).trim());
                item.report.status = ResourceStatus::Failed;
                item.report.error = Some(format!("step failed (exit {rc})"));
                item.report.output = (!output.is_empty()).then(|| clip(&output));
                error.get_or_insert(HostError::StepFailed {
                    resource: item.label.clone(),
                    detail: if output.is_empty() {
                        format!("exit {rc}")
                    } else {
                        output
                    },
                });
            }
            None if error.is_some() => item.report.status = ResourceStatus::NotRun,
            None => {
                item.report.status = ResourceStatus::Failed;
                let e = HostError::StepStopped {
                    resource: item.label.clone(),
                    status: out.status.clone(),
                    stderr: out.stderr.trim().to_string(),
                };
                item.report.error = Some(e.to_string());
                *error = Some(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remove(path: &str, recursive: bool) -> Batched {
        Batched::Remove {
            path: path.into(),
            recursive,
        }
    }

    /// Each op as the only op of its step, step_0 to step_N.
    fn one_op_a_step(ops: &[Batched]) -> Vec<(String, &Batched)> {
        ops.iter()
            .enumerate()
            .map(|(n, b)| (batch_done(&format!("step_{n}"), 0), b))
            .collect()
    }

    /// The packages of consecutive package steps go to one command a kind
    /// (install, upgrade), each step's names in the order declared.
    #[test]
    fn packages_of_consecutive_steps_share_a_run_of_the_manager() {
        let packages = |command: &str, names: &[&str]| Batched::Packages {
            command: command.into(),
            names: names.iter().map(|n| n.to_string()).collect(),
        };
        let ops = [
            packages("dnf install -y", &["git"]),
            packages("dnf install -y", &["make", "gcc c"]),
            packages("dnf upgrade -y", &["vim"]),
        ];
        assert_eq!(
            batch_lines(&one_op_a_step(&ops)),
            [
                "dnf install -y git make 'gcc c' >/dev/null 2>&1 && PARC_B_step_0_0=1 PARC_B_step_1_0=1",
                "dnf upgrade -y vim >/dev/null 2>&1 && PARC_B_step_2_0=1",
            ]
        );
        assert_eq!(ops[1].alone(), "dnf install -y make 'gcc c'");
    }

    /// One line a command, its paths in order; none when order matters.
    #[test]
    fn batchable_ops_share_a_command_unless_their_order_matters() {
        let ops = [
            remove("/a", false),
            Batched::Chmod {
                mode: 0o600,
                path: "/b c".into(),
            },
            remove("/d", false),
            Batched::Chmod {
                mode: 0o600,
                path: "/e".into(),
            },
        ];
        assert_eq!(
            batch_lines(&one_op_a_step(&ops)),
            [
                "rm -f -- /a /d >/dev/null 2>&1 && PARC_B_step_0_0=1 PARC_B_step_2_0=1",
                "parc_chmod_all 600 PARC_B_step_1_0 '/b c' PARC_B_step_3_0 /e",
            ]
        );
        let tree = [remove("/srv/x", true), remove("/srv/x/y", false)];
        let twice = [
            remove("/a", false),
            Batched::Chgrp {
                group: "g".into(),
                path: "/a".into(),
            },
        ];
        let apart = [remove("/srv/x", true), remove("/srv/xy", true)];
        let attrs = [
            Batched::Chmod {
                mode: 0o600,
                path: "/a".into(),
            },
            Batched::Chgrp {
                group: "g".into(),
                path: "/a".into(),
            },
            Batched::Chmod {
                mode: 0o600,
                path: "/b".into(),
            },
        ];

        for (ops, batched) in [
            (&tree[..], false),
            (&twice[..], false),
            (&apart[..], true),
            (&attrs[..], true),
            // One operand a command: nothing to share.
            (&attrs[..2], false),
        ] {
            let named: Vec<(String, &Batched)> = ops.iter().map(|b| ("V".into(), b)).collect();
            assert_eq!(!batch_lines(&named).is_empty(), batched, "{ops:?}");
        }
    }
}
