//! The connection pool: non-blocking connects, edge-triggered reads drained
//! until `WouldBlock` into one shared buffer, split into lines by the
//! crate's [`LineCodec`] (in place, without a copy for whole lines) and read
//! as [`Reply`]s.
//!
//! Connections are numbered in the order they were opened and keep their
//! number after they close (the socket is dropped, the slot stays), so
//! scenarios can index their own per-connection data with it.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use std::ops::ControlFlow;

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, Protocol, Socket, Type};

use crate::protocol::codec::LineCodec;
use crate::protocol::partial::PartialLine;
use crate::protocol::reply::Reply;

/// `EMFILE`: this process has no file descriptor left.
const EMFILE: i32 = 24;
/// `ENFILE`: the whole system has no file left.
const ENFILE: i32 = 23;
/// `EINPROGRESS`: a non-blocking connect has started.
const EINPROGRESS: i32 = 115;
/// Size of the shared read buffer.
const READ_BUF: usize = 64 * 1024;
/// The longest server line taken: far more than any reply (the longest is
/// an echo of a line the server itself accepted).
const MAX_REPLY: usize = 64 * 1024;

/// Something that happened to a connection, with the time it was seen.
#[derive(Debug, Clone, Copy)]
pub enum Ev {
    /// The connect completed. As handed to a scenario's handler, the time
    /// is the one taken just before the opener sent the first `PING`.
    Connected(usize, Instant),
    /// The connect failed (refused, reset, timed out), with the socket's
    /// error.
    ConnectFailed(usize, ErrorKind),
    /// A line arrived.
    Msg(usize, Reply, Instant),
    /// The server closed the connection: end of stream (`None`) or the read
    /// error (a reset).
    Closed(usize, Instant, Option<ErrorKind>),
    /// A line of the fan-out example (`MSG <text>` or `OK <n>`), only from a
    /// pool made with [`Pool::read_fan_lines`].
    Fan(usize, Fan, Instant),
}

/// A line of the fan-out example, as the `fanout` scenario reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fan {
    /// `MSG <text>`: the number the text starts with (its first word), if it
    /// is one.
    Msg(Option<u64>),
    /// `OK <n>`: the recipients the server counted, if a number.
    Ok(Option<u64>),
}

impl Fan {
    /// Reads `MSG <text>` or `OK <n>`; `None` for any other line.
    pub fn parse(line: &[u8]) -> Option<Fan> {
        let number = |b: &[u8]| {
            let end = b.iter().position(|&c| c == b' ').unwrap_or(b.len());
            std::str::from_utf8(&b[..end]).ok()?.parse().ok()
        };
        if let Some(text) = line.strip_prefix(b"MSG ") {
            Some(Fan::Msg(number(text)))
        } else {
            line.strip_prefix(b"OK ").map(|n| Fan::Ok(number(n)))
        }
    }
}

/// Why [`Pool::connect`] could not even start a connect.
#[derive(Debug)]
pub enum ConnectError {
    /// This process is out of file descriptors (`EMFILE`/`ENFILE`).
    FdLimit,
    /// Anything else (e.g. no ephemeral port left).
    Other(io::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Connecting,
    Open,
    Closed,
}

struct Conn {
    stream: Option<TcpStream>,
    state: State,
    /// Bytes of a line not yet ended (empty, so unallocated, almost always).
    partial: PartialLine,
    /// Bytes the socket would not take yet (empty almost always).
    out: Vec<u8>,
}

/// Many client connections to one server address, driven by one mio `Poll`.
pub struct Pool {
    poll: Poll,
    events: Events,
    conns: Vec<Conn>,
    buf: Box<[u8]>,
    codec: LineCodec,
    /// The ready connections of one poll (kept to reuse its allocation).
    ready: Vec<(usize, bool)>,
    addr: SocketAddr,
    /// Source addresses to bind before connecting, round robin; empty: no
    /// bind.
    sources: Vec<SocketAddr>,
    /// Sent to each connection once it is established (empty: nothing).
    greeting: Vec<u8>,
    /// Connects started and not finished.
    pub pending: usize,
    /// Connections established and not closed.
    pub open: usize,
    /// Whether `MSG` and `OK` lines come as [`Ev::Fan`].
    fan_lines: bool,
    /// Server addresses that connections from [`Pool::spread_over`]'s
    /// first number on go to, round robin (empty: all go to `addr`).
    spread: Vec<SocketAddr>,
    spread_from: usize,
}

impl Pool {
    /// A pool of connections to `addr`, from source addresses 127.0.0.1 to
    /// 127.0.0.`sources` (with 1: from whatever the kernel picks).
    ///
    /// # Errors
    ///
    /// Several sources for a server that is not on a 127.x address (the
    /// sources could not reach it), or no poll.
    pub fn new(addr: SocketAddr, sources: u8) -> io::Result<Pool> {
        let sources = if sources > 1 {
            if !matches!(addr, SocketAddr::V4(a) if a.ip().is_loopback()) {
                return Err(io::Error::new(
                    ErrorKind::InvalidInput,
                    format!("--sources {sources} needs a server on 127.x, not {addr}"),
                ));
            }
            (1..=sources)
                .map(|i| SocketAddr::from((Ipv4Addr::new(127, 0, 0, i), 0)))
                .collect()
        } else {
            Vec::new()
        };
        Ok(Pool {
            poll: Poll::new()?,
            events: Events::with_capacity(1024),
            conns: Vec::new(),
            buf: vec![0; READ_BUF].into_boxed_slice(),
            codec: LineCodec::new(MAX_REPLY),
            ready: Vec::with_capacity(1024),
            addr,
            sources,
            greeting: Vec::new(),
            pending: 0,
            open: 0,
            fan_lines: false,
            spread: Vec::new(),
            spread_from: 0,
        })
    }

