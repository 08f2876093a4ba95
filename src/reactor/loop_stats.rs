//! What the loop itself counts: iterations, their busy time, reap
//! lateness, probes. Plain integers and fixed histograms, written on the
//! reactor's thread and read only when metrics are rendered.

use std::time::Duration;

use crate::histogram::{Histogram, SUB_SECOND_BOUNDS_NS};
use crate::reactor::conn::{Timing, NEVER};
use crate::reactor::stats::{CloseReason, Stats};

/// Reap lateness buckets, in nanoseconds: 100 µs to 1 s.
pub(crate) static REAP_LATENESS_BOUNDS: [u64; 13] = SUB_SECOND_BOUNDS_NS;

/// Loop iteration busy time buckets, in nanoseconds: 10 µs to 1 s.
pub(crate) static ITERATION_BOUNDS: [u64; 15] = [
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    1_000_000_000,
];

/// Readiness events per iteration: powers of two up to the events taken
/// per poll (1024).
pub(crate) static EVENTS_BOUNDS: [u64; 11] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/// Counters of the event loop, beside the connection counters of
/// [`Stats`].
///
/// # Examples
///
/// ```
/// use vigil::{Config, Handler, Reactor};
///
/// struct Quiet;
/// impl Handler for Quiet {
///     type Conn = ();
/// }
///
/// let reactor = Reactor::bind("127.0.0.1:0".parse()?, Config::default(), Quiet)?;
/// let metrics = reactor.metrics();
/// assert_eq!(metrics.loop_stats.iterations, 0);
/// assert_eq!(metrics.loop_stats.reap_lateness.count(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LoopStats {
    /// Loop iterations completed (one poll each).
    pub iterations: u64,
    /// Readiness events handled.
    pub events: u64,
    /// Busy time per iteration, in nanoseconds: from the poll's return to
    /// the last clock reading before the next poll (see `docs/operations.md`).
    pub iteration_busy: Histogram,
    /// Readiness events per iteration.
    pub events_per_iteration: Histogram,
    /// Reap lateness in nanoseconds: from the instant an idle or lifetime
    /// deadline fell due (the start of the first tick wholly after the true
    /// deadline, the earliest a close cannot be early) to the close. The true
    /// deadline lies less than one tick before that instant.
    pub reap_lateness: Histogram,
    /// Times a connection used up its read budget and was read again in the
    /// next iteration.
    pub deferred_reads: u64,
    /// Probes sent ([`Handler::on_probe`](crate::Handler::on_probe) calls).
    pub probes_sent: u64,
    /// Probed connections that sent something before their idle timeout.
    pub probes_answered: u64,
}

impl Default for LoopStats {
    fn default() -> LoopStats {
        LoopStats {
            iterations: 0,
            events: 0,
            iteration_busy: Histogram::new(&ITERATION_BOUNDS, 1e-9),
            events_per_iteration: Histogram::new(&EVENTS_BOUNDS, 1.0),
            reap_lateness: Histogram::new(&REAP_LATENESS_BOUNDS, 1e-9),
            deferred_reads: 0,
            probes_sent: 0,
            probes_answered: 0,
        }
    }
}

impl LoopStats {
    /// Records one finished iteration.
    #[inline]
    pub(crate) fn iteration(&mut self, busy: Duration, events: usize) {
        self.iterations += 1;
        self.events += events as u64;
        self.iteration_busy.observe(nanos(busy));
        self.events_per_iteration.observe(events as u64);
    }

    /// Records a reap `late` after the deadline.
    pub(crate) fn reaped(&mut self, late: Duration) {
        self.reap_lateness.observe(nanos(late));
    }
}

/// The tick at which the deadline that closed a connection for `reason`
/// fell due (see the rounding in `conn.rs`): the tick of the last byte (or
/// of accept) plus one plus the timeout. `None` for reasons that are no
/// deadline.
pub(crate) fn reap_deadline(timing: &Timing, reason: CloseReason) -> Option<u64> {
    match reason {
        CloseReason::Idle => Some(
            timing
                .last_activity
                .saturating_add(1)
                .saturating_add(u64::from(timing.idle)),
        ),
        CloseReason::Lifetime if timing.lifetime_at() != NEVER => Some(timing.lifetime_at()),
        _ => None,
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Everything a reactor counts, copied out for rendering: see
/// [`Reactor::metrics`](crate::Reactor::metrics).
///
/// # Examples
///
/// ```
/// use vigil::{Config, Handler, Reactor};
///
/// struct Quiet;
/// impl Handler for Quiet {
///     type Conn = ();
/// }
///
/// let reactor = Reactor::bind("127.0.0.1:0".parse()?, Config::default(), Quiet)?;
/// let metrics = reactor.metrics();
/// assert_eq!(metrics.stats.open, 0);
/// assert_eq!(metrics.timers, 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ReactorMetrics {
    /// The connection counters.
    pub stats: Stats,
    /// The loop's counters.
    pub loop_stats: LoopStats,
    /// Entries in the timer wheel now (at most one per open connection).
    pub timers: u64,
    /// Connections waiting for another read turn now.
    pub deferred: u64,
    /// The connection limit ([`Config::max_connections`](crate::Config::max_connections)).
    pub max_connections: u64,
    /// Scrape connections open now (not counted in `stats`).
    pub scrapes_open: u64,
    /// Scrape requests answered, by any status.
    pub scrapes: u64,
}
