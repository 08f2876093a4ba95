//! Fan-out of one shared buffer over real sockets: a subscriber that never
//! reads is closed as slow at `max_output` while the others get every
//! message and the publisher's `OK`s keep coming; under the drop policy
//! its misses are counted and reported when it drains; a fan-out to 1,000
//! recipients is carried out in budgeted batches with another client
//! answered in between; replies stay in request order with pushes
//! interleaved, every line whole. Time windows: each `OK` within 1 s.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};
use support::in_process::{config_ms, Server};
use support::PATIENCE;
use vigil::protocol::PartialLine;
use vigil::{
    Bytes, CloseReason, Config, Context, FanOutReport, Handler, LineProtocol, OverflowPolicy,
    Recipients,
};

/// The line protocol plus `PUB <text>` (`MSG <text>` to all others, then
/// `OK <n>`) and `STATS` (`STATS <open> <deliveries>`); a drained
/// connection that missed pushes gets `LAGGED <n>`.
#[derive(Debug, Default)]
struct Pub {
    lines: LineProtocol,
}

impl Handler for Pub {
    type Conn = PartialLine;

    fn on_data(&mut self, cx: &mut Context<'_>, partial: &mut PartialLine, data: &[u8]) {
        self.lines.on_data_with(cx, partial, data, |cx, line| {
            if let Some(text) = line.strip_prefix(b"PUB ") {
                let msg = [b"MSG ", text, b"\n"].concat();
                let me = cx.id();
                cx.fan_out_with_reply(Bytes::from(msg), Recipients::AllBut(me));
                true
            } else if line == b"STATS" {
                let s = cx.stats();
                let reply = format!("STATS {} {} {}\n", s.open, s.deliveries, s.bytes_out);
                cx.write(reply.as_bytes());
                true
            } else {
                false
            }
        });
    }

    fn on_fan_out_done(&mut self, cx: &mut Context<'_>, _: &mut PartialLine, r: FanOutReport) {
        cx.write(format!("OK {}\n", r.delivered).as_bytes());
    }

    fn on_drain(&mut self, cx: &mut Context<'_>, _: &mut PartialLine, missed: u64) {
        if missed > 0 {
            cx.write(format!("LAGGED {missed}\n").as_bytes());
        }
    }

    fn on_close(&mut self, cx: &mut Context<'_>, partial: &mut PartialLine, reason: CloseReason) {
        self.lines.on_close(cx, partial, reason);
    }
}

fn config(max_output: usize) -> Config {
    let mut config = config_ms(0);
    config.max_output = max_output;
    config
}

/// A client whose receive buffer is small, so that what it does not read
/// backs up into the server's queue soon.
fn small_window_client(addr: SocketAddr) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&addr.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// Reads `MSG <i>` lines until EOF or `until` is seen; returns the numbers.
fn read_msgs(stream: TcpStream, until: Option<&'static str>) -> (Vec<u64>, Vec<String>) {
    let mut reader = BufReader::new(stream);
    let mut msgs = Vec::new();
    let mut other = Vec::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if !line.ends_with('\n') {
            other.push(format!("cut: {line}"));
            break;
        }
        let line = line.trim_end();
        if until.is_some_and(|u| line.starts_with(u)) {
            other.push(line.to_owned());
            break;
        }
        match line.strip_prefix("MSG ") {
            Some(n) => msgs.push(n.split(' ').next().unwrap().parse().unwrap()),
            None => other.push(line.to_owned()),
        }
    }
    (msgs, other)
}

#[test]
fn a_subscriber_that_never_reads_is_closed_slow_and_delays_no_one() {
    slow_subscriber(Config::default().fan_out_budget);
}

/// The same with one write a turn: the second recipient of every message
/// is corked, the slow one too (`src/reactor/cork.rs`), and found past
/// `max_output` when its turn comes or the next message visits it.
#[test]
fn a_corked_subscriber_that_never_reads_is_closed_slow_too() {
    slow_subscriber(1);
}

