//! Liveness: any byte extends the idle deadline; silence past
//! `--idle-timeout` gets `BYE idle`; `--lifetime` closes even a busy
//! connection with `BYE lifetime`; `--probe-after` sends `PING`.
//!
//! Timing windows: the server runs with `--tick 10ms`. A deadline never
//! fires early (measured from the client's write, which precedes the
//! server's read) and, on a loaded 2-core machine, fires up to ~200 ms late;
//! each test states its window.
#![cfg(feature = "cli")]

use std::time::Instant;

use support::process::Vigil;
use support::{assert_within, ms};

const VIGIL: Vigil = Vigil(env!("CARGO_BIN_EXE_vigil"));

const TICK: &str = "10ms";

#[test]
fn silence_past_the_idle_timeout_gets_bye_idle_then_close() {
    let server = VIGIL.start(&["--idle-timeout", "200ms", "--tick", TICK]);
    let mut client = server.connect();
    client.send(b"PING\n");
    let last_byte = Instant::now();
    client.expect(b"PONG");
    client.expect(b"BYE idle");
    // Window: 200 ms after the last byte, plus 200 ms slack.
    assert_within(last_byte.elapsed(), ms(200)..=ms(400));
    client.expect_closed();
}

#[test]
fn a_connection_that_never_speaks_is_reaped_too() {
    let server = VIGIL.start(&["--idle-timeout", "200ms", "--tick", TICK]);
    let connected = Instant::now();
    let mut client = server.connect();
    client.expect(b"BYE idle");
    // Window: 200 ms after connecting, plus 200 ms slack.
    assert_within(connected.elapsed(), ms(200)..=ms(400));
    client.expect_closed();
}

#[test]
fn any_byte_extends_the_idle_deadline_even_without_a_newline() {
    let server = VIGIL.start(&["--idle-timeout", "200ms", "--tick", TICK]);
    let mut client = server.connect();
    // One byte of an unfinished line every 100 ms, for 500 ms: 2.5 times
    // the idle timeout, yet never 200 ms of silence.
    for &byte in b"PING " {
        client.send(&[byte]);
        client.expect_silence(ms(100)); // window: no BYE within 100 ms
    }
    client.send(b"1\n");
    client.expect(b"PONG 1");
}

#[test]
fn heartbeats_shorter_than_the_idle_timeout_keep_a_connection_open() {
    let server = VIGIL.start(&["--idle-timeout", "200ms", "--tick", TICK]);
    let mut client = server.connect();
    // 10 heartbeats 50 ms apart: 500 ms, 2.5 idle timeouts.
    for i in 0..10 {
        client.send(format!("PING {i}\n").as_bytes());
        client.expect(format!("PONG {i}").as_bytes());
        std::thread::sleep(ms(50));
    }
    // Empty lines are heartbeats too.
    for _ in 0..5 {
        client.send(b"\n");
        client.expect_silence(ms(50)); // window: no BYE within 50 ms
    }
    client.send(b"PING end\n");
    client.expect(b"PONG end");
}

/// The seed scenario: heartbeats, then a pause longer than the idle timeout.
#[test]
fn a_pause_longer_than_the_idle_timeout_ends_the_connection() {
    let server = VIGIL.start(&["--idle-timeout", "200ms", "--tick", TICK]);
    let mut client = server.connect();
    let mut last_byte = Instant::now();
    for i in 1..=10 {
        client.send(format!("PING {i}\n").as_bytes());
        last_byte = Instant::now();
        client.expect(format!("PONG {i}").as_bytes());
        std::thread::sleep(ms(50));
    }
    // The pause: the server says goodbye and closes during it.
    client.expect(b"BYE idle");
    // Window: 200 ms after the last heartbeat, plus slack.
    assert_within(last_byte.elapsed(), ms(200)..=ms(450));
    client.expect_closed();
    // What the client sends after the close is read and discarded while
    // the server lingers (at most a tenth of the default 1 s linger without
    // a byte); then the socket is closed, and the client's writes fail: the
    // first may still be accepted by the kernel, but it is answered with a
    // reset, and the next one errors.
    let _ = client.try_send(b"PING 11\n");
    std::thread::sleep(ms(300));
    let _ = client.try_send(b"PING 12\n");
    std::thread::sleep(ms(50));
    assert!(
        client.try_send(b"PING 13\n").is_err(),
        "writes after the close must fail"
    );
}

#[test]
fn an_idle_timeout_of_zero_never_reaps() {
    let server = VIGIL.start(&["--idle-timeout", "0", "--tick", TICK]);
    let mut client = server.connect();
    // Window: 500 ms of silence, 2.5 times the shortest timeout used here.
    client.expect_silence(ms(500));
    client.send(b"PING\n");
    client.expect(b"PONG");
}

#[test]
fn lifetime_closes_a_busy_connection() {
    let server = VIGIL.start(&[
        "--lifetime",
        "300ms",
        "--idle-timeout",
        "200ms",
        "--tick",
        TICK,
    ]);
    let connected = Instant::now();
    let mut client = server.connect();
    let mut i = 0;
    loop {
        i += 1;
        client.send(format!("PING {i}\n").as_bytes());
        let line = client.line();
        if line == b"BYE lifetime" {
            break;
        }
        assert_eq!(line, format!("PONG {i}").as_bytes());
        std::thread::sleep(ms(30));
    }
    // Window: 300 ms after accept, plus one heartbeat gap
    // and slack.
    assert_within(connected.elapsed(), ms(300)..=ms(550));
    assert!(i >= 5, "only {i} heartbeats before the lifetime ended");
    client.expect_closed();
}

#[test]
fn a_probe_is_sent_after_silence_and_a_pong_keeps_the_connection() {
    let server = VIGIL.start(&[
        "--probe-after",
        "100ms",
        "--idle-timeout",
        "300ms",
        "--tick",
        TICK,
    ]);
    let connected = Instant::now();
    let mut client = server.connect();
    // Four probes answered: 400 ms or more, past the 300 ms idle timeout.
    for _ in 0..4 {
        client.expect(b"PING");
        client.send(b"PONG\n");
    }
    assert!(connected.elapsed() >= ms(400));
    client.send(b"PING alive\n");
    client.expect(b"PONG alive");
}

#[test]
fn every_silence_gets_its_probe_on_time() {
    // A long idle timeout, so that a probe scheduled from the wrong
    // deadline (the idle one) shows as 500 ms instead of 100 ms.
    let server = VIGIL.start(&[
        "--probe-after",
        "100ms",
        "--idle-timeout",
        "500ms",
        "--tick",
        TICK,
    ]);
    let mut client = server.connect();
    for _ in 0..4 {
        let silent_since = Instant::now();
        client.expect(b"PING");
        // Window: 100 ms of silence, plus 150 ms of slack.
        assert_within(silent_since.elapsed(), ms(100)..=ms(250));
        client.send(b"PONG\n");
    }
}

#[test]
fn an_unanswered_probe_ends_in_bye_idle() {
    let server = VIGIL.start(&[
        "--probe-after",
        "100ms",
        "--idle-timeout",
        "300ms",
        "--tick",
        TICK,
    ]);
    let connected = Instant::now();
    let mut client = server.connect();
    client.expect(b"PING");
    client.expect(b"BYE idle");
    // Window: 300 ms after the last byte (the connect),
    // plus slack. Only one probe per silence.
    assert_within(connected.elapsed(), ms(300)..=ms(500));
    client.expect_closed();
}
