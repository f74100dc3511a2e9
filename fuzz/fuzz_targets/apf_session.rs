//! The APF server session driven by a hostile device and a random caller: never panics, every
//! byte it transmits decodes with the client-side decoder, `Closed` is the last event and comes
//! exactly once, and per-channel send buffers stay within their limit.
//!
//! Input: one configuration byte, then operations. Configuration bit 0: accept the device on
//! `Version` (else reject it); bit 1: accept the password on `Auth`; bit 2: small limits and
//! windows (32-byte strings, 16-byte data, 32-byte window, 3 channels and forwards, 40 pending
//! bytes). Each operation is an opcode byte and an argument byte:
//! - 0-3: feed the next `arg` bytes of the input as received data;
//! - 4: advance the clock by `arg` seconds and call `handle_timeout`;
//! - 5: open a channel to forwarded port number `arg` (modulo the count);
//! - 6: send `arg` bytes on channel `4 + arg % 8`;
//! - 7: bit 0 of `arg` set: close channel `4 + (arg >> 1) % 8`; clear: report `arg` bytes of it
//!   consumed.
//!
//! To decode REQUEST_SUCCESS the client decoder must know which global requests the session
//! answers: a shadow server-side decoder over the same received bytes tells it, in order (the
//! session answers a prefix of those requests, in the same order).

#![no_main]

use std::time::{Duration, Instant};

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rampart_apf_proto::client::ClientDecoder;
use rampart_apf_proto::{
    ChannelId, Event, Limits, ServerSession, SessionConfig, State, decode, reason,
};

struct Harness {
    session: ServerSession,
    config: SessionConfig,
    client: ClientDecoder,
    /// Bytes received, decoded by a shadow decoder to tell the client what was asked.
    shadow: BytesMut,
    shadow_failed: bool,
    /// Server output not yet decoded by the client.
    out: BytesMut,
    now: Instant,
    accept: bool,
    auth_ok: bool,
    closed: bool,
}

impl Harness {
    fn feed(&mut self, data: &[u8]) {
        if !self.shadow_failed {
            self.shadow.extend_from_slice(data);
            loop {
                match decode(&mut self.shadow, &self.config.limits) {
                    Ok(Some(m)) => self.client.sent(&m),
                    Ok(None) => break,
                    Err(_) => {
                        self.shadow_failed = true;
                        break;
                    }
                }
            }
        }
        self.session.handle_input(data, self.now);
    }

    /// Reacts to events like a caller would, then checks the output.
    fn settle(&mut self) {
        while let Some(ev) = self.session.poll_event() {
            assert!(!self.closed, "event after Closed: {ev:?}");
            match ev {
                Event::Version { major, .. } => {
                    assert_eq!(major, 1);
                    assert!(self.session.guid().is_some());
                    if self.accept {
                        self.session.accept_device(self.now);
                    } else {
                        self.session.reject(reason::HOST_NOT_ALLOWED_TO_CONNECT);
                    }
                }
                Event::Auth { .. } => self.session.auth_result(self.auth_ok, self.now),
                Event::Established { ports } => assert!(!ports.is_empty()),
                Event::ChannelData { data, .. } => assert!(!data.is_empty()),
                Event::Closed { .. } => {
                    self.closed = true;
                    assert_eq!(self.session.state(), State::Closed);
                    assert_eq!(self.session.poll_timeout(), None);
                }
                _ => {}
            }
        }
        assert_eq!(self.closed, self.session.state() == State::Closed);
        let n = self.session.poll_transmit(&mut self.out);
        assert!(n <= self.out.len());
        loop {
            match self.client.decode(&mut self.out) {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => panic!("server output does not decode: {e}"),
            }
        }
        assert!(self.out.is_empty(), "server output ends inside a message");
        for id in 4..12 {
            if let Some(p) = self.session.pending(ChannelId(id)) {
                assert!(p <= self.config.max_pending_send);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [flags, input @ ..] = data else {
        return;
    };
    let mut rest: &[u8] = input;
    let config = if flags & 0b100 != 0 {
        SessionConfig {
            limits: Limits {
                max_string: 32,
                max_data: 16,
            },
            our_window: 32,
            max_channels: 3,
            max_forwards: 3,
            max_pending_send: 40,
            ..SessionConfig::default()
        }
    } else {
        SessionConfig::default()
    };
    let now = Instant::now();
    let mut h = Harness {
        session: ServerSession::new(config.clone(), now),
        client: ClientDecoder::new(config.limits),
        config,
        shadow: BytesMut::new(),
        shadow_failed: false,
        out: BytesMut::new(),
        now,
        accept: flags & 1 != 0,
        auth_ok: flags & 0b10 != 0,
        closed: false,
    };
    while let [op, arg, tail @ ..] = rest {
        rest = tail;
        match op % 8 {
            0..=3 => {
                let n = usize::from(*arg).min(rest.len());
                let (chunk, tail) = rest.split_at(n);
                rest = tail;
                h.feed(chunk);
            }
            4 => {
                h.now += Duration::from_secs(u64::from(*arg));
                h.session.handle_timeout(h.now);
            }
            5 => {
                let ports = h.session.forwarded_ports();
                if !ports.is_empty() {
                    let port = ports[usize::from(*arg) % ports.len()];
                    let _ = h.session.open_channel(port, h.now);
                }
            }
            6 => {
                let id = ChannelId(4 + u32::from(*arg % 8));
                let _ = h.session.send(id, &vec![0x5a; usize::from(*arg)]);
            }
            _ => {
                if arg & 1 != 0 {
                    h.session
                        .close_channel(ChannelId(4 + u32::from((arg >> 1) % 8)));
                } else {
                    h.session
                        .consumed(ChannelId(4 + u32::from((arg >> 1) % 8)), usize::from(*arg));
                }
            }
        }
        h.settle();
    }
    // Whatever is left goes in as one final read.
    h.feed(rest);
    h.settle();
    if let Some(deadline) = h.session.poll_timeout() {
        h.session.handle_timeout(deadline);
        h.settle();
        assert!(h.closed, "a passed deadline closes the session");
    }
});
