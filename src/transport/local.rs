//! Local transport: `connection: local` hosts run commands on the controller itself.
//!
//! Same contract as SSH (`sh -c`, streamed stdin/stdout/stderr, exit status), so
//! every engine path can be exercised without a network, and the controller can
//! manage itself.

use std::process::Stdio;

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
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
            // A command that exits without reading its input is not an error;
            // stdin that cannot be read here (a large file changed since it
            // was hashed) is: it ends early, as over SSH.
            let mut buf = vec![0u8; 64 * 1024];
            let unreadable = loop {
                match stdin.read(&mut buf).await {
                    Ok(0) => break None,
                    Ok(n) => {
                        if child_in.write_all(&buf[..n]).await.is_err() {
                            break None;
                        }
                    }
                    Err(e) => break Some(e),
                }
            };
            let _ = child_in.shutdown().await;
            drop(child_in);
            unreadable
        };
        let (unreadable, out, err) = tokio::join!(
            feed,
            tokio::io::copy(&mut child_out, stdout),
            tokio::io::copy(&mut child_err, stderr)
        );
        out?;
        err?;
        let status = child.wait().await?;
        if let Some(e) = unreadable {
            return Err(TransportError::Io(e));
        }
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
    use crate::transport::Chunk;

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

    #[tokio::test]
    async fn stdin_that_cannot_be_read_fails_the_command_after_a_short_input() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.bin");
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(&vec![7u8; crate::content::IN_MEMORY_MAX as usize + 1])
            .unwrap();
        let content =
            crate::content::Content::from_file(std::fs::File::open(&path).unwrap(), &path);
        let content = std::sync::Arc::new(content.unwrap());
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"more")
            .unwrap();
        let stdin = [
            Chunk::Bytes(bytes::Bytes::from_static(b"head")),
            Chunk::Content(content),
            Chunk::Bytes(bytes::Bytes::from_static(b"script")),
        ];
        let e = LocalTransport
            .exec_shared_capture("wc -c", &stdin)
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("changed while parc was reading it"),
            "{e}"
        );
    }
}
