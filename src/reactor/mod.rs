//! The reactor: one thread, one [`mio::Poll`], connections in a [`Slab`], one
//! timer-wheel entry per connection.
//!
//! # One loop iteration
//!
//! 1. Poll, with the time to the earliest of: the wheel's next deadline, the
//!    end of an accept pause, the next stats report. Zero when connections
//!    wait for another read turn; infinite when nothing is due.
//! 2. Read the clock: that tick is "now" (read again every 64 events, and
//!    before the timers and the accepts).
//! 3. Dispatch events: writable connections flush their queue; readable ones
//!    are read until drained or until their byte budget is spent, each chunk
//!    handed to [`Handler::on_data`].
//! 4. Give deferred connections (budget spent) another turn.
//! 5. Pop every due timer: close, probe, or re-arm at the true deadline.
//! 6. Accept until the backlog is empty (128 at most), unless paused; read
//!    each new connection once at once.
//! 7. Report counters to [`Handler::on_stats`] if due.
//!
//! See `docs/architecture.md` for the invariants.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::event::{Event, Source};
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Waker};
use slab::Slab;

use crate::clock::Clock;
use crate::wheel::Wheel;

mod accept;
mod config;
mod conn;
mod exchange;
mod handler;
mod loop_stats;
mod scrape;
mod shutdown;
mod stats;
mod stopping;
mod token;

pub use config::Config;
pub use handler::{Context, Handler};
pub use loop_stats::{LoopStats, ReactorMetrics};
pub use scrape::{ScrapeConfig, PROMETHEUS_TEXT};
pub use shutdown::ShutdownHandle;
pub use stats::{CloseReason, Stats};
pub use token::ConnId;

use accept::Acceptor;
use conn::{Conn, ConnIo, Due, Liveness, TickLimits, NEVER};
use scrape::Scrape;
use stopping::Stopping;
use token::{LISTENER, METRICS_LISTENER, SHUTDOWN_SOURCE, WAKER};

/// Readiness events taken per poll.
const EVENTS_CAPACITY: usize = 1024;
/// The one read buffer: large enough that a heartbeat is one short read.
const READ_BUFFER: usize = 64 * 1024;
/// Events handled between two readings of the clock. Bytes are stamped
/// with the tick of the last reading, so that they are never stamped more
/// than this many events' handling (well under a millisecond) before they
/// were read, while a heartbeat still costs no clock reading of its own.
const CLOCK_EVERY: usize = 64;
/// The single-threaded event loop.
///
/// A reactor owns a listener and every connection accepted from it. It
/// closes connections that send nothing for
/// [`Config::idle_timeout`], that outlive [`Config::lifetime`], that do not
/// read their output, or that its [`Handler`] gives up on; it calls
/// [`Handler::on_probe`] on connections silent for [`Config::probe_after`].
///
/// # Examples
///
/// Reaping without any protocol: connections that say nothing for 200 ms are
/// closed.
///
/// ```
/// use std::io::Read;
/// use std::net::TcpStream;
/// use std::thread;
/// use std::time::Duration;
/// use vigil::{CloseReason, Config, Handler, Reactor};
///
/// struct Silent;
/// impl Handler for Silent {
///     type Conn = ();
/// }
///
/// let mut config = Config::default();
/// config.idle_timeout = Some(Duration::from_millis(200));
/// let mut reactor = Reactor::bind("127.0.0.1:0".parse()?, config, Silent)?;
/// let addr = reactor.local_addr()?;
/// let handle = reactor.shutdown_handle();
/// let server = thread::spawn(move || {
///     reactor.run().unwrap();
///     reactor.stats().closed(CloseReason::Idle)
/// });
///
/// let mut client = TcpStream::connect(addr)?;
/// let mut buf = [0; 1];
/// assert_eq!(client.read(&mut buf)?, 0); // closed by the server, idle
/// handle.shutdown();
/// assert_eq!(server.join().unwrap(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Reactor<H: Handler> {
    core: Core<H::Conn>,
    handler: H,
    /// The metrics listener, if [`Reactor::serve_metrics`] was called.
    scrape: Option<Scrape<H>>,
}

impl<H: Handler> Reactor<H> {
    /// Binds `addr` and builds a reactor that will serve it with `handler`.
    ///
    /// # Errors
    ///
    /// Binding fails (address in use, no permission), the poll cannot be
    /// created, or `config` is invalid (zero tick): `InvalidInput`.
    pub fn bind(addr: SocketAddr, config: Config, handler: H) -> io::Result<Reactor<H>> {
        Reactor::with_listener(TcpListener::bind(addr)?, config, handler)
    }

