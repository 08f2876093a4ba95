//! What the `fanout` scenario measured: its figures and their table rows.

use serde::{Deserialize, Serialize};

use super::fanout_ledger::Deliveries;
use crate::load::rows::Rows;
use crate::load::{Closes, Cpu, Opening, Spread};

/// What `fanout` measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Fanout {
    /// How the connections (subscribers, publisher, pinger) were opened.
    pub opening: Opening,
    /// Subscribers established.
    pub subscribers: u64,
    /// Server instances the subscribers were spread over (sharing a bus
    /// when more than 1).
    #[serde(default = "one")]
    pub instances: u64,
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
    /// The bus's (`redis-server`'s) CPU time over the phase, user and
    /// kernel together (exact, from the scheduler), seconds, with
    /// `--bus-pid`.
    #[serde(default)]
    pub bus_cpu_secs: Option<f64>,
    /// The bus's CPU time per message published, microseconds.
    #[serde(default)]
    pub bus_cpu_per_message_us: Option<f64>,
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

/// One instance, for reports written before there could be several.
fn one() -> u64 {
    1
}

impl Fanout {
    pub(crate) fn rows(&self, t: &mut Rows) {
        self.opening.rows(t);
        t.int("subscribers", self.subscribers);
        t.int("server instances (sharing a bus if > 1)", self.instances);
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
        t.opt("  bus CPU per message", "us", b.bus_cpu_per_message_us);
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
