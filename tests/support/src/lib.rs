//! vigil's test toolkit, shared by every integration test and benchmark.
//!
//! - [`process`]: the real `vigil` binary in a child process on a free port.
//! - [`in_process`]: a [`vigil::Reactor`] on its own thread, with a small
//!   scriptable handler.
//! - [`client`]: the one line client both kinds of server hand out.
//! - [`scrape`]: an HTTP client for the metrics listener and the scraped
//!   exposition, parsed by a real Prometheus text-format parser.
//! - [`rng`]: splitmix64, the one seedable random source.
//! - [`redis`]: a real `redis-server` on a free port (the bus tests), a port
//!   that never answers, and a receiver for what a callback saw.
//!
//! Every wait in here is bounded by [`PATIENCE`]: a test that fails, fails
//! with a message instead of hanging.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod client;
pub mod in_process;
pub mod process;
pub mod redis;
pub mod rng;
pub mod scrape;

use std::ops::RangeInclusive;
use std::time::Duration;

/// The longest a test waits for something that should happen (a line, a
/// close, a process's exit, a log line, a scrape's condition).
pub const PATIENCE: Duration = Duration::from_secs(5);

/// `n` milliseconds.
pub const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Asserts that `elapsed` lies in `window` (inclusive).
#[track_caller]
pub fn assert_within(elapsed: Duration, window: RangeInclusive<Duration>) {
    assert!(
        window.contains(&elapsed),
        "{elapsed:?} is outside {:?}..={:?}",
        window.start(),
        window.end()
    );
}
