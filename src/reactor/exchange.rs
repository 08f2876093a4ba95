//! Reading, writing and closing: the read budget, the output queue, and the
//! close sequence (last words, FIN, lingering read), all on the loop's
//! thread.
//!
//! # The close sequence
//!
//! A close is *decided* once (its reason counted, the handler's
//! [`on_close`](crate::Handler::on_close) called) and *finished* later:
//!
//! 1. what the connection is owed (queued replies, then the closing line) is
//!    written, as fast as the peer reads it;
//! 2. then the write side is shut down: the peer reads everything, then EOF;
//! 3. meanwhile, and after, input is read and discarded, so that the socket
//!    is never closed with unread bytes (Linux would send a reset instead of
//!    a FIN, and the peer could lose the closing line), until the peer's own
//!    FIN arrives;
//! 4. then the socket is closed.
//!
//! Bounds keep a peer from holding the descriptor or the thread: no write
//! progress for `linger` while output is owed, or after our FIN `linger` in
//! all, `linger / 10` without input, or more than `linger_bytes` discarded
//! in all since the close was decided (before our FIN as well as after: a
//! flood is not read at wire speed while a peer that never reads holds its
//! replies): the socket is then closed as it is ([`Core::abandon`]), with a
//! reset if input is still arriving. A reset or failed socket skips the
//! sequence.
//!
//! # The input rate
//!
//! With [`Config::max_input_rate`](crate::Config::max_input_rate), each read
//! of an open connection draws its bytes from the connection's bucket
//! (refilled lazily from the tick of its last read, see `Timing::draw`); a
//! read that takes more than it holds closes the connection as a flood
//! before the handler sees its bytes.

use std::io::{self, Read, Write};
use std::net::Shutdown;

use mio::net::TcpStream;
use mio::Interest;

use super::conn::{ConnIo, Linger, Liveness, Output};
use super::push::Target;
use super::{interrupted, live, would_block, Core};
use crate::reactor::handler::Handler;
use crate::reactor::stats::CloseReason;
use crate::reactor::token::ConnId;

/// What a connection is registered for while nothing is queued for it.
/// Urgent data is asked for too: a read stops short at the urgent mark, and
/// only its event tells that a short read did not drain the socket.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(super) const READ_INTEREST: Interest = Interest::READABLE.add(Interest::PRIORITY);
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(super) const READ_INTEREST: Interest = Interest::READABLE;
/// What a connection is registered for while output is queued for it.
const WRITE_INTEREST: Interest = READ_INTEREST.add(Interest::WRITABLE);

impl<S: Default> Core<S> {
    /// Reads `id` until the socket is drained or the read budget is spent.
    /// An open connection's bytes go to the handler; a closing one's are
    /// discarded.
    pub(super) fn read<H: Handler<Conn = S>>(&mut self, handler: &mut H, id: ConnId) {
        let mut budget = self.config.read_budget.max(1);
        loop {
            let Some(conn) = live(&mut self.conns, id) else {
                return;
            };
            if matches!(
                conn.io.liveness,
                Liveness::Closing(Linger {
                    input_closed: true,
                    ..
                })
            ) {
                return;
            }
            let n = match conn.io.stream.read(&mut self.read_buf) {
                Ok(0) => return self.end_of_input(handler, id),
                Ok(n) => n,
                Err(err) if would_block(&err) => {
                    conn.io.read_to_block = false;
                    return;
                }
                Err(err) if interrupted(&err) => continue,
                // A closing connection has nothing left to say: it is done.
                Err(_) if matches!(conn.io.liveness, Liveness::Closing(_)) => {
                    return self.abandon(id)
                }
                Err(err) => return self.close(handler, id, close_reason(&err)),
            };
            self.stats.bytes_in += n as u64;
            let read_to_block = conn.io.read_to_block;
            let full_read = n == self.read_buf.len();
            let open = match &mut conn.io.liveness {
                Liveness::Serving(timing) => {
                    // One predictable branch when there is no limit.
                    if self.limits.input_rate != 0 && !timing.draw(self.now, n, &self.limits) {
                        return self.close(handler, id, CloseReason::Flood);
                    }
                    if timing.probed {
                        self.loop_stats.probes_answered += 1;
                    }
                    timing.activity(self.now);
                    true
                }
                Liveness::Closing(linger) => {
                    let quiet = self.limits.linger_quiet;
                    if !linger.discard(self.now, n, quiet, self.config.linger_bytes) {
                        return self.abandon(id);
                    }
                    false
                }
            };
            if open {
                let data = std::mem::take(&mut self.read_buf);
                self.callback(handler, id, |h, cx, state| {
                    h.on_data(cx, state, &data[..n]);
                });
                self.read_buf = data;
            }
            // A short read drained the socket (epoll(7)); new bytes bring a
            // new edge. Only news already reported (a FIN, an error, an
            // urgent mark) needs reading on.
            if !full_read && !read_to_block {
                return;
            }
            budget = budget.saturating_sub(n);
            if budget == 0 {
                return self.defer(id);
            }
        }
    }

