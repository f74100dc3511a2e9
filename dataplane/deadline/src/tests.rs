use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::*;

const HTTP: &[StageSpec] = &[
    StageSpec {
        name: "handshake",
        default: StageLimit::fixed(Duration::from_secs(10)),
        bounded: true,
    },
    StageSpec {
        name: "header",
        default: StageLimit::fixed(Duration::from_secs(20)),
        bounded: false,
    },
    StageSpec {
        name: "body",
        default: StageLimit::fixed(Duration::from_secs(20)),
        bounded: false,
    },
];

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn parses_apache_forms() {
    assert_eq!(
        StageLimit::parse("20").unwrap(),
        StageLimit::fixed(secs(20))
    );
    let l = StageLimit::parse("20-40,MinRate=500").unwrap();
    assert_eq!(l.timeout(), secs(20));
    assert_eq!(l.max(), Some(secs(40)));
    assert_eq!(l.min_rate(), NonZeroU32::new(500));
    let l = StageLimit::parse("20,minrate=500").unwrap();
    assert_eq!(l.max(), None);
    assert!(!l.is_bounded());
    assert!(StageLimit::parse("0").unwrap().is_disabled());
}

#[test]
fn rejects_with_apaches_rules() {
    assert_eq!(
        StageLimit::parse("20-40"),
        Err(ParseError::RangeWithoutMinRate)
    );
    assert_eq!(
        StageLimit::parse("20,MinRate=0"),
        Err(ParseError::ZeroMinRate)
    );
    assert_eq!(
        StageLimit::parse("40-20,MinRate=5"),
        Err(ParseError::MaxNotAboveTimeout)
    );
    assert_eq!(
        StageLimit::parse("20-20,MinRate=5"),
        Err(ParseError::MaxNotAboveTimeout)
    );
    assert_eq!(StageLimit::parse("-5"), Err(ParseError::BadNumber));
    assert_eq!(StageLimit::parse("1.5"), Err(ParseError::BadNumber));
    assert_eq!(StageLimit::parse(""), Err(ParseError::BadNumber));
    assert_eq!(StageLimit::parse("20,Rate=5"), Err(ParseError::BadOption));
    assert_eq!(
        StageLimit::parse("20,MinRate=5,MinRate=6"),
        Err(ParseError::BadOption)
    );
    assert_eq!(StageLimit::parse("99999999999"), Err(ParseError::BadNumber));
    assert_eq!(
        StageLimit::parse("5,MinRate=+5"),
        Err(ParseError::BadNumber)
    );
    assert_eq!(StageLimit::parse("+5"), Err(ParseError::BadNumber));
}

#[test]
fn plan_overrides_defaults_and_validates() {
    let plan = StagePlan::parse("handshake=5 HEADER=20-40,MinRate=500", HTTP).unwrap();
    assert_eq!(plan.get("handshake"), Some(StageLimit::fixed(secs(5))));
    assert_eq!(plan.get("header").unwrap().max(), Some(secs(40)));
    assert_eq!(plan.get("body"), Some(StageLimit::fixed(secs(20))));
    assert_eq!(
        plan.to_string(),
        "handshake=5 header=20-40,MinRate=500 body=20"
    );

    let err = StagePlan::parse("handshake=0", HTTP).unwrap_err();
    assert_eq!(err.error, ParseError::MustBeBounded);
    assert_eq!(err.stage, "handshake");
    let err = StagePlan::parse("handshake=10,MinRate=100", HTTP).unwrap_err();
    assert_eq!(err.error, ParseError::MustBeBounded);
    assert!(StagePlan::parse("handshake=10-20,MinRate=100", HTTP).is_ok());
    assert_eq!(
        StagePlan::parse("trailer=5", HTTP).unwrap_err().error,
        ParseError::UnknownStage
    );
    assert_eq!(
        StagePlan::parse("body=5 body=6", HTTP).unwrap_err().error,
        ParseError::Duplicate
    );
    assert_eq!(
        StagePlan::parse("body", HTTP).unwrap_err().error,
        ParseError::MissingStage
    );
    // Unbounded stages may be disabled, as in Apache.
    assert!(
        StagePlan::parse("body=0", HTTP)
            .unwrap()
            .get("body")
            .unwrap()
            .is_disabled()
    );
}

#[test]
fn clock_follows_reqtimeout_arithmetic() {
    let now = Instant::now();
    let limit = StageLimit::parse("20-40,MinRate=500").unwrap();
    let mut clock = StageClock::start(limit, now);
    assert_eq!(clock.deadline(), Some(now + secs(20)));
    // 500 bytes at MinRate=500 buy one second.
    clock.on_bytes(500);
    assert_eq!(clock.deadline(), Some(now + secs(21)));
    // 250 bytes buy half a second.
    clock.on_bytes(250);
    assert_eq!(clock.deadline(), Some(now + Duration::from_millis(21_500)));
    // The extension stops at MAX.
    clock.on_bytes(1_000_000);
    assert_eq!(clock.deadline(), Some(now + secs(40)));
    assert!(!clock.is_expired(now + secs(39)));
    assert!(clock.is_expired(now + secs(40)));
}

#[test]
fn fixed_clock_ignores_bytes_and_disabled_never_expires() {
    let now = Instant::now();
    let mut clock = StageClock::start(StageLimit::fixed(secs(10)), now);
    clock.on_bytes(1 << 20);
    assert_eq!(clock.deadline(), Some(now + secs(10)));

    let mut off = StageClock::start(StageLimit::DISABLED, now);
    off.on_bytes(5);
    assert_eq!(off.deadline(), None);
    assert!(!off.is_expired(now + secs(1_000_000)));
}

#[test]
fn write_clock_restarts_on_progress() {
    let now = Instant::now();
    let mut w = WriteClock::new(secs(5));
    assert_eq!(w.deadline(), None);
    w.on_pending(now);
    assert_eq!(w.deadline(), Some(now + secs(5)));
    // Pending again without progress does not push the deadline.
    w.on_pending(now + secs(3));
    assert_eq!(w.deadline(), Some(now + secs(5)));
    w.on_progress(now + secs(4));
    assert_eq!(w.deadline(), Some(now + secs(9)));
    w.on_idle();
    assert_eq!(w.deadline(), None);
}

proptest! {
    /// The deadline never moves backwards and never passes the cap, whatever arrives.
    #[test]
    fn deadline_monotonic_and_capped(t in 1u64..100, extra in 1u64..100, rate in 1u32..100_000,
                                     reads in proptest::collection::vec(0usize..1_000_000, 0..50)) {
        let now = Instant::now();
        let limit = StageLimit::with_rate(secs(t), Some(secs(t + extra)), NonZeroU32::new(rate).unwrap()).unwrap();
        let mut clock = StageClock::start(limit, now);
        let mut last = clock.deadline().unwrap();
        for n in reads {
            clock.on_bytes(n);
            let d = clock.deadline().unwrap();
            prop_assert!(d >= last);
            prop_assert!(d <= now + secs(t + extra));
            last = d;
        }
    }

    /// Any string either parses to a limit that prints back to itself, or is an error; no panic.
    #[test]
    fn parse_never_panics_and_round_trips(s in "\\PC{0,24}") {
        if let Ok(limit) = StageLimit::parse(&s) {
            prop_assert_eq!(StageLimit::parse(&limit.to_string()), Ok(limit));
        }
        let _ = StagePlan::parse(&s, HTTP);
    }
}
