//! Building the one probe script and the one apply script a host receives, and
//! parsing what they print back.
//!
//! Architecture note: a script is sent on the command's stdin, after the bytes
//! it installs (the *payload*: the staging archive of `super::stage`, then
//! slices read by offset), so the exec command line stays tiny and constant
//! whatever the number of resources. On the target a fixed bootstrap (the
//! login shell `exec`ed into sh) takes a private directory, saves the payload
//! there, reads the script off the end of stdin and runs it in itself.
//! Output comes back framed (`@@r`, `@@blob`, `@@done`), binary-safe by
//! explicit lengths; file contents a probe asks for come last, as one tar
//! after an `@@tar` line.
//!
//! Lifecycle of a [`Script`]: callers add typed parts in any order (libraries,
//! paths to guard and stat, files to install, *setup* lines that run before
//! the first change, *body* lines that run after it, contents to fetch);
//! [`Script::assemble`] then lays the parts out in one fixed order, the
//! sections of [`Assembled::script`]:
//!
//! 1. the libraries (`lib.sh`, then each one added with [`Script::lib`]);
//! 2. the guard (`parc_guard`: no symbolic link planted above a touched path);
//! 3. the batched reads: the modes of the directories above checked paths
//!    (`parc_dir_modes`), the accounts looked up (`parc_getent_all`, one
//!    `getent` per database), the stat of every path the probes read
//!    (`parc_prestat`; the same `stat` process as the modes);
//! 4. the staging functions (temp names, `parc_stage`, `parc_batch_N`);
//! 5. setup: the journal's saves and the step functions;
//! 6. the barrier: the record of how to unstage, the staging, one `sync` of
//!    the journal and the staged files;
//! 7. the body: probes, or the steps that change the host;
//! 8. the fetch of every content asked for (one `tar -c`).
//!
//! `run` sends the assembled script in ONE exec and parses the framed output
//! into records by id ([`ScriptOutput`]), or fails with a [`ScriptError`]:
//! the transport broke (the host's state is unknown) or the output was
//! refused (nothing of it is used).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::payload::Payload;
use super::plan::UserOp;
use super::stage::{Stage, Staged};
use crate::content::Content;
use crate::transport::{Capped, ExitStatus, Output, Transport, TransportError, quote, quote_words};

/// The sh library every script starts with.
pub const LIB: &str = include_str!("lib.sh");

/// A script under construction, with the bytes it will install.
#[derive(Default)]
pub struct Script {
    /// Libraries sent after [`LIB`], each once.
    libs: Vec<&'static str>,
    /// Paths that must have no symbolic link above them when the script
    /// starts, before the journal or the staging writes anything.
    guard: Vec<String>,
    /// Files installed through staging (see [`super::stage`]).
    stage: Stage,
    /// sh that runs before the staging: nothing here changes the host.
    setup: Vec<String>,
    /// sh words (paths, globs) that must be durable before the first change.
    durable: Vec<String>,
    /// Where to record how to remove the staged files (a sh word), so that a
    /// restore can clean up after a run that died before renaming them.
    unstage_record: Option<String>,
    /// sh that runs after the staging.
    body: Vec<String>,
    /// Bytes the script reads by offset (`stash`), after the staging archive.
    payload: Payload,
    /// Files whose content the probe returns, in one `tar -c` at its end:
    /// paths on the host, then files the script wrote (see [`Script::capture`]).
    fetch: Vec<String>,
    /// Names in `$PARC_DIR` given out by [`Script::capture`], with the size
    /// past which each is cut.
    captures: Vec<(String, u64)>,
    /// Contents asked for, each as its record, blob key, index in `fetch`
    /// and size limit.
    wants: Vec<Want>,
    /// The batched reads made before the setup (section 3).
    reads: Reads,
    /// Rounds of batched reads started by [`Script::read_again`], each made
    /// in the body before its line `from`.
    later: Vec<(usize, Reads)>,
    /// Names the staged temp files: random, unless a test fixes it.
    token: Option<String>,
}

/// What one round of batched reads fetches: one `stat` (directories' modes
/// and the paths to stat), one `getent` per database, one `dpkg-query`.
#[derive(Default)]
struct Reads {
    /// Paths given to [`Script::stat`] and [`Script::stat_attrs`], in the
    /// order the body reads them.
    stats: Vec<String>,
    /// A path was given to [`Script::stat`]: the round hashes its files.
    hash: bool,
    /// Paths given to [`Script::path_check`], whose directories' modes the
    /// same `stat` reads.
    checks: Vec<String>,
    /// Names looked up by [`Script::getent`], by database.
    getent: BTreeMap<String, Vec<String>>,
    /// Packages looked up by [`Script::package`].
    packages: Vec<String>,
    /// Packages asked about an upgrade by [`Script::upgradable`].
    upgradable: Vec<String>,
    /// systemd units looked up by [`Script::unit`], in the order the body
    /// reads them.
    units: Vec<String>,
}

impl Reads {
    /// The lines making the round's reads, in the order the readers need
    /// them (`parc_dir_modes` stats for `parc_prestat` too).
    fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if !self.checks.is_empty() {
            // In byte order, the paths under one directory come together:
            // `parc_dir_modes` then stats each directory once.
            let mut checks = self.checks.clone();
            checks.sort_unstable();
            checks.dedup();
            let mut line = format!("parc_dir_modes {} {}", checks.len(), quote_words(&checks));
            if !self.stats.is_empty() {
                line.push_str(&format!(" {}", quote_words(&self.stats)));
            }
            lines.push(format!("{line}\n"));
        }
        if !self.getent.is_empty() {
            lines.push("parc_nss_read\n".to_string());
        }
        for (db, names) in &self.getent {
            lines.push(format!("parc_getent_all {db} {}\n", quote_words(names)));
        }
        if !self.packages.is_empty() {
            lines.push(format!("parc_pkg_all {}\n", quote_words(&self.packages)));
        }
        if !self.upgradable.is_empty() {
            lines.push(format!(
                "parc_pkg_upgrades {}\n",
                quote_words(&self.upgradable)
            ));
        }
        if !self.units.is_empty() {
            lines.push(format!("parc_unit_all {}\n", quote_words(&self.units)));
        }
        if !self.stats.is_empty() {
            let prestat = if self.hash {
                "parc_prestat"
            } else {
                "parc_prestat_attrs"
            };
            lines.push(format!("{prestat} {}\n", quote_words(&self.stats)));
        }
        lines
    }
}

/// One content a probe asked for ([`Script::blob`]).
#[derive(Clone)]
struct Want {
    id: String,
    key: String,
    fetched: usize,
    max: Option<u64>,
}

impl std::fmt::Debug for Script {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Script")
            .field("setup", &self.setup)
            .field("body", &self.body)
            .field("payload", &self.payload.len())
            .field("staged", &self.stage.len())
            .finish()
    }
}

impl Script {
    pub fn new() -> Self {
        Script::default()
    }

    /// Send sh library `text` (function definitions) after [`LIB`]; a library
    /// added twice is sent once.
    pub fn lib(&mut self, text: &'static str) {
        if !self.libs.contains(&text) {
            self.libs.push(text);
        }
    }

    /// sh printing `path`'s state as `parc_stat` does, from a `stat` and a
    /// `sha256sum` run once for every path of the script before its body:
    /// process start-up is most of what a probe costs on the target, and this
    /// makes it two processes instead of two per path. Every returned line must
    /// run exactly once, in the order the calls were made (probes do).
    pub fn stat(&mut self, path: &str) -> String {
        self.round().hash = true;
        self.stat_attrs(path)
    }

    /// [`Script::stat`] without the content's hash (`hashed=no` for a
    /// regular file), unless another path of the same round of reads needs
    /// one: a probe that compares no content does not read the file whole.
    pub fn stat_attrs(&mut self, path: &str) -> String {
        self.round().stats.push(path.to_string());
        format!("parc_stat_next {}", quote(path))
    }

    /// sh condition setting `_ge` to the entry `name` of account database
    /// `db` (passwd, group, shadow), false when there is none: every name of
    /// a database comes from one `getent` before the body, read back by the
    /// shell, rather than a `getent` per account.
    pub fn getent(&mut self, db: &str, name: &str) -> String {
        if !operand(name) {
            return "false".to_string();
        }
        place(self.round().getent.entry(db.to_string()).or_default(), name);
        format!("parc_getent_next {db} {}", quote(name))
    }

    /// sh setting `_gp` and `_gs` to the primary and other groups of user
    /// `name`, whose gid is in sh word `gid` (`parc_user_groups`): from
    /// /etc/group and the entries of `named` groups looked up by name
    /// (directory services' groups count), read by the shell rather than an
    /// `id` per user.
    pub fn user_groups(&mut self, name: &str, gid: &str, named: &[String]) -> String {
        // The round reads /etc/group once for every user's groups.
        self.round().getent.entry("group".to_string()).or_default();
        for group in named {
            self.getent("group", group);
        }
        format!("parc_user_groups {} {gid}", quote(name))
    }