    /// The peer's FIN: an open connection is closed (after the replies it is
    /// still owed); a closing one may now finish.
    fn end_of_input<H: Handler<Conn = S>>(&mut self, handler: &mut H, id: ConnId) {
        let Some(conn) = live(&mut self.conns, id) else {
            return;
        };
        conn.io.read_to_block = false;
        match &mut conn.io.liveness {
            Liveness::Serving(_) => self.close(handler, id, CloseReason::PeerClosed),
            Liveness::Closing(linger) => {
                linger.input_closed = true;
                self.advance_close(id);
            }
        }
    }

    /// Sends what the last callback wrote: straight to the socket unless
    /// output is already queued; the rest is queued up to `max_output`.
    pub(super) fn flush(&mut self, id: ConnId) -> Result<(), CloseReason> {
        if self.write_buf.is_empty() {
            return Ok(());
        }
        let bytes = std::mem::take(&mut self.write_buf);
        let result = self.send_owned(id, &bytes);
        self.write_buf = bytes;
        self.write_buf.clear();
        result
    }

    /// Sends `bytes` (replies) to the open connection `id`: straight to
    /// the socket unless output is already queued; the rest is queued up
    /// to `max_output`.
    pub(super) fn send_owned(&mut self, id: ConnId, bytes: &[u8]) -> Result<(), CloseReason> {
        if bytes.is_empty() {
            return Ok(());
        }
        let max_output = self.config.max_output;
        let high = self.config.high_water;
        let Some(mut conn) = live(&mut self.conns, id) else {
            return Ok(());
        };
        if conn.io.corked_at != 0 {
            // What it is owed goes before the reply.
            self.uncork(id)?;
            conn = &mut self.conns[id.key()];
        }
        let io = &mut conn.io;
        match io.output.as_deref_mut() {
            Some(out) if out.len() + bytes.len() > max_output => Err(CloseReason::SlowReader),
            Some(out) => {
                out.push_owned(bytes);
                out.over_high |= out.len() >= high;
                Ok(())
            }
            None => match write_some(&mut io.stream, bytes) {
                Ok(n) => {
                    self.stats.bytes_out += n as u64;
                    let rest = &bytes[n..];
                    if rest.is_empty() {
                        Ok(())
                    } else if rest.len() > max_output {
                        Err(CloseReason::SlowReader)
                    } else {
                        let mut out = Box::<Output>::default();
                        out.push_owned(rest);
                        out.over_high = out.len() >= high;
                        queue(&self.poll, io, id, out).map_err(|err| close_reason(&err))
                    }
                }
                Err(err) => Err(close_reason(&err)),
            },
        }
    }

