//! Handler callbacks: one runs with a [`Context`] on its own connection;
//! what it asked for (a new deadline, bytes, pushes, a close) is carried
//! out when it returns.
//!
//! # The connection's state is lent, not borrowed
//!
//! During a callback the connection's handler state and liveness are moved
//! out of the slab (the state replaced by its `Default`, the timing copied)
//! and put back after, so that the [`Context`] can look at the other
//! connections (is an id open, what is queued) while the callback changes
//! its own. That is two small copies per callback, no allocation.
//!
//! # Replies and pushes in order
//!
//! A push records how many bytes the callback had written when it was
//! asked for. When the callback returns its bytes and its pushes are
//! carried out in that order: a push that may reach the connection itself
//! is preceded by the bytes written before it, and the reply to a fan-out
//! ([`Context::fan_out_with_reply`]) is put where it was asked for: at once
//! if the fan-out completes within this turn's budget, else as a hold in
//! the connection's output, filled when it completes.

use super::conn::{Liveness, Timing};
use super::handler::Requests;
use super::handover::Handover;
use super::outbound::HoldKind;
use super::push::{Push, Reach, Target};
use super::{live, Core};
use crate::reactor::handler::{Context, Handler};
use crate::reactor::push::Recipients;
use crate::reactor::stats::CloseReason;
use crate::reactor::token::ConnId;

