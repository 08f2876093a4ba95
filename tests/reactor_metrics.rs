//! The metrics listener inside a reactor (`Reactor::serve_metrics`) and the
//! library's rendering (`vigil::metrics::Exposition`): a silent or slow
//! scraper is closed at its timeout while others are served; scrapers past
//! the limit wait in the backlog for a free slot; many scrapers at once do not hold up heartbeats;
//! probes, answers and reap lateness are counted; an embedder renders the
//! same series under its own prefix and a worker label without the HTTP
//! listener. Time windows: scrape timeouts of 200 ms, probes every 50 ms.
#![cfg(feature = "metrics")]

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::thread;
use std::time::{Duration, Instant};

use support::client::Client;
use support::in_process::Server;
use support::scrape::{http, scrape, scrape_until, Metrics};
use support::PATIENCE;
use vigil::metrics::Exposition;
use vigil::{CloseReason, Config, LineProtocol, Reactor, ScrapeConfig};

/// A `LineProtocol` reactor serving metrics on its own thread, and the
/// metrics listener's address.
fn start(config: Config, scrape: ScrapeConfig) -> (Server<LineProtocol>, SocketAddr) {
    let mut reactor = Reactor::bind(
        "127.0.0.1:0".parse().unwrap(),
        config,
        LineProtocol::new(64),
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let metrics = listener.local_addr().unwrap();
    reactor
        .serve_metrics(listener, scrape, |m, protocol: &LineProtocol, body| {
            Exposition::new("vigil", None)
                .reactor(m, LineProtocol::close_label)
                .lines(protocol.lines())
                .encode(body)
                .unwrap();
        })
        .unwrap();
    (Server::spawn(reactor), metrics)
}

fn short_scrapes() -> ScrapeConfig {
    let mut scrape = ScrapeConfig::default();
    scrape.timeout = Duration::from_millis(200);
    scrape
}

#[test]
fn a_silent_or_slow_scraper_is_closed_while_others_are_served() {
    let (served, metrics) = start(Config::default(), short_scrapes());
    let mut silent = Client::connect(metrics);
    let mut slow = Client::connect(metrics);
    let dribble = {
        let mut slow = slow.stream().try_clone().unwrap();
        thread::spawn(move || {
            // One byte every 20 ms of a request that never ends: each byte
            // is on time, the request as a whole is not.
            let started = Instant::now();
            for &byte in b"GET /metrics HTTP/1.1\r\nX-Slow: ".iter().cycle() {
                if slow.write_all(&[byte]).is_err() || started.elapsed() > PATIENCE {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
        })
    };
    // Served meanwhile.
    let m = scrape(metrics);
    assert!(m.value("vigil_scrape_connections", &[]) >= 1.0);

    assert!(silent.closed_by_server(), "a silent scraper stays open");
    assert!(slow.closed_by_server(), "a slow scraper stays open");
    dribble.join().unwrap();
    let m = scrape_until(metrics, "only this scrape open", |m| {
        m.value("vigil_scrape_connections", &[]) == 1.0
    });
    // Scrapes are not connections.
    assert_eq!(m.value("vigil_connections_accepted_total", &[]), 0.0);
    served.stop();
}

#[test]
fn scrapers_past_the_limit_wait_for_a_free_slot() {
    let mut config = short_scrapes();
    config.max_connections = 1;
    let (served, metrics) = start(Config::default(), config);
    let mut silent = Client::connect(metrics);
    // Waits in the backlog until the silent one is closed at its timeout.
    let m = scrape(metrics);
    assert_eq!(m.value("vigil_scrape_connections", &[]), 1.0);
    assert!(silent.closed_by_server());
    served.stop();
}

#[test]
fn many_scrapers_at_once_do_not_hold_up_heartbeats() {
    const HEARTBEATS: usize = 8;
    const PINGS: usize = 100;
    const SCRAPERS: usize = 24;
    const SCRAPES: usize = 10;
    let mut config = Config::default();
    config.idle_timeout = Some(Duration::from_secs(1));
    let (served, metrics) = start(config, ScrapeConfig::default());

    let heartbeats: Vec<_> = (0..HEARTBEATS)
        .map(|_| {
            let mut client = served.connect();
            thread::spawn(move || {
                let mut slowest = Duration::ZERO;
                for i in 0..PINGS {
                    let sent = Instant::now();
                    client.send(format!("PING {i}\n").as_bytes());
                    client.expect(format!("PONG {i}").as_bytes());
                    slowest = slowest.max(sent.elapsed());
                    thread::sleep(Duration::from_millis(10));
                }
                (slowest, client)
            })
        })
        .collect();
    let scrapers: Vec<_> = (0..SCRAPERS)
        .map(|_| {
            thread::spawn(move || {
                let mut ok = 0;
                for _ in 0..SCRAPES {
                    let response = http(metrics, b"GET /metrics HTTP/1.1\r\n\r\n");
                    assert_eq!(response.status, 200);
                    Metrics::parse(&response.body).assert_accounted("vigil");
                    ok += 1;
                }
                ok
            })
        })
        .collect();
    let answered: usize = scrapers.into_iter().map(|t| t.join().unwrap()).sum();
    let (round_trips, _clients): (Vec<Duration>, Vec<_>) =
        heartbeats.into_iter().map(|t| t.join().unwrap()).unzip();
    let slowest = round_trips.into_iter().max().unwrap();
    eprintln!(
        "{answered} of {} scrapes answered 200; slowest heartbeat round trip {slowest:?}",
        SCRAPERS * SCRAPES
    );
    assert_eq!(answered, SCRAPERS * SCRAPES);

    let reactor = served.stop();
    let metrics = reactor.metrics();
    // Every heartbeat was answered and none of their connections was
    // reaped: they were only closed by the shutdown.
    assert_eq!(
        metrics.stats.closed(CloseReason::Shutdown),
        HEARTBEATS as u64
    );
    assert_eq!(metrics.stats.closed_total(), HEARTBEATS as u64);
    assert_eq!(reactor.handler().lines().ping, (HEARTBEATS * PINGS) as u64);
    assert!(metrics.scrapes >= (SCRAPERS * SCRAPES) as u64);
}

#[test]
fn probes_answers_and_reap_lateness_are_counted() {
    let mut config = Config::default();
    config.probe_after = Some(Duration::from_millis(50));
    config.idle_timeout = Some(Duration::from_secs(2));
    config.lifetime = None;
    let (served, metrics) = start(config, ScrapeConfig::default());
    let mut client = served.connect();
    client.expect(b"PING");
    client.send(b"PONG\n");
    client.expect(b"PING");
    client.send(b"PONG\nQUIT\n");
    client.expect(b"BYE quit");
    let m = scrape_until(metrics, "the quit", |m| {
        m.value("vigil_connections_open", &[]) == 0.0
    });
    assert_eq!(m.value("vigil_probes_sent_total", &[]), 2.0);
    assert_eq!(m.value("vigil_probes_answered_total", &[]), 2.0);
    assert_eq!(
        m.value("vigil_lines_received_total", &[("kind", "pong")]),
        2.0
    );
    assert_eq!(m.histogram_count("vigil_reap_lateness_seconds"), 0.0);
    served.stop();

    // Lifetime closes are reaps too.
    let mut config = Config::default();
    config.lifetime = Some(Duration::from_millis(100));
    let (served, metrics) = start(config, ScrapeConfig::default());
    let mut client = served.connect();
    client.expect(b"BYE lifetime");
    let m = scrape_until(metrics, "the lifetime close", |m| {
        m.value("vigil_connections_closed_total", &[("reason", "lifetime")]) == 1.0
    });
    let lateness = m.histogram("vigil_reap_lateness_seconds");
    assert_eq!(lateness.last().unwrap().1, 1.0);
    served.stop();
}

#[test]
fn an_embedder_renders_under_its_own_prefix_with_a_worker_label() {
    let mut config = Config::default();
    config.idle_timeout = Some(Duration::from_millis(100));
    let server = Server::with_handler(config, LineProtocol::default());
    let mut client = server.connect();
    client.send(b"PING\n");
    client.expect(b"PONG");
    client.expect(b"BYE idle");
    let reactor = server.stop();

    let mut text = String::new();
    Exposition::new("edge", Some("2"))
        .reactor(&reactor.metrics(), CloseReason::as_str)
        .lines(reactor.handler().lines())
        .build_info("9.9.9")
        .process()
        .encode(&mut text)
        .unwrap();
    let m = Metrics::parse(&text);
    m.assert_accounted("edge");
    for sample in &m.scrape.samples {
        assert_eq!(sample.labels.get("worker"), Some("2"), "{}", sample.metric);
        assert!(
            sample.metric.starts_with("edge_") || sample.metric.starts_with("process_"),
            "{}",
            sample.metric
        );
    }
    assert_eq!(
        m.value("edge_connections_closed_total", &[("reason", "idle")]),
        1.0
    );
    // The library's own words for reasons, unless a protocol maps them.
    assert!(m
        .try_value(
            "edge_connections_closed_total",
            &[("reason", "slow-reader")]
        )
        .is_some());
    assert_eq!(
        m.value("edge_lines_received_total", &[("kind", "ping")]),
        1.0
    );
    assert_eq!(m.histogram_count("edge_reap_lateness_seconds"), 1.0);
    assert_eq!(m.value("edge_build_info", &[("version", "9.9.9")]), 1.0);
    // The counters behind the text are the reactor's own.
    let counted = reactor.metrics();
    assert_eq!(counted.stats.accepted, 1);
    assert_eq!(counted.loop_stats.reap_lateness.count(), 1);
    assert_eq!(
        counted.loop_stats.iterations,
        counted.loop_stats.iteration_busy.count()
    );
}
