//! The slow attackers, after slowhttptest's modes:
//!
//! - slowloris (`-H`): a request line and a Host header, then one more header line every
//!   interval; the head never ends;
//! - slow body (`-B`): a complete POST head with a large Content-Length, then one byte of the
//!   body every interval;
//! - slow read (`-X`): a tiny receive buffer (`SO_RCVBUF`, set before the connect so the
//!   window is small from the SYN on), a request for a large response, then a few bytes read
//!   off the socket every interval.
//!
//! An attack thread holds its share of the attackers on non-blocking sockets in one epoll set;
//! only the TCP connect and the TLS handshake block (with timeouts). An attacker the server
//! closes (FIN, close_notify, reset) counts as closed by the server, with how long it lived,
//! and reconnects at once; one that cannot connect retries after a second (or the interval, if
//! shorter). Whatever the server answers (a 408, say) is counted by status.

use std::collections::BTreeMap;
use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::{Buf as _, BytesMut};
use hdrhistogram::Histogram;
use rampart_http_proto::{BodyDecoder, BodyEvent, BodyLimits, Limits, ResponseParser};
use rustix::buffer::spare_capacity;
use rustix::event::epoll;
use rustix::fd::OwnedFd;
use rustix::net::{AddressFamily, SocketFlags, SocketType};
use rustls::ClientConnection;

use super::client::{self, Endpoint};
use super::legit::Live;
use crate::handshake::{connect_failure, io_failure};
use crate::runner::record;
use crate::runner::{ErrorTally, Failure, new_histogram};

/// A slow reader's `SO_RCVBUF` (the kernel doubles it and enforces its own minimum).
pub(crate) const SLOW_READ_RCVBUF: usize = 4096;

/// The longest wait between reconnect attempts of an attacker that cannot connect.
const RECONNECT_BACKOFF: Duration = Duration::from_secs(1);

/// The longest epoll wait, so a stop is noticed promptly.
const MAX_WAIT: Duration = Duration::from_millis(100);

/// The kinds of attacker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Slowloris,
    SlowBody,
    SlowRead,
}

impl Kind {
    pub(crate) const ALL: [Self; 3] = [Self::Slowloris, Self::SlowBody, Self::SlowRead];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Slowloris => "slowloris",
            Self::SlowBody => "slow_body",
            Self::SlowRead => "slow_read",
        }
    }
}

/// What every attacker shares.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) endpoint: Endpoint,
    /// `Host` header value.
    pub(crate) host: String,
    pub(crate) interval: Duration,
    pub(crate) slowloris_path: String,
    pub(crate) slow_body_path: String,
    pub(crate) slow_body_length: u64,
    pub(crate) slow_read_path: String,
    pub(crate) slow_read_chunk: usize,
}

impl Config {
    /// What an attacker sends right after the handshake.
    fn opening(&self, kind: Kind) -> Vec<u8> {
        let host = &self.host;
        match kind {
            Kind::Slowloris => format!(
                "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: rampart-loadgen (slowloris)\r\n",
                self.slowloris_path
            )
            .into_bytes(),
            Kind::SlowBody => format!(
                "POST {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: rampart-loadgen (slow body)\r\n\
                 Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
                self.slow_body_path, self.slow_body_length
            )
            .into_bytes(),
            Kind::SlowRead => client::request("GET", &self.slow_read_path, host, None),
        }
    }
}

/// What the attackers of one kind saw (per thread, merged at the end).
#[derive(Debug)]
pub(crate) struct KindTally {
    /// Connections opened (TLS handshake complete).
    pub(crate) opened: u64,
    /// Connections the server ended (FIN, close_notify or reset).
    pub(crate) closed_by_server: u64,
    /// Connect or TLS handshake attempts that failed.
    pub(crate) connect_failed: u64,
    /// Failures by kind: failed connects, and connections we ended on an error.
    pub(crate) errors: BTreeMap<&'static str, ErrorTally>,
    /// Response statuses received.
    pub(crate) responses: BTreeMap<u16, u64>,
    /// Lifetime of the connections the server closed, connect to close, ms.
    pub(crate) lifetime_ms: Histogram<u64>,
    /// Connections still open when the run ended.
    pub(crate) alive_at_end: u64,
    /// Plaintext bytes the attackers wrote.
    pub(crate) bytes_sent: u64,
    /// Bytes read off the sockets (TLS records included).
    pub(crate) bytes_received: u64,
}

