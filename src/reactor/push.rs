//! The push API's types and [`Context`]'s push methods: sending to another
//! connection, fan-out of one shared buffer, what is queued, who the peer is.
//!
//! A push asked for during a callback is *recorded* and carried out when the
//! callback returns (like a close): the callback borrows only its own
//! connection. How it is carried out is in `fanout.rs`.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

pub use bytes::Bytes;
use slab::Slab;

use super::conn::{Conn, Liveness};
use super::live_ref;
use crate::reactor::handler::Context;
use crate::reactor::token::ConnId;

/// Who a fan-out goes to.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use vigil::{ConnId, Recipients};
///
/// fn room(members: Vec<ConnId>) -> Recipients {
///     Recipients::List(Arc::from(members))
/// }
/// assert!(matches!(room(Vec::new()), Recipients::List(ids) if ids.is_empty()));
/// ```
#[derive(Debug, Clone)]
pub enum Recipients {
    /// Every connection open (accepted and not closing) when the fan-out
    /// starts.
    All,
    /// As [`All`](Recipients::All), but not this one (e.g. the sender).
    AllBut(ConnId),
    /// These connections (a room, a topic), in this order; ids that are
    /// closed, closing or stale are skipped.
    List(Arc<[ConnId]>),
}

/// The connection is closed, closing, or the id is stale (its slot was
/// reused by a later connection).
///
/// # Examples
///
/// ```
/// assert_eq!(vigil::Gone.to_string(), "connection gone");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

impl fmt::Display for Gone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection gone")
    }
}

impl std::error::Error for Gone {}

/// What a push does to a recipient whose queue it would take past
/// [`Config::max_output`](crate::Config::max_output).
///
/// # Examples
///
/// ```
/// use vigil::{Config, OverflowPolicy};
///
/// let mut config = Config::default();
/// config.overflow = OverflowPolicy::Drop; // tell the client it lagged
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverflowPolicy {
    /// Close the recipient as a [`SlowReader`](crate::CloseReason::SlowReader):
    /// what is queued, the closing line, then FIN. The default.
    #[default]
    Close,
    /// Do not queue the message to that recipient; count it as missed. The
    /// count is reported by [`Handler::on_drain`](crate::Handler::on_drain)
    /// once the recipient has drained (as tokio's `broadcast` reports
    /// `Lagged(n)`).
    Drop,
}

/// How a fan-out went, given to
/// [`Handler::on_fan_out_done`](crate::Handler::on_fan_out_done).
///
/// # Examples
///
/// ```
/// let report = vigil::FanOutReport::default();
/// assert_eq!(report.delivered, 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct FanOutReport {
    /// Recipients the payload was handed to: written, or queued whole.
    pub delivered: u64,
    /// Recipients skipped under [`OverflowPolicy::Drop`].
    pub dropped: u64,
    /// Recipients this payload took past `max_output`, closed as slow
    /// readers ([`OverflowPolicy::Close`]).
    pub closed: u64,
}

/// Where a recorded push goes.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    One(ConnId),
    Many(Recipients),
    /// Not a push: a place held in the caller's own output
    /// ([`Context::hold_reply`]), recorded here to keep its position
    /// among the callback's writes. Never becomes a job.
    Hold,
}

/// A push recorded during a callback.
#[derive(Debug)]
pub(crate) struct Push {
    /// The callback's bytes written before it was asked for: a reply to it
    /// goes there.
    pub(crate) at: usize,
    pub(crate) payload: Bytes,
    pub(crate) to: Target,
    /// Call `on_fan_out_done` on the caller when complete.
    pub(crate) reply: bool,
}

/// What a callback sees of the other connections: whether one is open, and
/// the peer of its own. Implemented by the reactor's slab; a trait object so
/// that [`Context`] stays free of the handler's connection type.
pub(crate) trait Peers {
    /// `id` names an open (not closing) connection.
    fn is_open(&self, id: ConnId) -> bool;
    /// Bytes queued on `id` (0 for a gone one).
    fn queued(&self, id: ConnId) -> usize;
    /// The address of `id`'s peer, if the socket still knows it.
    fn peer_addr(&self, id: ConnId) -> Option<SocketAddr>;
}

impl<S> Peers for Slab<Conn<S>> {
    fn is_open(&self, id: ConnId) -> bool {
        live_ref(self, id).is_some_and(|c| matches!(c.io.liveness, Liveness::Serving(_)))
    }

    fn queued(&self, id: ConnId) -> usize {
        live_ref(self, id)
            .and_then(|c| c.io.output.as_deref())
            .map_or(0, |out| out.len())
    }

    fn peer_addr(&self, id: ConnId) -> Option<SocketAddr> {
        live_ref(self, id).and_then(|c| c.io.stream.peer_addr().ok())
    }
}

/// A callback's reach beyond its own connection.
pub(crate) struct Reach<'a> {
    pub(crate) peers: &'a dyn Peers,
    pub(crate) pushes: &'a mut Vec<Push>,
}

impl fmt::Debug for Reach<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reach")
            .field("pushes", &self.pushes.len())
            .finish_non_exhaustive()
    }
}

