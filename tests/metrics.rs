//! `vigil --metrics ADDR`: a scrape of `/metrics`, parsed by a real
//! Prometheus text-format parser, matches what real clients did (connect,
//! heartbeat, go idle, quit, overflow `--max-conns`, send an overlong
//! line), and every connection accepted is open or closed for one reason
//! at every scrape. Bad requests get 400, 404, 405 or 431; scrapes are not
//! connections. Time window: a 500 ms idle timeout.
#![cfg(feature = "cli")]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use support::client::Client;
use support::process::{Server, Vigil};
use support::scrape::{http, scrape, scrape_until, Metrics};
use support::PATIENCE;

const VIGIL: Vigil = Vigil(env!("CARGO_BIN_EXE_vigil"));

fn start(args: &[&str]) -> (Server, SocketAddr) {
    let mut all = vec!["--metrics", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let mut server = VIGIL.start(&all);
    let line = server
        .wait_for_output("serving metrics on ")
        .expect("vigil logs `serving metrics on <url>`");
    let url = line.split("serving metrics on ").nth(1).unwrap().trim();
    let addr = url
        .strip_prefix("http://")
        .and_then(|u| u.strip_suffix("/metrics"))
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("bad url in {line:?}"));
    (server, addr)
}

fn accepted(m: &Metrics) -> f64 {
    m.value("vigil_connections_accepted_total", &[])
}

fn closed(m: &Metrics, reason: &str) -> f64 {
    m.value("vigil_connections_closed_total", &[("reason", reason)])
}

fn open(m: &Metrics) -> f64 {
    m.value("vigil_connections_open", &[])
}

/// Every series `vigil --metrics` promises (docs/operations.md).
const SERIES: &[&str] = &[
    "vigil_connections_open",
    "vigil_connections_peak",
    "vigil_connections_max",
    "vigil_connections_accepted_total",
    "vigil_connections_closed_total",
    "vigil_connections_refused_total",
    "vigil_received_bytes_total",
    "vigil_sent_bytes_total",
    "vigil_lines_received_total",
    "vigil_probes_sent_total",
    "vigil_probes_answered_total",
    "vigil_pushes_total",
    "vigil_push_deliveries_total",
    "vigil_push_delivered_bytes_total",
    "vigil_push_gone_total",
    "vigil_push_recipients_skipped_total",
    "vigil_reap_lateness_seconds",
    "vigil_loop_iterations_total",
    "vigil_loop_events_total",
    "vigil_loop_iteration_busy_seconds",
    "vigil_loop_events_per_iteration",
    "vigil_timer_entries",
    "vigil_deferred_reads_total",
    "vigil_deferred_connections",
    "vigil_accept_pauses_total",
    "vigil_handle_messages_total",
    "vigil_handle_full_total",
    "vigil_handle_wakeups_total",
    "vigil_scrape_connections",
    "vigil_scrapes_total",
    "vigil_build_info",
    "process_open_fds",
    "process_max_fds",
    "process_resident_memory_bytes",
    "process_cpu_seconds_total",
    "process_start_time_seconds",
];

