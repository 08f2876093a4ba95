//! The scenarios and the loop they share.
//!
//! Every scenario is a [`Handler`] driven by [`drive`]: one loop that opens
//! connections through an [`Opener`] (bounded pending connects), polls, hands
//! each event to the handler, lets it send what is due, and prints progress
//! once a second. Every loop is bounded by a deadline.

pub mod heartbeat;
pub mod hold;
pub mod keepalive;
pub mod reap;

use std::io;
use std::time::{Duration, Instant};

use crate::args::Args;
use crate::conn::{Bye, ConnectError, Ev, Msg, Pool};
use crate::proc_stats;
use crate::report::Report;

/// The connect rate is also measured over this many first connections:
/// past about 14,000 connections from one source address to one server
/// port, the kernel's search for a free ephemeral port (it tries one parity
/// of `ip_local_port_range` first) dominates, on the client's side.
pub const EARLY_RATE_CONNS: usize = 10_000;

/// Files kept free under the limit (for `/proc`, the JSON file, stdio).
const FD_RESERVE: u64 = 12;

/// What a scenario does with the events of its connections.
pub trait Handler {
    /// One event, seen at the time it carries.
    fn on_event(&mut self, pool: &mut Pool, ev: Ev);
    /// Called every turn: send what is due; returns when it wants the next turn.
    fn on_turn(&mut self, _pool: &mut Pool, _now: Instant) -> Option<Instant> {
        None
    }
    /// Whether the phase is over (checked every turn).
    fn done(&self, pool: &Pool, opener: &Opener, now: Instant) -> bool;
    /// A short progress line.
    fn progress(&self, pool: &Pool, opener: &Opener) -> String;
}

/// Opens up to `target` connections, at most `max_pending` in flight.
///
/// A connection counts as established when the server has answered its
/// first `PING`, not when the kernel completed the handshake: the kernel
/// completes handshakes for the server before the server accepts them, so
/// only an answer proves the server took the connection. Bounding connects
/// plus unanswered first `PING`s keeps the listen queue (128 by default)
/// from overflowing, which would cost a 1 s SYN retransmission.
#[derive(Debug)]
pub struct Opener {
    pub target: usize,
    pub max_pending: usize,
    pub started: usize,
    pub established: usize,
    pub failed: usize,
    pub timed_out: usize,
    /// Stopped by this process's file-descriptor limit.
    pub fd_limited: bool,
    /// The first error that was not a file-descriptor limit.
    pub first_error: Option<String>,
    pub begun: Instant,
    pub last_established: Option<Instant>,
    /// When the first [`EARLY_RATE_CONNS`] were established.
    pub early_established: Option<Instant>,
    pub finished: Option<Instant>,
    connect_timeout: Duration,
    stopped: bool,
    /// This process's open-file limit, read at the start.
    fd_limit: Option<u64>,
    /// Connections that fit under the limit, keeping [`FD_RESERVE`] files
    /// free so that `/proc` can still be read and the report written.
    fd_room: usize,
    /// Connections whose first `PING` is not answered yet.
    unconfirmed: usize,
    confirming: Vec<bool>,
}

impl Opener {
    /// An opener that starts now.
    pub fn new(target: usize, max_pending: usize, connect_timeout: Duration) -> Opener {
        let fd_limit = proc_stats::own_fd_limit();
        let fd_room = fd_limit.map_or(usize::MAX, |limit| {
            limit.saturating_sub(proc_stats::own_fds() + FD_RESERVE) as usize
        });
        Opener {
            fd_limit,
            fd_room,
            target,
            max_pending: max_pending.max(1),
            started: 0,
            established: 0,
            failed: 0,
            timed_out: 0,
            fd_limited: false,
            first_error: None,
            begun: Instant::now(),
            last_established: None,
            early_established: None,
            finished: None,
            connect_timeout,
            stopped: false,
            unconfirmed: 0,
            confirming: Vec::new(),
        }
    }

