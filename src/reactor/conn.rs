//! One connection's reactor-side state: its socket, its liveness deadlines
//! (or, once it is closing, the bounds of its close), and the output it could
//! not write yet.
//!
//! # Registered vs true deadlines
//!
//! A connection has up to three *true* deadlines, all derived from data it
//! already keeps: idle (`last_activity` + idle timeout), lifetime (fixed at
//! accept) and probe (`last_activity` + probe-after, until a probe is sent).
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

use crate::wheel::TimerKey;
use crate::{Clock, CloseReason, Config};

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
    /// Absolute lifetime deadline, or [`NEVER`].
    pub(crate) lifetime_at: u64,
    /// This connection's idle timeout in ticks (0: off). Starts as the
    /// reactor's and may be overridden by the handler. 32 bits keep an idle
    /// connection small; longer spans saturate (about 497 days at 10 ms).
    pub(crate) idle: u32,
    /// The application's timer, in ticks after `accepted` (0: none).
    pub(crate) app: u32,
    /// A probe was sent and no byte has arrived since.
    pub(crate) probed: bool,
}

impl Timing {
    /// Timing for a connection accepted at tick `now`.
    pub(crate) fn accepted(now: u64, limits: &TickLimits) -> Timing {
        Timing {
            last_activity: now,
            accepted: now,
            lifetime_at: after(now, limits.lifetime),
            idle: saturate(limits.idle),
            app: 0,
            probed: false,
        }
    }

    /// Sets the lifetime to `span` ticks from accept (0: off).
    pub(crate) fn set_lifetime(&mut self, span: u64) {
        self.lifetime_at = after(self.accepted, span);
    }

    /// Records bytes received at tick `now`: the whole hot path.
    #[inline]
    pub(crate) fn activity(&mut self, now: u64) {
        self.last_activity = now;
        self.probed = false;
    }

    /// Sets the idle timeout to `span` ticks (0: off).
    pub(crate) fn set_idle(&mut self, span: u64) {
        self.idle = saturate(span);
    }

    fn idle_at(&self) -> u64 {
        after(self.last_activity, u64::from(self.idle))
    }

    fn probe_at(&self, probe: u64) -> u64 {
        if self.probed {
            NEVER
        } else {
            after(self.last_activity, probe)
        }
    }

    /// The earliest true deadline, or [`NEVER`].
    pub(crate) fn next_deadline(&self, limits: &TickLimits) -> u64 {
        self.lifetime_at
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

    /// What to do at tick `now`. Lifetime wins over idle, both over a
    /// probe, and all over the application's timer, when several are due.
    pub(crate) fn due(&self, now: u64, limits: &TickLimits) -> Due {
        if self.lifetime_at <= now {
            Due::Close(CloseReason::Lifetime)
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
fn after(tick: u64, span: u64) -> u64 {
    if span == 0 {
        NEVER
    } else {
        tick.saturating_add(1).saturating_add(span)
    }
}

fn saturate(span: u64) -> u32 {
    u32::try_from(span).unwrap_or(u32::MAX)
}

/// A closing connection's progress and bounds (`docs/protocol.md`, "The
/// close sequence"). Its reason is decided and counted; what is left is to
/// write what it is owed, send our FIN, and read the peer's input until its
/// FIN, so that closing the socket never turns into a reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Linger {
    /// Give up (close the socket as it is) at this tick. While output is
    /// queued: `linger` after the last write progress. Once our FIN is sent:
    /// the quiet interval after the last byte read, never past `cap`.
    pub(crate) until: u64,
    /// The latest `until` may become once our FIN is sent.
    pub(crate) cap: u64,
    /// Input bytes read and discarded since our FIN.
    pub(crate) discarded: u32,
    /// Our FIN is sent: everything owed was written.
    pub(crate) write_shut: bool,
    /// The peer's FIN was read: nothing more will arrive.
    pub(crate) input_closed: bool,
}

impl Linger {
    /// A close that began at tick `now`, with `flush` ticks to write what is
    /// queued (renewed by each write progress).
    pub(crate) fn begin(now: u64, flush: u64, input_closed: bool) -> Linger {
        let until = after(now, flush.max(1));
        Linger {
            until,
            cap: until,
            discarded: 0,
            write_shut: false,
            input_closed,
        }
    }

    /// Some queued output was written at tick `now`.
    pub(crate) fn wrote(&mut self, now: u64, flush: u64) {
        if !self.write_shut {
            self.until = after(now, flush.max(1));
        }
    }

    /// Our FIN was sent at tick `now`: lingering lasts at most `total`
    /// ticks, and ends earlier after `quiet` ticks without input.
    pub(crate) fn shut(&mut self, now: u64, total: u64, quiet: u64) {
        self.write_shut = true;
        self.cap = after(now, total.max(1));
        self.until = after(now, quiet.max(1)).min(self.cap);
    }

    /// `n` input bytes were read and discarded at tick `now`. Returns whether
    /// the close may go on (`false`: more than `max_bytes` discarded since
    /// our FIN). Input that arrives while output is still owed is not
    /// counted: that phase is bounded by write progress.
    pub(crate) fn discard(&mut self, now: u64, n: usize, quiet: u64, max_bytes: usize) -> bool {
        if !self.write_shut {
            return true;
        }
        let total = (self.discarded as usize).saturating_add(n);
        self.discarded = u32::try_from(total).unwrap_or(u32::MAX);
        self.until = after(now, quiet.max(1)).min(self.cap);
        total <= max_bytes
    }
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

/// Bytes accepted for a peer but not yet taken by its socket. Boxed inside
/// [`ConnIo`] so that a connection with nothing queued costs one null pointer.
#[derive(Debug, Default)]
pub(crate) struct Output {
    buf: Vec<u8>,
    /// Bytes of `buf` before this were already written.
    start: usize,
}

impl Output {
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    pub(crate) fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    pub(crate) fn consume(&mut self, n: usize) {
        self.start += n;
        debug_assert!(self.start <= self.buf.len());
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
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

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: TickLimits = TickLimits {
        idle: 10,
        lifetime: 0,
        probe: 0,
        linger: 100,
        linger_quiet: 10,
    };

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
    fn a_close_waits_for_write_progress_then_for_quiet() {
        let mut linger = Linger::begin(10, 100, false);
        assert!(linger.discard(20, 1 << 30, 10, 4096), "owed output first");
        let close = Liveness::Closing(linger);
        assert_eq!(close.due(110, &LIMITS), Due::At(111));
        assert_eq!(close.due(111, &LIMITS), Due::Abandon);
        linger.wrote(50, 100);
        assert_eq!(linger.until, 151);
        // FIN sent at 60: quiet 10, at most 100.
        linger.shut(60, 100, 10);
        assert_eq!((linger.until, linger.cap), (71, 161));
        linger.wrote(65, 100); // nothing left to write: no effect
        assert_eq!(linger.until, 71);
        assert!(linger.discard(155, 1000, 10, 4096));
        assert_eq!(linger.until, 161, "input never extends past the cap");
        assert!(!linger.discard(156, 4000, 10, 4096));
    }

    #[test]
    fn output_compacts_and_keeps_order() {
        let mut out = Output::default();
        out.push(b"hello ");
        out.consume(4);
        out.push(b"world");
        assert_eq!(out.pending(), b"o world");
        assert_eq!(out.len(), 7);
    }
}
