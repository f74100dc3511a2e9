//! The incremental head scanner shared by the request and response parsers.
//!
//! The scanner splits the buffer into lines as they complete and checks each one fully when its
//! LF arrives: limits first, then the line ending, then the grammar. Each byte is looked at a
//! bounded number of times however the input is split, because the scanner remembers the start
//! of the current line and how far it has searched for its LF.
//!
//! The result does not depend on how the input is split. Limits are also checked on the
//! incomplete last line, so they fire before the line ends; to give the same error as on whole
//! input, each limit is placed at the position of the first byte that breaks it (the line's
//! first byte for the field count, its `limit + 1`-th byte for a line length, byte `max_head`
//! for the head) and the earliest wins. A CR at the very end of the buffer is not counted yet:
//! it may be the first half of a CRLF.

use crate::Limits;
use crate::error::HeadError;
use crate::headers::{Header, Headers};
use crate::syntax::parse_field_line;

/// The grammar of the first line of a head.
pub(crate) trait StartLine: Sized {
    /// How many empty lines may precede it and are skipped.
    const LEADING_EMPTY_LINES: u8;
    /// The error when it is longer than `Limits::max_request_line`.
    const TOO_LONG: HeadError;
    /// Parses the line, CRLF removed and checked free of CR and LF.
    fn parse(line: &[u8]) -> Result<Self, HeadError>;
}

/// Incremental line scanner for one head at a time.
#[derive(Debug)]
pub(crate) struct Scanner<L> {
    limits: Limits,
    /// Start of the current (incomplete) line.
    pos: usize,
    /// How far the search for the current line's LF has got (`pos <= scan`).
    scan: usize,
    /// Empty lines skipped before the start line.
    empty_lines: u8,
    start: Option<L>,
    fields: Vec<Header>,
    failed: Option<HeadError>,
    /// Bytes examined since the last reset, to test that the scan is linear.
    #[cfg(test)]
    pub(crate) work: usize,
}

impl<L: StartLine> Scanner<L> {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            limits,
            pos: 0,
            scan: 0,
            empty_lines: 0,
            start: None,
            fields: Vec::new(),
            failed: None,
            #[cfg(test)]
            work: 0,
        }
    }

    /// Forgets the head in progress (and any error).
    pub(crate) fn reset(&mut self) {
        self.pos = 0;
        self.scan = 0;
        self.empty_lines = 0;
        self.start = None;
        self.fields.clear();
        self.failed = None;
        #[cfg(test)]
        {
            self.work = 0;
        }
    }

    /// Makes every later call return `e` until the next reset.
    pub(crate) fn fail(&mut self, e: HeadError) {
        self.failed = Some(e);
    }

    /// Scans `buf`, which must extend the buffer of the previous call. Returns the start line,
    /// the fields and the head's length once the empty line ending the head has arrived, and
    /// is then ready for the next head.
    pub(crate) fn scan(&mut self, buf: &[u8]) -> Result<Option<(L, Headers, usize)>, HeadError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if buf.len() < self.scan {
            // Not the grown buffer the contract asks for: start over rather than misread it.
            self.reset();
        }
        match self.advance(buf) {
            Ok(Some((start, end))) => {
                let fields = std::mem::take(&mut self.fields);
                self.reset();
                Ok(Some((start, Headers(fields), end)))
            }
            Ok(None) => Ok(None),
            Err(e) => {
                self.failed = Some(e);
                Err(e)
            }
        }
    }

    fn advance(&mut self, buf: &[u8]) -> Result<Option<(L, usize)>, HeadError> {
        loop {
            let rest = &buf[self.scan..];
            let Some(offset) = rest.iter().position(|&b| b == b'\n') else {
                #[cfg(test)]
                {
                    self.work += rest.len();
                }
                self.scan = buf.len();
                let mut known_end = buf.len();
                if known_end > self.pos && buf[known_end - 1] == b'\r' {
                    known_end -= 1;
                }
                self.check_limits(known_end - self.pos, known_end)?;
                return Ok(None);
            };
            let lf = self.scan + offset;
            #[cfg(test)]
            {
                self.work += offset + 1;
            }
            if let Some(start) = self.line(&buf[self.pos..lf], lf + 1)? {
                return Ok(Some((start, lf + 1)));
            }
            self.pos = lf + 1;
            self.scan = self.pos;
        }
    }

    /// One complete line (without its LF; `end` is the offset just past the LF). Returns the
    /// start line when this is the empty line that ends the head.
    fn line(&mut self, raw: &[u8], end: usize) -> Result<Option<L>, HeadError> {
        #[cfg(test)]
        {
            self.work += raw.len();
        }
        let (content, crlf) = match raw.split_last() {
            Some((&b'\r', content)) => (content, true),
            _ => (raw, false),
        };
        self.check_limits(content.len(), end)?;
        if !crlf {
            return Err(HeadError::BareLf);
        }
        if content.contains(&b'\r') {
            return Err(HeadError::BareCr);
        }
        if self.start.is_none() {
            if content.is_empty() && self.empty_lines < L::LEADING_EMPTY_LINES {
                self.empty_lines += 1;
            } else {
                self.start = Some(L::parse(content)?);
            }
            return Ok(None);
        }
        if content.is_empty() {
            return Ok(self.start.take());
        }
        self.fields.push(parse_field_line(content)?);
        Ok(None)
    }

    /// The limits, for the current line with `content_len` bytes known to be content and the
    /// first `known_end` bytes of the buffer known to be part of the head.
    fn check_limits(&self, content_len: usize, known_end: usize) -> Result<(), HeadError> {
        let mut first: Option<(usize, HeadError)> = None;
        let mut breach = |at: usize, e: HeadError| {
            if first.is_none_or(|(earliest, _)| at < earliest) {
                first = Some((at, e));
            }
        };
        let (limit, too_long) = if self.start.is_some() {
            if self.fields.len() >= self.limits.max_fields && content_len > 0 {
                breach(self.pos, HeadError::TooManyFields);
            }
            (self.limits.max_field_size, HeadError::FieldTooLong)
        } else {
            (self.limits.max_request_line, L::TOO_LONG)
        };
        if content_len > limit {
            breach(self.pos + limit, too_long);
        }
        if known_end > self.limits.max_head {
            breach(self.limits.max_head, HeadError::HeadTooLarge);
        }
        match first {
            Some((_, e)) => Err(e),
            None => Ok(()),
        }
    }
}
