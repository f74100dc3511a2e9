//! One MQTT client connection over plain TCP or TLS, on a blocking socket: connect, the
//! CONNECT/CONNACK and SUBSCRIBE/SUBACK exchanges, big reads and batched writes.
//!
//! Reads are large (the caller's scratch buffer, 256 KiB) and every packet in them is decoded
//! before the next read, so the client spends few syscalls per message. With TLS, the bytes of
//! one socket read are fed to rustls from that buffer (rustls itself would read 4 KiB at a time).

use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rampart_mqtt_proto::{
    Connack, Connect, DecodeCtx, Packet, Properties, QoS, Suback, Subscribe, SubscriptionOptions,
    TopicFilter, Version, decode,
};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

use crate::handshake::{connect_failure, io_failure};
use crate::runner::Failure;

/// Keep alive announced in CONNECT; subscribers send PINGREQ well within it.
pub(crate) const KEEP_ALIVE_SECS: u16 = 60;

/// Largest packet accepted from the broker.
const MAX_PACKET: u32 = 64 * 1024 * 1024;

/// What every connection of a run shares.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) target: SocketAddr,
    pub(crate) connect_timeout: Duration,
    /// TLS client config and server name; plain TCP when `None`.
    pub(crate) tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    pub(crate) version: Version,
    pub(crate) username: Option<String>,
    pub(crate) password: Option<Bytes>,
}

/// An open MQTT connection (CONNACK received).
#[derive(Debug)]
pub(crate) struct Conn {
    tcp: TcpStream,
    tls: Option<Box<ClientConnection>>,
    /// Plaintext received and not decoded yet.
    inbuf: BytesMut,
    ctx: DecodeCtx,
}

