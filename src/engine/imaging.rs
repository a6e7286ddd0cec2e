//! `parc image deploy` and `parc image capture` on the fleet: the per-host work
//! is in `crate::image`; this only runs it through `fleet::run`.

use std::sync::Arc;

use super::events::{Events, HostState, Outcome, ResourceReport, ResourceStatus, Summary};
use super::fleet::{self, FleetContext};
use crate::image::capture::{CaptureJob, capture_host};
use crate::image::deploy::{DeployJob, deploy_host};
use crate::transport::Transport;

pub async fn deploy(
    ctx: &FleetContext,
    run_id: &str,
    hosts: Vec<String>,
    job: Arc<DeployJob>,
) -> (Vec<(String, Outcome)>, Summary) {
    let events = ctx.events.clone();
    fleet::run(ctx, run_id, "image deploy", hosts, move |host, t| {
        let (job, events) = (job.clone(), events.clone());
        async move { Outcome::Image(deploy_host(job, host, t, events).await) }
    })
    .await
}

pub async fn capture(
    ctx: &FleetContext,
    run_id: &str,
    host: String,
    job: Arc<CaptureJob>,
) -> (Vec<(String, Outcome)>, Summary) {
    let events = ctx.events.clone();
    fleet::run(ctx, run_id, "image capture", vec![host], move |host, t| {
        capture_host(job.clone(), host, t, events.clone())
    })
    .await
}

/// The `image:` stage of a play on one host, reported like a resource so that
/// the play's recap shows it first, before the profile's resources.
pub async fn play_stage(
    job: Arc<DeployJob>,
    check: bool,
    host: String,
    t: Arc<dyn Transport>,
    events: Events,
) -> ResourceReport {
    let resource = format!("image {} -> {}", job.source.path().display(), job.target);
    if check {
        return ResourceReport {
            resource,
            status: ResourceStatus::Unknown,
            changes: vec!["deploy (what differs is known once the target is hashed)".into()],
            diff: None,
            output: None,
            error: None,
            rebooted_ms: None,
        };
    }
    let r = deploy_host(job, host, t, events).await;
    let state = r.state();
    let size = |n: u64| bytesize::ByteSize(n).display().iec().to_string();
    ResourceReport {
        resource,
        status: match state {
            HostState::Changed => ResourceStatus::Changed,
            HostState::Ok => ResourceStatus::NoChange,
            _ => ResourceStatus::Failed,
        },
        changes: if state == HostState::Changed {
            vec![format!(
                "{} sent, {} zeroed, {} already there, verified ({} reads)",
                size(r.bytes_sent),
                size(r.bytes_zeroed),
                size(r.bytes_matched),
                r.readback
            )]
        } else {
            Vec::new()
        },
        diff: None,
        output: None,
        error: r.error,
        rebooted_ms: None,
    }
}
