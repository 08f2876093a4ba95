//! The scenarios: each runs against a [`Pool`] and returns its own
//! typed figures inside a [`Report`].

pub(crate) mod fanout;
pub(crate) mod fanout_figures;
pub(crate) mod fanout_ledger;
pub(crate) mod heartbeat;
pub(crate) mod hold;
pub(crate) mod keepalive;
pub(crate) mod reap;
pub(crate) mod rolling;
pub(crate) mod storm;

use std::io;

pub use fanout_figures::{Fanout, FanoutLatency, FanoutMemory, FanoutThroughput};
pub use fanout_ledger::Deliveries;
pub use heartbeat::{Heartbeat, HeartbeatServer};
pub use hold::{Hold, HoldServer};
pub use keepalive::{Keepalive, KeepaliveServer};
pub use reap::Reap;
pub use rolling::Rolling;
pub use storm::{Storm, TcpCounters};

use super::options::{Options, Scenario};
use super::pool::Pool;
use super::proc_stats::{self, Sample};
use super::report::Report;

/// Reads the server's counters if a pid was given.
fn server_sample(args: &Options) -> Option<Sample> {
    args.server_pid.and_then(proc_stats::sample)
}

/// Runs the scenario of `args` in this process.
pub(crate) fn run(args: &Options) -> io::Result<Report> {
    let mut pool = Pool::new(args.addr, args.sources)?;
    if let Some(keepalive) = args.keepalive {
        pool.set_greeting(format!("KEEPALIVE {}ms\n", keepalive.as_millis()).as_bytes());
    }
    let report = match args.scenario {
        Scenario::Hold => hold::run(args, &mut pool),
        Scenario::Heartbeat => heartbeat::run(args, &mut pool),
        Scenario::Reap => reap::run(args, &mut pool),
        Scenario::Keepalive => keepalive::run(args, &mut pool),
        Scenario::Storm => storm::run(args, &mut pool),
        Scenario::Rolling => rolling::run(args, &mut pool),
        Scenario::Fanout => fanout::run(args, &mut pool),
    };
    pool.close_all();
    report
}
