//! `snapshot::decode` on hostile bytes: never panics, and whatever it accepts is a snapshot
//! that passed validation and re-encodes to the same data.
//!
//! Two paths per input: the bytes as a whole encoding (header checks), and the bytes as an
//! rkyv body behind a correct header (the SHA-256 would otherwise stop every mutation before
//! rkyv's validation and the semantic checks). The body path learns the body's generation from
//! the `Generation` error and frames it again with that one.
//!
//! Seeds (`fuzz/seeds/snapshot_decode/`): a valid encoding and its body, written by
//! `cargo test -p rampart-policy -- --ignored write_fuzz_seeds`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_policy::acl::AclAction;
use rampart_policy::link::valid_reason;
use rampart_policy::snapshot::{self, HEADER_LEN, MAGIC, Policy, SCHEMA_VERSION, SnapshotError};
use sha2::{Digest, Sha256};

fn frame(generation: u64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&SCHEMA_VERSION.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&generation.to_le_bytes());
    out.extend_from_slice(&(body.len() as u64).to_le_bytes());
    out.extend_from_slice(&Sha256::digest(body));
    out.extend_from_slice(body);
    out
}

fn check(bytes: &[u8], result: Result<Policy, SnapshotError>) {
    let policy = match result {
        Ok(policy) => policy,
        Err(e) => {
            // Every refusal has a token the link can carry.
            assert!(valid_reason(e.reason()), "{e:?}");
            return;
        }
    };
    // Accepted: the plain data round-trips through encode (which validates again).
    let snap = snapshot::decode_snapshot(bytes).expect("decode accepted, decode_snapshot must");
    assert_eq!(snap.generation, policy.generation());
    let again = snapshot::encode(&snap).expect("a decoded snapshot re-encodes");
    assert_eq!(snapshot::decode_snapshot(&again).as_ref(), Ok(&snap));
    // And the policy answers questions about its own records without panicking.
    for a in snap.accounts.iter().take(8) {
        let _ = policy.authenticate(&a.name, b"password");
        let _ = policy.check(&a.name, "client", AclAction::Subscribe("#"));
        for r in snap.acls.iter().take(8) {
            let _ = policy.check(&a.name, &a.name, AclAction::Subscribe(&r.topic));
        }
    }
    for d in snap.devices.iter().take(8) {
        assert!(policy.device(&d.guid).is_some());
        let _ = policy.verify_device(&d.guid, &d.mps_username, b"password");
    }
}

fuzz_target!(|data: &[u8]| {
    check(data, snapshot::decode(data));

    let framed = frame(0, data);
    let framed = match snapshot::decode(&framed) {
        Err(SnapshotError::Generation { body, .. }) => frame(body, data),
        _ => framed,
    };
    check(&framed, snapshot::decode(&framed));
});
