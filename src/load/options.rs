//! What a load run does: the scenario and its settings, as `vigil-load`'s
//! command line and as a plain struct for programs that start it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::ValueEnum;
use serde::{Deserialize, Serialize};

use crate::duration::parse_duration;

/// The settings of one load run: `vigil-load`'s flags.
///
/// [`Options::to_args`] turns them back into those flags, so that a program
/// starting `vigil-load` (the capacity benchmark, `--procs`' children) names
/// no flag itself.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use vigil::load::{Options, Scenario};
///
/// let mut opts = Options::new(Scenario::Reap, "127.0.0.1:7373".parse()?);
/// opts.conns = 50;
/// opts.idle_timeout = Duration::from_millis(200);
/// let args = opts.to_args();
/// assert_eq!(args[0], "reap");
/// assert!(args.contains(&"--idle-timeout=200ms".to_string()));
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct Options {
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

    /// How long to hold / heartbeat / keep alive / roll once the connections
    /// are open.
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
    /// counts as never reaped. rolling: how long after `--duration` to wait
    /// for the last replies and reconnects.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub grace: Duration,

    /// keepalive: one `PING` per connection every this long.
    #[arg(long, value_parser = parse_duration, default_value = "500ms")]
    pub interval: Duration,

    /// rolling: new connects per second besides the held connections, each
    /// one `PING`, its `PONG`, then closed.
    #[arg(long, default_value_t = 100)]
    pub rate: u32,

    /// Declare this keep-alive (`KEEPALIVE <dur>`, protocol v1.2) on every
    /// connection as soon as it is established. Off by default.
    #[arg(long, value_parser = parse_duration)]
    pub keepalive: Option<Duration>,

    /// fanout: messages of the latency phase, one every `--gap`.
    #[arg(long, default_value_t = 50)]
    pub messages: usize,

    /// fanout: time between two messages of the latency phase.
    #[arg(long, value_parser = parse_duration, default_value = "100ms")]
    pub gap: Duration,

    /// fanout: messages of the throughput phase, each sent on the previous
    /// one's `OK`.
    #[arg(long, default_value_t = 300)]
    pub burst: usize,

    /// fanout: bytes of each message's text (at least 11: a sequence number
    /// and a space).
    #[arg(long, default_value_t = 64)]
    pub payload: usize,

    /// Give up on connects still pending after this long.
    #[arg(long, value_parser = parse_duration, default_value = "20s")]
    pub connect_timeout: Duration,

    /// Server process to observe through /proc (memory, CPU, context
    /// switches, open files).
    #[arg(long)]
    pub server_pid: Option<u32>,

    /// fanout: another instance of the same fan-out, sharing a bus with
    /// `--addr`'s (repeat the flag for more). The subscribers are spread
    /// round robin over `--addr` and these; the publisher and the pinger
    /// stay on `--addr`, and an `OK <n>` counts the instances (protocol
    /// v1.3), so n must be at least their number.
    #[arg(long = "spread", value_name = "ADDR")]
    pub spread: Vec<SocketAddr>,

    /// fanout: the process of a `--spread` instance (repeat the flag): its
    /// CPU, memory and open files are added to `--server-pid`'s.
    #[arg(long = "spread-pid", value_name = "PID")]
    pub spread_pids: Vec<u32>,

    /// fanout: the bus's process (`redis-server`): its CPU over the
    /// throughput phase is reported apart, per message, and `OK <n>` counts
    /// instances (as with `--spread`), even with one.
    #[arg(long)]
    pub bus_pid: Option<u32>,

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

impl Options {
    /// `scenario` against `addr` with every other setting at the command
    /// line's default.
    pub fn new(scenario: Scenario, addr: SocketAddr) -> Options {
        #[derive(clap::Parser)]
        struct Defaults {
            #[command(flatten)]
            opts: Options,
        }
        let addr = addr.to_string();
        let argv = ["vigil-load", scenario.name(), "--addr", &addr];
        <Defaults as clap::Parser>::parse_from(argv).opts
    }

    /// The command line (without the program name) that gives these
    /// options: every flag spelled out, durations in milliseconds.
    pub fn to_args(&self) -> Vec<String> {
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        let mut args = vec![
            self.scenario.name().to_string(),
            format!("--addr={}", self.addr),
            format!("--conns={}", self.conns),
            format!("--pending={}", self.pending),
            format!("--sources={}", self.sources),
            format!("--duration={}", ms(self.duration)),
            format!("--window={}", self.window),
            format!("--idle-timeout={}", ms(self.idle_timeout)),
            format!("--grace={}", ms(self.grace)),
            format!("--interval={}", ms(self.interval)),
            format!("--rate={}", self.rate),
            format!("--messages={}", self.messages),
            format!("--gap={}", ms(self.gap)),
            format!("--burst={}", self.burst),
            format!("--payload={}", self.payload),
            format!("--connect-timeout={}", ms(self.connect_timeout)),
            format!("--label={}", self.label),
            format!("--procs={}", self.procs),
        ];
        if let Some(keepalive) = self.keepalive {
            args.push(format!("--keepalive={}", ms(keepalive)));
        }
        if let Some(pid) = self.server_pid {
            args.push(format!("--server-pid={pid}"));
        }
        args.extend(self.spread.iter().map(|a| format!("--spread={a}")));
        args.extend(self.spread_pids.iter().map(|p| format!("--spread-pid={p}")));
        if let Some(pid) = self.bus_pid {
            args.push(format!("--bus-pid={pid}"));
        }
        if let Some(path) = &self.json {
            args.push(format!("--json={}", path.display()));
        }
        args
    }
}

/// The scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Open N connections as fast as the server takes them and hold them silent.
    Hold,
    /// K connections each keeping W `PING <n>` in flight: throughput and round trips.
    Heartbeat,
    /// N connections send one `PING` and go silent: lateness of each `BYE idle`.
    Reap,
    /// N connections `PING` every interval against an idle timeout of 2x: none may be reaped.
    Keepalive,
    /// N clients connect at once (no `--pending` bound), each sends `PING`
    /// and waits for its `PONG`: a reconnect storm.
    Storm,
    /// N connections `PING` every interval and reconnect at once after `BYE
    /// shutdown`, plus `--rate` new connects a second: refused, reset and
    /// lost counts across a rolling restart.
    Rolling,
    /// N subscribers heartbeat every interval while one publisher sends
    /// `PUB`s to the fan-out example (`MSG` to every other connection, `OK
    /// <n>` to the sender): last-delivery latency, deliveries per second,
    /// server CPU per delivery, and every delivery accounted for.
    Fanout,
}

