//! Source locations for errors about user-written files.
//!
//! Every error about a YAML file a technician wrote carries one of these, so the
//! message can point at `file:line:column` instead of describing the problem vaguely.

use std::fmt;
use std::path::PathBuf;

/// A position in a user file; line and column are 1-based, as editors show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl Location {
    /// Location from a YAML parser error, when the parser knows where it stopped.
    pub fn from_yaml(file: &std::path::Path, err: &serde_norway::Error) -> Option<Self> {
        err.location().map(|l| Location {
            file: file.to_path_buf(),
            line: l.line(),
            column: l.column(),
        })
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}
