//! A command's output as it arrives from a host: sent on as events while it
//! runs (so the operator sees it live), kept up to a cap for its result.
//!
//! Hosts are not trusted, and neither is what they print: it may be gigabytes,
//! binary, or not UTF-8. What the controller holds of one stream is bounded by
//! the cap (the bytes past it are counted and dropped, never sent on), and the
//! bytes are carried as bytes until a consumer decides how to show them.

use std::pin::Pin;
use std::task::{Context, Poll};

use base64::Engine as _;
use serde::{Serialize, Serializer};
use tokio::io::AsyncWrite;

use crate::events::{Event, Events};
use crate::transport::{Capped, Kept};

/// Which of a command's output streams bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputStream {
    Stdout,
    Stderr,
}

/// Bytes a host printed. In JSON (events, report.json) a JSON string when they
/// are UTF-8 and that string is no longer than their base64, else
/// `{"base64": "..."}`: a megabyte of NUL bytes would take six as `\u0000`
/// escapes, so any output costs at most 4/3 of its size in a report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostBytes(pub Vec<u8>);

impl HostBytes {
    /// The bytes as text to show, invalid UTF-8 replaced (control characters
    /// are left for the display to escape).
    #[cfg(test)]
    pub fn lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }
}

impl Serialize for HostBytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match std::str::from_utf8(&self.0) {
            Ok(text) if json_len(text) <= self.0.len().div_ceil(3) * 4 => s.serialize_str(text),
            _ => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry(
                    "base64",
                    &base64::engine::general_purpose::STANDARD.encode(&self.0),
                )?;
                map.end()
            }
        }
    }
}

/// The length of `text` inside a JSON string, as serde_json escapes it.
fn json_len(text: &str) -> usize {
    text.chars()
        .map(|c| match c {
            '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
            c if (c as u32) < 0x20 => 6,
            c => c.len_utf8(),
        })
        .sum()
}

/// One output stream of a command on one host: each write within the cap is
/// sent on at once as an [`Event::HostOutput`] and kept for the result; the
/// rest is counted and dropped. A UTF-8 character cut by the end of a write is
/// held back for the next one, so that chunks of text stay text.
pub struct Streamed {
    host: String,
    stream: OutputStream,
    events: Events,
    capped: Capped,
    /// The start of a character the last write ended inside (at most 3 bytes).
    tail: Vec<u8>,
}

impl Streamed {
    pub fn new(events: &Events, host: &str, stream: OutputStream, max: usize) -> Streamed {
        Streamed {
            host: host.to_string(),
            stream,
            events: events.clone(),
            capped: Capped::new(max),
            tail: Vec::new(),
        }
    }

    /// Send what was held back, and return what was kept.
    pub fn finish(mut self) -> Kept {
        let tail = std::mem::take(&mut self.tail);
        self.emit(tail);
        self.capped.into_kept()
    }

    fn emit(&self, chunk: Vec<u8>) {
        if !chunk.is_empty() {
            self.events.send(Event::HostOutput {
                host: self.host.clone(),
                stream: self.stream,
                chunk: HostBytes(chunk),
            });
        }
    }
}

/// Where `bytes` can be cut without splitting a UTF-8 character at its end.
fn whole_chars(bytes: &[u8]) -> usize {
    match std::str::from_utf8(bytes) {
        Err(e) if e.error_len().is_none() => e.valid_up_to(),
        _ => bytes.len(),
    }
}

impl AsyncWrite for Streamed {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let kept = buf.len().min(this.capped.room());
        if kept > 0 {
            let mut chunk = std::mem::take(&mut this.tail);
            chunk.extend_from_slice(&buf[..kept]);
            this.tail = chunk.split_off(whole_chars(&chunk));
            this.emit(chunk);
        }
        Pin::new(&mut this.capped).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn output_is_text_when_that_is_no_longer_than_base64() {
        let json = |b: &[u8]| serde_json::to_string(&HostBytes(b.to_vec())).unwrap();
        assert_eq!(json(b"hello\n"), r#""hello\n""#);
        assert_eq!(json("é".as_bytes()), r#""é""#);
        assert_eq!(json(&[0; 6]), r#"{"base64":"AAAAAAAA"}"#);
        assert_eq!(json(&[0xff, b'a']), r#"{"base64":"/2E="}"#);
        // A megabyte of anything costs at most 4/3 of it.
        for b in [0u8, b'\n', b'"', 0x1b, b'y'] {
            assert!(json(&vec![b; 1 << 20]).len() <= (4 << 20) / 3 + 16);
        }
    }

    #[tokio::test]
    async fn writes_within_the_cap_become_events_of_whole_characters() {
        let (events, [mut rx]) = Events::fan_out();
        let mut out = Streamed::new(&events, "ws-1", OutputStream::Stdout, 6);
        let e = "é".as_bytes();
        out.write_all(&[b'a', e[0]]).await.unwrap();
        out.write_all(&[e[1], b'b']).await.unwrap();
        out.write_all(b"cdefgh").await.unwrap();
        let kept = out.finish();
        assert_eq!(
            (kept.bytes.as_slice(), kept.total),
            (&b"a\xc3\xa9bcd"[..], 10)
        );
        drop(events);
        let mut chunks = Vec::new();
        while let Some(Event::HostOutput { chunk, .. }) = rx.recv().await {
            chunks.push(chunk.lossy().into_owned());
        }
        assert_eq!(chunks, ["a", "éb", "cd"]);
    }
}
