//! [`LoopContext`]: what code running on the loop's thread without a
//! connection of its own (a closure sent through a
//! [`ReactorHandle`](crate::ReactorHandle), a loop timer) can do: push to
//! any connection, set loop timers, read the counters.

use std::time::Duration;

use slab::Slab;

use super::app_timers::{LoopTimer, LoopTimers};
use super::conn::{Conn, Liveness};
use super::outbound::HoldKind;
use super::push::{Bytes, Gone, Recipients};
use crate::clock::Clock;
use crate::reactor::stats::Stats;
use crate::reactor::token::ConnId;

/// A push asked for on a [`LoopContext`], carried out when the closure or
/// callback returns.
#[derive(Debug)]
pub(crate) enum Push {
    To(ConnId, Bytes),
    FanOut(Bytes, Recipients),
    /// Fill the oldest reply hold of a connection (`fill_reply`).
    Fill(ConnId, Vec<u8>),
}

/// Tells whether an id names an open connection, whatever the handler's
/// per-connection type.
pub(crate) trait OpenConns {
    fn is_open(&self, id: ConnId) -> bool;
    /// Unfilled reply holds of `id`, open or closing (0 for a gone one).
    fn reply_holds(&self, id: ConnId) -> usize;
}

impl<S> OpenConns for Slab<Conn<S>> {
    fn is_open(&self, id: ConnId) -> bool {
        self.get(id.key()).is_some_and(|conn| {
            conn.io.generation == id.generation()
                && matches!(conn.io.liveness, Liveness::Serving(_))
        })
    }

    fn reply_holds(&self, id: ConnId) -> usize {
        self.get(id.key())
            .filter(|conn| conn.io.generation == id.generation())
            .and_then(|conn| conn.io.output.as_deref())
            .map_or(0, |out| out.holds(HoldKind::Reply))
    }
}

/// The loop's side of the reactor, for code that runs on its thread but
/// not for one connection: a closure sent with
/// [`ReactorHandle::execute`](crate::ReactorHandle::execute), or
/// [`Handler::on_loop_timer`](crate::Handler::on_loop_timer).
///
/// Pushes are recorded and carried out, in order, when the closure or
/// callback returns, like the writes of a [`Context`](crate::Context).
///
/// # Examples
///
/// Every 100 ms, the time to every connection:
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use vigil::{Bytes, Handler, LoopContext, Recipients};
///
/// struct Clock;
/// impl Handler for Clock {
///     type Conn = ();
///     fn on_loop_timer(&mut self, lcx: &mut LoopContext<'_>, _token: u64) {
///         let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap();
///         lcx.fan_out(Bytes::from(format!("TIME {}\n", now.as_secs())), Recipients::All);
///     }
/// }
///
/// // Started once from the handle, e.g. before `run`:
/// // handle.execute(|_, lcx| { lcx.set_periodic(Duration::from_millis(100), 0); })
/// # let _ = Duration::ZERO;
/// ```
pub struct LoopContext<'a> {
    pub(super) pushes: &'a mut Vec<Push>,
    timers: &'a mut LoopTimers,
    pub(super) conns: &'a dyn OpenConns,
    stats: &'a Stats,
    clock: &'a Clock,
    now: u64,
}

impl std::fmt::Debug for LoopContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopContext")
            .field("pushes", &self.pushes.len())
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

impl<'a> LoopContext<'a> {
    pub(crate) fn new(
        pushes: &'a mut Vec<Push>,
        timers: &'a mut LoopTimers,
        conns: &'a dyn OpenConns,
        stats: &'a Stats,
        clock: &'a Clock,
        now: u64,
    ) -> LoopContext<'a> {
        LoopContext {
            pushes,
            timers,
            conns,
            stats,
            clock,
            now,
        }
    }

    /// Sends `payload` to connection `to` when this closure or callback
    /// returns, after anything it was owed before.
    ///
    /// # Errors
    ///
    /// [`Gone`]: `to` is closed, closing, or stale (its slot now holds
    /// another connection). `Ok` says it was open when asked; a delivery
    /// asked earlier in the same closure may still close it (a slow
    /// reader), and then it gets nothing.
    pub fn send(&mut self, to: ConnId, payload: Bytes) -> Result<(), Gone> {
        if !self.conns.is_open(to) {
            return Err(Gone);
        }
        self.pushes.push(Push::To(to, payload));
        Ok(())
    }

    /// Sends one shared `payload` to every connection `to` names, when this
    /// closure or callback returns. Ids in a list that are gone are skipped.
    pub fn fan_out(&mut self, payload: Bytes, to: Recipients) {
        self.pushes.push(Push::FanOut(payload, to));
    }

    /// Whether `id` names an open connection (not closing, not stale).
    pub fn is_open(&self, id: ConnId) -> bool {
        self.conns.is_open(id)
    }

    /// Calls [`Handler::on_loop_timer`](crate::Handler::on_loop_timer) with
    /// `token` once, `after` from now (rounded up to the reactor's tick,
    /// never early).
    pub fn set_timer(&mut self, after: Duration, token: u64) -> LoopTimer {
        let at = self.deadline(after);
        self.timers.insert(at, 0, token)
    }

    /// Calls [`Handler::on_loop_timer`](crate::Handler::on_loop_timer) with
    /// `token` every `every` (at least one tick), the first time `every`
    /// from now. Periods missed while the loop was busy are skipped, not
    /// bunched.
    pub fn set_periodic(&mut self, every: Duration, token: u64) -> LoopTimer {
        let at = self.deadline(every);
        let period = self.clock.ticks_for(every).max(1);
        self.timers.insert(at, period, token)
    }

    /// Cancels `timer`. Returns false if it had already fired (one-shot) or
    /// been cancelled.
    pub fn cancel_timer(&mut self, timer: LoopTimer) -> bool {
        self.timers.cancel(timer)
    }

    /// The reactor's counters.
    pub fn stats(&self) -> &Stats {
        self.stats
    }

    fn deadline(&self, after: Duration) -> u64 {
        // An instant in tick `now` is somewhere in [now, now + 1).
        self.now
            .saturating_add(1)
            .saturating_add(self.clock.ticks_for(after))
    }
}
