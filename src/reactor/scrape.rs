//! The metrics listener: `GET /metrics` over HTTP/1.1, served by the
//! reactor's own loop (one more source in its `Poll`; no thread).
//!
//! # Bounds
//!
//! A scrape must never stall the loop or hold memory: a request is at most
//! [`ScrapeConfig::max_request`] bytes, a connection lives at most
//! [`ScrapeConfig::timeout`] from accept (a slow or silent scraper is
//! closed), at most [`ScrapeConfig::max_connections`] are open at once (the
//! next ones wait in the listener's backlog, which the kernel bounds, until
//! one closes), and every connection gets one response and
//! `Connection: close`. Scrape connections are not heartbeat
//! connections: they are not in the timer wheel, the connection counters or
//! `max_connections`.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use slab::Slab;

use crate::reactor::accept::{Acceptor, Retry, Take};
use crate::reactor::loop_stats::ReactorMetrics;
use crate::reactor::token::{scrape_slot, scrape_token, METRICS_LISTENER, SCRAPE_SLOTS};

/// The `Content-Type` of the Prometheus text exposition format, version
/// 0.0.4: what Prometheus expects from a `/metrics` endpoint.
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What renders the metrics text for one scrape: the reactor's counters,
/// the handler (for its own counters), and the body to append to.
pub(crate) type Render<H> = Box<dyn FnMut(&ReactorMetrics, &H, &mut String) + Send>;

/// Settings of the metrics listener
/// ([`Reactor::serve_metrics`](crate::Reactor::serve_metrics)).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let mut config = vigil::ScrapeConfig::default();
/// config.timeout = Duration::from_secs(2);
/// assert_eq!(config.path, "/metrics");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScrapeConfig {
    /// The longest a scrape connection stays open from accept, request and
    /// response together. Default 5 s.
    pub timeout: Duration,
    /// Scrape connections open at once, at most (capped at 64). Default 16.
    pub max_connections: usize,
    /// The longest request (request line and headers) in bytes; a longer
    /// one is answered `431`. Default 8 KiB.
    pub max_request: usize,
    /// The one path served; any other is `404`. Default `/metrics`.
    pub path: String,
    /// The response's `Content-Type`. Default [`PROMETHEUS_TEXT`].
    pub content_type: String,
}

impl Default for ScrapeConfig {
    fn default() -> ScrapeConfig {
        ScrapeConfig {
            timeout: Duration::from_secs(5),
            max_connections: 16,
            max_request: 8 * 1024,
            path: "/metrics".to_owned(),
            content_type: PROMETHEUS_TEXT.to_owned(),
        }
    }
}

/// The metrics listener and its connections.
pub(crate) struct Scrape<H> {
    /// The listener, with the heartbeat listener's pause and recovery.
    acceptor: Acceptor,
    conns: Slab<ScrapeConn>,
    next_generation: u32,
    config: ScrapeConfig,
    render: Render<H>,
    /// The body being rendered; kept to reuse its allocation.
    body: String,
    /// Requests answered, by any status.
    pub(crate) answered: u64,
}

impl<H> std::fmt::Debug for Scrape<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrape")
            .field("acceptor", &self.acceptor)
            .field("open", &self.conns.len())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

struct ScrapeConn {
    stream: TcpStream,
    generation: u32,
    deadline: Instant,
    request: Vec<u8>,
    /// The response once the request is read; `written` bytes of it sent.
    response: Option<Vec<u8>>,
    written: usize,
}

/// A request's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// `GET` (or `HEAD`, body left out) of the served path.
    Metrics { head: bool },
    /// An error status.
    Status(u16),
}

impl<H> Scrape<H> {
    pub(crate) fn new(
        mut listener: TcpListener,
        mut config: ScrapeConfig,
        render: Render<H>,
        registry: &Registry,
    ) -> io::Result<Scrape<H>> {
        config.max_connections = config.max_connections.clamp(1, SCRAPE_SLOTS);
        registry.register(&mut listener, METRICS_LISTENER, Interest::READABLE)?;
        Ok(Scrape {
            acceptor: Acceptor::new(listener, "metrics listener: "),
            conns: Slab::new(),
            next_generation: 0,
            config,
            render,
            body: String::new(),
            answered: 0,
        })
    }

    pub(crate) fn open(&self) -> usize {
        self.conns.len()
    }

    /// The metrics listener's readiness event: takes waiting scrapers.
    pub(super) fn on_ready(&mut self, registry: &Registry, now: Instant, retry: Retry) {
        self.acceptor.on_ready();
        self.accept(registry, now, retry);
    }