    /// Connections numbered `from` and later go to `addrs` round robin
    /// (the first to `addrs[0]`), the earlier ones to the pool's address.
    ///
    /// # Errors
    ///
    /// An address off 127.x while the pool has several source addresses.
    pub fn spread_over(&mut self, from: usize, addrs: Vec<SocketAddr>) -> io::Result<()> {
        if !self.sources.is_empty() {
            if let Some(a) = addrs
                .iter()
                .find(|a| !matches!(a, SocketAddr::V4(a) if a.ip().is_loopback()))
            {
                return Err(io::Error::new(
                    ErrorKind::InvalidInput,
                    format!("several sources need servers on 127.x, not {a}"),
                ));
            }
        }
        self.spread = addrs;
        self.spread_from = from;
        Ok(())
    }

    /// The server address of connection `key`.
    fn addr_of(&self, key: usize) -> SocketAddr {
        match key.checked_sub(self.spread_from) {
            Some(i) if !self.spread.is_empty() => self.spread[i % self.spread.len()],
            _ => self.addr,
        }
    }

    /// From now on, hands `MSG <text>` and `OK <n>` lines over as
    /// [`Ev::Fan`] rather than as [`Ev::Msg`] with [`Reply::Other`].
    pub fn read_fan_lines(&mut self) {
        self.fan_lines = true;
    }

