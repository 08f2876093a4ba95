//! The reactor closes idle connections on time, any byte extends the idle
//! deadline, lifetime closes even active connections, probes fire once per
//! silence, and a handler can override one connection's timeouts.
//!
//! Time windows: tick 5 ms; a close is expected no earlier than its deadline
//! and no later than the deadline plus 150 ms (scheduling slack on a loaded
//! 2-core CI machine).

use std::thread::sleep;
use std::time::Duration;

use support::in_process::{config_ms, Server};
use vigil::CloseReason;

const SLACK_MS: u128 = 150;

#[test]
fn idle_connection_is_closed_on_time() {
    let server = Server::start(config_ms(150));
    let mut client = server.connect();
    client.send(b"hello\n");
    client.expect(b"hello");
    client.expect(b"bye idle");
    let waited = client.since_send().as_millis();
    assert!(
        (150..150 + SLACK_MS).contains(&waited),
        "closed after {waited} ms"
    );
    client.expect_closed();
    assert_eq!(server.stop().stats().closed(CloseReason::Idle), 1);
}

#[test]
fn any_byte_even_a_partial_line_extends_the_deadline() {
    let server = Server::start(config_ms(150));
    let mut client = server.connect();
    // 8 x 60 ms = 480 ms of trickle, well past one 150 ms idle timeout.
    for _ in 0..8 {
        client.send(b"x");
        sleep(Duration::from_millis(60));
    }
    client.send(b"\n");
    client.expect(b"xxxxxxxx");
    client.expect(b"bye idle");
    let waited = client.since_send().as_millis();
    assert!(
        (150..150 + SLACK_MS).contains(&waited),
        "closed after {waited} ms"
    );
}

#[test]
fn lifetime_closes_an_active_connection() {
    let mut config = config_ms(100);
    config.lifetime = Some(Duration::from_millis(250));
    let server = Server::start(config);
    let mut client = server.connect();
    let opened = std::time::Instant::now();
    // Heartbeat every 30 ms: idle never fires, lifetime does at 250 ms.
    let line = loop {
        client.send(b"\n");
        let line = client.line();
        if !line.is_empty() {
            break line;
        }
        sleep(Duration::from_millis(30));
    };
    assert_eq!(line.escape_ascii().to_string(), "bye lifetime");
    let lived = opened.elapsed().as_millis();
    assert!(
        (250..250 + SLACK_MS).contains(&lived),
        "closed after {lived} ms"
    );
    assert_eq!(server.stop().stats().closed(CloseReason::Lifetime), 1);
}

#[test]
fn probe_fires_once_and_an_answer_keeps_the_connection() {
    // The idle timeout is long enough that a probe scheduled from the idle
    // deadline instead of the last answer would show as ~400 ms, not 80.
    let mut config = config_ms(400);
    config.probe_after = Some(Duration::from_millis(80));
    let server = Server::start(config);

    let mut answering = server.connect();
    let mut silent = server.connect();
    for _ in 0..3 {
        answering.expect(b"probe");
        let quiet = answering.since_send().as_millis();
        assert!(
            (80..80 + SLACK_MS).contains(&quiet),
            "probed after {quiet} ms"
        );
        answering.send(b"pong\n");
        answering.expect(b"pong");
    }
    // One probe per silence, then the idle close at 400 ms.
    silent.expect(b"probe");
    silent.expect(b"bye idle");
    let reactor = server.stop();
    let stats = reactor.stats();
    assert_eq!(stats.closed(CloseReason::Idle), 1);
    assert_eq!(stats.closed(CloseReason::Shutdown), 1);
}

#[test]
fn handler_overrides_one_connections_idle_timeout() {
    let server = Server::start(config_ms(100));
    let mut long = server.connect();
    let mut short = server.connect();
    long.send(b"idle 400\n");
    short.send(b"\n");
    short.expect(b"");
    short.expect(b"bye idle");
    assert!(short.since_send().as_millis() < 100 + SLACK_MS);
    long.expect(b"bye idle");
    let waited = long.since_send().as_millis();
    assert!(
        (400..400 + SLACK_MS).contains(&waited),
        "closed after {waited} ms"
    );
}

#[test]
fn shortening_an_override_takes_effect_before_the_old_deadline() {
    let server = Server::start(config_ms(1000));
    let mut client = server.connect();
    client.send(b"idle 50\n");
    client.expect(b"bye idle");
    let waited = client.since_send().as_millis();
    assert!(
        (50..50 + SLACK_MS).contains(&waited),
        "closed after {waited} ms"
    );

    let mut client = server.connect();
    client.send(b"life 60\n");
    client.expect(b"bye lifetime");
}

#[test]
fn idle_timeout_off_keeps_silent_connections() {
    let server = Server::start(config_ms(0));
    let mut client = server.connect();
    client.expect_silence(Duration::from_millis(300));
    client.send(b"still here\n");
    client.expect(b"still here");
}

/// A huge interval means "never": tick arithmetic saturates instead of
/// overflowing (a panic in debug builds, a spin in release).
#[test]
fn huge_intervals_mean_never() {
    let mut config = config_ms(0);
    config.stats_interval = Some(Duration::MAX);
    config.accept_retry = Duration::MAX;
    config.linger = Duration::MAX;
    config.lifetime = Some(Duration::MAX);
    let server = Server::start(config);
    // Past tick 0 (5 ms ticks): "now + never" only overflows from tick 1 on.
    sleep(Duration::from_millis(20));
    let mut client = server.connect();
    client.send(b"still here\n"); // counters change: a report is scheduled
    client.expect(b"still here");
    client.send(b"quit\n");
    client.expect(b"bye quit");
    drop(client);
    let reactor = server.stop();
    let stats = reactor.stats();
    assert_eq!(stats.closed(CloseReason::Quit), 1);
}
