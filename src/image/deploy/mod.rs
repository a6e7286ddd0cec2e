//! Deploying an image to one target, in one exec.
//!
//! Protocol (all on the one exec's stdin/stdout; the script is `target.sh`):
//!
//! 1. The script prints what the target is (`info`, `mount`, `loop`, `holder`,
//!    `swap`) and `ready`. The controller decides on the safety refusals
//!    ([`protocol::check`]) and answers `go`, or closes stdin (nothing written).
//!    To a target that can run it, `go BYTES` is followed by parc's image
//!    helper ([`helper`]): the script runs it (`helper on`) for everything
//!    below, or says `helper off` and goes on itself. Same lines either way.
//! 2. Background workers hash every chunk of the target (`h I SHA`), reading it
//!    as any program would: through the page cache, which the kernel keeps
//!    coherent with every write, and which makes re-deploys fast when warm. As
//!    soon as a chunk is known to differ the controller queues it; runs of
//!    consecutive differing chunks are sent as `w FIRST COUNT` followed by their
//!    bytes (cut by `dd iflag=fullblock`), runs of all-zero chunks as
//!    `z FIRST COUNT` with no data: the target punches holes in a disk file
//!    (`fallocate -p`) or writes zeros on a device.
//! 3. Once every differing chunk is sent (`r`), each written chunk goes to a
//!    read-back worker that re-reads it from the storage, bypassing the page
//!    cache (direct I/O where the target supports it), and hashes it
//!    (`v I SHA`); a mismatch is queued again (and checked at once), at most
//!    [`plan::MAX_WRITES`] writes in all. Reading back only after the
//!    transfer keeps the reads from competing with the writes for the disk.
//! 4. When every chunk matches, the controller sends `q`; the script flushes the
//!    target (`fsync`, which also empties a disk's volatile cache and reports a
//!    failed write-back, e.g. of chunks an interrupted deploy left in the page
//!    cache and the first pass accepted from there) and prints `end`.
//!
//! An interrupted deploy leaves whole and partial chunks behind; the next one
//! hashes them like any other and sends only what does not match.

pub mod helper;
mod plan;
mod protocol;
mod session;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

use super::format::Format;
use super::{ImageError, ImageSource, Payload, STDERR_KEPT};
use crate::events::{Event, Events, ImageReport, Wire};
use crate::transport::{Capped, ExitStatus, Transport, TransportError, quote};
use helper::Helper;
use plan::{ChunkPlan, PlanError, Run};
use protocol::{Line, Refusal, TargetInfo, parse_line};
use session::{LINES_BESIDE_CHUNKS, LINES_PER_CHUNK, LineSink};

const SCRIPT: &str = include_str!("target.sh");
/// Bytes buffered between the controller and the SSH channel.
const PIPE: usize = 1 << 20;
/// Largest run written by one `dd` on the target: long enough that process
/// start-up is noise, short enough that read-back starts early.
const MAX_RUN_BYTES: u64 = 64 << 20;
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// One image going to many hosts.
pub struct DeployJob {
    pub source: Arc<ImageSource>,
    /// Device or file on the target (`--target`).
    pub target: String,
    /// Write even if the target is mounted (not if it backs the running system).
    pub force: bool,
    /// Bytes per second sent to each host (`--max-rate`), to spare a shared link.
    pub max_rate: Option<u64>,
    /// Sent to the targets that can run it (`None`: sh alone, `--no-helper`).
    pub helper: Option<Arc<Helper>>,
}

