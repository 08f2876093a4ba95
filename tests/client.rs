//! `vigil-client` against the real server: its exit status tells how the
//! connection ended (0 finished, 1 no server, 2 bad flags, 3 `BYE idle`,
//! 4 `BYE lifetime`), and it prints what the server said.
#![cfg(feature = "cli")]

use std::net::TcpListener;
use std::process::{Command, Output};

use support::process::{run, Server, Vigil};

const VIGIL: Vigil = Vigil(env!("CARGO_BIN_EXE_vigil"));

const CLIENT: &str = env!("CARGO_BIN_EXE_vigil-client");

fn run_client(server: &Server, args: &[&str]) -> Output {
    let addr = server.addr.to_string();
    run(Command::new(CLIENT).args(["--connect", &addr]).args(args))
}

#[test]
fn heartbeats_then_quit_exit_0() {
    let server = VIGIL.start(&["--idle-timeout", "200ms", "--tick", "10ms"]);
    // 5 heartbeats 20 ms apart, well inside the 200 ms idle timeout.
    let output = run_client(&server, &["--interval", "20ms", "--count", "5"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    for expected in ["> PING 1", "< PONG 1", "< PONG 5", "> QUIT", "< BYE quit"] {
        assert!(stdout.contains(expected), "no {expected:?} in {stdout}");
    }
}

#[test]
fn a_pause_past_the_idle_timeout_exits_3() {
    let server = VIGIL.start(&["--idle-timeout", "200ms", "--tick", "10ms"]);
    // The seed scenario: 10 heartbeats 50 ms apart, then a 600 ms pause,
    // three times the 200 ms idle timeout.
    let output = run_client(
        &server,
        &["--interval", "50ms", "--count", "10", "--pause", "600ms"],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(3), "{stdout}");
    assert!(stdout.contains("< PONG 10"), "{stdout}");
    assert!(stdout.contains("< BYE idle"), "{stdout}");
    assert!(
        !stdout.contains("PING 11"),
        "sent after the close: {stdout}"
    );
}

#[test]
fn empty_heartbeats_keep_the_connection_too() {
    let server = VIGIL.start(&["--idle-timeout", "200ms", "--tick", "10ms"]);
    // 8 empty lines 50 ms apart: 400 ms, twice the idle timeout.
    let output = run_client(&server, &["--interval", "50ms", "--count", "8", "--empty"]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn the_lifetime_ending_exits_4() {
    let server = VIGIL.start(&["--lifetime", "150ms", "--tick", "10ms"]);
    // 20 heartbeats 20 ms apart would take 400 ms: the 150 ms lifetime ends first.
    let output = run_client(&server, &["--interval", "20ms", "--count", "20"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(4), "{stdout}");
    assert!(stdout.contains("< BYE lifetime"), "{stdout}");
}

#[test]
fn a_refusal_as_full_exits_5() {
    let server = VIGIL.start(&["--max-conns", "1"]);
    let _holder = server.connect();
    // The only slot is taken: the client is refused with `BYE full`.
    let mut refused = server.connect();
    refused.expect(b"BYE full");
    let output = run_client(&server, &["--interval", "20ms", "--count", "3"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(5), "{stdout}");
    assert!(stdout.contains("< BYE full"), "{stdout}");
}

#[test]
fn no_server_exits_1() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let output = run(Command::new(CLIENT).args(["--connect", &addr, "--count", "1"]));
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&output.stderr).lines().count(), 1);
}

#[test]
fn bad_flags_exit_2_with_one_line() {
    for args in [&["--interval", "5"][..], &["--count", "x"], &["--bogus"]] {
        let output = run(Command::new(CLIENT).args(args));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr:?}");
        assert!(stderr.contains(args[0]), "{args:?}: {stderr:?}");
    }
}

/// `--count -1` (or `--then -1`) says what a count is, not Rust's parse
/// error ("invalid digit found in string").
#[test]
fn a_negative_count_is_refused_with_a_clear_line() {
    for flag in ["--count", "--then"] {
        let output = run(Command::new(CLIENT).args([flag, "-1"]));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert_eq!(
            stderr.trim_end(),
            format!("vigil-client: invalid value '-1' for '{flag} <N>': expected a whole number, 0 or more")
        );
    }
}

/// `--keepalive` declares the keep-alive, then heartbeats at that interval:
/// 300 ms apart against a 200 ms idle timeout, kept open by the declared
/// 300 ms (reaped only after 450 ms of silence).
#[test]
fn a_declared_keepalive_outlives_a_shorter_idle_timeout() {
    let server = VIGIL.start(&["--idle-timeout", "200ms", "--min-keepalive", "100ms"]);
    let output = run_client(&server, &["--keepalive", "300ms", "--count", "3"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    for expected in [
        "> KEEPALIVE 300ms",
        "< KEEPALIVE 300ms",
        "< PONG 3",
        "< BYE quit",
    ] {
        assert!(stdout.contains(expected), "no {expected:?} in {stdout}");
    }
}
