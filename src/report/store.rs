//! The runs directory: one subdirectory per run, named by its run id (which
//! starts with the run's local start time, so names sort by time).

use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::ReportError;
use super::record::{HostRecord, Persist, Report, RunMeta};
use crate::events::Event;
use crate::location::Location;

pub const REPORT_JSON: &str = "report.json";
pub const REPORT_HTML: &str = "report.html";
/// One host record per line, appended as each host ends: what a controller
/// killed between checkpoints knew, at a cost per host that does not grow
/// with the fleet (report.json is rewritten whole, so only at checkpoints).
pub const HOSTS_JSONL: &str = "hosts.jsonl";

/// How many run ids an "unknown run" error lists.
const RECENT: usize = 5;

#[derive(Debug, Clone)]
pub struct RunsDir {
    path: PathBuf,
}

impl RunsDir {
    pub fn new(path: impl Into<PathBuf>) -> RunsDir {
        RunsDir { path: path.into() }
    }

    /// Ids of the runs that left a report, oldest first.
    pub fn runs(&self) -> Result<Vec<String>, ReportError> {
        let entries = match std::fs::read_dir(&self.path) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(ReportError::Read {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        let mut ids: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().join(REPORT_JSON).is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        // Ids start with the start time to the second, then a random tail: runs
        // started in the same second are put in order by their recorded start.
        let second = |id: &String| id.split('-').next().map(str::to_string);
        for group in ids.chunk_by_mut(|a, b| second(a) == second(b)) {
            if group.len() > 1 {
                group.sort_by_cached_key(|id| {
                    Self::load(&self.path.join(id)).ok().map(|r| r.started)
                });
            }
        }
        Ok(ids)
    }

    /// The directory of run `id` (exact, or a unique prefix or suffix such as
    /// the 4-digit tail), or of the latest run when `id` is `None`.
    pub fn find(&self, id: Option<&str>) -> Result<PathBuf, ReportError> {
        let runs = self.runs()?;
        let Some(latest) = runs.last() else {
            return Err(ReportError::NoRuns {
                dir: self.path.clone(),
            });
        };
        let Some(id) = id else {
            return Ok(self.path.join(latest));
        };
        if runs.iter().any(|r| r == id) {
            return Ok(self.path.join(id));
        }
        let matches: Vec<String> = runs
            .iter()
            .filter(|r| !id.is_empty() && (r.starts_with(id) || r.ends_with(id)))
            .cloned()
            .collect();
        match matches.as_slice() {
            [one] => Ok(self.path.join(one)),
            [] => Err(ReportError::UnknownRun {
                id: id.to_string(),
                dir: self.path.clone(),
                recent: runs.iter().rev().take(RECENT).cloned().collect(),
            }),
            _ => Err(ReportError::AmbiguousRun {
                id: id.to_string(),
                matches,
            }),
        }
    }

    /// The hosts that ended in `state` in run `id` (the latest when `None`),
    /// in any of its plays.
    pub fn hosts_ended(
        &self,
        id: Option<&str>,
        state: PastState,
    ) -> Result<PastHosts, ReportError> {
        let report = Self::load(&self.find(id)?)?;
        let hosts = report
            .hosts
            .into_iter()
            .filter(|h| state.states().contains(&h.state.as_str()))
            .map(|h| h.host)
            .collect();
        Ok(PastHosts {
            run_id: report.run_id,
            hosts,
        })
    }

    /// A run's report, with the hosts that ended after its last checkpoint
    /// when the run did not finish (the controller was stopped).
    pub fn load(run_dir: &Path) -> Result<Report, ReportError> {
        let (_, mut report) = Self::load_text(run_dir)?;
        let ended = Self::ended_since_checkpoint(run_dir, &report)?;
        report.hosts.extend(ended);
        Ok(report)
    }

    /// report.json as written, so fields this parc does not know survive,
    /// with the hosts that ended after its last checkpoint added to `hosts`
    /// when the run did not finish.
    pub fn load_json(run_dir: &Path) -> Result<String, ReportError> {
        let (text, report) = Self::load_text(run_dir)?;
        let ended = Self::ended_since_checkpoint(run_dir, &report)?;
        if ended.is_empty() {
            return Ok(text);
        }
        let parse = |e: serde_json::Error| parse_error(&run_dir.join(REPORT_JSON), 1, &e);
        let mut value: serde_json::Value = serde_json::from_str(&text).map_err(parse)?;
        if let Some(hosts) = value.get_mut("hosts").and_then(|h| h.as_array_mut()) {
            for h in ended {
                hosts.push(serde_json::to_value(h).map_err(parse)?);
            }
        }
        Ok(serde_json::to_string_pretty(&value).map_err(parse)? + "\n")
    }

    fn load_text(run_dir: &Path) -> Result<(String, Report), ReportError> {
        let path = run_dir.join(REPORT_JSON);
        let text = read(&path)?;
        let report = serde_json::from_str(&text).map_err(|e| parse_error(&path, 1, &e))?;
        Ok((text, report))
    }

    /// The records in hosts.jsonl that `report` lacks; none once the run
    /// finished, as its report then holds every host. A last line without
    /// its newline is a write the controller did not complete, and is left
    /// out; any other line that is not a host record is an error.
    fn ended_since_checkpoint(
        run_dir: &Path,
        report: &Report,
    ) -> Result<Vec<HostRecord>, ReportError> {
        if report.finished.is_some() {
            return Ok(Vec::new());
        }
        let path = run_dir.join(HOSTS_JSONL);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(ReportError::Read { path, source }),
        };
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        let ended = complete
            .split('\n')
            .enumerate()
            .filter(|(_, line)| !line.is_empty())
            .map(|(i, line)| serde_json::from_str(line).map_err(|e| parse_error(&path, i + 1, &e)))
            .collect::<Result<Vec<HostRecord>, _>>()?;
        Ok(report.ended_since_checkpoint(ended))
    }
}

/// How a host ended a run, as `--limit @failed` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PastState {
    /// Did not end as declared: failed, and also rolled back or degraded (a
    /// fallback is not the profile).
    Failed,
    /// Could not be reached (a laptop that was off).
    Unreachable,
    /// Refused for a changed or revoked host key.
    Untrusted,
}

