//! `StagePlan::parse` (the `RequestReadTimeout` syntax) on arbitrary UTF-8 with HTTPS's stages:
//! never panics, never lets a bounded stage become unlimited, and round-trips through Display.

#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rampart_deadline::{StageLimit, StagePlan, StageSpec};

/// The same shape as the gateway's HTTPS table (`dataplane/gateway/src/config.rs`).
const SPECS: &[StageSpec] = &[
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

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(plan) = StagePlan::parse(input, SPECS) else {
        return;
    };

    // Every stage is present, in declaration order, and the bounded ones are bounded.
    let names: Vec<_> = plan.iter().map(|(name, _)| name).collect();
    let expected: Vec<_> = SPECS.iter().map(|spec| spec.name).collect();
    assert_eq!(names, expected, "{input:?}");
    for spec in SPECS {
        let limit = plan
            .get(spec.name)
            .expect("every spec'd stage is in the plan");
        if spec.bounded {
            assert!(limit.is_bounded(), "{input:?}: {} = {limit}", spec.name);
        }
    }

    let printed = plan.to_string();
    assert_eq!(
        StagePlan::parse(&printed, SPECS).as_ref(),
        Ok(&plan),
        "{input:?} printed as {printed:?}"
    );
});