    /// Starts a non-blocking connect; its number on success.
    pub fn connect(&mut self) -> Result<usize, ConnectError> {
        let key = self.conns.len();
        let addr = self.addr_of(key);
        let mut stream = match self.sources.get(key % self.sources.len().max(1)) {
            Some(&source) => connect_from(source, addr),
            None => TcpStream::connect(addr),
        }
        .map_err(classify)?;
        self.poll
            .registry()
            .register(
                &mut stream,
                Token(key),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(classify)?;
        self.conns.push(Conn {
            stream: Some(stream),
            state: State::Connecting,
            partial: PartialLine::default(),
            out: Vec::new(),
        });
        self.pending += 1;
        Ok(key)
    }

    /// Sends `bytes` (e.g. `KEEPALIVE 5s\n`) to each connection as soon as
    /// it is established, before anything a scenario sends.
    pub fn set_greeting(&mut self, bytes: &[u8]) {
        self.greeting = bytes.to_vec();
    }

    /// Connections ever started (the next number).
    pub fn len(&self) -> usize {
        self.conns.len()
    }

    /// Whether connection `key` is established and not closed.
    pub fn is_open(&self, key: usize) -> bool {
        self.conns.get(key).is_some_and(|c| c.state == State::Open)
    }

    /// Writes `bytes` to connection `key` (queued if the socket is full).
    /// Returns false if the connection is not open or the write failed.
    pub fn send(&mut self, key: usize, bytes: &[u8]) -> bool {
        let Some(conn) = self.conns.get_mut(key) else {
            return false;
        };
        if conn.state != State::Open {
            return false;
        }
        if !conn.out.is_empty() {
            conn.out.extend_from_slice(bytes);
            return true;
        }
        let stream = conn
            .stream
            .as_mut()
            .expect("open connections have a socket");
        let mut done = 0;
        while done < bytes.len() {
            match stream.write(&bytes[done..]) {
                Ok(n) => done += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        conn.out.extend_from_slice(&bytes[done..]);
        true
    }

    /// Closes connection `key` from this side.
    pub fn close(&mut self, key: usize) {
        if let Some(conn) = self.conns.get_mut(key) {
            match conn.state {
                State::Connecting => self.pending -= 1,
                State::Open => self.open -= 1,
                State::Closed => return,
            }
            conn.state = State::Closed;
            conn.stream = None;
            conn.partial = PartialLine::default();
            conn.out = Vec::new();
        }
    }

    /// Gives up every connect still pending; their numbers.
    pub fn abandon_pending(&mut self) -> Vec<usize> {
        let keys: Vec<usize> = (0..self.conns.len())
            .filter(|&k| self.conns[k].state == State::Connecting)
            .collect();
        for &k in &keys {
            self.close(k);
        }
        keys
    }

    /// Closes every connection.
    pub fn close_all(&mut self) {
        for k in 0..self.conns.len() {
            self.close(k);
        }
    }

    /// Reads what connection `key` has now, without waiting for its turn
    /// in the poll (e.g. a publisher's `OK` behind thousands of ready
    /// subscribers); appends what happened to `out`.
    pub fn read_now(&mut self, key: usize, out: &mut Vec<Ev>) {
        if self.is_open(key) {
            self.read(key, out);
        }
    }

    /// Waits up to `timeout` for readiness and appends what happened to `out`.
    pub fn poll(&mut self, timeout: Option<Duration>, out: &mut Vec<Ev>) -> io::Result<()> {
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        let mut ready = std::mem::take(&mut self.ready);
        ready.extend(self.events.iter().map(|e| (e.token().0, e.is_writable())));
        for &(key, writable) in &ready {
            self.ready(key, writable, out);
        }
        ready.clear();
        self.ready = ready;
        Ok(())
    }

    fn ready(&mut self, key: usize, writable: bool, out: &mut Vec<Ev>) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        match conn.state {
            State::Closed => return,
            State::Connecting => {
                let stream = conn.stream.as_ref().expect("connecting has a socket");
                let failed = match stream.take_error() {
                    Ok(None) => None,
                    Ok(Some(e)) | Err(e) => Some(e.kind()),
                };
                if let Some(kind) = failed {
                    self.close(key);
                    out.push(Ev::ConnectFailed(key, kind));
                    return;
                }
                match stream.peer_addr() {
                    Ok(_) => {
                        conn.state = State::Open;
                        self.pending -= 1;
                        self.open += 1;
                        if !self.greeting.is_empty() {
                            let greeting = std::mem::take(&mut self.greeting);
                            self.send(key, &greeting);
                            self.greeting = greeting;
                        }
                        out.push(Ev::Connected(key, Instant::now()));
                    }
                    Err(e) if e.kind() == ErrorKind::NotConnected => return,
                    Err(e) => {
                        self.close(key);
                        out.push(Ev::ConnectFailed(key, e.kind()));
                        return;
                    }
                }
            }
            State::Open => {
                if writable {
                    self.flush(key);
                }
            }
        }
        // Edge-triggered: always drain (a just-connected socket may already
        // hold `BYE full`).
        self.read(key, out);
    }

    fn flush(&mut self, key: usize) {
        let conn = &mut self.conns[key];
        let Some(stream) = conn.stream.as_mut() else {
            return;
        };
        let mut done = 0;
        while done < conn.out.len() {
            match stream.write(&conn.out[done..]) {
                Ok(n) => done += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        conn.out.drain(..done);
    }

    fn read(&mut self, key: usize, out: &mut Vec<Ev>) {
        let fan_lines = self.fan_lines;
        let error = loop {
            let conn = &mut self.conns[key];
            let Some(stream) = conn.stream.as_mut() else {
                return;
            };
            match stream.read(&mut self.buf) {
                Ok(0) => break None,
                Ok(n) => {
                    let at = Instant::now();
                    let decoded = self
                        .codec
                        .decode(&mut conn.partial, &self.buf[..n], |line| {
                            match Fan::parse(line).filter(|_| fan_lines) {
                                Some(fan) => out.push(Ev::Fan(key, fan, at)),
                                None => out.push(Ev::Msg(key, Reply::parse(line), at)),
                            }
                            ControlFlow::Continue(())
                        });
                    // A line longer than any reply: not a vigil server.
                    if decoded.is_err() {
                        break Some(ErrorKind::InvalidData);
                    }
                    // Fan-out runs read ~20,000 sockets per message: a
                    // short read drained the socket (new data or an EOF
                    // brings a new edge), so spare the read that would
                    // only say `WouldBlock`.
                    if fan_lines && n < self.buf.len() {
                        return;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => break Some(e.kind()),
            }
        };
        // End of stream or an error: the server closed it.
        self.close(key);
        out.push(Ev::Closed(key, Instant::now(), error));
    }
}

/// Starts a non-blocking connect to `addr` from `source` (port 0: each
/// source address has its own ephemeral ports).
///
/// The socket closes with a reset (`SO_LINGER` 0), leaving no `TIME_WAIT`
/// behind: a bind before connect cannot pick a port that a socket in
/// `TIME_WAIT` still holds on that address, whatever the server port (an
/// unbound connect can), so a few runs of 19,000 connections would use up a
/// source address's ports for a minute.
fn connect_from(source: SocketAddr, addr: SocketAddr) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    socket.set_linger(Some(Duration::ZERO))?;
    socket.bind(&source.into())?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(socket.into()))
}

fn classify(e: io::Error) -> ConnectError {
    match e.raw_os_error() {
        Some(EMFILE) | Some(ENFILE) => ConnectError::FdLimit,
        _ => ConnectError::Other(e),
    }
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;
