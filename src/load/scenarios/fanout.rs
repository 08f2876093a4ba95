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
//!   deliveries per second and the server's CPU per delivery.
//!
//! Each text is `--payload` bytes starting with its sequence number, so
//! every delivery is accounted for ([`Deliveries`]). The server's memory is
//! read before the connections, once they are open, and after publishing
//! (the queues drained).

use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::fanout_ledger::{Deliveries, Ledger};
use super::server_sample;
use crate::load::drive::{drive, CloseCounter, Handler, Progress};
use crate::load::opener::Opener;
use crate::load::pool::{Ev, Fan, Pool};
use crate::load::proc_stats;
use crate::load::rows::Rows;
use crate::load::{Closes, Cpu, Figures, Opening, Options, Report, Spread};
use crate::protocol::Reply;

/// Connection numbers of the publisher and the pinger; subscribers follow.
const PUBLISHER: usize = 0;
const PINGER: usize = 1;
const SUBS_FROM: usize = 2;
/// The pinger's pause between a `PONG` and its next `PING`.
const PING_PAUSE: Duration = Duration::from_millis(1);

/// What `fanout` measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Fanout {
    /// How the connections (subscribers, publisher, pinger) were opened.
    pub opening: Opening,
    /// Subscribers established.
    pub subscribers: u64,
    /// Bytes of each message's text.
    pub payload: u64,
    /// The latency phase.
    pub latency: FanoutLatency,
    /// The throughput phase.
    pub throughput: FanoutThroughput,
    /// Every delivery of both phases accounted for.
    pub deliveries: Deliveries,
    /// Connections the server closed.
    pub closed_by_server: Closes,
    /// The server's memory, with `--server-pid`.
    pub memory: Option<FanoutMemory>,
}

/// The latency phase: one message every gap.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FanoutLatency {
    /// Messages sent.
    pub messages: u64,
    /// Time between two messages, milliseconds.
    pub gap_ms: f64,
    /// Messages every subscriber received.
    pub complete: u64,
    /// From `PUB` to the last subscriber's receipt, milliseconds.
    pub last_delivery_ms: Spread,
    /// The same, one sample per complete message (for plots).
    pub last_delivery_samples_ms: Vec<f64>,
    /// `PING` round trips of the pinger sent while a message was on its
    /// way, milliseconds.
    pub ping_rtt_ms: Spread,
    /// `PING`s counted in `ping_rtt_ms`.
    pub pings: u64,
}

/// The throughput phase: each message sent on the previous one's `OK`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FanoutThroughput {
    /// Messages sent.
    pub messages: u64,
    /// `OK`s received.
    pub oks: u64,
    /// From the first `PUB` to the last receipt, seconds.
    pub secs: f64,
    /// First copies received by the subscribers.
    pub deliveries: u64,
    /// Deliveries per second.
    pub deliveries_per_sec: f64,
    /// The server's CPU time over the phase, with `--server-pid`.
    pub server_cpu: Option<Cpu>,
    /// The server's CPU time per delivery, microseconds.
    pub cpu_per_delivery_us: Option<Cpu>,
    /// The load client's CPU use over the phase (1 = one core): near 1, it
    /// is the client that limits what the server can show.
    pub client_cpu_share: Option<f64>,
}

/// The server's memory in `fanout`, read from `/proc`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FanoutMemory {
    /// Resident memory before the connections, bytes.
    pub rss_before: u64,
    /// With the connections open, before publishing, bytes.
    pub rss_opened: u64,
    /// After publishing, the queues drained, bytes.
    pub rss_after: u64,
    /// Growth per connection before publishing, bytes.
    pub per_conn_before_publishing: f64,
    /// Growth per connection after publishing, bytes.
    pub per_conn_after_publishing: f64,
    /// Open files with the connections.
    pub fds: u64,
}

