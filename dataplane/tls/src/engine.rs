//! rustls's unbuffered server connection with the buffers we own.
//!
//! rustls's buffered `ServerConnection` keeps a 4 KiB receive buffer on every connection that
//! has ever read, idle or not: a quarter of what an idle broker connection costs. With the
//! unbuffered API the ciphertext stays in our buffers. A read is processed in place in the
//! buffer the socket filled, and only a record cut by the end of the read is kept, in
//! [`Engine::pending`], until the rest arrives. A quiet connection holds no TLS buffer at all.
//!
//! Everything rustls produces (handshake flights, alerts, key updates, encrypted application
//! data) is appended to one queue, [`Engine::take_out`], in the order of its sequence numbers,
//! and sent in that order.

use rustls::ServerConfig;
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncodeTlsData, EncryptError, UnbufferedStatus, WriteTraffic,
};
use std::io;
use std::sync::Arc;

use crate::stream::{ConnError, Plaintext};

/// Most ciphertext kept waiting for the rest of a message: a handshake message may be joined
/// from several records (rustls allows 64 KiB), plus one record.
const MAX_PENDING: usize = 0xffff + 18 * 1024;

/// An unbuffered rustls connection, a partial record at most, and the records to send.
pub(crate) struct Engine {
    conn: UnbufferedServerConnection,
    /// Ciphertext received and not yet processed: between reads, the start of a record (or of
    /// a handshake message) whose end has not arrived.
    pending: Vec<u8>,
    /// Records encoded or encrypted and not yet handed to the socket, in sequence order.
    out: Vec<u8>,
    peer_closed: bool,
    /// rustls (or the engine) reported an error: rustls must not be called again (it would
    /// read bytes it has offsets into, which may be gone, and send a second fatal alert).
    failed: Option<Failure>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("handshaking", &self.conn.is_handshaking())
            .field("pending", &self.pending.len())
            .field("out", &self.out.len())
            .field("peer_closed", &self.peer_closed)
            .finish_non_exhaustive()
    }
}

impl Engine {
    pub(crate) fn new(config: Arc<ServerConfig>) -> Result<Self, rustls::Error> {
        Ok(Self {
            conn: UnbufferedServerConnection::new(config)?,
            pending: Vec::new(),
            out: Vec::new(),
            peer_closed: false,
            failed: None,
        })
    }

    /// Processes `data`, just read from the socket (decrypted in place), and appends the
    /// plaintext to `dst`. Records rustls wants to send (handshake, alerts, key updates) are
    /// queued for [`Engine::take_out`]. On an error, the alert rustls prepared is queued too.
    /// Returns whether the peer has sent close_notify: anything after it is ignored (RFC 8446
    /// §6.1).
    pub(crate) fn feed(
        &mut self,
        data: &mut [u8],
        dst: &mut impl Plaintext,
    ) -> Result<bool, ConnError> {
        if let Some(failed) = &self.failed {
            return Err(failed.again());
        }
        if self.peer_closed {
            return Ok(true);
        }
        let res = if self.pending.is_empty() {
            self.feed_in_place(data, dst)
        } else {
            self.feed_cut(data, dst)
        };
        if let Err(e) = &res {
            self.failed = Some(Failure::of(e));
        }
        res?;
        if self.peer_closed {
            self.pending = Vec::new();
        }
        Ok(self.peer_closed)
    }

    /// Whole records, processed where the socket put them; a cut one at the end is kept.
    fn feed_in_place(
        &mut self,
        data: &mut [u8],
        dst: &mut impl Plaintext,
    ) -> Result<(), ConnError> {
        let used = self.process(data, dst)?;
        self.keep(&data[used..])
    }

    /// `pending` holds the start of a record: it is completed from `data` and processed, then
    /// the rest of `data` is processed in place. Only the cut record is copied, not the read.
    fn feed_cut(&mut self, data: &mut [u8], dst: &mut impl Plaintext) -> Result<(), ConnError> {
        let mut at = 0;
        loop {
            let missing = self.missing();
            let take = missing.min(data.len() - at);
            self.keep(&data[at..at + take])?;
            at += take;
            if take < missing {
                // The read ended inside the record again.
                return Ok(());
            }
            if self.missing() > 0 {
                // The header is complete now; go on with the body.
                continue;
            }
            self.process_pending(dst)?;
            if self.peer_closed {
                return Ok(());
            }
            if !self.pending.is_empty() {
                // rustls holds on to these bytes (a handshake message joined over records):
                // it has offsets into them, so the rest goes after them.
                self.keep(&data[at..])?;
                return self.process_pending(dst);
            }
            return self.feed_in_place(&mut data[at..], dst);
        }
    }