    /// Takes waiting scrapers up to the limit; the rest stay in the backlog
    /// (the listener stays marked ready for them). Accepting pauses as the
    /// heartbeat listener's does when descriptors run out.
    fn accept(&mut self, registry: &Registry, now: Instant, retry: Retry) {
        while self.conns.len() < self.config.max_connections {
            let open = self.conns.len() as u64;
            let mut stream = match self.acceptor.take(retry, || open) {
                Take::Conn(stream) => stream,
                Take::Skipped => continue,
                Take::Nothing | Take::Paused => return,
            };
            let generation = self.next_generation;
            self.next_generation = generation.wrapping_add(1);
            let entry = self.conns.vacant_entry();
            let token = scrape_token(entry.key(), generation);
            if registry
                .register(&mut stream, token, Interest::READABLE)
                .is_err()
            {
                continue;
            }
            entry.insert(ScrapeConn {
                stream,
                generation,
                deadline: now + self.config.timeout,
                request: Vec::new(),
                response: None,
                written: 0,
            });
        }
    }

    /// Reads the request or writes the response of the scrape connection
    /// `token` names; stale tokens are ignored.
    pub(crate) fn on_event(
        &mut self,
        registry: &Registry,
        token: Token,
        event: &Event,
        metrics: impl FnOnce() -> ReactorMetrics,
        handler: &H,
    ) {
        let Some((slot, generation)) = scrape_slot(token) else {
            return;
        };
        let open = self.conns.len() as u64;
        let Some(conn) = self
            .conns
            .get_mut(slot)
            .filter(|c| c.generation == generation)
        else {
            return;
        };
        if conn.response.is_none() && (event.is_readable() || event.is_read_closed()) {
            match read_request(conn, self.config.max_request, &self.config.path) {
                Ok(Some(answer)) => {
                    let response = match answer {
                        Answer::Metrics { head } => {
                            let mut snapshot = metrics();
                            snapshot.scrapes_open = open;
                            snapshot.scrapes = self.answered;
                            self.body.clear();
                            (self.render)(&snapshot, handler, &mut self.body);
                            ok_response(&self.body, head, &self.config)
                        }
                        Answer::Status(code) => status_response(code),
                    };
                    self.answered += 1;
                    conn.response = Some(response);
                }
                Ok(None) => return,
                Err(()) => return self.close(slot),
            }
        }
        match write_response(conn) {
            Ok(true) => self.close(slot),
            Ok(false) if event.is_writable() => {}
            Ok(false) => {
                let token = scrape_token(slot, conn.generation);
                let interest = Interest::READABLE | Interest::WRITABLE;
                if registry
                    .reregister(&mut conn.stream, token, interest)
                    .is_err()
                {
                    self.close(slot);
                }
            }
            Err(()) => self.close(slot),
        }
    }

    /// Accepts scrapers left in the backlog (at the limit, or while
    /// accepting was paused) once a slot is free and the pause is over.
    pub(super) fn accept_backlog(
        &mut self,
        registry: &Registry,
        now: Instant,
        tick: u64,
        retry: Retry,
    ) {
        self.acceptor.resume_if_due(tick);
        if self.wants_turn() {
            self.accept(registry, now, retry);
        }
    }

    /// Scrapers wait in the backlog, a slot is free and accepting is not
    /// paused: the next poll must not sleep.
    pub(crate) fn wants_turn(&self) -> bool {
        self.acceptor.wants_turn() && self.conns.len() < self.config.max_connections
    }

    /// The tick a paused metrics listener tries again.
    pub(crate) fn paused_until(&self) -> Option<u64> {
        self.acceptor.paused_until()
    }

    /// The earliest deadline of an open scrape connection.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.conns.iter().map(|(_, c)| c.deadline).min()
    }

    /// Closes every scrape connection (the reactor is stopping).
    pub(crate) fn close_all(&mut self) {
        self.conns.clear();
    }

    /// Closes the scrape connections whose time is up.
    pub(crate) fn expire(&mut self, now: Instant) {
        let open = self.conns.len();
        self.conns.retain(|_, conn| {
            let keep = conn.deadline > now;
            if !keep {
                log::debug!("metrics listener: a scraper ran out of time");
            }
            keep
        });
        if self.conns.len() < open {
            self.acceptor.resume();
        }
    }

    fn close(&mut self, slot: usize) {
        let mut conn = self.conns.remove(slot);
        // A descriptor is free again (once `conn` drops): try the backlog.
        self.acceptor.resume();
        // Unread input would turn the close into a reset that can destroy
        // the response before the scraper reads it.
        let mut sink = [0; 512];
        for _ in 0..16 {
            match conn.stream.read(&mut sink) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
        let _ = conn.stream.shutdown(Shutdown::Write);
    }
}