    /// sh printing `iN=yes` and `vN=VERSION` in the current record when
    /// package `name` is installed (`parc_pkg_query`, after
    /// `parc_pkg_manager`): the package manager's answers come from one
    /// process for every name of the round, read back by the shell, rpm's,
    /// apk's and pacman's by the name's position.
    pub fn package(&mut self, manager: &str, name: &str, n: usize) -> String {
        if !operand(name) {
            return ":".to_string();
        }
        let at = place(&mut self.round().packages, name);
        format!("parc_pkg_query {manager} {} {n} {}", quote(name), at + 1)
    }

    /// sh printing `uN=CANDIDATE` (or `uN=newer`) in the current record
    /// when the host's package metadata offers an upgrade of installed
    /// package `name` (`parc_pkg_upgradable`): apt's or dnf's answers come
    /// from one `apt-cache policy` or `dnf list --upgrades` for every name
    /// of the round.
    pub fn upgradable(&mut self, manager: &str, name: &str, n: usize) -> String {
        if !operand(name) {
            return ":".to_string();
        }
        place(&mut self.round().upgradable, name);
        format!("parc_pkg_upgradable {manager} {} {n}", quote(name))
    }

    /// sh setting `_ul`, `_ua` and `_ue` to systemd unit `name`'s load state,
    /// active state and unit file state (`systemctl is-enabled`'s answer),
    /// empty without systemd: every unit of the script comes from one
    /// `systemctl show` and one `systemctl is-enabled` before the body
    /// (`parc_unit_all`), not three `systemctl` a unit. Every returned line
    /// must run exactly once, in the order the calls were made.
    pub fn unit(&mut self, name: &str) -> String {
        self.round().units.push(name.to_string());
        format!("parc_unit_next {}", quote(name))
    }

    /// sh asking for regular file `path`'s content as blob `key` of record
    /// `id` (none when `path` is not a regular file, or is larger than `max`
    /// bytes). Every content asked for comes back in one `tar -c` at the end
    /// of the script, read by one process rather than a `wc` and a `cat` per
    /// file; a file asked for by several resources is read once.
    pub fn blob(&mut self, id: &str, key: &str, path: &str, max: Option<u64>) -> String {
        let n = place(&mut self.fetch, path);
        self.wants.push(Want {
            id: id.to_string(),
            key: key.to_string(),
            fetched: n,
            max,
        });
        format!(
            "parc_want {n} {}{}",
            quote(path),
            max.map(|m| format!(" {m}")).unwrap_or_default()
        )
    }

    /// A file in the script's private directory (a sh word) for the script to
    /// write (a command's output, a bounded copy of a file), whose first
    /// `max` + 1 bytes come back as blob `key` of record `id`: one byte more
    /// than `max` says it was cut. Captured files travel in the probe's closing
    /// tar, their sizes read by one `wc` for all of them: no process per file.
    /// No blob when the script did not write the file.
    pub fn capture(&mut self, id: &str, key: &str, max: u64) -> String {
        let name = format!("capture.{}", self.captures.len());
        self.fetch.push(name.clone());
        self.wants.push(Want {
            id: id.to_string(),
            key: key.to_string(),
            fetched: self.fetch.len() - 1,
            max: None,
        });
        self.captures.push((name.clone(), max));
        format!("\"$PARC_DIR/{name}\"")
    }

    /// [`Script::capture`] of what several probes read alike (a /proc
    /// table): written once, under `name` (letters, digits and dots), and
    /// handed to every caller's record as blob `key`. Returns the file and
    /// whether this call is the first, whose sh must write it; later
    /// callers' must not. Per round of reads ([`Script::read_again`]): a
    /// later round reads the host again.
    pub fn capture_shared(&mut self, id: &str, key: &str, name: &str, max: u64) -> (String, bool) {
        let file = format!("capture.{name}.{}", self.later.len());
        let (fetched, first) = match self.fetch.iter().position(|p| *p == file) {
            Some(n) => (n, false),
            None => {
                self.fetch.push(file.clone());
                self.captures.push((file.clone(), max));
                (self.fetch.len() - 1, true)
            }
        };
        self.wants.push(Want {
            id: id.to_string(),
            key: key.to_string(),
            fetched,
            max: None,
        });
        (format!("\"$PARC_DIR/{file}\""), first)
    }

    /// sh printing, in the current record, the first directory above `path`
    /// a local user could swap (`unsafe=`, `unsafe_why=`: see `parc_unsafe`),
    /// for [`super::check_path`]. The directories' modes, which the shell
    /// cannot read, come from one `stat` for every path of the script.
    pub fn path_check(&mut self, path: &str) -> String {
        self.round().checks.push(path.to_string());
        format!("parc_path_check {}", quote(path))
    }

    /// From here on, the batched reads ([`Script::stat`], [`Script::getent`],
    /// [`Script::package`], [`Script::path_check`]) are made after the body
    /// lines added so far have run, rather than before the body: for probes
    /// that must see the host as those lines left it (the verification
    /// tests at the end of an apply exec). Nothing to do before any body line.
    pub fn read_again(&mut self) {
        if !self.body.is_empty() {
            self.later.push((self.body.len(), Reads::default()));
        }
    }

    /// The round of batched reads the probes added now belong to.
    fn round(&mut self) -> &mut Reads {
        match self.later.last_mut() {
            Some((_, reads)) => reads,
            None => &mut self.reads,
        }
    }

    /// Refuse to run (exit 1, nothing written) if a directory above `path` is
    /// a symbolic link when the script starts: the probe saw none, but a local
    /// user may have planted one since.
    pub fn guard(&mut self, path: &str) {
        if !self.guard.iter().any(|p| p == path) {
            self.guard.push(path.to_string());
        }
    }

    /// Append sh source to the body (a newline is added): it runs after the
    /// staging, so it may change the host.
    pub fn sh(&mut self, line: &str) {
        self.body.push(line.to_string());
    }

    /// Append sh source to the setup (a newline is added): it runs before
    /// the staging and its sync, so it must not change the host (it defines
    /// functions, writes the journal).
    pub fn setup(&mut self, line: &str) {
        self.setup.push(line.to_string());
    }

    /// Store `data` in the payload; returns its (offset, length) for
    /// `parc_put`. Offsets count from `$PARC_STASH`.
    pub fn stash(&mut self, data: &[u8]) -> (usize, usize) {
        let off = self.payload.len();
        self.payload.push(data.to_vec());
        (off, data.len())
    }

    /// [`Script::stash`] a content shared with other hosts, uncopied.
    fn stash_shared(&mut self, data: &Arc<Content>) -> (usize, usize) {
        let off = self.payload.len();
        self.payload.push_shared(data.clone());
        (off, data.len())
    }

    /// sh installing `data` atomically at `dest` (temp file, fsync, rename).
    /// With `stage` (the nearest existing directory above `dest`, as the probe
    /// saw it), the temp file is written by the staging before the first step
    /// and the returned line only sets the owner and renames; without, the line
    /// writes the temp file itself.
    pub fn put(
        &mut self,
        data: &Arc<Content>,
        dest: &str,
        mode: Option<u32>,
        owner: Option<&str>,
        group: Option<&str>,
        stage: Option<&str>,
    ) -> String {
        let (o, g) = (owner.unwrap_or(""), group.unwrap_or(""));
        if let Some(line) =
            stage.and_then(|dir| self.stage.add(data, dir, dest, mode.unwrap_or(0o644), o, g))
        {
            return line;
        }
        let (owner, group) = (quote(o), quote(g));
        let (off, len) = self.stash_shared(data);
        format!(
            "parc_put {off} {len} {} {} {owner} {group}",
            quote(dest),
            quote(&mode.map(|m| format!("{m:o}")).unwrap_or_default()),
        )
    }

    /// sh doing `op` as `user` (see [`UserOp`]): a file's content from the
    /// stash, like [`Script::put`] without staging.
    pub fn as_user(&mut self, user: &str, op: &UserOp) -> String {
        let u = quote(user);
        match op {
            UserOp::Put {
                data,
                dest,
                mode,
                group,
            } => {
                let (off, len) = self.stash_shared(data);
                format!(
                    "parc_put_as {off} {len} {} {mode:o} {u} {}",
                    quote(dest),
                    quote(group.as_deref().unwrap_or(""))
                )
            }
            UserOp::Mkdir { path, mode } => format!(
                "parc_as {u} {} </dev/null",
                super::plan::mkdir_line(*mode, &[path])
            ),
            UserOp::Chmod { path, mode } => {
                format!("parc_as {u} chmod -- {mode:o} {} </dev/null", quote(path))
            }
            UserOp::Remove { path } => {
                format!("parc_as {u} rm -f -- {} </dev/null", quote(path))
            }
        }
    }

