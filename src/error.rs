//! The top-level error of a parc command, and the one place exit codes are
//! decided ([`exit_code`]).

use crate::events::Summary;
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
    #[error(transparent)]
    ExtraVars(#[from] crate::inventory::extra_vars::ExtraVarError),
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
    #[error(
        "--format glpi needs -o DIR, --post URL or both, to say where the inventories go; \
         nothing was gathered"
    )]
    GlpiNowhere,
    #[error("--post sends GLPI inventories: it needs --format glpi; nothing was gathered")]
    PostNeedsGlpi,
    #[error(transparent)]
    GlpiAccess(#[from] crate::facts::glpi_server::AccessError),
    #[error("cannot write {what}: {source}")]
    Output {
        what: &'static str,
        source: std::io::Error,
    },
}

/// How a command ended, when it did not end in a [`ParcError`]: what
/// [`exit_code`] turns into the process's exit status.
#[derive(Debug, Clone)]
pub enum Ended {
    /// A local command (report, inventory, image build) did its work.
    Done,
    /// A run on hosts (run, facts, apply, plan, verify, image deploy/capture).
    Run(Summary),
    /// `parc facts --post`: the run, then how many gathered inventories GLPI
    /// did not take (refused, or not sent), each a failed host.
    Inventory { run: Summary, not_sent: usize },
    /// `parc rollback`: as a run, but restoring no host at all is a failure
    /// (most likely a mistyped run id).
    Rollback(Summary),
    /// `parc image verify`: whether the image matches its manifest.
    ImageChecked { matches: bool },
}

/// parc's exit statuses. The README's table is checked against
/// [`Exit::ALL`] and [`Exit::meaning`] (see the tests below).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    Ok = 0,
    Internal = 1,
    Usage = 2,
    HostsFailed = 3,
    HostsUnreachable = 4,
    Environment = 5,
    ImageMismatch = 6,
}

impl Exit {
    pub const ALL: [Exit; 7] = [
        Exit::Ok,
        Exit::Internal,
        Exit::Usage,
        Exit::HostsFailed,
        Exit::HostsUnreachable,
        Exit::Environment,
        Exit::ImageMismatch,
    ];

    pub fn code(self) -> u8 {
        self as u8
    }

    /// What the status means, as the README's exit-code table says it.
    pub fn meaning(self) -> &'static str {
        match self {
            Exit::Ok => "every host ok (or changed)",
            Exit::Internal => "parc itself failed (controller I/O, internal error)",
            Exit::Usage => {
                "bad input: command line, inventory, host pattern, profile, playbook, template \
                 (also a template or `when` that fails to render for some host: nothing is sent \
                 to that host)"
            }
            Exit::HostsFailed => {
                "at least one host failed or was untrusted (changed or revoked host key; a \
                 rollout aborted past its failure budget, or a host's inventory GLPI did not \
                 take, also ends here)"
            }
            Exit::HostsUnreachable => "no host failed, but at least one was unreachable",
            Exit::Environment => "`parc lab` lacks something on this machine (root, sshd, ...)",
            Exit::ImageMismatch => "`parc image verify`: the image no longer matches its manifest",
        }
    }
}

/// The one place a command's end becomes an exit status.
pub fn exit_code(result: &Result<Ended, ParcError>) -> Exit {
    match result {
        Ok(Ended::Done) => Exit::Ok,
        Ok(Ended::Run(summary)) => run_exit(summary),
        Ok(Ended::Inventory { run, not_sent }) => match run_exit(run) {
            Exit::Ok | Exit::HostsUnreachable if *not_sent > 0 => Exit::HostsFailed,
            exit => exit,
        },
        Ok(Ended::Rollback(summary)) => {
            if summary.failed + summary.untrusted + summary.unreachable > 0 {
                run_exit(summary)
            } else if summary.rolled_back == 0 {
                // No host had that journal: most likely a mistyped run id.
                Exit::HostsFailed
            } else {
                Exit::Ok
            }
        }
        Ok(Ended::ImageChecked { matches: true }) => Exit::Ok,
        Ok(Ended::ImageChecked { matches: false }) => Exit::ImageMismatch,
        Err(e) => error_exit(e),
    }
}

/// A finished run: bad input (a template that does not render for some host)
/// outranks host failures, which outrank unreachable hosts.
fn run_exit(summary: &Summary) -> Exit {
    if summary.invalid_input > 0 {
        Exit::Usage
    } else if summary.failed + summary.untrusted + summary.degraded + summary.rolled_back > 0 {
        Exit::HostsFailed
    } else if summary.unreachable > 0 {
        Exit::HostsUnreachable
    } else {
        Exit::Ok
    }
}

