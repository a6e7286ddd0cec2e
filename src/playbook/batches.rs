//! Batch sizes and failure budgets: a count (`3`) or a share of the play's
//! hosts (`"10%"`).

use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Amount {
    Count(usize),
    Percent(f64),
}

impl Amount {
    /// Batch size out of `total` hosts: percentages round up, and a batch is
    /// never empty.
    pub fn batch_size(self, total: usize) -> usize {
        match self {
            Amount::Count(n) => n.max(1),
            Amount::Percent(p) => ((total as f64 * p / 100.0).ceil() as usize).max(1),
        }
    }

    /// Failure budget out of `total` hosts: percentages round down (a budget
    /// of 10% of 5 hosts tolerates no failure).
    pub fn budget(self, total: usize) -> usize {
        match self {
            Amount::Count(n) => n,
            Amount::Percent(p) => (total as f64 * p / 100.0).floor() as usize,
        }
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Count(usize),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Count(n) => Ok(Amount::Count(n)),
            Raw::Text(t) => {
                let parsed = t
                    .trim()
                    .strip_suffix('%')
                    .and_then(|p| p.trim().parse::<f64>().ok())
                    .filter(|p| *p > 0.0 && *p <= 100.0);
                match parsed {
                    Some(p) => Ok(Amount::Percent(p)),
                    None => t.trim().parse::<usize>().map(Amount::Count).map_err(|_| {
                        serde::de::Error::custom(format!(
                            "`{t}` is neither a host count (3) nor a percentage of the play's hosts (\"10%\")"
                        ))
                    }),
                }
            }
        }
    }
}

/// A duration written `90s`, `2m`, `1m 30s` or as a number of seconds.
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<std::time::Duration>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Seconds(u64),
        Text(String),
    }
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::Seconds(s)) => Ok(Some(std::time::Duration::from_secs(s))),
        Some(Raw::Text(t)) => t
            .parse::<jiff::SignedDuration>()
            .ok()
            .and_then(|d| std::time::Duration::try_from(d).ok())
            .filter(|d| !d.is_zero())
            .map(Some)
            .ok_or_else(|| {
                serde::de::Error::custom(format!("`{t}` is not a duration such as 90s or 2m"))
            }),
    }
}

/// Split `hosts` into batches of the given sizes; the last size repeats.
pub fn batches(hosts: &[String], sizes: &[Amount]) -> Vec<Vec<String>> {
    if sizes.is_empty() {
        return if hosts.is_empty() {
            vec![]
        } else {
            vec![hosts.to_vec()]
        };
    }
    let total = hosts.len();
    let mut out = Vec::new();
    let mut rest = hosts;
    let mut i = 0;
    while !rest.is_empty() {
        let size = sizes[i.min(sizes.len() - 1)]
            .batch_size(total)
            .min(rest.len());
        out.push(rest[..size].to_vec());
        rest = &rest[size..];
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("h{i}")).collect()
    }

    #[test]
    fn canary_then_waves() {
        let sizes: Vec<Amount> = serde_norway::from_str("[1, 10%, 100%]").unwrap();
        let b = batches(&hosts(20), &sizes);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![1, 2, 17]);
        let sizes: Vec<Amount> = serde_norway::from_str("[1, 50%, 100%]").unwrap();
        let b = batches(&hosts(10), &sizes);
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![1, 5, 4]);
        let sizes: Vec<Amount> = serde_norway::from_str("[3]").unwrap();
        assert_eq!(batches(&hosts(7), &sizes).len(), 3);
        assert_eq!(batches(&hosts(4), &[]).len(), 1);
    }

    #[test]
    fn durations() {
        #[derive(Deserialize)]
        struct W {
            #[serde(default, deserialize_with = "duration")]
            d: Option<std::time::Duration>,
        }
        let secs = |y: &str| serde_norway::from_str::<W>(y).map(|w| w.d.map(|d| d.as_secs()));
        assert_eq!(secs("d: 90s").unwrap(), Some(90));
        assert_eq!(secs("d: 2m").unwrap(), Some(120));
        assert_eq!(secs("d: 45").unwrap(), Some(45));
        assert_eq!(secs("{}").unwrap(), None);
        assert!(secs("d: soon").is_err());
    }

    #[test]
    fn budgets() {
        assert_eq!(Amount::Percent(10.0).budget(5), 0);
        assert_eq!(Amount::Percent(10.0).budget(20), 2);
        assert_eq!(Amount::Count(1).budget(20), 1);
        assert!(serde_norway::from_str::<Amount>("\"ten\"").is_err());
        assert!(serde_norway::from_str::<Amount>("\"150%\"").is_err());
    }
}