    /// sh making `dest` a symbolic link to `target`: staged in `stage` and
    /// renamed into place (see `resources::stage`), else `ln -sfn`.
    pub fn link(&mut self, target: &str, dest: &str, stage: Option<&str>) -> String {
        stage
            .and_then(|dir| self.stage.add_link(target, dir, dest))
            .unwrap_or_else(|| format!("ln -sfn -- {} {}", quote(target), quote(dest)))
    }

    /// How many files are staged so far (see [`Script::rename_together`]).
    pub fn staged(&self) -> usize {
        self.stage.len()
    }

    /// The staged files `files` (as counted by [`Script::staged`]) belong to
    /// one run of consecutive steps that only install files: the line
    /// renaming them together, to run before the run's first step.
    pub fn rename_together(&mut self, files: std::ops::Range<usize>) -> Option<String> {
        self.stage.run(files)
    }

    /// Before staging, write to `path` (a sh word) the sh that removes every
    /// staged temp file: a run killed before its renames (SIGKILL, a host
    /// crash) leaves them behind, and its restore runs this.
    pub fn record_unstage(&mut self, path: &str) {
        self.unstage_record = Some(path.to_string());
    }

    /// Make `words` (sh words: quoted paths or globs) durable where the
    /// staging runs, with the same `sync` as the staged files: the journal
    /// and the temp files are fsynced by one process.
    pub fn durable(&mut self, words: &str) {
        self.durable.push(words.to_string());
    }

    /// Name the staged temp files with `token` rather than a random one, so
    /// that the script is the same on every build (snapshot tests).
    #[cfg(test)]
    pub(crate) fn fix_token(&mut self, token: &str) {
        self.token = Some(token.to_string());
    }

    /// The command line, the script and the bytes before it.
    pub fn assemble(self) -> Assembled {
        let staged = self.stage.finish(self.token.as_deref());
        let mut sections: Vec<String> = Vec::new();
        let guard = (!self.guard.is_empty())
            .then(|| format!("parc_guard {} || exit 1\n", quote_words(&self.guard)));
        sections.extend(guard.clone());
        sections.extend(self.reads.lines());
        if let Some(Ok(staged)) = &staged {
            sections.push(staged.functions.clone());
        }
        sections.extend(self.setup.iter().map(|l| format!("{l}\n")));
        sections.push(barrier(
            staged.as_ref(),
            self.unstage_record.as_deref(),
            &self.durable,
            guard.as_deref(),
        ));
        let mut later = self.later.iter().peekable();
        for (n, line) in self.body.iter().enumerate() {
            while let Some((_, reads)) = later.next_if(|(from, _)| *from == n) {
                // A stat this round does not make must not be taken for one
                // made before (parc_prestat trusts PARC_STATED's count).
                sections.push("PARC_STATED=''\n".to_string());
                sections.extend(reads.lines());
            }
            sections.push(format!("{line}\n"));
        }
        if !self.fetch.is_empty() {
            let mut tail = String::new();
            let mut by_max: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
            for (name, max) in &self.captures {
                by_max.entry(*max).or_default().push(name);
            }
            for (max, names) in by_max {
                tail.push_str(&format!("parc_cut {max} {}\n", names.join(" ")));
            }
            tail.push_str("set --\n");
            for (n, path) in self.fetch.iter().enumerate() {
                if self.captures.iter().any(|(name, _)| name == path) {
                    tail.push_str(&format!(
                        "[ ! -f \"$PARC_DIR/{path}\" ] || set -- \"$@\" {path}\n"
                    ));
                    continue;
                }
                tail.push_str(&format!(
                    "[ -z \"${{PARC_WANT_{n}:-}}\" ] || set -- \"$@\" {}\n",
                    quote(path)
                ));
            }
            tail.push_str("parc_fetch \"$@\"\n\n");
            sections.push(tail);
        }
        let output_max = output_max(
            self.body.len(),
            self.fetch.iter().enumerate().map(|(n, name)| {
                let capture = self.captures.iter().find(|(c, _)| c == name);
                let wanted = self.wants.iter().filter(|w| w.fetched == n);
                match capture {
                    Some((_, max)) => Some(max + 1),
                    // A want without a bound makes the whole file come.
                    None => wanted.map(|w| w.max.unwrap_or(u64::MAX)).max(),
                }
            }),
        );
        Assembled {
            archive: staged
                .and_then(Result::ok)
                .map(|s| s.archive)
                .unwrap_or_default(),
            payload: self.payload,
            libs: self.libs,
            tail: sections.concat(),
            fetch: self.fetch,
            wants: self.wants,
            output_max,
        }
    }

    /// The command line and stdin to send.
    pub fn finish(self) -> (String, Payload) {
        self.assemble().into_exec()
    }

    /// Send the script in ONE exec and parse its framed output.
    pub async fn run(self, t: &dyn Transport) -> Result<ScriptOutput, ScriptError> {
        self.assemble().run(t).await
    }

    /// [`Script::run`], given up on past `within` (see
    /// [`Assembled::run_read_only`]).
    pub async fn run_within(
        self,
        t: &dyn Transport,
        within: Option<Within<'_>>,
    ) -> Result<ScriptOutput, ScriptError> {
        self.assemble().run_where(t, false, within).await
    }
}

/// How long parc waits for a script that reads the host, possibly for ever
/// (see [`Assembled::run_read_only`]).
#[derive(Debug, Clone, Copy)]
pub struct Within<'a> {
    pub limit: Duration,
    /// The clock starts when the script prints this line, where its reads
    /// start after steps that may take their time (an apply's tests after
    /// its changes); `None`: when it is sent.
    pub from: Option<&'a str>,
}

impl Within<'_> {
    /// `limit` from the start, if any.
    pub fn whole(limit: Option<Duration>) -> Option<Within<'static>> {
        limit.map(|limit| Within { limit, from: None })
    }
}

/// What a script prints, written through to `inner`, waking `seen` once
/// `needle` (a whole line, newlines included) has gone by, wherever writes
/// cut it.
struct Watch<'a> {
    inner: &'a mut Capped,
    needle: Option<Vec<u8>>,
    /// The end of what went by, shorter than the needle.
    tail: Vec<u8>,
    seen: &'a tokio::sync::Notify,
}

impl<'a> Watch<'a> {
    /// Watching for the whole line `from`, if any.
    fn new(inner: &'a mut Capped, from: Option<&str>, seen: &'a tokio::sync::Notify) -> Self {
        Watch {
            inner,
            needle: from.map(|line| format!("\n{line}\n").into_bytes()),
            tail: Vec::new(),
            seen,
        }
    }
}

impl tokio::io::AsyncWrite for Watch<'_> {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let n = match std::pin::Pin::new(&mut *this.inner).poll_write(cx, buf) {
            std::task::Poll::Ready(Ok(n)) => n,
            other => return other,
        };
        if let Some(needle) = &this.needle {
            // Only the bytes the needle may straddle are copied: a buffer
            // as large as the writes (32 KiB) held by every host at once
            // cost the controller 1.5 MiB at 50 hosts.
            let written = &buf[..n];
            let keep = needle.len() - 1;
            let mut edge = std::mem::take(&mut this.tail);
            edge.extend_from_slice(&written[..written.len().min(keep)]);
            let has = |hay: &[u8]| hay.windows(needle.len()).any(|w| w == needle.as_slice());
            if has(&edge) || has(written) {
                this.seen.notify_one();
                this.needle = None;
            } else if written.len() >= keep {
                this.tail = written[written.len() - keep..].to_vec();
            } else {
                // `edge` is the last tail and all of this write.
                edge.drain(..edge.len().saturating_sub(keep));
                this.tail = edge;
            }
        }
        std::task::Poll::Ready(Ok(n))
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut *self.get_mut().inner).poll_shutdown(cx)
    }
}

/// Whether account or package `name` may reach a tool as an operand. One
/// starting with `-` would be read as an option where `--` cannot be put
/// before it (dnf 5 refuses `--`; a verification test's names are not
/// checked as a resource's are), and is no account's or package's name
/// (useradd and the package managers refuse them): it reads as absent.
fn operand(name: &str) -> bool {
    !name.starts_with('-')
}

/// What of a script's stderr is kept: messages of parc's own functions and
/// of the tools they run (a step's output is in its record).
const STDERR_MAX: usize = 1 << 20;

