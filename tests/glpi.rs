//! `parc facts --format glpi` on a real lab (needs root and openssh-server):
//! one GLPI native inventory per host, valid against the schema GLPI checks
//! inventories with (tests/fixtures/glpi, from glpi-project), with the
//! host's installed packages; and `--post`, received by a small HTTP(S)
//! server that answers as GLPI does (src/Agent/Communication/AbstractRequest.php).

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TestLab;
use flate2::Compression;
use flate2::read::ZlibDecoder;
use flate2::write::ZlibEncoder;
use serde_json::Value;

/// One request as the receiver got it.
#[derive(Debug)]
struct Request {
    method: String,
    path: String,
    /// Header names lowercased.
    headers: BTreeMap<String, String>,
    /// The body, inflated and parsed.
    inventory: Value,
}

/// What a GLPI stand-in answers to an inventory: an HTTP status and GLPI's JSON.
type Answer = dyn Fn(&Value) -> (u16, Value) + Send + Sync;

/// An HTTP receiver on 127.0.0.1 standing in for GLPI: it records every
/// request and answers each inventory with `answer(inventory)` (an HTTP
/// status and GLPI's JSON), zlib-compressed as GLPI answers a zlib request.
fn receiver(
    answer: impl Fn(&Value) -> (u16, Value) + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<Request>>>) {
    serve("http", answer, |tcp| {
        Some(Box::new(tcp) as Box<dyn ReadWrite>)
    })
}

/// The same over HTTPS, with `config`'s certificate; a client that refuses
/// it (the handshake fails) is recorded as nothing.
fn tls_receiver(
    config: Arc<rustls::ServerConfig>,
    answer: impl Fn(&Value) -> (u16, Value) + Send + Sync + 'static,
) -> (String, Arc<Mutex<Vec<Request>>>) {
    serve("https", answer, move |tcp| {
        let conn = rustls::ServerConnection::new(config.clone()).ok()?;
        Some(Box::new(rustls::StreamOwned::new(conn, tcp)) as Box<dyn ReadWrite>)
    })
}

trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

fn serve(
    scheme: &str,
    answer: impl Fn(&Value) -> (u16, Value) + Send + Sync + 'static,
    wrap: impl Fn(std::net::TcpStream) -> Option<Box<dyn ReadWrite>> + Send + 'static,
) -> (String, Arc<Mutex<Vec<Request>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "{scheme}://{}/front/inventory.php",
        listener.local_addr().unwrap()
    );
    let got = Arc::new(Mutex::new(Vec::new()));
    let record = got.clone();
    let answer: Box<Answer> = Box::new(answer);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let stream = stream.unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            if let Some(mut stream) = wrap(stream)
                && let Ok(request) = handle(&mut stream, &answer)
            {
                record.lock().unwrap().push(request);
            }
        }
    });
    (url, got)
}

