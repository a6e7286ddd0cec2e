//! Orchestration: which hosts, in what order and parallelism, doing what.
//!
//! Architecture note: every action (ad-hoc command, facts, and later apply and
//! verify) is an async function `host + transport -> Outcome`. [`fleet::run`]
//! owns the parallelism (a semaphore of `--parallel` permits), the connection
//! (one per host, reused for all of that host's steps) and the events. Nothing in
//! here prints; see `events.rs` for the contract with the reporters.

pub mod adhoc;
pub mod apply;
pub mod connect;
pub mod events;
pub mod fleet;
pub mod gather;
pub mod imaging;
pub mod lock;
pub mod rollback;
pub mod rollout;
pub mod verify;

/// A run identifier that sorts by time and is unique enough across operators:
/// `20261128T231502-3f9a`.
pub fn new_run_id() -> String {
    let now = jiff::Zoned::now();
    let salt =
        (std::process::id() as u64) ^ u64::from(now.timestamp().subsec_nanosecond().unsigned_abs());
    format!("{}-{:04x}", now.strftime("%Y%m%dT%H%M%S"), salt & 0xffff)
}
