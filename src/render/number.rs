//! Numbers that may be written as templates, for the fields of resources and
//! tests that hold one (a uid, an exit code, a port).

use std::fmt;

use serde::de;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A whole number that may be written as a template (`uid: "{{ admin_uid }}"`):
/// it becomes a number once the host's variables are rendered in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Number {
    Value(u64),
    /// Not rendered yet. A test never sees this after rendering: a rendered
    /// text that is not a number is refused with the test's location.
    Template(String),
}

impl Number {
    pub fn value(&self) -> Option<u64> {
        match self {
            Number::Value(v) => Some(*v),
            Number::Template(_) => None,
        }
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::Value(v) => write!(f, "{v}"),
            Number::Template(t) => f.write_str(t),
        }
    }
}

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Ok(Number::Value(n)),
            Raw::Text(t) => match t.trim().parse::<u64>() {
                Ok(n) => Ok(Number::Value(n)),
                Err(_) if t.contains("{{") || t.contains("{%") => Ok(Number::Template(t)),
                Err(_) => Err(de::Error::custom(format!(
                    "`{t}` is not a whole number: write one, or a template such as \"{{{{ admin_uid }}}}\" that renders to one"
                ))),
            },
        }
    }
}

impl Serialize for Number {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Number::Value(v) => s.serialize_u64(*v),
            Number::Template(t) => s.serialize_str(t),
        }
    }
}
