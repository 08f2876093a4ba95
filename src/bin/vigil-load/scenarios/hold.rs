//! `hold`: open N connections as fast as the server takes them (each is
//! established once its first `PING` is answered), hold them silent for the
//! duration, and watch the server while they are silent.

use std::io;
use std::time::{Duration, Instant};

use super::{drive, server_sample, Closes, Handler, Opener, Progress};
use crate::args::Args;
use crate::conn::{Ev, Pool};
use crate::proc_stats::{self, Sample};
use crate::report::Report;

/// Counts closes by the server; done when the opening is over (phase 1) or
/// never (phase 2, which ends at its deadline).
struct Hold {
    closes: Closes,
    until_opened: bool,
}

impl Handler for Hold {
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
pub fn run(args: &Args, pool: &mut Pool) -> io::Result<Report> {
    let mut progress = Progress::new("hold");
    let before = server_sample(args);
    let me = proc_stats::sample(std::process::id());
    let mut opener = Opener::new(args.conns, args.pending, args.connect_timeout);
    let mut h = Hold {
        closes: Closes::default(),
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

    let mut r = Report::default();
    r.text("scenario", "scenario", "hold");
    r.text("label", "server", args.label.clone());
    opener.report(&mut r);
    r.int(
        "closed_during_open",
        "closed by server while opening",
        "",
        opening_closes,
    );
    h.closes
        .report(&mut r, "closed_by_server", "closed by server (all)");
    r.int("held_open", "still open at the end", "", pool.open as u64);
    r.num("hold_secs", "hold time", "s", args.duration.as_secs_f64());
    if let (Some(a), Some(b)) = (me, me_opened) {
        r.num(
            "client_cpu_opening",
            "load client CPU to open them",
            "s",
            b.cpu_secs - a.cpu_secs,
        );
        r.num(
            "client_sys_opening",
            "of which in the kernel",
            "s",
            b.sys_secs - a.sys_secs,
        );
    }
    server_figures(&mut r, before, opened, after, opener.established);
    Ok(r)
}

/// Memory and file growth per connection, and wakeups while silent.
fn server_figures(
    r: &mut Report,
    before: Option<Sample>,
    opened: Option<Sample>,
    after: Option<Sample>,
    established: usize,
) {
    let (Some(b), Some(o), Some(a)) = (before, opened, after) else {
        r.note("no --server-pid: server memory, files and wakeups not measured");
        return;
    };
    let per = |x: u64, y: u64| (y as f64 - x as f64) / established.max(1) as f64;
    r.int(
        "server_rss_before",
        "server RSS before",
        "bytes",
        b.rss_bytes,
    );
    r.int(
        "server_rss_after",
        "server RSS with the connections",
        "bytes",
        o.rss_bytes,
    );
    r.num(
        "server_rss_per_conn",
        "server RSS growth per connection",
        "bytes",
        per(b.rss_bytes, o.rss_bytes),
    );
    r.int("server_fds_before", "server open fds before", "", b.fds);
    r.int(
        "server_fds_after",
        "server open fds with the connections",
        "",
        o.fds,
    );
    let secs = a.at.duration_since(o.at).as_secs_f64().max(1e-6);
    r.num(
        "server_wakeups_per_sec",
        "server context switches/s while silent",
        "/s",
        (a.ctx_switches - o.ctx_switches) as f64 / secs,
    );
    r.num(
        "server_cpu_while_silent",
        "server CPU while silent",
        "s",
        a.cpu_secs - o.cpu_secs,
    );
    r.num(
        "server_cpu_opening",
        "server CPU to accept them",
        "s",
        o.cpu_secs - b.cpu_secs,
    );
}
