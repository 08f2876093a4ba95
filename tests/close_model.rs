//! Random client scripts against the real server, each checked against a
//! model of the protocol: the exact reply stream, the closing line, and a
//! clean EOF. Then the server's descriptor count must return to its
//! baseline: no connection leaks, whatever the clients did.
//!
//! A script is a stream of lines (pings with and without payloads, empty
//! lines, `PONG`, echoes, CRLF, NUL and binary bytes, overlong lines, `QUIT`
//! mid-stream, bursts of up to several MB) written in random chunks from 1
//! byte up, with short pauses and urgent bytes between them, and one way to
//! end: half-close and read everything, half-close and never read, reset,
//! or go silent past the idle timeout. Some readers stop reading for a
//! while first; some read slowly through a small receive buffer.
//!
//! Every third script goes to the fan-out example (`examples/fanout.rs`)
//! instead, while a publisher sends it `PUB`s: its `MSG` lines are pushed
//! between the replies. They must be whole, consecutive (no gap, no
//! duplicate, in the order published), and take nothing from the model:
//! with them taken out, the stream is the same as the server's.
//!
//! Seeded and reproducible: `VIGIL_SEED=<n> cargo test --test close_model`
//! replays a run; the seed is printed on failure. `VIGIL_SCRIPTS` sets how
//! many scripts run (default 1000).
#![cfg(feature = "cli")]

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, SockRef, Socket, Type};
use support::client::Client;
use support::ms;
use support::process::{example, Server, Vigil};
use support::rng::Rng;

const VIGIL: Vigil = Vigil(env!("CARGO_BIN_EXE_vigil"));

/// The server's settings the model must know.
const MAX_LINE: usize = 64;
const IDLE: Duration = Duration::from_millis(400);
/// `Config::linger_bytes`: input a closing connection discards at most
/// before it may be closed with a reset.
const LINGER_BYTES: usize = 1024 * 1024;
/// Scripts run at once.
const CONCURRENCY: usize = 32;

/// One thing a client does.
#[derive(Debug, Clone)]
enum Step {
    /// Write these bytes, in one `write_all`.
    Send(Vec<u8>),
    /// Send one urgent byte (`MSG_OOB`): not part of the stream.
    Urgent,
    /// Pause, well below the idle timeout.
    Pause(Duration),
}

/// How a script ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Shut down the write side and read everything to EOF.
    HalfCloseAndRead,
    /// Shut down the write side, never read, drop the socket later.
    HalfCloseDeaf,
    /// Close with a reset (linger 0).
    Reset,
    /// Stay silent past the idle timeout, reading: `BYE idle` is due,
    /// unless the stream already ended the connection.
    GoIdle,
}

#[derive(Debug, Clone)]
struct Script {
    steps: Vec<Step>,
    end: End,
    /// The reader starts this late (a reader that stops reading).
    reader_delay: Duration,
    /// A 4 KiB receive buffer and a reader that pauses after each read:
    /// replies queue up in the server.
    slow_reader: bool,
}

/// How the server ends the stream, by the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Terminal {
    Quit,
    TooLong,
}

/// What the model says the client reads.
#[derive(Debug)]
struct Expected {
    /// The replies before the end, in order.
    replies: Vec<u8>,
    /// The closing line the stream itself brings, if any.
    terminal: Option<Terminal>,
    /// Bytes the client sent after the line that ended the connection.
    after_terminal: usize,
}

