//! The streaming decoder. APF messages have no length header, so the decoder walks the fields
//! of one message with a bounds-checked cursor over the read buffer: running out of bytes means
//! "incomplete" and nothing is consumed; a length field is checked against the limits as soon as
//! it has arrived. The walk is sequential and looks at nothing beyond the current message, so
//! the outcome never depends on how the stream was split.

use std::ops::Range;

use bytes::{Buf, BytesMut};

use crate::message::{Sender, sender_of};
use crate::{AuthMethod, DecodeError, GlobalKind, Guid, Limits, Message, msg, names};

/// Takes one device-to-server message off the front of `buf` (the server side).
///
/// Returns `Ok(None)` when `buf` holds only part of a message (nothing is consumed), and never
/// an error for input that is merely incomplete. On success exactly that message's bytes are
/// taken from the front of `buf`; a CHANNEL_DATA payload is split off the buffer and frozen,
/// not copied. Length fields are checked against `limits` before the bytes they announce are
/// waited for.
///
/// Types that only a server sends (SERVICE_ACCEPT, USERAUTH_FAILURE/SUCCESS, REQUEST_SUCCESS,
/// REQUEST_FAILURE, KEEPALIVE_OPTIONS_REQUEST) are refused with
/// [`DecodeError::WrongDirection`]. That also settles REQUEST_SUCCESS, whose length (1 or 5
/// bytes) depends on the request it answers; [`crate::client::ClientDecoder`] decodes it with
/// that context.
pub fn decode(buf: &mut BytesMut, limits: &Limits) -> Result<Option<Message>, DecodeError> {
    decode_dir(buf, limits, Dir::FromDevice)
}

/// Which direction is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    /// Device to server: the server's decoder.
    FromDevice,
    /// Server to device: the client's decoder. `reply` is what the oldest unanswered global
    /// request with `want_reply` expects: `Some(true)` when a REQUEST_SUCCESS carries a port
    /// (tcpip-forward), `Some(false)` when it does not, `None` when no request is pending.
    FromServer { reply: Option<bool> },
}

/// Decodes one message in direction `dir`; see [`decode`].
pub(crate) fn decode_dir(
    buf: &mut BytesMut,
    limits: &Limits,
    dir: Dir,
) -> Result<Option<Message>, DecodeError> {
    let Parsed { mut msg, len, data } = match parse(buf, limits, dir) {
        Ok(p) => p,
        Err(Stop::Incomplete) => return Ok(None),
        Err(Stop::Error(e)) => return Err(e),
    };
    match data {
        None => buf.advance(len),
        Some(range) => {
            let frame = buf.split_to(len).freeze();
            if let Message::ChannelData { data, .. }
            | Message::GlobalRequest {
                kind: GlobalKind::UdpSendTo { data, .. },
                ..
            } = &mut msg
            {
                *data = frame.slice(range);
            }
        }
    }
    Ok(Some(msg))
}

/// Why parsing stopped.
enum Stop {
    /// The buffer ends inside the message.
    Incomplete,
    /// The message is not acceptable.
    Error(DecodeError),
}

impl From<DecodeError> for Stop {
    fn from(e: DecodeError) -> Self {
        Self::Error(e)
    }
}

/// A parsed message, its encoded length and where its one byte payload (if any) lies.
struct Parsed {
    /// The message, with an empty placeholder where `data` goes.
    msg: Message,
    /// Encoded length, type byte included.
    len: usize,
    /// The range of the CHANNEL_DATA payload or udp-send-to datagram.
    data: Option<Range<usize>>,
}

/// A bounds-checked cursor (house style rule 9).
struct Reader<'a> {
    src: &'a [u8],
    pos: usize,
    limits: &'a Limits,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Stop> {
        let end = self.pos.checked_add(n).ok_or(Stop::Incomplete)?;
        let s = self.src.get(self.pos..end).ok_or(Stop::Incomplete)?;
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Stop> {
        let s = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, Stop> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32, Stop> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn bool(&mut self) -> Result<bool, Stop> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(DecodeError::InvalidBool(b).into()),
        }
    }

    /// A string's raw bytes, its length checked against `max_string` first.
    fn bytes(&mut self) -> Result<&'a [u8], Stop> {
        let len = self.u32()?;
        let n = usize::try_from(len).unwrap_or(usize::MAX);
        if n > self.limits.max_string {
            return Err(DecodeError::StringTooLong {
                len,
                max: self.limits.max_string,
            }
            .into());
        }
        self.take(n)
    }

    /// A UTF-8 string.
    fn string(&mut self) -> Result<String, Stop> {
        utf8(self.bytes()?)
    }

    /// A length-prefixed payload, its length checked against `max_data` first; returns where it
    /// lies in the message.
    fn data(&mut self) -> Result<Range<usize>, Stop> {
        let len = self.u32()?;
        let n = usize::try_from(len).unwrap_or(usize::MAX);
        if n > self.limits.max_data {
            return Err(DecodeError::DataTooLong {
                len,
                max: self.limits.max_data,
            }
            .into());
        }
        let start = self.pos;
        self.take(n)?;
        Ok(start..self.pos)
    }
}

fn utf8(b: &[u8]) -> Result<String, Stop> {
    match std::str::from_utf8(b) {
        Ok(s) => Ok(s.to_owned()),
        Err(_) => Err(DecodeError::InvalidUtf8.into()),
    }
}

