//! The client side of WS-MAN over an APF channel, sans-IO: what the control plane needs to talk
//! to an Intel AMT device through its CIRA tunnel without the AMT password ever leaving it.
//!
//! - [`digest`]: RFC 2617 digest authentication as AMT speaks it (MD5, `qop="auth"`, the nonce
//!   count kept per device across requests), and the device side's check for simulators.
//! - [`Call`]: one WS-MAN request as an HTTP/1.1 exchange: the request bytes (`POST /wsman`,
//!   `Host: <guid>:16992`), a real response parser (Content-Length, chunked, close-delimited,
//!   through `rampart-http-proto`), and the retry rule: a 401 with a challenge is answered once
//!   more on a fresh channel (AMT closes after a 401), at most three attempts in all.
//!
//! - [`amt`]: the AMT operations behind MPS's `/api/v1/amt/*` routes: the SOAP envelopes of
//!   each exchange, and the device's answers parsed (as hostile XML) into MPS's JSON.
//!
//! What this crate deliberately does not do: open channels or sockets, read the clock, or
//! map arbitrary XML (each route reads the properties it reports).

#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]
#![warn(missing_docs)]

pub mod amt;
pub mod digest;

use bytes::BytesMut;
use rampart_http_proto::{BodyDecoder, BodyEvent, BodyLimits, Headers, Limits, ResponseParser};

pub use digest::{Challenge, DigestClient};

/// Attempts per call: the first (perhaps without credentials) and two answers to challenges.
pub const MAX_ATTEMPTS: u8 = 3;

/// Largest response body accepted (AMT's logs are the largest answers).
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// A complete HTTP response from the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header fields.
    pub headers: Headers,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The device's response is not valid HTTP.
    #[error("bad response from the device: {0}")]
    BadResponse(&'static str),
    /// The body is larger than [`MAX_BODY`].
    #[error("response body too large")]
    TooLarge,
    /// The channel closed before the response was complete.
    #[error("channel closed mid-response")]
    Truncated,
    /// Still 401 after [`MAX_ATTEMPTS`] (wrong AMT password).
    #[error("device refused the credentials")]
    Unauthorized,
    /// A 401 without a usable digest challenge.
    #[error("bad digest challenge: {0}")]
    BadChallenge(digest::DigestError),
}

/// What to do after a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// The answer (any status but a 401 to retry).
    Done(Response),
    /// Open a fresh channel and send these bytes (the authenticated retry).
    Retry(Vec<u8>),
}

/// One WS-MAN call.
#[derive(Debug)]
pub struct Call {
    host: String,
    body: Vec<u8>,
    attempts: u8,
    parser: ResponseParser,
    head: Option<(u16, Headers)>,
    decoder: Option<BodyDecoder>,
    got: Vec<u8>,
}

impl Call {
    /// A call to `host` (`<guid>:16992`) with a SOAP `body`.
    pub fn new(host: impl Into<String>, body: Vec<u8>) -> Self {
        Self {
            host: host.into(),
            body,
            attempts: 0,
            parser: ResponseParser::new(Limits::default()),
            head: None,
            decoder: None,
            got: Vec::new(),
        }
    }