    /// Bytes `pending` lacks: to complete the record header, else the record. An oversized
    /// length is not waited for: rustls refuses it on sight.
    fn missing(&self) -> usize {
        const HEADER: usize = 5;
        // The largest record rustls accepts (RFC 8446 §5.2: 2^14 + 256, TLS 1.2 allows 2,048).
        const MAX_RECORD: usize = 16 * 1024 + 2048;
        let p = &self.pending;
        if p.len() < HEADER {
            return HEADER - p.len();
        }
        let len = usize::from(u16::from_be_bytes([p[3], p[4]]));
        if len > MAX_RECORD {
            return 0;
        }
        (HEADER + len).saturating_sub(p.len())
    }

    /// Runs rustls over `pending` and drops what it consumed.
    fn process_pending(&mut self, dst: &mut impl Plaintext) -> Result<(), ConnError> {
        let mut pending = std::mem::take(&mut self.pending);
        let res = self.process(&mut pending, dst);
        if let Ok(used) = res {
            pending.drain(..used);
        }
        self.pending = pending;
        res.map(drop)
    }

    /// Whether the handshake is still going on.
    pub(crate) fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Whether the peer has sent close_notify.
    pub(crate) fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// Whether records are waiting to be sent.
    pub(crate) fn wants_write(&self) -> bool {
        !self.out.is_empty()
    }

    /// Encrypts `data` as application data records (16 KiB of plaintext each) and queues them.
    pub(crate) fn encrypt(&mut self, data: &[u8]) -> Result<(), ConnError> {
        if data.is_empty() {
            return Ok(());
        }
        self.write_traffic(|w, out| {
            // One record per 16 KiB, each with a header, a content type and a tag.
            let hint = data.len() + (data.len() / (16 * 1024) + 1) * 32;
            append(out, hint, |buf| w.encrypt(data, buf).map_err(Grow::from))
        })
    }

    /// Queues a close_notify alert (once; nothing if the connection cannot send any more).
    pub(crate) fn send_close_notify(&mut self) {
        let _ = self.write_traffic(|w, out| {
            append(out, 64, |buf| w.queue_close_notify(buf).map_err(Grow::from))
        });
    }

    /// Takes the records queued for sending, leaving an empty queue.
    pub(crate) fn take_out(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Gives back an emptied send buffer for reuse, unless new records were queued meanwhile.
    pub(crate) fn return_out(&mut self, mut buf: Vec<u8>) {
        if self.out.is_empty() {
            buf.clear();
            self.out = buf;
        }
    }

    /// Frees the empty buffers of a quiet connection.
    pub(crate) fn release_buffers(&mut self) {
        if self.pending.is_empty() {
            self.pending = Vec::new();
        }
        if self.out.is_empty() {
            self.out = Vec::new();
        }
    }

    /// The negotiated protocol version.
    pub(crate) fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        self.conn.protocol_version()
    }