    /// Writes queued output (one `writev` per [`MAX_IOV`] segments); drops
    /// the queue and the writable interest once it is empty, and calls
    /// [`Handler::on_drain`] when a connection past the high-water mark
    /// drained to the low one. A closing connection moves on with its
    /// close.
    ///
    /// [`MAX_IOV`]: super::outbound::MAX_IOV
    pub(super) fn flush_output<H: Handler<Conn = S>>(
        &mut self,
        handler: &mut H,
        id: ConnId,
    ) -> Result<(), CloseReason> {
        let Some(conn) = live(&mut self.conns, id) else {
            return Ok(());
        };
        if matches!(conn.io.liveness, Liveness::Closing(_)) {
            self.advance_close(id);
            return Ok(());
        }
        let io = &mut conn.io;
        let Some(out) = io.output.as_deref_mut() else {
            return Ok(());
        };
        let n = out
            .write_to(&mut io.stream)
            .map_err(|err| close_reason(&err))?;
        self.stats.bytes_out += n as u64;
        let mut drained = None;
        if out.over_high && out.len() <= self.config.low_water {
            out.over_high = false;
            drained = Some(std::mem::take(&mut out.missed));
        }
        if out.is_empty() {
            unqueue(&self.poll, io, id).map_err(|err| close_reason(&err))?;
        }
        if let Some(missed) = drained {
            self.callback(handler, id, |h, cx, state| h.on_drain(cx, state, missed));
        }
        Ok(())
    }

    /// Decides the close of the open connection `id` for `reason`: counts
    /// it, lets the handler write its last words, and starts the close
    /// sequence. A reset or failed socket is closed at once. Closing or
    /// stale ids are ignored.
    pub(super) fn close<H: Handler<Conn = S>>(
        &mut self,
        handler: &mut H,
        id: ConnId,
        reason: CloseReason,
    ) {
        let Some(conn) = live(&mut self.conns, id) else {
            return;
        };
        if !matches!(conn.io.liveness, Liveness::Serving(_)) {
            return;
        }
        // Bytes a failed flush could not take are dropped; the last words
        // follow what was queued.
        self.write_buf.clear();
        self.run_callback(handler, id, false, |h, cx, state| {
            h.on_close(cx, state, reason)
        });
        // A reset or failed socket takes nothing more: it is closed at once.
        let broken = matches!(reason, CloseReason::Reset | CloseReason::Io);
        if broken {
            self.write_buf.clear();
            self.forget_owed(id);
            // Nor a place for a later reply (`hold_reply` in `on_close`).
            self.pushes.retain(|p| !matches!(p.to, Target::Hold));
            if let Some(conn) = live(&mut self.conns, id) {
                conn.io.output = None;
            }
        }
        // What on_close asked to push goes behind the fan-outs under way.
        self.enqueue_recorded(id);
        self.stats.open -= 1;
        self.stats.count_close(reason);
        self.counters_changed();
        log::trace!("connection {id} closing: {reason}");
        self.begin_close(id, broken || reason == CloseReason::PeerClosed);
    }

    /// Starts the close sequence of `id` (already counted) with the bytes in
    /// the write buffer as its last words.
    pub(super) fn begin_close(&mut self, id: ConnId, input_closed: bool) {
        // What it is owed goes before its last words (a failed socket is
        // found out by the close sequence; past max_output it is queued).
        let _ = self.uncork(id);
        let Some(conn) = live(&mut self.conns, id) else {
            return;
        };
        let flush = self.limits.linger;
        conn.io.liveness = Liveness::Closing(Linger::begin(self.now, flush, input_closed));
        self.stats.closing += 1;
        let io = &mut conn.io;
        // Straight to the socket unless output is queued already; only what
        // it does not take is queued (past max_output: the last words are
        // owed).
        let queued = match io.output.as_deref_mut() {
            Some(out) => {
                out.push_owned(&self.write_buf);
                Ok(())
            }
            None => match write_some(&mut io.stream, &self.write_buf) {
                Ok(n) => {
                    self.stats.bytes_out += n as u64;
                    match &self.write_buf[n..] {
                        [] => Ok(()),
                        rest => {
                            let mut out = Box::<Output>::default();
                            out.push_owned(rest);
                            queue(&self.poll, io, id, out)
                        }
                    }
                }
                Err(err) => Err(err),
            },
        };
        self.write_buf.clear();
        if queued.is_err() {
            return self.abandon(id);
        }
        self.advance_close(id);
    }

