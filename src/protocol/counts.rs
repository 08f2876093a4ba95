//! [`LineCounts`]: the lines a [`LineProtocol`](crate::LineProtocol) has
//! read, by kind.

/// Lines read by a [`LineProtocol`](crate::LineProtocol), by kind: plain
/// integers bumped on the reactor's thread, read when metrics are rendered
/// ([`LineProtocol::lines`](crate::LineProtocol::lines)).
///
/// # Examples
///
/// ```
/// let counts = vigil::LineProtocol::default().lines().clone();
/// assert_eq!(counts.total(), 0);
/// assert_eq!(counts.by_kind()[0], ("ping", 0));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LineCounts {
    /// `PING` and `PING <payload>` (each answered `PONG`).
    pub ping: u64,
    /// `PONG` and `PONG <anything>` (answers to probes; no reply).
    pub pong: u64,
    /// Empty lines (bare heartbeats; no reply).
    pub empty: u64,
    /// `QUIT` (answered `BYE quit`).
    pub quit: u64,
    /// `KEEPALIVE <dur>` (answered `KEEPALIVE <accepted>` or
    /// `ERR keepalive`).
    pub keepalive: u64,
    /// Any other line (echoed).
    pub other: u64,
}

impl LineCounts {
    /// Each kind's label (`ping`, `pong`, `empty`, `quit`, `keepalive`,
    /// `other`) with its count.
    pub fn by_kind(&self) -> [(&'static str, u64); 6] {
        [
            ("ping", self.ping),
            ("pong", self.pong),
            ("empty", self.empty),
            ("quit", self.quit),
            ("keepalive", self.keepalive),
            ("other", self.other),
        ]
    }

    /// Lines of every kind.
    pub fn total(&self) -> u64 {
        self.by_kind().iter().map(|&(_, n)| n).sum()
    }
}
