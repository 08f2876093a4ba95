//! The `vigil` server's command line: flags in, [`Settings`] out.
//!
//! Pure: nothing here binds, logs or exits. `main.rs` turns a [`CliExit`]
//! into output and an exit status.

use std::ffi::OsString;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::Parser;
use log::LevelFilter;
use vigil::Config;

use crate::duration::parse_duration;

/// How often, at most, the counters line is logged while counters change.
pub const STATS_INTERVAL: Duration = Duration::from_secs(10);

/// The flags, as clap parses them.
#[derive(Debug, Parser)]
#[command(
    name = "vigil",
    version,
    about = "Holds long-lived TCP connections that speak the heartbeat line protocol, and reaps the idle ones.",
    after_help = "DUR is a whole number with a unit, ms, s or m (250ms, 5s, 2m); 0 means off.\n\
                  Exit status: 0 after SIGINT/SIGTERM, 1 if the address cannot be bound, 2 for a bad flag or value.\n\
                  The protocol is described in docs/protocol.md.",
    // The supervisor re-runs the binary with the user's flags followed by
    // its own (`--listen` with the real port, `--workers 1`, ...): the last
    // occurrence of a flag wins.
    args_override_self = true
)]
struct Cli {
    /// Address to bind (port 0: any free port)
    #[arg(long, allow_hyphen_values = true, value_name = "ADDR", default_value = "127.0.0.1:7373", value_parser = parse_addr)]
    listen: SocketAddr,

    /// Close a connection that sends nothing for this long; 0 turns it off
    #[arg(long, allow_hyphen_values = true, value_name = "DUR", default_value = "5s", value_parser = parse_duration)]
    idle_timeout: Duration,

    /// Close every connection this long after accept; 0 turns it off
    #[arg(long, allow_hyphen_values = true, value_name = "DUR", default_value = "0", value_parser = parse_duration)]
    lifetime: Duration,

    /// Send PING to a connection silent this long (shorter than --idle-timeout); 0 turns it off
    #[arg(long, allow_hyphen_values = true, value_name = "DUR", default_value = "0", value_parser = parse_duration)]
    probe_after: Duration,

    /// Open connections at most (with --workers: over all workers, each taking at most a tenth more than its share); the next one gets `BYE full`
    #[arg(long, allow_hyphen_values = true, value_name = "N", default_value = "100000", value_parser = parse_positive)]
    max_conns: usize,

    /// Longest line in bytes; a longer one gets `ERR line-too-long`
    #[arg(long, allow_hyphen_values = true, value_name = "N", default_value = "1024", value_parser = parse_positive)]
    max_line: usize,

    /// Bytes queued for a client that does not read before it is closed
    #[arg(long, allow_hyphen_values = true, value_name = "N", default_value = "65536", value_parser = parse_positive)]
    max_output: usize,

    /// Timer wheel resolution (more than 0)
    #[arg(long, allow_hyphen_values = true, value_name = "DUR", default_value = "10ms", value_parser = parse_tick)]
    tick: Duration,

    /// Serve Prometheus metrics over HTTP at ADDR /metrics (off by default)
    #[arg(long, allow_hyphen_values = true, value_name = "ADDR", value_parser = parse_addr)]
    metrics: Option<SocketAddr>,

    /// Log level: error, warn, info, debug or trace
    #[arg(long, allow_hyphen_values = true, value_name = "LEVEL", default_value = "info", value_parser = parse_level)]
    log_level: LevelFilter,

    /// On SIGTERM, spread the `BYE shutdown` closes over this long; a second signal ends it at once; 0: everyone at once
    #[arg(long, allow_hyphen_values = true, value_name = "DUR", default_value = "0", value_parser = parse_duration)]
    drain: Duration,

    /// Set SO_REUSEPORT: several servers share the address and the kernel spreads connections over them
    #[arg(long)]
    reuse_port: bool,

    /// Worker processes sharing the port, each one single-threaded; `auto` sizes N by --max-conns and the descriptor limit
    #[arg(long, allow_hyphen_values = true, value_name = "N|auto", default_value = "1", value_parser = parse_workers)]
    workers: Workers,

    /// Every connection starts with a PROXY protocol v1 or v2 header (HAProxy's send-proxy, send-proxy-v2)
    #[arg(long)]
    proxy_protocol: bool,

    /// With --proxy-protocol, the header must be complete this long after accept, or `ERR proxy-header`; 0 turns it off
    #[arg(long, allow_hyphen_values = true, value_name = "DUR", default_value = "5s", value_parser = parse_duration)]
    proxy_timeout: Duration,

