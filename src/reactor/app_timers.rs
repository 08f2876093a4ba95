//! The application's timers: one per connection, kept in the connection's
//! existing wheel entry, and a few loop timers beside the wheel.
//!
//! # A connection's timer
//!
//! It is one more *true* deadline of the connection (see `conn.rs`,
//! "Registered vs true deadlines"), stored as a 4-byte offset from accept.
//! The wheel entry is due at the earliest of idle, lifetime, probe and the
//! application's deadline: setting a timer earlier than what is registered
//! moves the entry; setting it later, or cancelling it, touches nothing,
//! and when the registered deadline fires the true ones are recomputed.
//!
//! # Loop timers
//!
//! They are few (a periodic publish, a batch flush), so they live in a
//! binary heap of their own, folded into the poll timeout. A cancelled
//! timer's heap entry stays until it comes up and is skipped: its slot's
//! generation no longer matches.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use slab::Slab;

use super::conn::{Timing, NEVER};
use crate::reactor::handler::Context;

impl Timing {
    /// Sets the application's timer to `span` ticks after tick `now`,
    /// rounded so it never fires early (`conn.rs`, "Rounding"); clamped at
    /// `u32::MAX` ticks after accept.
    pub(crate) fn set_app_timer(&mut self, now: u64, span: u64) {
        let at = now.saturating_add(1).saturating_add(span);
        let offset = at.saturating_sub(self.accepted).max(1);
        self.app = u32::try_from(offset).unwrap_or(u32::MAX);
    }

    /// The application's timer deadline, or [`NEVER`].
    pub(crate) fn app_at(&self) -> u64 {
        match self.app {
            0 => NEVER,
            offset => self.accepted.saturating_add(u64::from(offset)),
        }
    }
}

impl Context<'_> {
    /// Sets this connection's timer to fire once, `after` from now:
    /// [`Handler::on_timer`](crate::Handler::on_timer) is then called with
    /// this connection. Replaces a timer set before (earlier or later).
    /// Rounded up to the reactor's tick, so it never fires early; at most
    /// `u32::MAX` ticks after accept (about 497 days at 10 ms).
    ///
    /// It shares the connection's one wheel entry with idle, lifetime and
    /// probe: an idle or lifetime close that falls due first still closes
    /// the connection, and the timer never delays one.
    ///
    /// # Examples
    ///
    /// A line 50 ms after each connection opens:
    ///
    /// ```
    /// use std::time::Duration;
    /// use vigil::{Context, Handler};
    ///
    /// struct Greeter;
    /// impl Handler for Greeter {
    ///     type Conn = ();
    ///     fn on_open(&mut self, cx: &mut Context<'_>, _: &mut ()) {
    ///         cx.set_timer(Duration::from_millis(50));
    ///     }
    ///     fn on_timer(&mut self, cx: &mut Context<'_>, _: &mut ()) {
    ///         cx.write(b"hello\n");
    ///     }
    /// }
    /// ```
    pub fn set_timer(&mut self, after: Duration) {
        let now = self.clock.tick_at(std::time::Instant::now());
        let span = self.clock.ticks_for(after);
        self.timing.set_app_timer(now, span);
        self.retimed = true;
    }

    /// Cancels this connection's timer, if one is set. No wheel operation:
    /// the registered deadline finds nothing due and re-arms.
    pub fn cancel_timer(&mut self) {
        self.timing.app = 0;
    }

    /// Whether this connection's timer is set.
    pub fn timer_is_set(&self) -> bool {
        self.timing.app != 0
    }
}

/// A loop timer, as set by
/// [`LoopContext::set_timer`](crate::LoopContext::set_timer): pass it to
/// [`LoopContext::cancel_timer`](crate::LoopContext::cancel_timer). Stale
/// once it has fired (one-shot) or been cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LoopTimer {
    key: usize,
    generation: u32,
}

#[derive(Debug)]
struct Slot {
    at: u64,
    /// Ticks between two firings; 0 for a one-shot timer.
    period: u64,
    token: u64,
    generation: u32,
}

/// The loop timers: deadlines in ticks, earliest first.
#[derive(Debug, Default)]
pub(crate) struct LoopTimers {
    slots: Slab<Slot>,
    heap: BinaryHeap<Reverse<(u64, usize, u32)>>,
    next_generation: u32,
}

