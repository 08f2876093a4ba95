//! The floor: the least any readiness-based server must do to answer the
//! heartbeat protocol's `PING`s, as a second baseline for the capacity
//! benchmark.
//!
//! One thread, one mio `Poll`: it accepts, registers each connection for
//! reading, and answers every `PING` line of a readable event with one read
//! and one write (a second read only when the first filled the buffer: a
//! short read means the socket is drained). No timers, no idle timeout, no
//! limits, no logging, no shutdown line: its other flags (`--idle-timeout`,
//! `--tick`, ...) are accepted and ignored. A connection whose answers do
//! not fit the socket at once is closed (the benchmark's clients never fill
//! it). It listens with vigil's backlog (4096). SIGTERM or SIGINT end it,
//! through a socket pair the loop polls.
//!
//! With `--fanout` it is also the floor of the fan-out example's `PUB
//! <text>`: every other connection gets `MSG <text>` with one `write` each,
//! in a loop over all of them, before the sender's `OK <n>` and before the
//! loop reads anything else: one system call per delivery, no queue, no
//! budget. A recipient whose socket does not take the whole line at once
//! is closed and not counted (the benchmark's subscribers keep reading).

use std::io::{self, ErrorKind, Read, Write};
use std::net::SocketAddr;

use std::ops::ControlFlow;

use mio::net::{TcpListener, TcpStream, UnixStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use socket2::{Domain, Socket, Type};
use vigil::protocol::{LineCodec, PartialLine, Request};

const LISTENER: Token = Token(usize::MAX);
const SIGNAL: Token = Token(usize::MAX - 1);
/// vigil's listen backlog (`BACKLOG` in `src/main.rs`).
const BACKLOG: i32 = 4096;
const READ_BUF: usize = 64 * 1024;

/// The floor's flags: `--listen ADDR`; any other `--flag VALUE` is ignored.
#[derive(Debug)]
pub struct Config {
    listen: SocketAddr,
    fanout: bool,
}

impl Config {
    /// Parses the flags the benchmark gives every server.
    pub fn parse(args: &[String]) -> Result<Config, String> {
        let mut listen = None;
        let mut fanout = false;
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            if flag == "--fanout" {
                fanout = true;
                continue;
            }
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            if flag == "--listen" {
                listen = Some(value.parse().map_err(|e| format!("--listen: {e}"))?);
            } else if !flag.starts_with("--") {
                return Err(format!("unexpected {flag}"));
            }
        }
        Ok(Config {
            listen: listen.ok_or("--listen is required")?,
            fanout,
        })
    }
}

/// One connection: its socket and the start of a line not yet ended
/// (empty, so unallocated, almost always).
struct Conn {
    stream: TcpStream,
    partial: PartialLine,
}

/// Serves until SIGTERM or SIGINT.
pub fn serve(cfg: Config) -> io::Result<()> {
    let fanout = cfg.fanout;
    let listener = bind(cfg)?;
    println!("floor: listening on {}", listener.local_addr()?);
    run(listener, fanout)
}

/// The listening socket of `cfg`, bound.
pub fn bind(cfg: Config) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(cfg.listen), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&cfg.listen.into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// Serves `listener` until SIGTERM or SIGINT, answering `PUB` too with
/// `fanout`.
pub fn run(mut listener: TcpListener, fanout: bool) -> io::Result<()> {
    let (rx, tx) = std::os::unix::net::UnixStream::pair()?;
    signal_hook::low_level::pipe::register(signal_hook::consts::SIGTERM, tx.try_clone()?)?;
    signal_hook::low_level::pipe::register(signal_hook::consts::SIGINT, tx)?;
    rx.set_nonblocking(true)?;
    let mut signals = UnixStream::from_std(rx);

    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    poll.registry()
        .register(&mut signals, SIGNAL, Interest::READABLE)?;

    let mut events = Events::with_capacity(1024);
    let mut conns: Slab<Conn> = Slab::new();
    let mut buf = vec![0u8; READ_BUF];
    let mut out = Vec::with_capacity(READ_BUF);
    let mut fan = Fan {
        on: fanout,
        line: Vec::new(),
        failed: Vec::new(),
    };
    loop {
        match poll.poll(&mut events, None) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for event in &events {
            match event.token() {
                SIGNAL => return Ok(()),
                LISTENER => accept(&poll, &mut listener, &mut conns),
                Token(key) => {
                    if !conns.contains(key) {
                        continue;
                    }
                    if !answer(&mut conns, key, &mut buf, &mut out, &mut fan) {
                        fan.failed.push(key);
                    }
                    for key in fan.failed.drain(..) {
                        if let Some(mut conn) = conns.try_remove(key) {
                            let _ = poll.registry().deregister(&mut conn.stream);
                        }
                    }
                }
            }
        }
    }
}

