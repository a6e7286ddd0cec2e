//! `parc image ...`: inputs in, `crate::image` / `engine::imaging` call, output out.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use bytesize::ByteSize;
use clap::Subcommand;

use super::Cli;
use super::session::{Session, select};
use crate::engine::imaging;
use crate::error::{ParcError, exit, exit_for};
use crate::image::capture::CaptureJob;
use crate::image::deploy::DeployJob;
use crate::image::deploy::helper::Helper;
use crate::image::{self, ImageSource};

#[derive(Debug, Clone, Subcommand)]
pub enum ImageCommand {
    /// Hash an image (every core, SHA extensions) and write IMAGE.parc-manifest.json beside it.
    Build {
        image: PathBuf,
        /// Unit of delta and verification; a power of two from 64KiB to 1GiB.
        #[arg(long, default_value = "4MiB")]
        chunk_size: ByteSize,
    },
    /// Re-hash an image and compare it with its manifest (exit 6 if it differs).
    Verify { image: PathBuf },
    /// Write an image onto a disk (or disk file) of every host matching --to, in
    /// parallel: only differing chunks are sent, every written chunk is read back.
    Deploy {
        image: PathBuf,
        /// Host pattern, as for `parc run`.
        #[arg(long)]
        to: String,
        /// Device or file on each host, e.g. /dev/sda.
        #[arg(long)]
        target: String,
        /// Hosts worked on at once.
        #[arg(long, default_value_t = 64)]
        parallel: usize,
        /// Write even if the target is mounted (never if it backs the running system).
        #[arg(long)]
        force: bool,
        /// Most bytes per second sent to each host (e.g. 50MiB), to spare a shared link.
        #[arg(long)]
        max_rate: Option<ByteSize>,
        /// Drive every target with its sh and core utilities only: do not send
        /// parc's image helper (sent by default where it runs, removed after).
        #[arg(long)]
        no_helper: bool,
    },
    /// Stream a host's disk into a local sparse image and write its manifest.
    Capture {
        /// One host of the inventory.
        host: String,
        /// Device or file on the host, e.g. /dev/sda.
        #[arg(long)]
        source: String,
        /// Local image to create (must not exist).
        #[arg(short, long)]
        output: PathBuf,
        #[arg(long, default_value = "4MiB")]
        chunk_size: ByteSize,
    },
}

pub async fn run(cli: &Cli, command: &ImageCommand) -> Result<u8, ParcError> {
    match command {
        ImageCommand::Build { image, chunk_size } => build(cli, image, chunk_size.as_u64()),
        ImageCommand::Verify { image } => verify(cli, image),
        ImageCommand::Deploy {
            image,
            to,
            target,
            parallel,
            force,
            max_rate,
            no_helper,
        } => {
            // Refuse a bad image before connecting to anything.
            let source = Arc::new(ImageSource::open(image)?);
            let job = Arc::new(DeployJob {
                source,
                target: target.clone(),
                force: *force,
                max_rate: max_rate.map(|r| r.as_u64()).filter(|&r| r > 0),
                helper: if *no_helper {
                    None
                } else {
                    Helper::locate().map(Arc::new)
                },
            });
            let (s, hosts) =
                Session::start(cli, *parallel, quiet(), None, |ctx| select(ctx, cli, to))?;
            let (_, summary) = imaging::deploy(&s.ctx, &s.run_id, hosts, job).await;
            s.finish(cli).await;
            Ok(exit_for(&summary))
        }
        ImageCommand::Capture {
            host,
            source,
            output,
            chunk_size,
        } => {
            crate::image::manifest::check_chunk_size(chunk_size.as_u64())
                .map_err(|reason| image::ImageError::ChunkSize { reason })?;
            let job = Arc::new(CaptureJob {
                source: source.clone(),
                output: output.clone(),
                chunk_size: chunk_size.as_u64(),
            });
            let (s, ()) = Session::start(cli, 1, quiet(), None, |_| Ok(()))?;
            let (_, summary) = imaging::capture(&s.ctx, &s.run_id, host.clone(), job).await;
            s.finish(cli).await;
            Ok(exit_for(&summary))
        }
    }
}

/// Imaging prints one line per host; there are no resources or command output.
fn quiet() -> crate::ui::Options {
    crate::ui::Options {
        show_output: false,
        show_changes: false,
    }
}

/// A byte bar on a terminal for the local hashing commands; nothing otherwise.
fn hashing_bar(cli: &Cli, image: &Path) -> Option<indicatif::ProgressBar> {
    if cli.json || !std::io::stderr().is_terminal() {
        return None;
    }
    let size = std::fs::metadata(image).ok()?.len();
    let bar = indicatif::ProgressBar::new(size);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "hashing [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    Some(bar)
}

fn say(text: &str) -> Result<(), ParcError> {
    writeln!(std::io::stdout(), "{text}").map_err(|source| ParcError::Output {
        what: "the result",
        source,
    })
}

fn build(cli: &Cli, path: &Path, chunk_size: u64) -> Result<u8, ParcError> {
    let started = Instant::now();
    let bar = hashing_bar(cli, path);
    let (manifest, manifest_path) = image::build(path, chunk_size, &|n| {
        if let Some(b) = &bar {
            b.set_position(n)
        }
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let secs = started.elapsed().as_secs_f64();
    if cli.json {
        say(&serde_json::json!({
            "manifest": manifest_path,
            "size": manifest.size,
            "chunk_size": manifest.chunk_size,
            "chunks": manifest.chunks.len(),
            "zero_chunks": manifest.zero_chunks,
            "sha256": manifest.sha256,
            "elapsed_ms": (secs * 1000.0) as u64,
        })
        .to_string())?;
    } else {
        say(&format!(
            "{}: {} in {} chunks of {} ({} zero), sha256 {}; hashed in {secs:.2}s ({}/s)",
            manifest_path.display(),
            ByteSize(manifest.size).display().iec(),
            manifest.chunks.len(),
            ByteSize(manifest.chunk_size).display().iec(),
            manifest.zero_chunks,
            manifest.sha256,
            ByteSize((manifest.size as f64 / secs.max(1e-6)) as u64)
                .display()
                .iec(),
        ))?;
    }
    Ok(exit::OK)
}

fn verify(cli: &Cli, path: &Path) -> Result<u8, ParcError> {
    let bar = hashing_bar(cli, path);
    let (manifest, differences) = image::verify(path, &|n| {
        if let Some(b) = &bar {
            b.set_position(n)
        }
    })?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let matches = differences.is_empty();
    if cli.json {
        say(&serde_json::json!({
            "image": path,
            "matches": matches,
            "differences": differences,
        })
        .to_string())?;
    } else if matches {
        say(&format!(
            "{} matches its manifest ({} chunks, sha256 {})",
            path.display(),
            manifest.chunks.len(),
            manifest.sha256
        ))?;
    } else {
        say(&format!(
            "{} does NOT match its manifest: {differences}",
            path.display()
        ))?;
    }
    Ok(if matches {
        exit::OK
    } else {
        exit::IMAGE_MISMATCH
    })
}
