//! A shutdown handle stops the reactor from another thread: every
//! connection gets its last line (best effort) and is closed, and `run`
//! returns promptly even when a peer never reads.

mod reactor_support;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use reactor_support::{config_ms, Server};
use vigil::CloseReason;

#[test]
fn shutdown_closes_everyone_and_returns() {
    let mut config = config_ms(0);
    config.max_output = 64 << 20; // the deaf client must not be closed as slow
    let server = Server::start(config);
    let mut clients: Vec<_> = (0..10).map(|_| server.connect()).collect();
    for client in &mut clients {
        client.send(b"hi\n");
        assert_eq!(client.line().as_deref(), Some("hi"));
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
    let stats = server.stop();
    // Window: run() returns within 1 s of the request.
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    for client in &mut clients {
        assert_eq!(client.line().as_deref(), Some("bye shutdown"));
        assert_eq!(client.line(), None);
    }
    assert_eq!(stats.open, 0);
    assert_eq!(stats.closed(CloseReason::Shutdown), 11);
}

#[test]
fn shutdown_from_another_thread_before_and_after_run() {
    let server = Server::start(config_ms(0));
    let handle = server.handle.clone();
    std::thread::spawn(move || handle.shutdown())
        .join()
        .unwrap();
    let stats = server.stop(); // a second request is harmless
    assert_eq!(stats.accepted, 0);
}
