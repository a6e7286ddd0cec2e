//! Privilege escalation as a decorator over any transport.
//!
//! Wrapping rather than teaching each transport about sudo keeps the trait to
//! one method, and makes `become` work the same over SSH and locally.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::{Chunk, ExitStatus, Transport, TransportError, quote};

pub struct Sudo {
    inner: Arc<dyn Transport>,
    user: String,
    /// Sent on stdin ahead of the command's own input; `None` means sudo must not
    /// ask (NOPASSWD): it then fails at once instead of hanging on a prompt.
    password: Option<String>,
}

/// How a command starts when a password is sent (`$1`: the command). sudo
/// reads the password line only when it asks for one: where it does not
/// (NOPASSWD, or credentials it still holds), the line stays on the
/// command's stdin, and was read as the first line of parc's script, ahead
/// of the files it carries (a NOPASSWD host got every file shifted by it,
/// and the apply said "changed"). So a line follows the password, drawn for
/// each exec, and the command starts after it: whatever came before it
/// (the password, or nothing) is read by the shell's `read`, which takes
/// one byte at a time from a pipe and so leaves the rest for the command.
const AFTER_LINE: &str = r#"while IFS= read -r l; do [ "$l" = "$2" ] && exec sh -c "$1"; done; echo 'parc: stdin ended before the command could start' >&2; exit 125"#;

impl Sudo {
    pub fn new(inner: Arc<dyn Transport>, user: String, password: Option<String>) -> Self {
        Sudo {
            inner,
            user,
            password,
        }
    }

    /// The command line sent to the host for `command`, and what goes on
    /// its stdin before the command's own input: the password, then the line
    /// the command starts after ([`AFTER_LINE`]).
    fn wrap(&self, command: &str) -> Result<(String, Option<Bytes>), TransportError> {
        let Some(password) = &self.password else {
            let line = format!(
                "sudo -n -H -u {} -- sh -c {}",
                quote(&self.user),
                quote(command)
            );
            return Ok((line, None));
        };
        let mut nonce = [0u8; 16];
        getrandom::getrandom(&mut nonce)
            .map_err(|e| TransportError::Io(std::io::Error::other(e.to_string())))?;
        let start = crate::image::digest::hex(&nonce);
        let line = format!(
            "sudo -S -p '' -H -u {} -- sh -c {} parc-sudo {} {start}",
            quote(&self.user),
            quote(AFTER_LINE),
            quote(command)
        );
        Ok((line, Some(Bytes::from(format!("{password}\n{start}\n")))))
    }
}

#[async_trait]
impl Transport for Sudo {
    async fn exec(
        &self,
        command: &str,
        stdin: &mut (dyn AsyncRead + Send + Unpin),
        stdout: &mut (dyn AsyncWrite + Send + Unpin),
        stderr: &mut (dyn AsyncWrite + Send + Unpin),
    ) -> Result<ExitStatus, TransportError> {
        match self.wrap(command)? {
            (wrapped, None) => self.inner.exec(&wrapped, stdin, stdout, stderr).await,
            (wrapped, Some(head)) => {
                let mut chained = head.chain(stdin);
                self.inner
                    .exec(&wrapped, &mut chained, stdout, stderr)
                    .await
            }
        }
    }

    async fn exec_shared(
        &self,
        command: &str,
        stdin: &[Chunk],
        stdout: &mut (dyn AsyncWrite + Send + Unpin),
        stderr: &mut (dyn AsyncWrite + Send + Unpin),
    ) -> Result<ExitStatus, TransportError> {
        match self.wrap(command)? {
            (wrapped, None) => {
                self.inner
                    .exec_shared(&wrapped, stdin, stdout, stderr)
                    .await
            }
            (wrapped, Some(head)) => {
                let chunks: Vec<Chunk> = std::iter::once(Chunk::Bytes(head))
                    .chain(stdin.iter().cloned())
                    .collect();
                self.inner
                    .exec_shared(&wrapped, &chunks, stdout, stderr)
                    .await
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::local::LocalTransport;

    #[test]
    fn command_is_quoted_once_as_a_whole() {
        let s = Sudo::new(Arc::new(LocalTransport), "root".into(), None);
        let cmd = "echo 'a b' $(id)";
        let (line, head) = s.wrap(cmd).unwrap();
        assert_eq!(line, format!("sudo -n -H -u root -- sh -c {}", quote(cmd)));
        assert!(head.is_none(), "nothing ahead of the command's stdin");
    }

    /// Records what reached the inner transport.
    #[derive(Default)]
    struct Recorder(std::sync::Mutex<(String, Vec<u8>)>);

    #[async_trait]
    impl Transport for Recorder {
        async fn exec(
            &self,
            command: &str,
            stdin: &mut (dyn AsyncRead + Send + Unpin),
            _stdout: &mut (dyn AsyncWrite + Send + Unpin),
            _stderr: &mut (dyn AsyncWrite + Send + Unpin),
        ) -> Result<ExitStatus, TransportError> {
            let mut input = Vec::new();
            stdin.read_to_end(&mut input).await?;
            *self.0.lock().unwrap() = (command.to_string(), input);
            Ok(ExitStatus::Code(0))
        }
    }

    #[tokio::test]
    async fn password_and_a_fresh_start_line_precede_the_commands_own_stdin() {
        let rec = Arc::new(Recorder::default());
        let s = Sudo::new(rec.clone(), "admin".into(), Some("s3cret".into()));
        s.exec_capture("cat > /etc/x", b"payload").await.unwrap();
        let (cmd, input) = rec.0.lock().unwrap().clone();
        let start = cmd.rsplit(' ').next().unwrap().to_string();
        assert_eq!(start.len(), 32, "{cmd}");
        assert_eq!(
            cmd,
            format!(
                "sudo -S -p '' -H -u admin -- sh -c {} parc-sudo {} {start}",
                quote(AFTER_LINE),
                quote("cat > /etc/x")
            )
        );
        assert_eq!(input, format!("s3cret\n{start}\npayload").as_bytes());
        // Streamed rather than shared: the same, with a line of its own.
        let (mut out, mut err) = (Vec::new(), Vec::new());
        s.exec("cat > /etc/y", &mut &b"streamed"[..], &mut out, &mut err)
            .await
            .unwrap();
        let (cmd, input) = rec.0.lock().unwrap().clone();
        let again = cmd.rsplit(' ').next().unwrap();
        assert_ne!(again, start, "drawn for each exec");
        assert_eq!(input, format!("s3cret\n{again}\nstreamed").as_bytes());
    }

    /// The start line, run by this machine's sh: the command gets exactly
    /// its own input, whether sudo took the password line or left it.
    #[tokio::test]
    async fn the_command_starts_after_its_line_whatever_came_before() {
        let t = LocalTransport;
        for before in ["", "s3cret\n", "a\nline that is not it\n"] {
            let input = format!("{before}0123abcd\nthe input\nof the command");
            let out = t
                .exec_capture(
                    &format!(
                        "sh -c {} parc-sudo {} 0123abcd",
                        quote(AFTER_LINE),
                        quote("echo started; cat")
                    ),
                    input.as_bytes(),
                )
                .await
                .unwrap();
            assert_eq!(
                out.stdout, b"started\nthe input\nof the command",
                "{before:?}"
            );
        }
        let out = t
            .exec_capture(
                &format!("sh -c {} parc-sudo true 0123abcd", quote(AFTER_LINE)),
                b"s3cret\n",
            )
            .await
            .unwrap();
        assert_eq!(
            out.status,
            ExitStatus::Code(125),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
