//! The cost of a host is the processes it starts (issue 17): a bound on them
//! for the `mixed` profile (tests/fixtures/mixed: every resource kind the
//! namespace lab supports, 6 verification commands), counted on a real lab
//! host with strace attached to its sshd (needs root, openssh-server, strace).
//!
//! The bounds are on the processes parc starts; the profile's own commands
//! (its `command` resources, handlers and verification commands, and
//! everything they start) are counted apart: they are the work asked for.

mod common;

use std::path::Path;

use common::TestLab;
use common::procs::{Processes, Tracer};

/// Issue 17's bounds on the processes parc may start on a host: an apply
/// that changes nothing (21 measured), and a first run (60 measured, 17 of
/// them forks inside `useradd` and `groupadd`, which try nscd and
/// sss_cache whether or not they are installed).
const GOAL: Bounds = Bounds {
    no_change: 25,
    first_run: 60,
};

struct Bounds {
    no_change: usize,
    first_run: usize,
}

/// Applies `playbook` with strace on the host's sshd: the host's end state
/// and the processes it started.
fn traced_apply(lab: &TestLab, playbook: &Path) -> (String, Processes) {
    let tracer = Tracer::attach(lab.lab.hosts[0].pid);
    let (out, ev) = lab.apply_json(playbook);
    let processes = tracer.finish();
    let finished = common::finished(&ev);
    assert_eq!(
        finished.len(),
        1,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let state = finished[0]["state"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        out.status.success(),
        "apply failed ({state}): {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (state, processes)
}

#[test]
fn a_host_starts_few_processes_whatever_its_profile() {
    common::require_root_and_sshd();
    let lab = TestLab::start(1);
    let work = tempfile::tempdir().unwrap();
    let playbook = common::mixed_fixture(work.path());
    let (state, first) = traced_apply(&lab, &playbook);
    assert_eq!(state, "changed");
    let (state, again) = traced_apply(&lab, &playbook);
    assert_eq!(state, "ok", "the second run changes nothing");
    for (run, p) in [("first run", &first), ("no change", &again)] {
        eprintln!(
            "{run}: {} processes, {} of them parc's: {}",
            p.total(),
            p.parc(),
            p.programs()
        );
    }
    let Bounds {
        no_change,
        first_run,
    } = GOAL;
    assert!(
        first.parc() <= first_run,
        "a first run started {} processes besides the profile's commands (bound {first_run}): {}",
        first.parc(),
        first.programs()
    );
    assert!(
        again.parc() <= no_change,
        "an apply that changed nothing started {} processes besides the profile's commands \
         (bound {no_change}): {}",
        again.parc(),
        again.programs()
    );
}
