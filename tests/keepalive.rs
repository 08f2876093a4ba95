//! The declared keep-alive (docs/protocol.md, v1.2), over the real binary:
//! `KEEPALIVE <dur>` is clamped into [`--min-keepalive`, `--max-keepalive`]
//! and answered in the largest whole unit; the connection is then reaped
//! after 1.5x the accepted interval of silence (`BYE idle`) in place of
//! `--idle-timeout`, the latest declaration holding; a bad value gets `ERR
//! keepalive` and closes nothing. `vigil-load --keepalive` declares one on
//! every connection.
#![cfg(feature = "cli")]

use std::time::{Duration, Instant};

use support::process::Vigil;
use support::{assert_within, ms};
use vigil::load::{Options, Scenario};

const VIGIL: Vigil = Vigil(env!("CARGO_BIN_EXE_vigil"));

#[test]
fn declared_values_are_clamped_and_answered_in_the_largest_whole_unit() {
    let server = VIGIL.start(&[]); // 1s to 10m
    let mut client = server.connect();
    for (asked, accepted) in [
        (&b"KEEPALIVE 2s\n"[..], &b"KEEPALIVE 2s"[..]),
        (b"KEEPALIVE 1500ms\n", b"KEEPALIVE 1500ms"),
        (b"KEEPALIVE 60000ms\n", b"KEEPALIVE 1m"),
        (b"KEEPALIVE 90s\n", b"KEEPALIVE 90s"),
        (b"KEEPALIVE 100ms\n", b"KEEPALIVE 1s"),
        (b"KEEPALIVE 11m\n", b"KEEPALIVE 10m"),
        (b"KEEPALIVE 0\n", b"KEEPALIVE 10m"),
        (b"KEEPALIVE 0s\n", b"KEEPALIVE 10m"),
        (b"KEEPALIVE 99999999999999999999999m\r\n", b"KEEPALIVE 10m"),
    ] {
        client.send(asked);
        client.expect(accepted);
    }
}

#[test]
fn a_missing_or_bad_value_gets_err_keepalive_and_closes_nothing() {
    let server = VIGIL.start(&[]);
    let mut client = server.connect();
    for bad in [
        &b"KEEPALIVE\n"[..],
        b"KEEPALIVE \n",
        b"KEEPALIVE soon\n",
        b"KEEPALIVE 5\n",
        b"KEEPALIVE 5s 6s\n",
        b"KEEPALIVE  5s\n",
        b"KEEPALIVE 1.5s\n",
        b"KEEPALIVE -1s\n",
        b"KEEPALIVE 5h\n",
    ] {
        client.send(bad);
        client.expect(b"ERR keepalive");
    }
    client.send(b"KEEPALIVEX 5s\nkeepalive 5s\nPING\n");
    client.expect(b"KEEPALIVEX 5s");
    client.expect(b"keepalive 5s");
    client.expect(b"PONG");
}

/// Reaped after 1.5 x 200 ms = 300 ms of silence, even with
/// `--idle-timeout 0`. Window: 300 ms to 300 ms + two ticks and
/// scheduling on a loaded machine.
#[test]
fn a_declared_keepalive_reaps_even_without_an_idle_timeout() {
    let server = VIGIL.start(&["--idle-timeout", "0", "--min-keepalive", "100ms"]);
    let mut client = server.connect();
    client.send(b"KEEPALIVE 200ms\n");
    let sent = Instant::now();
    client.expect(b"KEEPALIVE 200ms");
    client.expect(b"BYE idle");
    assert_within(sent.elapsed(), ms(300)..=ms(800));
}

