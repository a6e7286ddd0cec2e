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

impl Sudo {
    pub fn new(inner: Arc<dyn Transport>, user: String, password: Option<String>) -> Self {
        Sudo {
            inner,
            user,
            password,
        }
    }

    /// The command line sent to the host for `command`.
    fn wrap(&self, command: &str) -> String {
        let ask = if self.password.is_some() {
            "-S -p ''"
        } else {
            "-n"
        };
        format!(
            "sudo {ask} -H -u {} -- sh -c {}",
            quote(&self.user),
            quote(command)
        )
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
        let wrapped = self.wrap(command);
        match &self.password {
            None => self.inner.exec(&wrapped, stdin, stdout, stderr).await,
            Some(password) => {
                let line = format!("{password}\n");
                let mut chained = line.as_bytes().chain(stdin);
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
        let wrapped = self.wrap(command);
        match &self.password {
            None => {
                self.inner
                    .exec_shared(&wrapped, stdin, stdout, stderr)
                    .await
            }
            Some(password) => {
                let password = Chunk::Bytes(Bytes::from(format!("{password}\n")));
                let chunks: Vec<Chunk> = std::iter::once(password)
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
        assert_eq!(
            s.wrap(cmd),
            format!("sudo -n -H -u root -- sh -c {}", quote(cmd))
        );
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
    async fn password_precedes_the_commands_own_stdin() {
        let rec = Arc::new(Recorder::default());
        let s = Sudo::new(rec.clone(), "admin".into(), Some("s3cret".into()));
        s.exec_capture("cat > /etc/x", b"payload").await.unwrap();
        let (cmd, input) = rec.0.lock().unwrap().clone();
        assert_eq!(
            cmd,
            format!(
                "sudo -S -p '' -H -u admin -- sh -c {}",
                quote("cat > /etc/x")
            )
        );
        assert_eq!(input, b"s3cret\npayload");
        // Streamed rather than shared: the same.
        let (mut out, mut err) = (Vec::new(), Vec::new());
        s.exec("cat > /etc/y", &mut &b"streamed"[..], &mut out, &mut err)
            .await
            .unwrap();
        assert_eq!(rec.0.lock().unwrap().1, b"s3cret\nstreamed");
    }
}
