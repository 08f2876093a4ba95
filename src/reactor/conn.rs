//! One connection's reactor-side state: its socket, its liveness deadlines
//! (or, once it is closing, the bounds of its close), and the output it could
//! not write yet.
//!
//! # Registered vs true deadlines
//!
//! A connection has up to three *true* deadlines, all derived from data it
//! already keeps: idle (`last_activity` + idle timeout), lifetime (fixed at
//! accept) and probe (`last_activity` + probe-after, until a probe is sent).
//! While a PROXY header is awaited, its deadline from accept replaces both.
//! The timer wheel holds one *registered* deadline per connection, and the
//! invariant is:
//!
//! > registered deadline <= earliest true deadline
//!
//! Receiving bytes only moves true deadlines later, so a heartbeat just
//! stores the current tick in `last_activity`: no wheel operation. When the
//! registered deadline fires, [`Timing::due`] recomputes the true deadlines
//! and says what to do: close, probe, or re-arm later. While a probe is
//! outstanding the next probe is not a true deadline, but the first byte
//! would make it one, so the registered deadline also stays at or before the
//! earliest probe a byte could bring ([`Timing::registration`]). Only a change
//! that moves a true deadline *earlier* (a handler shortening its own idle
//! timeout) touches the wheel.
//!
//! # Rounding
//!
//! Ticks round so that nothing fires early: an event recorded at tick `t`
//! happened somewhere in `[t, t + 1)`, so a deadline `d` ticks after it is
//! registered at `t + 1 + d`.

use std::time::Duration;

use mio::net::TcpStream;

mod input_rate;
mod linger;

pub(crate) use super::outbound::Output;
use crate::clock::Clock;
use crate::reactor::config::Config;
use crate::reactor::stats::CloseReason;
use crate::wheel::TimerKey;
pub(crate) use linger::Linger;

/// "Never": a deadline past any tick the reactor will see.
pub(crate) const NEVER: u64 = u64::MAX;

/// The reactor's limits converted to ticks (0 means off).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TickLimits {
    pub(crate) idle: u64,
    pub(crate) lifetime: u64,
    pub(crate) probe: u64,
    /// A close's bound on write progress, and on lingering in all.
    pub(crate) linger: u64,
    /// How long a lingering close waits for input before it gives up.
    pub(crate) linger_quiet: u64,
    /// Input bytes per second one connection may send (0: no limit).
    pub(crate) input_rate: u32,
    /// The tick's length in nanoseconds, for refilling input buckets.
    pub(crate) tick_nanos: u64,
}

impl TickLimits {
    /// `config`'s durations in `clock`'s ticks.
    ///
    /// # Errors
    ///
    /// A probe that would not come before the idle close (both round to the
    /// same tick, or the probe is later).
    pub(crate) fn new(config: &Config, clock: &Clock) -> Result<TickLimits, &'static str> {
        let ticks = |d: Option<Duration>| d.map_or(0, |d| clock.ticks_for(d));
        let limits = TickLimits {
            idle: ticks(config.idle_timeout),
            lifetime: ticks(config.lifetime),
            probe: ticks(config.probe_after),
            linger: ticks(Some(config.linger)).max(1),
            linger_quiet: ticks(Some(config.linger / 10)).max(1),
            input_rate: match config.max_input_rate {
                Some(0) => return Err("max_input_rate must be above zero"),
                rate => rate.unwrap_or(0),
            },
            tick_nanos: u64::try_from(config.tick.as_nanos()).unwrap_or(u64::MAX),
        };
        if limits.probe != 0 && limits.idle != 0 && limits.probe >= limits.idle {
            return Err("probe_after must be at least one tick shorter than idle_timeout");
        }
        Ok(limits)
    }
}

/// What a connection's timer says when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// Close now, for this reason.
    Close(CloseReason),
    /// Send a probe now (the handler writes it).
    Probe,
    /// The application's timer (`app_timers.rs`) fell due.
    Timer,
    /// Nothing yet: re-arm at this tick.
    At(u64),
    /// Nothing is timed any more.
    Never,
    /// A closing connection ran out of time: close the socket as it is.
    Abandon,
}

