//! `link::parse_hello` on raw bytes from the control-link socket: never panics, never uses more
//! than `MAX_LINE` bytes, and whatever it accepts re-encodes to a line that parses the same.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_policy::link::{MAX_LINE, parse_hello};

fuzz_target!(|data: &[u8]| {
    match parse_hello(data) {
        Ok(Some((hello, used))) => {
            assert!(used <= MAX_LINE, "used {used} > MAX_LINE");
            assert!(used <= data.len(), "used {used} of {} bytes", data.len());
            assert_eq!(
                data.get(used - 1),
                Some(&b'\n'),
                "greeting does not end at a newline"
            );
            // The greeting depends only on its own line, not on what follows it.
            assert_eq!(parse_hello(&data[..used]), Ok(Some((hello, used))));

            let wire = hello.encode();
            assert!(
                wire.len() <= MAX_LINE,
                "encoded greeting too long: {wire:?}"
            );
            assert_eq!(
                parse_hello(wire.as_bytes()),
                Ok(Some((hello, wire.len()))),
                "{hello:?} encoded as {wire:?}"
            );
        }
        // Waiting for more is only allowed while the line can still fit.
        Ok(None) => assert!(
            data.len() < MAX_LINE && !data.contains(&b'\n'),
            "Ok(None) for {} bytes",
            data.len()
        ),
        Err(_) => {}
    }
});
