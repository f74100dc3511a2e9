//! Topic name and filter rules (§4.7, §4.8.2) and matching, with proptests.

use proptest::prelude::*;

use crate::{MAX_TOPIC_LEN, TopicError, TopicFilter, TopicName, topic_matches};

#[test]
fn topic_names() {
    for ok in ["a", "/", "a/b", "//", "$SYS/x", "a b/ü", " ", "\u{1}"] {
        assert!(TopicName::new(ok).is_ok(), "{ok:?}");
    }
    assert_eq!(TopicName::new(""), Err(TopicError::Empty));
    assert_eq!(TopicName::new("a/+"), Err(TopicError::Wildcard));
    assert_eq!(TopicName::new("#"), Err(TopicError::Wildcard));
    assert_eq!(TopicName::new("a\0b"), Err(TopicError::InvalidUtf8));
    // U+0000 is reported before a wildcard, wherever each is.
    assert_eq!(TopicName::new("a/+/\0"), Err(TopicError::InvalidUtf8));
    assert_eq!(TopicName::new("\0/#"), Err(TopicError::InvalidUtf8));
    // Multi-byte characters around the bytes looked for.
    assert!(TopicName::new("ü/€/日本").is_ok());
    assert_eq!(TopicName::new("ü+"), Err(TopicError::Wildcard));
    assert_eq!(
        TopicName::new("a".repeat(MAX_TOPIC_LEN + 1)),
        Err(TopicError::TooLong)
    );
    assert!(TopicName::new("a".repeat(MAX_TOPIC_LEN)).is_ok());
    let t = TopicName::new("$SYS/x").unwrap();
    assert!(t.is_dollar());
    assert!(!TopicName::new("a/$").unwrap().is_dollar());
    assert_eq!(format!("{t} {t:?}"), "$SYS/x \"$SYS/x\"");
}

#[test]
fn topic_filters() {
    for ok in [
        "#", "+", "a/#", "+/+", "/+", "a/+/b/#", "+/", "$SYS/#", "a//b", "$share",
    ] {
        let f = TopicFilter::new(ok).unwrap();
        assert_eq!(f.shared(), None, "{ok:?}");
    }
    for bad in ["a/#/b", "a#", "#/", "a/b+", "++", "+a", "a/##"] {
        assert_eq!(
            TopicFilter::new(bad),
            Err(TopicError::BadWildcard),
            "{bad:?}"
        );
    }
    assert_eq!(TopicFilter::new(""), Err(TopicError::Empty));
    assert_eq!(TopicFilter::new("a\0"), Err(TopicError::InvalidUtf8));
    assert_eq!(
        TopicFilter::new("#".repeat(MAX_TOPIC_LEN + 1)),
        Err(TopicError::TooLong)
    );
    assert!(TopicFilter::new("a/#").unwrap().has_wildcards());
    assert!(!TopicFilter::new("a/b").unwrap().has_wildcards());
}

#[test]
fn shared_filters() {
    let f = TopicFilter::new("$share/g1/a/+").unwrap();
    assert_eq!(f.shared(), Some(("g1", "a/+")));
    assert_eq!(f.match_filter(), "a/+");
    assert!(f.has_wildcards());
    assert!(f.matches(&TopicName::new("a/b").unwrap()));
    assert!(!f.matches(&TopicName::new("$share/g1/a/b").unwrap()));
    assert_eq!(
        TopicFilter::new("$share/g/#").unwrap().shared(),
        Some(("g", "#"))
    );
    assert!(!TopicFilter::new("$share/g/x").unwrap().has_wildcards());
    for bad in [
        "$share/",
        "$share/g",
        "$share/g/",
        "$share//a",
        "$share/+/a",
        "$share/#/a",
    ] {
        assert_eq!(TopicFilter::new(bad), Err(TopicError::BadShare), "{bad:?}");
    }
    assert_eq!(
        TopicFilter::new("$share/g/a#"),
        Err(TopicError::BadWildcard)
    );
    // Not the share prefix.
    assert_eq!(TopicFilter::new("$shared/g/a").unwrap().shared(), None);
    assert_eq!(TopicFilter::new("$SHARE/g/a").unwrap().shared(), None);
    // Raw matching strips the share prefix the same way.
    assert!(topic_matches("$share/g/a/+", "a/b"));
    assert!(!topic_matches("$share/g/#", "$SYS/x"));
    assert!(!topic_matches("$share/g", "g"));
    assert!(!topic_matches("$share//a", "a"));
}