impl Scenario {
    /// The name used on the command line and in reports.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(vigil::load::Scenario::Keepalive.name(), "keepalive");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Hold => "hold",
            Scenario::Heartbeat => "heartbeat",
            Scenario::Reap => "reap",
            Scenario::Keepalive => "keepalive",
            Scenario::Storm => "storm",
            Scenario::Rolling => "rolling",
            Scenario::Fanout => "fanout",
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        opts: Options,
    }

    #[test]
    fn to_args_reads_back_the_same() {
        let mut opts = Options::new(Scenario::Heartbeat, "127.0.0.1:9".parse().unwrap());
        opts.conns = 7;
        opts.duration = Duration::from_millis(1500);
        opts.server_pid = Some(42);
        opts.json = Some(PathBuf::from("/tmp/x.json"));
        opts.label = "floor".into();
        opts.messages = 5;
        opts.gap = Duration::from_millis(20);
        opts.burst = 9;
        opts.payload = 100;
        opts.spread = vec![
            "127.0.0.1:10".parse().unwrap(),
            "127.0.0.2:11".parse().unwrap(),
        ];
        opts.spread_pids = vec![43, 44];
        opts.bus_pid = Some(45);
        let mut argv = vec!["vigil-load".to_string()];
        argv.extend(opts.to_args());
        assert_eq!(Cli::parse_from(argv).opts, opts);
    }
}
