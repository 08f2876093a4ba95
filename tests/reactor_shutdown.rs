//! A shutdown handle stops the reactor from another thread: every
//! connection gets its last line (best effort) and is closed, and `run`
//! returns promptly even when a peer never reads.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use std::sync::mpsc;

use support::in_process::{config_ms, Script, Server};
use vigil::{CloseReason, Reactor};

#[test]
fn shutdown_closes_everyone_and_returns() {
    let mut config = config_ms(0);
    config.max_output = 64 << 20; // the deaf client must not be closed as slow
    config.linger = Duration::from_millis(300);
    let server = Server::start(config);
    let mut clients: Vec<_> = (0..10).map(|_| server.connect()).collect();
    for client in &mut clients {
        client.send(b"hi\n");
        client.expect(b"hi");
    }
    // This one never reads: 8 MiB of echoes fill its socket buffers and the
    // rest waits in the reactor's queue for it.
    let mut deaf = TcpStream::connect(server.addr).unwrap();
    deaf.set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let junk = vec![b'j'; 64 * 1024];
    for _ in 0..128 {
        if deaf.write_all(&junk).is_err() {
            break;
        }
    }

    let asked = Instant::now();
    let reactor = server.stop();
    let stats = reactor.stats();
    // Window: run() returns within 1 s of the request: the deaf client's
    // close is given up after 300 ms without write progress.
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    for client in &mut clients {
        client.expect(b"bye shutdown");
        client.expect_closed();
    }
    assert_eq!(stats.open, 0);
    assert_eq!(stats.closed(CloseReason::Shutdown), 11);
}

#[test]
fn shutdown_before_run_returns_at_once_and_after_is_harmless() {
    let mut reactor = Reactor::bind(
        "127.0.0.1:0".parse().unwrap(),
        config_ms(0),
        Script::default(),
    )
    .unwrap();
    let handle = reactor.shutdown_handle();
    std::thread::spawn({
        let handle = handle.clone();
        move || handle.shutdown()
    })
    .join()
    .unwrap();
    let (done, returned) = mpsc::channel();
    let runner = std::thread::spawn(move || {
        reactor.run().unwrap();
        done.send(reactor.stats().clone()).unwrap();
    });
    // Window: a reactor asked to stop before it runs returns within 1 s.
    let stats = returned
        .recv_timeout(Duration::from_secs(1))
        .expect("run() ignored a shutdown asked for before it");
    runner.join().unwrap();
    assert_eq!(stats.accepted, 0);
    handle.shutdown(); // after run: harmless
}
