//! Load generator for Rampart.
//!
//! One subcommand per kind of load:
//!
//! - `handshake`: N workers, each on its own OS thread with blocking sockets, repeatedly
//!   connect, complete a full TLS handshake (no resumption), send close_notify and close.
//! - `cira`: N simulated AMT devices dial the CIRA port at a given rate and hold their APF
//!   tunnels with keepalives; admission latency, tunnels up and alive, time for all.
//! - `mqtt` (alias `mqtt-fanout`): P publishers publish timestamped messages (fixed size or a
//!   real payload file, optionally retained) that S subscribers receive through their filters,
//!   over plain TCP or TLS, MQTT 3.1.1 or 5.0, QoS 0, 1 or 2, with one account or one per
//!   connection, for a duration or a message count, open or closed loop; measures sent and
//!   delivered messages/s, losses, duplicates, reordering and end-to-end latency.
//! - `http`: legitimate HTTPS requests on keep-alive connections at a fixed rate (open loop,
//!   latency from the scheduled send time) while optional slowloris, slow-body and slow-read
//!   attackers hold connections; measures the legitimate clients' availability and latency, and
//!   how long the server let each attacker live.
//!
//! The [`amt`] module is a simulated Intel AMT device (the CIRA client side of APF, with a small
//! AMT behind WS-MAN and the redirection service of [`amt_redir`]), used by the CIRA server's
//! integration tests; [`amt_redir::RedirBrowser`] plays the browser's side of a redirection
//! session.
//!
//! Latencies go into per-thread `hdrhistogram`s, merged at the end into a summary table and,
//! with `--json`, a JSON report. `--sample-rss-pid` follows the server's resident memory while
//! the load runs. `http --html FILE` also writes a self-contained page charting throughput and
//! latency per second (`chart.rs` draws the SVG; other modes can use it).
//!
//! What it deliberately does not do:
//! - send load anywhere but this machine: targets must be loopback addresses (`127.0.0.0/8`,
//!   `::1`, `localhost`), and names are never resolved through DNS;
//! - run unbounded: every run stops at a duration (default 10 s, at most 1 h) and/or a count;
//! - use an async runtime: the client side is plain threads, so the figures measure the server.

#![forbid(unsafe_code)]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod amt;
pub mod amt_redir;
mod amt_sim;
mod chart;
mod cira;
pub mod cli;
mod handshake;
mod http;
mod mqtt;
mod report;
mod rss;
mod runner;
mod timeline;

use cli::{Cli, Command};

/// Runs the selected mode to completion: progress on stderr, summary on stdout.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let command_line: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    match cli.command {
        Command::Handshake(args) => handshake::run(&args, command_line),
        Command::Mqtt(args) => mqtt::run(&args, command_line),
        Command::Cira(args) => cira::run(&args, command_line),
        Command::Http(args) => http::run(&args, command_line),
    }
}