/// The most a script's output can hold, its host honest: what parc prints
/// of a script of `lines` body lines (records, fields, each step's output of
/// at most `PARC_OUT_MAX` bytes in lib.sh), and the closing tar of the
/// contents asked for, each at most its bound (`None`: none given, as only
/// tests ask). More comes only from a host whose files changed as they were
/// read, or that writes what parc does not: a local user could make a file
/// a probe reads grow to any size after its stat.
fn output_max(lines: usize, fetched: impl Iterator<Item = Option<u64>>) -> usize {
    /// Records and fields, whatever the script.
    const RECORDS: u64 = 16 << 20;
    /// A step's output, as `parc_blob_max` cuts it, with its frame.
    const STEP: u64 = (1 << 20) + 4096;
    /// A member of the closing tar, beside its content: its header and
    /// padding; and the archive's end.
    const MEMBER: u64 = 2048;
    const END: u64 = 20 * 512;
    let mut max = RECORDS + STEP.saturating_mul(lines as u64) + END;
    for bound in fetched {
        max = max.saturating_add(bound.unwrap_or(u64::MAX).saturating_add(MEMBER));
    }
    usize::try_from(max).unwrap_or(usize::MAX)
}

/// The index of `item` in `list`, pushed at its end when absent: a name or
/// path many ask about is read once, in the order first asked.
fn place(list: &mut Vec<String>, item: &str) -> usize {
    match list.iter().position(|p| p == item) {
        Some(at) => at,
        None => {
            list.push(item.to_string());
            list.len() - 1
        }
    }
}

/// What runs before the first change, in this order: the record of how to
/// remove the staged files, the staging, one sync of everything that must be
/// durable by then. Files that cannot be staged stop the script here.
fn barrier(
    staged: Option<&Result<Staged, std::io::Error>>,
    unstage_record: Option<&str>,
    durable: &[String],
    guard: Option<&str>,
) -> String {
    let mut barrier = String::new();
    // The guard again right before the first write under a guarded path
    // (the staging's tar) and before the first rename (the body): the
    // journal's copies and syncs since the script began leave a local user
    // time to turn a directory they own into a link.
    let guard = guard.unwrap_or_default();
    let mut sync: Vec<String> = durable.to_vec();
    if let Some(Err(e)) = staged {
        barrier.push_str(&format!(
            "echo {} >&2; exit 1\n",
            quote(&format!(
                "parc could not stage the files to install ({e}): nothing was changed"
            ))
        ));
    }
    if let Some(Ok(staged)) = staged {
        if let Some(path) = unstage_record {
            barrier.push_str(&format!(
                "printf '%s\\n' {} > {path} || exit 1\n",
                quote(&staged.remove)
            ));
            sync.push(path.to_string());
        }
        barrier.push_str(guard);
        barrier.push_str("parc_stage || { echo 'cannot write the files to install: nothing was changed' >&2; exit 1; }\n");
        sync.extend(staged.temps.iter().cloned());
    }
    if !sync.is_empty() {
        barrier.push_str(&format!(
            "sync -- {} 2>/dev/null || sync || {{ echo 'cannot sync: nothing was changed' >&2; exit 1; }}\n",
            sync.join(" ")
        ));
        barrier.push_str(guard);
    }
    barrier
}

/// The last line of every script sent: the bootstrap runs a script only if
/// it ends with it (see [`Assembled::command`]).
const SCRIPT_END: &str = "#parc-end";

/// A script laid out, with the bytes sent before it on stdin.
pub struct Assembled {
    /// The staging archive, first on stdin.
    archive: Payload,
    /// Bytes read by offset, after the archive.
    payload: Payload,
    /// The script, last on stdin: [`LIB`], these libraries (each followed by
    /// a newline), then `tail`. The libraries are sent from the binary's own
    /// copy: tens of KiB a host would otherwise hold twice while its script
    /// runs.
    libs: Vec<&'static str>,
    tail: String,
    /// What the probe's closing tar holds, and who asked for it: to hand
    /// each content to its record once the output is back.
    fetch: Vec<String>,
    wants: Vec<Want>,
    /// The most its output can hold ([`output_max`]).
    output_max: usize,
}

impl Assembled {
    /// The staging archive (empty when nothing is staged).
    pub fn archive(&self) -> &Payload {
        &self.archive
    }

    /// The bytes read by offset.
    pub fn payload(&self) -> &Payload {
        &self.payload
    }

    /// The exec command line, for a script making its own private
    /// directory (see [`Assembled::command_in`]).
    pub fn command(&self) -> String {
        self.command_in(None)
    }

    /// The exec command line: the login shell becomes `sh` (`exec`, no
    /// process), which takes its private directory (`dir`, made ahead and
    /// removed by the host lock, else one it makes with `mktemp -d` and
    /// removes on exit), reads the script off the end of stdin (saving the
    /// bytes before it there first) and runs it in itself (`eval`, no
    /// process): one reader of stdin (plus a `tail` when there is a
    /// payload), and with no `dir` the `mktemp` and `rm`, are the only
    /// processes the framing starts. The script runs only if it arrived
    /// whole (it ends with [`SCRIPT_END`]): a connection lost mid-transfer
    /// runs nothing. The command's length does not depend on the script, and
    /// the script never appears on a command line, where local users could
    /// read it.
    pub fn command_in(&self, dir: Option<&str>) -> String {
        Self::command_for(self.archive.len(), self.payload.len(), dir)
    }

    /// [`Assembled::command_in`] for a script after an archive and a payload
    /// of these lengths.
    fn command_for(archive: usize, payload: usize, dir: Option<&str>) -> String {
        let data_len = archive + payload;
        // In a directory the lock made, the exec also records its process
        // group and directory in the lock (with builtins), so that what a
        // script parc gave up on left running can be stopped when the lock
        // is released (`HostLock::release`). Not in `pgids`, whose every
        // group a takeover stops: a group recorded by an exec that ended long
        // ago may be someone else's by then.
        // The exec's process group, read before any library is loaded (so
        // not journal.sh's parc_pgid).
        let pg = "parc_pg=$$; read -r _ _ _ _ parc_pg _ 2>/dev/null </proc/$$/stat";
        let private = match dir {
            Some(dir) => format!(
                "PARC_DIR={}; [ -d \"$PARC_DIR\" ] || exit 111; {pg}; \
                 echo \"$parc_pg $PARC_DIR\" >>\"${{PARC_DIR%/*}}/execs\"",
                quote(dir)
            ),
            // Without a lock to record it, the exec records its process
            // group in its directory and says first where that is
            // ([`EXEC_DIR`]): given up on, it is stopped from there.
            None => format!(
                "PARC_DIR=$(mktemp -d \"${{TMPDIR:-/tmp}}/parc.XXXXXX\") || exit 111; \
                 trap 'rm -rf \"$PARC_DIR\"' EXIT; {pg}; \
                 echo \"$parc_pg\" >\"$PARC_DIR/pg\"; echo \"{EXEC_DIR} $PARC_DIR\""
            ),
        };
        // Without a payload, stdin is the script itself: no `tail` to cut it.
        let save = if data_len == 0 {
            "parc_boot=$(cat) || exit 111".to_string()
        } else {
            format!(
                "cat > \"$PARC_PAYLOAD\" && parc_boot=$(tail -c +{} \"$PARC_PAYLOAD\") || exit 111",
                data_len + 1
            )
        };
        let boot = format!(
            "{private}; \
             PARC_PAYLOAD=\"$PARC_DIR/payload\"; PARC_STASH={}; export PARC_DIR PARC_PAYLOAD PARC_STASH; \
             {save}; \
             case $parc_boot in *{SCRIPT_END}) ;; *) exit 111 ;; esac; \
             eval \"$parc_boot\"",
            archive,
        );
        format!("exec sh -c {}", quote(&boot))
    }

    /// The script as the host runs it, whole (snapshots show it).
    pub fn script(&self) -> String {
        let mut script = LIB.to_string();
        for lib in &self.libs {
            script.push_str(lib);
            script.push('\n');
        }
        script + &self.tail
    }

