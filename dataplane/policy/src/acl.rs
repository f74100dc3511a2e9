//! MQTT topic ACLs: topic and filter validation, matching, and rule evaluation.
//!
//! **Topics and filters** follow MQTT 3.1.1 §4.7 and MQTT 5.0 §4.7: a topic name or filter is
//! a non-empty UTF-8 string of at most 65 535 bytes without U+0000; levels are separated by
//! `/` and may be empty; in a filter, `+` matches exactly one level and must fill its level,
//! `#` matches any number of levels (including none: `a/#` matches `a`) and must be the whole
//! last level. A filter whose first character is a wildcard does not match a topic starting
//! with `$` (§4.7.2), so `#` does not match `$SYS/uptime` but `$SYS/#` does.
//!
//! **Rules** ([`Rule`]) are the Mosquitto `acl_file` model: a topic filter, possibly with the
//! placeholders `%u` (the MQTT username) and `%c` (the client id), and an [`Access`]. The rules
//! applicable to a client are its account's own rules plus the rules of its account's role;
//! [`evaluate`] decides:
//!
//! 1. a [`Access::Deny`] rule that matches the topic (for a SUBSCRIBE: whose filter overlaps the
//!    requested filter, i.e. some topic matches both) refuses, whatever else matches;
//! 2. otherwise a rule granting the needed access allows: publishing needs `write` or
//!    `readwrite`; receiving a message needs `read` or `readwrite`; subscribing to a filter
//!    needs `read`, `readwrite` or `subscribe` on a rule filter that covers every topic the
//!    requested filter can match ([`filter_within`], Mosquitto's `mosquitto_sub_matches_acl`);
//! 3. otherwise the access is refused (default deny).
//!
//! Refusing a SUBSCRIBE that merely overlaps a deny rule is stricter than Mosquitto (which
//! lets it through and filters at delivery): with a deny on `sensors/secret/#`, a client may
//! subscribe to `sensors/cam1/#` but not to `sensors/#` or `sensors/+/temp`.
//!
//! **Placeholders** are substituted level by level, never by re-parsing the substituted
//! string. If the username (for `%u`) or the client id (for `%c`) is empty or contains `+`,
//! `#`, `/` or U+0000, substituting it could widen the rule (the CVE-2017-7650 class of bug),
//! so: an allow rule with that placeholder never matches, and a deny rule with it refuses every
//! access of that client (fail closed). This is stricter than Mosquitto's fix, which only
//! refuses `+` and `#` in the value and lets a `/` in it add levels.
//!
//! What this module deliberately does not do: hold subscriptions or route messages. It answers
//! "may this client do this", nothing more.

use std::fmt;

/// Longest topic name or filter, in bytes (MQTT §1.5.4: a UTF-8 string's 16-bit length).
pub const MAX_TOPIC_LEN: usize = 65_535;

/// What a rule grants. Mosquitto's access types plus `deny`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, rkyv::Archive, rkyv::Serialize, rkyv::Deserialize,
)]
#[rkyv(derive(Debug))]
pub enum Access {
    /// Receive messages on matching topics, and subscribe to filters within the rule's.
    Read,
    /// Publish to matching topics.
    Write,
    /// Both.
    ReadWrite,
    /// Send SUBSCRIBE for filters within the rule's (delivery still needs `read`).
    Subscribe,
    /// Refuse; wins over every allow rule.
    Deny,
}

impl Access {
    /// The spelling used in the store and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::ReadWrite => "readwrite",
            Self::Subscribe => "subscribe",
            Self::Deny => "deny",
        }
    }
}

