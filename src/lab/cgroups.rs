//! Control groups of systemd hosts.
//!
//! systemd-nspawn puts itself and the host's systemd into sub-groups of the cgroup
//! it was started in. Every host therefore starts in its own group, named after its
//! directory (`parc-lab/<host dir>` in each cgroup hierarchy), so that hosts never
//! share a `payload` group whose processes each host's systemd would treat as its
//! own, and so that a host's processes can be found by group even though their
//! root is not visible from the controller.
//!
//! The groups outlive the processes; `down` removes them, empty, once every
//! process is gone.

use std::path::{Path, PathBuf};

use super::LabError;

/// Cgroup hierarchies systemd-nspawn uses: the unified hierarchy (at the top on a
/// pure cgroup v2 machine, under `unified` on a hybrid one) and systemd's named
/// v1 hierarchy. Only those mounted here (with a `cgroup.procs`) are used.
pub(crate) const MOUNTS: [&str; 3] = [
    "/sys/fs/cgroup",
    "/sys/fs/cgroup/unified",
    "/sys/fs/cgroup/systemd",
];
/// Top group of every lab host, in each hierarchy.
pub(crate) const TOP: &str = "parc-lab";

/// The lab directory a cgroup path (as in `/proc/PID/cgroup`) belongs to, if any:
/// `/parc-lab/srv/lab/hosts/ws-001/payload` gives `/srv/lab/hosts/ws-001/payload`.
pub(crate) fn host_path(cgroup: &str) -> Option<PathBuf> {
    let rest = cgroup.strip_prefix('/')?.strip_prefix(TOP)?;
    rest.starts_with('/').then(|| PathBuf::from(rest))
}

/// The group of the process `pid` in the unified hierarchy, if it is readable.
pub(crate) fn of(pid: u32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(str::to_string)
}

/// Removes the (empty) groups of every host under `prefix` (a lab's hosts
/// directory or one host's directory), then `parc-lab` groups left empty above
/// them. A group that still holds a process is an error: `down` kills first.
pub(crate) fn remove(prefix: &Path) -> Result<(), LabError> {
    let relative = prefix.strip_prefix("/").unwrap_or(prefix);
    for mount in MOUNTS {
        let mount = Path::new(mount);
        if !mount.join("cgroup.procs").exists() {
            continue;
        }
        let top = mount.join(TOP);
        let group = top.join(relative);
        if group.is_dir() {
            remove_tree(&group)?;
        }
        // Parents shared with other labs stay while they are not empty.
        for parent in group.ancestors().skip(1) {
            if !parent.starts_with(&top) || std::fs::remove_dir(parent).is_err() {
                break;
            }
        }
    }
    Ok(())
}

/// Child groups first: a cgroup directory can only be removed once it has no
/// sub-groups, and its files cannot be unlinked, so `remove_dir_all` cannot work.
fn remove_tree(dir: &Path) -> Result<(), LabError> {
    let entries = std::fs::read_dir(dir).map_err(LabError::io("list", dir))?;
    for entry in entries {
        let entry = entry.map_err(LabError::io("list", dir))?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&entry.path())?;
        }
    }
    super::lifecycle::retry_busy(dir, "remove the cgroup", |p| std::fs::remove_dir(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lab_groups_map_to_a_host_path() {
        assert_eq!(
            host_path("/parc-lab/srv/lab/hosts/ws-001/payload/init.scope"),
            Some(PathBuf::from("/srv/lab/hosts/ws-001/payload/init.scope"))
        );
        assert_eq!(host_path("/parc-labx/srv"), None);
        assert_eq!(host_path("/payload/init.scope"), None);
        assert_eq!(host_path("/"), None);
    }
}
