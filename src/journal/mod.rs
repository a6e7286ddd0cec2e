//! The journal: what a host looked like before parc changed it, kept on the
//! host itself.
//!
//! Architecture note: the apply exec first saves every path it is about to
//! touch (a copy with mode and owner, or "absent" for paths it will create)
//! under `/var/lib/parc/journal/<run-id>/`, syncs, and only then changes
//! anything. The journal carries its own `restore.sh`, so restoring needs
//! nothing from the controller: `parc rollback RUN_ID` runs it, and so does the
//! dead-man watchdog when no confirmation arrives. After restoring, the script
//! checks every entry against what it saved and reports mismatches.
//!
//! Lifecycle of journal `<run-id>` on a host (its `state` file): [`begin`]
//! saves every touched path (`applying`; `incomplete` if the apply stopped
//! before its first change) → [`finish_line`] (`applied`) → one fate,
//! decided once by whoever comes first: `confirmed` ([`confirm_command`]),
//! `keep` / `rollback` / `fallback` ([`decide`], [`restore`]) or `watchdog`
//! (the dead-man switch) → restored by its own `restore.sh` (`rolling_back`,
//! then `rolled_back`, checked) or kept. Old journals beyond
//! `keep_journals` are pruned by later runs.

use std::sync::LazyLock;

use crate::resources::Touch;
use crate::resources::script::{Record, Script, ScriptError};
use crate::transport::quote as quote_path;
use crate::transport::{ExitStatus, Transport};

/// Target-side journal functions (POSIX sh).
pub const JOURNAL_SH: &str = include_str!("journal.sh");

/// Where parc keeps its state on a target.
pub const STATE_DIR: &str = "/var/lib/parc";

/// The record an apply prints once its journal is complete, just before its
/// first change: a failed apply without it changed nothing.
pub const COMPLETE_RECORD: &str = "journal-complete";

/// Journals kept per host; older ones are pruned when a new one starts.
pub const DEFAULT_KEEP: usize = 10;

pub fn dir(run_id: &str) -> String {
    format!("{STATE_DIR}/journal/{run_id}")
}

/// The standalone restore script stored in each journal.
pub(crate) fn restore_sh() -> String {
    format!(
        "{}\n{JOURNAL_SH}\nparc_restore \"$(cd \"$(dirname \"$0\")\" && pwd)\" \"${{1:-rollback}}\"\n",
        crate::resources::script::LIB
    )
}

/// sh defining `parc_write_restore`, which writes [`restore_sh`] into the
/// journal with the shell's own printf (the script is text already, and a
/// slice of the payload would cost a dd, a chmod and a mv). Quoted, restore.sh
/// is about 40 KiB, the same for every host: made once and sent to each host
/// as a library, from this one copy, rather than built into each host's
/// script, which every host held until its apply ended (2 MiB at 50 hosts at
/// once, 20 at 500).
fn restore_writer() -> &'static str {
    static WRITER: LazyLock<String> = LazyLock::new(|| {
        format!(
            "parc_write_restore() {{\n  printf '%s' {} > \"$PARC_JOURNAL/restore.sh\"\n}}\n",
            quote_path(&restore_sh())
        )
    });
    &WRITER
}

