//! Limits give defined outcomes: a newcomer over `max_connections` gets the
//! handler's line and is closed; a peer that never reads is closed as a slow
//! reader without growing memory; a flooding peer cannot starve others; a
//! reset or half-close touches only its own connection.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use support::in_process::{config_ms, Script, Server};
use vigil::CloseReason;

#[test]
fn over_max_connections_the_newcomer_is_told_and_closed() {
    let mut config = config_ms(0);
    config.max_connections = 2;
    let server = Server::with_handler(
        config,
        Script {
            full_line: b"full\n",
            ..Script::default()
        },
    );
    let mut first = server.connect();
    let mut second = server.connect();
    first.send(b"1\n");
    second.send(b"2\n");
    first.expect(b"1");
    second.expect(b"2");

    let mut third = server.connect();
    third.expect(b"full");
    third.expect_closed();

    // A slot frees up: the next newcomer is served.
    first.send(b"quit\n");
    first.expect(b"bye quit");
    first.expect_closed();
    let mut fourth = server.connect();
    fourth.send(b"4\n");
    fourth.expect(b"4");

    let reactor = server.stop();
    let stats = reactor.stats();
    assert_eq!(stats.closed(CloseReason::Full), 1);
    assert_eq!(stats.peak_open, 2);
}

#[test]
fn a_peer_that_never_reads_is_closed_as_a_slow_reader() {
    let mut config = config_ms(0);
    config.max_output = 16 * 1024;
    let server = Server::start(config);
    let mut bystander = server.connect();

    // Write echo requests and never read: the kernel buffers fill, then the
    // reactor's queue passes 16 KiB and the connection is closed.
    let mut hog = TcpStream::connect(server.addr).unwrap();
    let chunk = vec![b'a'; 1023]
        .into_iter()
        .chain([b'\n'])
        .collect::<Vec<u8>>();
    let deadline = Instant::now() + Duration::from_secs(10);
    let outcome = loop {
        if let Err(err) = hog.write_all(&chunk) {
            break err;
        }
        assert!(Instant::now() < deadline, "slow reader never closed");
    };
    assert!(
        matches!(
            outcome.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        ),
        "{outcome}"
    );

    bystander.send(b"unaffected\n");
    bystander.expect(b"unaffected");
    assert_eq!(server.stop().stats().closed(CloseReason::SlowReader), 1);
}

#[test]
fn a_flooding_peer_does_not_starve_the_others() {
    let mut config = config_ms(0);
    config.read_budget = 16 * 1024;
    let server = Server::start(config);

    let stop = Arc::new(AtomicBool::new(false));
    let flood = {
        let stop = stop.clone();
        let mut stream = TcpStream::connect(server.addr).unwrap();
        let mut sink = stream.try_clone().unwrap();
        let reader = thread::spawn(move || {
            let mut buf = vec![0; 64 * 1024];
            while matches!(sink.read(&mut buf), Ok(n) if n > 0) {}
        });
        thread::spawn(move || {
            let data = vec![b'f'; 64 * 1024];
            while !stop.load(Ordering::Relaxed) && stream.write_all(&data).is_ok() {}
            let _ = stream.shutdown(Shutdown::Both);
            reader.join().unwrap();
        })
    };
    thread::sleep(Duration::from_millis(50));

    // Window: while the flood runs, 50 round trips each under 250 ms.
    let mut client = server.connect();
    let mut worst = Duration::ZERO;
    for i in 0..50 {
        let started = Instant::now();
        client.send(format!("ping {i}\n").as_bytes());
        client.expect(format!("ping {i}").as_bytes());
        worst = worst.max(started.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    flood.join().unwrap();
    assert!(
        worst < Duration::from_millis(250),
        "worst round trip {worst:?}"
    );
}

#[test]
fn resets_and_half_closes_touch_only_their_connection() {
    let script = Script::default();
    let closes = Arc::clone(&script.closes);
    let server = Server::with_handler(config_ms(0), script);
    let mut bystander = server.connect();

    // Half-close: the request is still answered, then the server closes.
    let mut half = TcpStream::connect(server.addr).unwrap();
    half.write_all(b"last words\n").unwrap();
    half.shutdown(Shutdown::Write).unwrap();
    let mut answer = String::new();
    half.read_to_string(&mut answer).unwrap();
    assert_eq!(answer, "last words\nbye peer-closed\n");

    // Reset mid-line: nothing else notices.
    for _ in 0..20 {
        let mut gone = TcpStream::connect(server.addr).unwrap();
        gone.write_all(b"unfinished").unwrap();
        drop(gone);
    }

    bystander.send(b"still served\n");
    bystander.expect(b"still served");
    // The dropped clients cannot see their close: wait (1 s at most) until
    // the server has closed all 21 before stopping it.
    let waited = Instant::now();
    while closes.load(Ordering::SeqCst) < 21 && waited.elapsed() < Duration::from_secs(1) {
        thread::sleep(Duration::from_millis(5));
    }
    let reactor = server.stop();
    let stats = reactor.stats();
    // The half-close is a FIN; a dropped client whose echo arrived unread
    // sends a reset instead.
    assert!(stats.closed(CloseReason::PeerClosed) >= 1);
    assert_eq!(
        stats.closed(CloseReason::PeerClosed) + stats.closed(CloseReason::Reset),
        21
    );
}
