//! `storm`: N clients connect at once, as after a server restart, each sends
//! `PING` and waits for its `PONG`: how long until all are answered, the
//! slowest client's wait, and what the kernel dropped and sent again.

use std::io;
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

/// What `storm` measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Storm {
    /// How the connections were opened; `secs` is the time until the last
    /// one was answered.
    pub opening: Opening,
    /// Each client's wait from its connect to its `PONG`, milliseconds.
    pub wait_ms: Spread,
    /// Connections the server closed.
    pub closed_by_server: Closes,
    /// The TCP stack's counters over the storm (the whole network
    /// namespace's: other traffic counts too).
    pub tcp: Option<TcpCounters>,
    /// The server's CPU time over the storm, with `--server-pid`.
    pub server_cpu: Option<Cpu>,
}

/// Increments of the kernel's TCP counters over a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpCounters {
    /// SYNs dropped at a full listen queue (`ListenDrops`).
    pub listen_drops: u64,
    /// Accept queue overflows (`ListenOverflows`).
    pub listen_overflows: u64,
    /// SYNs retransmitted (`TCPSynRetrans`).
    pub syn_retrans: u64,
}

impl Storm {
    /// Adds another process's figures (`--procs`): the worst waits; the
    /// kernel's counters are the same for every process, so the largest.
    pub(crate) fn absorb(&mut self, o: &Storm) {
        self.opening.absorb(&o.opening);
        self.wait_ms.absorb_worst(&o.wait_ms);
        self.closed_by_server.absorb(&o.closed_by_server);
        self.tcp = self.tcp.max(o.tcp);
        self.server_cpu = None;
    }

    pub(crate) fn rows(&self, t: &mut Rows) {
        self.opening.rows(t);
        t.opt("wait for the PONG p50", "ms", self.wait_ms.p50);
        t.opt("wait for the PONG p99", "ms", self.wait_ms.p99);
        t.opt("slowest client's wait", "ms", self.wait_ms.max);
        self.closed_by_server.rows(t, "closed by server");
        if let Some(c) = self.tcp {
            t.int("listen drops (ListenDrops)", c.listen_drops);
            t.int("listen overflows (ListenOverflows)", c.listen_overflows);
            t.int("SYN retransmits (TCPSynRetrans)", c.syn_retrans);
        }
        if let Some(cpu) = self.server_cpu {
            t.cpu("server CPU over the storm", cpu);
        }
    }
}

impl PartialOrd for TcpCounters {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TcpCounters {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let key = |c: &Self| (c.syn_retrans, c.listen_drops, c.listen_overflows);
        key(self).cmp(&key(other))
    }
}

/// Counts closes; done when every connect has been answered or given up.
struct Stormer {
    closes: CloseCounter,
}

impl Handler for Stormer {
    fn on_event(&mut self, _pool: &mut Pool, ev: Ev) {
        self.closes.on_event(&ev);
    }

    fn done(&self, _pool: &Pool, opener: &Opener, _now: Instant) -> bool {
        opener.is_done()
    }

    fn progress(&self, pool: &Pool, opener: &Opener) -> String {
        format!(
            "answered {} pending {} failed {}",
            opener.established,
            pool.pending,
            opener.failed + opener.timed_out
        )
    }
}

/// Runs the scenario.
pub(crate) fn run(args: &Options, pool: &mut Pool) -> io::Result<Report> {
    let mut progress = Progress::new("storm");
    let before = server_sample(args);
    let tcp_before = proc_stats::tcp();
    // No bound on connects in flight: every client at once.
    let mut opener = Opener::new(args.conns, args.conns, args.connect_timeout);
    let mut h = Stormer {
        closes: CloseCounter::default(),
    };
    let cap = Instant::now() + args.connect_timeout + Duration::from_secs(5);
    drive(pool, &mut h, &mut opener, cap, &mut progress)?;
    let after = server_sample(args);
    let tcp_after = proc_stats::tcp();

    let mut notes = Vec::new();
    let tcp = tcp_before.zip(tcp_after).map(|(b, a)| TcpCounters {
        listen_drops: a.listen_drops.saturating_sub(b.listen_drops),
        listen_overflows: a.listen_overflows.saturating_sub(b.listen_overflows),
        syn_retrans: a.syn_retrans.saturating_sub(b.syn_retrans),
    });
    if tcp.is_some() {
        notes.push(
            "TCP counters are the network namespace's: other traffic on the machine counts too"
                .into(),
        );
    }
    let figures = Storm {
        opening: opener.figures(&mut notes),
        wait_ms: Spread::of(std::mem::take(&mut opener.waits_ms)),
        closed_by_server: h.closes.closes,
        tcp,
        server_cpu: before.zip(after).map(|(b, a)| a.cpu_since(&b)),
    };
    Ok(Report::single(args, Figures::Storm(figures), notes))
}
