//! Criterion benches of Rampart's hot paths; the code lives in `benches/`.
//!
//! - `deadline`: parsing stage limits and plans, and the per-read / per-write clock updates.
//! - `link`: the control link's greeting parser on good and garbage input.
//! - `policy`: policy snapshot encode/decode at 10k accounts, keys and devices; one ACL decision
//!   over 100 rules; a service account's password check and an API-key check.
//! - `tls_handshake`: one full in-memory TLS handshake against our server policy
//!   (`rampart_tls::server_config`, P-384 ECDSA certificate), i.e. the CPU cost per handshake.
//!
//! What this crate deliberately does not do: open sockets or measure anything end to end; that
//! is `rampart-loadgen`'s job.

#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]
