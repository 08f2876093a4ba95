//! Corked recipients: how a fan-out larger than the turn's write budget
//! coalesces its writes, without a queue per recipient.
//!
//! A fan-out to every connection ([`Recipients::All`] or `AllBut`) writes
//! straight to each recipient's socket while the turn's write budget
//! (`Config::fan_out_budget`) lasts. Past it, it goes on visiting
//! recipients (up to [`VISITS_PER_WRITE`] times the budget per turn) and
//! only *corks* them: the recipient's `corked_at` (4 bytes that fit in the
//! connection's padding) records the first fan-out it is owed; no system
//! call, no allocation. The payloads stay, shared, in the reactor's log
//! of fan-outs ([`CorkLog`]). The following turns go round the slab and
//! flush corked connections, a write budget's worth per turn, each with
//! one `writev` straight from the log of everything it is owed by then:
//! the fan-outs from `corked_at` on that have visited it (every one before
//! the one under way, and that one if its cursor passed the connection),
//! but those it sent itself (`AllBut`).
//!
//! So a fan-out to 19,000 connections is handed over within one turn (its
//! `OK` can go out at once), and under load the batches grow by
//! themselves: while the flush goes round, the next fan-outs find their
//! recipients still corked, and a recipient's turn writes them all in one
//! call (uWebSockets' cork, the NATS server's flush of each client once
//! per turn). At low load, a fan-out within the budget writes every
//! message at once. An idle connection pays nothing: no list, no queue.
//!
//! Invariants: a corked connection has no output queue (`corked_at != 0`
//! implies `output` is `None`): anything else written to it (a reply, a
//! send, its last words, a fan-out to a list) first writes what it is
//! owed ([`Core::uncork`]), so its order is kept. Only a socket that does
//! not take what it is owed gets a queue, with the rest. Each log entry
//! counts the connections corked at it; the log drops entries from the
//! front once their fan-out is done and no connection is corked at them
//! (one corked at an entry is owed the later ones too).
//!
//! [`Recipients::All`]: crate::reactor::push::Recipients::All

use std::collections::VecDeque;
use std::io::{IoSlice, Write};

use bytes::Bytes;

use super::conn::{ConnIo, Output};
use super::exchange::{close_reason, queue};
use super::outbound::MAX_IOV;
use super::{interrupted, live, would_block, Core};
use crate::reactor::config::Config;
use crate::reactor::handler::Handler;
use crate::reactor::push::OverflowPolicy;
use crate::reactor::stats::CloseReason;
use crate::reactor::token::ConnId;

/// Recipients a turn's fan-outs may visit per unit of the write budget: a
/// visit past the budget only marks the recipient (a few nanoseconds), so
/// a turn visits at most 32 x 256 recipients at the default budget.
pub(super) const VISITS_PER_WRITE: usize = 32;

/// One fan-out to every connection, kept while a corked recipient may owe
/// it.
#[derive(Debug)]
struct Logged {
    seq: u32,
    payload: Bytes,
    /// The sender of an `AllBut`: not owed it.
    skip: Option<ConnId>,
    /// Slab keys below this were visited (`usize::MAX`: the fan-out is
    /// done).
    visited_below: usize,
    /// Bytes logged up to and including this entry.
    end: u64,
    /// Connections corked at this entry.
    corked: u32,
}

/// The log of fan-outs and where the flush of corked connections is.
#[derive(Debug, Default)]
pub(super) struct CorkLog {
    entries: VecDeque<Logged>,
    /// Connections corked now.
    corked: usize,
    /// The slab key the flush looks at next: it goes round the slab.
    cursor: usize,
    /// The last sequence number given out (0 is never one: "not corked").
    last_seq: u32,
    /// Bytes logged so far.
    total: u64,
}

impl CorkLog {
    /// Logs a fan-out to every connection (`skip`: but its sender) that
    /// starts now; returns its sequence number.
    pub(super) fn start(&mut self, payload: &Bytes, skip: Option<ConnId>) -> u32 {
        self.last_seq = match self.last_seq.wrapping_add(1) {
            0 => 1,
            seq => seq,
        };
        self.total += payload.len() as u64;
        self.entries.push_back(Logged {
            seq: self.last_seq,
            payload: payload.clone(),
            skip,
            visited_below: 0,
            end: self.total,
            corked: 0,
        });
        self.last_seq
    }

