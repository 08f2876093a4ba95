//! The load client behind `vigil-load`, as a library: it opens and holds
//! many connections from one thread and one mio `Poll`, runs one
//! [`Scenario`], and returns a typed [`Report`].
//!
//! - [`Options`] are `vigil-load`'s flags; [`Options::to_args`] spells them
//!   back for programs that start it (the capacity benchmark, `--procs`).
//! - [`run`] runs a scenario and returns its [`Report`]: one struct of
//!   figures per scenario ([`Hold`], [`Heartbeat`], [`Reap`], [`Keepalive`],
//!   [`Storm`], [`Rolling`], [`Fanout`]).
//! - [`Report::write_json`] and [`Report::read_json`] are the one JSON
//!   writer and reader, used by `vigil-load`, by `--procs` to add up its
//!   processes' reports, and by the capacity benchmark.
//!
//! The client speaks the wire protocol (`docs/protocol.md`) through the
//! crate's [`LineCodec`](crate::protocol::LineCodec). With
//! [`Options::server_pid`] it also reads the server's memory, CPU time,
//! context switches and open files from `/proc` (Linux).
//!
//! Behind the `load` feature (on with the default `cli`).
//!
//! # Examples
//!
//! ```no_run
//! use vigil::load::{Options, Scenario};
//!
//! let mut opts = Options::new(Scenario::Reap, "127.0.0.1:7373".parse()?);
//! opts.conns = 100;
//! let report = vigil::load::run(&opts)?;
//! let reap = report.reap().expect("a reap report");
//! println!("{} reaped, p99 {:?} ms late", reap.reaped, reap.late_ms.p99);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod drive;
mod multi;
mod opener;
mod options;
mod parts;
mod pool;
pub mod proc_stats;
mod report;
mod rows;
mod scenarios;

use std::io;

pub use crate::duration::parse_duration;
pub use opener::EARLY_RATE_CONNS;
pub use options::{Options, Scenario};
pub use parts::{Closes, Cpu, Opening, Spread, StoppedBy};
pub use report::{Figures, Procs, Report, WholeRun};
pub use scenarios::{
    Deliveries, Fanout, FanoutLatency, FanoutMemory, FanoutThroughput, Heartbeat, HeartbeatServer,
    Hold, HoldServer, Keepalive, KeepaliveServer, Reap, Rolling, Storm, TcpCounters,
};

/// Runs `opts.scenario` and returns what it measured.
///
/// With `opts.procs` above 1 the connections are split over that many
/// processes of the current executable, which must then be `vigil-load`
/// (the caller's `argv[0]` is re-run with each share); their reports are
/// added up.
///
/// # Errors
///
/// No poll, an impossible setting (several sources for a server off
/// 127.x, `fanout` with `procs`), or, with `procs`, no process that could
/// be started or reported.
pub fn run(opts: &Options) -> io::Result<Report> {
    if opts.procs > 1 && opts.scenario == Scenario::Fanout {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "fanout runs in one process (its publisher, pinger and subscribers share one clock): \
             at most about 19,980 subscribers under a limit of 20,000 files",
        ));
    }
    if opts.procs > 1 {
        multi::run(opts, &std::env::current_exe()?)
    } else {
        scenarios::run(opts)
    }
}

impl Report {
    /// The report of a run in this process.
    fn single(opts: &Options, figures: Figures, notes: Vec<String>) -> Report {
        Report {
            label: opts.label.clone(),
            procs: None,
            figures,
            notes,
        }
    }
}
