//! A `ReactorHandle` pushes into the loop from other threads: sends and
//! fan-outs arrive whole and in order; a full queue returns `Full` at once,
//! counted, and loses nothing it accepted; a producer that panics or drops
//! its handle mid-stream does not stop the loop; after `run` returns every
//! handle says `Stopped`, and every message accepted before ran.
//!
//! Time windows: lines are awaited for up to the client's patience (5 s);
//! nothing here asserts a duration.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use support::in_process::{config_ms, Server};
use vigil::{Bytes, ConnId, Context, Handler, Reactor, ReactorHandle, Recipients};

/// Records each connection's id; echoes what it reads.
#[derive(Debug, Default)]
struct Ids {
    ids: Arc<Mutex<Vec<ConnId>>>,
}

impl Handler for Ids {
    type Conn = ();
    fn on_open(&mut self, cx: &mut Context<'_>, _: &mut ()) {
        self.ids.lock().unwrap().push(cx.id());
    }
    fn on_data(&mut self, cx: &mut Context<'_>, _: &mut (), data: &[u8]) {
        cx.write(data);
    }
}

fn start(queue: usize) -> (Server<Ids>, ReactorHandle<Ids>, Arc<Mutex<Vec<ConnId>>>) {
    let mut config = config_ms(0);
    config.handle_queue = queue;
    let handler = Ids::default();
    let ids = Arc::clone(&handler.ids);
    let reactor = Reactor::bind("127.0.0.1:0".parse().unwrap(), config, handler).unwrap();
    let handle = reactor.handle();
    (Server::spawn(reactor), handle, ids)
}

/// The id of the `n`th connection, once the loop has accepted it.
fn id(ids: &Mutex<Vec<ConnId>>, n: usize) -> ConnId {
    for _ in 0..500 {
        if let Some(&id) = ids.lock().unwrap().get(n) {
            return id;
        }
        thread::sleep(Duration::from_millis(2));
    }
    panic!("connection {n} was not accepted");
}

fn line(text: String) -> Bytes {
    Bytes::from(text + "\n")
}

#[test]
fn sends_and_fan_outs_from_other_threads_arrive_whole_and_in_order() {
    let (server, handle, ids) = start(4096);
    let mut a = server.connect();
    let mut b = server.connect();
    let (ida, _) = (id(&ids, 0), id(&ids, 1));
    let producer = {
        let handle = handle.clone();
        thread::spawn(move || {
            for i in 0..200 {
                handle.send(ida, line(format!("to a {i}"))).unwrap();
                handle
                    .fan_out(line(format!("all {i}")), Recipients::All)
                    .unwrap();
            }
        })
    };
    producer.join().unwrap();
    for i in 0..200 {
        a.expect(format!("to a {i}").as_bytes());
        a.expect(format!("all {i}").as_bytes());
        b.expect(format!("all {i}").as_bytes());
    }
    let stats = server.stop().stats().clone();
    assert_eq!(stats.handle_messages, 400);
    assert_eq!(stats.handle_full, 0);
    assert!(stats.handle_wakeups <= stats.handle_messages);
}

#[test]
fn a_stale_id_never_reaches_the_connection_now_in_its_slot() {
    let (server, handle, ids) = start(16);
    let mut old = server.connect();
    let old_id = id(&ids, 0);
    old.shutdown_write();
    old.expect_closed();
    let mut new = server.connect();
    let new_id = id(&ids, 1);
    assert_ne!(old_id, new_id);
    handle.send(old_id, Bytes::from_static(b"stale\n")).unwrap();
    let (tx, rx) = mpsc::channel();
    handle
        .execute(move |_, lcx| {
            let stale = lcx.send(old_id, Bytes::from_static(b"stale\n"));
            let fresh = lcx.send(new_id, Bytes::from_static(b"fresh\n"));
            tx.send((stale, fresh, lcx.is_open(old_id))).unwrap();
        })
        .unwrap();
    assert_eq!(rx.recv().unwrap(), (Err(vigil::Gone), Ok(()), false));
    new.expect(b"fresh");
}

