//! Topic matching and ACL evaluation on arbitrary strings: never panics, and the answers agree
//! with each other.
//!
//! Input: UTF-8 lines `filter \n topic \n username \n client_id \n other_filter` (missing lines
//! are empty). Invariants checked:
//! - a valid topic name matches itself, is within itself and overlaps itself;
//! - for a topic name used as a filter, `filter_within(f, t) == topic_matches(f, t)`;
//! - overlap is symmetric, and `within` implies `overlap`;
//! - `#` covers exactly the filters that cannot match a `$` topic;
//! - a compiled rule decides exactly like the plain functions on the filter with `%u`/`%c`
//!   substituted (for safe values), and a deny rule wins over `#`;
//! - a placeholder with an unsafe value never grants, and a deny rule with one refuses all.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_policy::acl::{
    Access, AclAction, MAX_TOPIC_LEN, Rule, evaluate, filter_within, filters_overlap,
    topic_matches, valid_topic_filter, valid_topic_name,
};

/// Left-to-right substitution, the way a rule reads its filter.
fn substitute(filter: &str, user: &str, client: &str) -> String {
    let mut out = String::new();
    let mut rest = filter;
    while let Some(c) = rest.chars().next() {
        if let Some(r) = rest.strip_prefix("%u") {
            out.push_str(user);
            rest = r;
        } else if let Some(r) = rest.strip_prefix("%c") {
            out.push_str(client);
            rest = r;
        } else {
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

fn safe(v: &str) -> bool {
    !v.is_empty() && !v.bytes().any(|b| matches!(b, b'+' | b'#' | b'/' | 0))
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = input.split('\n');
    let mut next = || lines.next().unwrap_or("");
    let (f, t, user, client, g) = (next(), next(), next(), next(), next());

    // Plain functions: no panic on anything.
    let matched = topic_matches(f, t);
    let within = filter_within(f, g);
    let overlap = filters_overlap(f, g);
    assert_eq!(
        overlap,
        filters_overlap(g, f),
        "overlap({f:?}, {g:?}) not symmetric"
    );
    if within {
        assert!(overlap, "within({f:?}, {g:?}) without overlap");
    }
    if valid_topic_name(t) {
        assert!(topic_matches(t, t), "{t:?} does not match itself");
        assert!(filter_within(t, t));
        assert!(filters_overlap(t, t));
        assert_eq!(filter_within(f, t), matched, "within({f:?}, topic {t:?})");
        if matched {
            assert!(filters_overlap(f, t));
        }
        assert_eq!(topic_matches("#", t), !t.starts_with('$'));
    }
    if valid_topic_filter(g) {
        assert!(filter_within(g, g), "{g:?} not within itself");
        assert_eq!(filter_within("#", g), !g.starts_with('$'), "# vs {g:?}");
    }

    // Compiled rules against the plain functions.
    let Ok(allow) = Rule::new(f, Access::ReadWrite) else {
        return;
    };
    let Ok(deny) = Rule::new(f, Access::Deny) else {
        return;
    };
    let all = Rule::new("#", Access::ReadWrite).expect("# is a valid filter");
    let has_placeholder = f.contains("%u") || f.contains("%c");
    let uses_unsafe = (f.contains("%u") && !safe(user)) || (f.contains("%c") && !safe(client));
    let publish = evaluate([&allow], user, client, AclAction::Publish(t));
    let subscribe = evaluate([&allow], user, client, AclAction::Subscribe(g));
    let denied_publish = evaluate([&all, &deny], user, client, AclAction::Publish(t));
    let denied_subscribe = evaluate([&all, &deny], user, client, AclAction::Subscribe(g));
    if uses_unsafe {
        assert!(
            !publish && !subscribe,
            "unsafe placeholder value granted access"
        );
        assert!(
            !denied_publish && !denied_subscribe,
            "unsafe deny rule did not fail closed"
        );
        return;
    }
    if has_placeholder && (user.contains('%') || client.contains('%')) {
        // A value containing `%` would make the model's substitution ambiguous.
        return;
    }
    let sf = substitute(f, user, client);
    if sf.len() > MAX_TOPIC_LEN {
        return;
    }
    assert_eq!(
        publish,
        topic_matches(&sf, t),
        "publish {t:?} under {f:?} as {sf:?}"
    );
    assert_eq!(
        subscribe,
        filter_within(&sf, g),
        "subscribe {g:?} under {f:?} as {sf:?}"
    );
    assert_eq!(
        denied_publish,
        topic_matches("#", t) && !topic_matches(&sf, t),
        "deny {f:?} on publish {t:?}"
    );
    assert_eq!(
        denied_subscribe,
        filter_within("#", g) && !filters_overlap(&sf, g),
        "deny {f:?} on subscribe {g:?}"
    );
});
