//! `fanout`: N subscribers, one publisher and one pinger against the
//! fan-out example (`PUB <text>` gives every other open connection `MSG
//! <text>`, then the sender `OK <n>`; `docs/protocol.md`).
//!
//! Every connection heartbeats (an empty line) every `--interval`, so the
//! server's idle timeout reaps none. Connection 0 publishes, connection 1
//! pings, the rest subscribe; all in this one process, so one clock times
//! every send and receipt. Two phases:
//! - latency: `--messages` messages, one every `--gap`: from each `PUB` to
//!   the last subscriber's receipt, and meanwhile the pinger's `PING` round
//!   trips (one in flight, the next 1 ms after each `PONG`), counted where
//!   the `PING` was sent while a message was still on its way;
//! - throughput: `--burst` messages, each sent on the previous `OK`:
//!   deliveries per second and the server's CPU per delivery. The
//!   publisher's socket is read every turn besides its poll events, so an
//!   `OK` ready behind thousands of subscribers' `MSG`s is seen at once.
//!
//! Each text is `--payload` bytes starting with its sequence number, so
//! every delivery is accounted for ([`Deliveries`]). The server's memory is
//! read before the connections, once they are open, and after publishing
//! (the queues drained).
//!
//! With `--spread ADDR` (repeated), the subscribers are spread round robin
//! over several instances of one fan-out sharing a bus (protocol v1.3),
//! the publisher and the pinger on `--addr`'s; `--spread-pid` adds those
//! instances' CPU and memory to the server's, `--bus-pid` reports the bus's
//! CPU apart.

use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

use super::fanout_figures::{Fanout, FanoutLatency, FanoutMemory, FanoutThroughput};
use super::fanout_ledger::Ledger;
use crate::load::drive::{drive, CloseCounter, Handler, Progress};
use crate::load::opener::Opener;
use crate::load::pool::{Ev, Fan, Pool};
use crate::load::proc_stats;
use crate::load::{Figures, Options, Report, Spread};
use crate::protocol::Reply;

/// Connection numbers of the publisher and the pinger; subscribers follow.
const PUBLISHER: usize = 0;
const PINGER: usize = 1;
const SUBS_FROM: usize = 2;
/// The pinger's pause between a `PONG` and its next `PING`.
const PING_PAUSE: Duration = Duration::from_millis(1);

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Opening,
    Waiting,
    Spaced,
    Burst,
}

struct Fanner {
    phase: Phase,
    ledger: Ledger,
    /// The text of every message: the number is written over its start.
    text: Vec<u8>,
    interval: Duration,
    /// Next heartbeat of each connection, in time order.
    due: VecDeque<(Instant, usize)>,
    closes: CloseCounter,
    /// The latency phase's messages; the burst's follow.
    spaced: usize,
    total: usize,
    gap: Duration,
    next_seq: usize,
    next_pub_at: Option<Instant>,
    /// Messages sent and not yet received by every subscriber.
    in_flight: usize,
    oks: usize,
    /// The pinger's `PING` in flight: when sent, and whether a message
    /// was on its way then.
    ping_sent: Option<(Instant, bool)>,
    next_ping_at: Option<Instant>,
    ping_rtt_ms: Vec<f64>,
    /// The publisher's events read out of turn (kept for its allocation).
    scratch: Vec<Ev>,
    /// Instances sharing a bus (`--spread`), 0 for one server: an `OK <n>`
    /// then counts instances, not connections.
    instances: usize,
}

impl Fanner {
    fn subscribers_open(&self, pool: &Pool) -> usize {
        (SUBS_FROM..pool.len()).filter(|&k| pool.is_open(k)).count()
    }

    fn publish(&mut self, pool: &mut Pool) {
        let seq = self.next_seq;
        let digits = format!("{seq:010}");
        self.text[4..14].copy_from_slice(digits.as_bytes());
        let open = self.subscribers_open(pool);
        let at = Instant::now();
        if pool.send(PUBLISHER, &self.text) {
            self.ledger.sent(seq, at, open);
            self.next_seq += 1;
            self.in_flight += usize::from(open > 0);
        }
    }

