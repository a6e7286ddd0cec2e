//! `parc facts`: the asset register, one exec per host.

use std::sync::Arc;

use super::fleet::{self, FleetContext};
use super::lock::ThenOutput;
use crate::events::{Outcome, Summary};
use crate::facts;
use crate::transport::{ExitStatus, Transport, TransportError};

/// Why a host's facts could not be had.
#[derive(Debug, thiserror::Error)]
pub enum GatherError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("the facts probe failed ({status}): {stderr}")]
    Failed { status: ExitStatus, stderr: String },
    /// The probe ran in the lock's exec, whose stderr is the lock's.
    #[error("the facts probe failed (exit {code})")]
    FailedInLock { code: u32 },
    #[error(
        "the facts probe printed {total} bytes, more than the {limit} real facts take; they were not read"
    )]
    TooMany { total: u64, limit: usize },
    #[error(transparent)]
    Parse(#[from] facts::FactsError),
    #[error("the facts probe did not finish (connection lost?)")]
    Unfinished,
    #[error(
        "the facts probe did not finish within {secs} s (--read-timeout): parc stopped waiting for it"
    )]
    TimedOut { secs: u64 },
}

impl GatherError {
    /// The connection broke: the host is unreachable, not failed.
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, GatherError::Transport(_) | GatherError::Unfinished)
    }
}

/// Gather facts from one host over an open transport (also used by apply, which
/// needs facts for templates and `when:` conditions).
/// Past `within`, parc stops waiting ([`GatherError::TimedOut`]).
pub async fn facts_of(
    t: &dyn Transport,
    within: Option<std::time::Duration>,
) -> Result<facts::Facts, GatherError> {
    let command = facts::probe_command();
    let probe = probe(t, &command, facts::OUTPUT_LIMIT);
    match within {
        None => probe.await,
        Some(limit) => {
            tokio::time::timeout(limit, probe)
                .await
                .unwrap_or(Err(GatherError::TimedOut {
                    secs: limit.as_secs(),
                }))
        }
    }
}

/// What `parc facts` gathers: facts alone, or (for GLPI inventories) with
/// the installed packages, which cost the host a package-database query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gather {
    Facts,
    FactsAndPackages,
}

async fn probe(
    t: &dyn Transport,
    command: &str,
    limit: usize,
) -> Result<facts::Facts, GatherError> {
    let (status, stdout, stderr) = t.exec_capped(command, limit).await?;
    if !status.success() {
        return Err(GatherError::Failed {
            status,
            stderr: String::from_utf8_lossy(&stderr.bytes).trim().to_string(),
        });
    }
    if let Some(total) = stdout.cut_from() {
        return Err(GatherError::TooMany { total, limit });
    }
    Ok(facts::parse(&String::from_utf8_lossy(&stdout.bytes))?)
}

/// Facts from the probe run inside the lock's exec (see
/// `HostLock::acquire_then`).
pub fn facts_from_lock(out: Option<ThenOutput>) -> Result<facts::Facts, GatherError> {
    match out {
        Some(ThenOutput {
            timed_out: Some(limit),
            ..
        }) => Err(GatherError::TimedOut {
            secs: limit.as_secs(),
        }),
        Some(ThenOutput {
            code: Some(0),
            stdout,
            ..
        }) => match stdout.cut_from() {
            Some(total) => Err(GatherError::TooMany {
                total,
                limit: facts::OUTPUT_LIMIT,
            }),
            None => Ok(facts::parse(&String::from_utf8_lossy(&stdout.bytes))?),
        },
        Some(ThenOutput {
            code: Some(code), ..
        }) => Err(GatherError::FailedInLock { code }),
        _ => Err(GatherError::Unfinished),
    }
}

pub async fn run(
    ctx: &FleetContext,
    run_id: &str,
    hosts: Vec<String>,
    what: Gather,
) -> (Vec<(String, Outcome)>, Summary) {
    let events = ctx.events.clone();
    let (command, limit) = match what {
        Gather::Facts => (facts::probe_command(), facts::OUTPUT_LIMIT),
        Gather::FactsAndPackages => (
            facts::inventory_probe_command(),
            facts::INVENTORY_OUTPUT_LIMIT,
        ),
    };
    let command = Arc::new(command);
    fleet::run(
        ctx,
        run_id,
        "facts",
        hosts,
        move |host, t: Arc<dyn Transport>| {
            let events = events.clone();
            let command = command.clone();
            async move {
                events.phase(&host, "probing");
                match probe(t.as_ref(), &command, limit).await {
                    Ok(f) => Outcome::Facts { facts: Box::new(f) },
                    Err(e) if e.is_connection_lost() => Outcome::Unreachable {
                        error: e.to_string(),
                    },
                    Err(e) => Outcome::Failed {
                        error: e.to_string(),
                    },
                }
            }
        },
    )
    .await
}
