//! Local transport: `connection: local` hosts run commands on the controller itself.
//!
//! Same contract as SSH (`sh -c`, streamed stdin/stdout/stderr, exit status), so
//! every engine path can be exercised without a network, and the controller can
//! manage itself.

use std::process::Stdio;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::process::Command;

use super::{ExitStatus, Transport, TransportError};

#[derive(Debug, Default, Clone)]
pub struct LocalTransport;

#[async_trait]
impl Transport for LocalTransport {
    async fn exec(
        &self,
        command: &str,
        stdin: &mut (dyn AsyncRead + Send + Unpin),
        stdout: &mut (dyn AsyncWrite + Send + Unpin),
        stderr: &mut (dyn AsyncWrite + Send + Unpin),
    ) -> Result<ExitStatus, TransportError> {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let mut child_in = child.stdin.take().expect("stdin was piped");
        let mut child_out = child.stdout.take().expect("stdout was piped");
        let mut child_err = child.stderr.take().expect("stderr was piped");
        let feed = async {
            // A command that exits without reading its input is not an error.
            let _ = tokio::io::copy(stdin, &mut child_in).await;
            let _ = child_in.shutdown().await;
            drop(child_in);
        };
        let (_, out, err) = tokio::join!(
            feed,
            tokio::io::copy(&mut child_out, stdout),
            tokio::io::copy(&mut child_err, stderr)
        );
        out?;
        err?;
        let status = child.wait().await?;
        Ok(match status.code() {
            Some(code) => ExitStatus::Code(code as u32),
            None => {
                use std::os::unix::process::ExitStatusExt;
                ExitStatus::Signal(status.signal().map_or("?".into(), |s| s.to_string()))
            }
        })
    }
}

/// A test that cannot run on this machine (a tool missing, not root): it
/// fails under CI (`CI` set, as `.ci/run` does), which must provide what the
/// test needs, so that such a test never passes there without running; a
/// developer's run skips it, saying why.
#[cfg(test)]
pub(crate) fn cannot_run(why: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{why}: CI must provide it (scripts/install-deps installs busybox)"
    );
    eprintln!("skipped: {why}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn streams_stdin_and_reports_status() {
        let t = LocalTransport;
        let out = t
            .exec_capture("tr a-z A-Z; echo err >&2; exit 3", b"hello")
            .await
            .unwrap();
        assert_eq!(out.stdout, b"HELLO");
        assert_eq!(out.stderr, b"err\n");
        assert_eq!(out.status, ExitStatus::Code(3));
    }

    #[tokio::test]
    async fn command_that_ignores_stdin_still_finishes() {
        let t = LocalTransport;
        let big = vec![b'x'; 4 << 20];
        let out = t.exec_capture("echo done", &big).await.unwrap();
        assert_eq!(out.stdout, b"done\n");
        assert!(out.status.success());
    }
}
