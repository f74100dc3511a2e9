//! The redirection protocol's session-manager messages (Intel AMT SDK, "Redirection
//! Protocol": StartRedirectionSession and AuthenticateSession), as far as the relay and the
//! device simulator need them.
//!
//! | message | direction | layout |
//! |---|---|---|
//! | StartRedirectionSession `0x10` | console → AMT | 8 bytes: command, 3 reserved (KVM clients set the first to 1), 4-byte session type `SOL `, `IDER` or `KVMR` |
//! | StartRedirectionSessionReply `0x11` | AMT → console | command, status, 2 reserved, protocol version (major, minor), firmware version (major, minor), 4-byte OEM IANA number, OEM data length, OEM data: `13 + len` bytes |
//! | EndRedirectionSession `0x12` | console → AMT | 4 bytes: command, 3 reserved |
//! | AuthenticateSession `0x13` | console → AMT | command, 3 reserved, auth type, `u32` little-endian data length, data |
//! | AuthenticateSessionReply `0x14` | AMT → console | command, status, 2 reserved, auth type, `u32` little-endian data length, data |
//!
//! A query (auth type 0) carries no data; its reply lists the supported auth types, one byte
//! each. Digest data (auth type 4) is eight strings, each with a one-byte length: user, realm,
//! nonce, URI, cnonce, nonce count, response, qop. The digest challenge (a reply with status 1
//! and auth type 4) is three: realm, nonce, qop.
//!
//! Sources: MPS `src/utils/redirectInterceptor.ts`, MeshCentral `amt-redir-ws`, the SDK's
//! sample `RedirectionConstants.h` (`START_REDIRECTION_SESSION_REPLY_LENGTH 13`) and amtterm.

use bytes::{BufMut, BytesMut};

use crate::RedirError;

/// StartRedirectionSession (console → AMT).
pub const START_REDIRECTION_SESSION: u8 = 0x10;
/// StartRedirectionSessionReply (AMT → console).
pub const START_REDIRECTION_SESSION_REPLY: u8 = 0x11;
/// EndRedirectionSession (console → AMT).
pub const END_REDIRECTION_SESSION: u8 = 0x12;
/// AuthenticateSession (console → AMT).
pub const AUTHENTICATE_SESSION: u8 = 0x13;
/// AuthenticateSessionReply (AMT → console).
pub const AUTHENTICATE_SESSION_REPLY: u8 = 0x14;

/// Length of StartRedirectionSession.
pub const START_SESSION_LEN: usize = 8;
/// Length of StartRedirectionSessionReply without OEM data.
pub const START_REPLY_LEN: usize = 13;
/// Length of EndRedirectionSession.
pub const END_SESSION_LEN: usize = 4;
/// Length of the AuthenticateSession(Reply) header before the data.
pub const AUTH_HEADER_LEN: usize = 9;

/// StartRedirectionSessionReply status: success (others: 1 unknown type, 2 busy, 3
/// unsupported, 0xFF error).
pub const STATUS_SUCCESS: u8 = 0;

/// AuthenticateSessionReply status: success.
pub const AUTH_SUCCESS: u8 = 0;
/// AuthenticateSessionReply status: failure (with auth type 4, carries a challenge).
pub const AUTH_FAILURE: u8 = 1;
/// AuthenticateSessionReply status: the auth type is not supported.
pub const AUTH_NOT_SUPPORTED: u8 = 2;

/// Auth type: query the supported auth types.
pub const AUTH_QUERY: u8 = 0;
/// Auth type: user name and password in the clear.
pub const AUTH_USER_PASSWORD: u8 = 1;
/// Auth type: Kerberos.
pub const AUTH_KERBEROS: u8 = 2;
/// Auth type: digest without qop/cnonce.
pub const AUTH_BAD_DIGEST: u8 = 3;
/// Auth type: digest with `qop=auth`.
pub const AUTH_DIGEST: u8 = 4;

/// Intel's IANA enterprise number, as AMT puts it in StartRedirectionSessionReply.
pub const INTEL_IANA: u32 = 343;

