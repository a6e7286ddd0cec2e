//! The bytes parc installs on hosts, hashed once, held at most once.
//!
//! Architecture note: a content is either bytes in memory (inline content,
//! rendered templates, line edits, small files) or, for a file of the
//! profile tree larger than [`IN_MEMORY_MAX`], the file itself: its open
//! descriptor, hashed once when opened, read again in slices as each host's
//! channel takes them ([`Content::read_at`]). A 20 MiB file sent to 500
//! hosts then costs the controller the slices in flight, not 20 MiB. What is
//! read is the file that was hashed: the descriptor stays on the same inode
//! whatever is renamed over its path, and the read of a file's last slice is
//! followed by a check that its size, modification and change times are
//! those it had when it was hashed (a write since, wherever it fell, changed
//! them). A file written to during the run fails the hosts still receiving
//! it, before their script, which comes after every content on stdin, has
//! arrived: nothing runs on them, rather than bytes other than those the
//! report names. A content no host holds is freed, and the hosts after
//! read the file again: they are refused it unless it hashes as it did
//! first (`confine::Tree::read_shared`), so one run installs one version.

use std::borrow::Cow;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use sha2::Digest;

use crate::image::digest::hex;

/// Files up to this size are read into memory; larger ones are read from
/// their descriptor as they are sent. Held, a file costs its size once, its
/// slices sent without a copy; read as sent, each host sending it holds the
/// copies russh has queued (up to 10 slices of 8 KiB a connection: 5 MiB
/// for parc's default 64 hosts at once). Up to here holding costs less.
pub const IN_MEMORY_MAX: u64 = 4 << 20;

/// A file's content as hosts receive it (read from `files/`, written inline,
/// rendered), with its SHA-256, which every host of a run compares with what
/// it has. Hashed per host, the 1 MiB wallpaper of the `mixed` benchmark was
/// the largest share of the controller's CPU on a no-change run at 50 hosts
/// (perf: `sha2` 16% of parc's samples), and a 20 MiB file sent to 500 hosts
/// would have been hashed 500 times.
#[derive(Debug)]
pub struct Content {
    body: Body,
    sha256: String,
}

#[derive(Debug)]
enum Body {
    Memory(Vec<u8>),
    /// A large file, read where it is (see the module's note).
    File {
        file: File,
        path: PathBuf,
        seen: Seen,
    },
}