/// Reads what the scraper sent. `Ok(Some)`: the request is complete (or
/// refused); `Ok(None)`: more to come; `Err`: the scraper left or failed.
fn read_request(conn: &mut ScrapeConn, max: usize, path: &str) -> Result<Option<Answer>, ()> {
    let mut buf = [0; 1024];
    loop {
        let room = max.saturating_sub(conn.request.len()).clamp(1, buf.len());
        match conn.stream.read(&mut buf[..room]) {
            Ok(0) => return Err(()),
            Ok(n) => conn.request.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(()),
        }
        if let Some(answer) = parse_request(&conn.request, max, path) {
            return Ok(Some(answer));
        }
    }
    Ok(parse_request(&conn.request, max, path))
}

/// Writes what is left of the response; `Ok(true)` once all is written.
fn write_response(conn: &mut ScrapeConn) -> Result<bool, ()> {
    let Some(response) = &conn.response else {
        return Ok(false);
    };
    while conn.written < response.len() {
        match conn.stream.write(&response[conn.written..]) {
            Ok(0) => return Err(()),
            Ok(n) => conn.written += n,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(()),
        }
    }
    Ok(true)
}

/// Judges a request from its bytes so far: `None` while it may still turn
/// out well. The request line is judged as soon as it is complete; the
/// answer waits for the end of the headers.
fn parse_request(buf: &[u8], max: usize, path: &str) -> Option<Answer> {
    let Some(line_end) = buf.iter().position(|&b| b == b'\n') else {
        return (buf.len() >= max).then_some(Answer::Status(431));
    };
    let line = buf[..line_end]
        .strip_suffix(b"\r")
        .unwrap_or(&buf[..line_end]);
    let answer = judge_request_line(line, path);
    if matches!(answer, Answer::Status(_)) {
        return Some(answer);
    }
    let headers_end = find(buf, b"\r\n\r\n").is_some() || find(buf, b"\n\n").is_some();
    if headers_end {
        Some(answer)
    } else {
        (buf.len() >= max).then_some(Answer::Status(431))
    }
}

fn judge_request_line(line: &[u8], path: &str) -> Answer {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Answer::Status(400);
    };
    let is_token = !method.is_empty() && method.iter().all(u8::is_ascii_uppercase);
    let target_ok = target.first() == Some(&b'/') && target.iter().all(u8::is_ascii_graphic);
    if !is_token || !target_ok || !matches!(version, b"HTTP/1.0" | b"HTTP/1.1") {
        return Answer::Status(400);
    }
    let head = match method {
        b"GET" => false,
        b"HEAD" => true,
        _ => return Answer::Status(405),
    };
    let target_path = target.split(|&b| b == b'?').next().unwrap_or(target);
    if target_path == path.as_bytes() {
        Answer::Metrics { head }
    } else {
        Answer::Status(404)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn ok_response(body: &str, head: bool, config: &ScrapeConfig) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        config.content_type,
        body.len()
    )
    .into_bytes();
    if !head {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

fn status_response(code: u16) -> Vec<u8> {
    let reason = match code {
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Request Header Fields Too Large",
    };
    let body = format!("{code} {reason}\n");
    let allow = if code == 405 {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n{allow}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(request: &[u8]) -> Option<Answer> {
        parse_request(request, 64, "/metrics")
    }

    #[test]
    fn requests_and_their_answers() {
        let metrics = Some(Answer::Metrics { head: false });
        assert_eq!(answer(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), metrics);
        assert_eq!(answer(b"GET /metrics?x=1 HTTP/1.0\n\n"), metrics);
        assert_eq!(
            answer(b"HEAD /metrics HTTP/1.1\r\n\r\n"),
            Some(Answer::Metrics { head: true })
        );
        assert_eq!(answer(b"GET / HTTP/1.1\r\n\r\n"), Some(Answer::Status(404)));
        assert_eq!(
            answer(b"POST /metrics HTTP/1.1\r\n"),
            Some(Answer::Status(405))
        );
        assert_eq!(answer(b"GET /metrics\r\n"), Some(Answer::Status(400)));
        assert_eq!(
            answer(b"GET metrics HTTP/1.1\r\n"),
            Some(Answer::Status(400))
        );
        assert_eq!(
            answer(b"GET /metrics HTTP/2\r\n"),
            Some(Answer::Status(400))
        );
        assert_eq!(
            answer(b"get /metrics HTTP/1.1\r\n"),
            Some(Answer::Status(400))
        );
        assert_eq!(answer(b"\x16\x03\x01 junk\n"), Some(Answer::Status(400)));
    }

    #[test]
    fn incomplete_requests_wait_until_the_limit() {
        assert_eq!(answer(b"GET /metr"), None);
        assert_eq!(answer(b"GET /metrics HTTP/1.1\r\nHost: x\r\n"), None);
        assert_eq!(answer(&[b'G'; 64]), Some(Answer::Status(431)));
        let mut long = b"GET /metrics HTTP/1.1\r\n".to_vec();
        long.resize(64, b'x');
        assert_eq!(answer(&long), Some(Answer::Status(431)));
    }
}
