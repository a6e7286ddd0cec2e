//! Sending GLPI inventories to a GLPI server the way glpi-agent does
//! (lib/GLPI/Agent/HTTP/Client.pm and Client/GLPI.pm): a POST of the JSON
//! document, zlib-compressed (RFC 1950, PHP's `gzuncompress` on GLPI's side)
//! with `Content-Type: application/x-compress-zlib`, to the URL the user
//! gives (usually `https://glpi.example/front/inventory.php`). GLPI answers
//! `{"status":"ok"}` or `{"status":"error","message":...}`, compressed the
//! way the request was (src/Agent/Communication/AbstractRequest.php).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;

use flate2::Compression;
use flate2::read::{DeflateDecoder, GzDecoder, ZlibDecoder};
use flate2::write::ZlibEncoder;
use serde_json::Value;

/// The content type of a zlib-compressed request, and of GLPI's answer to it.
pub const CONTENT_TYPE: &str = "application/x-compress-zlib";

/// GLPI's replies are a few hundred bytes; more is not a GLPI reply.
const REPLY_LIMIT: u64 = 1 << 20;

/// glpi-agent's own default: GLPI imports an inventory before it answers.
const TIMEOUT: Duration = Duration::from_secs(180);

/// Why a host's inventory is not (known to be) in GLPI.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PostError {
    #[error("could not send the inventory to {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("GLPI refused the inventory (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
    #[error(
        "{url} answered HTTP {status} with {answer}, not a GLPI reply: the inventory may not \
         have been recorded (is this GLPI's /front/inventory.php?)"
    )]
    NotGlpi {
        url: String,
        status: u16,
        answer: String,
    },
}

/// Where `--post-user`'s password is read from: never the command line,
/// which every local user of the controller can read (`ps`).
pub const PASSWORD_ENV: &str = "PARC_GLPI_PASSWORD";

/// How parc is let in, beyond the URL: which CAs vouch for the server's
/// HTTPS certificate, and who parc is to it. A company's GLPI usually has a
/// certificate from the company's own CA, and may ask inventories for HTTP
/// basic authentication (GLPI's inventory settings); glpi-agent takes both
/// (`--ca-cert-file`, `--user` and `--password`).
#[derive(Default)]
pub struct Access {
    /// The only CAs trusted for the server's certificate, as glpi-agent's
    /// `--ca-cert-file` (`None`: the Mozilla roots built into parc), and
    /// the file they came from.
    ca: Option<(PathBuf, Vec<ureq::tls::Certificate<'static>>)>,
    /// The `Authorization` header's value.
    authorization: Option<String>,
}

/// Why parc cannot reach GLPI as asked; found before any host is gathered.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error("--ca-cert: {0}; nothing was gathered")]
    CaRead(crate::confine::ReadError),
    #[error("--ca-cert {}: {reason}; nothing was gathered", path.display())]
    CaInvalid { path: PathBuf, reason: String },
    #[error(
        "--post-user {user}: give the password in ${PASSWORD_ENV} (never on the command line, \
         where every local user can read it); nothing was gathered"
    )]
    NoPassword { user: String },
}

impl Access {
    /// Reads the CA file and `$PARC_GLPI_PASSWORD` now, so that a mistake
    /// stops the command before any host is asked for its inventory.
    pub fn new(ca_cert: Option<&Path>, user: Option<&str>) -> Result<Access, AccessError> {
        let ca = match ca_cert {
            None => None,
            Some(path) => {
                // A regular file only: a FIFO named here would wait for a writer.
                let pem = crate::confine::read_regular(path).map_err(AccessError::CaRead)?;
                let invalid = |reason: String| AccessError::CaInvalid {
                    path: path.to_path_buf(),
                    reason,
                };
                let mut certs = Vec::new();
                for item in ureq::tls::parse_pem(&pem) {
                    match item.map_err(|e| invalid(format!("not PEM: {e}")))? {
                        ureq::tls::PemItem::Certificate(c) => certs.push(c),
                        _ => {
                            return Err(invalid(
                                "holds a private key: give only the CA's certificate".into(),
                            ));
                        }
                    }
                }
                if certs.is_empty() {
                    return Err(invalid("no PEM certificate in it".into()));
                }
                Some((path.to_path_buf(), certs))
            }
        };
        let authorization = match user {
            None => None,
            Some(user) => {
                let password =
                    std::env::var(PASSWORD_ENV).map_err(|_| AccessError::NoPassword {
                        user: user.to_string(),
                    })?;
                let token =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                Some(format!("Basic {token}"))
            }
        };
        Ok(Access { ca, authorization })
    }

    /// Who vouches for the server's certificate, for an error that says
    /// which certificates were tried.
    fn trusted(&self) -> String {
        match &self.ca {
            Some((path, _)) => format!("the CA certificates of {}", path.display()),
            None => "the Mozilla roots built into parc (a company CA: give its certificate \
                     with --ca-cert FILE)"
                .to_string(),
        }
    }
}

