//! SSH transport on russh.
//!
//! One TCP connection per host, opened once and reused for every exec; each exec
//! is a new channel on it. Channels are bounded by a per-connection semaphore kept
//! below OpenSSH's default `MaxSessions 10`, so parallel steps on one host queue
//! instead of being refused by the server. The russh handle is `&self`-callable,
//! so no lock is ever held around the connection.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use russh::keys::{PrivateKeyWithHashAlg, PublicKey};
use russh::{ChannelMsg, client, kex};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::Semaphore;

use super::known_hosts::{self, Accepted, HostKeyCheck, HostKeyError};
use super::{Chunk, ExitStatus, Transport, TransportError};

/// Channels opened at once on one connection: below OpenSSH's `MaxSessions 10`.
const MAX_CHANNELS: usize = 8;
/// Bytes of a shared stdin chunk held in memory handed to russh at once:
/// OpenSSH's largest channel packet. While a command reads its stdin slower
/// than the network brings it (50 lab hosts on two cores), sshd appends
/// each packet to the channel's buffer and grows that buffer by copying all
/// of it (`sshbuf`'s `recallocarray`: allocate, copy, free): the smaller the
/// packets, the more copies of the same megabyte. With 8 KiB packets the
/// 1 MiB wallpaper of `mixed` cost the hosts' sshd more than all else sshd
/// did on a first run (`perf record -a`, 49 hosts, samples of sshd / of
/// all: 14.5k / 50k; 16 KiB: 11k / 46k; 32 KiB: 8.7k / 42k; no wallpaper:
/// 6.2k / 42k). A held chunk's slices are views of its buffer, not copies;
/// what they cost is russh's write buffer, bounded by [`IN_FLIGHT`].
const HELD_SLICE: usize = 32 * 1024;
/// Bytes of a large file read as it is sent (`crate::content`) handed to
/// russh at once: each slice is a copy, so half of [`HELD_SLICE`]. The 20 MiB
/// file to 200 lab hosts, 64 at once: 8 KiB took 29.4 and 34.6 s, 16 KiB
/// 20.7 and 24.9 s, fewer packets for sshd to copy; parc's peak 30.9 ->
/// 32.7 MiB.
const READ_SLICE: usize = 16 * 1024;
/// Slices of a command's stdin handed to russh and not yet taken into its
/// write buffer. russh's session takes every message queued on a
/// connection (up to 10) into that buffer before it writes to the socket,
/// and the buffer keeps its largest size until the connection closes: with
/// nothing holding the sender back, each sending host held ten slices
/// queued and ten more in the buffer (`tests/controller_memory.rs`: 470 KiB
/// a host with 16 KiB slices, 329-359 with two in flight, 381 with two of
/// 32 KiB; the 20 MiB file to 200 lab hosts, 64 at once, in 8 KiB slices:
/// 38.5 -> 30.9 MiB, no slower). A slice gives its
/// permit back when russh drops it, once encrypted: no wait here depends on
/// the server, so this cannot stall a send russh's window would let through.
/// The cost: no sender runs ahead of the others, so with every host of a
/// large fleet at once all are mid-send together (the 20 MiB file to 500
/// lab hosts at once: 107-111 -> 139-141 MiB); `--parallel` bounds that.
const IN_FLIGHT: usize = 2;
/// A slice of stdin with its place among the [`IN_FLIGHT`].
struct InFlight {
    chunk: Bytes,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl AsRef<[u8]> for InFlight {
    fn as_ref(&self) -> &[u8] {
        &self.chunk
    }
}

/// Bytes of a command's stdin a read waits for.
const SMALL_READ: usize = 4 * 1024;
/// Bytes of stdin handed to russh at once when a read filled
/// [`SMALL_READ`] and more was there already: two of OpenSSH's 32 KiB
/// packets. Each channel holds [`IN_FLIGHT`] of them until
/// russh has taken them, so this is memory per host.
const STDIN_READ: usize = 64 * 1024;

/// Everything needed to open a connection, after inventory, `~/.ssh/config` and
/// defaults were merged (see `engine::connect`).
#[derive(Debug, Clone)]
pub struct SshTarget {
    /// Inventory name, used in messages.
    pub name: String,
    pub hostname: String,
    pub port: u16,
    pub user: String,
    pub identity_files: Vec<PathBuf>,
    pub host_keys: HostKeyCheck,
    /// `HostKeyAlgorithms` from ssh config, in preference order.
    pub host_key_algorithms: Vec<String>,
    pub jump: Option<Box<SshTarget>>,
    pub connect_timeout: Duration,
}

/// Handler error: russh's own errors, or our refusal of the server's host key
/// (kept apart so the user sees *why* we refused, not "unknown key").
#[derive(Debug)]
enum HandlerError {
    Ssh(russh::Error),
    HostKey(HostKeyError),
}

impl From<russh::Error> for HandlerError {
    fn from(e: russh::Error) -> Self {
        HandlerError::Ssh(e)
    }
}

struct Verifier {
    name: String,
    hostname: String,
    port: u16,
    host_keys: HostKeyCheck,
}

impl client::Handler for Verifier {
    type Error = HandlerError;