fn slow_subscriber(budget: usize) {
    let mut config = config(16 * 1024);
    config.fan_out_budget = budget;
    let server = Server::with_handler(config, Pub::default());
    let slow = small_window_client(server.addr);
    let fast = server.connect();
    let mut publisher = server.connect();
    publisher.send(b"PUB 0 hello\n");
    publisher.expect(b"OK 2");
    let fast_reader =
        thread::spawn(move || read_msgs(fast.stream().try_clone().unwrap(), Some("MSG END")));
    let text = "x".repeat(1000);
    let mut published = 1;
    let mut slowest = Duration::ZERO;
    loop {
        let start = Instant::now();
        publisher.send(format!("PUB {published} {text}\n").as_bytes());
        let ok = publisher.line();
        slowest = slowest.max(start.elapsed());
        published += 1;
        if ok == b"OK 1" {
            break; // the slow one is closed
        }
        assert_eq!(ok, b"OK 2");
        assert!(published < 100_000, "never closed");
    }
    publisher.send(b"PUB END\n");
    publisher.expect(b"OK 1");
    assert!(slowest < Duration::from_secs(1), "an OK took {slowest:?}");

    let (msgs, other) = fast_reader.join().unwrap();
    assert_eq!(other, ["MSG END"]);
    assert_eq!(msgs, (0..published).collect::<Vec<_>>(), "{other:?}");
    // The slow one: whole messages in order, then maybe a cut one, then
    // `BYE slow` (only after a whole line), then EOF.
    let (slow_msgs, slow_other) = read_msgs(slow, None);
    assert!(slow_msgs.iter().enumerate().all(|(i, &n)| i as u64 == n));
    assert!((slow_msgs.len() as u64) < published);
    assert!(
        slow_other.is_empty()
            || slow_other == ["BYE slow"]
            || slow_other[0].starts_with("cut: MSG"),
        "{slow_other:?}"
    );
    drop(publisher);
    let reactor = server.stop();
    let stats = reactor.stats();
    assert_eq!(stats.push_closed, 1, "{stats:?}");
    assert_eq!(stats.closed(CloseReason::SlowReader), 1);
}

#[test]
fn under_the_drop_policy_misses_are_counted_and_reported_on_drain() {
    let mut config = config(16 * 1024);
    config.overflow = OverflowPolicy::Drop;
    let server = Server::with_handler(config, Pub::default());
    let mut lagging = small_window_client(server.addr);
    let mut publisher = server.connect();
    publisher.send(b"PUB 0\n");
    publisher.expect(b"OK 1");
    let text = "y".repeat(1000);
    let mut published = 1;
    let mut dropped = 0;
    while dropped < 10 {
        publisher.send(format!("PUB {published} {text}\n").as_bytes());
        match &publisher.line()[..] {
            b"OK 1" => {}
            b"OK 0" => dropped += 1,
            other => panic!("{}", other.escape_ascii()),
        }
        published += 1;
        assert!(published < 100_000, "never dropped");
    }
    // The lagging client reads now: every message it got, in order, then
    // how many it missed.
    lagging.write_all(b"\n").unwrap();
    let (msgs, other) = read_msgs(lagging.try_clone().unwrap(), Some("LAGGED"));
    let missed: u64 = other
        .last()
        .unwrap()
        .strip_prefix("LAGGED ")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(missed, dropped);
    assert_eq!(msgs.len() as u64 + missed, published);
    assert!(msgs.windows(2).all(|w| w[0] < w[1]));
    let mut rest = [0; 1];
    lagging
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    assert!(lagging.read(&mut rest).is_err(), "still open, nothing more");
    let reactor = server.stop();
    assert_eq!(reactor.stats().push_dropped, dropped);
    assert_eq!(reactor.stats().closed(CloseReason::SlowReader), 0);
    #[cfg(feature = "metrics")]
    {
        let mut text = String::new();
        vigil::metrics::Exposition::new("t", None)
            .reactor(&reactor.metrics(), CloseReason::as_str)
            .encode(&mut text)
            .unwrap();
        let line = format!("t_push_recipients_skipped_total{{policy=\"drop\"}} {dropped}\n");
        assert!(text.contains(&line), "{text}");
        assert!(
            text.contains(&format!("t_pushes_total {published}\n")),
            "{text}"
        );
    }
}