/// Add to `script` the sh that opens journal `run_id` and saves every
/// touched path (its setup, before any change), and the lines that mark the
/// journal complete (and arm the watchdog) after the staging's sync, which
/// makes the journal durable: the first lines of its body, so they must be
/// added before the steps. Fails the script (before any change) if the
/// journal cannot be written. Each touch comes with the number of the step
/// that makes it: an undo runs on restore only if its step was reached
/// (lib.sh's `parc_reach` and `parc_step_done`).
pub fn begin(
    script: &mut Script,
    run_id: &str,
    touches: &[(usize, Touch)],
    keep: usize,
    confirm: Option<std::time::Duration>,
) {
    let quoted = quote_path(&dir(run_id));
    script.lib(JOURNAL_SH);
    // Each run creates its journal and its entries' directory in one `mkdir`,
    // the journals' directory too the first time (the host lock made the
    // state directory, private, before). Entries are files in it, named
    // after their number (journal.sh).
    script.setup(&format!(
        "PARC_JOURNAL={quoted}; export PARC_JOURNAL\n\
         parc_journal_prune {keep}\n\
         parc_lock_join\n\
         if [ -e \"$PARC_JOURNAL\" ]; then echo \"journal $PARC_JOURNAL already exists: run ids are used once per host\" >&2; exit 1; fi\n\
         _jd=; [ -d {state}/journal ] || _jd={state}/journal\n\
         mkdir -m 700 ${{_jd:+\"$_jd\"}} \"$PARC_JOURNAL\" \"$PARC_JOURNAL/entries\" || {{ echo 'cannot write the journal: nothing was changed' >&2; exit 1; }}\n\
         echo applying > \"$PARC_JOURNAL/state\"; echo \"$PARC_PGID\" > \"$PARC_JOURNAL/apply.pgid\"",
        state = STATE_DIR,
        keep = keep.saturating_sub(1),
    ));
    script.lib(restore_writer());
    script.setup("parc_write_restore || exit 1");
    // Every path in one call, which starts the same few processes whatever
    // their number (journal.sh); each `undo` is a file written by the shell.
    let failed = "|| { echo 'cannot write the journal: nothing was changed' >&2; exit 1; }";
    let mut saves = Vec::new();
    for (n, (step, touch)) in touches.iter().enumerate() {
        match touch {
            Touch::Path(p) => saves.push(format!("{n} path {}", quote_path(p))),
            Touch::Attrs(p) => saves.push(format!("{n} attrs {}", quote_path(p))),
            // A user's name holds no `:` (passwd's separator).
            Touch::User {
                user,
                path,
                attrs_only,
            } => saves.push(format!(
                "{n} {} {}",
                quote_path(&format!(
                    "{}:{user}",
                    if *attrs_only { "attrs" } else { "path" }
                )),
                quote_path(path)
            )),
            Touch::Undo(sh) => script.setup(&format!(
                "parc_journal_undo {n} {step} {} {failed}",
                quote_path(sh)
            )),
        }
    }
    if !saves.is_empty() {
        script.setup(&format!(
            "parc_journal_save_all {} {failed}",
            saves.join(" \\\n  ")
        ));
    }
    // Synced with the staged files, before the first change: every file of
    // the journal (directory copies sync their own trees), and the journal's
    // entry in its parent.
    // (A glob that matches nothing makes `sync` fail, and fall back to a
    // system-wide sync: entries are globbed only when there are some.)
    let entries = if touches.is_empty() {
        ""
    } else {
        " \"$PARC_JOURNAL\"/entries/*"
    };
    script.durable(&format!(
        "\"$PARC_JOURNAL\" \"$PARC_JOURNAL\"/*{entries} {}",
        quote_path(&format!("{STATE_DIR}/journal"))
    ));
    script.record_unstage("\"$PARC_JOURNAL/unstage\"");
    // The journal is whole only after the staging's sync (which covers its
    // entries): the completion marker, synced, then the watchdog, before the
    // first change. A restore acts on nothing else.
    script.sh(&format!(
        "{{ echo complete > \"$PARC_JOURNAL/complete\" && parc_sync \"$PARC_JOURNAL/complete\" \"$PARC_JOURNAL\"; }} \
         || {{ echo 'cannot write the journal: nothing was changed' >&2; exit 1; }}\n\
         echo '@@r {COMPLETE_RECORD}'"
    ));
    if let Some(window) = confirm {
        script.sh(&format!("parc_watchdog_arm {}", window.as_secs().max(1)));
    }
}

