//! The device side, for simulators and tests: decoding what a server sends.
//!
//! REQUEST_SUCCESS is the one message whose length the byte stream does not tell: it carries
//! the bound port (5 bytes) when it answers `tcpip-forward` and nothing (1 byte) when it
//! answers `cancel-tcpip-forward`. A server answers global requests in the order they were
//! sent (RFC 4254 §4), so [`ClientDecoder`] keeps a queue of the requests it has been told
//! about ([`ClientDecoder::sent`], or [`ClientDecoder::encode`] which does both) and decodes
//! each REQUEST_SUCCESS or REQUEST_FAILURE against the oldest one. A reply with no request
//! awaiting one is [`DecodeError::UnexpectedReply`].

use std::collections::VecDeque;

use bytes::BytesMut;

use crate::decode::{Dir, decode_dir};
use crate::{DecodeError, GlobalKind, Limits, Message};

/// Decodes server-to-device messages. Device-to-server types (SERVICE_REQUEST,
/// USERAUTH_REQUEST, GLOBAL_REQUEST, PROTOCOLVERSION, KEEPALIVE_OPTIONS_REPLY) are refused with
/// [`DecodeError::WrongDirection`]. Streaming rules as for [`crate::decode`].
#[derive(Debug, Clone)]
pub struct ClientDecoder {
    limits: Limits,
    /// For each global request sent with `want_reply`, oldest first: whether its
    /// REQUEST_SUCCESS carries a port.
    replies: VecDeque<bool>,
}

impl ClientDecoder {
    /// A decoder with these limits and no request awaiting a reply.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            replies: VecDeque::new(),
        }
    }

    /// Records that `msg` was sent to the server. Only a GLOBAL_REQUEST with `want_reply`
    /// matters: its REQUEST_SUCCESS carries a port for `tcpip-forward`, none otherwise.
    pub fn sent(&mut self, msg: &Message) {
        if let Message::GlobalRequest {
            want_reply: true,
            kind,
        } = msg
        {
            self.replies
                .push_back(matches!(kind, GlobalKind::TcpipForward { .. }));
        }
    }

    /// Encodes `msg` into `dst` and records it ([`Self::sent`]).
    pub fn encode(&mut self, msg: &Message, dst: &mut BytesMut) {
        crate::encode(msg, dst);
        self.sent(msg);
    }

    /// How many global requests still await REQUEST_SUCCESS or REQUEST_FAILURE.
    pub fn pending_replies(&self) -> usize {
        self.replies.len()
    }

    /// Takes one server-to-device message off the front of `buf`; `Ok(None)` when incomplete.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, DecodeError> {
        let reply = self.replies.front().copied();
        let msg = decode_dir(buf, &self.limits, Dir::FromServer { reply })?;
        if let Some(Message::RequestSuccess { .. } | Message::RequestFailure) = msg {
            self.replies.pop_front();
        }
        Ok(msg)
    }
}
