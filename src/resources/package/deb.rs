//! Reading a local `.deb`'s package name and version on the controller.
//!
//! The plan needs them to tell whether the host already has this exact
//! package, and the probe runs before anything is pushed, so they are read here
//! from the file itself rather than with `dpkg-deb` on either side: the
//! controller may not be a Debian system, and pushing the file just to look at
//! it would cost a transfer on every run, even when nothing changes. A `.deb`
//! is an `ar` archive whose `control.tar[.gz|.xz|.zst]` member holds the
//! `control` file.

use std::io::Read;
use std::sync::Arc;

use crate::content::Content;

/// A `.deb` read from the profile's `files/`, ready to push.
#[derive(Debug, Clone)]
pub struct DebFile {
    pub data: Arc<Content>,
    pub package: String,
    pub version: String,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DebError {
    #[error(
        "it is not a Debian package (expected an `ar` archive holding control.tar.*: {0}), so parc cannot tell which package it installs"
    )]
    NotDeb(String),
    #[error(
        "its {member} member cannot be read ({reason}), so parc cannot tell which package it installs"
    )]
    Control { member: String, reason: String },
    #[error(
        "its control file has no `{0}` field, so parc cannot tell whether the host already has it"
    )]
    MissingField(&'static str),
    #[error(
        "its control file names the package `{0}`, which is not a valid Debian package name (lower-case letters, digits, `+`, `-`, `.`)"
    )]
    BadName(String),
}

impl DebFile {
    pub fn parse(data: Arc<Content>) -> Result<DebFile, DebError> {
        let control = control_file(data.reader())?;
        let package = field(&control, "Package").ok_or(DebError::MissingField("Package"))?;
        let version = field(&control, "Version").ok_or(DebError::MissingField("Version"))?;
        let valid = package.len() >= 2
            && package
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && package.chars().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.')
            });
        if !valid {
            return Err(DebError::BadName(package));
        }
        if version.is_empty() || version.chars().any(|c| c.is_whitespace()) {
            return Err(DebError::MissingField("Version"));
        }
        Ok(DebFile {
            data,
            package,
            version,
        })
    }
}

/// The text of `control` inside the archive.
fn control_file(deb: impl std::io::Read) -> Result<String, DebError> {
    let mut archive = ar::Archive::new(deb);
    while let Some(entry) = archive.next_entry() {
        let mut entry = entry.map_err(|e| DebError::NotDeb(e.to_string()))?;
        let name = String::from_utf8_lossy(entry.header().identifier()).into_owned();
        if !name.starts_with("control.tar") {
            continue;
        }
        let bad = |reason: String| DebError::Control {
            member: name.clone(),
            reason,
        };
        let mut packed = Vec::new();
        entry
            .read_to_end(&mut packed)
            .map_err(|e| bad(e.to_string()))?;
        let tar = match name.as_str() {
            "control.tar" => packed,
            "control.tar.gz" => {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(&packed[..])
                    .read_to_end(&mut out)
                    .map_err(|e| bad(e.to_string()))?;
                out
            }
            "control.tar.xz" => {
                let mut out = Vec::new();
                lzma_rs::xz_decompress(&mut &packed[..], &mut out)
                    .map_err(|e| bad(e.to_string()))?;
                out
            }
            "control.tar.zst" => {
                let mut out = Vec::new();
                ruzstd::decoding::StreamingDecoder::new(&packed[..])
                    .map_err(|e| bad(e.to_string()))?
                    .read_to_end(&mut out)
                    .map_err(|e| bad(e.to_string()))?;
                out
            }
            _ => return Err(bad("unknown compression".into())),
        };
        let mut tar = tar::Archive::new(&tar[..]);
        for file in tar.entries().map_err(|e| bad(e.to_string()))? {
            let mut file = file.map_err(|e| bad(e.to_string()))?;
            let path = file.path().map_err(|e| bad(e.to_string()))?.into_owned();
            if path.as_os_str() == "control" || path.as_os_str() == "./control" {
                let mut text = String::new();
                file.read_to_string(&mut text)
                    .map_err(|e| bad(e.to_string()))?;
                return Ok(text);
            }
        }
        return Err(bad("it has no `control` file".into()));
    }
    Err(DebError::NotDeb("no control.tar member".into()))
}

/// A single-line field of a control file (`Name: value`).
fn field(control: &str, name: &str) -> Option<String> {
    control.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (!line.starts_with([' ', '\t']) && key.eq_ignore_ascii_case(name))
            .then(|| value.trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::testing::build_deb;

    #[test]
    fn reads_name_and_version_whatever_the_compression() {
        let dir = tempfile::tempdir().unwrap();
        for compression in ["xz", "gzip", "zstd", "none"] {
            let deb = DebFile::parse(crate::content::Content::shared(build_deb(
                dir.path(),
                "parc-tool",
                compression,
            )))
            .unwrap();
            assert_eq!(deb.package, "parc-tool", "{compression}");
            assert_eq!(deb.version, "1:2.0-1", "{compression}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_deb() {
        let e = DebFile::parse(crate::content::Content::shared(
            b"#!/bin/sh\necho hello\n".to_vec(),
        ))
        .unwrap_err();
        assert!(matches!(e, DebError::NotDeb(_)), "{e}");
        let e = DebFile::parse(crate::content::Content::shared(b"!<arch>\n")).unwrap_err();
        assert!(e.to_string().contains("no control.tar member"), "{e}");
    }

    #[test]
    fn control_fields() {
        let c = "Package: a\nDescription: x\n Version: not-this\nVersion:  1.0 \n";
        assert_eq!(field(c, "Version").as_deref(), Some("1.0"));
        assert_eq!(field(c, "Depends"), None);
    }
}