    /// Starts connects until the pending bound, the target or a limit.
    fn fill(&mut self, pool: &mut Pool, now: Instant) {
        if self.finished.is_some() {
            return;
        }
        while !self.stopped
            && self.started < self.target
            && pool.pending + self.unconfirmed < self.max_pending
        {
            if self.started >= self.fd_room {
                self.fd_limited = true;
                self.stopped = true;
                break;
            }
            match pool.connect() {
                Ok(_) => self.started += 1,
                Err(ConnectError::FdLimit) => {
                    self.fd_limited = true;
                    self.stopped = true;
                }
                Err(ConnectError::Other(e)) => {
                    self.failed += 1;
                    self.first_error.get_or_insert_with(|| e.to_string());
                    // Out of ports or addresses: trying again will not help.
                    self.stopped = true;
                }
            }
        }
        if now.duration_since(self.begun) > self.connect_timeout
            && pool.pending + self.unconfirmed > 0
        {
            self.timed_out += pool.abandon_pending().len();
            for key in 0..self.confirming.len() {
                if self.confirming[key] {
                    self.confirming[key] = false;
                    pool.close(key);
                    self.timed_out += 1;
                }
            }
            self.unconfirmed = 0;
            self.stopped = true;
        }
        if pool.pending + self.unconfirmed == 0 && (self.stopped || self.started >= self.target) {
            self.finished = Some(now);
        }
    }

    /// Counts an event; for a connect, sends the first `PING` and returns
    /// the time taken just before sending it.
    fn on_event(&mut self, pool: &mut Pool, ev: &Ev) -> Option<Instant> {
        match *ev {
            Ev::Connected(key, _) => {
                if self.confirming.len() <= key {
                    self.confirming.resize(key + 1, false);
                }
                // Before the send: a deadline computed from it is never later
                // than the server's, so a close before it is truly early.
                let at = Instant::now();
                if pool.send(key, b"PING\n") {
                    self.confirming[key] = true;
                    self.unconfirmed += 1;
                }
                return Some(at);
            }
            Ev::Msg(key, Msg::Pong(_), at) if self.is_confirming(key) => {
                self.confirming[key] = false;
                self.unconfirmed -= 1;
                self.established += 1;
                self.last_established = Some(at);
                if self.established == EARLY_RATE_CONNS.min(self.target) {
                    self.early_established = Some(at);
                }
            }
            Ev::Closed(key, _) if self.is_confirming(key) => {
                self.confirming[key] = false;
                self.unconfirmed -= 1;
                self.failed += 1;
                self.first_error.get_or_insert_with(|| {
                    format!("connection #{key} closed before its first PONG")
                });
            }
            Ev::ConnectFailed(key) => {
                self.failed += 1;
                self.first_error
                    .get_or_insert_with(|| format!("connect #{key} refused or reset"));
            }
            _ => {}
        }
        None
    }

    fn is_confirming(&self, key: usize) -> bool {
        self.confirming.get(key).copied().unwrap_or(false)
    }

    /// Whether every connect has finished one way or another.
    pub fn is_done(&self) -> bool {
        self.finished.is_some()
    }

    /// Established connections per second over the opening.
    pub fn rate(&self) -> f64 {
        match self.last_established {
            Some(last) if self.established > 0 => {
                let secs = last.duration_since(self.begun).as_secs_f64();
                self.established as f64 / secs.max(1e-6)
            }
            _ => 0.0,
        }
    }

    /// Established connections per second over the first
    /// [`EARLY_RATE_CONNS`] (or all, if fewer were asked).
    pub fn early_rate(&self) -> f64 {
        self.early_established.map_or(f64::NAN, |at| {
            let n = EARLY_RATE_CONNS.min(self.target) as f64;
            n / at.duration_since(self.begun).as_secs_f64().max(1e-6)
        })
    }

    /// Seconds the opening took.
    pub fn secs(&self) -> f64 {
        self.last_established
            .map_or(0.0, |l| l.duration_since(self.begun).as_secs_f64())
    }

    /// Adds the opening figures and, where one applies, the reason it stopped.
    pub fn report(&self, r: &mut Report) {
        r.int("conns_target", "connections asked", "", self.target as u64);
        r.int(
            "established",
            "connections established",
            "",
            self.established as u64,
        );
        r.int("connect_failed", "connects failed", "", self.failed as u64);
        r.int(
            "connect_timed_out",
            "connects timed out",
            "",
            self.timed_out as u64,
        );
        r.num("connect_secs", "time to open them", "s", self.secs());
        r.num("connect_rate", "connect rate (all)", "conn/s", self.rate());
        r.num(
            "connect_rate_first_10k",
            "connect rate (first 10,000)",
            "conn/s",
            self.early_rate(),
        );
        let limit = self.fd_limit.unwrap_or(0);
        r.int("client_fd_limit", "load client fd limit", "", limit);
        r.text(
            "stopped_by",
            "stopped by",
            if self.fd_limited {
                "client fd limit"
            } else if self.timed_out > 0 || self.failed > 0 {
                "server or network"
            } else {
                "nothing (target reached)"
            },
        );
        if self.fd_limited {
            r.note(format!(
                "stopped by this process's file-descriptor limit ({limit}), not by the server"
            ));
        }
        if let Some(e) = &self.first_error {
            r.note(format!(
                "{} connects failed, {} timed out; first error: {e}",
                self.failed, self.timed_out
            ));
        }
    }
}