/// Why one host's deploy stopped.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("{0}")]
    Refused(#[from] Refusal),
    #[error("the connection failed during the deploy: {0}")]
    Transport(#[from] TransportError),
    #[error("the connection closed before the deploy finished: {0}")]
    Lost(String),
    #[error("the target script failed: {0}")]
    Script(String),
    #[error("the target could not hash a chunk (it printed `{0}`): its sha256 tool failed")]
    Unhashed(String),
    #[error("{0}")]
    Plan(#[from] PlanError),
    #[error("{0}")]
    Image(#[from] ImageError),
}

/// Deploy `job` to the host behind `t`; never fails as a function: everything
/// that happened is in the returned report.
pub async fn deploy_host(
    job: Arc<DeployJob>,
    host: String,
    t: Arc<dyn Transport>,
    events: Events,
) -> ImageReport {
    let started = Instant::now();
    let manifest = &job.source.manifest;
    let mut report = ImageReport {
        target: job.target.clone(),
        image_bytes: manifest.size,
        source_format: job.source.format().name().into(),
        ratio: 1.0,
        readback: "none".into(),
        ..ImageReport::default()
    };
    let command = format!(
        "sh -c {} parc-image {} {} {} {}",
        quote(SCRIPT),
        quote(&job.target),
        manifest.chunk_size,
        manifest.size,
        manifest.chunks.len()
    );
    let (to_target, target_stdin) = tokio::io::duplex(PIPE);
    let (tx, lines) = unbounded_channel();
    let exec = async move {
        let mut stdin = target_stdin;
        let budget = LINES_PER_CHUNK
            .saturating_mul(manifest.chunks.len())
            .saturating_add(LINES_BESIDE_CHUNKS);
        let mut sink = LineSink::new(tx, budget);
        // What the host says beside its progress: its start, for an error.
        let mut stderr = Capped::new(STDERR_KEPT);
        let status = t.exec(&command, &mut stdin, &mut sink, &mut stderr).await;
        (status, stderr.into_kept().bytes)
    };
    let mut host_run = HostRun {
        job: &job,
        host: &host,
        events: &events,
        report: &mut report,
        started,
        lines,
        last_progress: None,
        streamed: 0,
        read: 0,
    };
    let ((status, stderr), result) = tokio::join!(exec, host_run.control(to_target));
    report.total_ms = started.elapsed().as_millis() as u64;
    let error = match (result, status) {
        (Ok(()), _) => None,
        (Err(e), Err(transport)) if !matches!(e, DeployError::Refused(_)) => {
            Some(DeployError::Transport(transport).to_string())
        }
        (Err(DeployError::Lost(_)), Ok(status)) => {
            Some(DeployError::Lost(ended(&status, &stderr)).to_string())
        }
        (Err(e), _) => Some(e.to_string()),
    };
    report.verified = error.is_none();
    report.error = error;
    report
}

fn ended(status: &ExitStatus, stderr: &[u8]) -> String {
    let stderr = String::from_utf8_lossy(stderr);
    let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if first.is_empty() {
        format!("the target script ended ({status})")
    } else {
        format!("the target script ended ({status}): {first}")
    }
}

struct HostRun<'a> {
    job: &'a DeployJob,
    host: &'a str,
    events: &'a Events,
    report: &'a mut ImageReport,
    started: Instant,
    lines: UnboundedReceiver<String>,
    last_progress: Option<Instant>,
    /// Chunk bytes handed to the SSH channel so far (paces `--max-rate`).
    streamed: u64,
    /// Disk bytes of the chunks streamed (more than `streamed` when compressed).
    read: u64,
}

impl HostRun<'_> {
    fn ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    async fn next_line(&mut self) -> Result<Line, DeployError> {
        loop {
            let text = self
                .lines
                .recv()
                .await
                .ok_or_else(|| DeployError::Lost(String::new()))?;
            if let Some(line) = parse_line(&text) {
                return Ok(line);
            }
        }
    }

    async fn control(&mut self, mut to_target: DuplexStream) -> Result<(), DeployError> {
        self.events.phase(self.host, "checking target");
        let mut facts = Vec::new();
        loop {
            match self.next_line().await? {
                Line::Ready => break,
                Line::Fail(m) => return Err(DeployError::Script(m)),
                other => facts.push(other),
            }
        }
        let info = TargetInfo::from_lines(&facts)
            .ok_or_else(|| DeployError::Script("it did not describe the target".into()))?;
        self.report.readback = info.readback.clone();
        let manifest = &self.job.source.manifest;
        protocol::check(&self.job.target, &info, manifest.size, self.job.force)?;
        match self.job.helper.as_deref().filter(|h| h.suits(&info)) {
            Some(helper) => {
                send(
                    &mut to_target,
                    format!("go {}\n", helper.bytes.len()).as_bytes(),
                )
                .await?;
                send(&mut to_target, &helper.bytes).await?;
            }
            None => send(&mut to_target, b"go\n").await?,
        }
        self.events.phase(self.host, "deploying");

        let mut plan = ChunkPlan::new(manifest);
        let max_run = (MAX_RUN_BYTES / manifest.chunk_size).max(1) as usize;
        let mut transfer_start: Option<Instant> = None;
        let mut reading_back = false;
        loop {
            self.drain(&mut plan)?;
            if plan.done() {
                break;
            }
            if let Some(run) = plan.next_run(max_run) {
                self.write_run(&mut to_target, &mut plan, run, &mut transfer_start)
                    .await?;
                continue;
            }
            if !reading_back && plan.probe_done() {
                // Everything that differed is sent: the target may read back.
                send(&mut to_target, b"r\n").await?;
                self.events.phase(self.host, "reading back");
                reading_back = true;
                continue;
            }
            let line = self.next_line().await?;
            self.handle(&mut plan, line)?;
        }
        self.progress(&plan, true);
        self.events.phase(self.host, "flushing");
        send(&mut to_target, b"q\n").await?;
        loop {
            match self.next_line().await? {
                Line::End => break,
                Line::Fail(m) => return Err(DeployError::Script(m)),
                _ => {}
            }
        }
        self.report_counters(&plan);
        Ok(())
    }

    fn report_counters(&mut self, plan: &ChunkPlan<'_>) {
        let c = &plan.counters;
        self.report.bytes_read = self.read;
        self.report.bytes_sent = self.streamed;
        if self.read > 0 {
            self.report.ratio = self.streamed as f64 / self.read as f64;
        }
        self.report.bytes_zeroed = c.bytes_zeroed;
        self.report.bytes_matched = c.bytes_matched;
        self.report.chunks_sent = c.chunks_sent;
        self.report.chunks_zeroed = c.chunks_zeroed;
        self.report.rewrites = c.rewrites;
    }

    /// Handle every line already received, without waiting.
    fn drain(&mut self, plan: &mut ChunkPlan<'_>) -> Result<(), DeployError> {
        while let Ok(text) = self.lines.try_recv() {
            if let Some(line) = parse_line(&text) {
                self.handle(plan, line)?;
            }
        }
        self.progress(plan, false);
        Ok(())
    }

    fn handle(&mut self, plan: &mut ChunkPlan<'_>, line: Line) -> Result<(), DeployError> {
        match line {
            Line::Probed(i, sha) => {
                plan.probed(i, &sha)?;
                if plan.probe_done() && self.report.probe_ms == 0 {
                    self.report.probe_ms = self.ms();
                }
            }
            Line::ReadBack(i, sha) => plan.read_back(i, &sha)?,
            Line::Helper(on) => self.report.helper = on,
            Line::Fail(m) => return Err(DeployError::Script(m)),
            Line::Unhashed(l) => return Err(DeployError::Unhashed(l)),
            _ => {}
        }
        // Counters are kept current so a failed host still reports what it sent.
        self.report_counters(plan);
        Ok(())
    }

    fn progress(&mut self, plan: &ChunkPlan<'_>, last: bool) {
        let now = Instant::now();
        if !last
            && self
                .last_progress
                .is_some_and(|t| now.duration_since(t) < PROGRESS_EVERY)
        {
            return;
        }
        self.last_progress = Some(now);
        self.events.send(Event::HostProgress {
            host: self.host.to_string(),
            done_bytes: plan.handled_bytes(),
            total_bytes: self.job.source.manifest.size,
            wire: Some(Wire {
                source_format: self.report.source_format.clone(),
                read_bytes: self.read,
                sent_bytes: self.streamed,
            }),
        });
    }

    async fn write_run(
        &mut self,
        to_target: &mut DuplexStream,
        plan: &mut ChunkPlan<'_>,
        run: Run,
        transfer_start: &mut Option<Instant>,
    ) -> Result<(), DeployError> {
        let source = &self.job.source;
        // Compressed chunks go to parc's helper only (it says `helper on`
        // before its first hash, so this is known before any chunk differs);
        // sh gets the bytes the controller decompressed.
        let raw = !(source.compressed() && self.report.helper);
        if source.format() == Format::Zstd {
            self.report.decompressed_on = Some(if raw { "controller" } else { "target" }.into());
        }
        if run.zero || raw {
            let verb = if run.zero { 'z' } else { 'w' };
            send(
                to_target,
                format!("{verb} {} {}\n", run.first, run.count).as_bytes(),
            )
            .await?;
        }
        if run.zero {
            return Ok(());
        }
        let start = *transfer_start.get_or_insert_with(Instant::now);
        if self.report.transfer_start_ms == 0 {
            self.report.transfer_start_ms = self.ms();
        }
        let fetch = |index: usize| {
            let source = source.clone();
            tokio::spawn(async move { source.payload(index, raw).await })
        };
        let mut next = Some(fetch(run.first));
        let end = run.first + run.count;
        for index in run.first..end {
            let Some(pending) = next.take() else { break };
            let payload = pending
                .await
                .map_err(|e| DeployError::Lost(format!("reading the image failed: {e}")))??;
            if index + 1 < end {
                next = Some(fetch(index + 1));
            }
            let sent = match &payload {
                Payload::Raw(data) => {
                    send(to_target, data).await?;
                    data.len()
                }
                Payload::Zstd(frames) => {
                    // One chunk per command: the helper needs each one's length.
                    send(
                        to_target,
                        format!("c {index} {}\n", frames.len()).as_bytes(),
                    )
                    .await?;
                    send(to_target, frames).await?;
                    frames.len()
                }
            };
            self.streamed += sent as u64;
            self.read += source.manifest.chunk_len(index);
            self.report.transfer_ms = start.elapsed().as_millis() as u64;
            if let Some(rate) = self.job.max_rate {
                let due = Duration::from_secs_f64(self.streamed as f64 / rate as f64);
                if let Some(wait) = due.checked_sub(start.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
            self.drain(plan)?;
        }
        Ok(())
    }
}

async fn send(to_target: &mut DuplexStream, bytes: &[u8]) -> Result<(), DeployError> {
    to_target
        .write_all(bytes)
        .await
        .map_err(|e| DeployError::Lost(format!("the target stopped reading: {e}")))
}
