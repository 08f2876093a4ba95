//! Carrying pushes out: fan-outs under a budget per loop turn (handing
//! the payload to each recipient is `handover.rs`'s).
//!
//! # The budget
//!
//! Fan-outs wait in one FIFO of jobs. Each loop turn hands out at most
//! `Config::fan_out_budget` deliveries, all jobs together, and then goes on
//! with reads, timers and accepts (the poll does not sleep while jobs are
//! left). Since jobs run in order, every recipient sees the pushes in the
//! order they were asked for; a send to one connection waits behind the
//! fan-outs already started. A fan-out to [`Recipients::All`] reaches the
//! connections open when it started, not those accepted while it runs.

use std::collections::VecDeque;

use bytes::Bytes;

use super::conn::{Liveness, Output};
use super::cork::{CorkLog, Corked, VISITS_PER_WRITE};
use super::exchange::queue;
use super::handover::Handover;
use super::outbound::HoldKind;
use super::push::{FanOutReport, Target};
use super::{live, Core};
use crate::reactor::handler::Handler;
use crate::reactor::push::{Gone, Recipients};
use crate::reactor::token::ConnId;

/// A fan-out (or a send queued behind one) in progress.
#[derive(Debug)]
pub(super) struct Job {
    payload: Bytes,
    to: Target,
    /// The next slab key (all) or list index to look at.
    cursor: usize,
    /// Connections of this generation or later were accepted after the job
    /// began: not recipients.
    newer_from: u32,
    /// Who gets `on_fan_out_done`, with the place held in its output.
    reply_to: Option<ConnId>,
    report: FanOutReport,
    /// Its sequence number in the cork log, once started (a fan-out to
    /// every connection; 0: none).
    seq: u32,
}

impl Job {
    /// How it went so far.
    pub(super) fn report(&self) -> FanOutReport {
        self.report
    }
}

/// The reactor's fan-out state.
#[derive(Debug, Default)]
pub(super) struct FanOuts {
    pub(super) jobs: VecDeque<Job>,
    /// Writes this loop turn may still make: deliveries straight to a
    /// socket and flushes of corked queues.
    pub(super) budget_left: usize,
    /// Recipients this loop turn's fan-outs may still visit (a visit past
    /// the write budget queues the payload: no system call).
    pub(super) visits_left: usize,
    /// The fan-outs corked recipients may owe, and the corked recipients,
    /// each flushed with one `writev` in a later turn.
    pub(super) cork: CorkLog,
    /// `run_fan_outs` is on the stack (a callback it made asked for more).
    pub(super) running: bool,
    /// Scratch buffers of `carry_out`, kept for their capacity.
    pub(super) spare: Vec<u8>,
    pub(super) assembled: Vec<u8>,
}

impl<S: Default> Core<S> {
    /// Queues `payload` to `to` now (or writes it at once); behind the
    /// fan-outs in progress, if any.
    ///
    /// # Errors
    ///
    /// [`Gone`] if `to` is closed, closing or stale.
    #[allow(dead_code)] // called by the cross-thread handle
    pub(crate) fn deliver<H: Handler<Conn = S>>(
        &mut self,
        handler: &mut H,
        to: ConnId,
        payload: Bytes,
    ) -> Result<(), Gone> {
        self.stats.pushes += 1;
        if !self.fan.jobs.is_empty() {
            if !self.is_open(to) {
                self.stats.push_gone += 1;
                return Err(Gone);
            }
            self.enqueue(payload, Target::One(to), None);
            return Ok(());
        }
        match self.hand_over(handler, to, &payload) {
            Handover::Gone => {
                self.stats.push_gone += 1;
                Err(Gone)
            }
            _ => Ok(()),
        }
    }

    /// Starts a fan-out of one shared buffer; returns at once (it may be
    /// carried out over several loop turns under the budget).
    #[allow(dead_code)] // called by the cross-thread handle
    pub(crate) fn fan_out<H: Handler<Conn = S>>(
        &mut self,
        handler: &mut H,
        payload: Bytes,
        to: Recipients,
    ) {
        self.stats.pushes += 1;
        self.enqueue(payload, Target::Many(to), None);
        self.run_fan_outs(handler);
    }

    pub(super) fn is_open(&self, id: ConnId) -> bool {
        super::live_ref(&self.conns, id)
            .is_some_and(|c| matches!(c.io.liveness, Liveness::Serving(_)))
    }

    /// Appends a job to the FIFO.
    pub(super) fn enqueue(&mut self, payload: Bytes, to: Target, reply_to: Option<ConnId>) {
        self.fan.jobs.push_back(Job {
            payload,
            to,
            cursor: 0,
            newer_from: self.next_generation,
            reply_to,
            report: FanOutReport::default(),
            seq: 0,
        });
    }

    /// A new loop turn: a new budget.
    pub(super) fn refill_fan_out_budget(&mut self) {
        let budget = self.config.fan_out_budget.max(1);
        self.fan.budget_left = budget;
        self.fan.visits_left = budget.saturating_mul(VISITS_PER_WRITE);
    }

