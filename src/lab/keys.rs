//! Key material: the client key every host trusts, a host key per host, and the
//! known_hosts file that pins them.
//!
//! Real ssh-keygen keys (rather than keys made in-process) keep the lab honest:
//! the OpenSSH client, Ansible and parc all read exactly what a technician's own
//! machine would have.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::LabError;

/// ssh-keygen runs this many at a time: enough to hide process start-up latency on
/// big labs without hitting process limits.
const PARALLEL_KEYGEN: usize = 32;

/// One key to create: private key path (`.pub` is written next to it) and comment.
pub(crate) struct KeyRequest {
    pub path: PathBuf,
    pub comment: String,
}

/// Generates unencrypted ed25519 key pairs.
pub(crate) fn generate(ssh_keygen: &Path, requests: &[KeyRequest]) -> Result<(), LabError> {
    for batch in requests.chunks(PARALLEL_KEYGEN) {
        let mut running = Vec::with_capacity(batch.len());
        for request in batch {
            let mut command = Command::new(ssh_keygen);
            command
                .args([
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    &request.comment,
                    "-f",
                ])
                .arg(&request.path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let child = command.spawn().map_err(|source| LabError::Spawn {
                command: format!("{command:?}"),
                source,
            })?;
            running.push((format!("{command:?}"), child));
        }
        for (command, child) in running {
            let output = child.wait_with_output().map_err(|source| LabError::Spawn {
                command: command.clone(),
                source,
            })?;
            if !output.status.success() {
                return Err(LabError::Command {
                    command,
                    status: output.status,
                    stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
                });
            }
        }
    }
    Ok(())
}

/// The `.pub` file ssh-keygen writes next to a private key.
pub(crate) fn public_path(private: &Path) -> PathBuf {
    let mut name = private.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

/// A known_hosts line for a host listening on port 22 (so no `[addr]:port` form),
/// from the content of its `.pub` file: `127.x.y.z ssh-ed25519 AAAA...`.
pub(crate) fn known_hosts_line(
    address: Ipv4Addr,
    public_key: &str,
    pub_path: &Path,
) -> Result<String, LabError> {
    let mut fields = public_key.split_whitespace();
    match (fields.next(), fields.next()) {
        (Some(kind), Some(key)) => Ok(format!("{address} {kind} {key}\n")),
        _ => Err(LabError::Io {
            action: "parse the public key in",
            path: pub_path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "expected `TYPE BASE64 [COMMENT]` as written by ssh-keygen",
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_hosts_line_drops_the_comment() {
        let line = known_hosts_line(
            Ipv4Addr::new(127, 100, 0, 2),
            "ssh-ed25519 AAAAC3Nza ws-002\n",
            Path::new("k.pub"),
        )
        .unwrap();
        assert_eq!(line, "127.100.0.2 ssh-ed25519 AAAAC3Nza\n");
    }

    #[test]
    fn malformed_public_key_is_an_error_naming_the_file() {
        let err = known_hosts_line(Ipv4Addr::LOCALHOST, "garbage", Path::new("/x/host_key.pub"))
            .unwrap_err();
        assert!(err.to_string().contains("/x/host_key.pub"));
    }

    #[test]
    fn generates_a_key_pair_with_ssh_keygen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        generate(
            Path::new("ssh-keygen"),
            &[KeyRequest {
                path: path.clone(),
                comment: "ws-001".into(),
            }],
        )
        .unwrap();
        let public = std::fs::read_to_string(public_path(&path)).unwrap();
        assert!(public.starts_with("ssh-ed25519 "), "{public}");
        assert!(public.trim_end().ends_with(" ws-001"));
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains("OPENSSH PRIVATE KEY")
        );
    }
}