/// Parses the message at the front of `src`.
fn parse(src: &[u8], limits: &Limits, dir: Dir) -> Result<Parsed, Stop> {
    let mut r = Reader {
        src,
        pos: 0,
        limits,
    };
    let ty = r.u8()?;
    let sender = sender_of(ty).ok_or(DecodeError::UnknownType(ty))?;
    let wrong = match dir {
        Dir::FromDevice => sender == Sender::Server,
        Dir::FromServer { .. } => sender == Sender::Device,
    };
    if wrong {
        return Err(DecodeError::WrongDirection(ty).into());
    }
    let mut data = None;
    let msg = match ty {
        msg::DISCONNECT => {
            let reason = r.u32()?;
            r.take(2)?;
            Message::Disconnect { reason }
        }
        msg::SERVICE_REQUEST => Message::ServiceRequest {
            service: r.string()?,
        },
        msg::SERVICE_ACCEPT => Message::ServiceAccept {
            service: r.string()?,
        },
        msg::USERAUTH_REQUEST => {
            let username = r.string()?;
            let service = r.string()?;
            let method = match r.bytes()? {
                b"password" => {
                    let flag = r.u8()?;
                    if flag != 0 {
                        return Err(DecodeError::PasswordFlag(flag).into());
                    }
                    AuthMethod::Password(r.bytes()?.to_vec())
                }
                b"none" => AuthMethod::None,
                other => AuthMethod::Other(utf8(other)?),
            };
            Message::UserAuthRequest {
                username,
                service,
                method,
            }
        }
        msg::USERAUTH_FAILURE => Message::UserAuthFailure {
            methods: r.string()?,
            partial: r.bool()?,
        },
        msg::USERAUTH_SUCCESS => Message::UserAuthSuccess,
        msg::GLOBAL_REQUEST => {
            let name = r.bytes()?;
            let (forward, cancel) = match name {
                n if n == names::TCPIP_FORWARD.as_bytes() => (true, false),
                n if n == names::CANCEL_TCPIP_FORWARD.as_bytes() => (false, true),
                n if n == names::UDP_SEND_TO.as_bytes() => (false, false),
                _ => return Err(DecodeError::UnknownGlobalRequest.into()),
            };
            let want_reply = r.bool()?;
            let address = r.string()?;
            let port = r.u32()?;
            let kind = if forward {
                GlobalKind::TcpipForward { address, port }
            } else if cancel {
                GlobalKind::CancelTcpipForward { address, port }
            } else {
                let originator = r.string()?;
                let originator_port = r.u32()?;
                data = Some(r.data()?);
                GlobalKind::UdpSendTo {
                    address,
                    port,
                    originator,
                    originator_port,
                    data: bytes::Bytes::new(),
                }
            };
            Message::GlobalRequest { want_reply, kind }
        }
        msg::REQUEST_SUCCESS => match dir {
            Dir::FromServer { reply: Some(true) } => Message::RequestSuccess {
                port: Some(r.u32()?),
            },
            Dir::FromServer { reply: Some(false) } => Message::RequestSuccess { port: None },
            Dir::FromServer { reply: None } | Dir::FromDevice => {
                return Err(DecodeError::UnexpectedReply.into());
            }
        },
        msg::REQUEST_FAILURE => match dir {
            Dir::FromServer { reply: Some(_) } => Message::RequestFailure,
            Dir::FromServer { reply: None } | Dir::FromDevice => {
                return Err(DecodeError::UnexpectedReply.into());
            }
        },
        msg::CHANNEL_OPEN => {
            let kind = r.string()?;
            let sender = r.u32()?;
            let window = r.u32()?;
            let _reserved = r.u32()?;
            let connected_address = r.string()?;
            let connected_port = r.u32()?;
            let originator_address = r.string()?;
            let originator_port = r.u32()?;
            Message::ChannelOpen {
                kind,
                sender,
                window,
                connected_address,
                connected_port,
                originator_address,
                originator_port,
            }
        }
        msg::CHANNEL_OPEN_CONFIRMATION => {
            let recipient = r.u32()?;
            let sender = r.u32()?;
            let window = r.u32()?;
            let _reserved = r.u32()?;
            Message::ChannelOpenConfirmation {
                recipient,
                sender,
                window,
            }
        }
        msg::CHANNEL_OPEN_FAILURE => {
            let recipient = r.u32()?;
            let reason = r.u32()?;
            r.take(8)?;
            Message::ChannelOpenFailure { recipient, reason }
        }
        msg::CHANNEL_WINDOW_ADJUST => Message::WindowAdjust {
            recipient: r.u32()?,
            bytes: r.u32()?,
        },
        msg::CHANNEL_DATA => {
            let recipient = r.u32()?;
            data = Some(r.data()?);
            Message::ChannelData {
                recipient,
                data: bytes::Bytes::new(),
            }
        }
        msg::CHANNEL_CLOSE => Message::ChannelClose {
            recipient: r.u32()?,
        },
        msg::PROTOCOL_VERSION => {
            let major = r.u32()?;
            let minor = r.u32()?;
            let trigger = r.u32()?;
            let guid = Guid::from_wire(r.array()?);
            r.take(64)?;
            Message::ProtocolVersion {
                major,
                minor,
                trigger,
                guid,
            }
        }
        msg::KEEPALIVE_REQUEST => Message::KeepaliveRequest { cookie: r.u32()? },
        msg::KEEPALIVE_REPLY => Message::KeepaliveReply { cookie: r.u32()? },
        msg::KEEPALIVE_OPTIONS_REQUEST => Message::KeepaliveOptionsRequest {
            interval: r.u32()?,
            timeout: r.u32()?,
        },
        msg::KEEPALIVE_OPTIONS_REPLY => Message::KeepaliveOptionsReply {
            interval: r.u32()?,
            timeout: r.u32()?,
        },
        _ => return Err(DecodeError::UnknownType(ty).into()),
    };
    Ok(Parsed {
        msg,
        len: r.pos,
        data,
    })
}
