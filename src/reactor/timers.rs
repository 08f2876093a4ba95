//! The timers: one wheel entry per connection, armed no later than its
//! true deadline, and what happens when one falls due.

use super::conn::{Due, Liveness, NEVER};
use super::{live, loop_stats, Core};
use crate::reactor::handler::Handler;
use crate::reactor::token::ConnId;

impl<S: Default> Core<S> {
    /// Makes the registered deadline no later than the true one.
    pub(super) fn arm(&mut self, id: ConnId) {
        let Some(conn) = live(&mut self.conns, id) else {
            return;
        };
        let next = conn.io.liveness.registration(self.now, &self.limits);
        match conn.io.timer {
            Some(key) if next < self.wheel.deadline(key).unwrap_or(NEVER) => {
                self.wheel.reset(key, next);
            }
            Some(_) => {} // registered <= true already
            None if next != NEVER => conn.io.timer = Some(self.wheel.insert(next, id)),
            None => {}
        }
    }

    /// Acts on every due timer.
    pub(super) fn expire<H: Handler<Conn = S>>(&mut self, handler: &mut H) {
        while let Some((_, id)) = self.wheel.pop_expired(self.now) {
            let Some(conn) = live(&mut self.conns, id) else {
                continue;
            };
            conn.io.timer = None;
            match conn.io.liveness.due(self.now, &self.limits) {
                Due::Close(reason) => {
                    if let Liveness::Serving(timing) = &conn.io.liveness {
                        if let Some(tick) = loop_stats::reap_deadline(timing, reason) {
                            let deadline = self.clock.instant_of(tick);
                            self.loop_stats
                                .reaped(self.last_read.saturating_duration_since(deadline));
                        }
                    }
                    self.close(handler, id, reason);
                }
                Due::Probe => {
                    self.loop_stats.probes_sent += 1;
                    if let Liveness::Serving(timing) = &mut conn.io.liveness {
                        timing.probed = true;
                    }
                    if self.callback(handler, id, |h, cx, state| h.on_probe(cx, state)) {
                        self.arm(id);
                    }
                }
                Due::Timer => {
                    if let Liveness::Serving(timing) = &mut conn.io.liveness {
                        timing.app = 0; // one-shot: the callback may set it again
                    }
                    if self.callback(handler, id, |h, cx, state| h.on_timer(cx, state)) {
                        self.arm(id);
                    }
                }
                Due::At(_) => self.arm(id),
                Due::Abandon => self.abandon(id),
                Due::Never => {}
            }
        }
        self.acceptor.resume_if_due(self.now);
    }

    pub(super) fn counters_changed(&mut self) {
        if let (Some(interval), None) = (self.config.stats_interval, self.stats_due) {
            self.stats_due = Some(self.ticks_from_now(interval));
        }
    }

    pub(super) fn report_stats<H: Handler<Conn = S>>(&mut self, handler: &mut H) {
        if self.stats_due.is_some_and(|tick| tick <= self.now) {
            self.stats_due = None;
            handler.on_stats(&self.stats);
        }
    }
}