fn error_exit(e: &ParcError) -> Exit {
    match e {
        ParcError::Playbook(crate::playbook::PlaybookError::Image { source, .. })
            if matches!(**source, ImageError::Mismatch { .. }) =>
        {
            Exit::ImageMismatch
        }
        ParcError::Inventory(_)
        | ParcError::Pattern(_)
        | ParcError::NoInventory
        | ParcError::Playbook(_)
        | ParcError::Profile(_)
        | ParcError::VerifyTarget { .. }
        | ParcError::VerifyNeedsHosts { .. }
        | ParcError::NothingToVerify { .. }
        | ParcError::ExtraVars(_)
        | ParcError::GlpiNowhere
        | ParcError::PostNeedsGlpi
        | ParcError::GlpiAccess(_) => Exit::Usage,
        ParcError::Lab(e) if e.is_environment() => Exit::Environment,
        ParcError::Report(
            ReportError::NoRuns { .. }
            | ReportError::UnknownRun { .. }
            | ReportError::UnknownHost { .. }
            | ReportError::AmbiguousRun { .. },
        ) => Exit::Usage,
        ParcError::Report(_) => Exit::Internal,
        ParcError::Lab(_) | ParcError::Output { .. } | ParcError::WriteFile { .. } => {
            Exit::Internal
        }
        ParcError::Image(e) => match e {
            ImageError::Mismatch { .. } => Exit::ImageMismatch,
            ImageError::Io { .. } | ImageError::Capture { .. } => Exit::Internal,
            ImageError::NoManifest { .. }
            | ImageError::ManifestSyntax { .. }
            | ImageError::ManifestVersion { .. }
            | ImageError::ManifestInvalid { .. }
            | ImageError::Unaligned { .. }
            | ImageError::ChunkSize { .. }
            | ImageError::Exists { .. }
            | ImageError::NotSeekable { .. }
            | ImageError::RawOutputCompressed { .. }
            | ImageError::Unreadable { .. } => Exit::Usage,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::HostState;

    #[test]
    fn an_untrusted_host_is_a_failure_not_an_unreachable_one() {
        assert!(HostState::Untrusted.is_failure());
        let mut s = Summary {
            unreachable: 3,
            ..Summary::default()
        };
        assert_eq!(
            exit_code(&Ok(Ended::Run(s.clone()))),
            Exit::HostsUnreachable
        );
        s.add(HostState::Untrusted);
        assert_eq!(exit_code(&Ok(Ended::Run(s))), Exit::HostsFailed);
    }

    /// The README's exit-code table says what [`Exit`] says: every code,
    /// once, in order, with its meaning.
    #[test]
    fn the_readme_table_matches_the_exit_codes() {
        let readme = include_str!("../README.md");
        let section = readme
            .split("\n## Exit codes\n")
            .nth(1)
            .expect("the README has an exit-code section");
        let rows: Vec<(u8, String)> = section
            .lines()
            .skip_while(|l| !l.starts_with('|'))
            .take_while(|l| l.starts_with('|'))
            .skip(2) // header and separator
            .map(|l| {
                let cells: Vec<&str> = l.trim_matches('|').split(" | ").map(str::trim).collect();
                assert_eq!(cells.len(), 2, "row `{l}`");
                (cells[0].parse().expect("a code"), cells[1].to_string())
            })
            .collect();
        let expected: Vec<(u8, String)> = Exit::ALL
            .iter()
            .map(|e| (e.code(), e.meaning().to_string()))
            .collect();
        assert_eq!(rows, expected);
    }

    /// An inventory GLPI did not take is a failed host; bad input still
    /// outranks it.
    #[test]
    fn an_inventory_glpi_did_not_take_is_a_failure() {
        let ended = |run: Summary, not_sent| exit_code(&Ok(Ended::Inventory { run, not_sent }));
        assert_eq!(ended(Summary::default(), 0), Exit::Ok);
        assert_eq!(ended(Summary::default(), 1), Exit::HostsFailed);
        let unreachable = Summary {
            unreachable: 2,
            ..Summary::default()
        };
        assert_eq!(ended(unreachable.clone(), 0), Exit::HostsUnreachable);
        assert_eq!(ended(unreachable, 1), Exit::HostsFailed);
        let invalid = Summary {
            invalid_input: 1,
            ..Summary::default()
        };
        assert_eq!(ended(invalid, 1), Exit::Usage);
    }

    #[test]
    fn a_rollback_that_restored_nothing_failed() {
        let nothing = Summary::default();
        assert_eq!(exit_code(&Ok(Ended::Rollback(nothing))), Exit::HostsFailed);
        let restored = Summary {
            rolled_back: 1,
            ..Summary::default()
        };
        assert_eq!(exit_code(&Ok(Ended::Rollback(restored.clone()))), Exit::Ok);
        assert_eq!(exit_code(&Ok(Ended::Run(restored))), Exit::HostsFailed);
    }
}
