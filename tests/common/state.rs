//! What a lab host looks like from inside, for "restored exactly" checks.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::Digest;

/// (kind, sha256 of content or link target, mode, uid, gid) of a path.
pub type Entry = (String, String, u32, u32, u32);

fn walk(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
    let Ok(dir) = std::fs::read_dir(root.join(rel)) else {
        return;
    };
    for e in dir.flatten() {
        let p = rel.join(e.file_name());
        out.push(p.clone());
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            walk(root, &p, out);
        }
    }
}

/// Every path written on the host (its overlay upper dir), as the host sees it.
/// Copy-up of an unchanged file or directory is invisible to the host, so the
/// comparison is of the host's view of those paths, not of the upper dir's
/// bookkeeping. parc's own journal directory is left out: it is kept on purpose.
pub fn host_view(upper: &Path, root: &Path, extra: &[PathBuf]) -> BTreeMap<PathBuf, Option<Entry>> {
    let mut paths = Vec::new();
    walk(upper, Path::new(""), &mut paths);
    paths.extend(extra.iter().cloned());
    paths
        .into_iter()
        .filter(|p| !p.starts_with("var/lib/parc"))
        .map(|p| {
            let full = root.join(&p);
            let entry = std::fs::symlink_metadata(&full).ok().map(|m| {
                let (kind, hash) = if m.file_type().is_symlink() {
                    let t = std::fs::read_link(&full).unwrap();
                    (
                        "link",
                        format!(
                            "{:x}",
                            sha2::Sha256::digest(t.as_os_str().as_encoded_bytes())
                        ),
                    )
                } else if m.is_dir() {
                    ("dir", String::new())
                } else {
                    let data = std::fs::read(&full).unwrap_or_default();
                    ("file", format!("{:x}", sha2::Sha256::digest(&data)))
                };
                (kind.to_string(), hash, m.mode(), m.uid(), m.gid())
            });
            (p, entry)
        })
        .collect()
}

/// The paths of a host's upper dir (to merge "before" and "after" sets).
pub fn upper_paths(upper: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    walk(upper, Path::new(""), &mut out);
    out
}