/// Who decided a host's fate (the journal's `fate` link, `parc_decide`):
/// the first to decide wins, every later one is told who did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// The controller confirmed the change over a new connection.
    Confirmed,
    /// The host's dead-man watchdog restored the journal.
    Watchdog,
    /// `on_failure: keep`.
    Keep,
    /// `on_failure: rollback`, or `parc rollback`.
    Rollback,
    /// `on_failure: fallback`.
    Fallback,
    /// parc is rebooting the host on purpose (`reboot`): a claim, not a
    /// decision. The watchdog stands down for it while the host goes down;
    /// parc withdraws it once the host is back, and the fate is undecided
    /// again. Left in place when the host never came back: no one restores
    /// it by itself, `parc rollback` still does.
    Rebooting,
}

impl Fate {
    pub fn as_str(self) -> &'static str {
        match self {
            Fate::Confirmed => "confirmed",
            Fate::Watchdog => "watchdog",
            Fate::Keep => "keep",
            Fate::Rollback => "rollback",
            Fate::Fallback => "fallback",
            Fate::Rebooting => "rebooting",
        }
    }

    pub fn parse(s: &str) -> Option<Fate> {
        [
            Fate::Confirmed,
            Fate::Watchdog,
            Fate::Keep,
            Fate::Rollback,
            Fate::Fallback,
            Fate::Rebooting,
        ]
        .into_iter()
        .find(|f| f.as_str() == s)
    }
}

/// sh run over a NEW connection after apply and verify: decide the fate
/// `confirmed`, so the watchdog stands down. Prints `confirmed`, or who
/// decided otherwise and the journal's state.
pub fn confirm_command(run_id: &str) -> String {
    let d = quote_path(&dir(run_id));
    format!(
        "if [ \"$(cat {d}/state 2>/dev/null)\" = applied ] && ln -s confirmed {d}/fate 2>/dev/null; then echo confirmed > {d}/state; echo confirmed; \
         else echo \"fate $(readlink {d}/fate 2>/dev/null), state $(cat {d}/state 2>/dev/null || echo missing)\"; fi"
    )
}

/// A script reporting who decided the host's fate and the journal's state,
/// once a watchdog that won has finished, and re-checking the journal.
pub fn inspect_script(run_id: &str) -> Script {
    let mut s = Script::new();
    let d = quote_path(&dir(run_id));
    s.lib(JOURNAL_SH);
    s.sh(&format!(
        "if [ \"$(readlink {d}/fate 2>/dev/null)\" = watchdog ]; then parc_watchdog_wait {d}; fi\n\
         parc_rec journal; parc_kv fate \"$(readlink {d}/fate 2>/dev/null)\"; parc_kv state \"$(cat {d}/state 2>/dev/null)\"\n\
         parc_restore_check {d}"
    ));
    s
}

/// Who decided a host's fate, as [`decide`] found it.
#[derive(Debug)]
pub struct Decided {
    /// The winner (`None`: the host has no such journal).
    pub fate: Option<Fate>,
    /// When the watchdog had won: what its restore left.
    pub restore: Option<Result<Restore, CheckError>>,
}

/// Why a journal could not be decided or restored. Text only when a host's
/// report is made.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The script could not run or its output was refused; `doing` says what
    /// it was for ("deciding the host's fate", "restoring RUN").
    #[error("connection lost while {doing}: {source}")]
    Lost {
        doing: String,
        #[source]
        source: ScriptError,
    },
    #[error("could not record the decision ({status}): {stderr}")]
    NotRecorded { status: ExitStatus, stderr: String },
    #[error("the restore script of {run_id} stopped ({status}): {stderr}")]
    Stopped {
        run_id: String,
        status: ExitStatus,
        stderr: String,
    },
    #[error("{source} ({stderr})")]
    Check {
        #[source]
        source: CheckError,
        stderr: String,
    },
}

impl JournalError {
    /// The connection broke: the host is unreachable, not failed.
    pub fn is_connection_lost(&self) -> bool {
        matches!(
            self,
            JournalError::Lost {
                source: ScriptError::Transport(_),
                ..
            }
        )
    }
}

