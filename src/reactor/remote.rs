//! [`ReactorHandle`]: pushing into the loop from any thread, through one
//! bounded queue and the reactor's one [`mio::Waker`].
//!
//! # Coalesced wakeups
//!
//! A wakeup is a system call on both sides (an `eventfd` write, an
//! `epoll_wait` return), so a producer wakes the loop only when the loop
//! is about to sleep. One atomic flag, `awake`, says that the loop is
//! running or already woken:
//!
//! - a producer pushes, then swaps `awake` to true; only the one that finds
//!   it false calls [`mio::Waker::wake`];
//! - the loop sets `awake` false just before a poll that may wait, then
//!   looks at the queue once more: not empty means it polls without
//!   waiting (and sets `awake` back); after every poll it sets `awake`.
//!
//! Both sides put a `SeqCst` fence between their store and their load, so
//! either the loop sees the message or the producer sees `false` and wakes
//! it: a message is never left waiting in the queue of a sleeping loop.
//! While producers keep the loop busy it never sleeps and they never wake
//! it (tokio's park/unpark state, Netty's `nextWakeupNanos`; mio's `Waker`
//! alone does not merge wakes, mio#1470).
//!
//! A loop faster than its producers would still find the queue empty
//! between two messages, sleep, and be woken for the next: a wake per
//! message or so. So after a turn that took messages it keeps polling
//! without waiting for `SPIN` (50 µs) before it may sleep: measured with
//! `benches/handle.rs`, that takes wakeups per message from about 0.01 (1
//! producer) and 0.05 to 0.1 (4) down to about 0.001. The price is at most
//! 50 µs of polling after each burst of messages.
//!
//! # After the loop
//!
//! When [`Reactor::run`] returns it closes the queue: a producer counts
//! itself in (`active`) before it looks at `open`, and the loop waits for
//! that count to reach zero after clearing `open`, then runs what is left.
//! So every message accepted with `Ok` runs, and every later one gets
//! [`HandleError::Stopped`] back.

use std::any::Any;
use std::fmt;
use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;

use super::app_timers::LoopTimers;
use super::loop_context::{LoopContext, Push};
use super::push::{Bytes, Recipients};
use super::shutdown::ShutdownHandle;
use super::{Core, Reactor};
use crate::reactor::handler::Handler;
use crate::reactor::token::ConnId;

pub(crate) mod error;
pub use error::HandleError;

/// How long after the last message the loop keeps polling without
/// waiting before it may sleep (and need a wake): producers that pause for
/// less, e.g. when they are scheduled out, find it awake.
const SPIN: Duration = Duration::from_micros(50);

