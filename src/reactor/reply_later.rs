//! Replies that come later, in their place: [`Context::hold_reply`] holds a
//! place in the connection's output, [`LoopContext::fill_reply`] fills it
//! from the loop (a closure sent through a
//! [`ReactorHandle`](crate::ReactorHandle), a loop timer) once the answer is
//! known, e.g. when a bus or a database has answered.
//!
//! # Order
//!
//! The hold takes the place where it was asked for among the callback's
//! writes (as a push does): bytes written before it go out at once, bytes
//! written after it, by this callback or later ones, wait behind it. Holds
//! of one connection are filled in the order they were made: each
//! `fill_reply` fills the oldest one left.
//!
//! The output queue's holds come in two kinds, each a FIFO of its own:
//! those of [`Context::fan_out_with_reply`] (filled by the fan-out's
//! completion, `on_fan_out_done`) and those of `hold_reply` (filled by
//! `fill_reply`). A `fill_reply` never fills a fan-out's hold, nor the
//! reverse; both block what is behind them, so a connection's replies keep
//! their request order whichever kind answers first.
//!
//! # Closing
//!
//! A connection that begins closing with a hold unfilled (the peer quit, an
//! idle timeout) keeps it: `fill_reply` still fills it, before the closing
//! line, as `on_fan_out_done` is still called on a closing connection. The
//! close sequence's bound applies meanwhile: without write progress for
//! [`Config::linger`](crate::Config::linger) the socket is closed as it is,
//! the hold and what waits behind it dropped. A reset or failed socket drops
//! its holds at once. A hold never keeps a connection open: the idle
//! timeout and the lifetime run as usual.
//!
//! # Cost
//!
//! Nothing for a connection that holds nothing: a hold is one segment of
//! the output queue, which exists only while something is queued.

use super::conn::Liveness;
use super::loop_context::Push;
use super::outbound::HoldKind;
use super::push::{Bytes, Gone, Target};
use super::{live, Core};
use crate::reactor::handler::{Context, Handler};
use crate::reactor::loop_context::LoopContext;
use crate::reactor::stats::CloseReason;
use crate::reactor::token::ConnId;

impl Context<'_> {
    /// Holds a place in this connection's output for a reply that comes
    /// later, through [`LoopContext::fill_reply`]: after what this callback
    /// wrote before, before what it writes after. Nothing behind the place
    /// is written until it is filled (see the module's rules in
    /// [`LoopContext::fill_reply`]).
    ///
    /// Meant for `on_data` and the other callbacks on an open connection; in
    /// [`Handler::on_close`](crate::Handler::on_close) and
    /// [`Handler::on_fan_out_done`](crate::Handler::on_fan_out_done) the
    /// place is at the end of the connection's output when the callback
    /// returns (before the closing line, in `on_close`).
    ///
    /// # Examples
    ///
    /// `ASK` is answered on the next loop timer, in its place: the `PONG` of
    /// a `PING` sent after it waits for the answer.
    ///
    /// ```
    /// use std::collections::VecDeque;
    /// use std::io::{BufRead, BufReader, Write};
    /// use std::net::TcpStream;
    /// use std::thread;
    /// use std::time::Duration;
    /// use vigil::{Config, ConnId, Context, Handler, LoopContext, Reactor};
    ///
    /// #[derive(Default)]
    /// struct Later {
    ///     asked: VecDeque<ConnId>,
    /// }
    ///
    /// impl Handler for Later {
    ///     type Conn = ();
    ///     fn on_data(&mut self, cx: &mut Context<'_>, _: &mut (), data: &[u8]) {
    ///         for line in data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
    ///             if line == b"ASK" {
    ///                 cx.hold_reply();
    ///                 self.asked.push_back(cx.id());
    ///             } else {
    ///                 cx.write(b"PONG\n");
    ///             }
    ///         }
    ///     }
    ///     fn on_loop_timer(&mut self, lcx: &mut LoopContext<'_>, _: u64) {
    ///         while let Some(id) = self.asked.pop_front() {
    ///             let _ = lcx.fill_reply(id, b"ANSWER\n"); // Gone: it left
    ///         }
    ///     }
    /// }
    ///
    /// let mut reactor = Reactor::bind("127.0.0.1:0".parse()?, Config::default(), Later::default())?;
    /// let addr = reactor.local_addr()?;
    /// let handle = reactor.handle();
    /// handle.execute(|_, lcx| {
    ///     lcx.set_periodic(Duration::from_millis(50), 0);
    /// })?;
    /// let server = thread::spawn(move || reactor.run());
    ///
    /// let mut client = TcpStream::connect(addr)?;
    /// client.write_all(b"ASK\nPING\n")?;
    /// let mut lines = BufReader::new(client).lines();
    /// assert_eq!(lines.next().unwrap()?, "ANSWER");
    /// assert_eq!(lines.next().unwrap()?, "PONG");
    ///
    /// handle.shutdown();
    /// server.join().unwrap()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn hold_reply(&mut self) {
        self.record(Bytes::new(), Target::Hold, false);
    }
}

