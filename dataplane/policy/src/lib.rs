//! Types shared by Rampart's two planes.
//!
//! Today this is the wire format of the control link ([`link`]): the Unix socket that joins the
//! control plane and the data plane. The validated policy snapshot (accounts, ACLs, API keys,
//! device allowlist) arrives over the same link in a later milestone and will live here too.
//!
//! What this crate deliberately does not do: I/O. Both planes bring their own sockets; this crate
//! turns bytes into typed messages and back, with hard size limits, and never panics on input.

#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]
#![warn(missing_docs)]

pub mod link;
