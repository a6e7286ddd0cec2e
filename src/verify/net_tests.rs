use super::super::tests::{passed, record};
use super::*;

const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100F17F:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0277 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 100 0 0 10 0
";
const TCP6: &str = "  sl  local_address                         remote_address                        st
   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000
";

fn port(yaml: &str) -> PortTest {
    serde_norway::from_str(yaml).unwrap()
}

#[test]
fn listening_ports_from_proc_net() {
    let r = record(&[], &[("tcp", TCP), ("tcp6", TCP6)]);
    let checks = port("{port: 22}").evaluate(&Probed(&r));
    assert!(passed(&checks));
    assert_eq!(checks[0].actual, "listening (tcp)");
    assert!(passed(&port("{port: 8080}").evaluate(&Probed(&r))));
    // 631 only has an established connection, not a listener.
    let checks = port("{port: 631}").evaluate(&Probed(&r));
    assert_eq!(
        (checks[0].expected.as_str(), checks[0].actual.as_str()),
        ("listening", "not listening")
    );
    assert!(passed(
        &port("{port: 23, listening: false}").evaluate(&Probed(&r))
    ));
    let udp = "  sl  local_address rem_address   st\n 1: 00000000:0202 00000000:0000 07 x\n";
    let r = record(&[], &[("udp", udp)]);
    assert!(passed(
        &port("{port: 514, protocol: udp}").evaluate(&Probed(&r))
    ));
    assert!(!passed(&port("{port: 70000}").evaluate(&Probed(&r))));
    assert!(!passed(
        &port("{port: 22}").evaluate(&Probed(&record(&[], &[])))
    ));
}

/// A table longer than parc reads (a local user opened thousands of
/// sockets) without the port in its start says nothing of the port: not
/// "not listening", which would pass a `listening: false` test.
#[test]
fn a_cut_table_without_the_port_is_unknown() {
    use crate::verify::probe::CONTENT_LIMIT;
    let mut long = TCP.to_string();
    while long.len() <= CONTENT_LIMIT {
        long.push_str("   2: 0100007F:1000 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000 0 3 1\n");
    }
    let r = record(&[], &[("tcp", &long)]);
    let checks = port("{port: 9, listening: false}").evaluate(&Probed(&r));
    assert!(!passed(&checks), "{checks:?}");
    assert!(checks[0].actual.starts_with("unknown"), "{checks:?}");
    // What its start lists is still read.
    assert!(passed(&port("{port: 22}").evaluate(&Probed(&r))));
}

fn http(yaml: &str) -> HttpTest {
    serde_norway::from_str(yaml).unwrap()
}

#[test]
fn http_with_curl_or_wget() {
    let t = http("{url: 'http://intranet/', body_contains: Welcome}");
    let r = record(
        &[("tool", "curl"), ("status", "200")],
        &[("body", "<h1>Welcome</h1>")],
    );
    assert!(passed(&t.evaluate(&Probed(&r))));
    let r = record(
        &[("tool", "curl"), ("status", "000")],
        &[("err", "curl: (7) Failed to connect\n")],
    );
    let checks = t.evaluate(&Probed(&r));
    assert_eq!(
        checks[0].actual,
        "no response (curl: (7) Failed to connect)"
    );
    assert_eq!(checks[1].actual, "not found in 0 bytes: ");

    let redirected = "  HTTP/1.1 301 Moved\n  Location: /x\n  HTTP/1.1 404 Not Found\n";
    let r = record(&[("tool", "wget")], &[("err", redirected)]);
    let t = http("{url: 'https://intranet/x', status: 404}");
    assert!(passed(&t.evaluate(&Probed(&r))));
    let busybox = "wget: server returned error: HTTP/1.1 503 Service Unavailable\n";
    assert_eq!(wget_status(busybox).as_deref(), Some("503"));
    let none = record(&[("tool", "none")], &[]);
    assert!(
        t.evaluate(&Probed(&none))[0]
            .actual
            .contains("neither curl nor wget")
    );
}

#[test]
fn only_web_urls_are_fetched() {
    let t = http("{url: 'file:///etc/shadow'}");
    let mut s = Script::new();
    t.probe("0", &mut s);
    let (_, stdin) = s.finish();
    assert!(!String::from_utf8_lossy(&stdin.to_vec()).contains("/etc/shadow"));
    assert!(!passed(&t.evaluate(&Probed(&record(&[], &[])))));
}

/// A url rendered from a secret goes to curl and GNU Wget on their stdin,
/// from a builtin; busybox's wget, which takes it only as an argument, is
/// not run, and the test says why. Every local user reads a command line.
#[test]
fn a_secret_url_never_reaches_a_command_line() {
    let secret = "https://intranet/?token=s3cret";
    let mut t = http(&format!("{{url: '{secret}'}}"));
    let script = |t: &HttpTest| {
        let mut s = Script::new();
        t.probe("0", &mut s);
        String::from_utf8_lossy(&s.finish().1.to_vec()).into_owned()
    };
    let on_argv = |text: &str| {
        text.lines().filter(|l| l.contains("s3cret")).any(|l| {
            let l = l.trim_start().trim_start_matches("pv_code=$(");
            !l.starts_with("printf '%s\\n' ")
        })
    };
    assert!(
        on_argv(&script(&t)),
        "a plain url is an argument of busybox's wget"
    );
    t.secret_url = true;
    let text = script(&t);
    assert!(!on_argv(&text), "{text}");
    assert!(text.contains("| pv_limited 10 wget -q -S -O"), "{text}");
    let refused = t.evaluate(&Probed(&record(&[("tool", "wget_argv_only")], &[])));
    assert!(!passed(&refused));
    assert!(refused[0].actual.contains("command line"), "{refused:?}");
}
