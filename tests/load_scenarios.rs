//! `vigil::load`'s scenarios end to end against a tiny thread-per-connection
//! server, and their reports through JSON and back.
#![cfg(feature = "load")]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use vigil::load::{Options, Report, Scenario};

/// Answers `PING [x]` with `PONG [x]`; after `idle` without a line, writes
/// `BYE idle` and closes. Serves `conns` connections, then stops.
fn server(idle: Duration, conns: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || {
        for stream in listener.incoming().take(conns) {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                stream.set_read_timeout(Some(idle)).expect("timeout");
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut line = String::new();
                loop {
                    line.clear();
                    match reader.read_line(&mut line) {
                        Ok(0) => return,
                        Ok(_) => {
                            let body = line.trim_end();
                            if let Some(rest) = body.strip_prefix("PING") {
                                let _ = writeln!(stream, "PONG{rest}");
                            }
                        }
                        Err(_) => {
                            let _ = stream.write_all(b"BYE idle\n");
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

fn options(scenario: Scenario, addr: SocketAddr, conns: usize) -> Options {
    let mut opts = Options::new(scenario, addr);
    opts.conns = conns;
    opts
}

/// Runs the scenario and reads its report back from JSON, as the capacity
/// benchmark does.
fn run(opts: &Options) -> Report {
    let report = vigil::load::run(opts).expect("run");
    let back = Report::from_json(&report.to_json()).expect("read back");
    assert_eq!(back, report);
    assert!(report.table("t").contains("| connections established"));
    back
}

#[test]
fn hold_opens_and_holds() {
    let addr = server(Duration::from_secs(30), 20);
    let mut opts = options(Scenario::Hold, addr, 20);
    opts.duration = Duration::from_millis(100);
    let report = run(&opts);
    let hold = report.hold().expect("hold");
    assert_eq!(hold.opening.established, 20);
    assert_eq!(hold.closed_by_server.total(), 0);
    assert_eq!(hold.held_open, 20);
}

#[test]
fn heartbeat_counts_pongs_in_order() {
    let addr = server(Duration::from_secs(30), 4);
    let mut opts = options(Scenario::Heartbeat, addr, 4);
    opts.window = 3;
    opts.duration = Duration::from_millis(200);
    let report = run(&opts);
    let hb = report.heartbeat().expect("heartbeat");
    assert_eq!(hb.out_of_order, 0);
    assert!(hb.pongs > 10, "{}", hb.pongs);
    assert!(hb.rtt_us.p99.is_some());
}

#[test]
fn reap_measures_lateness() {
    let addr = server(Duration::from_millis(200), 5);
    let mut opts = options(Scenario::Reap, addr, 5);
    opts.idle_timeout = Duration::from_millis(200);
    opts.grace = Duration::from_secs(1);
    let report = run(&opts);
    let reap = report.reap().expect("reap");
    assert_eq!(reap.reaped, 5);
    assert_eq!(reap.never, 0);
    assert_eq!(reap.late_samples_ms.len(), 5);
    let p99 = reap.late_ms.p99.expect("p99");
    assert!((-1.0..200.0).contains(&p99), "{p99}");
}

#[test]
fn keepalive_keeps_them() {
    let addr = server(Duration::from_millis(400), 5);
    let mut opts = options(Scenario::Keepalive, addr, 5);
    opts.interval = Duration::from_millis(100);
    opts.duration = Duration::from_millis(600);
    let report = run(&opts);
    let ka = report.keepalive().expect("keepalive");
    assert_eq!(ka.reaped, 0);
    assert_eq!(ka.still_open, 5);
}

#[test]
fn a_server_that_is_not_there_is_a_failed_opening() {
    let addr = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    // The listener is dropped: connects are refused.
    let mut opts = options(Scenario::Hold, addr, 3);
    opts.duration = Duration::ZERO;
    let report = run(&opts);
    let opening = report.figures.opening();
    assert_eq!(opening.established, 0);
    assert_eq!(opening.failed, 3);
    assert!(!report.client_fd_limited());
}

#[test]
fn storm_waits_for_every_pong() {
    let addr = server(Duration::from_secs(30), 30);
    let opts = options(Scenario::Storm, addr, 30);
    let report = run(&opts);
    let storm = report.storm().expect("storm");
    assert_eq!(storm.opening.established, 30);
    assert_eq!(storm.opening.failed + storm.opening.timed_out, 0);
    let slowest = storm.wait_ms.max.expect("a wait");
    assert!(slowest >= storm.wait_ms.p50.expect("p50"));
    assert!(storm.tcp.is_some());
}
