//! `parc facts`: the asset register, one exec per host.

use std::sync::Arc;

use super::fleet::{self, FleetContext};
use super::lock::ThenOutput;
use crate::events::{Outcome, Summary};
use crate::facts;
use crate::transport::Transport;

/// Gather facts from one host over an open transport (also used by apply, which
/// needs facts for templates and `when:` conditions).
pub async fn facts_of(t: &dyn Transport) -> Result<facts::Facts, String> {
    let (status, stdout, stderr) = t
        .exec_capped(&facts::probe_command(), FACTS_LIMIT)
        .await
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!(
            "the facts probe failed ({status}): {}",
            String::from_utf8_lossy(&stderr.bytes).trim()
        ));
    }
    if let Some(total) = stdout.cut_from() {
        return Err(too_many_facts(total));
    }
    facts::parse(&String::from_utf8_lossy(&stdout.bytes)).map_err(|e| e.to_string())
}

fn too_many_facts(total: u64) -> String {
    format!(
        "the facts probe printed {total} bytes, more than the {FACTS_LIMIT} real facts take; they were not read"
    )
}

/// Far above what the facts probe prints (a few KiB), far below what would
/// strain the controller: a host cannot flood it through its facts.
pub(super) const FACTS_LIMIT: usize = 1 << 20;

/// Facts from the probe run inside the lock's exec (see
/// `HostLock::acquire_then`).
pub fn facts_from_lock(out: Option<ThenOutput>) -> Result<facts::Facts, String> {
    match out {
        Some(ThenOutput {
            code: Some(0),
            stdout,
        }) => match stdout.cut_from() {
            Some(total) => Err(too_many_facts(total)),
            None => {
                facts::parse(&String::from_utf8_lossy(&stdout.bytes)).map_err(|e| e.to_string())
            }
        },
        Some(ThenOutput { code: Some(c), .. }) => Err(format!("the facts probe failed (exit {c})")),
        _ => Err("the facts probe did not finish (connection lost?)".into()),
    }
}

pub async fn run(
    ctx: &FleetContext,
    run_id: &str,
    hosts: Vec<String>,
) -> (Vec<(String, Outcome)>, Summary) {
    let events = ctx.events.clone();
    fleet::run(
        ctx,
        run_id,
        "facts",
        hosts,
        move |host, t: Arc<dyn Transport>| {
            let events = events.clone();
            async move {
                events.phase(&host, "probing");
                match facts_of(t.as_ref()).await {
                    Ok(f) => Outcome::Facts { facts: Box::new(f) },
                    Err(error) => Outcome::Failed { error },
                }
            }
        },
    )
    .await
}
