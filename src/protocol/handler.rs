//! [`LineProtocol`]: the heartbeat protocol as a [`Handler`].

use std::ops::ControlFlow;
use std::time::Duration;

use crate::protocol::codec::LineCodec;
use crate::protocol::counts::LineCounts;
use crate::protocol::keepalive::{self, KeepaliveRange};
use crate::protocol::log_lines::{Counters, Peer};
use crate::protocol::partial::PartialLine;
use crate::protocol::preamble::take_proxy_header;
use crate::protocol::request::Request;
use crate::reactor::handler::{Context, Handler};
use crate::reactor::stats::{CloseReason, Stats};

/// The reply to an overlong line, written before closing.
const LINE_TOO_LONG: &[u8] = b"ERR line-too-long\n";
/// Written to a connection refused because the server is full.
const BYE_FULL: &[u8] = b"BYE full\n";
/// The server's probe after `probe_after` of silence.
const PROBE: &[u8] = b"PING\n";
/// Written to a connection whose PROXY header is missing or malformed.
const ERR_PROXY_HEADER: &[u8] = b"ERR proxy-header\n";
/// The reply to a `KEEPALIVE` without one DUR; the connection stays open.
const ERR_KEEPALIVE: &[u8] = b"ERR keepalive\n";
/// How long a PROXY header may take after accept, unless set otherwise.
const PROXY_TIMEOUT: Duration = Duration::from_secs(5);

/// vigil's heartbeat line protocol (`docs/protocol.md`), as a [`Handler`].
///
/// Each connection is a stream of lines (see [`LineCodec`]). `PING` is
/// answered `PONG`, `PING <payload>` is answered `PONG <payload>` byte for
/// byte, `PONG` and empty lines are heartbeats that get no reply, `QUIT` is
/// answered `BYE quit` and closes, `KEEPALIVE <dur>` declares the client's
/// keep-alive (see [`with_keepalive`](LineProtocol::with_keepalive)), and
/// any other line is echoed. A line
/// longer than [`max_line`](LineProtocol::max_line) is answered
/// `ERR line-too-long` and closes the connection, as soon as it is certain,
/// without waiting for its newline.
///
/// The reactor decides when a connection closes; this handler writes the
/// closing line: `BYE idle`, `BYE lifetime`, `BYE shutdown`, `BYE slow`,
/// `BYE flood`, and
/// `BYE full` for a connection refused at the limit. It sends `PING` when the
/// reactor probes a silent connection.
///
/// Per connection it keeps only a [`PartialLine`]: one pointer, and no heap
/// memory unless a line arrives in pieces. Answering a heartbeat allocates
/// nothing.
///
/// With [`with_proxy_protocol`](LineProtocol::with_proxy_protocol), every
/// connection must start with a PROXY protocol v1 or v2 header (what a load
/// balancer such as HAProxy sends ahead of the client's bytes); it is
/// consumed before the first line, and the client address it carries is
/// logged. A connection whose header is missing or malformed, or not
/// complete within [`proxy_timeout`](LineProtocol::with_proxy_timeout) of
/// accept, gets `ERR proxy-header` and is closed
/// ([`CloseReason::ProxyHeader`]); nothing it sent is answered.
///
/// Logging: one `debug` line per connection opened and closed, `trace` per
/// request, and one `info` line of counters per report
/// ([`Config::stats_interval`](crate::Config::stats_interval)).
///
/// # Examples
///
/// Serve the protocol on a free port, ping it, shut it down:
///
/// ```
/// use std::io::{BufRead, BufReader, Write};
/// use std::net::TcpStream;
/// use std::thread;
/// use vigil::{Config, LineProtocol, Reactor};
///
/// let mut reactor = Reactor::bind("127.0.0.1:0".parse()?, Config::default(), LineProtocol::new(1024))?;
/// let addr = reactor.local_addr()?;
/// let handle = reactor.shutdown_handle();
/// let server = thread::spawn(move || reactor.run());
///
/// let mut client = TcpStream::connect(addr)?;
/// client.write_all(b"PING 1\n")?;
/// let mut reader = BufReader::new(client);
/// let mut line = String::new();
/// reader.read_line(&mut line)?;
/// assert_eq!(line, "PONG 1\n");
///
/// handle.shutdown();
/// line.clear();
/// reader.read_line(&mut line)?;
/// assert_eq!(line, "BYE shutdown\n");
/// server.join().unwrap()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct LineProtocol {
    codec: LineCodec,
    lines: LineCounts,
    proxy_protocol: bool,
    proxy_timeout: Option<Duration>,
    keepalive: KeepaliveRange,
}

