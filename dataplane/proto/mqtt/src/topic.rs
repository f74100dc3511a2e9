//! Topic names, topic filters and matching (MQTT 5.0 §4.7, §4.8.2; 3.1.1 §4.7).
//!
//! Both newtypes enforce the UTF-8 string rules of §1.5.4 that Rust's `str` does not already
//! guarantee: no U+0000 [MQTT-1.5.4-2]. The code points the spec says SHOULD NOT be used
//! (controls, non-characters) are accepted, as the spec allows.

use std::fmt;

/// The longest topic name or filter, in bytes: a UTF-8 string's two-byte length (§1.5.4).
pub const MAX_TOPIC_LEN: usize = 65_535;

/// The prefix of a shared subscription filter (MQTT 5.0 §4.8.2).
const SHARE_PREFIX: &str = "$share/";

/// Why a string is not a valid topic name or filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// Empty; a topic name or filter has at least one character [MQTT-4.7.3-1].
    #[error("empty")]
    Empty,
    /// Longer than 65 535 bytes [MQTT-4.7.3-3].
    #[error("longer than 65535 bytes")]
    TooLong,
    /// Contains U+0000 [MQTT-4.7.3-2] (other UTF-8 errors cannot occur in a Rust string).
    #[error("contains U+0000")]
    InvalidUtf8,
    /// A topic name contains `+` or `#` [MQTT-3.3.2-2].
    #[error("wildcard in a topic name")]
    Wildcard,
    /// A filter uses `+` or `#` other than as a whole level, or `#` not last (§4.7.1).
    #[error("misplaced wildcard")]
    BadWildcard,
    /// A `$share/` filter without a valid share name or inner filter (§4.8.2).
    #[error("invalid shared subscription")]
    BadShare,
}

/// Checks the length rules names and filters share: not empty, at most `MAX_TOPIC_LEN`.
fn check_len(s: &str) -> Result<(), TopicError> {
    if s.is_empty() {
        return Err(TopicError::Empty);
    }
    if s.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong);
    }
    Ok(())
}

/// Checks what filters have in common with names: length and U+0000.
fn check_common(s: &str) -> Result<(), TopicError> {
    check_len(s)?;
    if s.contains('\0') {
        return Err(TopicError::InvalidUtf8);
    }
    Ok(())
}

/// Checks the wildcard rules of a non-shared filter (§4.7.1): `+` fills a whole level, `#` is
/// the whole last level.
fn check_wildcards(filter: &str) -> Result<(), TopicError> {
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        match level {
            "+" => {}
            "#" if levels.peek().is_none() => {}
            _ if level.contains(['+', '#']) => return Err(TopicError::BadWildcard),
            _ => {}
        }
    }
    Ok(())
}

/// Splits `$share/{group}/{filter}` into its parts, without validating them. `None` if the
/// string does not start with `$share/`.
fn split_share(s: &str) -> Option<(&str, Option<&str>)> {
    let rest = s.strip_prefix(SHARE_PREFIX)?;
    Some(match rest.split_once('/') {
        Some((group, inner)) => (group, Some(inner)),
        None => (rest, None),
    })
}

// === impl TopicName ===

/// A validated topic name (§4.7): non-empty, at most 65 535 bytes, no U+0000, no `+` or `#`.
///
/// A name starting with `$` ([`Self::is_dollar`]) is not matched by filters starting with a
/// wildcard (§4.7.2).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicName(String);

