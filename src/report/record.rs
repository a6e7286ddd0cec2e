//! What a report holds, folded from the engine's events as they arrive.

use std::collections::HashMap;
use std::path::PathBuf;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use super::meta::Operator;
use crate::events::{Event, Outcome, ResourceStatus, Summary};

/// Bumped when a field changes meaning, so tools reading old reports can tell.
pub const FORMAT: u32 = 1;

/// What the command line knows about a run before the engine starts it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunMeta {
    /// As typed, with the values of secret-looking `-e` variables redacted.
    pub command_line: Vec<String>,
    pub operator: Operator,
    /// Hostname of the machine parc ran on.
    pub controller: String,
    pub inventory: Option<PathBuf>,
    pub playbook: Option<PathBuf>,
    /// Directories outside the profile tree the operator let profiles read
    /// (`--allow-outside`): confinement was relaxed for this run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_outside: Vec<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub format: u32,
    pub run_id: String,
    /// `apply`, `plan`, `run`, `facts`, ... as the engine named the run.
    pub action: String,
    #[serde(flatten)]
    pub meta: RunMeta,
    pub started: Timestamp,
    /// Unset while the run goes on, and for good if the controller stopped
    /// mid-run: the report then still says who started what, on which hosts.
    pub finished: Option<Timestamp>,
    pub elapsed_ms: Option<u64>,
    pub summary: Option<Summary>,
    /// Every host the run set out to work on.
    pub targets: Vec<String>,
    pub plays: Vec<PlayRecord>,
    /// One record per host and play, in play then target order once finished.
    pub hosts: Vec<HostRecord>,
    /// What parc did to hosts still running, for their records.
    #[serde(skip)]
    pending_notes: std::collections::HashMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlayRecord {
    pub name: String,
    pub hosts: Vec<String>,
    pub batches: Vec<Vec<String>>,
    /// How many of `batches` were started: fewer than all when aborted.
    pub batches_started: usize,
    pub aborted: Option<Abort>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Abort {
    pub reason: String,
    pub skipped: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostRecord {
    pub host: String,
    /// The play this result belongs to; unset outside playbooks, and for hosts
    /// skipped in plays that never started because an earlier one was aborted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub play: Option<String>,
    /// The engine's host state as serialized (`ok`, `changed`, `failed`, ...):
    /// a string so states added later need no change here.
    pub state: String,
    pub elapsed_ms: u64,
    /// Remote commands run on the host.
    pub execs: u32,
    /// Resources changed (or, in a plan, that would change); unset when the
    /// outcome has no resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<usize>,
    /// The event's outcome as serialized, whatever fields it grows: its
    /// JSON text, parsed where it is read ([`HostRecord::outcome`]). Every
    /// host's record is held to the end of the run; parsed, that of an
    /// apply of `mixed` took about 20 KiB a host (heaptrack), the text a
    /// third of it. Written as a value, so that report.json lays it out as
    /// it always did (a raw value goes out as the one line it is).
    #[serde(rename = "outcome", serialize_with = "as_value")]
    pub outcome_json: Box<RawValue>,
    /// What parc did on the host besides its outcome, which the record of
    /// an intervention must keep: processes of an interrupted run it killed
    /// taking over a stale lock, or of a read it gave up on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// `raw` parsed and serialized again, one host at a time: as the pretty
/// report.json indents it, and as hosts.jsonl writes it, on one line.
fn as_value<S: serde::Serializer>(raw: &RawValue, s: S) -> Result<S::Ok, S::Error> {
    let value: Value = serde_json::from_str(raw.get()).map_err(serde::ser::Error::custom)?;
    value.serialize(s)
}

impl HostRecord {
    /// Sort key putting the hosts a technician must look at first: failed and
    /// untrusted (a host key that may mean an impostor), then every other state that is not plainly fine (unreachable, and any
    /// state added later such as degraded), then changed, ok, skipped.
    pub fn attention(&self) -> u8 {
        match self.state.as_str() {
            "failed" | "untrusted" => 0,
            "changed" => 2,
            "ok" => 3,
            "skipped" => 4,
            _ => 1,
        }
    }

    /// The outcome, parsed (`null` if its text is not JSON, which parc
    /// never writes).
    pub fn outcome(&self) -> Value {
        serde_json::from_str(self.outcome_json.get()).unwrap_or(Value::Null)
    }

    /// The reason the host is not fine, when `outcome` gives one.
    pub fn error(outcome: &Value) -> Option<&str> {
        ["error", "reason"]
            .iter()
            .find_map(|k| outcome.get(k).and_then(|v| v.as_str()))
    }
}

/// What a folded event asks of the run's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persist {
    /// Nothing the record keeps changed.
    Nothing,
    /// A host ended: its record (the last of `Report::hosts`) is appended to
    /// `hosts.jsonl` at once, at a cost that does not grow with the fleet.
    Host,
    /// A point worth rewriting report.json and report.html for.
    Checkpoint,
}

impl Report {
    pub fn new(run_id: &str, meta: RunMeta, now: Timestamp) -> Report {
        Report {
            format: FORMAT,
            run_id: run_id.to_string(),
            action: String::new(),
            meta,
            started: now,
            finished: None,
            elapsed_ms: None,
            summary: None,
            targets: Vec::new(),
            plays: Vec::new(),
            hosts: Vec::new(),
            pending_notes: Default::default(),
        }
    }

    /// Fold one event in, and say what of it must reach the disk now so that
    /// a controller killed mid-run still leaves a record of every host that
    /// ended and of the run's start, plays, batches and aborts.
    pub fn record(&mut self, event: &Event, now: Timestamp) -> Persist {
        match event {
            Event::RunStarted { action, hosts, .. } => {
                self.action = action.clone();
                self.targets = hosts.clone();
                self.started = now;
                Persist::Checkpoint
            }
            // A command's output is recorded once, from its host's result.
            Event::HostPhase { .. }
            | Event::HostProgress { .. }
            | Event::HostOutput { .. }
            | Event::HostRebooted { .. } => Persist::Nothing,
            Event::LockTakenOver { .. } | Event::GaveUp { .. } => {
                if let Some((host, note)) = event.host_note() {
                    let notes = self.pending_notes.entry(host.to_string()).or_default();
                    notes.push(note);
                }
                Persist::Nothing
            }
            Event::HostFinished {
                host,
                state,
                elapsed_ms,
                execs,
                outcome,
            } => {
                let play = self.current_play_of(host);
                let (changed, failed) = resource_counts(outcome);
                let notes = self.pending_notes.remove(host).unwrap_or_default();
                self.hosts.push(HostRecord {
                    host: host.clone(),
                    play,
                    state: state.as_str().to_string(),
                    elapsed_ms: *elapsed_ms,
                    execs: *execs,
                    changed,
                    failed,
                    outcome_json: serde_json::value::to_raw_value(outcome).unwrap_or_else(|e| {
                        let error =
                            serde_json::json!({ "error": format!("outcome not recordable: {e}") });
                        serde_json::value::to_raw_value(&error).expect("a JSON value serializes")
                    }),
                    notes,
                });
                Persist::Host
            }
            Event::PlayStarted {
                play,
                hosts,
                batches,
            } => {
                self.plays.push(PlayRecord {
                    name: play.clone(),
                    hosts: hosts.clone(),
                    batches: batches.clone(),
                    batches_started: 0,
                    aborted: None,
                });
                Persist::Checkpoint
            }
            Event::BatchStarted { play, index, .. } => {
                if let Some(p) = self.plays.last_mut().filter(|p| &p.name == play) {
                    p.batches_started = p.batches_started.max(index + 1);
                }
                Persist::Checkpoint
            }
            Event::PlayAborted {
                play,
                reason,
                skipped,
            } => {
                if let Some(p) = self.plays.last_mut().filter(|p| &p.name == play) {
                    p.aborted = Some(Abort {
                        reason: reason.clone(),
                        skipped: skipped.clone(),
                    });
                }
                Persist::Checkpoint
            }
            Event::RunFinished {
                summary,
                elapsed_ms,
                ..
            } => {
                self.finished = Some(now);
                self.elapsed_ms = Some(*elapsed_ms);
                self.summary = Some(summary.clone());
                self.sort_hosts();
                Persist::Checkpoint
            }
        }
    }

    /// Host counts by state, in the engine's summary order when the run
    /// finished, else tallied from the hosts reported so far.
    pub fn counts(&self) -> Vec<(String, usize)> {
        if let Some(serde_json::Value::Object(map)) = self
            .summary
            .as_ref()
            .and_then(|s| serde_json::to_value(s).ok())
        {
            return map
                .into_iter()
                .map(|(k, v)| (k, v.as_u64().unwrap_or(0) as usize))
                .collect();
        }
        let mut counts: Vec<(String, usize)> = Vec::new();
        for h in &self.hosts {
            match counts.iter_mut().find(|(s, _)| *s == h.state) {
                Some((_, n)) => *n += 1,
                None => counts.push((h.state.clone(), 1)),
            }
        }
        counts
    }

    /// Of the host records appended while the run went on (`hosts.jsonl`,
    /// in finishing order), those this report does not hold yet: the hosts
    /// that ended after its last checkpoint. Matched by host and play, as
    /// many times as each occurs, since a host skipped for several plays that
    /// never started has several records without a play.
    pub fn ended_since_checkpoint(&self, ended: Vec<HostRecord>) -> Vec<HostRecord> {
        let key = |h: &HostRecord| (h.host.clone(), h.play.clone());
        let mut held: HashMap<(String, Option<String>), usize> = HashMap::new();
        for h in &self.hosts {
            *held.entry(key(h)).or_default() += 1;
        }
        ended
            .into_iter()
            .filter(|h| match held.get_mut(&key(h)) {
                Some(n) if *n > 0 => {
                    *n -= 1;
                    false
                }
                _ => true,
            })
            .collect()
    }

    /// Hosts the run set out to work on that never reported (the controller
    /// stopped first).
    pub fn unreported(&self) -> Vec<&str> {
        self.targets
            .iter()
            .filter(|t| !self.hosts.iter().any(|h| &h.host == *t))
            .map(String::as_str)
            .collect()
    }

    /// Plays run one after another, so a finished host belongs to the play
    /// started last, unless that play does not list it or already has its
    /// result (a skip reported for a later play that never started).
    fn current_play_of(&self, host: &str) -> Option<String> {
        let play = self.plays.last()?;
        let listed = play.hosts.iter().any(|h| h == host);
        let done = self
            .hosts
            .iter()
            .any(|h| h.host == host && h.play.as_deref() == Some(&play.name));
        (listed && !done).then(|| play.name.clone())
    }

    /// Results arrive in finishing order; the record reads better (and diffs
    /// between runs stay small) in play, then target, order.
    fn sort_hosts(&mut self) {
        let play_index = |p: &Option<String>| {
            p.as_ref()
                .and_then(|name| self.plays.iter().position(|x| &x.name == name))
                .unwrap_or(usize::MAX)
        };
        let target_index = |h: &str| {
            self.targets
                .iter()
                .position(|t| t == h)
                .unwrap_or(usize::MAX)
        };
        let mut hosts = std::mem::take(&mut self.hosts);
        hosts.sort_by_key(|h| (play_index(&h.play), target_index(&h.host)));
        self.hosts = hosts;
    }
}

fn resource_counts(outcome: &Outcome) -> (Option<usize>, Option<usize>) {
    match outcome {
        Outcome::Applied { resources, .. } => {
            let count = |f: &dyn Fn(ResourceStatus) -> bool| {
                Some(resources.iter().filter(|r| f(r.status)).count())
            };
            (
                count(&|s| matches!(s, ResourceStatus::Changed | ResourceStatus::WillChange)),
                count(&|s| s == ResourceStatus::Failed),
            )
        }
        // A verification changes nothing; its failures are failed tests.
        Outcome::Verified { results } => (None, Some(results.iter().filter(|r| !r.passed).count())),
        _ => (None, None),
    }
}
