//! The Rampart data plane.
//!
//! [`run`] opens every public port (HTTPS front, MQTT over TLS, CIRA) on every core with
//! `SO_REUSEPORT`, terminates TLS with the listener's hot-reloadable certificate, and drives each
//! connection through its stages under one deadline mechanism ([`rampart_deadline`]): the TLS
//! handshake, then the protocol's first stage (HTTP header, MQTT CONNECT, APF authentication).
//! SIGTERM drains (stop accepting, close connections, wait up to the drain timeout), SIGHUP
//! reloads certificates without dropping live connections.
//!
//! MQTT connections are served by the broker ([`mqtt`]): sessions, routing across cores,
//! persistence, external auth. The HTTPS front ([`front`]) serves the web console, proxies the
//! REST API to the control plane and hands `/mqtt` WebSocket connections to the broker. The
//! Prometheus endpoint is in `prometheus.rs`.
//!
//! What this crate deliberately does not do: hold secrets other than the listeners' own TLS keys
//! (never the database password or the CA key), parse configuration files (it takes
//! [`DataplaneConfig`]). The CIRA server ([`cira`]) admits Intel AMT devices' APF tunnels.

#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod cira;
pub mod config;
mod conn;
pub mod front;
pub mod link;
pub mod metrics;
pub mod mqtt;
pub mod policy;
mod prometheus;
mod server;

pub use cira::CiraConfig;
pub use config::{DataplaneConfig, ListenerConfig, Protocol};
pub use front::{AccessLog, FrontConfig};
pub use mqtt::{BrokerConfig, SlowPolicy};
pub use policy::PolicyHandle;
pub use server::{Error, run};
