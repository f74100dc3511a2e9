//! Digest challenges and `Authorization` values from a hostile device or client: parsing never
//! panics, and a response computed for a parsed challenge verifies against it.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_wsman::digest::{Challenge, DigestClient, verify};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Whatever it is, the device-side check must not panic.
    let _ = verify(text, "r", "n", b"pw", "POST");
    if let Ok(c) = Challenge::parse(text) {
        let (realm, nonce) = (c.realm.clone(), c.nonce.clone());
        let mut d = DigestClient::new();
        d.challenged(c);
        let auth = d
            .authorization("admin", b"pw", "POST", "/wsman", "cn")
            .expect("a challenge is known");
        // Values with quotes or backslashes cannot round-trip through the quoted form.
        if !realm.contains(['"', '\\']) && !nonce.contains(['"', '\\']) {
            assert!(verify(&auth, &realm, &nonce, b"pw", "POST"), "{auth}");
        }
    }
});
