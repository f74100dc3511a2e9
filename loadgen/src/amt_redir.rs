//! The device's redirection service on port 16994 (SOL, IDER, KVM), as far as a test needs it.
//!
//! [`RedirResponder`] answers StartRedirectionSession for the three session types, an
//! AuthenticateSession query with the supported auth types (3 and 4, digest without and with
//! qop), an empty digest with a challenge (realm `Digest:<GUID>`, the convention of
//! [`crate::amt::WsmanResponder`]), and a full digest (RFC 2617, MD5, `qop=auth`, method
//! `POST`, URI `/RedirectionService`) with success or with a failure that carries a fresh
//! challenge, as AMT does. After success it echoes every byte it receives: a "redirection
//! echo" that stands in for the SOL, IDER or KVM session.
//!
//! Message layouts: [`rampart_redir_proto::wire`].

use anyhow::{Context as _, bail};
use bytes::BytesMut;
use rampart_apf_proto::Guid;
use rampart_redir_proto::wire::{self, Challenge, DigestAuth, SessionType};

/// The longest AuthenticateSession data the responder accepts.
const MAX_AUTH_DATA: usize = 4096;

/// AMT's redirection service for one connection.
#[derive(Debug)]
pub struct RedirResponder {
    realm: String,
    seed: u64,
    /// Challenges issued so far; each gets its own nonce.
    issued: u32,
    nonce: Option<String>,
    user: String,
    password: Vec<u8>,
    session: Option<SessionType>,
    ended: bool,
    /// Whether a digest was accepted; every byte after it is echoed.
    pub authenticated: bool,
    /// Bytes echoed after authentication.
    pub echoed: u64,
    /// Digests rejected.
    pub failures: u32,
}

impl RedirResponder {
    /// A responder for a device with AMT `user`/`password`; `seed` makes the nonces.
    pub fn new(guid: &Guid, user: &str, password: &str, seed: u64) -> Self {
        Self {
            realm: format!(
                "Digest:{}",
                guid.to_string().replace('-', "").to_uppercase()
            ),
            seed,
            issued: 0,
            nonce: None,
            user: user.to_string(),
            password: password.as_bytes().to_vec(),
            session: None,
            ended: false,
            authenticated: false,
            echoed: 0,
            failures: 0,
        }
    }

    /// The session type asked for, once StartRedirectionSession has arrived.
    pub fn session(&self) -> Option<SessionType> {
        self.session
    }

    /// The realm of the challenges.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// Consumes whole messages from `buf` (a partial one stays there) and returns the bytes to
    /// send back, possibly none. After authentication, all of `buf` is echoed. An error means
    /// the connection should close (AMT closes on what it does not understand).
    pub fn feed(&mut self, buf: &mut BytesMut) -> anyhow::Result<Vec<u8>> {
        let mut out = BytesMut::new();
        loop {
            if self.authenticated {
                self.echoed += buf.len() as u64;
                out.extend_from_slice(&buf.split());
                break;
            }
            let Some(&kind) = buf.first() else { break };
            if self.ended {
                bail!("data after EndRedirectionSession");
            }
            let need = match kind {
                wire::START_REDIRECTION_SESSION => wire::START_SESSION_LEN,
                wire::END_REDIRECTION_SESSION => wire::END_SESSION_LEN,
                wire::AUTHENTICATE_SESSION => match buf.get(5..wire::AUTH_HEADER_LEN) {
                    Some(b) => {
                        let n = u32::from_le_bytes(b.try_into().context("length field")?);
                        let n = usize::try_from(n).context("length field")?;
                        if n > MAX_AUTH_DATA {
                            bail!("AuthenticateSession of {n} bytes");
                        }
                        wire::AUTH_HEADER_LEN + n
                    }
                    None => break,
                },
                k => bail!("unexpected redirection message {k:#04x}"),
            };
            if buf.len() < need {
                break;
            }
            let msg = buf.split_to(need);
            self.message(&msg, &mut out)?;
        }
        Ok(out.to_vec())
    }

