//! The two halves of a broker connection, over TLS, over WebSocket over TLS (the HTTPS front's
//! `/mqtt`), or (loopback-only unless marked dangerous) plain TCP.
//!
//! Egress is batched: the writer takes every frame queued since its last turn and sends them
//! with one flush. Over TLS that is one sealed record per 16 KiB and one socket write; over
//! plain TCP it is one `writev` of the frames' own `Bytes` (payloads are never copied). Over
//! WebSocket the batch is one binary frame: MQTT packets need not be aligned with frames (MQTT 5
//! §6.0), so one frame header in front of the batch is all the framing costs.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use compio::BufResult;
use compio::io::{AsyncReadExt, AsyncWrite};
use compio::net::TcpStream;
use rampart_deadline::{Timeout, WriteClock};
use rampart_tls::duplex::{TlsReader, TlsWriter};
use rampart_tls::stream::race;
use rampart_tls::{ConnError, ReadSize, TlsStream};
use rampart_ws_proto::{Decoder, DecoderLimits, Event as WsEvent, OpCode};

use super::broker::{Frame, OutboxRef};
use crate::front::guard::Ticket;

/// Largest plain socket read: reads grow to it while they come back full.
pub(crate) const MAX_PLAIN_READ: usize = 64 * 1024;
/// Most buffers in one `writev` (Linux's IOV_MAX is 1024).
const MAX_IOV: usize = 512;

/// The reading half.
#[derive(Debug)]
pub(crate) enum Reader {
    Tls(TlsReader),
    Plain(TcpStream, ReadSize),
    Ws(TlsReader, Box<WsIn>, WsCtl),
}

/// The writing half.
#[derive(Debug)]
pub(crate) enum Writer {
    Tls(TlsWriter),
    Ws(TlsWriter, WsCtl),
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
            Self::Ws(r, ws, ctl) => loop {
                let before = dst.len();
                let taken = {
                    let mut ctl = ctl.borrow_mut();
                    let taken = ws.take(dst, &mut ctl.pongs);
                    if ws.close.is_some() {
                        ctl.close = ws.close;
                    }
                    if !ctl.pongs.is_empty()
                        && let Some(ob) = &ctl.outbox
                    {
                        let mut ob = ob.borrow_mut();
                        ob.poke = true;
                        ob.wake();
                    }
                    taken
                };
                let closed = taken?;
                if dst.len() > before {
                    return Ok(dst.len() - before);
                }
                if closed || r.read(&mut ws.raw, deadline, stage).await? == 0 {
                    return Ok(0);
                }
            },
        }
    }

    /// Lets a WebSocket reader wake the writer for its pongs.
    pub(crate) fn attach(&self, outbox: &OutboxRef) {
        if let Self::Ws(_, _, ctl) = self {
            ctl.borrow_mut().outbox = Some(outbox.clone());
        }
    }

    /// Whether TLS (or WebSocket: a pong) has records of its own to send.
    pub(crate) fn wants_write(&self) -> bool {
        match self {
            Self::Tls(r) => r.wants_write(),
            Self::Plain(..) => false,
            Self::Ws(r, _, ctl) => r.wants_write() || !ctl.borrow().pongs.is_empty(),
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
                stage_frames(w, frames)?;
                w.flush().await
            }
            Self::Ws(w, ctl) => {
                let mut hdr = BytesMut::new();
                for pong in ctl.borrow_mut().pongs.drain(..) {
                    rampart_ws_proto::encode_frame(&mut hdr, OpCode::Pong, &pong);
                }
                w.stage(&hdr)?;
                hdr.clear();
                let frames: Vec<Frame> = frames.collect();
                let len: usize = frames.iter().map(Frame::len).sum();
                if len > 0 {
                    rampart_ws_proto::encode_header(&mut hdr, OpCode::Binary, true, len as u64);
                    w.stage(&hdr)?;
                    stage_frames(w, frames.into_iter())?;
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
            Self::Tls(w) | Self::Ws(w, _) => w.release_buffers(),
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
            Self::Ws(mut w, ctl) => {
                let code = ctl.borrow().close.unwrap_or(1000);
                let mut b = BytesMut::new();
                rampart_ws_proto::encode_close(&mut b, code, "");
                if w.stage(&b).is_ok() {
                    let _ = compio::time::timeout(grace, w.flush()).await;
                }
                w.shutdown(grace).await;
            }
            Self::Plain { mut tcp, .. } => {
                let _ = compio::time::timeout(grace, tcp.shutdown()).await;
            }
        }
    }
}

/// Stages every frame's bytes on the TLS writer.
fn stage_frames(w: &mut TlsWriter, frames: impl Iterator<Item = Frame>) -> Result<(), ConnError> {
    for f in frames {
        match f {
            Frame::Whole(b) => w.stage(&b)?,
            Frame::Parts(h, p) => {
                w.stage(&h)?;
                w.stage(&p)?;
            }
        }
    }
    Ok(())
}