    /// The ALPN protocol the client chose.
    pub(crate) fn alpn_protocol(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    /// Keeps the unprocessed end of a read for the next one.
    fn keep(&mut self, rest: &[u8]) -> Result<(), ConnError> {
        if rest.is_empty() {
            return Ok(());
        }
        if self.peer_closed {
            // Bytes after close_notify are ignored, not kept.
            return Ok(());
        }
        if self.pending.len() + rest.len() > MAX_PENDING {
            return Err(ConnError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                "TLS message larger than 64 KiB",
            )));
        }
        self.pending.extend_from_slice(rest);
        Ok(())
    }

    /// Runs rustls over `buf` until it needs more bytes; returns how many it consumed.
    fn process(&mut self, buf: &mut [u8], dst: &mut impl Plaintext) -> Result<usize, ConnError> {
        let mut used = 0;
        loop {
            let UnbufferedStatus { discard, state } =
                self.conn.process_tls_records(&mut buf[used..]);
            let state = match state {
                Ok(state) => state,
                Err(e) => {
                    // rustls prepared an alert; it must be given the same bytes again, less
                    // what it said to discard.
                    self.queue_alert(&mut buf[used + discard..]);
                    return Err(e.into());
                }
            };
            let mut stop = false;
            match state {
                ConnectionState::ReadTraffic(mut r) => {
                    while let Some(rec) = r.next_record() {
                        let rec = rec?;
                        // rustls 0.23 decrypts into a buffer of its own; a version that
                        // decrypts in place would ask for a discard here.
                        debug_assert_eq!(rec.discard, 0);
                        dst.grow(rec.payload.len()).copy_from_slice(rec.payload);
                    }
                }
                ConnectionState::EncodeTlsData(mut e) => {
                    encode(&mut self.out, &mut e)?;
                }
                // Our queue keeps the order; what was encoded goes out before anything later.
                ConnectionState::TransmitTlsData(t) => t.done(),
                ConnectionState::PeerClosed | ConnectionState::Closed => {
                    self.peer_closed = true;
                    stop = true;
                }
                // Waiting for more bytes, in the handshake or after it.
                ConnectionState::BlockedHandshake | ConnectionState::WriteTraffic(_) => {
                    stop = true;
                }
                // 0-RTT is never enabled (max_early_data_size stays 0), so rustls refuses it;
                // this arm only keeps a future rustls from making us loop.
                _ => {
                    return Err(ConnError::Io(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "unexpected TLS state (early data)",
                    )));
                }
            }
            used += discard;
            if stop {
                return Ok(used);
            }
        }
    }

    /// Brings the connection to the state where it may send application data, encoding what
    /// rustls queued first, then runs `f` on it.
    fn write_traffic(
        &mut self,
        mut f: impl FnMut(
            &mut WriteTraffic<'_, ServerConnectionData>,
            &mut Vec<u8>,
        ) -> Result<(), ConnError>,
    ) -> Result<(), ConnError> {
        if let Some(failed) = &self.failed {
            return Err(failed.again());
        }
        let res = self.write_traffic_inner(&mut f);
        if let Err(e) = &res {
            self.failed = Some(Failure::of(e));
        }
        res
    }

    fn write_traffic_inner(
        &mut self,
        f: &mut impl FnMut(
            &mut WriteTraffic<'_, ServerConnectionData>,
            &mut Vec<u8>,
        ) -> Result<(), ConnError>,
    ) -> Result<(), ConnError> {
        // Bounded: every turn either encodes a queued record or ends. rustls is given the
        // bytes it has started on (a handshake message it is joining): it keeps offsets into
        // them, and an empty buffer would make it index out of bounds. They hold no complete
        // record (feed processed those), so nothing is consumed here.
        loop {
            let UnbufferedStatus { discard, state } =
                self.conn.process_tls_records(&mut self.pending);
            let done = match state? {
                ConnectionState::EncodeTlsData(mut e) => {
                    encode(&mut self.out, &mut e)?;
                    None
                }
                ConnectionState::TransmitTlsData(t) => {
                    t.done();
                    None
                }
                ConnectionState::PeerClosed => {
                    self.peer_closed = true;
                    None
                }
                ConnectionState::WriteTraffic(mut w) => Some(f(&mut w, &mut self.out)),
                _ => Some(Err(ConnError::Io(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "TLS connection cannot send application data",
                )))),
            };
            self.pending.drain(..discard);
            if let Some(done) = done {
                return done;
            }
        }
    }

    /// After an error, queues the alert rustls prepared for the peer, if any. `buf` is what
    /// the failed call was given, less its discard: rustls keeps offsets into it (see
    /// `write_traffic`). One call only: the alert is one record, and a second call would make
    /// rustls read on. (If rustls had queued handshake records before the alert, the first of
    /// them goes instead and the alert is lost: the connection closes either way.)
    fn queue_alert(&mut self, buf: &mut [u8]) {
        let UnbufferedStatus { state, .. } = self.conn.process_tls_records(buf);
        if let Ok(ConnectionState::EncodeTlsData(mut e)) = state {
            let _ = encode(&mut self.out, &mut e);
        }
    }
}

/// Why an engine stopped: what later calls report.
#[derive(Debug)]
enum Failure {
    /// rustls refused what the peer sent (or what we asked of it).
    Tls(rustls::Error),
    /// Anything else; reported as bad data from the peer, which is what ends a connection here
    /// (an oversized message).
    Other(String),
}

impl Failure {
    fn of(e: &ConnError) -> Self {
        match e {
            ConnError::Tls(e) => Self::Tls(e.clone()),
            other => Self::Other(other.to_string()),
        }
    }

    fn again(&self) -> ConnError {
        match self {
            Self::Tls(e) => ConnError::Tls(e.clone()),
            Self::Other(msg) => ConnError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("TLS connection failed earlier: {msg}"),
            )),
        }
    }
}

/// What to do when rustls could not write into the space offered.
enum Grow {
    /// Offer this many bytes.
    To(usize),
    /// Give up.
    Fail(String),
}