    /// `msg` is one whole message, as long as `feed` computed from its command byte and
    /// length field: the indexing below stays within it.
    fn message(&mut self, msg: &[u8], out: &mut BytesMut) -> anyhow::Result<()> {
        match msg[0] {
            wire::START_REDIRECTION_SESSION => {
                if self.session.is_some() {
                    bail!("second StartRedirectionSession");
                }
                let tag: [u8; 4] = msg[4..8].try_into().context("session type")?;
                match SessionType::from_tag(tag) {
                    Some(t) => {
                        self.session = Some(t);
                        wire::encode_start_reply(wire::STATUS_SUCCESS, (11, 8), out);
                    }
                    // Status 1: unknown session type.
                    None => wire::encode_start_reply(1, (11, 8), out),
                }
            }
            wire::END_REDIRECTION_SESSION => self.ended = true,
            _ => {
                if self.session.is_none() {
                    bail!("AuthenticateSession before StartRedirectionSession");
                }
                let auth_type = msg[4];
                let data = &msg[wire::AUTH_HEADER_LEN..];
                match auth_type {
                    wire::AUTH_QUERY => wire::encode_auth_raw(
                        wire::AUTHENTICATE_SESSION_REPLY,
                        wire::AUTH_SUCCESS,
                        wire::AUTH_QUERY,
                        &[wire::AUTH_BAD_DIGEST, wire::AUTH_DIGEST],
                        out,
                    ),
                    wire::AUTH_DIGEST => self.digest(data, out)?,
                    t => wire::encode_auth_raw(
                        wire::AUTHENTICATE_SESSION_REPLY,
                        wire::AUTH_NOT_SUPPORTED,
                        t,
                        &[],
                        out,
                    ),
                }
            }
        }
        Ok(())
    }

    fn digest(&mut self, data: &[u8], out: &mut BytesMut) -> anyhow::Result<()> {
        let d = DigestAuth::parse(data).context("digest AuthenticateSession")?;
        let current = self.nonce.clone();
        let Some(nonce) = current.filter(|n| !d.realm.is_empty() && d.nonce == n.as_str()) else {
            // No challenge yet (the empty digest), or an answer to another nonce: challenge.
            return self.challenge(out);
        };
        let expected = rampart_wsman::digest::response(
            d.user,
            &self.realm,
            &self.password,
            rampart_redir_proto::METHOD,
            rampart_redir_proto::URI,
            &nonce,
            Some((d.nc, d.cnonce)),
        );
        // A simulator: no need for a constant-time comparison.
        let ok = d.user == self.user
            && d.realm == self.realm
            && d.uri == rampart_redir_proto::URI
            && d.qop == rampart_redir_proto::QOP
            && d.response.eq_ignore_ascii_case(&expected);
        if ok {
            self.authenticated = true;
            wire::encode_auth_raw(
                wire::AUTHENTICATE_SESSION_REPLY,
                wire::AUTH_SUCCESS,
                wire::AUTH_DIGEST,
                &[],
                out,
            );
            Ok(())
        } else {
            self.failures += 1;
            self.challenge(out)
        }
    }

    /// A failure reply with a fresh challenge.
    fn challenge(&mut self, out: &mut BytesMut) -> anyhow::Result<()> {
        self.issued += 1;
        let n = self
            .seed
            .rotate_left(self.issued)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let nonce = format!("{:016x}{:08x}", n, self.issued);
        Challenge {
            realm: &self.realm,
            nonce: &nonce,
            qop: "auth",
        }
        .encode(wire::AUTH_FAILURE, out)
        .context("challenge")?;
        self.nonce = Some(nonce);
        Ok(())
    }
}

/// The user name the simulated browser authenticates with: never the AMT account.
pub const FAKE_USER: &str = "mallory";
/// Its password.
pub const FAKE_PW: &str = "guess";

/// A browser as the Open AMT UI toolkit behaves: start, query, empty digest, then a digest
/// from its own credentials ([`FAKE_USER`], which the relay must never let through); after
/// success what it receives is session data.
#[derive(Debug)]
pub struct RedirBrowser {
    rx: BytesMut,
    /// The device accepted the (relay's) digest.
    pub authenticated: bool,
    /// The device refused it.
    pub failed: bool,
    /// What the browser sent as its own credentials (its response and cnonce).
    pub sent_fake: Vec<String>,
    /// Session bytes received after authentication.
    pub received_after_auth: Vec<u8>,
}

impl RedirBrowser {
    /// A browser before its first byte: send [`SessionType::start_message`] first.
    pub fn new() -> Self {
        Self {
            rx: BytesMut::new(),
            authenticated: false,
            failed: false,
            sent_fake: Vec::new(),
            received_after_auth: Vec::new(),
        }
    }

