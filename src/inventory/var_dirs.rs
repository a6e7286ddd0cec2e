//! Ansible's `group_vars/` and `host_vars/` beside an Ansible-layout inventory
//! file (YAML or INI), so that a team's existing tree works unchanged. For a
//! group or host NAME, the first of `NAME`, `NAME.yml`, `NAME.yaml`,
//! `NAME.json` that exists: a file, or a directory of such files read in name
//! order, later files overriding earlier ones.
//!
//! As in Ansible, `group_vars/` as a whole ranks above every group variable
//! the inventory file sets (`group_vars/all` included), and `host_vars/` above
//! the host's own (see the module above).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{InventoryError, Vars, yaml11};
use crate::location::Location;

/// The variables files under `dir` (a `group_vars` or `host_vars` directory)
/// give `name`, merged in order; empty when there are none.
pub fn load(dir: &Path, name: &str) -> Result<Vars, InventoryError> {
    let mut vars = Vars::new();
    for file in files(dir, name) {
        let text = crate::confine::read_regular_to_string(&file)
            .map_err(|source| InventoryError::Read { source })?;
        crate::location::prescan(&file, &text)?;
        match yaml11::from_str(&text, &file)? {
            Value::Null => {}
            Value::Object(v) => vars.extend(v),
            _ => {
                return Err(InventoryError::Invalid {
                    location: Location {
                        file,
                        line: 1,
                        column: 1,
                    },
                    message: format!(
                        "the variables of `{name}` must be a mapping of names to values"
                    ),
                });
            }
        }
    }
    Ok(vars)
}

/// The first of `NAME`, `NAME.yml`, `NAME.yaml`, `NAME.json` that exists (and
/// only that one, as Ansible's `find_vars_files`): a file, or a directory
/// whose variables files are read in name order, subdirectories included.
fn files(dir: &Path, name: &str) -> Vec<PathBuf> {
    let Some(first) = ["", ".yml", ".yaml", ".json"]
        .iter()
        .map(|ext| dir.join(format!("{name}{ext}")))
        .find(|p| p.exists())
    else {
        return vec![];
    };
    if first.is_dir() {
        dir_files(&first)
    } else {
        vec![first]
    }
}

fn dir_files(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|e| e.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    entries.sort();
    let mut found = Vec::new();
    for p in entries {
        let Some(file_name) = p.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        // Hidden files (editor swap files, `.git`) and backups are not read.
        if file_name.starts_with('.') || file_name.ends_with('~') {
            continue;
        }
        let ext = p.extension().and_then(|e| e.to_str());
        if p.is_dir() && ext.is_none() {
            found.extend(dir_files(&p));
        } else if p.is_file() && matches!(ext, None | Some("yml" | "yaml" | "json")) {
            found.push(p);
        }
    }
    found
}