    /// Runs queued jobs until they are done or this turn's budget is spent.
    pub(super) fn run_fan_outs<H: Handler<Conn = S>>(&mut self, handler: &mut H) {
        if self.fan.running {
            return;
        }
        self.fan.running = true;
        // Corked queues hold older pushes than any job: flushed first.
        self.flush_corked(handler);
        while self.fan.visits_left > 0 {
            let Some(mut job) = self.fan.jobs.pop_front() else {
                break;
            };
            if self.run_job(handler, &mut job) {
                self.complete(handler, job);
            } else {
                // Out of visits, or of writes for a send or a list: the
                // rest is the next turn's.
                self.fan.jobs.push_front(job);
                break;
            }
        }
        self.fan.running = false;
    }

    /// Hands `job`'s payload to more recipients, while this turn's visits
    /// last. A fan-out to every connection writes straight to the socket
    /// while the write budget lasts and corks recipients after
    /// (`src/reactor/cork.rs`); a send or a fan-out to a list writes while
    /// the budget lasts. Returns whether the job is done.
    pub(super) fn run_job<H: Handler<Conn = S>>(&mut self, handler: &mut H, job: &mut Job) -> bool {
        let logged = match &job.to {
            Target::Many(Recipients::All) => Some(None),
            Target::Many(Recipients::AllBut(but)) => Some(Some(*but)),
            _ => None,
        };
        if let (Some(skip), 0) = (logged, job.seq) {
            job.seq = self.fan.cork.start(&job.payload, skip);
        }
        while self.fan.visits_left > 0 && (logged.is_some() || self.fan.budget_left > 0) {
            let Some(id) = self.next_recipient(job) else {
                if job.seq != 0 {
                    self.fan_out_logged_done(job.seq);
                }
                return true;
            };
            self.fan.visits_left -= 1;
            let outcome = if job.seq == 0 {
                self.hand_over(handler, id, &job.payload)
            } else {
                let seq = job.seq;
                let len = job.payload.len();
                let outcome = match self.visit_corked(id, seq, len, self.fan.budget_left == 0) {
                    Ok(Corked::Owed | Corked::Now) => {
                        self.stats.deliveries += 1;
                        self.stats.push_bytes += len as u64;
                        Handover::Delivered
                    }
                    Ok(Corked::No) => self.hand_over(handler, id, &job.payload),
                    Err(reason) => self.closed_by_push(handler, id, reason),
                };
                self.fan.cork.visited(seq, job.cursor);
                outcome
            };
            let report = &mut job.report;
            match outcome {
                Handover::Delivered => report.delivered += 1,
                Handover::Dropped => report.dropped += 1,
                Handover::Closed => report.closed += 1,
                Handover::Gone => {
                    if matches!(job.to, Target::One(_)) {
                        self.stats.push_gone += 1;
                    }
                }
            }
        }
        let done = self.peek_done(job);
        if done && job.seq != 0 {
            self.fan_out_logged_done(job.seq);
        }
        done
    }

    /// The job's next recipient, advancing its cursor.
    fn next_recipient(&self, job: &mut Job) -> Option<ConnId> {
        match &job.to {
            Target::One(id) => (job.cursor == 0).then(|| {
                job.cursor = 1;
                *id
            }),
            Target::Many(Recipients::List(ids)) => {
                let id = ids.get(job.cursor).copied();
                job.cursor += 1;
                id
            }
            Target::Many(Recipients::All) => self.next_open(job, None),
            Target::Many(Recipients::AllBut(but)) => self.next_open(job, Some(*but)),
            Target::Hold => None,
        }
    }

    /// The next connection from the job's cursor on that was open when the
    /// job began.
    fn next_open(&self, job: &mut Job, but: Option<ConnId>) -> Option<ConnId> {
        let end = self.conns.capacity();
        while job.cursor < end {
            let key = job.cursor;
            job.cursor += 1;
            let Some(conn) = self.conns.get(key) else {
                continue;
            };
            let generation = conn.io.generation;
            // Accepted before the job began (generations wrap).
            let older = (job.newer_from.wrapping_sub(generation) as i32) > 0;
            let id = ConnId::new(key, generation);
            if older && Some(id) != but && matches!(conn.io.liveness, Liveness::Serving(_)) {
                return Some(id);
            }
        }
        None
    }

    /// No recipient is left (without moving the cursor past one).
    fn peek_done(&self, job: &Job) -> bool {
        match &job.to {
            Target::One(_) => job.cursor > 0,
            Target::Many(Recipients::List(ids)) => job.cursor >= ids.len(),
            Target::Many(_) => job.cursor >= self.conns.capacity(),
            Target::Hold => true,
        }
    }