    /// Takes bytes from the relay; returns what to send next.
    pub fn on_data(&mut self, data: &[u8]) -> anyhow::Result<Vec<u8>> {
        if self.authenticated {
            self.received_after_auth.extend_from_slice(data);
            return Ok(Vec::new());
        }
        self.rx.extend_from_slice(data);
        let mut out = BytesMut::new();
        while let Some(&kind) = self.rx.first() {
            match kind {
                wire::START_REDIRECTION_SESSION_REPLY => {
                    if self.rx.len() < 13 {
                        break;
                    }
                    if self.rx[1] != 0 {
                        bail!("session refused with status {}", self.rx[1]);
                    }
                    let n = 13 + usize::from(self.rx[12]);
                    let _ = self.rx.split_to(n);
                    out.extend_from_slice(&[0x13, 0, 0, 0, 0, 0, 0, 0, 0]);
                }
                wire::AUTHENTICATE_SESSION_REPLY => {
                    if self.rx.len() < 9 {
                        break;
                    }
                    let n = 9 + u32::from_le_bytes(self.rx[5..9].try_into().unwrap()) as usize;
                    if self.rx.len() < n {
                        break;
                    }
                    let m = self.rx.split_to(n);
                    let (status, auth_type) = (m[1], m[4]);
                    match (status, auth_type) {
                        (0, 0) => {
                            if !m[9..].contains(&4) {
                                bail!("the device offers no digest");
                            }
                            wire::encode_empty_digest(FAKE_USER, "", &mut out)
                                .context("empty digest")?;
                        }
                        (1, 4) => {
                            if !self.sent_fake.is_empty() {
                                // The second challenge: the first attempt failed.
                                self.failed = true;
                                break;
                            }
                            let c = Challenge::parse(&m[9..]).context("challenge")?;
                            let cnonce = "b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0";
                            let r = rampart_wsman::digest::response(
                                FAKE_USER,
                                c.realm,
                                FAKE_PW.as_bytes(),
                                "POST",
                                "",
                                c.nonce,
                                Some(("00000002", cnonce)),
                            );
                            DigestAuth {
                                user: FAKE_USER,
                                realm: c.realm,
                                nonce: c.nonce,
                                uri: "",
                                cnonce,
                                nc: "00000002",
                                response: &r,
                                qop: c.qop,
                            }
                            .encode(&mut out)
                            .context("digest")?;
                            self.sent_fake.push(r);
                            self.sent_fake.push(cnonce.into());
                        }
                        (0, 4) => {
                            self.authenticated = true;
                            let rest = self.rx.split();
                            self.received_after_auth.extend_from_slice(&rest);
                            break;
                        }
                        other => bail!("unexpected reply {other:?}"),
                    }
                }
                k => bail!("unexpected message {k:#x} to the browser"),
            }
        }
        Ok(out.to_vec())
    }
}

impl Default for RedirBrowser {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rampart_redir_proto::{Cnonce, Event, Interceptor, Limits};

    const PW: &str = "P@ssw0rd";

    fn guid() -> Guid {
        "12345678-9abc-def0-1122-334455667788".parse().unwrap()
    }

    /// Browser ⇄ interceptor ⇄ responder, in memory; the control plane computes the digest
    /// with `cp_password`. Returns everything the responder received.
    struct Relay {
        browser: RedirBrowser,
        interceptor: Interceptor,
        device: RedirResponder,
        cp_password: String,
        device_rx: BytesMut,
        device_saw: Vec<u8>,
        events: Vec<Event>,
    }

    impl Relay {
        fn new(cp_password: &str) -> Self {
            Self {
                browser: RedirBrowser::new(),
                interceptor: Interceptor::new(Limits::default(), Cnonce::from_random([9; 16])),
                device: RedirResponder::new(&guid(), "admin", PW, 42),
                cp_password: cp_password.to_string(),
                device_rx: BytesMut::new(),
                device_saw: Vec::new(),
                events: Vec::new(),
            }
        }

        /// Sends browser bytes through and runs the exchange until nothing moves.
        fn browser_sends(&mut self, bytes: &[u8]) {
            let mut from_browser = bytes.to_vec();
            loop {
                let mut to_device = BytesMut::new();
                self.interceptor
                    .from_browser(&from_browser, &mut to_device)
                    .unwrap();
                self.settle(&mut to_device);
                if to_device.is_empty() {
                    return;
                }
                let mut to_browser = BytesMut::new();
                let mut pending = to_device;
                while !pending.is_empty() {
                    self.device_saw.extend_from_slice(&pending);
                    self.device_rx.extend_from_slice(&pending);
                    let reply = self.device.feed(&mut self.device_rx).unwrap();
                    pending = BytesMut::new();
                    // Byte by byte, to exercise split input on the device side.
                    for b in reply.chunks(1) {
                        self.interceptor.from_device(b, &mut to_browser).unwrap();
                        self.settle(&mut pending);
                    }
                }
                from_browser = self.browser.on_data(&to_browser).unwrap();
                if from_browser.is_empty() {
                    return;
                }
            }
        }

