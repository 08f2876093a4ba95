//! `heartbeat`: K connections each keeping W `PING <n>` in flight: PONGs per
//! second, round trips, and the server's CPU time per PONG.

use std::collections::VecDeque;
use std::io::{self, Write as _};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::server_sample;
use crate::load::drive::{drive, CloseCounter, Handler, Progress};
use crate::load::opener::Opener;
use crate::load::options::Options;
use crate::load::parts::{Closes, Cpu, Opening, Spread};
use crate::load::pool::{Ev, Pool};
use crate::load::proc_stats;
use crate::load::report::{Figures, Report};
use crate::load::rows::Rows;
use crate::protocol::reply::Reply;

/// What `heartbeat` measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// How the connections were opened.
    pub opening: Opening,
    /// `PING`s kept in flight per connection.
    pub window: u64,
    /// Seconds measured.
    pub secs: f64,
    /// `PONG`s received in time.
    pub pongs: u64,
    /// `PONG`s per second.
    pub pongs_per_sec: f64,
    /// Round trips, microseconds.
    pub rtt_us: Spread,
    /// `PONG`s whose sequence number was not the one expected.
    pub out_of_order: u64,
    /// Connections the server closed.
    pub closed_by_server: Closes,
    /// The load client's CPU use (1 = one core).
    pub client_cpu_share: Option<f64>,
    /// The server, with `--server-pid`.
    pub server: Option<HeartbeatServer>,
}

/// The server in `heartbeat`, read from `/proc`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatServer {
    /// CPU time while heartbeating.
    pub cpu: Cpu,
    /// CPU use (1 = one core).
    pub cpu_share: f64,
    /// CPU time per `PONG`, microseconds.
    pub cpu_per_pong_us: Cpu,
    /// Resident memory at the end, bytes.
    pub rss: u64,
}

impl Heartbeat {
    /// Adds another process's figures (`--procs`): counts and rates summed,
    /// round trips the worst process's.
    pub(crate) fn absorb(&mut self, o: &Heartbeat) {
        self.opening.absorb(&o.opening);
        self.secs = self.secs.max(o.secs);
        self.pongs += o.pongs;
        self.pongs_per_sec += o.pongs_per_sec;
        self.rtt_us.absorb_worst(&o.rtt_us);
        self.out_of_order += o.out_of_order;
        self.closed_by_server.absorb(&o.closed_by_server);
        self.client_cpu_share = self
            .client_cpu_share
            .zip(o.client_cpu_share)
            .map(|(a, b)| a + b);
        self.server = None;
    }

    pub(crate) fn rows(&self, t: &mut Rows) {
        self.opening.rows(t);
        t.int("PINGs in flight per connection", self.window);
        t.num("measured for", "s", self.secs);
        t.int("PONGs", self.pongs);
        t.num("PONGs per second", "/s", self.pongs_per_sec);
        t.opt("round trip p50", "us", self.rtt_us.p50);
        t.opt("round trip p99", "us", self.rtt_us.p99);
        t.opt("round trip max", "us", self.rtt_us.max);
        t.int("PONGs out of order", self.out_of_order);
        self.closed_by_server.rows(t, "closed by server");
        t.opt(
            "load client CPU use (1 = one core)",
            "",
            self.client_cpu_share,
        );
        let Some(s) = &self.server else { return };
        t.num("server CPU use (1 = one core)", "", s.cpu_share);
        t.cpu("server CPU while heartbeating", s.cpu);
        t.num("server CPU per PONG", "us", s.cpu_per_pong_us.total());
        t.num("  of which in the kernel", "us", s.cpu_per_pong_us.kernel);
        t.int_unit("server RSS", "bytes", s.rss);
    }
}

/// Per connection: the send time of each `PING` in flight (replies come in
/// order, so a queue) and the next sequence number.
struct Flight {
    sent: VecDeque<Instant>,
    next_seq: u64,
    expect: u64,
}

struct Pinger {
    flights: Vec<Flight>,
    window: usize,
    /// Sending stops at this time; replies after it are not counted.
    stop: Option<Instant>,
    pongs: u64,
    out_of_order: u64,
    rtt_us: Vec<f64>,
    closes: CloseCounter,
}