impl KindTally {
    pub(crate) fn new() -> Self {
        Self {
            opened: 0,
            closed_by_server: 0,
            connect_failed: 0,
            errors: BTreeMap::new(),
            responses: BTreeMap::new(),
            lifetime_ms: new_histogram(),
            alive_at_end: 0,
            bytes_sent: 0,
            bytes_received: 0,
        }
    }

    pub(crate) fn merge(&mut self, other: Self) -> Result<(), hdrhistogram::errors::AdditionError> {
        self.opened += other.opened;
        self.closed_by_server += other.closed_by_server;
        self.connect_failed += other.connect_failed;
        for (kind, tally) in other.errors {
            self.errors
                .entry(kind)
                .and_modify(|t| t.count += tally.count)
                .or_insert(tally);
        }
        for (status, n) in other.responses {
            *self.responses.entry(status).or_default() += n;
        }
        self.lifetime_ms.add(&other.lifetime_ms)?;
        self.alive_at_end += other.alive_at_end;
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
        Ok(())
    }

    fn error(&mut self, failure: Failure) {
        self.errors
            .entry(failure.kind)
            .or_insert_with(|| ErrorTally {
                count: 0,
                example: failure.detail,
            })
            .count += 1;
    }
}

/// Every kind's figures.
pub(crate) type Tallies = BTreeMap<Kind, KindTally>;

/// One attacker's connection.
#[derive(Debug)]
struct Open {
    tcp: TcpStream,
    tls: Box<ClientConnection>,
    opened_at: Instant,
    /// When it next sends (or, slow read, reads).
    next_at: Instant,
    /// Slowloris header lines or slow-body bytes sent after the opening.
    step: u64,
    /// Plaintext of the response being received.
    inbuf: BytesMut,
    parser: ResponseParser,
    /// The response body being received, once its head is in.
    body: Option<(bool, BodyDecoder)>,
}

#[derive(Debug)]
struct Slot {
    kind: Kind,
    open: Option<Open>,
    /// When to (re)connect, while not open.
    retry_at: Instant,
}

/// How a live connection ended.
enum End {
    /// FIN, close_notify, reset or an alert from the server.
    ByServer,
    /// We gave up on it.
    Error(Failure),
}

/// One attack thread: its attackers until `live.stop`. After the first round of connects it
/// sends on `ready`.
pub(crate) fn run(
    cfg: &Config,
    kinds: &[Kind],
    live: &Live,
    ready: &mpsc::Sender<()>,
) -> io::Result<Tallies> {
    let epoll_fd = epoll::create(epoll::CreateFlags::CLOEXEC)?;
    let mut thread = Thread {
        cfg,
        epoll: epoll_fd,
        tallies: Kind::ALL.iter().map(|k| (*k, KindTally::new())).collect(),
        live,
    };
    let now = Instant::now();
    let mut slots: Vec<Slot> = kinds
        .iter()
        .map(|&kind| Slot {
            kind,
            open: None,
            retry_at: now,
        })
        .collect();
    let mut first_round = true;
    let mut events = Vec::with_capacity(256);
    while !live.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        for (i, slot) in slots.iter_mut().enumerate() {
            if live.stop.load(Ordering::Relaxed) {
                break;
            }
            match &mut slot.open {
                None if slot.retry_at <= now => thread.connect(i, slot),
                Some(open) if open.next_at <= now => {
                    // Behind (a long connect elsewhere on this thread): skip, don't burst.
                    let next = open.next_at + cfg.interval;
                    open.next_at = if next <= now {
                        now + cfg.interval
                    } else {
                        next
                    };
                    let kind = slot.kind;
                    if let Err(end) = thread.step(kind, open) {
                        thread.ended(slot, end);
                    }
                }
                _ => {}
            }
        }
        if first_round {
            first_round = false;
            let _ = ready.send(());
        }
        let next = slots
            .iter()
            .map(|s| s.open.as_ref().map_or(s.retry_at, |o| o.next_at))
            .min()
            .unwrap_or(now + MAX_WAIT);
        let wait = next.saturating_duration_since(Instant::now()).min(MAX_WAIT);
        let timeout = rustix::time::Timespec {
            tv_sec: 0,
            tv_nsec: i64::from(wait.subsec_nanos()),
        };
        events.clear();
        match epoll::wait(&thread.epoll, spare_capacity(&mut events), Some(&timeout)) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        for ev in &events {
            let Some(slot) = usize::try_from(ev.data.u64())
                .ok()
                .and_then(|i| slots.get_mut(i))
            else {
                continue;
            };
            let kind = slot.kind;
            let Some(open) = &mut slot.open else {
                continue;
            };
            let result = if kind == Kind::SlowRead {
                // Only hang-ups are watched: a slow reader reads on its own schedule.
                Err(End::ByServer)
            } else {
                thread.receive(kind, open, usize::MAX)
            };
            if let Err(end) = result {
                thread.ended(slot, end);
            }
        }
    }
    for slot in &mut slots {
        if slot.open.take().is_some() {
            thread.tally(slot.kind).alive_at_end += 1;
            live.attackers_alive.fetch_sub(1, Ordering::Relaxed);
        }
    }
    Ok(thread.tallies)
}

