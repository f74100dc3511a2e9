//! `StageLimit::parse` on arbitrary UTF-8: never panics, and whatever it accepts prints back to
//! a string that parses to the same limit.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_deadline::StageLimit;

fuzz_target!(|data: &[u8]| {
    // Configuration values are `&str`; invalid UTF-8 never reaches the parser.
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(limit) = StageLimit::parse(input) else {
        return;
    };

    // Apache's rules hold for anything accepted: a range needs a rate, and MAX > T.
    if let Some(max) = limit.max() {
        assert!(
            limit.min_rate().is_some(),
            "{input:?}: range without MinRate"
        );
        assert!(max > limit.timeout(), "{input:?}: MAX <= T");
    }
    assert_eq!(
        limit.worst_case().is_some(),
        limit.is_bounded(),
        "{input:?}"
    );

    let printed = limit.to_string();
    assert_eq!(
        StageLimit::parse(&printed),
        Ok(limit),
        "{input:?} printed as {printed:?}"
    );
});