/// What the reading half of a WebSocket connection tells the writing half: pongs to send and
/// the close code to end with.
#[derive(Debug, Default)]
pub(crate) struct WsPending {
    pub(crate) pongs: Vec<Bytes>,
    pub(crate) close: Option<u16>,
    /// The connection's outbox, poked when a pong waits (a ping brings no MQTT bytes, so the
    /// reader would otherwise not return to wake the writer).
    pub(crate) outbox: Option<OutboxRef>,
}

/// Shared by the two halves of one WebSocket connection (same task, same core).
pub(crate) type WsCtl = Rc<RefCell<WsPending>>;

/// The receiving side of MQTT over WebSocket: frames in, the MQTT byte stream out. `Send`, so
/// it moves to the client id's home core with the connection.
#[derive(Debug)]
pub(crate) struct WsIn {
    decoder: Decoder,
    /// Received bytes not yet decoded.
    raw: BytesMut,
    closed: bool,
    /// The close code to send: the peer's own (echoed) or ours for a protocol error.
    pub(crate) close: Option<u16>,
    /// The front's admission ticket, held for the connection's life.
    _ticket: Option<Ticket>,
}

impl WsIn {
    /// `leftover`: bytes that arrived with the upgrade request.
    pub(crate) fn new(leftover: BytesMut, max_frame: u64, ticket: Option<Ticket>) -> Self {
        Self {
            decoder: Decoder::new(DecoderLimits {
                max_frame,
                require_mask: true,
            }),
            raw: leftover,
            closed: false,
            close: None,
            _ticket: ticket,
        }
    }

    /// Moves the MQTT bytes of every complete-enough frame in `raw` to `dst` and queues pongs.
    /// True once the peer has sent Close. A protocol error (or a text frame, which MQTT
    /// forbids) sets the close code and fails the read.
    fn take(&mut self, dst: &mut BytesMut, pongs: &mut Vec<Bytes>) -> Result<bool, ConnError> {
        while !self.closed {
            match self.decoder.decode(&mut self.raw) {
                Ok(None) => break,
                Ok(Some(WsEvent::Data { text: true, .. })) => {
                    // MQTT 5 §6.0: a non-binary data frame closes the connection.
                    self.close = Some(1003);
                    return Err(invalid("text frame on an MQTT WebSocket"));
                }
                Ok(Some(WsEvent::Data { bytes, .. })) => dst.extend_from_slice(&bytes),
                Ok(Some(WsEvent::Ping(p))) => {
                    // At most a few pongs wait; a ping flood is answered with the latest.
                    if pongs.len() >= 4 {
                        pongs.remove(0);
                    }
                    pongs.push(p);
                }
                Ok(Some(WsEvent::Pong(_))) => {}
                Ok(Some(WsEvent::Close { code, .. })) => {
                    self.closed = true;
                    self.close.get_or_insert(code.unwrap_or(1000));
                }
                Err(e) => {
                    self.close = Some(e.close_code());
                    return Err(invalid(e.reason()));
                }
            }
        }
        // A buffer that grew for one large frame is given back once drained.
        if self.raw.is_empty() && self.raw.capacity() > 64 * 1024 {
            self.raw = BytesMut::new();
        }
        Ok(self.closed)
    }

    /// The CONNECT stage's read: like [`Reader::read`], over the whole stream; pongs are
    /// answered at once.
    pub(crate) async fn read(
        &mut self,
        s: &mut TlsStream,
        dst: &mut BytesMut,
        clock: &mut rampart_deadline::StageClock,
        stage: Timeout,
    ) -> Result<usize, ConnError> {
        let mut pongs = Vec::new();
        loop {
            let before = dst.len();
            let closed = self.take(dst, &mut pongs)?;
            for pong in pongs.drain(..) {
                let mut b = BytesMut::new();
                rampart_ws_proto::encode_frame(&mut b, OpCode::Pong, &pong);
                // Under the CONNECT deadline too: pings do not buy time.
                let write = s.write_all(&b);
                match clock.deadline() {
                    Some(d) => compio::time::timeout_at(d, write)
                        .await
                        .map_err(|_| ConnError::Timeout(stage))??,
                    None => write.await?,
                }
            }
            if dst.len() > before {
                return Ok(dst.len() - before);
            }
            if closed {
                return Ok(0);
            }
            let mut v = Vec::new();
            if s.read(&mut v, clock, stage).await? == 0 {
                return Ok(0);
            }
            self.raw.extend_from_slice(&v);
        }
    }
}

fn invalid(what: &'static str) -> ConnError {
    ConnError::Io(io::Error::new(io::ErrorKind::InvalidData, what))
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
    let BufResult(res, buf) = race(deadline, tcp.append(buf))
        .await
        .ok_or(ConnError::Timeout(stage))?;
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
        let BufResult(res, mut batch) = race(Some(deadline), tcp.write_vectored(pending))
            .await
            .ok_or(ConnError::Timeout(Timeout::WriteStall))?;
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
