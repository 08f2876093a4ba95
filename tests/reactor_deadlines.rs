//! The reactor closes idle connections on time, any byte extends the idle
//! deadline, lifetime closes even active connections, probes fire once per
//! silence, and a handler can override one connection's timeouts.
//!
//! Time windows: tick 5 ms; a close is expected no earlier than its deadline
//! and no later than the deadline plus 150 ms (scheduling slack on a loaded
//! 2-core CI machine).

mod reactor_support;

use std::thread::sleep;
use std::time::Duration;

use reactor_support::{config_ms, Server};
use vigil::CloseReason;

const SLACK_MS: u128 = 150;

#[test]
fn idle_connection_is_closed_on_time() {
    let server = Server::start(config_ms(150));
    let mut client = server.connect();
    client.send(b"hello\n");
    assert_eq!(client.line().as_deref(), Some("hello"));
    assert_eq!(client.line().as_deref(), Some("bye idle"));
    let waited = client.elapsed_ms();
    assert!(
        (150..150 + SLACK_MS).contains(&waited),
        "closed after {waited} ms"
    );
    assert_eq!(client.line(), None);
    assert_eq!(server.stop().closed(CloseReason::Idle), 1);
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
    assert_eq!(client.line().as_deref(), Some("xxxxxxxx"));
    assert_eq!(client.line().as_deref(), Some("bye idle"));
    let waited = client.elapsed_ms();
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
        match client.line() {
            Some(line) if line.is_empty() => sleep(Duration::from_millis(30)),
            other => break other,
        }
    };
    assert_eq!(line.as_deref(), Some("bye lifetime"));
    let lived = opened.elapsed().as_millis();
    assert!(
        (250..250 + SLACK_MS).contains(&lived),
        "closed after {lived} ms"
    );
    assert_eq!(server.stop().closed(CloseReason::Lifetime), 1);
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
        assert_eq!(answering.line().as_deref(), Some("probe"));
        let quiet = answering.elapsed_ms();
        assert!(
            (80..80 + SLACK_MS).contains(&quiet),
            "probed after {quiet} ms"
        );
        answering.send(b"pong\n");
        assert_eq!(answering.line().as_deref(), Some("pong"));
    }
    // One probe per silence, then the idle close at 400 ms.
    assert_eq!(silent.line().as_deref(), Some("probe"));
    assert_eq!(silent.line().as_deref(), Some("bye idle"));
    let stats = server.stop();
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
    assert_eq!(short.line().as_deref(), Some(""));
    assert_eq!(short.line().as_deref(), Some("bye idle"));
    assert!(short.elapsed_ms() < 100 + SLACK_MS);
    assert_eq!(long.line().as_deref(), Some("bye idle"));
    let waited = long.elapsed_ms();
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
    assert_eq!(client.line().as_deref(), Some("bye idle"));
    let waited = client.elapsed_ms();
    assert!(
        (50..50 + SLACK_MS).contains(&waited),
        "closed after {waited} ms"
    );

    let mut client = server.connect();
    client.send(b"life 60\n");
    assert_eq!(client.line().as_deref(), Some("bye lifetime"));
}

#[test]
fn idle_timeout_off_keeps_silent_connections() {
    let server = Server::start(config_ms(0));
    let mut client = server.connect();
    assert!(!client.closed_within(Duration::from_millis(300)));
    client.send(b"still here\n");
    assert_eq!(client.line().as_deref(), Some("still here"));
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
    let mut client = server.connect();
    client.send(b"still here\n"); // counters change: a report is scheduled
    assert_eq!(client.line().as_deref(), Some("still here"));
    client.send(b"quit\n");
    assert_eq!(client.line().as_deref(), Some("bye quit"));
    drop(client);
    let stats = server.stop();
    assert_eq!(stats.closed(CloseReason::Quit), 1);
}
