//! `reap`: N connections send one `PING` (the opener's), read the `PONG`
//! and fall silent.
//! The server should close each with `BYE idle` at its deadline, the time
//! its last byte was sent plus the idle timeout; this measures how late.

use std::io;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::load::drive::{drive, CloseCounter, Handler, Progress};
use crate::load::opener::Opener;
use crate::load::options::Options;
use crate::load::parts::{Opening, Spread};
use crate::load::pool::{Ev, Pool};
use crate::load::report::{Figures, Report};
use crate::load::rows::Rows;
use crate::protocol::reply::{Bye, Reply};

/// What `reap` measured.
///
/// Lateness is the arrival of `BYE idle` minus the connection's deadline,
/// the time the client sent its last byte plus the idle timeout.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reap {
    /// How the connections were opened.
    pub opening: Opening,
    /// The server's idle timeout, milliseconds.
    pub idle_timeout_ms: f64,
    /// How long past its deadline a connection could stay open before it
    /// counted as never reaped, milliseconds.
    pub grace_ms: f64,
    /// `PONG`s before the silence.
    pub pongs: u64,
    /// Connections closed with `BYE idle`.
    pub reaped: u64,
    /// Lateness, milliseconds.
    pub late_ms: Spread,
    /// Lateness from the `PONG` (deadline = its arrival + idle timeout), a
    /// lower bound, milliseconds.
    pub late_from_pong_ms: Spread,
    /// Round trips of the first `PING`, milliseconds.
    pub ping_rtt_ms: Spread,
    /// Connections closed before their deadline.
    pub early: u64,
    /// Connections not closed within the grace period.
    pub never: u64,
    /// Connections closed without `BYE idle`.
    pub closed_otherwise: u64,
    /// Every lateness, milliseconds (for plots and `--procs`).
    pub late_samples_ms: Vec<f64>,
}

impl Reap {
    /// Adds another process's figures (`--procs`): counts summed, lateness
    /// from every sample, the rest the worst process's.
    pub(crate) fn absorb(&mut self, o: &Reap) {
        self.opening.absorb(&o.opening);
        self.pongs += o.pongs;
        self.reaped += o.reaped;
        self.late_samples_ms.extend_from_slice(&o.late_samples_ms);
        self.late_ms = Spread::of(self.late_samples_ms.clone());
        self.late_from_pong_ms.absorb_worst(&o.late_from_pong_ms);
        self.ping_rtt_ms.absorb_worst(&o.ping_rtt_ms);
        self.early += o.early;
        self.never += o.never;
        self.closed_otherwise += o.closed_otherwise;
    }

    pub(crate) fn rows(&self, t: &mut Rows) {
        self.opening.rows(t);
        t.num("server idle timeout", "ms", self.idle_timeout_ms);
        t.int("PONGs before silence", self.pongs);
        t.int("closed with BYE idle", self.reaped);
        t.opt("lateness p50", "ms", self.late_ms.p50);
        t.opt("lateness p99", "ms", self.late_ms.p99);
        t.opt("lateness max", "ms", self.late_ms.max);
        t.opt("lateness min", "ms", self.late_ms.min);
        t.opt(
            "lateness from the PONG p50",
            "ms",
            self.late_from_pong_ms.p50,
        );
        t.opt(
            "lateness from the PONG p99",
            "ms",
            self.late_from_pong_ms.p99,
        );
        t.opt(
            "lateness from the PONG max",
            "ms",
            self.late_from_pong_ms.max,
        );
        t.opt("first PING round trip p99", "ms", self.ping_rtt_ms.p99);
        t.opt("first PING round trip max", "ms", self.ping_rtt_ms.max);
        t.int("closed before the deadline", self.early);
        t.int("not closed within the grace period", self.never);
        t.int("closed without BYE idle", self.closed_otherwise);
        t.num("grace period", "ms", self.grace_ms);
    }
}

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

struct Reaper {
    lives: Vec<Life>,
    idle: Duration,
    grace: Duration,
    last_sent: Option<Instant>,
    pongs: u64,
    closes: CloseCounter,
}

impl Handler for Reaper {
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
            Ev::Msg(key, Reply::Pong(_), at) => {
                self.pongs += 1;
                if let Some(life) = self.lives.get_mut(key) {
                    life.pong.get_or_insert(at);
                }
            }
            Ev::Msg(key, Reply::Bye(Bye::Idle), at) => {
                self.lives[key].bye_idle.get_or_insert(at);
            }
            Ev::Closed(key, at, _) => {
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
            pool.open, pool.pending, self.closes.closes.idle
        )
    }
}

/// Runs the scenario.
pub(crate) fn run(args: &Options, pool: &mut Pool) -> io::Result<Report> {
    let mut progress = Progress::new("reap");
    let mut opener = Opener::new(args.conns, args.pending, args.connect_timeout);
    let mut h = Reaper {
        lives: Vec::with_capacity(args.conns),
        idle: args.idle_timeout,
        grace: args.grace,
        last_sent: None,
        pongs: 0,
        closes: CloseCounter::default(),
    };
    let cap = Instant::now() + args.connect_timeout + args.idle_timeout + args.grace * 2;
    drive(pool, &mut h, &mut opener, cap, &mut progress)?;

    let rtt_ms: Vec<f64> = h
        .lives
        .iter()
        .filter_map(|l| Some(ms(l.pong?.saturating_duration_since(l.sent?))))
        .collect();
    let mut lateness_ms = Vec::new();
    let mut from_pong_ms = Vec::new();
    let (mut early, mut never, mut other) = (0u64, 0u64, 0u64);
    for life in &h.lives {
        let Some(sent) = life.sent else { continue };
        match (life.bye_idle, life.closed) {
            (Some(at), _) => {
                let late = signed_ms(at, sent + h.idle);
                if late < 0.0 {
                    early += 1;
                }
                if let Some(pong) = life.pong {
                    from_pong_ms.push(signed_ms(at, pong + h.idle));
                }
                lateness_ms.push(late);
            }
            (None, Some(_)) => other += 1,
            (None, None) => never += 1,
        }
    }
    let mut notes = Vec::new();
    let figures = Reap {
        opening: opener.figures(&mut notes),
        idle_timeout_ms: ms(h.idle),
        grace_ms: ms(h.grace),
        pongs: h.pongs,
        reaped: lateness_ms.len() as u64,
        late_ms: Spread::of(lateness_ms.clone()),
        late_from_pong_ms: Spread::of(from_pong_ms),
        ping_rtt_ms: Spread::of(rtt_ms),
        early,
        never,
        closed_otherwise: other,
        late_samples_ms: lateness_ms,
    };
    notes.push(
        "lateness = arrival of BYE idle - (time the client sent its last byte + idle timeout)"
            .into(),
    );
    notes.push(
        "the server starts its timer when the PING arrives, within the first PING round trip;"
            .into(),
    );
    notes.push(
        "lateness from the PONG (deadline = PONG arrival + idle timeout) is a lower bound".into(),
    );
    Ok(Report::single(args, Figures::Reap(figures), notes))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `at - deadline` in milliseconds, negative when `at` is earlier.
fn signed_ms(at: Instant, deadline: Instant) -> f64 {
    if at >= deadline {
        ms(at.duration_since(deadline))
    } else {
        -ms(deadline.duration_since(at))
    }
}