impl Default for LineProtocol {
    fn default() -> LineProtocol {
        LineProtocol::new(LineCodec::default().max_line())
    }
}

impl LineProtocol {
    /// The protocol with lines of at most `max_line` bytes (the newline and a
    /// `\r` before it not counted). The default is 1024.
    ///
    /// # Examples
    ///
    /// ```
    /// use vigil::LineProtocol;
    ///
    /// assert_eq!(LineProtocol::new(64).max_line(), 64);
    /// assert_eq!(LineProtocol::default().max_line(), 1024);
    /// ```
    pub fn new(max_line: usize) -> LineProtocol {
        LineProtocol {
            codec: LineCodec::new(max_line),
            lines: LineCounts::default(),
            proxy_protocol: false,
            proxy_timeout: Some(PROXY_TIMEOUT),
            keepalive: KeepaliveRange::default(),
        }
    }

    /// The protocol whose PROXY header (with
    /// [`with_proxy_protocol`](LineProtocol::with_proxy_protocol)) must be
    /// complete `timeout` after accept, or the connection gets
    /// `ERR proxy-header` and is closed. Until the header is complete only
    /// this deadline applies, not the idle timeout, and bytes trickled one
    /// at a time do not extend it. `None` or zero: no deadline of its own
    /// (the idle timeout applies). Default 5 s.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use vigil::LineProtocol;
    ///
    /// let protocol = LineProtocol::default()
    ///     .with_proxy_protocol(true)
    ///     .with_proxy_timeout(Some(Duration::from_secs(2)));
    /// assert_eq!(protocol.proxy_timeout(), Some(Duration::from_secs(2)));
    /// assert_eq!(LineProtocol::default().proxy_timeout(), Some(Duration::from_secs(5)));
    /// ```
    pub fn with_proxy_timeout(mut self, timeout: Option<Duration>) -> LineProtocol {
        self.proxy_timeout = timeout.filter(|t| !t.is_zero());
        self
    }

    /// How long after accept a PROXY header may take (`None`: no deadline).
    pub fn proxy_timeout(&self) -> Option<Duration> {
        self.proxy_timeout
    }

    /// The protocol whose clients may declare a keep-alive (`KEEPALIVE
    /// <dur>`, `docs/protocol.md`) between `min` and `max` (whole
    /// milliseconds; what is finer is dropped). A declared value is clamped
    /// into the range (`0` asks for none and gets `max`) and answered
    /// `KEEPALIVE <accepted>`; the connection is then closed after 1.5
    /// times the accepted interval of silence, in place of the idle timeout.
    /// Default `1s` to `10m`.
    ///
    /// # Panics
    ///
    /// `min` is longer than `max`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use vigil::LineProtocol;
    ///
    /// let protocol = LineProtocol::default()
    ///     .with_keepalive(Duration::from_millis(500), Duration::from_secs(60));
    /// assert_eq!(
    ///     protocol.keepalive(),
    ///     (Duration::from_millis(500), Duration::from_secs(60))
    /// );
    /// ```
    #[track_caller]
    pub fn with_keepalive(mut self, min: Duration, max: Duration) -> LineProtocol {
        self.keepalive = KeepaliveRange::new(min, max);
        self
    }

    /// The shortest and the longest keep-alive a client may declare.
    pub fn keepalive(&self) -> (Duration, Duration) {
        (self.keepalive.min(), self.keepalive.max())
    }