    /// The request bytes of the next attempt, with `Authorization` when `digest` has a
    /// challenge. `cnonce`: a fresh random value per request.
    pub fn request(
        &mut self,
        digest: &mut DigestClient,
        user: &str,
        password: &[u8],
        cnonce: &str,
    ) -> Vec<u8> {
        self.attempts += 1;
        self.parser.reset();
        self.head = None;
        self.decoder = None;
        self.got.clear();
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(b"POST /wsman HTTP/1.1\r\n");
        if let Some(auth) = digest.authorization(user, password, "POST", "/wsman", cnonce) {
            out.extend_from_slice(format!("Authorization: {auth}\r\n").as_bytes());
        }
        out.extend_from_slice(
            format!(
                "Host: {}\r\nContent-Type: application/soap+xml; charset=utf-8\r\n\
                 Content-Length: {}\r\n\r\n",
                self.host,
                self.body.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(&self.body);
        out
    }

    /// Attempts made so far.
    pub fn attempts(&self) -> u8 {
        self.attempts
    }

    /// Feeds channel data; a complete response once it has arrived.
    pub fn on_data(&mut self, buf: &mut BytesMut) -> Result<Option<Response>, CallError> {
        if self.head.is_none() {
            match self.parser.parse(buf, "POST") {
                Ok(Some((h, used))) => {
                    let _ = buf.split_to(used);
                    if h.is_informational() {
                        self.parser.reset();
                        return self.on_data(buf);
                    }
                    self.decoder = Some(BodyDecoder::new(h.body, BodyLimits::default()));
                    self.head = Some((h.status, h.headers));
                }
                Ok(None) => return Ok(None),
                Err(e) => return Err(CallError::BadResponse(e.reason())),
            }
        }
        let Some(dec) = self.decoder.as_mut() else {
            return Ok(None);
        };
        loop {
            match dec
                .decode(buf)
                .map_err(|e| CallError::BadResponse(e.reason()))?
            {
                Some(BodyEvent::Data(d)) => {
                    if self.got.len() + d.len() > MAX_BODY {
                        return Err(CallError::TooLarge);
                    }
                    self.got.extend_from_slice(&d);
                }
                Some(BodyEvent::End) => return Ok(self.finish()),
                None => return Ok(None),
            }
        }
    }

    /// The channel closed: a close-delimited body ends here; anything else is truncated.
    pub fn on_close(&mut self, buf: &mut BytesMut) -> Result<Response, CallError> {
        let Some(dec) = self.decoder.as_mut() else {
            return Err(CallError::Truncated);
        };
        dec.eof().map_err(|_| CallError::Truncated)?;
        while let Some(ev) = dec.decode(buf).map_err(|_| CallError::Truncated)? {
            match ev {
                BodyEvent::Data(d) => self.got.extend_from_slice(&d),
                BodyEvent::End => break,
            }
        }
        self.finish().ok_or(CallError::Truncated)
    }

    fn finish(&mut self) -> Option<Response> {
        let (status, headers) = self.head.take()?;
        self.decoder = None;
        Some(Response {
            status,
            headers,
            body: std::mem::take(&mut self.got),
        })
    }

    /// Decides after a response: a 401 with a challenge is retried while attempts remain.
    pub fn after(
        &mut self,
        resp: Response,
        digest: &mut DigestClient,
        user: &str,
        password: &[u8],
        cnonce: &str,
    ) -> Result<Next, CallError> {
        if resp.status != 401 {
            return Ok(Next::Done(resp));
        }
        if self.attempts >= MAX_ATTEMPTS {
            return Err(CallError::Unauthorized);
        }
        let header = resp
            .headers
            .get_str("www-authenticate")
            .ok_or(CallError::BadChallenge(digest::DigestError::Missing))?;
        let challenge = Challenge::parse(header).map_err(CallError::BadChallenge)?;
        // A second 401 to a fresh (not stale) challenge means the password is wrong.
        if digest.has_challenge() && !challenge.stale && self.attempts >= 2 {
            return Err(CallError::Unauthorized);
        }
        digest.challenged(challenge);
        Ok(Next::Retry(self.request(digest, user, password, cnonce)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHALLENGE_401: &[u8] = b"HTTP/1.1 401 Unauthorized\r\n\
WWW-Authenticate: Digest realm=\"Digest:AAAA\", nonce=\"n1\",stale=\"false\",qop=\"auth\"\r\n\
Content-Type: text/html\r\nServer: Intel(R) Active Management Technology 15.0.23.1706\r\n\
Content-Length: 8\r\nConnection: close\r\n\r\n</html>\n";

    fn feed_all(call: &mut Call, bytes: &[u8], step: usize) -> Option<Response> {
        let mut buf = BytesMut::new();
        for piece in bytes.chunks(step) {
            buf.extend_from_slice(piece);
            if let Some(r) = call.on_data(&mut buf).unwrap() {
                return Some(r);
            }
        }
        None
    }

    #[test]
    fn challenge_then_authenticated_chunked_answer() {
        let mut d = DigestClient::new();
        let mut call = Call::new(
            "12345678-9abc-def0-1122-334455667788:16992",
            b"<x/>".to_vec(),
        );
        let first = call.request(&mut d, "admin", b"P@ssw0rd", "c1");
        let text = String::from_utf8(first).unwrap();
        assert!(text.starts_with("POST /wsman HTTP/1.1\r\n"));
        assert!(!text.contains("Authorization"));
        assert!(text.contains("Content-Length: 4\r\n\r\n<x/>"));
        // The 401, one byte at a time.
        let r = feed_all(&mut call, CHALLENGE_401, 1).unwrap();
        assert_eq!(r.status, 401);
        let Next::Retry(again) = call.after(r, &mut d, "admin", b"P@ssw0rd", "c2").unwrap() else {
            panic!("no retry");
        };
        let again = String::from_utf8(again).unwrap();
        let auth = again
            .lines()
            .find_map(|l| l.strip_prefix("Authorization: "))
            .unwrap();
        assert!(digest::verify(
            auth,
            "Digest:AAAA",
            "n1",
            b"P@ssw0rd",
            "POST"
        ));
        // AMT's chunked answer with 4-digit chunk sizes splitting the XML anywhere.
        let ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml; charset=UTF-8\r\n\
Transfer-Encoding: chunked\r\n\r\n0005\r\n<a><b\r\n0006\r\n>1</b>\r\n0004\r\n</a>\r\n0\r\n\r\n";
        for step in [1, 7, ok.len()] {
            let mut c2 = Call::new("h", Vec::new());
            let r = feed_all(&mut c2, ok, step).unwrap();
            assert_eq!(r.status, 200);
            assert_eq!(r.body, b"<a><b>1</b></a>");
        }
        let r = feed_all(&mut call, ok, 3).unwrap();
        let Next::Done(done) = call.after(r, &mut d, "admin", b"P@ssw0rd", "c3").unwrap() else {
            panic!("not done");
        };
        assert_eq!(done.body, b"<a><b>1</b></a>");
    }

    #[test]
    fn wrong_password_stops_after_the_second_challenge() {
        let mut d = DigestClient::new();
        let mut call = Call::new("h", Vec::new());
        call.request(&mut d, "admin", b"bad", "c");
        let r = feed_all(&mut call, CHALLENGE_401, 64).unwrap();
        assert!(matches!(
            call.after(r, &mut d, "admin", b"bad", "c"),
            Ok(Next::Retry(_))
        ));
        let r = feed_all(&mut call, CHALLENGE_401, 64).unwrap();
        assert_eq!(
            call.after(r, &mut d, "admin", b"bad", "c"),
            Err(CallError::Unauthorized)
        );
    }

    #[test]
    fn close_delimited_truncated_and_malformed() {
        let mut call = Call::new("h", Vec::new());
        let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello"[..]);
        assert_eq!(call.on_data(&mut buf).unwrap(), None);
        let r = call.on_close(&mut buf).unwrap();
        assert_eq!(r.body, b"hello");

        let mut call = Call::new("h", Vec::new());
        let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhel"[..]);
        assert_eq!(call.on_data(&mut buf).unwrap(), None);
        assert_eq!(call.on_close(&mut buf), Err(CallError::Truncated));

        let mut call = Call::new("h", Vec::new());
        let mut buf = BytesMut::from(&b"HTTP/1.1 200 OK\nContent-Length: 1\n\nx"[..]);
        assert!(matches!(
            call.on_data(&mut buf),
            Err(CallError::BadResponse(_))
        ));

        // A 401 without a challenge is refused, not retried blindly.
        let mut d = DigestClient::new();
        let mut call = Call::new("h", Vec::new());
        call.request(&mut d, "admin", b"p", "c");
        let mut buf =
            BytesMut::from(&b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n"[..]);
        let r = call.on_data(&mut buf).unwrap().unwrap();
        assert!(matches!(
            call.after(r, &mut d, "admin", b"p", "c"),
            Err(CallError::BadChallenge(_))
        ));
    }
}
