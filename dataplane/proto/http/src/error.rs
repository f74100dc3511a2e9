//! The head and body error types (static context only, never text taken from peer data).

/// Why a request or response head was rejected. The connection cannot be trusted to stay in
/// step after any of these: answer with [`Self::status`] (for a request) and close it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum HeadError {
    /// The request line, without its CRLF, is longer than `Limits::max_request_line` (414).
    #[error("request line too long")]
    RequestLineTooLong,
    /// The response status line, without its CRLF, is longer than `Limits::max_request_line`.
    #[error("status line too long")]
    StatusLineTooLong,
    /// A field line, without its CRLF, is longer than `Limits::max_field_size`.
    #[error("header field line too long")]
    FieldTooLong,
    /// The head has more than `Limits::max_fields` fields.
    #[error("too many header fields")]
    TooManyFields,
    /// The head is longer than `Limits::max_head`.
    #[error("message head too large")]
    HeadTooLarge,
    /// The request line is not `method SP target SP version` with single spaces, or there are
    /// more empty lines before it than are ignored.
    #[error("malformed request line")]
    BadRequestLine,
    /// The method is not a token.
    #[error("malformed method")]
    BadMethod,
    /// The request target holds a byte outside visible ASCII or a `#`, or is not a request
    /// target form allowed for the method.
    #[error("malformed request target")]
    BadTarget,
    /// The version is not of the form `HTTP/DIGIT.DIGIT`.
    #[error("malformed HTTP version")]
    BadVersion,
    /// A well-formed HTTP version other than 1.0 and 1.1 (505).
    #[error("unsupported HTTP version")]
    UnsupportedVersion,
    /// A field name is empty or not a token, or a field line has no colon.
    #[error("malformed header field name")]
    BadFieldName,
    /// A field value holds a control character other than horizontal tab.
    #[error("malformed header field value")]
    BadFieldValue,
    /// A field line starts with whitespace (obsolete line folding, RFC 9112 §5.2).
    #[error("obsolete line folding")]
    ObsFold,
    /// A CR not followed by LF.
    #[error("bare CR in message head")]
    BareCr,
    /// A LF not preceded by CR.
    #[error("bare LF in message head")]
    BareLf,
    /// Whitespace between a field name and its colon (RFC 9112 §5.1).
    #[error("whitespace before colon in header field")]
    WhitespaceBeforeColon,
    /// A Content-Length value is not a plain decimal number of at most 19 digits.
    #[error("malformed Content-Length")]
    BadContentLength,
    /// Content-Length values that disagree.
    #[error("conflicting Content-Length values")]
    ConflictingContentLength,
    /// Both Transfer-Encoding and Content-Length.
    #[error("Transfer-Encoding together with Content-Length")]
    TeAndContentLength,
    /// A Transfer-Encoding that is empty, malformed, in an HTTP/1.0 message, names `chunked`
    /// more than once, with parameters, or not last.
    #[error("malformed Transfer-Encoding")]
    BadTransferEncoding,
    /// A transfer coding other than `chunked` (501).
    #[error("unsupported transfer coding")]
    UnsupportedTransferCoding,
    /// An HTTP/1.1 request without a Host field.
    #[error("missing Host")]
    MissingHost,
    /// A request with more than one Host field.
    #[error("more than one Host")]
    MultipleHost,
    /// A Host value with a byte no `uri-host [ ":" port ]` can hold.
    #[error("malformed Host")]
    BadHost,
    /// The response status line is not `HTTP-version SP 3DIGIT SP reason`, or the status code
    /// is outside 100..=599.
    #[error("malformed status line")]
    BadStatusLine,
}

impl HeadError {
    /// The status code to answer a request with: 414, 501, 505, or 400 for everything else.
    pub fn status(&self) -> u16 {
        match self {
            Self::RequestLineTooLong => 414,
            Self::UnsupportedTransferCoding => 501,
            Self::UnsupportedVersion => 505,
            _ => 400,
        }
    }

    /// A stable snake-case label for counters and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::RequestLineTooLong => "request_line_too_long",
            Self::StatusLineTooLong => "status_line_too_long",
            Self::FieldTooLong => "field_too_long",
            Self::TooManyFields => "too_many_fields",
            Self::HeadTooLarge => "head_too_large",
            Self::BadRequestLine => "bad_request_line",
            Self::BadMethod => "bad_method",
            Self::BadTarget => "bad_target",
            Self::BadVersion => "bad_version",
            Self::UnsupportedVersion => "unsupported_version",
            Self::BadFieldName => "bad_field_name",
            Self::BadFieldValue => "bad_field_value",
            Self::ObsFold => "obs_fold",
            Self::BareCr => "bare_cr",
            Self::BareLf => "bare_lf",
            Self::WhitespaceBeforeColon => "whitespace_before_colon",
            Self::BadContentLength => "bad_content_length",
            Self::ConflictingContentLength => "conflicting_content_length",
            Self::TeAndContentLength => "te_and_content_length",
            Self::BadTransferEncoding => "bad_transfer_encoding",
            Self::UnsupportedTransferCoding => "unsupported_transfer_coding",
            Self::MissingHost => "missing_host",
            Self::MultipleHost => "multiple_host",
            Self::BadHost => "bad_host",
            Self::BadStatusLine => "bad_status_line",
        }
    }
}

/// Why a message body could not be decoded. All of them are 400 for a request body; the
/// connection must be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// A chunk size that is empty, not hexadecimal, longer than 16 digits, or followed by
    /// anything but an extension or CRLF.
    #[error("malformed chunk size")]
    BadChunkSize,
    /// A chunk-size line, extensions included, longer than `BodyLimits::max_chunk_line`.
    #[error("chunk size line too long")]
    ChunkLineTooLong,
    /// A chunk extension holding a control character.
    #[error("malformed chunk extension")]
    BadChunkExtension,
    /// Chunk data not followed by CRLF.
    #[error("missing CRLF after chunk data")]
    MissingChunkCrlf,
    /// A LF not preceded by CR in the chunked framing.
    #[error("bare LF in chunked body")]
    BareLf,
    /// A CR not followed by LF in the chunked framing.
    #[error("bare CR in chunked body")]
    BareCr,
    /// The trailer section is larger than `BodyLimits::max_trailers`.
    #[error("trailer section too large")]
    TrailerTooLarge,
    /// A trailer field line that is not a valid field line.
    #[error("malformed trailer field")]
    BadTrailer,
    /// The connection closed before the body was complete.
    #[error("body truncated")]
    Truncated,
}

impl BodyError {
    /// The status code to answer a request with: always 400.
    pub fn status(&self) -> u16 {
        400
    }

    /// A stable snake-case label for counters and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::BadChunkSize => "bad_chunk_size",
            Self::ChunkLineTooLong => "chunk_line_too_long",
            Self::BadChunkExtension => "bad_chunk_extension",
            Self::MissingChunkCrlf => "missing_chunk_crlf",
            Self::BareLf => "bare_lf",
            Self::BareCr => "bare_cr",
            Self::TrailerTooLarge => "trailer_too_large",
            Self::BadTrailer => "bad_trailer",
            Self::Truncated => "truncated",
        }
    }
}