    /// Builds a reactor around a listener the caller bound and configured
    /// (backlog, socket options). The listener is switched to non-blocking.
    ///
    /// # Errors
    ///
    /// As for [`bind`](Reactor::bind), but for binding.
    pub fn from_std(
        listener: std::net::TcpListener,
        config: Config,
        handler: H,
    ) -> io::Result<Reactor<H>> {
        listener.set_nonblocking(true)?;
        Reactor::with_listener(TcpListener::from_std(listener), config, handler)
    }

    fn with_listener(listener: TcpListener, config: Config, handler: H) -> io::Result<Reactor<H>> {
        Ok(Reactor {
            core: Core::new(listener, config)?,
            handler,
            scrape: None,
        })
    }

    /// The address the listener is bound to: the real port when port 0 was
    /// asked.
    ///
    /// # Errors
    ///
    /// The reactor has shut down (its listener is closed): `NotConnected`.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self.core.acceptor.listener() {
            Some(listener) => listener.local_addr(),
            None => Err(io::ErrorKind::NotConnected.into()),
        }
    }

    /// A handle that stops this reactor, from any thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        self.core.shutdown.clone()
    }

    /// Shuts the reactor down, as [`ShutdownHandle::shutdown`] does, as soon
    /// as `source` becomes readable. Typically the read end of a self-pipe
    /// that a signal handler writes to (`signal_hook::low_level::pipe`):
    /// signals then stop the reactor without a second thread.
    ///
    /// That matters for capacity: while a process has more than one thread,
    /// Linux waits for an RCU grace period (milliseconds) each time the
    /// process's file table has to grow, and the reactor's thread stalls for
    /// it, at 256, 512, 1024 ... open descriptors.
    ///
    /// Replaces a source given earlier (which is dropped).
    ///
    /// # Errors
    ///
    /// Registering `source` with the poll fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Write;
    /// use mio::net::UnixStream;
    /// use vigil::{Config, Handler, Reactor};
    ///
    /// struct Quiet;
    /// impl Handler for Quiet {
    ///     type Conn = ();
    /// }
    ///
    /// let mut reactor = Reactor::bind("127.0.0.1:0".parse()?, Config::default(), Quiet)?;
    /// let (mut wake, watched) = UnixStream::pair()?;
    /// reactor.shutdown_when_readable(watched)?;
    /// wake.write_all(b"x")?; // what a signal handler would do
    /// reactor.run()?; // returns at once
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown_when_readable<S>(&mut self, mut source: S) -> io::Result<()>
    where
        S: Source + Send + 'static,
    {
        let registry = self.core.poll.registry();
        if let Some(ShutdownSource(mut old)) = self.core.shutdown_source.take() {
            registry.deregister(&mut old)?;
        }
        registry.register(&mut source, SHUTDOWN_SOURCE, Interest::READABLE)?;
        self.core.shutdown_source = Some(ShutdownSource(Box::new(source)));
        Ok(())
    }

    /// Runs the event loop until [`ShutdownHandle::shutdown`] is called, then
    /// closes every connection with [`CloseReason::Shutdown`] and returns.
    ///
    /// Closing takes the close sequence's time (`docs/protocol.md`): the
    /// last lines are written to peers that read them, and `run` returns
    /// once every peer has closed its side, or at most twice
    /// [`Config::linger`] after the request.
    ///
    /// # Errors
    ///
    /// Polling fails (not for an interrupted system call). Errors on one
    /// connection only close that connection; failing accepts pause
    /// accepting.
    pub fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        loop {
            if self.core.shutdown.is_requested() {
                self.core.begin_stopping(&mut self.handler);
            }
            if self.core.stopped() {
                break;
            }
            let timeout = self.poll_timeout();
            if let Err(err) = self.core.poll.poll(&mut events, timeout) {
                if interrupted(&err) {
                    continue;
                }
                return Err(err);
            }
            self.core.begin_iteration(timeout != Some(Duration::ZERO));
            for (i, event) in events.iter().enumerate() {
                if i % CLOCK_EVERY == CLOCK_EVERY - 1 {
                    self.core.read_clock();
                }
                self.core.iteration_events = i + 1;
                match event.token() {
                    LISTENER => self.core.acceptor.on_ready(),
                    WAKER => {} // the shutdown flag is checked by the loop
                    SHUTDOWN_SOURCE => self.core.shutdown.shutdown(),
                    token => {
                        if let Some(id) = ConnId::from_token(token) {
                            self.core.on_event(&mut self.handler, id, event);
                        } else {
                            self.on_metrics_event(token, event);
                        }
                    }
                }
            }
            self.core.read_clock();
            if self.core.shutdown.is_requested() {
                // Before any accept: nothing new is served once asked to stop.
                // Then each iteration closes the connections whose turn in
                // the drain has come.
                self.core.begin_stopping(&mut self.handler);
            }
            self.core.run_deferred(&mut self.handler);
            self.core.expire(&mut self.handler);
            self.core.read_clock();
            self.core.accept(&mut self.handler);
            self.core.report_stats(&mut self.handler);
            if let Some(scrape) = &mut self.scrape {
                scrape.expire(self.core.last_read);
                scrape.accept_backlog(self.core.poll.registry(), self.core.last_read);
            }
        }
        if let Some(scrape) = &mut self.scrape {
            scrape.close_all();
        }
        self.core.finish_stopping(&mut self.handler);
        Ok(())
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.core.stats
    }

    /// A copy of every counter: connections, the loop, the timer wheel, the
    /// metrics listener. Cheap (a few hundred bytes, no system call), so an
    /// embedder can call it whenever it renders metrics; see
    /// `vigil::metrics` (feature `metrics`) for the exposition format.
    pub fn metrics(&self) -> ReactorMetrics {
        let mut metrics = self.core.metrics();
        if let Some(scrape) = &self.scrape {
            metrics.scrapes_open = scrape.open() as u64;
            metrics.scrapes = scrape.answered;
        }
        metrics
    }

    /// Serves `GET /metrics` over HTTP/1.1 on `listener`, from this
    /// reactor's own loop (no thread): `render` appends the response body,
    /// given the reactor's counters ([`Reactor::metrics`]) and the handler.
    /// Scrape connections are bounded in number, size and time (see
    /// [`ScrapeConfig`]); they are not counted as connections, not limited
    /// by [`Config::max_connections`] and not reaped as idle.
    ///
    /// Replaces a listener given earlier (which is closed).
    ///
    /// # Errors
    ///
    /// The listener cannot be made non-blocking or registered.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::net::{TcpListener, TcpStream};
    /// use std::thread;
    /// use vigil::{Config, Handler, Reactor, ScrapeConfig};
    ///
    /// struct Quiet;
    /// impl Handler for Quiet {
    ///     type Conn = ();
    /// }
    ///
    /// let mut reactor = Reactor::bind("127.0.0.1:0".parse()?, Config::default(), Quiet)?;
    /// let metrics = TcpListener::bind("127.0.0.1:0")?;
    /// let metrics_addr = metrics.local_addr()?;
    /// reactor.serve_metrics(metrics, ScrapeConfig::default(), |m, _quiet, body| {
    ///     body.push_str(&format!("open {}\n", m.stats.open));
    /// })?;
    /// let handle = reactor.shutdown_handle();
    /// let server = thread::spawn(move || reactor.run());
    ///
    /// let mut scraper = TcpStream::connect(metrics_addr)?;
    /// scraper.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")?;
    /// let mut response = String::new();
    /// scraper.read_to_string(&mut response)?;
    /// assert!(response.starts_with("HTTP/1.1 200 OK\r\n"));
    /// assert!(response.ends_with("\r\n\r\nopen 0\n"));
    /// handle.shutdown();
    /// server.join().unwrap()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn serve_metrics<F>(
        &mut self,
        listener: std::net::TcpListener,
        config: ScrapeConfig,
        render: F,
    ) -> io::Result<()>
    where
        F: FnMut(&ReactorMetrics, &H, &mut String) + Send + 'static,
    {
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener);
        self.scrape = None;
        self.scrape = Some(Scrape::new(
            listener,
            config,
            Box::new(render),
            self.core.poll.registry(),
        )?);
        Ok(())
    }

    /// The poll timeout: the core's, or sooner when a scrape connection's
    /// time runs out first.
    fn poll_timeout(&mut self) -> Option<Duration> {
        let timeout = self.core.poll_timeout();
        match self.scrape.as_ref().and_then(Scrape::next_deadline) {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(self.core.last_read);
                Some(timeout.map_or(left, |t| t.min(left)))
            }
            None => timeout,
        }
    }

    /// An event for the metrics listener or a scrape connection.
    fn on_metrics_event(&mut self, token: mio::Token, event: &Event) {
        let Some(scrape) = &mut self.scrape else {
            return; // sporadic events happen
        };
        let core = &self.core;
        if token == METRICS_LISTENER {
            scrape.accept(core.poll.registry(), core.last_read);
        } else {
            scrape.on_event(
                core.poll.registry(),
                token,
                event,
                || core.metrics(),
                &self.handler,
            );
        }
    }

    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The handler, mutably (between runs).
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }
}

