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
use crate::error::{Ended, ParcError};
use crate::image::capture::CaptureJob;
use crate::image::convert;
use crate::image::deploy::DeployJob;
use crate::image::deploy::helper::Helper;
use crate::image::{self, ImageSource};

#[derive(Debug, Clone, Subcommand)]
pub enum ImageCommand {
    /// Hash an image (every core, SHA extensions) and write IMAGE.parc-manifest.json beside it.
    /// Raw, seekable zstd and qcow2 images are recognised by their content.
    Build {
        image: PathBuf,
        /// Unit of delta and verification; a power of two from 64KiB to 1GiB.
        #[arg(long, default_value = "4MiB")]
        chunk_size: ByteSize,
        /// Also write IMAGE.zst, seekable zstd with one frame per chunk (zstd or
        /// zstd:LEVEL, 1-22), and its manifest: deploys then send it compressed.
        #[arg(long, value_name = "zstd[:LEVEL]", value_parser = convert::Output::parse)]
        compress: Option<convert::Output>,
    },
    /// Rewrite an image (raw, seekable zstd, qcow2, or a plain .zst/.gz stream)
    /// as seekable zstd (OUTPUT ending in .zst) or sparse raw, with its manifest.
    Convert {
        input: PathBuf,
        /// Must not exist; `.zst` makes seekable zstd, anything else raw.
        output: PathBuf,
        #[arg(long, default_value = "4MiB")]
        chunk_size: ByteSize,
        /// zstd level for a .zst OUTPUT (zstd or zstd:LEVEL).
        #[arg(long, value_name = "zstd[:LEVEL]", value_parser = convert::Output::parse)]
        compress: Option<convert::Output>,
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
        /// Local image to create (must not exist); ending in `.zst`, it is
        /// written as seekable zstd.
        #[arg(short, long)]
        output: PathBuf,
        #[arg(long, default_value = "4MiB")]
        chunk_size: ByteSize,
    },
}

pub async fn run(cli: &Cli, command: &ImageCommand) -> Result<Ended, ParcError> {
    match command {
        ImageCommand::Build {
            image,
            chunk_size,
            compress,
        } => {
            build(cli, image, chunk_size.as_u64())?;
            match compress {
                Some(to) => {
                    let mut out = image.as_os_str().to_owned();
                    out.push(".zst");
                    convert_to(cli, image, Path::new(&out), *to, chunk_size.as_u64())
                }
                None => Ok(Ended::Done),
            }
        }
        ImageCommand::Convert {
            input,
            output,
            chunk_size,
            compress,
        } => {
            let to = match (compress, convert::Output::for_path(output)) {
                (Some(level), convert::Output::Zstd { .. }) => *level,
                (Some(_), convert::Output::Raw) => {
                    return Err(image::ImageError::RawOutputCompressed {
                        output: output.clone(),
                    }
                    .into());
                }
                (None, to) => to,
            };
            convert_to(cli, input, output, to, chunk_size.as_u64())
        }
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
            Ok(Ended::Run(summary))
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
            Ok(Ended::Run(summary))
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
    // The disk's size, which a compressed image's file is not.
    let size = match image::format::Disk::open(image) {
        Ok(disk) => disk.size(),
        Err(_) => std::fs::metadata(image).ok()?.len(),
    };
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

fn build(cli: &Cli, path: &Path, chunk_size: u64) -> Result<Ended, ParcError> {
    let started = Instant::now();
    let built = with_bar(cli, path, |progress| {
        image::build(path, chunk_size, progress)
    })?;
    say_built(cli, built, started)
}

fn convert_to(
    cli: &Cli,
    input: &Path,
    output: &Path,
    to: convert::Output,
    chunk_size: u64,
) -> Result<Ended, ParcError> {
    let started = Instant::now();
    let written = with_bar(cli, input, |progress| {
        convert::convert(input, output, to, chunk_size, progress)
    })?;
    say_built(cli, written, started)
}

/// Run `work` on `image` with a byte bar on a terminal.
fn with_bar<T>(
    cli: &Cli,
    image: &Path,
    work: impl FnOnce(&(dyn Fn(u64) + Sync)) -> Result<T, image::ImageError>,
) -> Result<T, ParcError> {
    let bar = hashing_bar(cli, image);
    let done = work(&|n| {
        if let Some(b) = &bar {
            b.set_position(n)
        }
    });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    Ok(done?)
}

/// The manifest just written, for people or as JSON.
fn say_built(
    cli: &Cli,
    (manifest, manifest_path): (image::Manifest, PathBuf),
    started: Instant,
) -> Result<Ended, ParcError> {
    let secs = started.elapsed().as_secs_f64();
    if cli.json {
        say(&serde_json::json!({
            "manifest": manifest_path,
            "size": manifest.size,
            "chunk_size": manifest.chunk_size,
            "chunks": manifest.chunks.len(),
            "zero_chunks": manifest.zero_chunks,
            "sha256": manifest.sha256,
            "format": manifest.format(),
            "file_size": manifest.file_size(),
            "elapsed_ms": (secs * 1000.0) as u64,
        })
        .to_string())?;
    } else {
        let stored = match manifest.format() {
            image::format::Format::Raw => String::new(),
            format => format!(
                " stored as {format} in {} ({:.1}%)",
                ByteSize(manifest.file_size()).display().iec(),
                manifest.file_size() as f64 * 100.0 / manifest.size.max(1) as f64
            ),
        };
        say(&format!(
            "{}: {}{stored} in {} chunks of {} ({} zero), sha256 {}; hashed in {secs:.2}s ({}/s)",
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
    Ok(Ended::Done)
}

fn verify(cli: &Cli, path: &Path) -> Result<Ended, ParcError> {
    let (manifest, differences) = with_bar(cli, path, |progress| image::verify(path, progress))?;
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
    Ok(Ended::ImageChecked { matches })
}
