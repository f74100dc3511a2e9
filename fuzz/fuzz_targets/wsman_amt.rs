//! A hostile AMT device's WS-MAN answers: whatever bytes come back for whatever route, the
//! operation never panics, and it ends (an error, or a JSON answer) within its exchange cap.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_wsman::amt::{MAX_EXCHANGES, Operation, Request, UserConsent};

fn requests() -> [Request; 14] {
    [
        Request::Version,
        Request::GeneralSettings,
        Request::HardwareInfo,
        Request::PowerState,
        Request::PowerCapabilities,
        Request::PowerAction { action: 8 },
        Request::PowerAction { action: 100 },
        Request::PowerAction { action: 501 },
        Request::BootOptions {
            action: 400,
            use_sol: true,
        },
        Request::FeaturesGet,
        Request::FeaturesSet {
            user_consent: UserConsent::Kvm,
            enable_sol: true,
            enable_ider: false,
            enable_kvm: true,
            ocr: Some(true),
        },
        Request::AuditLog { start_index: 3 },
        Request::EventLog,
        Request::PowerAction { action: 500 },
    ]
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the HTTP status; the rest is every answer's body. The message id
    // is "0" so that an answer with `RelatesTo` 0 (as in AMT's samples) is taken.
    let (status, body) = match data.split_first() {
        Some((s, rest)) => (if s & 1 == 0 { 200 } else { 400 }, rest),
        None => (200, data),
    };
    for req in requests() {
        let mut op = Operation::new(req, "g:16992");
        let mut n = 0;
        while op.next_request("0").is_some() {
            n += 1;
            assert!(n <= MAX_EXCHANGES);
            if op.on_response(status, body).is_err() {
                break;
            }
        }
        let _ = op.finish();
    }
});
