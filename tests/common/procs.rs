//! Counting the processes a lab host starts, from outside the host.
//!
//! A namespace lab host shares the controller's PID namespace, so `strace -f`
//! attached to its sshd follows every process the host starts for a run: the
//! per-connection sshd, the login shells, parc's scripts and everything they
//! fork. Each fork (a clone that is not a thread) is one process started;
//! `exec` replaces a process and starts none.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The processes a host started while [`Tracer`] ran.
#[derive(Debug, Default)]
pub struct Processes {
    /// Parent of each process started.
    parent: BTreeMap<u32, u32>,
    /// The last program each process executed (argv).
    exec: BTreeMap<u32, Vec<String>>,
}

impl Processes {
    /// Every process started.
    pub fn total(&self) -> usize {
        self.parent.len()
    }

    /// Processes the profile's own commands account for: a `sh -c` that one of
    /// parc's scripts (the `sh -c` of its bootstrap, which sets the private
    /// directory `PARC_DIR` and runs the script in itself, or the host lock's
    /// shell, which runs the probe) runs is a `command` resource, a guard, a
    /// handler or a verification command the profile declares, and it and
    /// everything it starts are the profile's work, not parc's.
    pub fn profile_commands(&self) -> usize {
        let runs_script = |pid: u32| self.exec.get(&pid).is_some_and(|argv| is_parc_shell(argv));
        let own: BTreeSet<u32> = self
            .exec
            .iter()
            .filter(|(pid, argv)| {
                argv.len() >= 2
                    && argv[0] == "sh"
                    && argv[1] == "-c"
                    && self.program_of_parent(**pid).is_some_and(runs_script)
            })
            .map(|(pid, _)| *pid)
            .collect();
        self.parent
            .keys()
            .filter(|pid| {
                let mut p = **pid;
                loop {
                    if own.contains(&p) {
                        return true;
                    }
                    match self.parent.get(&p) {
                        Some(&up) => p = up,
                        None => return false,
                    }
                }
            })
            .count()
    }

    /// The nearest ancestor of `pid` that executed a program (subshells run
    /// their parent's).
    fn program_of_parent(&self, pid: u32) -> Option<u32> {
        let mut p = *self.parent.get(&pid)?;
        while !self.exec.contains_key(&p) {
            p = *self.parent.get(&p)?;
        }
        Some(p)
    }

    /// Processes parc itself started.
    pub fn parc(&self) -> usize {
        self.total() - self.profile_commands()
    }

    /// How many sessions the host opened: in each, root's login shell
    /// becomes (`exec`) the `sh -c` of the host lock or of a bootstrap.
    pub fn sessions(&self) -> usize {
        self.exec
            .values()
            .filter(|argv| is_parc_shell(argv))
            .count()
    }

    /// How many processes executed `program` (as its argv[0]).
    pub fn runs(&self, program: &str) -> usize {
        self.exec
            .values()
            .filter(|argv| argv.first().is_some_and(|p| p == program))
            .count()
    }

    /// How many processes executed each program, for failure messages.
    pub fn programs(&self) -> String {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for argv in self.exec.values() {
            *counts
                .entry(argv.first().map_or("?", String::as_str))
                .or_default() += 1;
        }
        let forks = self.total() - self.exec.len();
        let mut list: Vec<String> = counts.iter().map(|(p, n)| format!("{p} x{n}")).collect();
        list.push(format!("(forks without exec) x{forks}"));
        list.join(", ")
    }

