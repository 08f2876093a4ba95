//! `heartbeat`: K connections each keeping W `PING <n>` in flight: PONGs per
//! second, round trips, and the server's CPU time per PONG.

use std::collections::VecDeque;
use std::io::{self, Write as _};
use std::time::{Duration, Instant};

use super::{drive, quantile, server_sample, sort, Closes, Handler, Opener, Progress};
use crate::args::Args;
use crate::conn::{Ev, Msg, Pool};
use crate::proc_stats;
use crate::report::Report;

/// Per connection: the send time of each `PING` in flight (replies come in
/// order, so a queue) and the next sequence number.
struct Flight {
    sent: VecDeque<Instant>,
    next_seq: u64,
    expect: u64,
}

struct Heartbeat {
    flights: Vec<Flight>,
    window: usize,
    /// Sending stops at this time; replies after it are not counted.
    stop: Option<Instant>,
    pongs: u64,
    out_of_order: u64,
    rtt_us: Vec<f64>,
    closes: Closes,
}

impl Heartbeat {
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

impl Handler for Heartbeat {
    fn on_event(&mut self, pool: &mut Pool, ev: Ev) {
        self.closes.on_event(&ev);
        let Ev::Msg(key, Msg::Pong(seq), at) = ev else {
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
pub fn run(args: &Args, pool: &mut Pool) -> io::Result<Report> {
    let mut progress = Progress::new("heartbeat");
    let mut opener = Opener::new(args.conns, args.pending, args.connect_timeout);
    let mut h = Heartbeat {
        flights: Vec::new(),
        window: args.window.max(1),
        stop: None,
        pongs: 0,
        out_of_order: 0,
        rtt_us: Vec::new(),
        closes: Closes::default(),
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

    let mut r = Report::default();
    r.text("scenario", "scenario", "heartbeat");
    r.text("label", "server", args.label.clone());
    opener.report(&mut r);
    r.int(
        "window",
        "PINGs in flight per connection",
        "",
        h.window as u64,
    );
    r.num("heartbeat_secs", "measured for", "s", secs);
    r.int("pongs", "PONGs", "", h.pongs);
    r.num(
        "pongs_per_sec",
        "PONGs per second",
        "/s",
        h.pongs as f64 / secs,
    );
    let mut rtt = std::mem::take(&mut h.rtt_us);
    sort(&mut rtt);
    r.num("rtt_p50_us", "round trip p50", "us", quantile(&rtt, 0.5));
    r.num("rtt_p99_us", "round trip p99", "us", quantile(&rtt, 0.99));
    r.num("rtt_max_us", "round trip max", "us", quantile(&rtt, 1.0));
    r.int("out_of_order", "PONGs out of order", "", h.out_of_order);
    h.closes
        .report(&mut r, "closed_by_server", "closed by server");
    if let (Some(b), Some(a)) = (me_before, me_after) {
        r.num(
            "client_cpu_share",
            "load client CPU use (1 = one core)",
            "",
            (a.cpu_secs - b.cpu_secs) / secs,
        );
    }
    if let (Some(b), Some(a)) = (before, after) {
        let cpu = a.cpu_secs - b.cpu_secs;
        r.num(
            "server_cpu_share",
            "server CPU use (1 = one core)",
            "",
            cpu / secs,
        );
        r.num("server_cpu_secs", "server CPU while heartbeating", "s", cpu);
        r.num(
            "server_cpu_per_pong_us",
            "server CPU per PONG",
            "us",
            cpu * 1e6 / h.pongs.max(1) as f64,
        );
        r.int("server_rss_after", "server RSS", "bytes", a.rss_bytes);
    } else {
        r.note("no --server-pid: server CPU not measured");
    }
    Ok(r)
}