/// In place of `--idle-timeout`: a longer keep-alive outlives the 100 ms
/// idle timeout (reaped at 1.5 x 400 ms = 600 ms, not 100 ms).
#[test]
fn a_declared_keepalive_replaces_a_shorter_idle_timeout() {
    let server = VIGIL.start(&["--idle-timeout", "100ms", "--min-keepalive", "100ms"]);
    let mut client = server.connect();
    client.send(b"KEEPALIVE 400ms\n");
    let sent = Instant::now();
    client.expect(b"KEEPALIVE 400ms");
    client.expect_silence(ms(450));
    client.expect(b"BYE idle");
    assert_within(sent.elapsed(), ms(600)..=ms(1100));
}

/// The latest declaration holds, also when it is shorter than the first
/// (the registered deadline moves earlier): 1.5 x 200 ms after it.
#[test]
fn the_latest_declaration_holds() {
    let server = VIGIL.start(&["--idle-timeout", "0", "--min-keepalive", "100ms"]);
    let mut client = server.connect();
    client.send(b"KEEPALIVE 5s\n");
    client.expect(b"KEEPALIVE 5s");
    client.send(b"KEEPALIVE 200ms\n");
    let sent = Instant::now();
    client.expect(b"KEEPALIVE 200ms");
    client.expect(b"BYE idle");
    assert_within(sent.elapsed(), ms(300)..=ms(800));
}

/// Each byte restarts the silence: heartbeats within the keep-alive keep
/// the connection past many times 1.5x the interval.
#[test]
fn heartbeats_within_the_keepalive_keep_the_connection() {
    let server = VIGIL.start(&["--idle-timeout", "0", "--min-keepalive", "100ms"]);
    let mut client = server.connect();
    client.send(b"KEEPALIVE 100ms\n");
    client.expect(b"KEEPALIVE 100ms");
    for _ in 0..10 {
        std::thread::sleep(ms(60));
        client.send(b"\n");
    }
    client.send(b"PING\n");
    client.expect(b"PONG");
}

/// A probe due later than the keep-alive's deadline is not sent: with
/// `--probe-after 500ms`, a 200 ms keep-alive ends in `BYE idle` at 300 ms
/// and no `PING` comes first.
#[test]
fn a_probe_later_than_the_keepalive_deadline_is_not_sent() {
    let server = VIGIL.start(&[
        "--idle-timeout",
        "1s",
        "--probe-after",
        "500ms",
        "--min-keepalive",
        "100ms",
    ]);
    let mut client = server.connect();
    client.send(b"KEEPALIVE 200ms\n");
    client.expect(b"KEEPALIVE 200ms");
    client.expect(b"BYE idle");
}

/// The lifetime is not changed by a keep-alive.
#[test]
fn the_lifetime_still_applies() {
    let server = VIGIL.start(&["--lifetime", "300ms", "--min-keepalive", "100ms"]);
    let mut client = server.connect();
    let start = Instant::now();
    client.send(b"KEEPALIVE 10m\n");
    client.expect(b"KEEPALIVE 10m");
    client.expect(b"BYE lifetime");
    assert_within(start.elapsed(), ms(250)..=ms(800));
}

/// `vigil-load`'s keepalive scenario, `PING` every 200 ms against a 100 ms
/// idle timeout: reaped without a declaration, kept with `--keepalive
/// 200ms` (reaped only after 300 ms of silence).
#[test]
fn vigil_load_declares_a_keepalive_on_every_connection() {
    let server = VIGIL.start(&["--idle-timeout", "100ms", "--min-keepalive", "100ms"]);
    let reaped = |keepalive: Option<Duration>| {
        let mut opts = Options::new(Scenario::Keepalive, server.addr);
        opts.conns = 5;
        opts.interval = ms(200);
        opts.duration = ms(600);
        opts.keepalive = keepalive;
        assert_eq!(
            opts.to_args().contains(&"--keepalive=200ms".to_string()),
            keepalive.is_some()
        );
        let report = vigil::load::run(&opts).expect("run");
        report.keepalive().expect("keepalive figures").reaped
    };
    assert_eq!(reaped(Some(ms(200))), 0);
    assert!(reaped(None) > 0, "the control run was not reaped");
}
