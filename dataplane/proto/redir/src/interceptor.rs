//! The relay's interceptor: two byte streams in, two byte streams and events out.

use std::collections::VecDeque;
use std::fmt;

use bytes::{BufMut, BytesMut};

use crate::wire::{self, Challenge, DigestAuth, SessionType};
use crate::{Limits, METHOD, QOP, RedirError, Side, URI, USER};

/// The client nonce the interceptor puts in its digest: 32 lowercase hex digits made from 16
/// bytes the caller draws from a CSPRNG (the interceptor itself does no I/O, randomness
/// included).
#[derive(Clone, PartialEq, Eq)]
pub struct Cnonce(String);

impl Cnonce {
    /// The cnonce for 16 random bytes.
    pub fn from_random(bytes: [u8; 16]) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(32);
        for b in bytes {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        Self(s)
    }

    /// The 32 hex digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Cnonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Cnonce").field(&self.0).finish()
    }
}

/// Everything the control plane needs to compute the digest response for the device's
/// challenge (RFC 2617 §3.2.2.1, MD5, `qop=auth`):
/// `MD5(MD5(user:realm:password):nonce:nc:cnonce:qop:MD5(method:uri))` in lowercase hex, e.g.
/// `rampart_wsman::digest::response(user, realm, password, method, uri, nonce,
/// Some((nc, cnonce)))`.
///
/// Pick the password by the device this relay session was opened to, never by `realm`: the
/// realm comes from the device, and a device that could name another's realm would otherwise
/// obtain responses computed with that device's password. Refusing a realm other than
/// `Digest:<GUID, uppercase hex without dashes>` of that device costs nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestRequest {
    /// The AMT user, [`crate::USER`].
    pub user: &'static str,
    /// The device's realm, `Digest:<GUID>` on AMT (printable ASCII, checked against
    /// [`Limits::max_field`]).
    pub realm: String,
    /// The device's nonce (printable ASCII, checked against [`Limits::max_field`]).
    pub nonce: String,
    /// [`crate::QOP`]: the challenge offered it.
    pub qop: &'static str,
    /// The interceptor's client nonce ([`Cnonce`]).
    pub cnonce: String,
    /// The nonce count, 8 lowercase hex digits: `00000001` for the first response to a nonce.
    pub nc: String,
    /// [`crate::URI`].
    pub uri: &'static str,
    /// [`crate::METHOD`].
    pub method: &'static str,
}

/// What happened, in order; see [`Interceptor::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The browser asked for a session of this type; the request went to the device. The
    /// caller may check it against the mode it authorised (and close if it differs).
    StartRequested(SessionType),
    /// The device accepted the session.
    Started,
    /// The device refused the session with this status (1 unknown type, 2 busy, 3
    /// unsupported, 0xFF error). The reply went to the browser; whatever else the device sends
    /// is relayed to the browser, and browser data is an error ([`RedirError::Closed`]).
    Refused {
        /// The StartRedirectionSessionReply status.
        status: u8,
    },
    /// The interceptor needs the digest response for this challenge: compute it where the
    /// password lives and call [`Interceptor::digest_response`]. Browser bytes are held (up to
    /// [`Limits::max_held`]) until the device has answered it.
    NeedDigest(DigestRequest),
    /// The device accepted the digest: both directions are now pass-through. Browser bytes held
    /// since the digest was requested are released: call [`Interceptor::flush_to_device`].
    Authenticated,
    /// The device rejected the digest (or the auth type) with this AuthenticateSessionReply
    /// status; the reply, with a fresh challenge if it carried one, went to the browser, which
    /// may retry up to [`Limits::max_auth_attempts`] in all. A wrong password stays wrong: the
    /// caller will usually close. Held browser bytes are parsed again as handshake messages:
    /// call [`Interceptor::flush_to_device`].
    AuthFailed {
        /// The AuthenticateSessionReply status (1 failure, 2 not supported).
        status: u8,
    },
    /// The browser sent EndRedirectionSession; it went to the device. Further browser data is
    /// an error ([`RedirError::Closed`]); device data is relayed.
    Ended,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing yet: the browser must send StartRedirectionSession.
    AwaitStart,
    /// Waiting for StartRedirectionSessionReply.
    AwaitStartReply,
    /// The session is open, not authenticated: the browser may query, authenticate or end.
    Started,
    /// Waiting for the reply to a query.
    AwaitQueryReply,
    /// Waiting for the challenge to our empty digest.
    AwaitChallenge,
    /// Waiting for [`Interceptor::digest_response`].
    DigestPending,
    /// Waiting for the device's verdict on our digest.
    AwaitResult,
    /// Authenticated: bytes pass through untouched.
    Passthrough,
    /// Refused or ended: device bytes pass to the browser, browser bytes are an error.
    Closing,
}

