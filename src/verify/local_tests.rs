//! The verification script for real, on this machine: with its own tools, and
//! with nothing but busybox applets (what a minimal target offers). Both must
//! reach the same verdicts, proving no tool was silently missing.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::*;
use crate::transport::TransportError;
use crate::transport::local::LocalTransport;
use crate::transport::{ExitStatus, quote};

/// A web server answering every request with 200 and `parc-verified`.
async fn web_server() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf).await;
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nConnection: close\r\n\r\nparc-verified")
                .await;
        }
    });
    addr
}

/// Every kind, passing and failing, with the verdict expected on this machine.
async fn run_every_kind(t: &dyn Transport) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("it's here");
    std::fs::write(&f, "host=ws-001\nsecret=hunter22\n").unwrap();
    let (f, web) = (f.display(), web_server().await);
    let systemd = Path::new("/run/systemd/system").exists();
    let cases = [
        (format!("file: {{path: \"{f}\", contains: 'host=ws-001', matches: '^secret=\\w+$', mode: '0644', owner: root}}"), true),
        ("file: {path: /nonexistent/parc, exists: false}".into(), true),
        ("command: {run: 'echo hello; echo warn >&2', stdout_contains: hello, stderr_contains: warn}".into(), true),
        ("command: {run: 'sleep 5', timeout: 1}".into(), false),
        ("command: {run: 'exit 3', exit: 3}".into(), true),
        ("user: {name: root, uid: 0, groups: [root]}".into(), true),
        ("user: {name: parc-nobody-here, exists: false}".into(), true),
        ("group: {name: root}".into(), true),
        ("package: {name: parc-no-such-package, installed: false}".into(), true),
        // Without systemd a service test fails, saying why.
        ("service: {name: parc-no-such-service, running: false}".into(), systemd),
        ("port: {port: 1, listening: false}".into(), true),
        (format!("port: {{port: {}}}", web.port()), true),
        ("http: {url: 'http://127.0.0.1:1/', timeout: 2}".into(), false),
        (format!("http: {{url: 'http://{web}/', body_contains: verified}}"), true),
        (format!("http: {{url: 'http://{web}/', status: 404}}"), false),
        ("dns: {name: localhost}".into(), true),
        ("mount: {path: /proc, fstype: proc}".into(), true),
        ("kernel_param: {name: kernel.ostype, value: Linux}".into(), true),
        ("kernel_param: {name: parc.no.such, value: x}".into(), false),
        // A second mount test reads the one copy of the mount table.
        ("mount: {path: /parc-not-mounted}".into(), false),
        // Names a tool would read as options: absent, and the other tests'
        // reads (in the same getent, the same package reading) unharmed.
        ("user: {name: '--help', exists: false}".into(), true),
        ("group: {name: '-s', exists: false}".into(), true),
        ("package: {name: '--version', installed: false}".into(), true),
        ("dns: {name: '-x', resolves: false}".into(), true),
        // A URL holding what curl's config escapes reaches the server.
        (
            format!("http: {{url: 'http://{web}/q?a=\"b\\c', body_contains: verified}}"),
            true,
        ),
    ];
    let yaml: String = cases.iter().map(|(t, _)| format!("- {t}\n")).collect();
    let tests: Vec<Test> = crate::location::from_yaml(&yaml).unwrap();
    let vars: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(r#"{"pw": "hunter22"}"#).unwrap();
    let redactor = Redactor::for_host(&vars, &["pw".to_string()], &Default::default());
    // Whatever the tests find, the script itself succeeds and every record is whole.
    let out = probe_script(&tests).run(t).await.unwrap();
    assert!(out.status.success(), "{}: {}", out.status, out.stderr);
    for i in 0..tests.len() {
        assert_eq!(
            out.records[&i.to_string()].get("end"),
            Some("yes"),
            "record {i}"
        );
    }
    let results = run_tests(t, &tests, &redactor, None).await.unwrap();
    assert_eq!(results.len(), tests.len());
    for ((case, want), got) in cases.iter().zip(&results) {
        assert_eq!(got.passed, *want, "{case}\n{got:#?}");
    }
    assert!(
        results[3].checks[0].actual.contains("timeout"),
        "{:?}",
        results[3]
    );
    assert!(
        results[12].checks[0].actual.starts_with("no response"),
        "{:?}",
        results[12]
    );
    assert_eq!(results[14].checks[0].actual, "200");
    let text = serde_json::to_string(&results).unwrap();
    assert!(!text.contains("hunter22"), "a secret leaked: {text}");
}

#[tokio::test]
async fn every_kind_with_this_machines_tools() {
    run_every_kind(&LocalTransport).await;
}

/// Runs `command` here in a private mount namespace, which `setup` (sh,
/// given `command` as `$0`) changes, then runs it in.
async fn in_namespace(
    setup: &str,
    command: &str,
    stdin: &mut (dyn AsyncRead + Send + Unpin),
    stdout: &mut (dyn AsyncWrite + Send + Unpin),
    stderr: &mut (dyn AsyncWrite + Send + Unpin),
) -> Result<ExitStatus, TransportError> {
    let wrapped = format!(
        "exec unshare -m -- /bin/sh -c {} {}",
        quote(setup),
        quote(command)
    );
    LocalTransport.exec(&wrapped, stdin, stdout, stderr).await
}

/// Runs commands in a private mount namespace where every bin directory holds
/// only busybox applets.
struct BusyboxOnly {
    bin: PathBuf,
}