impl Conn {
    /// Connects, completes TLS if configured, sends CONNECT and waits for a successful CONNACK,
    /// all before `deadline`.
    pub(crate) fn open(
        s: &Settings,
        client_id: &str,
        deadline: Instant,
        scratch: &mut [u8],
    ) -> Result<(Self, Connack), Failure> {
        let tcp =
            TcpStream::connect_timeout(&s.target, s.connect_timeout).map_err(connect_failure)?;
        tcp.set_nodelay(true).map_err(io_failure)?;
        let mut conn = Self {
            tcp,
            tls: None,
            inbuf: BytesMut::with_capacity(64 * 1024),
            ctx: DecodeCtx {
                version: Some(s.version),
                max_packet_size: MAX_PACKET,
            },
        };
        if let Some((config, name)) = &s.tls {
            let mut tls =
                ClientConnection::new(config.clone(), name.clone()).map_err(|e| Failure {
                    kind: "tls_client",
                    detail: e.to_string(),
                })?;
            while tls.is_handshaking() {
                conn.set_timeouts(deadline)?;
                tls.complete_io(&mut conn.tcp).map_err(|e| match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Failure {
                        kind: "handshake_timeout",
                        detail: "TLS handshake not complete in time".to_owned(),
                    },
                    _ => io_failure(e),
                })?;
            }
            conn.tls = Some(Box::new(tls));
        }
        let connect = Packet::Connect(Box::new(Connect {
            version: s.version,
            clean_start: true,
            keep_alive: KEEP_ALIVE_SECS,
            client_id: client_id.to_owned(),
            will: None,
            username: s.username.clone(),
            password: s.password.clone(),
            properties: Properties::default(),
        }));
        conn.send_packet(&connect)?;
        match conn.read_packet(deadline, scratch)? {
            Packet::Connack(ack) if ack.reason_code == 0 => Ok((conn, ack)),
            Packet::Connack(ack) => Err(Failure {
                kind: "connack_refused",
                detail: format!(
                    "the broker refused CONNECT: reason 0x{:02x} ({})",
                    ack.reason_code,
                    reason_name(ack.reason_code)
                ),
            }),
            other => Err(unexpected(&other, "CONNACK")),
        }
    }

    /// Subscribes to `filters` at `qos` and waits for the SUBACK; returns the granted QoS (the
    /// lowest of all filters).
    pub(crate) fn subscribe(
        &mut self,
        filters: &[TopicFilter],
        qos: QoS,
        deadline: Instant,
        scratch: &mut [u8],
    ) -> Result<u8, Failure> {
        let subscribe = Packet::Subscribe(Subscribe {
            packet_id: 1,
            filters: filters
                .iter()
                .map(|f| (f.clone(), SubscriptionOptions::qos(qos)))
                .collect(),
            properties: Properties::default(),
        });
        self.send_packet(&subscribe)?;
        match self.read_packet(deadline, scratch)? {
            Packet::Suback(Suback {
                packet_id: 1,
                reason_codes,
                ..
            }) => {
                if let Some(bad) = reason_codes.iter().find(|c| **c >= 0x80) {
                    return Err(Failure {
                        kind: "suback_refused",
                        detail: format!(
                            "the broker refused the subscription to {}: reason 0x{bad:02x} ({})",
                            filters.first().map_or("", TopicFilter::as_str),
                            reason_name(*bad)
                        ),
                    });
                }
                Ok(reason_codes.iter().copied().min().unwrap_or(0))
            }
            other => Err(unexpected(&other, "SUBACK")),
        }
    }

    /// Encodes and sends one packet.
    pub(crate) fn send_packet(&mut self, packet: &Packet) -> Result<(), Failure> {
        let mut out = BytesMut::new();
        packet
            .encode(self.ctx_version(), &mut out)
            .map_err(|e| Failure {
                kind: "encode_error",
                detail: e.to_string(),
            })?;
        self.send(&out).map_err(io_failure)
    }

    pub(crate) fn version(&self) -> Version {
        self.ctx_version()
    }

    fn ctx_version(&self) -> Version {
        self.ctx.version.unwrap_or(Version::V311)
    }

    /// Writes all of `data` (encrypting it first with TLS).
    pub(crate) fn send(&mut self, mut data: &[u8]) -> io::Result<()> {
        let Some(tls) = &mut self.tls else {
            return self.tcp.write_all(data);
        };
        while !data.is_empty() {
            let n = tls.writer().write(data)?;
            data = data.get(n..).unwrap_or_default();
            if n == 0 && !tls.wants_write() {
                return Err(io::ErrorKind::WriteZero.into());
            }
            while tls.wants_write() {
                tls.write_tls(&mut self.tcp)?;
            }
        }
        Ok(())
    }

    /// One socket read into `scratch`; the plaintext is appended to the decode buffer. Returns
    /// the plaintext bytes added (0 is possible with TLS); the end of the stream is an
    /// `UnexpectedEof` error.
    pub(crate) fn fill(&mut self, scratch: &mut [u8]) -> io::Result<usize> {
        let n = self.tcp.read(scratch)?;
        let got = scratch.get(..n).unwrap_or_default();
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the broker closed the connection",
            ));
        }
        let Some(tls) = &mut self.tls else {
            self.inbuf.extend_from_slice(got);
            return Ok(n);
        };
        let mut rd = got;
        let mut plain = 0;
        let mut closed = false;
        while !rd.is_empty() {
            tls.read_tls(&mut rd)?;
            let state = tls
                .process_new_packets()
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let k = state.plaintext_bytes_to_read();
            if k > 0 {
                let start = self.inbuf.len();
                self.inbuf.resize(start + k, 0);
                tls.reader().read_exact(&mut self.inbuf[start..])?;
                plain += k;
            }
            closed |= state.peer_has_closed();
        }
        while tls.wants_write() {
            tls.write_tls(&mut self.tcp)?;
        }
        if closed && plain == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the broker closed the TLS session",
            ));
        }
        Ok(plain)
    }

    /// The next complete packet in the decode buffer, if any.
    pub(crate) fn next_packet(&mut self) -> Result<Option<Packet>, Failure> {
        decode(&mut self.inbuf, self.ctx).map_err(|e| Failure {
            kind: "protocol_error",
            detail: format!("undecodable packet from the broker: {e}"),
        })
    }

    /// Reads until one packet is complete or `deadline` passes.
    pub(crate) fn read_packet(
        &mut self,
        deadline: Instant,
        scratch: &mut [u8],
    ) -> Result<Packet, Failure> {
        loop {
            if let Some(packet) = self.next_packet()? {
                return Ok(packet);
            }
            self.set_timeouts(deadline)?;
            match self.fill(scratch) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Err(Failure {
                        kind: "setup_timeout",
                        detail: "no answer from the broker in time".to_owned(),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_failure(e)),
            }
        }
    }

    /// Read and write timeouts until `deadline`; a passed deadline is a `setup_timeout`.
    fn set_timeouts(&self, deadline: Instant) -> Result<(), Failure> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Failure {
                kind: "setup_timeout",
                detail: "no answer from the broker in time".to_owned(),
            });
        }
        self.tcp.set_read_timeout(Some(left)).map_err(io_failure)?;
        self.tcp.set_write_timeout(Some(left)).map_err(io_failure)
    }

    /// Sets the read timeout (`None`: block).
    pub(crate) fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp.set_read_timeout(timeout)
    }

    /// Sets the write timeout (`None`: block).
    pub(crate) fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp.set_write_timeout(timeout)
    }

    /// The socket, for epoll.
    pub(crate) fn socket(&self) -> &TcpStream {
        &self.tcp
    }

    /// The negotiated TLS version and cipher suite, for the report.
    pub(crate) fn tls_params(&self) -> Option<(String, String)> {
        let tls = self.tls.as_ref()?;
        Some((
            tls.protocol_version()
                .map_or_else(|| "?".to_owned(), |v| format!("{v:?}")),
            tls.negotiated_cipher_suite()
                .map_or_else(|| "?".to_owned(), |s| format!("{:?}", s.suite())),
        ))
    }

    /// Sends DISCONNECT (best effort) and closes.
    pub(crate) fn close(mut self) {
        let disconnect = Packet::Disconnect(rampart_mqtt_proto::Disconnect {
            reason_code: 0,
            properties: Properties::default(),
        });
        let _ = self.tcp.set_write_timeout(Some(Duration::from_secs(1)));
        let _ = self.send_packet(&disconnect);
        if let Some(tls) = &mut self.tls {
            tls.send_close_notify();
            while tls.wants_write() {
                if tls.write_tls(&mut self.tcp).is_err() {
                    break;
                }
            }
        }
        let _ = self.tcp.shutdown(std::net::Shutdown::Write);
    }
}