/// An access to decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclAction<'a> {
    /// PUBLISH to this topic name.
    Publish(&'a str),
    /// Receive a message published to this topic name (checked at delivery).
    Receive(&'a str),
    /// SUBSCRIBE with this topic filter.
    Subscribe(&'a str),
    /// Receive every message this topic filter can match: a `read` or `readwrite` rule covers
    /// the filter and no `deny` rule overlaps it. A broker that gets `true` at SUBSCRIBE needs
    /// no [`AclAction::Receive`] check per delivered message.
    ReadFilter(&'a str),
}

// === Validation ===

/// Whether `s` is a valid topic name (what PUBLISH carries): non-empty, at most
/// [`MAX_TOPIC_LEN`] bytes, no U+0000 and no wildcard (MQTT §4.7.3).
pub fn valid_topic_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_TOPIC_LEN && !s.bytes().any(|b| matches!(b, 0 | b'+' | b'#'))
}

/// Whether `s` is a valid topic filter (what SUBSCRIBE carries): non-empty, at most
/// [`MAX_TOPIC_LEN`] bytes, no U+0000, `+` only as a whole level, `#` only as the whole last
/// level (MQTT §4.7.1).
pub fn valid_topic_filter(s: &str) -> bool {
    if s.is_empty() || s.len() > MAX_TOPIC_LEN || s.as_bytes().contains(&0) {
        return false;
    }
    let mut levels = s.split('/').peekable();
    while let Some(level) = levels.next() {
        if level.contains('+') && level != "+" {
            return false;
        }
        if level.contains('#') && (level != "#" || levels.peek().is_some()) {
            return false;
        }
    }
    true
}

// === Matching on plain strings ===

/// Whether the topic filter `filter` matches the topic name `topic`. `false` if either is
/// invalid.
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    valid_topic_filter(filter)
        && valid_topic_name(topic)
        && matches(plain_levels(filter), topic, &Subst::NONE)
}

/// Whether every topic that `sub_filter` can match is also matched by `acl_filter`, i.e. a
/// SUBSCRIBE for `sub_filter` stays within what `acl_filter` grants. `false` if either is
/// invalid.
///
/// `filter_within("a/+", "a/b")` and `filter_within("a/#", "a/+/c")` hold;
/// `filter_within("a/+", "a/#")` does not (`a/#` also matches `a/b/c`).
pub fn filter_within(acl_filter: &str, sub_filter: &str) -> bool {
    valid_topic_filter(acl_filter)
        && valid_topic_filter(sub_filter)
        && within(plain_levels(acl_filter), sub_filter, &Subst::NONE)
}

/// Whether some topic matches both filters. `false` if either is invalid.
pub fn filters_overlap(a: &str, b: &str) -> bool {
    valid_topic_filter(a) && valid_topic_filter(b) && overlap(plain_levels(a), b, &Subst::NONE)
}

// === Rules ===

/// A filter that is not a valid MQTT topic filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid topic filter")]
pub struct InvalidFilter;

/// One compiled ACL rule: a topic filter (with `%u`/`%c` placeholders split out) and an access.
#[derive(Clone, PartialEq, Eq)]
pub struct Rule {
    text: String,
    access: Access,
    levels: Vec<Level>,
    uses_user: bool,
    uses_client: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Level {
    Plus,
    Hash,
    Lit(String),
    /// A level with at least one placeholder.
    Pat(Vec<Piece>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Lit(String),
    User,
    Client,
}

impl Rule {
    /// Compiles a rule. `filter` must be a valid topic filter; `%u` and `%c` anywhere in a
    /// level are placeholders (any other `%` is literal).
    pub fn new(filter: &str, access: Access) -> Result<Self, InvalidFilter> {
        if !valid_topic_filter(filter) {
            return Err(InvalidFilter);
        }
        let mut uses_user = false;
        let mut uses_client = false;
        let levels = filter
            .split('/')
            .map(|level| match level {
                "+" => Level::Plus,
                "#" => Level::Hash,
                l if !(l.contains("%u") || l.contains("%c")) => Level::Lit(l.to_owned()),
                l => {
                    let mut pieces = Vec::new();
                    let mut lit = String::new();
                    let mut rest = l;
                    while !rest.is_empty() {
                        let piece = if rest.starts_with("%u") {
                            Some(Piece::User)
                        } else if rest.starts_with("%c") {
                            Some(Piece::Client)
                        } else {
                            None
                        };
                        if let Some(piece) = piece {
                            if !lit.is_empty() {
                                pieces.push(Piece::Lit(std::mem::take(&mut lit)));
                            }
                            uses_user |= piece == Piece::User;
                            uses_client |= piece == Piece::Client;
                            pieces.push(piece);
                            rest = &rest[2..];
                        } else {
                            let mut chars = rest.chars();
                            if let Some(c) = chars.next() {
                                lit.push(c);
                            }
                            rest = chars.as_str();
                        }
                    }
                    if !lit.is_empty() {
                        pieces.push(Piece::Lit(lit));
                    }
                    Level::Pat(pieces)
                }
            })
            .collect();
        Ok(Self {
            text: filter.to_owned(),
            access,
            levels,
            uses_user,
            uses_client,
        })
    }

    /// The filter as written.
    pub fn filter(&self) -> &str {
        &self.text
    }

    /// What the rule grants.
    pub fn access(&self) -> Access {
        self.access
    }

    fn levels(&self) -> impl Iterator<Item = Lv<'_>> + Clone {
        self.levels.iter().map(|l| match l {
            Level::Plus => Lv::Plus,
            Level::Hash => Lv::Hash,
            Level::Lit(s) => Lv::Lit(s),
            Level::Pat(p) => Lv::Pat(p),
        })
    }
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rule({} {})", self.access.as_str(), self.text)
    }
}

/// Decides `action` for the client `username`/`client_id` under `rules` (its account's rules
/// and its role's rules, in any order): see the [module documentation](self).
///
/// An invalid topic name (for publish and receive) or filter (for subscribe) is refused.
pub fn evaluate<'r>(
    rules: impl IntoIterator<Item = &'r Rule>,
    username: &str,
    client_id: &str,
    action: AclAction<'_>,
) -> bool {
    let valid = match action {
        AclAction::Publish(t) | AclAction::Receive(t) => valid_topic_name(t),
        AclAction::Subscribe(f) | AclAction::ReadFilter(f) => valid_topic_filter(f),
    };
    if !valid {
        return false;
    }
    let subst = Subst {
        user: username,
        client: client_id,
    };
    let user_ok = safe_value(username);
    let client_ok = safe_value(client_id);
    let mut allowed = false;
    for rule in rules {
        let usable = (user_ok || !rule.uses_user) && (client_ok || !rule.uses_client);
        if rule.access == Access::Deny {
            if !usable {
                // The deny rule cannot be evaluated safely for this client: fail closed.
                return false;
            }
            let hit = match action {
                AclAction::Publish(t) | AclAction::Receive(t) => matches(rule.levels(), t, &subst),
                AclAction::Subscribe(f) | AclAction::ReadFilter(f) => {
                    overlap(rule.levels(), f, &subst)
                }
            };
            if hit {
                return false;
            }
        } else if !allowed && usable && grants(rule.access, action) {
            allowed = match action {
                AclAction::Publish(t) | AclAction::Receive(t) => matches(rule.levels(), t, &subst),
                AclAction::Subscribe(f) | AclAction::ReadFilter(f) => {
                    within(rule.levels(), f, &subst)
                }
            };
        }
    }
    allowed
}