/// The protocol (docs/protocol.md), written independently of the server's
/// code: lines end at `\n`, a `\r` before it is dropped; a line longer than
/// MAX_LINE (or an unfinished one certain to become so) ends the stream with
/// `ERR line-too-long`; `QUIT` ends it with `BYE quit`.
fn model(stream: &[u8]) -> Expected {
    let mut replies = Vec::new();
    let mut start = 0;
    while let Some(offset) = stream[start..].iter().position(|&b| b == b'\n') {
        let mut line = &stream[start..start + offset];
        let end = start + offset + 1;
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        if line.len() > MAX_LINE {
            return ended(replies, Terminal::TooLong, stream, start + MAX_LINE + 2);
        }
        let word_end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
        let command = &line[..word_end];
        if command == b"PING" {
            replies.extend_from_slice(b"PONG");
            replies.extend_from_slice(&line[4..]);
            replies.push(b'\n');
        } else if command == b"QUIT" {
            return ended(replies, Terminal::Quit, stream, end);
        } else if command != b"PONG" && !line.is_empty() {
            replies.extend_from_slice(line);
            replies.push(b'\n');
        }
        start = end;
    }
    let tail = &stream[start..];
    let certain =
        tail.len() > MAX_LINE + 1 || (tail.len() > MAX_LINE && tail.last() != Some(&b'\r'));
    if certain {
        return ended(replies, Terminal::TooLong, stream, start + MAX_LINE + 2);
    }
    Expected {
        replies,
        terminal: None,
        after_terminal: 0,
    }
}

fn ended(replies: Vec<u8>, terminal: Terminal, stream: &[u8], end: usize) -> Expected {
    Expected {
        replies,
        terminal: Some(terminal),
        after_terminal: stream.len().saturating_sub(end),
    }
}

/// A random line of the protocol (or not).
fn random_line(rng: &mut Rng, out: &mut Vec<u8>) {
    let eol: &[u8] = if rng.below(4) == 0 { b"\r\n" } else { b"\n" };
    match rng.below(100) {
        0..=29 => out.extend_from_slice(b"PING"),
        30..=44 => {
            out.extend_from_slice(b"PING ");
            random_bytes(rng, out, 0, 40);
        }
        45..=54 => {}
        55..=62 => out.extend_from_slice(if rng.below(2) == 0 {
            b"PONG"
        } else {
            b"PONG late"
        }),
        63..=92 => random_bytes(rng, out, 1, 50),
        93..=96 => random_bytes(rng, out, MAX_LINE + 1, 200),
        _ => out.extend_from_slice(if rng.below(2) == 0 {
            b"QUIT"
        } else {
            b"QUIT now"
        }),
    }
    out.extend_from_slice(eol);
}

/// `min` to `min + spread - 1` bytes without a newline: letters, spaces,
/// NUL, `\r` and binary.
fn random_bytes(rng: &mut Rng, out: &mut Vec<u8>, min: usize, spread: u64) {
    let n = min + rng.below(spread) as usize;
    for _ in 0..n {
        let byte = match rng.below(10) {
            0 => 0,
            1 => b'\r',
            2 => b' ',
            3 => 0x80 | rng.below(0x80) as u8,
            _ => b'a' + rng.below(26) as u8,
        };
        out.push(byte);
    }
}

/// A burst: many pings or empty lines, 64 KiB to several MB.
fn burst(rng: &mut Rng, out: &mut Vec<u8>) {
    let size = if rng.below(10) == 0 {
        1 << 20 | rng.below(3 << 20) as usize
    } else {
        64 * 1024 + rng.below(256 * 1024) as usize
    };
    let unit: &[u8] = if rng.below(2) == 0 { b"PING\n" } else { b"\n" };
    out.extend(
        unit.iter()
            .copied()
            .cycle()
            .take(size / unit.len() * unit.len()),
    );
}

