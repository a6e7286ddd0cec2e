//! The manifest beside every image: `IMAGE.parc-manifest.json`.
//!
//! It is what makes delta deploys and read-back verification possible without
//! keeping anything on the targets: a target only has to hash its own chunks and
//! the controller compares them with these. It is JSON so that other tools (and
//! people) can read it, and carries a format version so a future parc can refuse
//! or convert an old one instead of misreading it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ImageError;
pub use super::digest::{hex, zero_hash};
use super::format::Format;
use crate::location::Location;

/// The only manifest layout this parc reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Marks the file as ours, so a stray JSON file is not mistaken for a manifest.
pub const FORMAT_NAME: &str = "parc-image-manifest";
/// Disk images are made of sectors; every offset parc uses (and `dd iflag=direct`
/// on the target) must be aligned to them.
pub const SECTOR: u64 = 512;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    /// The image's file name when the manifest was built (for people).
    pub image: String,
    /// Image size in bytes.
    pub size: u64,
    pub chunk_size: u64,
    /// sha256 of the whole image, hex.
    pub sha256: String,
    /// The image's modification time (ns since the epoch) when it was hashed: a
    /// deploy re-hashes the whole image only when this changed.
    pub image_mtime_ns: i128,
    pub zero_chunks: usize,
    pub chunks: Vec<Chunk>,
    /// How the image file stores the disk when it is not raw: the hashes above
    /// are always of the disk's raw bytes, so the same target results.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored: Option<Stored>,
}

/// A compressed or qcow2 image file, as it was when the manifest was built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stored {
    pub format: Format,
    /// The image file's own size in bytes.
    pub file_size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chunk {
    pub sha256: String,
    /// Every byte of the chunk is zero: it is never sent, only zeroed on the target.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub zero: bool,
}

impl Manifest {
    /// Where the manifest of `image` lives.
    pub fn path_for(image: &Path) -> PathBuf {
        let mut name = image.as_os_str().to_owned();
        name.push(".parc-manifest.json");
        PathBuf::from(name)
    }

    /// The format the image file has, raw unless the manifest says otherwise.
    pub fn format(&self) -> Format {
        self.stored.as_ref().map_or(Format::Raw, |s| s.format)
    }

    /// The image file's size: the disk's size when it is raw.
    pub fn file_size(&self) -> u64 {
        self.stored.as_ref().map_or(self.size, |s| s.file_size)
    }

    pub fn chunk_count(size: u64, chunk_size: u64) -> usize {
        size.div_ceil(chunk_size) as usize
    }

    /// Byte range of chunk `index` in the image.
    pub fn chunk_range(&self, index: usize) -> (u64, u64) {
        let start = index as u64 * self.chunk_size;
        (start, (start + self.chunk_size).min(self.size))
    }

    pub fn chunk_len(&self, index: usize) -> u64 {
        let (start, end) = self.chunk_range(index);
        end - start
    }

    /// Bytes of the image that are not in zero chunks: what a full deploy sends.
    pub fn data_bytes(&self) -> u64 {
        (0..self.chunks.len())
            .filter(|&i| !self.chunks[i].zero)
            .map(|i| self.chunk_len(i))
            .sum()
    }

    pub fn load(image: &Path) -> Result<Manifest, ImageError> {
        let path = Self::path_for(image);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ImageError::NoManifest {
                    image: image.to_path_buf(),
                    manifest: path,
                });
            }
            Err(source) => return Err(ImageError::Io { path, source }),
        };
        Self::parse(&path, &text)
    }

    /// Parse and check a manifest's text; `path` is used in messages only.
    pub fn parse(path: &Path, text: &str) -> Result<Manifest, ImageError> {
        let at = |line: usize, column: usize| Location {
            file: path.to_path_buf(),
            line,
            column,
        };
        // Read the header alone first, so a manifest of another version gets a
        // version message rather than whatever field it lacks.
        #[derive(Deserialize)]
        struct Header {
            format: Option<String>,
            version: Option<u32>,
        }
        let header: Header =
            serde_json::from_str(text).map_err(|source| ImageError::ManifestSyntax {
                location: at(source.line(), source.column()),
                source,
            })?;
        if header.format.as_deref() != Some(FORMAT_NAME) {
            return Err(ImageError::ManifestInvalid {
                location: at(1, 1),
                reason: format!(
                    "its `format` is not \"{FORMAT_NAME}\", so it is not a parc image manifest"
                ),
            });
        }
        if header.version != Some(FORMAT_VERSION) {
            return Err(ImageError::ManifestVersion {
                location: at(1, 1),
                found: header.version,
            });
        }
        let manifest: Manifest =
            serde_json::from_str(text).map_err(|source| ImageError::ManifestSyntax {
                location: at(source.line(), source.column()),
                source,
            })?;
        manifest
            .check()
            .map_err(|reason| ImageError::ManifestInvalid {
                location: at(1, 1),
                reason,
            })?;
        Ok(manifest)
    }

    /// Internal consistency: everything a deploy relies on without re-checking.
    fn check(&self) -> Result<(), String> {
        check_chunk_size(self.chunk_size)?;
        if !self.size.is_multiple_of(SECTOR) {
            return Err(format!(
                "size {} is not a multiple of {SECTOR}-byte sectors",
                self.size
            ));
        }
        let expected = Self::chunk_count(self.size, self.chunk_size);
        if self.chunks.len() != expected {
            return Err(format!(
                "it lists {} chunks but an image of {} bytes in chunks of {} has {expected}",
                self.chunks.len(),
                self.size,
                self.chunk_size
            ));
        }
        let hex = |h: &str| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex(&self.sha256) {
            return Err("the image's sha256 is not 64 hex digits".into());
        }
        if let Some(i) = self.chunks.iter().position(|c| !hex(&c.sha256)) {
            return Err(format!("chunk {i}'s sha256 is not 64 hex digits"));
        }
        for (i, c) in self.chunks.iter().enumerate() {
            if c.zero && c.sha256 != zero_hash(self.chunk_len(i)) {
                return Err(format!(
                    "chunk {i} is marked zero but its sha256 is not that of zeros"
                ));
            }
        }
        if self.zero_chunks != self.chunks.iter().filter(|c| c.zero).count() {
            return Err("`zero_chunks` does not count the chunks marked zero".into());
        }
        if self
            .stored
            .as_ref()
            .is_some_and(|s| s.format == Format::Raw)
        {
            return Err("`stored` names the raw format, which a manifest leaves out".into());
        }
        Ok(())
    }

    /// Write atomically (temp file + rename): a crash never leaves half a manifest
    /// that a later deploy would trust.
    pub fn save(&self, image: &Path) -> Result<PathBuf, ImageError> {
        let path = Self::path_for(image);
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let json = serde_json::to_string_pretty(self).expect("a manifest always serializes");
        std::fs::write(&tmp, json + "\n").map_err(|source| ImageError::Io {
            path: tmp.clone(),
            source,
        })?;
        std::fs::rename(&tmp, &path).map_err(|source| ImageError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }
}

/// Chunk sizes parc accepts: sector-aligned for direct I/O on the target, not so
/// small that a disk has millions of chunks, not so large that one bad byte
/// resends a large part of the image.
pub fn check_chunk_size(chunk_size: u64) -> Result<(), String> {
    const MIN: u64 = 64 * 1024;
    const MAX: u64 = 1024 * 1024 * 1024;
    if !(MIN..=MAX).contains(&chunk_size) || !chunk_size.is_power_of_two() {
        return Err(format!(
            "chunk size {chunk_size} must be a power of two from 64 KiB to 1 GiB"
        ));
    }
    Ok(())
}
