//! Counts remote commands: the measure behind "round trips per host do not grow
//! with the number of resources", reported with every host's result. A script
//! run in the host lock's shell counts too: it saves a session, not a round
//! trip.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Chunk, ExitStatus, Transport, TransportError};

pub struct Counting {
    inner: Arc<dyn Transport>,
    execs: AtomicU32,
}

impl Counting {
    pub fn new(inner: Arc<dyn Transport>) -> Self {
        Counting {
            inner,
            execs: AtomicU32::new(0),
        }
    }
    pub fn execs(&self) -> u32 {
        self.execs.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl Transport for Counting {
    async fn exec(
        &self,
        command: &str,
        stdin: &mut (dyn AsyncRead + Send + Unpin),
        stdout: &mut (dyn AsyncWrite + Send + Unpin),
        stderr: &mut (dyn AsyncWrite + Send + Unpin),
    ) -> Result<ExitStatus, TransportError> {
        self.execs.fetch_add(1, Ordering::Relaxed);
        self.inner.exec(command, stdin, stdout, stderr).await
    }

    async fn exec_shared(
        &self,
        command: &str,
        stdin: &[Chunk],
        stdout: &mut (dyn AsyncWrite + Send + Unpin),
        stderr: &mut (dyn AsyncWrite + Send + Unpin),
    ) -> Result<ExitStatus, TransportError> {
        self.execs.fetch_add(1, Ordering::Relaxed);
        self.inner.exec_shared(command, stdin, stdout, stderr).await
    }

    fn ran_held(&self) {
        self.execs.fetch_add(1, Ordering::Relaxed);
    }
}
