//! `parc image deploy` and `parc image capture` on the fleet: the per-host work
//! is in `crate::image`; this only runs it through `fleet::run`.

use std::sync::Arc;

use super::events::{Outcome, Summary};
use super::fleet::{self, FleetContext};
use crate::image::capture::{CaptureJob, capture_host};
use crate::image::deploy::{DeployJob, deploy_host};

pub async fn deploy(
    ctx: &FleetContext,
    run_id: &str,
    hosts: Vec<String>,
    job: Arc<DeployJob>,
) -> (Vec<(String, Outcome)>, Summary) {
    let events = ctx.events.clone();
    fleet::run(ctx, run_id, "image deploy", hosts, move |host, t| {
        deploy_host(job.clone(), host, t, events.clone())
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
