//! A rustls server connection driven over a compio TCP stream, under deadlines.
//!
//! We drive rustls ourselves instead of wrapping it in a generic async adapter, for three
//! reasons: stage deadlines count *raw* socket bytes (as Apache's mod_reqtimeout does, below
//! mod_ssl), every read is raced against the stage deadline, and every write against the
//! write-progress deadline; and all pending TLS records go out in one socket write.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use compio::BufResult;
use compio::io::{AsyncRead, AsyncWrite};
use compio::net::TcpStream;
use rampart_deadline::{StageClock, StageLimit, Timeout, WriteClock};
use rustls::ServerConfig;

use crate::engine::Engine;

/// Size of one socket read. A TLS record is at most 16 KiB of plaintext plus overhead.
const READ_CHUNK: usize = 18 * 1024;

/// How a TLS connection ended abnormally.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnError {
    /// A deadline passed: typed, counted and logged by the caller.
    #[error("timeout in stage {0}")]
    Timeout(Timeout),
    /// The peer closed the TCP connection before the handshake finished.
    #[error("peer closed during the TLS handshake")]
    ClosedInHandshake,
    /// The peer sent something rustls rejected (bad record, wrong version, no shared suite...).
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// The socket failed.
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
}

/// How much one socket read asks for: small while a connection is quiet (an idle connection's
/// pending read then holds only a small buffer), doubling while reads come back full, up to a
/// maximum; halving when they come back at less than a quarter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadSize {
    cur: usize,
    max: usize,
}

impl ReadSize {
    /// The smallest read: a quiet connection's PINGREQ (24 bytes in TLS 1.3) and small
    /// packets fit; a burst after a pause costs a few doublings.
    pub const MIN: usize = 256;

    /// Starts at [`ReadSize::MIN`], grows to at most `max`.
    pub fn new(max: usize) -> Self {
        Self {
            cur: Self::MIN,
            max: max.max(Self::MIN),
        }
    }

    /// What the next read asks for.
    pub fn get(self) -> usize {
        self.cur
    }

    /// Adapts to a read of `n` bytes that asked for [`ReadSize::get`].
    pub fn after(&mut self, n: usize) {
        let want = self.cur;
        self.cur = if n >= want {
            (want * 2).min(self.max)
        } else if n < want / 4 {
            (want / 2).max(Self::MIN)
        } else {
            want
        };
    }
}

/// Where decrypted bytes go: a `Vec<u8>` or a `BytesMut`.
pub(crate) trait Plaintext {
    /// Grows by `n` zeroed bytes and returns them.
    fn grow(&mut self, n: usize) -> &mut [u8];
}

impl Plaintext for Vec<u8> {
    fn grow(&mut self, n: usize) -> &mut [u8] {
        let start = self.len();
        self.resize(start + n, 0);
        &mut self[start..]
    }
}

impl Plaintext for bytes::BytesMut {
    fn grow(&mut self, n: usize) -> &mut [u8] {
        let start = self.len();
        self.resize(start + n, 0);
        &mut self[start..]
    }
}

pin_project_lite::pin_project! {
    /// A future raced against a deadline: see [`race`].
    #[must_use = "futures do nothing unless awaited"]
    pub struct Race<F, S> {
        #[pin]
        fut: F,
        #[pin]
        sleep: Option<S>,
    }
}

/// `fut`'s output, or `None` once `deadline` passes (no deadline: never).
///
/// `compio::time::timeout_at` is an `async fn`, which holds its future twice (as argument and
/// pinned), and a connection's pending read is most of what a quiet connection's task holds:
/// this holds it once, beside the timer.
pub fn race<F: Future>(deadline: Option<Instant>, fut: F) -> Race<F, impl Future<Output = ()>> {
    Race {
        fut,
        sleep: deadline.map(compio::time::sleep_until),
    }
}

impl<F: Future, S: Future<Output = ()>> Future for Race<F, S> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(out) = this.fut.poll(cx) {
            return Poll::Ready(Some(out));
        }
        match this.sleep.as_pin_mut().map(|sleep| sleep.poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(None),
            _ => Poll::Pending,
        }
    }
}

/// Writes all of `buf` to `tcp`, each write raced against `clock`'s deadline; returns the
/// emptied buffer for reuse. Used by both kinds of TLS stream.
pub(crate) async fn write_clocked(
    tcp: &mut TcpStream,
    clock: &mut WriteClock,
    mut buf: Vec<u8>,
) -> Result<Vec<u8>, ConnError> {
    clock.on_pending(Instant::now());
    while !buf.is_empty() {
        let deadline = clock.deadline().unwrap_or_else(Instant::now);
        let BufResult(res, returned) = race(Some(deadline), tcp.write(buf))
            .await
            .ok_or(ConnError::Timeout(Timeout::WriteStall))?;
        buf = returned;
        let n = res?;
        if n == 0 {
            return Err(io::Error::from(io::ErrorKind::WriteZero).into());
        }
        clock.on_progress(Instant::now());
        // Only a partial write moves bytes.
        buf.drain(..n);
    }
    clock.on_idle();
    Ok(buf)
}