impl Fanout {
    pub(crate) fn rows(&self, t: &mut Rows) {
        self.opening.rows(t);
        t.int("subscribers", self.subscribers);
        t.int_unit("payload", "bytes", self.payload);
        let l = &self.latency;
        t.int("latency phase: messages", l.messages);
        t.num("  one every", "ms", l.gap_ms);
        t.int("  received by every subscriber", l.complete);
        t.opt("  last delivery p50", "ms", l.last_delivery_ms.p50);
        t.opt("  last delivery p99", "ms", l.last_delivery_ms.p99);
        t.opt("  last delivery max", "ms", l.last_delivery_ms.max);
        t.int("  PINGs while fanning out", l.pings);
        t.opt("  PING round trip p99", "ms", l.ping_rtt_ms.p99);
        t.opt("  PING round trip max", "ms", l.ping_rtt_ms.max);
        let b = &self.throughput;
        t.int("throughput phase: messages", b.messages);
        t.int("  OKs", b.oks);
        t.num("  time", "s", b.secs);
        t.int("  deliveries", b.deliveries);
        t.num("  deliveries per second", "/s", b.deliveries_per_sec);
        if let Some(cpu) = b.server_cpu {
            t.cpu("  server CPU", cpu);
        }
        if let Some(per) = b.cpu_per_delivery_us {
            t.num("  server CPU per delivery, user", "us", per.user);
            t.num("  server CPU per delivery, kernel", "us", per.kernel);
        }
        t.opt(
            "  load client CPU use (1 = one core)",
            "",
            b.client_cpu_share,
        );
        self.deliveries.rows(t);
        self.closed_by_server.rows(t, "closed by server");
        let Some(m) = &self.memory else { return };
        t.int_unit("server RSS before", "bytes", m.rss_before);
        t.int_unit("server RSS before publishing", "bytes", m.rss_opened);
        t.int_unit("server RSS after publishing", "bytes", m.rss_after);
        t.num(
            "RSS per connection before publishing",
            "bytes",
            m.per_conn_before_publishing,
        );
        t.num(
            "RSS per connection after publishing",
            "bytes",
            m.per_conn_after_publishing,
        );
        t.int("server open fds", m.fds);
    }
}

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
        let owed = self.ledger.owed.get(seq).map_or(0, |&o| u64::from(o) + 1);
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
    };
    let before = server_sample(args);
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
    let opened = server_sample(args);

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
    let cpu_before = server_sample(args);
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
    let cpu_after = server_sample(args);
    let me_after = proc_stats::sample(std::process::id());
    let burst_end = (spaced..total)
        .filter_map(|s| h.ledger.last_at[s])
        .max()
        .unwrap_or(begun);
    let secs = burst_end.saturating_duration_since(begun).as_secs_f64();
    h.phase = Phase::Waiting;
    let settle = Instant::now() + Duration::from_millis(1000);
    drive(pool, &mut h, &mut opener, settle, &mut progress)?;
    let drained = server_sample(args);

    let mut notes = Vec::new();
    let latencies: Vec<f64> = (0..spaced)
        .filter(|&s| h.ledger.complete(s))
        .filter_map(|s| Some(h.ledger.last_at[s]? - h.ledger.sent_at[s]?))
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    let deliveries: u64 = (spaced..total).map(|s| u64::from(h.ledger.got[s])).sum();
    let server_cpu = cpu_before.zip(cpu_after).map(|(b, a)| a.cpu_since(&b));
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
            messages: h.next_seq.saturating_sub(spaced) as u64,
            oks: h.oks.saturating_sub(spaced) as u64,
            secs,
            deliveries,
            deliveries_per_sec: deliveries as f64 / secs.max(1e-6),
            server_cpu,
            cpu_per_delivery_us: server_cpu.map(|c| c.scaled(1e6 / deliveries.max(1) as f64)),
            client_cpu_share: me_before
                .zip(me_after)
                .map(|(b, a)| a.cpu_since(&b).total() / a.secs_since(&b)),
        },
        deliveries: h.ledger.totals(|s| pool.is_open(s + SUBS_FROM)),
        closed_by_server: h.closes.closes,
        memory,
    };
    Ok(Report::single(args, Figures::Fanout(figures), notes))
}

/// Growth from `before` to `now` per connection, bytes.
fn per_conn(now: u64, before: u64, conns: usize) -> f64 {
    (now as f64 - before as f64) / conns.max(1) as f64
}
