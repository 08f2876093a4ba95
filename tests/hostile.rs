//! What a hostile client cannot do to the real server (docs/protocol.md,
//! v1.2): make a close read without bound (at most `linger_bytes`, 1 MiB,
//! are discarded from the moment the close is decided, then the socket is
//! closed, with a reset if input still arrives), flood the reactor with
//! lines that need no reply (`--max-input-rate`: `BYE flood`), or keep a
//! PROXY header half-sent forever (`--proxy-timeout`: `ERR proxy-header`).
#![cfg(feature = "cli")]

use std::io::{self, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use support::process::{Server, Vigil};
use support::{assert_within, ms, PATIENCE};

const VIGIL: Vigil = Vigil(env!("CARGO_BIN_EXE_vigil"));

/// A close's discard bound (`Config::linger_bytes`).
const LINGER_BYTES: usize = 1024 * 1024;
/// What the kernels may hold besides, generously: the client's send buffer
/// and the server's receive buffer (autotuned up to 6 MiB by default), and
/// the replies' bytes that filled the buffers before the close was decided.
const BUFFERS: usize = 24 * 1024 * 1024;

/// A client socket with small buffers that never reads.
fn non_reader(server: &Server) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.set_send_buffer_size(65536).unwrap();
    socket.connect(&server.addr.into()).unwrap();
    let stream: TcpStream = socket.into();
    // A server that stops reading without closing fails the test rather
    // than hanging it.
    stream.set_write_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// Writes `chunk` until the server ends the connection; the bytes written
/// and how long it took. Panics if the server neither reads nor closes
/// within [`PATIENCE`].
fn flood_until_closed(mut stream: &TcpStream, chunk: &[u8]) -> (usize, Duration) {
    let start = Instant::now();
    let mut written = 0;
    loop {
        match stream.write(chunk) {
            Ok(n) => written += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                ) =>
            {
                return (written, start.elapsed())
            }
            Err(err) => panic!("after {written} bytes: {err}"),
        }
        assert!(
            written < 64 * BUFFERS,
            "the server read {written} bytes and does not close"
        );
    }
}

/// Finding 1: a client that never reads floods `PING`s (each owing a
/// reply) past `--max-output 65536`. Once its close is decided (`BYE
/// slow`), the server used to read and discard at wire speed for as long
/// as write progress allowed (a second: gigabytes). The bound is counted
/// from the decision: about 1 MiB plus what the socket buffers hold.
#[test]
fn a_slow_reader_that_floods_is_closed_within_the_byte_bound() {
    let server = VIGIL.start(&["--max-output", "65536", "--idle-timeout", "0"]);
    let stream = non_reader(&server);
    let (written, took) = flood_until_closed(&stream, &b"PING\n".repeat(8192));
    println!("written {written} bytes in {took:?} before the close");
    assert!(
        written <= LINGER_BYTES + BUFFERS,
        "{written} bytes read from a closing connection"
    );
}

/// Finding 1 after `QUIT`: replies are owed (the client never reads), then
/// `QUIT`, then an endless flood. The close is decided at `QUIT`; from then
/// on at most the bound is read.
#[test]
fn quit_followed_by_a_flood_is_closed_within_the_byte_bound() {
    let server = VIGIL.start(&["--max-output", "16777216", "--idle-timeout", "0"]);
    let mut stream = non_reader(&server);
    // 8 MB of replies owed: more than the kernel's buffers take (4 MiB at
    // most for the server's send buffer) while nobody reads.
    stream.write_all(&b"PING\n".repeat(1_600_000)).unwrap();
    stream.write_all(b"QUIT\n").unwrap();
    let (written, took) = flood_until_closed(&stream, &[b'x'; 65536]);
    println!("written {written} bytes in {took:?} after QUIT");
    assert!(
        written <= LINGER_BYTES + BUFFERS,
        "{written} bytes read from a closing connection"
    );
}

/// Finding 1's other side: a client that reads gets its closing line and
/// a clean EOF when what it sends after `QUIT` stays within the bound.
#[test]
fn a_reader_that_sends_a_little_after_quit_gets_bye_then_eof() {
    let server = VIGIL.start(&[]);
    let mut client = server.connect();
    client.send(b"PING\nQUIT\n");
    client.send(&[b'x'; 100_000]);
    client.expect(b"PONG");
    client.expect(b"BYE quit");
    client.expect_rest(b"");
}

/// Finding 2: empty lines (no reply needed) at wire speed get `BYE flood`
/// with `--max-input-rate`, within a second of the bucket's worth.
#[test]
fn empty_lines_at_wire_speed_get_bye_flood() {
    let server = VIGIL.start(&["--max-input-rate", "100000", "--idle-timeout", "0"]);
    let mut client = server.connect();
    let writer = client.stream().try_clone().unwrap();
    let flood = thread::spawn(move || flood_until_closed(&writer, &[b'\n'; 16384]));
    let start = Instant::now();
    client.expect(b"BYE flood");
    // The bucket (100,000 bytes) runs out at the first big reads.
    assert_within(start.elapsed(), ms(0)..=ms(2000));
    assert!(client.closed_by_server());
    let (written, _) = flood.join().unwrap();
    assert!(written <= 100_000 + LINGER_BYTES + BUFFERS, "{written}");
}

