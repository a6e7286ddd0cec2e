//! Ansible's `group_vars/` and `host_vars/` beside an Ansible-layout inventory
//! file (YAML or INI), so that a team's existing tree works unchanged. For a
//! group or host NAME: `NAME`, `NAME.yml`, `NAME.yaml`, `NAME.json`, then every
//! such file in a `NAME/` directory, in name order; later files override
//! earlier ones.
//!
//! As in Ansible, `group_vars/` as a whole ranks above every group variable
//! the inventory file sets (`group_vars/all` included), and `host_vars/` above
//! the host's own (see the module above).

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::native::yaml_error;
use super::{InventoryError, Vars};
use crate::location::Location;

/// The variables files under `dir` (a `group_vars` or `host_vars` directory)
/// give `name`, merged in order; empty when there are none.
pub fn load(dir: &Path, name: &str) -> Result<Vars, InventoryError> {
    let mut vars = Vars::new();
    for file in files(dir, name) {
        let text = std::fs::read_to_string(&file).map_err(|source| InventoryError::Read {
            path: file.clone(),
            source,
        })?;
        match serde_norway::from_str::<Value>(&text).map_err(|e| yaml_error(&file, e))? {
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

fn files(dir: &Path, name: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = ["", ".yml", ".yaml", ".json"]
        .iter()
        .map(|ext| dir.join(format!("{name}{ext}")))
        .filter(|p| p.is_file())
        .collect();
    if let Ok(entries) = std::fs::read_dir(dir.join(name)) {
        let mut inner: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| is_vars_file(p))
            .collect();
        inner.sort();
        found.extend(inner);
    }
    found
}

/// YAML or JSON, not hidden (editor swap files, `.git`).
fn is_vars_file(p: &Path) -> bool {
    let hidden = p
        .file_name()
        .and_then(|n| n.to_str())
        .is_none_or(|n| n.starts_with('.'));
    let ext = p.extension().and_then(|e| e.to_str());
    p.is_file() && !hidden && matches!(ext, None | Some("yml" | "yaml" | "json"))
}
