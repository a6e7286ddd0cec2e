//! The one seam between parc and its targets.
//!
//! Everything parc does to a host (probing, applying, verifying, rolling back,
//! imaging) reduces to "run this sh command, stream these bytes to its stdin,
//! stream back its stdout/stderr, tell me how it exited". Keeping the trait that
//! small is what lets the SSH and local implementations (and later a Windows one)
//! stay interchangeable, and what lets tests count round trips per host.

pub mod counting;
pub mod known_hosts;
pub mod local;
pub mod ssh;
pub mod ssh_config;
pub mod sudo;

use std::pin::Pin;
use std::task::{Context, Poll};

pub use crate::content::Chunk;
use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

/// How a remote command ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "value")]
pub enum ExitStatus {
    /// The command exited with this status code.
    Code(u32),
    /// The command was killed by this signal (name as the server reported it).
    Signal(String),
    /// The channel closed without an exit status (the server or connection died).
    Unknown,
}

impl ExitStatus {
    pub fn success(&self) -> bool {
        matches!(self, ExitStatus::Code(0))
    }
}

impl std::fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitStatus::Code(c) => write!(f, "exit {c}"),
            ExitStatus::Signal(s) => write!(f, "killed by signal {s}"),
            ExitStatus::Unknown => write!(f, "no exit status (connection lost)"),
        }
    }
}

/// What a captured exec returned.
#[derive(Debug, Clone)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// One output stream of a command, of which parc kept only the start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kept {
    /// The first bytes of the stream, at most the cap.
    pub bytes: Vec<u8>,
    /// How many bytes the stream had in all.
    pub total: u64,
}

impl Kept {
    /// The size of the whole stream when not all of it was kept.
    pub fn cut_from(&self) -> Option<u64> {
        (self.total > self.bytes.len() as u64).then_some(self.total)
    }
}

/// A writer that keeps the first `max` bytes written to it and counts the
/// rest: a chatty (or hostile) host's output costs the controller at most
/// `max` bytes however much it sends.
#[derive(Debug)]
pub struct Capped {
    kept: Kept,
    max: usize,
}

impl Capped {
    pub fn new(max: usize) -> Capped {
        Capped {
            kept: Kept::default(),
            max,
        }
    }

    pub fn into_kept(self) -> Kept {
        self.kept
    }

    /// How many more bytes it keeps.
    pub fn room(&self) -> usize {
        self.max.saturating_sub(self.kept.bytes.len())
    }
}

impl AsyncWrite for Capped {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let room = this.room();
        this.kept
            .bytes
            .extend_from_slice(&buf[..buf.len().min(room)]);
        this.kept.total += buf.len() as u64;
        std::task::Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// Why talking to a host failed. These are *transport* failures: the host could not
/// be reached or authenticated, as opposed to a command that ran and failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot connect to {host} ({addr}): {reason}")]
    Connect {
        host: String,
        addr: String,
        reason: String,
    },
    #[error("connection to {host} timed out after {secs}s")]
    Timeout { host: String, secs: u64 },
    #[error("{0}")]
    HostKey(#[from] known_hosts::HostKeyError),
    #[error("authentication as {user} on {host} failed: {reason}")]
    Auth {
        host: String,
        user: String,
        reason: String,
    },
    #[error("cannot read key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("ssh protocol error with {host}: {reason}")]
    Protocol { host: String, reason: String },
    #[error("local I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl TransportError {
    /// The host was refused for a changed or revoked host key: someone may be
    /// impersonating it (see [`known_hosts::HostKeyError::is_alarm`]).
    pub fn is_host_key_alarm(&self) -> bool {
        matches!(self, TransportError::HostKey(k) if k.is_alarm())
    }
}

/// Execute commands on one host.
///
/// Implementations must read stdout/stderr until the command's channel closes:
/// the exit status can arrive before the last output bytes.
#[async_trait]
pub trait Transport: Send + Sync {
    /// Run `command` with `sh -c` semantics, feeding `stdin` to it (then EOF) and
    /// streaming its output into `stdout` / `stderr`.
    async fn exec(
        &self,
        command: &str,
        stdin: &mut (dyn AsyncRead + Send + Unpin),
        stdout: &mut (dyn AsyncWrite + Send + Unpin),
        stderr: &mut (dyn AsyncWrite + Send + Unpin),
    ) -> Result<ExitStatus, TransportError>;

    /// [`Transport::exec`] with stdin given as chunks that other hosts' execs
    /// share (a file's content sent to every host). A transport that can send
    /// them without copying does, so that what waits for a channel's window
    /// is the shared content rather than a copy per host; by default they
    /// are streamed through [`Transport::exec`].
    async fn exec_shared(
        &self,
        command: &str,
        stdin: &[Chunk],
        stdout: &mut (dyn AsyncWrite + Send + Unpin),
        stderr: &mut (dyn AsyncWrite + Send + Unpin),
    ) -> Result<ExitStatus, TransportError> {
        self.exec(command, &mut Chunks::new(stdin), stdout, stderr)
            .await
    }

    /// Run a command with in-memory stdin and collect its output.
    async fn exec_capture(&self, command: &str, stdin: &[u8]) -> Result<Output, TransportError> {
        self.exec_shared_capture(command, &[Chunk::Bytes(Bytes::copy_from_slice(stdin))])
            .await
    }