/// Everything but the handler, so that handler calls can borrow both.
#[derive(Debug)]
struct Core<S> {
    poll: Poll,
    acceptor: Acceptor,
    shutdown: ShutdownHandle,
    /// Shuts the reactor down when readable (see `shutdown_when_readable`).
    shutdown_source: Option<ShutdownSource>,
    /// Set once shutdown has begun.
    stopping: Option<Stopping>,
    conns: Slab<Conn<S>>,
    wheel: Wheel<ConnId>,
    clock: Clock,
    /// The tick of this loop iteration.
    now: u64,
    /// The instant of the last clock reading: `now` is its tick, except
    /// for the reading `poll_timeout` takes, which only ends the iteration.
    last_read: Instant,
    /// When the current loop iteration's poll returned.
    iteration_start: Option<Instant>,
    /// Readiness events of the current loop iteration.
    iteration_events: usize,
    loop_stats: LoopStats,
    limits: TickLimits,
    config: Config,
    read_buf: Vec<u8>,
    /// What the current callback wrote; empty between callbacks.
    write_buf: Vec<u8>,
    /// Connections whose read budget ran out, read again next iteration.
    deferred: Vec<ConnId>,
    next_generation: u32,
    stats: Stats,
    stats_due: Option<u64>,
}

impl<S: Default> Core<S> {
    fn new(mut listener: TcpListener, mut config: Config) -> io::Result<Core<S>> {
        config.max_connections = config.max_connections.min(token::MAX_KEYS);
        if config.tick.is_zero() {
            return Err(invalid_input("tick must be longer than zero"));
        }
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let clock = Clock::new(config.tick);
        let limits = TickLimits::new(&config, &clock).map_err(invalid_input)?;
        Ok(Core {
            poll,
            acceptor: Acceptor::new(listener),
            shutdown: ShutdownHandle::new(waker),
            shutdown_source: None,
            stopping: None,
            conns: Slab::new(),
            wheel: Wheel::new(),
            clock,
            now: 0,
            last_read: Instant::now(),
            iteration_start: None,
            iteration_events: 0,
            loop_stats: LoopStats::default(),
            limits,
            read_buf: vec![0; READ_BUFFER],
            write_buf: Vec::new(),
            deferred: Vec::new(),
            next_generation: 0,
            stats: Stats::default(),
            stats_due: None,
            config,
        })
    }

