//! The fan-out example over a bus keeps PROTOCOL.md, "Fan-out over a bus
//! (v1.3)": instances on one Redis are one fan-out (a `PUB` on any reaches
//! every other subscriber of all of them once, all in one order, never its
//! sender, who gets `OK <Redis's count>`); while Redis is gone or silent a
//! `PUB` gets `ERR bus` within 1 s and everything else goes on; fan-out
//! resumes within 1 s of Redis coming back, without duplicates; a `PUB`'s
//! reply keeps its place (a `PING` behind it waits for it); a bad
//! `--bus` is one line and exit status 2; `--workers 2 --reuse-port` is two
//! bus subscribers on one port. Windows: `ERR bus` within 1 s of its `PUB`;
//! a `PING` answered within 500 ms while the bus is down; `OK 2` again
//! within 1 s of Redis answering; 200 ms silences where nothing may arrive.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use support::client::Client;
use support::process::{example_with, run, Server};
use support::redis::{Redis, Silent};
use support::{assert_within, ms};

const SECOND: Duration = Duration::from_secs(1);

/// The example, built with the `bus` feature.
fn fanout() -> PathBuf {
    example_with("fanout", env!("CARGO_BIN_EXE_vigil"), &["bus"])
}

fn start(url: &str, args: &[&str]) -> Server {
    Server::start_with(
        Command::new(fanout())
            .args(["--listen", "127.0.0.1:0", "--idle-timeout", "0"])
            .args(["--bus", url])
            .args(args),
    )
}

/// Waits (within 5 s) until `n` processes subscribe to the example's
/// default channel.
#[track_caller]
fn await_subscribers(redis: &Redis, n: usize) {
    let deadline = Instant::now() + support::PATIENCE;
    let want = format!("vigil.fanout\n{n}");
    while redis.cli(&["PUBSUB", "NUMSUB", "vigil.fanout"]) != want {
        assert!(Instant::now() < deadline, "{n} subscribers");
        std::thread::sleep(ms(10));
    }
}

/// A client that has had its first reply (so it receives what follows).
fn client(server: &Server) -> Client {
    let mut c = server.connect();
    c.send(b"PING\n");
    c.expect(b"PONG");
    c
}

fn text(line: &[u8]) -> String {
    String::from_utf8_lossy(line).into_owned()
}

/// `PING`, answered (`MSG`s before the `PONG` skipped); how long it took.
#[track_caller]
fn ping(c: &mut Client) -> Duration {
    let asked = Instant::now();
    c.send(b"PING\n");
    while c.line() != b"PONG" {}
    asked.elapsed()
}

/// `PUB <text>` and its reply, timed.
#[track_caller]
fn publish(c: &mut Client, text_: &str) -> (String, Duration) {
    let sent = Instant::now();
    c.send(format!("PUB {text_}\n").as_bytes());
    (text(&c.line()), sent.elapsed())
}

#[test]
fn three_instances_are_one_fan_out_in_one_order() {
    let Some(redis) = Redis::start() else { return };
    let url = redis.url();
    let servers: Vec<Server> = (0..3).map(|_| start(&url, &[])).collect();
    await_subscribers(&redis, 3);
    let mut senders: Vec<Client> = servers.iter().map(client).collect();
    let mut listeners: Vec<Client> = servers.iter().map(client).collect();
    let rounds = 10;
    for k in 0..rounds {
        for (i, s) in senders.iter_mut().enumerate() {
            s.send(format!("PUB from{i}-{k}\n").as_bytes());
        }
    }
    // Each sender: its 10 `OK 3`s, and the others' 20 messages, never its own.
    for (i, s) in senders.iter_mut().enumerate() {
        let (mut oks, mut msgs) = (0, Vec::new());
        while oks < rounds || msgs.len() < 2 * rounds {
            let line = text(&s.line());
            if line.starts_with("OK ") {
                assert_eq!(line, "OK 3", "Redis reached the three instances");
                oks += 1;
            } else {
                assert!(line.starts_with("MSG from"), "{line}");
                assert!(
                    !line.starts_with(&format!("MSG from{i}-")),
                    "its own: {line}"
                );
                msgs.push(line);
            }
        }
        s.expect_silence(ms(200));
    }
    let orders: Vec<Vec<String>> = listeners
        .iter_mut()
        .map(|l| (0..3 * rounds).map(|_| text(&l.line())).collect())
        .collect();
    for (n, order) in orders.iter().enumerate() {
        assert_eq!(*order, orders[0], "listener {n} sees the bus's one order");
    }
    let mut sorted = orders[0].clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 3 * rounds, "each message once");
    for (i, from) in (0..3).map(|i| (i, format!("MSG from{i}-"))) {
        let theirs: Vec<&String> = orders[0].iter().filter(|m| m.starts_with(&from)).collect();
        let sent: Vec<String> = (0..rounds).map(|k| format!("MSG from{i}-{k}")).collect();
        assert_eq!(
            theirs,
            sent.iter().collect::<Vec<_>>(),
            "sender {i}'s in its order"
        );
    }
    for l in &mut listeners {
        l.expect_silence(ms(200));
    }
}

