//! Disk imaging: build a manifest, verify an image, deploy it to many hosts with
//! delta and read-back verification, capture a reference machine's disk.
//!
//! Architecture note. An image is a raw disk file plus its manifest
//! (`IMAGE.parc-manifest.json`: chunk size, the sha256 of every chunk with zero
//! chunks marked, the sha256 of the whole image). Everything else follows from
//! comparing chunk hashes:
//!
//! - `build` / `verify` ([`build`], [`hash`]) hash on the controller, one core on
//!   the sequential whole-image hash and the others on chunks.
//! - `deploy` ([`deploy`]) runs ONE exec per host: an sh script (only sh, dd and
//!   a sha256 tool needed on the target, nothing installed) that reports what the
//!   target is (for the safety refusals), then (itself, or parc's small helper
//!   sent along and removed after, see [`deploy::helper`]) hashes the target's
//!   chunks in the background while the controller streams, on the same stdin,
//!   only the chunks whose hash differs. Every written chunk is handed to a read-back worker that
//!   re-reads it with direct I/O and hashes it; mismatches are rewritten, a
//!   bounded number of times. Probe, transfer and read-back overlap, so a full
//!   deploy costs little more than its transfer, and a re-deploy costs one
//!   hashing pass of the target plus what differs.
//! - `capture` ([`capture`]) streams a host's disk into a local sparse image and
//!   builds its manifest on the way.
//!
//! Fleet orchestration (parallel hosts, events) lives in `engine::imaging`.

pub mod aligned;
pub mod build;
pub mod capture;
pub mod convert;
pub mod deploy;
pub mod digest;
pub mod format;
pub mod hash;
pub mod manifest;
mod source;

use std::path::PathBuf;

pub use build::{Differences, build, verify};
pub use manifest::Manifest;
pub use source::{ImageSource, Payload};

use crate::location::Location;

/// What of an image helper's stderr the controller keeps (capture,
/// deploy): enough for an error's words, whatever the host sends.
const STDERR_KEPT: usize = 64 << 10;

/// Errors about images and manifests on the controller. Problems on a target are
/// host outcomes, not errors of the whole command.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot access {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{image} has no manifest ({manifest} is missing): parc needs it to know what the image holds; run `parc image build {image}` first"
    )]
    NoManifest { image: PathBuf, manifest: PathBuf },
    #[error(
        "{location}: this manifest is not valid JSON ({source}); rebuild it with `parc image build`"
    )]
    ManifestSyntax {
        location: Location,
        source: serde_json::Error,
    },
    #[error(
        "{location}: this manifest has format version {}, and this parc reads only version {}; rebuild it with this parc's `parc image build`",
        found.map_or("(none)".to_string(), |v| v.to_string()),
        manifest::FORMAT_VERSION
    )]
    ManifestVersion {
        location: Location,
        found: Option<u32>,
    },
    #[error(
        "{location}: this manifest cannot be used: {reason}; rebuild it with `parc image build`"
    )]
    ManifestInvalid { location: Location, reason: String },
    #[error(
        "{image} is {size} bytes, not a whole number of 512-byte sectors: disk images are made of sectors, and the target's direct I/O needs them; pad it (truncate -s) or check it is really a disk image"
    )]
    Unaligned { image: PathBuf, size: u64 },
    #[error("{reason}")]
    ChunkSize { reason: String },
    #[error(
        "{image} no longer matches its manifest: {differences}. Nothing was deployed; if the change is intended, run `parc image build` again"
    )]
    Mismatch {
        image: PathBuf,
        differences: Differences,
    },
    #[error(
        "{path} already exists: parc will not overwrite an image; remove it or choose another -o"
    )]
    Exists { path: PathBuf },
    #[error(
        "{image} is a plain {stream} stream, which can only be read from its start: every host would decompress all of it to reach its chunks. Make it a seekable image once with `parc image convert {image} {}` (or a raw one), and build and deploy that",
        converted_name(image)
    )]
    NotSeekable {
        image: PathBuf,
        stream: &'static str,
    },
    #[error(
        "--compress asks for seekable zstd, and {output} does not end in .zst, which is how parc names (and a later run recognises) a compressed image; name the output IMAGE.zst"
    )]
    RawOutputCompressed { output: PathBuf },
    #[error("{image} cannot be read as a {format} image: {reason}; nothing was sent")]
    Unreadable {
        image: PathBuf,
        format: format::Format,
        reason: String,
    },
    #[error("capture from {host} failed: {reason}; the partial image was removed")]
    Capture { host: String, reason: String },
}

/// Where `parc image convert` would best put a seekable copy of `image`.
fn converted_name(image: &std::path::Path) -> String {
    let name = image.display().to_string();
    let stem = [".zst", ".zstd", ".gz", ".xz"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
        .unwrap_or(&name);
    format!("{stem}.seekable.zst")
}
