//! The embedder's side: [`Handler`] decides what bytes go out, [`Context`] is
//! its handle on the current connection.

use std::time::Duration;

use crate::clock::Clock;
use crate::reactor::conn::{TickLimits, Timing};
use crate::reactor::loop_context::LoopContext;
use crate::reactor::push::{FanOutReport, Reach};
use crate::reactor::stats::{CloseReason, Stats};
use crate::reactor::token::ConnId;

/// What an embedder writes: the protocol spoken over each connection.
///
/// The [`Reactor`](crate::Reactor) decides *when* things happen (readiness,
/// deadlines, limits, closing); a handler decides *what bytes* to send when
/// they do. Every method has a default body, so a handler implements only
/// what its protocol needs; one that implements nothing still gets idle
/// connections reaped.
///
/// Callbacks run on the reactor's thread and must not block. Bytes written
/// through the [`Context`] during a callback are sent in one write when it
/// returns.
///
/// # Examples
///
/// An echo server whose connections are closed after 30 s of silence:
///
/// ```no_run
/// use std::time::Duration;
/// use vigil::{Config, Context, Handler, Reactor};
///
/// struct Echo;
///
/// impl Handler for Echo {
///     type Conn = ();
///
///     fn on_data(&mut self, cx: &mut Context<'_>, _conn: &mut (), data: &[u8]) {
///         cx.write(data);
///     }
/// }
///
/// let mut config = Config::default();
/// config.idle_timeout = Some(Duration::from_secs(30));
/// let mut reactor = Reactor::bind("127.0.0.1:4000".parse()?, config, Echo)?;
/// reactor.run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Handler {
    /// Per-connection protocol state, kept inline in the reactor's slab next
    /// to the connection. Keep it small: it is paid for by every idle
    /// connection (an `Option<Box<_>>` costs 8 bytes until it is needed).
    type Conn: Default;

    /// A connection was accepted; `conn` is fresh from `Default`.
    fn on_open(&mut self, cx: &mut Context<'_>, conn: &mut Self::Conn) {
        let _ = (cx, conn);
    }

    /// Bytes arrived. The reactor has already counted them as activity.
    /// A burst may arrive in several calls, and one call may hold several
    /// messages or part of one.
    fn on_data(&mut self, cx: &mut Context<'_>, conn: &mut Self::Conn, data: &[u8]) {
        let _ = (cx, conn, data);
    }

    /// The connection has sent nothing for
    /// [`Config::probe_after`](crate::Config::probe_after): say something
    /// that a live peer answers. Called once per silence.
    fn on_probe(&mut self, cx: &mut Context<'_>, conn: &mut Self::Conn) {
        let _ = (cx, conn);
    }

    /// The connection is closing for `reason`. Bytes written here follow
    /// every reply still queued and reach a peer that reads them before our
    /// FIN (the close sequence, `docs/protocol.md`); a peer that does not
    /// read within [`Config::linger`](crate::Config::linger) loses them. A
    /// reset or failed socket ([`CloseReason::Reset`], [`CloseReason::Io`])
    /// gets nothing.
    fn on_close(&mut self, cx: &mut Context<'_>, conn: &mut Self::Conn, reason: CloseReason) {
        let _ = (cx, conn, reason);
    }

    /// A connection arrived while
    /// [`Config::max_connections`](crate::Config::max_connections) were open.
    /// The returned bytes are written to it through the same close sequence
    /// as any closing line (a client that reads gets them, then EOF); it
    /// never gets a `Conn`.
    fn on_full(&mut self) -> &[u8] {
        &[]
    }

    /// A connection whose queued output passed
    /// [`Config::high_water`](crate::Config::high_water) (or that missed a
    /// push under [`OverflowPolicy::Drop`](crate::OverflowPolicy::Drop)) has
    /// drained to [`Config::low_water`](crate::Config::low_water) or less:
    /// producers that paused for it may go on. `missed` counts the pushes
    /// dropped for it since the last call, so the protocol can tell the
    /// client what it lost.
    fn on_drain(&mut self, cx: &mut Context<'_>, conn: &mut Self::Conn, missed: u64) {
        let _ = (cx, conn, missed);
    }

    /// A fan-out this connection asked for with
    /// [`Context::fan_out_with_reply`] is complete. What is written here
    /// takes the request's place in the connection's output. Called on a
    /// connection that has begun closing since, too (its bytes still go
    /// before the closing line); not on one already closed.
    fn on_fan_out_done(
        &mut self,
        cx: &mut Context<'_>,
        conn: &mut Self::Conn,
        report: FanOutReport,
    ) {
        let _ = (cx, conn, report);
    }

    /// The counters changed. Called at most once per
    /// [`Config::stats_interval`](crate::Config::stats_interval), and never
    /// while connections only exchange bytes or nothing happens at all;
    /// and once more when [`Reactor::run`](crate::Reactor::run) ends, with
    /// the final counters, whether they changed or not (only if
    /// `stats_interval` is set).
    fn on_stats(&mut self, stats: &Stats) {
        let _ = stats;
    }

    /// This connection's application timer fell due
    /// ([`Context::set_timer`]). It is one-shot: set it again here for the
    /// next. Idle, lifetime and probe deadlines come first when due at once.
    fn on_timer(&mut self, cx: &mut Context<'_>, conn: &mut Self::Conn) {
        let _ = (cx, conn);
    }

    /// A loop timer fell due
    /// ([`LoopContext::set_timer`](crate::LoopContext::set_timer),
    /// [`LoopContext::set_periodic`](crate::LoopContext::set_periodic)),
    /// with the `token` it was set with; `lcx` reaches every connection.
    fn on_loop_timer(&mut self, lcx: &mut LoopContext<'_>, token: u64) {
        let _ = (lcx, token);
    }
}

