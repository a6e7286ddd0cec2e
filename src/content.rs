//! The bytes parc installs on hosts, hashed once.

use sha2::Digest;

/// A file's content as hosts receive it (read from `files/`, written inline,
/// rendered), with its SHA-256, which every host of a run compares with what
/// it has. Hashed per host, the 1 MiB wallpaper of the `mixed` benchmark was
/// the largest share of the controller's CPU on a no-change run at 50 hosts
/// (perf: `sha2` 16% of parc's samples), and a 20 MiB file sent to 500 hosts
/// would have been hashed 500 times.
#[derive(Debug, PartialEq, Eq)]
pub struct Content {
    bytes: Vec<u8>,
    sha256: String,
}

impl Content {
    pub fn new(bytes: Vec<u8>) -> Content {
        let sha256 = sha256_hex(&bytes);
        Content { bytes, sha256 }
    }

    /// A content every host of the run that installs it shares.
    pub fn shared(bytes: impl Into<Vec<u8>>) -> std::sync::Arc<Content> {
        std::sync::Arc::new(Content::new(bytes.into()))
    }

    /// Lowercase hex, as `sha256sum` prints it.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }
}

impl std::ops::Deref for Content {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl AsRef<[u8]> for Content {
    fn as_ref(&self) -> &[u8] {
        &self.bytes
    }
}

/// Lowercase hex SHA-256 of `data`, as `sha256sum` prints it.
pub fn sha256_hex(data: &[u8]) -> String {
    let digest = sha2::Sha256::digest(data);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
