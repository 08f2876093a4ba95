//! Accepting: batches, the back-off when descriptors run out, and the
//! registration of each new connection.

use std::io;
use std::time::Duration;

use mio::net::{TcpListener, TcpStream};
use mio::Registry;

use super::conn::{Conn, ConnIo, Liveness, Timing};
use super::exchange::READ_INTEREST;
use super::{interrupted, would_block, Core};
use crate::reactor::handler::Handler;
use crate::reactor::stats::CloseReason;
use crate::reactor::token::ConnId;

/// Connections accepted per loop iteration at most. A burst of connects
/// then shares the loop with the connections already open (their reads and
/// timers), and each iteration stays far shorter than a tick. The listener
/// stays marked ready, so the next poll does not wait.
const ACCEPT_BATCH: usize = 128;

/// A listener and what the reactor knows of its backlog: the one accept
/// path of the heartbeat listener and of the metrics listener, so that both
/// pause the same way when descriptors run out and both recover.
///
/// # Back-off
///
/// A failed `accept(2)` that is the listener's (descriptors exhausted,
/// EMFILE / ENFILE, or any error not of the connection being accepted)
/// pauses it until a given tick; the reactor's poll wakes for that tick,
/// and a descriptor freed earlier ([`Acceptor::resume`]) ends the pause at
/// once. While paused, the listener stays marked ready: the connections
/// waiting in its backlog are taken once the pause ends, although the
/// listener reports no new readiness for them (it is edge-triggered). One
/// warning is logged per exhaustion episode.
#[derive(Debug)]
pub(super) struct Acceptor {
    /// `None` once the reactor is shutting down.
    listener: Option<TcpListener>,
    /// The listener reported readiness that accepting has not drained yet.
    ready: bool,
    /// Accepting pauses until this tick (file descriptors ran out).
    paused_until: Option<u64>,
    /// The warning for the current descriptor-exhaustion episode is logged.
    warned_this_episode: bool,
    /// Names the listener in log lines: empty for the heartbeat listener.
    name: &'static str,
}

/// What one `accept(2)` gave.
#[derive(Debug)]
pub(super) enum Take {
    /// A new connection.
    Conn(TcpStream),
    /// Nothing more to take now: the backlog is drained, accepting is
    /// paused, or the listener is closed.
    Nothing,
    /// The connection being accepted failed before it was accepted
    /// (accept(2) says to retry at once), or the call was interrupted.
    Skipped,
    /// Accepting failed and is paused now (see [`Acceptor::take`]).
    Paused,
}

/// When a paused listener tries again: at tick `until`, `after` from now.
#[derive(Debug, Clone, Copy)]
pub(super) struct Retry {
    pub(super) until: u64,
    pub(super) after: Duration,
}

impl Acceptor {
    /// An acceptor of `listener` (already registered), which `name`s it in
    /// log lines (`""` for the heartbeat listener).
    pub(super) fn new(listener: TcpListener, name: &'static str) -> Acceptor {
        Acceptor {
            listener: Some(listener),
            ready: true,
            paused_until: None,
            warned_this_episode: false,
            name,
        }
    }

    pub(super) fn listener(&self) -> Option<&TcpListener> {
        self.listener.as_ref()
    }

    /// The listener's readiness event.
    pub(super) fn on_ready(&mut self) {
        self.ready = true;
    }

    /// Connections wait in the backlog and accepting is not paused: the
    /// next poll must not sleep.
    pub(super) fn wants_turn(&self) -> bool {
        self.listener.is_some() && self.ready && self.paused_until.is_none()
    }

    pub(super) fn paused_until(&self) -> Option<u64> {
        self.paused_until
    }

    /// Ends a pause whose time has come.
    pub(super) fn resume_if_due(&mut self, now: u64) {
        if self.paused_until.is_some_and(|tick| tick <= now) {
            self.paused_until = None;
        }
    }

    /// Ends a pause at once: a descriptor was freed.
    pub(super) fn resume(&mut self) {
        self.paused_until = None;
    }

    /// Stops accepting for good: the listener is closed.
    pub(super) fn close(&mut self, registry: &Registry) {
        if let Some(mut listener) = self.listener.take() {
            let _ = registry.deregister(&mut listener);
        }
    }