    /// What the command reads on stdin: archive, payload, script (ended by
    /// [`SCRIPT_END`]), as chunks that share the files' buffers and the
    /// libraries' text.
    fn stdin(archive: Payload, payload: Payload, libs: &[&'static str], tail: String) -> Payload {
        let mut stdin = archive;
        stdin.append(payload);
        stdin.push_static(LIB.as_bytes());
        for lib in libs {
            stdin.push_static(lib.as_bytes());
            stdin.push_static(b"\n");
        }
        // The script is held until the exec ends, by every host at once:
        // `format!` here doubled its buffer when it appended the end marker,
        // so each host held twice the script (about 130 KiB a host for
        // `mixed`). Grown once, to the size it ends with.
        let mut script = tail;
        script.reserve_exact(SCRIPT_END.len() + 2);
        script.push('\n');
        script.push_str(SCRIPT_END);
        script.push('\n');
        stdin.push(script.into_bytes());
        stdin
    }

    /// The command line and what it reads on stdin.
    pub fn into_exec(self) -> (String, Payload) {
        let command = self.command();
        (
            command,
            Self::stdin(self.archive, self.payload, &self.libs, self.tail),
        )
    }

    /// Send the script in ONE exec and parse its framed output.
    pub async fn run(self, t: &dyn Transport) -> Result<ScriptOutput, ScriptError> {
        self.run_where(t, false, None).await
    }

    /// [`Assembled::run`] for a script that changes nothing (a probe): run in
    /// a shell the transport holds when it has one ([`Transport::run_held`]),
    /// which saves the host a session. Past `within`, parc stops waiting
    /// ([`ScriptError::TimedOut`]) and tells the transport, which stops what
    /// the script left running when its lock is released: a read that never
    /// ends (a hung network mount, a file a local user swapped for a FIFO, a
    /// guard command that waits forever) must not hold the host's lock and
    /// its batch for good.
    pub async fn run_read_only(
        self,
        t: &dyn Transport,
        within: Option<Duration>,
    ) -> Result<ScriptOutput, ScriptError> {
        self.run_where(t, true, Within::whole(within)).await
    }

    async fn run_where(
        self,
        t: &dyn Transport,
        read_only: bool,
        within: Option<Within<'_>>,
    ) -> Result<ScriptOutput, ScriptError> {
        let data = (self.archive.len(), self.payload.len());
        // A held shell takes no stdin: only a script without data before it.
        let held = read_only && data == (0, 0);
        let Assembled {
            archive,
            payload,
            libs,
            tail,
            fetch,
            wants,
            output_max,
        } = self;
        let stdin = Self::stdin(archive, payload, &libs, tail);
        // The private directory of a script run in an exec of its own: what
        // the transport is told when the script is given up on.
        let mut dir = None;
        let seen = tokio::sync::Notify::new();
        // Outside the run, to be read when the run is given up on.
        let (mut stdout, mut stderr) = (
            Capped::new(output_max.saturating_add(1)),
            Capped::new(STDERR_MAX),
        );
        enum Ran {
            Held(Output),
            Exec(ExitStatus),
        }
        let ran = async {
            if held && let Some(out) = t.run_held(stdin.chunks(), output_max).await {
                return out.map(Ran::Held);
            }
            dir = t.private_dir();
            let command = Self::command_for(data.0, data.1, dir.as_deref());
            let mut watch = Watch::new(&mut stdout, within.and_then(|w| w.from), &seen);
            let status = t
                .exec_shared(&command, stdin.chunks(), &mut watch, &mut stderr)
                .await?;
            Ok(Ran::Exec(status))
        };
        let out = match within {
            None => Ok(ran.await),
            Some(w) => {
                let clock = async {
                    if w.from.is_some() {
                        seen.notified().await;
                    }
                    tokio::time::sleep(w.limit).await;
                };
                tokio::select! {
                    out = ran => Ok(out),
                    () = clock => Err(w.limit),
                }
            }
        };
        let out = match out {
            Ok(Ok(Ran::Held(out))) => out,
            Ok(Ok(Ran::Exec(status))) => Output {
                status,
                stdout: stdout.into_kept().bytes,
                stderr: stderr.into_kept().bytes,
            },
            Ok(Err(e)) => return Err(e.into()),
            Err(limit) => {
                t.gave_up(dir.as_deref());
                // An exec without a directory the lock knows (no lock: `parc
                // verify`) said where it works: what it left running is
                // stopped now, or nothing would ever stop it.
                if let Some(own) = exec_dir(&stdout.into_kept().bytes) {
                    let stop = crate::journal::stop_recorded_group(&own);
                    crate::journal::run_stop(t, &stop).await;
                }
                return Err(ScriptError::TimedOut {
                    secs: limit.as_secs(),
                });
            }
        };
        drop(stdin);
        if out.stdout.len() > output_max {
            return Err(ScriptError::TooLong { max: output_max });
        }
        let (mut records, archive) = parse(&out.stdout)?;
        let files = archive.map(read_fetched).unwrap_or_default();
        for want in wants {
            let name = fetch[want.fetched].trim_start_matches('/');
            // Another resource may have fetched a file too large for this one.
            let fits = |d: &Vec<u8>| want.max.is_none_or(|m| d.len() as u64 <= m);
            if let Some(data) = files.get(name).filter(|d| fits(d)) {
                records
                    .entry(want.id)
                    .or_default()
                    .blobs
                    .insert(want.key, data.clone());
            }
        }
        Ok(ScriptOutput {
            status: out.status,
            records,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// The line an exec without a lock's directory prints first: where it
/// works, and where it recorded its process group (`pg`).
const EXEC_DIR: &str = "@@dir";

/// The directory an exec said it works in ([`EXEC_DIR`]), from what it
/// printed before its first record: the last such line (a login shell's
/// noise comes before it), only a `mktemp -d` name.
fn exec_dir(stdout: &[u8]) -> Option<String> {
    let before = stdout
        .split(|&b| b == b'\n')
        .take_while(|l| !l.starts_with(b"@@r ") && !l.starts_with(b"@@done "));
    let dir = before
        .filter_map(|l| l.strip_prefix(format!("{EXEC_DIR} ").as_bytes()))
        .last()?;
    let dir = std::str::from_utf8(dir).ok()?;
    let name = dir.rsplit('/').next()?;
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-');
    (dir.starts_with('/') && name.starts_with("parc.") && dir.chars().all(plain))
        .then(|| dir.to_string())
}

/// The records of one script's output, by id.
pub type Records = BTreeMap<String, Record>;

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

/// The contents `parc_fetch` sent, by member name (the path without its
/// leading `/`). Hard links (tar stores a second name of one file as a link to
/// the first) get the first one's bytes.
fn read_fetched(archive: &[u8]) -> std::collections::HashMap<String, Vec<u8>> {
    use std::io::Read;
    let mut files = std::collections::HashMap::new();
    let mut links = Vec::new();
    let mut ar = tar::Archive::new(archive);
    let Ok(entries) = ar.entries() else {
        return files;
    };
    for entry in entries {
        let Ok(mut entry) = entry else { break };
        let Ok(name) = entry.path().map(|p| p.to_string_lossy().into_owned()) else {
            continue;
        };
        match entry.header().entry_type() {
            tar::EntryType::Regular => {
                let mut data = Vec::new();
                if entry.read_to_end(&mut data).is_ok() {
                    files.insert(name, data);
                }
            }
            tar::EntryType::Link => {
                if let Ok(Some(target)) = entry.link_name() {
                    links.push((name, target.to_string_lossy().into_owned()));
                }
            }
            _ => {}
        }
    }
    for (name, target) in links {
        if let Some(data) = files.get(&target).cloned() {
            files.insert(name, data);
        }
    }
    files
}

/// Output parc cannot trust: a frame broken or repeated, or a line that is
/// neither a frame nor a field. Targets are hostile (a local user names files and link targets,
/// and writes the files parc reads), so such output is refused whole rather
/// than read with "the last value wins".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("record {0} appears twice")]
    DuplicateRecord(String),
    #[error("record {record}: {key} appears twice")]
    DuplicateKey { record: String, key: String },
    #[error("record {record}: a line that is neither a field nor a frame")]
    Unframed { record: String },
    #[error("a frame line is malformed")]
    BadFrame,
    #[error("blob {key} is cut short")]
    ShortBlob { key: String },
}

/// Why a script's output could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// The connection or the exec failed: the script may or may not have run.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The script ran but printed what parc cannot trust; nothing of it is used.
    #[error(
        "the host's output was refused ({0}): a value read on the host may have tried to pass for parc's own output"
    )]
    Frame(#[from] FrameError),
    /// The script printed more than it can: a file it read grew while it
    /// was read, or the host writes what parc does not.
    #[error(
        "the host sent more than the {max} bytes this script can print (a file it read grew while it was read?): parc stopped keeping it, and nothing of it is used"
    )]
    TooLong { max: usize },
    /// The script, which only reads the host, ran past its time
    /// (`--read-timeout`); parc stopped waiting for it.
    #[error("it did not finish within {secs} s (--read-timeout)")]
    TimedOut { secs: u64 },
}

/// The value of a field line, unescaped (see `parc_kv` in lib.sh): `\\` is a
/// backslash, `\n` a newline. A backslash before anything else is kept as it
/// is: parc_kv never writes one, so it can only be data a fixed `echo` let
/// through, and stays what it was. Lines are split before this
/// runs, so no value can add a field or a record whatever it holds.
fn unescape(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    let mut it = v.iter();
    while let Some(&b) = it.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match it.next() {
            Some(b'\\') => out.push(b'\\'),
            Some(b'n') => out.push(b'\n'),
            Some(&other) => out.extend([b'\\', other]),
            None => out.push(b'\\'),
        }
    }
    out
}

