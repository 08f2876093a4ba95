//! Stopping: the listener closes at once, open connections are closed with
//! [`CloseReason::Shutdown`] (all at once, or spread evenly over
//! [`Config::drain`](crate::Config::drain)), and the loop runs on until
//! every close has finished.

use super::conn::Liveness;
use super::Core;
#[cfg(doc)]
use crate::reactor::config::Config;
use crate::reactor::handler::Handler;
use crate::reactor::stats::CloseReason;
use crate::reactor::token::ConnId;

/// A reactor that is shutting down.
#[derive(Debug)]
pub(super) struct Stopping {
    /// The loop ends at this tick, whatever is still closing.
    until: u64,
    /// The connections open when the shutdown began, closed in this order.
    ids: Vec<ConnId>,
    /// `ids[..next]` have been closed.
    next: usize,
    /// The tick the shutdown began.
    start: u64,
    /// Ticks to spread the closes over (0: all at once).
    span: u64,
    /// A second request ended the drain.
    hurried: bool,
}

impl Stopping {
    /// How many of the first closes are due at tick `now`: one at once, the
    /// last one just before `start + span`, evenly in between.
    fn due(&self, now: u64) -> usize {
        let len = self.ids.len();
        if self.span == 0 || self.hurried {
            return len;
        }
        let elapsed = u128::from(now.saturating_sub(self.start));
        let due = elapsed * len as u128 / u128::from(self.span) + 1;
        usize::try_from(due).map_or(len, |due| due.min(len))
    }

    /// The tick at which the loop must wake: the next close's turn, or
    /// once none is left, the shutdown's bound.
    pub(super) fn next_tick(&self) -> u64 {
        let len = self.ids.len();
        if self.next >= len {
            return self.until;
        }
        // The first tick t with due(t) > next: next * span / len ticks in.
        let offset = (self.next as u128 * u128::from(self.span)).div_ceil(len as u128);
        let tick = self
            .start
            .saturating_add(u64::try_from(offset).unwrap_or(u64::MAX));
        tick.min(self.until)
    }
}

impl<S: Default> Core<S> {
    /// Begins the shutdown, once: closes the listener (after accepting what
    /// waits in its backlog, so that those clients read `BYE shutdown`
    /// rather than a reset, unless [`Config::close_backlog_at_shutdown`] is
    /// off) and schedules the close of every connection open before. The loop then runs until every close has finished, for
    /// at most the drain plus twice `linger`.
    pub(super) fn begin_stopping<H: Handler<Conn = S>>(&mut self, handler: &mut H) {
        if self.stopping.is_none() {
            let ids: Vec<ConnId> = self
                .conns
                .iter()
                .filter(|(_, conn)| matches!(conn.io.liveness, Liveness::Serving(_)))
                .map(|(key, conn)| ConnId::new(key, conn.io.generation))
                .collect();
            let backlog = if self.config.close_backlog_at_shutdown {
                self.accept_backlog_to_close(handler)
            } else {
                Vec::new()
            };
            self.acceptor.close(self.poll.registry());
            let span = self.clock.ticks_for(self.config.drain);
            let linger = self.clock.ticks_for(self.config.linger.saturating_mul(2));
            if span > 0 {
                log::info!(
                    "stopping: closing {} connections over {:?}",
                    ids.len(),
                    self.config.drain
                );
            }
            self.stopping = Some(Stopping {
                until: self.now.saturating_add(span).saturating_add(linger.max(1)),
                ids,
                next: 0,
                start: self.now,
                span,
                hurried: false,
            });
            for id in backlog {
                self.close(handler, id, CloseReason::Shutdown);
            }
        }
        self.drain(handler);
    }

    /// Closes the connections whose turn has come; all of them once the
    /// shutdown was asked for a second time.
    fn drain<H: Handler<Conn = S>>(&mut self, handler: &mut H) {
        let hurry = self.shutdown.is_hurried();
        let Some(stopping) = &mut self.stopping else {
            return;
        };
        if hurry && !stopping.hurried {
            stopping.hurried = true;
            if stopping.next < stopping.ids.len() {
                log::info!(
                    "stopping: asked again, closing the other {} connections now",
                    stopping.ids.len() - stopping.next
                );
            }
            let linger = self.clock.ticks_for(self.config.linger.saturating_mul(2));
            stopping.until = stopping.until.min(self.now.saturating_add(linger.max(1)));
        }
        let due = stopping.due(self.now);
        let from = stopping.next;
        stopping.next = due.max(from);
        let ids = std::mem::take(&mut stopping.ids);
        for &id in &ids[from..due.max(from)] {
            self.close(handler, id, CloseReason::Shutdown);
        }
        if let Some(stopping) = &mut self.stopping {
            stopping.ids = ids;
        }
    }

    /// Whether the loop is over: shutdown began and every connection is
    /// closed, or the shutdown's bound has passed.
    pub(super) fn stopped(&self) -> bool {
        // No connection can arrive once stopping began (the listener is
        // closed), so an empty slab means nothing is left to drain either.
        self.stopping
            .as_ref()
            .is_some_and(|stopping| self.conns.is_empty() || stopping.until <= self.now)
    }

    /// Ends the loop: closes what is still open or closing as it is, and
    /// reports the counters.
    pub(super) fn finish_stopping<H: Handler<Conn = S>>(&mut self, handler: &mut H) {
        let ids: Vec<ConnId> = self
            .conns
            .iter()
            .map(|(key, conn)| ConnId::new(key, conn.io.generation))
            .collect();
        for id in ids {
            self.close(handler, id, CloseReason::Shutdown);
            self.abandon(id);
        }
        // The final counters, whether or not they changed since the last
        // report: a log then always ends with them.
        if self.config.stats_interval.is_some() {
            self.stats_due = None;
            handler.on_stats(&self.stats);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stopping(len: usize, span: u64) -> Stopping {
        Stopping {
            until: 1_000,
            ids: (0..len).map(|i| ConnId::new(i, 0)).collect(),
            next: 0,
            start: 100,
            span,
            hurried: false,
        }
    }

    #[test]
    fn closes_are_spread_evenly_over_the_drain() {
        let s = stopping(4, 100);
        // One at once, then one every 25 ticks.
        assert_eq!(
            [100, 124, 125, 149, 150, 175, 199, 500].map(|t| s.due(t)),
            [1, 1, 2, 2, 3, 4, 4, 4]
        );
    }

    #[test]
    fn the_next_close_wakes_the_loop_on_its_tick() {
        let mut s = stopping(4, 100);
        for (next, tick) in [(1, 125), (2, 150), (3, 175)] {
            s.next = next;
            assert_eq!(s.next_tick(), tick);
            assert_eq!(s.due(tick), next + 1);
            assert_eq!(s.due(tick - 1), next);
        }
        s.next = 4;
        assert_eq!(s.next_tick(), 1_000, "then only the bound");
    }

    #[test]
    fn without_a_drain_or_once_hurried_everyone_is_due() {
        assert_eq!(stopping(5, 0).due(100), 5);
        let mut s = stopping(5, 100);
        s.hurried = true;
        assert_eq!(s.due(100), 5);
    }
}