#[test]
fn scraped_counters_match_what_the_clients_saw() {
    let (server, metrics) = start(&[
        "--idle-timeout",
        "500ms",
        "--max-conns",
        "3",
        "--max-line",
        "16",
    ]);
    let addr = server.addr;

    let m = scrape(metrics);
    for series in SERIES {
        assert!(m.has(series), "{series} missing from\n{}", m.text);
    }
    assert_eq!(accepted(&m), 0.0);
    assert_eq!(
        m.value(
            "vigil_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    m.assert_accounted("vigil");

    // A heartbeats in the background for the whole test.
    let stop = Arc::new(AtomicBool::new(false));
    let a = {
        let stop = Arc::clone(&stop);
        let mut a = Client::connect(addr);
        thread::spawn(move || {
            let mut pings = 0;
            while !stop.load(Ordering::Relaxed) {
                a.send(b"PING\n");
                a.expect(b"PONG");
                pings += 1;
                thread::sleep(Duration::from_millis(20));
            }
            a.send(b"PONG\n\nhello\n");
            a.expect(b"hello");
            a.send(b"QUIT\n");
            a.expect_rest(b"BYE quit\n");
            (a, pings)
        })
    };

    let mut b = Client::connect(addr);
    b.send(b"QUIT\n");
    b.expect_rest(b"BYE quit\n");
    scrape_until(metrics, "B's quit", |m| closed(m, "quit") == 1.0).assert_accounted("vigil");

    let mut c = Client::connect(addr);
    c.expect_rest(b"BYE idle\n");
    let m = scrape_until(metrics, "C reaped", |m| closed(m, "idle") == 1.0);
    m.assert_accounted("vigil");
    assert_eq!(m.histogram_count("vigil_reap_lateness_seconds"), 1.0);

    // A, D, E fill the server; F is refused.
    let mut d = Client::connect(addr);
    let mut e = Client::connect(addr);
    for peer in [&mut d, &mut e] {
        peer.send(b"PING\n");
        peer.expect(b"PONG");
    }
    let mut f = Client::connect(addr);
    f.expect_rest(b"BYE full\n");
    let m = scrape_until(metrics, "F refused", |m| closed(m, "full") == 1.0);
    m.assert_accounted("vigil");
    assert_eq!(open(&m), 3.0);
    assert_eq!(m.value("vigil_connections_refused_total", &[]), 1.0);
    // One timer per connection, open or still closing.
    assert_eq!(
        m.value("vigil_timer_entries", &[]),
        3.0 + m.value("vigil_connections_closing", &[])
    );

    // One write, so that the server reads it whole before it closes.
    d.send(b"xxxxxxxxxxxxxxxxxxxx\n");
    d.expect_rest(b"ERR line-too-long\n");
    // E hangs up; what it sent and received still counts.
    let e_traffic = (e.sent(), e.received());
    drop(e);
    scrape_until(metrics, "D and E closed", |m| {
        closed(m, "line-too-long") == 1.0 && closed(m, "peer-closed") == 1.0
    })
    .assert_accounted("vigil");

    stop.store(true, Ordering::Relaxed);
    let (a, pings) = a.join().unwrap();
    let m = scrape_until(metrics, "A's quit and every close finished", |m| {
        open(m) == 0.0 && m.value("vigil_connections_closing", &[]) == 0.0
    });
    m.assert_accounted("vigil");

    assert_eq!(accepted(&m), 6.0);
    for (reason, n) in [
        ("quit", 2.0),
        ("idle", 1.0),
        ("full", 1.0),
        ("line-too-long", 1.0),
        ("peer-closed", 1.0),
        ("lifetime", 0.0),
        ("slow", 0.0),
        ("shutdown", 0.0),
    ] {
        assert_eq!(closed(&m, reason), n, "closed by {reason}");
    }
    assert_eq!(m.value("vigil_connections_peak", &[]), 3.0);
    let lines = |kind| m.value("vigil_lines_received_total", &[("kind", kind)]);
    assert_eq!(lines("ping"), (pings + 2) as f64);
    assert_eq!(lines("pong"), 1.0);
    assert_eq!(lines("empty"), 1.0);
    assert_eq!(lines("quit"), 2.0);
    assert_eq!(lines("other"), 1.0);
    let peers = [&a, &b, &c, &d, &f];
    let sent: usize = e_traffic.0 + peers.iter().map(|p| p.sent()).sum::<usize>();
    let received: usize = e_traffic.1 + peers.iter().map(|p| p.received()).sum::<usize>();
    assert_eq!(m.value("vigil_received_bytes_total", &[]), sent as f64);
    assert_eq!(m.value("vigil_sent_bytes_total", &[]), received as f64);
    assert_eq!(m.value("vigil_timer_entries", &[]), 0.0);
    assert_eq!(m.value("vigil_probes_sent_total", &[]), 0.0);
    assert_eq!(m.histogram_count("vigil_reap_lateness_seconds"), 1.0);
    let iterations = m.value("vigil_loop_iterations_total", &[]);
    assert!(iterations > 0.0);
    assert_eq!(
        m.histogram_count("vigil_loop_iteration_busy_seconds"),
        iterations
    );
    assert_eq!(
        m.histogram_count("vigil_loop_events_per_iteration"),
        iterations
    );
    assert!(m.value("vigil_scrapes_total", &[]) > 0.0);
    assert!(m.value("process_open_fds", &[]) > 0.0);
    assert!(m.value("process_max_fds", &[]) >= m.value("process_open_fds", &[]));
    assert!(m.value("process_resident_memory_bytes", &[]) > 0.0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let started = m.value("process_start_time_seconds", &[]);
    assert!(
        started <= now + 1.0 && started > now - 3600.0,
        "{started} vs {now}"
    );
}

#[test]
fn bad_requests_get_their_status_and_scrapes_are_not_connections() {
    let (server, metrics) = start(&[]);
    let cases: &[(&[u8], u16)] = &[
        (b"GET / HTTP/1.1\r\n\r\n", 404),
        (b"GET /metricsx HTTP/1.1\r\n\r\n", 404),
        (b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405),
        (b"DELETE /metrics HTTP/1.1\r\n\r\n", 405),
        (b"hello\r\n\r\n", 400),
        (b"GET /metrics HTTP/9.9\r\n\r\n", 400),
        (b"GET  /metrics HTTP/1.1\r\n\r\n", 400),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\n", 400),
    ];
    for &(request, status) in cases {
        let response = http(metrics, request);
        assert_eq!(
            response.status,
            status,
            "{:?}",
            String::from_utf8_lossy(request)
        );
        if status == 405 {
            assert_eq!(response.header("Allow"), Some("GET, HEAD"));
        }
    }
    let mut huge = b"GET /metrics HTTP/1.1\r\n".to_vec();
    for i in 0..1000 {
        huge.extend_from_slice(format!("X-Filler-{i}: yes\r\n").as_bytes());
    }
    assert_eq!(http(metrics, &huge).status, 431);

    // HEAD: the headers of a scrape, no body.
    let mut head = TcpStream::connect(metrics).unwrap();
    head.set_read_timeout(Some(PATIENCE)).unwrap();
    head.write_all(b"HEAD /metrics HTTP/1.1\r\n\r\n").unwrap();
    let mut raw = String::new();
    head.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 200 OK\r\n"), "{raw:?}");
    assert!(raw.ends_with("\r\n\r\n"), "{raw:?}");

    // A heartbeat client, then a scrape: only the client is a connection.
    let mut client = server.connect();
    client.send(b"PING\n");
    client.expect(b"PONG");
    let m = scrape(metrics);
    assert_eq!(accepted(&m), 1.0);
    assert_eq!(open(&m), 1.0);
    m.assert_accounted("vigil");
    assert_eq!(m.value("vigil_scrape_connections", &[]), 1.0); // this one
    assert!(m.value("vigil_scrapes_total", &[]) >= cases.len() as f64 + 2.0);
}

#[test]
fn a_metrics_address_in_use_exits_1_with_one_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = VIGIL.run(&["--listen", "127.0.0.1:0", "--metrics", &addr]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr:?}");
    assert!(stderr.contains(&addr), "{stderr:?} does not name {addr}");
}
