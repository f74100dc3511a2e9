//! Types shared by Rampart's two planes.
//!
//! Today this is the wire format of the control link ([`link`]): the Unix socket that joins the
//! control plane and the data plane. The validated policy snapshot (accounts, ACLs, API keys,
//! device allowlist) arrives over the same link in a later milestone and will live here too.
//!
//! What this crate deliberately does not do: own sockets or read the clock. Both planes bring
//! their own sockets (with their own timeouts); this crate turns bytes into typed messages and
//! back, with hard size limits, and never panics on input. [`link::read_hello`] reads from any
//! `std::io::Read` the caller hands it.

#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]
#![warn(missing_docs)]

pub mod link;