/// One request read and answered.
fn handle(stream: &mut dyn ReadWrite, answer: &Answer) -> std::io::Result<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or_default().to_string(),
        parts.next().unwrap_or_default().to_string(),
    );
    let mut headers = BTreeMap::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let Some((name, value)) = header.trim_end().split_once(':') else {
            break;
        };
        headers.insert(name.to_ascii_lowercase(), value.trim().to_string());
    }
    let length: usize = headers["content-length"].parse().unwrap();
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let mut text = String::new();
    ZlibDecoder::new(&body[..]).read_to_string(&mut text)?;
    let inventory: Value = serde_json::from_str(&text).unwrap();
    let (status, reply) = answer(&inventory);
    let mut zlib = ZlibEncoder::new(Vec::new(), Compression::default());
    zlib.write_all(reply.to_string().as_bytes()).unwrap();
    let reply = zlib.finish().unwrap();
    let stream = reader.into_inner();
    write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/x-compress-zlib\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        reply.len()
    )?;
    stream.write_all(&reply)?;
    stream.flush()?;
    Ok(Request {
        method,
        path,
        headers,
        inventory,
    })
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn facts_of_three_hosts_are_three_valid_glpi_inventories_sent_as_glpi_agent_does() {
    common::require_root_and_sshd();
    let lab = TestLab::start(3);
    let out_dir = tempfile::tempdir().unwrap();
    let (url, received) = receiver(|_| (200, serde_json::json!({"status": "ok"})));
    let gather = |extra: &[&str]| {
        let out = lab
            .parc()
            .args(["facts", "all", "--format", "glpi", "-o"])
            .arg(out_dir.path())
            .args(extra)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        err.to_string()
    };
    let stderr = gather(&["--post", &url]);
    let schema: Value =
        serde_json::from_str(include_str!("fixtures/glpi/inventory.schema.json")).unwrap();
    let validator = jsonschema::draft7::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap();
    let file_of = |host: &str| out_dir.path().join(format!("{host}.json"));
    let mut ids = Vec::new();
    for host in &lab.lab.hosts {
        let path = file_of(&host.name);
        let doc = read_json(&path);
        let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
        assert_eq!(doc["itemtype"], "Computer");
        assert!(
            doc["content"]["operatingsystem"]["kernel_version"]
                .as_str()
                .is_some()
        );
        // The lab's Debian hosts: their packages, as dpkg knows them.
        let softwares = doc["content"]["softwares"].as_array().unwrap();
        let dpkg = softwares
            .iter()
            .find(|s| s["name"] == "dpkg")
            .unwrap_or_else(|| panic!("{}: no dpkg among {softwares:?}", host.name));
        assert_eq!(dpkg["from"], "deb");
        assert!(dpkg["version"].as_str().is_some_and(|v| !v.is_empty()));
        assert!(softwares.iter().any(|s| s["name"] == "openssh-server"));
        assert!(stderr.contains(&format!("{}: inventory sent to GLPI", host.name)));
        ids.push(doc["deviceid"].as_str().unwrap().to_string());
    }
    assert_eq!(
        std::fs::read_dir(out_dir.path()).unwrap().count(),
        3,
        "one file per host"
    );

    // What GLPI received: one POST per host, as glpi-agent sends it, of the
    // very document written to the file.
    let requests = std::mem::take(&mut *received.lock().unwrap());
    assert_eq!(requests.len(), 3, "{requests:#?}");
    for request in &requests {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/front/inventory.php");
        assert_eq!(
            request.headers["content-type"],
            "application/x-compress-zlib"
        );
        assert!(
            request.headers["user-agent"].starts_with("parc/"),
            "{:?}",
            request.headers
        );
        let host = &lab
            .lab
            .hosts
            .iter()
            .find(|h| read_json(&file_of(&h.name))["deviceid"] == request.inventory["deviceid"])
            .expect("a host's inventory")
            .name;
        assert_eq!(request.inventory, read_json(&file_of(host)), "{host}");
    }

    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 3, "one device id per machine");

    // Gathered again: the same ids.
    gather(&[]);
    for host in &lab.lab.hosts {
        let doc = read_json(&file_of(&host.name));
        assert!(ids.contains(&doc["deviceid"].as_str().unwrap().to_string()));
    }

    // GLPI refuses the second host's inventory: that host alone is reported,
    // with GLPI's message, the others are sent, and parc exits 3.
    let refused_id = read_json(&file_of(&lab.lab.hosts[1].name))["deviceid"].clone();
    let (url, received) = receiver(move |inventory| {
        if inventory["deviceid"] == refused_id {
            let error = serde_json::json!({"status": "error",
                "message": "Import denied by rule \"no kiosks\"", "expiration": 24});
            (400, error)
        } else {
            (200, serde_json::json!({"status": "ok", "expiration": 24}))
        }
    });
    let out = lab
        .parc()
        .args(["facts", "all", "--format", "glpi", "--post", &url])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: inventory not in GLPI: GLPI refused the inventory (HTTP 400): Import denied by \
             rule \"no kiosks\"",
            lab.lab.hosts[1].name
        )),
        "{stderr}"
    );
    for i in [0, 2] {
        let sent = format!("{}: inventory sent to GLPI", lab.lab.hosts[i].name);
        assert!(stderr.contains(&sent), "{stderr}");
    }
    assert_eq!(received.lock().unwrap().len(), 3, "every host was posted");

    // A busybox-only host has no package database: no softwares, still valid.
    lab.busybox_only(2);
    gather(&[]);
    let doc = read_json(&file_of(&lab.lab.hosts[2].name));
    let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:#?}");
    assert!(doc["content"].get("softwares").is_none(), "{doc:#}");
}

