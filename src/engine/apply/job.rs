//! What one play hands the per-host state machine: its own module so that
//! the phases (converge, confirm, recover, reboot) take it from here, not
//! from apply/mod.rs, which calls them.

use std::sync::Arc;

use crate::engine::context::PlayContext;
use crate::engine::lock::Operator;
use crate::image::deploy::DeployJob;
use crate::playbook::OnFailure;

/// Everything one play needs to converge any of its hosts.
pub struct ApplyJob {
    /// The profile and the variables its hosts are rendered with.
    pub play: PlayContext,
    /// `parc plan`: stop after planning.
    pub check: bool,
    pub diff: bool,
    /// Names the journal on every host (`/var/lib/parc/journal/<run_id>`).
    pub run_id: String,
    pub on_failure: OnFailure,
    /// The job converging the profile's fallback, for `on_failure: fallback`.
    pub fallback: Option<Arc<ApplyJob>>,
    pub keep_journals: usize,
    /// Who runs this, for the host lock and history.
    pub operator: Operator,
    /// Break a stale lock left by an interrupted run (`--break-lock`).
    pub break_lock: bool,
    /// Dead-man switch: the host restores itself unless confirmed within this.
    pub confirm: Option<std::time::Duration>,
    /// How to reach hosts again (the confirmation uses a new connection).
    pub connect: crate::engine::connect::ConnectOptions,
    /// The play's `image:` stage, written under the host lock before the
    /// profile (a failed image skips the profile).
    pub image: Option<Arc<DeployJob>>,
}
