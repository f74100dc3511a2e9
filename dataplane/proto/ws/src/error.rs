//! The decoder's error type (house style rule 14: one enum per layer, static context only,
//! never text taken from peer data).

/// Why the byte stream is not an acceptable WebSocket frame sequence. The connection must be
/// closed: send a Close frame with [`Self::close_code`] first (§7.1.7), then drop it. Once the
/// decoder returns an error it returns the same error on every later call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WsError {
    /// RSV1, RSV2 or RSV3 is set, but no extension was negotiated (§5.2).
    #[error("reserved frame bits set without a negotiated extension")]
    ReservedBits,
    /// The opcode is one of the reserved values 0x3-0x7 or 0xB-0xF (§5.2).
    #[error("reserved opcode {0:#x}")]
    UnknownOpcode(u8),
    /// A client frame is not masked, and the decoder requires masking (§5.1).
    #[error("unmasked client frame")]
    UnmaskedFrame,
    /// A control frame has FIN clear: control frames cannot be fragmented (§5.5).
    #[error("fragmented control frame")]
    FragmentedControl,
    /// A control frame announces a payload over 125 bytes (§5.5).
    #[error("control frame payload over 125 bytes")]
    ControlTooLong,
    /// A 64-bit payload length has its most significant bit set (§5.2).
    #[error("64-bit payload length with the most significant bit set")]
    LengthOverflow,
    /// A payload length is not in its minimal encoding, e.g. the 16-bit form for a length
    /// under 126 (§5.2: "the minimal number of bytes MUST be used").
    #[error("payload length not minimally encoded")]
    NonMinimalLength,
    /// A Continuation frame arrived with no fragmented message in progress (§5.4).
    #[error("continuation frame without a message in progress")]
    UnexpectedContinuation,
    /// A Text or Binary frame arrived while a fragmented message is still in progress (§5.4).
    #[error("new data message while a fragmented message is in progress")]
    InterleavedMessage,
    /// A data frame announces a payload over the caller's limit; detected from the header,
    /// before any payload is read (close status 1009, §7.4.1).
    #[error("frame payload of {len} bytes exceeds the maximum of {max}")]
    FrameTooBig {
        /// The payload length the header announces.
        len: u64,
        /// The caller's limit ([`crate::DecoderLimits::max_frame`]).
        max: u64,
    },
    /// A Close frame has a 1-byte payload: a status code needs 2 (§5.5.1).
    #[error("close frame with a 1-byte payload")]
    CloseLengthOne,
    /// A Close frame carries a status code that may not be sent (§7.4), see
    /// [`crate::is_valid_close_code`].
    #[error("invalid close status code {0}")]
    InvalidCloseCode(u16),
    /// A Close frame's reason is not valid UTF-8 (close status 1007, §5.5.1, §8.1).
    #[error("close reason is not valid UTF-8")]
    InvalidCloseReason,
}

impl WsError {
    /// The close status to send for this error (§7.4.1): 1002 protocol error, 1007 invalid
    /// payload data (a close reason that is not UTF-8), 1009 message too big.
    pub fn close_code(&self) -> u16 {
        match self {
            Self::FrameTooBig { .. } => 1009,
            Self::InvalidCloseReason => 1007,
            Self::ReservedBits
            | Self::UnknownOpcode(_)
            | Self::UnmaskedFrame
            | Self::FragmentedControl
            | Self::ControlTooLong
            | Self::LengthOverflow
            | Self::NonMinimalLength
            | Self::UnexpectedContinuation
            | Self::InterleavedMessage
            | Self::CloseLengthOne
            | Self::InvalidCloseCode(_) => 1002,
        }
    }

    /// A stable snake_case label for counters and logs; one per variant.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::ReservedBits => "reserved_bits",
            Self::UnknownOpcode(_) => "unknown_opcode",
            Self::UnmaskedFrame => "unmasked_frame",
            Self::FragmentedControl => "fragmented_control",
            Self::ControlTooLong => "control_too_long",
            Self::LengthOverflow => "length_overflow",
            Self::NonMinimalLength => "non_minimal_length",
            Self::UnexpectedContinuation => "unexpected_continuation",
            Self::InterleavedMessage => "interleaved_message",
            Self::FrameTooBig { .. } => "frame_too_big",
            Self::CloseLengthOne => "close_length_one",
            Self::InvalidCloseCode(_) => "invalid_close_code",
            Self::InvalidCloseReason => "invalid_close_reason",
        }
    }
}