/// A random script; `roomy`: for the server whose `--max-output` holds
/// megabytes.
fn random_script(rng: &mut Rng, roomy: bool) -> Script {
    let mut stream = Vec::new();
    for _ in 0..1 + rng.below(20) {
        if rng.below(20) == 0 {
            burst(rng, &mut stream);
        } else {
            random_line(rng, &mut stream);
        }
    }
    // A slow reader often has megabytes of pings to answer: more than the
    // kernel's send buffer takes, so that replies still wait in the server
    // (or overflow --max-output) when its FIN arrives.
    let slow_reader = rng.below(7) == 0;
    if slow_reader && rng.below(2) == 0 {
        let pings = if roomy { 800_000 } else { 200_000 };
        stream.extend(b"PING\n".repeat(pings));
    }
    // An unfinished last line now and then.
    if rng.below(5) == 0 {
        random_bytes(rng, &mut stream, 0, 80);
    }
    // One urgent byte at most: a second would move TCP's one urgent
    // pointer and turn the first into ordinary data.
    let mut urgent = rng.below(10) == 0;
    let mut steps = Vec::new();
    let mut at = 0;
    while at < stream.len() {
        // Chunk sizes from 1 byte to all of it, spread over magnitudes.
        let magnitude = rng.below(22) as u32;
        let len = (1 + rng.below(1u64 << magnitude) as usize).min(stream.len() - at);
        steps.push(Step::Send(stream[at..at + len].to_vec()));
        at += len;
        match rng.below(20) {
            0 => steps.push(Step::Pause(ms(1 + rng.below(30)))),
            1 if urgent => {
                steps.push(Step::Urgent);
                urgent = false;
            }
            _ => {}
        }
    }
    let end = match rng.below(20) {
        0..=10 => End::HalfCloseAndRead,
        11..=12 => End::HalfCloseDeaf,
        13..=14 => End::Reset,
        _ => End::GoIdle,
    };
    let reader_delay = if rng.below(7) == 0 {
        ms(50 + rng.below(250))
    } else {
        Duration::ZERO
    };
    Script {
        steps,
        end,
        reader_delay,
        slow_reader,
    }
}

/// Runs `script` against `addr`; `Ok` if the client saw what the model
/// says. `pushed`: `addr` is the fan-out example, pushing `MSG`s.
fn run_script(addr: SocketAddr, script: &Script, pushed: bool) -> Result<(), String> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    if script.slow_reader {
        socket.set_recv_buffer_size(4096).unwrap();
    }
    socket
        .connect(&addr.into())
        .map_err(|e| format!("connect: {e}"))?;
    let stream = TcpStream::from(socket);
    let reads = matches!(script.end, End::HalfCloseAndRead | End::GoIdle);
    let reader = reads.then(|| {
        let mut reading = stream.try_clone().unwrap();
        let (delay, slow) = (script.reader_delay, script.slow_reader);
        thread::spawn(move || {
            thread::sleep(delay);
            reading
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut got = Vec::new();
            let ended = read_all(&mut reading, &mut got, slow);
            (got, ended)
        })
    });
    let mut writing = stream;
    for step in &script.steps {
        match step {
            // After the server has closed, writes fail: that is expected.
            Step::Send(bytes) => {
                if writing.write_all(bytes).is_err() {
                    break;
                }
            }
            Step::Urgent => {
                let _ = SockRef::from(&writing).send_out_of_band(b"!");
            }
            Step::Pause(pause) => thread::sleep(*pause),
        }
    }
    match script.end {
        End::HalfCloseAndRead => {
            let _ = writing.shutdown(Shutdown::Write);
        }
        End::HalfCloseDeaf => {
            let _ = writing.shutdown(Shutdown::Write);
            thread::sleep(ms(50));
        }
        End::Reset => {
            let _ = SockRef::from(&writing).set_linger(Some(Duration::ZERO));
        }
        End::GoIdle => {}
    }
    let Some(reader) = reader else {
        return Ok(()); // nothing to check but the server's descriptors
    };
    let (got, ended) = reader.join().unwrap();
    drop(writing);
    check(script, &got, ended, pushed)
}

