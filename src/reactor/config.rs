use std::time::Duration;

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
    /// Input bytes a closing connection reads and discards at most before
    /// it is closed as it is (possibly with a reset). Default 1 MiB.
    pub linger_bytes: usize,
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
            drain: Duration::ZERO,
            close_backlog_at_shutdown: true,
            handle_queue: 4096,
        }
    }
}
