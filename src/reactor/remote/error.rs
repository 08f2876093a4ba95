//! [`HandleError`]: a message the loop did not take, given back.

use std::fmt;

/// Why a [`ReactorHandle`](crate::ReactorHandle) did not take a message;
/// the message comes back inside.
///
/// # Examples
///
/// ```
/// use vigil::{Bytes, Config, Handler, Reactor, Recipients};
///
/// struct Quiet;
/// impl Handler for Quiet {
///     type Conn = ();
/// }
///
/// let mut config = Config::default();
/// config.handle_queue = 1;
/// let reactor = Reactor::bind("127.0.0.1:0".parse()?, config, Quiet)?;
/// let handle = reactor.handle();
/// handle.fan_out(Bytes::from_static(b"one\n"), Recipients::All).unwrap();
/// let err = handle.fan_out(Bytes::from_static(b"two\n"), Recipients::All).unwrap_err();
/// assert!(err.is_full()); // the loop has not run yet: the queue holds one
/// assert_eq!(&err.into_inner().0[..], b"two\n");
/// drop(reactor);
/// assert!(handle.fan_out(Bytes::new(), Recipients::All).unwrap_err().is_stopped());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub enum HandleError<T> {
    /// The queue holds [`Config::handle_queue`](crate::Config::handle_queue)
    /// messages: the loop is behind. Counted in
    /// [`Stats::handle_full`](crate::Stats::handle_full).
    Full(T),
    /// The reactor's `run` has returned, or the reactor was dropped.
    Stopped(T),
}

impl<T> HandleError<T> {
    /// The message that was not taken.
    pub fn into_inner(self) -> T {
        match self {
            HandleError::Full(message) | HandleError::Stopped(message) => message,
        }
    }

    /// Whether the queue was full (trying later may succeed).
    pub fn is_full(&self) -> bool {
        matches!(self, HandleError::Full(_))
    }

    /// Whether the reactor has stopped (trying again never succeeds).
    pub fn is_stopped(&self) -> bool {
        matches!(self, HandleError::Stopped(_))
    }

    pub(crate) fn map<U>(self, f: impl FnOnce(T) -> U) -> HandleError<U> {
        match self {
            HandleError::Full(message) => HandleError::Full(f(message)),
            HandleError::Stopped(message) => HandleError::Stopped(f(message)),
        }
    }
}

impl<T> fmt::Debug for HandleError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HandleError::Full(_) => "Full(..)",
            HandleError::Stopped(_) => "Stopped(..)",
        })
    }
}

impl<T> fmt::Display for HandleError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HandleError::Full(_) => "the reactor's handle queue is full",
            HandleError::Stopped(_) => "the reactor has stopped",
        })
    }
}

impl<T> std::error::Error for HandleError<T> {}