/// A closure to run on the loop's thread.
trait Job<H>: Send {
    fn run(self: Box<Self>, handler: &mut H, lcx: &mut LoopContext<'_>);
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<H, F> Job<H> for F
where
    F: FnOnce(&mut H, &mut LoopContext<'_>) + Send + 'static,
{
    fn run(self: Box<Self>, handler: &mut H, lcx: &mut LoopContext<'_>) {
        (*self)(handler, lcx);
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

enum Command<H> {
    Send(ConnId, Bytes),
    FanOut(Bytes, Recipients),
    Run(Box<dyn Job<H>>),
}

struct Shared<H> {
    queue: ArrayQueue<Command<H>>,
    /// The loop is running or already woken: no wake needed.
    awake: AtomicBool,
    /// The loop still takes messages.
    open: AtomicBool,
    /// Producers between their look at `open` and their push.
    active: AtomicUsize,
    full: AtomicU64,
    wakeups: AtomicU64,
    /// Holds the reactor's one waker.
    shutdown: ShutdownHandle,
}

/// Hands work to a [`Reactor`] from any thread: sends to a connection,
/// fan-outs, and closures that run on the loop's thread with the handler.
///
/// Taken with [`Reactor::handle`] (before [`run`](Reactor::run) or while
/// it runs, from a clone). Cheap to clone, `Send + Sync`, and safe to keep
/// after the reactor: it then returns [`HandleError::Stopped`].
///
/// The queue is bounded ([`Config::handle_queue`](crate::Config::handle_queue)):
/// a full queue returns [`HandleError::Full`] with the message at once, and
/// never blocks. Messages run in the order they were accepted, at most
/// `handle_queue` per loop iteration between readiness turns. Wakeups are
/// coalesced: a producer makes the system call that wakes the loop only
/// when the loop is about to sleep ([`Stats::handle_wakeups`](crate::Stats::handle_wakeups)).
///
/// # Examples
///
/// A thread greeting every connection, then stopping the reactor:
///
/// ```
/// use std::io::{BufRead, BufReader};
/// use std::net::TcpStream;
/// use std::sync::mpsc;
/// use std::thread;
/// use vigil::{Bytes, Config, Handler, Reactor, Recipients};
///
/// struct Quiet;
/// impl Handler for Quiet {
///     type Conn = ();
/// }
///
/// let mut reactor = Reactor::bind("127.0.0.1:0".parse()?, Config::default(), Quiet)?;
/// let addr = reactor.local_addr()?;
/// let handle = reactor.handle();
/// let server = thread::spawn(move || reactor.run());
///
/// let client = TcpStream::connect(addr)?;
/// // Ask the loop, from this thread, until it has accepted the client.
/// loop {
///     let (tx, rx) = mpsc::channel();
///     handle.execute(move |_, lcx| tx.send(lcx.stats().open).unwrap())?;
///     if rx.recv()? == 1 {
///         break;
///     }
/// }
/// handle.fan_out(Bytes::from_static(b"hello\n"), Recipients::All)?;
///
/// let mut line = String::new();
/// BufReader::new(client).read_line(&mut line)?;
/// assert_eq!(line, "hello\n");
/// handle.shutdown();
/// server.join().unwrap()?;
/// assert!(handle.execute(|_, _| {}).unwrap_err().is_stopped());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ReactorHandle<H> {
    shared: Arc<Shared<H>>,
}

impl<H> Clone for ReactorHandle<H> {
    fn clone(&self) -> Self {
        ReactorHandle {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<H> fmt::Debug for ReactorHandle<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReactorHandle")
            .field("queued", &self.shared.queue.len())
            .field("open", &self.shared.open.load(SeqCst))
            .finish_non_exhaustive()
    }
}

impl<H> ReactorHandle<H> {
    /// Sends `payload` to connection `to`, after anything it is owed. A
    /// connection gone by the time the loop takes the message gets
    /// nothing (use [`execute`](Self::execute) and
    /// [`LoopContext::send`] to learn of it).
    ///
    /// # Errors
    ///
    /// [`HandleError::Full`] or [`HandleError::Stopped`], with `payload`.
    pub fn send(&self, to: ConnId, payload: Bytes) -> Result<(), HandleError<Bytes>> {
        self.push(Command::Send(to, payload)).map_err(|e| {
            e.map(|cmd| match cmd {
                Command::Send(_, payload) => payload,
                _ => unreachable!("the command given back is the one pushed"),
            })
        })
    }

    /// Sends one shared `payload` to every connection `to` names.
    ///
    /// # Errors
    ///
    /// [`HandleError::Full`] or [`HandleError::Stopped`], with both.
    pub fn fan_out(
        &self,
        payload: Bytes,
        to: Recipients,
    ) -> Result<(), HandleError<(Bytes, Recipients)>> {
        self.push(Command::FanOut(payload, to)).map_err(|e| {
            e.map(|cmd| match cmd {
                Command::FanOut(payload, to) => (payload, to),
                _ => unreachable!("the command given back is the one pushed"),
            })
        })
    }

    /// Runs `f` on the loop's thread with the handler and a
    /// [`LoopContext`] (send, fan-out, loop timers): the embedder's own
    /// messages, in whatever type `f` captures.
    ///
    /// # Errors
    ///
    /// [`HandleError::Full`] or [`HandleError::Stopped`], with `f`.
    pub fn execute<F>(&self, f: F) -> Result<(), HandleError<F>>
    where
        F: FnOnce(&mut H, &mut LoopContext<'_>) + Send + 'static,
        H: 'static,
    {
        self.push(Command::Run(Box::new(f))).map_err(|e| {
            e.map(|cmd| match cmd {
                Command::Run(job) => *job
                    .into_any()
                    .downcast::<F>()
                    .unwrap_or_else(|_| unreachable!("the job given back is the one pushed")),
                _ => unreachable!("the command given back is the one pushed"),
            })
        })
    }

    /// As [`execute`](Self::execute), but waits while the queue is full,
    /// retrying every `poll` (a blocking variant for producers that would
    /// rather slow down than drop).
    ///
    /// # Errors
    ///
    /// [`HandleError::Stopped`] with `f`, never `Full`.
    pub fn execute_blocking<F>(&self, mut f: F, poll: Duration) -> Result<(), HandleError<F>>
    where
        F: FnOnce(&mut H, &mut LoopContext<'_>) + Send + 'static,
        H: 'static,
    {
        loop {
            match self.execute(f) {
                Err(HandleError::Full(back)) => {
                    f = back;
                    std::thread::sleep(poll);
                }
                other => return other,
            }
        }
    }

    /// Asks the reactor to stop, as [`ShutdownHandle::shutdown`] does.
    pub fn shutdown(&self) {
        self.shared.shutdown.shutdown();
    }

    /// Whether the loop has stopped taking messages (its `run` returned, or
    /// the reactor was dropped).
    pub fn is_stopped(&self) -> bool {
        !self.shared.open.load(SeqCst)
    }

    fn push(&self, command: Command<H>) -> Result<(), HandleError<Command<H>>> {
        let shared = &*self.shared;
        shared.active.fetch_add(1, SeqCst);
        let pushed = if shared.open.load(SeqCst) {
            shared.queue.push(command).map_err(HandleError::Full)
        } else {
            Err(HandleError::Stopped(command))
        };
        shared.active.fetch_sub(1, SeqCst);
        match pushed {
            Ok(()) => {
                fence(SeqCst);
                if !shared.awake.swap(true, SeqCst) {
                    shared.wakeups.fetch_add(1, SeqCst);
                    if let Err(err) = shared.shutdown.wake() {
                        log::warn!("could not wake the reactor: {err}");
                    }
                }
                Ok(())
            }
            Err(err) => {
                if matches!(err, HandleError::Full(_)) {
                    shared.full.fetch_add(1, SeqCst);
                }
                Err(err)
            }
        }
    }
}

/// The loop's end of its handles, and the loop timers and recorded pushes
/// that closures and timer callbacks share.
pub(super) struct Inbox<H> {
    shared: Arc<Shared<H>>,
    timers: LoopTimers,
    pushes: Vec<Push>,
    /// When the last drain that took messages began (see `SPIN`).
    last_taken: Option<Instant>,
}

impl<H> fmt::Debug for Inbox<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbox")
            .field("queued", &self.shared.queue.len())
            .field("timers", &self.timers)
            .finish_non_exhaustive()
    }
}

impl<H> Inbox<H> {
    pub(super) fn new(capacity: usize, shutdown: ShutdownHandle) -> Inbox<H> {
        Inbox {
            shared: Arc::new(Shared {
                queue: ArrayQueue::new(capacity.max(1)),
                awake: AtomicBool::new(true),
                open: AtomicBool::new(true),
                active: AtomicUsize::new(0),
                full: AtomicU64::new(0),
                wakeups: AtomicU64::new(0),
                shutdown,
            }),
            timers: LoopTimers::default(),
            pushes: Vec::new(),
            last_taken: None,
        }
    }

    /// Stops taking messages; returns once no producer can still push.
    fn close(&self) {
        self.shared.open.store(false, SeqCst);
        // A producer is inside `push` for a few instructions, unless it was
        // scheduled out there: let it finish.
        while self.shared.active.load(SeqCst) != 0 {
            std::thread::yield_now();
        }
    }
}

impl<H> Drop for Inbox<H> {
    fn drop(&mut self) {
        self.close();
    }
}

impl<H: Handler> Reactor<H> {
    /// A handle that pushes into this reactor's loop from any thread (see
    /// [`ReactorHandle`]). All handles share one bounded queue.
    pub fn handle(&self) -> ReactorHandle<H> {
        ReactorHandle {
            shared: Arc::clone(&self.inbox.shared),
        }
    }

    /// The poll timeout: the rest of the loop's, sooner for a loop timer,
    /// zero while messages wait. When the poll may wait, the loop is marked
    /// asleep first, so that a producer wakes it.
    pub(super) fn remote_timeout(&mut self) -> Option<Duration> {
        let mut timeout = self.poll_timeout();
        if let Some(tick) = self.inbox.timers.next_deadline() {
            let core = &self.core;
            let left = core
                .clock
                .instant_of(tick)
                .saturating_duration_since(core.last_read);
            timeout = Some(timeout.map_or(left, |t| t.min(left)));
        }
        let spinning = self
            .inbox
            .last_taken
            .is_some_and(|at| self.core.last_read.saturating_duration_since(at) < SPIN);
        if spinning || timeout == Some(Duration::ZERO) {
            return Some(Duration::ZERO);
        }
        let shared = &self.inbox.shared;
        shared.awake.store(false, SeqCst);
        fence(SeqCst);
        if shared.queue.is_empty() {
            timeout
        } else {
            shared.awake.store(true, SeqCst);
            Some(Duration::ZERO)
        }
    }

    /// The poll returned: the loop is awake, producers need not wake it.
    pub(super) fn remote_awake(&self) {
        self.inbox.shared.awake.store(true, SeqCst);
    }

    /// Runs up to `handle_queue` queued messages, then the due loop timers.
    pub(super) fn run_remote(&mut self) {
        let budget = self.inbox.shared.queue.capacity();
        self.drain_remote(budget);
        let Reactor {
            core,
            handler,
            inbox,
            ..
        } = self;
        while let Some(token) = inbox.timers.pop_due(core.now) {
            let mut lcx = loop_context(core, &mut inbox.pushes, &mut inbox.timers);
            handler.on_loop_timer(&mut lcx, token);
            carry_out(core, handler, &mut inbox.pushes);
        }
    }

    /// `run` is returning: no more messages; those accepted run now.
    pub(super) fn close_remote(&mut self) {
        self.inbox.close();
        self.drain_remote(usize::MAX);
    }

    fn drain_remote(&mut self, budget: usize) {
        let Reactor {
            core,
            handler,
            inbox,
            ..
        } = self;
        let mut taken = 0;
        while taken < budget {
            let Some(command) = inbox.shared.queue.pop() else {
                break;
            };
            taken += 1;
            match command {
                Command::Send(to, payload) => {
                    let _ = core.deliver(handler, to, payload);
                }
                Command::FanOut(payload, to) => core.fan_out(handler, payload, to),
                Command::Run(job) => {
                    let mut lcx = loop_context(core, &mut inbox.pushes, &mut inbox.timers);
                    job.run(handler, &mut lcx);
                    carry_out(core, handler, &mut inbox.pushes);
                }
            }
        }
        // Producers are at work: the loop keeps polling without waiting for
        // `SPIN`, or it would sleep, and cost them a wake (a system call on
        // each side), each time it outpaces them.
        if taken > 0 {
            inbox.last_taken = Some(core.last_read);
        }
        let stats = &mut core.stats;
        stats.handle_messages += taken as u64;
        stats.handle_full = inbox.shared.full.load(SeqCst);
        stats.handle_wakeups = inbox.shared.wakeups.load(SeqCst);
    }
}

fn loop_context<'a, S: Default>(
    core: &'a Core<S>,
    pushes: &'a mut Vec<Push>,
    timers: &'a mut LoopTimers,
) -> LoopContext<'a> {
    LoopContext::new(
        pushes,
        timers,
        &core.conns,
        &core.stats,
        &core.clock,
        core.now,
    )
}

/// Carries out the pushes a closure or loop timer asked for, in order.
fn carry_out<H: Handler>(core: &mut Core<H::Conn>, handler: &mut H, pushes: &mut Vec<Push>) {
    for push in pushes.drain(..) {
        match push {
            Push::To(to, payload) => {
                let _ = core.deliver(handler, to, payload);
            }
            Push::FanOut(payload, to) => core.fan_out(handler, payload, to),
            Push::Fill(id, bytes) => core.fill_reply(handler, id, &bytes),
        }
    }
}