    /// The protocol expecting (`true`) or not a PROXY protocol header, v1
    /// or v2, at the start of every connection. Off by default.
    ///
    /// A connection then holds a small buffer (one allocation) from accept
    /// until its header is complete, usually its first read.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{BufRead, BufReader, Write};
    /// use std::net::TcpStream;
    /// use std::thread;
    /// use vigil::{Config, LineProtocol, Reactor};
    ///
    /// let protocol = LineProtocol::default().with_proxy_protocol(true);
    /// let mut reactor = Reactor::bind("127.0.0.1:0".parse()?, Config::default(), protocol)?;
    /// let addr = reactor.local_addr()?;
    /// let handle = reactor.shutdown_handle();
    /// let server = thread::spawn(move || reactor.run());
    ///
    /// let mut client = TcpStream::connect(addr)?;
    /// client.write_all(b"PROXY TCP4 192.0.2.1 127.0.0.1 56324 7373\r\nPING\n")?;
    /// let mut line = String::new();
    /// BufReader::new(&client).read_line(&mut line)?;
    /// assert_eq!(line, "PONG\n");
    ///
    /// let mut bare = TcpStream::connect(addr)?;
    /// bare.write_all(b"PING\n")?; // no header
    /// line.clear();
    /// BufReader::new(&bare).read_line(&mut line)?;
    /// assert_eq!(line, "ERR proxy-header\n");
    ///
    /// handle.shutdown();
    /// server.join().unwrap()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_proxy_protocol(mut self, on: bool) -> LineProtocol {
        self.proxy_protocol = on;
        self
    }

    /// The longest line accepted, in bytes.
    pub fn max_line(&self) -> usize {
        self.codec.max_line()
    }

    /// The lines read so far, by kind.
    pub fn lines(&self) -> &LineCounts {
        &self.lines
    }

    /// The label of a close `reason` in this protocol's words, as clients
    /// read them in the closing line: a slow reader is `slow` (`BYE slow`),
    /// a protocol error is `line-too-long` (`ERR line-too-long`, the only
    /// protocol error this protocol has); every other reason is
    /// [`CloseReason::as_str`].
    ///
    /// # Examples
    ///
    /// ```
    /// use vigil::{CloseReason, LineProtocol};
    ///
    /// assert_eq!(LineProtocol::close_label(CloseReason::SlowReader), "slow");
    /// assert_eq!(LineProtocol::close_label(CloseReason::ProtocolError), "line-too-long");
    /// assert_eq!(LineProtocol::close_label(CloseReason::Idle), "idle");
    /// ```
    pub fn close_label(reason: CloseReason) -> &'static str {
        match reason {
            CloseReason::SlowReader => "slow",
            CloseReason::ProtocolError => "line-too-long",
            other => other.as_str(),
        }
    }

    /// Whether connections start with a PROXY protocol header.
    pub fn proxy_protocol(&self) -> bool {
        self.proxy_protocol
    }

    /// Serves `data` as [`Handler::on_data`] does, but offers each whole
    /// line (without its newline and a `\r` before it) to `extra` first: a
    /// line for which it returns `true` is taken, and gets no reply from
    /// the line protocol. This is how a protocol built on this one adds
    /// requests without copying it (`examples/fanout.rs` adds `PUB`).
    ///
    /// # Examples
    ///
    /// ```
    /// use vigil::protocol::PartialLine;
    /// use vigil::{Context, Handler, LineProtocol};
    ///
    /// /// The line protocol plus `TIME`, answered with a fixed time.
    /// #[derive(Default)]
    /// struct WithTime(LineProtocol);
    ///
    /// impl Handler for WithTime {
    ///     type Conn = PartialLine;
    ///     fn on_data(&mut self, cx: &mut Context<'_>, partial: &mut PartialLine, data: &[u8]) {
    ///         self.0.on_data_with(cx, partial, data, |cx, line| {
    ///             let mine = line == b"TIME";
    ///             if mine {
    ///                 cx.write(b"TIME 12:00\n");
    ///             }
    ///             mine
    ///         });
    ///     }
    /// }
    /// ```
    pub fn on_data_with(
        &mut self,
        cx: &mut Context<'_>,
        partial: &mut PartialLine,
        data: &[u8],
        mut extra: impl FnMut(&mut Context<'_>, &[u8]) -> bool,
    ) {
        let data = if partial.preamble().is_some() {
            match take_proxy_header(cx, partial, data) {
                Some(rest) => rest,
                None => return,
            }
        } else {
            data
        };
        let lines = &mut self.lines;
        let keepalive = &self.keepalive;
        let decoded = self.codec.decode(partial, data, |line| {
            if extra(cx, line) {
                ControlFlow::Continue(())
            } else {
                answer(cx, lines, keepalive, line)
            }
        });
        if let Err(err) = decoded {
            log::debug!("connection {}: {err}", cx.id());
            cx.write(LINE_TOO_LONG);
            cx.close_protocol_error();
        }
    }
}

impl Handler for LineProtocol {
    type Conn = PartialLine;

    fn on_open(&mut self, cx: &mut Context<'_>, partial: &mut PartialLine) {
        if log::log_enabled!(log::Level::Debug) {
            let peer = Peer(cx.peer_addr());
            log::debug!("connection {} opened from {peer}", cx.id());
        }
        if self.proxy_protocol {
            partial.expect_preamble();
            cx.expect_proxy_header(self.proxy_timeout);
        }
    }

