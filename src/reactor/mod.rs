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
//! 4. Give deferred connections (budget spent) another turn; run what
//!    [`ReactorHandle`]s sent (bounded) and the due loop timers.
//! 5. Pop every due timer: close, probe, or re-arm at the true deadline.
//! 6. Accept until the backlog is empty (128 at most), unless paused; read
//!    each new connection once at once.
//! 7. Report counters to [`Handler::on_stats`] if due.
//!
//! See `docs/architecture.md` for the invariants.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Waker};
use slab::Slab;

use crate::clock::Clock;
use crate::wheel::Wheel;

mod accept;
pub(crate) mod app_timers;
mod callback;
pub(crate) mod config;
mod conn;
mod cork;
mod exchange;
mod fanout;
pub(crate) mod handler;
mod handover;
pub(crate) mod loop_context;
pub(crate) mod loop_stats;
mod observe;
mod outbound;
pub(crate) mod push;
pub(crate) mod remote;
mod reply_later;
pub(crate) mod scrape;
pub(crate) mod shutdown;
pub(crate) mod stats;
mod stopping;
mod timers;
pub(crate) mod token;

pub use app_timers::LoopTimer;
pub use config::Config;
pub use handler::{Context, Handler};
pub use loop_context::LoopContext;
pub use loop_stats::{LoopStats, ReactorMetrics};
pub use push::{Bytes, FanOutReport, Gone, OverflowPolicy, Recipients};
pub use remote::{HandleError, ReactorHandle};
pub use scrape::{ScrapeConfig, PROMETHEUS_TEXT};
pub use shutdown::ShutdownHandle;
pub use stats::{CloseReason, Stats};
pub use token::ConnId;

use accept::Acceptor;
use conn::{Conn, TickLimits};
use fanout::FanOuts;
use push::Push;
use remote::Inbox;
use scrape::Scrape;
use shutdown::ShutdownSource;
use stopping::Stopping;
use token::{LISTENER, SHUTDOWN_SOURCE, WAKER};

/// Readiness events taken per poll.
const EVENTS_CAPACITY: usize = 1024;
/// The one read buffer: large enough that a heartbeat is one short read.
const READ_BUFFER: usize = 64 * 1024;
/// Events handled between two readings of the clock. Bytes are stamped
/// with the tick of the last reading, and a stamp must not fall in an
/// earlier tick than the bytes' arrival, or their idle close could come
/// early. 16 events' handling takes tens of microseconds, far less than a
/// tick; one reading (vDSO, no system call) costs tens of nanoseconds, well
/// under 1 % of those 16 events, and a heartbeat still costs no clock
/// reading of its own.
const CLOCK_EVERY: usize = 16;
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
    /// What [`ReactorHandle`]s send, and the loop timers.
    inbox: Inbox<H>,
}

impl<H: Handler> Reactor<H> {
    /// Binds `addr` and builds a reactor that will serve it with `handler`.
    ///
    /// # Errors
    ///
    /// Binding fails (address in use, no permission), the poll cannot be
    /// created, or `config` makes no sense (`InvalidInput`): a zero `tick`,
    /// `max_connections`, `max_output`, `read_budget` or `max_input_rate`, a
    /// timeout of `Some(Duration::ZERO)` (`None` is off), or a `probe_after`
    /// not at least one tick shorter than `idle_timeout`.
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
        let core = Core::new(listener, config)?;
        Ok(Reactor {
            inbox: Inbox::new(core.config.handle_queue, core.shutdown.clone()),
            core,
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
            let timeout = self.remote_timeout();
            if let Err(err) = self.core.poll.poll(&mut events, timeout) {
                if interrupted(&err) {
                    continue;
                }
                return Err(err);
            }
            self.remote_awake();
            self.core.begin_iteration(timeout != Some(Duration::ZERO));
            self.core.refill_fan_out_budget();
            for (i, event) in events.iter().enumerate() {
                if i % CLOCK_EVERY == CLOCK_EVERY - 1 {
                    self.core.read_clock();
                }
                self.core.iteration_events = i + 1;
                match event.token() {
                    LISTENER => self.core.acceptor.on_ready(),
                    WAKER => {} // the shutdown flag and the handles' queue are checked by the loop
                    SHUTDOWN_SOURCE => self.core.on_shutdown_source(),
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
            self.run_remote();
            self.core.run_fan_outs(&mut self.handler);
            self.core.expire(&mut self.handler);
            self.core.read_clock();
            self.core.accept(&mut self.handler);
            self.core.report_stats(&mut self.handler);
            self.scrape_turn();
        }
        if let Some(scrape) = &mut self.scrape {
            scrape.close_all();
        }
        self.close_remote();
        self.core.finish_stopping(&mut self.handler);
        Ok(())
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.core.stats
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
    /// Pushes the current callback asked for; empty between callbacks.
    pushes: Vec<Push>,
    /// Fan-outs under way, and their budget.
    fan: FanOuts,
    next_generation: u32,
    stats: Stats,
    stats_due: Option<u64>,
}

impl<S: Default> Core<S> {
    fn new(mut listener: TcpListener, mut config: Config) -> io::Result<Core<S>> {
        config.max_connections = config.max_connections.min(token::MAX_KEYS);
        config.check().map_err(invalid_input)?;
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let clock = Clock::new(config.tick);
        let limits = TickLimits::new(&config, &clock).map_err(invalid_input)?;
        Ok(Core {
            poll,
            acceptor: Acceptor::new(listener, ""),
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
            pushes: Vec::new(),
            fan: FanOuts::default(),
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

    fn poll_timeout(&mut self) -> Option<Duration> {
        if !self.deferred.is_empty()
            || self.acceptor.wants_turn()
            || !self.fan.jobs.is_empty()
            || self.fan.cork.waiting()
        {
            return Some(Duration::ZERO);
        }
        let next = [
            self.wheel.next_deadline(),
            self.acceptor.paused_until(),
            self.stats_due,
            self.stopping.as_ref().map(Stopping::next_tick),
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
            if let Err(reason) = self.flush_output(handler, id) {
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
}

/// The connection `id` names, unless it has closed (a stale id).
fn live<S>(conns: &mut Slab<Conn<S>>, id: ConnId) -> Option<&mut Conn<S>> {
    conns
        .get_mut(id.key())
        .filter(|conn| conn.io.generation == id.generation())
}

/// As [`live`], shared.
fn live_ref<S>(conns: &Slab<Conn<S>>, id: ConnId) -> Option<&Conn<S>> {
    conns
        .get(id.key())
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
