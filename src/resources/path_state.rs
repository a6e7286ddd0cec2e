//! What a probe saw at one path, typed once from the fields `parc_stat`
//! printed (lib.sh), so that no resource kind reads `type=`, `mode=` or
//! `target=` strings of its own.

use super::ResourceError;
use super::script::Record;

/// The kind of what stands at a path, with what parc compares of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathKind {
    Absent,
    File {
        /// `None` when the probe asked for the attributes only
        /// ([`super::script::Script::stat_attrs`]): a verification test that
        /// compares no content does not read the file whole.
        sha256: Option<String>,
    },
    Dir,
    Link {
        target: String,
    },
    /// A device, a FIFO, a socket: parc manages none.
    Other,
}

/// Mode and ownership of a present path (of the link itself for a link).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attrs {
    pub mode: u32,
    pub owner: String,
    pub group: String,
    /// Bytes (0 where a probe did not say: a file parc itself wrote in this
    /// run, as `Written` shows it).
    pub size: u64,
    /// Names of the file (hard links); a file with several may be another
    /// user's file under a second name.
    pub links: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathState {
    pub kind: PathKind,
    /// `None` exactly when the path is absent.
    pub attrs: Option<Attrs>,
    /// The nearest existing directory above the path, where a file installed
    /// there is staged (see `parc_stage_dir`).
    pub stage: Option<String>,
}

impl PathState {
    /// Read the fields `parc_stat PATH PREFIX` printed into `r`. A field a
    /// probe always prints but is missing or malformed is an error for the
    /// resource `label`, never read as "absent" or "mode unknown".
    pub fn read(r: &Record, prefix: &str, label: &str) -> Result<PathState, ResourceError> {
        let get = |key: &str| r.get(&format!("{prefix}{key}"));
        let need = |key: &str| {
            get(key).ok_or_else(|| ResourceError::Conflict {
                resource: label.to_string(),
                reason: format!(
                    "the probe reported no `{prefix}{key}` for it; nothing was done to it"
                ),
            })
        };
        let kind = match need("type")? {
            "none" => PathKind::Absent,
            "file" => PathKind::File {
                sha256: match get("hashed") {
                    Some("no") => None,
                    _ => Some(need("sha256")?.to_string()),
                },
            },
            "dir" => PathKind::Dir,
            "link" => PathKind::Link {
                target: need("target")?.to_string(),
            },
            _ => PathKind::Other,
        };
        let attrs = match kind {
            PathKind::Absent => None,
            _ => Some(Attrs {
                mode: crate::numbers::mode(need("mode")?).ok_or_else(|| {
                    ResourceError::Conflict {
                        resource: label.to_string(),
                        reason:
                            "the probe reported a mode that is not octal; nothing was done to it"
                                .into(),
                    }
                })?,
                owner: need("owner")?.to_string(),
                group: need("group")?.to_string(),
                size: get("size").and_then(|n| n.parse().ok()).unwrap_or(0),
                links: get("links").and_then(|n| n.parse().ok()).unwrap_or(1),
            }),
        };
        Ok(PathState {
            kind,
            attrs,
            stage: get("stage").map(str::to_string),
        })
    }

    /// What stands there, in words for messages.
    pub fn what(&self) -> &'static str {
        match self.kind {
            PathKind::Absent => "nothing",
            PathKind::File { .. } => "regular file",
            PathKind::Dir => "directory",
            PathKind::Link { .. } => "symlink",
            PathKind::Other => "special file",
        }
    }

    pub fn size(&self) -> u64 {
        self.attrs.as_ref().map_or(0, |a| a.size)
    }
    pub fn mode(&self) -> Option<u32> {
        self.attrs.as_ref().map(|a| a.mode)
    }
    pub fn owner(&self) -> Option<String> {
        self.attrs.as_ref().map(|a| a.owner.clone())
    }
    pub fn group(&self) -> Option<String> {
        self.attrs.as_ref().map(|a| a.group.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(fields: &[(&str, &str)]) -> Record {
        let mut r = Record::default();
        for (k, v) in fields {
            r.fields.insert(k.to_string(), v.to_string());
        }
        r
    }

    #[test]
    fn a_record_is_typed_once_and_gaps_are_errors() {
        let r = record(&[
            ("k_type", "link"),
            ("k_target", "a\nb"),
            ("k_mode", "777"),
            ("k_owner", "alice"),
            ("k_group", "alice"),
            ("k_stage", "/home"),
        ]);
        let s = PathState::read(&r, "k_", "x").unwrap();
        assert_eq!(
            s.kind,
            PathKind::Link {
                target: "a\nb".into()
            }
        );
        assert_eq!(s.mode(), Some(0o777));
        assert_eq!(s.stage.as_deref(), Some("/home"));
        let unhashed = record(&[
            ("type", "file"),
            ("hashed", "no"),
            ("mode", "644"),
            ("owner", "r"),
            ("group", "r"),
        ]);
        let unhashed = PathState::read(&unhashed, "", "x").unwrap();
        assert_eq!(unhashed.kind, PathKind::File { sha256: None });
        let absent = PathState::read(&record(&[("type", "none")]), "", "x").unwrap();
        assert_eq!((absent.kind, absent.attrs), (PathKind::Absent, None));
        for gap in [
            record(&[]),
            record(&[("type", "file"), ("mode", "644")]),
            record(&[
                ("type", "dir"),
                ("mode", "9"),
                ("owner", "r"),
                ("group", "r"),
            ]),
        ] {
            assert!(PathState::read(&gap, "", "x").is_err(), "{gap:?}");
        }
    }
}
