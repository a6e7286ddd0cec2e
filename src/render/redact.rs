//! Secrets never leave the controller in clear: every text parc shows or writes
//! (diffs, change lists, command output, events, reports) goes through here.

pub const REDACTED: &str = "<redacted>";

#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// Secrets are the values of the variables named in `secret_vars`.
    pub fn from_vars<'a>(
        vars: &serde_json::Map<String, serde_json::Value>,
        names: impl IntoIterator<Item = &'a String>,
    ) -> Self {
        let secrets: Vec<String> = names
            .into_iter()
            .filter_map(|n| vars.get(n))
            .map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            // Very short values would redact half of every text; treat them as a config mistake.
            .filter(|s| s.len() >= 3)
            .collect();
        Redactor::of(secrets)
    }

    /// The secrets of both: a host verified for several plays shows texts
    /// rendered with each play's variables.
    pub fn union(self, other: Redactor) -> Redactor {
        let mut secrets = self.secrets;
        secrets.extend(other.secrets);
        Redactor::of(secrets)
    }

    fn of(mut secrets: Vec<String>) -> Redactor {
        // Longest first, so a secret containing another is replaced whole.
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        Redactor { secrets }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_named_vars_only() {
        let vars: serde_json::Map<_, _> =
            serde_json::from_str(r#"{"pw": "hunter22", "user": "bob", "pin": 123456}"#).unwrap();
        let r = Redactor::from_vars(&vars, &["pw".to_string(), "pin".to_string()]);
        assert_eq!(
            r.redact("bob:hunter22 pin=123456"),
            "bob:<redacted> pin=<redacted>"
        );
    }

    #[test]
    fn union_redacts_both_longest_first() {
        let vars: serde_json::Map<_, _> =
            serde_json::from_str(r#"{"a": "secret", "b": "secret-longer"}"#).unwrap();
        let a = Redactor::from_vars(&vars, &["a".to_string()]);
        let b = Redactor::from_vars(&vars, &["b".to_string(), "a".to_string()]);
        assert_eq!(
            a.union(b).redact("secret-longer secret"),
            "<redacted> <redacted>"
        );
    }
}