impl PastState {
    /// The recorded host states (`HostState::as_str`) this stands for.
    fn states(self) -> &'static [&'static str] {
        match self {
            PastState::Failed => &["failed", "rolled_back", "degraded"],
            PastState::Unreachable => &["unreachable"],
            PastState::Untrusted => &["untrusted"],
        }
    }
}

impl std::str::FromStr for PastState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "failed" => Ok(PastState::Failed),
            "unreachable" => Ok(PastState::Unreachable),
            "untrusted" => Ok(PastState::Untrusted),
            other => Err(format!(
                "`{other}` is not a state a run records hosts in: use @failed, @unreachable or @untrusted, or @RUN_ID:failed for an older run"
            )),
        }
    }
}

/// The hosts of one past run that ended in a [`PastState`].
#[derive(Debug)]
pub struct PastHosts {
    pub run_id: String,
    pub hosts: std::collections::BTreeSet<String>,
}

/// A finished run's record, as written.
pub struct Recorded {
    /// Where `report.html` is, to tell the operator.
    pub html: PathBuf,
    pub report: Report,
}

/// Keeps one run's report up to date on disk as its events arrive.
pub struct ReportWriter {
    dir: PathBuf,
    report: Report,
    tz: TimeZone,
    saved: bool,
    /// hosts.jsonl, opened for appending.
    hosts: std::fs::File,
}