/// The restore check (`parc_restore_check`) did not report.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CheckError {
    #[error("the restore script did not report its check")]
    NoReport,
    #[error("the restore check did not finish")]
    Unfinished,
}

/// Decide the host's fate as `fate` (disarming its dead-man watchdog), or
/// learn who did first.
pub async fn decide(t: &dyn Transport, run_id: &str, fate: Fate) -> Result<Decided, JournalError> {
    let out = decide_script(run_id, fate)
        .run(t)
        .await
        .map_err(|source| JournalError::Lost {
            doing: "deciding the host's fate".into(),
            source,
        })?;
    let Some(r) = out.records.get("fate") else {
        return Err(JournalError::NotRecorded {
            status: out.status,
            stderr: out.stderr.trim().to_string(),
        });
    };
    let winner = Fate::parse(r.get("fate").unwrap_or(""));
    Ok(Decided {
        fate: winner,
        restore: (winner == Some(Fate::Watchdog)).then(|| restore_result(&out.records)),
    })
}

/// The script deciding run `run_id`'s fate as `fate` ([`decide`]).
pub fn decide_script(run_id: &str, fate: Fate) -> Script {
    let mut s = Script::new();
    s.lib(JOURNAL_SH);
    s.sh(&format!(
        "parc_journal_decide {} {}",
        quote_path(&dir(run_id)),
        fate.as_str()
    ));
    s
}

/// sh marking the journal's apply as finished.
pub fn finish_line() -> &'static str {
    "echo applied > \"$PARC_JOURNAL/state\""
}

/// sh that records handler commands to re-run after a restore, so services
/// reload the restored configuration.
pub fn post_restore(script: &mut Script, run_id: &str, commands: &[String]) {
    if commands.is_empty() {
        return;
    }
    // The handlers' exec may run long: a takeover must stop it too.
    script.lib(JOURNAL_SH);
    script.setup("parc_lock_join");
    post_restore_in_apply(script, run_id, commands);
}

/// [`post_restore`] for handlers that run at the end of the apply exec,
/// which already joined the host lock: the commands are recorded in the
/// script's body, after every change succeeded and just before the
/// handlers run, so a restore after a failed apply re-runs no handler.
pub fn post_restore_in_apply(script: &mut Script, run_id: &str, commands: &[String]) {
    if commands.is_empty() {
        return;
    }
    // Each in a subshell, its failure kept (journal.sh's parc_undo), so
    // that every one runs and a failure other than the last still counts.
    let text: String = commands
        .iter()
        .map(|c| format!("( {c} ) || parc_pr=$?\n"))
        .collect();
    // A builtin writes the commands, which the script holds anyway (the
    // handlers it runs): no payload to stage and cut, no process.
    script.sh(&format!(
        "printf '%s' {} >> {}/post-restore",
        quote_path(&text),
        quote_path(&dir(run_id))
    ));
}

/// How long stopping what a given-up script left may take: SIGTERM, then
/// SIGKILL, each waited for up to 10 s by `parc_stop_groups`.
pub const STOP_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);

/// Run `stop` (sh stopping what a script given up on left running) in an
/// exec of its own, for at most [`STOP_WITHIN`]: what it printed, trimmed,
/// else "failed" and why.
pub async fn run_stop(t: &dyn Transport, stop: &str) -> String {
    match tokio::time::timeout(STOP_WITHIN, t.exec_capped(stop, 4096)).await {
        Ok(Ok((_, out, _))) => String::from_utf8_lossy(&out.bytes).trim().to_string(),
        Ok(Err(e)) => format!("failed {e}"),
        Err(_) => format!("failed it did not end within {} s", STOP_WITHIN.as_secs()),
    }
}