/// A connection's liveness data; all ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timing {
    /// The tick in which the last byte arrived (accept counts as activity).
    pub(crate) last_activity: u64,
    /// The tick of accept.
    pub(crate) accepted: u64,
    /// This connection's lifetime from accept in ticks (0: off); as `idle`.
    pub(crate) lifetime: u32,
    /// This connection's idle timeout in ticks (0: off). Starts as the
    /// reactor's and may be overridden by the handler. 32 bits keep an idle
    /// connection small; longer spans saturate (about 497 days at 10 ms).
    /// While `preamble` is set: the preamble's span from accept instead.
    pub(crate) idle: u32,
    /// The input bucket's bytes ([`Timing::draw`]; with an input rate).
    pub(crate) tokens: u32,
    /// The application's timer, in ticks after `accepted` (0: none).
    pub(crate) app: u32,
    /// A probe was sent and no byte has arrived since.
    pub(crate) probed: bool,
    /// A preamble (PROXY header) is awaited: `idle` is its deadline.
    pub(crate) preamble: bool,
}

impl Timing {
    /// Timing for a connection accepted at tick `now`.
    pub(crate) fn accepted(now: u64, limits: &TickLimits) -> Timing {
        Timing {
            last_activity: now,
            accepted: now,
            lifetime: saturate(limits.lifetime),
            idle: saturate(limits.idle),
            tokens: limits.input_rate,
            app: 0,
            probed: false,
            preamble: false,
        }
    }

    /// Sets the lifetime to `span` ticks from accept (0: off).
    pub(crate) fn set_lifetime(&mut self, span: u64) {
        self.lifetime = saturate(span);
    }

    /// The absolute lifetime deadline, or [`NEVER`].
    pub(crate) fn lifetime_at(&self) -> u64 {
        after(self.accepted, u64::from(self.lifetime))
    }

    /// Records bytes received at tick `now`: the whole hot path.
    #[inline]
    pub(crate) fn activity(&mut self, now: u64) {
        self.last_activity = now;
        self.probed = false;
    }

    /// Draws `n` bytes read at `now` from the input bucket, refilled since
    /// the last read ([`input_rate::draw`]); call before `activity`.
    pub(crate) fn draw(&mut self, now: u64, n: usize, limits: &TickLimits) -> bool {
        let elapsed = now.saturating_sub(self.last_activity);
        input_rate::draw(&mut self.tokens, elapsed, n, limits)
    }

    /// Sets the idle timeout to `span` ticks (0: off). A preamble's
    /// deadline, if one was awaited, no longer applies.
    pub(crate) fn set_idle(&mut self, span: u64) {
        self.idle = saturate(span);
        self.preamble = false;
    }

    /// A preamble must end `span` ticks after accept (0: untimed); until
    /// then, neither the idle timeout nor probes apply.
    pub(crate) fn await_preamble(&mut self, span: u64) {
        if span != 0 {
            self.idle = saturate(span);
            self.preamble = true;
        }
    }

    /// The preamble is complete: the idle timeout `idle` applies again.
    pub(crate) fn end_preamble(&mut self, idle: u64) {
        if self.preamble {
            self.set_idle(idle);
        }
    }

    fn preamble_at(&self) -> u64 {
        if self.preamble {
            after(self.accepted, u64::from(self.idle))
        } else {
            NEVER
        }
    }

    fn idle_at(&self) -> u64 {
        if self.preamble {
            NEVER
        } else {
            after(self.last_activity, u64::from(self.idle))
        }
    }

    fn probe_at(&self, probe: u64) -> u64 {
        if self.probed || self.preamble {
            NEVER
        } else {
            after(self.last_activity, probe)
        }
    }

    /// The earliest true deadline, or [`NEVER`].
    pub(crate) fn next_deadline(&self, limits: &TickLimits) -> u64 {
        self.lifetime_at()
            .min(self.preamble_at())
            .min(self.idle_at())
            .min(self.probe_at(limits.probe))
            .min(self.app_at())
    }

    /// The deadline to register in the wheel at tick `now`: the earliest
    /// true deadline, except that while a probe is outstanding it is no
    /// later than the earliest next probe that any byte from now on could
    /// bring (`now + 1 + probe`). A byte only ever moves true deadlines later
    /// than what is registered, so reads never touch the wheel; the price is
    /// one extra wake-up per probe interval while a probed peer stays silent.
    pub(crate) fn registration(&self, now: u64, limits: &TickLimits) -> u64 {
        let next = self.next_deadline(limits);
        if self.probed {
            next.min(after(now, limits.probe))
        } else {
            next
        }
    }