    /// Shortest keep-alive a client may declare (`KEEPALIVE <dur>`)
    #[arg(long, allow_hyphen_values = true, value_name = "DUR", default_value = "1s", value_parser = parse_duration)]
    min_keepalive: Duration,

    /// Longest keep-alive a client may declare; `KEEPALIVE 0` gets it
    #[arg(long, allow_hyphen_values = true, value_name = "DUR", default_value = "10m", value_parser = parse_duration)]
    max_keepalive: Duration,

    /// Bytes per second one connection may send before `BYE flood`; 0 turns it off
    #[arg(long, allow_hyphen_values = true, value_name = "N", default_value = "0", value_parser = clap::value_parser!(u32))]
    max_input_rate: u32,

    /// Set by the supervisor: this process is worker I
    #[arg(long, hide = true, value_name = "I")]
    worker_index: Option<usize>,
}

/// How many worker processes serve the port (`--workers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workers {
    /// Exactly this many (at least 1). One means no supervisor: the process
    /// serves by itself, as before workers existed.
    Count(usize),
    /// Enough that each worker's share of `--max-conns` fits well under the
    /// per-process descriptor limit.
    Auto,
}

/// Everything the server needs to start.
#[derive(Debug)]
pub struct Settings {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The reactor's settings.
    pub config: Config,
    /// The protocol's longest line.
    pub max_line: usize,
    /// The logger's level.
    pub log_level: LevelFilter,
    /// Where to serve metrics, if anywhere.
    pub metrics: Option<SocketAddr>,
    /// Set `SO_REUSEPORT` on the listener.
    pub reuse_port: bool,
    /// Worker processes.
    pub workers: Workers,
    /// Expect a PROXY protocol header on every connection.
    pub proxy_protocol: bool,
    /// How long a PROXY header may take after accept (`None`: no limit).
    pub proxy_timeout: Option<Duration>,
    /// The shortest and the longest keep-alive a client may declare.
    pub keepalive: (Duration, Duration),
    /// `Some(i)` in a worker started by the supervisor.
    pub worker_index: Option<usize>,
}

/// Why the command line does not start a server.
#[derive(Debug)]
pub enum CliExit {
    /// `--help` or `--version`: print it, exit 0.
    Info(clap::Error),
    /// A bad flag or value: print the one-line message, exit 2.
    Usage(String),
}

impl fmt::Display for CliExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliExit::Info(info) => write!(f, "{}", info.render()),
            CliExit::Usage(message) => write!(f, "vigil: {message}"),
        }
    }
}

/// Parses the command line (the program name first).
///
/// # Errors
///
/// `--help`/`--version` ([`CliExit::Info`]), or a bad flag or value
/// ([`CliExit::Usage`], one line naming the flag).
pub fn parse<I, T>(args: I) -> Result<Settings, CliExit>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match Cli::try_parse_from(args) {
        Ok(cli) => cli.into_settings().map_err(CliExit::Usage),
        Err(err)
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) =>
        {
            Err(CliExit::Info(err))
        }
        Err(err) => Err(CliExit::Usage(one_line(&err))),
    }
}

impl Cli {
    fn into_settings(self) -> Result<Settings, String> {
        let off_if_zero = |d: Duration| (!d.is_zero()).then_some(d);
        if !self.probe_after.is_zero()
            && !self.idle_timeout.is_zero()
            && self.probe_after >= self.idle_timeout
        {
            return Err(format!(
                "invalid value '{:?}' for '--probe-after <DUR>': must be shorter than --idle-timeout ({:?})",
                self.probe_after, self.idle_timeout
            ));
        }
        // The wheel counts in ticks: a probe that rounds up to the idle
        // close's tick would never be sent.
        let ticks = |d: Duration| d.as_nanos().div_ceil(self.tick.as_nanos());
        if !self.probe_after.is_zero()
            && !self.idle_timeout.is_zero()
            && ticks(self.probe_after) >= ticks(self.idle_timeout)
        {
            return Err(format!(
                "invalid value '{:?}' for '--probe-after <DUR>': must be at least one tick ({:?}) shorter than --idle-timeout ({:?})",
                self.probe_after, self.tick, self.idle_timeout
            ));
        }
        if self.min_keepalive > self.max_keepalive {
            return Err(format!(
                "invalid value '{:?}' for '--min-keepalive <DUR>': must not be longer than --max-keepalive ({:?})",
                self.min_keepalive, self.max_keepalive
            ));
        }
        let mut config = Config::default();
        config.max_input_rate = (self.max_input_rate != 0).then_some(self.max_input_rate);
        config.idle_timeout = off_if_zero(self.idle_timeout);
        config.lifetime = off_if_zero(self.lifetime);
        config.probe_after = off_if_zero(self.probe_after);
        config.max_connections = self.max_conns;
        config.max_output = self.max_output;
        config.tick = self.tick;
        config.drain = self.drain;
        config.stats_interval = Some(STATS_INTERVAL);
        Ok(Settings {
            listen: self.listen,
            config,
            max_line: self.max_line,
            log_level: self.log_level,
            metrics: self.metrics,
            reuse_port: self.reuse_port,
            workers: self.workers,
            proxy_protocol: self.proxy_protocol,
            proxy_timeout: off_if_zero(self.proxy_timeout),
            keepalive: (self.min_keepalive, self.max_keepalive),
            worker_index: self.worker_index,
        })
    }
}