    async fn check_server_key(
        &mut self,
        key: &russh::keys::PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        // parc does not advertise certificate host-key algorithms, so a certificate
        // only arrives from a misbehaving server: check its bare key like any other.
        let key: PublicKey = match key {
            russh::keys::PublicKeyOrCertificate::PublicKey { key, .. } => key.clone(),
            russh::keys::PublicKeyOrCertificate::Certificate(cert) => {
                PublicKey::new(cert.public_key().clone(), "")
            }
        };
        match known_hosts::verify(&self.host_keys, &self.hostname, self.port, key.key_data()) {
            Ok(Accepted::Known) => Ok(true),
            Ok(Accepted::Learned { file }) => {
                tracing::warn!(host = %self.name, file = %file.display(), "learned a new host key (trusted on first use)");
                Ok(true)
            }
            Ok(Accepted::NotRecorded { file, reason }) => {
                tracing::warn!(host = %self.name, file = %file.display(), "trusted a new host key on first use but could not record it: {reason}");
                Ok(true)
            }
            Ok(Accepted::Unchecked) => {
                tracing::warn!(host = %self.name, "host key CHANGED and accepted anyway (host-key policy off)");
                Ok(true)
            }
            Err(e) => Err(HandlerError::HostKey(e)),
        }
    }
}

/// An open, authenticated connection to one host.
pub struct SshTransport {
    name: String,
    handle: client::Handle<Verifier>,
    channels: Semaphore,
    /// Keeps the jump host's connection alive as long as this one.
    _jump: Option<Box<SshTransport>>,
}

/// Client settings; `host_key_algorithms` are the names to offer, in order
/// (see [`known_hosts::KnownHosts::algorithm_order`]); those russh cannot use are
/// left out.
fn config(host_key_algorithms: &[String]) -> Arc<client::Config> {
    let mut preferred = russh::Preferred::default();
    let supported = preferred.key.clone();
    let wanted: Vec<russh::keys::Algorithm> = host_key_algorithms
        .iter()
        .filter_map(|name| name.parse::<russh::keys::Algorithm>().ok())
        .filter(|a| supported.contains(a))
        .collect();
    if !wanted.is_empty() {
        preferred.key = wanted.into();
    }
    // aes256-gcm first: about 1.6x the throughput of chacha20-poly1305 here (AES-NI).
    let mut ciphers = vec![russh::cipher::AES_256_GCM];
    ciphers.extend(
        preferred
            .cipher
            .iter()
            .copied()
            .filter(|c| *c != russh::cipher::AES_256_GCM),
    );
    preferred.cipher = ciphers.into();
    preferred.kex = preferred
        .kex
        .iter()
        .copied()
        .chain([kex::EXTENSION_SUPPORT_AS_CLIENT])
        .collect::<Vec<_>>()
        .into();
    Arc::new(client::Config {
        // Nagle's algorithm costs ~40 ms on every request/response round trip.
        nodelay: true,
        keepalive_interval: Some(Duration::from_secs(15)),
        keepalive_max: 3,
        window_size: 8 * 1024 * 1024,
        preferred,
        ..Default::default()
    })
}

impl SshTransport {
    /// Connect (through the jump host if any), verify the host key and authenticate.
    pub async fn connect(target: &SshTarget) -> Result<Self, TransportError> {
        let timeout = target.connect_timeout;
        match tokio::time::timeout(timeout, Self::connect_inner(target)).await {
            Ok(r) => r,
            Err(_) => Err(TransportError::Timeout {
                host: target.name.clone(),
                secs: timeout.as_secs(),
            }),
        }
    }

