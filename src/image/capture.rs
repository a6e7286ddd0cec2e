//! `parc image capture`: a reference machine's disk into a local sparse image,
//! or a seekable zstd one when `-o` ends in `.zst`.
//!
//! One exec: the host prints the source's size, then `dd` streams it. The
//! controller writes each chunk at its offset, skipping all-zero chunks so they
//! stay holes in the image file (or compresses it as one frame), and hashes as
//! it goes, so the manifest is ready when the last byte lands. Zero chunks still cross the wire: deciding on the
//! host which chunks are zero would need a second pass over its disk.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader, DuplexStream};

use super::build::{mtime_ns, new_manifest};
use super::convert::{ImageWriter, Output, Partial};
use super::format::Format;
use super::hash::Hashed;
use super::manifest::SECTOR;
use super::{ImageError, STDERR_KEPT};
use crate::events::{CaptureReport, Event, Events, Outcome};
use crate::transport::{Capped, Transport, quote};

/// The most read of the header line, whatever the host sends.
const HEADER_MAX: u64 = 4096;

const SCRIPT: &str = r#"S=$1
if [ -b "$S" ]; then
  SIZE=$(blockdev --getsize64 "$S" 2>/dev/null) || { set -- $(stat -L -c '%t %T' "$S"); SIZE=$(($(cat "/sys/dev/block/$((0x$1)):$((0x$2))/size") * 512)); }
elif [ -f "$S" ]; then SIZE=$(stat -L -c %s "$S")
elif [ -e "$S" ]; then echo "fail it is neither a block device nor a regular file"; exit 3
else echo "fail it does not exist"; exit 3
fi
printf 'size %s\n' "$SIZE"
exec dd if="$S" bs=1048576 2>/dev/null
"#;

/// What to capture, from the single host of the run.
pub struct CaptureJob {
    /// Device or file on the host (`--source`).
    pub source: String,
    /// Local image to create (`-o`); its manifest goes beside it.
    pub output: PathBuf,
    pub chunk_size: u64,
}

pub async fn capture_host(
    job: Arc<CaptureJob>,
    host: String,
    t: Arc<dyn Transport>,
    events: Events,
) -> Outcome {
    match capture(&job, &host, t, &events).await {
        Ok(report) => Outcome::Captured(report),
        Err(e) => Outcome::Failed {
            error: e.to_string(),
        },
    }
}

async fn capture(
    job: &CaptureJob,
    host: &str,
    t: Arc<dyn Transport>,
    events: &Events,
) -> Result<CaptureReport, ImageError> {
    let fail = |reason: String| ImageError::Capture {
        host: host.to_string(),
        reason,
    };
    let (partial, file) = Partial::create(&job.output)?;
    let output = Output::for_path(&job.output);
    let writer = ImageWriter::new(file, &partial.path, output, job.chunk_size)?;
    let command = format!(
        "sh -c {} parc-capture {}",
        quote(SCRIPT),
        quote(&job.source)
    );
    let (host_stdout, from_host) = tokio::io::duplex(4 << 20);
    let exec = async move {
        let mut stdout = host_stdout;
        // What the host says beside the image: its start, for an error.
        let mut stderr = Capped::new(STDERR_KEPT);
        let status = t
            .exec(&command, &mut tokio::io::empty(), &mut stdout, &mut stderr)
            .await;
        // Closing our end tells the reader that no more data comes.
        drop(stdout);
        (status, stderr.into_kept().bytes)
    };
    events.phase(host, "capturing");
    let receive = receive(job, host, from_host, writer, events);
    let ((status, stderr), received) = tokio::join!(exec, receive);
    let stderr = String::from_utf8_lossy(&stderr).trim().to_string();
    let status = status.map_err(|e| fail(e.to_string()))?;
    let hashed = received.map_err(|e| match e {
        Received::Image(e) => e,
        Received::Protocol(reason) if !stderr.is_empty() => fail(format!("{reason} ({stderr})")),
        Received::Protocol(reason) => fail(reason),
    })?;
    if !status.success() {
        return Err(fail(format!("the host's dd ended with {status}: {stderr}")));
    }
    partial.finish(&job.output)?;
    let file_size = std::fs::metadata(&job.output)
        .map_err(|source| ImageError::Io {
            path: job.output.clone(),
            source,
        })?
        .len();
    let format = match output {
        Output::Raw => Format::Raw,
        Output::Zstd { .. } => Format::Zstd,
    };
    let mtime = mtime_ns(&job.output)?;
    let manifest = new_manifest(&job.output, hashed, format, file_size, mtime);
    let manifest_path = manifest.save(&job.output)?;
    Ok(CaptureReport {
        source: job.source.clone(),
        image: job.output.display().to_string(),
        manifest: manifest_path.display().to_string(),
        bytes: manifest.size,
        zero_chunks: manifest.zero_chunks,
        chunks: manifest.chunks.len(),
        sha256: manifest.sha256,
    })
}

enum Received {
    Image(ImageError),
    Protocol(String),
}

impl From<ImageError> for Received {
    fn from(e: ImageError) -> Self {
        Received::Image(e)
    }
}

/// Read the size line, then the bytes, writing and hashing chunk by chunk.
async fn receive(
    job: &CaptureJob,
    host: &str,
    from_host: DuplexStream,
    mut writer: ImageWriter,
    events: &Events,
) -> Result<Hashed, Received> {
    let mut reader = BufReader::with_capacity(1 << 20, from_host);
    // A line the host sends, read at most HEADER_MAX bytes of.
    let mut header = String::new();
    (&mut reader)
        .take(HEADER_MAX)
        .read_line(&mut header)
        .await
        .map_err(|e| Received::Protocol(e.to_string()))?;
    let header = header.trim();
    if let Some(reason) = header.strip_prefix("fail ") {
        return Err(Received::Protocol(format!("{} {reason}", job.source)));
    }
    let size: u64 = header
        .strip_prefix("size ")
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| Received::Protocol("the host did not report the source's size".into()))?;
    if !size.is_multiple_of(SECTOR) {
        return Err(Received::Protocol(format!(
            "{} is {size} bytes, not whole 512-byte sectors, so it is not a disk",
            job.source
        )));
    }
    let count = size.div_ceil(job.chunk_size) as usize;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    // Hashing, compressing and writing off the async threads, in order.
    let writer = tokio::task::spawn_blocking(move || -> Result<Hashed, ImageError> {
        while let Some(buf) = rx.blocking_recv() {
            writer.chunk(&buf)?;
        }
        writer.finish()
    });
    let mut received = 0u64;
    let mut last_progress = Instant::now();
    let mut short = None;
    for _ in 0..count {
        let len = job.chunk_size.min(size - received) as usize;
        let mut buf = vec![0u8; len];
        if let Err(e) = reader.read_exact(&mut buf).await {
            short = Some(e);
            break;
        }
        received += len as u64;
        if tx.send(buf).await.is_err() {
            break;
        }
        if last_progress.elapsed() >= Duration::from_millis(200) || received == size {
            last_progress = Instant::now();
            events.send(Event::HostProgress {
                host: host.to_string(),
                done_bytes: received,
                total_bytes: size,
                wire: None,
            });
        }
    }
    drop(tx);
    let written = writer
        .await
        .map_err(|e| Received::Protocol(format!("the image writer failed: {e}")))?;
    let hashed = written?;
    if let Some(e) = short {
        return Err(Received::Protocol(format!(
            "the stream ended after {received} of {size} bytes ({e})"
        )));
    }
    Ok(hashed)
}