#[async_trait]
impl Transport for BusyboxOnly {
    async fn exec(
        &self,
        command: &str,
        stdin: &mut (dyn AsyncRead + Send + Unpin),
        stdout: &mut (dyn AsyncWrite + Send + Unpin),
        stderr: &mut (dyn AsyncWrite + Send + Unpin),
    ) -> Result<ExitStatus, TransportError> {
        let bb = quote(&self.bin.display().to_string());
        let setup = format!(
            "for d in /bin /sbin /usr/bin /usr/sbin /usr/local/bin /usr/local/sbin; do \
               if [ -d \"$d\" ] && [ ! -L \"$d\" ]; then mount --bind {bb} \"$d\" || exit 125; fi; done; \
             exec env -i PATH={bb} {bb}/sh -c \"$0\""
        );
        in_namespace(&setup, command, stdin, stdout, stderr).await
    }
}

#[tokio::test]
async fn every_kind_with_busybox_only() {
    let root = nix::unistd::geteuid().is_root();
    let tools = ["busybox", "unshare"].map(|t| {
        std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {t}"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
    });
    let [Some(busybox), Some(_)] = tools else {
        crate::transport::local::cannot_run("busybox or unshare is missing");
        return;
    };
    if !root {
        crate::transport::local::cannot_run("not root (a mount namespace is needed)");
        return;
    }
    let bin = tempfile::tempdir().unwrap();
    let copy = bin.path().join("busybox");
    std::fs::copy(&busybox, &copy).unwrap();
    let list = std::process::Command::new(&copy)
        .arg("--list")
        .output()
        .unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            std::os::unix::fs::symlink(&copy, bin.path().join(applet)).unwrap();
        }
    }
    let t = BusyboxOnly {
        bin: bin.path().to_path_buf(),
    };
    let out = t
        .exec_capture(
            "command -v getent dpkg-query curl; readlink -f \"$(command -v wget)\"",
            b"",
        )
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        copy.display().to_string(),
        "only busybox is reachable: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    run_every_kind(&t).await;
}

/// Runs commands in a private mount namespace where curl is a file that
/// does not run, and wget is a script that writes its arguments to `args`
/// before it runs a copy of the real one.
struct WgetOnly {
    dir: PathBuf,
    wget: PathBuf,
    curl: PathBuf,
}

#[async_trait]
impl Transport for WgetOnly {
    async fn exec(
        &self,
        command: &str,
        stdin: &mut (dyn AsyncRead + Send + Unpin),
        stdout: &mut (dyn AsyncWrite + Send + Unpin),
        stderr: &mut (dyn AsyncWrite + Send + Unpin),
    ) -> Result<ExitStatus, TransportError> {
        let path = |p: &Path| quote(&p.display().to_string());
        let (dir, wget, curl) = (path(&self.dir), path(&self.wget), path(&self.curl));
        let setup = format!(
            "mount --bind {dir}/logger {wget} && mount --bind {dir}/none {curl} || exit 125; exec /bin/sh -c \"$0\""
        );
        in_namespace(&setup, command, stdin, stdout, stderr).await
    }
}

/// A url rendered from a secret reaches the server through GNU Wget's
/// stdin, never its command line (what every local user reads in `ps`).
#[tokio::test]
async fn gnu_wget_gets_a_secret_url_on_its_stdin() {
    let found = |name: &str| {
        ["/usr/bin", "/bin"]
            .into_iter()
            .map(|d| Path::new(d).join(name))
            .find(|p| p.exists())
    };
    let (Some(wget), Some(curl)) = (found("wget"), found("curl")) else {
        crate::transport::local::cannot_run("wget or curl is missing");
        return;
    };
    if !nix::unistd::geteuid().is_root() {
        crate::transport::local::cannot_run("not root (a mount namespace is needed)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (args, real) = (dir.path().join("args"), dir.path().join("wget"));
    std::fs::copy(&wget, &real).unwrap();
    std::fs::write(dir.path().join("none"), "").unwrap();
    let logger = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$@\" >> {}\nexec {} \"$@\"\n",
        quote(&args.display().to_string()),
        quote(&real.display().to_string())
    );
    std::fs::write(dir.path().join("logger"), logger).unwrap();
    std::fs::set_permissions(
        dir.path().join("logger"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let web = web_server().await;
    let yaml = format!("- http: {{url: 'http://{web}/?token=s3cret', body_contains: verified}}\n");
    let mut tests: Vec<Test> = crate::location::from_yaml(&yaml).unwrap();
    if let crate::verify::spec::Spec::Http(h) = &mut tests[0].spec {
        h.secret_url = true;
    }
    let t = WgetOnly {
        dir: dir.path().to_path_buf(),
        wget,
        curl,
    };
    let results = run_tests(&t, &tests, &Redactor::default(), None)
        .await
        .unwrap();
    assert!(results[0].passed, "{results:#?}");
    let given = std::fs::read_to_string(&args).unwrap();
    assert!(given.contains("-i"), "GNU Wget ran: {given}");
    assert!(!given.contains("s3cret"), "{given}");
}

#[tokio::test]
async fn a_script_that_dies_fails_the_tests_it_did_not_reach() {
    let tests: Vec<Test> =
        crate::location::from_yaml("- command: {run: 'kill -9 $PPID'}\n- file: {path: /}\n")
            .unwrap();
    let results = run_tests(&LocalTransport, &tests, &Redactor::default(), None)
        .await
        .unwrap();
    assert!(results.iter().all(|r| !r.passed), "{results:#?}");
    assert!(results[1].checks[0].actual.contains("the script stopped"));
}