impl From<EncryptError> for Grow {
    fn from(e: EncryptError) -> Self {
        match e {
            EncryptError::InsufficientSize(s) => Self::To(s.required_size),
            other => Self::Fail(other.to_string()),
        }
    }
}

/// Appends a handshake record (or alert) rustls queued.
fn encode(
    out: &mut Vec<u8>,
    e: &mut EncodeTlsData<'_, ServerConnectionData>,
) -> Result<(), ConnError> {
    append(out, 1024, |b| {
        e.encode(b).map_err(|err| match err {
            EncodeError::InsufficientSize(s) => Grow::To(s.required_size),
            other => Grow::Fail(other.to_string()),
        })
    })
}

/// Appends what `write` puts into a zeroed tail of `out`, growing the tail as rustls asks.
fn append(
    out: &mut Vec<u8>,
    hint: usize,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, Grow>,
) -> Result<(), ConnError> {
    let start = out.len();
    let mut room = hint;
    // rustls names the exact size on the first refusal; a second refusal would be a bug.
    for _ in 0..2 {
        out.resize(start + room, 0);
        match write(&mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(());
            }
            Err(Grow::To(need)) if need > room => room = need,
            Err(Grow::To(_)) => break,
            Err(Grow::Fail(msg)) => {
                out.truncate(start);
                return Err(ConnError::Io(io::Error::other(msg)));
            }
        }
    }
    out.truncate(start);
    Err(ConnError::Io(io::Error::other(
        "rustls refused the space it asked for",
    )))
}

#[cfg(test)]
mod tests {
    //! The engine against a real rustls client, in memory: the bytes between them can be cut
    //! anywhere.

    use std::io::Read;

    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
    use rustls::{ClientConnection, RootCertStore};

    use super::*;

    fn configs(
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> (Arc<ServerConfig>, Arc<rustls::ClientConfig>) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(cert.der().clone()).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        (Arc::new(server), Arc::new(client))
    }