/// The kind of redirection session a console asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionType {
    /// Serial over LAN, tag `SOL `.
    Sol,
    /// IDE redirection (USB-R on newer AMT), tag `IDER`.
    Ider,
    /// KVM (remote desktop), tag `KVMR`.
    Kvm,
}

impl SessionType {
    /// The four-byte tag in StartRedirectionSession.
    pub fn tag(&self) -> [u8; 4] {
        match self {
            Self::Sol => *b"SOL ",
            Self::Ider => *b"IDER",
            Self::Kvm => *b"KVMR",
        }
    }

    /// The type a tag names, if any.
    pub fn from_tag(tag: [u8; 4]) -> Option<Self> {
        match &tag {
            b"SOL " => Some(Self::Sol),
            b"IDER" => Some(Self::Ider),
            b"KVMR" => Some(Self::Kvm),
            _ => None,
        }
    }

    /// A stable label (`sol`, `ider`, `kvm`), the `mode` of MPS's relay URL.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Sol => "sol",
            Self::Ider => "ider",
            Self::Kvm => "kvm",
        }
    }

    /// StartRedirectionSession as consoles send it (KVM with the first reserved byte 1, as
    /// MeshCentral and the Open AMT UI toolkit do).
    pub fn start_message(&self) -> [u8; START_SESSION_LEN] {
        let t = self.tag();
        let b1 = u8::from(*self == Self::Kvm);
        [START_REDIRECTION_SESSION, b1, 0, 0, t[0], t[1], t[2], t[3]]
    }
}

// === reading ===

/// A bounds-checked cursor over peer bytes (house style rule 9).
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.buf.len() {
            return None;
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Some(head)
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.take(1).and_then(|b| b.first().copied())
    }

    /// A string with a one-byte length prefix.
    pub(crate) fn short(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

/// The `u32` little-endian data length of an AuthenticateSession(Reply) header, if `buf` holds
/// the whole header.
pub(crate) fn auth_data_len(buf: &[u8]) -> Option<u32> {
    let b: [u8; 4] = buf.get(5..AUTH_HEADER_LEN)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

fn printable(b: &[u8]) -> Option<&str> {
    if b.iter().all(|c| (0x20..=0x7e).contains(c)) {
        std::str::from_utf8(b).ok()
    } else {
        None
    }
}

const fn malformed(side: crate::Side, context: &'static str) -> RedirError {
    RedirError::Malformed { side, context }
}

// === digest challenge ===

/// The data of a digest challenge (AuthenticateSessionReply, status 1, auth type 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Challenge<'a> {
    /// `realm`, `Digest:<GUID>` on AMT.
    pub realm: &'a str,
    /// `nonce`.
    pub nonce: &'a str,
    /// `qop`, `auth` on AMT.
    pub qop: &'a str,
}

impl<'a> Challenge<'a> {
    /// Parses the data after the 9-byte header: three short strings of printable ASCII,
    /// nothing after them.
    pub fn parse(data: &'a [u8]) -> Result<Self, RedirError> {
        let side = crate::Side::Device;
        let mut r = Reader::new(data);
        let mut field = || {
            let raw = r.short().ok_or(malformed(side, "truncated challenge"))?;
            printable(raw).ok_or(malformed(side, "challenge field is not printable ASCII"))
        };
        let (realm, nonce, qop) = (field()?, field()?, field()?);
        if !r.is_empty() {
            return Err(malformed(side, "trailing bytes after challenge"));
        }
        Ok(Self { realm, nonce, qop })
    }

    /// Writes a whole AuthenticateSessionReply with auth type 4 carrying this challenge.
    pub fn encode(&self, status: u8, out: &mut BytesMut) -> Result<(), RedirError> {
        let fields = [
            self.realm.as_bytes(),
            self.nonce.as_bytes(),
            self.qop.as_bytes(),
        ];
        encode_auth(
            AUTHENTICATE_SESSION_REPLY,
            status,
            AUTH_DIGEST,
            &fields,
            out,
        )
    }
}

// === digest authentication ===

/// The data of a digest AuthenticateSession (auth type 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestAuth<'a> {
    /// User name.
    pub user: &'a str,
    /// Realm from the challenge (empty before one).
    pub realm: &'a str,
    /// Nonce from the challenge (empty before one).
    pub nonce: &'a str,
    /// Digest URI, `/RedirectionService`.
    pub uri: &'a str,
    /// Client nonce.
    pub cnonce: &'a str,
    /// Nonce count, 8 hex digits.
    pub nc: &'a str,
    /// Response, 32 hex digits.
    pub response: &'a str,
    /// `auth`.
    pub qop: &'a str,
}

