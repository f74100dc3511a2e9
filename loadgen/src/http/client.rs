//! The legitimate client: one keep-alive HTTPS connection on a blocking socket, one request at
//! a time. Requests are written by hand; responses are read with `rampart-http-proto`'s
//! [`ResponseParser`] and [`BodyDecoder`], strictly: a malformed head or body is a failure, not
//! something to guess around.

use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf as _, BytesMut};
use rampart_http_proto::{BodyDecoder, BodyEvent, BodyLimits, Limits, ResponseParser};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use crate::handshake::{connect_failure, io_failure};
use crate::runner::Failure;

/// Largest read from the socket at once.
const READ_CHUNK: usize = 16 * 1024;

/// Where and how to connect.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub(crate) addr: SocketAddr,
    pub(crate) config: Arc<ClientConfig>,
    pub(crate) name: ServerName<'static>,
    pub(crate) connect_timeout: Duration,
}

/// A complete response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    /// Whether the connection may carry the next request.
    pub(crate) keep_alive: bool,
    pub(crate) body_bytes: u64,
}

/// A failed exchange.
#[derive(Debug)]
pub(crate) struct ExchangeFailure {
    pub(crate) failure: Failure,
    /// Not one byte of the response arrived (so a kept-alive connection the server had
    /// already closed may be retried once).
    pub(crate) nothing_received: bool,
}

/// An open TLS connection (handshake complete).
#[derive(Debug)]
pub(crate) struct Conn {
    tls: StreamOwned<ClientConnection, TcpStream>,
    /// Requests sent on it.
    pub(crate) requests: u64,
}

impl Conn {
    /// TCP connect and TLS handshake, before `deadline`.
    pub(crate) fn open(ep: &Endpoint, deadline: Instant) -> Result<Self, Failure> {
        let tcp = connect(ep.addr, ep.connect_timeout, deadline)?;
        let tls = handshake(tcp, ep, deadline)?;
        Ok(Self { tls, requests: 0 })
    }

    /// The negotiated TLS version and cipher suite.
    pub(crate) fn tls_params(&self) -> (String, String) {
        let conn = &self.tls.conn;
        (
            conn.protocol_version()
                .map_or_else(|| "?".to_owned(), |v| format!("{v:?}")),
            conn.negotiated_cipher_suite()
                .map_or_else(|| "?".to_owned(), |s| format!("{:?}", s.suite())),
        )
    }

    /// Sends `request` and reads its whole response before `deadline`. `method` decides the
    /// response's framing (no body after HEAD). `buf` is scratch space.
    pub(crate) fn exchange(
        &mut self,
        request: &[u8],
        method: &str,
        deadline: Instant,
        buf: &mut BytesMut,
    ) -> Result<Answer, ExchangeFailure> {
        let fail = |failure: Failure, nothing_received: bool| ExchangeFailure {
            failure,
            nothing_received,
        };
        self.requests += 1;
        let left = left_until(deadline).map_err(|f| fail(f, true))?;
        let sock = &self.tls.sock;
        sock.set_write_timeout(Some(left))
            .and_then(|()| sock.set_read_timeout(Some(left)))
            .map_err(|e| fail(io_failure(e), true))?;
        self.tls
            .write_all(request)
            .and_then(|()| self.tls.flush())
            .map_err(|e| fail(read_failure(e, "request"), true))?;

        buf.clear();
        let mut parser = ResponseParser::new(Limits::default());
        let mut body: Option<(u16, bool, BodyDecoder)> = None;
        let mut body_bytes = 0u64;
        let mut received = false;
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            if body.is_none() {
                match parser.parse(buf, method) {
                    Ok(Some((head, used))) => {
                        buf.advance(used);
                        if head.is_informational() {
                            parser.reset();
                            continue;
                        }
                        let decoder = BodyDecoder::new(head.body, BodyLimits::default());
                        body = Some((head.status, head.keep_alive, decoder));
                    }
                    Ok(None) => {}
                    Err(e) => return Err(fail(bad_response(e.reason()), false)),
                }
            }
            if let Some((status, keep_alive, decoder)) = &mut body {
                loop {
                    match decoder.decode(buf) {
                        Ok(Some(BodyEvent::Data(d))) => body_bytes += d.len() as u64,
                        Ok(Some(BodyEvent::End)) => {
                            return Ok(Answer {
                                status: *status,
                                // Bytes after the response were never asked for: don't reuse.
                                keep_alive: *keep_alive && buf.is_empty(),
                                body_bytes,
                            });
                        }
                        Ok(None) => break,
                        Err(e) => return Err(fail(bad_response(e.reason()), false)),
                    }
                }
            }
            let left = left_until(deadline).map_err(|f| fail(f, !received))?;
            self.tls
                .sock
                .set_read_timeout(Some(left))
                .map_err(|e| fail(io_failure(e), !received))?;
            match self.tls.read(&mut chunk) {
                // close_notify: the end of a body that runs until close, else a truncation.
                Ok(0) => {
                    if let Some((status, _, decoder)) = &mut body
                        && decoder.eof().is_ok()
                    {
                        while let Ok(Some(BodyEvent::Data(d))) = decoder.decode(buf) {
                            body_bytes += d.len() as u64;
                        }
                        return Ok(Answer {
                            status: *status,
                            keep_alive: false,
                            body_bytes,
                        });
                    }
                    return Err(fail(
                        Failure {
                            kind: "closed_by_server",
                            detail: "the server closed the connection before the response was \
                                     complete"
                                .to_owned(),
                        },
                        !received,
                    ));
                }
                Ok(n) => {
                    received = true;
                    buf.extend_from_slice(&chunk[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(fail(read_failure(e, "response"), !received)),
            }
        }
    }
}

/// The time left before `deadline`, or a timeout failure.
fn left_until(deadline: Instant) -> Result<Duration, Failure> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(Failure {
            kind: "timeout",
            detail: "no complete response within --timeout".to_owned(),
        });
    }
    Ok(left)
}