    fn ping(&mut self, pool: &mut Pool, now: Instant) {
        if pool.send(PINGER, b"PING\n") {
            self.ping_sent = Some((now, self.in_flight > 0));
        }
        self.next_ping_at = None;
    }

    fn on_ok(&mut self, pool: &mut Pool, n: Option<u64>) {
        let seq = self.oks;
        self.oks += 1;
        // Every other open connection: the subscribers and the pinger.
        let owed = if self.instances > 0 {
            self.instances as u64
        } else {
            self.ledger.owed.get(seq).map_or(0, |&o| u64::from(o) + 1)
        };
        if !matches!(n, Some(n) if n >= owed) {
            self.ledger.totals.ok_short += 1;
        }
        if self.phase == Phase::Burst && self.next_seq < self.total && self.oks == self.next_seq {
            self.publish(pool);
        }
    }
}

impl Handler for Fanner {
    fn on_event(&mut self, pool: &mut Pool, ev: Ev) {
        self.closes.on_event(&ev);
        match ev {
            Ev::Connected(key, at) if pool.is_open(key) => {
                self.due.push_back((at + self.interval, key));
            }
            Ev::Fan(PUBLISHER, Fan::Msg(_), _) => self.ledger.totals.to_sender += 1,
            Ev::Fan(PUBLISHER, Fan::Ok(n), _) => self.on_ok(pool, n),
            // `ERR bus` (v1.3): the message went nowhere; it counts as an
            // `OK` too few (and its deliveries as missing), and the burst
            // goes on.
            Ev::Msg(PUBLISHER, Reply::Err, _) => self.on_ok(pool, None),
            Ev::Fan(key, Fan::Msg(seq), at) if key >= SUBS_FROM => {
                let completed = self.ledger.receive(key - SUBS_FROM, seq, at);
                self.in_flight -= usize::from(completed);
            }
            Ev::Msg(PINGER, Reply::Pong(_), at) => {
                if let Some((sent, busy)) = self.ping_sent.take() {
                    if busy {
                        let rtt = at.saturating_duration_since(sent);
                        self.ping_rtt_ms.push(rtt.as_secs_f64() * 1000.0);
                    }
                    if self.phase == Phase::Spaced {
                        self.next_ping_at = Some(at + PING_PAUSE);
                    }
                }
            }
            _ => {}
        }
    }

    fn on_turn(&mut self, pool: &mut Pool, now: Instant) -> Option<Instant> {
        let mut wake: Option<Instant> = None;
        let mut at = |t: Instant| wake = Some(wake.map_or(t, |w| w.min(t)));
        while let Some(&(due, key)) = self.due.front() {
            if due > now {
                at(due);
                break;
            }
            self.due.pop_front();
            if pool.send(key, b"\n") {
                self.due.push_back((due + self.interval, key));
            }
        }
        if self.phase == Phase::Burst {
            // The `OK` may be ready behind every subscriber's `MSG`: read it
            // each turn (a poll's batch of events), so the next `PUB` waits
            // for the server, not for this client's turn.
            let mut evs = std::mem::take(&mut self.scratch);
            pool.read_now(PUBLISHER, &mut evs);
            for ev in evs.drain(..) {
                self.on_event(pool, ev);
            }
            self.scratch = evs;
        }
        if self.phase == Phase::Spaced {
            if let Some(t) = self.next_pub_at {
                if now >= t {
                    self.publish(pool);
                    self.next_pub_at = (self.next_seq < self.spaced).then_some(t + self.gap);
                }
            }
            if let Some(t) = self.next_ping_at {
                if now >= t {
                    self.ping(pool, now);
                }
            }
            for t in [self.next_pub_at, self.next_ping_at].into_iter().flatten() {
                at(t);
            }
        }
        wake
    }

    fn done(&self, _pool: &Pool, opener: &Opener, _now: Instant) -> bool {
        match self.phase {
            Phase::Opening => opener.is_done(),
            Phase::Waiting => false,
            Phase::Spaced => self.next_seq == self.spaced && self.in_flight == 0,
            Phase::Burst => self.next_seq == self.total && self.in_flight == 0,
        }
    }