    /// The fan-out `seq` has visited every key below `below`.
    pub(super) fn visited(&mut self, seq: u32, below: usize) {
        if let Some(i) = self.index(seq) {
            self.entries[i].visited_below = below;
        }
    }

    /// Counts a connection corked at `seq` (`up`), or one no longer.
    fn count(&mut self, seq: u32, up: bool) {
        if let Some(i) = self.index(seq) {
            let entry = &mut self.entries[i];
            if up {
                entry.corked += 1;
                self.corked += 1;
            } else {
                entry.corked -= 1;
                self.corked -= 1;
            }
        }
    }

    /// Whether corked connections wait for a flush.
    pub(super) fn waiting(&self) -> bool {
        self.corked > 0
    }

    /// The position of `seq` in the log.
    fn index(&self, seq: u32) -> Option<usize> {
        let first = self.entries.front()?.seq;
        let i = seq.wrapping_sub(first) as usize;
        (i < self.entries.len()).then_some(i)
    }

    /// At most the bytes a connection corked at `seq` is owed (its own
    /// messages counted too).
    fn owed_at_most(&self, seq: u32) -> u64 {
        self.index(seq).map_or(0, |i| {
            let from = &self.entries[i];
            self.total - (from.end - from.payload.len() as u64)
        })
    }

    /// Drops the entries from the front that no fan-out under way and no
    /// corked connection needs any more (a connection corked at an entry
    /// is owed the ones after it too).
    fn trim(&mut self) {
        while self
            .entries
            .front()
            .is_some_and(|e| e.visited_below == usize::MAX && e.corked == 0)
        {
            self.entries.pop_front();
        }
    }
}

/// What a visit of a fan-out did to a recipient with nothing queued.
pub(super) enum Corked {
    /// The recipient was corked already: it is owed this one too.
    Owed,
    /// The recipient is corked now.
    Now,
    /// Not corked: deliver it otherwise.
    No,
}

impl<S: Default> Core<S> {
    /// A visit of the logged fan-out `seq` (of `len` bytes) to `id`, with
    /// no write budget left (`cork_new`) or not: a corked recipient owes
    /// it too, unless that would take it past `max_output` (then it is
    /// flushed first, and the caller goes on as if it was never corked);
    /// one with nothing queued is corked if `cork_new`.
    pub(super) fn visit_corked(
        &mut self,
        id: ConnId,
        seq: u32,
        len: usize,
        cork_new: bool,
    ) -> Result<Corked, CloseReason> {
        let Some(conn) = live(&mut self.conns, id) else {
            return Ok(Corked::No);
        };
        let io = &mut conn.io;
        if io.corked_at != 0 {
            let owed = self.fan.cork.owed_at_most(io.corked_at);
            if owed + len as u64 <= self.config.max_output as u64 {
                return Ok(Corked::Owed);
            }
            self.uncork(id)?;
            return Ok(Corked::No);
        }
        if cork_new && io.output.is_none() {
            io.corked_at = seq;
            self.fan.cork.count(seq, true);
            return Ok(Corked::Now);
        }
        Ok(Corked::No)
    }

