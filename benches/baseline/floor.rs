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
}

impl Config {
    /// Parses the flags the benchmark gives every server.
    pub fn parse(args: &[String]) -> Result<Config, String> {
        let mut listen = None;
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
            if flag == "--listen" {
                listen = Some(value.parse().map_err(|e| format!("--listen: {e}"))?);
            } else if !flag.starts_with("--") {
                return Err(format!("unexpected {flag}"));
            }
        }
        Ok(Config {
            listen: listen.ok_or("--listen is required")?,
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
    let socket = Socket::new(Domain::for_address(cfg.listen), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&cfg.listen.into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    let mut listener = TcpListener::from_std(socket.into());
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
    println!("floor: listening on {}", listener.local_addr()?);

    let mut events = Events::with_capacity(1024);
    let mut conns: Slab<Conn> = Slab::new();
    let mut buf = vec![0u8; READ_BUF];
    let mut out = Vec::with_capacity(READ_BUF);
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
                    let Some(conn) = conns.get_mut(key) else {
                        continue;
                    };
                    if !answer(conn, &mut buf, &mut out) {
                        let mut conn = conns.remove(key);
                        let _ = poll.registry().deregister(&mut conn.stream);
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

/// Reads what arrived and answers its `PING`s in one write; false when the
/// connection is over.
fn answer(conn: &mut Conn, buf: &mut [u8], out: &mut Vec<u8>) -> bool {
    // The floor takes lines as long as its read buffer.
    let codec = LineCodec::new(READ_BUF);
    out.clear();
    loop {
        let n = match conn.stream.read(buf) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return false,
        };
        let framed = codec.decode(&mut conn.partial, &buf[..n], |line| {
            if let Request::Ping { rest } = Request::parse(line) {
                out.extend_from_slice(b"PONG");
                out.extend_from_slice(rest);
                out.push(b'\n');
            }
            ControlFlow::Continue(())
        });
        if framed.is_err() {
            return false;
        }
        if n < buf.len() {
            break;
        }
    }
    out.is_empty() || matches!(conn.stream.write(out), Ok(n) if n == out.len())
}
