//! RFC 2617 digest authentication as Intel AMT speaks it: MD5, `qop="auth"`, and a nonce count
//! kept per device across requests (AMT's challenge stays valid until it says `stale`).

use std::fmt::Write as _;

use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

/// A `WWW-Authenticate: Digest ...` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `realm`, e.g. `Digest:A3829B3827DE4D33D4449B366831FD01`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `qop` offered; AMT offers `auth`.
    pub qop: Option<String>,
    /// `opaque`, echoed if present.
    pub opaque: Option<String>,
    /// `stale="true"`: the nonce expired, the credentials were right.
    pub stale: bool,
}

/// Why a challenge could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    /// Not `Digest`.
    #[error("not a Digest challenge")]
    NotDigest,
    /// A parameter is malformed (unterminated quote, no `=`).
    #[error("malformed challenge parameter")]
    Malformed,
    /// `realm` or `nonce` is missing.
    #[error("challenge lacks realm or nonce")]
    Missing,
    /// Only `MD5` (or no `algorithm`) is supported.
    #[error("unsupported digest algorithm")]
    Algorithm,
    /// `qop` offered without `auth`.
    #[error("challenge offers no qop=auth")]
    Qop,
}

/// Splits `k=v, k="v, with comma", ...` into pairs (keys lower-cased).
fn params(s: &str) -> Result<Vec<(String, String)>, DigestError> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=').ok_or(DigestError::Malformed)?;
        let key = key.trim().to_ascii_lowercase();
        if key.is_empty() || key.contains([' ', '"', ',']) {
            return Err(DigestError::Malformed);
        }
        let after = after.trim_start();
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, e)) => value.push(e),
                        None => return Err(DigestError::Malformed),
                    },
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => value.push(c),
                }
            }
            let end = end.ok_or(DigestError::Malformed)?;
            (value, &q[end..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        out.push((key, value));
        let tail = tail.trim_start();
        rest = match tail.strip_prefix(',') {
            Some(t) => t.trim_start(),
            None if tail.is_empty() => "",
            None => return Err(DigestError::Malformed),
        };
    }
    Ok(out)
}

impl Challenge {
    /// Parses a `WWW-Authenticate` value.
    pub fn parse(header: &str) -> Result<Self, DigestError> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        if !scheme.eq_ignore_ascii_case("digest") {
            return Err(DigestError::NotDigest);
        }
        let mut c = Self {
            realm: String::new(),
            nonce: String::new(),
            qop: None,
            opaque: None,
            stale: false,
        };
        let (mut realm, mut nonce) = (None, None);
        for (k, v) in params(rest)? {
            match k.as_str() {
                "realm" => realm = Some(v),
                "nonce" => nonce = Some(v),
                "qop" => c.qop = Some(v),
                "opaque" => c.opaque = Some(v),
                "stale" => c.stale = v.eq_ignore_ascii_case("true"),
                "algorithm" if !v.eq_ignore_ascii_case("md5") => {
                    return Err(DigestError::Algorithm);
                }
                _ => {}
            }
        }
        c.realm = realm.ok_or(DigestError::Missing)?;
        c.nonce = nonce.ok_or(DigestError::Missing)?;
        if let Some(q) = &c.qop
            && !q.split(',').any(|t| t.trim().eq_ignore_ascii_case("auth"))
        {
            return Err(DigestError::Qop);
        }
        Ok(c)
    }
}