impl<S: Default> Core<S> {
    /// Runs `f` with a [`Context`] on `id` if it is open (or, with
    /// `closing_too`, closing: its timing changes are then ignored). Its
    /// bytes are left in `write_buf` and its pushes in `pushes`.
    pub(super) fn run_callback<H: Handler<Conn = S>>(
        &mut self,
        handler: &mut H,
        id: ConnId,
        closing_too: bool,
        f: impl FnOnce(&mut H, &mut Context<'_>, &mut S),
    ) -> Option<Requests> {
        let conn = live(&mut self.conns, id)?;
        let (mut timing, serving) = match conn.io.liveness {
            Liveness::Serving(timing) => (timing, true),
            Liveness::Closing(_) if closing_too => {
                (Timing::accepted(self.now, &self.limits), false)
            }
            Liveness::Closing(_) => return None,
        };
        let mut state = std::mem::take(&mut conn.state);
        let reach = Reach {
            peers: &self.conns,
            pushes: &mut self.pushes,
        };
        let mut cx = Context::new(
            id,
            &mut timing,
            &mut self.write_buf,
            &self.stats,
            &self.clock,
            reach,
        );
        f(handler, &mut cx, &mut state);
        let requests = cx.finish();
        requests.retime(&mut timing, &self.limits);
        // Nothing closes a connection during its own callback.
        let conn = &mut self.conns[id.key()];
        conn.state = state;
        if serving {
            conn.io.liveness = Liveness::Serving(timing);
        }
        Some(requests)
    }

    /// Runs one handler callback on `id` if it is open (not closing), then
    /// carries out what it asked: re-arm, send, push, close. Returns
    /// whether `id` is still open.
    pub(super) fn callback<H: Handler<Conn = S>>(
        &mut self,
        handler: &mut H,
        id: ConnId,
        f: impl FnOnce(&mut H, &mut Context<'_>, &mut S),
    ) -> bool {
        let Some(requests) = self.run_callback(handler, id, false, f) else {
            return false;
        };
        if requests.retimed {
            self.arm(id);
        }
        let (flushed, close) = if self.pushes.is_empty() {
            (self.flush(id), None)
        } else {
            self.carry_out(handler, id)
        };
        match flushed.err().or(requests.close).or(close) {
            Some(reason) => {
                self.close(handler, id, reason);
                false
            }
            None => self.is_open(id),
        }
    }

    /// Carries out the bytes and pushes of the callback that just ran on
    /// `id`, in order. Returns the result of sending its bytes, and a
    /// close asked for by an `on_fan_out_done` it led to.
    fn carry_out<H: Handler<Conn = S>>(
        &mut self,
        handler: &mut H,
        id: ConnId,
    ) -> (Result<(), CloseReason>, Option<CloseReason>) {
        let mut pushes = std::mem::take(&mut self.pushes);
        // Callbacks made meanwhile (closes of slow recipients, replies)
        // write into the spare buffer, not over these bytes.
        let spare = std::mem::take(&mut self.fan.spare);
        let own = std::mem::replace(&mut self.write_buf, spare);
        let mut out = std::mem::take(&mut self.fan.assembled);
        let mut cursor = 0;
        let mut result = Ok(());
        let mut close = None;
        for push in pushes.drain(..) {
            let Push {
                at,
                payload,
                to,
                reply,
            } = push;
            out.extend_from_slice(&own[cursor..at]);
            cursor = at;
            if let Target::Hold = to {
                // The bytes before it go first; those after, behind it.
                self.emit(id, &mut out, &mut result);
                if result.is_ok() && self.is_open(id) {
                    self.hold_place(id, HoldKind::Reply);
                }
                continue;
            }
            self.stats.pushes += 1;
            let to = match to {
                Target::One(to) if self.fan.jobs.is_empty() => {
                    if to == id {
                        self.emit(id, &mut out, &mut result);
                    }
                    if self.hand_over(handler, to, &payload) == Handover::Gone {
                        self.stats.push_gone += 1;
                    }
                    continue;
                }
                Target::One(to) => {
                    self.enqueue(payload, Target::One(to), None);
                    continue;
                }
                Target::Many(to) => to,
                Target::Hold => continue,
            };
            let reaches_self = match &to {
                Recipients::AllBut(but) => *but != id,
                Recipients::All => true,
                Recipients::List(ids) => ids.contains(&id),
            };
            // Done within this turn, before the callback's next bytes, so
            // that its reply needs no hold: a list within the write budget,
            // every connection within the visits (written at once while the
            // budget lasts, corked after: `src/reactor/cork.rs`).
            let room = match &to {
                Recipients::List(ids) => ids.len() <= self.fan.budget_left,
                _ => self.stats.open as usize <= self.fan.visits_left,
            };
            let at_once = !self.fan.running && self.fan.jobs.is_empty() && room;
            if reaches_self || (reply && !at_once) {
                self.emit(id, &mut out, &mut result);
            }
            if !at_once {
                let reply_to = (reply && self.hold_place(id, HoldKind::FanOut)).then_some(id);
                self.enqueue(payload, Target::Many(to), reply_to);
                continue;
            }
            self.enqueue(payload, Target::Many(to), None);
            let mut job = self.fan.jobs.pop_back().expect("just queued");
            let done = self.run_job(handler, &mut job);
            debug_assert!(done, "a fan-out within the visits left is done at once");
            if reply {
                let report = job.report();
                let requests = self.run_callback(handler, id, false, |h, cx, state| {
                    h.on_fan_out_done(cx, state, report)
                });
                out.extend_from_slice(&self.write_buf);
                self.write_buf.clear();
                if !self.pushes.is_empty() {
                    // A hold it asked for goes behind what is assembled.
                    self.emit(id, &mut out, &mut result);
                }
                self.enqueue_recorded(id);
                if let Some(requests) = requests {
                    if requests.retimed {
                        self.arm(id);
                    }
                    close = close.or(requests.close);
                }
            }
        }
        out.extend_from_slice(&own[cursor..]);
        self.emit(id, &mut out, &mut result);
        self.pushes = pushes;
        self.fan.assembled = out;
        self.fan.spare = std::mem::replace(&mut self.write_buf, own);
        self.fan.spare.clear();
        self.write_buf.clear();
        self.run_fan_outs(handler);
        (result, close)
    }

    /// Sends the assembled bytes `out` to `id` and empties it; nothing
    /// more once sending failed (the connection is then closed).
    fn emit(&mut self, id: ConnId, out: &mut Vec<u8>, result: &mut Result<(), CloseReason>) {
        if result.is_ok() && self.is_open(id) {
            *result = self.send_owned(id, out);
        }
        out.clear();
    }
}
