//! parc's image helper (src/bin/parc-image-helper): found beside the parc
//! executable, sent along with the deploy script to targets that can run it.
//!
//! Why it is optional: the target contract is sh and core utilities. The helper
//! only makes the same protocol cheaper (no process and no pipe per chunk), so a
//! target it does not suit, or a missing helper, changes speed, never results.

use std::path::PathBuf;

use super::protocol::TargetInfo;

/// The helper's file name, beside `parc` (cargo builds both into one folder).
pub const FILE_NAME: &str = "parc-image-helper";

/// The helper's bytes, and the `uname -sm` of the machines it runs on.
#[derive(Debug)]
pub struct Helper {
    pub bytes: Vec<u8>,
    machine: String,
}

impl Helper {
    /// The helper at `$PARC_IMAGE_HELPER`, else beside the running executable;
    /// `None` when there is none (targets then use sh alone).
    pub fn locate() -> Option<Helper> {
        let path = match std::env::var_os("PARC_IMAGE_HELPER") {
            Some(p) => PathBuf::from(p),
            None => std::env::current_exe().ok()?.parent()?.join(FILE_NAME),
        };
        let bytes = std::fs::read(&path).ok()?;
        Some(Helper {
            bytes,
            machine: this_machine()?,
        })
    }

    /// Any bytes posing as the helper of this machine.
    #[cfg(test)]
    pub fn fake(bytes: Vec<u8>) -> Helper {
        Helper {
            bytes,
            machine: this_machine().expect("tests run on Linux"),
        }
    }

    /// Whether `target` can run it: same kernel and architecture as this
    /// controller, and a dd that can cut it exactly out of the stream.
    pub fn suits(&self, target: &TargetInfo) -> bool {
        target.fullblock && target.machine == self.machine
    }
}

/// This machine as `uname -sm` spells it (with `/`), for the kernels and
/// architectures whose names agree with Rust's.
fn this_machine() -> Option<String> {
    let os = match std::env::consts::OS {
        "linux" => "Linux",
        _ => return None,
    };
    let arch = match std::env::consts::ARCH {
        a @ ("x86_64" | "aarch64" | "riscv64" | "s390x") => a,
        _ => return None,
    };
    Some(format!("{os}/{arch}"))
}