    /// Sets `now` to the current tick (never backwards).
    fn read_clock(&mut self) {
        self.last_read = Instant::now();
        self.now = self.clock.tick_at(self.last_read).max(self.now);
    }

    /// `span` from now, in ticks, at least one tick; saturating, so that a
    /// huge span means "never", not an overflow.
    fn ticks_from_now(&self, span: Duration) -> u64 {
        self.now.saturating_add(self.clock.ticks_for(span).max(1))
    }

    /// Reads the clock after a poll and records the iteration before it:
    /// its busy time runs from its own poll's return to the last clock
    /// reading before this poll, or to this reading when the poll did not
    /// wait (`waited` false: a zero timeout). No clock reading of its own.
    fn begin_iteration(&mut self, waited: bool) {
        let before_poll = self.last_read;
        self.read_clock();
        if let Some(start) = self.iteration_start {
            let end = if waited { before_poll } else { self.last_read };
            self.loop_stats
                .iteration(end.saturating_duration_since(start), self.iteration_events);
        }
        self.iteration_start = Some(self.last_read);
        self.iteration_events = 0;
    }

    fn metrics(&self) -> ReactorMetrics {
        ReactorMetrics {
            stats: self.stats.clone(),
            loop_stats: self.loop_stats.clone(),
            timers: self.wheel.len() as u64,
            deferred: self.deferred.len() as u64,
            max_connections: self.config.max_connections as u64,
            scrapes_open: 0,
            scrapes: 0,
        }
    }

    fn poll_timeout(&mut self) -> Option<Duration> {
        if !self.deferred.is_empty() || self.acceptor.wants_turn() {
            return Some(Duration::ZERO);
        }
        let next = [
            self.wheel.next_deadline(),
            self.acceptor.paused_until(),
            self.stats_due,
            self.stopping.as_ref().and_then(Stopping::next_tick),
        ]
        .into_iter()
        .flatten()
        .min()?;
        // This reading also ends the iteration's busy time.
        self.last_read = Instant::now();
        Some(
            self.clock
                .instant_of(next)
                .saturating_duration_since(self.last_read),
        )
    }