fn grants(access: Access, action: AclAction<'_>) -> bool {
    match action {
        AclAction::Publish(_) => matches!(access, Access::Write | Access::ReadWrite),
        AclAction::Receive(_) | AclAction::ReadFilter(_) => {
            matches!(access, Access::Read | Access::ReadWrite)
        }
        AclAction::Subscribe(_) => {
            matches!(access, Access::Read | Access::ReadWrite | Access::Subscribe)
        }
    }
}

/// Whether a username or client id may be substituted for a placeholder.
fn safe_value(v: &str) -> bool {
    !v.is_empty() && !v.bytes().any(|b| matches!(b, b'+' | b'#' | b'/' | 0))
}

// === The matching core, shared by plain filters and compiled rules ===

/// One level of a filter, borrowed.
#[derive(Debug, Clone, Copy)]
enum Lv<'a> {
    Plus,
    Hash,
    Lit(&'a str),
    Pat(&'a [Piece]),
}

/// Values for the placeholders (only reached when they are safe, see [`evaluate`]).
struct Subst<'a> {
    user: &'a str,
    client: &'a str,
}

impl Subst<'_> {
    const NONE: Subst<'static> = Subst {
        user: "",
        client: "",
    };
}

fn plain_levels(filter: &str) -> impl Iterator<Item = Lv<'_>> + Clone {
    filter.split('/').map(|l| match l {
        "+" => Lv::Plus,
        "#" => Lv::Hash,
        l => Lv::Lit(l),
    })
}

