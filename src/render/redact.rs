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
        let mut secrets: Vec<String> = names
            .into_iter()
            .filter_map(|n| vars.get(n))
            .map(|v| match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            // Very short values would redact half of every text; treat them as a config mistake.
            .filter(|s| s.len() >= 3)
            .collect();
        // Longest first, so a secret containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
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
}