/// The first line of a clap error, without its `error: ` prefix: clap's
/// line already names the flag and the reason; the rest is tips and usage.
fn one_line(err: &clap::Error) -> String {
    let rendered = err.render().to_string();
    let first = rendered
        .lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("bad arguments");
    first
        .strip_prefix("error: ")
        .unwrap_or(first)
        .trim_end()
        .to_owned()
}

/// Parses the `--tick` DUR, which cannot be off.
fn parse_tick(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        tick if tick.is_zero() => Err("must be longer than 0".to_owned()),
        tick => Ok(tick),
    }
}

/// Parses a count that must be at least 1.
fn parse_positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err("expected a whole number, at least 1".to_owned()),
    }
}

/// Parses `--workers`: a count of at least 1, or `auto`.
fn parse_workers(text: &str) -> Result<Workers, String> {
    match text {
        "auto" => Ok(Workers::Auto),
        _ => parse_positive(text)
            .map(Workers::Count)
            .map_err(|_| "expected a whole number, at least 1, or auto".to_owned()),
    }
}

/// Parses `IP:PORT`.
fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    text.parse()
        .map_err(|_| "expected IP:PORT, such as 127.0.0.1:7373 or [::1]:0".to_owned())
}

/// Parses a log level, in lowercase.
fn parse_level(text: &str) -> Result<LevelFilter, String> {
    match text {
        "error" => Ok(LevelFilter::Error),
        "warn" => Ok(LevelFilter::Warn),
        "info" => Ok(LevelFilter::Info),
        "debug" => Ok(LevelFilter::Debug),
        "trace" => Ok(LevelFilter::Trace),
        _ => Err("expected error, warn, info, debug or trace".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(args: &[&str]) -> Settings {
        parse(std::iter::once("vigil").chain(args.iter().copied())).unwrap()
    }

    fn usage(args: &[&str]) -> String {
        match parse(std::iter::once("vigil").chain(args.iter().copied())) {
            Err(CliExit::Usage(message)) => message,
            other => panic!("{args:?} should be refused, got {other:?}"),
        }
    }

    #[test]
    fn the_bare_command_has_the_documented_defaults() {
        let s = settings(&[]);
        assert_eq!(s.listen, "127.0.0.1:7373".parse().unwrap());
        assert_eq!(s.config.idle_timeout, Some(Duration::from_secs(5)));
        assert_eq!(s.config.lifetime, None);
        assert_eq!(s.config.probe_after, None);
        assert_eq!(s.config.max_connections, 100_000);
        assert_eq!(s.config.max_output, 65_536);
        assert_eq!(s.config.tick, Duration::from_millis(10));
        assert_eq!(s.config.stats_interval, Some(STATS_INTERVAL));
        assert_eq!(s.max_line, 1024);
        assert_eq!(s.log_level, LevelFilter::Info);
        assert_eq!(s.metrics, None);
        assert!(!s.reuse_port);
        assert_eq!(s.workers, Workers::Count(1));
        assert!(!s.proxy_protocol);
        assert_eq!(s.proxy_timeout, Some(Duration::from_secs(5)));
        assert_eq!(
            s.keepalive,
            (Duration::from_secs(1), Duration::from_secs(600))
        );
        assert_eq!(s.config.max_input_rate, None);
        assert_eq!(s.worker_index, None);
    }

    #[test]
    fn scale_out_flags_reach_the_settings() {
        let s = settings(&["--reuse-port", "--workers", "4", "--proxy-protocol"]);
        assert!(s.reuse_port);
        assert_eq!(s.workers, Workers::Count(4));
        assert!(s.proxy_protocol);
        assert_eq!(settings(&["--workers=auto"]).workers, Workers::Auto);
    }

    #[test]
    fn a_later_flag_overrides_an_earlier_one() {
        // What the supervisor relies on when it starts a worker.
        let s = settings(&["--listen", "127.0.0.1:0", "--workers", "3", "--reuse-port"]);
        let mut args = vec!["--listen", "127.0.0.1:0", "--workers", "3", "--reuse-port"];
        args.extend([
            "--listen",
            "127.0.0.1:9",
            "--workers",
            "1",
            "--reuse-port",
            "--worker-index",
            "2",
        ]);
        let w = settings(&args);
        assert_eq!(s.workers, Workers::Count(3));
        assert_eq!(w.listen, "127.0.0.1:9".parse().unwrap());
        assert_eq!(w.workers, Workers::Count(1));
        assert_eq!(w.worker_index, Some(2));
    }

    #[test]
    fn every_flag_reaches_the_settings() {
        let s = settings(&[
            "--listen",
            "0.0.0.0:0",
            "--idle-timeout",
            "2m",
            "--lifetime=90s",
            "--probe-after",
            "30s",
            "--max-conns",
            "3",
            "--max-line",
            "16",
            "--max-output",
            "100",
            "--tick",
            "1ms",
            "--log-level",
            "trace",
            "--metrics",
            "127.0.0.1:9373",
        ]);
        assert_eq!(s.listen, "0.0.0.0:0".parse().unwrap());
        assert_eq!(s.config.idle_timeout, Some(Duration::from_secs(120)));
        assert_eq!(s.config.lifetime, Some(Duration::from_secs(90)));
        assert_eq!(s.config.probe_after, Some(Duration::from_secs(30)));
        assert_eq!(s.config.max_connections, 3);
        assert_eq!(s.config.max_output, 100);
        assert_eq!(s.config.tick, Duration::from_millis(1));
        assert_eq!(s.max_line, 16);
        assert_eq!(s.log_level, LevelFilter::Trace);
        assert_eq!(s.metrics, Some("127.0.0.1:9373".parse().unwrap()));
    }

    #[test]
    fn zero_durations_turn_limits_off() {
        let s = settings(&[
            "--idle-timeout",
            "0",
            "--lifetime",
            "0s",
            "--probe-after",
            "0ms",
        ]);
        assert_eq!(s.config.idle_timeout, None);
        assert_eq!(s.config.lifetime, None);
        assert_eq!(s.config.probe_after, None);
    }

    #[test]
    fn bad_values_are_one_line_naming_the_flag() {
        for (args, flag) in [
            (&["--idle-timeout", "5"][..], "--idle-timeout"),
            (&["--lifetime", "soon"], "--lifetime"),
            (&["--probe-after", "1h"], "--probe-after"),
            (&["--tick", "0"], "--tick"),
            (&["--tick", "0ms"], "--tick"),
            (&["--max-conns", "0"], "--max-conns"),
            (&["--max-conns", "-1"], "--max-conns"),
            (&["--lifetime", "-1s"], "--lifetime"),
            (&["--listen", "--tick"], "--listen"),
            (&["--max-line", "0"], "--max-line"),
            (&["--max-line", "1k"], "--max-line"),
            (&["--max-output", "0"], "--max-output"),
            (&["--listen", "localhost"], "--listen"),
            (&["--listen"], "--listen"),
            (&["--metrics", "9373"], "--metrics"),
            (&["--log-level", "INFO"], "--log-level"),
            (&["--workers", "0"], "--workers"),
            (&["--workers", "many"], "--workers"),
            (&["--workers", "-2"], "--workers"),
            (&["--reuse-port=yes"], "--reuse-port"),
            (&["--bogus"], "--bogus"),
            (&["--probe-after", "5s"], "--probe-after"),
            (
                &["--probe-after", "1s", "--idle-timeout", "500ms"],
                "--probe-after",
            ),
            (
                &["--probe-after", "12ms", "--idle-timeout", "15ms"],
                "--probe-after",
            ),
        ] {
            let message = usage(args);
            assert!(
                message.contains(flag),
                "{args:?}: {message:?} does not name {flag}"
            );
            assert!(
                !message.contains('\n'),
                "{args:?}: {message:?} is not one line"
            );
        }
    }

    #[test]
    fn probing_without_an_idle_timeout_is_allowed() {
        let s = settings(&["--idle-timeout", "0", "--probe-after", "1s"]);
        assert_eq!(s.config.probe_after, Some(Duration::from_secs(1)));
    }

    #[test]
    fn help_and_version_are_not_errors() {
        for flag in ["--help", "-h", "--version", "-V"] {
            assert!(
                matches!(parse(["vigil", flag]), Err(CliExit::Info(_))),
                "{flag}"
            );
        }
    }
}
