//! The per-host lock: one operator rolls out to a machine at a time.
//!
//! Architecture note: the lock is a directory `/var/lib/parc/lock` created
//! atomically with `mkdir`, owned by a small sh process that stays on the
//! host for the whole run, blocked reading its stdin over one SSH channel.
//! While that process lives the lock is held; if the controller dies, the
//! connection drops, the process exits without releasing, and the lock is
//! *stale*: reported to the next operator with who held it, and breakable
//! with `--break-lock`. A clean release also appends the run's line to
//! `/var/lib/parc/history.log`, so neither costs an extra round trip. The
//! lock directory also holds the private directories of the run's scripts,
//! made with it and removed with it ([`HostLock::transport`]).
//!
//! Once the lock is held, its shell reads commands from stdin: the release
//! (`parc_release`), and, where that shell runs what comes as it comes (dash
//! and busybox `.` a pipe block by block; bash waits for its end, and gets
//! only the release, line by line), the run's read-only scripts: the probe
//! runs there as a subshell instead of in a session of its own (a fork of
//! sshd, a login shell, `sh` and the bootstrap's `cat` on the host). A
//! subshell parses whole before it runs, so a script cut short by a lost
//! connection runs nothing; its output ends at a line naming a nonce drawn
//! for that run, which nothing on the host can read ([`Held::run`]). Scripts
//! that change the host keep their own sessions: what stops an apply (the
//! dead-man watchdog, a takeover) stops its process group.
//!
//! A read-only script that runs past `--read-timeout` is given up on
//! ([`Transport::gave_up`]): in the lock's shell, it leaves that shell
//! `busy`, deaf to the release; in an exec of its own, it leaves its private
//! directory, by which the process group it recorded in `$L/execs` is found.
//! [`HostLock::release`] then first stops those groups from an exec of its
//! own, which also releases the lock when the lock's shell was among them.

use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};
use tokio::task::JoinHandle;

use crate::events::{Event, Events};
use crate::journal::STATE_DIR;
use crate::transport::{
    Capped, Chunk, Chunks, ExitStatus, Kept, Output, Transport, TransportError, quote,
};

/// Exit codes of the lock script.
const HELD: u32 = 75;
const STALE: u32 = 76;
const FAILED: u32 = 77;

/// Printed by the lock script, before `locked`, when it took over a stale
/// lock: what it did about the interrupted run's processes.
const TAKEOVER: &str = "@@takeover ";