    async fn connect_inner(target: &SshTarget) -> Result<Self, TransportError> {
        let verifier = Verifier {
            name: target.name.clone(),
            hostname: target.hostname.clone(),
            port: target.port,
            host_keys: target.host_keys.clone(),
        };
        let addr = format!("{}:{}", target.hostname, target.port);
        let algorithms = known_hosts::KnownHosts::load(target.host_keys.files()).algorithm_order(
            &target.host_keys.lookup_name(&target.hostname, target.port),
            &target.host_key_algorithms,
        );
        let map_err = |e: HandlerError| match e {
            HandlerError::HostKey(k) => TransportError::HostKey(k),
            HandlerError::Ssh(e) => TransportError::Connect {
                host: target.name.clone(),
                addr: addr.clone(),
                reason: describe(&e),
            },
        };
        let (handle, jump) = match &target.jump {
            None => {
                let h = client::connect(
                    config(&algorithms),
                    (target.hostname.as_str(), target.port),
                    verifier,
                )
                .await
                .map_err(map_err)?;
                (h, None)
            }
            Some(jump) => {
                let via = Box::pin(SshTransport::connect(jump)).await?;
                let channel = via
                    .handle
                    .channel_open_direct_tcpip(
                        target.hostname.clone(),
                        u32::from(target.port),
                        "127.0.0.1",
                        0,
                    )
                    .await
                    .map_err(|e| TransportError::Connect {
                        host: target.name.clone(),
                        addr: format!("{addr} via {}", jump.name),
                        reason: describe(&e),
                    })?;
                let h =
                    client::connect_stream(config(&algorithms), channel.into_stream(), verifier)
                        .await
                        .map_err(map_err)?;
                (h, Some(Box::new(via)))
            }
        };
        let mut transport = SshTransport {
            name: target.name.clone(),
            handle,
            channels: Semaphore::new(MAX_CHANNELS),
            _jump: jump,
        };
        transport.authenticate(target).await?;
        Ok(transport)
    }

