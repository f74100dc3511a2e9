//! A TLS connection split into a reading half and a writing half that run concurrently on one
//! core.
//!
//! A broker connection must wait for the peer's bytes and for messages to send at the same
//! time. The two halves share the rustls state through an `Rc<RefCell<..>>`: each half borrows
//! it only between awaits, never across one, so the borrow can never be contended. The socket
//! is shared the compio way (`TcpStream::into_split`), one read and one write operation in
//! flight at most.
//!
//! Writes are batched: the caller [`TlsWriter::stage`]s any number of plaintext chunks, which
//! are copied into one staging buffer and sealed as full TLS records (up to 16 KiB of plaintext
//! each), and [`TlsWriter::flush`] sends every pending record in one socket write. That is one
//! record and one system call per flush, not per MQTT packet.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use compio::BufResult;
use compio::io::{AsyncRead, AsyncWrite};
use compio::net::TcpStream;
use rampart_deadline::{Timeout, WriteClock};

use crate::engine::Engine;
use crate::stream::{ConnError, ReadSize, race, write_clocked};

/// Largest socket read: a TLS record is at most 16 KiB of plaintext plus overhead.
const READ_CHUNK: usize = 18 * 1024;
/// Plaintext sealed at once: one full TLS record.
const RECORD: usize = 16 * 1024;

/// The reading half.
#[derive(Debug)]
pub struct TlsReader {
    tcp: TcpStream,
    tls: Rc<RefCell<Engine>>,
    buf: Option<Vec<u8>>,
    /// How much the next socket read asks for.
    read_size: ReadSize,
    /// Plaintext decrypted before the split, handed out first.
    early: Vec<u8>,
    peer_closed: bool,
}

/// The writing half.
#[derive(Debug)]
pub struct TlsWriter {
    tcp: TcpStream,
    tls: Rc<RefCell<Engine>>,
    staged: Vec<u8>,
    clock: WriteClock,
}

/// Splits an established connection. `early` is plaintext already decrypted but not yet
/// consumed; the reader returns it first.
pub(crate) fn split(
    tcp: TcpStream,
    tls: Engine,
    early: Vec<u8>,
    write_stall: Duration,
) -> (TlsReader, TlsWriter) {
    let (rd, wr) = tcp.into_split();
    let peer_closed = tls.peer_closed();
    let tls = Rc::new(RefCell::new(tls));
    (
        TlsReader {
            tcp: rd,
            tls: tls.clone(),
            buf: None,
            read_size: ReadSize::new(READ_CHUNK),
            early,
            peer_closed,
        },
        TlsWriter {
            tcp: wr,
            tls,
            staged: Vec::new(),
            clock: WriteClock::new(write_stall),
        },
    )
}

impl TlsReader {
    /// Appends decrypted bytes to `dst`; returns how many, 0 when the peer closed. The socket
    /// read is raced against `deadline` (none: wait forever); `stage` names the timeout.
    ///
    /// After a read, rustls may have records to send (an alert, a key update): check
    /// [`TlsReader::wants_write`] and wake the writer.
    pub async fn read(
        &mut self,
        dst: &mut BytesMut,
        deadline: Option<Instant>,
        stage: Timeout,
    ) -> Result<usize, ConnError> {
        if !self.early.is_empty() {
            let n = self.early.len();
            dst.extend_from_slice(&self.early);
            self.early = Vec::new();
            return Ok(n);
        }
        loop {
            if self.peer_closed {
                return Ok(0);
            }
            // Small reads while the connection is quiet (an idle connection's pending read then
            // holds a small buffer), doubling while they come back full.
            let want = self.read_size.get();
            let mut buf = match self.buf.take() {
                Some(b) if b.capacity() >= want && b.capacity() <= 4 * want => b,
                _ => Vec::with_capacity(want),
            };
            buf.clear();
            let BufResult(res, mut buf) = race(deadline, self.tcp.read(buf))
                .await
                .ok_or(ConnError::Timeout(stage))?;
            let n = match res {
                Ok(n) => n,
                Err(e) => {
                    self.buf = Some(buf);
                    return Err(e.into());
                }
            };
            if n == 0 {
                self.buf = Some(buf);
                self.peer_closed = true;
                return Ok(0);
            }
            self.read_size.after(n);
            let before = dst.len();
            let fed = self.tls.borrow_mut().feed(&mut buf[..n], dst);
            self.buf = Some(buf);
            self.peer_closed |= fed?;
            if dst.len() > before {
                return Ok(dst.len() - before);
            }
        }
    }

    /// Whether rustls holds records the writer should send.
    pub fn wants_write(&self) -> bool {
        self.tls.borrow().wants_write()
    }

    /// Frees the read buffer while the connection idles (memory per idle connection).
    pub fn release_buffers(&mut self) {
        self.buf = None;
        self.tls.borrow_mut().release_buffers();
    }
}

impl TlsWriter {
    /// Copies `data` into the staging buffer, sealing a TLS record each time it fills. Nothing
    /// is sent until [`TlsWriter::flush`].
    pub fn stage(&mut self, mut data: &[u8]) -> Result<(), ConnError> {
        while !data.is_empty() {
            let room = RECORD - self.staged.len();
            let n = room.min(data.len());
            self.staged.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.staged.len() == RECORD {
                self.seal()?;
            }
        }
        Ok(())
    }

    /// Bytes staged and not yet sealed.
    pub fn staged_len(&self) -> usize {
        self.staged.len()
    }

    /// Seals what is staged and writes every pending record in as few socket writes as
    /// possible, under the write-progress deadline.
    pub async fn flush(&mut self) -> Result<(), ConnError> {
        self.seal()?;
        self.send().await
    }

    /// Sends close_notify (best effort, within `grace`) and shuts the socket's write side.
    pub async fn shutdown(mut self, grace: Duration) {
        self.tls.borrow_mut().send_close_notify();
        self.clock = WriteClock::new(grace.min(self.clock.stall()));
        let _ = self.send().await;
        let _ = self.tcp.shutdown().await;
    }

    /// Frees the write buffers while the connection idles.
    pub fn release_buffers(&mut self) {
        if self.staged.is_empty() {
            self.staged = Vec::new();
        }
        self.tls.borrow_mut().release_buffers();
    }

    fn seal(&mut self) -> Result<(), ConnError> {
        if self.staged.is_empty() {
            return Ok(());
        }
        self.tls.borrow_mut().encrypt(&self.staged)?;
        self.staged.clear();
        Ok(())
    }

    /// Sends the engine's queue, including records the reader queued meanwhile (alerts, key
    /// updates): they were sealed after what is in flight, so they go after it.
    async fn send(&mut self) -> Result<(), ConnError> {
        loop {
            let buf = {
                let mut tls = self.tls.borrow_mut();
                if !tls.wants_write() {
                    return Ok(());
                }
                tls.take_out()
            };
            let buf = write_clocked(&mut self.tcp, &mut self.clock, buf).await?;
            self.tls.borrow_mut().return_out(buf);
        }
    }
}