        /// Acts on the interceptor's events as the gateway does: asks the "control plane" for
        /// the digest, flushes held bytes.
        fn settle(&mut self, to_device: &mut BytesMut) {
            while let Some(ev) = self.interceptor.poll_event() {
                if let Event::NeedDigest(req) = &ev {
                    let r = rampart_wsman::digest::response(
                        req.user,
                        &req.realm,
                        self.cp_password.as_bytes(),
                        req.method,
                        req.uri,
                        &req.nonce,
                        Some((&req.nc, &req.cnonce)),
                    );
                    self.interceptor.digest_response(&r, to_device).unwrap();
                }
                self.events.push(ev);
            }
            self.interceptor.flush_to_device(to_device).unwrap();
        }
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn relayed_session_authenticates_and_echoes() {
        for t in [SessionType::Sol, SessionType::Ider, SessionType::Kvm] {
            let mut relay = Relay::new(PW);
            relay.browser_sends(&t.start_message());
            assert!(relay.browser.authenticated, "{t:?}: {:?}", relay.events);
            assert!(relay.device.authenticated);
            assert_eq!(relay.device.session(), Some(t));
            assert_eq!(relay.device.failures, 0);
            assert!(relay.interceptor.is_passthrough());
            assert!(
                relay.events.contains(&Event::Authenticated),
                "{:?}",
                relay.events
            );

            // The browser's credentials never reached the device.
            assert!(!relay.browser.sent_fake.is_empty());
            for secret in relay.browser.sent_fake.iter().map(String::as_bytes) {
                assert!(!contains(&relay.device_saw, secret));
            }
            assert!(!contains(&relay.device_saw, FAKE_USER.as_bytes()));
            assert!(contains(&relay.device_saw, b"/RedirectionService"));

            // Pass-through echo.
            let probe = b"\x28\x00\x00\x00\x01\x00\x00\x00\x05\x00hello";
            let mut to_device = BytesMut::new();
            relay
                .interceptor
                .from_browser(probe, &mut to_device)
                .unwrap();
            assert_eq!(&to_device[..], probe);
            let mut rx = to_device;
            let echo = relay.device.feed(&mut rx).unwrap();
            let mut to_browser = BytesMut::new();
            relay
                .interceptor
                .from_device(&echo, &mut to_browser)
                .unwrap();
            relay.browser.on_data(&to_browser).unwrap();
            assert_eq!(relay.browser.received_after_auth, probe);
            assert_eq!(relay.device.echoed, probe.len() as u64);
        }
    }

    #[test]
    fn wrong_password_fails_cleanly() {
        let mut relay = Relay::new("not-the-password");
        relay.browser_sends(&SessionType::Sol.start_message());
        assert!(!relay.browser.authenticated);
        assert!(relay.browser.failed);
        assert!(!relay.device.authenticated);
        assert_eq!(relay.device.failures, 1);
        assert!(!relay.interceptor.is_passthrough());
        assert!(
            relay.events.contains(&Event::AuthFailed {
                status: wire::AUTH_FAILURE
            }),
            "{:?}",
            relay.events
        );
        assert_eq!(relay.device.echoed, 0);
    }

    #[test]
    fn responder_answers_split_input_and_unknown_types() {
        let mut dev = RedirResponder::new(&guid(), "admin", PW, 1);
        assert!(dev.realm().starts_with("Digest:123456789ABCDEF0"));
        let mut buf = BytesMut::new();
        let start = SessionType::Kvm.start_message();
        buf.extend_from_slice(&start[..3]);
        assert!(dev.feed(&mut buf).unwrap().is_empty());
        buf.extend_from_slice(&start[3..]);
        let reply = dev.feed(&mut buf).unwrap();
        assert_eq!((reply.len(), reply[0], reply[1]), (13, 0x11, 0));
        buf.extend_from_slice(&[0x13, 0, 0, 0, 1, 0, 0, 0, 0]);
        let reply = dev.feed(&mut buf).unwrap();
        assert_eq!(reply, [0x14, 2, 0, 0, 1, 0, 0, 0, 0]);
        buf.extend_from_slice(&[0x99]);
        assert!(dev.feed(&mut buf).is_err());

        let mut dev = RedirResponder::new(&guid(), "admin", PW, 1);
        buf.clear();
        buf.extend_from_slice(b"\x10\x00\x00\x00NOPE");
        assert_eq!(dev.feed(&mut buf).unwrap()[1], 1);
    }
}
