//! Application timers: a connection's timer fires on time (never early),
//! can be reset earlier or later and cancelled, and neither delays nor
//! hastens the idle close; a loop timer fires periodically with access to
//! every connection, and stops when cancelled.
//!
//! Time windows: tick 5 ms; a timer is expected no earlier than its
//! deadline and no later than the deadline plus 150 ms (scheduling slack
//! on a loaded 2-core CI machine).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::in_process::{config_ms, Server};
use vigil::{Bytes, CloseReason, Context, Handler, LoopContext, Reactor, Recipients};

const SLACK_MS: u128 = 150;

/// `timer <ms>` sets this connection's timer, `cancel` cancels it; it
/// fires as the line `timer`. Loop timers fan out `tick <token>`.
#[derive(Debug, Default)]
struct Timed;

impl Handler for Timed {
    type Conn = ();
    fn on_data(&mut self, cx: &mut Context<'_>, _: &mut (), data: &[u8]) {
        for line in data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let text = std::str::from_utf8(line).unwrap();
            if let Some(ms) = text.strip_prefix("timer ") {
                cx.set_timer(Duration::from_millis(ms.parse().unwrap()));
            } else if text == "cancel" {
                cx.cancel_timer();
                assert!(!cx.timer_is_set());
            }
        }
    }
    fn on_timer(&mut self, cx: &mut Context<'_>, _: &mut ()) {
        assert!(!cx.timer_is_set(), "one-shot");
        cx.write(b"timer\n");
    }
    fn on_close(&mut self, cx: &mut Context<'_>, _: &mut (), reason: CloseReason) {
        cx.write(format!("bye {reason}\n").as_bytes());
    }
    fn on_loop_timer(&mut self, lcx: &mut LoopContext<'_>, token: u64) {
        lcx.fan_out(Bytes::from(format!("tick {token}\n")), Recipients::All);
    }
}

fn start(idle_ms: u64) -> (Server<Timed>, vigil::ReactorHandle<Timed>) {
    let reactor = Reactor::bind("127.0.0.1:0".parse().unwrap(), config_ms(idle_ms), Timed).unwrap();
    let handle = reactor.handle();
    (Server::spawn(reactor), handle)
}

#[track_caller]
fn assert_after(start: Instant, ms: u128) {
    let waited = start.elapsed().as_millis();
    assert!(
        (ms..ms + SLACK_MS).contains(&waited),
        "after {waited} ms, expected {ms}"
    );
}

#[test]
fn a_connection_timer_fires_on_time_once() {
    let (server, _) = start(0);
    let mut client = server.connect();
    let t0 = Instant::now();
    client.send(b"timer 100\n");
    client.expect(b"timer");
    assert_after(t0, 100);
    client.expect_silence(Duration::from_millis(200)); // one-shot
}

#[test]
fn a_timer_reset_earlier_or_later_fires_at_the_last_setting() {
    let (server, _) = start(0);
    let mut client = server.connect();
    // Earlier: the wheel entry moves.
    let t0 = Instant::now();
    client.send(b"timer 400\ntimer 100\n");
    client.expect(b"timer");
    assert_after(t0, 100);
    client.expect_silence(Duration::from_millis(400));
    // Later: the registered deadline fires, finds nothing due, re-arms.
    let t1 = Instant::now();
    client.send(b"timer 50\ntimer 250\n");
    client.expect(b"timer");
    assert_after(t1, 250);
}

#[test]
fn a_cancelled_timer_never_fires() {
    let (server, _) = start(0);
    let mut client = server.connect();
    client.send(b"timer 50\ncancel\n");
    client.expect_silence(Duration::from_millis(250));
    client.send(b"timer 30\n");
    client.expect(b"timer");
}

#[test]
fn timers_neither_delay_nor_hasten_the_idle_close() {
    let (server, _) = start(300);
    let mut client = server.connect();
    let t0 = Instant::now();
    // One timer before the idle deadline, one past it.
    client.send(b"timer 100\n");
    client.expect(b"timer");
    assert_after(t0, 100);
    client.send(b"timer 1000\n");
    let t1 = Instant::now();
    client.expect(b"bye idle");
    assert_after(t1, 300);
    client.expect_closed();
    assert_eq!(server.stop().stats().closed(CloseReason::Idle), 1);
}

#[test]
fn a_loop_timer_fires_periodically_until_cancelled() {
    let (server, handle) = start(0);
    let mut a = server.connect();
    let mut b = server.connect();
    a.send(b"x\n"); // both accepted before the first tick goes out
    b.send(b"x\n");
    std::thread::sleep(Duration::from_millis(50));
    let slot = Arc::new(Mutex::new(None::<vigil::LoopTimer>));
    let keep = Arc::clone(&slot);
    let t0 = Instant::now();
    handle
        .execute(move |_, lcx| {
            *keep.lock().unwrap() = Some(lcx.set_periodic(Duration::from_millis(60), 7));
        })
        .unwrap();
    for n in 1..=4u128 {
        a.expect(b"tick 7");
        b.expect(b"tick 7");
        let waited = t0.elapsed().as_millis();
        assert!(waited >= 60 * n, "tick {n} after {waited} ms");
    }
    let timer = slot.lock().unwrap().take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    handle
        .execute(move |_, lcx| tx.send(lcx.cancel_timer(timer)).unwrap())
        .unwrap();
    assert!(rx.recv().unwrap(), "cancelled while live");
    // A tick may have been on its way; after it, nothing.
    let _ = a.next_line(Duration::from_millis(80));
    a.expect_silence(Duration::from_millis(200));
}