struct Thread<'a> {
    cfg: &'a Config,
    epoll: OwnedFd,
    tallies: Tallies,
    live: &'a Live,
}

impl Thread<'_> {
    fn tally(&mut self, kind: Kind) -> &mut KindTally {
        self.tallies.entry(kind).or_insert_with(KindTally::new)
    }

    /// Connects (blocking, with timeouts), sends the opening and joins the epoll set.
    fn connect(&mut self, index: usize, slot: &mut Slot) {
        let kind = slot.kind;
        match self.open(kind, index) {
            Ok(open) => {
                self.tally(kind).opened += 1;
                self.live.attackers_alive.fetch_add(1, Ordering::Relaxed);
                slot.open = Some(open);
            }
            Err(failure) => {
                let tally = self.tally(kind);
                tally.connect_failed += 1;
                tally.error(failure);
                slot.retry_at = Instant::now() + self.cfg.interval.min(RECONNECT_BACKOFF);
            }
        }
    }

    fn open(&mut self, kind: Kind, index: usize) -> Result<Open, Failure> {
        let ep = &self.cfg.endpoint;
        let opened_at = Instant::now();
        let deadline = opened_at + ep.connect_timeout;
        let tcp = if kind == Kind::SlowRead {
            connect_small_window(ep.addr, SLOW_READ_RCVBUF, ep.connect_timeout)
                .map_err(connect_failure)?
        } else {
            client::connect(ep.addr, ep.connect_timeout, deadline)?
        };
        let (tls, tcp) = client::handshake(tcp, ep, deadline)?.into_parts();
        tcp.set_nonblocking(true).map_err(io_failure)?;
        let mut open = Open {
            tcp,
            tls: Box::new(tls),
            opened_at,
            next_at: Instant::now() + self.cfg.interval,
            step: 0,
            inbuf: BytesMut::new(),
            parser: ResponseParser::new(Limits::default()),
            body: None,
        };
        let opening = self.cfg.opening(kind);
        self.send(kind, &mut open, &opening)
            .map_err(|end| match end {
                End::ByServer => Failure {
                    kind: "closed_by_server",
                    detail: "closed right after the handshake".to_owned(),
                },
                End::Error(f) => f,
            })?;
        let flags = if kind == Kind::SlowRead {
            epoll::EventFlags::RDHUP
        } else {
            epoll::EventFlags::IN | epoll::EventFlags::RDHUP
        };
        epoll::add(
            &self.epoll,
            &open.tcp,
            epoll::EventData::new_u64(index as u64),
            flags,
        )
        .map_err(|e| io_failure(e.into()))?;
        Ok(open)
    }

    /// The attacker's next move: a header line, a body byte, or a slow read.
    fn step(&mut self, kind: Kind, open: &mut Open) -> Result<(), End> {
        match kind {
            Kind::Slowloris => {
                open.step += 1;
                let line = format!("X-Loadgen-{}: {}\r\n", open.step, open.step);
                self.send(kind, open, line.as_bytes())
            }
            Kind::SlowBody => {
                if open.step >= self.cfg.slow_body_length {
                    // The whole body is out: the server's answer decides what happens next.
                    return flush(open);
                }
                open.step += 1;
                self.send(kind, open, b"x")
            }
            Kind::SlowRead => self.receive(kind, open, self.cfg.slow_read_chunk),
        }
    }

    fn send(&mut self, kind: Kind, open: &mut Open, bytes: &[u8]) -> Result<(), End> {
        open.tls
            .writer()
            .write_all(bytes)
            .map_err(|e| End::Error(io_failure(e)))?;
        self.tally(kind).bytes_sent += bytes.len() as u64;
        flush(open)
    }

    /// Reads at most `limit` bytes off the socket (as much as there is with `usize::MAX`),
    /// decrypts them and follows the response.
    fn receive(&mut self, kind: Kind, open: &mut Open, limit: usize) -> Result<(), End> {
        let mut scratch = [0u8; 16 * 1024];
        let mut left = limit;
        while left > 0 {
            let want = left.min(scratch.len());
            let n = match open.tcp.read(&mut scratch[..want]) {
                Ok(0) => return Err(End::ByServer),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ended_by(e)),
            };
            left -= n;
            self.tally(kind).bytes_received += n as u64;
            let mut data = &scratch[..n];
            while !data.is_empty() {
                open.tls.read_tls(&mut data).map_err(ended_by)?;
                let state = open.tls.process_new_packets().map_err(|e| match e {
                    rustls::Error::AlertReceived(_) => End::ByServer,
                    other => End::Error(io_failure(io::Error::other(other))),
                })?;
                if state.plaintext_bytes_to_read() > 0 {
                    let mut plain = vec![0u8; state.plaintext_bytes_to_read()];
                    let got = open.tls.reader().read(&mut plain).map_err(ended_by)?;
                    open.inbuf.extend_from_slice(&plain[..got]);
                    self.follow(kind, open)?;
                }
                if state.peer_has_closed() {
                    return Err(End::ByServer);
                }
            }
            flush(open)?;
        }
        Ok(())
    }

    /// Parses the server's answers: counts each status; a slow reader asks again when its
    /// response is complete and the connection stays open.
    fn follow(&mut self, kind: Kind, open: &mut Open) -> Result<(), End> {
        let method = if kind == Kind::SlowBody {
            "POST"
        } else {
            "GET"
        };
        loop {
            if open.body.is_none() {
                match open.parser.parse(&open.inbuf, method) {
                    Ok(Some((head, used))) => {
                        open.inbuf.advance(used);
                        open.parser.reset();
                        *self.tally(kind).responses.entry(head.status).or_default() += 1;
                        if head.is_informational() {
                            continue;
                        }
                        let decoder = BodyDecoder::new(head.body, BodyLimits::default());
                        open.body = Some((head.keep_alive, decoder));
                    }
                    Ok(None) => return Ok(()),
                    Err(e) => return Err(End::Error(bad_response(e.reason()))),
                }
            }
            let Some((keep_alive, decoder)) = &mut open.body else {
                return Ok(());
            };
            match decoder.decode(&mut open.inbuf) {
                Ok(Some(BodyEvent::Data(_))) => {}
                Ok(Some(BodyEvent::End)) => {
                    let again = *keep_alive && kind == Kind::SlowRead;
                    open.body = None;
                    if again {
                        let request = self.cfg.opening(kind);
                        self.send(kind, open, &request)?;
                    }
                }
                Ok(None) => return Ok(()),
                Err(e) => return Err(End::Error(bad_response(e.reason()))),
            }
        }
    }

    /// The connection is over: count it, leave the epoll set, reconnect at once.
    fn ended(&mut self, slot: &mut Slot, end: End) {
        let Some(open) = slot.open.take() else {
            return;
        };
        let _ = epoll::delete(&self.epoll, &open.tcp);
        self.live.attackers_alive.fetch_sub(1, Ordering::Relaxed);
        let lived = open.opened_at.elapsed();
        let tally = self.tally(slot.kind);
        match end {
            End::ByServer => {
                tally.closed_by_server += 1;
                let ms = u64::try_from(lived.as_millis()).unwrap_or(u64::MAX).max(1);
                record(&mut tally.lifetime_ms, ms);
            }
            End::Error(failure) => tally.error(failure),
        }
        slot.retry_at = Instant::now();
    }
}

