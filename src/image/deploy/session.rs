//! Plumbing between one exec and the deploy logic: the target's stdin is a pipe
//! the controller writes commands and chunks into while it is running, and its
//! stdout arrives as lines on a channel.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use tokio::sync::mpsc::UnboundedSender;

/// Splits what the target prints into lines as it arrives. Never blocks: the
/// target must never stall on its stdout while the controller is busy sending.
/// The longest line a host may send: the helper's are a few words, a path
/// (a mount point, a swap file: at most PATH_MAX) or the first line of a
/// tool's error.
const LINE_MAX: usize = 64 << 10;

pub struct LineSink {
    tx: UnboundedSender<String>,
    partial: Vec<u8>,
    /// Bytes the host may still send: its lines queue unread while the
    /// deploy sends (the channel is unbounded so that the host never
    /// stalls), and a host printing more than its deploy can need must not
    /// fill the controller's memory.
    left: usize,
}

/// Bytes the host may send besides its chunks' lines: what it says of the
/// target (its mounts, holders, swaps: paths), its errors, a tool's warning.
pub const LINES_BESIDE_CHUNKS: usize = 1 << 20;
/// Bytes the host may send for each chunk: an `h` line, a `v` line, and
/// one of each again for a chunk rewritten after a mismatch ("h I SHA":
/// an index of at most 20 digits and 64 hex digits).
pub const LINES_PER_CHUNK: usize = 4 * 96;

impl LineSink {
    /// `budget`: the bytes the host may send in all (see
    /// [`LINES_BESIDE_CHUNKS`], [`LINES_PER_CHUNK`]).
    pub fn new(tx: UnboundedSender<String>, budget: usize) -> Self {
        LineSink {
            tx,
            partial: Vec::new(),
            left: budget,
        }
    }
}

impl AsyncWrite for LineSink {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let me = self.get_mut();
        let Some(left) = me.left.checked_sub(buf.len()) else {
            return Poll::Ready(Err(std::io::Error::other(
                "the host sent more lines than its deploy can need (four a chunk, and 1 MiB besides)",
            )));
        };
        me.left = left;
        for &byte in buf {
            if byte == b'\n' {
                let line = String::from_utf8_lossy(&me.partial).into_owned();
                me.partial.clear();
                // The receiver is gone only once the deploy gave up on this host.
                let _ = me.tx.send(line);
            } else if me.partial.len() < LINE_MAX {
                me.partial.push(byte);
            } else {
                // Not one of the helper's lines: stop reading it.
                return Poll::Ready(Err(std::io::Error::other(format!(
                    "the host sent a line of more than {LINE_MAX} bytes"
                ))));
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn lines_split_across_writes_arrive_whole() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut sink = LineSink::new(tx, 1000);
        sink.write_all(b"h 1 ab").await.unwrap();
        sink.write_all(b"cd\nready\npart").await.unwrap();
        drop(sink);
        let mut got = Vec::new();
        while let Some(l) = rx.recv().await {
            got.push(l);
        }
        assert_eq!(got, ["h 1 abcd", "ready"]);
    }

    /// A host sending a line without end costs the controller LINE_MAX
    /// bytes, then fails the exec.
    #[tokio::test]
    async fn a_line_without_end_is_refused_at_its_bound() {
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let mut sink = LineSink::new(tx, usize::MAX);
        let block = vec![b'x'; 16 << 10];
        let mut sent = 0;
        let err = loop {
            match sink.write_all(&block).await {
                Ok(()) => sent += block.len(),
                Err(e) => break e,
            }
        };
        assert!(sent <= LINE_MAX, "{sent}");
        assert!(err.to_string().contains("a line of more than"), "{err}");
    }

    /// A host sending lines without end, which queue while the deploy is
    /// busy sending, costs the controller its budget, then fails the exec.
    #[tokio::test]
    async fn lines_past_the_budget_are_refused() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut sink = LineSink::new(tx, 100 << 10);
        let lines = vec![b'\n'; 16 << 10];
        let mut sent = 0;
        let err = loop {
            match sink.write_all(&lines).await {
                Ok(()) => sent += lines.len(),
                Err(e) => break e,
            }
        };
        assert!(sent <= 100 << 10, "{sent}");
        assert!(err.to_string().contains("more lines than"), "{err}");
        drop(sink);
        let mut queued = 0;
        while rx.recv().await.is_some() {
            queued += 1;
        }
        assert_eq!(queued, sent);
    }
}