#[test]
fn a_fan_out_to_a_thousand_goes_in_batches_and_others_are_answered_between() {
    const RECIPIENTS: usize = 1000;
    let mut config = config(64 * 1024);
    // One write a turn: the fan-out's writes take a thousand turns, and
    // the recipients past the first are corked (`src/reactor/cork.rs`).
    config.fan_out_budget = 1;
    let server = Server::with_handler(config, Pub::default());
    let recipients: Vec<TcpStream> = (0..RECIPIENTS)
        .map(|_| TcpStream::connect(server.addr).unwrap())
        .collect();
    let mut publisher = server.connect();
    let mut pinger = server.connect();
    let open = RECIPIENTS + 2;
    let deadline = Instant::now() + PATIENCE;
    let stats = |pinger: &mut support::client::Client| -> Vec<u64> {
        pinger.send(b"STATS\n");
        let mut line = String::from_utf8(pinger.line()).unwrap();
        if line == "MSG 1" {
            // The pinger is a recipient too.
            line = String::from_utf8(pinger.line()).unwrap();
        }
        line.split(' ')
            .skip(1)
            .map(|n| n.parse().unwrap())
            .collect()
    };
    let before = loop {
        let s = stats(&mut pinger);
        if s[0] == open as u64 {
            break s[2];
        }
        assert!(Instant::now() < deadline, "not all connected");
    };
    publisher.send(b"PUB 1\n");
    // The MSG lines alone: the STATS replies meanwhile only add to it, so
    // a figure below it means some recipient still waits for its MSG.
    let all_written = before + (RECIPIENTS as u64 + 1) * b"MSG 1\n".len() as u64;
    let mut between = 0;
    let total = (RECIPIENTS + 1) as u64;
    loop {
        let s = stats(&mut pinger);
        if s[1] == total && s[2] < all_written {
            between += 1;
        }
        if s[2] >= all_written {
            break;
        }
        assert!(Instant::now() < deadline + PATIENCE, "never all written");
    }
    publisher.expect(format!("OK {total}").as_bytes());
    assert!(between > 0, "no answer between two batches of writes");
    for mut recipient in &recipients {
        let mut buf = [0; 16];
        recipient.set_read_timeout(Some(PATIENCE)).unwrap();
        let n = recipient.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"MSG 1\n");
    }
}

#[test]
fn replies_stay_in_order_with_pushes_between_them() {
    let server = Server::with_handler(config(1 << 20), Pub::default());
    const SUBSCRIBERS: usize = 3;
    const ROUNDS: usize = 300;
    let subscribers: Vec<_> = (0..SUBSCRIBERS)
        .map(|_| {
            let mut c = server.connect();
            c.send(b"PING\n");
            c.expect(b"PONG");
            c
        })
        .collect();
    let mut publisher = server.connect();
    let threads: Vec<_> = subscribers
        .into_iter()
        .map(|mut c| {
            thread::spawn(move || {
                let mut writer = c.stream().try_clone().unwrap();
                let pings = thread::spawn(move || {
                    for i in 0..ROUNDS {
                        writer
                            .write_all(format!("PING {i}\n\n").as_bytes())
                            .unwrap();
                    }
                });
                let (mut pong, mut msg) = (0, 0);
                while pong < ROUNDS || msg < ROUNDS {
                    let line = String::from_utf8(c.line()).unwrap();
                    if let Some(n) = line.strip_prefix("PONG ") {
                        assert_eq!(n, pong.to_string());
                        pong += 1;
                    } else if let Some(n) = line.strip_prefix("MSG ") {
                        assert_eq!(n, format!("{msg} {}", "z".repeat(msg % 50)));
                        msg += 1;
                    } else {
                        panic!("unexpected line {line:?}");
                    }
                }
                pings.join().unwrap();
            })
        })
        .collect();
    let mut script = Vec::new();
    for i in 0..ROUNDS {
        script.extend_from_slice(format!("PING a{i}\nPUB {i} {}\n", "z".repeat(i % 50)).as_bytes());
    }
    publisher.send(&script);
    for i in 0..ROUNDS {
        publisher.expect(format!("PONG a{i}").as_bytes());
        publisher.expect(format!("OK {SUBSCRIBERS}").as_bytes());
    }
    for t in threads {
        t.join().unwrap();
    }
}
