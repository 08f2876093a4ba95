//! The `fanout` load scenario accounts for every delivery: against the
//! capacity benchmark's baselines in fan-out mode (the floor, the tokio
//! server), 50 subscribers get every message once and in order, the
//! sender's `OK <n>` counts every other connection, and the report says so
//! through JSON and back. Time windows: 5 messages 20 ms apart, then 20
//! sent on each `OK`; heartbeats every 200 ms against a 5 s idle timeout.
#![cfg(feature = "cli")]

#[allow(dead_code)]
#[path = "../benches/baseline/floor.rs"]
mod floor;
#[allow(dead_code)]
#[path = "../benches/baseline/tokio_server.rs"]
mod tokio_server;

use std::net::SocketAddr;
use std::time::Duration;

use vigil::load::{Options, Report, Scenario};

const SUBSCRIBERS: usize = 50;

/// The floor in fan-out mode on a free port, served by a thread.
fn floor() -> SocketAddr {
    let args = ["--listen", "127.0.0.1:0", "--fanout"].map(String::from);
    let listener = floor::bind(floor::Config::parse(&args).expect("flags")).expect("bind");
    let addr = listener.local_addr().expect("addr");
    std::thread::spawn(move || floor::run(listener, true));
    addr
}

/// The tokio server in fan-out mode on a free port, served by a thread.
fn tokio_server() -> SocketAddr {
    // It binds itself: take a free port, free it, and hand it over.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port");
    let args = ["--listen", &addr.to_string(), "--fanout"].map(String::from);
    let cfg = tokio_server::Config::parse(&args).expect("flags");
    std::thread::spawn(move || tokio_server::serve(cfg));
    for _ in 0..100 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return addr;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the tokio server did not listen on {addr}");
}

/// A small fan-out run against `addr`, read back from JSON.
fn run(addr: SocketAddr) -> Report {
    let mut opts = Options::new(Scenario::Fanout, addr);
    opts.conns = SUBSCRIBERS;
    opts.messages = 5;
    opts.gap = Duration::from_millis(20);
    opts.burst = 20;
    opts.interval = Duration::from_millis(200);
    opts.server_pid = Some(std::process::id());
    let report = vigil::load::run(&opts).expect("run");
    let back = Report::from_json(&report.to_json()).expect("read back");
    assert_eq!(back, report);
    assert!(report.table("t").contains("| missing"));
    back
}

fn check(report: &Report) {
    let f = report.fanout().expect("a fanout report");
    assert_eq!(f.subscribers, SUBSCRIBERS as u64);
    assert_eq!(f.latency.messages, 5);
    assert_eq!(f.latency.complete, 5, "{f:?}");
    assert_eq!(f.latency.last_delivery_samples_ms.len(), 5);
    assert!(f.latency.last_delivery_ms.max.is_some());
    assert_eq!((f.throughput.messages, f.throughput.oks), (20, 20));
    assert_eq!(f.throughput.deliveries, 20 * SUBSCRIBERS as u64);
    assert!(f.throughput.cpu_per_delivery_us.is_some());
    let d = f.deliveries;
    assert_eq!(d.expected, 25 * SUBSCRIBERS as u64, "{d:?}");
    assert_eq!(d.delivered, d.expected, "{d:?}");
    assert!(d.clean(), "{d:?}");
    assert_eq!(f.closed_by_server.total(), 0);
    assert!(f.memory.is_some());
}

#[test]
fn every_delivery_from_the_floor_is_accounted_for() {
    check(&run(floor()));
}

#[test]
fn every_delivery_from_the_tokio_server_is_accounted_for() {
    check(&run(tokio_server()));
}

#[test]
fn fanout_refuses_several_processes() {
    let mut opts = Options::new(Scenario::Fanout, "127.0.0.1:9".parse().unwrap());
    opts.procs = 2;
    let err = vigil::load::run(&opts).expect_err("refused");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}
