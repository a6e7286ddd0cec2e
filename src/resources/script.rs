//! Building the one probe script and the one apply script a host receives, and
//! parsing what they print back.
//!
//! Architecture note: a script is sent on the command's stdin, after the file
//! contents it installs (the *payload*), so the exec command line stays tiny and
//! constant whatever the number of resources. On the target a fixed bootstrap
//! saves stdin to a private temp dir, cuts the script off the end and runs it;
//! `parc_put` then slices each file out of the payload by offset. Output comes
//! back framed (`@@r`, `@@blob`, `@@done`), binary-safe by explicit lengths.

use std::collections::BTreeMap;

use crate::transport::{ExitStatus, Transport, TransportError, quote};

/// The sh library every script starts with.
pub const LIB: &str = include_str!("lib.sh");

/// A script under construction, with the bytes it will install.
#[derive(Debug, Default)]
pub struct Script {
    body: String,
    payload: Vec<u8>,
    /// Paths given to [`Script::stat`], in the order the body reads them.
    stats: Vec<String>,
    /// Whether the script installs files (`parc_put`).
    puts: bool,
}

impl Script {
    pub fn new() -> Self {
        Script {
            body: LIB.to_string(),
            payload: Vec::new(),
            stats: Vec::new(),
            puts: false,
        }
    }

    /// sh printing `path`'s state as `parc_stat` does, from a `stat` and a
    /// `sha256sum` run once for every path of the script before its body:
    /// process start-up is most of what a probe costs on the target, and this
    /// makes it two processes instead of two per path. Every returned line must
    /// run exactly once, in the order the calls were made (probes do).
    pub fn stat(&mut self, path: &str) -> String {
        self.stats.push(path.to_string());
        format!("parc_stat_next {}", quote(path))
    }

    /// Append sh source (a newline is added).
    pub fn sh(&mut self, line: &str) {
        self.body.push_str(line);
        self.body.push('\n');
    }

    /// Store `data` in the payload; returns its (offset, length) for `parc_put`.
    pub fn stash(&mut self, data: &[u8]) -> (usize, usize) {
        let off = self.payload.len();
        self.payload.extend_from_slice(data);
        (off, data.len())
    }

    /// `parc_put` invocation installing `data` atomically at `dest`.
    pub fn put(
        &mut self,
        data: &[u8],
        dest: &str,
        mode: Option<u32>,
        owner: Option<&str>,
        group: Option<&str>,
    ) -> String {
        let (off, len) = self.stash(data);
        self.puts = true;
        format!(
            "parc_put {off} {len} {} {} {} {}",
            quote(dest),
            quote(&mode.map(|m| format!("{m:o}")).unwrap_or_default()),
            quote(owner.unwrap_or("")),
            quote(group.unwrap_or(""))
        )
    }

    /// The command line and stdin to send.
    pub fn finish(mut self) -> (String, Vec<u8>) {
        if !self.stats.is_empty() {
            let paths: Vec<String> = self.stats.iter().map(|p| quote(p)).collect();
            self.body
                .insert_str(LIB.len(), &format!("parc_prestat {}\n", paths.join(" ")));
        }
        if self.puts {
            self.body.insert_str(LIB.len(), "parc_dd_probe\n");
        }
        let data_len = self.payload.len();
        let command = format!(
            "PARC_DIR=$(mktemp -d \"${{TMPDIR:-/tmp}}/parc.XXXXXX\") || exit 111; \
             PARC_PAYLOAD=\"$PARC_DIR/payload\"; export PARC_DIR PARC_PAYLOAD; \
             cat > \"$PARC_PAYLOAD\" && tail -c +{} \"$PARC_PAYLOAD\" > \"$PARC_DIR/script\" && sh \"$PARC_DIR/script\"; \
             parc_rc=$?; rm -rf \"$PARC_DIR\"; exit $parc_rc",
            data_len + 1
        );
        let mut stdin = self.payload;
        stdin.extend_from_slice(self.body.as_bytes());
        (command, stdin)
    }