#[test]
fn matching() {
    let yes = [
        ("a/b", "a/b"),
        ("#", "a"),
        ("#", "a/b/c"),
        ("#", "/"),
        ("a/#", "a"), // `#` matches the parent level.
        ("a/#", "a/"),
        ("a/#", "a/b/c"),
        ("+", "a"),
        ("+", ""), // `+` matches an empty level...
        ("+/+", "/"),
        ("/+", "/"),
        ("+/b", "/b"),
        ("a/+/c", "a//c"),
        ("+/#", "a"),
        ("$SYS/#", "$SYS"),
        ("$SYS/+", "$SYS/x"),
        ("$+", "$+"),
    ];
    for (f, t) in yes {
        // "" and "$+" are not valid topic names: only the raw matcher's structure is tested.
        if t.is_empty() || t.contains('+') {
            continue;
        }
        assert!(topic_matches(f, t), "{f:?} should match {t:?}");
        let (f2, t2) = (TopicFilter::new(f).unwrap(), TopicName::new(t).unwrap());
        assert!(f2.matches(&t2), "{f:?} should match {t:?}");
    }
    let no = [
        ("a/b", "a"),
        ("a", "a/b"),
        ("a", "A"),
        ("a/+", "a"),
        ("+", "a/b"),
        ("+", "/"),
        ("a/+/c", "a/b/c/d"),
        ("a/#", "ab"),
        ("a/#", "b/a"),
        // §4.7.2: wildcards at the first level never match `$` topics.
        ("#", "$SYS"),
        ("#", "$SYS/x"),
        ("+/x", "$SYS/x"),
        ("+", "$x"),
        ("+/#", "$SYS/x"),
        // Invalid input never matches.
        ("a/#/b", "a/x/b"),
        ("a+", "a+"),
        ("#", "a/+"),
        ("a/#", "a/#"),
        ("", ""),
        ("+", ""),
        ("a", "a\0"),
    ];
    for (f, t) in no {
        assert!(!topic_matches(f, t), "{f:?} should not match {t:?}");
    }
}

// === proptests ===

/// Topic levels from a small alphabet, so that random filters often match random names.
fn level() -> impl Strategy<Value = String> {
    "[ab$]{0,2}"
}

fn topic() -> impl Strategy<Value = String> {
    prop::collection::vec(level(), 1..6)
        .prop_map(|levels| levels.join("/"))
        .prop_filter("non-empty", |t| !t.is_empty())
}

proptest! {
    /// A filter built from a topic by replacing levels with `+` and a suffix with `#` matches
    /// it, unless a wildcard replaced the first level of a `$` topic.
    #[test]
    fn derived_filter_matches(
        t in topic(),
        plus in prop::collection::vec(any::<bool>(), 6),
        hash_at in prop::option::of(0usize..7),
    ) {
        let levels: Vec<&str> = t.split('/').collect();
        let mut f: Vec<&str> = levels
            .iter()
            .zip(&plus)
            .map(|(l, &p)| if p { "+" } else { *l })
            .collect();
        if let Some(at) = hash_at {
            // `#` may replace any suffix, including an empty one (it matches the parent).
            f.truncate(at.min(f.len()));
            f.push("#");
        }
        let filter = f.join("/");
        let first_wild = f.first().is_some_and(|l| *l == "+" || *l == "#");
        let expect = !(t.starts_with('$') && first_wild);
        prop_assert_eq!(topic_matches(&filter, &t), expect, "{} vs {}", filter, t);
        let tf = TopicFilter::new(filter.as_str()).unwrap();
        prop_assert_eq!(tf.matches(&TopicName::new(t.as_str()).unwrap()), expect);
        let shared = format!("$share/g/{filter}");
        prop_assert_eq!(topic_matches(&shared, &t), expect);
    }

    /// On arbitrary strings, the raw matcher agrees with validation plus `TopicFilter::matches`.
    #[test]
    fn raw_matcher_agrees_with_newtypes(f in "[ab+#/$\0]{0,8}", t in "[ab+#/$\0]{0,8}") {
        let typed = match (TopicFilter::new(f.as_str()), TopicName::new(t.as_str())) {
            (Ok(f), Ok(t)) => f.matches(&t),
            _ => false,
        };
        prop_assert_eq!(topic_matches(&f, &t), typed);
    }

    /// A topic name matches itself as a filter, and `#` matches exactly the non-`$` names.
    #[test]
    fn self_and_hash(t in topic()) {
        prop_assert!(topic_matches(&t, &t));
        prop_assert_eq!(topic_matches("#", &t), !t.starts_with('$'));
    }
}
