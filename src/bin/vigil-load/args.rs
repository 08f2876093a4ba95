//! Command line of `vigil-load`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

pub use crate::duration::parse_duration;

/// Load client for the vigil heartbeat line protocol.
///
/// Opens and holds many TCP connections from one single-threaded mio loop,
/// runs one scenario, prints a table on stdout (progress on stderr) and, with
/// `--json FILE`, writes every raw figure.
#[derive(Debug, Parser)]
#[command(name = "vigil-load", version)]
pub struct Args {
    /// What to measure.
    #[arg(value_enum)]
    pub scenario: Scenario,

    /// Server address.
    #[arg(long, default_value = "127.0.0.1:7373")]
    pub addr: SocketAddr,

    /// Connections to open.
    #[arg(long, default_value_t = 1000)]
    pub conns: usize,

    /// Connections being opened at most: connects in flight plus first
    /// `PING`s not yet answered (keep it under the server's listen backlog).
    #[arg(long, default_value_t = 100)]
    pub pending: usize,

    /// Spread the connections over this many source addresses, 127.0.0.1
    /// to 127.0.0.N (1 to 254; round robin), each with its own ephemeral
    /// ports, so that ports are not the limit past ~28,000 connections to one
    /// server address. 1: no bind, the kernel picks source and port.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=254))]
    pub sources: u8,

    /// How long to hold / heartbeat / keep alive once the connections are open.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub duration: Duration,

    /// heartbeat: `PING`s kept in flight per connection.
    #[arg(long, default_value_t = 8)]
    pub window: usize,

    /// reap: the idle timeout the server was started with (the deadline of a
    /// connection is the time its last byte was sent plus this).
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    pub idle_timeout: Duration,

    /// reap: how long past its deadline a connection may stay open before it
    /// counts as never reaped.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub grace: Duration,

    /// keepalive: one `PING` per connection every this long.
    #[arg(long, value_parser = parse_duration, default_value = "500ms")]
    pub interval: Duration,

    /// Give up on connects still pending after this long.
    #[arg(long, value_parser = parse_duration, default_value = "20s")]
    pub connect_timeout: Duration,

    /// Server process to observe through /proc (memory, CPU, context
    /// switches, open files).
    #[arg(long)]
    pub server_pid: Option<u32>,

    /// Write every raw figure to this file as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,

    /// A label for the server in the report (e.g. `vigil`, `baseline`).
    #[arg(long, default_value = "server")]
    pub label: String,

    /// Split the connections over this many load processes (this program
    /// re-run), for more connections than one process may open; the report
    /// adds their figures up (counts and rates summed, latencies the worst
    /// process's, reap lateness recomputed from every sample).
    #[arg(long, default_value_t = 1)]
    pub procs: usize,
}

/// The scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Open N connections as fast as the server takes them and hold them silent.
    Hold,
    /// K connections each keeping W `PING <n>` in flight: throughput and round trips.
    Heartbeat,
    /// N connections send one `PING` and go silent: lateness of each `BYE idle`.
    Reap,
    /// N connections `PING` every interval against an idle timeout of 2x: none may be reaped.
    Keepalive,
}

impl Scenario {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Hold => "hold",
            Scenario::Heartbeat => "heartbeat",
            Scenario::Reap => "reap",
            Scenario::Keepalive => "keepalive",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5x").is_err());
    }
}