impl LoopContext<'_> {
    /// Fills the oldest place [`Context::hold_reply`] held in connection
    /// `id`'s output with `bytes` (empty: just releases it), when this
    /// closure or callback returns; what waited behind it is written then.
    ///
    /// Holds of one connection are filled in the order they were made.
    /// They share the output queue, not the order, with the holds of
    /// [`Context::fan_out_with_reply`]: this fills only a `hold_reply`'s,
    /// a fan-out's completion only its own. A closing connection's holds
    /// can still be filled (before its closing line).
    ///
    /// # Errors
    ///
    /// [`Gone`], checked now: `id` is closed or stale, or has no unfilled
    /// hold left (counting the fills this closure already asked for), e.g.
    /// its socket was reset, or its close ran out of
    /// [`Config::linger`](crate::Config::linger). Nothing is written.
    ///
    /// # Examples
    ///
    /// An answer from another thread, for the connection that asked:
    ///
    /// ```no_run
    /// # use vigil::{ConnId, Handler, ReactorHandle};
    /// fn answer<H: Handler + 'static>(handle: &ReactorHandle<H>, id: ConnId, ok: bool) {
    ///     let _ = handle.execute(move |_, lcx| {
    ///         let line: &[u8] = if ok { b"OK\n" } else { b"ERR\n" };
    ///         let _ = lcx.fill_reply(id, line);
    ///     });
    /// }
    /// ```
    pub fn fill_reply(&mut self, id: ConnId, bytes: &[u8]) -> Result<(), Gone> {
        let asked = self
            .pushes
            .iter()
            .filter(|p| matches!(p, Push::Fill(to, _) if *to == id))
            .count();
        if self.conns.reply_holds(id) <= asked {
            return Err(Gone);
        }
        self.pushes.push(Push::Fill(id, bytes.to_vec()));
        Ok(())
    }
}

