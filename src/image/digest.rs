//! Chunk digests, shared by the controller and parc's image helper (which
//! includes this file by path rather than linking the whole library, to stay
//! small: it is sent to every target). Only std and sha2 here.

use sha2::{Digest, Sha256};

static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// True when every byte is zero. Slice comparison is a `memcmp`, vectorized by
/// libc whatever the build profile, and it stops at the first data byte.
pub fn is_zero(buf: &[u8]) -> bool {
    buf.chunks(ZEROS.len())
        .all(|block| block == &ZEROS[..block.len()])
}

/// A chunk's sha256 (hex) and whether it is all zeros. Zero chunks are
/// recognised first: that costs a fraction of hashing them, and free space is
/// often zeros (new or discarded disks, holes in disk files).
pub fn chunk_sha256(buf: &[u8]) -> (String, bool) {
    let mut hasher = ChunkHasher::default();
    hasher.update(buf);
    hasher.finish()
}

/// [`chunk_sha256`] of a chunk fed in parts, so that a reader can hash each
/// part while it is still in the CPU's cache instead of reading a whole chunk
/// into memory first. Leading zero parts are only counted: a chunk that stays
/// zero to its end is never hashed.
#[derive(Default)]
pub struct ChunkHasher {
    hasher: Option<Sha256>,
    zeros: u64,
}

impl ChunkHasher {
    pub fn update(&mut self, part: &[u8]) {
        if self.hasher.is_none() {
            if is_zero(part) {
                self.zeros += part.len() as u64;
                return;
            }
            let mut hasher = Sha256::new();
            feed_zeros(&mut hasher, self.zeros);
            self.hasher = Some(hasher);
        }
        if let Some(hasher) = &mut self.hasher {
            hasher.update(part);
        }
    }

    /// The chunk's sha256 (hex) and whether it was all zeros.
    pub fn finish(self) -> (String, bool) {
        match self.hasher {
            Some(hasher) => (hex(&hasher.finalize()), false),
            None => (zero_hash(self.zeros), true),
        }
    }
}

fn feed_zeros(hasher: &mut Sha256, len: u64) {
    let mut left = len;
    while left > 0 {
        let n = left.min(ZEROS.len() as u64) as usize;
        hasher.update(&ZEROS[..n]);
        left -= n as u64;
    }
}

/// sha256 of `len` zero bytes, hex: what every all-zero chunk of that length hashes to.
pub fn zero_hash(len: u64) -> String {
    thread_local! {
        static CACHE: std::cell::RefCell<Option<(u64, String)>> = const { std::cell::RefCell::new(None) };
    }
    CACHE.with(|cache| {
        if let Some((l, h)) = &*cache.borrow()
            && *l == len
        {
            return h.clone();
        }
        let mut hasher = Sha256::new();
        feed_zeros(&mut hasher, len);
        let h = hex(&hasher.finalize());
        *cache.borrow_mut() = Some((len, h.clone()));
        h
    })
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_detection_sees_a_single_byte() {
        let mut buf = vec![0u8; 1 << 20];
        assert!(is_zero(&buf));
        buf[(1 << 20) - 1] = 1;
        assert!(!is_zero(&buf));
        buf[(1 << 20) - 1] = 0;
        buf[4095] = 0x80;
        assert!(!is_zero(&buf));
        assert!(is_zero(&[]));
    }

    #[test]
    fn a_chunk_fed_in_parts_hashes_as_a_whole() {
        let mut chunk = vec![0u8; 4 * 4096];
        let whole = |c: &[u8]| (hex(&Sha256::digest(c)), is_zero(c));
        let parts = |c: &[u8]| {
            let mut h = ChunkHasher::default();
            c.chunks(4096).for_each(|p| h.update(p));
            h.finish()
        };
        assert_eq!(parts(&chunk), whole(&chunk));
        chunk[2 * 4096 + 5] = 9; // zero parts first, then data
        assert_eq!(parts(&chunk), whole(&chunk));
        chunk[7] = 1;
        assert_eq!(parts(&chunk), whole(&chunk));
        assert_eq!(ChunkHasher::default().finish(), whole(&[]));
    }

    #[test]
    fn a_zero_chunk_gets_the_hash_of_its_zeros() {
        let zeros = vec![0u8; 3 * 512];
        assert_eq!(chunk_sha256(&zeros), (hex(&Sha256::digest(&zeros)), true));
        let data = [0u8, 0, 1];
        assert_eq!(chunk_sha256(&data), (hex(&Sha256::digest(data)), false));
    }
}
