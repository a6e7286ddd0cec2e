//! `parc image build` and `parc image verify`: the controller-side manifest work.

use std::path::{Path, PathBuf};

use super::ImageError;
use super::format::{Disk, Format};
use super::hash::{Hashed, hash_disk};
use super::manifest::{FORMAT_NAME, FORMAT_VERSION, Manifest, Stored, check_chunk_size};

/// Hash `image` (raw, seekable zstd or qcow2) and write its manifest beside it.
pub fn build(
    image: &Path,
    chunk_size: u64,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(Manifest, PathBuf), ImageError> {
    check_chunk_size(chunk_size).map_err(|reason| ImageError::ChunkSize { reason })?;
    let mtime = mtime_ns(image)?;
    let disk = Disk::open(image)?;
    let hashed = hash_disk(&disk, chunk_size, progress)?;
    let manifest = new_manifest(image, hashed, disk.format(), disk.file_size(), mtime);
    let path = manifest.save(image)?;
    Ok((manifest, path))
}

/// The manifest of `image` from its hashes.
pub fn new_manifest(
    image: &Path,
    hashed: Hashed,
    format: Format,
    file_size: u64,
    mtime_ns: i128,
) -> Manifest {
    Manifest {
        format: FORMAT_NAME.to_string(),
        version: FORMAT_VERSION,
        image: image
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        size: hashed.size,
        chunk_size: hashed.chunk_size,
        sha256: hashed.sha256,
        image_mtime_ns: mtime_ns,
        zero_chunks: hashed.chunks.iter().filter(|c| c.zero).count(),
        chunks: hashed.chunks,
        stored: (format != Format::Raw).then_some(Stored { format, file_size }),
    }
}

/// How an image differs from its manifest; empty when it matches.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Differences {
    /// (manifest, image) sizes when they differ.
    pub size: Option<(u64, u64)>,
    /// Chunks whose bytes no longer hash to the manifest's sha256.
    pub chunks: Vec<usize>,
    pub whole_image: bool,
}

impl Differences {
    pub fn is_empty(&self) -> bool {
        self.size.is_none() && self.chunks.is_empty() && !self.whole_image
    }
}

impl std::fmt::Display for Differences {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some((expected, found)) = self.size {
            return write!(f, "its size is {found} bytes, the manifest says {expected}");
        }
        match self.chunks.as_slice() {
            [] if self.whole_image => write!(f, "its whole-image sha256 differs"),
            [] => write!(f, "it matches"),
            [one] => write!(f, "chunk {one} differs"),
            many => {
                let shown: Vec<String> = many.iter().take(10).map(|i| i.to_string()).collect();
                let more = if many.len() > 10 { ", ..." } else { "" };
                write!(
                    f,
                    "{} chunks differ ({}{more})",
                    many.len(),
                    shown.join(", ")
                )
            }
        }
    }
}

/// Re-hash `image` and compare it with `manifest`.
pub fn compare(
    image: &Path,
    manifest: &Manifest,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Differences, ImageError> {
    let disk = Disk::open(image)?;
    let size = disk.size();
    if size != manifest.size {
        return Ok(Differences {
            size: Some((manifest.size, size)),
            ..Differences::default()
        });
    }
    let hashed = hash_disk(&disk, manifest.chunk_size, progress)?;
    Ok(Differences {
        size: None,
        chunks: hashed
            .chunks
            .iter()
            .zip(&manifest.chunks)
            .enumerate()
            .filter(|(_, (found, expected))| found.sha256 != expected.sha256)
            .map(|(i, _)| i)
            .collect(),
        whole_image: hashed.sha256 != manifest.sha256,
    })
}

/// `parc image verify`: the manifest, and how the image differs from it.
pub fn verify(
    image: &Path,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<(Manifest, Differences), ImageError> {
    let manifest = Manifest::load(image)?;
    let differences = compare(image, &manifest, progress)?;
    Ok((manifest, differences))
}

/// The check a deploy makes before sending anything: cheap when the image was
/// not touched since its manifest was built (same size and mtime), a full
/// re-hash otherwise. Chunks are hashed again as they are sent, so a change
/// made behind an unchanged mtime is still caught before it reaches a target.
pub fn check_unchanged(image: &Path, manifest: &Manifest) -> Result<(), ImageError> {
    let meta = std::fs::metadata(image).map_err(|source| ImageError::Io {
        path: image.to_path_buf(),
        source,
    })?;
    if meta.len() == manifest.file_size() && mtime_ns(image)? == manifest.image_mtime_ns {
        return Ok(());
    }
    let differences = compare(image, manifest, &|_| {})?;
    if differences.is_empty() {
        Ok(())
    } else {
        Err(ImageError::Mismatch {
            image: image.to_path_buf(),
            differences,
        })
    }
}

pub fn mtime_ns(path: &Path) -> Result<i128, ImageError> {
    let modified = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|source| ImageError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(match modified.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};

    fn sample(dir: &Path) -> PathBuf {
        let path = dir.join("golden.img");
        let mut data = vec![0u8; 4 * 65536];
        data[..65536].fill(0xab);
        data[3 * 65536 + 17] = 1;
        std::fs::write(&path, data).unwrap();
        path
    }

    #[test]
    fn build_writes_a_manifest_that_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let image = sample(dir.path());
        let (built, path) = build(&image, 65536, &|_| {}).unwrap();
        assert_eq!(path, dir.path().join("golden.img.parc-manifest.json"));
        assert_eq!(Manifest::load(&image).unwrap(), built);
        assert_eq!(built.zero_chunks, 2);
        assert_eq!(built.data_bytes(), 2 * 65536);
        assert_eq!(built.image, "golden.img");
        let (_, diff) = verify(&image, &|_| {}).unwrap();
        assert!(diff.is_empty(), "{diff}");
        check_unchanged(&image, &built).unwrap();
    }

    #[test]
    fn verify_names_the_changed_chunk_and_deploy_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let image = sample(dir.path());
        let (built, _) = build(&image, 65536, &|_| {}).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&image)
            .unwrap();
        f.seek(SeekFrom::Start(2 * 65536 + 5)).unwrap();
        f.write_all(b"x").unwrap();
        drop(f);
        let (_, diff) = verify(&image, &|_| {}).unwrap();
        assert_eq!(diff.chunks, vec![2]);
        assert!(diff.whole_image);
        assert_eq!(diff.to_string(), "chunk 2 differs");
        let err = check_unchanged(&image, &built).unwrap_err();
        assert!(err.to_string().contains("chunk 2 differs"), "{err}");
    }

    #[test]
    fn a_grown_image_is_reported_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let image = sample(dir.path());
        build(&image, 65536, &|_| {}).unwrap();
        let f = std::fs::OpenOptions::new()
            .append(true)
            .open(&image)
            .unwrap();
        f.set_len(5 * 65536).unwrap();
        let (_, diff) = verify(&image, &|_| {}).unwrap();
        assert_eq!(diff.size, Some((4 * 65536, 5 * 65536)));
    }

    #[test]
    fn bad_chunk_sizes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let image = sample(dir.path());
        for size in [1000, 4096, 3 * 65536, 2 << 30] {
            assert!(matches!(
                build(&image, size, &|_| {}),
                Err(ImageError::ChunkSize { .. })
            ));
        }
    }
}
