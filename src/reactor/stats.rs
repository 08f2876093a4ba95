use std::fmt;

/// Why a connection was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// Nothing received for the idle timeout.
    Idle,
    /// The connection's lifetime from accept ran out.
    Lifetime,
    /// The handler asked ([`Context::close`](crate::Context::close)), e.g. `QUIT`.
    Quit,
    /// The handler refused the input
    /// ([`Context::close_protocol_error`](crate::Context::close_protocol_error)).
    ProtocolError,
    /// The reactor is shutting down.
    Shutdown,
    /// The reactor was at `max_connections` when this connection arrived.
    Full,
    /// The peer did not read and its output passed `max_output`.
    SlowReader,
    /// The peer closed its side (its FIN was read); replies still owed were
    /// written first.
    PeerClosed,
    /// The connection was reset (RST), or a write found it broken.
    Reset,
    /// Any other I/O error on the socket.
    Io,
    /// The connection's PROXY protocol header was missing or malformed
    /// ([`Context::close_proxy_header`](crate::Context::close_proxy_header)).
    ProxyHeader,
    /// The peer sent faster than
    /// [`Config::max_input_rate`](crate::Config::max_input_rate) allows.
    Flood,
}

impl CloseReason {
    /// Every reason, in the order [`Stats::closed`] indexes them.
    pub const ALL: [CloseReason; 12] = [
        CloseReason::Idle,
        CloseReason::Lifetime,
        CloseReason::Quit,
        CloseReason::ProtocolError,
        CloseReason::Shutdown,
        CloseReason::Full,
        CloseReason::SlowReader,
        CloseReason::PeerClosed,
        CloseReason::Reset,
        CloseReason::Io,
        CloseReason::ProxyHeader,
        CloseReason::Flood,
    ];

    /// A short lowercase name: `idle`, `lifetime`, `quit`, `protocol-error`,
    /// `shutdown`, `full`, `slow-reader`, `peer-closed`, `reset`, `io`,
    /// `proxy-header`, `flood`.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Idle => "idle",
            CloseReason::Lifetime => "lifetime",
            CloseReason::Quit => "quit",
            CloseReason::ProtocolError => "protocol-error",
            CloseReason::Shutdown => "shutdown",
            CloseReason::Full => "full",
            CloseReason::SlowReader => "slow-reader",
            CloseReason::PeerClosed => "peer-closed",
            CloseReason::Reset => "reset",
            CloseReason::Io => "io",
            CloseReason::ProxyHeader => "proxy-header",
            CloseReason::Flood => "flood",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counters kept by a [`Reactor`](crate::Reactor).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections accepted (including those refused as full).
    pub accepted: u64,
    /// Connections open now (served; not counting those in [`closing`](Stats::closing)).
    pub open: u64,
    /// Connections whose close is decided and counted but not finished: they
    /// still write their last bytes or read the peer's last input, and hold
    /// a descriptor. `accepted == open + closed_total()` always holds.
    pub closing: u64,
    /// Most connections open at once.
    pub peak_open: u64,
    /// Bytes read from peers.
    pub bytes_in: u64,
    /// Bytes written to peers.
    pub bytes_out: u64,
    /// Times accepting paused because file descriptors ran out.
    pub accept_pauses: u64,
    /// Pushes asked for: sends to one connection and fan-outs, each
    /// counted once however many recipients it has.
    pub pushes: u64,
    /// Pushed payloads handed to a recipient (written or queued whole).
    pub deliveries: u64,
    /// Bytes of those deliveries (a payload counted once per recipient).
    pub push_bytes: u64,
    /// Sends to a connection that was closed, closing or stale.
    pub push_gone: u64,
    /// Recipients closed as slow readers by a push
    /// ([`OverflowPolicy::Close`](crate::OverflowPolicy::Close)); also in
    /// [`closed`](Stats::closed)`(SlowReader)`.
    pub push_closed: u64,
    /// Deliveries skipped under
    /// [`OverflowPolicy::Drop`](crate::OverflowPolicy::Drop).
    pub push_dropped: u64,
    /// Messages the loop took from its [`ReactorHandle`](crate::ReactorHandle)s.
    pub handle_messages: u64,
    /// Messages refused because the handle's queue was full
    /// ([`Config::handle_queue`](crate::Config::handle_queue)).
    pub handle_full: u64,
    /// Times a handle woke the loop (a system call each). Producers wake
    /// it only when it is about to sleep, so while they keep it busy this
    /// stays far below [`handle_messages`](Stats::handle_messages).
    pub handle_wakeups: u64,
    closed: [u64; CloseReason::ALL.len()],
}

impl Stats {
    /// Connections closed for `reason`.
    pub fn closed(&self, reason: CloseReason) -> u64 {
        self.closed[reason.index()]
    }
    /// Connections closed for any reason.
    pub fn closed_total(&self) -> u64 {
        self.closed.iter().sum()
    }
    pub(crate) fn count_close(&mut self, reason: CloseReason) {
        self.closed[reason.index()] += 1;
    }
}
