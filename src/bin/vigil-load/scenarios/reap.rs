//! `reap`: N connections send one `PING` (the opener's), read the `PONG`
//! and fall silent.
//! The server should close each with `BYE idle` at its deadline, the time
//! its last byte was sent plus the idle timeout; this measures how late.

use std::io;
use std::time::{Duration, Instant};

use super::{drive, quantile, sort, Closes, Handler, Opener, Progress};
use crate::args::Args;
use crate::conn::{Bye, Ev, Msg, Pool};
use crate::report::Report;

/// What happened to one connection.
#[derive(Debug, Clone, Copy, Default)]
struct Life {
    /// When its `PING` (its last byte) was sent.
    sent: Option<Instant>,
    /// When its `PONG` arrived.
    pong: Option<Instant>,
    /// When `BYE idle` arrived.
    bye_idle: Option<Instant>,
    /// When it closed.
    closed: Option<Instant>,
}

struct Reap {
    lives: Vec<Life>,
    idle: Duration,
    grace: Duration,
    last_sent: Option<Instant>,
    pongs: u64,
    closes: Closes,
}

impl Handler for Reap {
    fn on_event(&mut self, pool: &mut Pool, ev: Ev) {
        self.closes.on_event(&ev);
        match ev {
            // The opener has just sent the first (and only) PING; `at` is
            // the time taken just before it.
            Ev::Connected(key, at) => {
                if self.lives.len() <= key {
                    self.lives.resize(key + 1, Life::default());
                }
                if pool.is_open(key) {
                    self.lives[key].sent = Some(at);
                    self.last_sent = Some(at);
                }
            }
            Ev::Msg(key, Msg::Pong(_), at) => {
                self.pongs += 1;
                if let Some(life) = self.lives.get_mut(key) {
                    life.pong.get_or_insert(at);
                }
            }
            Ev::Msg(key, Msg::Bye(Bye::Idle), at) => {
                self.lives[key].bye_idle.get_or_insert(at);
            }
            Ev::Closed(key, at) => {
                if let Some(life) = self.lives.get_mut(key) {
                    life.closed.get_or_insert(at);
                }
            }
            _ => {}
        }
    }

    fn done(&self, pool: &Pool, opener: &Opener, now: Instant) -> bool {
        if !opener.is_done() {
            return false;
        }
        pool.open == 0
            || self
                .last_sent
                .is_some_and(|t| now > t + self.idle + self.grace)
    }

    fn progress(&self, pool: &Pool, _opener: &Opener) -> String {
        format!(
            "open {} pending {} BYE idle {}",
            pool.open, pool.pending, self.closes.idle
        )
    }
}

/// Runs the scenario.
pub fn run(args: &Args, pool: &mut Pool) -> io::Result<Report> {
    let mut progress = Progress::new("reap");
    let mut opener = Opener::new(args.conns, args.pending, args.connect_timeout);
    let mut h = Reap {
        lives: Vec::with_capacity(args.conns),
        idle: args.idle_timeout,
        grace: args.grace,
        last_sent: None,
        pongs: 0,
        closes: Closes::default(),
    };
    let cap = Instant::now() + args.connect_timeout + args.idle_timeout + args.grace * 2;
    drive(pool, &mut h, &mut opener, cap, &mut progress)?;

    let mut rtt_ms: Vec<f64> = h
        .lives
        .iter()
        .filter_map(|l| Some(l.pong?.saturating_duration_since(l.sent?).as_secs_f64() * 1000.0))
        .collect();
    sort(&mut rtt_ms);
    let mut lateness_ms = Vec::new();
    let mut from_pong_ms = Vec::new();
    let (mut early, mut never, mut other) = (0u64, 0u64, 0u64);
    for life in &h.lives {
        let Some(sent) = life.sent else { continue };
        let deadline = sent + h.idle;
        match (life.bye_idle, life.closed) {
            (Some(at), _) => {
                let late = if at >= deadline {
                    at.duration_since(deadline).as_secs_f64()
                } else {
                    -deadline.duration_since(at).as_secs_f64()
                };
                if late < 0.0 {
                    early += 1;
                }
                if let Some(pong) = life.pong {
                    let d = pong + h.idle;
                    from_pong_ms.push(if at >= d {
                        at.duration_since(d).as_secs_f64() * 1000.0
                    } else {
                        -d.duration_since(at).as_secs_f64() * 1000.0
                    });
                }
                lateness_ms.push(late * 1000.0);
            }
            (None, Some(_)) => other += 1,
            (None, None) => never += 1,
        }
    }
    let mut sorted = lateness_ms.clone();
    sort(&mut sorted);

    let mut r = Report::default();
    r.text("scenario", "scenario", "reap");
    r.text("label", "server", args.label.clone());
    opener.report(&mut r);
    r.num(
        "idle_timeout_ms",
        "server idle timeout",
        "ms",
        h.idle.as_secs_f64() * 1000.0,
    );
    r.int("pongs", "PONGs before silence", "", h.pongs);
    r.int("reaped", "closed with BYE idle", "", sorted.len() as u64);
    r.num("late_p50_ms", "lateness p50", "ms", quantile(&sorted, 0.5));
    r.num("late_p99_ms", "lateness p99", "ms", quantile(&sorted, 0.99));
    r.num("late_max_ms", "lateness max", "ms", quantile(&sorted, 1.0));
    r.num("late_min_ms", "lateness min", "ms", quantile(&sorted, 0.0));
    sort(&mut from_pong_ms);
    r.num(
        "late_from_pong_p50_ms",
        "lateness from the PONG p50",
        "ms",
        quantile(&from_pong_ms, 0.5),
    );
    r.num(
        "late_from_pong_p99_ms",
        "lateness from the PONG p99",
        "ms",
        quantile(&from_pong_ms, 0.99),
    );
    r.num(
        "late_from_pong_max_ms",
        "lateness from the PONG max",
        "ms",
        quantile(&from_pong_ms, 1.0),
    );
    r.num(
        "ping_rtt_p99_ms",
        "first PING round trip p99",
        "ms",
        quantile(&rtt_ms, 0.99),
    );
    r.num(
        "ping_rtt_max_ms",
        "first PING round trip max",
        "ms",
        quantile(&rtt_ms, 1.0),
    );
    r.int("early", "closed before the deadline", "", early);
    r.int("never", "not closed within the grace period", "", never);
    r.int("closed_otherwise", "closed without BYE idle", "", other);
    r.num(
        "grace_ms",
        "grace period",
        "ms",
        h.grace.as_secs_f64() * 1000.0,
    );
    r.samples("reap_lateness_ms", lateness_ms);
    r.note("lateness = arrival of BYE idle - (time the client sent its last byte + idle timeout)");
    r.note("the server starts its timer when the PING arrives, within the first PING round trip;");
    r.note("lateness from the PONG (deadline = PONG arrival + idle timeout) is a lower bound");
    Ok(r)
}
