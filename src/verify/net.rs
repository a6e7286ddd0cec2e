//! `port` and `http`: what the host serves.
//!
//! Listening sockets are read from /proc/net/{tcp,tcp6,udp,udp6} (cut down to
//! listening lines by awk) and parsed here on the controller, so a busybox
//! host without `ss` or `netstat` works the same. HTTP goes through curl, else wget, on the host itself: a service
//! reachable from the controller may still be broken from the workstation.

use serde::{Deserialize, Serialize};

use super::probe::{CONTENT_LIMIT, Check, Probe, Probed, contains_check};
use crate::render::Number;
use crate::resources::script::Script;
use crate::transport::quote;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

impl Protocol {
    fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortTest {
    pub port: Number,
    #[serde(default)]
    pub protocol: Protocol,
    #[serde(default = "yes")]
    pub listening: bool,
}

fn yes() -> bool {
    true
}

/// The kernel's socket states that mean "accepting": TCP LISTEN; an unconnected
/// (bound) UDP socket shows as CLOSE.
fn listening_state(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Tcp => "0A",
        Protocol::Udp => "07",
    }
}

/// Whether a /proc/net table lists a socket on `port` in `state`.
fn table_has(table: &str, port: u16, state: &str) -> bool {
    table.lines().skip(1).any(|line| {
        let mut fields = line.split_whitespace();
        let local = fields.nth(1);
        let st = fields.nth(1);
        let local_port = local
            .and_then(|l| l.rsplit_once(':'))
            .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
        local_port == Some(port) && st == Some(state)
    })
}

impl Probe for PortTest {
    fn label(&self) -> String {
        format!("port {}/{}", self.port, self.protocol.as_str())
    }

    fn probe(&self, id: &str, s: &mut Script) {
        // Only the header and the sockets in the listening state travel: a
        // busy server's full table is megabytes of established connections.
        // Every port test of a protocol reads the same tables: each is read
        // once for all of them (an awk each), not once a test.
        let (p, state) = (self.protocol.as_str(), listening_state(self.protocol));
        s.sh(&format!("pv_start {id}"));
        for table in [p.to_string(), format!("{p}6")] {
            let name = format!("net.{table}");
            let (file, first) = s.capture_shared(id, &table, &name, CONTENT_LIMIT as u64);
            if first {
                s.sh(&format!(
                    "[ ! -r /proc/net/{table} ] || awk 'NR == 1 || $4 == \"{state}\"' /proc/net/{table} > {file}"
                ));
            }
        }
        s.sh("pv_end");
    }

