//! Types and decisions shared by Rampart's two planes.
//!
//! - [`link`]: the wire format of the control link, the Unix socket that joins the control plane
//!   and the data plane (greeting, snapshot frames, acknowledgements).
//! - [`cred`]: keyed credential digests and the API-key token format.
//! - [`acl`]: MQTT topic and filter validation, matching, and ACL rule evaluation.
//! - [`snapshot`]: the policy snapshot (accounts, ACLs, API keys, device allowlist) the control
//!   plane compiles, its encoding, and the validated [`Policy`] the data plane enforces.
//!
//! What this crate deliberately does not do: own sockets, read the clock, or hash passwords.
//! Both planes bring their own sockets (with their own timeouts) and pass the time in; this
//! crate turns bytes into typed, validated values and back, with hard size limits, and never
//! panics on input. Human passwords (Argon2id) are checked only by the control plane.

#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]
#![warn(missing_docs)]

pub mod acl;
pub mod cred;
pub mod link;
pub mod snapshot;

pub use snapshot::{Policy, Snapshot};