    fn on_event<H: Handler<Conn = S>>(&mut self, handler: &mut H, id: ConnId, event: &Event) {
        let Some(conn) = live(&mut self.conns, id) else {
            return; // an event for a connection closed earlier in this batch
        };
        // What the event says must outlive this turn: a FIN or an error
        // behind more than one read budget is seen only by reading on.
        if event.is_read_closed() || event.is_error() || event.is_priority() {
            conn.io.read_to_block = true;
        }
        if event.is_writable() && conn.io.output.is_some() {
            if let Err(reason) = self.flush_queued(id) {
                return self.close(handler, id, reason);
            }
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() || event.is_priority()
        {
            self.read(handler, id);
        }
    }

    fn defer(&mut self, id: ConnId) {
        if let Some(conn) = live(&mut self.conns, id) {
            if !conn.io.on_deferred_list {
                conn.io.on_deferred_list = true;
                self.loop_stats.deferred_reads += 1;
                self.deferred.push(id);
            }
        }
    }

    /// Gives each connection deferred by the last iteration another turn.
    fn run_deferred<H: Handler<Conn = S>>(&mut self, handler: &mut H) {
        let turns = self.deferred.len();
        for i in 0..turns {
            let id = self.deferred[i];
            if let Some(conn) = live(&mut self.conns, id) {
                conn.io.on_deferred_list = false;
                self.read(handler, id);
            }
        }
        self.deferred.drain(..turns);
    }

    /// Runs one handler callback on `id` if it is open (not closing), then
    /// carries out what it asked: re-arm, send, close. Returns whether `id`
    /// is still open.
    fn callback<H: Handler<Conn = S>>(
        &mut self,
        handler: &mut H,
        id: ConnId,
        f: impl FnOnce(&mut H, &mut Context<'_>, &mut S),
    ) -> bool {
        let Some(Conn {
            io:
                ConnIo {
                    liveness: Liveness::Serving(timing),
                    ..
                },
            state,
        }) = live(&mut self.conns, id)
        else {
            return false;
        };
        let mut cx = Context::new(id, timing, &mut self.write_buf, &self.stats, &self.clock);
        f(handler, &mut cx, state);
        let requests = cx.finish();
        if requests.retimed {
            self.arm(id);
        }
        let flushed = self.flush(id);
        match flushed.err().or(requests.close) {
            Some(reason) => {
                self.close(handler, id, reason);
                false
            }
            None => true,
        }
    }

    /// Makes the registered deadline no later than the true one.
    fn arm(&mut self, id: ConnId) {
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
    fn expire<H: Handler<Conn = S>>(&mut self, handler: &mut H) {
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
                Due::At(_) => self.arm(id),
                Due::Abandon => self.abandon(id),
                Due::Never => {}
            }
        }
        self.acceptor.resume_if_due(self.now);
    }

    fn counters_changed(&mut self) {
        if let (Some(interval), None) = (self.config.stats_interval, self.stats_due) {
            self.stats_due = Some(self.ticks_from_now(interval));
        }
    }

    fn report_stats<H: Handler<Conn = S>>(&mut self, handler: &mut H) {
        if self.stats_due.is_some_and(|tick| tick <= self.now) {
            self.stats_due = None;
            handler.on_stats(&self.stats);
        }
    }
}

/// The source given to [`Reactor::shutdown_when_readable`].
struct ShutdownSource(Box<dyn Source + Send>);

impl fmt::Debug for ShutdownSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ShutdownSource")
    }
}

/// The connection `id` names, unless it has closed (a stale id).
fn live<S>(conns: &mut Slab<Conn<S>>, id: ConnId) -> Option<&mut Conn<S>> {
    conns
        .get_mut(id.key())
        .filter(|conn| conn.io.generation == id.generation())
}

fn invalid_input(message: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

fn would_block(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::WouldBlock
}

fn interrupted(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::Interrupted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reactor::conn::Timing;

    /// The generation check is what keeps a late event or timer of a closed
    /// connection from reaching the next one in its slot.
    #[test]
    fn an_id_of_another_generation_is_stale() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let mut conns = Slab::new();
        let key = conns.insert(Conn {
            io: ConnIo {
                stream: mio::net::TcpStream::from_std(stream),
                generation: 7,
                timer: None,
                on_deferred_list: false,
                read_to_block: false,
                liveness: Liveness::Serving(Timing::accepted(0, &TickLimits::default())),
                output: None,
            },
            state: (),
        });
        assert!(live(&mut conns, ConnId::new(key, 7)).is_some());
        assert!(live(&mut conns, ConnId::new(key, 6)).is_none());
        assert!(live(&mut conns, ConnId::new(key, 8)).is_none());
    }
}