/// Who caused an error: decides the log level (house style rule 15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorSource {
    /// The peer misbehaved or was too slow.
    Client,
    /// Something on our side.
    Internal,
}

impl ConnError {
    /// Stable label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Timeout(Timeout::Handshake) => "timeout_handshake",
            Self::Timeout(Timeout::WriteStall) => "timeout_write_stall",
            Self::Timeout(_) => "timeout_stage",
            Self::ClosedInHandshake => "closed_in_handshake",
            Self::Tls(_) => "tls_error",
            Self::Io(_) => "io_error",
        }
    }

    /// Who caused it.
    pub fn source(&self) -> ErrorSource {
        match self {
            Self::Io(e) if !is_peer_io_error(e) => ErrorSource::Internal,
            _ => ErrorSource::Client,
        }
    }
}

fn is_peer_io_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::TimedOut
            // rustls reports a peer that overflows its message buffer as InvalidData.
            | io::ErrorKind::InvalidData
    )
}

/// Per-connection I/O limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoLimits {
    /// The TLS handshake stage; must be bounded.
    pub handshake: StageLimit,
    /// Longest time a pending write may make no progress.
    pub write_stall: Duration,
}

/// The state of an established TLS connection without its socket: `Send`, so it can move to
/// another core with the socket's descriptor.
#[derive(Debug)]
pub struct TlsParts {
    tls: Engine,
    plain: Vec<u8>,
    write_stall: Duration,
}

/// A server-side TLS connection.
#[derive(Debug)]
pub struct TlsStream {
    tcp: TcpStream,
    tls: Engine,
    read_buf: Option<Vec<u8>>,
    plain: Vec<u8>,
    peer_closed: bool,
    write_clock: WriteClock,
}

impl TlsStream {
    /// Performs the server handshake on `tcp` within `limits.handshake`, counted on raw bytes.
    pub async fn accept(
        tcp: TcpStream,
        config: Arc<ServerConfig>,
        limits: IoLimits,
    ) -> Result<Self, ConnError> {
        let tls = Engine::new(config)?;
        let mut stream = Self {
            tcp,
            tls,
            read_buf: None,
            plain: Vec::new(),
            peer_closed: false,
            write_clock: WriteClock::new(limits.write_stall),
        };
        let mut clock = StageClock::start(limits.handshake, Instant::now());
        loop {
            stream.flush_tls().await?;
            if !stream.tls.is_handshaking() {
                return Ok(stream);
            }
            // rustls takes close_notify only once the handshake is done: a client may send its
            // Finished, data and close_notify at once, and that is a finished handshake.
            match stream.read_tls(&mut clock, Timeout::Handshake).await {
                Ok(true) => {}
                Ok(false) => return Err(ConnError::ClosedInHandshake),
                Err(e) => return Err(e),
            }
        }
    }

    /// Appends decrypted bytes to `dst` under the stage `clock`; returns how many, and 0 when
    /// the peer closed (close_notify or TCP FIN). `stage` names the timeout if `clock` expires.
    pub async fn read(
        &mut self,
        dst: &mut Vec<u8>,
        clock: &mut StageClock,
        stage: Timeout,
    ) -> Result<usize, ConnError> {
        loop {
            if !self.plain.is_empty() {
                let n = self.plain.len();
                dst.append(&mut self.plain);
                return Ok(n);
            }
            if self.peer_closed {
                return Ok(0);
            }
            // Alerts or key updates may need an answer before we read again.
            self.flush_tls().await?;
            if !self.read_tls(clock, stage).await? {
                self.peer_closed = true;
            }
        }
    }

    /// Encrypts `data` and writes it all under the write-progress deadline.
    pub async fn write_all(&mut self, data: &[u8]) -> Result<(), ConnError> {
        // Sealed and sent 64 KiB at a time: the send queue stays small whatever `data` is.
        for chunk in data.chunks(64 * 1024) {
            self.tls.encrypt(chunk)?;
            self.flush_tls().await?;
        }
        Ok(())
    }

    /// Sends close_notify (best effort, within `grace`) and shuts the socket down.
    pub async fn shutdown(self, grace: Duration) {
        self.shutdown_lingering(grace, Duration::ZERO, 0).await;
    }

