//! The reactor (stub API: bodies being built).
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

mod config;
mod stats;
pub use config::Config;
pub use stats::{CloseReason, Stats};

/// Identifies one connection for as long as it is open; never reused for a
/// later connection in the same slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(u64);

/// What an embedder writes: the bytes a connection sends and receives.
/// All methods have default bodies.
pub trait Handler {
    /// Per-connection protocol state, kept inline in the reactor's slab.
    type Conn: Default;
    /// A connection was accepted. `conn` is `Default::default()`.
    fn on_open(&mut self, cx: &mut Context<'_>, conn: &mut Self::Conn) {
        let _ = (cx, conn);
    }
    /// Bytes arrived. Every byte already counts as activity.
    fn on_data(&mut self, cx: &mut Context<'_>, conn: &mut Self::Conn, data: &[u8]) {
        let _ = (cx, conn, data);
    }
    /// The connection has been silent for `probe_after`.
    fn on_probe(&mut self, cx: &mut Context<'_>, conn: &mut Self::Conn) {
        let _ = (cx, conn);
    }
    /// The connection is closing; a last write is still attempted, best effort.
    fn on_close(&mut self, cx: &mut Context<'_>, conn: &mut Self::Conn, reason: CloseReason) {
        let _ = (cx, conn, reason);
    }
    /// A connection arrived while the reactor was full: bytes written to it,
    /// best effort, before it is closed.
    fn on_full(&mut self) -> &[u8] {
        &[]
    }
    /// Counters changed since the last call (at most once per
    /// `Config::stats_interval`, never while nothing changes).
    fn on_stats(&mut self, stats: &Stats) {
        let _ = stats;
    }
}

/// The handle a [`Handler`] gets on the current connection.
#[derive(Debug)]
pub struct Context<'a> {
    _p: std::marker::PhantomData<&'a ()>,
}

impl Context<'_> {
    /// This connection's id.
    pub fn id(&self) -> ConnId {
        todo!()
    }
    /// Queue bytes for the peer (written after the callback, in order).
    pub fn write(&mut self, bytes: &[u8]) {
        let _ = bytes;
        todo!()
    }
    /// Close after this callback with [`CloseReason::Quit`].
    pub fn close(&mut self) {
        todo!()
    }
    /// Close after this callback with [`CloseReason::ProtocolError`].
    pub fn close_protocol_error(&mut self) {
        todo!()
    }
    /// Override this connection's idle timeout (`None`: off).
    pub fn set_idle_timeout(&mut self, timeout: Option<Duration>) {
        let _ = timeout;
        todo!()
    }
    /// Override this connection's lifetime, counted from accept (`None`: off).
    pub fn set_lifetime(&mut self, lifetime: Option<Duration>) {
        let _ = lifetime;
        todo!()
    }
    /// The reactor's counters.
    pub fn stats(&self) -> &Stats {
        todo!()
    }
}

/// Stops a running [`Reactor`] from any thread.
#[derive(Debug, Clone)]
pub struct ShutdownHandle {}

impl ShutdownHandle {
    /// Ask the reactor to stop: it stops accepting, closes every connection
    /// with [`CloseReason::Shutdown`] and returns from [`Reactor::run`].
    pub fn shutdown(&self) {
        todo!()
    }
}

/// The single-threaded event loop.
#[derive(Debug)]
pub struct Reactor<H: Handler> {
    handler: H,
}

impl<H: Handler> Reactor<H> {
    /// Bind `addr` and build a reactor around it.
    pub fn bind(addr: SocketAddr, config: Config, handler: H) -> io::Result<Reactor<H>> {
        let _ = (addr, config, handler);
        todo!()
    }
    /// The address the listener is bound to (the real port when 0 was asked).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        todo!()
    }
    /// A handle that stops this reactor from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        todo!()
    }
    /// Run until shut down.
    pub fn run(&mut self) -> io::Result<()> {
        todo!()
    }
    /// The counters.
    pub fn stats(&self) -> &Stats {
        todo!()
    }
    /// The handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }
}
