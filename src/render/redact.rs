//! Secrets never leave the controller in clear: every text parc shows or writes
//! (labels, diffs, change lists, command output, errors, test results) goes
//! through one [`Redactor`] per host.
//!
//! Secrets are followed by taint, not only by value: a field whose template
//! reads a secret variable is secret as a whole (its rendered text is hidden
//! wherever it appears, and so is the value of each `{{ }}` expression in it
//! that reads a secret, so `{{ pw | upper }}` or `{{ pw[1:] }}` echoed back by
//! a command is hidden too). Matching only the raw values would miss every
//! transformed secret and every secret the host sends back in another form.

use std::collections::BTreeSet;

use crate::inventory::Vars;

pub const REDACTED: &str = "<redacted>";

/// How [`crate::verify::clip`] marks a text cut before what it shows.
const CUT: &str = " bytes cut ...]";

/// How a step's output the host cut says so, right after the cut (the text
/// before may end inside a secret).
pub const OUTPUT_CUT: &str = "\n[output cut: ";

/// How an error squashed to a line says it was cut, right after the cut.
pub const LINE_CUT: &str = " [cut]";

/// Every mark of a text cut at its end (see [`Redactor::redact`]).
const END_CUTS: &[&str] = &[OUTPUT_CUT, LINE_CUT];

/// Shorter texts are not hidden: they would redact half of every text (treat
/// them as a configuration mistake).
const MIN_SECRET_LEN: usize = 3;

/// Words in a variable name that suggest its value is a secret.
const SECRET_WORDS: &[&str] = &[
    "pass", "pwd", "secret", "token", "key", "cred", "auth", "private",
];

/// The `-e` rule: a variable given on the command line is secret when its
/// name looks like one, as nobody lists `-e` variables in `secret_vars`.
pub fn looks_secret(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| lower.contains(w))
}

/// The secrets of one host: built once from the host's variables
/// ([`Redactor::for_host`]), tainted while its templates are rendered, then
/// used by every path a text takes out of the host's task.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Variables whose values are secret: a template reading one renders secret text.
    names: BTreeSet<String>,
    /// Texts hidden wherever they appear, longest first so that a secret
    /// containing another is replaced whole.
    values: Vec<String>,
}

impl Redactor {
    /// The variables named in `secret_vars` are secret, every leaf of them
    /// (maps and lists included), and so are the `-e` variables (`extra`)
    /// whose name looks secret, and any value under a secret-looking key
    /// inside an `-e` mapping.
    pub fn for_host<'a>(
        vars: &Vars,
        secret_vars: impl IntoIterator<Item = &'a String>,
        extra: &Vars,
    ) -> Self {
        let mut names: BTreeSet<String> = secret_vars.into_iter().cloned().collect();
        names.extend(extra.keys().filter(|k| looks_secret(k)).cloned());
        let mut values = Vec::new();
        for name in &names {
            if let Some(v) = vars.get(name) {
                leaves(v, true, &mut values);
            }
        }
        for v in extra.values() {
            leaves(v, false, &mut values);
        }
        let mut r = Redactor {
            names,
            values: vec![],
        };
        for v in values {
            r.taint(&v);
        }
        r
    }

    /// Whether a template using these variables renders secret text.
    pub fn reads_secret<'a>(&self, used: impl IntoIterator<Item = &'a str>) -> bool {
        used.into_iter().any(|v| self.names.contains(v))
    }

    /// Hide `text` (a field rendered from a secret, or the value of one of its
    /// expressions) wherever it appears from now on.
    pub fn taint(&mut self, text: &str) {
        let text = text.trim();
        if text.len() < MIN_SECRET_LEN || text == REDACTED {
            return;
        }
        let at = self
            .values
            .binary_search_by(|v| text.len().cmp(&v.len()).then_with(|| v.as_str().cmp(text)));
        if let Err(at) = at {
            self.values.insert(at, text.to_string());
        }
    }

    /// The secrets of both: a host verified for several plays shows texts
    /// rendered with each play's variables.
    pub fn union(mut self, other: Redactor) -> Redactor {
        self.names.extend(other.names);
        for v in &other.values {
            self.taint(v);
        }
        self
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.values {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
        if out.contains(CUT) {
            out = self.redact_after_cuts(&out);
        }
        if END_CUTS.iter().any(|m| out.contains(m)) {
            out = self.redact_before_cuts(&out);
        }
        out
    }

    /// A text cut at its end (see [`END_CUTS`]) may end inside a secret:
    /// hide the longest start of a secret found right before a cut (a
    /// character the cut split, shown as U+FFFD, aside).
    fn redact_before_cuts(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some((at, len)) = END_CUTS
            .iter()
            .filter_map(|m| rest.find(m).map(|at| (at, m.len())))
            .min()
        {
            let head = &rest[..at];
            let whole = head.trim_end_matches('\u{FFFD}');
            let start = self
                .values
                .iter()
                .flat_map(|v| v.char_indices().skip(1).map(move |(i, _)| &v[..i]))
                .filter(|start| start.len() >= MIN_SECRET_LEN && whole.ends_with(start))
                .map(str::len)
                .max();
            match start {
                Some(n) => {
                    out.push_str(&whole[..whole.len() - n]);
                    out.push_str(REDACTED);
                }
                None => out.push_str(head),
            }
            out.push_str(&rest[at..at + len]);
            rest = &rest[at + len..];
        }
        out.push_str(rest);
        out
    }

    /// A text cut to its end ([`crate::verify::clip`]) may begin inside a
    /// secret: hide the longest end of a secret found right after a cut.
    fn redact_after_cuts(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find(CUT) {
            let (head, tail) = rest.split_at(at + CUT.len());
            out.push_str(head);
            let end = self
                .values
                .iter()
                .flat_map(|v| v.char_indices().skip(1).map(move |(i, _)| &v[i..]))
                .filter(|end| end.len() >= MIN_SECRET_LEN && tail.starts_with(end))
                .map(str::len)
                .max()
                .unwrap_or(0);
            if end > 0 {
                out.push_str(REDACTED);
            }
            rest = &tail[end..];
        }
        out.push_str(rest);
        out
    }

    /// [`Redactor::redact`] in place.
    pub fn redact_in(&self, text: &mut String) {
        if self.values.iter().any(|s| text.contains(s.as_str()))
            || text.contains(CUT)
            || END_CUTS.iter().any(|m| text.contains(m))
        {
            *text = self.redact(text);
        }
    }
}

