//! The decoder's error type (house style rule 14: one enum per layer, static context only,
//! never text taken from peer data).

/// Why the byte stream is not an acceptable APF message sequence. The connection must be
/// closed (the session sends DISCONNECT(PROTOCOL_ERROR) first). Merely incomplete input is never
/// an error. The read buffer is left as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The type byte is not an APF message type.
    #[error("unknown message type {0}")]
    UnknownType(u8),
    /// A known message type that only the other side sends: a server-to-device type on the
    /// server, or a device-to-server type on the client.
    #[error("message type {0} is not sent in this direction")]
    WrongDirection(u8),
    /// A string's length field exceeds [`crate::Limits::max_string`]; detected from the length
    /// field, before the string arrives.
    #[error("string of {len} bytes exceeds the maximum of {max}")]
    StringTooLong {
        /// The announced length.
        len: u32,
        /// The limit.
        max: usize,
    },
    /// A CHANNEL_DATA payload or udp-send-to datagram exceeds [`crate::Limits::max_data`];
    /// detected from the length field, before the payload arrives.
    #[error("data of {len} bytes exceeds the maximum of {max}")]
    DataTooLong {
        /// The announced length.
        len: u32,
        /// The limit.
        max: usize,
    },
    /// A name, user name or address string is not valid UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// A GLOBAL_REQUEST name other than `tcpip-forward`, `cancel-tcpip-forward` and
    /// `udp-send-to@amt.intel.com`: its fields cannot be framed.
    #[error("unknown global request name")]
    UnknownGlobalRequest,
    /// A boolean byte other than 0 or 1.
    #[error("boolean byte {0} is neither 0 nor 1")]
    InvalidBool(u8),
    /// The FALSE byte after the `password` method name is not 0 (a password change request,
    /// which APF does not have).
    #[error("password method flag {0} is not 0")]
    PasswordFlag(u8),
    /// Client side: REQUEST_SUCCESS or REQUEST_FAILURE with no global request awaiting a reply.
    #[error("global request reply without a pending request")]
    UnexpectedReply,
}

impl DecodeError {
    /// A stable snake_case label for counters and logs; one per variant.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::UnknownType(_) => "unknown_type",
            Self::WrongDirection(_) => "wrong_direction",
            Self::StringTooLong { .. } => "string_too_long",
            Self::DataTooLong { .. } => "data_too_long",
            Self::InvalidUtf8 => "invalid_utf8",
            Self::UnknownGlobalRequest => "unknown_global_request",
            Self::InvalidBool(_) => "invalid_bool",
            Self::PasswordFlag(_) => "password_flag",
            Self::UnexpectedReply => "unexpected_reply",
        }
    }
}
