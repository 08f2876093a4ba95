use std::time::Duration;

use super::push::OverflowPolicy;

/// Per-reactor settings. Start from [`Config::default`] and change fields.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let mut config = vigil::Config::default();
/// config.idle_timeout = Some(Duration::from_secs(30));
/// config.probe_after = Some(Duration::from_secs(20));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Close a connection that has sent nothing for this long. Default 5 s.
    pub idle_timeout: Option<Duration>,
    /// Close a connection this long after accept, whatever it does. Default off.
    pub lifetime: Option<Duration>,
    /// Call [`Handler::on_probe`](crate::Handler::on_probe) after this much
    /// silence (once per silence). Default off.
    pub probe_after: Option<Duration>,
    /// Open connections at most; the next one is refused. Default 100,000.
    pub max_connections: usize,
    /// Bytes queued for one peer before it is closed as a slow reader.
    /// Default 64 KiB.
    pub max_output: usize,
    /// Timer resolution. Default 10 ms.
    pub tick: Duration,
    /// Bytes read from one connection per readiness turn before the others
    /// get theirs. Default 64 KiB.
    pub read_budget: usize,
    /// How often, at most, [`Handler::on_stats`](crate::Handler::on_stats)
    /// is called while counters change. Default off.
    pub stats_interval: Option<Duration>,
    /// After running out of file descriptors, how long accepting pauses
    /// (unless a connection closes first). Default 100 ms.
    pub accept_retry: Duration,
    /// The bound of a close (`docs/protocol.md`, "The close sequence"): a
    /// closing connection whose owed output makes no progress for this long
    /// is abandoned; once everything is written and the write side shut,
    /// the peer's input is read and discarded for at most this long, and
    /// for at most a tenth of it without a byte. At shutdown, the reactor
    /// returns at most twice this after the request. Default 1 s.
    pub linger: Duration,
    /// Input bytes a closing connection reads and discards at most, counted
    /// from the moment its close is decided (while output is still owed as
    /// well as after the FIN), before it is closed as it is (with a reset
    /// if input is still arriving). Default 1 MiB.
    pub linger_bytes: usize,
    /// Input bytes per second one connection may send: a bucket of this
    /// many bytes, full at accept and refilled at this rate by the tick,
    /// that every byte read draws on. A read that takes more than the
    /// bucket holds closes the connection with [`CloseReason::Flood`]
    /// (its bytes are not handed to the handler). `Some(0)` is refused.
    /// Default off.
    ///
    /// [`CloseReason::Flood`]: crate::CloseReason::Flood
    pub max_input_rate: Option<u32>,
    /// At shutdown, spread the closes of the open connections evenly over
    /// this long, so that their clients do not all reconnect elsewhere at
    /// once; a second [`ShutdownHandle::shutdown`](crate::ShutdownHandle::shutdown)
    /// ends the drain. Default zero: everyone at once.
    pub drain: Duration,
    /// At shutdown, accept the connections still waiting in the listener's
    /// backlog and close them with the handler's last words (never serving
    /// them), because closing the listener would reset them. Turn it off
    /// where the kernel moves them to another listener of the same port
    /// instead (Linux's `net.ipv4.tcp_migrate_req` = 1 with `SO_REUSEPORT`),
    /// so that they are served there. Default on.
    pub close_backlog_at_shutdown: bool,
    /// System calls per loop turn for pushes, all fan-outs together: writes
    /// straight to a recipient's socket, and flushes of recipients corked
    /// past it (each one `writev` of everything it is owed). A fan-out to
    /// every connection visits up to 32 times as many recipients a turn,
    /// corking those past the budget; the rest goes on in the next turns,
    /// with reads, accepts and timers in between (`docs/architecture.md`,
    /// "Fan-out"). Default 256: a turn of pushes stays near a millisecond,
    /// so that others are answered within a few (`docs/benchmarks.md`,
    /// "Fan-out").
    pub fan_out_budget: usize,
    /// Bytes queued on a connection past which it counts as backed up: once
    /// it drains to [`low_water`](Config::low_water),
    /// [`Handler::on_drain`](crate::Handler::on_drain) is called. Default 16 KiB.
    pub high_water: usize,
    /// See [`high_water`](Config::high_water). Default 4 KiB.
    pub low_water: usize,
    /// What a push does to a recipient whose queue it would take past
    /// [`max_output`](Config::max_output). Default
    /// [`OverflowPolicy::Close`].
    pub overflow: OverflowPolicy,
    /// Messages a [`ReactorHandle`](crate::ReactorHandle) queues for the
    /// loop at most; past it, sending returns
    /// [`HandleError::Full`](crate::HandleError::Full) at once. It is also
    /// the most messages the loop takes from the queue per iteration, so
    /// that producers cannot starve I/O. Zero counts as one. Default 4096.
    pub handle_queue: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            idle_timeout: Some(Duration::from_secs(5)),
            lifetime: None,
            probe_after: None,
            max_connections: 100_000,
            max_output: 64 * 1024,
            tick: Duration::from_millis(10),
            read_budget: 64 * 1024,
            stats_interval: None,
            accept_retry: Duration::from_millis(100),
            linger: Duration::from_secs(1),
            linger_bytes: 1024 * 1024,
            max_input_rate: None,
            drain: Duration::ZERO,
            close_backlog_at_shutdown: true,
            fan_out_budget: 256,
            high_water: 16 * 1024,
            low_water: 4 * 1024,
            overflow: OverflowPolicy::Close,
            handle_queue: 4096,
        }
    }
}

impl Config {
    /// Refuses what makes no sense, as the `vigil` binary refuses its
    /// flags: a zero tick, `max_connections`, `max_output` or `read_budget`
    /// (a budget of 0 would be read as one byte a turn), and a timeout of
    /// `Some(0)` (`None` turns one off).
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        let zero = |d: Option<Duration>| d.is_some_and(|d| d.is_zero());
        if self.tick.is_zero() {
            Err("tick must be longer than zero")
        } else if self.max_connections == 0 {
            Err("max_connections must be at least 1")
        } else if self.max_output == 0 {
            Err("max_output must be at least 1")
        } else if self.read_budget == 0 {
            Err("read_budget must be at least 1")
        } else if zero(self.idle_timeout) || zero(self.lifetime) || zero(self.probe_after) {
            Err("idle_timeout, lifetime and probe_after must be longer than zero, or None for off")
        } else {
            Ok(())
        }
    }
}