    /// Try each identity file, then the ssh-agent, like OpenSSH does.
    async fn authenticate(&mut self, target: &SshTarget) -> Result<(), TransportError> {
        let mut tried = Vec::new();
        let protocol = |e: russh::Error| TransportError::Protocol {
            host: target.name.clone(),
            reason: describe(&e),
        };
        for path in &target.identity_files {
            let key = russh::keys::load_secret_key(path, None).map_err(|e| {
                TransportError::KeyFile {
                    path: path.display().to_string(),
                    reason: match e {
                        russh::keys::Error::KeyIsEncrypted => {
                            "the key is encrypted: load it into ssh-agent (ssh-add) and parc will use the agent".into()
                        }
                        other => other.to_string(),
                    },
                }
            })?;
            let hash = self
                .handle
                .best_supported_rsa_hash()
                .await
                .map_err(protocol)?
                .flatten();
            let result = self
                .handle
                .authenticate_publickey(
                    target.user.clone(),
                    PrivateKeyWithHashAlg::new(Arc::new(key), hash),
                )
                .await
                .map_err(protocol)?;
            if result.success() {
                return Ok(());
            }
            tried.push(path.display().to_string());
        }
        if std::env::var_os("SSH_AUTH_SOCK").is_some()
            && let Ok(mut agent) = russh::keys::agent::client::AgentClient::connect_env().await
        {
            let identities = agent.request_identities().await.unwrap_or_default();
            for identity in identities {
                let key = identity.public_key().into_owned();
                let hash = self
                    .handle
                    .best_supported_rsa_hash()
                    .await
                    .map_err(protocol)?
                    .flatten();
                let result = self
                    .handle
                    .authenticate_publickey_with(target.user.clone(), key, hash, &mut agent)
                    .await;
                if matches!(result, Ok(r) if r.success()) {
                    return Ok(());
                }
            }
            tried.push("ssh-agent".into());
        }
        Err(TransportError::Auth {
            host: target.name.clone(),
            user: target.user.clone(),
            reason: if tried.is_empty() {
                "no identity file is configured and no ssh-agent is running (set identity_file in the inventory)".into()
            } else {
                format!("the server refused every key tried ({})", tried.join(", "))
            },
        })
    }
}

fn describe(e: &russh::Error) -> String {
    match e {
        russh::Error::IO(io) => io.to_string(),
        other => other.to_string(),
    }
}

#[async_trait]
impl Transport for SshTransport {
    async fn exec(
        &self,
        command: &str,
        stdin: &mut (dyn AsyncRead + Send + Unpin),
        stdout: &mut (dyn AsyncWrite + Send + Unpin),
        stderr: &mut (dyn AsyncWrite + Send + Unpin),
    ) -> Result<ExitStatus, TransportError> {
        let stdin = Stdin::Stream { reader: stdin };
        self.run(command, stdin, stdout, stderr).await
    }

    async fn exec_shared(
        &self,
        command: &str,
        stdin: &[Chunk],
        stdout: &mut (dyn AsyncWrite + Send + Unpin),
        stderr: &mut (dyn AsyncWrite + Send + Unpin),
    ) -> Result<ExitStatus, TransportError> {
        let chunks = Stdin::Chunks {
            rest: stdin.iter(),
            current: None,
        };
        self.run(command, chunks, stdout, stderr).await
    }
}

/// Why a command's stdin was not sent whole.
enum Unsent {
    /// The channel refused it (the command exited, the connection broke).
    Channel(russh::Error),
    /// Reading it here failed.
    Unreadable(std::io::Error),
}

/// What a command's stdin comes from.
enum Stdin<'a> {
    Stream {
        reader: &'a mut (dyn AsyncRead + Send + Unpin),
    },
    /// Shared chunks, handed to russh in slices: views of the held buffers
    /// ([`HELD_SLICE`] bytes), or read from a large file's descriptor as the
    /// channel takes them ([`READ_SLICE`]: a page-cache read, done here
    /// rather than on the blocking pool).
    Chunks {
        rest: std::slice::Iter<'a, Chunk>,
        /// The chunk being sent, and how much of it was.
        current: Option<(&'a Chunk, usize)>,
    },
}

impl Stdin<'_> {
    async fn next(&mut self) -> std::io::Result<Option<Bytes>> {
        match self {
            // `data(reader)` would copy through an 8 KiB buffer and so send 8 KiB
            // SSH packets; large reads let russh fill packets up to the server's
            // maximum (32 KiB for OpenSSH), which matters for multi-GiB streams.
            // Each chunk is read into its own buffer and handed over as it is.
            Stdin::Stream { reader } => {
                // What waits for a read is a small buffer: some streams wait
                // the whole run (the lock's, for its release), and a 64 KiB
                // buffer pending in every host's lock exec is memory per
                // host. Only what is there already goes on into a large one.
                let mut small = [0u8; SMALL_READ];
                let n = reader.read(&mut small).await?;
                if n < SMALL_READ {
                    return Ok((n > 0).then(|| Bytes::copy_from_slice(&small[..n])));
                }
                let mut chunk = Vec::with_capacity(STDIN_READ);
                chunk.extend_from_slice(&small);
                chunk.resize(STDIN_READ, 0);
                let mut rest = ReadBuf::new(&mut chunk[SMALL_READ..]);
                let more = std::future::poll_fn(|cx| {
                    Poll::Ready(Pin::new(&mut **reader).poll_read(cx, &mut rest))
                })
                .await;
                let n = match more {
                    Poll::Ready(Ok(())) => SMALL_READ + rest.filled().len(),
                    Poll::Ready(Err(e)) => return Err(e),
                    // Nothing more yet: this chunk ends here, and the next
                    // read waits, small.
                    Poll::Pending => SMALL_READ,
                };
                chunk.truncate(n);
                Ok(Some(chunk.into()))
            }
            Stdin::Chunks { rest, current } => loop {
                if let Some((chunk, at)) = current {
                    let max = if chunk.is_held() {
                        HELD_SLICE
                    } else {
                        READ_SLICE
                    };
                    let slice = chunk.read_at(*at, max)?;
                    if !slice.is_empty() {
                        *at += slice.len();
                        return Ok(Some(slice));
                    }
                }
                match rest.next() {
                    Some(next) => *current = Some((next, 0)),
                    None => return Ok(None),
                }
            },
        }
    }
}