    /// Parses `strace -f -e trace=execve,clone,clone3,fork,vfork` output.
    fn parse(trace: &str) -> Processes {
        let mut out = Processes::default();
        let mut pending: BTreeMap<u32, String> = BTreeMap::new();
        for line in trace.lines() {
            let Some((pid, rest)) = line.split_once(' ') else {
                continue;
            };
            let Ok(pid) = pid.parse::<u32>() else {
                continue;
            };
            let rest = rest.trim_start();
            if let Some(head) = rest.strip_suffix(" <unfinished ...>") {
                pending.insert(pid, head.to_string());
                continue;
            }
            let call = match rest.strip_prefix("<... ") {
                Some(resumed) => {
                    let tail = resumed.split_once("resumed>").map_or("", |(_, t)| t);
                    pending.remove(&pid).unwrap_or_default() + tail
                }
                None => rest.to_string(),
            };
            let Some((call, result)) = call.rsplit_once(" = ") else {
                continue;
            };
            let result = result.split_whitespace().next().unwrap_or("");
            let is_fork = ["clone(", "clone3(", "fork(", "vfork("]
                .iter()
                .any(|c| call.starts_with(c));
            if is_fork && !call.contains("CLONE_THREAD") {
                if let Ok(child) = result.parse::<u32>() {
                    out.parent.insert(child, pid);
                }
            } else if call.starts_with("execve(") && result == "0" {
                out.exec.insert(pid, argv(call));
            }
        }
        out
    }
}

/// The `sh -c` a session's login shell becomes: a bootstrap's, which sets
/// the private directory `PARC_DIR`, or the host lock's (`src/engine/lock.rs`),
/// as strace prints their start.
fn is_parc_shell(argv: &[String]) -> bool {
    argv.len() == 3
        && argv[0] == "sh"
        && argv[1] == "-c"
        && (argv[2].starts_with("PARC_DIR=") || argv[2].starts_with("\\nL=/var/lib/parc/lock\\n"))
}

/// The argv strings of an strace `execve(...)` line (escapes kept as printed).
fn argv(call: &str) -> Vec<String> {
    let Some(start) = call.find(", [\"") else {
        return Vec::new();
    };
    let list = &call[start + 4..];
    let end = list.find("\"]").unwrap_or(list.len());
    list[..end].split("\", \"").map(str::to_string).collect()
}

/// `strace` attached to a host's sshd until [`Tracer::finish`].
pub struct Tracer {
    child: Child,
    out: tempfile::NamedTempFile,
}

impl Tracer {
    /// Attaches to `pid` (a namespace lab host's sshd) and returns once the
    /// trace has started.
    pub fn attach(pid: u32) -> Tracer {
        let out = tempfile::NamedTempFile::new().expect("create the trace file");
        let child = Command::new("strace")
            .args(["-f", "-qq", "-s", "256", "-e", "signal=none"])
            .args(["-e", "trace=execve,clone,clone3,fork,vfork", "-o"])
            .arg(out.path())
            .arg("-p")
            .arg(pid.to_string())
            .stdin(Stdio::null())
            .spawn()
            .expect("run strace (apt-get install strace; scripts/install-deps does)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !traced(pid) {
            assert!(Instant::now() < deadline, "strace did not attach to {pid}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Tracer { child, out }
    }

    /// Detaches and returns what the host started meanwhile.
    pub fn finish(mut self) -> Processes {
        // The last processes of the run (the lock release) may still be
        // exiting when parc returns.
        std::thread::sleep(Duration::from_millis(300));
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("stop strace");
        self.child.wait().expect("wait for strace");
        // PARC_TRACE_DIR=DIR keeps each raw trace there, to see which
        // command started which process when a bound is exceeded.
        if let Some(dir) = std::env::var_os("PARC_TRACE_DIR") {
            let name = format!("trace.{}.{}", std::process::id(), self.child.id());
            let _ = std::fs::copy(self.out.path(), Path::new(&dir).join(name));
        }
        Processes::parse(&std::fs::read_to_string(self.out.path()).expect("read the trace"))
    }
}

fn traced(pid: u32) -> bool {
    std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("status")).is_ok_and(
        |s| {
            s.lines()
                .find_map(|l| l.strip_prefix("TracerPid:"))
                .is_some_and(|t| t.trim() != "0")
        },
    )
}