impl LoopTimers {
    /// A timer due at tick `at`, then every `period` ticks (0: once).
    pub(crate) fn insert(&mut self, at: u64, period: u64, token: u64) -> LoopTimer {
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1);
        let key = self.slots.insert(Slot {
            at,
            period,
            token,
            generation,
        });
        self.heap.push(Reverse((at, key, generation)));
        LoopTimer { key, generation }
    }

    /// Cancels `timer`; false if it was stale.
    pub(crate) fn cancel(&mut self, timer: LoopTimer) -> bool {
        let live = self
            .slots
            .get(timer.key)
            .is_some_and(|slot| slot.generation == timer.generation);
        if live {
            self.slots.remove(timer.key);
        }
        live
    }

    /// Whether `(at, key, generation)` is a timer's current heap entry.
    fn current(&self, (at, key, generation): (u64, usize, u32)) -> bool {
        self.slots
            .get(key)
            .is_some_and(|slot| slot.generation == generation && slot.at == at)
    }

    /// The earliest deadline, dropping stale heap entries on the way.
    pub(crate) fn next_deadline(&mut self) -> Option<u64> {
        while let Some(&Reverse(head)) = self.heap.peek() {
            if self.current(head) {
                return Some(head.0);
            }
            self.heap.pop();
        }
        None
    }

    /// The token of a timer due at tick `now`, if any. A periodic timer is
    /// due again one period later; periods missed while the loop was busy
    /// are skipped, not bunched.
    pub(crate) fn pop_due(&mut self, now: u64) -> Option<u64> {
        let at = self.next_deadline()?;
        if at > now {
            return None;
        }
        let Reverse((_, key, generation)) = self.heap.pop()?;
        let slot = &mut self.slots[key];
        let token = slot.token;
        if slot.period == 0 {
            self.slots.remove(key);
        } else {
            let mut next = at.saturating_add(slot.period);
            if next <= now {
                next = now.saturating_add(slot.period);
            }
            slot.at = next;
            self.heap.push(Reverse((next, key, generation)));
        }
        Some(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reactor::conn::{Due, Liveness, TickLimits};
    use crate::reactor::stats::CloseReason;

    const LIMITS: TickLimits = crate::reactor::conn::TEST_LIMITS;

    #[test]
    fn the_application_timer_fires_on_its_tick_and_yields_to_closes() {
        let mut t = Timing::accepted(100, &LIMITS);
        t.set_app_timer(103, 4); // set in tick 103: due at 108
        assert_eq!(t.app_at(), 108);
        assert_eq!(t.next_deadline(&LIMITS), 108);
        assert_eq!(t.due(107, &LIMITS), Due::At(108));
        assert_eq!(t.due(108, &LIMITS), Due::Timer);
        // Idle (due at 111) wins when both are due.
        assert_eq!(t.due(111, &LIMITS), Due::Close(CloseReason::Idle));
        t.app = 0; // cancelled
        assert_eq!(t.due(108, &LIMITS), Due::At(111));
        // Far past the offset's range: clamped, never wrapped.
        t.set_app_timer(103, u64::MAX / 2);
        assert_eq!(t.app_at(), 100 + u64::from(u32::MAX));
    }

    #[test]
    fn a_probe_due_with_the_timer_goes_first() {
        let limits = TickLimits { probe: 4, ..LIMITS };
        let mut t = Timing::accepted(0, &limits);
        t.set_app_timer(0, 4);
        assert_eq!(t.due(5, &limits), Due::Probe);
        t.probed = true;
        assert_eq!(t.due(5, &limits), Due::Timer);
    }

    #[test]
    fn timing_stays_small() {
        // Paid by every idle connection: see the memory goal in
        // docs/architecture.md. The application's timer added 8 bytes.
        assert!(std::mem::size_of::<Timing>() <= 40);
        assert_eq!(
            std::mem::size_of::<Liveness>(),
            std::mem::size_of::<Timing>()
        );
    }

    #[test]
    fn one_shot_and_periodic_timers_fire_in_order() {
        let mut timers = LoopTimers::default();
        timers.insert(10, 0, 1);
        timers.insert(5, 4, 2);
        assert_eq!(timers.next_deadline(), Some(5));
        assert_eq!(timers.pop_due(4), None);
        assert_eq!(timers.pop_due(5), Some(2));
        assert_eq!(timers.pop_due(5), None);
        assert_eq!(timers.pop_due(9), Some(2));
        assert_eq!(timers.pop_due(10), Some(1));
        assert_eq!(timers.pop_due(10), None);
        // Behind by many periods: one firing, then one period from now.
        assert_eq!(timers.pop_due(100), Some(2));
        assert_eq!(timers.pop_due(100), None);
        assert_eq!(timers.next_deadline(), Some(104));
    }

    #[test]
    fn a_cancelled_timer_never_fires_and_its_id_goes_stale() {
        let mut timers = LoopTimers::default();
        let a = timers.insert(3, 0, 1);
        let b = timers.insert(3, 1, 2);
        assert!(timers.cancel(a));
        assert!(!timers.cancel(a));
        assert_eq!(timers.pop_due(3), Some(2));
        assert!(timers.cancel(b));
        assert_eq!(timers.next_deadline(), None);
        // A new timer in a's old slot is not cancelled by a's id.
        let c = timers.insert(7, 0, 3);
        assert!(!timers.cancel(a));
        assert_eq!(timers.pop_due(7), Some(3));
        assert!(!timers.cancel(c), "fired: stale");
    }
}