/// Reads to EOF; the error that ended the read instead, if any. A `slow`
/// reader takes 4 KiB at a time and pauses 1 ms after every fourth read.
fn read_all(stream: &mut TcpStream, into: &mut Vec<u8>, slow: bool) -> io::Result<()> {
    let mut buf = [0; 64 * 1024];
    let size = if slow { 4096 } else { buf.len() };
    for reads in 0.. {
        match stream.read(&mut buf[..size]) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                into.extend_from_slice(&buf[..n]);
                if slow && reads % 4 == 0 {
                    thread::sleep(ms(1));
                }
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Takes the `MSG p<n>` lines a fan-out subscriber got out of its stream:
/// the rest, or why the pushed lines are wrong (one cut inside another
/// line, a gap, a duplicate, out of order). A last `MSG` cut short by a
/// close that ran out of its bounds is dropped.
fn without_msgs(got: &[u8]) -> Result<Vec<u8>, String> {
    let mut rest = Vec::new();
    let mut last: Option<u64> = None;
    for line in got.split_inclusive(|&b| b == b'\n') {
        let whole = line.ends_with(b"\n");
        if !whole && (line.starts_with(b"MSG ") || b"MSG ".starts_with(line)) {
            break; // the last, cut short
        }
        if !line.starts_with(b"MSG ") {
            rest.extend_from_slice(line);
            continue;
        }
        let seq = line
            .strip_prefix(b"MSG p")
            .and_then(|n| std::str::from_utf8(&n[..n.len() - 1]).ok())
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| {
                format!(
                    "a pushed line mangled: {:?}",
                    line.escape_ascii().to_string()
                )
            })?;
        if let Some(prev) = last {
            if seq != prev + 1 {
                return Err(format!("MSG p{seq} after MSG p{prev}"));
            }
        }
        last = Some(seq);
    }
    Ok(rest)
}

/// Compares what the client read with the model; `pushed`: the fan-out
/// example, whose `MSG` lines are checked and taken out first.
fn check(script: &Script, got: &[u8], ended: io::Result<()>, pushed: bool) -> Result<(), String> {
    let owned;
    let got = if pushed {
        owned = without_msgs(got)?;
        &owned[..]
    } else {
        got
    };
    let stream: Vec<u8> = script
        .steps
        .iter()
        .filter_map(|step| match step {
            Step::Send(bytes) => Some(&bytes[..]),
            _ => None,
        })
        .flatten()
        .copied()
        .collect();
    let expected = model(&stream);
    let mut full = expected.replies.clone();
    match (expected.terminal, script.end) {
        (Some(Terminal::Quit), _) => full.extend_from_slice(b"BYE quit\n"),
        (Some(Terminal::TooLong), _) => full.extend_from_slice(b"ERR line-too-long\n"),
        (None, End::GoIdle) => full.extend_from_slice(b"BYE idle\n"),
        (None, _) => {}
    }
    let reset = matches!(&ended, Err(err) if err.kind() == io::ErrorKind::ConnectionReset);
    // Past LINGER_BYTES of input after its close, a connection may be
    // closed as it is: a reset after everything owed.
    if got == full && ended.is_ok() {
        return Ok(());
    }
    // A client that sends more than LINGER_BYTES after the close may be
    // reset once that much is discarded, before it has read all it is owed.
    // (The reader may see that reset as EOF: the writer's failed write can
    // take the socket's one error report.)
    if expected.after_terminal > LINGER_BYTES / 2 && full.starts_with(got) {
        return Ok(());
    }
    // A reader that fell behind by more than --max-output: whole replies,
    // then `BYE slow` and the close (input after it may bring a reset).
    if let Some(prefix) = got.strip_suffix(b"BYE slow\n") {
        let whole_lines = prefix.is_empty() || prefix.ends_with(b"\n");
        if whole_lines && expected.replies.starts_with(prefix) && (ended.is_ok() || reset) {
            return Ok(());
        }
    }
    Err(format!(
        "end {:?}, reader delay {:?}, slow {}, {} bytes sent ({} after the close): expected {} bytes then EOF, ending {:?}; got {} bytes ending {:?}, then {:?}",
        script.end,
        script.reader_delay,
        script.slow_reader,
        stream.len(),
        expected.after_terminal,
        full.len(),
        tail(&full),
        got.len(),
        tail(got),
        ended.err(),
    ))
}

fn tail(bytes: &[u8]) -> String {
    bytes[bytes.len().saturating_sub(40)..]
        .escape_ascii()
        .to_string()
}

/// Publishes `PUB p0`, `PUB p1`, ... to the fan-out example at `addr`,
/// one every millisecond or so, each after the last one's `OK`, until
/// `publishing` turns false; then quits. Returns how many it published.
fn publish(addr: SocketAddr, publishing: Arc<AtomicBool>) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let mut client = Client::connect(addr);
        let mut seq = 0;
        while publishing.load(Ordering::Relaxed) {
            client.send(format!("PUB p{seq}\n").as_bytes());
            let ok = client.line();
            assert!(ok.starts_with(b"OK "), "{}", ok.escape_ascii());
            seq += 1;
            thread::sleep(ms(1));
        }
        client.send(b"QUIT\n");
        client.expect(b"BYE quit");
        client.expect_closed();
        seq
    })
}

