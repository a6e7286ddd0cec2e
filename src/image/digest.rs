//! Chunk digests, shared by the controller and parc's image helper (which
//! includes this file by path rather than linking the whole library, to stay
//! small: it is sent to every target). Only std and sha2 here.

use sha2::{Digest, Sha256};

/// True when every byte is zero. Slice comparison is a `memcmp`, vectorized by
/// libc whatever the build profile, and it stops at the first data byte.
pub fn is_zero(buf: &[u8]) -> bool {
    static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];
    buf.chunks(ZEROS.len())
        .all(|block| block == &ZEROS[..block.len()])
}

/// A chunk's sha256 (hex) and whether it is all zeros. Zero chunks are
/// recognised first: that costs a fraction of hashing them, and free space is
/// often zeros (new or discarded disks, holes in disk files).
pub fn chunk_sha256(buf: &[u8]) -> (String, bool) {
    if is_zero(buf) {
        (zero_hash(buf.len() as u64), true)
    } else {
        (hex(&Sha256::digest(buf)), false)
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
        let zeros = vec![0u8; 1 << 20];
        let mut hasher = sha2::Sha256::new();
        let mut left = len;
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            hasher.update(&zeros[..n]);
            left -= n as u64;
        }
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
    fn a_zero_chunk_gets_the_hash_of_its_zeros() {
        let zeros = vec![0u8; 3 * 512];
        assert_eq!(chunk_sha256(&zeros), (hex(&Sha256::digest(&zeros)), true));
        let data = [0u8, 0, 1];
        assert_eq!(chunk_sha256(&data), (hex(&Sha256::digest(data)), false));
    }
}