fn md5_hex(parts: &[&[u8]]) -> String {
    let mut h = Md5::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(p);
    }
    let mut out = String::with_capacity(32);
    for b in h.finalize() {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// `response` of RFC 2617 §3.2.2.1 with `qop=auth` (or without qop when `qop_nc` is None).
pub fn response(
    user: &str,
    realm: &str,
    password: &[u8],
    method: &str,
    uri: &str,
    nonce: &str,
    qop_nc: Option<(&str, &str)>,
) -> String {
    let ha1 = md5_hex(&[user.as_bytes(), realm.as_bytes(), password]);
    let ha2 = md5_hex(&[method.as_bytes(), uri.as_bytes()]);
    match qop_nc {
        Some((nc, cnonce)) => md5_hex(&[
            ha1.as_bytes(),
            nonce.as_bytes(),
            nc.as_bytes(),
            cnonce.as_bytes(),
            b"auth",
            ha2.as_bytes(),
        ]),
        None => md5_hex(&[ha1.as_bytes(), nonce.as_bytes(), ha2.as_bytes()]),
    }
}

/// One device's digest state: the last challenge and the nonce count under it.
#[derive(Debug, Clone, Default)]
pub struct DigestClient {
    challenge: Option<Challenge>,
    nc: u32,
}

impl DigestClient {
    /// No challenge yet: the first request goes without `Authorization`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes a new challenge (from a 401); the nonce count restarts when the nonce changed.
    pub fn challenged(&mut self, c: Challenge) {
        if self
            .challenge
            .as_ref()
            .is_none_or(|old| old.nonce != c.nonce)
        {
            self.nc = 0;
        }
        self.challenge = Some(c);
    }

    /// Whether a challenge is known.
    pub fn has_challenge(&self) -> bool {
        self.challenge.is_some()
    }

    /// The `Authorization` value for the next request, in the form AMT accepts (every value
    /// quoted, as MPS and MeshCentral send it); None before the first challenge. Each call
    /// uses the next nonce count.
    pub fn authorization(
        &mut self,
        user: &str,
        password: &[u8],
        method: &str,
        uri: &str,
        cnonce: &str,
    ) -> Option<String> {
        let c = self.challenge.as_ref()?;
        self.nc = self.nc.wrapping_add(1);
        let nc = format!("{:08x}", self.nc);
        let qop = c.qop.is_some();
        let resp = response(
            user,
            &c.realm,
            password,
            method,
            uri,
            &c.nonce,
            qop.then_some((nc.as_str(), cnonce)),
        );
        let mut h = format!(
            "Digest username=\"{user}\",realm=\"{}\",nonce=\"{}\",uri=\"{uri}\",",
            c.realm, c.nonce
        );
        if qop {
            let _ = write!(
                h,
                "qop=\"auth\",response=\"{resp}\",nc=\"{nc}\",cnonce=\"{cnonce}\""
            );
        } else {
            let _ = write!(h, "response=\"{resp}\"");
        }
        if let Some(o) = &c.opaque {
            let _ = write!(h, ",opaque=\"{o}\"");
        }
        Some(h)
    }
}

/// The device side: whether `authorization` answers `realm`/`nonce` with `password` for
/// `method` (constant-time comparison of the response). For simulators and tests.
pub fn verify(
    authorization: &str,
    realm: &str,
    nonce: &str,
    password: &[u8],
    method: &str,
) -> bool {
    let Some(rest) = authorization
        .trim()
        .strip_prefix("Digest ")
        .or_else(|| authorization.trim().strip_prefix("digest "))
    else {
        return false;
    };
    let Ok(p) = params(rest) else { return false };
    let get = |k: &str| p.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let (Some(user), Some(r), Some(n), Some(uri), Some(given)) = (
        get("username"),
        get("realm"),
        get("nonce"),
        get("uri"),
        get("response"),
    ) else {
        return false;
    };
    if r != realm || n != nonce {
        return false;
    }
    let qop_nc = match (get("qop"), get("nc"), get("cnonce")) {
        (Some(_), Some(nc), Some(cn)) => Some((nc, cn)),
        (None, _, _) => None,
        _ => return false,
    };
    let expected = response(user, realm, password, method, uri, nonce, qop_nc);
    bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_2617_example() {
        // RFC 2617 §3.5.
        let r = response(
            "Mufasa",
            "testrealm@host.com",
            b"Circle Of Life",
            "GET",
            "/dir/index.html",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            Some(("00000001", "0a4f113b")),
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn amt_challenge_parses_and_the_counter_runs_per_nonce() {
        // The shape of a real AMT 15 challenge.
        let c = Challenge::parse(
            "Digest realm=\"Digest:56ABC7BE224EF620C69EB88F01071DC8\", \
             nonce=\"fVNueyEAAAAAAAAAcO8WqJ8s+WdyFUIY\",stale=\"false\",qop=\"auth\"",
        )
        .unwrap();
        assert_eq!(c.realm, "Digest:56ABC7BE224EF620C69EB88F01071DC8");
        assert_eq!(c.nonce, "fVNueyEAAAAAAAAAcO8WqJ8s+WdyFUIY");
        assert!(!c.stale);
        let mut d = DigestClient::new();
        assert!(
            d.authorization("admin", b"pw", "POST", "/wsman", "c")
                .is_none()
        );
        d.challenged(c.clone());
        let first = d
            .authorization("admin", b"pw", "POST", "/wsman", "c1")
            .unwrap();
        assert!(first.contains("nc=\"00000001\""), "{first}");
        assert!(first.starts_with("Digest username=\"admin\",realm=\"Digest:56AB"));
        let second = d
            .authorization("admin", b"pw", "POST", "/wsman", "c2")
            .unwrap();
        assert!(second.contains("nc=\"00000002\""), "{second}");
        assert!(verify(&second, &c.realm, &c.nonce, b"pw", "POST"));
        assert!(!verify(&second, &c.realm, &c.nonce, b"other", "POST"));
        assert!(!verify(&second, &c.realm, "another-nonce", b"pw", "POST"));
        // The same nonce again keeps counting; a new one restarts at 1.
        d.challenged(c.clone());
        assert!(
            d.authorization("admin", b"pw", "POST", "/wsman", "c3")
                .unwrap()
                .contains("nc=\"00000003\"")
        );
        let mut fresh = c;
        fresh.nonce = "new".into();
        d.challenged(fresh);
        assert!(
            d.authorization("admin", b"pw", "POST", "/wsman", "c4")
                .unwrap()
                .contains("nc=\"00000001\"")
        );
    }

    #[test]
    fn bad_challenges_are_refused() {
        for (h, e) in [
            ("Basic realm=\"x\"", DigestError::NotDigest),
            ("Digest realm=\"x", DigestError::Malformed),
            ("Digest realm", DigestError::Malformed),
            ("Digest nonce=\"n\"", DigestError::Missing),
            (
                "Digest realm=\"r\", nonce=\"n\", algorithm=SHA-256",
                DigestError::Algorithm,
            ),
            (
                "Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\"",
                DigestError::Qop,
            ),
        ] {
            assert_eq!(Challenge::parse(h), Err(e), "{h}");
        }
        // Escapes and commas inside quotes.
        let c = Challenge::parse("Digest realm=\"a, \\\"b\\\"\", nonce=n1, opaque=\"o\"").unwrap();
        assert_eq!(c.realm, "a, \"b\"");
        assert_eq!(c.nonce, "n1");
        assert_eq!(c.opaque.as_deref(), Some("o"));
        assert!(!verify("Basic abc", "r", "n", b"p", "POST"));
        assert!(!verify("Digest username=\"a\"", "r", "n", b"p", "POST"));
    }
}