    /// Takes the next connection from the backlog, if accepting is not
    /// paused. A failure of the listener itself pauses accepting until
    /// `retry` (no busy loop while descriptors are short; the backlog keeps
    /// the waiting connections until then) and returns [`Take::Paused`];
    /// `open` is how many descriptors the reactor holds, for the warning.
    pub(super) fn take(&mut self, retry: Retry, open: impl FnOnce() -> u64) -> Take {
        if !self.wants_turn() {
            return Take::Nothing;
        }
        let Some(listener) = &self.listener else {
            return Take::Nothing;
        };
        match listener.accept() {
            Ok((stream, _)) => Take::Conn(stream),
            Err(err) if would_block(&err) => {
                self.ready = false;
                if self.warned_this_episode {
                    self.warned_this_episode = false;
                    log::info!("{}accepting again: the backlog is drained", self.name);
                }
                Take::Nothing
            }
            Err(err) if interrupted(&err) => Take::Skipped,
            Err(err) if connection_error(&err) => {
                log::debug!(
                    "{}accept: a connection failed before it was accepted: {err}",
                    self.name
                );
                Take::Skipped
            }
            Err(err) => {
                self.pause(&err, retry, open());
                Take::Paused
            }
        }
    }

    /// Stops taking from the listener until `retry.until`, or until a
    /// descriptor is freed.
    fn pause(&mut self, err: &io::Error, retry: Retry, open: u64) {
        self.paused_until = Some(retry.until);
        let name = self.name;
        if fd_exhausted(err) {
            if !self.warned_this_episode {
                self.warned_this_episode = true;
                log::warn!(
                    "{name}out of file descriptors with {open} connections open ({err}): pausing accept, retrying every {:?} or when a connection closes",
                    retry.after
                );
            }
        } else {
            log::warn!(
                "{name}accept failed ({err}): pausing accept for {:?}",
                retry.after
            );
        }
    }
}

impl<S: Default> Core<S> {
    /// When a listener that fails now tries again.
    pub(super) fn accept_retry(&self) -> Retry {
        Retry {
            until: self.ticks_from_now(self.config.accept_retry),
            after: self.config.accept_retry,
        }
    }

    /// Accepts until the backlog is empty, accepting is paused, or
    /// [`ACCEPT_BATCH`] connections were taken in this iteration.
    pub(super) fn accept<H: Handler<Conn = S>>(&mut self, handler: &mut H) {
        for _ in 0..ACCEPT_BATCH {
            let retry = self.accept_retry();
            let open = self.stats.open + self.stats.closing;
            match self.acceptor.take(retry, || open) {
                Take::Conn(stream) => self.open(handler, stream),
                Take::Skipped => {}
                Take::Nothing => return,
                Take::Paused => {
                    self.stats.accept_pauses += 1;
                    return;
                }
            }
        }
    }

    /// At shutdown, before the listener closes: takes every connection still
    /// waiting in its backlog (the kernel would reset them when it closes)
    /// and returns them, opened but never read, for the caller to close
    /// with `BYE shutdown`. Nothing they sent is served.
    pub(super) fn accept_backlog_to_close<H: Handler<Conn = S>>(
        &mut self,
        handler: &mut H,
    ) -> Vec<ConnId> {
        let mut taken = Vec::new();
        while let Some(listener) = &self.acceptor.listener {
            match listener.accept() {
                Ok((stream, _)) => {
                    if let Some(id) = self.register(handler, stream) {
                        taken.push(id);
                    }
                }
                Err(err) if interrupted(&err) || connection_error(&err) => {}
                Err(_) => break, // WouldBlock, or no descriptor to take it with
            }
        }
        taken
    }

    fn open<H: Handler<Conn = S>>(&mut self, handler: &mut H, stream: TcpStream) {
        // A batch of accepts takes a while; the first bytes read below
        // must be stamped with a tick no earlier than their arrival's.
        self.read_clock();
        if let Some(id) = self.register(handler, stream) {
            // Clients usually speak first: their first bytes are often here
            // already. Reading now saves a trip through poll; a drained
            // socket is not reported by the next poll, so this costs no
            // extra read later, only one that finds nothing now.
            self.read(handler, id);
        }
    }

