//! The image as a deploy reads it: a verified manifest, and chunk reads that
//! check each chunk against the manifest the first time it is sent.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};

use super::ImageError;
use super::aligned::Aligned;
use super::build::{Differences, check_unchanged};
use super::format::{Disk, Format, decompress_into};
use super::manifest::{Manifest, hex};

pub struct ImageSource {
    disk: Disk,
    pub manifest: Manifest,
    /// Chunks already hashed against the manifest in this run: with many hosts a
    /// chunk is read many times but hashed once.
    checked: Vec<AtomicBool>,
}

impl std::fmt::Debug for ImageSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageSource")
            .field("path", &self.disk.path())
            .field("format", &self.disk.format())
            .field("size", &self.manifest.size)
            .finish_non_exhaustive()
    }
}

impl ImageSource {
    /// Load the manifest and refuse an image that no longer matches it.
    pub fn open(image: &Path) -> Result<ImageSource, ImageError> {
        let manifest = Manifest::load(image)?;
        check_unchanged(image, &manifest)?;
        let disk = Disk::open(image)?;
        let checked = (0..manifest.chunks.len())
            .map(|_| AtomicBool::new(false))
            .collect();
        Ok(ImageSource {
            disk,
            manifest,
            checked,
        })
    }

    pub fn path(&self) -> &Path {
        self.disk.path()
    }

    pub fn format(&self) -> Format {
        self.disk.format()
    }

    /// Whether chunks can travel compressed, as the image stores them.
    pub fn compressed(&self) -> bool {
        self.disk.format() == Format::Zstd
    }

    /// The bytes of chunk `index`, checked against the manifest.
    pub fn read_chunk(&self, index: usize) -> Result<Aligned, ImageError> {
        let (start, end) = self.manifest.chunk_range(index);
        let mut buf = Aligned::new((end - start) as usize);
        self.disk.read_at(buf.get(usize::MAX), start)?;
        if !self.checked[index].load(Ordering::Relaxed) {
            self.check(index, &buf)?;
        }
        Ok(buf)
    }

    fn check(&self, index: usize, data: &[u8]) -> Result<(), ImageError> {
        if hex(&Sha256::digest(data)) != self.manifest.chunks[index].sha256 {
            return Err(ImageError::Mismatch {
                image: self.path().to_path_buf(),
                differences: Differences {
                    chunks: vec![index],
                    ..Differences::default()
                },
            });
        }
        self.checked[index].store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Chunk `index` as it travels: the image's own compressed frames where
    /// they hold exactly this chunk (decompressed and checked against the
    /// manifest the first time), else its raw bytes.
    pub fn read_payload(&self, index: usize) -> Result<Payload, ImageError> {
        let (start, end) = self.manifest.chunk_range(index);
        let Some(frames) = self.disk.frames_for(start, end)? else {
            return self.read_chunk(index).map(Payload::Raw);
        };
        if !self.checked[index].load(Ordering::Relaxed) {
            let mut buf = Aligned::new((end - start) as usize);
            decompress_into(&frames, buf.get(usize::MAX)).map_err(|reason| {
                ImageError::Unreadable {
                    image: self.path().to_path_buf(),
                    format: self.format(),
                    reason: format!("chunk {index}: {reason}"),
                }
            })?;
            self.check(index, &buf)?;
        }
        Ok(Payload::Zstd(frames))
    }

    /// [`Self::read_payload`] (or [`Self::read_chunk`] when `raw`) off the
    /// async threads.
    pub async fn payload(self: &Arc<Self>, index: usize, raw: bool) -> Result<Payload, ImageError> {
        let me = self.clone();
        let read = move || match raw {
            true => me.read_chunk(index).map(Payload::Raw),
            false => me.read_payload(index),
        };
        match tokio::task::spawn_blocking(read).await {
            Ok(r) => r,
            Err(e) => Err(ImageError::Io {
                path: self.path().to_path_buf(),
                source: std::io::Error::other(e),
            }),
        }
    }
}

/// One chunk on its way to a target.
pub enum Payload {
    /// The disk's bytes.
    Raw(Aligned),
    /// zstd frames that decompress to exactly the chunk.
    Zstd(Vec<u8>),
}
