//! `file`: a path exists (or not) with the right mode, owner, group and content.

use serde::{Deserialize, Serialize};

use super::probe::{CONTENT_LIMIT, Check, Probe, Probed, contains_check, matches_check, presence};
use crate::resources::script::Script;
use crate::resources::{Mode, PathKind, PathState};
use crate::transport::quote;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTest {
    pub path: String,
    /// Any type of file counts (directories, links): `false` means absent.
    #[serde(default = "yes")]
    pub exists: bool,
    pub mode: Option<Mode>,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub contains: Option<String>,
    /// A regular expression searched line by line.
    pub matches: Option<String>,
    pub sha256: Option<String>,
}

fn yes() -> bool {
    true
}

impl Probe for FileTest {
    fn label(&self) -> String {
        format!("file {}", self.path)
    }

    fn probe(&self, id: &str, s: &mut Script) {
        let p = quote(&self.path);
        // One `stat` for every file test of the host, and one hashing
        // process when a test compares a hash.
        let stat = if self.sha256.is_some() {
            s.stat(&self.path)
        } else {
            s.stat_attrs(&self.path)
        };
        s.sh(&format!("pv_start {id}; {stat}"));
        if self.contains.is_some() || self.matches.is_some() {
            // Never through a link a user could have made on the way, nor
            // from a named pipe swapped in since the test (parc_copy_walked);
            // one byte more says it was cut.
            let copy = s.capture(id, "content", CONTENT_LIMIT as u64);
            s.sh(&format!(
                "parc_copy_walked {p} {copy} {} || [ $? != 2 ] || echo walk=stopped",
                CONTENT_LIMIT + 1
            ));
        }
        s.sh("pv_end");
    }

    fn evaluate(&self, probed: &Probed) -> Vec<Check> {
        let now = match PathState::read(probed.0, "", &self.label()) {
            Ok(now) => now,
            Err(e) => {
                return vec![Check::impossible(
                    "probe",
                    "the file's state",
                    e.to_string(),
                )];
            }
        };
        let exists = now.kind != PathKind::Absent;
        let actual = match now.kind {
            PathKind::Absent => "absent",
            PathKind::File { .. } => "present (regular file)",
            PathKind::Dir => "present (directory)",
            PathKind::Link { .. } => "present (symbolic link)",
            PathKind::Other => "present (special file)",
        };
        let mut checks = vec![Check::new(
            "exists",
            presence(self.exists),
            actual,
            exists == self.exists,
        )];
        if !exists || !self.exists {
            // Nothing more to compare on an absent file, or on one that must not be.
            return checks;
        }
        if let Some(Mode(m)) = self.mode {
            let actual = now
                .mode()
                .map_or_else(|| "unknown".to_string(), |a| format!("{a:04o}"));
            checks.push(Check::equal("mode", format!("{m:04o}"), actual));
        }
        for (what, want, actual) in [
            ("owner", &self.owner, now.owner()),
            ("group", &self.group, now.group()),
        ] {
            if let Some(want) = want {
                checks.push(Check::equal(
                    what,
                    want.as_str(),
                    actual.unwrap_or_else(|| "unknown".into()),
                ));
            }
        }
        if let Some(want) = &self.sha256 {
            let actual = match &now.kind {
                PathKind::File { sha256 } => sha256.as_deref().unwrap_or("not read"),
                _ => "not a regular file",
            };
            checks.push(Check::new(
                "sha256",
                want.as_str(),
                actual,
                want.eq_ignore_ascii_case(actual),
            ));
        }
        let content = probed.content("content");
        for (what, pattern) in [("contains", &self.contains), ("matches", &self.matches)] {
            let Some(pattern) = pattern else { continue };
            checks.push(match &content {
                None if probed.get("walk") == Some("stopped") => Check::impossible(
                    what,
                    pattern.as_str(),
                    "not read: a link on the way to it lies in a directory a user may change \
                     (their own, or a sticky one like /tmp), and root does not follow it",
                ),
                None => Check::impossible(what, pattern.as_str(), "not a readable regular file"),
                Some((text, cut)) if what == "contains" => {
                    contains_check(what, pattern, text, *cut, false)
                }
                Some((text, cut)) => matches_check(what, pattern, text, *cut, false),
            });
        }
        checks
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{passed, record};
    use super::*;
    use crate::resources::script::Record;

    fn test(yaml: &str) -> FileTest {
        serde_norway::from_str(yaml).unwrap()
    }

    #[test]
    fn present_file_with_attributes_and_content() {
        let t = test(
            "{path: /etc/motd, mode: '0644', owner: root, contains: parc, matches: '^host=ws-\\d+$', sha256: ABC}",
        );
        let r = record(
            &[
                ("type", "file"),
                ("mode", "644"),
                ("owner", "root"),
                ("group", "root"),
                ("sha256", "abc"),
            ],
            &[("content", "# parc\nhost=ws-001\n")],
        );
        let checks = t.evaluate(&Probed(&r));
        assert!(passed(&checks), "{checks:#?}");
        assert_eq!(checks.len(), 6);

        let r = record(
            &[
                ("type", "file"),
                ("mode", "600"),
                ("owner", "bob"),
                ("group", "bob"),
                ("sha256", "abd"),
            ],
            &[("content", "other\n")],
        );
        let checks = t.evaluate(&Probed(&r));
        let failed: Vec<_> = checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.what.as_str())
            .collect();
        assert_eq!(failed, ["mode", "owner", "sha256", "contains", "matches"]);
        assert_eq!(checks[1].expected, "0644");
        assert_eq!(checks[1].actual, "0600");
        assert_eq!(checks[4].actual, "not found in 6 bytes");
    }

    #[test]
    fn absence() {
        let missing = record(&[("type", "none")], &[]);
        let present = test("{path: /x, mode: '0644'}");
        let checks = present.evaluate(&Probed(&missing));
        assert_eq!(checks.len(), 1, "nothing else to compare");
        assert_eq!(
            (checks[0].expected.as_str(), checks[0].actual.as_str()),
            ("present", "absent")
        );
        let absent = test("{path: /x, exists: false}");
        assert!(passed(&absent.evaluate(&Probed(&missing))));
        let dir = root_dir();
        let checks = absent.evaluate(&Probed(&dir));
        assert!(!passed(&checks));
        assert_eq!(checks[0].actual, "present (directory)");
    }

    /// A directory of root's, as the probe prints it.
    fn root_dir() -> Record {
        record(
            &[
                ("type", "dir"),
                ("mode", "755"),
                ("owner", "root"),
                ("group", "root"),
            ],
            &[],
        )
    }

    #[test]
    fn content_of_a_directory_cannot_match() {
        let t = test("{path: /etc, contains: x}");
        let dir = root_dir();
        let checks = t.evaluate(&Probed(&dir));
        assert!(!checks[1].passed);
        assert_eq!(checks[1].actual, "not a readable regular file");
    }
}