    /// A job is done: the caller of a fan-out with reply gets
    /// `on_fan_out_done`, whose bytes take the place held for them.
    fn complete<H: Handler<Conn = S>>(&mut self, handler: &mut H, job: Job) {
        let Some(origin) = job.reply_to else {
            return;
        };
        let report = job.report;
        let Some(requests) = self.run_callback(handler, origin, true, |h, cx, state| {
            h.on_fan_out_done(cx, state, report)
        }) else {
            return;
        };
        let bytes = std::mem::take(&mut self.write_buf);
        if let Some(conn) = live(&mut self.conns, origin) {
            if let Some(out) = conn.io.output.as_deref_mut() {
                out.fill_hold(HoldKind::FanOut, &bytes);
            }
        }
        self.write_buf = bytes;
        self.write_buf.clear();
        self.enqueue_recorded(origin);
        if requests.retimed {
            self.arm(origin);
        }
        let result = match self.conns_liveness_closing(origin) {
            Some(true) => {
                self.advance_close(origin);
                Ok(())
            }
            Some(false) => self.flush_output(handler, origin),
            None => Ok(()),
        };
        if let Some(reason) = result.err().or(requests.close) {
            self.close(handler, origin, reason);
        }
    }

    /// Whether `id` is closing (`Some(true)`), open, or gone (`None`).
    fn conns_liveness_closing(&mut self, id: ConnId) -> Option<bool> {
        live(&mut self.conns, id).map(|c| matches!(c.io.liveness, Liveness::Closing(_)))
    }

    /// Turns the pushes a callback on `id` recorded into jobs, in order (a
    /// fan-out with reply, or a [`hold_reply`](crate::Context::hold_reply),
    /// holds its place at the end of `id`'s output). Used where they cannot
    /// be carried out at once: callbacks made while a delivery or a fan-out
    /// is under way.
    pub(super) fn enqueue_recorded(&mut self, id: ConnId) {
        if self.pushes.is_empty() {
            return;
        }
        let pushes = std::mem::take(&mut self.pushes);
        for push in pushes {
            if matches!(push.to, Target::Hold) {
                self.hold_place(id, HoldKind::Reply);
                continue;
            }
            self.stats.pushes += 1;
            let reply_to = (push.reply && self.hold_place(id, HoldKind::FanOut)).then_some(id);
            self.enqueue(push.payload, push.to, reply_to);
        }
    }

    /// Puts a hold of `kind` at the end of `id`'s output (creating the
    /// queue). Returns false if `id` is gone.
    pub(super) fn hold_place(&mut self, id: ConnId, kind: HoldKind) -> bool {
        // Past max_output its next write closes it: the owed are queued.
        let _ = self.uncork(id);
        let Some(conn) = live(&mut self.conns, id) else {
            return false;
        };
        let io = &mut conn.io;
        match io.output.as_deref_mut() {
            Some(out) => out.push_hold(kind),
            None => {
                let mut out = Box::<Output>::default();
                out.push_hold(kind);
                if queue(&self.poll, io, id, out).is_err() {
                    return false;
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::reactor::config::Config;

    struct Quiet;
    impl Handler for Quiet {
        type Conn = ();
    }

    /// `deliver` and `fan_out`, the entry points of the cross-thread
    /// handle, outside any callback: delivered at once, `Gone` for a stale
    /// id, nothing to the wrong connection.
    #[test]
    fn deliver_and_fan_out_outside_a_callback() {
        let listener = mio::net::TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut core: Core<()> = Core::new(listener, Config::default()).unwrap();
        let mut handler = Quiet;
        let mut clients = [
            TcpStream::connect(addr).unwrap(),
            TcpStream::connect(addr).unwrap(),
        ];
        let deadline = Instant::now() + Duration::from_secs(5);
        while core.stats.open < 2 {
            core.acceptor.on_ready();
            core.accept(&mut handler);
            assert!(Instant::now() < deadline, "not accepted");
        }
        core.refill_fan_out_budget();
        let ids: Vec<ConnId> = core
            .conns
            .iter()
            .map(|(key, conn)| ConnId::new(key, conn.io.generation))
            .collect();
        let stale = ConnId::new(ids[0].key(), ids[0].generation().wrapping_add(7));
        let one = Bytes::from_static(b"one\n");
        assert_eq!(core.deliver(&mut handler, stale, one.clone()), Err(Gone));
        assert_eq!(core.deliver(&mut handler, ids[0], one), Ok(()));
        core.fan_out(&mut handler, Bytes::from_static(b"all\n"), Recipients::All);
        assert!(core.fan.jobs.is_empty());
        assert_eq!(
            (
                core.stats.pushes,
                core.stats.deliveries,
                core.stats.push_gone
            ),
            (3, 3, 1)
        );
        let read = |c: &mut TcpStream, n: usize| {
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = vec![0; n];
            c.read_exact(&mut buf).unwrap();
            buf
        };
        // Slab keys follow accept order: clients[i] is ids[i].
        assert_eq!(read(&mut clients[0], 8), b"one\nall\n");
        assert_eq!(read(&mut clients[1], 4), b"all\n");
    }
}