#[test]
fn redis_killed_mid_stream_err_bus_meanwhile_then_recovery_without_duplicates() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let url = redis.url();
    let (a, b) = (start(&url, &[]), start(&url, &[]));
    await_subscribers(&redis, 2);
    let (mut sender, mut other, mut listener) = (client(&a), client(&a), client(&b));
    for k in 0..5 {
        assert_eq!(publish(&mut sender, &format!("before{k}")).0, "OK 2");
    }
    redis.kill();
    for k in 0..5 {
        let (reply, took) = publish(&mut sender, &format!("lost{k}"));
        assert_eq!(reply, "ERR bus");
        assert_within(took, ms(0)..=SECOND);
        assert_within(ping(&mut other), ms(0)..=ms(500));
        sender.send(b"PING\n");
        sender.expect(b"PONG");
    }
    redis.restart();
    let back = Instant::now();
    let mut answered = Vec::new();
    for k in 0.. {
        let text_ = format!("after{k}");
        let (reply, _) = publish(&mut sender, &text_);
        if reply == "OK 2" {
            answered.push(text_);
            break;
        }
        assert!(back.elapsed() <= SECOND, "no OK 2 within 1 s: {reply}");
        std::thread::sleep(ms(20));
    }
    for k in 0..5 {
        let text_ = format!("again{k}");
        assert_eq!(publish(&mut sender, &text_).0, "OK 2");
        answered.push(text_);
    }
    // The listener: the messages before, then whatever went through while
    // its instance came back, each once; every one answered `OK 2` among them.
    let mut seen = Vec::new();
    while let Ok(Some(line)) = listener.next_line(ms(200)) {
        seen.push(text(&line));
    }
    let before: Vec<String> = (0..5).map(|k| format!("MSG before{k}")).collect();
    assert_eq!(seen[..5], before[..], "{seen:?}");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "no duplicates: {seen:?}");
    for text_ in answered {
        assert!(seen.contains(&format!("MSG {text_}")), "{text_}: {seen:?}");
    }
}

#[test]
fn a_redis_that_stops_answering_gets_err_bus_in_the_pubs_place() {
    let Some(redis) = Redis::start() else { return };
    let server = start(&redis.url(), &[]);
    await_subscribers(&redis, 1);
    let mut sender = client(&server);
    let mut other = client(&server);
    redis.signal("STOP");
    let sent = Instant::now();
    sender.send(b"PUB into the void\nPING\n");
    assert_within(ping(&mut other), ms(0)..=ms(500));
    sender.expect(b"ERR bus");
    assert_within(sent.elapsed(), ms(0)..=SECOND);
    sender.expect(b"PONG");
    redis.signal("CONT");
}

#[test]
fn a_silent_redis_stalls_nothing() {
    let silent = Silent::bind();
    let server = start(&silent.url(), &[]);
    let mut sender = client(&server);
    let mut other = client(&server);
    for k in 0..3 {
        let (reply, took) = publish(&mut sender, &format!("x{k}"));
        assert_eq!(reply, "ERR bus");
        assert_within(took, ms(0)..=SECOND);
        assert_within(ping(&mut other), ms(0)..=ms(500));
    }
    sender.send(b"PUB y\nPING\n");
    sender.expect(b"ERR bus");
    sender.expect(b"PONG");
    other.expect_silence(ms(200));
}

#[test]
fn a_bad_bus_url_is_one_line_and_exit_status_2() {
    for url in [
        "redis//127.0.0.1",
        "redis://h:0",
        "http://h:6379",
        "redis://u:p@h",
    ] {
        let out = run(Command::new(fanout()).args(["--listen", "127.0.0.1:0", "--bus", url]));
        assert_eq!(out.status.code(), Some(2), "{url}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains("bus"), "{stderr}");
    }
}

#[test]
fn two_workers_on_one_port_are_two_subscribers() {
    let Some(redis) = Redis::start() else { return };
    let server = start(&redis.url(), &["--workers", "2", "--reuse-port"]);
    await_subscribers(&redis, 2);
    let mut clients: Vec<Client> = (0..8).map(|_| client(&server)).collect();
    let (first, rest) = clients.split_first_mut().unwrap();
    assert_eq!(publish(first, "hello").0, "OK 2", "each worker subscribes");
    for c in rest {
        c.expect(b"MSG hello");
    }
    first.expect_silence(ms(200));
}

/// `--metrics`: the example's `/metrics` has the reactor's series and the
/// bus's, counting a publish and its message, and the message's time from
/// publish to hand-over (scraped within 5 s).
#[test]
fn metrics_count_the_bus_traffic() {
    let Some(redis) = Redis::start() else { return };
    let mut server = start(&redis.url(), &["--metrics", "127.0.0.1:0"]);
    let line = server
        .wait_for_output("metrics on http://")
        .expect("the metrics address is logged");
    let addr: std::net::SocketAddr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.strip_suffix("/metrics"))
        .and_then(|addr| addr.trim().parse().ok())
        .unwrap_or_else(|| panic!("no address in {line:?}"));
    await_subscribers(&redis, 1);
    let mut sender = client(&server);
    assert_eq!(publish(&mut sender, "counted").0, "OK 1");
    let metrics = support::scrape::scrape_until(addr, "the bus's counts", |m| {
        m.try_value("vigil_bus_messages_in_total", &[]) == Some(1.0)
    });
    assert_eq!(metrics.value("vigil_bus_up", &[]), 1.0);
    assert_eq!(metrics.value("vigil_bus_messages_out_total", &[]), 1.0);
    assert_eq!(metrics.value("vigil_connections_open", &[]), 1.0);
    // The one message, from its publish to its hand-over here.
    assert_eq!(metrics.value("vigil_bus_handover_seconds_count", &[]), 1.0);
}
