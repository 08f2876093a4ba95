//! [`LineProtocol`]: the heartbeat protocol as a [`Handler`].

use std::fmt;
use std::ops::ControlFlow;

use crate::protocol::codec::{LineCodec, PartialLine};
use crate::protocol::counts::LineCounts;
use crate::protocol::request::Request;
use crate::{CloseReason, Context, Handler, Stats};

/// The reply to an overlong line, written before closing.
const LINE_TOO_LONG: &[u8] = b"ERR line-too-long\n";
/// Written to a connection refused because the server is full.
const BYE_FULL: &[u8] = b"BYE full\n";
/// The server's probe after `probe_after` of silence.
const PROBE: &[u8] = b"PING\n";

/// vigil's heartbeat line protocol (`docs/protocol.md`), as a [`Handler`].
///
/// Each connection is a stream of lines (see [`LineCodec`]). `PING` is
/// answered `PONG`, `PING <payload>` is answered `PONG <payload>` byte for
/// byte, `PONG` and empty lines are heartbeats that get no reply, `QUIT` is
/// answered `BYE quit` and closes, and any other line is echoed. A line
/// longer than [`max_line`](LineProtocol::max_line) is answered
/// `ERR line-too-long` and closes the connection, as soon as it is certain,
/// without waiting for its newline.
///
/// The reactor decides when a connection closes; this handler writes the
/// closing line: `BYE idle`, `BYE lifetime`, `BYE shutdown`, `BYE slow`, and
/// `BYE full` for a connection refused at the limit. It sends `PING` when the
/// reactor probes a silent connection.
///
/// Per connection it keeps only a [`PartialLine`]: one pointer, and no heap
/// memory unless a line arrives in pieces. Answering a heartbeat allocates
/// nothing.
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
#[derive(Debug, Clone, Default)]
pub struct LineProtocol {
    codec: LineCodec,
    lines: LineCounts,
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
        }
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
}

impl Handler for LineProtocol {
    type Conn = PartialLine;

    fn on_open(&mut self, cx: &mut Context<'_>, _partial: &mut PartialLine) {
        log::debug!("connection {} opened", cx.id());
    }

    fn on_data(&mut self, cx: &mut Context<'_>, partial: &mut PartialLine, data: &[u8]) {
        let lines = &mut self.lines;
        let decoded = self
            .codec
            .decode(partial, data, |line| answer(cx, lines, line));
        if let Err(err) = decoded {
            log::debug!("connection {}: {err}", cx.id());
            cx.write(LINE_TOO_LONG);
            cx.close_protocol_error();
        }
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
        log::debug!("connection {} closed: {reason}", cx.id());
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
fn answer(cx: &mut Context<'_>, lines: &mut LineCounts, line: &[u8]) -> ControlFlow<()> {
    let request = Request::parse(line);
    log::trace!("connection {}: {request:?}", cx.id());
    match request {
        Request::Ping { .. } => lines.ping += 1,
        Request::Silent if line.is_empty() => lines.empty += 1,
        Request::Silent => lines.pong += 1,
        Request::Quit => lines.quit += 1,
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
        CloseReason::Quit
        | CloseReason::ProtocolError
        | CloseReason::PeerClosed
        | CloseReason::Reset
        | CloseReason::Io => None,
    }
}

/// The periodic counters line: `open 3 (peak 10), accepted 12, closed 9
/// (idle 7, quit 2)`.
struct Counters<'a>(&'a Stats);

impl fmt::Display for Counters<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stats = self.0;
        write!(
            f,
            "open {} (peak {}), accepted {}, closed {}",
            stats.open,
            stats.peak_open,
            stats.accepted,
            stats.closed_total()
        )?;
        let mut separator = " (";
        for reason in CloseReason::ALL {
            let count = stats.closed(reason);
            if count > 0 {
                write!(f, "{separator}{reason} {count}")?;
                separator = ", ";
            }
        }
        if separator == ", " {
            f.write_str(")")?;
        }
        Ok(())
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
            ]
        );
    }

    #[test]
    fn counters_line_names_only_reasons_seen() {
        let mut stats = Stats::default();
        assert_eq!(
            Counters(&stats).to_string(),
            "open 0 (peak 0), accepted 0, closed 0"
        );
        stats.accepted = 12;
        stats.open = 3;
        stats.peak_open = 10;
        for reason in [CloseReason::Idle, CloseReason::Quit, CloseReason::Idle] {
            stats.count_close(reason);
        }
        assert_eq!(
            Counters(&stats).to_string(),
            "open 3 (peak 10), accepted 12, closed 3 (idle 2, quit 1)"
        );
    }
}