    /// Moves what the client has to send into the engine, `cut` bytes per read.
    fn to_server(
        client: &mut ClientConnection,
        server: &mut Engine,
        cut: usize,
        plain: &mut Vec<u8>,
    ) -> Result<bool, ConnError> {
        let mut wire = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut wire).unwrap();
        }
        let mut closed = false;
        for read in wire.chunks_mut(cut) {
            closed |= server.feed(read, plain)?;
        }
        Ok(closed)
    }

    /// Moves the engine's queue to the client; returns the plaintext the client got.
    fn to_client(server: &mut Engine, client: &mut ClientConnection) -> Vec<u8> {
        let out = server.take_out();
        let mut rd = &out[..];
        while !rd.is_empty() {
            client.read_tls(&mut rd).unwrap();
            client.process_new_packets().unwrap();
        }
        let mut got = Vec::new();
        // WouldBlock once the plaintext is drained: what was read is in `got`.
        let _ = client.reader().read_to_end(&mut got);
        got
    }

    fn established(
        versions: &[&'static rustls::SupportedProtocolVersion],
        cut: usize,
    ) -> (ClientConnection, Engine) {
        let (server_config, client_config) = configs(versions);
        let mut server = Engine::new(server_config).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let mut client = ClientConnection::new(client_config, name).unwrap();
        let mut plain = Vec::new();
        for _ in 0..10 {
            if !client.is_handshaking() && !server.is_handshaking() {
                break;
            }
            to_server(&mut client, &mut server, cut, &mut plain).unwrap();
            to_client(&mut server, &mut client);
        }
        assert!(!client.is_handshaking() && !server.is_handshaking());
        assert!(plain.is_empty());
        (client, server)
    }

    #[test]
    fn records_cut_anywhere_are_put_back_together() {
        let sizes = [1, 300, 20_000];
        let sent: Vec<u8> = (0..sizes.iter().sum::<usize>())
            .map(|i| (i % 251) as u8)
            .collect();
        for versions in [&[&rustls::version::TLS13][..], &[&rustls::version::TLS12]] {
            // Around a 16 KiB record too: a read ends just before, at and after its end.
            for cut in [
                1, 2, 5, 17, 100, 4096, 16_405, 16_406, 16_407, 20_000, 100_000,
            ] {
                let (mut client, mut server) = established(versions, cut);
                let mut at = 0;
                for n in sizes {
                    std::io::Write::write_all(&mut client.writer(), &sent[at..at + n]).unwrap();
                    at += n;
                }
                let mut plain = Vec::new();
                assert!(!to_server(&mut client, &mut server, cut, &mut plain).unwrap());
                assert!(
                    plain == sent,
                    "{versions:?} cut {cut}: {} bytes",
                    plain.len()
                );
                // Whole records were taken: nothing is kept for later.
                assert!(server.pending.is_empty(), "cut {cut}");
                // And back: one write of more than a record.
                server.encrypt(&sent).unwrap();
                assert!(to_client(&mut server, &mut client) == sent, "cut {cut}");
            }
        }
    }

    #[test]
    fn key_updates_are_answered_in_order() {
        let (mut client, mut server) = established(&[&rustls::version::TLS13], 1000);
        for round in 0..3u8 {
            // The client asks for new keys; the server's answer is queued by the reading side,
            // then application data is encrypted under the new keys after it.
            client.refresh_traffic_keys().unwrap();
            std::io::Write::write_all(&mut client.writer(), &[round; 10]).unwrap();
            let mut plain = Vec::new();
            to_server(&mut client, &mut server, 3, &mut plain).unwrap();
            assert_eq!(plain, [round; 10]);
            // rustls sends its answer with the next record, before it.
            server.encrypt(&[round + 100; 10]).unwrap();
            assert_eq!(to_client(&mut server, &mut client), [round + 100; 10]);
        }
    }

    #[test]
    fn a_quiet_connection_holds_no_tls_buffer() {
        let (mut client, mut server) = established(&[&rustls::version::TLS13], 7);
        std::io::Write::write_all(&mut client.writer(), &[1; 5000]).unwrap();
        let mut plain = Vec::new();
        to_server(&mut client, &mut server, 7, &mut plain).unwrap();
        server.encrypt(&plain).unwrap();
        to_client(&mut server, &mut client);
        server.release_buffers();
        assert_eq!((server.pending.capacity(), server.out.capacity()), (0, 0));
    }

    #[test]
    fn bytes_after_close_notify_are_dropped() {
        let (mut client, mut server) = established(&[&rustls::version::TLS13], 1000);
        client.send_close_notify();
        let mut wire = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut wire).unwrap();
        }
        wire.extend_from_slice(&[0x17; 64 * 1024]);
        let mut plain = Vec::new();
        assert!(server.feed(&mut wire, &mut plain).unwrap());
        assert!(server.pending.is_empty() && plain.is_empty());
        // Later reads are ignored too, without growing anything.
        assert!(server.feed(&mut [0x17; 100], &mut plain).unwrap());
        assert!(server.pending.is_empty());
    }

    #[test]
    fn garbage_is_an_error_with_an_alert_queued() {
        let (server_config, _) = configs(&[&rustls::version::TLS13]);
        let mut server = Engine::new(server_config).unwrap();
        let mut plain = Vec::new();
        let mut junk = *b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(server.feed(&mut junk, &mut plain).is_err());
        let alert = server.take_out();
        assert_eq!(alert.first(), Some(&0x15), "an alert record: {alert:?}");
        // The writing half may still try to close: rustls is not called again.
        server.send_close_notify();
        assert!(server.encrypt(b"late").is_err());
        assert!(server.feed(&mut [0x16; 10], &mut plain).is_err());
        assert!(!server.wants_write());
    }

    #[test]
    fn a_handshake_message_joined_from_records_then_refused_does_not_panic() {
        let (server_config, _) = configs(&[&rustls::version::TLS13]);
        let mut server = Engine::new(server_config).unwrap();
        let mut plain = Vec::new();
        // A ClientHello of 65,520 bytes of zeros in full records: rustls joins them (the
        // bytes are kept between reads, with rustls's offsets into them), then refuses the
        // message, and its alert is taken from the same bytes.
        let mut fed = Ok(false);
        for i in 0..5 {
            let mut record = vec![0x16, 0x03, 0x01, 0x40, 0x00];
            let mut body = vec![0u8; 0x4000];
            if i == 0 {
                body[..4].copy_from_slice(&[0x01, 0x00, 0xff, 0xf0]);
            }
            record.extend_from_slice(&body);
            // Each record in two reads, so both the in-place and the kept path join.
            let (a, b) = record.split_at_mut(3000);
            fed = server
                .feed(a, &mut plain)
                .and_then(|_| server.feed(b, &mut plain));
            assert!(server.pending.len() <= MAX_PENDING);
            if fed.is_err() {
                break;
            }
        }
        assert!(matches!(fed, Err(ConnError::Tls(_))), "{fed:?}");
        assert_eq!(server.take_out().first(), Some(&0x15), "an alert record");
    }
}
