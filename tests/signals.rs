//! SIGTERM and SIGINT: the server stops accepting, sends `BYE shutdown` to
//! every client, closes them and exits 0 within 2 s, even when a client
//! never reads.
#![cfg(feature = "cli")]

use std::io::Write;
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use support::client::Client;
use support::ms;
use support::process::{Server, Vigil};

const VIGIL: Vigil = Vigil(env!("CARGO_BIN_EXE_vigil"));

/// The window for the process to exit after the signal.
const EXIT_WITHIN: Duration = Duration::from_secs(2);

fn shuts_down_on(signal: &str) {
    let mut server = VIGIL.start(&[]);
    let mut clients: Vec<_> = (0..3).map(|_| server.connect()).collect();
    for client in &mut clients {
        client.send(b"PING\n");
        client.expect(b"PONG");
    }
    // One thread: signals arrive through a self-pipe the reactor polls, not
    // through a second thread (which would stall the reactor each time the
    // kernel grows the process's file table).
    let threads = std::fs::read_dir(format!("/proc/{}/task", server.pid()))
        .expect("/proc/PID/task")
        .count();
    assert_eq!(threads, 1, "vigil runs {threads} threads");
    let signalled = Instant::now();
    server.signal(signal);
    for client in &mut clients {
        client.expect(b"BYE shutdown");
        client.expect_closed();
    }
    let status = server
        .wait_exit(EXIT_WITHIN)
        .expect("vigil did not exit within 2 s");
    assert_eq!(status.code(), Some(0));
    assert!(signalled.elapsed() <= EXIT_WITHIN);
    // Stopped accepting: nothing listens any more.
    assert!(TcpStream::connect(server.addr).is_err());
}

#[test]
fn sigterm_says_bye_shutdown_and_exits_0() {
    shuts_down_on("TERM");
}

#[test]
fn sigint_says_bye_shutdown_and_exits_0() {
    shuts_down_on("INT");
}

#[test]
fn a_client_that_never_reads_does_not_hold_up_the_shutdown() {
    // An output limit high enough that the hog is still open at the signal.
    let mut server = VIGIL.start(&["--max-output", "100000000"]);
    let hog = server.connect();
    // Fill both directions: replies pile up unread in the server.
    let mut writer = hog.stream().try_clone().unwrap();
    let mut request = b"PING ".to_vec();
    request.extend_from_slice(&[b'y'; 1000]);
    request.push(b'\n');
    let burst = request.repeat(100);
    thread::spawn(move || while writer.write_all(&burst).is_ok() {});
    thread::sleep(ms(200));
    server.signal("TERM");
    let status = server
        .wait_exit(EXIT_WITHIN)
        .expect("vigil did not exit within 2 s");
    assert_eq!(status.code(), Some(0));
    drop(hog);
}

/// A server started with `args`, and `n` clients that each had a `PONG`.
fn serving(args: &[&str], n: usize) -> (Server, Vec<Client>) {
    let server = VIGIL.start(args);
    let mut clients: Vec<_> = (0..n).map(|_| server.connect()).collect();
    for client in &mut clients {
        client.send(b"PING\n");
        client.expect(b"PONG");
    }
    (server, clients)
}

/// `--drain`: the closes are spread evenly over the drain, so clients do
/// not all reconnect at once.
#[test]
fn a_drain_spreads_the_closes_evenly() {
    let (mut server, clients) = serving(&["--drain", "1s", "--tick", "5ms"], 20);
    let asked = Instant::now();
    server.signal("TERM");
    let readers: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            std::thread::spawn(move || {
                client.expect(b"BYE shutdown");
                asked.elapsed()
            })
        })
        .collect();
    let mut times: Vec<Duration> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    times.sort();
    // Window: one close every 50 ms, the first at once; each within 200 ms
    // of its turn.
    for (i, at) in times.iter().enumerate() {
        let turn = Duration::from_millis(50 * i as u64);
        assert!(
            *at + Duration::from_millis(200) >= turn && *at <= turn + Duration::from_millis(200),
            "close {i} at {at:?}, its turn was {turn:?}: {times:?}"
        );
    }
    assert!(server
        .wait_exit(Duration::from_secs(3))
        .is_some_and(|s| s.success()));
}

