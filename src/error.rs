//! The top-level error of a parc command, and the one place exit codes are decided.

use crate::engine::events::Summary;
use crate::image::ImageError;
use crate::inventory::{InventoryError, PatternError};
use crate::report::ReportError;

#[derive(Debug, thiserror::Error)]
pub enum ParcError {
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error(transparent)]
    Pattern(#[from] PatternError),
    #[error(transparent)]
    Playbook(#[from] crate::playbook::PlaybookError),
    #[error("-e `{item}`: expected KEY=VALUE")]
    ExtraVar { item: String },
    #[error("-e #{index}: cannot read this mapping of variables: {reason}")]
    ExtraVarMapping { index: usize, reason: String },
    #[error(transparent)]
    Profile(#[from] crate::profile::ProfileError),
    #[error(
        "cannot verify `{target}`: {reason}. Give a playbook file, a profile file, or the name of a profile in ./profiles; nothing was verified"
    )]
    VerifyTarget { target: String, reason: String },
    #[error(
        "verifying profile `{profile}` needs --on PATTERN to say which hosts (a profile, unlike a playbook, names none); nothing was verified"
    )]
    VerifyNeedsHosts { profile: String },
    #[error(
        "`{target}` declares no tests: none of its profiles (or their includes) has a `verify:` list, so there is nothing to verify"
    )]
    NothingToVerify { target: String },
    #[error("cannot write {}: {source}", path.display())]
    WriteFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Lab(#[from] crate::lab::LabError),
    #[error(transparent)]
    Report(#[from] crate::report::ReportError),
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error(
        "no inventory given and none found: pass -i FILE, set PARC_INVENTORY, or create inventory.yml (`parc lab up` writes lab/inventory.yml)"
    )]
    NoInventory,
    #[error("cannot write {what}: {source}")]
    Output {
        what: &'static str,
        source: std::io::Error,
    },
}

/// Exit codes, documented in the README. Kept in one table so every command agrees.
pub mod exit {
    /// Every host ended ok.
    pub const OK: u8 = 0;
    /// parc itself failed (I/O on the controller, an internal error).
    pub const INTERNAL: u8 = 1;
    /// Bad input: command line, inventory, pattern, profile, playbook, template.
    pub const USAGE: u8 = 2;
    /// At least one host failed (including hosts rolled back or degraded, and
    /// hosts refused for a changed or revoked host key).
    pub const HOSTS_FAILED: u8 = 3;
    /// No host failed, but at least one was unreachable.
    pub const HOSTS_UNREACHABLE: u8 = 4;
    /// The environment lacks something (root, sshd, ...) for `parc lab`.
    pub const ENVIRONMENT: u8 = 5;
    /// An image does not match its manifest (`parc image verify`, or a deploy
    /// refused before connecting).
    pub const IMAGE_MISMATCH: u8 = 6;
}

impl ParcError {
    pub fn exit_code(&self) -> u8 {
        match self {
            ParcError::Playbook(crate::playbook::PlaybookError::Image { source, .. })
                if matches!(**source, ImageError::Mismatch { .. }) =>
            {
                exit::IMAGE_MISMATCH
            }
            ParcError::Inventory(_)
            | ParcError::Pattern(_)
            | ParcError::NoInventory
            | ParcError::Playbook(_)
            | ParcError::Profile(_)
            | ParcError::VerifyTarget { .. }
            | ParcError::VerifyNeedsHosts { .. }
            | ParcError::NothingToVerify { .. }
            | ParcError::ExtraVar { .. }
            | ParcError::ExtraVarMapping { .. } => exit::USAGE,
            ParcError::Lab(e) if e.is_environment() => exit::ENVIRONMENT,
            ParcError::Report(
                ReportError::NoRuns { .. }
                | ReportError::UnknownRun { .. }
                | ReportError::UnknownHost { .. }
                | ReportError::AmbiguousRun { .. },
            ) => exit::USAGE,
            ParcError::Report(_) => exit::INTERNAL,
            ParcError::Lab(_) | ParcError::Output { .. } | ParcError::WriteFile { .. } => {
                exit::INTERNAL
            }
            ParcError::Image(e) => match e {
                ImageError::Mismatch { .. } => exit::IMAGE_MISMATCH,
                ImageError::Io { .. } | ImageError::Capture { .. } => exit::INTERNAL,
                ImageError::NoManifest { .. }
                | ImageError::ManifestSyntax { .. }
                | ImageError::ManifestVersion { .. }
                | ImageError::ManifestInvalid { .. }
                | ImageError::Unaligned { .. }
                | ImageError::ChunkSize { .. }
                | ImageError::Exists { .. } => exit::USAGE,
            },
        }
    }
}

/// Exit code for a finished run: bad input (a template that does not render
/// for some host) outranks host failures, which outrank unreachable hosts.
pub fn exit_for(summary: &Summary) -> u8 {
    if summary.invalid_input > 0 {
        exit::USAGE
    } else if summary.failed + summary.untrusted + summary.degraded + summary.rolled_back > 0 {
        exit::HOSTS_FAILED
    } else if summary.unreachable > 0 {
        exit::HOSTS_UNREACHABLE
    } else {
        exit::OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::events::HostState;

    #[test]
    fn an_untrusted_host_is_a_failure_not_an_unreachable_one() {
        assert!(HostState::Untrusted.is_failure());
        let mut s = Summary {
            unreachable: 3,
            ..Summary::default()
        };
        assert_eq!(exit_for(&s), exit::HOSTS_UNREACHABLE);
        s.add(HostState::Untrusted);
        assert_eq!(exit_for(&s), exit::HOSTS_FAILED);
    }
}