/// A GLPI server's inventory endpoint.
pub struct Server {
    url: String,
    agent: ureq::Agent,
    authorization: Option<String>,
    trusted: String,
}

impl Server {
    /// The endpoint at `url`, taken as given (checked by [`check_url`]),
    /// reached as `access` says.
    pub fn new(url: &str, access: Access) -> Server {
        let trusted = access.trusted();
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some((_, certs)) = access.ca {
            tls = tls.root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs)));
        }
        let agent = ureq::Agent::config_builder()
            .tls_config(tls.build())
            .user_agent(format!("parc/{}", env!("CARGO_PKG_VERSION")))
            // GLPI's error replies come with 4xx/5xx statuses: read them.
            .http_status_as_error(false)
            // A redirected POST would become a GET without the inventory:
            // the redirect is reported instead (see `reply`).
            .max_redirects(0)
            .timeout_global(Some(TIMEOUT))
            .build()
            .new_agent();
        Server {
            url: url.to_string(),
            agent,
            authorization: access.authorization,
            trusted,
        }
    }

    /// Send one inventory and read what GLPI made of it.
    pub fn post(&self, inventory: &Value) -> Result<(), PostError> {
        let unreachable = |reason: String| PostError::Unreachable {
            url: self.url.clone(),
            reason,
        };
        let body = compress(inventory);
        let mut request = self
            .agent
            .post(&self.url)
            .header("Content-Type", CONTENT_TYPE)
            .header("Pragma", "no-cache");
        if let Some(authorization) = &self.authorization {
            request = request.header("Authorization", authorization);
        }
        let mut response = request.send(&body[..]).map_err(|e| {
            unreachable(if untrusted_certificate(&e) {
                format!(
                    "{e}: its HTTPS certificate is not vouched for by {}",
                    self.trusted
                )
            } else {
                e.to_string()
            })
        })?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header("content-type");
        let location = header("location");
        let answer = response
            .body_mut()
            .with_config()
            .limit(REPLY_LIMIT)
            .read_to_vec()
            .map_err(|e| unreachable(format!("reading the answer: {e}")))?;
        reply(
            &self.url,
            status,
            content_type.as_deref(),
            location.as_deref(),
            &answer,
        )
    }
}

/// Whether the TLS handshake refused the server's certificate (rustls's
/// error, as ureq returns it or inside an I/O error of the handshake).
fn untrusted_certificate(e: &ureq::Error) -> bool {
    let rustls = match e {
        ureq::Error::Rustls(r) => Some(r),
        ureq::Error::Io(io) => io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()),
        _ => None,
    };
    matches!(rustls, Some(rustls::Error::InvalidCertificate(_)))
}

/// `url` as `--post` takes it: an http or https URL, used as it is.
pub fn check_url(url: &str) -> Result<String, String> {
    let uri: ureq::http::Uri = url.parse().map_err(|e| format!("not a URL: {e}"))?;
    match (uri.scheme_str(), uri.host()) {
        (Some("http" | "https"), Some(_)) => Ok(url.to_string()),
        _ => Err("expected an http:// or https:// URL, e.g. \
                  https://glpi.example/front/inventory.php"
            .to_string()),
    }
}

/// The request body: the inventory's JSON, zlib-compressed.
pub fn compress(inventory: &Value) -> Vec<u8> {
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::default());
    serde_json::to_writer(&mut encoder, inventory).expect("JSON into memory cannot fail");
    encoder
        .finish()
        .expect("compressing into memory cannot fail")
}

/// What GLPI's answer means. Compressed answers are inflated as glpi-agent
/// does (any `application/x-*` content type names its compression).
pub fn reply(
    url: &str,
    status: u16,
    content_type: Option<&str>,
    location: Option<&str>,
    body: &[u8],
) -> Result<(), PostError> {
    let not_glpi = |answer: String| PostError::NotGlpi {
        url: url.to_string(),
        status,
        answer,
    };
    if let Some(location) = location.filter(|_| (300..400).contains(&status)) {
        return Err(not_glpi(format!(
            "a redirect to {} (give that URL to --post)",
            printable(location.as_bytes())
        )));
    }
    let kind = content_type
        .map(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let inflated = match kind.as_str() {
        "application/x-compress-zlib" | "application/x-zlib" => inflate(ZlibDecoder::new(body)),
        "application/x-compress-gzip" | "application/x-gzip" => inflate(GzDecoder::new(body)),
        "application/x-compress-deflate" | "application/x-deflate" => {
            inflate(DeflateDecoder::new(body))
        }
        _ => Some(body.to_vec()),
    };
    let Some(text) = inflated else {
        return Err(not_glpi(format!("a `{kind}` body that does not inflate")));
    };
    #[derive(serde::Deserialize)]
    struct Reply {
        status: String,
        message: Option<String>,
    }
    let Ok(answer) = serde_json::from_slice::<Reply>(&text) else {
        return Err(not_glpi(if text.is_empty() {
            "an empty body".to_string()
        } else {
            format!("`{}`", printable(&text))
        }));
    };
    let message = || printable(answer.message.as_deref().unwrap_or("").as_bytes());
    match answer.status.as_str() {
        "ok" if (200..300).contains(&status) => Ok(()),
        "ok" | "error" => Err(PostError::Refused {
            status,
            message: match message() {
                m if m.is_empty() => "(no message)".to_string(),
                m => m,
            },
        }),
        other => Err(not_glpi(format!(
            "status `{}`",
            printable(other.as_bytes())
        ))),
    }
}

/// At most [`REPLY_LIMIT`] bytes of an inflated answer.
fn inflate(decoder: impl Read) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    decoder.take(REPLY_LIMIT).read_to_end(&mut out).ok()?;
    Some(out)
}