/// A [`Handler`]'s handle on the current connection.
///
/// Writes are collected while the callback runs and sent in one write when
/// it returns; what the socket does not take is queued, up to
/// [`Config::max_output`](crate::Config::max_output), past which the
/// connection is closed as a [`SlowReader`](CloseReason::SlowReader).
#[derive(Debug)]
pub struct Context<'a> {
    id: ConnId,
    pub(super) timing: &'a mut Timing,
    out: &'a mut Vec<u8>,
    stats: &'a Stats,
    pub(super) clock: &'a Clock,
    pub(super) reach: Reach<'a>,
    close: Option<CloseReason>,
    pub(super) retimed: bool,
    header_received: bool,
}

impl<'a> Context<'a> {
    pub(crate) fn new(
        id: ConnId,
        timing: &'a mut Timing,
        out: &'a mut Vec<u8>,
        stats: &'a Stats,
        clock: &'a Clock,
        reach: Reach<'a>,
    ) -> Context<'a> {
        Context {
            id,
            timing,
            out,
            stats,
            clock,
            reach,
            close: None,
            retimed: false,
            header_received: false,
        }
    }

    /// What the callback asked of the reactor.
    pub(crate) fn finish(self) -> Requests {
        Requests {
            close: self.close,
            retimed: self.retimed,
            header_received: self.header_received,
        }
    }

    /// This connection's id: no other connection of this reactor has it
    /// until its 32-bit generation wraps, 2^32 accepts later (see
    /// [`ConnId`]).
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// Sends `bytes` to the peer, after anything written before, when the
    /// callback returns.
    pub fn write(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    /// Bytes written by this callback so far.
    pub(super) fn written(&self) -> usize {
        self.out.len()
    }

    /// Closes the connection when the callback returns, with
    /// [`CloseReason::Quit`]: the peer asked to leave. Write a farewell
    /// first if the protocol has one.
    pub fn close(&mut self) {
        self.close.get_or_insert(CloseReason::Quit);
    }

    /// Closes the connection when the callback returns, with
    /// [`CloseReason::ProtocolError`]: the peer sent something the protocol
    /// refuses.
    pub fn close_protocol_error(&mut self) {
        self.close.get_or_insert(CloseReason::ProtocolError);
    }

    /// Closes the connection when the callback returns, with
    /// [`CloseReason::ProxyHeader`]: the PROXY protocol header that must
    /// start the connection is missing or malformed.
    pub fn close_proxy_header(&mut self) {
        self.close.get_or_insert(CloseReason::ProxyHeader);
    }

    /// Makes this connection's PROXY protocol header (or any other
    /// preamble) due `timeout` after accept: if
    /// [`proxy_header_received`](Context::proxy_header_received) has not
    /// been called by then, the connection is closed with
    /// [`CloseReason::ProxyHeader`]. Until then neither the idle timeout
    /// nor probes apply, so bytes trickled one at a time do not extend it;
    /// the lifetime does. `None` or zero: no deadline, the idle timeout
    /// applies as usual. Meant for
    /// [`Handler::on_open`]; it costs no memory and no timer of its own
    /// (the connection's one wheel entry holds it).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use vigil::{Context, Handler};
    ///
    /// struct Proxied;
    /// impl Handler for Proxied {
    ///     type Conn = ();
    ///     fn on_open(&mut self, cx: &mut Context<'_>, _conn: &mut ()) {
    ///         cx.expect_proxy_header(Some(Duration::from_secs(5)));
    ///     }
    /// }
    /// ```
    pub fn expect_proxy_header(&mut self, timeout: Option<Duration>) {
        let span = self.ticks(timeout);
        self.timing.await_preamble(span);
        self.retimed = true;
    }

    /// The header [`expect_proxy_header`](Context::expect_proxy_header)
    /// waited for is complete: the reactor's idle timeout (counted from the
    /// last byte received) and probes apply again. Nothing happens if no
    /// header was awaited.
    pub fn proxy_header_received(&mut self) {
        // The reactor's idle timeout is restored when the callback returns,
        // unless `set_idle_timeout` chose another meanwhile.
        self.header_received = true;
        self.retimed = true;
    }

    /// Overrides this connection's idle timeout (e.g. a keep-alive the client
    /// declared). `None` or zero turns it off. Counted from the last byte
    /// received. It costs no timer work unless the new deadline is earlier
    /// than the one registered: a longer timeout is found when the
    /// registered one fires. It also ends a header deadline
    /// ([`expect_proxy_header`](Context::expect_proxy_header)).
    pub fn set_idle_timeout(&mut self, timeout: Option<Duration>) {
        let span = self.ticks(timeout);
        self.timing.set_idle(span);
        self.retimed = true;
    }

    /// Overrides this connection's lifetime, counted from accept. `None` or
    /// zero turns it off; a lifetime already past closes the connection when
    /// the callback returns.
    pub fn set_lifetime(&mut self, lifetime: Option<Duration>) {
        let span = self.ticks(lifetime);
        self.timing.set_lifetime(span);
        self.retimed = true;
    }

    /// The reactor's counters, as of the start of this callback.
    pub fn stats(&self) -> &Stats {
        self.stats
    }

    fn ticks(&self, duration: Option<Duration>) -> u64 {
        duration.map_or(0, |d| self.clock.ticks_for(d))
    }
}

/// What a callback asked of the reactor, carried out when it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Requests {
    /// Close the connection, for this reason.
    pub(crate) close: Option<CloseReason>,
    /// The connection's deadlines changed: the wheel may need an earlier one.
    pub(crate) retimed: bool,
    /// The awaited PROXY header is complete.
    pub(crate) header_received: bool,
}

impl Requests {
    /// Carries out on `timing` what needs the reactor's `limits`: the end
    /// of a header's deadline (before the wheel is re-armed).
    pub(crate) fn retime(&self, timing: &mut Timing, limits: &TickLimits) {
        if self.header_received {
            timing.end_preamble(limits.idle);
        }
    }
}