    /// Writes what the corked connection `id` is owed, if it is corked;
    /// what its socket does not take is queued. Called before anything
    /// else is written or queued to it.
    ///
    /// # Errors
    ///
    /// The close reason when the socket failed, or, under
    /// [`OverflowPolicy::Close`], when the rest is more than `max_output`.
    pub(super) fn uncork(&mut self, id: ConnId) -> Result<(), CloseReason> {
        let Some(conn) = live(&mut self.conns, id) else {
            return Ok(());
        };
        let io = &mut conn.io;
        let from = std::mem::take(&mut io.corked_at);
        if from == 0 {
            return Ok(());
        }
        self.fan.cork.count(from, false);
        let Some(first) = self.fan.cork.index(from) else {
            return Ok(());
        };
        let key = id.key();
        let mut owed = self
            .fan
            .cork
            .entries
            .range(first..)
            .take_while(|e| e.visited_below > key)
            .filter(|e| e.skip != Some(id))
            .map(|e| &e.payload)
            .peekable();
        while owed.peek().is_some() {
            let mut batch: [Option<&Bytes>; MAX_IOV] = [None; MAX_IOV];
            let mut slices = [IoSlice::new(&[]); MAX_IOV];
            let mut count = 0;
            while count < MAX_IOV {
                let Some(payload) = owed.next() else { break };
                batch[count] = Some(payload);
                slices[count] = IoSlice::new(payload);
                count += 1;
            }
            let want: usize = slices[..count].iter().map(|s| s.len()).sum();
            // A short write means the socket is full: the rest is queued,
            // as with any write, and waits for the writable event.
            let written = loop {
                match io.stream.write_vectored(&slices[..count]) {
                    Ok(0) if want > 0 => return Err(CloseReason::Io),
                    Ok(n) => break n,
                    Err(err) if would_block(&err) => break 0,
                    Err(err) if interrupted(&err) => {}
                    Err(err) => return Err(close_reason(&err)),
                }
            };
            self.stats.bytes_out += written as u64;
            if written < want {
                let (i, off) = position(&batch[..count], written);
                let mut out = Box::<Output>::default();
                for (j, payload) in batch[i..count].iter().flatten().enumerate() {
                    let skip = if j == 0 { off } else { 0 };
                    out.push_shared(payload.slice(skip..));
                }
                for payload in owed {
                    out.push_shared(payload.clone());
                }
                return queue_rest(&self.poll, io, id, out, &self.config);
            }
        }
        Ok(())
    }

    /// Flushes corked connections while the turn's write budget lasts,
    /// going round the slab from where the last flush stopped: one
    /// `writev` each (more only past `MAX_IOV` messages); what a socket
    /// does not take is queued and waits for its writable event.
    pub(super) fn flush_corked<H: Handler<Conn = S>>(&mut self, handler: &mut H) {
        let keys = self.conns.capacity();
        let mut looked = 0;
        while self.fan.budget_left > 0 && self.fan.cork.waiting() && looked < keys {
            let key = self.fan.cork.cursor;
            self.fan.cork.cursor = if key + 1 >= keys { 0 } else { key + 1 };
            looked += 1;
            let Some(conn) = self.conns.get(key) else {
                continue;
            };
            if conn.io.corked_at == 0 {
                continue;
            }
            let id = ConnId::new(key, conn.io.generation);
            self.fan.budget_left -= 1;
            if let Err(reason) = self.uncork(id) {
                self.closed_by_push(handler, id, reason);
            }
        }
        self.fan.cork.trim();
    }

    /// Forgets what the corked connection `id` is owed: its socket failed.
    pub(super) fn forget_owed(&mut self, id: ConnId) {
        if let Some(conn) = live(&mut self.conns, id) {
            let from = std::mem::take(&mut conn.io.corked_at);
            if from != 0 {
                self.fan.cork.count(from, false);
            }
        }
    }

    /// A logged fan-out is done.
    pub(super) fn fan_out_logged_done(&mut self, seq: u32) {
        self.fan.cork.visited(seq, usize::MAX);
        self.fan.cork.trim();
    }
}

/// The batch entry and offset in it where byte `written` falls.
fn position(batch: &[Option<&Bytes>], mut written: usize) -> (usize, usize) {
    for (i, payload) in batch.iter().enumerate() {
        let len = payload.map_or(0, |p| p.len());
        if written < len {
            return (i, written);
        }
        written -= len;
    }
    unreachable!("a short write ends inside the batch")
}

/// Queues the rest `out` of what a corked connection was owed, as the
/// rest of a write its socket did not take whole. Past `max_output` under
/// [`OverflowPolicy::Close`] it is queued all the same (nothing owed is
/// lost: it goes before the closing line) and the connection is a slow
/// reader.
fn queue_rest(
    poll: &mio::Poll,
    io: &mut ConnIo,
    id: ConnId,
    mut out: Box<Output>,
    config: &Config,
) -> Result<(), CloseReason> {
    let slow = out.len() > config.max_output && config.overflow == OverflowPolicy::Close;
    out.over_high = out.len() >= config.high_water;
    queue(poll, io, id, out).map_err(|err| close_reason(&err))?;
    if slow {
        Err(CloseReason::SlowReader)
    } else {
        Ok(())
    }
}
