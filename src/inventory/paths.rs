//! Paths written in an inventory are relative to the inventory file.

use std::path::{Path, PathBuf};

pub fn resolve(inventory: &Path, written: &str) -> PathBuf {
    if let Some(rest) = written.strip_prefix("~/")
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    let p = Path::new(written);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    inventory
        .parent()
        .map_or_else(|| p.to_path_buf(), |dir| dir.join(p))
}