    fn evaluate(&self, probed: &Probed) -> Vec<Check> {
        let expected = if self.listening {
            "listening"
        } else {
            "not listening"
        };
        let Some(port) = self.port.value().and_then(|p| u16::try_from(p).ok()) else {
            return vec![Check::impossible(
                "listening",
                expected,
                format!("`{}` is not a port number (1-65535)", self.port),
            )];
        };
        let p = self.protocol.as_str();
        let tables = [p.to_string(), format!("{p}6")];
        let state = listening_state(self.protocol);
        let read: Vec<(&String, String, bool)> = tables
            .iter()
            .filter_map(|t| probed.content(t).map(|(text, cut)| (t, text, cut)))
            .collect();
        if read.is_empty() {
            return vec![Check::impossible(
                "listening",
                expected,
                format!("unknown: /proc/net/{p} is not readable on the host"),
            )];
        }
        let on: Vec<&str> = read
            .iter()
            .filter(|(_, text, _)| table_has(text, port, state))
            .map(|(t, _, _)| t.as_str())
            .collect();
        // A table cut short (more sockets than parc reads: a local user can
        // open thousands) may hold the port past the cut.
        if let (true, Some((t, _, _))) = (on.is_empty(), read.iter().find(|(_, _, cut)| *cut)) {
            return vec![Check::impossible(
                "listening",
                expected,
                format!(
                    "unknown: /proc/net/{t} was longer than parc reads, and its start does not list the port"
                ),
            )];
        }
        let actual = if on.is_empty() {
            "not listening".to_string()
        } else {
            format!("listening ({})", on.join(", "))
        };
        vec![Check::new(
            "listening",
            expected,
            actual,
            on.is_empty() != self.listening,
        )]
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTest {
    /// Fetched from the host, redirects followed.
    pub url: String,
    /// Expected final status (default 200).
    pub status: Option<Number>,
    pub body_contains: Option<String>,
    /// Seconds for the whole request (default 10).
    pub timeout: Option<Number>,
    /// The url was rendered from a secret ([`super::Test::note_secrets`];
    /// never read from YAML): it must not reach a command line, which
    /// every local user of the host reads in `ps`.
    #[serde(skip)]
    pub secret_url: bool,
}

impl HttpTest {
    /// Only web URLs: anything else could be read by curl/wget as an option
    /// or a file (and a control character, a line of curl's config).
    fn web_url(&self) -> bool {
        let lower = self.url.to_ascii_lowercase();
        (lower.starts_with("http://") || lower.starts_with("https://"))
            && !self.url.chars().any(char::is_control)
    }
}

impl Probe for HttpTest {
    fn label(&self) -> String {
        format!("http {}", self.url)
    }

    fn probe(&self, id: &str, s: &mut Script) {
        s.sh(&format!("pv_start {id}"));
        if self.web_url() {
            let url = quote(&self.url);
            // curl reads the URL from its config on stdin (`-K -`), not from
            // its command line, which every local user may read in `ps`: a
            // URL may hold a token. In a quoted config value, `\` and `"`
            // are escaped.
            let config = quote(&format!(
                "url = \"{}\"",
                self.url.replace('\\', "\\\\").replace('"', "\\\"")
            ));
            let secs = quote(
                &self
                    .timeout
                    .clone()
                    .unwrap_or(Number::Value(10))
                    .to_string(),
            );
            // Written where the probe's closing tar takes them: no process
            // a file to send them back.
            let body = s.capture(id, "body", CONTENT_LIMIT as u64);
            let err = s.capture(id, "err", 65536);
            // busybox wget often lacks -T: `timeout` bounds it instead.
            let limit = format!("pv_limited {secs}");
            let wget = if self.secret_url {
                // GNU Wget reads it from its stdin (`-i -`), given by a
                // builtin; busybox's wget takes it only on its command line.
                format!(
                    "case $(wget --version 2>/dev/null) in
    *'GNU Wget'*) echo tool=wget
      printf '%s\\n' {url} | {limit} wget -q -S -O {body} -i - 2>{err} ;;
    *) echo tool=wget_argv_only ;;
  esac"
                )
            } else {
                format!("echo tool=wget\n  {limit} wget -q -S -O {body} {url} 2>{err} </dev/null")
            };
            s.sh(&format!(
                "if pv_have curl; then echo tool=curl
  pv_code=$(printf '%s\\n' {config} | curl -K - -sS -L -o {body} -w '%{{http_code}}' --max-time {secs} 2>{err})
  case $pv_code in [0-9][0-9][0-9]) echo \"status=$pv_code\" ;; esac
elif pv_have wget; then
  {wget}
else echo tool=none; fi"
            ));
        }
        s.sh("pv_end");
    }

    fn evaluate(&self, probed: &Probed) -> Vec<Check> {
        let want = self
            .status
            .clone()
            .unwrap_or(Number::Value(200))
            .to_string();
        if !self.web_url() {
            return vec![Check::impossible(
                "status",
                want,
                "not fetched: the url must start with http:// or https://",
            )];
        }
        let err = probed.content("err").map(|(t, _)| t).unwrap_or_default();
        let status = match probed.get("tool") {
            Some("curl") => probed.get("status").map(str::to_string),
            Some("wget") => wget_status(&err),
            Some("wget_argv_only") => {
                return vec![Check::impossible(
                    "status",
                    want,
                    "not fetched: the url holds a secret, and this host's wget (not GNU Wget) takes it only on its command line, which every local user can read (install curl)",
                )];
            }
            _ => {
                return vec![Check::impossible(
                    "status",
                    want,
                    "unknown: neither curl nor wget is installed on the host",
                )];
            }
        };
        // curl reports 000 when no response came at all.
        let status = status.filter(|s| s != "000");
        let actual = match &status {
            Some(s) => s.clone(),
            None => format!("no response ({})", squash(&err)),
        };
        let mut checks = vec![Check::new(
            "status",
            want.clone(),
            actual,
            status.as_deref() == Some(want.as_str()),
        )];
        if let Some(needle) = &self.body_contains {
            let (body, cut) = probed.content("body").unwrap_or_default();
            checks.push(contains_check("body", needle, &body, cut, true));
        }
        checks
    }
}

/// The last status line wget printed (`-S` shows every response of a redirect
/// chain; busybox prints it in its error message).
fn wget_status(err: &str) -> Option<String> {
    err.match_indices("HTTP/")
        .filter_map(|(i, _)| {
            let rest = &err[i..];
            let code = rest.split_whitespace().nth(1)?;
            (code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit())).then(|| code.to_string())
        })
        .last()
}

/// A tool's error output as one short line.
fn squash(text: &str) -> String {
    let line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() {
        "no error message".into()
    } else if line.chars().nth(300).is_some() {
        // Marked, for the redactor: the cut may fall inside a secret.
        let kept: String = line.chars().take(300).collect();
        format!("{kept}{}", crate::render::LINE_CUT)
    } else {
        line
    }
}

#[cfg(test)]
#[path = "net_tests.rs"]
mod tests;