#[test]
fn a_handle_used_after_run_returned_says_stopped() {
    let (server, handle, ids) = start(16);
    let _client = server.connect();
    let id = id(&ids, 0);
    let reactor = server.stop();
    assert!(handle.is_stopped());
    let err = handle.send(id, Bytes::from_static(b"late\n")).unwrap_err();
    assert!(err.is_stopped());
    assert_eq!(&err.into_inner()[..], b"late\n");
    assert!(handle
        .fan_out(Bytes::new(), Recipients::All)
        .unwrap_err()
        .is_stopped());
    assert!(handle.execute(|_, _| {}).unwrap_err().is_stopped());
    handle.shutdown(); // does nothing now, and does not panic
    drop(reactor);
    assert!(handle.clone().execute(|_, _| {}).unwrap_err().is_stopped());
}

#[test]
fn a_producer_that_panics_or_drops_its_handle_mid_stream_does_not_stop_the_loop() {
    let (server, handle, ids) = start(4096);
    let mut client = server.connect();
    let id = id(&ids, 0);
    let panicking = handle.clone();
    let panicked = thread::spawn(move || {
        for i in 0..50 {
            panicking.send(id, line(format!("p {i}"))).unwrap();
        }
        panic!("the producer fails mid-stream");
    });
    assert!(panicked.join().is_err());
    let dropping = handle.clone();
    thread::spawn(move || {
        for i in 0..50 {
            dropping.send(id, line(format!("d {i}"))).unwrap();
        }
        drop(dropping);
    })
    .join()
    .unwrap();
    for i in 0..50 {
        client.expect(format!("p {i}").as_bytes());
    }
    for i in 0..50 {
        client.expect(format!("d {i}").as_bytes());
    }
    // The loop goes on: it still answers, and takes pushes.
    client.send(b"echo\n");
    client.expect(b"echo");
    handle.send(id, Bytes::from_static(b"after\n")).unwrap();
    client.expect(b"after");
}

#[test]
fn a_full_queue_returns_full_at_once_counted_and_loses_nothing_it_accepted() {
    let (server, handle, ids) = start(8);
    let mut client = server.connect();
    let id = id(&ids, 0);
    // Hold the loop inside a closure, so that nothing is taken meanwhile.
    let (release, held) = mpsc::channel::<()>();
    let (entered, inside) = mpsc::channel::<()>();
    handle
        .execute(move |_, _| {
            entered.send(()).unwrap();
            held.recv().unwrap();
        })
        .unwrap();
    inside.recv().unwrap();
    let mut accepted = 0;
    let mut full = 0;
    for i in 0..13 {
        match handle.send(id, line(format!("n {i}"))) {
            Ok(()) => accepted += 1,
            Err(err) => {
                assert!(err.is_full());
                assert_eq!(err.into_inner(), line(format!("n {i}")), "given back");
                full += 1;
            }
        }
    }
    assert_eq!((accepted, full), (8, 5));
    release.send(()).unwrap();
    for i in 0..8 {
        client.expect(format!("n {i}").as_bytes());
    }
    client.send(b"end\n");
    client.expect(b"end"); // and nothing in between
    let stats = server.stop().stats().clone();
    assert_eq!(stats.handle_full, 5);
    assert_eq!(stats.handle_messages, 9);
}

#[test]
fn every_message_accepted_before_run_returns_runs() {
    let (server, handle, _) = start(64);
    let ran = Arc::new(AtomicUsize::new(0));
    let producers: Vec<_> = (0..2)
        .map(|_| {
            let handle = handle.clone();
            let ran = Arc::clone(&ran);
            thread::spawn(move || {
                let mut accepted = 0usize;
                loop {
                    let ran = Arc::clone(&ran);
                    match handle.execute(move |_, _| {
                        ran.fetch_add(1, Ordering::SeqCst);
                    }) {
                        Ok(()) => accepted += 1,
                        Err(err) if err.is_full() => thread::yield_now(),
                        Err(_) => return accepted,
                    }
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(50));
    let reactor = server.stop();
    let accepted: usize = producers.into_iter().map(|p| p.join().unwrap()).sum();
    assert!(accepted > 0);
    assert_eq!(ran.load(Ordering::SeqCst), accepted);
    assert_eq!(reactor.stats().handle_messages, accepted as u64);
}
