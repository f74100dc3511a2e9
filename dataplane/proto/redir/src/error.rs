//! The interceptor's error type (house style rule 14: one enum per layer, static context only,
//! never text taken from peer data).

/// Who caused an error: the relay closes both sides either way, but the counters differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The browser (WebSocket client).
    Browser,
    /// The AMT device.
    Device,
    /// The code driving the interceptor (a call out of order, a bad digest response).
    Caller,
}

impl Side {
    /// A stable label for counters and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Browser => "browser",
            Self::Device => "device",
            Self::Caller => "caller",
        }
    }
}

/// Why the relay must close. Once an [`crate::Interceptor`] has returned an error it returns
/// the same error from every later call; output appended during the failing call may be
/// partial and must not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedirError {
    /// A message that side may not send now (or an unknown command byte), by command byte.
    #[error("unexpected message {kind:#04x} from the {}", side.as_str())]
    UnexpectedMessage {
        /// Who sent it.
        side: Side,
        /// The command byte.
        kind: u8,
    },
    /// A message is malformed.
    #[error("malformed message from the {}: {context}", side.as_str())]
    Malformed {
        /// Who sent it.
        side: Side,
        /// What is wrong.
        context: &'static str,
    },
    /// The handshake from that side exceeds [`crate::Limits::max_handshake`] (detected from a
    /// length field before the bytes arrive).
    #[error("handshake from the {} exceeds the limit", side.as_str())]
    HandshakeTooLarge {
        /// Who sent it.
        side: Side,
    },
    /// A realm, nonce or qop in the device's challenge is longer than
    /// [`crate::Limits::max_field`].
    #[error("challenge field exceeds the limit")]
    FieldTooLong,
    /// The browser sent more than [`crate::Limits::max_held`] bytes while the interceptor was
    /// waiting for the device or the caller.
    #[error("too many browser bytes held during the handshake")]
    HeldTooLarge,
    /// StartRedirectionSession names a session type other than SOL, IDER and KVM.
    #[error("unknown redirection session type")]
    UnknownSessionType,
    /// The browser asked for an auth type other than query (0) and digest (4).
    #[error("unsupported authentication type {0}")]
    UnsupportedAuthType(u8),
    /// The browser asked for more digest attempts than [`crate::Limits::max_auth_attempts`].
    #[error("too many authentication attempts")]
    TooManyAuthAttempts,
    /// The browser sent data after EndRedirectionSession, or after the device refused the
    /// session.
    #[error("the redirection session has ended")]
    Closed,
    /// [`crate::Interceptor::digest_response`] without a pending [`crate::Event::NeedDigest`].
    #[error("no digest response is pending")]
    NoDigestPending,
    /// The digest response is not 32 hexadecimal digits.
    #[error("digest response is not 32 hex digits")]
    InvalidDigestResponse,
}

impl RedirError {
    /// Who caused it.
    pub fn side(&self) -> Side {
        match self {
            Self::UnexpectedMessage { side, .. }
            | Self::Malformed { side, .. }
            | Self::HandshakeTooLarge { side } => *side,
            Self::FieldTooLong => Side::Device,
            Self::HeldTooLarge
            | Self::UnknownSessionType
            | Self::UnsupportedAuthType(_)
            | Self::TooManyAuthAttempts
            | Self::Closed => Side::Browser,
            Self::NoDigestPending | Self::InvalidDigestResponse => Side::Caller,
        }
    }

    /// A stable snake_case label for counters and logs; one per variant.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UnexpectedMessage { .. } => "unexpected_message",
            Self::Malformed { .. } => "malformed",
            Self::HandshakeTooLarge { .. } => "handshake_too_large",
            Self::FieldTooLong => "field_too_long",
            Self::HeldTooLarge => "held_too_large",
            Self::UnknownSessionType => "unknown_session_type",
            Self::UnsupportedAuthType(_) => "unsupported_auth_type",
            Self::TooManyAuthAttempts => "too_many_auth_attempts",
            Self::Closed => "closed",
            Self::NoDigestPending => "no_digest_pending",
            Self::InvalidDigestResponse => "invalid_digest_response",
        }
    }
}