impl SshTransport {
    async fn run(
        &self,
        command: &str,
        mut stdin: Stdin<'_>,
        stdout: &mut (dyn AsyncWrite + Send + Unpin),
        stderr: &mut (dyn AsyncWrite + Send + Unpin),
    ) -> Result<ExitStatus, TransportError> {
        let protocol = |e: russh::Error| TransportError::Protocol {
            host: self.name.clone(),
            reason: describe(&e),
        };
        let _permit = self
            .channels
            .acquire()
            .await
            .expect("the channel semaphore is never closed");
        let channel = self.handle.channel_open_session().await.map_err(protocol)?;
        channel.exec(true, command).await.map_err(protocol)?;
        let (mut read, write) = channel.split();

        // A chunk that cannot be read here (a large file changed since it was
        // hashed) ends stdin early: the script, which comes last, never
        // arrives and nothing runs; the host's error is the local one.
        let gate = Arc::new(Semaphore::new(IN_FLIGHT));
        let writer = async {
            let sent = loop {
                // Before the next slice is read: a read slice is a copy.
                let permit = gate
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the stdin gate is never closed");
                match stdin.next().await {
                    Ok(None) => break Ok(()),
                    Ok(Some(chunk)) => {
                        let chunk = Bytes::from_owner(InFlight {
                            chunk,
                            _permit: permit,
                        });
                        if let Err(e) = write.data_bytes(chunk).await {
                            break Err(Unsent::Channel(e));
                        }
                    }
                    Err(e) => break Err(Unsent::Unreadable(e)),
                }
            };
            let _ = write.eof().await;
            sent
        };
        let reader = async {
            let mut status = ExitStatus::Unknown;
            // Read until the channel closes: the exit status may come before the last data.
            while let Some(msg) = read.wait().await {
                match msg {
                    ChannelMsg::Data { data } => stdout.write_all(&data).await?,
                    ChannelMsg::ExtendedData { data, ext: 1 } => stderr.write_all(&data).await?,
                    ChannelMsg::ExitStatus { exit_status } => {
                        status = ExitStatus::Code(exit_status)
                    }
                    ChannelMsg::ExitSignal { signal_name, .. } => {
                        status = ExitStatus::Signal(format!("{signal_name:?}"))
                    }
                    _ => {}
                }
            }
            stdout.flush().await?;
            stderr.flush().await?;
            Ok::<_, std::io::Error>(status)
        };
        tokio::pin!(writer, reader);
        let mut writing = true;
        let mut unreadable = None;
        loop {
            tokio::select! {
                sent = &mut writer, if writing => {
                    writing = false;
                    match sent {
                        Ok(()) => {}
                        Err(Unsent::Unreadable(e)) => unreadable = Some(e),
                        // The command may exit without reading all its input; that is its business.
                        Err(Unsent::Channel(e)) => {
                            tracing::debug!(host = %self.name, "stdin not fully sent: {e}")
                        }
                    }
                }
                status = &mut reader => {
                    let status = status?;
                    return match unreadable {
                        Some(e) => Err(TransportError::Io(e)),
                        None => Ok(status),
                    };
                }
            }
        }
    }
}