/// Prints a line on stderr at most once a second.
pub struct Progress {
    name: &'static str,
    begun: Instant,
    last: Instant,
}

impl Progress {
    /// Progress for scenario `name`, starting now.
    pub fn new(name: &'static str) -> Progress {
        let now = Instant::now();
        Progress {
            name,
            begun: now,
            last: now,
        }
    }

    fn tick(&mut self, now: Instant, line: impl FnOnce() -> String) {
        if now.duration_since(self.last) >= Duration::from_secs(1) {
            self.last = now;
            let t = now.duration_since(self.begun).as_secs_f64();
            eprintln!("[{}] {t:6.1}s {}", self.name, line());
        }
    }

    /// Prints a line now.
    pub fn say(&self, line: &str) {
        let t = self.begun.elapsed().as_secs_f64();
        eprintln!("[{}] {t:6.1}s {line}", self.name);
    }
}

/// Runs one phase: opens, polls, dispatches, until `handler.done()` or `end`.
pub fn drive<H: Handler>(
    pool: &mut Pool,
    handler: &mut H,
    opener: &mut Opener,
    end: Instant,
    progress: &mut Progress,
) -> io::Result<()> {
    let mut events = Vec::with_capacity(1024);
    loop {
        let now = Instant::now();
        opener.fill(pool, now);
        if now >= end || handler.done(pool, opener, now) {
            return Ok(());
        }
        let mut wake = end.min(now + Duration::from_millis(250));
        if let Some(at) = handler.on_turn(pool, now) {
            wake = wake.min(at);
        }
        pool.poll(Some(wake.saturating_duration_since(now)), &mut events)?;
        for ev in events.drain(..) {
            let ev = match (opener.on_event(pool, &ev), ev) {
                (Some(ping_at), Ev::Connected(key, _)) => Ev::Connected(key, ping_at),
                _ => ev,
            };
            handler.on_event(pool, ev);
        }
        progress.tick(Instant::now(), || handler.progress(pool, opener));
    }
}

/// How the server closed connections, by closing line.
#[derive(Debug, Default, Clone)]
pub struct Closes {
    pub idle: u64,
    pub full: u64,
    pub shutdown: u64,
    pub other_bye: u64,
    pub err: u64,
    /// Closed without a closing line.
    pub silent: u64,
    /// Connections whose closing line was seen.
    saw_line: Vec<bool>,
}

impl Closes {
    /// Counts a closing line or a close.
    pub fn on_event(&mut self, ev: &Ev) {
        match *ev {
            Ev::Msg(key, Msg::Bye(b), _) => {
                self.mark(key);
                match b {
                    Bye::Idle => self.idle += 1,
                    Bye::Full => self.full += 1,
                    Bye::Shutdown => self.shutdown += 1,
                    _ => self.other_bye += 1,
                }
            }
            Ev::Msg(key, Msg::Err, _) => {
                self.mark(key);
                self.err += 1;
            }
            Ev::Closed(key, _) if !self.saw_line.get(key).copied().unwrap_or(false) => {
                self.silent += 1;
            }
            _ => {}
        }
    }

    fn mark(&mut self, key: usize) {
        if self.saw_line.len() <= key {
            self.saw_line.resize(key + 1, false);
        }
        self.saw_line[key] = true;
    }

    /// Every close by the server.
    pub fn total(&self) -> u64 {
        self.idle + self.full + self.shutdown + self.other_bye + self.err + self.silent
    }

    /// Adds the figures with keys prefixed by the phase.
    pub fn report(&self, r: &mut Report, key: &'static str, label: &'static str) {
        r.int(key, label, "", self.total());
        if self.total() > 0 {
            r.note(format!(
                "{label}: {} BYE idle, {} BYE full, {} BYE shutdown, {} other BYE, {} ERR, {} without a line",
                self.idle, self.full, self.shutdown, self.other_bye, self.err, self.silent
            ));
        }
    }
}

/// The `q`-quantile (0..=1) of sorted samples, nearest rank; NaN if empty.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Sorts samples for [`quantile`].
pub fn sort(v: &mut [f64]) {
    v.sort_by(|a, b| a.total_cmp(b));
}