/// sh, run in an exec of its own, that stops the process group a script
/// given up on recorded in its directory `dir` (`dir/pg`), and removes the
/// directory: for scripts run without the host lock, whose release would.
pub fn stop_recorded_group(dir: &str) -> String {
    let d = quote_path(dir);
    format!(
        "{JOURNAL_SH}
if read -r _g < {d}/pg 2>/dev/null; then parc_stop_groups \"$_g\"; fi
rm -rf -- {d}
"
    )
}

/// Exit status of the restore script when the host has no such journal.
const NO_JOURNAL: u32 = 3;

/// A script restoring `run_id` from its journal on the host, deciding its
/// fate as `fate` first (see [`Fate`]).
pub fn restore_script(run_id: &str, fate: Fate) -> Script {
    let mut s = Script::new();
    let d = quote_path(&dir(run_id));
    s.sh(&format!(
        "if [ ! -f {d}/restore.sh ]; then printf '%s\\n' {missing} >&2; exit {NO_JOURNAL}; fi\nsh {d}/restore.sh {}",
        fate.as_str(),
        missing = quote_path(&format!(
            "no journal for run {run_id} on this host ({})",
            dir(run_id)
        )),
    ));
    s
}

/// What restoring a journal found.
#[derive(Debug, Clone, PartialEq)]
pub enum Restore {
    /// The journal was restored; the paths that do not match it after
    /// (empty: the host matches its journal).
    Checked(Vec<String>),
    /// The run changed nothing on this host, so nothing was restored: why
    /// (no journal there, or one never completed before a first change).
    NothingChanged(String),
}

/// Restore journal `run_id` on the host as `fate`, and check the result.
pub async fn restore(t: &dyn Transport, run_id: &str, fate: Fate) -> Result<Restore, JournalError> {
    let out = restore_script(run_id, fate)
        .run(t)
        .await
        .map_err(|source| JournalError::Lost {
            doing: format!("restoring {run_id}"),
            source,
        })?;
    if out.status == ExitStatus::Code(NO_JOURNAL) {
        return Ok(Restore::NothingChanged(format!(
            "no journal of run {run_id} on this host"
        )));
    }
    if !out.records.contains_key("restore") {
        return Err(JournalError::Stopped {
            run_id: run_id.to_string(),
            status: out.status,
            stderr: out.stderr.trim().to_string(),
        });
    }
    restore_result(&out.records).map_err(|source| JournalError::Check {
        source,
        stderr: out.stderr.trim().to_string(),
    })
}

/// What the restore check (`parc_restore_check`) reported.
pub fn restore_result(
    records: &std::collections::BTreeMap<String, Record>,
) -> Result<Restore, CheckError> {
    let Some(r) = records.get("restore") else {
        return Err(CheckError::NoReport);
    };
    if r.get("checked") != Some("done") {
        return Err(CheckError::Unfinished);
    }
    if let Some(why) = r.get("incomplete") {
        return Ok(Restore::NothingChanged(why.to_string()));
    }
    Ok(Restore::Checked(
        r.fields
            .iter()
            .filter(|(k, _)| k.starts_with("bad_"))
            .map(|(_, v)| v.clone())
            .collect(),
    ))
}

/// Before a reboot on purpose: claim the fate of journal `run_id` (if the
/// run wrote one) as [`Fate::Rebooting`], keep the host lock across the
/// reboot, and say when PID 1 started (`parc_reboot_claim` in journal.sh).
pub fn reboot_claim_script(run_id: &str) -> Script {
    let mut s = Script::new();
    s.sh(JOURNAL_SH);
    s.sh(&format!(
        "parc_reboot_claim {} {}",
        quote_path(&dir(run_id)),
        quote_path(run_id)
    ));
    s
}