impl Phase {
    /// Whether browser bytes are held (not parsed) in this phase: while the interceptor waits
    /// for the device or the caller.
    fn holds_browser(self) -> bool {
        matches!(
            self,
            Self::AwaitStartReply
                | Self::AwaitQueryReply
                | Self::AwaitChallenge
                | Self::DigestPending
                | Self::AwaitResult
        )
    }
}

/// The device's current challenge.
#[derive(Debug, Clone)]
struct Nonce {
    realm: String,
    nonce: String,
}

/// The redirection relay's handshake interceptor for one browser ⇄ device session.
///
/// Feed browser bytes to [`Interceptor::from_browser`] and device bytes to
/// [`Interceptor::from_device`], in any split or coalescing; after each call, drain
/// [`Interceptor::poll_event`] and act on [`Event::NeedDigest`] (answer with
/// [`Interceptor::digest_response`]) and on [`Event::Authenticated`] / [`Event::AuthFailed`]
/// (call [`Interceptor::flush_to_device`]; it is cheap, and calling it after every
/// [`Interceptor::from_device`] is fine). An error means: close both sides.
pub struct Interceptor {
    limits: Limits,
    cnonce: Cnonce,
    phase: Phase,
    session: Option<SessionType>,
    /// A partial handshake message from each side.
    browser_acc: BytesMut,
    device_acc: BytesMut,
    /// Handshake bytes accepted from each side.
    browser_used: usize,
    device_used: usize,
    /// Browser bytes received while waiting for the device or the caller, unparsed.
    held: BytesMut,
    challenge: Option<Nonce>,
    /// Responses sent under the current nonce.
    nc: u32,
    /// Digest responses asked for in this session.
    attempts: u8,
    events: VecDeque<Event>,
    failed: Option<RedirError>,
}

impl fmt::Debug for Interceptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Interceptor")
            .field("phase", &self.phase)
            .field("session", &self.session)
            .field("held", &self.held.len())
            .field("attempts", &self.attempts)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// How much of a buffer the next message takes.
enum Frame {
    /// At least this many bytes in all before the message (or its length) is known.
    Need(usize),
    /// The message is this long and all there.
    Complete(usize),
    /// The device refused the session with this status: everything from here is relayed.
    Refused(u8),
}

/// The next message off the front of one side's input.
enum Next<'d> {
    Incomplete,
    Borrowed(&'d [u8]),
    Owned(BytesMut),
    Refused(u8),
}

fn sized(buf: &[u8], n: usize) -> Frame {
    if buf.len() >= n {
        Frame::Complete(n)
    } else {
        Frame::Need(n)
    }
}

/// AuthenticateSession(Reply): 9-byte header plus the announced data.
fn auth_frame(buf: &[u8]) -> Frame {
    match wire::auth_data_len(buf) {
        // A length that does not fit in usize can never fit under the limit either.
        Some(len) => sized(
            buf,
            usize::try_from(len)
                .unwrap_or(usize::MAX)
                .saturating_add(wire::AUTH_HEADER_LEN),
        ),
        None => Frame::Need(wire::AUTH_HEADER_LEN),
    }
}

fn browser_frame(buf: &[u8]) -> Result<Frame, RedirError> {
    Ok(match buf.first() {
        None => Frame::Need(1),
        Some(&wire::START_REDIRECTION_SESSION) => sized(buf, wire::START_SESSION_LEN),
        Some(&wire::END_REDIRECTION_SESSION) => sized(buf, wire::END_SESSION_LEN),
        Some(&wire::AUTHENTICATE_SESSION) => auth_frame(buf),
        Some(&kind) => {
            return Err(RedirError::UnexpectedMessage {
                side: Side::Browser,
                kind,
            });
        }
    })
}