/// Every string and number under `v`, if `secret`; else the leaves under a
/// secret-looking key (the `-e` rule, at any depth).
fn leaves(v: &serde_json::Value, secret: bool, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) if secret => out.push(s.clone()),
        serde_json::Value::Number(n) if secret => out.push(n.to_string()),
        serde_json::Value::Array(items) => {
            for item in items {
                leaves(item, secret, out);
            }
        }
        serde_json::Value::Object(map) => {
            for (k, item) in map {
                leaves(item, secret || looks_secret(k), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(json: &str) -> Vars {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn redacts_named_vars_only() {
        let vars = vars(r#"{"pw": "hunter22", "user": "bob", "pin": 123456}"#);
        let r = Redactor::for_host(&vars, &["pw".to_string(), "pin".to_string()], &Vars::new());
        assert_eq!(
            r.redact("bob:hunter22 pin=123456"),
            "bob:<redacted> pin=<redacted>"
        );
    }

    #[test]
    fn every_leaf_of_a_nested_secret_and_secret_looking_extra_vars() {
        let all = vars(
            r#"{"vault": {"db": {"token": "tok-123"}, "list": ["item-1", 4242]},
                "api_token": "xyz-9", "site": {"admin_password": "adm-77", "name": "hq"}}"#,
        );
        let extra =
            vars(r#"{"api_token": "xyz-9", "site": {"admin_password": "adm-77", "name": "hq"}}"#);
        let r = Redactor::for_host(&all, &["vault".to_string()], &extra);
        assert_eq!(
            r.redact("tok-123 item-1 4242 xyz-9 adm-77 hq"),
            "<redacted> <redacted> <redacted> <redacted> <redacted> hq"
        );
        assert!(r.reads_secret(["api_token"]));
        assert!(!r.reads_secret(["site"]));
    }

    #[test]
    fn a_secret_cut_by_clip_is_hidden_from_where_the_cut_is() {
        let vars = vars(r#"{"pw": "Hunter-22x-Long"}"#);
        let r = Redactor::for_host(&vars, &["pw".to_string()], &Vars::new());
        // clip keeps the end of a long text, and marks where it cut.
        assert!(crate::verify::clip(&"y".repeat(100_000)).contains(CUT));
        let shown = r.redact("1 (stderr: [... 3 bytes cut ...]ter-22x-Long and more)");
        assert_eq!(
            shown,
            "1 (stderr: [... 3 bytes cut ...]<redacted> and more)"
        );
        assert_eq!(
            r.redact("[... 3 bytes cut ...]ng"),
            "[... 3 bytes cut ...]ng"
        );
    }

    /// The host cuts a step's output after 1 MiB, and an error is squashed
    /// to 300 characters: the cut may fall inside a secret, whose start is
    /// then hidden.
    #[test]
    fn a_secret_cut_at_the_end_of_a_text_is_hidden_up_to_the_cut() {
        let vars = vars(r#"{"pw": "Hunter-22x-Long"}"#);
        let r = Redactor::for_host(&vars, &["pw".to_string()], &Vars::new());
        assert_eq!(
            r.redact("login Hunter-22\n[output cut: 3 MiB in all, only the first 1 MiB kept]"),
            "login <redacted>\n[output cut: 3 MiB in all, only the first 1 MiB kept]"
        );
        assert_eq!(
            r.redact("no response (x Hun\u{FFFD} [cut])"),
            "no response (x <redacted> [cut])"
        );
        // Two characters of it are not a secret's start: too common.
        assert_eq!(r.redact("a Hu [cut]"), "a Hu [cut]");
        assert_eq!(r.redact("Hunter-22x"), "Hunter-22x");
    }

    #[test]
    fn union_and_taint_redact_longest_first() {
        let vars = vars(r#"{"a": "secret", "b": "secret-longer"}"#);
        let a = Redactor::for_host(&vars, &["a".to_string()], &Vars::new());
        let mut b = Redactor::for_host(&vars, &["b".to_string()], &Vars::new());
        b.taint("SECRET");
        assert_eq!(
            a.union(b).redact("secret-longer secret SECRET"),
            "<redacted> <redacted> <redacted>"
        );
    }
}