impl Context<'_> {
    /// Sends `payload` to the connection `to` when this callback returns,
    /// after the bytes this callback wrote before (when `to` is this
    /// connection) and after every push asked for earlier.
    ///
    /// The payload is shared, not copied: a socket that takes it at once
    /// is written straight from it; one that does not keeps a reference to
    /// the rest.
    ///
    /// # Errors
    ///
    /// [`Gone`] when `to` is closed, closing or stale, checked now: nothing
    /// is sent. `Ok` means handed over: it is written or queued unless `to`
    /// is closed before (by an earlier push that took it past
    /// [`max_output`](crate::Config::max_output), for instance), as bytes
    /// written to any socket are lost when it fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use vigil::{Bytes, ConnId, Context, Handler};
    ///
    /// /// Forwards every chunk to the first connection.
    /// #[derive(Default)]
    /// struct Relay { first: Option<ConnId> }
    ///
    /// impl Handler for Relay {
    ///     type Conn = ();
    ///     fn on_data(&mut self, cx: &mut Context<'_>, _: &mut (), data: &[u8]) {
    ///         let first = *self.first.get_or_insert(cx.id());
    ///         if cx.send(first, Bytes::copy_from_slice(data)).is_err() {
    ///             self.first = None; // gone: the next one takes its place
    ///         }
    ///     }
    /// }
    /// ```
    pub fn send(&mut self, to: ConnId, payload: Bytes) -> Result<(), Gone> {
        // Recorded either way, so that a send to a gone id is counted
        // (`Stats::push_gone`) with the rest when the callback returns.
        let open = self.reach.peers.is_open(to);
        self.record(payload, Target::One(to), false);
        if open {
            Ok(())
        } else {
            Err(Gone)
        }
    }

    /// Sends one `payload` to every connection of `to` when this callback
    /// returns: one buffer shared by all, never a copy per recipient.
    ///
    /// A fan-out larger than
    /// [`Config::fan_out_budget`](crate::Config::fan_out_budget) goes on
    /// over several loop turns. Every recipient gets the pushes in the order
    /// they were asked for.
    ///
    /// # Examples
    ///
    /// ```
    /// use vigil::{Bytes, Context, Handler, Recipients};
    ///
    /// /// Every chunk a client sends goes to all the others.
    /// struct Chat;
    ///
    /// impl Handler for Chat {
    ///     type Conn = ();
    ///     fn on_data(&mut self, cx: &mut Context<'_>, _: &mut (), data: &[u8]) {
    ///         let me = cx.id();
    ///         cx.fan_out(Bytes::copy_from_slice(data), Recipients::AllBut(me));
    ///     }
    /// }
    /// ```
    pub fn fan_out(&mut self, payload: Bytes, to: Recipients) {
        self.record(payload, Target::Many(to), false);
    }

    /// As [`fan_out`](Context::fan_out), and once the fan-out is complete,
    /// [`Handler::on_fan_out_done`](crate::Handler::on_fan_out_done) is
    /// called on this connection with its [`FanOutReport`]. What that call
    /// writes takes the place of this request in the connection's output:
    /// after what this callback wrote before, before what it writes after,
    /// so replies keep their request order even when the fan-out takes
    /// several loop turns (output behind it waits meanwhile).
    ///
    /// # Examples
    ///
    /// ```
    /// use vigil::{Bytes, Context, FanOutReport, Handler, Recipients};
    ///
    /// /// Broadcasts each chunk, then tells the sender how many got it.
    /// struct Announce;
    ///
    /// impl Handler for Announce {
    ///     type Conn = ();
    ///     fn on_data(&mut self, cx: &mut Context<'_>, _: &mut (), data: &[u8]) {
    ///         let me = cx.id();
    ///         cx.fan_out_with_reply(Bytes::copy_from_slice(data), Recipients::AllBut(me));
    ///     }
    ///     fn on_fan_out_done(&mut self, cx: &mut Context<'_>, _: &mut (), report: FanOutReport) {
    ///         cx.write(format!("OK {}\n", report.delivered).as_bytes());
    ///     }
    /// }
    /// ```
    pub fn fan_out_with_reply(&mut self, payload: Bytes, to: Recipients) {
        self.record(payload, Target::Many(to), true);
    }

    /// Bytes queued on this connection: written by callbacks or pushed, and
    /// not yet taken by its socket (this callback's writes included). A
    /// fan-out past the turn's write budget, not yet written to this
    /// connection (corked, written within a few turns), is not counted. See
    /// [`Config::high_water`](crate::Config::high_water) and
    /// [`Handler::on_drain`](crate::Handler::on_drain).
    pub fn queued(&self) -> usize {
        self.reach.peers.queued(self.id()) + self.written()
    }

    /// The address of this connection's peer (the socket's; a PROXY
    /// protocol header's is the protocol's business). `None` once the
    /// socket no longer knows it (reset). One system call
    /// (`getpeername`): the reactor keeps no copy, to keep idle connections
    /// small.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.reach.peers.peer_addr(self.id())
    }

    pub(super) fn record(&mut self, payload: Bytes, to: Target, reply: bool) {
        let at = self.written();
        self.reach.pushes.push(Push {
            at,
            payload,
            to,
            reply,
        });
    }
}