impl Pinger {
    fn ping(&mut self, pool: &mut Pool, key: usize) {
        let f = &mut self.flights[key];
        let mut line = [0u8; 32];
        let mut cur = io::Cursor::new(&mut line[..]);
        let _ = writeln!(cur, "PING {}", f.next_seq);
        let n = cur.position() as usize;
        if pool.send(key, &line[..n]) {
            f.sent.push_back(Instant::now());
            f.next_seq += 1;
        }
    }
}

impl Handler for Pinger {
    fn on_event(&mut self, pool: &mut Pool, ev: Ev) {
        self.closes.on_event(&ev);
        let Ev::Msg(key, Reply::Pong(seq), at) = ev else {
            return;
        };
        let Some(stop) = self.stop else {
            return;
        };
        let f = &mut self.flights[key];
        let Some(sent) = f.sent.pop_front() else {
            return;
        };
        if seq != Some(f.expect) {
            self.out_of_order += 1;
        }
        f.expect += 1;
        if at <= stop {
            self.pongs += 1;
            self.rtt_us
                .push(at.duration_since(sent).as_nanos() as f64 / 1000.0);
            self.ping(pool, key);
        }
    }

    fn done(&self, _pool: &Pool, opener: &Opener, _now: Instant) -> bool {
        self.stop.is_none() && opener.is_done()
    }

    fn progress(&self, pool: &Pool, _opener: &Opener) -> String {
        format!("open {} pongs {}", pool.open, self.pongs)
    }
}

/// Runs the scenario.
pub(crate) fn run(args: &Options, pool: &mut Pool) -> io::Result<Report> {
    let mut progress = Progress::new("heartbeat");
    let mut opener = Opener::new(args.conns, args.pending, args.connect_timeout);
    let mut h = Pinger {
        flights: Vec::new(),
        window: args.window.max(1),
        stop: None,
        pongs: 0,
        out_of_order: 0,
        rtt_us: Vec::new(),
        closes: CloseCounter::default(),
    };
    let cap = Instant::now() + args.connect_timeout + Duration::from_secs(5);
    drive(pool, &mut h, &mut opener, cap, &mut progress)?;
    progress.say(&format!(
        "{} open; {} PINGs in flight each for {:?}",
        pool.open, h.window, args.duration
    ));

    h.flights = (0..pool.len())
        .map(|_| Flight {
            sent: VecDeque::with_capacity(h.window),
            next_seq: 0,
            expect: 0,
        })
        .collect();
    h.rtt_us.reserve(1 << 20);
    let before = server_sample(args);
    let me_before = proc_stats::sample(std::process::id());
    let begun = Instant::now();
    let stop = begun + args.duration;
    h.stop = Some(stop);
    for key in 0..pool.len() {
        if pool.is_open(key) {
            for _ in 0..h.window {
                h.ping(pool, key);
            }
        }
    }
    drive(pool, &mut h, &mut opener, stop, &mut progress)?;
    let after = server_sample(args);
    let me_after = proc_stats::sample(std::process::id());
    let secs = Instant::now().duration_since(begun).as_secs_f64();

    let mut notes = Vec::new();
    let server = before.zip(after).map(|(b, a)| {
        let cpu = a.cpu_since(&b);
        HeartbeatServer {
            cpu,
            cpu_share: cpu.total() / secs,
            cpu_per_pong_us: cpu.scaled(1e6 / h.pongs.max(1) as f64),
            rss: a.rss_bytes,
        }
    });
    if server.is_none() {
        notes.push("no --server-pid: server CPU not measured".into());
    }
    let figures = Heartbeat {
        opening: opener.figures(&mut notes),
        window: h.window as u64,
        secs,
        pongs: h.pongs,
        pongs_per_sec: h.pongs as f64 / secs,
        rtt_us: Spread::of(std::mem::take(&mut h.rtt_us)),
        out_of_order: h.out_of_order,
        closed_by_server: h.closes.closes,
        client_cpu_share: me_before
            .zip(me_after)
            .map(|(b, a)| a.cpu_since(&b).total() / secs),
        server,
    };
    Ok(Report::single(args, Figures::Heartbeat(figures), notes))
}
