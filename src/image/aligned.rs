//! Buffers that start on a page boundary, shared by the controller and parc's
//! image helper (included there by path, like `digest.rs`).
//!
//! Why: direct I/O needs it, and every other large read or write gains from
//! it. The kernel copies to and from a misaligned user buffer several times
//! slower: on this project's AMD test machine, 4 MiB reads from the page cache
//! ran at 1.7 GB/s into a plain `Vec` (which malloc offsets by 16 bytes) and
//! at 7 GB/s into an aligned one.

/// `len` zeroed bytes starting on a 4 KiB boundary.
pub struct Aligned {
    raw: Vec<u8>,
    start: usize,
    len: usize,
}

impl Aligned {
    pub fn new(len: usize) -> Aligned {
        let raw = vec![0u8; len + 4096];
        let start = raw.as_ptr().align_offset(4096);
        Aligned { raw, start, len }
    }

    /// The first `len` bytes (at most the whole buffer).
    pub fn get(&mut self, len: usize) -> &mut [u8] {
        &mut self.raw[self.start..self.start + len.min(self.len)]
    }
}

impl std::ops::Deref for Aligned {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.raw[self.start..self.start + self.len]
    }
}
