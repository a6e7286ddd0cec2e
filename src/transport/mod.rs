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

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

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

    /// Run a command with in-memory stdin and collect its output.
    async fn exec_capture(&self, command: &str, stdin: &[u8]) -> Result<Output, TransportError> {
        let mut input = stdin;
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let status = self
            .exec(command, &mut input, &mut stdout, &mut stderr)
            .await?;
        stdout.flush().await.ok();
        Ok(Output {
            status,
            stdout,
            stderr,
        })
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
}