    /// What to do at tick `now`. Lifetime wins over a preamble's deadline
    /// and idle, all of them over a probe, and all over the application's
    /// timer, when several are due at once.
    pub(crate) fn due(&self, now: u64, limits: &TickLimits) -> Due {
        if self.lifetime_at() <= now {
            Due::Close(CloseReason::Lifetime)
        } else if self.preamble_at() <= now {
            Due::Close(CloseReason::ProxyHeader)
        } else if self.idle_at() <= now {
            Due::Close(CloseReason::Idle)
        } else if self.probe_at(limits.probe) <= now {
            Due::Probe
        } else {
            match self.next_deadline(limits) {
                NEVER => Due::Never,
                tick if tick <= now => Due::Timer, // nothing else is left
                tick => Due::At(tick),
            }
        }
    }
}

/// The deadline `span` ticks after an event in tick `tick`, rounded so it
/// never comes early; [`NEVER`] when `span` is 0 (off).
pub(super) fn after(tick: u64, span: u64) -> u64 {
    if span == 0 {
        NEVER
    } else {
        tick.saturating_add(1).saturating_add(span)
    }
}

fn saturate(span: u64) -> u32 {
    u32::try_from(span).unwrap_or(u32::MAX)
}

/// What a connection's timer tracks: its liveness while it is served, the
/// bounds of its close once the reason is decided.
///
/// Both fit in the same 32 bytes: `Closing` lives in the padding niche of
/// `Serving` (see `liveness_stays_small`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Liveness {
    /// Open: the handler gets its bytes; idle, lifetime and probe apply.
    Serving(Timing),
    /// Closing: input is discarded; only the close's bounds apply.
    Closing(Linger),
}

impl Liveness {
    /// The deadline to register in the wheel at tick `now` (see
    /// [`Timing::registration`]).
    pub(crate) fn registration(&self, now: u64, limits: &TickLimits) -> u64 {
        match self {
            Liveness::Serving(timing) => timing.registration(now, limits),
            Liveness::Closing(linger) => linger.until,
        }
    }

    /// What to do at tick `now`.
    pub(crate) fn due(&self, now: u64, limits: &TickLimits) -> Due {
        match self {
            Liveness::Serving(timing) => timing.due(now, limits),
            Liveness::Closing(linger) if linger.until <= now => Due::Abandon,
            Liveness::Closing(linger) => Due::At(linger.until),
        }
    }
}

/// The reactor's side of one connection.
#[derive(Debug)]
pub(crate) struct ConnIo {
    pub(crate) stream: TcpStream,
    pub(crate) generation: u32,
    /// The wheel entry holding the registered deadline, if any is timed.
    pub(crate) timer: Option<TimerKey>,
    /// On the reactor's deferred list, waiting for another read turn.
    pub(crate) on_deferred_list: bool,
    /// A short read does not prove the socket drained: an event reported a
    /// FIN, an error or urgent data (a read stops short at the urgent mark),
    /// and reading goes on until `WouldBlock` or EOF, across deferred turns.
    pub(crate) read_to_block: bool,
    /// The sequence number of the first fan-out this connection is owed
    /// while corked, 0 while not (`src/reactor/cork.rs`); a corked
    /// connection has no `output`.
    pub(crate) corked_at: u32,
    pub(crate) liveness: Liveness,
    /// `None` while everything written so far reached the socket; writable
    /// interest is registered exactly while this is `Some`.
    pub(crate) output: Option<Box<Output>>,
}

/// A connection in the slab: the reactor's part and the handler's.
#[derive(Debug)]
pub(crate) struct Conn<S> {
    pub(crate) io: ConnIo,
    pub(crate) state: S,
}

