//! `keepalive`: N connections each send `PING` every interval against a
//! server idle timeout of twice that: none may be reaped.

use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

use super::{drive, server_sample, Closes, Handler, Opener, Progress};
use crate::args::Args;
use crate::conn::{Ev, Msg, Pool};
use crate::report::Report;

struct Keepalive {
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
    closes: Closes,
}

impl Handler for Keepalive {
    fn on_event(&mut self, pool: &mut Pool, ev: Ev) {
        self.closes.on_event(&ev);
        match ev {
            // The opener has just sent the first PING.
            Ev::Connected(key, at) if pool.is_open(key) => {
                self.pings += 1;
                self.due.push_back((at + self.interval, key));
            }
            Ev::Msg(_, Msg::Pong(_), _) => self.pongs += 1,
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
            pool.open, self.pings, self.pongs, self.closes.idle
        )
    }
}

/// Runs the scenario.
pub fn run(args: &Args, pool: &mut Pool) -> io::Result<Report> {
    let mut progress = Progress::new("keepalive");
    let mut opener = Opener::new(args.conns, args.pending, args.connect_timeout);
    let mut h = Keepalive {
        interval: args.interval,
        due: VecDeque::with_capacity(args.conns),
        duration: args.duration,
        pings: 0,
        pongs: 0,
        max_send_lag: Duration::ZERO,
        closes: Closes::default(),
    };
    let before = server_sample(args);
    let begun = Instant::now();
    let cap = begun + args.connect_timeout + args.duration + Duration::from_secs(1);
    drive(pool, &mut h, &mut opener, cap, &mut progress)?;
    let after = server_sample(args);
    let secs = begun.elapsed().as_secs_f64();

    let mut r = Report::default();
    r.text("scenario", "scenario", "keepalive");
    r.text("label", "server", args.label.clone());
    opener.report(&mut r);
    r.num(
        "interval_ms",
        "PING interval",
        "ms",
        h.interval.as_secs_f64() * 1000.0,
    );
    r.num("keepalive_secs", "run time", "s", secs);
    r.int("pings", "PINGs sent", "", h.pings);
    r.int("pongs", "PONGs received", "", h.pongs);
    r.num(
        "max_send_lag_ms",
        "client PING lag max",
        "ms",
        h.max_send_lag.as_secs_f64() * 1000.0,
    );
    r.int("reaped", "reaped (BYE idle; must be 0)", "", h.closes.idle);
    h.closes
        .report(&mut r, "closed_by_server", "closed by server");
    r.int("still_open", "still open at the end", "", pool.open as u64);
    if let (Some(b), Some(a)) = (before, after) {
        let s = a.at.duration_since(b.at).as_secs_f64().max(1e-6);
        r.num(
            "server_cpu_secs",
            "server CPU",
            "s",
            a.cpu_secs - b.cpu_secs,
        );
        r.num(
            "server_wakeups_per_sec",
            "server context switches/s",
            "/s",
            (a.ctx_switches - b.ctx_switches) as f64 / s,
        );
    }
    Ok(r)
}