/// Whether a literal or pattern level equals the concrete level `t`.
fn level_eq(level: Lv<'_>, t: &str, s: &Subst<'_>) -> bool {
    match level {
        Lv::Lit(l) => l == t,
        Lv::Pat(pieces) => {
            let mut rest = t;
            for piece in pieces {
                let want = match piece {
                    Piece::Lit(l) => l.as_str(),
                    Piece::User => s.user,
                    Piece::Client => s.client,
                };
                match rest.strip_prefix(want) {
                    Some(r) => rest = r,
                    None => return false,
                }
            }
            rest.is_empty()
        }
        Lv::Plus | Lv::Hash => false,
    }
}

/// Whether a literal or pattern level, substituted, starts with `$`.
fn level_dollar(level: Lv<'_>, s: &Subst<'_>) -> bool {
    match level {
        Lv::Lit(l) => l.starts_with('$'),
        Lv::Pat(pieces) => match pieces.first() {
            Some(Piece::Lit(l)) => l.starts_with('$'),
            Some(Piece::User) => s.user.starts_with('$'),
            Some(Piece::Client) => s.client.starts_with('$'),
            None => false,
        },
        Lv::Plus | Lv::Hash => false,
    }
}

/// Filter levels `f` against a valid topic name.
fn matches<'a>(mut f: impl Iterator<Item = Lv<'a>>, topic: &str, s: &Subst<'_>) -> bool {
    let dollar = topic.starts_with('$');
    let mut t = topic.split('/');
    let mut first = true;
    loop {
        match (f.next(), t.next()) {
            // `#` matches the parent level too (§4.7.1.2), so the topic may have ended.
            (Some(Lv::Hash), _) => return !(first && dollar),
            (Some(Lv::Plus), Some(_)) => {
                if first && dollar {
                    return false;
                }
            }
            (Some(level), Some(tl)) => {
                if !level_eq(level, tl, s) {
                    return false;
                }
            }
            (None, None) => return true,
            _ => return false,
        }
        first = false;
    }
}

/// Whether every topic the valid filter `sub` matches is matched by the filter levels `acl`.
fn within<'a>(mut acl: impl Iterator<Item = Lv<'a>>, sub: &str, s: &Subst<'_>) -> bool {
    let mut b = plain_levels(sub);
    // `sub` matches `$` topics only if its first level is literally `$...`.
    let sub_dollar = sub.starts_with('$');
    let mut depth = 0usize;
    loop {
        match (acl.next(), b.next()) {
            (Some(Lv::Hash), _) => return !(depth == 0 && sub_dollar),
            // `sub` matches every depth from here on, including none; only `#` covers that.
            // Except where "none" would spell the empty string, which is not a topic (`#`
            // itself, or `/#` after an empty first level): there `+/#` covers it too.
            (Some(Lv::Plus), Some(Lv::Hash)) => {
                let phantom = depth == 0 || (depth == 1 && sub.starts_with('/'));
                return phantom && matches!((acl.next(), acl.next()), (Some(Lv::Hash), None));
            }
            (Some(_), Some(Lv::Hash)) => return false,
            (Some(Lv::Plus), Some(_)) => {
                if depth == 0 && sub_dollar {
                    return false;
                }
            }
            (Some(_), Some(Lv::Plus)) => return false,
            (Some(level), Some(bl)) => {
                if !level_eq(level, lit_of(bl), s) {
                    return false;
                }
            }
            (None, None) => return true,
            _ => return false,
        }
        depth += 1;
    }
}