    /// [`Transport::exec_shared`], collecting the output.
    async fn exec_shared_capture(
        &self,
        command: &str,
        stdin: &[Chunk],
    ) -> Result<Output, TransportError> {
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let status = self
            .exec_shared(command, stdin, &mut stdout, &mut stderr)
            .await?;
        stdout.flush().await.ok();
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    /// Run `script` (sh, whole, reading no stdin) as a subshell of a shell
    /// this transport already holds open on the host (the host lock's),
    /// rather than in a session of its own: a session costs the host a fork
    /// of sshd, a login shell, `sh` and its reader of stdin. `None` when it
    /// holds none, or that shell is busy: run it with
    /// [`Transport::exec_shared`]. Only for scripts that change nothing: what
    /// stops an apply (the dead-man watchdog, a takeover of its stale lock)
    /// stops its process group, and the held shell's is the lock's.
    /// At most `max` bytes of its stdout are kept: past them, [`Output`]'s
    /// stdout holds the first `max + 1`, which says it was more.
    async fn run_held(
        &self,
        _script: &[Chunk],
        _max: usize,
    ) -> Option<Result<Output, TransportError>> {
        None
    }

    /// A transport above this one ran a remote command without an exec of
    /// its own ([`Transport::run_held`]): counted as one where execs are.
    fn ran_held(&self) {}

    /// A private directory on the host that no exec has used yet, for the
    /// next script to work in (see `Assembled::command`), or `None`: the
    /// script makes its own (`mktemp -d`) and removes it. The host lock
    /// makes a few ahead, in one process, and removes them with itself.
    fn private_dir(&self) -> Option<String> {
        None
    }

    /// A script parc stopped waiting for (it ran past its time) may still
    /// run on the host: in the shell [`Transport::run_held`] holds, or in an
    /// exec of its own working in `dir` (from [`Transport::private_dir`]).
    /// The host lock stops what it left when it is released.
    fn gave_up(&self, _dir: Option<&str>) {}

    /// Run a command with no input, keeping at most `max` bytes of each of
    /// its output streams (and their full sizes); the rest is read and dropped.
    async fn exec_capped(
        &self,
        command: &str,
        max: usize,
    ) -> Result<(ExitStatus, Kept, Kept), TransportError> {
        let (mut stdout, mut stderr) = (Capped::new(max), Capped::new(max));
        let status = self
            .exec(command, &mut &b""[..], &mut stdout, &mut stderr)
            .await?;
        Ok((status, stdout.into_kept(), stderr.into_kept()))
    }
}

/// Chunks read in order as one stream: fills the caller's buffer from as
/// many chunks as fit. A large file's content is read from its descriptor
/// here, without a blocking-pool hop: a read of the page cache, and only
/// transports other than SSH (local, tests) read stdin this way.
pub struct Chunks<'a> {
    chunks: &'a [Chunk],
    at: usize,
}

impl<'a> Chunks<'a> {
    pub fn new(chunks: &'a [Chunk]) -> Self {
        Chunks { chunks, at: 0 }
    }
}

impl AsyncRead for Chunks<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        while buf.remaining() > 0 {
            let Some(chunk) = self.chunks.first() else {
                break;
            };
            let piece = match chunk.read_at(self.at, buf.remaining()) {
                Ok(piece) => piece,
                Err(e) => return Poll::Ready(Err(e)),
            };
            buf.put_slice(&piece);
            self.at += piece.len();
            if self.at >= chunk.len() {
                self.chunks = &self.chunks[1..];
                self.at = 0;
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// Quote one word for a POSIX shell. Every path, user name and argument that parc
/// sends to a target goes through this.
pub fn quote(word: &str) -> String {
    // shlex only refuses strings with NUL bytes, which no POSIX argument can carry.
    shlex::try_quote(word)
        .map(|q| q.into_owned())
        .unwrap_or_else(|_| format!("'{}'", word.replace('\0', "").replace('\'', "'\\''")))
}

/// Words for a POSIX shell, each through [`quote`], separated by spaces:
/// the operands of one command.
pub fn quote_words<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// sh running the text `run` in a shell of its own, as `sh -c RUN` would,
/// with the text in that shell's environment instead of on its command
/// line: a command line is every local user's to read (`ps`,
/// /proc/PID/cmdline), an environment only its owner's, and a profile's
/// `run:` may be rendered from a secret. The shell takes the text out of its
/// environment before it runs it, so nothing the command starts (a
/// `runuser` to another account) inherits it. `via` comes before `sh`
/// (`exec `, `timeout 5 `).
pub fn sh_hidden(via: &str, run: &str) -> String {
    format!(
        "PARC_RUN={} {via}sh -c 'parc_run=$PARC_RUN; unset PARC_RUN; eval \"$parc_run\"'",
        quote(run)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn quoted_words_reach_the_command_unchanged() {
        let hostile = [
            "plain",
            "with space",
            "it's",
            "\"double\"",
            "$(touch /tmp/parc-pwned) `id` ; rm -rf x && y | z",
            "new\nline",
            "",
            "-n",
            "*",
        ];
        for word in hostile {
            let out = local::LocalTransport
                .exec_capture(&format!("printf '%s' {}", quote(word)), b"")
                .await
                .unwrap();
            assert_eq!(String::from_utf8(out.stdout).unwrap(), word);
        }
        assert!(!std::path::Path::new("/tmp/parc-pwned").exists());
    }

    #[tokio::test]
    async fn capped_output_keeps_its_start_and_counts_the_rest() {
        let (status, out, err) = local::LocalTransport
            .exec_capped("head -c 100000 /dev/zero; echo oops >&2", 1000)
            .await
            .unwrap();
        assert!(status.success());
        assert_eq!((out.bytes.len(), out.total), (1000, 100000));
        assert_eq!(out.cut_from(), Some(100000));
        assert_eq!(
            (err.bytes.as_slice(), err.cut_from()),
            (&b"oops\n"[..], None)
        );
    }
}
