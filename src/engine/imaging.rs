//! `parc image deploy` and `parc image capture` on the fleet: the per-host work
//! is in `crate::image`; this only runs it through `fleet::run`.

use std::sync::Arc;

use super::fleet::{self, FleetContext};
use crate::events::{
    Events, HostState, ImageReport, Outcome, ResourceReport, ResourceStatus, Summary,
};
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
    ResourceReport {
        resource,
        status: match state {
            HostState::Changed => ResourceStatus::Changed,
            HostState::Ok => ResourceStatus::NoChange,
            _ => ResourceStatus::Failed,
        },
        changes: if state == HostState::Changed {
            vec![format!(
                "{}, {} zeroed, {} already there, verified ({} reads)",
                sent_summary(&r),
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

/// What crossed the wire for an image deploy: "12 MiB sent", and for a
/// compressed or qcow2 image where its bytes came from, e.g. "40 MiB of zstd
/// image sent as 9.1 MiB (23%, decompressed on the target)".
pub fn sent_summary(r: &ImageReport) -> String {
    if r.source_format.is_empty() || r.source_format == "raw" {
        return format!("{} sent", size(r.bytes_sent));
    }
    let place = match r.decompressed_on.as_deref() {
        Some(place) => format!(", decompressed on the {place}"),
        None => String::new(),
    };
    format!(
        "{} of {} image sent as {} ({:.0}%{place})",
        size(r.bytes_read),
        r.source_format,
        size(r.bytes_sent),
        r.ratio * 100.0
    )
}

fn size(n: u64) -> String {
    bytesize::ByteSize(n).display().iec().to_string()
}