    fn progress(&self, pool: &Pool, _opener: &Opener) -> String {
        format!(
            "open {} sent {} delivered {} closed by server {}",
            pool.open,
            self.next_seq,
            self.ledger.totals.delivered,
            self.closes.total()
        )
    }
}

/// Runs the scenario.
pub(crate) fn run(args: &Options, pool: &mut Pool) -> io::Result<Report> {
    let mut progress = Progress::new("fanout");
    pool.read_fan_lines();
    if !args.spread.is_empty() {
        let mut addrs = vec![args.addr];
        addrs.extend(&args.spread);
        pool.spread_over(SUBS_FROM, addrs)?;
    }
    // Over a bus (instances to spread over, or the bus's pid), `OK <n>`
    // counts the instances; else the connections.
    let on_bus = !args.spread.is_empty() || args.bus_pid.is_some();
    let instances = if on_bus { args.spread.len() + 1 } else { 0 };
    let payload = args.payload.max(11);
    let mut text = b"PUB ".to_vec();
    text.extend_from_slice(b"0000000000 ");
    text.resize(4 + payload, b'x');
    text.push(b'\n');
    let (spaced, total) = (args.messages, args.messages + args.burst);
    let mut h = Fanner {
        phase: Phase::Opening,
        ledger: Ledger::new(args.conns, total),
        text,
        interval: args.interval,
        due: VecDeque::with_capacity(args.conns + SUBS_FROM),
        closes: CloseCounter::default(),
        spaced,
        total,
        gap: args.gap,
        next_seq: 0,
        next_pub_at: None,
        in_flight: 0,
        oks: 0,
        ping_sent: None,
        next_ping_at: None,
        ping_rtt_ms: Vec::new(),
        scratch: Vec::new(),
        instances,
    };
    let before = servers_sample(args);
    let conns = args.conns + SUBS_FROM;
    let mut opener = Opener::new(conns, args.pending, args.connect_timeout);
    let cap = Instant::now() + args.connect_timeout + Duration::from_secs(5);
    drive(pool, &mut h, &mut opener, cap, &mut progress)?;
    if !pool.is_open(PUBLISHER) || !pool.is_open(PINGER) {
        return Err(io::Error::other(
            "the publisher or the pinger could not connect",
        ));
    }
    let subscribers = h.subscribers_open(pool);
    progress.say(&format!("{subscribers} subscribers open; settling"));
    h.phase = Phase::Waiting;
    let settle = Instant::now() + Duration::from_millis(500);
    drive(pool, &mut h, &mut opener, settle, &mut progress)?;
    let opened = servers_sample(args);

    progress.say(&format!("{spaced} messages, one every {:?}", args.gap));
    h.phase = Phase::Spaced;
    let now = Instant::now();
    h.next_pub_at = (spaced > 0).then_some(now);
    h.next_ping_at = Some(now);
    let end = now + args.gap * spaced as u32 + Duration::from_secs(10);
    drive(pool, &mut h, &mut opener, end, &mut progress)?;
    // Let the last PONG come in before the burst (it counts if it does).
    h.phase = Phase::Waiting;
    let settle = Instant::now() + Duration::from_millis(100);
    drive(pool, &mut h, &mut opener, settle, &mut progress)?;

    progress.say(&format!("{} messages, each on the last OK", args.burst));
    let cpu_before = servers_sample(args);
    let bus_before = args.bus_pid.and_then(proc_stats::cpu_ns);
    let me_before = proc_stats::sample(std::process::id());
    h.phase = Phase::Burst;
    let begun = Instant::now();
    if h.next_seq < total {
        h.next_seq = spaced.max(h.next_seq);
        h.oks = h.oks.max(h.next_seq);
        h.publish(pool);
    }
    let end = begun + Duration::from_secs(120);
    drive(pool, &mut h, &mut opener, end, &mut progress)?;
    let cpu_after = servers_sample(args);
    let bus_after = args.bus_pid.and_then(proc_stats::cpu_ns);
    let me_after = proc_stats::sample(std::process::id());
    let burst_end = (spaced..total)
        .filter_map(|s| h.ledger.last_at[s])
        .max()
        .unwrap_or(begun);
    let secs = burst_end.saturating_duration_since(begun).as_secs_f64();
    h.phase = Phase::Waiting;
    let settle = Instant::now() + Duration::from_millis(1000);
    drive(pool, &mut h, &mut opener, settle, &mut progress)?;
    let drained = servers_sample(args);

    let mut notes = Vec::new();
    let latencies: Vec<f64> = (0..spaced)
        .filter(|&s| h.ledger.complete(s))
        .filter_map(|s| Some(h.ledger.last_at[s]? - h.ledger.sent_at[s]?))
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    let deliveries: u64 = (spaced..total).map(|s| u64::from(h.ledger.got[s])).sum();
    let server_cpu = cpu_before.zip(cpu_after).map(|(b, a)| a.cpu_since(&b));
    let bus_cpu_secs = bus_before
        .zip(bus_after)
        .map(|(b, a)| a.saturating_sub(b) as f64 / 1e9);
    let burst_msgs = h.next_seq.saturating_sub(spaced);
    let memory = match (before, opened, drained) {
        (Some(b), Some(o), Some(d)) => Some(FanoutMemory {
            rss_before: b.rss_bytes,
            rss_opened: o.rss_bytes,
            rss_after: d.rss_bytes,
            per_conn_before_publishing: per_conn(o.rss_bytes, b.rss_bytes, opener.established),
            per_conn_after_publishing: per_conn(d.rss_bytes, b.rss_bytes, opener.established),
            fds: o.fds,
        }),
        _ => {
            notes.push("no --server-pid: server memory and CPU not measured".into());
            None
        }
    };
    notes.push(format!(
        "subscribers heartbeat every {:?}; the latency is read by this one-threaded client, whose own work counts in it",
        args.interval
    ));
    let figures = Fanout {
        opening: opener.figures(&mut notes),
        subscribers: subscribers as u64,
        instances: instances.max(1) as u64,
        payload: payload as u64,
        latency: FanoutLatency {
            messages: spaced.min(h.next_seq) as u64,
            gap_ms: args.gap.as_secs_f64() * 1000.0,
            complete: latencies.len() as u64,
            last_delivery_ms: Spread::of(latencies.clone()),
            last_delivery_samples_ms: latencies,
            pings: h.ping_rtt_ms.len() as u64,
            ping_rtt_ms: Spread::of(std::mem::take(&mut h.ping_rtt_ms)),
        },
        throughput: FanoutThroughput {
            messages: burst_msgs as u64,
            oks: h.oks.saturating_sub(spaced) as u64,
            secs,
            deliveries,
            deliveries_per_sec: deliveries as f64 / secs.max(1e-6),
            server_cpu,
            cpu_per_delivery_us: server_cpu.map(|c| c.scaled(1e6 / deliveries.max(1) as f64)),
            bus_cpu_secs,
            bus_cpu_per_message_us: bus_cpu_secs.map(|c| c * 1e6 / burst_msgs.max(1) as f64),
            client_cpu_share: me_before
                .zip(me_after)
                .map(|(b, a)| a.cpu_since(&b).total() / a.secs_since(&b)),
        },
        deliveries: h.ledger.totals(|s| pool.is_open(s + SUBS_FROM)),
        closed_by_server: h.closes.closes,
        memory,
    };
    Ok(Report::single(
        args,
        Figures::Fanout(Box::new(figures)),
        notes,
    ))
}

/// The server's counters: `--server-pid`'s plus every `--spread-pid`'s
/// (memory, CPU and open files added up); `None` without `--server-pid` or
/// if one of them is gone.
fn servers_sample(args: &Options) -> Option<proc_stats::Sample> {
    let mut sum = proc_stats::sample(args.server_pid?)?;
    for &pid in &args.spread_pids {
        let s = proc_stats::sample(pid)?;
        sum.rss_bytes += s.rss_bytes;
        sum.cpu.user += s.cpu.user;
        sum.cpu.kernel += s.cpu.kernel;
        sum.ctx_switches += s.ctx_switches;
        sum.fds += s.fds;
    }
    Some(sum)
}

/// Growth from `before` to `now` per connection, bytes.
fn per_conn(now: u64, before: u64, conns: usize) -> f64 {
    (now as f64 - before as f64) / conns.max(1) as f64
}