/// A second signal ends a drain at once.
#[test]
fn a_second_signal_ends_the_drain() {
    let (mut server, mut clients) = serving(&["--drain", "10s"], 10);
    server.signal("TERM");
    clients[0].expect(b"BYE shutdown"); // the first close is at once
    std::thread::sleep(Duration::from_millis(100));
    let again = Instant::now();
    server.signal("TERM");
    for client in &mut clients[1..] {
        client.expect(b"BYE shutdown");
    }
    // Window: everyone within 1 s of the second signal, not over 10 s.
    assert!(
        again.elapsed() < Duration::from_secs(1),
        "{:?}",
        again.elapsed()
    );
    assert!(server
        .wait_exit(Duration::from_secs(3))
        .is_some_and(|s| s.success()));
}

/// A drain ends as soon as no connection is left, even before its time:
/// clients that leave on their own are not waited for.
#[test]
fn a_drain_ends_when_every_client_has_left() {
    let (mut server, mut clients) = serving(&["--drain", "10s"], 5);
    server.signal("TERM");
    clients[0].expect(b"BYE shutdown"); // the first close is at once
    let left = Instant::now();
    drop(clients);
    // Window: the server exits within 2 s of the last client leaving, not
    // at the end of the 10 s drain.
    assert!(server.wait_exit(EXIT_WITHIN).is_some_and(|s| s.success()));
    assert!(left.elapsed() < EXIT_WITHIN, "{:?}", left.elapsed());
}

/// Stops `server`, sends it `first` then `second`, and resumes it: both
/// signals arrive before its loop runs again (a stopped process runs every
/// pending handler at once when it resumes). Two signals of one kind would
/// merge into one pending signal in the kernel, so they are of two kinds.
fn two_signals_while_stopped(server: &Server, first: &str, second: &str) {
    server.signal("STOP");
    server.signal(first);
    server.signal(second);
    server.signal("CONT");
}

/// Finding 5 of issue 18: two signals handled before the loop runs count
/// as two, so the second ends the drain. (They used to be one readiness
/// event of the signal pipe, which counted as one request.)
#[test]
fn two_signals_before_the_loop_runs_end_the_drain() {
    let (mut server, mut clients) = serving(&["--drain", "10s"], 10);
    let asked = Instant::now();
    two_signals_while_stopped(&server, "TERM", "INT");
    for client in &mut clients {
        client.expect(b"BYE shutdown");
    }
    // Window: everyone within 1 s of the signals, not over the 10 s drain.
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    assert!(server
        .wait_exit(Duration::from_secs(3))
        .is_some_and(|s| s.success()));
}

/// The same through the `--workers` supervisor: it counts the two signals
/// it received at once and forwards two, so its workers end their drains.
#[test]
fn two_signals_to_the_supervisor_end_the_workers_drains() {
    let (mut server, mut clients) = serving(&["--drain", "10s", "--workers", "2"], 10);
    // Both workers listen (`serving` saw the first one's line).
    server
        .wait_for_output("listening on")
        .expect("both workers listen");
    let asked = Instant::now();
    two_signals_while_stopped(&server, "TERM", "INT");
    for client in &mut clients {
        client.expect(b"BYE shutdown");
    }
    // Window: everyone within 1 s of the signals, not over the 10 s drain.
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    assert!(server
        .wait_exit(Duration::from_secs(3))
        .is_some_and(|s| s.success()));
}

/// The log ends with the final counters, even when nothing changed since
/// the last counters line (here: nothing happened at all), then the
/// `stopped by signal` line.
#[test]
fn the_shutdown_logs_the_final_counters() {
    let mut server = VIGIL.start(&[]);
    server.signal("TERM");
    assert!(server.wait_exit(EXIT_WITHIN).is_some_and(|s| s.success()));
    let counters = server.wait_for_output("open 0 (peak 0), accepted 0");
    assert!(counters.is_some(), "no counters line at shutdown");
    assert!(server.wait_for_output("stopped by signal 15").is_some());
}