impl ReportWriter {
    /// Creates the run's directory now, before any host is touched: a runs
    /// directory that cannot be written must stop the run, not leave it
    /// unrecorded. The directory claims the run's id: while a run already
    /// has the one drawn (two runs started in the same second that drew the
    /// same tail), `next_id` draws again, a few times; the id taken is
    /// [`ReportWriter::run_id`].
    pub fn create(
        runs: &RunsDir,
        mut next_id: impl FnMut() -> String,
        meta: RunMeta,
    ) -> Result<ReportWriter, ReportError> {
        const DRAWS: usize = 8;
        let mut draw = 1;
        let (run_id, dir) = loop {
            let id = next_id();
            let dir = runs.path.join(&id);
            match std::fs::create_dir_all(&runs.path).and_then(|()| std::fs::create_dir(&dir)) {
                Ok(()) => break (id, dir),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && draw < DRAWS => {
                    draw += 1
                }
                Err(source) => return Err(ReportError::CreateRunDir { path: dir, source }),
            }
        };
        let hosts_path = dir.join(HOSTS_JSONL);
        let hosts = std::fs::OpenOptions::new()
            .append(true)
            .create_new(true)
            .open(&hosts_path)
            .map_err(|source| ReportError::CreateRunDir {
                path: hosts_path,
                source,
            })?;
        Ok(ReportWriter {
            dir,
            report: Report::new(&run_id, meta, Timestamp::now()),
            tz: TimeZone::system(),
            saved: false,
            hosts,
        })
    }

    pub fn event(&mut self, event: &Event, now: Timestamp) -> Result<(), ReportError> {
        self.saved = false;
        match self.report.record(event, now) {
            Persist::Nothing => Ok(()),
            Persist::Host => self.append_host(),
            Persist::Checkpoint => self.save(),
        }
    }

    /// Appends the host that just ended to hosts.jsonl in a single write of
    /// the whole line, so a controller killed now leaves the line complete
    /// or absent (a reader drops a last line without its newline).
    fn append_host(&mut self) -> Result<(), ReportError> {
        let Some(host) = self.report.hosts.last() else {
            return Ok(());
        };
        let failed = || write_failed(self.dir.join(HOSTS_JSONL));
        let line = serde_json::to_string(host).map_err(|e| failed()(e.into()))?;
        self.hosts
            .write_all((line + "\n").as_bytes())
            .and_then(|()| self.hosts.flush())
            .map_err(failed())
    }

    /// The id this run's directory claimed.
    pub fn run_id(&self) -> &str {
        &self.report.run_id
    }

    /// Write what has not been written yet.
    pub fn finish(mut self) -> Result<Recorded, ReportError> {
        if !self.saved {
            self.save()?;
        }
        Ok(Recorded {
            html: self.dir.join(REPORT_HTML),
            report: self.report,
        })
    }

    fn save(&mut self) -> Result<(), ReportError> {
        // Serialized straight into the file: at 500 hosts the text of the
        // report is megabytes the controller need not hold beside it.
        write_replacing(&self.dir.join(REPORT_JSON), |out| {
            serde_json::to_writer_pretty(&mut *out, &self.report)?;
            out.write_all(b"\n")
        })?;
        let html = super::html::render(&self.report, &self.tz);
        write_replacing(&self.dir.join(REPORT_HTML), |out| {
            out.write_all(html.as_bytes())
        })?;
        self.saved = true;
        Ok(())
    }
}

fn read(path: &Path) -> Result<String, ReportError> {
    std::fs::read_to_string(path).map_err(|source| ReportError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// `line` is where the parsed text starts in the file, from 1.
fn parse_error(path: &Path, line: usize, e: &serde_json::Error) -> ReportError {
    ReportError::Parse {
        location: Location {
            file: path.to_path_buf(),
            line: line + e.line() - 1,
            column: e.column(),
        },
        message: e.to_string(),
    }
}

/// Write then rename, so a reader (or a crash) never sees half a report.
fn write_replacing(
    path: &Path,
    write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<(), ReportError> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::File::create(&tmp)
        .map(std::io::BufWriter::new)
        .and_then(|mut out| {
            write(&mut out)?;
            out.into_inner()
                .map_err(std::io::IntoInnerError::into_error)?;
            Ok(())
        })
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(write_failed(path.to_path_buf()))
}

fn write_failed(path: PathBuf) -> impl FnOnce(std::io::Error) -> ReportError {
    move |source| ReportError::Write { path, source }
}