impl<'a> DigestAuth<'a> {
    /// Parses the data after the 9-byte header: eight short strings of printable ASCII,
    /// nothing after them.
    pub fn parse(data: &'a [u8]) -> Result<Self, RedirError> {
        let side = crate::Side::Browser;
        let mut r = Reader::new(data);
        let mut f = [""; 8];
        for slot in &mut f {
            let raw = r.short().ok_or(malformed(side, "truncated digest"))?;
            *slot = printable(raw).ok_or(malformed(side, "digest field is not printable ASCII"))?;
        }
        if !r.is_empty() {
            return Err(malformed(side, "trailing bytes after digest"));
        }
        let [user, realm, nonce, uri, cnonce, nc, response, qop] = f;
        Ok(Self {
            user,
            realm,
            nonce,
            uri,
            cnonce,
            nc,
            response,
            qop,
        })
    }

    /// Writes a whole AuthenticateSession with auth type 4.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), RedirError> {
        let fields = [
            self.user,
            self.realm,
            self.nonce,
            self.uri,
            self.cnonce,
            self.nc,
            self.response,
            self.qop,
        ]
        .map(str::as_bytes);
        encode_auth(AUTHENTICATE_SESSION, 0, AUTH_DIGEST, &fields, out)
    }
}

// === writing ===

/// Writes an AuthenticateSession(Reply) whose data is short strings.
fn encode_auth(
    command: u8,
    status: u8,
    auth_type: u8,
    fields: &[&[u8]],
    out: &mut BytesMut,
) -> Result<(), RedirError> {
    let mut data = BytesMut::new();
    for f in fields {
        let n = u8::try_from(f.len())
            .map_err(|_| malformed(crate::Side::Caller, "field longer than 255 bytes"))?;
        data.put_u8(n);
        data.put_slice(f);
    }
    encode_auth_raw(command, status, auth_type, &data, out);
    Ok(())
}

/// Writes an AuthenticateSession (`command` 0x13, `status` 0) or AuthenticateSessionReply
/// (`command` 0x14) with raw data.
pub fn encode_auth_raw(command: u8, status: u8, auth_type: u8, data: &[u8], out: &mut BytesMut) {
    out.reserve(AUTH_HEADER_LEN + data.len());
    out.put_slice(&[command, status, 0, 0, auth_type]);
    // Data longer than 4 GiB cannot be built in memory here; saturate rather than wrap.
    out.put_u32_le(u32::try_from(data.len()).unwrap_or(u32::MAX));
    out.put_slice(data);
}

/// Writes a StartRedirectionSessionReply without OEM data: protocol 1.0, the given firmware
/// version, Intel's IANA number.
pub fn encode_start_reply(status: u8, firmware: (u8, u8), out: &mut BytesMut) {
    out.put_slice(&[
        START_REDIRECTION_SESSION_REPLY,
        status,
        0,
        0,
        1,
        0,
        firmware.0,
        firmware.1,
    ]);
    out.put_u32_le(INTEL_IANA);
    out.put_u8(0);
}

/// Writes the empty digest AuthenticateSession a console sends before it has a challenge:
/// `user` and `uri` set, the six other strings empty (how MPS and MeshCentral ask AMT for one).
pub fn encode_empty_digest(user: &str, uri: &str, out: &mut BytesMut) -> Result<(), RedirError> {
    let e: &[u8] = b"";
    encode_auth(
        AUTHENTICATE_SESSION,
        0,
        AUTH_DIGEST,
        &[user.as_bytes(), e, e, uri.as_bytes(), e, e, e, e],
        out,
    )
}
