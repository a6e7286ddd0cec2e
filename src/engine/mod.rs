//! Orchestration: which hosts, in what order and parallelism, doing what.
//!
//! Architecture note: every action (ad-hoc command, facts, and later apply and
//! verify) is an async function `host + transport -> Outcome`. [`fleet::run`]
//! owns the parallelism (a semaphore of `--parallel` permits), the connection
//! (one per host, reused for all of that host's steps) and the events. Nothing in
//! here prints; see [`crate::events`] for the contract with the reporters.
//!
//! Lifecycle of one host in `parc apply` (`plan` stops after step 3's plan):
//! 1. [`fleet::run`] takes a permit and connects ([`connect`]); a host that
//!    cannot be reached, or whose key is refused, ends here as unreachable or
//!    untrusted, with nothing sent.
//! 2. [`apply::apply_host`] takes the host lock ([`lock`]; the facts probe
//!    rides in its exec), then writes the play's image stage ([`imaging`]) if
//!    it has one.
//! 3. Converge: variables, redactor and tests from the play's
//!    [`context::PlayContext`]; render; ONE probe exec; plan locally; ONE
//!    apply exec that writes the journal before the first change; at most one
//!    exec for notified handlers; ONE exec for the profile's tests.
//! 4. On failure, the play's `on_failure` (restore, fallback or keep); with
//!    `confirm:`, the dead-man switch is confirmed over a new connection.
//! 5. Each stage's failure is a typed [`error::HostError`] until the host's
//!    `Outcome` is built: a lost connection reads as unreachable, input that
//!    does not render as invalid, anything else as failed. The outcome is
//!    redacted as a whole, sent as an event, and counted in the summary that
//!    [`crate::error::exit_code`] turns into the exit status.

pub mod adhoc;
pub mod apply;
pub mod audit;
pub mod connect;
pub mod context;
pub mod error;
pub mod fleet;
pub mod gather;
pub mod imaging;
pub mod lock;
pub mod output;
pub mod rollback;
pub mod rollout;

/// A run identifier that sorts by time, with a random tail: `20261128T231502-3f9a`.
/// Two runs of one controller started in the same second may still draw the
/// same tail; the run's directory is what claims an id
/// ([`crate::report::ReportWriter::create`] draws again), and a host refuses
/// a journal whose id it already holds.
pub fn new_run_id() -> String {
    let now = jiff::Zoned::now();
    let mut tail = [0u8; 2];
    if getrandom::getrandom(&mut tail).is_err() {
        // No system randomness (a bare container): the clock's nanoseconds
        // still differ between two draws.
        tail = (now.timestamp().subsec_nanosecond() as u16).to_le_bytes();
    }
    format!(
        "{}-{:04x}",
        now.strftime("%Y%m%dT%H%M%S"),
        u16::from_le_bytes(tail)
    )
}

/// A run id given on the command line (`parc rollback RUN_ID`), checked
/// against the form [`new_run_id`] makes before it reaches any host: it names
/// a directory in every target's journal store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunId(String);

impl std::str::FromStr for RunId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let b = s.as_bytes();
        let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
        let ok = b.len() == 20
            && digits(0..8)
            && b[8] == b'T'
            && digits(9..15)
            && b[15] == b'-'
            && b[16..]
                .iter()
                .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
        if ok {
            Ok(RunId(s.to_string()))
        } else {
            Err(format!(
                "`{s}` is not a run id (such as 20261128T231502-3f9a: see `parc report`); nothing was sent to any host"
            ))
        }
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
