//! The control plane's half of the redirection relay (KVM, SOL, IDER): short-lived device
//! tokens, one session per mode per device, and the digest answers that let the data plane
//! authenticate a session to the device without ever seeing the AMT password.
//!
//! - `GET /api/v1/authorize/redirection/{guid}` ([`Relay::issue`]) gives an operator a token
//!   for one device, valid for [`TOKEN_TTL`] and for one session: `{"token": "rdr_..."}`. Only
//!   its SHA-256 is kept, in memory.
//! - The browser opens the WebSocket relay on the HTTPS front with the token in
//!   `Sec-WebSocket-Protocol` (MPS's convention); the data plane then connects to `relay.sock`
//!   (0600, in the 0700 run directory) and speaks one line at a time:
//!   - `AUTHORIZE <token> <guid> <mode> <peer>` → `OK` or `ERR <code>` (`bad_token`: malformed,
//!     unknown, spent, expired or for another device; `throttled`: too many bad tokens from
//!     that peer; `busy`: a session of this mode is open for the device; `no_password`: no AMT
//!     password is stored for it). A known token is spent.
//!   - `DIGEST <realm> <nonce> <cnonce> <nc>` (realm and nonce hex-encoded: the device chose
//!     them) → `RESPONSE <user> <hex>` or `ERR <code>`: the
//!     RFC 2617 answer (`qop=auth`, `POST /RedirectionService`) to the device's challenge,
//!     computed here with the AMT password, which is decrypted for the purpose and dropped.
//!     At most [`MAX_DIGESTS`] per session (the interceptor asks at most three times).
//!   - The connection is the session: when it closes, the mode is free again and the end is
//!     audited.
//!
//! Only the data plane's user (or root) may connect (`SO_PEERCRED`). Bad tokens are throttled
//! per peer address with the login throttle's rules, so a flood from outside neither fills the
//! audit log nor guesses tokens.
//!
//! Every step is audited: `relay.authorize` (token issued), `relay.open` (with the peer), and
//! `relay.close`.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use rampart_store::{AuditEvent, Outcome};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tracing::{info, warn};

use crate::amt::AMT_USER;
use crate::api::{AppState, now_ms};

/// How long a redirection token is valid (MPS's default).
pub const TOKEN_TTL: Duration = Duration::from_secs(5 * 60);
/// Tokens outstanding at once; more are refused until some expire or are spent.
pub const MAX_TOKENS: usize = 10_000;
/// Longest request line.
const MAX_LINE: usize = 1024;
/// Digest answers per session.
pub const MAX_DIGESTS: usize = 3;
/// The redirection service's digest URI and method (AMT's).
const URI: &str = "/RedirectionService";
const METHOD: &str = "POST";

/// A redirection mode: one session of each per device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// KVM (remote desktop).
    Kvm,
    /// Serial over LAN.
    Sol,
    /// IDE redirection.
    Ider,
}

impl Mode {
    /// `kvm`, `sol` or `ider`.
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "kvm" => Some(Mode::Kvm),
            "sol" => Some(Mode::Sol),
            "ider" => Some(Mode::Ider),
            _ => None,
        }
    }

    /// The mode's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Kvm => "kvm",
            Mode::Sol => "sol",
            Mode::Ider => "ider",
        }
    }
}

/// What a token grants.
#[derive(Debug, Clone)]
struct Grant {
    guid: String,
    actor: String,
    expires_ms: i64,
}

/// Tokens and open sessions.
#[derive(Debug, Default)]
pub struct Relay {
    tokens: parking_lot::Mutex<HashMap<[u8; 32], Grant>>,
    sessions: parking_lot::Mutex<HashSet<(String, Mode)>>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Relay {
    /// A token for `guid` (canonical) issued to `actor`, or None when [`MAX_TOKENS`] are
    /// outstanding.
    pub fn issue(&self, guid: &str, actor: &str, now_ms: i64) -> Option<String> {
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).ok()?;
        let token = format!(
            "rdr_{}",
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, secret)
        );
        let mut tokens = self.tokens.lock();
        tokens.retain(|_, g| g.expires_ms > now_ms);
        if tokens.len() >= MAX_TOKENS {
            return None;
        }
        let ttl = i64::try_from(TOKEN_TTL.as_millis()).unwrap_or(i64::MAX);
        tokens.insert(
            digest(&token),
            Grant {
                guid: guid.to_owned(),
                actor: actor.to_owned(),
                expires_ms: now_ms.saturating_add(ttl),
            },
        );
        Some(token)
    }

    /// Spends `token` for `guid`: the grant, if the token exists, has not expired and is for
    /// this device. A token presented for another device is spent too.
    fn redeem(&self, token: &str, guid: &str, now_ms: i64) -> Option<Grant> {
        let g = self.tokens.lock().remove(&digest(token))?;
        (g.expires_ms > now_ms && g.guid == guid).then_some(g)
    }

    /// Claims `mode` on `guid`; false if a session holds it.
    fn claim(&self, guid: &str, mode: Mode) -> bool {
        self.sessions.lock().insert((guid.to_owned(), mode))
    }

    fn release(&self, guid: &str, mode: Mode) {
        self.sessions.lock().remove(&(guid.to_owned(), mode));
    }

    /// Whether a session of `mode` is open on `guid`.
    pub fn is_open(&self, guid: &str, mode: Mode) -> bool {
        self.sessions.lock().contains(&(guid.to_owned(), mode))
    }
}