impl TopicName {
    /// Validates `s` as a topic name.
    pub fn new(s: impl Into<String>) -> Result<Self, TopicError> {
        let s = s.into();
        check_len(&s)?;
        // One pass over the bytes with no early exit, so the compiler can vectorise it (every
        // PUBLISH is checked here). `+`, `#` and NUL are ASCII: a byte test never hits part of
        // a multi-byte character. NUL wins over a wildcard, as in `check_common`.
        let (mut nul, mut wildcard) = (false, false);
        for &b in s.as_bytes() {
            nul |= b == 0;
            wildcard |= (b == b'+') | (b == b'#');
        }
        if nul {
            return Err(TopicError::InvalidUtf8);
        }
        if wildcard {
            return Err(TopicError::Wildcard);
        }
        Ok(Self(s))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True if the name starts with `$` (such as `$SYS/...`), §4.7.2.
    pub fn is_dollar(&self) -> bool {
        self.0.starts_with('$')
    }

    /// The owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for TopicName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for TopicName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for TopicName {
    type Error = TopicError;

    fn try_from(s: &str) -> Result<Self, TopicError> {
        Self::new(s)
    }
}

// === impl TopicFilter ===

/// A validated topic filter (§4.7.1): non-empty, at most 65 535 bytes, no U+0000, `+` only as
/// a whole level, `#` only as the whole last level.
///
/// `$share/{group}/{filter}` is a shared subscription (MQTT 5.0 §4.8.2): the group is non-empty
/// and contains none of `+`, `#`, `/`, and the inner filter is a valid non-empty filter. It is
/// accepted in every protocol version (brokers commonly offer shared subscriptions to MQTT 3.1.1
/// clients too); whether to allow it is the broker's decision.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicFilter(String);

impl TopicFilter {
    /// Validates `s` as a topic filter.
    pub fn new(s: impl Into<String>) -> Result<Self, TopicError> {
        let s = s.into();
        check_common(&s)?;
        match split_share(&s) {
            Some((group, inner)) => {
                let inner = inner.ok_or(TopicError::BadShare)?;
                if group.is_empty() || group.contains(['+', '#']) || inner.is_empty() {
                    return Err(TopicError::BadShare);
                }
                check_wildcards(inner)?;
            }
            None => check_wildcards(&s)?,
        }
        Ok(Self(s))
    }

    /// The filter, including any `$share/{group}/` prefix.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// For a shared subscription `$share/g/f`: `Some(("g", "f"))`.
    pub fn shared(&self) -> Option<(&str, &str)> {
        match split_share(&self.0) {
            Some((group, Some(inner))) => Some((group, inner)),
            _ => None,
        }
    }

    /// The filter that topics are matched against: the inner filter of a shared subscription,
    /// otherwise the whole filter.
    pub fn match_filter(&self) -> &str {
        self.shared().map_or(&self.0, |(_, inner)| inner)
    }

    /// True if the (inner) filter contains `+` or `#`.
    pub fn has_wildcards(&self) -> bool {
        self.match_filter().contains(['+', '#'])
    }

    /// Whether this filter matches `topic` (§4.7), with the `$` rule of §4.7.2: a filter
    /// starting with `+` or `#` does not match a topic starting with `$`. A shared filter
    /// matches with its inner filter.
    pub fn matches(&self, topic: &TopicName) -> bool {
        match_levels(self.match_filter(), topic.as_str())
    }

    /// The owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for TopicFilter {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for TopicFilter {
    type Error = TopicError;

    fn try_from(s: &str) -> Result<Self, TopicError> {
        Self::new(s)
    }
}

// === Matching ===

/// Whether `filter` matches `topic`, on raw strings, with the same rules as
/// [`TopicFilter::matches`] (including `$share/{group}/` and the `$` rule).
///
/// Invalid input never matches: the result is `true` only if `filter` is a valid
/// [`TopicFilter`], `topic` a valid [`TopicName`], and the filter matches the name. Validation
/// happens during the single pass that compares levels, so no allocation is made.
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    if filter.len() > MAX_TOPIC_LEN || topic.is_empty() || topic.len() > MAX_TOPIC_LEN {
        return false;
    }
    let filter = match split_share(filter) {
        Some((group, Some(inner))) => {
            if group.is_empty() || !plain_level(group) {
                return false;
            }
            inner
        }
        Some((_, None)) => return false,
        None => filter,
    };
    !filter.is_empty() && match_levels(filter, topic)
}

/// A level that holds no wildcard and no U+0000.
fn plain_level(level: &str) -> bool {
    !level.bytes().any(|b| matches!(b, b'+' | b'#' | 0))
}

/// The level-by-level walk. Returns `true` only if every level of both strings was checked
/// (filter levels are `+`, a final `#` or plain; topic levels plain), so for unvalidated
/// input it doubles as validation.
fn match_levels(filter: &str, topic: &str) -> bool {
    // §4.7.2: wildcards at the first level never match `$` topics.
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            // `#` matches the parent level too ("a/#" matches "a"), §4.7.1.2.
            (Some("#"), level) => {
                return f.next().is_none() && level.is_none_or(plain_level) && t.all(plain_level);
            }
            (Some("+"), Some(level)) => {
                if !plain_level(level) {
                    return false;
                }
            }
            (Some(fl), Some(tl)) => {
                if fl != tl || !plain_level(tl) {
                    return false;
                }
            }
            (None, None) => return true,
            _ => return false,
        }
    }
}
