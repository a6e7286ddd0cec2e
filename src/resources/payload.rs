//! The bytes a script sends on its stdin, kept as chunks rather than one
//! buffer, so that a file's content is never copied per host.
//!
//! Architecture note: every host of a run that installs the same file holds
//! the same [`Content`] (see [`crate::confine::Tree::read_shared`]): a buffer,
//! or for a large file its open descriptor; the staging archive around it
//! (tar headers, padding), the stashed bytes and the script are small chunks
//! of their own. The transport sends the chunks as they are
//! ([`crate::transport::Transport::exec_shared`]), slicing buffers and reading
//! files as each channel's window opens: the controller's memory depends on
//! the small distinct contents and the slices in flight, not on hosts x
//! content, nor on the largest file.

use std::sync::Arc;

use bytes::Bytes;

use crate::content::{Chunk, Content};

/// Bytes in chunks, sent in order.
#[derive(Debug, Default, Clone)]
pub struct Payload {
    chunks: Vec<Chunk>,
    len: usize,
}

impl Payload {
    /// Append bytes this payload owns (headers, a script).
    pub fn push(&mut self, bytes: Vec<u8>) {
        self.push_bytes(Bytes::from(bytes));
    }

    /// Append bytes the binary holds (an sh library), without copying them.
    pub fn push_static(&mut self, bytes: &'static [u8]) {
        self.push_bytes(Bytes::from_static(bytes));
    }

    /// Append a content shared with other hosts' payloads, without copying
    /// it (a large file is read as it is sent: see [`crate::content`]).
    pub fn push_shared(&mut self, data: Arc<Content>) {
        self.push_chunk(Chunk::Content(data));
    }

    fn push_bytes(&mut self, bytes: Bytes) {
        self.push_chunk(Chunk::Bytes(bytes));
    }

    fn push_chunk(&mut self, chunk: Chunk) {
        if chunk.len() > 0 {
            self.len += chunk.len();
            self.chunks.push(chunk);
        }
    }

    /// Append another payload's chunks.
    pub fn append(&mut self, other: Payload) {
        self.len += other.len;
        self.chunks.extend(other.chunks);
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn chunks(&self) -> &[Chunk] {
        &self.chunks
    }

    /// The bytes in one buffer (tests look at them whole).
    #[cfg(test)]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut all = Vec::with_capacity(self.len);
        for chunk in &self.chunks {
            all.extend_from_slice(&chunk.read_at(0, chunk.len()).expect("readable chunk"));
        }
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Chunks;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn chunks_read_back_in_order_through_small_reads() {
        let shared = Content::shared((0..=255u8).cycle().take(10_000).collect::<Vec<u8>>());
        let mut p = Payload::default();
        p.push(b"head".to_vec());
        p.push(Vec::new());
        p.push_shared(shared.clone());
        let mut tail = Payload::default();
        tail.push(b"tail".to_vec());
        p.append(tail);
        let mut want = b"head".to_vec();
        want.extend_from_slice(shared.in_memory().unwrap());
        want.extend_from_slice(b"tail");
        assert_eq!(p.len(), want.len());
        let mut got = Vec::new();
        let mut reader = Chunks::new(p.chunks());
        let mut buf = [0u8; 7];
        loop {
            let n = reader.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, want);
        assert_eq!(p.to_vec(), want);
    }
}