    fn on_data(&mut self, cx: &mut Context<'_>, partial: &mut PartialLine, data: &[u8]) {
        self.on_data_with(cx, partial, data, |_, _| false);
    }

    fn on_probe(&mut self, cx: &mut Context<'_>, _partial: &mut PartialLine) {
        log::trace!("connection {} probed", cx.id());
        cx.write(PROBE);
    }

    fn on_close(&mut self, cx: &mut Context<'_>, partial: &mut PartialLine, reason: CloseReason) {
        partial.clear();
        if let Some(line) = closing_line(reason) {
            cx.write(line);
        }
        if log::log_enabled!(log::Level::Debug) {
            let peer = Peer(cx.peer_addr());
            log::debug!("connection {} from {peer} closed: {reason}", cx.id());
        }
    }

    fn on_full(&mut self) -> &[u8] {
        BYE_FULL
    }

    fn on_stats(&mut self, stats: &Stats) {
        log::info!("{}", Counters(stats));
    }
}

/// Writes the reply to one request line; breaks after `QUIT`, whose
/// `BYE quit` must be the last line the client gets.
fn answer(
    cx: &mut Context<'_>,
    lines: &mut LineCounts,
    keepalive: &KeepaliveRange,
    line: &[u8],
) -> ControlFlow<()> {
    let request = Request::parse(line);
    log::trace!("connection {}: {request:?}", cx.id());
    match request {
        Request::Ping { .. } => lines.ping += 1,
        Request::Silent if line.is_empty() => lines.empty += 1,
        Request::Silent => lines.pong += 1,
        Request::Quit => lines.quit += 1,
        Request::Keepalive { .. } => lines.keepalive += 1,
        Request::Echo(_) => lines.other += 1,
    }
    match request {
        Request::Ping { rest } => {
            cx.write(b"PONG");
            cx.write(rest);
            cx.write(b"\n");
        }
        Request::Silent => {}
        Request::Quit => {
            cx.write(b"BYE quit\n");
            cx.close();
            return ControlFlow::Break(());
        }
        Request::Keepalive { rest } => {
            match rest.strip_prefix(b" ").and_then(|v| keepalive.accept(v)) {
                Some(ms) => {
                    // Reaped after 1.5 times the interval of silence; the
                    // context rounds it up to the tick. No timer work
                    // unless that is earlier than what is registered.
                    let interval = Duration::from_millis(ms);
                    cx.set_idle_timeout(Some(interval + interval / 2));
                    cx.write(keepalive::reply(ms, &mut [0; 40]));
                }
                None => cx.write(ERR_KEEPALIVE),
            }
        }
        Request::Echo(line) => {
            cx.write(line);
            cx.write(b"\n");
        }
    }
    ControlFlow::Continue(())
}

/// The line written when a connection closes for `reason`, if any. `Quit`
/// and `ProtocolError` have had theirs written with the reply; a peer that
/// closed or failed gets nothing; `Full` connections never reach here.
fn closing_line(reason: CloseReason) -> Option<&'static [u8]> {
    match reason {
        CloseReason::Idle => Some(b"BYE idle\n"),
        CloseReason::Lifetime => Some(b"BYE lifetime\n"),
        CloseReason::Shutdown => Some(b"BYE shutdown\n"),
        CloseReason::SlowReader => Some(b"BYE slow\n"),
        CloseReason::Full => Some(BYE_FULL),
        CloseReason::ProxyHeader => Some(ERR_PROXY_HEADER),
        CloseReason::Flood => Some(b"BYE flood\n"),
        CloseReason::Quit
        | CloseReason::ProtocolError
        | CloseReason::PeerClosed
        | CloseReason::Reset
        | CloseReason::Io => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_that_tells_the_peer_has_a_bye_line() {
        let lines: Vec<_> = CloseReason::ALL.iter().map(|&r| closing_line(r)).collect();
        assert_eq!(
            lines,
            [
                Some(&b"BYE idle\n"[..]),
                Some(b"BYE lifetime\n"),
                None,
                None,
                Some(b"BYE shutdown\n"),
                Some(b"BYE full\n"),
                Some(b"BYE slow\n"),
                None,
                None,
                None,
                Some(b"ERR proxy-header\n"),
                Some(b"BYE flood\n"),
            ]
        );
    }
}