    /// Send the script in ONE exec and parse its framed output.
    pub async fn run(self, t: &dyn Transport) -> Result<ScriptOutput, TransportError> {
        let (command, stdin) = self.finish();
        let out = t.exec_capture(&command, &stdin).await?;
        Ok(ScriptOutput {
            status: out.status,
            records: parse(&out.stdout),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// One framed record: a resource's probe fields and blobs, or its apply result.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Record {
    pub fields: BTreeMap<String, String>,
    pub blobs: BTreeMap<String, Vec<u8>>,
    /// Exit code of the apply step, when it ran.
    pub rc: Option<i32>,
}

impl Record {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }
    pub fn text(&self, blob: &str) -> String {
        self.blobs
            .get(blob)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    }
}

#[derive(Debug)]
pub struct ScriptOutput {
    pub status: ExitStatus,
    pub records: BTreeMap<String, Record>,
    pub stderr: String,
}

/// Parse framed output. Unframed lines are ignored: a noisy login shell must not
/// break parc.
pub fn parse(out: &[u8]) -> BTreeMap<String, Record> {
    let mut records: BTreeMap<String, Record> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut pos = 0;
    while pos < out.len() {
        let end = out[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(out.len(), |i| pos + i);
        let line = String::from_utf8_lossy(&out[pos..end]).into_owned();
        pos = end + 1;
        if let Some(id) = line.strip_prefix("@@r ") {
            current = Some(id.to_string());
            records.entry(id.to_string()).or_default();
        } else if let Some(rest) = line.strip_prefix("@@done ") {
            let mut parts = rest.split(' ');
            let (Some(id), Some(rc)) = (parts.next(), parts.next()) else {
                continue;
            };
            current = Some(id.to_string());
            records.entry(id.to_string()).or_default().rc = rc.parse().ok();
        } else if let Some(rest) = line.strip_prefix("@@blob ") {
            let Some((key, len)) = rest.rsplit_once(' ') else {
                continue;
            };
            let Ok(len) = len.parse::<usize>() else {
                continue;
            };
            let data_end = (pos + len).min(out.len());
            let data = out[pos..data_end].to_vec();
            pos = data_end + 1; // the newline after the blob
            if let Some(id) = &current {
                records
                    .entry(id.clone())
                    .or_default()
                    .blobs
                    .insert(key.to_string(), data);
            }
        } else if let (Some(id), Some((k, v))) = (&current, line.split_once('=')) {
            records
                .entry(id.clone())
                .or_default()
                .fields
                .insert(k.to_string(), v.to_string());
        }
    }
    records
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parc_dirname_agrees_with_dirname() {
        let paths = [
            "/a/b",
            "/a",
            "/",
            "a",
            "a/b",
            "/a/b/",
            "//a//b//",
            "a//b",
            "./x",
            "/srv/sp ace/l'ines",
        ];
        for path in paths {
            let run = |script: &str| {
                let out = std::process::Command::new("sh")
                    .arg("-c")
                    .arg(format!("{LIB}\n{script}"))
                    .arg("sh")
                    .arg(path)
                    .output()
                    .unwrap();
                String::from_utf8(out.stdout).unwrap()
            };
            assert_eq!(
                run("parc_dirname \"$1\"; echo \"$_d\""),
                run("dirname \"$1\""),
                "{path}"
            );
        }
    }
    use crate::transport::local::LocalTransport;

    #[test]
    fn parses_fields_blobs_and_results() {
        let out = b"noise\n@@r 0\ntype=file\nmode=644\n@@blob content 5\na\nb=c\n@@r 1\ntype=none\n@@done 0 0\n@@blob out 3\nok\n\n";
        let r = parse(out);
        assert_eq!(r["0"].get("type"), Some("file"));
        assert_eq!(r["0"].blobs["content"], b"a\nb=c");
        assert_eq!(r["0"].rc, Some(0));
        assert_eq!(r["0"].blobs["out"], b"ok\n");
        assert_eq!(r["1"].get("type"), Some("none"));
        assert!(!r["1"].fields.contains_key("b"));
    }

    #[tokio::test]
    async fn batched_stat_reads_back_what_parc_stat_prints() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("plain"), b"x\n").unwrap();
        std::fs::write(d.join("new\nline"), b"y").unwrap();
        std::fs::write(d.join("back\\slash"), b"").unwrap();
        std::fs::create_dir(d.join("sub dir")).unwrap();
        std::os::unix::fs::symlink("plain", d.join("link")).unwrap();
        let names = [
            "plain",
            "missing",
            "new\nline",
            "sub dir",
            "back\\slash",
            "link",
            "plain",
        ];
        let mut s = Script::new();
        for (i, name) in names.iter().enumerate() {
            let path = d.join(name).to_str().unwrap().to_string();
            let batched = s.stat(&path);
            s.sh(&format!(
                "echo '@@r a{i}'; {batched}; echo '@@r b{i}'; parc_stat {}",
                quote(&path)
            ));
        }
        s.sh("echo \"@@r mode\"; echo \"batched=$PARC_PRESTAT\"");
        let out = s.run(&LocalTransport).await.unwrap();
        assert!(out.status.success(), "{}", out.stderr);
        assert_eq!(out.records["mode"].get("batched"), Some("1"));
        for (i, name) in names.iter().enumerate() {
            let (a, b) = (
                &out.records[&format!("a{i}")],
                &out.records[&format!("b{i}")],
            );
            assert_eq!(a, b, "{name}");
            assert!(a.get("type").is_some(), "{name}");
        }
        assert_eq!(out.records["a2"].get("sha256"), Some(&*sha(b"y")));
    }

    fn sha(data: &[u8]) -> String {
        crate::resources::sha256_hex(data)
    }

    #[tokio::test]
    async fn put_installs_payload_slices_atomically() {
        // With GNU dd's byte slicing, and with tail | head as busybox does it.
        for dd in ["[ \"$PARC_DD\" = 1 ] || exit 9", "PARC_DD=0"] {
            put_once(dd).await;
        }
    }

    async fn put_once(dd: &str) {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a file");
        let b = dir.path().join("b$(touch pwned)");
        let mut s = Script::new();
        let put_a = s.put(b"first\n", a.to_str().unwrap(), Some(0o600), None, None);
        let put_b = s.put(b"\x00binary\xff", b.to_str().unwrap(), None, None, None);
        s.sh(dd);
        s.sh(&format!("step_0() {{ {put_a}; }}\nstep_1() {{ {put_b}; }}"));
        s.sh("echo '@@r 0'; parc_stat \"$1\" >/dev/null; parc_step 0 step_0; parc_step 1 step_1");
        let out = s.run(&LocalTransport).await.unwrap();
        assert!(out.status.success(), "{}", out.stderr);
        assert_eq!(std::fs::read(&a).unwrap(), b"first\n");
        assert_eq!(std::fs::read(&b).unwrap(), b"\x00binary\xff");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&a).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(out.records["1"].rc, Some(0));
        assert!(!dir.path().join("pwned").exists());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            2,
            "no temp file left"
        );
    }

    #[tokio::test]
    async fn a_failing_step_stops_the_script() {
        let mut s = Script::new();
        s.sh("step_0() { false; echo never; }\nstep_1() { echo second; }");
        s.sh("parc_step 0 step_0; parc_step 1 step_1");
        let out = s.run(&LocalTransport).await.unwrap();
        assert!(!out.status.success());
        assert_eq!(out.records["0"].rc, Some(1));
        assert!(!out.records.contains_key("1"));
    }
}