/// The package list costs a host a constant number of processes (one query,
/// one awk), whatever the number of packages: counted with strace on the
/// host's sshd, before and after 3,000 packages are added to its dpkg
/// database (the host's overlay; the controller's own database is untouched).
#[test]
fn the_package_list_costs_the_same_processes_whatever_its_length() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let out_dir = tempfile::tempdir().unwrap();
    let traced = |format: &str| {
        let tracer = common::procs::Tracer::attach(lab.lab.hosts[0].pid);
        let mut parc = lab.parc();
        parc.args(["facts", "all", "--format", format]);
        if format == "glpi" {
            parc.arg("-o").arg(out_dir.path());
        }
        let out = parc.output().unwrap();
        let processes = tracer.finish();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!(
            "{format}: {} processes: {}",
            processes.total(),
            processes.programs()
        );
        processes.total()
    };
    let softwares = || {
        let doc = read_json(
            &out_dir
                .path()
                .join(format!("{}.json", lab.lab.hosts[0].name)),
        );
        doc["content"]["softwares"].as_array().unwrap().len()
    };
    let plain = traced("table");
    let before = traced("glpi");
    let listed = softwares();

    let status = lab.lab.hosts[0].root().join("var/lib/dpkg/status");
    let mut text = std::fs::read_to_string(&status).unwrap();
    for i in 0..3000 {
        text.push_str(&format!(
            "\nPackage: parc-fake-{i}\nStatus: install ok installed\nPriority: optional\n\
             Section: misc\nInstalled-Size: {i}\nMaintainer: Nobody <nobody@example.org>\n\
             Architecture: all\nVersion: 1.{i}\nDescription: filler\n"
        ));
    }
    std::fs::write(&status, text).unwrap();
    let after = traced("glpi");
    assert_eq!(softwares(), listed + 3000);
    assert_eq!(after, before, "3,000 more packages, no more processes");
    assert!(
        before <= plain + 3,
        "the package list costs {} processes more than the facts alone",
        before - plain
    );
}

/// A CA, and a certificate it signed for 127.0.0.1, made by the openssl
/// command (the company CA a GLPI server's certificate usually comes from).
/// Returns the CA's PEM file and the server's TLS configuration.
fn company_ca(dir: &Path) -> (std::path::PathBuf, Arc<rustls::ServerConfig>) {
    use rustls::pki_types::pem::PemObject;
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("the openssl command (Debian's openssl package)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=parc test company CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "glpi.key",
            "-out",
            "glpi.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    ]
    .concat());
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "glpi.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "glpi.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    let chain: Vec<_> = rustls::pki_types::CertificateDer::pem_file_iter(dir.join("glpi.pem"))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(dir.join("glpi.key")).unwrap();
    // The one crypto provider parc builds rustls with (ring).
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    (dir.join("ca.pem"), Arc::new(config))
}

/// A GLPI on HTTPS with a certificate from a company CA, asking for basic
/// authentication, as glpi-agent reaches it with --ca-cert-file, --user and
/// --password: without the CA parc refuses the certificate and says which
/// roots it tried; without the password it stops before gathering
/// anything; with both the inventory arrives with its credentials, and the
/// password is in no log line.
#[test]
fn a_glpi_behind_a_company_ca_and_basic_authentication() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let dir = tempfile::tempdir().unwrap();
    let (ca, config) = company_ca(dir.path());
    let (url, received) = tls_receiver(config, |_| (200, serde_json::json!({"status": "ok"})));
    let facts = |extra: &[&str], password: Option<&str>| {
        let mut cmd = lab.parc();
        // -vvv: every log line too must keep the password out.
        cmd.args(["-vvv", "facts", "all", "--format", "glpi", "--post", &url])
            .args(extra)
            .env_remove("PARC_GLPI_PASSWORD");
        if let Some(p) = password {
            cmd.env("PARC_GLPI_PASSWORD", p);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let host = &lab.lab.hosts[0].name;

    let (code, err) = facts(&[], None);
    assert_ne!(code, Some(0), "{err}");
    assert!(
        err.contains(&format!("{host}: inventory not in GLPI"))
            && err.contains("not vouched for by the Mozilla roots built into parc")
            && err.contains("--ca-cert FILE"),
        "{err}"
    );
    assert!(received.lock().unwrap().is_empty(), "nothing got through");

    let ca = ca.to_str().unwrap();
    let (code, err) = facts(&["--ca-cert", ca, "--post-user", "inventory"], None);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("$PARC_GLPI_PASSWORD") && err.contains("nothing was gathered"),
        "{err}"
    );

    let (code, err) = facts(
        &["--ca-cert", ca, "--post-user", "inventory"],
        Some("s3cret pw"),
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains(&format!("{host}: inventory sent to GLPI")),
        "{err}"
    );
    let requests = std::mem::take(&mut *received.lock().unwrap());
    assert_eq!(requests.len(), 1, "{requests:#?}");
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode("inventory:s3cret pw");
    assert_eq!(
        requests[0].headers["authorization"],
        format!("Basic {token}")
    );
    assert!(!err.contains("s3cret") && !err.contains(&token), "{err}");
    assert_eq!(requests[0].inventory["itemtype"], "Computer");
}
