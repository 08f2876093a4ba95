//! Stopping a running reactor from another thread.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use std::fmt;
use std::io::{self, Read};

use mio::event::Source;
use mio::{Interest, Waker};

use super::token::SHUTDOWN_SOURCE;
use super::{Core, Reactor};
use crate::reactor::handler::Handler;

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

    /// Records `n` requests that the loop itself read (from the pipe of
    /// [`Reactor::shutdown_pipe`]): no wake-up needed.
    pub(crate) fn requested_times(&self, n: usize) {
        if n > 0 {
            self.shared.requested.store(true, Ordering::Release);
            self.shared.calls.fetch_add(n, Ordering::AcqRel);
        }
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
        self.core.drop_shutdown_source()?;
        let registry = self.core.poll.registry();
        registry.register(&mut source, SHUTDOWN_SOURCE, Interest::READABLE)?;
        self.core.shutdown_source = Some(ShutdownSource::Readable(Box::new(source)));
        Ok(())
    }

    /// A pipe into the reactor for a signal handler: every byte written to
    /// the returned stream is one shutdown request, as one call of
    /// [`ShutdownHandle::shutdown`] is. The first stops the reactor; a
    /// second ends a [`Config::drain`](crate::Config::drain) at once, even
    /// when both arrive before the reactor runs again (they are counted,
    /// not flagged).
    ///
    /// Hand the stream to `signal_hook::low_level::pipe::register(SIGTERM,
    /// stream)`, which writes one byte per signal: no second thread and no
    /// direct `mio` dependency. Replaces a source or pipe given earlier.
    ///
    /// # Errors
    ///
    /// The pipe (a Unix socket pair) cannot be created or registered.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::Write;
    /// use vigil::{Config, Handler, Reactor};
    ///
    /// struct Quiet;
    /// impl Handler for Quiet {
    ///     type Conn = ();
    /// }
    ///
    /// let mut reactor = Reactor::bind("127.0.0.1:0".parse()?, Config::default(), Quiet)?;
    /// let mut pipe = reactor.shutdown_pipe()?;
    /// // With signal-hook: signal_hook::low_level::pipe::register(SIGTERM, pipe)?;
    /// pipe.write_all(b"x")?; // what that signal handler does
    /// reactor.run()?; // returns at once
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn shutdown_pipe(&mut self) -> io::Result<std::os::unix::net::UnixStream> {
        let (write, read) = std::os::unix::net::UnixStream::pair()?;
        read.set_nonblocking(true)?;
        write.set_nonblocking(true)?;
        let mut read = mio::net::UnixStream::from_std(read);
        self.core.drop_shutdown_source()?;
        let registry = self.core.poll.registry();
        registry.register(&mut read, SHUTDOWN_SOURCE, Interest::READABLE)?;
        self.core.shutdown_source = Some(ShutdownSource::Pipe(read));
        Ok(write)
    }
}

impl<S> Core<S> {
    /// Deregisters and drops the shutdown source, if any.
    fn drop_shutdown_source(&mut self) -> io::Result<()> {
        if let Some(mut old) = self.shutdown_source.take() {
            let registry = self.poll.registry();
            match &mut old {
                ShutdownSource::Readable(source) => registry.deregister(source)?,
                ShutdownSource::Pipe(pipe) => registry.deregister(pipe)?,
            }
        }
        Ok(())
    }

    /// The shutdown source is readable: one request per readiness event
    /// of a source given to [`Reactor::shutdown_when_readable`], one per
    /// byte of the [`Reactor::shutdown_pipe`].
    pub(super) fn on_shutdown_source(&mut self) {
        let requests = match &mut self.shutdown_source {
            Some(ShutdownSource::Pipe(pipe)) => drain_counting(pipe),
            _ => 1,
        };
        self.shutdown.requested_times(requests);
    }
}

/// Reads `pipe` until it would block; returns the bytes read.
fn drain_counting(pipe: &mut impl Read) -> usize {
    let mut buf = [0; 64];
    let mut count = 0;
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => return count,
            Ok(n) => count += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return count,
        }
    }
}

/// What shuts the reactor down when readable.
pub(super) enum ShutdownSource {
    /// Given to [`Reactor::shutdown_when_readable`]: each readiness event
    /// is one request.
    Readable(Box<dyn Source + Send>),
    /// The read end of [`Reactor::shutdown_pipe`]: each byte is one
    /// request.
    Pipe(mio::net::UnixStream),
}

impl fmt::Debug for ShutdownSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ShutdownSource")
    }
}