    /// [`TlsStream::shutdown`], then a lingering close: what the peer still sends is read and
    /// discarded until it pauses for `idle`, stops, `max` bytes have come or `linger` has
    /// passed. Closing a socket with unread input makes the kernel send a reset, which can
    /// destroy the response still in flight to a client that is sending a body we refused.
    pub async fn shutdown_lingering(mut self, grace: Duration, linger: Duration, max: usize) {
        self.tls.send_close_notify();
        self.write_clock = WriteClock::new(grace.min(self.write_clock.stall()));
        let _ = self.flush_tls().await;
        let _ = self.tcp.shutdown().await;
        if max == 0 || linger.is_zero() {
            return;
        }
        let end = Instant::now() + linger;
        let idle = Duration::from_millis(200);
        let mut seen = 0;
        let mut buf = Vec::with_capacity(4096);
        while seen < max {
            buf.clear();
            let deadline = end.min(Instant::now() + idle);
            match compio::time::timeout_at(deadline, self.tcp.read(buf)).await {
                Ok(BufResult(Ok(n), b)) if n > 0 => {
                    seen += n;
                    buf = b;
                }
                _ => break,
            }
        }
    }

    /// Splits the connection into halves that read and write concurrently (see
    /// [`crate::duplex`]). Plaintext already decrypted is returned first by the reader.
    pub fn into_duplex(self) -> (crate::duplex::TlsReader, crate::duplex::TlsWriter) {
        let stall = self.write_clock.stall();
        crate::duplex::split(self.tcp, self.tls, self.plain, stall)
    }

    /// Takes the connection apart to move it to another core: the socket (dup it into a
    /// `std` stream, see [`TlsParts`]), the rustls state and the plaintext not yet read.
    pub fn into_parts(self) -> (TcpStream, TlsParts) {
        let stall = self.write_clock.stall();
        (
            self.tcp,
            TlsParts {
                tls: self.tls,
                plain: self.plain,
                write_stall: stall,
            },
        )
    }

    /// Puts a connection taken apart by [`TlsStream::into_parts`] back together, on the core
    /// that now owns `tcp`.
    pub fn from_parts(tcp: TcpStream, parts: TlsParts) -> Self {
        Self {
            tcp,
            peer_closed: parts.tls.peer_closed(),
            tls: parts.tls,
            read_buf: None,
            plain: parts.plain,
            write_clock: WriteClock::new(parts.write_stall),
        }
    }

    /// The negotiated protocol version, e.g. `TLSv1_3`.
    pub fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        self.tls.protocol_version()
    }

    /// The ALPN protocol the client chose, if any.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.tls.alpn_protocol()
    }

    /// One socket read raced against `clock`; feeds rustls. `Ok(false)` on TCP EOF.
    async fn read_tls(
        &mut self,
        clock: &mut StageClock,
        stage: Timeout,
    ) -> Result<bool, ConnError> {
        let mut buf = self
            .read_buf
            .take()
            .unwrap_or_else(|| Vec::with_capacity(READ_CHUNK));
        buf.clear();
        let read = self.tcp.read(buf);
        let BufResult(res, mut buf) = match clock.deadline() {
            Some(deadline) => compio::time::timeout_at(deadline, read)
                .await
                .map_err(|_| ConnError::Timeout(stage))?,
            None => read.await,
        };
        let n = res?;
        if n == 0 {
            self.read_buf = Some(buf);
            return Ok(false);
        }
        clock.on_bytes(n);
        let fed = self.tls.feed(&mut buf[..n], &mut self.plain);
        self.read_buf = Some(buf);
        match fed {
            Ok(closed) => {
                self.peer_closed |= closed;
                Ok(true)
            }
            Err(e) => {
                // The engine queued rustls's alert for the peer; try to deliver it, then fail.
                let _ = self.flush_tls().await;
                Err(e)
            }
        }
    }

    /// Writes every pending TLS record, in as few socket writes as possible, under the
    /// write-progress deadline.
    async fn flush_tls(&mut self) -> Result<(), ConnError> {
        while self.tls.wants_write() {
            let buf = self.tls.take_out();
            let buf = write_clocked(&mut self.tcp, &mut self.write_clock, buf).await?;
            self.tls.return_out(buf);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::ReadSize;

    #[test]
    fn read_size_grows_while_reads_are_full_and_shrinks_when_quiet() {
        let mut s = ReadSize::new(64 * 1024);
        assert_eq!(s.get(), ReadSize::MIN);
        for _ in 0..20 {
            let n = s.get();
            s.after(n);
        }
        assert_eq!(s.get(), 64 * 1024);
        // A moderately full read keeps the size.
        s.after(32 * 1024);
        assert_eq!(s.get(), 64 * 1024);
        for _ in 0..20 {
            s.after(10);
        }
        assert_eq!(s.get(), ReadSize::MIN);
    }
}
