//! The bytes a script sends on its stdin, kept as pieces rather than one
//! buffer, so that a file's content is never copied per host.
//!
//! Architecture note: every host of a run that installs the same file holds
//! the same buffer (see [`crate::confine::Tree::read_shared`]); the staging
//! archive around it (tar headers, padding), the stashed bytes and the script
//! are small pieces of their own. The pieces are read in order straight into
//! the transport's send buffer, whose writes wait for the channel's window:
//! the controller's memory depends on the largest distinct content, not on
//! hosts x content.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

#[derive(Debug)]
enum Piece {
    Owned(Vec<u8>),
    Shared(Arc<Vec<u8>>),
}

impl Piece {
    fn bytes(&self) -> &[u8] {
        match self {
            Piece::Owned(b) => b,
            Piece::Shared(b) => b,
        }
    }
}

/// Bytes in pieces, read in order.
#[derive(Debug, Default)]
pub struct Payload {
    pieces: Vec<Piece>,
    len: usize,
}

impl Payload {
    /// Append bytes this payload owns (headers, a script).
    pub fn push(&mut self, bytes: Vec<u8>) {
        if !bytes.is_empty() {
            self.len += bytes.len();
            self.pieces.push(Piece::Owned(bytes));
        }
    }

    /// Append a content shared with other hosts' payloads, without copying it.
    pub fn push_shared(&mut self, data: Arc<Vec<u8>>) {
        if !data.is_empty() {
            self.len += data.len();
            self.pieces.push(Piece::Shared(data));
        }
    }

    /// Append another payload's pieces.
    pub fn append(&mut self, other: Payload) {
        self.len += other.len;
        self.pieces.extend(other.pieces);
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes, in order, as a stream.
    pub fn reader(&self) -> Reader<'_> {
        Reader {
            pieces: &self.pieces,
            piece: 0,
            at: 0,
        }
    }

    /// The bytes in one buffer (tests look at them whole).
    #[cfg(test)]
    pub fn to_vec(&self) -> Vec<u8> {
        self.pieces
            .iter()
            .flat_map(|p| p.bytes())
            .copied()
            .collect()
    }
}

/// A [`Payload`] being read: never blocks, fills the caller's buffer from
/// as many pieces as fit.
pub struct Reader<'a> {
    pieces: &'a [Piece],
    piece: usize,
    at: usize,
}

impl AsyncRead for Reader<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        while buf.remaining() > 0 && self.piece < self.pieces.len() {
            let bytes = self.pieces[self.piece].bytes();
            let n = (bytes.len() - self.at).min(buf.remaining());
            buf.put_slice(&bytes[self.at..self.at + n]);
            self.at += n;
            if self.at == bytes.len() {
                self.piece += 1;
                self.at = 0;
            }
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn pieces_read_back_in_order_through_small_reads() {
        let shared = Arc::new((0..=255u8).cycle().take(10_000).collect::<Vec<u8>>());
        let mut p = Payload::default();
        p.push(b"head".to_vec());
        p.push(Vec::new());
        p.push_shared(shared.clone());
        let mut tail = Payload::default();
        tail.push(b"tail".to_vec());
        p.append(tail);
        let mut want = b"head".to_vec();
        want.extend_from_slice(&shared);
        want.extend_from_slice(b"tail");
        assert_eq!(p.len(), want.len());
        let mut got = Vec::new();
        let mut reader = p.reader();
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
