//! `keepalive`: N connections each send `PING` every interval against a
//! server idle timeout of twice that: none may be reaped.

use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::server_sample;
use crate::load::drive::{drive, CloseCounter, Handler, Progress};
use crate::load::opener::Opener;
use crate::load::options::Options;
use crate::load::parts::{Closes, Cpu, Opening};
use crate::load::pool::{Ev, Pool};
use crate::load::report::{Figures, Report};
use crate::load::rows::Rows;
use crate::protocol::reply::Reply;

/// What `keepalive` measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Keepalive {
    /// How the connections were opened.
    pub opening: Opening,
    /// One `PING` per connection every this long, milliseconds.
    pub interval_ms: f64,
    /// Seconds the run took.
    pub secs: f64,
    /// `PING`s sent.
    pub pings: u64,
    /// `PONG`s received.
    pub pongs: u64,
    /// The largest delay between a `PING`'s due time and its send,
    /// milliseconds.
    pub max_send_lag_ms: f64,
    /// Connections closed with `BYE idle` (must be 0).
    pub reaped: u64,
    /// Connections the server closed.
    pub closed_by_server: Closes,
    /// Connections still open at the end.
    pub still_open: u64,
    /// The server, with `--server-pid`.
    pub server: Option<KeepaliveServer>,
}

/// The server in `keepalive`, read from `/proc`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeepaliveServer {
    /// CPU time over the run.
    pub cpu: Cpu,
    /// Context switches per second.
    pub wakeups_per_sec: f64,
}

impl Keepalive {
    /// Adds another process's figures (`--procs`).
    pub(crate) fn absorb(&mut self, o: &Keepalive) {
        self.opening.absorb(&o.opening);
        self.secs = self.secs.max(o.secs);
        self.pings += o.pings;
        self.pongs += o.pongs;
        self.max_send_lag_ms = self.max_send_lag_ms.max(o.max_send_lag_ms);
        self.reaped += o.reaped;
        self.closed_by_server.absorb(&o.closed_by_server);
        self.still_open += o.still_open;
        self.server = None;
    }

    pub(crate) fn rows(&self, t: &mut Rows) {
        self.opening.rows(t);
        t.num("PING interval", "ms", self.interval_ms);
        t.num("run time", "s", self.secs);
        t.int("PINGs sent", self.pings);
        t.int("PONGs received", self.pongs);
        t.num("client PING lag max", "ms", self.max_send_lag_ms);
        t.int("reaped (BYE idle; must be 0)", self.reaped);
        self.closed_by_server.rows(t, "closed by server");
        t.int("still open at the end", self.still_open);
        let Some(s) = &self.server else { return };
        t.cpu("server CPU", s.cpu);
        t.num("server context switches/s", "/s", s.wakeups_per_sec);
    }
}

struct KeepingAlive {
    interval: Duration,
    /// Next `PING` of each connection, in time order (the interval is fixed,
    /// so pushing at the back keeps the order).
    due: VecDeque<(Instant, usize)>,
    /// The keepalive phase ends this long after the last connection opened.
    duration: Duration,
    pings: u64,
    pongs: u64,
    /// Largest delay between a due time and the actual send.
    max_send_lag: Duration,
    closes: CloseCounter,
}

impl Handler for KeepingAlive {
    fn on_event(&mut self, pool: &mut Pool, ev: Ev) {
        self.closes.on_event(&ev);
        match ev {
            // The opener has just sent the first PING.
            Ev::Connected(key, at) if pool.is_open(key) => {
                self.pings += 1;
                self.due.push_back((at + self.interval, key));
            }
            Ev::Msg(_, Reply::Pong(_), _) => self.pongs += 1,
            _ => {}
        }
    }

    fn on_turn(&mut self, pool: &mut Pool, now: Instant) -> Option<Instant> {
        while let Some(&(at, key)) = self.due.front() {
            if at > now {
                return Some(at);
            }
            self.due.pop_front();
            if pool.send(key, b"PING\n") {
                self.pings += 1;
                self.max_send_lag = self.max_send_lag.max(now.duration_since(at));
                self.due.push_back((at + self.interval, key));
            }
        }
        None
    }

    fn done(&self, _pool: &Pool, opener: &Opener, now: Instant) -> bool {
        opener.finished.is_some_and(|t| now >= t + self.duration)
    }

    fn progress(&self, pool: &Pool, _opener: &Opener) -> String {
        format!(
            "open {} pings {} pongs {} reaped {}",
            pool.open, self.pings, self.pongs, self.closes.closes.idle
        )
    }
}

/// Runs the scenario.
pub(crate) fn run(args: &Options, pool: &mut Pool) -> io::Result<Report> {
    let mut progress = Progress::new("keepalive");
    let mut opener = Opener::new(args.conns, args.pending, args.connect_timeout);
    let mut h = KeepingAlive {
        interval: args.interval,
        due: VecDeque::with_capacity(args.conns),
        duration: args.duration,
        pings: 0,
        pongs: 0,
        max_send_lag: Duration::ZERO,
        closes: CloseCounter::default(),
    };
    let before = server_sample(args);
    let begun = Instant::now();
    let cap = begun + args.connect_timeout + args.duration + Duration::from_secs(1);
    drive(pool, &mut h, &mut opener, cap, &mut progress)?;
    let after = server_sample(args);
    let secs = begun.elapsed().as_secs_f64();

    let mut notes = Vec::new();
    let figures = Keepalive {
        opening: opener.figures(&mut notes),
        interval_ms: h.interval.as_secs_f64() * 1000.0,
        secs,
        pings: h.pings,
        pongs: h.pongs,
        max_send_lag_ms: h.max_send_lag.as_secs_f64() * 1000.0,
        reaped: h.closes.closes.idle,
        closed_by_server: h.closes.closes,
        still_open: pool.open as u64,
        server: before.zip(after).map(|(b, a)| KeepaliveServer {
            cpu: a.cpu_since(&b),
            wakeups_per_sec: a.wakeups_per_sec_since(&b),
        }),
    };
    Ok(Report::single(args, Figures::Keepalive(figures), notes))
}