/// A server's text as one short terminal-safe line.
fn printable(bytes: &[u8]) -> String {
    const SHOWN: usize = 300;
    let text = String::from_utf8_lossy(bytes);
    let mut line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(SHOWN)
        .collect();
    if text.chars().count() > SHOWN {
        line.push_str("...");
    }
    line.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zlib(text: &str) -> Vec<u8> {
        let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
        e.write_all(text.as_bytes()).unwrap();
        e.finish().unwrap()
    }

    const URL: &str = "https://glpi.example/front/inventory.php";

    #[test]
    fn glpis_answers_are_read_compressed_or_not() {
        let ok = zlib(r#"{"status":"ok","expiration":24}"#);
        assert_eq!(reply(URL, 200, Some(CONTENT_TYPE), None, &ok), Ok(()));
        assert_eq!(
            reply(
                URL,
                200,
                Some("application/json"),
                None,
                br#"{"status":"ok"}"#
            ),
            Ok(())
        );
        let refused =
            zlib(r#"{"status":"error","message":"Inventory is disabled","expiration":24}"#);
        assert_eq!(
            reply(
                URL,
                400,
                Some("application/x-compress-zlib"),
                None,
                &refused
            ),
            Err(PostError::Refused {
                status: 400,
                message: "Inventory is disabled".into()
            })
        );
        // An "ok" with an error status is not taken as success.
        assert!(matches!(
            reply(URL, 500, None, None, br#"{"status":"ok"}"#),
            Err(PostError::Refused { status: 500, .. })
        ));
    }

    #[test]
    fn anything_else_is_not_taken_for_a_glpi_reply() {
        let html = reply(
            URL,
            200,
            Some("text/html"),
            None,
            b"<html>\n\x1b[31mlogin</html>",
        );
        let Err(PostError::NotGlpi { answer, .. }) = html else {
            panic!("{html:?}")
        };
        assert_eq!(
            answer, "`<html>  [31mlogin</html>`",
            "no control characters"
        );
        assert!(matches!(
            reply(URL, 200, Some(CONTENT_TYPE), None, b"not zlib"),
            Err(PostError::NotGlpi { .. })
        ));
        let moved = reply(URL, 301, None, Some("https://glpi.example/"), b"");
        assert!(
            moved
                .unwrap_err()
                .to_string()
                .contains("https://glpi.example/"),
            "the redirect is named"
        );
        // A reply that inflates without end is cut, not held whole.
        let bomb = zlib(&" ".repeat(64 << 20));
        assert!(matches!(
            reply(URL, 200, Some(CONTENT_TYPE), None, &bomb),
            Err(PostError::NotGlpi { .. })
        ));
    }

    #[test]
    fn a_server_that_cannot_be_reached_is_named() {
        // Port 1 on loopback: nothing listens there in a test environment.
        let url = "http://127.0.0.1:1/front/inventory.php";
        let err = Server::new(url, Access::default())
            .post(&serde_json::json!({"deviceid": "pc-1"}))
            .unwrap_err();
        assert!(
            matches!(&err, PostError::Unreachable { url: u, .. } if u == url),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .starts_with(&format!("could not send the inventory to {url}: "))
        );
    }

    #[test]
    fn only_http_urls_are_taken() {
        assert!(check_url(URL).is_ok());
        assert!(check_url("http://10.0.0.5:8080/").is_ok());
        assert!(check_url("glpi.example/front/inventory.php").is_err());
        assert!(check_url("ftp://glpi.example/").is_err());
    }

    #[test]
    fn the_body_inflates_to_the_inventory() {
        let doc = serde_json::json!({"deviceid": "pc-1", "content": {"versionclient": "parc"}});
        let mut text = String::new();
        ZlibDecoder::new(&compress(&doc)[..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), doc);
    }
}