/// Whether some topic matches both the filter levels `a` and the valid filter `b`.
fn overlap<'a>(mut a: impl Iterator<Item = Lv<'a>>, b: &str, s: &Subst<'_>) -> bool {
    let mut bl = plain_levels(b);
    let mut depth = 0usize;
    // The common topic's first level is forced to be empty (a literal empty level on either
    // side). Ending right after it would spell the empty string, which is not a topic.
    let mut empty_first = false;
    loop {
        let (x, y) = (a.next(), bl.next());
        if depth == 0 {
            empty_first = matches!(x, Some(Lv::Lit(""))) || matches!(y, Some(Lv::Lit("")));
        }
        match (x, y) {
            // A wildcard first level cannot meet a `$` topic.
            (Some(Lv::Hash), y) => {
                return match y {
                    None => !(depth == 1 && empty_first),
                    Some(y) => !(depth == 0 && level_dollar(y, s)),
                };
            }
            (x, Some(Lv::Hash)) => {
                return match x {
                    None => !(depth == 1 && empty_first),
                    Some(x) => !(depth == 0 && level_dollar(x, s)),
                };
            }
            (Some(Lv::Plus), Some(Lv::Plus)) => {}
            (Some(Lv::Plus), Some(y)) => {
                if depth == 0 && level_dollar(y, s) {
                    return false;
                }
            }
            (Some(x), Some(Lv::Plus)) => {
                if depth == 0 && level_dollar(x, s) {
                    return false;
                }
            }
            (Some(x), Some(y)) => {
                if !level_eq(x, lit_of(y), s) {
                    return false;
                }
            }
            (None, None) => return true,
            _ => return false,
        }
        depth += 1;
    }
}