#[test]
fn random_scripts_match_the_model_and_leak_nothing() {
    let seed = std::env::var("VIGIL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_c105e);
    let count: usize = std::env::var("VIGIL_SCRIPTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    // Three servers: one with the default --max-output, where readers that
    // fall behind meet `BYE slow`, a roomy one, where megabytes of replies
    // wait in the server's queue, and the fan-out example with the default
    // --max-output, pushing. Script i goes to server i % 3.
    let max_line = MAX_LINE.to_string();
    let mut servers: Vec<Server> = ["65536", "8388608"]
        .into_iter()
        .map(|max_output| {
            VIGIL.start(&[
                "--idle-timeout",
                "400ms",
                "--tick",
                "5ms",
                "--max-line",
                &max_line,
                "--max-output",
                max_output,
            ])
        })
        .collect();
    servers.push(Server::start_with(
        std::process::Command::new(example("fanout", env!("CARGO_BIN_EXE_vigil"))).args([
            "--listen",
            "127.0.0.1:0",
            "--idle-timeout",
            "400ms",
            "--max-line",
            &max_line,
            "--max-output",
            "65536",
        ]),
    ));
    assert_eq!(IDLE, ms(400));
    let addrs: Vec<SocketAddr> = servers.iter().map(|server| server.addr).collect();
    let baselines: Vec<usize> = servers.iter().map(Server::descriptors).collect();
    let mut rng = Rng(seed);
    let scripts: Arc<Vec<Script>> = Arc::new(
        (0..count)
            .map(|i| random_script(&mut rng, i % 3 == 1))
            .collect(),
    );

    let publishing = Arc::new(AtomicBool::new(true));
    let publisher = publish(addrs[2], publishing.clone());
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (scripts, next, failures) = (scripts.clone(), next.clone(), failures.clone());
            let addrs = addrs.clone();
            thread::spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(script) = scripts.get(i) else { return };
                if let Err(why) = run_script(addrs[i % 3], script, i % 3 == 2) {
                    failures.lock().unwrap().push(format!("script {i}: {why}"));
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    publishing.store(false, Ordering::Relaxed);
    let published = publisher.join().unwrap();
    assert!(published > 0);
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {count} scripts failed (VIGIL_SEED={seed}):\n{}",
        failures.len(),
        failures
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );

    // Every connection is closed in the end: lingering ones within the
    // close's bounds (1 s), idle ones within the idle timeout.
    let deadline = Instant::now() + Duration::from_secs(5);
    for (server, baseline) in servers.iter().zip(baselines) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            server.descriptors_return_to(baseline, left),
            "descriptors leaked: {} held, {baseline} at the start (VIGIL_SEED={seed})",
            server.descriptors()
        );
    }
    eprintln!(
        "{count} scripts in {:?} (VIGIL_SEED={seed})",
        started.elapsed()
    );
}
