//! Slab slots are reused at once, yet a closed connection's traffic and
//! timers never reach the newer connection in the same slot: under heavy
//! churn every client gets exactly its own bytes back, and short idle timers
//! of closed connections never close their successors early.
//!
//! These are end-to-end checks. Closing cancels a connection's timer and
//! epoll forgets its descriptor, so no stale event or timer reaches a reused
//! slot today; the generation check that would stop one if it did is tested
//! where it lives (`an_id_of_another_generation_is_stale` in
//! `src/reactor/mod.rs`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use support::in_process::{config_ms, Server};
use vigil::CloseReason;

#[test]
fn churn_never_crosses_connections() {
    let server = Server::start(config_ms(2000));
    let addr = server.addr;
    let workers: Vec<_> = (0..4)
        .map(|w| {
            thread::spawn(move || {
                for i in 0..150 {
                    let mut stream = TcpStream::connect(addr).unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(5)))
                        .unwrap();
                    let me = format!("worker {w} round {i}\n");
                    stream.write_all(me.as_bytes()).unwrap();
                    let mut got = vec![0; me.len()];
                    stream.read_exact(&mut got).unwrap();
                    assert_eq!(got, me.as_bytes());
                    if i % 2 == 0 {
                        stream.write_all(b"quit\n").unwrap(); // server closes
                    } // else: the client closes first
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    let reactor = server.stop();
    let stats = reactor.stats();
    assert_eq!(stats.accepted, 600);
    assert_eq!(stats.closed(CloseReason::Idle), 0);
}

#[test]
fn a_dead_connections_timer_does_not_close_its_successor() {
    let server = Server::start(config_ms(1000));
    // Each of these has a 40 ms idle timer when it quits.
    for _ in 0..20 {
        let mut client = server.connect();
        client.send(b"idle 40\n");
        client.send(b"quit\n");
        client.expect(b"bye quit");
    }
    // Their successors reuse the slots; none may be closed by an old timer.
    let mut successors: Vec<_> = (0..20).map(|_| server.connect()).collect();
    for client in &mut successors {
        client.expect_silence(Duration::from_millis(10));
    }
    thread::sleep(Duration::from_millis(150));
    for client in &mut successors {
        client.send(b"alive\n");
        client.expect(b"alive");
    }
}