    /// Counts, registers and opens a new connection (or refuses it when the
    /// reactor is full). Returns its id while it is open.
    fn register<H: Handler<Conn = S>>(
        &mut self,
        handler: &mut H,
        mut stream: TcpStream,
    ) -> Option<ConnId> {
        self.stats.accepted += 1;
        let full = self.stats.open >= self.config.max_connections as u64;
        let generation = self.next_generation;
        self.next_generation = generation.wrapping_add(1);
        let entry = self.conns.vacant_entry();
        let id = ConnId::new(entry.key(), generation);
        if let Err(err) = self
            .poll
            .registry()
            .register(&mut stream, id.token(), READ_INTEREST)
        {
            log::warn!("could not register an accepted connection: {err}");
            self.stats.count_close(CloseReason::Io);
            self.counters_changed();
            return None;
        }
        if !full {
            // Replies are small and latency matters more than segment count.
            let _ = stream.set_nodelay(true);
        }
        entry.insert(Conn {
            io: ConnIo {
                stream,
                generation,
                timer: None,
                on_deferred_list: false,
                read_to_block: false,
                corked_at: 0,
                liveness: Liveness::Serving(Timing::accepted(self.now, &self.limits)),
                output: None,
            },
            state: S::default(),
        });
        self.counters_changed();
        if full {
            self.refuse(handler, id);
            return None;
        }
        self.stats.open += 1;
        self.stats.peak_open = self.stats.peak_open.max(self.stats.open);
        log::trace!("connection {id} opened");
        self.arm(id);
        self.callback(handler, id, |h, cx, state| h.on_open(cx, state))
            .then_some(id)
    }

    /// Turns away a connection that arrived while the reactor was full: it
    /// gets the handler's [`on_full`](Handler::on_full) bytes and the same
    /// close sequence as any other, so that it reads them and then EOF.
    fn refuse<H: Handler<Conn = S>>(&mut self, handler: &mut H, id: ConnId) {
        self.stats.count_close(CloseReason::Full);
        self.write_buf.clear();
        self.write_buf.extend_from_slice(handler.on_full());
        self.begin_close(id, false);
        // Whatever the client sent already is discarded now.
        self.read(handler, id);
    }
}

/// EMFILE / ENFILE: this process or the system is out of descriptors.
fn fd_exhausted(err: &io::Error) -> bool {
    const ENFILE: i32 = 23;
    const EMFILE: i32 = 24;
    matches!(err.raw_os_error(), Some(ENFILE | EMFILE))
}

/// Errors that accept(2) reports for the connection being accepted, not for
/// the listener: accept(2) says to retry at once. Linux passes on pending
/// network errors of the new socket (EPROTO, ENOPROTOOPT, EHOSTDOWN, ENONET,
/// EHOSTUNREACH, EOPNOTSUPP, ENETUNREACH, ENETDOWN), a connection aborted
/// before it was accepted (ECONNABORTED), and a firewall's refusal (EPERM).
/// None of them may pause accepting. (Linux's numbers.)
fn connection_error(err: &io::Error) -> bool {
    const EPERM: i32 = 1;
    const EPROTO: i32 = 71;
    const ENOPROTOOPT: i32 = 92;
    const EOPNOTSUPP: i32 = 95;
    const ENETDOWN: i32 = 100;
    const ENETUNREACH: i32 = 101;
    const ECONNABORTED: i32 = 103;
    const ECONNRESET: i32 = 104;
    const EHOSTDOWN: i32 = 112;
    const EHOSTUNREACH: i32 = 113;
    const ENONET: i32 = 64;
    matches!(
        err.raw_os_error(),
        Some(
            EPERM
                | EPROTO
                | ENOPROTOOPT
                | EOPNOTSUPP
                | ENETDOWN
                | ENETUNREACH
                | ECONNABORTED
                | ECONNRESET
                | EHOSTDOWN
                | EHOSTUNREACH
                | ENONET
        )
    ) || matches!(
        err.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_connection_accept_errors_never_pause() {
        for errno in [1, 64, 71, 92, 95, 100, 101, 103, 104, 112, 113] {
            let err = io::Error::from_raw_os_error(errno);
            assert!(connection_error(&err), "{err}");
            assert!(!fd_exhausted(&err), "{err}");
        }
    }

    #[test]
    fn descriptor_exhaustion_pauses() {
        for errno in [23, 24] {
            let err = io::Error::from_raw_os_error(errno);
            assert!(fd_exhausted(&err) && !connection_error(&err), "{err}");
        }
    }
}