/// Serves `relay.sock` until the runtime stops.
pub async fn serve(listener: UnixListener, st: AppState) {
    loop {
        match listener.accept().await {
            Ok((sock, _)) => {
                let st = st.clone();
                tokio::spawn(async move { session(sock, st).await });
            }
            Err(error) => {
                warn!(message = "Relay socket accept failed.", %error);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One relay session, for the life of the data plane's connection.
async fn session(sock: UnixStream, st: AppState) {
    let ours = rustix::process::geteuid().as_raw();
    match sock.peer_cred() {
        Ok(c) if c.uid() == ours || c.uid() == 0 => {}
        _ => {
            warn!(message = "Relay socket peer refused: not the data plane's user.");
            return;
        }
    }
    let (rd, mut wr) = sock.into_split();
    let mut rd = BufReader::new(rd.take(MAX_LINE as u64 * 8));
    let mut line = String::new();
    let (grant, guid, mode, peer) = match authorize(&mut rd, &mut line, &st).await {
        Ok(a) => a,
        Err(code) => {
            let _ = wr.write_all(format!("ERR {code}\n").as_bytes()).await;
            return;
        }
    };
    let opened = |outcome, detail: String| AuditEvent {
        id: 0,
        time: now_ms(),
        actor: grant.actor.clone(),
        source: Some(peer.clone()),
        action: "relay.open".to_owned(),
        object: Some(guid.clone()),
        outcome,
        detail: Some(detail),
    };
    if !st.relay.claim(&guid, mode) {
        st.audit(opened(
            Outcome::Failure,
            format!("mode={} busy", mode.as_str()),
        ))
        .await;
        let _ = wr.write_all(b"ERR busy\n").await;
        return;
    }
    st.audit(opened(Outcome::Success, format!("mode={}", mode.as_str())))
        .await;
    info!(
        message = "Redirection session opened.",
        guid,
        mode = mode.as_str(),
        peer
    );
    if wr.write_all(b"OK\n").await.is_ok() {
        let mut answered = 0;
        loop {
            line.clear();
            if read_line(&mut rd, &mut line).await.is_none() {
                break;
            }
            let answer = if answered < MAX_DIGESTS {
                answered += 1;
                answer_digest(&st, &guid, line.trim_end()).await
            } else {
                "ERR too_many\n".to_owned()
            };
            if wr.write_all(answer.as_bytes()).await.is_err() {
                break;
            }
        }
    }
    st.relay.release(&guid, mode);
    info!(
        message = "Redirection session closed.",
        guid,
        mode = mode.as_str()
    );
    st.audit(AuditEvent {
        id: 0,
        time: now_ms(),
        actor: grant.actor.clone(),
        source: Some(peer),
        action: "relay.close".to_owned(),
        object: Some(guid),
        outcome: Outcome::Success,
        detail: Some(format!("mode={}", mode.as_str())),
    })
    .await;
}

/// Reads one line (without control characters but the newline); None at end or on a bad one.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(
    rd: &mut R,
    line: &mut String,
) -> Option<()> {
    let n = rd.read_line(line).await.ok()?;
    if n == 0 || n > MAX_LINE || !line.ends_with('\n') {
        return None;
    }
    line.pop();
    (!line.chars().any(char::is_control)).then_some(())
}

/// `AUTHORIZE <token> <guid> <mode> <peer>`: the grant, the device, the mode and the peer; or
/// the error code to answer.
async fn authorize<R: tokio::io::AsyncBufRead + Unpin>(
    rd: &mut R,
    line: &mut String,
    st: &AppState,
) -> Result<(Grant, String, Mode, String), &'static str> {
    let read = tokio::time::timeout(Duration::from_secs(5), read_line(rd, line)).await;
    read.ok().flatten().ok_or("bad_request")?;
    let mut f = line.split(' ');
    let (Some("AUTHORIZE"), Some(token), Some(guid), Some(mode), Some(peer), None) =
        (f.next(), f.next(), f.next(), f.next(), f.next(), f.next())
    else {
        return Err("bad_request");
    };
    let guid = rampart_credentials::DeviceGuid::parse(guid)
        .map_err(|_| "bad_request")?
        .as_str()
        .to_owned();
    let mode = Mode::parse(mode).ok_or("bad_request")?;
    let peer: std::net::IpAddr = peer.parse().map_err(|_| "bad_request")?;
    let peer = peer.to_string();
    // Bad tokens count against the peer address as failed logins do (its own "account", so
    // one address cannot lock others out).
    let key = format!("relay:{peer}");
    let now = std::time::Instant::now();
    if st.throttle.check(&key, Some(&peer), now).is_err() {
        return Err("throttled");
    }
    let Some(grant) = st.relay.redeem(token, &guid, now_ms()) else {
        st.throttle.fail(&key, Some(&peer), now);
        st.audit_failure("relay.open", Some(guid), Some(peer), "bad_token")
            .await;
        return Err("bad_token");
    };
    // A device without an AMT password cannot be authenticated to: say so before the 101.
    let g = guid.clone();
    let blob = st
        .blocking(move |s| s.device(&g))
        .await
        .map(|d| d.amt_password)
        .map_err(|_| "bad_token")?;
    let amt = st.amt.clone();
    let g = guid.clone();
    let has = tokio::task::spawn_blocking(move || amt.load(&g, blob.as_deref()))
        .await
        .ok()
        .and_then(Result::ok)
        .flatten()
        .is_some();
    if !has {
        return Err("no_password");
    }
    Ok((grant, guid, mode, peer))
}

/// Hex text to a string of printable ASCII (the device's realm or nonce).
fn unhex(s: &str) -> Option<String> {
    if !s.len().is_multiple_of(2) || s.len() > 2 * 255 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect();
    let bytes = bytes?;
    bytes
        .iter()
        .all(|b| (0x20..0x7f).contains(b))
        .then(|| String::from_utf8(bytes).ok())
        .flatten()
}

/// `DIGEST <realm> <nonce> <cnonce> <nc>` → `RESPONSE <user> <hex>`.
async fn answer_digest(st: &AppState, guid: &str, line: &str) -> String {
    let mut f = line.split(' ');
    let (Some("DIGEST"), Some(realm), Some(nonce), Some(cnonce), Some(nc), None) =
        (f.next(), f.next(), f.next(), f.next(), f.next(), f.next())
    else {
        return "ERR bad_request\n".to_owned();
    };
    let (Some(realm), Some(nonce)) = (unhex(realm), unhex(nonce)) else {
        return "ERR bad_request\n".to_owned();
    };
    let ok = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    if !ok(cnonce, 32) || !ok(nc, 8) {
        return "ERR bad_request\n".to_owned();
    }
    let g = guid.to_owned();
    let Ok(device) = st.blocking(move |s| s.device(&g)).await else {
        return "ERR no_device\n".to_owned();
    };
    let amt = st.amt.clone();
    let g = guid.to_owned();
    let blob = device.amt_password.clone();
    let loaded = tokio::task::spawn_blocking(move || amt.load(&g, blob.as_deref())).await;
    let Ok(Ok(Some(password))) = loaded else {
        return "ERR no_password\n".to_owned();
    };
    let hex = rampart_wsman::digest::response(
        AMT_USER,
        &realm,
        password.as_bytes(),
        METHOD,
        URI,
        &nonce,
        Some((nc, cnonce)),
    );
    format!("RESPONSE {AMT_USER} {hex}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: &str = "12345678-9abc-def0-1122-334455667788";

    #[test]
    fn tokens_are_single_use_device_scoped_and_expire() {
        let r = Relay::default();
        let t = r.issue(G, "alice", 1000).unwrap();
        assert!(t.starts_with("rdr_") && t.len() == 4 + 43);
        // Another device: refused, and spent.
        assert!(
            r.redeem(&t, "00000000-0000-0000-0000-000000000001", 1001)
                .is_none()
        );
        assert!(r.redeem(&t, G, 1001).is_none());
        let t = r.issue(G, "alice", 1000).unwrap();
        let g = r.redeem(&t, G, 1001).unwrap();
        assert_eq!(g.actor, "alice");
        assert!(r.redeem(&t, G, 1002).is_none(), "single use");
        let t = r.issue(G, "alice", 1000).unwrap();
        let late = 1000 + i64::try_from(TOKEN_TTL.as_millis()).unwrap();
        assert!(r.redeem(&t, G, late).is_none(), "expired");
        assert!(r.redeem("rdr_forged", G, 1001).is_none());
    }

    #[test]
    fn device_fields_arrive_hex_encoded() {
        assert_eq!(unhex("446967657374"), Some("Digest".to_owned()));
        assert_eq!(unhex("20"), Some(" ".to_owned()));
        assert_eq!(unhex("0a"), None, "control characters");
        assert_eq!(unhex("4"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(unhex(""), Some(String::new()));
    }

    #[test]
    fn one_session_per_mode_per_device() {
        let r = Relay::default();
        assert!(r.claim(G, Mode::Kvm));
        assert!(!r.claim(G, Mode::Kvm));
        assert!(r.claim(G, Mode::Sol));
        assert!(r.is_open(G, Mode::Kvm));
        r.release(G, Mode::Kvm);
        assert!(r.claim(G, Mode::Kvm));
        assert_eq!(Mode::parse("ider"), Some(Mode::Ider));
        assert_eq!(Mode::parse("KVM"), None);
    }
}
