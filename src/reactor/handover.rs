//! Handing one shared payload to one recipient.
//!
//! A recipient with nothing queued is written straight from the shared
//! [`Bytes`] (one `write`, no allocation); what its socket does not take is
//! queued as a slice of the same buffer. A recipient with output queued
//! gets a reference appended to its queue, written with the rest in one
//! `writev` when its socket is writable. A corked recipient
//! (`src/reactor/cork.rs`) is first written what it is owed. Past
//! `max_output` the [`OverflowPolicy`] decides: close it as a slow reader
//! (through the close sequence), or skip it and count the miss.

use bytes::Bytes;

use super::conn::{Liveness, Output};
use super::exchange::{close_reason, queue, write_some};
use super::{live, Core};
use crate::reactor::handler::Handler;
use crate::reactor::push::OverflowPolicy;
use crate::reactor::stats::CloseReason;
use crate::reactor::token::ConnId;

/// What became of one delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Handover {
    /// Written or queued whole.
    Delivered,
    /// Skipped under [`OverflowPolicy::Drop`].
    Dropped,
    /// Closed as a slow reader, or its socket failed.
    Closed,
    /// Closed, closing or stale: nothing done.
    Gone,
}

impl<S: Default> Core<S> {
    /// Hands `payload` to the open connection `id`: appended to its queue
    /// if output is queued for it, else straight to its socket (a unit of
    /// the write budget), within `max_output` and the overflow policy. A
    /// corked connection is first given what it is owed.
    pub(super) fn hand_over<H: Handler<Conn = S>>(
        &mut self,
        handler: &mut H,
        id: ConnId,
        payload: &Bytes,
    ) -> Handover {
        if let Err(reason) = self.uncork(id) {
            return self.closed_by_push(handler, id, reason);
        }
        let Some(conn) = live(&mut self.conns, id) else {
            return Handover::Gone;
        };
        if !matches!(conn.io.liveness, Liveness::Serving(_)) {
            return Handover::Gone;
        }
        let max_output = self.config.max_output;
        let high = self.config.high_water;
        let policy = self.config.overflow;
        let io = &mut conn.io;
        let len = payload.len();
        if io.output.is_none() {
            self.fan.budget_left = self.fan.budget_left.saturating_sub(1);
        }
        let result = match io.output.as_deref_mut() {
            Some(out) if out.len() + len > max_output => match policy {
                OverflowPolicy::Close => Err(CloseReason::SlowReader),
                OverflowPolicy::Drop => {
                    out.missed += 1;
                    out.over_high = true;
                    self.stats.push_dropped += 1;
                    return Handover::Dropped;
                }
            },
            Some(out) => {
                out.push_shared(payload.clone());
                out.over_high |= out.len() >= high;
                Ok(())
            }
            None => match write_some(&mut io.stream, payload) {
                Ok(n) if n == len => {
                    self.stats.bytes_out += n as u64;
                    Ok(())
                }
                Ok(n) => {
                    self.stats.bytes_out += n as u64;
                    if len - n > max_output && policy == OverflowPolicy::Close {
                        Err(CloseReason::SlowReader)
                    } else {
                        let mut out = Box::<Output>::default();
                        out.push_shared(payload.slice(n..));
                        out.over_high = out.len() >= high;
                        queue(&self.poll, io, id, out).map_err(|err| close_reason(&err))
                    }
                }
                Err(err) => Err(close_reason(&err)),
            },
        };
        match result {
            Ok(()) => {
                self.stats.deliveries += 1;
                self.stats.push_bytes += len as u64;
                Handover::Delivered
            }
            Err(reason) => self.closed_by_push(handler, id, reason),
        }
    }

    /// Closes `id` for `reason`, met while pushing to it.
    pub(super) fn closed_by_push<H: Handler<Conn = S>>(
        &mut self,
        handler: &mut H,
        id: ConnId,
        reason: CloseReason,
    ) -> Handover {
        if reason == CloseReason::SlowReader {
            self.stats.push_closed += 1;
        }
        self.close(handler, id, reason);
        Handover::Closed
    }
}