/// sh run before a stale lock is broken: every process group the interrupted
/// run recorded (`parc_lock_join` in journal.sh) that still has processes (an apply
/// whose controller died goes on running) gets SIGTERM, then SIGKILL, and the
/// takeover waits until all are gone; it says which it did, and removes the
/// work directories (mktemp, under TMPDIR) of the execs it killed. If some
/// never go, the lock is not taken.
fn stop_old_run() -> String {
    format!(
        r#"_groups=; _dirs=
    while read -r _g _d; do
      _groups="$_groups $_g"
      case $_d in /*/parc.*) _dirs="$_dirs $_d" ;; esac
    done <<PARC_PGIDS
$(cat "$L/pgids" 2>/dev/null)
PARC_PGIDS
    if ! parc_stop_groups $_groups; then
      echo "processes of the interrupted run $(cat "$L/run" 2>/dev/null) still run (process groups$_stopped) after SIGKILL: the lock is not taken over"; exit {FAILED}
    fi
    if [ -n "$_stopped" ]; then
      for _d in $_dirs; do rm -rf "$_d"; done
      echo "{TAKEOVER}killed the processes the interrupted run $(cat "$L/run" 2>/dev/null) left running (SIGTERM$( [ "$_how" = KILL ] && echo ', then SIGKILL'), process groups$_stopped) and waited until they were gone"
    else
      echo "{TAKEOVER}no process of the interrupted run $(cat "$L/run" 2>/dev/null) was left running"
    fi"#
    )
}

/// Who is rolling out, recorded in the lock and in the history.
#[derive(Debug, Clone)]
pub struct Operator {
    pub run_id: String,
    pub user: String,
    pub controller: String,
    pub started: String,
}

impl Operator {
    pub fn current(run_id: &str) -> Self {
        let user = std::env::var("SUDO_USER")
            .or_else(|_| std::env::var("USER"))
            .ok()
            .or_else(|| {
                nix::unistd::User::from_uid(nix::unistd::geteuid())
                    .ok()
                    .flatten()
                    .map(|u| u.name)
            })
            .unwrap_or_else(|| "unknown".into());
        let controller = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "unknown".into());
        Operator {
            run_id: run_id.to_string(),
            user,
            controller,
            started: jiff::Timestamp::now().to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "locked by another rollout ({holder}); parc changed nothing on this host and will not roll out concurrently"
    )]
    Held { holder: String },
    #[error(
        "a previous run left a stale lock ({holder}): its process is gone, so that run was interrupted. \
         Check the host (its journal can be restored with `parc rollback RUN_ID`), then run again with \
         --break-lock. parc changed nothing on this host"
    )]
    Stale { holder: String },
    #[error("cannot take the lock: {0}. parc changed nothing on this host")]
    Failed(String),
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// A held lock; release it with [`HostLock::release`].
pub struct HostLock {
    /// What taking over a stale lock did about the interrupted run's
    /// processes (killed them, or found none), to report.
    pub took_over: Option<String>,
    /// The private directories made for the run's scripts (see [`InLock`]).
    pool: Vec<String>,
    shell: Arc<tokio::sync::Mutex<Held>>,
    task: JoinHandle<Result<ExitStatus, TransportError>>,
    /// The connection, for an exec of its own when the lock's shell is
    /// stuck in a script parc gave up on ([`HostLock::release`]).
    t: Arc<dyn Transport>,
    run_id: String,
    /// The private directories of scripts, run in execs of their own, that
    /// parc gave up on ([`Transport::gave_up`]).
    given_up: Arc<std::sync::Mutex<Vec<String>>>,
}

/// The lock's exec as the controller talks to it once the lock is held.
struct Held {
    /// Its stdin: the release, and the scripts run in its shell.
    stdin: DuplexStream,
    /// Its stdout, where those scripts' output comes back.
    stdout: BufReader<DuplexStream>,
    /// Its shell runs what comes on stdin as it comes ([`HELD_SHELL`]).
    runs_scripts: bool,
    /// A script is running in it, or ran past its time and was given up on
    /// (its future dropped before it ended): the shell then reads nothing
    /// more from the controller, the release included.
    busy: bool,
}

/// What [`HostLock::acquire_then`] ran once the lock was held.
#[derive(Debug)]
pub struct ThenOutput {
    pub code: Option<u32>,
    /// Its output, kept up to [`facts::OUTPUT_LIMIT`](crate::facts::OUTPUT_LIMIT) bytes (the `then` command is
    /// the facts probe): a host cannot flood the controller through it.
    pub stdout: Kept,
    /// It ran past this time, and parc stopped waiting for it.
    pub timed_out: Option<std::time::Duration>,
}

/// The next line the lock's exec printed, without its newline: at most
/// [`LINE_LIMIT`] bytes of it (the rest is read and dropped), so one endless
/// line cannot fill the controller's memory. `None` at the end of the output.
async fn next_line(r: &mut BufReader<DuplexStream>) -> Option<String> {
    let mut line = Vec::new();
    let mut read_any = false;
    loop {
        let (used, ended) = {
            let buf = r.fill_buf().await.ok()?;
            if buf.is_empty() {
                break;
            }
            read_any = true;
            let end = buf.iter().position(|b| *b == b'\n');
            let chunk = &buf[..end.unwrap_or(buf.len())];
            let room = LINE_LIMIT.saturating_sub(line.len());
            line.extend_from_slice(&chunk[..chunk.len().min(room)]);
            (end.map_or(buf.len(), |i| i + 1), end.is_some())
        };
        r.consume(used);
        if ended {
            break;
        }
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    read_any.then(|| String::from_utf8_lossy(&line).into_owned())
}

/// Longer than any line the lock script or the facts probe prints.
const LINE_LIMIT: usize = 64 * 1024;

/// How many private directories the lock makes ahead for the run's scripts
/// ([`InLock`]): the probe, apply, handlers and verify execs of a converge,
/// and a restore and a fallback's four when it fails. Scripts past these
/// make their own.
const POOL: usize = 9;

/// The name, in the lock directory, of the run's `n`th private directory.
fn pool_name(n: usize) -> String {
    format!("exec.{n}")
}

/// Printed after the `then` command's output, with its exit status.
const THEN_DONE: &str = "@@parc-then-done";

/// sh defining `parc_release LINE`: the run's line appended to the host's
/// history, and the lock removed. Read by the lock's shell, or run by
/// [`stop_given_up`] when that shell is the one stuck.
fn release_fn() -> String {
    format!(
        "parc_release() {{ printf '%s\\n' \"$1\" >> {STATE_DIR}/history.log; rm -rf \"$L\"; exit 0; }}\n"
    )
}

/// The last word of the `locked` line when the lock's shell runs what comes
/// on its stdin as it comes: scripts can run in it ([`InLock::run_held`]).
const HELD_SHELL: &str = "shell";

/// At most this much of a script's stderr comes back from the lock's shell
/// (the exec path keeps all of it; an error message is far shorter).
const STDERR_LIMIT: usize = 64 * 1024;

fn script(
    op: &Operator,
    break_stale: bool,
    takeover_run: Option<&str>,
    then: Option<&str>,
) -> String {
    // Its stdin is the release channel: the `then` script must not read it.
    // It runs in the lock's own shell, as a group: no process for it.
    let then = then
        .map(|sh| format!("{{\n{sh}\n}} </dev/null\necho \"{THEN_DONE} $?\"\n"))
        .unwrap_or_default();
    let l = format!("{STATE_DIR}/lock");
    let refuse = format!(
        "cat \"$L/info\" 2>/dev/null || echo \"no owner recorded in $L: an interrupted parc, or not parc\"; exit {STALE}"
    );
    // Taking over a stale lock needs journal.sh (15 KiB) to stop the old
    // run's processes; a lock that may only be refused is sent without it,
    // since every host holds its lock's command line for the whole run.
    let (journal_sh, stale) = if break_stale || takeover_run.is_some() {
        let stale = format!(
            r#"  # A lock without its owner's record is never taken over silently.
  _r=$(cat "$L/run" 2>/dev/null)
  if [ {brk} = 1 ] || {{ [ -n "$_r" ] && [ "$_r" = {takeover} ]; }}; then
    {stop}
    rm -rf "$L"; mkdir "$L" || exit {HELD}
  else
    {refuse}
  fi"#,
            stop = stop_old_run(),
            brk = u8::from(break_stale),
            takeover = quote(takeover_run.unwrap_or("")),
        );
        (crate::journal::JOURNAL_SH, stale)
    } else {
        ("", format!("  {refuse}"))
    };
    // `[ A -ef B ]` (same file) is not POSIX, but dash's and busybox's
    // `test` have it: a shell whose `test` lacks it is neither, and keeps
    // reading the release line by line.
    let script = format!(
        r#"{journal_sh}
L={l}
# Errors go to stdout: what the lock exec prints before `locked` is its error.
if [ ! -d {STATE_DIR} ] && ! mkdir -p -m 700 {STATE_DIR} 2>&1; then exit {FAILED}; fi
# One `mkdir` when the lock is free or held; when it failed without a lock
# there, a second one says why (or takes the lock, removed meanwhile).
if ! mkdir "$L" 2>/dev/null && {{ [ -d "$L" ] || ! _err=$(mkdir "$L" 2>&1); }}; then
  # Not contention: the real error (read-only or full disk, permissions).
  if [ ! -d "$L" ]; then echo "$_err"; exit {FAILED}; fi
  # Alive, and not a zombie nobody reaped (kill -0 succeeds on those).
  _p=$(cat "$L/pid" 2>/dev/null)
  if [ -n "$_p" ] && kill -0 "$_p" 2>/dev/null && ! grep -q '^State:[[:space:]]*Z' "/proc/$_p/status" 2>/dev/null; then
    cat "$L/info" 2>/dev/null; exit {HELD}
  fi
{stale}
fi
printf '%s\n' {run} > "$L/run"
printf 'run %s by %s from %s since %s\n' {run} {user} {controller} {started} > "$L/info"
echo $$ > "$L/pid"
# The private directories of the run's scripts, in one process rather than a
# mktemp and an rm for each: inside the lock, they go with it.
# A shell that runs what comes on stdin as it comes (dash, busybox ash: `.`
# reads a pipe by blocks and runs each command once parsed; bash waits for
# the end of the file) also runs the run's read-only scripts, in the private
# directories.
_held=
if mkdir -m 700{pool} 2>/dev/null; then
  if {{ : </dev/stdin; }} 2>/dev/null; then
    for _s in /bin/dash /usr/bin/dash /bin/busybox /usr/bin/busybox; do
      if [ /proc/$$/exe -ef "$_s" ]; then _held=1; echo "locked {POOL} {HELD_SHELL}"; break; fi
    done
  fi
  [ -n "$_held" ] || echo "locked {POOL}"
else echo locked; fi
{then}{release}
# The end of a script run here: its stderr (kept in a file, here only when it
# wrote some), then its status, each after a marker only the controller knows.
parc_ran() {{ # NONCE RC STDERR
  printf '\n@@parc-stderr-%s\n' "$1"
  [ ! -s "$3" ] || head -c {STDERR_LIMIT} -- "$3"
  printf '\n@@parc-ran-%s %s\n' "$1" "$2"
}}
# What the controller sends is a whole command per line or block: one cut
# short by a lost connection does not parse, and the lock stays (stale).
if [ -n "$_held" ]; then . /dev/stdin
else while IFS= read -r _c; do eval "$_c"; done; fi
"#,
        release = release_fn(),
        pool = (0..POOL)
            .map(|n| format!(" \"$L/{}\"", pool_name(n)))
            .collect::<String>(),
        run = quote(&op.run_id),
        user = quote(&op.user),
        controller = quote(&op.controller),
        started = quote(&op.started),
    );
    // The login shell becomes the `sh` every parc script runs in (`exec`:
    // no process), whatever shell the account has.
    format!("exec sh -c {}", quote(&script))
}

impl HostLock {
    /// Take the lock, or say who holds it. `takeover_run` lets `parc rollback`
    /// take over the stale lock of the run it is undoing.
    pub async fn acquire(
        t: Arc<dyn Transport>,
        op: &Operator,
        break_stale: bool,
        takeover_run: Option<&str>,
    ) -> Result<HostLock, LockError> {
        Self::acquire_then(t, op, break_stale, takeover_run, None, None)
            .await
            .map(|(lock, _)| lock)
    }

    /// Take the lock, then run `then` (sh, run in the lock's own shell, so
    /// it must not `exit` nor read stdin) and return its output: the facts
    /// probe rides along, which saves a session (a fork of sshd and two
    /// shells on the host) per host.
    pub async fn acquire_then(
        t: Arc<dyn Transport>,
        op: &Operator,
        break_stale: bool,
        takeover_run: Option<&str>,
        then: Option<&str>,
        within: Option<std::time::Duration>,
    ) -> Result<(HostLock, Option<ThenOutput>), LockError> {
        let command = script(op, break_stale, takeover_run, then);
        let (control, mut remote_stdin) = tokio::io::duplex(4096);
        let (mut remote_stdout, out_reader) = tokio::io::duplex(4096);
        let base = t.clone();
        let task = tokio::spawn(async move {
            let mut sink = tokio::io::sink();
            t.exec(&command, &mut remote_stdin, &mut remote_stdout, &mut sink)
                .await
        });
        // Held for the run: no larger than what the pipe behind it holds.
        let mut reader = BufReader::with_capacity(4096, out_reader);
        let mut said = Vec::new();
        let mut took_over = None;
        while let Some(line) = next_line(&mut reader).await {
            if let Some(what) = line.strip_prefix(TAKEOVER) {
                took_over = Some(what.to_string());
                continue;
            }
            let Some((pool, runs_scripts)) = line.strip_prefix("locked").and_then(locked) else {
                said.push(line);
                continue;
            };
            let lock = |reader, busy: bool| HostLock {
                took_over,
                pool,
                shell: Arc::new(tokio::sync::Mutex::new(Held {
                    stdin: control,
                    stdout: reader,
                    runs_scripts,
                    busy,
                })),
                task,
                t: base,
                run_id: op.run_id.clone(),
                given_up: Arc::default(),
            };
            let Some(within) = then.map(|_| within) else {
                return Ok((lock(reader, false), None));
            };
            let mut stdout = Capped::new(crate::facts::OUTPUT_LIMIT);
            let mut code = None;
            let read = async {
                while let Some(line) = next_line(&mut reader).await {
                    if let Some(rc) = line.strip_prefix(THEN_DONE) {
                        code = crate::numbers::exit_code(rc.trim())
                            .and_then(|c| u32::try_from(c).ok());
                        return;
                    }
                    let _ = stdout.write_all(line.as_bytes()).await;
                    let _ = stdout.write_all(b"\n").await;
                }
            };
            let timed_out = match within {
                Some(limit) => tokio::time::timeout(limit, read).await.is_err(),
                None => {
                    read.await;
                    false
                }
            };
            let stdout = stdout.into_kept();
            let out = ThenOutput {
                code,
                stdout,
                timed_out: within.filter(|_| timed_out),
            };
            return Ok((lock(reader, timed_out), Some(out)));
        }
        let holder = said.join(" ");
        match task.await {
            Ok(Ok(ExitStatus::Code(HELD))) => Err(LockError::Held { holder }),
            Ok(Ok(ExitStatus::Code(STALE))) => Err(LockError::Stale { holder }),
            Ok(Ok(ExitStatus::Code(FAILED))) => Err(LockError::Failed(holder)),
            Ok(Ok(status)) => Err(LockError::Failed(format!("lock script {status}: {holder}"))),
            Ok(Err(e)) => Err(LockError::Transport(e)),
            Err(e) => Err(LockError::Failed(e.to_string())),
        }
    }

    /// `t`, handing the scripts run through it the private directories this
    /// lock made (see [`Transport::private_dir`]), while they last, and
    /// running the read-only ones in the lock's shell when it can.
    pub fn transport(&self, t: Arc<dyn Transport>) -> Arc<dyn Transport> {
        Arc::new(InLock {
            inner: t,
            pool: std::sync::Mutex::new(self.pool.iter().rev().cloned().collect()),
            shell: self.shell.clone(),
            given_up: self.given_up.clone(),
        })
    }

    /// Say what taking over a stale lock did, if it did.
    pub fn announce(&self, events: &Events, host: &str) {
        if let Some(what) = &self.took_over {
            events.send(Event::LockTakenOver {
                host: host.to_string(),
                what: what.clone(),
            });
        }
    }

    /// Release the lock and append `history` to the host's history log.
    /// When parc gave up on a script (it ran past its time), what it left
    /// running is stopped first, over an exec of its own (the lock's shell
    /// may be the one stuck): the lock is released only once it is gone,
    /// and what was done is said on `events`.
    pub async fn release(self, history: &str, events: &Events, host: &str) {
        let line = history.replace(['\n', '\r'], " ");
        let stuck = self.shell.lock().await.busy;
        let given_up =
            std::mem::take(&mut *self.given_up.lock().unwrap_or_else(|e| e.into_inner()));
        if stuck || !given_up.is_empty() {
            let stop = stop_given_up(&self.run_id, stuck, &given_up, &line);
            let said = crate::journal::run_stop(self.t.as_ref(), &stop).await;
            let (what, stopped) = given_up_said(&said, stuck);
            events.send(Event::GaveUp {
                host: host.to_string(),
                what,
            });
            if stuck {
                // The lock's shell was stopped with what it ran, and its exec
                // ends with it; if it would not stop, its channel is closed.
                let mut task = self.task;
                if !stopped
                    || tokio::time::timeout(crate::journal::STOP_WITHIN, &mut task)
                        .await
                        .is_err()
                {
                    task.abort();
                }
                return;
            }
        }
        {
            let mut held = self.shell.lock().await;
            let _ = held
                .stdin
                .write_all(format!("parc_release {}\n", quote(&line)).as_bytes())
                .await;
            let _ = held.stdin.shutdown().await;
        }
        // The exec ends once the host closes it, whatever still holds `shell`.
        let _ = self.task.await;
    }
}

/// sh, run in an exec of its own, that stops what scripts parc gave up on
/// left running: the lock's shell (`stuck`: a script given up on runs in it)
/// and the execs that worked in `dirs`, each by the process group it
/// recorded (the lock's `pid`; `execs`, see `Assembled::command_in`). When
/// the lock's shell is stopped, the release it can no longer read is done
/// here, once nothing is left. Only while the lock is still this run's.
/// Prints `stopped GROUPS`, `running GROUPS` (some would not go, even
/// after SIGKILL) or `gone` (the lock is not this run's any more).
fn stop_given_up(run_id: &str, stuck: bool, dirs: &[String], history: &str) -> String {
    let lock_shell = if stuck {
        "if read -r _p 2>/dev/null < \"$L/pid\" && parc_pgid \"$_p\"; then _groups=$_pg; fi\n"
    } else {
        ""
    };
    let execs = if dirs.is_empty() {
        String::new()
    } else {
        let dirs: Vec<String> = dirs.iter().map(|d| quote(d)).collect();
        format!(
            "if [ -f \"$L/execs\" ]; then\n  while read -r _g _d; do\n    case $_d in {}) _groups=\"$_groups $_g\" ;; esac\n  done < \"$L/execs\"\nfi\n",
            dirs.join("|")
        )
    };
    // Said before the release, which ends the script.
    let release = if stuck {
        format!("{}parc_release {}\n", release_fn(), quote(history))
    } else {
        String::new()
    };
    format!(
        "{journal}\nL={STATE_DIR}/lock\n\
         if [ \"$(cat \"$L/run\" 2>/dev/null)\" != {run} ]; then echo gone; exit 0; fi\n\
         _groups=\n{lock_shell}{execs}\
         # Split on purpose: group numbers (parc_stop_groups skips anything else).\n\
         # shellcheck disable=SC2086\n\
         if parc_stop_groups $_groups; then\necho \"stopped$_stopped\"\n{release}\
         else echo \"running$_stopped\"; fi\n",
        journal = crate::journal::JOURNAL_SH,
        run = quote(run_id),
    )
}

/// What [`stop_given_up`] printed, said for the operator, and whether
/// everything it looked for is gone.
fn given_up_said(said: &str, stuck: bool) -> (String, bool) {
    let lock = if stuck { "; the lock is released" } else { "" };
    if let Some(groups) = said.strip_prefix("stopped") {
        let what = match groups.trim() {
            "" => format!(
                "nothing the script parc stopped waiting for had started was still running{lock}"
            ),
            g => format!(
                "parc stopped what the script it stopped waiting for left running (SIGTERM, then SIGKILL if needed; process groups {g}){lock}"
            ),
        };
        return (what, true);
    }
    let kept = if stuck {
        ": the lock stays, and the next run finds it stale"
    } else {
        ""
    };
    let what = match said.strip_prefix("running") {
        Some(groups) => format!(
            "what the script parc stopped waiting for left running would not stop, even after SIGKILL (process groups {}: a process stuck in the kernel, on a hung mount?){kept}",
            groups.trim()
        ),
        None if said == "gone" => {
            "the lock was no longer this run's (broken by another operator?): parc left the host as it was".to_string()
        }
        None => format!(
            "parc could not stop what the script it stopped waiting for left running ({}){kept}",
            said.strip_prefix("failed ").unwrap_or(said)
        ),
    };
    (what, false)
}

/// The rest of a `locked` line: the private directories the lock made (none,
/// or all [`POOL`]) and whether its shell runs scripts ([`HELD_SHELL`]).
fn locked(rest: &str) -> Option<(Vec<String>, bool)> {
    if !rest.is_empty() && !rest.starts_with(' ') {
        return None;
    }
    let mut words = rest.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (None, _, _) => Some((Vec::new(), false)),
        (Some(n), held, None) if n == POOL.to_string() && held.is_none_or(|w| w == HELD_SHELL) => {
            let pool = (0..POOL)
                .map(|n| format!("{STATE_DIR}/lock/{}", pool_name(n)))
                .collect();
            Some((pool, held.is_some()))
        }
        _ => None,
    }
}

impl Held {
    /// Run `script` as a subshell of the lock's shell, working in `dir`, and
    /// read back what it printed. What ends its output is a line with
    /// `nonce`, which no one on the host can know (it is never on a command
    /// line nor in a file): no value the script reads can pass for it. Of
    /// more than `max` bytes of output, the first `max + 1` are kept (what
    /// a local user of the host may inflate, a file growing while it is
    /// read, costs the controller no more), and the rest is read through
    /// for that line, which leaves the shell ready for the next script.
    async fn run(
        &mut self,
        dir: &str,
        nonce: &str,
        script: &[Chunk],
        max: usize,
    ) -> Result<Output, TransportError> {
        let err = quote(&format!("{dir}/stderr"));
        // The subshell parses whole before it runs: a script cut short by a
        // lost connection runs nothing (as the exec bootstrap's end marker).
        let head = format!(
            "(PARC_DIR={}; PARC_PAYLOAD=\"$PARC_DIR/payload\"; PARC_STASH=0; \
             export PARC_DIR PARC_PAYLOAD PARC_STASH\n",
            quote(dir)
        );
        let foot = format!("\n) </dev/null 2>{err}\nparc_ran {nonce} $? {err}\n");
        let sent: std::io::Result<()> = async {
            self.stdin.write_all(head.as_bytes()).await?;
            tokio::io::copy(&mut Chunks::new(script), &mut self.stdin).await?;
            self.stdin.write_all(foot.as_bytes()).await?;
            self.stdin.flush().await
        }
        .await;
        if sent.is_err() {
            // The exec has ended (its stdin is gone): as a channel closed
            // without an exit status, whatever reached it.
            return Ok(Output {
                status: ExitStatus::Unknown,
                stdout: Vec::new(),
                stderr: Vec::new(),
            });
        }
        let ran = format!("\n@@parc-ran-{nonce} ");
        // The end line's room: its marker and an exit status.
        let keep = ran.len() + 16;
        let mut out = Vec::new();
        // Past `max`: the first `max + 1` bytes; `out` then keeps only what
        // may hold the end line.
        let mut head: Option<Vec<u8>> = None;
        let mut from = 0;
        loop {
            let buf = self.stdout.fill_buf().await?;
            if buf.is_empty() {
                // The shell is gone: as an exec whose channel closed without
                // an exit status.
                return Ok(Output {
                    status: ExitStatus::Unknown,
                    stdout: head.unwrap_or(out),
                    stderr: Vec::new(),
                });
            }
            let n = buf.len();
            out.extend_from_slice(buf);
            self.stdout.consume(n);
            if head.is_none() && out.len() > max.saturating_add(keep) {
                let tail = out[out.len() - keep..].to_vec();
                out.truncate(max + 1);
                head = Some(std::mem::replace(&mut out, tail));
                from = 0;
            }
            if head.is_some() && out.len() > 2 * keep {
                out.drain(..out.len() - keep);
                from = 0;
            }
            let Some(at) = find(&out[from..], ran.as_bytes()).map(|i| i + from) else {
                from = out.len().saturating_sub(ran.len());
                continue;
            };
            let rest = &out[at + ran.len()..];
            let Some(end) = rest.iter().position(|b| *b == b'\n') else {
                from = at;
                continue;
            };
            let status = std::str::from_utf8(&rest[..end])
                .ok()
                .map(|rc| rc.trim_end_matches('\r'))
                .and_then(crate::numbers::exit_code)
                .and_then(|c| u32::try_from(c).ok())
                .map_or(ExitStatus::Unknown, ExitStatus::Code);
            if let Some(head) = head {
                return Ok(Output {
                    status,
                    stdout: head,
                    stderr: Vec::new(),
                });
            }
            out.truncate(at);
            let marker = format!("\n@@parc-stderr-{nonce}\n");
            let stderr = match find(&out, marker.as_bytes()) {
                Some(e) => {
                    let stderr = out.split_off(e + marker.len());
                    out.truncate(e);
                    stderr
                }
                None => Vec::new(),
            };
            return Ok(Output {
                status,
                stdout: out,
                stderr,
            });
        }
    }
}

/// Where `needle` first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A transport whose scripts work in directories the host lock made ahead
/// (root's, inside the lock's private state directory; removed with the lock
/// when it is released or broken), rather than each making and removing one.
struct InLock {
    inner: Arc<dyn Transport>,
    /// Not handed out yet, the next last.
    pool: std::sync::Mutex<Vec<String>>,
    shell: Arc<tokio::sync::Mutex<Held>>,
    given_up: Arc<std::sync::Mutex<Vec<String>>>,
}

#[async_trait::async_trait]
impl Transport for InLock {
    async fn exec(
        &self,
        command: &str,
        stdin: &mut (dyn tokio::io::AsyncRead + Send + Unpin),
        stdout: &mut (dyn tokio::io::AsyncWrite + Send + Unpin),
        stderr: &mut (dyn tokio::io::AsyncWrite + Send + Unpin),
    ) -> Result<ExitStatus, TransportError> {
        self.inner.exec(command, stdin, stdout, stderr).await
    }

    async fn exec_shared(
        &self,
        command: &str,
        stdin: &[Chunk],
        stdout: &mut (dyn tokio::io::AsyncWrite + Send + Unpin),
        stderr: &mut (dyn tokio::io::AsyncWrite + Send + Unpin),
    ) -> Result<ExitStatus, TransportError> {
        self.inner.exec_shared(command, stdin, stdout, stderr).await
    }

    fn private_dir(&self) -> Option<String> {
        self.pool.lock().ok()?.pop()
    }

    fn gave_up(&self, dir: Option<&str>) {
        // A script in the lock's shell leaves it `busy`; one in an exec of
        // its own is found by its directory.
        if let (Some(dir), Ok(mut given_up)) = (dir, self.given_up.lock()) {
            given_up.push(dir.to_string());
        }
    }

    async fn run_held(
        &self,
        script: &[Chunk],
        max: usize,
    ) -> Option<Result<Output, TransportError>> {
        let mut held = self.shell.try_lock().ok()?;
        if !held.runs_scripts || held.busy {
            return None;
        }
        let mut nonce = [0u8; 16];
        getrandom::getrandom(&mut nonce).ok()?;
        let nonce = crate::image::digest::hex(&nonce);
        let dir = self.private_dir()?;
        self.inner.ran_held();
        // Left set if this future is dropped before the script ends.
        held.busy = true;
        let out = held.run(&dir, &nonce, script, max).await;
        held.busy = false;
        // A shell that did not end the script as it should runs no other.
        if !matches!(&out, Ok(o) if o.status != ExitStatus::Unknown) {
            held.runs_scripts = false;
        }
        Some(out)
    }
}

/// One line of `/var/lib/parc/history.log`.
pub fn history_line(op: &Operator, action: &str, state: &str) -> String {
    format!(
        "{} run={} action={action} operator={}@{} state={state}",
        jiff::Timestamp::now(),
        op.run_id,
        op.user,
        op.controller
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A held shell's side of one run: reads the script to its `parc_ran`
    /// line, then prints `reply` a few bytes at a time.
    fn held_with(reply: Vec<u8>) -> (Held, JoinHandle<String>) {
        let (stdin, mut host_in) = tokio::io::duplex(4096);
        let (mut host_out, stdout) = tokio::io::duplex(4096);
        let host = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut buf = [0u8; 512];
            while !String::from_utf8_lossy(&got).contains("\nparc_ran ") || !got.ends_with(b"\n") {
                let n = tokio::io::AsyncReadExt::read(&mut host_in, &mut buf)
                    .await
                    .unwrap();
                assert!(n > 0, "the script ended before its parc_ran line");
                got.extend_from_slice(&buf[..n]);
            }
            for piece in reply.chunks(7) {
                host_out.write_all(piece).await.unwrap();
            }
            String::from_utf8(got).unwrap()
        });
        let held = Held {
            stdin,
            stdout: BufReader::new(stdout),
            runs_scripts: true,
            busy: false,
        };
        (held, host)
    }

    #[tokio::test]
    async fn a_held_run_ends_at_its_own_marker_only() {
        let nonce = "4f".repeat(16);
        let forged = "\n@@parc-ran-00000000000000000000000000000000 0\n@@parc-ran-4f 0\n";
        let reply =
            format!("records{forged}more\n@@parc-stderr-{nonce}\noops\n\n@@parc-ran-{nonce} 3\n");
        let (mut held, host) = held_with(reply.into_bytes());
        let script = [Chunk::Bytes(bytes::Bytes::from_static(b"echo records\n"))];
        let out = held
            .run("/var/lib/parc/lock/exec.0", &nonce, &script, 1 << 20)
            .await
            .unwrap();
        assert_eq!(out.status, ExitStatus::Code(3));
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            format!("records{forged}more")
        );
        assert_eq!(out.stderr, b"oops\n");
        let sent = host.await.unwrap();
        assert_eq!(
            sent,
            format!(
                "(PARC_DIR=/var/lib/parc/lock/exec.0; PARC_PAYLOAD=\"$PARC_DIR/payload\"; \
                 PARC_STASH=0; export PARC_DIR PARC_PAYLOAD PARC_STASH\necho records\n\n) \
                 </dev/null 2>/var/lib/parc/lock/exec.0/stderr\nparc_ran {nonce} $? \
                 /var/lib/parc/lock/exec.0/stderr\n"
            )
        );
    }

    /// Output past the bound: its first `max + 1` bytes are kept (they say
    /// it was more), the rest read through to the end line, in pieces.
    #[tokio::test]
    async fn a_held_run_keeps_its_bound_and_still_finds_its_end() {
        let nonce = "5e".repeat(16);
        let reply = format!(
            "{}\n@@parc-stderr-{nonce}\noops\n\n@@parc-ran-{nonce} 0\n",
            "x".repeat(5000)
        );
        let (mut held, host) = held_with(reply.into_bytes());
        let script = [Chunk::Bytes(bytes::Bytes::from_static(b"true\n"))];
        let out = held.run("/d", &nonce, &script, 100).await.unwrap();
        host.await.unwrap();
        assert_eq!(out.status, ExitStatus::Code(0));
        assert_eq!(out.stdout, "x".repeat(101).as_bytes());
    }

    #[tokio::test]
    async fn a_held_shell_that_ends_mid_run_reads_as_a_lost_channel() {
        let nonce = "a1".repeat(16);
        let (mut held, host) = held_with(format!("partial\n@@parc-ran-{nonce}").into_bytes());
        let script = [Chunk::Bytes(bytes::Bytes::from_static(b"true\n"))];
        let out = held.run("/d", &nonce, &script, 1 << 20).await.unwrap();
        host.await.unwrap();
        assert_eq!(out.status, ExitStatus::Unknown);
        assert!(out.stdout.starts_with(b"partial\n"));
    }

    #[test]
    fn the_locked_line_says_what_the_lock_made() {
        assert_eq!(locked(""), Some((Vec::new(), false)));
        let (pool, held) = locked(&format!(" {POOL}")).unwrap();
        assert_eq!((pool.len(), held), (POOL, false));
        let (pool, held) = locked(&format!(" {POOL} {HELD_SHELL}")).unwrap();
        assert_eq!((pool.len(), held), (POOL, true));
        for other in [
            "x",
            " 3",
            &format!(" {POOL} bash"),
            &format!(" {POOL} {HELD_SHELL} x"),
        ] {
            assert_eq!(locked(other), None, "{other:?}");
        }
    }

    #[tokio::test]
    async fn an_endless_line_is_read_through_but_kept_short() {
        let (mut host, out) = tokio::io::duplex(4096);
        let writer = tokio::spawn(async move {
            let chunk = vec![b'x'; 1 << 16];
            for _ in 0..64 {
                host.write_all(&chunk).await.unwrap();
            }
            host.write_all(b"\r\nlocked\nlast").await.unwrap();
        });
        let mut reader = BufReader::new(out);
        let long = next_line(&mut reader).await.unwrap();
        assert_eq!(long.len(), LINE_LIMIT);
        assert_eq!(next_line(&mut reader).await.as_deref(), Some("locked"));
        writer.await.unwrap();
        assert_eq!(next_line(&mut reader).await.as_deref(), Some("last"));
        assert_eq!(next_line(&mut reader).await, None);
    }

    /// Every form of the stop script parses as sh, and names the lock's
    /// shell and the given-up directories only when it must.
    #[test]
    fn the_stop_script_parses_and_stops_only_what_was_given_up() {
        let dirs = [
            "/var/lib/parc/lock/exec.3".to_string(),
            "/var/lib/parc/lock/exec.5".to_string(),
        ];
        for (stuck, dirs) in [(true, &dirs[..0]), (true, &dirs[..]), (false, &dirs[..1])] {
            let script = stop_given_up("20261208T000000-ab'c", stuck, dirs, "a line; $(x)");
            let parsed = std::process::Command::new("sh")
                .args(["-n", "-c", &script])
                .output()
                .unwrap();
            assert!(parsed.status.success(), "{parsed:?}");
            assert_eq!(script.contains("\"$L/pid\""), stuck);
            assert_eq!(script.contains("rm -rf \"$L\""), stuck);
            assert_eq!(
                script.contains("|/var/lib/parc/lock/exec.5)"),
                dirs.len() == 2
            );
        }
        let (what, gone) = given_up_said("stopped 123 456", true);
        assert!(
            gone && what.contains("process groups 123 456")
                && what.ends_with("the lock is released")
        );
        let (what, gone) = given_up_said("running 123", true);
        assert!(
            !gone && what.contains("the next run finds it stale"),
            "{what}"
        );
        let (what, gone) = given_up_said("gone", false);
        assert!(!gone && what.contains("no longer this run's"), "{what}");
    }
}
