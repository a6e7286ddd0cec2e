//! What every test kind implements, and the result types they produce.

use serde::Serialize;

use crate::resources::script::{Record, Script};

/// Largest content fetched for `contains`/`matches` checks. Only the start of a
/// bigger file or output is searched, and the result says so.
pub const CONTENT_LIMIT: usize = 1024 * 1024;

/// Largest command output or file text kept in a result, so a report of 500
/// hosts stays readable and small.
pub const SHOWN_LIMIT: usize = 4096;

/// A test kind: the sh that reports the host's state, and the local judgement.
pub trait Probe {
    /// Kind and subject, the default report name: `file /etc/motd`.
    fn label(&self) -> String;
    /// Append sh that prints record `id` (see `lib.sh`: start with
    /// `pv_start ID`, end with `pv_end`). It must not exit or read stdin.
    fn probe(&self, id: &str, script: &mut Script);
    /// Compare the probed state with the declaration. Never empty.
    fn evaluate(&self, probed: &Probed) -> Vec<Check>;
}

/// One test on one host, as reports show it. Every text went through the run's
/// redactor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestResult {
    pub name: String,
    pub kind: &'static str,
    pub passed: bool,
    pub checks: Vec<Check>,
}

/// One property of a test, e.g. the mode of a file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub what: String,
    pub expected: String,
    pub actual: String,
    pub passed: bool,
}

impl Check {
    pub fn new(
        what: &str,
        expected: impl Into<String>,
        actual: impl Into<String>,
        passed: bool,
    ) -> Check {
        Check {
            what: what.to_string(),
            expected: expected.into(),
            actual: actual.into(),
            passed,
        }
    }

    /// Passed when both texts are equal.
    pub fn equal(what: &str, expected: impl Into<String>, actual: impl Into<String>) -> Check {
        let (expected, actual) = (expected.into(), actual.into());
        let passed = expected == actual;
        Check::new(what, expected, actual, passed)
    }

    /// A check that cannot pass, explaining why (a missing tool, a bad pattern).
    pub fn impossible(what: &str, expected: impl Into<String>, why: impl Into<String>) -> Check {
        Check::new(what, expected, why, false)
    }
}

/// A probed record with helpers for the fields and blobs kinds print.
pub struct Probed<'a>(pub &'a Record);

impl Probed<'_> {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key)
    }

    /// `key` is "yes".
    pub fn yes(&self, key: &str) -> bool {
        self.get(key) == Some("yes")
    }

    /// A blob (a file the probe captured): its text (lossy UTF-8), and whether it
    /// was cut at [`CONTENT_LIMIT`]; `None` when the file did not exist.
    pub fn content(&self, key: &str) -> Option<(String, bool)> {
        let bytes = self.0.blobs.get(key)?;
        let cut = bytes.len() > CONTENT_LIMIT;
        let kept = &bytes[..bytes.len().min(CONTENT_LIMIT)];
        Some((String::from_utf8_lossy(kept).into_owned(), cut))
    }
}

/// `text`, cut to its last [`SHOWN_LIMIT`] bytes (where errors usually are).
pub fn clip(text: &str) -> String {
    if text.len() <= SHOWN_LIMIT {
        return text.to_string();
    }
    let mut start = text.len() - SHOWN_LIMIT;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("[... {start} bytes cut ...]{}", &text[start..])
}

/// "present"/"absent", the words every existence check uses.
pub fn presence(exists: bool) -> &'static str {
    if exists { "present" } else { "absent" }
}

/// Check that `text` contains `needle`, saying how much was searched. The
/// needle is shown as written, not escaped: a secret in it (a needle
/// rendered from a secret variable) must read as the redactor knows it, and
/// an escaped quote or backslash would not.
pub fn contains_check(what: &str, needle: &str, text: &str, cut: bool, show: bool) -> Check {
    let found = text.contains(needle);
    Check::new(
        what,
        format!("contains \"{needle}\""),
        searched(found, text, cut, show),
        found,
    )
}

/// Check that a line of `text` matches `pattern` (`^` and `$` match at line
/// boundaries, as people expect of config files).
pub fn matches_check(what: &str, pattern: &str, text: &str, cut: bool, show: bool) -> Check {
    let expected = format!("matches /{pattern}/");
    match regex::RegexBuilder::new(pattern).multi_line(true).build() {
        Ok(re) => {
            let found = re.is_match(text);
            Check::new(what, expected, searched(found, text, cut, show), found)
        }
        Err(e) => Check::impossible(what, expected, format!("invalid regular expression: {e}")),
    }
}

fn searched(found: bool, text: &str, cut: bool, show: bool) -> String {
    let scope = if cut {
        format!("the first {CONTENT_LIMIT} bytes")
    } else {
        format!("{} bytes", text.len())
    };
    match (found, show) {
        (true, _) => format!("found in {scope}"),
        (false, false) => format!("not found in {scope}"),
        (false, true) => format!("not found in {scope}: {}", clip(text)),
    }
}