fn unexpected(packet: &Packet, wanted: &str) -> Failure {
    Failure {
        kind: "unexpected_packet",
        detail: format!("expected {wanted}, the broker sent {}", packet.kind()),
    }
}

/// A name for the reason codes a load generator meets.
pub(crate) fn reason_name(code: u8) -> &'static str {
    use rampart_mqtt_proto::reason::*;
    match code {
        SUCCESS => "success",
        UNSPECIFIED => "unspecified error",
        MALFORMED => "malformed packet",
        PROTOCOL_ERROR => "protocol error",
        IMPLEMENTATION_SPECIFIC => "implementation specific error",
        UNSUPPORTED_PROTOCOL_VERSION => "unsupported protocol version",
        CLIENT_ID_NOT_VALID => "client identifier not valid",
        BAD_USERNAME_OR_PASSWORD => "bad user name or password",
        NOT_AUTHORIZED => "not authorized",
        SERVER_UNAVAILABLE => "server unavailable",
        SERVER_BUSY => "server busy",
        BANNED => "banned",
        QUOTA_EXCEEDED => "quota exceeded",
        PACKET_TOO_LARGE => "packet too large",
        TOPIC_FILTER_INVALID => "topic filter invalid",
        TOPIC_NAME_INVALID => "topic name invalid",
        RECEIVE_MAX_EXCEEDED => "receive maximum exceeded",
        QOS_NOT_SUPPORTED => "QoS not supported",
        CONNECTION_RATE_EXCEEDED => "connection rate exceeded",
        _ => "see the MQTT 5.0 reason codes, §2.4",
    }
}