/// The text of a literal level of a plain filter.
fn lit_of(level: Lv<'_>) -> &str {
    match level {
        Lv::Lit(l) => l,
        Lv::Plus => "+",
        Lv::Hash => "#",
        Lv::Pat(_) => "",
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn read_filter_needs_read_over_the_whole_filter() {
        let rules = [
            Rule::new("cams/#", Access::Subscribe).unwrap(),
            Rule::new("cams/public/#", Access::Read).unwrap(),
            Rule::new("cams/public/secret", Access::Deny).unwrap(),
        ];
        let ev = |a| evaluate(rules.iter(), "u", "c", a);
        // `subscribe` lets the SUBSCRIBE through, but only `read` lets messages be received.
        assert!(ev(AclAction::Subscribe("cams/private/#")));
        assert!(!ev(AclAction::ReadFilter("cams/private/#")));
        assert!(ev(AclAction::ReadFilter("cams/public/+/x")));
        // A deny that overlaps the filter refuses it.
        assert!(!ev(AclAction::ReadFilter("cams/public/#")));
        assert!(!ev(AclAction::ReadFilter("bad/#/x")));
    }

    #[test]
    fn validation() {
        for ok in ["a", "/", "a/b", "$SYS/x", "a//b", " ", "ü/€", "%u"] {
            assert!(valid_topic_name(ok), "{ok:?}");
            assert!(valid_topic_filter(ok), "{ok:?}");
        }
        for bad in ["", "a\0b", "a/+", "#", "a/b#"] {
            assert!(!valid_topic_name(bad), "{bad:?}");
        }
        for ok in ["#", "+", "+/+", "a/#", "/#", "+/#", "a/+/c", "$SYS/#", "//"] {
            assert!(valid_topic_filter(ok), "{ok:?}");
        }
        for bad in ["", "a/#/b", "a#", "a/b+", "++", "#/", "##", "a/+b/c", "\0"] {
            assert!(!valid_topic_filter(bad), "{bad:?}");
        }
        let long = "a".repeat(MAX_TOPIC_LEN);
        assert!(valid_topic_name(&long));
        assert!(valid_topic_filter(&long));
        let too_long = "a".repeat(MAX_TOPIC_LEN + 1);
        assert!(!valid_topic_name(&too_long));
        assert!(!valid_topic_filter(&too_long));
    }

    #[test]
    fn matching() {
        let yes = [
            ("a/b/c", "a/b/c"),
            ("a/+/c", "a/b/c"),
            ("a/+/c", "a//c"),
            ("#", "a"),
            ("#", "a/b/c"),
            ("#", "/"),
            ("a/#", "a"),
            ("a/#", "a/"),
            ("a/#", "a/b/c"),
            ("+", "a"),
            ("+", ""),
            ("+/+", "/"),
            ("/+", "/a"),
            ("$SYS/#", "$SYS"),
            ("$SYS/#", "$SYS/uptime"),
            ("$SYS/+", "$SYS/uptime"),
            ("a/$x", "a/$x"),
            ("+/$x", "a/$x"),
        ];
        for (f, t) in yes {
            assert!(
                matches(plain_levels(f), t, &Subst::NONE),
                "{f:?} should match {t:?}"
            );
        }
        assert!(topic_matches("a/+/c", "a/b/c"));
        let no = [
            ("a/+/c", "a/b/d"),
            ("a/+/c", "a/b/c/d"),
            ("a/+", "a"),
            ("a/b", "a"),
            ("a", "a/b"),
            ("a", "A"),
            ("#", "$SYS"),
            ("#", "$SYS/uptime"),
            ("+/uptime", "$SYS/uptime"),
            ("+", "$x"),
            ("+/#", "$SYS/x"),
            ("a/#", "b"),
            ("a/#", "ab"),
        ];
        for (f, t) in no {
            assert!(!topic_matches(f, t), "{f:?} should not match {t:?}");
        }
        // Invalid input never matches.
        assert!(!topic_matches("a/#/b", "a/x/b"));
        assert!(!topic_matches("#", "a/+"));
        assert!(!topic_matches("", ""));
    }

    #[test]
    fn within_and_overlap() {
        let within_yes = [
            ("a/+", "a/b"),
            ("a/+", "a/+"),
            ("a/#", "a/+/c"),
            ("a/#", "a/#"),
            ("a/#", "a"),
            ("#", "a/#"),
            ("#", "#"),
            ("#", "+/x"),
            ("+/#", "+/+"),
            ("$SYS/#", "$SYS/+"),
            ("a/b", "a/b"),
            // The empty string is not a topic, so `#` matches no zero-level topic.
            ("+/#", "#"),
            ("/+/#", "/#"),
        ];
        for (acl, sub) in within_yes {
            assert!(filter_within(acl, sub), "{sub:?} should be within {acl:?}");
        }
        let within_no = [
            ("a/+", "a/#"),
            ("a/+", "a"),
            ("a/b", "a/+"),
            ("a/b", "a/#"),
            ("a", "a/#"),
            ("#", "$SYS/#"),
            ("#", "$SYS"),
            ("+/#", "$SYS/x"),
            ("a/+/c", "a/+/+"),
            ("a/#", "b/#"),
            ("a/+", "a/b/c"),
            ("+/+/#", "#"),
            ("/+", "/#"),
        ];
        for (acl, sub) in within_no {
            assert!(!filter_within(acl, sub), "{sub:?} is not within {acl:?}");
        }
        let overlap_yes = [
            ("a/+", "a/#"),
            ("a/#", "a"),
            ("a", "a/#"),
            ("+/b", "a/+"),
            ("#", "x"),
            ("#", "+"),
            ("$SYS/#", "$SYS/x"),
            ("a/secret", "a/#"),
            ("+/+", "a/b"),
        ];
        for (a, b) in overlap_yes {
            assert!(filters_overlap(a, b), "{a:?} and {b:?} overlap");
            assert!(filters_overlap(b, a), "{b:?} and {a:?} overlap");
        }
        let overlap_no = [
            ("a/b", "a/c"),
            ("a/+", "a"),
            ("#", "$SYS/#"),
            ("+/#", "$SYS"),
            ("+", "$x"),
            ("a/+/c", "a/+/d"),
            ("a", "a/+"),
            ("+", "/#"),
        ];
        for (a, b) in overlap_no {
            assert!(!filters_overlap(a, b), "{a:?} and {b:?} are disjoint");
            assert!(!filters_overlap(b, a), "{b:?} and {a:?} are disjoint");
        }
    }

    fn rule(f: &str, a: Access) -> Rule {
        Rule::new(f, a).unwrap()
    }

    #[test]
    fn rule_evaluation() {
        let rules = [
            rule("sensors/#", Access::Read),
            rule("sensors/%u/out", Access::Write),
            rule("cmd/%c", Access::ReadWrite),
            rule("sensors/secret/#", Access::Deny),
            rule("feeds/+", Access::Subscribe),
        ];
        let ev = |u: &str, c: &str, a| evaluate(&rules, u, c, a);
        use AclAction::*;
        assert!(ev("cam1", "c1", Receive("sensors/x/temp")));
        assert!(ev("cam1", "c1", Subscribe("sensors/x/temp")));
        assert!(ev("cam1", "c1", Subscribe("sensors/x/#")));
        assert!(!ev("cam1", "c1", Publish("sensors/x/temp")));
        assert!(ev("cam1", "c1", Publish("sensors/cam1/out")));
        assert!(!ev("cam1", "c1", Publish("sensors/cam2/out")));
        assert!(ev("cam1", "c1", Publish("cmd/c1")));
        assert!(ev("cam1", "c1", Receive("cmd/c1")));
        assert!(!ev("cam1", "c1", Receive("cmd/c2")));
        // Deny wins: on the topic, and on a subscription that overlaps it.
        assert!(!ev("cam1", "c1", Receive("sensors/secret/key")));
        // A SUBSCRIBE that could deliver anything under the denied subtree is refused whole.
        assert!(!ev("cam1", "c1", Subscribe("sensors/#")));
        assert!(!ev("cam1", "c1", Subscribe("sensors/+/key")));
        assert!(!ev("cam1", "c1", Subscribe("sensors/secret")));
        assert!(ev("cam1", "c1", Subscribe("sensors/public/#")));
        // `subscribe` access allows SUBSCRIBE but not delivery.
        assert!(ev("cam1", "c1", Subscribe("feeds/a")));
        assert!(!ev("cam1", "c1", Receive("feeds/a")));
        assert!(!ev("cam1", "c1", Subscribe("feeds/#")));
        // Default deny, and invalid input.
        assert!(!ev("cam1", "c1", Publish("other")));
        assert!(!ev("cam1", "c1", Publish("sensors/cam1/+")));
        assert!(!ev("cam1", "c1", Subscribe("sensors/#/x")));
        assert!(!evaluate([], "cam1", "c1", Receive("a")));
    }

    #[test]
    fn unsafe_placeholder_values() {
        let allow = [
            rule("dev/%u/#", Access::ReadWrite),
            rule("c/%c", Access::Write),
        ];
        use AclAction::*;
        assert!(evaluate(&allow, "a", "x", Publish("dev/a/1")));
        for user in ["", "a/b", "+", "#", "a+", "x\0"] {
            // The %u rule never matches: not even the topic the substitution would spell.
            let topic = format!("dev/{user}/1");
            assert!(!evaluate(&allow, user, "x", Publish(&topic)), "{user:?}");
            assert!(!evaluate(&allow, user, "x", Subscribe("dev/#")), "{user:?}");
            // A rule without the placeholder still works.
            assert!(evaluate(&allow, user, "x", Publish("c/x")), "{user:?}");
        }
        // A "/" in the client id must not add levels.
        assert!(!evaluate(&allow, "a", "x/y", Publish("c/x/y")));
        // A deny rule that cannot be substituted safely refuses everything (fail closed).
        let with_deny = [
            rule("#", Access::ReadWrite),
            rule("private/%u/#", Access::Deny),
        ];
        assert!(evaluate(&with_deny, "bob", "c", Publish("private/alice/x")));
        assert!(!evaluate(&with_deny, "bob", "c", Publish("private/bob/x")));
        assert!(!evaluate(&with_deny, "b/ob", "c", Publish("anything")));
        assert!(!evaluate(&with_deny, "", "c", Publish("anything")));
    }

    #[test]
    fn placeholders_inside_levels() {
        let r = [
            rule("t/pre-%u-%c-post/%u%u", Access::Write),
            rule("%%u", Access::Write),
        ];
        assert!(evaluate(
            &r,
            "u",
            "c",
            AclAction::Publish("t/pre-u-c-post/uu")
        ));
        assert!(!evaluate(
            &r,
            "u",
            "c",
            AclAction::Publish("t/pre-u-c-post/u")
        ));
        assert!(evaluate(&r, "u", "c", AclAction::Publish("%u")));
        assert!(!evaluate(&r, "v", "c", AclAction::Publish("%u")));
        // A literal `%` that is not a placeholder, and multi-byte text around one.
        let r = [rule("a%b/é%uü", Access::Read)];
        assert!(evaluate(&r, "x", "c", AclAction::Receive("a%b/éxü")));
        // `$` from a substituted value at the first level is a `$` topic only literally.
        let r = [rule("%u/#", Access::Read), rule("+/x", Access::Read)];
        assert!(evaluate(&r, "$dev", "c", AclAction::Receive("$dev/y")));
        assert!(!evaluate(&r, "u", "c", AclAction::Receive("$dev/x")));
    }

    // === Properties against a brute-force model ===

    const ALPHABET: [&str; 4] = ["a", "b", "$s", ""];

    /// Every topic of 1 to 5 levels over [`ALPHABET`] (one more than the longest filter).
    fn all_topics() -> Vec<String> {
        let mut out: Vec<String> = ALPHABET.iter().map(|s| s.to_string()).collect();
        let mut last = out.clone();
        for _ in 1..5 {
            let next: Vec<String> = last
                .iter()
                .flat_map(|t| ALPHABET.iter().map(move |l| format!("{t}/{l}")))
                .collect();
            out.extend(next.iter().cloned());
            last = next;
        }
        out.retain(|t| !t.is_empty());
        out
    }

    fn filter_strategy() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(vec!["a", "b", "$s", "", "+"]), 0..=3)
            .prop_flat_map(|levels| {
                (Just(levels), any::<bool>()).prop_map(|(mut levels, hash)| {
                    if hash {
                        levels.push("#");
                    }
                    levels.join("/")
                })
            })
            .prop_filter("valid", |f| valid_topic_filter(f))
    }

    proptest! {
        #[test]
        fn within_and_overlap_agree_with_brute_force(acl in filter_strategy(), sub in filter_strategy()) {
            let topics = all_topics();
            let matched_by_sub: Vec<&String> =
                topics.iter().filter(|t| topic_matches(&sub, t)).collect();
            let brute_within = matched_by_sub.iter().all(|t| topic_matches(&acl, t));
            let brute_overlap = matched_by_sub.iter().any(|t| topic_matches(&acl, t));
            prop_assert_eq!(filter_within(&acl, &sub), brute_within, "within({}, {})", acl, sub);
            prop_assert_eq!(filters_overlap(&acl, &sub), brute_overlap, "overlap({}, {})", acl, sub);
            prop_assert_eq!(filters_overlap(&sub, &acl), brute_overlap);
        }

        #[test]
        fn a_topic_matches_itself_and_hash(topic in "[a-c$/]{1,12}") {
            prop_assert!(topic_matches(&topic, &topic));
            prop_assert_eq!(topic_matches("#", &topic), !topic.starts_with('$'));
            prop_assert!(filter_within(&topic, &topic));
        }

        #[test]
        fn never_panics(filter in "[a+#/$%uc\u{0}]{0,10}", topic in "[a+#/$\u{0}]{0,10}") {
            let _ = topic_matches(&filter, &topic);
            let _ = filter_within(&filter, &topic);
            let _ = filters_overlap(&filter, &topic);
            if let Ok(r) = Rule::new(&filter, Access::ReadWrite) {
                let _ = evaluate([&r], "u", "c", AclAction::Subscribe(&topic));
                let _ = evaluate([&r], "u", "c", AclAction::Publish(&topic));
            }
        }
    }
}
