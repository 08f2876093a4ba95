//! `hold`: open N connections as fast as the server takes them (each is
//! established once its first `PING` is answered), hold them silent for the
//! duration, and watch the server while they are silent.

use std::io;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::server_sample;
use crate::load::drive::{drive, CloseCounter, Handler, Progress};
use crate::load::opener::Opener;
use crate::load::options::Options;
use crate::load::parts::{Closes, Cpu, Opening};
use crate::load::pool::{Ev, Pool};
use crate::load::proc_stats::{self, Sample};
use crate::load::report::{Figures, Report};
use crate::load::rows::Rows;

/// What `hold` measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Hold {
    /// How the connections were opened.
    pub opening: Opening,
    /// Connections the server closed while they were being opened.
    pub closed_during_open: u64,
    /// Connections the server closed over the whole run.
    pub closed_by_server: Closes,
    /// Connections still open at the end.
    pub held_open: u64,
    /// How long they were held silent, seconds.
    pub hold_secs: f64,
    /// The load client's CPU time to open them.
    pub client_cpu_opening: Option<Cpu>,
    /// The server, with `--server-pid`.
    pub server: Option<HoldServer>,
}

/// The server in `hold`, read from `/proc`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HoldServer {
    /// Resident memory before the connections, bytes.
    pub rss_before: u64,
    /// Resident memory with the connections, bytes.
    pub rss_after: u64,
    /// Growth of resident memory per connection established, bytes.
    pub rss_per_conn: f64,
    /// Open files before.
    pub fds_before: u64,
    /// Open files with the connections.
    pub fds_after: u64,
    /// Context switches per second while the connections were silent.
    pub wakeups_per_sec: f64,
    /// CPU time while the connections were silent.
    pub cpu_while_silent: Cpu,
    /// CPU time to accept the connections.
    pub cpu_opening: Cpu,
}

impl Hold {
    /// Adds another process's figures (`--procs`); the server's are the
    /// parent's to measure.
    pub(crate) fn absorb(&mut self, o: &Hold) {
        self.opening.absorb(&o.opening);
        self.closed_during_open += o.closed_during_open;
        self.closed_by_server.absorb(&o.closed_by_server);
        self.held_open += o.held_open;
        self.hold_secs = self.hold_secs.max(o.hold_secs);
        if let (Some(a), Some(b)) = (&mut self.client_cpu_opening, &o.client_cpu_opening) {
            a.add(b);
        }
        self.server = None;
    }

    pub(crate) fn rows(&self, t: &mut Rows) {
        self.opening.rows(t);
        t.int("closed by server while opening", self.closed_during_open);
        self.closed_by_server.rows(t, "closed by server (all)");
        t.int("still open at the end", self.held_open);
        t.num("hold time", "s", self.hold_secs);
        if let Some(cpu) = self.client_cpu_opening {
            t.cpu("load client CPU to open them", cpu);
        }
        let Some(s) = &self.server else { return };
        t.int_unit("server RSS before", "bytes", s.rss_before);
        t.int_unit("server RSS with the connections", "bytes", s.rss_after);
        t.num("server RSS growth per connection", "bytes", s.rss_per_conn);
        t.int("server open fds before", s.fds_before);
        t.int("server open fds with the connections", s.fds_after);
        t.num(
            "server context switches/s while silent",
            "/s",
            s.wakeups_per_sec,
        );
        t.cpu("server CPU while silent", s.cpu_while_silent);
        t.cpu("server CPU to accept them", s.cpu_opening);
    }
}

/// Counts closes by the server; done when the opening is over (phase 1) or
/// never (phase 2, which ends at its deadline).
struct Holder {
    closes: CloseCounter,
    until_opened: bool,
}

impl Handler for Holder {
    fn on_event(&mut self, _pool: &mut Pool, ev: Ev) {
        self.closes.on_event(&ev);
    }

    fn done(&self, _pool: &Pool, opener: &Opener, _now: Instant) -> bool {
        self.until_opened && opener.is_done()
    }

    fn progress(&self, pool: &Pool, opener: &Opener) -> String {
        format!(
            "open {} pending {} failed {} closed by server {}",
            pool.open,
            pool.pending,
            opener.failed + opener.timed_out,
            self.closes.total()
        )
    }
}

/// Runs the scenario.
pub(crate) fn run(args: &Options, pool: &mut Pool) -> io::Result<Report> {
    let mut progress = Progress::new("hold");
    let before = server_sample(args);
    let me = proc_stats::sample(std::process::id());
    let mut opener = Opener::new(args.conns, args.pending, args.connect_timeout);
    let mut h = Holder {
        closes: CloseCounter::default(),
        until_opened: true,
    };
    let cap = Instant::now() + args.connect_timeout + Duration::from_secs(5);
    drive(pool, &mut h, &mut opener, cap, &mut progress)?;
    let opening_closes = h.closes.total();
    let me_opened = proc_stats::sample(std::process::id());
    progress.say(&format!(
        "{} established at {:.0} conn/s; settling",
        opener.established,
        opener.rate()
    ));

    // Let the server accept what the kernel already completed, then sample.
    h.until_opened = false;
    let settle = Instant::now() + Duration::from_millis(1000);
    drive(pool, &mut h, &mut opener, settle, &mut progress)?;
    let opened = server_sample(args);

    progress.say(&format!(
        "holding {} silent for {:?}",
        pool.open, args.duration
    ));
    let hold_end = Instant::now() + args.duration;
    drive(pool, &mut h, &mut opener, hold_end, &mut progress)?;
    let after = server_sample(args);

    let mut notes = Vec::new();
    let server = match (before, opened, after) {
        (Some(b), Some(o), Some(a)) => Some(server_figures(&b, &o, &a, opener.established)),
        _ => {
            notes.push("no --server-pid: server memory, files and wakeups not measured".into());
            None
        }
    };
    let figures = Hold {
        opening: opener.figures(&mut notes),
        closed_during_open: opening_closes,
        closed_by_server: h.closes.closes,
        held_open: pool.open as u64,
        hold_secs: args.duration.as_secs_f64(),
        client_cpu_opening: me.zip(me_opened).map(|(a, b)| b.cpu_since(&a)),
        server,
    };
    Ok(Report::single(args, Figures::Hold(figures), notes))
}

/// Memory and file growth per connection, and wakeups while silent.
fn server_figures(b: &Sample, o: &Sample, a: &Sample, established: usize) -> HoldServer {
    HoldServer {
        rss_before: b.rss_bytes,
        rss_after: o.rss_bytes,
        rss_per_conn: (o.rss_bytes as f64 - b.rss_bytes as f64) / established.max(1) as f64,
        fds_before: b.fds,
        fds_after: o.fds,
        wakeups_per_sec: a.wakeups_per_sec_since(o),
        cpu_while_silent: a.cpu_since(o),
        cpu_opening: o.cpu_since(b),
    }
}
