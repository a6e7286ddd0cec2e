//! Hashing a whole image on the controller, as fast as the disk and the CPU allow.
//!
//! One thread reads the image sequentially and feeds the whole-image sha256 (which
//! is sequential by nature); the chunk hashes, independent of each other, are
//! computed by the remaining cores at the same time, so building a manifest costs
//! about one sequential sha256 pass. The sha2 crate picks the CPU's SHA extensions
//! (SHA-NI, ARMv8 SHA2) at run time. Buffers are recycled so a 1 TiB disk needs no
//! more memory than a 1 GiB one.

use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::ImageError;
use super::aligned::Aligned;
use super::digest::{chunk_sha256, hex};
use super::format::Disk;
use super::manifest::{Chunk, SECTOR};

/// What hashing an image found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hashed {
    pub size: u64,
    pub chunk_size: u64,
    pub sha256: String,
    pub chunks: Vec<Chunk>,
}

/// The manifest entry of one chunk's bytes.
pub fn chunk_entry(buf: &[u8]) -> Chunk {
    let (sha256, zero) = chunk_sha256(buf);
    Chunk { sha256, zero }
}

/// Buffers in flight between the reader and the hashers.
const DEPTH: usize = 8;

/// Hash `path` (any image format) in chunks of `chunk_size`, calling
/// `progress` with the disk bytes read so far.
#[cfg(test)]
pub fn hash_file(
    path: &std::path::Path,
    chunk_size: u64,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Hashed, ImageError> {
    hash_disk(&Disk::open(path)?, chunk_size, progress)
}

/// Hash an image already open (see `hash_file`).
pub fn hash_disk(
    disk: &Disk,
    chunk_size: u64,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Hashed, ImageError> {
    let size = disk.size();
    if !size.is_multiple_of(SECTOR) {
        return Err(ImageError::Unaligned {
            image: disk.path().to_path_buf(),
            size,
        });
    }
    let count = size.div_ceil(chunk_size) as usize;
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .saturating_sub(1)
        .max(1);

    let (free_tx, free_rx) = sync_channel::<Aligned>(DEPTH);
    for _ in 0..DEPTH.min(count) {
        let buf = Aligned::new(chunk_size.min(size) as usize);
        free_tx.send(buf).expect("the receiver is alive");
    }
    let (whole_tx, whole_rx) = sync_channel::<Arc<Aligned>>(DEPTH);
    let (work_tx, work_rx) = sync_channel::<(usize, Arc<Aligned>)>(DEPTH);
    let work_rx = Mutex::new(work_rx);
    let (done_tx, done_rx) = std::sync::mpsc::channel::<(usize, Chunk)>();

    let recycle = |buf: Arc<Aligned>| {
        // Exactly one of the two holders gets the buffer back, even when both
        // finish at the same time.
        if let Some(v) = Arc::into_inner(buf) {
            let _ = free_tx.send(v);
        }
    };

    let sha256 = std::thread::scope(|scope| -> Result<String, ImageError> {
        let whole = scope.spawn(|| {
            let mut hasher = Sha256::new();
            for buf in whole_rx {
                hasher.update(&buf[..]);
                recycle(buf);
            }
            hex(&hasher.finalize())
        });
        for _ in 0..workers {
            let done_tx = done_tx.clone();
            let (work_rx, recycle) = (&work_rx, &recycle);
            scope.spawn(move || {
                while let Some((index, buf)) = next_work(work_rx) {
                    let _ = done_tx.send((index, chunk_entry(&buf)));
                    recycle(buf);
                }
            });
        }
        let read = (|| {
            let mut done = 0u64;
            for index in 0..count {
                let len = chunk_size.min(size - done) as usize;
                let mut buf = free_rx.recv().expect("buffers come back while hashing");
                if buf.len() != len {
                    // The last, shorter chunk.
                    buf = Aligned::new(len);
                }
                disk.read_at(buf.get(len), done)?;
                let buf = Arc::new(buf);
                whole_tx
                    .send(buf.clone())
                    .expect("the whole-image hasher runs");
                work_tx.send((index, buf)).expect("the chunk hashers run");
                done += len as u64;
                progress(done);
            }
            Ok(())
        })();
        drop(whole_tx);
        drop(work_tx);
        let whole = whole.join().expect("the whole-image hasher does not panic");
        read.map(|()| whole)
    })?;
    drop(done_tx);
    let mut chunks: Vec<Option<Chunk>> = vec![None; count];
    for (index, chunk) in done_rx {
        chunks[index] = Some(chunk);
    }
    Ok(Hashed {
        size,
        chunk_size,
        sha256,
        chunks: chunks
            .into_iter()
            .map(|c| c.expect("every chunk was hashed"))
            .collect(),
    })
}

fn next_work<T>(rx: &Mutex<Receiver<T>>) -> Option<T> {
    rx.lock().ok()?.recv().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::digest::zero_hash;
    use std::io::Write;

    fn image(parts: &[(u8, usize)]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        for &(byte, len) in parts {
            f.write_all(&vec![byte; len]).unwrap();
        }
        f
    }

    #[test]
    fn chunks_and_whole_hash_match_a_plain_sha256() {
        const K: usize = 64 * 1024;
        // data, zero, data+zero mixed, then a short zero tail.
        let f = image(&[(7, K), (0, K), (9, K / 2), (0, K / 2), (0, 1024)]);
        let bytes = std::fs::read(f.path()).unwrap();
        let h = hash_file(f.path(), K as u64, &|_| {}).unwrap();
        assert_eq!(h.size, bytes.len() as u64);
        assert_eq!(h.sha256, hex(&Sha256::digest(&bytes)));
        assert_eq!(h.chunks.len(), 4);
        for (i, c) in h.chunks.iter().enumerate() {
            let end = ((i + 1) * K).min(bytes.len());
            assert_eq!(
                c.sha256,
                hex(&Sha256::digest(&bytes[i * K..end])),
                "chunk {i}"
            );
        }
        let zeros: Vec<bool> = h.chunks.iter().map(|c| c.zero).collect();
        assert_eq!(zeros, [false, true, false, true]);
        assert_eq!(h.chunks[3].sha256, zero_hash(1024));
    }

    #[test]
    fn progress_reaches_the_size_and_unaligned_images_are_refused() {
        let f = image(&[(1, 3 * 65536)]);
        let seen = std::sync::atomic::AtomicU64::new(0);
        hash_file(f.path(), 65536, &|n| {
            seen.store(n, std::sync::atomic::Ordering::Relaxed)
        })
        .unwrap();
        assert_eq!(seen.into_inner(), 3 * 65536);
        let odd = image(&[(1, 1000)]);
        assert!(matches!(
            hash_file(odd.path(), 65536, &|_| {}),
            Err(ImageError::Unaligned { size: 1000, .. })
        ));
    }
}
