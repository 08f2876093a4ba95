//! Stopping a running reactor from another thread.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use std::fmt;
use std::io;

use mio::event::Source;
use mio::{Interest, Waker};

use super::token::SHUTDOWN_SOURCE;
use super::Reactor;
use crate::Handler;

/// Stops a running [`Reactor`](crate::Reactor) from any thread.
///
/// Cloneable and `Send + Sync`. [`shutdown`](ShutdownHandle::shutdown) wakes
/// the reactor's poll; the reactor then stops accepting, closes every
/// connection with [`CloseReason::Shutdown`](crate::CloseReason::Shutdown)
/// (its handler may write a last line, delivered to peers that read it) and
/// returns from [`run`](crate::Reactor::run) once every close has finished,
/// at most twice [`Config::linger`](crate::Config::linger) later.
///
/// # Examples
///
/// ```
/// use std::thread;
/// use vigil::{Config, Handler, Reactor};
///
/// #[derive(Default)]
/// struct Quiet;
/// impl Handler for Quiet {
///     type Conn = ();
/// }
///
/// let mut reactor = Reactor::bind("127.0.0.1:0".parse()?, Config::default(), Quiet)?;
/// let handle = reactor.shutdown_handle();
/// let stopper = thread::spawn(move || handle.shutdown());
/// reactor.run()?; // returns once the handle has been used
/// stopper.join().unwrap();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ShutdownHandle {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    waker: Waker,
    /// Set by a signal handler ([`ShutdownHandle::flag`]).
    requested: Arc<AtomicBool>,
    /// Calls of [`ShutdownHandle::shutdown`].
    calls: AtomicUsize,
}

impl ShutdownHandle {
    pub(crate) fn new(waker: Waker) -> ShutdownHandle {
        ShutdownHandle {
            shared: Arc::new(Shared {
                waker,
                requested: Arc::new(AtomicBool::new(false)),
                calls: AtomicUsize::new(0),
            }),
        }
    }

    /// Asks the reactor to stop. Returns at once. Asking again while the
    /// reactor spreads its closes over [`Config::drain`](crate::Config::drain)
    /// ends the drain: every connection is closed at once. After the reactor
    /// has stopped it does nothing.
    pub fn shutdown(&self) {
        self.shared.requested.store(true, Ordering::Release);
        self.shared.calls.fetch_add(1, Ordering::AcqRel);
        // A failed wake leaves the request recorded: the next poll return
        // sees it.
        if let Err(err) = self.shared.waker.wake() {
            log::warn!("could not wake the reactor for shutdown: {err}");
        }
    }

    /// The flag behind this handle. Setting it asks for shutdown but does
    /// not wake the reactor: it is for a signal handler, which can only
    /// store to an atomic (`signal_hook::flag::register`), paired with a
    /// wake-up such as a self-pipe given to
    /// [`Reactor::shutdown_when_readable`](crate::Reactor::shutdown_when_readable).
    /// The reactor checks it after each poll, before it accepts.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::Ordering;
    /// use vigil::{Config, Handler, Reactor};
    ///
    /// struct Quiet;
    /// impl Handler for Quiet {
    ///     type Conn = ();
    /// }
    ///
    /// let mut reactor = Reactor::bind("127.0.0.1:0".parse()?, Config::default(), Quiet)?;
    /// reactor.shutdown_handle().flag().store(true, Ordering::SeqCst);
    /// reactor.run()?; // sees the request at once
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.shared.requested)
    }

    /// Wakes the reactor's poll without asking for anything: the one
    /// waker, shared with [`ReactorHandle`](crate::ReactorHandle).
    pub(crate) fn wake(&self) -> io::Result<()> {
        self.shared.waker.wake()
    }

    /// Shutdown was asked for more than once: no more draining.
    pub(crate) fn is_hurried(&self) -> bool {
        self.shared.calls.load(Ordering::Acquire) >= 2
    }

    pub(crate) fn is_requested(&self) -> bool {
        self.shared.requested.load(Ordering::Acquire)
    }
}

impl<H: Handler> Reactor<H> {
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
}

/// The source given to [`Reactor::shutdown_when_readable`].
pub(super) struct ShutdownSource(Box<dyn Source + Send>);

impl fmt::Debug for ShutdownSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ShutdownSource")
    }
}