impl<S: Default> Core<S> {
    /// Fills `id`'s oldest reply hold with `bytes` and writes what it
    /// released (an open connection past `max_output` is closed as a slow
    /// reader); a closing one moves on with its close.
    pub(super) fn fill_reply<H: Handler<Conn = S>>(
        &mut self,
        handler: &mut H,
        id: ConnId,
        bytes: &[u8],
    ) {
        let max_output = self.config.max_output;
        let Some(conn) = live(&mut self.conns, id) else {
            return;
        };
        let serving = matches!(conn.io.liveness, Liveness::Serving(_));
        let Some(out) = conn.io.output.as_deref_mut() else {
            return;
        };
        if !out.fill_hold(HoldKind::Reply, bytes) {
            return;
        }
        let result = if serving && out.len() > max_output {
            Err(CloseReason::SlowReader)
        } else {
            self.flush_output(handler, id)
        };
        if let Err(reason) = result {
            self.close(handler, id, reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::reactor::app_timers::LoopTimers;
    use crate::Config;

    struct Quiet;
    impl Handler for Quiet {
        type Conn = ();
    }

    fn accept_two() -> (Core<()>, [TcpStream; 2], Vec<ConnId>) {
        let listener = mio::net::TcpListener::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut core: Core<()> = Core::new(listener, Config::default()).unwrap();
        let clients = [
            TcpStream::connect(addr).unwrap(),
            TcpStream::connect(addr).unwrap(),
        ];
        let deadline = Instant::now() + Duration::from_secs(5);
        while core.stats.open < 2 {
            core.acceptor.on_ready();
            core.accept(&mut Quiet);
            assert!(Instant::now() < deadline, "not accepted");
        }
        core.refill_fan_out_budget();
        let ids = core
            .conns
            .iter()
            .map(|(key, conn)| ConnId::new(key, conn.io.generation))
            .collect();
        (core, clients, ids)
    }

    /// A callback's writes around two holds, as `carry_out` records them.
    fn callback_with_holds(core: &mut Core<()>, id: ConnId) {
        core.callback(&mut Quiet, id, |_, cx, _| {
            cx.write(b"A\n");
            cx.hold_reply();
            cx.write(b"C\n");
            cx.hold_reply();
            cx.write(b"E\n");
        });
        assert!(core.pushes.is_empty());
    }

    fn fill(core: &mut Core<()>, id: ConnId, bytes: &[u8]) -> Result<(), Gone> {
        let mut pushes = Vec::new();
        let mut timers = LoopTimers::default();
        let result = {
            let mut lcx = LoopContext::new(
                &mut pushes,
                &mut timers,
                &core.conns,
                &core.stats,
                &core.clock,
                core.now,
            );
            lcx.fill_reply(id, bytes)
        };
        for push in pushes {
            if let Push::Fill(to, bytes) = push {
                core.fill_reply(&mut Quiet, to, &bytes);
            }
        }
        result
    }

    fn read_now(c: &mut TcpStream) -> Vec<u8> {
        c.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut buf = vec![0; 64];
        match c.read(&mut buf) {
            Ok(n) => buf.truncate(n),
            Err(_) => buf.clear(),
        }
        buf
    }

    #[test]
    fn holds_keep_their_place_and_are_filled_oldest_first() {
        let (mut core, mut clients, ids) = accept_two();
        callback_with_holds(&mut core, ids[0]);
        assert_eq!(
            read_now(&mut clients[0]),
            b"A\n",
            "only what is before the hold"
        );
        assert_eq!(fill(&mut core, ids[1], b"x\n"), Err(Gone), "no hold there");
        assert_eq!(fill(&mut core, ids[0], b"B\n"), Ok(()));
        assert_eq!(read_now(&mut clients[0]), b"B\nC\n");
        assert_eq!(fill(&mut core, ids[0], b"D\n"), Ok(()));
        assert_eq!(read_now(&mut clients[0]), b"D\nE\n");
        assert_eq!(fill(&mut core, ids[0], b"F\n"), Err(Gone), "none left");
        assert!(core.conns[ids[0].key()].io.output.is_none(), "queue freed");
        assert_eq!(core.stats.pushes, 0, "a hold is not a push");
    }

    #[test]
    fn a_closing_connection_still_takes_its_fill_then_its_closing_line() {
        let (mut core, mut clients, ids) = accept_two();
        callback_with_holds(&mut core, ids[0]);
        core.close(&mut Quiet, ids[0], CloseReason::Quit);
        core.callback(&mut Quiet, ids[0], |_, cx, _| cx.write(b"never\n"));
        assert_eq!(read_now(&mut clients[0]), b"A\n");
        assert_eq!(fill(&mut core, ids[0], b"B\n"), Ok(()));
        assert_eq!(
            fill(&mut core, ids[0], b""),
            Ok(()),
            "an empty fill releases"
        );
        let mut all = Vec::new();
        clients[0]
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        clients[0].read_to_end(&mut all).unwrap();
        assert_eq!(all, b"B\nC\nE\n", "then EOF: the close went on");
    }

    #[test]
    fn a_reset_drops_the_holds() {
        let (mut core, _clients, ids) = accept_two();
        callback_with_holds(&mut core, ids[0]);
        core.close(&mut Quiet, ids[0], CloseReason::Reset);
        assert_eq!(fill(&mut core, ids[0], b"B\n"), Err(Gone));
        let stale = ConnId::new(ids[0].key(), ids[0].generation().wrapping_add(1));
        assert_eq!(fill(&mut core, stale, b"B\n"), Err(Gone));
    }

    #[test]
    fn a_reset_connection_takes_no_hold_from_on_close() {
        struct HoldOnClose;
        impl Handler for HoldOnClose {
            type Conn = ();
            fn on_close(&mut self, cx: &mut Context<'_>, _: &mut (), _: CloseReason) {
                cx.hold_reply();
            }
        }
        let (mut core, _clients, ids) = accept_two();
        core.close(&mut HoldOnClose, ids[0], CloseReason::Reset);
        assert!(core.conns.get(ids[0].key()).is_none(), "closed at once");
        core.close(&mut HoldOnClose, ids[1], CloseReason::Quit);
        assert_eq!(
            core.conns[ids[1].key()]
                .io
                .output
                .as_ref()
                .map(|o| o.holds(HoldKind::Reply)),
            Some(1)
        );
    }

    #[test]
    fn two_fills_in_one_closure_need_two_holds() {
        let (mut core, _clients, ids) = accept_two();
        core.callback(&mut Quiet, ids[0], |_, cx, _| cx.hold_reply());
        let mut pushes = Vec::new();
        let mut timers = LoopTimers::default();
        let mut lcx = LoopContext::new(
            &mut pushes,
            &mut timers,
            &core.conns,
            &core.stats,
            &core.clock,
            core.now,
        );
        assert_eq!(lcx.fill_reply(ids[0], b"1\n"), Ok(()));
        assert_eq!(lcx.fill_reply(ids[0], b"2\n"), Err(Gone));
    }
}
