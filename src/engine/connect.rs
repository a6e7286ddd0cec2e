//! From an inventory host to an open transport.
//!
//! Precedence for every connection setting: what the inventory says, then
//! `~/.ssh/config` (through `ssh -G`, the exact source of truth where an OpenSSH
//! client exists), then OpenSSH's defaults. Doing it here keeps both the inventory
//! and the transports ignorant of each other.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::inventory::{ConnectionKind, Host, Inventory};
use crate::transport::known_hosts::{HostKeyCheck, HostKeyPolicy};
use crate::transport::local::LocalTransport;
use crate::transport::ssh::{SshTarget, SshTransport};
use crate::transport::ssh_config::{self, SshArgs, SshResolved};
use crate::transport::sudo::Sudo;
use crate::transport::{Transport, TransportError};

/// `--read-timeout`'s default, in seconds: far longer than reading a host
/// takes (hashing a 20 GiB file at 100 MB/s is 200 s), and short enough
/// that a hung read does not hold a rollout for good.
pub const DEFAULT_READ_TIMEOUT: u64 = 600;

/// Run-wide connection settings from the command line.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Overrides every host's policy when set (`--host-key-policy`).
    pub host_key_policy: Option<HostKeyPolicy>,
    pub connect_timeout: Duration,
    /// How long a script that only reads a host (its facts, the probe, the
    /// verification tests) may run before parc gives up on it and the host
    /// fails (`--read-timeout`); `None`: for ever.
    pub read_timeout: Option<Duration>,
    /// sudo password for hosts with `become` (from a prompt or the environment).
    pub become_password: Option<String>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            host_key_policy: None,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Some(Duration::from_secs(DEFAULT_READ_TIMEOUT)),
            become_password: None,
        }
    }
}

/// Open a transport to `host`, wrapped in sudo when the host says `become`.
pub async fn connect(
    inventory: &Inventory,
    host: &Host,
    options: &ConnectOptions,
) -> Result<Arc<dyn Transport>, TransportError> {
    let base: Arc<dyn Transport> = match host.connection.kind {
        ConnectionKind::Local => Arc::new(LocalTransport),
        ConnectionKind::Ssh => {
            let target = ssh_target(inventory, host, options, 0).await?;
            Arc::new(SshTransport::connect(&target).await?)
        }
    };
    Ok(match &host.connection.become_ {
        None => base,
        Some(b) => {
            let password = b
                .password_env
                .as_ref()
                .and_then(|var| std::env::var(var).ok())
                .or_else(|| options.become_password.clone());
            Arc::new(Sudo::new(base, b.user.clone(), password))
        }
    })
}

/// Jump chains longer than this are a configuration loop, not a network.
const MAX_JUMPS: usize = 8;

async fn ssh_target(
    inventory: &Inventory,
    host: &Host,
    options: &ConnectOptions,
    depth: usize,
) -> Result<SshTarget, TransportError> {
    let c = &host.connection;
    let alias = c.address.clone().unwrap_or_else(|| host.name.clone());
    let resolved = resolve(&host.name, &alias, &c.ssh_args).await?;
    let jump_spec = c.jump.clone().or(resolved.proxy_jump.clone());
    let jump = match jump_spec {
        None => None,
        Some(_) if depth >= MAX_JUMPS => {
            return Err(TransportError::Connect {
                host: host.name.clone(),
                addr: alias,
                reason: format!("more than {MAX_JUMPS} jump hosts: is there a ProxyJump loop?"),
            });
        }
        Some(spec) => Some(Box::new(
            Box::pin(jump_target(
                inventory,
                &host.name,
                &spec,
                &c.ssh_args,
                options,
                depth + 1,
            ))
            .await?,
        )),
    };
    let policy = options
        .host_key_policy
        .or(c.host_key_policy)
        .unwrap_or(resolved.host_key_policy);
    let host_keys = host_key_check(policy, c.known_hosts.clone(), &resolved);
    Ok(SshTarget {
        name: host.name.clone(),
        hostname: resolved.hostname,
        port: c.port.unwrap_or(resolved.port),
        user: c
            .user
            .clone()
            .or(resolved.user)
            .unwrap_or_else(current_user),
        identity_files: match &c.identity_file {
            Some(f) => vec![f.clone()],
            None => resolved.identity_files,
        },
        host_keys,
        host_key_algorithms: resolved.host_key_algorithms,
        jump,
        connect_timeout: resolved
            .connect_timeout
            .map(Duration::from_secs)
            .unwrap_or(options.connect_timeout),
    })
}

/// A jump host named in the inventory uses its inventory settings; anything else
/// is `[user@]host[:port]` (the last hop of a comma list is the nearest).
async fn jump_target(
    inventory: &Inventory,
    via_of: &str,
    spec: &str,
    args: &SshArgs,
    options: &ConnectOptions,
    depth: usize,
) -> Result<SshTarget, TransportError> {
    let mut hops: Vec<&str> = spec.split(',').map(str::trim).collect();
    let last = hops.pop().unwrap_or(spec);
    if let Some(h) = inventory.host(last) {
        let mut t = Box::pin(ssh_target(inventory, h, options, depth)).await?;
        if !hops.is_empty() && t.jump.is_none() {
            let rest = hops.join(",");
            t.jump = Some(Box::new(
                Box::pin(jump_target(
                    inventory,
                    via_of,
                    &rest,
                    args,
                    options,
                    depth + 1,
                ))
                .await?,
            ));
        }
        return Ok(t);
    }
    let (user, rest) = match last.split_once('@') {
        Some((u, r)) => (Some(u.to_string()), r),
        None => (None, last),
    };
    let (name, port) = crate::numbers::host_port(rest);
    let resolved = resolve(via_of, name, args).await?;
    let jump = if hops.is_empty() {
        None
    } else {
        Some(Box::new(
            Box::pin(jump_target(
                inventory,
                via_of,
                &hops.join(","),
                args,
                options,
                depth + 1,
            ))
            .await?,
        ))
    };
    let host_keys = host_key_check(
        options.host_key_policy.unwrap_or(resolved.host_key_policy),
        None,
        &resolved,
    );
    Ok(SshTarget {
        name: format!("{name} (jump host of {via_of})"),
        hostname: resolved.hostname,
        port: port.unwrap_or(resolved.port),
        user: user.or(resolved.user).unwrap_or_else(current_user),
        identity_files: resolved.identity_files,
        host_keys,
        host_key_algorithms: resolved.host_key_algorithms,
        jump,
        connect_timeout: options.connect_timeout,
    })
}

async fn resolve(host: &str, alias: &str, args: &SshArgs) -> Result<SshResolved, TransportError> {
    ssh_config::resolve(alias, args)
        .await
        .map_err(|e| TransportError::Connect {
            host: host.to_string(),
            addr: alias.to_string(),
            reason: e.to_string(),
        })
}

/// The host-key settings ssh config gave, with the inventory's `known_hosts`
/// file (parc's own key) in place of `UserKnownHostsFile` when set.
fn host_key_check(
    policy: HostKeyPolicy,
    known_hosts: Option<PathBuf>,
    resolved: &SshResolved,
) -> HostKeyCheck {
    HostKeyCheck {
        policy,
        user_files: match known_hosts {
            Some(f) => vec![f],
            None => resolved.user_known_hosts_files.clone(),
        },
        global_files: resolved.global_known_hosts_files.clone(),
        alias: resolved.host_key_alias.clone(),
        hash: resolved.hash_known_hosts,
    }
}

fn current_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "root".into())
}
