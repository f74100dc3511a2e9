//! The two halves of a broker connection, over TLS or (loopback-only unless marked dangerous)
//! plain TCP.
//!
//! Egress is batched: the writer takes every frame queued since its last turn and sends them
//! with one flush. Over TLS that is one sealed record per 16 KiB and one socket write; over
//! plain TCP it is one `writev` of the frames' own `Bytes` (payloads are never copied).

use std::io;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use compio::BufResult;
use compio::io::{AsyncReadExt, AsyncWrite};
use compio::net::TcpStream;
use rampart_deadline::{Timeout, WriteClock};
use rampart_tls::duplex::{TlsReader, TlsWriter};
use rampart_tls::{ConnError, ReadSize};

use super::broker::Frame;

/// Largest plain socket read: reads grow to it while they come back full.
pub(crate) const MAX_PLAIN_READ: usize = 64 * 1024;
/// Most buffers in one `writev` (Linux's IOV_MAX is 1024).
const MAX_IOV: usize = 512;

/// The reading half.
#[derive(Debug)]
pub(crate) enum Reader {
    Tls(TlsReader),
    Plain(TcpStream, ReadSize),
}

/// The writing half.
#[derive(Debug)]
pub(crate) enum Writer {
    Tls(TlsWriter),
    Plain {
        tcp: TcpStream,
        clock: WriteClock,
        iov: Vec<Bytes>,
    },
}

impl Reader {
    /// Appends bytes to `dst`; 0 when the peer closed. Raced against `deadline`.
    pub(crate) async fn read(
        &mut self,
        dst: &mut BytesMut,
        deadline: Option<Instant>,
        stage: Timeout,
    ) -> Result<usize, ConnError> {
        match self {
            Self::Tls(r) => r.read(dst, deadline, stage).await,
            Self::Plain(tcp, size) => read_plain(tcp, dst, deadline, stage, size).await,
        }
    }

    /// Whether TLS has records of its own to send.
    pub(crate) fn wants_write(&self) -> bool {
        match self {
            Self::Tls(r) => r.wants_write(),
            Self::Plain(..) => false,
        }
    }
}

impl Writer {
    pub(crate) fn plain(tcp: TcpStream, write_stall: Duration) -> Self {
        Self::Plain {
            tcp,
            clock: WriteClock::new(write_stall),
            iov: Vec::new(),
        }
    }

    /// Sends `frames` (and any TLS records pending) with one flush.
    pub(crate) async fn send(
        &mut self,
        frames: impl Iterator<Item = Frame>,
    ) -> Result<(), ConnError> {
        match self {
            Self::Tls(w) => {
                for f in frames {
                    match f {
                        Frame::Whole(b) => w.stage(&b)?,
                        Frame::Parts(h, p) => {
                            w.stage(&h)?;
                            w.stage(&p)?;
                        }
                    }
                }
                w.flush().await
            }
            Self::Plain { tcp, clock, iov } => {
                for f in frames {
                    match f {
                        Frame::Whole(b) => iov.push(b),
                        Frame::Parts(h, p) => {
                            iov.push(h);
                            iov.push(p);
                        }
                    }
                }
                write_all_vectored(tcp, clock, iov).await
            }
        }
    }

    /// Frees buffers while idle.
    pub(crate) fn release_buffers(&mut self) {
        match self {
            Self::Tls(w) => w.release_buffers(),
            Self::Plain { iov, .. } => {
                if iov.is_empty() {
                    *iov = Vec::new();
                }
            }
        }
    }

    /// Closes the connection (TLS: close_notify first), within `grace`.
    pub(crate) async fn shutdown(self, grace: Duration) {
        match self {
            Self::Tls(w) => w.shutdown(grace).await,
            Self::Plain { mut tcp, .. } => {
                let _ = compio::time::timeout(grace, tcp.shutdown()).await;
            }
        }
    }
}

/// One socket read appended to `dst`, raced against `deadline`.
pub(crate) async fn read_plain(
    tcp: &mut TcpStream,
    dst: &mut BytesMut,
    deadline: Option<Instant>,
    stage: Timeout,
    size: &mut ReadSize,
) -> Result<usize, ConnError> {
    let want = size.get();
    // A drained buffer that grew large goes back to the allocator while the connection waits
    // (payloads still referring to it keep their part alive).
    if dst.is_empty() && dst.capacity() > 4 * want {
        *dst = BytesMut::new();
    }
    dst.reserve(want);
    let buf = std::mem::take(dst);
    // `append`, not `read`: compio's `read` fills the buffer from its start, which would
    // overwrite the partial packet kept from the previous read.
    let read = tcp.append(buf);
    let BufResult(res, buf) = match deadline {
        Some(d) => compio::time::timeout_at(d, read)
            .await
            .map_err(|_| ConnError::Timeout(stage))?,
        None => read.await,
    };
    *dst = buf;
    let n = res?;
    size.after(n);
    Ok(n)
}

/// Writes every buffer in `iov`, `MAX_IOV` at a time, under the write-progress clock. Leaves
/// `iov` empty (keeping its capacity).
async fn write_all_vectored(
    tcp: &mut TcpStream,
    clock: &mut WriteClock,
    iov: &mut Vec<Bytes>,
) -> Result<(), ConnError> {
    iov.retain(|b| !b.is_empty());
    if iov.is_empty() {
        return Ok(());
    }
    clock.on_pending(Instant::now());
    let mut pending = std::mem::take(iov);
    while !pending.is_empty() {
        let rest = if pending.len() > MAX_IOV {
            pending.split_off(MAX_IOV)
        } else {
            Vec::new()
        };
        let deadline = clock.deadline().unwrap_or_else(Instant::now);
        let BufResult(res, mut batch) =
            compio::time::timeout_at(deadline, tcp.write_vectored(pending))
                .await
                .map_err(|_| ConnError::Timeout(Timeout::WriteStall))?;
        let mut n = res?;
        if n == 0 {
            return Err(io::Error::from(io::ErrorKind::WriteZero).into());
        }
        clock.on_progress(Instant::now());
        // Drop what was written; advance a partly written buffer.
        let mut first = 0;
        while first < batch.len() && n >= batch[first].len() {
            n -= batch[first].len();
            first += 1;
        }
        if let Some(b) = batch.get_mut(first) {
            b.advance(n);
        }
        batch.drain(..first);
        batch.extend(rest);
        pending = batch;
    }
    clock.on_idle();
    *iov = pending;
    Ok(())
}