/// What a file looked like when it was hashed: any write since changes one
/// of these (the change time cannot be set back by the writer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Seen {
    fn of(file: &File) -> std::io::Result<Seen> {
        let m = file.metadata()?;
        Ok(Seen {
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

impl PartialEq for Content {
    fn eq(&self, other: &Content) -> bool {
        self.sha256 == other.sha256
    }
}

impl Eq for Content {}

impl Content {
    pub fn new(bytes: Vec<u8>) -> Content {
        let sha256 = sha256_hex(&bytes);
        Content {
            body: Body::Memory(bytes),
            sha256,
        }
    }

    /// A content every host of the run that installs it shares.
    pub fn shared(bytes: impl Into<Vec<u8>>) -> Arc<Content> {
        Arc::new(Content::new(bytes.into()))
    }

    /// The content of `file`, an open regular file that `path` names (for
    /// messages): read into memory up to [`IN_MEMORY_MAX`] bytes, else hashed
    /// now and read from `file` when sent.
    pub fn from_file(mut file: File, path: &Path) -> std::io::Result<Content> {
        let seen = Seen::of(&file)?;
        if seen.len <= IN_MEMORY_MAX {
            let mut bytes = Vec::with_capacity(seen.len as usize);
            file.read_to_end(&mut bytes)?;
            return Ok(Content::new(bytes));
        }
        let mut hasher = sha2::Sha256::new();
        let hashed = std::io::copy(&mut file, &mut hasher)?;
        if hashed != seen.len || Seen::of(&file)? != seen {
            return Err(changed(path));
        }
        Ok(Content {
            body: Body::File {
                file,
                path: path.to_path_buf(),
                seen,
            },
            sha256: hex(&hasher.finalize()),
        })
    }

    /// Lowercase hex, as `sha256sum` prints it.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    pub fn len(&self) -> usize {
        match &self.body {
            Body::Memory(bytes) => bytes.len(),
            Body::File { seen, .. } => seen.len as usize,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes, when they are held in memory (not a large file).
    pub fn in_memory(&self) -> Option<&[u8]> {
        match &self.body {
            Body::Memory(bytes) => Some(bytes),
            Body::File { .. } => None,
        }
    }

    /// Up to `max` bytes from `offset`, as hosts receive them: a large file
    /// is read now and, when this reaches its end, checked unchanged since it
    /// was hashed. Empty at the end.
    pub fn read_at(self: &Arc<Content>, offset: usize, max: usize) -> std::io::Result<Bytes> {
        let end = self.len().min(offset.saturating_add(max));
        if offset >= end {
            return Ok(Bytes::new());
        }
        match &self.body {
            Body::Memory(_) => Ok(Bytes::from_owner(Whole(self.clone())).slice(offset..end)),
            Body::File { file, path, seen } => {
                let mut buf = vec![0u8; end - offset];
                file.read_exact_at(&mut buf, offset as u64)
                    .map_err(|e| match e.kind() {
                        std::io::ErrorKind::UnexpectedEof => changed(path),
                        _ => e,
                    })?;
                if end == self.len() && Seen::of(file)? != *seen {
                    return Err(changed(path));
                }
                Ok(Bytes::from(buf))
            }
        }
    }

    /// The whole content: for the few who must look at all of it (a
    /// `line` edit of a file installed in the same run, a secret file's
    /// lines to redact), not for sending. Borrowed when held; a large file
    /// is read into a new buffer.
    pub fn whole(self: &Arc<Content>) -> std::io::Result<Cow<'_, [u8]>> {
        match &self.body {
            Body::Memory(bytes) => Ok(Cow::Borrowed(bytes)),
            Body::File { .. } => {
                let mut all = Vec::with_capacity(self.len());
                self.reader().read_to_end(&mut all)?;
                Ok(Cow::Owned(all))
            }
        }
    }

    /// A reader of the whole content, from its start.
    pub fn reader(self: &Arc<Content>) -> impl Read + use<> {
        ContentReader {
            content: self.clone(),
            at: 0,
        }
    }
}

/// Why a large file is not sent: it is no longer the file that was hashed.
fn changed(path: &Path) -> std::io::Error {
    std::io::Error::other(format!(
        "{} changed while parc was reading it (its size or times are not those it had when it was hashed); leave the profile's files alone during a run",
        path.display()
    ))
}

/// A piece of a command's stdin: bytes of its own, or a content shared with
/// other hosts' commands, sliced or read as it is sent.
#[derive(Debug, Clone)]
pub enum Chunk {
    Bytes(Bytes),
    Content(Arc<Content>),
}

impl Chunk {
    pub fn len(&self) -> usize {
        match self {
            Chunk::Bytes(b) => b.len(),
            Chunk::Content(c) => c.len(),
        }
    }

    /// Whether its bytes are held in memory: a slice of it is then a view
    /// of them, not a copy read from a file.
    pub fn is_held(&self) -> bool {
        match self {
            Chunk::Bytes(_) => true,
            Chunk::Content(c) => c.in_memory().is_some(),
        }
    }

    /// Up to `max` bytes from `offset` (see [`Content::read_at`]).
    pub fn read_at(&self, offset: usize, max: usize) -> std::io::Result<Bytes> {
        match self {
            Chunk::Bytes(b) => {
                let end = b.len().min(offset.saturating_add(max));
                Ok(b.slice(offset.min(end)..end))
            }
            Chunk::Content(c) => c.read_at(offset, max),
        }
    }
}

/// The whole of an in-memory content, as `Bytes` can own it.
struct Whole(Arc<Content>);

impl AsRef<[u8]> for Whole {
    fn as_ref(&self) -> &[u8] {
        self.0.in_memory().unwrap_or_default()
    }
}

struct ContentReader {
    content: Arc<Content>,
    at: usize,
}

impl Read for ContentReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let chunk = self.content.read_at(self.at, buf.len())?;
        buf[..chunk.len()].copy_from_slice(&chunk);
        self.at += chunk.len();
        Ok(chunk.len())
    }
}

/// Lowercase hex SHA-256 of `data`, as `sha256sum` prints it.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&sha2::Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, Write};

    /// A file larger than [`IN_MEMORY_MAX`], its bytes, and its content.
    fn large() -> (tempfile::NamedTempFile, Vec<u8>, Arc<Content>) {
        let bytes: Vec<u8> = (0..IN_MEMORY_MAX as usize + 5)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&bytes).unwrap();
        let content = Content::from_file(f.reopen().unwrap(), f.path()).unwrap();
        (f, bytes, Arc::new(content))
    }

    fn read_all(content: &Arc<Content>, slice: usize) -> std::io::Result<Vec<u8>> {
        let mut all = Vec::new();
        loop {
            let piece = content.read_at(all.len(), slice)?;
            if piece.is_empty() {
                return Ok(all);
            }
            all.extend_from_slice(&piece);
        }
    }

    #[test]
    fn a_large_file_is_hashed_whole_and_read_where_it_is() {
        let (_f, bytes, content) = large();
        assert!(content.in_memory().is_none(), "not held in memory");
        assert_eq!(content.len(), bytes.len());
        assert_eq!(content.sha256(), sha256_hex(&bytes));
        assert_eq!(read_all(&content, 8192).unwrap(), bytes);
        assert_eq!(content.whole().unwrap()[..], bytes[..]);
    }

    #[test]
    fn a_small_file_is_held_in_memory() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"small\n").unwrap();
        let content = Arc::new(Content::from_file(f.reopen().unwrap(), f.path()).unwrap());
        assert_eq!(content.in_memory(), Some(&b"small\n"[..]));
        assert_eq!(content.sha256(), sha256_hex(b"small\n"));
        assert_eq!(read_all(&content, 4).unwrap(), b"small\n");
    }

    #[test]
    fn a_large_file_written_after_it_was_hashed_is_not_sent() {
        // Same size, one byte changed in place: only the file's times say so.
        let (mut f, _bytes, content) = large();
        f.as_file_mut().seek(std::io::SeekFrom::Start(10)).unwrap();
        f.as_file_mut().write_all(b"!").unwrap();
        let e = read_all(&content, 8192).unwrap_err();
        assert!(
            e.to_string().contains("changed while parc was reading it"),
            "{e}"
        );
        // Truncated: the read comes short.
        let (f, _bytes, content) = large();
        f.as_file().set_len(100).unwrap();
        let e = read_all(&content, 8192).unwrap_err();
        assert!(
            e.to_string().contains("changed while parc was reading it"),
            "{e}"
        );
    }

    #[test]
    fn a_large_file_renamed_over_is_never_read_as_the_new_file() {
        // The descriptor stays on the inode that was hashed; unlinked, its
        // change time moves, so its end is refused too: a run whose profile
        // changed under it stops sending rather than guess.
        let (f, bytes, content) = large();
        let other = f.path().with_extension("other");
        std::fs::write(&other, b"swapped in").unwrap();
        std::fs::rename(&other, f.path()).unwrap();
        assert_eq!(content.read_at(0, 100).unwrap(), bytes[..100]);
        let e = read_all(&content, 8192).unwrap_err();
        assert!(
            e.to_string().contains("changed while parc was reading it"),
            "{e}"
        );
    }
}