/// Writes what rustls holds, as far as the socket takes it now (the rest goes next time).
fn flush(open: &mut Open) -> Result<(), End> {
    while open.tls.wants_write() {
        match open.tls.write_tls(&mut open.tcp) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ended_by(e)),
        }
    }
    Ok(())
}

fn ended_by(e: io::Error) -> End {
    match e.kind() {
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => End::ByServer,
        _ => End::Error(io_failure(e)),
    }
}

fn bad_response(reason: &'static str) -> Failure {
    Failure {
        kind: "bad_response",
        detail: format!("malformed response: {reason}"),
    }
}

/// A TCP connect whose receive buffer is set before the SYN, so the window the server sees is
/// small from the start (set afterwards, the window scale is already negotiated).
pub(crate) fn connect_small_window(
    addr: SocketAddr,
    rcvbuf: usize,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let family = if addr.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let fd = rustix::net::socket_with(
        family,
        SocketType::STREAM,
        SocketFlags::CLOEXEC | SocketFlags::NONBLOCK,
        None,
    )?;
    rustix::net::sockopt::set_socket_recv_buffer_size(&fd, rcvbuf)?;
    match rustix::net::connect(&fd, &addr) {
        Ok(()) => {}
        Err(rustix::io::Errno::INPROGRESS) => {
            let deadline = Instant::now() + timeout;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "connection timed out",
                    ));
                }
                let ts = rustix::time::Timespec {
                    tv_sec: i64::try_from(left.as_secs()).unwrap_or(i64::MAX),
                    tv_nsec: i64::from(left.subsec_nanos()),
                };
                let mut fds = [rustix::event::PollFd::new(
                    &fd,
                    rustix::event::PollFlags::OUT,
                )];
                match rustix::event::poll(&mut fds, Some(&ts)) {
                    Ok(0) | Err(rustix::io::Errno::INTR) => continue,
                    Ok(_) => break,
                    Err(e) => return Err(e.into()),
                }
            }
            rustix::net::sockopt::socket_error(&fd)?.map_err(io::Error::from)?;
        }
        Err(e) => return Err(e.into()),
    }
    let tcp = TcpStream::from(fd);
    tcp.set_nonblocking(false)?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;

    #[test]
    fn small_window_connect() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let tcp = connect_small_window(addr, SLOW_READ_RCVBUF, Duration::from_secs(5)).unwrap();
        let (_server, _) = listener.accept().unwrap();
        let rcvbuf = rustix::net::sockopt::socket_recv_buffer_size(&tcp).unwrap();
        // Linux doubles the request; far below the default (128 KiB and more).
        assert!(rcvbuf <= 2 * SLOW_READ_RCVBUF, "{rcvbuf}");
        drop(listener);
        // Nobody listening: refused, as an io::Error the failure kinds understand.
        let err = connect_small_window(addr, SLOW_READ_RCVBUF, Duration::from_secs(5)).unwrap_err();
        assert_eq!(connect_failure(err).kind, "connect_refused");
    }

    #[test]
    fn openings() {
        let ep = Endpoint {
            addr: "127.0.0.1:1".parse().unwrap(),
            config: unreachable_config(),
            name: rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            connect_timeout: Duration::from_secs(1),
        };
        let cfg = Config {
            endpoint: ep,
            host: "localhost:8443".into(),
            interval: Duration::from_secs(10),
            slowloris_path: "/a".into(),
            slow_body_path: "/api/v1/auth/login".into(),
            slow_body_length: 65_536,
            slow_read_path: "/big.bin".into(),
            slow_read_chunk: 32,
        };
        let head = String::from_utf8(cfg.opening(Kind::Slowloris)).unwrap();
        assert!(head.starts_with("GET /a HTTP/1.1\r\nHost: localhost:8443\r\n"));
        // Never the empty line that would end the head.
        assert!(!head.contains("\r\n\r\n"));
        let post = String::from_utf8(cfg.opening(Kind::SlowBody)).unwrap();
        assert!(post.starts_with("POST /api/v1/auth/login HTTP/1.1\r\n"));
        assert!(post.ends_with("Content-Length: 65536\r\n\r\n"));
        let get = String::from_utf8(cfg.opening(Kind::SlowRead)).unwrap();
        assert!(get.starts_with("GET /big.bin HTTP/1.1\r\n") && get.ends_with("\r\n\r\n"));
    }

    /// A client config trusting nothing (the tests never connect with it).
    fn unreachable_config() -> std::sync::Arc<rustls::ClientConfig> {
        std::sync::Arc::new(
            rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
        )
    }

    #[test]
    fn tallies_merge() {
        let mut a = KindTally::new();
        a.opened = 20;
        a.closed_by_server = 20;
        a.responses.insert(408, 20);
        for _ in 0..20 {
            record(&mut a.lifetime_ms, 2_000);
        }
        let mut b = KindTally::new();
        b.opened = 5;
        b.connect_failed = 1;
        b.error(Failure {
            kind: "connect_refused",
            detail: "refused".into(),
        });
        b.responses.insert(408, 1);
        b.responses.insert(431, 2);
        record(&mut b.lifetime_ms, 4_000);
        b.alive_at_end = 4;
        a.merge(b).unwrap();
        assert_eq!(
            (a.opened, a.closed_by_server, a.connect_failed),
            (25, 20, 1)
        );
        assert_eq!(a.responses[&408], 21);
        assert_eq!(a.responses[&431], 2);
        assert_eq!(a.errors["connect_refused"].count, 1);
        assert_eq!(a.alive_at_end, 4);
        assert_eq!(a.lifetime_ms.len(), 21);
        assert!((1_999..=2_001).contains(&a.lifetime_ms.value_at_quantile(0.5)));
        assert!((3_999..=4_003).contains(&a.lifetime_ms.max()));
    }
}