/// Reads the server's counters if a pid was given.
pub fn server_sample(args: &Args) -> Option<proc_stats::Sample> {
    args.server_pid.and_then(proc_stats::sample)
}

/// Runs the scenario chosen on the command line.
pub fn run(args: &Args) -> io::Result<Report> {
    let mut pool = Pool::new(args.addr, args.sources)?;
    let report = match args.scenario {
        crate::args::Scenario::Hold => hold::run(args, &mut pool),
        crate::args::Scenario::Heartbeat => heartbeat::run(args, &mut pool),
        crate::args::Scenario::Reap => reap::run(args, &mut pool),
        crate::args::Scenario::Keepalive => keepalive::run(args, &mut pool),
    };
    pool.close_all();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert!(quantile(&[], 0.5).is_nan());
    }
}

/// The scenarios end to end against a tiny thread-per-connection server.
#[cfg(test)]
mod end_to_end {
    use std::io::{BufRead, BufReader, Write};
    use std::net::{SocketAddr, TcpListener};
    use std::time::Duration;

    use clap::Parser;

    use crate::args::Args;

    /// Answers `PING [x]` with `PONG [x]`; after `idle` without a line,
    /// writes `BYE idle` and closes. Serves `conns` connections, then stops.
    fn server(idle: Duration, conns: usize) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            for stream in listener.incoming().take(conns) {
                let Ok(mut stream) = stream else { return };
                std::thread::spawn(move || {
                    stream.set_read_timeout(Some(idle)).expect("timeout");
                    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                    let mut line = String::new();
                    loop {
                        line.clear();
                        match reader.read_line(&mut line) {
                            Ok(0) => return,
                            Ok(_) => {
                                let body = line.trim_end();
                                if let Some(rest) = body.strip_prefix("PING") {
                                    let _ = writeln!(stream, "PONG{rest}");
                                }
                            }
                            Err(_) => {
                                let _ = stream.write_all(b"BYE idle\n");
                                return;
                            }
                        }
                    }
                });
            }
        });
        addr
    }

    fn args(addr: SocketAddr, rest: &[&str]) -> Args {
        let addr = addr.to_string();
        let mut argv = vec!["vigil-load"];
        argv.extend_from_slice(rest);
        argv.extend_from_slice(&["--addr", &addr]);
        Args::parse_from(argv)
    }

    fn field<'a>(json: &'a str, key: &str) -> &'a str {
        let pat = format!("\"{key}\": ");
        let rest = &json[json.find(&pat).expect(key) + pat.len()..];
        rest[..rest.find([',', '\n']).unwrap_or(rest.len())].trim()
    }

    #[test]
    fn hold_opens_and_holds() {
        let addr = server(Duration::from_secs(30), 20);
        let a = args(addr, &["hold", "--conns", "20", "--duration", "100ms"]);
        let json = super::run(&a).expect("run").json();
        assert_eq!(field(&json, "established"), "20");
        assert_eq!(field(&json, "closed_by_server"), "0");
    }

    #[test]
    fn heartbeat_counts_pongs_in_order() {
        let addr = server(Duration::from_secs(30), 4);
        let a = args(
            addr,
            &[
                "heartbeat",
                "--conns",
                "4",
                "--window",
                "3",
                "--duration",
                "200ms",
            ],
        );
        let json = super::run(&a).expect("run").json();
        assert_eq!(field(&json, "out_of_order"), "0");
        assert!(field(&json, "pongs").parse::<u64>().expect("pongs") > 10);
    }

    #[test]
    fn reap_measures_lateness() {
        let addr = server(Duration::from_millis(200), 5);
        let a = args(
            addr,
            &[
                "reap",
                "--conns",
                "5",
                "--idle-timeout",
                "200ms",
                "--grace",
                "1s",
            ],
        );
        let json = super::run(&a).expect("run").json();
        assert_eq!(field(&json, "reaped"), "5");
        assert_eq!(field(&json, "never"), "0");
        let p99: f64 = field(&json, "late_p99_ms").parse().expect("p99");
        assert!((-1.0..200.0).contains(&p99), "{p99}");
    }

    #[test]
    fn keepalive_keeps_them() {
        let addr = server(Duration::from_millis(400), 5);
        let a = args(
            addr,
            &[
                "keepalive",
                "--conns",
                "5",
                "--interval",
                "100ms",
                "--duration",
                "600ms",
            ],
        );
        let json = super::run(&a).expect("run").json();
        assert_eq!(field(&json, "reaped"), "0");
        assert_eq!(field(&json, "still_open"), "5");
    }
}