    /// Moves a close along as far as it can go now: writes what is owed;
    /// once all is written, shuts the write side; once that is done and the
    /// peer's FIN read, closes the socket. Otherwise arms the close's bound
    /// and waits for readiness.
    pub(super) fn advance_close(&mut self, id: ConnId) {
        let Some(conn) = live(&mut self.conns, id) else {
            return;
        };
        let now = self.now;
        let limits = self.limits;
        let io = &mut conn.io;
        let Liveness::Closing(linger) = &mut io.liveness else {
            return;
        };
        if let Some(out) = io.output.as_deref_mut() {
            let Ok(n) = out.write_to(&mut io.stream) else {
                return self.abandon(id);
            };
            self.stats.bytes_out += n as u64;
            if n > 0 {
                linger.wrote(now, limits.linger);
            }
            if !out.is_empty() {
                return self.arm(id);
            }
            if unqueue(&self.poll, io, id).is_err() {
                return self.abandon(id);
            }
        }
        let Liveness::Closing(linger) = &mut io.liveness else {
            return;
        };
        if linger.input_closed {
            // Nothing left to read: closing the socket sends the FIN.
            return self.abandon(id);
        }
        if !linger.write_shut {
            if io.stream.shutdown(Shutdown::Write).is_err() {
                return self.abandon(id);
            }
            linger.shut(now, limits.linger, limits.linger_quiet);
        }
        self.arm(id);
    }

    /// Closes the socket of the closing connection `id` as it is: its
    /// close is finished, or it ran out of bounds.
    pub(super) fn abandon(&mut self, id: ConnId) {
        let Some(conn) = live(&mut self.conns, id) else {
            return;
        };
        if matches!(conn.io.liveness, Liveness::Serving(_)) {
            debug_assert!(false, "abandon() of open connection {id}");
            return;
        }
        let conn = self.conns.remove(id.key());
        if let Some(key) = conn.io.timer {
            self.wheel.cancel(key);
        }
        drop(conn); // closes the socket; epoll forgets it with the descriptor
        self.stats.closing -= 1;
        log::trace!("connection {id} closed");
        // A descriptor is free again: try the backlog now.
        self.acceptor.resume();
    }
}

/// Makes `out` the output queue of `io` (which had none) and asks for
/// writability.
pub(super) fn queue(
    poll: &mio::Poll,
    io: &mut ConnIo,
    id: ConnId,
    out: Box<Output>,
) -> io::Result<()> {
    io.output = Some(out);
    poll.registry()
        .reregister(&mut io.stream, id.token(), WRITE_INTEREST)
}

/// Drops the emptied queue of `io` and the writable interest with it.
fn unqueue(poll: &mio::Poll, io: &mut ConnIo, id: ConnId) -> io::Result<()> {
    io.output = None;
    poll.registry()
        .reregister(&mut io.stream, id.token(), READ_INTEREST)
}

/// Writes as much of `bytes` as the socket takes without blocking.
pub(super) fn write_some(stream: &mut TcpStream, bytes: &[u8]) -> io::Result<usize> {
    let mut written = 0;
    while written < bytes.len() {
        match stream.write(&bytes[written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(err) if would_block(&err) => break,
            Err(err) if interrupted(&err) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(written)
}

/// A socket error's close reason: the peer reset the connection, or
/// something else failed.
pub(super) fn close_reason(err: &io::Error) -> CloseReason {
    match err.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => CloseReason::Reset,
        _ => CloseReason::Io,
    }
}