/// TCP connect within `timeout` and before `deadline`.
pub(crate) fn connect(
    addr: SocketAddr,
    timeout: Duration,
    deadline: Instant,
) -> Result<TcpStream, Failure> {
    let left = left_until(deadline)?;
    let tcp = TcpStream::connect_timeout(&addr, timeout.min(left)).map_err(connect_failure)?;
    tcp.set_nodelay(true).map_err(io_failure)?;
    Ok(tcp)
}

/// A complete TLS handshake on `tcp` before `deadline` (blocking).
pub(crate) fn handshake(
    mut tcp: TcpStream,
    ep: &Endpoint,
    deadline: Instant,
) -> Result<StreamOwned<ClientConnection, TcpStream>, Failure> {
    let mut conn =
        ClientConnection::new(ep.config.clone(), ep.name.clone()).map_err(|e| Failure {
            kind: "tls_client",
            detail: e.to_string(),
        })?;
    while conn.is_handshaking() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(handshake_timeout());
        }
        tcp.set_read_timeout(Some(left)).map_err(io_failure)?;
        tcp.set_write_timeout(Some(left)).map_err(io_failure)?;
        conn.complete_io(&mut tcp).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => handshake_timeout(),
            _ => io_failure(e),
        })?;
    }
    Ok(StreamOwned::new(conn, tcp))
}

fn handshake_timeout() -> Failure {
    Failure {
        kind: "tls_handshake_timeout",
        detail: "TLS handshake not complete in time".to_owned(),
    }
}

fn read_failure(e: io::Error, what: &str) -> Failure {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Failure {
            kind: "timeout",
            detail: format!("{what} not done within --timeout"),
        },
        _ => io_failure(e),
    }
}

fn bad_response(reason: &'static str) -> Failure {
    Failure {
        kind: "bad_response",
        detail: format!("malformed response: {reason}"),
    }
}

/// The `Host` header value for `name` (an IPv6 literal gets brackets) and `port`.
pub(crate) fn host_header(name: &str, port: u16) -> String {
    if name.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{name}]:{port}")
    } else {
        format!("{name}:{port}")
    }
}

/// One legitimate request, written by hand: HTTP/1.1, keep-alive, and for POST a body of
/// `body_bytes` bytes.
pub(crate) fn request(method: &str, path: &str, host: &str, body_bytes: Option<usize>) -> Vec<u8> {
    let mut out = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: rampart-loadgen\r\nAccept: */*\r\n"
    );
    if let Some(n) = body_bytes {
        out.push_str(&format!(
            "Content-Type: application/octet-stream\r\nContent-Length: {n}\r\n"
        ));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if let Some(n) = body_bytes {
        bytes.resize(bytes.len() + n, b'x');
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_by_hand() {
        let host = host_header("localhost", 8443);
        assert_eq!(host, "localhost:8443");
        assert_eq!(host_header("::1", 1), "[::1]:1");
        let get = request("GET", "/healthz", &host, None);
        assert_eq!(
            get,
            b"GET /healthz HTTP/1.1\r\nHost: localhost:8443\r\nUser-Agent: rampart-loadgen\r\n\
              Accept: */*\r\n\r\n"
        );
        let post = String::from_utf8(request("POST", "/api/x?a=1", &host, Some(3))).unwrap();
        assert!(post.starts_with("POST /api/x?a=1 HTTP/1.1\r\n"), "{post}");
        assert!(post.ends_with("Content-Length: 3\r\n\r\nxxx"), "{post}");
        // Every request parses as one complete request under the server's own parser.
        for raw in [get, post.into_bytes()] {
            let mut p = rampart_http_proto::RequestParser::new(Limits::default());
            let (head, used) = p.parse(&raw).unwrap().unwrap();
            assert!(head.keep_alive, "{head:?}");
            let rest = raw.len() - used;
            assert_eq!(
                head.body,
                if rest == 0 {
                    rampart_http_proto::BodyKind::None
                } else {
                    rampart_http_proto::BodyKind::Length(rest as u64)
                }
            );
        }
    }
}
