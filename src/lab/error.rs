//! Why a lab operation failed.
//!
//! Each message says what was expected and what happened as a consequence, because
//! the person reading it is usually a technician who ran `parc lab up` once to try
//! parc out and has never seen a mount namespace.

use std::net::Ipv4Addr;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error(
        "parc lab needs root: it creates mount namespaces and overlay mounts. Run it as root \
         (sudo parc lab up); nothing was started (effective uid is {uid})"
    )]
    NotRoot { uid: u32 },

    #[error(
        "parc lab needs `{tool}`, which was not found in /usr/local/sbin, /usr/local/bin, \
         /usr/sbin, /usr/bin, /sbin or /bin; install it with `apt-get install {package}` \
         (nothing was started)"
    )]
    MissingTool {
        tool: &'static str,
        package: &'static str,
    },

    #[error(
        "a lab is already running in {dir}; run `parc lab down --dir {dir}` first or pick \
         another --dir (the running lab was left untouched)"
    )]
    AlreadyUp { dir: PathBuf },

    #[error(
        "no lab is up in {dir}: {dir}/state.json does not exist, so there is nothing to \
         act on; start one with `parc lab up --dir {dir}`"
    )]
    NotUp { dir: PathBuf },

    #[error(
        "{dir} already contains `{entry}` but no state.json, so it was not created by \
         `parc lab up`; parc refuses to overwrite it (and `parc lab down` would delete it). \
         Pick an empty or new --dir"
    )]
    DirInUse { dir: PathBuf, entry: &'static str },

    #[error(
        "subnet {subnet} is refused: lab addresses are 127.SUBNET.x.y with SUBNET from 1 to \
         254, and 127.0.x.x is left to services that listen on localhost; nothing was started"
    )]
    BadSubnet { subnet: u8 },

    #[error("a lab needs at least one host (--hosts 1 or more); nothing was started")]
    NoHosts,

    #[error(
        "{hosts} hosts do not fit in one subnet (at most {max}: 250 addresses in each of 256 \
         blocks); use fewer hosts, nothing was started"
    )]
    TooManyHosts { hosts: usize, max: usize },

    #[error("{what} {path} cannot be used: {reason}; pick another path, nothing was started")]
    BadPath {
        what: &'static str,
        path: PathBuf,
        reason: &'static str,
    },

    #[error(
        "{address}:22 already accepts connections (another lab or an sshd uses this subnet); \
         pick another --subnet, nothing was started"
    )]
    AddressInUse { address: Ipv4Addr },

    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("cannot run {command}: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },

    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: std::process::ExitStatus,
        stderr: String,
    },

    #[error(
        "cannot render {path}: {source}; the lab was not started because its inventory \
         would be missing"
    )]
    Yaml {
        path: PathBuf,
        source: serde_norway::Error,
    },

    #[error(
        "{path} is not a valid lab state file ({source}); parc cannot tell which hosts \
         belong to this lab. Stop its sshd processes by hand and remove the directory"
    )]
    State {
        path: PathBuf,
        source: serde_json::Error,
    },

    #[error(
        "host {host} did not accept connections on {address}:22 within {secs}s, so the lab \
         was torn down; last lines of its log:\n{log_tail}"
    )]
    StartTimeout {
        host: String,
        address: Ipv4Addr,
        secs: u64,
        log_tail: String,
    },

    #[error(
        "host {host} exited while starting, so the lab was torn down; last lines of its \
         log:\n{log_tail}"
    )]
    HostDied { host: String, log_tail: String },

    #[error(
        "debootstrap could not build the root file system of systemd hosts (full log in \
         {log}), so no host was started; last lines:\n{log_tail}"
    )]
    RootfsBuild { log: PathBuf, log_tail: String },

    #[error("lab {dir} has no host named `{name}`; its hosts are {known}")]
    UnknownHost {
        dir: PathBuf,
        name: String,
        known: String,
    },

    #[error(
        "processes {pids:?} of the lab survived SIGKILL (stuck in the kernel?); the lab \
         directory was kept because its mounts may still be in use. Retry `parc lab down`"
    )]
    ProcessesRemain { pids: Vec<u32> },

    #[error("cannot send {signal} to process {pid}: {source}")]
    Signal {
        pid: u32,
        signal: &'static str,
        source: nix::Error,
    },

    #[error(
        "{error}; removing the half-started lab failed too ({cleanup}), so run \
         `parc lab down --dir {dir}` once the cause is fixed"
    )]
    CleanupFailed {
        error: Box<LabError>,
        cleanup: Box<LabError>,
        dir: PathBuf,
    },

    #[error("cannot write to standard output: {0}")]
    Output(#[source] std::io::Error),
}

impl LabError {
    /// Shorthand for the common "this file operation failed" case.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| LabError::Io {
            action,
            path,
            source,
        }
    }
}

impl LabError {
    /// Errors that mean "this machine lacks something", as opposed to a failure
    /// of parc or of the lab itself: they get their own exit code.
    pub fn is_environment(&self) -> bool {
        matches!(
            self,
            LabError::NotRoot { .. } | LabError::MissingTool { .. }
        )
    }
}