fn device_frame(buf: &[u8]) -> Result<Frame, RedirError> {
    Ok(match buf.first() {
        None => Frame::Need(1),
        Some(&wire::START_REDIRECTION_SESSION_REPLY) => match (buf.get(1), buf.get(12)) {
            (None, _) => Frame::Need(2),
            (Some(&status), _) if status != wire::STATUS_SUCCESS => Frame::Refused(status),
            (Some(_), None) => Frame::Need(wire::START_REPLY_LEN),
            (Some(_), Some(&oem)) => sized(buf, wire::START_REPLY_LEN + usize::from(oem)),
        },
        Some(&wire::AUTHENTICATE_SESSION_REPLY) => auth_frame(buf),
        Some(&kind) => {
            return Err(RedirError::UnexpectedMessage {
                side: Side::Device,
                kind,
            });
        }
    })
}

/// Takes the next whole message from `acc` followed by `data`, buffering a partial one in
/// `acc` (only as many bytes as the message needs, so bytes after it stay in `data`).
fn next_message<'d>(
    acc: &mut BytesMut,
    used: &mut usize,
    max: usize,
    data: &mut &'d [u8],
    side: Side,
    frame: fn(&[u8]) -> Result<Frame, RedirError>,
) -> Result<Next<'d>, RedirError> {
    let budget = |used: usize, n: usize| {
        if used.saturating_add(n) > max {
            Err(RedirError::HandshakeTooLarge { side })
        } else {
            Ok(())
        }
    };
    if acc.is_empty() {
        if data.is_empty() {
            return Ok(Next::Incomplete);
        }
        return match frame(data)? {
            Frame::Complete(n) => {
                budget(*used, n)?;
                *used += n;
                let (msg, rest) = data.split_at(n);
                *data = rest;
                Ok(Next::Borrowed(msg))
            }
            Frame::Need(n) => {
                budget(*used, n)?;
                acc.extend_from_slice(data);
                *data = &[];
                Ok(Next::Incomplete)
            }
            Frame::Refused(status) => Ok(Next::Refused(status)),
        };
    }
    loop {
        match frame(acc)? {
            Frame::Complete(n) => {
                budget(*used, n)?;
                *used += n;
                return Ok(Next::Owned(acc.split()));
            }
            Frame::Need(n) => {
                budget(*used, n)?;
                let want = n.saturating_sub(acc.len());
                if want == 0 {
                    // The framing functions only ask for more than they have.
                    return Err(RedirError::Malformed {
                        side,
                        context: "framing made no progress",
                    });
                }
                let take = want.min(data.len());
                let (head, rest) = data.split_at(take);
                acc.extend_from_slice(head);
                *data = rest;
                if take < want {
                    return Ok(Next::Incomplete);
                }
            }
            Frame::Refused(status) => return Ok(Next::Refused(status)),
        }
    }
}

fn unexpected(side: Side, msg: &[u8]) -> RedirError {
    RedirError::UnexpectedMessage {
        side,
        kind: msg.first().copied().unwrap_or(0),
    }
}

// === impl Interceptor ===

impl Interceptor {
    /// An interceptor for one session, before the browser's first byte. `cnonce` is the
    /// client nonce its digest will use (draw 16 bytes from a CSPRNG per session).
    pub fn new(limits: Limits, cnonce: Cnonce) -> Self {
        Self {
            limits,
            cnonce,
            phase: Phase::AwaitStart,
            session: None,
            browser_acc: BytesMut::new(),
            device_acc: BytesMut::new(),
            browser_used: 0,
            device_used: 0,
            held: BytesMut::new(),
            challenge: None,
            nc: 0,
            attempts: 0,
            events: VecDeque::new(),
            failed: None,
        }
    }

