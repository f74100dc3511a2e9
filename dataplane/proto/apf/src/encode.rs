//! The encoder: any message, either direction.

use bytes::{BufMut, BytesMut};

use crate::{AuthMethod, GlobalKind, Message, msg, names};

/// Appends `msg` to `dst`.
///
/// USERAUTH_FAILURE is written in the 14-byte SSH/LMS form (`s(methods)`, `bool partial`);
/// REQUEST_SUCCESS is 5 bytes with a port and 1 byte without. Reserved fields get the
/// reference values: DISCONNECT `u16 0`, CHANNEL_OPEN and CHANNEL_OPEN_CONFIRMATION
/// `0xFFFFFFFF`, CHANNEL_OPEN_FAILURE two zero words, PROTOCOLVERSION 64 zero bytes.
///
/// # Panics
///
/// If a string or payload is longer than `u32::MAX` bytes (it cannot be framed). The encoder
/// does not apply [`crate::Limits`]: what we send is ours to size.
pub fn encode(msg: &Message, dst: &mut BytesMut) {
    dst.put_u8(msg.message_type());
    match msg {
        Message::Disconnect { reason } => {
            dst.put_u32(*reason);
            dst.put_u16(0);
        }
        Message::ServiceRequest { service } | Message::ServiceAccept { service } => {
            put_str(dst, service.as_bytes());
        }
        Message::UserAuthRequest {
            username,
            service,
            method,
        } => {
            put_str(dst, username.as_bytes());
            put_str(dst, service.as_bytes());
            match method {
                AuthMethod::Password(password) => {
                    put_str(dst, names::METHOD_PASSWORD.as_bytes());
                    dst.put_u8(0);
                    put_str(dst, password);
                }
                AuthMethod::None => put_str(dst, names::METHOD_NONE.as_bytes()),
                AuthMethod::Other(name) => put_str(dst, name.as_bytes()),
            }
        }
        Message::UserAuthFailure { methods, partial } => {
            put_str(dst, methods.as_bytes());
            dst.put_u8(u8::from(*partial));
        }
        Message::UserAuthSuccess | Message::RequestFailure => {}
        Message::GlobalRequest { want_reply, kind } => {
            let name = match kind {
                GlobalKind::TcpipForward { .. } => names::TCPIP_FORWARD,
                GlobalKind::CancelTcpipForward { .. } => names::CANCEL_TCPIP_FORWARD,
                GlobalKind::UdpSendTo { .. } => names::UDP_SEND_TO,
            };
            put_str(dst, name.as_bytes());
            dst.put_u8(u8::from(*want_reply));
            match kind {
                GlobalKind::TcpipForward { address, port }
                | GlobalKind::CancelTcpipForward { address, port } => {
                    put_str(dst, address.as_bytes());
                    dst.put_u32(*port);
                }
                GlobalKind::UdpSendTo {
                    address,
                    port,
                    originator,
                    originator_port,
                    data,
                } => {
                    put_str(dst, address.as_bytes());
                    dst.put_u32(*port);
                    put_str(dst, originator.as_bytes());
                    dst.put_u32(*originator_port);
                    put_str(dst, data);
                }
            }
        }
        Message::RequestSuccess { port } => {
            if let Some(port) = port {
                dst.put_u32(*port);
            }
        }
        Message::ChannelOpen {
            kind,
            sender,
            window,
            connected_address,
            connected_port,
            originator_address,
            originator_port,
        } => {
            put_str(dst, kind.as_bytes());
            dst.put_u32(*sender);
            dst.put_u32(*window);
            dst.put_u32(u32::MAX);
            put_str(dst, connected_address.as_bytes());
            dst.put_u32(*connected_port);
            put_str(dst, originator_address.as_bytes());
            dst.put_u32(*originator_port);
        }
        Message::ChannelOpenConfirmation {
            recipient,
            sender,
            window,
        } => {
            dst.put_u32(*recipient);
            dst.put_u32(*sender);
            dst.put_u32(*window);
            dst.put_u32(u32::MAX);
        }
        Message::ChannelOpenFailure { recipient, reason } => {
            dst.put_u32(*recipient);
            dst.put_u32(*reason);
            dst.put_u32(0);
            dst.put_u32(0);
        }
        Message::WindowAdjust { recipient, bytes } => {
            dst.put_u32(*recipient);
            dst.put_u32(*bytes);
        }
        Message::ChannelData { recipient, data } => {
            dst.put_u32(*recipient);
            put_str(dst, data);
        }
        Message::ChannelClose { recipient } => dst.put_u32(*recipient),
        Message::ProtocolVersion {
            major,
            minor,
            trigger,
            guid,
        } => {
            dst.put_u32(*major);
            dst.put_u32(*minor);
            dst.put_u32(*trigger);
            dst.put_slice(&guid.to_wire());
            dst.put_bytes(0, 64);
        }
        Message::KeepaliveRequest { cookie } | Message::KeepaliveReply { cookie } => {
            dst.put_u32(*cookie);
        }
        Message::KeepaliveOptionsRequest { interval, timeout }
        | Message::KeepaliveOptionsReply { interval, timeout } => {
            dst.put_u32(*interval);
            dst.put_u32(*timeout);
        }
    }
}

/// Appends a CHANNEL_DATA message for `data` without building a [`Message`].
pub(crate) fn encode_channel_data(recipient: u32, data: &[u8], dst: &mut BytesMut) {
    dst.reserve(9 + data.len());
    dst.put_u8(msg::CHANNEL_DATA);
    dst.put_u32(recipient);
    put_str(dst, data);
}

/// A `u32` length and the bytes.
fn put_str(dst: &mut BytesMut, b: &[u8]) {
    let len = u32::try_from(b.len()).expect("APF string or payload longer than u32::MAX bytes");
    dst.put_u32(len);
    dst.put_slice(b);
}