/// Accepts every waiting connection (edge-triggered: until `WouldBlock`).
fn accept(poll: &Poll, listener: &mut TcpListener, conns: &mut Slab<Conn>) {
    loop {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let entry = conns.vacant_entry();
                let token = Token(entry.key());
                if poll
                    .registry()
                    .register(&mut stream, token, Interest::READABLE)
                    .is_ok()
                {
                    entry.insert(Conn {
                        stream,
                        partial: PartialLine::default(),
                    });
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            // `WouldBlock`, or out of files: the next connection's edge
            // brings the loop back.
            Err(_) => return,
        }
    }
}

/// The fan-out mode: whether it is on, the `MSG` line being sent, and the
/// recipients that could not take it (closed after the event).
struct Fan {
    on: bool,
    line: Vec<u8>,
    failed: Vec<usize>,
}

/// Reads what arrived on connection `key` and answers its `PING`s in one
/// write (carrying out each `PUB` in fan-out mode as it comes); false when
/// the connection is over.
fn answer(
    conns: &mut Slab<Conn>,
    key: usize,
    buf: &mut [u8],
    out: &mut Vec<u8>,
    fan: &mut Fan,
) -> bool {
    // The floor takes lines as long as its read buffer.
    let codec = LineCodec::new(READ_BUF);
    out.clear();
    let mut partial = std::mem::take(&mut conns[key].partial);
    let more = loop {
        let n = match conns[key].stream.read(buf) {
            Ok(0) => break false,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break true,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => break false,
        };
        let framed = codec.decode(&mut partial, &buf[..n], |line| {
            if let Some(text) = pub_text(line).filter(|_| fan.on) {
                let n = publish(conns, key, text, fan);
                out.extend_from_slice(format!("OK {n}\n").as_bytes());
            } else if let Request::Ping { rest } = Request::parse(line) {
                out.extend_from_slice(b"PONG");
                out.extend_from_slice(rest);
                out.push(b'\n');
            }
            ControlFlow::Continue(())
        });
        if framed.is_err() {
            break false;
        }
        if n < buf.len() {
            break true;
        }
    };
    let conn = &mut conns[key];
    conn.partial = partial;
    more && (out.is_empty() || matches!(conn.stream.write(out), Ok(n) if n == out.len()))
}

/// The text of `PUB <text>` (or of a bare `PUB`: empty).
fn pub_text(line: &[u8]) -> Option<&[u8]> {
    match line.strip_prefix(b"PUB") {
        Some([]) => Some(&[]),
        Some([b' ', text @ ..]) => Some(text),
        _ => None,
    }
}

/// Writes `MSG <text>` to every connection but `from`, one `write` each;
/// the number that took the whole line.
fn publish(conns: &mut Slab<Conn>, from: usize, text: &[u8], fan: &mut Fan) -> u64 {
    fan.line.clear();
    fan.line.extend_from_slice(b"MSG ");
    fan.line.extend_from_slice(text);
    fan.line.push(b'\n');
    let mut n = 0;
    for (key, conn) in conns.iter_mut() {
        if key == from || fan.failed.contains(&key) {
            continue;
        }
        match conn.stream.write(&fan.line) {
            Ok(w) if w == fan.line.len() => n += 1,
            _ => fan.failed.push(key),
        }
    }
    n
}