/// Limits the unit tests of the reactor's timing share: idle 10 ticks,
/// linger 100 (quiet 10), nothing else.
#[cfg(test)]
pub(crate) const TEST_LIMITS: TickLimits = TickLimits {
    idle: 10,
    lifetime: 0,
    probe: 0,
    linger: 100,
    linger_quiet: 10,
    input_rate: 0,
    tick_nanos: 10_000_000,
};

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: TickLimits = TEST_LIMITS;

    #[test]
    fn idle_fires_one_tick_after_the_span_never_before() {
        let t = Timing::accepted(5, &LIMITS);
        assert_eq!(t.next_deadline(&LIMITS), 16);
        assert_eq!(t.due(15, &LIMITS), Due::At(16));
        assert_eq!(t.due(16, &LIMITS), Due::Close(CloseReason::Idle));
    }

    #[test]
    fn activity_moves_only_the_true_deadline() {
        let mut t = Timing::accepted(0, &LIMITS);
        t.activity(8);
        // The registered deadline (11) fires; the true one is later.
        assert_eq!(t.due(11, &LIMITS), Due::At(19));
    }

    #[test]
    fn lifetime_wins_over_idle_and_activity() {
        let limits = TickLimits {
            lifetime: 20,
            ..LIMITS
        };
        let mut t = Timing::accepted(0, &limits);
        t.activity(15);
        assert_eq!(t.due(21, &limits), Due::Close(CloseReason::Lifetime));
        assert_eq!(t.next_deadline(&limits), 21);
    }

    #[test]
    fn probe_once_per_silence() {
        let limits = TickLimits {
            idle: 10,
            probe: 4,
            ..LIMITS
        };
        let mut t = Timing::accepted(0, &limits);
        assert_eq!(t.due(5, &limits), Due::Probe);
        t.probed = true;
        assert_eq!(t.due(5, &limits), Due::At(11));
        t.activity(7);
        assert!(!t.probed);
        assert_eq!(t.due(11, &limits), Due::At(12));
        assert_eq!(t.due(12, &limits), Due::Probe);
    }

    #[test]
    fn an_outstanding_probe_keeps_the_next_probe_registered() {
        let limits = TickLimits {
            idle: 40,
            probe: 4,
            ..LIMITS
        };
        let mut t = Timing::accepted(0, &limits);
        assert_eq!(t.registration(0, &limits), 5);
        // The probe goes out at 5: idle is due at 41, but a byte at 5 or
        // later could make a probe due as early as 10.
        t.probed = true;
        assert_eq!(t.next_deadline(&limits), 41);
        assert_eq!(t.registration(5, &limits), 10);
        // Silent until then: nothing due, registered again one interval on.
        assert_eq!(t.due(10, &limits), Due::At(41));
        assert_eq!(t.registration(10, &limits), 15);
        // An answer at 12: the probe at 17 is not earlier than what is
        // registered (15), so the read needed no wheel operation.
        t.activity(12);
        assert_eq!(t.due(15, &limits), Due::At(17));
        assert_eq!(t.due(17, &limits), Due::Probe);
    }

    #[test]
    fn a_probe_must_come_a_tick_before_the_idle_close() {
        let clock = Clock::new(Duration::from_millis(10));
        let mut config = Config {
            idle_timeout: Some(Duration::from_millis(15)),
            probe_after: Some(Duration::from_millis(12)), // both 2 ticks
            ..Config::default()
        };
        assert!(TickLimits::new(&config, &clock).is_err());
        config.probe_after = Some(Duration::from_millis(10));
        assert_eq!(TickLimits::new(&config, &clock).unwrap().probe, 1);
    }

    #[test]
    fn nothing_timed_is_never_due() {
        let off = TickLimits::default();
        let t = Timing::accepted(3, &off);
        assert_eq!(t.due(u64::MAX - 1, &off), Due::Never);
    }

    #[test]
    fn a_preamble_deadline_replaces_idle_and_probe_until_it_ends() {
        let limits = TickLimits { probe: 4, ..LIMITS };
        let mut t = Timing::accepted(0, &limits);
        t.await_preamble(30);
        // Trickled bytes move nothing: no probe, no idle close.
        t.activity(20);
        assert_eq!(t.due(25, &limits), Due::At(31));
        assert_eq!(t.due(31, &limits), Due::Close(CloseReason::ProxyHeader));
        t.end_preamble(limits.idle);
        assert_eq!(t.due(25, &limits), Due::Probe);
        assert_eq!(t.next_deadline(&limits), 25);
        // Off: the idle timeout goes on applying.
        let mut t = Timing::accepted(0, &limits);
        t.await_preamble(0);
        assert_eq!(t.due(11, &limits), Due::Close(CloseReason::Idle));
    }
}