/// After a reboot: when PID 1 started and, if that differs from `boot`,
/// withdraw the claim and arm a new dead-man watchdog for `window`
/// (`parc_reboot_back` in journal.sh).
pub fn reboot_back_script(run_id: &str, boot: &str, window: Option<std::time::Duration>) -> Script {
    let mut s = Script::new();
    s.sh(JOURNAL_SH);
    s.sh(&format!(
        "parc_reboot_back {} {} {}",
        quote_path(&dir(run_id)),
        quote_path(boot),
        window.map_or(0, |w| w.as_secs().max(1))
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::local::LocalTransport;

    /// When PID 1 started, as the host's sh tells it: the boot time and PID
    /// 1's start tick (field 22 of its stat, after a name that may hold
    /// spaces), read without a process per field.
    #[tokio::test]
    async fn the_boot_is_told_by_when_pid_1_started() {
        let stat = std::fs::read_to_string("/proc/1/stat").unwrap();
        let after_name = &stat[stat.rfind(") ").unwrap() + 2..];
        let start = after_name.split_whitespace().nth(19).unwrap();
        let btime = std::fs::read_to_string("/proc/stat").unwrap();
        let btime = btime
            .lines()
            .find_map(|l| l.strip_prefix("btime "))
            .unwrap();
        let expected = format!("{btime}.{start}");
        // No journal for this run id: nothing is claimed or armed, only told.
        let run = "19700101T000000-0000";
        let out = reboot_back_script(run, "0.0", Some(std::time::Duration::from_secs(5)))
            .run(&LocalTransport)
            .await
            .unwrap();
        let boot = &out.records["boot"];
        assert_eq!(boot.get("boot"), Some(expected.as_str()), "{}", out.stderr);
        assert_eq!(boot.get("fate"), None);
        let out = reboot_back_script(run, &expected, None)
            .run(&LocalTransport)
            .await
            .unwrap();
        assert_eq!(out.records["boot"].get("boot"), Some(expected.as_str()));
    }

    /// One call saves every path, whatever its name, and the restore puts
    /// each back: files (their copies in saved.tar, or each its own without
    /// tar), links, a link another path lies below (saved on its own, so the
    /// tar never holds a path below a link), a path that was absent.
    #[tokio::test]
    async fn every_path_saved_at_once_is_restored() {
        for no_tar in [false, true] {
            let tmp = tempfile::tempdir().unwrap();
            let root = tmp.path().to_string_lossy().into_owned();
            let d = |p: &str| format!("{root}/{p}");
            let files = ["plain", "new\nline", "back\\slash", "sub/inner"];
            std::fs::create_dir(d("sub")).unwrap();
            for (i, f) in files.iter().enumerate() {
                std::fs::write(d(f), format!("old {i}\n")).unwrap();
            }
            std::os::unix::fs::symlink("plain", d("link")).unwrap();
            std::os::unix::fs::symlink(d("sub"), d("to sub")).unwrap();
            let paths = [
                d("plain"),
                d("new\nline"),
                d("back\\slash"),
                d("link"),
                d("to sub"),
                d("to sub/inner"),
                d("absent"),
            ];
            let mut s = Script::new();
            s.lib(JOURNAL_SH);
            if no_tar {
                s.sh("tar() { return 1; }");
            }
            let args: Vec<String> = paths
                .iter()
                .enumerate()
                .map(|(n, p)| format!("{n} path {}", quote_path(p)))
                .collect();
            s.sh(&format!(
                "PARC_JOURNAL={j}; mkdir -p \"$PARC_JOURNAL/entries\"\n\
                 parc_journal_save_all {} && echo complete > \"$PARC_JOURNAL/complete\" || exit 1\n\
                 for f in {}; do echo changed > \"$f\"; done\n\
                 ln -sfn elsewhere {link}; echo new > {absent}\n\
                 parc_restore \"$PARC_JOURNAL\" rollback",
                args.join(" "),
                files
                    .iter()
                    .map(|f| quote_path(&d(f)))
                    .collect::<Vec<_>>()
                    .join(" "),
                j = quote_path(&d("journal")),
                link = quote_path(&d("link")),
                absent = quote_path(&d("absent")),
            ));
            let out = s.run(&LocalTransport).await.unwrap();
            let restore = &out.records["restore"];
            assert_eq!(restore.get("checked"), Some("done"), "{}", out.stderr);
            let bad: Vec<_> = restore
                .fields
                .keys()
                .filter(|k| k.starts_with("bad"))
                .collect();
            assert!(
                bad.is_empty(),
                "no tar: {no_tar}: {restore:?} {}",
                out.stderr
            );
            for (i, f) in files.iter().enumerate() {
                assert_eq!(std::fs::read_to_string(d(f)).unwrap(), format!("old {i}\n"));
            }
            assert_eq!(
                std::fs::read_link(d("link")).unwrap().to_str(),
                Some("plain")
            );
            assert_eq!(
                std::fs::read_link(d("to sub")).unwrap(),
                std::path::PathBuf::from(d("sub"))
            );
            assert!(!std::path::Path::new(&d("absent")).exists());
            let saved = std::path::Path::new(&d("journal/saved.tar")).exists();
            assert_eq!(saved, !no_tar);
            let own_copy = |n: usize| {
                std::fs::symlink_metadata(d(&format!("journal/entries/{n}.data"))).is_ok()
            };
            assert!(
                own_copy(4),
                "a link a saved path lies below has its own copy"
            );
            assert_eq!(own_copy(3), no_tar, "a link is in saved.tar");
        }
    }

    /// The restore check reads a journal's entries as files named after
    /// their number (a file's copy in the journal's saved.tar), and also the
    /// directory per entry, each with its copy, of journals written before (a
    /// host upgraded between a run and its recovery): the same entries, in
    /// either layout, are found whole, and a changed file is told in both.
    #[tokio::test]
    async fn the_restore_check_reads_both_entry_layouts() {
        let tmp = tempfile::tempdir().unwrap();
        let d = quote_path(&tmp.path().to_string_lossy());
        let mut s = Script::new();
        s.lib(JOURNAL_SH);
        s.sh(&format!(
            "echo kept > {d}/f\n\
             PARC_JOURNAL={d}/new; mkdir -p \"$PARC_JOURNAL/entries\"\n\
             parc_journal_save_all 0 path {d}/f 1 path {d}/created && echo complete > \"$PARC_JOURNAL/complete\" || exit 1\n\
             for n in 0 1; do mkdir -p {d}/old/entries/$n; for f in {d}/new/entries/$n.*; do cp -a \"$f\" {d}/old/entries/$n/\"${{f##*.}}\"; done; done\n\
             cp -a {d}/f {d}/old/entries/0/data\n\
             cp {d}/new/complete {d}/old/ && touch {d}/created"
        ));
        let out = s.run(&LocalTransport).await.unwrap();
        assert!(out.stderr.is_empty(), "{}", out.stderr);
        fn check(d: &str, layout: &str, content: &str) -> Script {
            let mut s = Script::new();
            s.lib(JOURNAL_SH);
            s.sh(&format!(
                "echo {content} > {d}/f; parc_restore_check {d}/{layout}"
            ));
            s
        }
        for layout in ["new", "old"] {
            let out = check(&d, layout, "kept")
                .run(&LocalTransport)
                .await
                .unwrap();
            let found = &out.records["restore"];
            assert_eq!(
                found.get("checked"),
                Some("done"),
                "{layout}: {}",
                out.stderr
            );
            assert_eq!(found.get("bad_0"), None, "{layout}");
            let bad_1 = found.get("bad_1").unwrap_or_default();
            assert!(bad_1.starts_with("still present"), "{layout}: {bad_1}");
            let out = check(&d, layout, "changed")
                .run(&LocalTransport)
                .await
                .unwrap();
            let bad_0 = out.records["restore"].get("bad_0").unwrap_or_default();
            assert!(bad_0.starts_with("content differs"), "{layout}: {bad_0}");
        }
    }
}
