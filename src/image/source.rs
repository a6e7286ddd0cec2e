//! The image as a deploy reads it: a verified manifest, and chunk reads that
//! check each chunk against the manifest the first time it is sent.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};

use super::ImageError;
use super::aligned::Aligned;
use super::build::{Differences, check_unchanged};
use super::manifest::{Manifest, hex};

pub struct ImageSource {
    path: PathBuf,
    file: File,
    pub manifest: Manifest,
    /// Chunks already hashed against the manifest in this run: with many hosts a
    /// chunk is read many times but hashed once.
    checked: Vec<AtomicBool>,
}

impl std::fmt::Debug for ImageSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageSource")
            .field("path", &self.path)
            .field("size", &self.manifest.size)
            .finish_non_exhaustive()
    }
}

impl ImageSource {
    /// Load the manifest and refuse an image that no longer matches it.
    pub fn open(image: &Path) -> Result<ImageSource, ImageError> {
        let manifest = Manifest::load(image)?;
        check_unchanged(image, &manifest)?;
        let file = File::open(image).map_err(|source| ImageError::Io {
            path: image.to_path_buf(),
            source,
        })?;
        let checked = (0..manifest.chunks.len())
            .map(|_| AtomicBool::new(false))
            .collect();
        Ok(ImageSource {
            path: image.to_path_buf(),
            file,
            manifest,
            checked,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The bytes of chunk `index`, checked against the manifest.
    pub fn read_chunk(&self, index: usize) -> Result<Aligned, ImageError> {
        let (start, end) = self.manifest.chunk_range(index);
        let mut buf = Aligned::new((end - start) as usize);
        self.file
            .read_exact_at(buf.get(usize::MAX), start)
            .map_err(|source| ImageError::Io {
                path: self.path.clone(),
                source,
            })?;
        if !self.checked[index].load(Ordering::Relaxed) {
            if hex(&Sha256::digest(&buf[..])) != self.manifest.chunks[index].sha256 {
                return Err(ImageError::Mismatch {
                    image: self.path.clone(),
                    differences: Differences {
                        chunks: vec![index],
                        ..Differences::default()
                    },
                });
            }
            self.checked[index].store(true, Ordering::Relaxed);
        }
        Ok(buf)
    }

    /// [`Self::read_chunk`] off the async threads.
    pub async fn chunk(self: &Arc<Self>, index: usize) -> Result<Aligned, ImageError> {
        let me = self.clone();
        match tokio::task::spawn_blocking(move || me.read_chunk(index)).await {
            Ok(r) => r,
            Err(e) => Err(ImageError::Io {
                path: self.path.clone(),
                source: std::io::Error::other(e),
            }),
        }
    }
}