/// Finding 2: the lines of the read that overdraws the bucket are not
/// served: no `PONG`, only `BYE flood`.
#[test]
fn the_overdrawing_read_is_not_served() {
    let server = VIGIL.start(&["--max-input-rate", "1000"]);
    let mut client = server.connect();
    let mut burst = b"PING\n".to_vec();
    burst.extend_from_slice(&[b'\n'; 2000]);
    client.send(&burst); // one segment, one read: 2005 bytes > 1000
    client.expect(b"BYE flood");
    client.expect_rest(b"");
}

/// Finding 2: heartbeats never come near the limit. 25 `PING`s 20 ms apart
/// (250 bytes a second against 1000) are all answered.
#[test]
fn heartbeats_are_not_a_flood() {
    let server = VIGIL.start(&["--max-input-rate", "1000"]);
    let mut client = server.connect();
    for i in 0..25 {
        client.send(format!("PING {i}\n").as_bytes());
        client.expect(format!("PONG {i}").as_bytes());
        thread::sleep(ms(20));
    }
    client.send(b"QUIT\n");
    client.expect(b"BYE quit");
}

const PROXY_V1: &[u8] = b"PROXY TCP4 192.0.2.1 127.0.0.1 56324 7373\r\n";

fn proxy_server() -> Server {
    // The idle timeout is shorter than the header's deadline: while the
    // header is incomplete only the deadline applies.
    VIGIL.start(&[
        "--proxy-protocol",
        "--proxy-timeout",
        "300ms",
        "--idle-timeout",
        "150ms",
    ])
}

/// Finding 3: a valid header trickled a byte every 100 ms (it would take
/// 4.3 s) gets `ERR proxy-header` at the 300 ms deadline: trickled bytes do
/// not extend it. Window: 300 ms to 1 s (two ticks, and scheduling on a
/// loaded machine); without the deadline it would be 4.3 s and more.
#[test]
fn a_trickled_header_gets_err_proxy_header_on_time() {
    let server = proxy_server();
    let mut client = server.connect();
    let start = Instant::now();
    let writer = client.stream().try_clone().unwrap();
    let trickle = thread::spawn(move || {
        for &byte in PROXY_V1 {
            if (&writer).write_all(&[byte]).is_err() {
                return;
            }
            thread::sleep(ms(100));
        }
    });
    client.expect(b"ERR proxy-header");
    assert_within(start.elapsed(), ms(300)..=ms(1000));
    assert!(client.closed_by_server());
    trickle.join().unwrap();
}

/// Finding 3: silence gets `ERR proxy-header` at the deadline, not `BYE
/// idle` at the (shorter) idle timeout.
#[test]
fn silence_gets_err_proxy_header_on_time() {
    let server = proxy_server();
    let start = Instant::now();
    let mut client = server.connect();
    client.expect(b"ERR proxy-header");
    assert_within(start.elapsed(), ms(300)..=ms(1000));
}

/// Finding 3: a header sent whole is served, and from then on the idle
/// timeout applies again: `BYE idle` after 150 ms of silence (not `ERR
/// proxy-header` at the header's 300 ms).
#[test]
fn a_whole_header_is_served_then_the_idle_timeout_applies() {
    let server = proxy_server();
    let mut client = server.connect();
    let mut hello = PROXY_V1.to_vec();
    hello.extend_from_slice(b"PING\n");
    client.send(&hello);
    client.expect(b"PONG");
    let sent = Instant::now();
    client.expect(b"BYE idle");
    assert_within(sent.elapsed(), ms(150)..=ms(1000));
}

/// A keep-alive declared in the header's own read holds after it: the
/// header's end restores the idle timeout only where nothing else was set
/// (reaped at 1.5 x 400 ms, not at the 150 ms idle timeout).
#[test]
fn a_keepalive_in_the_headers_read_holds() {
    let server = VIGIL.start(&[
        "--proxy-protocol",
        "--idle-timeout",
        "150ms",
        "--min-keepalive",
        "100ms",
    ]);
    let mut client = server.connect();
    let mut hello = PROXY_V1.to_vec();
    hello.extend_from_slice(b"KEEPALIVE 400ms\n");
    client.send(&hello);
    let sent = Instant::now();
    client.expect(b"KEEPALIVE 400ms");
    client.expect_silence(ms(450));
    client.expect(b"BYE idle");
    assert_within(sent.elapsed(), ms(600)..=ms(1100));
}
