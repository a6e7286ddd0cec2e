//! The runs directory: one subdirectory per run, named by its run id (which
//! starts with the run's local start time, so names sort by time).

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::ReportError;
use super::record::{Report, RunMeta};
use crate::events::Event;
use crate::location::Location;

pub const REPORT_JSON: &str = "report.json";
pub const REPORT_HTML: &str = "report.html";

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

    pub fn load(run_dir: &Path) -> Result<Report, ReportError> {
        let path = run_dir.join(REPORT_JSON);
        let text = std::fs::read_to_string(&path).map_err(|source| ReportError::Read {
            path: path.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| ReportError::Parse {
            location: Location {
                file: path,
                line: e.line(),
                column: e.column(),
            },
            message: e.to_string(),
        })
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
}

impl ReportWriter {
    /// Creates the run's directory now, before any host is touched: a runs
    /// directory that cannot be written must stop the run, not leave it
    /// unrecorded.
    pub fn create(
        runs: &RunsDir,
        run_id: &str,
        meta: RunMeta,
    ) -> Result<ReportWriter, ReportError> {
        let dir = runs.path.join(run_id);
        std::fs::create_dir_all(&runs.path)
            .and_then(|()| std::fs::create_dir(&dir))
            .map_err(|source| ReportError::CreateRunDir {
                path: dir.clone(),
                source,
            })?;
        Ok(ReportWriter {
            dir,
            report: Report::new(run_id, meta, Timestamp::now()),
            tz: TimeZone::system(),
            saved: false,
        })
    }

    pub fn event(&mut self, event: &Event, now: Timestamp) -> Result<(), ReportError> {
        self.saved = false;
        if self.report.record(event, now) {
            self.save()?;
        }
        Ok(())
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
        let json = serde_json::to_string_pretty(&self.report)
            .map_err(|e| std::io::Error::other(e.to_string()))
            .map_err(|source| ReportError::Write {
                path: self.dir.join(REPORT_JSON),
                source,
            })?;
        write_replacing(&self.dir.join(REPORT_JSON), (json + "\n").as_bytes())?;
        let html = super::html::render(&self.report, &self.tz);
        write_replacing(&self.dir.join(REPORT_HTML), html.as_bytes())?;
        self.saved = true;
        Ok(())
    }
}

/// Write then rename, so a reader (or a crash) never sees half a report.
fn write_replacing(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| ReportError::Write {
            path: path.to_path_buf(),
            source,
        })
}