/// Parse framed output: the records, and the tar archive that follows an
/// `@@tar` line (the rest of the output). Lines before the first frame are
/// ignored (a noisy login shell must not break parc); once a record has
/// started, every line must be a frame or a field, each key and record once.
pub fn parse(out: &[u8]) -> Result<(Records, Option<&[u8]>), FrameError> {
    let mut records: BTreeMap<String, Record> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut pos = 0;
    while pos < out.len() {
        let end = out[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(out.len(), |i| pos + i);
        let raw = &out[pos..end];
        pos = end + 1;
        if raw == b"@@tar" {
            return Ok((records, Some(&out[pos.min(out.len())..])));
        }
        let line = String::from_utf8_lossy(raw);
        if let Some(id) = line.strip_prefix("@@r ") {
            if records.contains_key(id) {
                return Err(FrameError::DuplicateRecord(id.to_string()));
            }
            records.insert(id.to_string(), Record::default());
            current = Some(id.to_string());
        } else if let Some(rest) = line.strip_prefix("@@done ") {
            let (id, rc) = rest.split_once(' ').ok_or(FrameError::BadFrame)?;
            let rc = crate::numbers::exit_code(rc).ok_or(FrameError::BadFrame)?;
            let record = records.entry(id.to_string()).or_default();
            if record.rc.replace(rc).is_some() {
                return Err(FrameError::DuplicateRecord(id.to_string()));
            }
            current = Some(id.to_string());
        } else if let Some(rest) = line.strip_prefix("@@blob ") {
            let (key, len) = rest.rsplit_once(' ').ok_or(FrameError::BadFrame)?;
            let len: usize = len.parse().map_err(|_| FrameError::BadFrame)?;
            let id = current.as_ref().ok_or(FrameError::BadFrame)?;
            let data = out
                .get(pos..pos.saturating_add(len))
                .ok_or_else(|| FrameError::ShortBlob { key: key.into() })?;
            pos += len + 1; // the newline after the blob
            let blobs = &mut records.entry(id.clone()).or_default().blobs;
            if blobs.insert(key.to_string(), data.to_vec()).is_some() {
                return Err(FrameError::DuplicateKey {
                    record: id.clone(),
                    key: key.into(),
                });
            }
        } else if let Some(id) = &current {
            let eq = raw.iter().position(|&b| b == b'=');
            let Some(eq) = eq.filter(|&i| i > 0 && !raw.starts_with(b"@@")) else {
                return Err(FrameError::Unframed { record: id.clone() });
            };
            let key = String::from_utf8_lossy(&raw[..eq]).into_owned();
            let value = unescape(&raw[eq + 1..]);
            let fields = &mut records.entry(id.clone()).or_default().fields;
            if fields
                .insert(key.clone(), String::from_utf8_lossy(&value).into_owned())
                .is_some()
            {
                return Err(FrameError::DuplicateKey {
                    record: id.clone(),
                    key,
                });
            }
        }
    }
    Ok((records, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where an exec without a lock works, as it says before its records:
    /// a login shell's noise before it is passed over, a line after the
    /// first record is not it, and only a `mktemp -d` name is taken (the
    /// stop acts on it as root).
    #[test]
    fn an_exec_says_where_it_works_before_its_records() {
        let said = b"motd @@dir /etc\n@@dir /tmp/parc.old\n@@dir /tmp/parc.Ab3x9Z\n@@r 0\n";
        assert_eq!(exec_dir(said).as_deref(), Some("/tmp/parc.Ab3x9Z"));
        assert_eq!(exec_dir(b"@@r 0\n@@dir /tmp/parc.Ab3x9Z\n"), None);
        for bad in ["/etc", "/tmp/parc.a b", "tmp/parc.x", "/tmp/parc.x;rm"] {
            let line = format!("@@dir {bad}\n");
            assert_eq!(exec_dir(line.as_bytes()), None, "{bad}");
        }
    }

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
        let (r, archive) = parse(out).unwrap();
        assert_eq!(archive, None);
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
        std::os::unix::fs::symlink(" two\nlines ", d.join("odd link")).unwrap();
        let names = [
            "plain",
            "missing",
            "new\nline",
            "sub dir",
            "back\\slash",
            "link",
            "plain",
            "odd link",
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

    /// Paths made, removed or replaced between the batched stat and their
    /// reading (a local user may, while the probe runs) are read on their
    /// own, and every other path still gets its own line: none gets the
    /// mode, owner or size of another.
    #[tokio::test]
    async fn paths_changed_after_the_batch_take_no_others_line() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (name, mode) in [
            ("a", 0o600),
            ("gone", 0o640),
            ("b", 0o604),
            ("swapped", 0o644),
            ("c", 0o700),
        ] {
            std::fs::write(d.join(name), name).unwrap();
            std::fs::set_permissions(d.join(name), std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let names = ["a", "made", "gone", "b", "swapped", "c"];
        let path = |n: &str| d.join(n).to_str().unwrap().to_string();
        let mut s = Script::new();
        s.sh(&format!(
            "echo made > {}; chmod 666 {}; rm {}; rm {}; mkdir {}",
            quote(&path("made")),
            quote(&path("made")),
            quote(&path("gone")),
            quote(&path("swapped")),
            quote(&path("swapped"))
        ));
        for (i, name) in names.iter().enumerate() {
            let batched = s.stat(&path(name));
            s.sh(&format!(
                "echo '@@r a{i}'; {batched}; echo '@@r b{i}'; parc_stat {}",
                quote(&path(name))
            ));
        }
        let out = s.run(&LocalTransport).await.unwrap();
        assert!(out.status.success(), "{}", out.stderr);
        for (i, name) in names.iter().enumerate() {
            let (a, b) = (
                &out.records[&format!("a{i}")],
                &out.records[&format!("b{i}")],
            );
            assert_eq!(a, b, "{name}");
        }
        assert_eq!(out.records["a5"].get("mode"), Some("700"));
        assert_eq!(out.records["a1"].get("mode"), Some("666"));
    }

    fn sha(data: &[u8]) -> String {
        crate::content::sha256_hex(data)
    }

    #[tokio::test]
    async fn put_installs_payload_slices_atomically() {
        // With GNU dd's byte slicing, and with tail | head as busybox does it.
        for dd in [
            "parc_dd_probe; [ \"$PARC_DD\" = 1 ] || exit 9",
            "parc_dd_probe() { PARC_DD=0; }",
        ] {
            put_once(dd).await;
        }
    }

    async fn put_once(dd: &str) {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a file");
        let b = dir.path().join("b$(touch pwned)");
        let mut s = Script::new();
        let put_a = s.put(
            &crate::content::Content::shared(b"first\n"),
            a.to_str().unwrap(),
            Some(0o600),
            None,
            None,
            None,
        );
        let put_b = s.put(
            &crate::content::Content::shared(b"\x00binary\xff"),
            b.to_str().unwrap(),
            None,
            None,
            None,
            None,
        );
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

    /// Files staged by one tar (or one dd each, on a host without tar) land
    /// with their mode, in the nearest existing directory above them, and are
    /// renamed by their step; the staged copy of a step that never ran is
    /// removed on exit.
    #[tokio::test]
    async fn staged_puts_install_through_the_nearest_existing_directory() {
        for no_tar in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().to_str().unwrap();
            let made = format!("{root}/new dir/sub");
            let a = format!("{made}/a$(touch pwned)");
            let b = format!("{root}/b\nline");
            let c = format!("{root}/never");
            let mut s = Script::new();
            let put_a = s.put(
                &crate::content::Content::shared(b"\x00a\xff"),
                &a,
                Some(0o640),
                None,
                None,
                Some(root),
            );
            let put_b = s.put(
                &crate::content::Content::shared(b"b"),
                &b,
                Some(0o4755),
                Some("root"),
                None,
                Some(root),
            );
            let put_c = s.put(
                &crate::content::Content::shared(b"c"),
                &c,
                None,
                None,
                None,
                Some(root),
            );
            for put in [&put_a, &put_b, &put_c] {
                assert!(put.starts_with("parc_mv "), "{put}");
            }
            if no_tar {
                s.setup("tar() { return 1; }");
            }
            s.setup(&format!(
                "step_0() {{ mkdir -p {m}; {put_a}; }}\nstep_1() {{ {put_b}; }}\nstep_2() {{ false; }}\nstep_3() {{ {put_c}; }}",
                m = quote(&made)
            ));
            s.sh("parc_step 0 step_0; parc_step 1 step_1; parc_step 2 step_2; parc_step 3 step_3");
            let out = s.run(&LocalTransport).await.unwrap();
            assert_eq!(out.records["1"].rc, Some(0), "{}", out.stderr);
            assert_eq!(out.records["2"].rc, Some(1));
            assert_eq!(std::fs::read(&a).unwrap(), b"\x00a\xff");
            assert_eq!(std::fs::read(&b).unwrap(), b"b");
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &str| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
            assert_eq!(mode(&a), 0o640);
            assert_eq!(mode(&b), 0o4755);
            assert!(!std::path::Path::new(&c).exists());
            assert_no_temps(root);
            assert!(!dir.path().join("pwned").exists());
        }
    }

    /// A run of file-installing steps renames the files bound for one
    /// directory with one `mv`; a file written twice keeps the last write,
    /// and a missing directory is reported by its own step.
    #[tokio::test]
    async fn a_run_renames_files_of_one_directory_together() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap();
        let d = format!("{root}/d");
        std::fs::create_dir(&d).unwrap();
        let mut s = Script::new();
        let from = s.staged();
        let puts = [
            (format!("{d}/a"), "a"),
            (format!("{d}/b 'q'"), "b"),
            (format!("{d}/c"), "c1"),
            (format!("{d}/c"), "c2"),
            (format!("{root}/missing/x"), "x"),
        ];
        let mut steps = String::new();
        for (n, (dest, data)) in puts.iter().enumerate() {
            let stage = if dest.contains("missing") { root } else { &d };
            let put = s.put(
                &crate::content::Content::shared(data.as_bytes()),
                dest,
                None,
                None,
                None,
                Some(stage),
            );
            steps.push_str(&format!("step_{n}() {{\n{put}\n}}\n"));
        }
        let batch = s.rename_together(from..s.staged()).unwrap();
        s.setup(&steps);
        s.sh(&batch);
        for n in 0..puts.len() {
            s.sh(&format!("parc_step_plain {n} step_{n}"));
        }
        let out = s.run(&LocalTransport).await.unwrap();
        for n in 0..4 {
            assert_eq!(out.records[&n.to_string()].rc, Some(0), "{}", out.stderr);
        }
        assert_eq!(out.records["4"].rc, Some(1));
        assert_eq!(std::fs::read_to_string(format!("{d}/a")).unwrap(), "a");
        assert_eq!(std::fs::read_to_string(format!("{d}/b 'q'")).unwrap(), "b");
        assert_eq!(std::fs::read_to_string(format!("{d}/c")).unwrap(), "c2");
        assert_no_temps(root);
        assert_no_temps(&d);
    }

    /// Links are staged and renamed over what stands there, never removed
    /// first: over a link to a directory (not into that directory), over a
    /// regular file, alone or in a run with files; targets land byte for
    /// byte, long ones too, with or without tar.
    #[tokio::test]
    async fn staged_links_replace_what_stands_there_in_one_rename() {
        for no_tar in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().to_str().unwrap();
            let d = format!("{root}/d");
            std::fs::create_dir_all(format!("{root}/old dir")).unwrap();
            std::fs::create_dir(&d).unwrap();
            std::os::unix::fs::symlink(format!("{root}/old dir"), format!("{d}/to dir")).unwrap();
            std::fs::write(format!("{d}/was file"), "x").unwrap();
            let long = format!("/{}//x/", "long component/".repeat(10));
            let links = [
                (format!("{d}/to dir"), "new//target/".to_string()),
                (format!("{d}/was file"), long.clone()),
                (format!("{root}/alone $(touch pwned)"), "../a'b".to_string()),
            ];
            let mut s = Script::new();
            if no_tar {
                s.setup("tar() { return 1; }");
            }
            let from = s.staged();
            let mut steps = String::new();
            let put = s.put(
                &crate::content::Content::shared(b"f"),
                &format!("{d}/file"),
                None,
                None,
                None,
                Some(&d),
            );
            steps.push_str(&format!("step_0() {{\n{put}\n}}\n"));
            for (n, (dest, target)) in links.iter().enumerate() {
                let stage = if dest.contains("alone") { root } else { &d };
                let line = s.link(target, dest, Some(stage));
                assert!(line.starts_with("parc_ln "), "{line}");
                steps.push_str(&format!("step_{}() {{\n{line}\n}}\n", n + 1));
            }
            let batch = s.rename_together(from..s.staged()).unwrap();
            s.setup(&steps);
            s.sh(&batch);
            for n in 0..=links.len() {
                s.sh(&format!("parc_step_plain {n} step_{n}"));
            }
            let out = s.run(&LocalTransport).await.unwrap();
            for n in 0..=links.len() {
                assert_eq!(out.records[&n.to_string()].rc, Some(0), "{}", out.stderr);
            }
            for (dest, target) in &links {
                let got = std::fs::read_link(dest).unwrap();
                assert_eq!(got.to_str().unwrap(), target, "{dest} (no tar: {no_tar})");
            }
            assert_eq!(std::fs::read_to_string(format!("{d}/file")).unwrap(), "f");
            assert_eq!(
                std::fs::read_dir(format!("{root}/old dir"))
                    .unwrap()
                    .count(),
                0,
                "nothing lands in the directory the old link pointed at"
            );
            assert_no_temps(root);
            assert_no_temps(&d);
            assert!(!dir.path().join("pwned").exists());
        }
    }

    /// The batched chmod leaves a link alone (chmod would follow it): it
    /// sets the variables of the paths it changed, and only theirs.
    #[tokio::test]
    async fn a_batched_chmod_never_follows_a_link() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let d = |p: &str| dir.path().join(p).to_str().unwrap().to_string();
        std::fs::write(d("f x"), "f").unwrap();
        std::fs::write(d("target"), "t").unwrap();
        std::fs::set_permissions(d("target"), std::fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::symlink(d("target"), d("link")).unwrap();
        let mut s = Script::new();
        s.sh(&format!(
            "parc_chmod_all 600 A {} B {}\necho \"@@r vars\"; echo \"a=${{A:-}}\"; echo \"b=${{B:-}}\"",
            quote(&d("f x")),
            quote(&d("link"))
        ));
        let out = s.run(&LocalTransport).await.unwrap();
        assert_eq!(out.records["vars"].get("a"), Some("1"), "{}", out.stderr);
        assert_eq!(out.records["vars"].get("b"), Some(""));
        let mode = |p: &str| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&d("f x")), 0o600);
        assert_eq!(mode(&d("target")), 0o644, "the link was followed");
    }

    fn assert_no_temps(dir: &str) {
        let left: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".parc-tmp"))
            .collect();
        assert!(left.is_empty(), "temp files left in {dir}: {left:?}");
    }

    /// Contents asked for come back in one tar, each file once, hard links
    /// and odd names included; absent, special and too large files give no
    /// blob.
    #[tokio::test]
    async fn blobs_come_back_in_one_tar() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("plain"), b"x\n").unwrap();
        std::fs::write(d.join("new\nline 'q'"), b"\x00y").unwrap();
        std::fs::write(d.join("big"), vec![b'z'; 100]).unwrap();
        std::fs::hard_link(d.join("plain"), d.join("hard")).unwrap();
        let p = |n: &str| d.join(n).to_str().unwrap().to_string();
        let mut s = Script::new();
        let asks = [
            ("0", p("plain"), None),
            ("1", p("new\nline 'q'"), None),
            ("2", p("plain"), None),
            ("3", p("hard"), None),
            ("4", p("missing"), None),
            ("5", p("big"), Some(99)),
            ("6", p("big"), Some(100)),
            ("7", "/dev/null".to_string(), None),
        ];
        for (id, path, max) in &asks {
            let stat = s.stat(path);
            let blob = s.blob(id, "content", path, *max);
            s.sh(&format!("echo '@@r {id}'; {stat}; {blob}"));
        }
        let out = s.run(&LocalTransport).await.unwrap();
        assert!(out.status.success(), "{}", out.stderr);
        let blob = |id: &str| out.records[id].blobs.get("content").cloned();
        assert_eq!(blob("0").as_deref(), Some(&b"x\n"[..]));
        assert_eq!(blob("1").as_deref(), Some(&b"\x00y"[..]));
        assert_eq!(blob("2"), blob("0"));
        assert_eq!(blob("3"), blob("0"));
        assert_eq!(blob("4"), None);
        assert_eq!(blob("5"), None);
        assert_eq!(blob("6").map(|b| b.len()), Some(100));
        assert_eq!(blob("7"), None);
        assert_eq!(out.records["6"].get("type"), Some("file"));
    }

    /// A file that grows after its stat (a local user's doing) past what
    /// the script can print makes the script fail, its output unused, and
    /// costs the controller that bound, not the file.
    #[tokio::test]
    async fn a_file_growing_after_its_stat_is_not_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grows.conf").display().to_string();
        std::fs::write(&path, "a=1\n").unwrap();
        let mut s = Script::new();
        let stat = s.stat(&path);
        let blob = s.blob("0", "content", &path, Some(100));
        s.sh(&format!(
            "echo '@@r 0'; {stat}; {blob}; truncate -s +64M {}",
            quote(&path)
        ));
        match s.run(&LocalTransport).await {
            Err(ScriptError::TooLong { max }) => assert!(max < 32 << 20, "{max}"),
            other => panic!("{other:?}"),
        }
    }

    /// A link planted above a guarded path after the probe stops the script
    /// before its first line writes anything; `parc_unsafe` names the first
    /// link, and a directory another user owns only when there is no link.
    #[tokio::test]
    async fn a_link_above_a_guarded_path_stops_the_script() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("real")).unwrap();
        std::os::unix::fs::symlink(d.join("real"), d.join("link")).unwrap();
        let mut s = Script::new();
        s.guard(&format!("{}/plain/x", d.display()));
        s.guard(&format!("{}//link/sub/x", d.display()));
        s.sh(&format!(
            "touch {}",
            quote(&format!("{}/written", d.display()))
        ));
        let out = s.run(&LocalTransport).await.unwrap();
        assert!(!out.status.success());
        assert!(
            out.stderr.contains(&format!(
                "unsafe path: {}/link is now a symbolic link",
                d.display()
            )),
            "{}",
            out.stderr
        );
        assert!(!d.join("written").exists());

        let mut s = Script::new();
        s.guard(&format!("{}/real/x", d.display()));
        s.sh(&format!(
            "parc_rec 0; parc_path_check {}",
            quote(&format!("{}/link/real/x", d.display()))
        ));
        let out = s.run(&LocalTransport).await.unwrap();
        assert!(out.status.success(), "{}", out.stderr);
        assert_eq!(out.records["0"].get("unsafe_why"), Some("link"));
    }

    /// A directory its group or everyone may write in without the sticky bit
    /// is named, by the mode one `stat` read for all paths, or by its own
    /// `stat` when that one failed; a sticky one is not.
    #[tokio::test]
    async fn directories_others_may_write_in_are_named() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        for (name, mode) in [("open", 0o777), ("team", 0o2775), ("sticky", 0o1777)] {
            let p = dir.path().join(name).join("sub");
            std::fs::create_dir_all(&p).unwrap();
            std::fs::set_permissions(dir.path().join(name), PermissionsExt::from_mode(mode))
                .unwrap();
        }
        for fallback in [false, true] {
            let mut s = Script::new();
            for (id, name) in ["open", "team", "sticky"].iter().enumerate() {
                if fallback && id == 0 {
                    s.sh("PARC_OPEN_N=-1");
                }
                let check = s.path_check(&format!("{d}/{name}/sub/x"));
                s.sh(&format!("parc_rec {id}; {check}"));
            }
            let out = s.run(&LocalTransport).await.unwrap();
            assert!(out.status.success(), "{}", out.stderr);
            let got = |id: &str| {
                let r = &out.records[id];
                (r.get("unsafe").map(str::to_string), r.get("unsafe_why"))
            };
            assert_eq!(got("0"), (Some(format!("{d}/open")), Some("others")));
            assert_eq!(got("1"), (Some(format!("{d}/team")), Some("group")));
            assert_eq!(got("2"), (None, None), "fallback: {fallback}");
        }
    }

    /// A user's ~/.ssh is read from inside it, entered by `parc_walk`: once a
    /// link stands there (the user swapped it for one to a root directory
    /// holding a file of the same name), nothing is read, and the probe's
    /// working directory is as it was. The link is in a directory of the
    /// user's (uid 65534 here: run as root, as the tests are).
    #[tokio::test]
    async fn a_directory_swapped_for_a_link_is_not_read_through() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        for (name, text) in [("home/.ssh", "mine\n"), ("root", "root's\n")] {
            std::fs::create_dir_all(dir.path().join(name)).unwrap();
            std::fs::write(dir.path().join(name).join("authorized_keys"), text).unwrap();
        }
        std::fs::create_dir_all(dir.path().join("swapped")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("root"), dir.path().join("swapped/.ssh"))
            .unwrap();
        std::os::unix::fs::chown(dir.path().join("swapped"), Some(65534), Some(65534))
            .expect("the tests run as root");
        let mut s = Script::new();
        for (id, home) in ["home", "swapped"].iter().enumerate() {
            let capture = s.capture(&id.to_string(), "keys", 100);
            s.sh(&format!(
                "parc_rec {id}; cd /; parc_copy_walked {} {capture} 100 && parc_kv read yes; parc_kv cwd \"$PWD\"",
                quote(&format!("{d}/{home}/.ssh/authorized_keys"))
            ));
        }
        let out = s.run(&LocalTransport).await.unwrap();
        assert!(out.status.success(), "{}", out.stderr);
        assert_eq!(
            out.records["0"].blobs.get("keys").map(Vec::as_slice),
            Some(&b"mine\n"[..])
        );
        assert_eq!(out.records["0"].get("cwd"), Some("/"));
        assert_eq!(out.records["1"].get("read"), None);
        assert!(!out.records["1"].blobs.contains_key("keys"));
        assert_eq!(out.records["1"].get("cwd"), Some("/"));
    }

    /// A value read on the host cannot end its field or start a record.
    #[tokio::test]
    async fn values_are_escaped_and_frames_cannot_repeat() {
        let mut s = Script::new();
        let values = ["a\nb", "a\n@@r 1\ntype=dir", "back\\n\\", "trail\n\n", ""];
        for (i, v) in values.iter().enumerate() {
            s.sh(&format!("parc_kv v{i} {}", quote(v)));
        }
        s.setup("parc_rec 0");
        let out = s.run(&LocalTransport).await.unwrap();
        for (i, v) in values.iter().enumerate() {
            assert_eq!(out.records["0"].get(&format!("v{i}")), Some(*v));
        }
        assert_eq!(out.records.len(), 1);
        for forged in [
            &b"@@r 0\nk=1\n@@r 0\n"[..],
            b"@@r 0\nk=1\nk=2\n",
            b"@@r 0\nnot a field\n",
            b"@@r 0\n@@blob b 10\nshort\n",
            b"@@done 0 0\n@@done 0 1\n",
        ] {
            assert!(
                parse(forged).is_err(),
                "{}",
                String::from_utf8_lossy(forged)
            );
        }
        assert!(parse(b"login banner\n@@r 0\nk=1\n").is_ok());
    }

    /// A step's output reaches the controller cut at 1 MiB, with its size.
    #[tokio::test]
    async fn a_chatty_step_is_cut_at_a_mebibyte() {
        let mut s = Script::new();
        s.sh("step_0() { head -c 3145728 /dev/zero; }\nstep_1() { echo short; }");
        s.sh("parc_step 0 step_0; parc_step 1 step_1");
        let out = s.run(&LocalTransport).await.unwrap();
        assert!(out.status.success(), "{}", out.stderr);
        assert_eq!(out.records["0"].blobs["out"].len(), 1 << 20);
        assert_eq!(out.records["0"].get("out_cut_from"), Some("3145728"));
        assert_eq!(out.records["1"].blobs["out"], b"short\n");
        assert_eq!(out.records["1"].get("out_cut_from"), None);
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

    /// The clock of an apply's tests starts at its first test's record,
    /// wherever the exec's writes cut it, and not at a line that only
    /// starts like it.
    #[tokio::test]
    async fn a_watched_line_is_seen_across_writes_and_only_whole() {
        use tokio::io::AsyncWriteExt;
        let seen = tokio::sync::Notify::new();
        let mut out = Capped::new(1024);
        let mut watch = Watch::new(&mut out, Some("@@r v0"), &seen);
        for piece in ["@@r 0\nx=1\n@@r v0x\n", "@@r v", "0", "\nend=yes\n"] {
            watch.write_all(piece.as_bytes()).await.unwrap();
            let now = tokio::time::timeout(Duration::ZERO, seen.notified()).await;
            assert_eq!(now.is_ok(), piece == "\nend=yes\n", "after {piece:?}");
        }
        assert_eq!(
            out.into_kept().bytes,
            b"@@r 0\nx=1\n@@r v0x\n@@r v0\nend=yes\n"
        );
        // Cut between two large writes.
        let mut out = Capped::new(1024);
        let mut watch = Watch::new(&mut out, Some("@@r v0"), &seen);
        let first = format!("{}\n@@r v", "x".repeat(100));
        watch.write_all(first.as_bytes()).await.unwrap();
        assert!(watch.tail.len() < 8);
        watch.write_all(b"0\nend=yes\n").await.unwrap();
        assert!(
            tokio::time::timeout(Duration::ZERO, seen.notified())
                .await
                .is_ok()
        );
    }
}