    /// Bytes from the browser. What to send to the device is appended to `to_device`:
    /// nothing while the interceptor waits for the device or for
    /// [`Interceptor::digest_response`] (the bytes are held, then parsed or relayed in order).
    /// Once pass-through, `data` is appended as is.
    pub fn from_browser(
        &mut self,
        data: &[u8],
        to_device: &mut BytesMut,
    ) -> Result<(), RedirError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.phase == Phase::Passthrough && self.held.is_empty() {
            to_device.extend_from_slice(data);
            return Ok(());
        }
        let r = self
            .release_held(to_device)
            .and_then(|()| self.browser_bytes(data, to_device));
        self.record(r)
    }

    /// Bytes from the device. What to send to the browser is appended to `to_browser`
    /// (handshake replies unchanged, the challenge included). Once pass-through, `data` is
    /// appended as is.
    pub fn from_device(
        &mut self,
        data: &[u8],
        to_browser: &mut BytesMut,
    ) -> Result<(), RedirError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.phase == Phase::Passthrough {
            to_browser.extend_from_slice(data);
            return Ok(());
        }
        let r = self.device_bytes(data, to_browser);
        self.record(r)
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The control plane's answer to [`Event::NeedDigest`]: 32 hex digits. Appends the
    /// interceptor's AuthenticateSession (user, realm, nonce, URI, cnonce, nc, response, qop)
    /// to `to_device`.
    pub fn digest_response(
        &mut self,
        response_hex: &str,
        to_device: &mut BytesMut,
    ) -> Result<(), RedirError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let r = self.send_digest(response_hex, to_device);
        self.record(r)
    }

    /// Processes browser bytes held while the interceptor waited, if it no longer waits:
    /// relays them after [`Event::Authenticated`], parses them as handshake messages after
    /// [`Event::AuthFailed`]. A no-op otherwise; [`Interceptor::from_browser`] does it first
    /// too.
    pub fn flush_to_device(&mut self, to_device: &mut BytesMut) -> Result<(), RedirError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        let r = self.release_held(to_device);
        self.record(r)
    }

    /// Whether authentication succeeded and both directions pass through untouched.
    pub fn is_passthrough(&self) -> bool {
        self.phase == Phase::Passthrough
    }

    /// The session type the browser asked for, once it has.
    pub fn session_type(&self) -> Option<SessionType> {
        self.session
    }

    /// The error this interceptor failed with, if any.
    pub fn error(&self) -> Option<RedirError> {
        self.failed
    }

    fn record<T>(&mut self, r: Result<T, RedirError>) -> Result<T, RedirError> {
        if let Err(e) = &r {
            self.failed = Some(*e);
        }
        r
    }

    fn release_held(&mut self, to_device: &mut BytesMut) -> Result<(), RedirError> {
        if self.held.is_empty() || self.phase.holds_browser() {
            return Ok(());
        }
        // If the bytes make the interceptor wait again, the rest goes back into `held`
        // (empty now), so the order is kept.
        let held = std::mem::take(&mut self.held);
        self.browser_bytes(&held, to_device)
    }

    fn browser_bytes(
        &mut self,
        mut data: &[u8],
        to_device: &mut BytesMut,
    ) -> Result<(), RedirError> {
        loop {
            if data.is_empty() {
                return Ok(());
            }
            match self.phase {
                Phase::Passthrough => {
                    to_device.extend_from_slice(data);
                    return Ok(());
                }
                Phase::Closing => return Err(RedirError::Closed),
                p if p.holds_browser() => {
                    if self.held.len().saturating_add(data.len()) > self.limits.max_held {
                        return Err(RedirError::HeldTooLarge);
                    }
                    self.held.extend_from_slice(data);
                    return Ok(());
                }
                _ => {}
            }
            match next_message(
                &mut self.browser_acc,
                &mut self.browser_used,
                self.limits.max_handshake,
                &mut data,
                Side::Browser,
                browser_frame,
            )? {
                Next::Incomplete => return Ok(()),
                Next::Borrowed(m) => self.on_browser_message(m, to_device)?,
                Next::Owned(m) => self.on_browser_message(&m, to_device)?,
                Next::Refused(_) => {
                    return Err(RedirError::Malformed {
                        side: Side::Browser,
                        context: "framing",
                    });
                }
            }
        }
    }

    fn on_browser_message(&mut self, m: &[u8], to_device: &mut BytesMut) -> Result<(), RedirError> {
        let kind = m.first().copied().unwrap_or(0);
        match (kind, self.phase) {
            (wire::START_REDIRECTION_SESSION, Phase::AwaitStart) => {
                let tag = m
                    .get(4..wire::START_SESSION_LEN)
                    .and_then(|t| <[u8; 4]>::try_from(t).ok())
                    .ok_or(RedirError::UnknownSessionType)?;
                let t = SessionType::from_tag(tag).ok_or(RedirError::UnknownSessionType)?;
                to_device.extend_from_slice(m);
                self.session = Some(t);
                self.events.push_back(Event::StartRequested(t));
                self.phase = Phase::AwaitStartReply;
            }
            (wire::END_REDIRECTION_SESSION, Phase::Started) => {
                to_device.extend_from_slice(m);
                self.events.push_back(Event::Ended);
                self.phase = Phase::Closing;
            }
            (wire::AUTHENTICATE_SESSION, Phase::Started) => {
                let auth_type = m.get(4).copied().unwrap_or(u8::MAX);
                let data_len = m.len().saturating_sub(wire::AUTH_HEADER_LEN);
                match auth_type {
                    wire::AUTH_QUERY => {
                        if data_len != 0 {
                            return Err(RedirError::Malformed {
                                side: Side::Browser,
                                context: "query with data",
                            });
                        }
                        wire::encode_auth_raw(
                            wire::AUTHENTICATE_SESSION,
                            0,
                            wire::AUTH_QUERY,
                            &[],
                            to_device,
                        );
                        self.phase = Phase::AwaitQueryReply;
                    }
                    // The browser's digest data (its user, realm, response, cnonce...) is
                    // dropped here, unread: only the interceptor's own goes to the device.
                    wire::AUTH_DIGEST => match &self.challenge {
                        None => {
                            wire::encode_empty_digest(USER, URI, to_device)?;
                            self.phase = Phase::AwaitChallenge;
                        }
                        Some(c) => {
                            if self.attempts >= self.limits.max_auth_attempts {
                                return Err(RedirError::TooManyAuthAttempts);
                            }
                            self.attempts += 1;
                            self.nc = self.nc.wrapping_add(1);
                            let req = DigestRequest {
                                user: USER,
                                realm: c.realm.clone(),
                                nonce: c.nonce.clone(),
                                qop: QOP,
                                cnonce: self.cnonce.as_str().to_string(),
                                nc: format!("{:08x}", self.nc),
                                uri: URI,
                                method: METHOD,
                            };
                            self.events.push_back(Event::NeedDigest(req));
                            self.phase = Phase::DigestPending;
                        }
                    },
                    other => return Err(RedirError::UnsupportedAuthType(other)),
                }
            }
            _ => return Err(unexpected(Side::Browser, m)),
        }
        Ok(())
    }

    fn device_bytes(
        &mut self,
        mut data: &[u8],
        to_browser: &mut BytesMut,
    ) -> Result<(), RedirError> {
        loop {
            if data.is_empty() {
                return Ok(());
            }
            match self.phase {
                Phase::Passthrough | Phase::Closing => {
                    to_browser.extend_from_slice(data);
                    return Ok(());
                }
                Phase::AwaitStart | Phase::Started | Phase::DigestPending => {
                    return Err(unexpected(Side::Device, data));
                }
                Phase::AwaitStartReply
                | Phase::AwaitQueryReply
                | Phase::AwaitChallenge
                | Phase::AwaitResult => {}
            }
            match next_message(
                &mut self.device_acc,
                &mut self.device_used,
                self.limits.max_handshake,
                &mut data,
                Side::Device,
                device_frame,
            )? {
                Next::Incomplete => return Ok(()),
                Next::Borrowed(m) => self.on_device_message(m, to_browser)?,
                Next::Owned(m) => self.on_device_message(&m, to_browser)?,
                Next::Refused(status) => {
                    if self.phase != Phase::AwaitStartReply {
                        return Err(RedirError::UnexpectedMessage {
                            side: Side::Device,
                            kind: wire::START_REDIRECTION_SESSION_REPLY,
                        });
                    }
                    // However long the refusal is, it and everything after it is for the
                    // browser.
                    to_browser.extend_from_slice(&self.device_acc.split());
                    to_browser.extend_from_slice(data);
                    self.events.push_back(Event::Refused { status });
                    self.phase = Phase::Closing;
                    return Ok(());
                }
            }
        }
    }

    fn on_device_message(&mut self, m: &[u8], to_browser: &mut BytesMut) -> Result<(), RedirError> {
        let kind = m.first().copied().unwrap_or(0);
        let status = m.get(1).copied().unwrap_or(u8::MAX);
        let auth_type = m.get(4).copied().unwrap_or(u8::MAX);
        let data = m.get(wire::AUTH_HEADER_LEN..).unwrap_or_default();
        let bad = |context| RedirError::Malformed {
            side: Side::Device,
            context,
        };
        match (kind, self.phase) {
            (wire::START_REDIRECTION_SESSION_REPLY, Phase::AwaitStartReply) => {
                // A refusal never gets here (Frame::Refused).
                to_browser.extend_from_slice(m);
                self.events.push_back(Event::Started);
                self.phase = Phase::Started;
            }
            (wire::AUTHENTICATE_SESSION_REPLY, Phase::AwaitQueryReply) => {
                if auth_type != wire::AUTH_QUERY {
                    return Err(bad("query answered with another auth type"));
                }
                to_browser.extend_from_slice(m);
                self.phase = Phase::Started;
            }
            (wire::AUTHENTICATE_SESSION_REPLY, Phase::AwaitChallenge) => {
                match (status, auth_type) {
                    (wire::AUTH_FAILURE, wire::AUTH_DIGEST) => self.take_challenge(data)?,
                    (wire::AUTH_SUCCESS, _) => return Err(bad("empty digest accepted")),
                    (s, _) => self.events.push_back(Event::AuthFailed { status: s }),
                }
                to_browser.extend_from_slice(m);
                self.phase = Phase::Started;
            }
            (wire::AUTHENTICATE_SESSION_REPLY, Phase::AwaitResult) => {
                match (status, auth_type) {
                    (wire::AUTH_SUCCESS, wire::AUTH_DIGEST) => {
                        to_browser.extend_from_slice(m);
                        self.events.push_back(Event::Authenticated);
                        self.phase = Phase::Passthrough;
                        return Ok(());
                    }
                    (wire::AUTH_SUCCESS, _) => {
                        return Err(bad("digest answered with another auth type"));
                    }
                    (wire::AUTH_FAILURE, wire::AUTH_DIGEST) => self.take_challenge(data)?,
                    _ => self.challenge = None,
                }
                to_browser.extend_from_slice(m);
                self.events.push_back(Event::AuthFailed { status });
                self.phase = Phase::Started;
            }
            _ => return Err(unexpected(Side::Device, m)),
        }
        Ok(())
    }

    fn take_challenge(&mut self, data: &[u8]) -> Result<(), RedirError> {
        let c = Challenge::parse(data)?;
        let max = usize::from(self.limits.max_field);
        if c.realm.len() > max || c.nonce.len() > max || c.qop.len() > max {
            return Err(RedirError::FieldTooLong);
        }
        if c.realm.is_empty() || c.nonce.is_empty() {
            return Err(RedirError::Malformed {
                side: Side::Device,
                context: "challenge without realm or nonce",
            });
        }
        if !c.qop.split(',').any(|t| t.trim().eq_ignore_ascii_case(QOP)) {
            return Err(RedirError::Malformed {
                side: Side::Device,
                context: "challenge offers no qop=auth",
            });
        }
        if self
            .challenge
            .as_ref()
            .is_none_or(|old| old.nonce != c.nonce)
        {
            self.nc = 0;
        }
        self.challenge = Some(Nonce {
            realm: c.realm.to_string(),
            nonce: c.nonce.to_string(),
        });
        Ok(())
    }

    fn send_digest(
        &mut self,
        response_hex: &str,
        to_device: &mut BytesMut,
    ) -> Result<(), RedirError> {
        if self.phase != Phase::DigestPending {
            return Err(RedirError::NoDigestPending);
        }
        let Some(c) = &self.challenge else {
            return Err(RedirError::NoDigestPending);
        };
        if response_hex.len() != 32 || !response_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(RedirError::InvalidDigestResponse);
        }
        let response = response_hex.to_ascii_lowercase();
        let nc = format!("{:08x}", self.nc);
        let mut msg = BytesMut::new();
        DigestAuth {
            user: USER,
            realm: &c.realm,
            nonce: &c.nonce,
            uri: URI,
            cnonce: self.cnonce.as_str(),
            nc: &nc,
            response: &response,
            qop: QOP,
        }
        .encode(&mut msg)?;
        to_device.put_slice(&msg);
        self.phase = Phase::AwaitResult;
        Ok(())
    }
}
