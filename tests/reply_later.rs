//! A reply held with `Context::hold_reply` and filled later from the loop
//! (`LoopContext::fill_reply`, through a `ReactorHandle`) keeps its request's
//! place: nothing behind it is written before it is filled, holds are
//! filled oldest first, a `fan_out_with_reply`'s hold is never filled by
//! it; a closing connection still takes its fill before its closing line,
//! and an unfilled hold holds a close no longer than `linger`. Time
//! windows: 100 ms silences where nothing may arrive; a hold asked for
//! within 1 s; a 200 ms linger, the close within 1 s.

use std::collections::VecDeque;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::in_process::{config_ms, Server};
use support::ms;
use vigil::{
    Bytes, Config, ConnId, Context, FanOutReport, Gone, Handler, Reactor, ReactorHandle, Recipients,
};

/// `HOLD` holds a reply; `PUB <text>` fans `<text>` out to the others with
/// a reply (`OK <n>`), `PUBHOLD <text>` too, and holds a reply after the
/// `OK <n>`; `QUIT` says `BYE` and closes; anything else is echoed.
#[derive(Debug, Default)]
struct Later {
    held: VecDeque<ConnId>,
}

impl Handler for Later {
    /// A hold is due after the next `OK <n>`.
    type Conn = bool;

    fn on_data(&mut self, cx: &mut Context<'_>, hold_after: &mut bool, data: &[u8]) {
        for line in data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            if line == b"HOLD" {
                cx.hold_reply();
                self.held.push_back(cx.id());
            } else if let Some(text) = line.strip_prefix(b"PUBHOLD ") {
                *hold_after = true;
                let me = cx.id();
                let msg = Bytes::from([text, b"\n"].concat());
                cx.fan_out_with_reply(msg, Recipients::AllBut(me));
            } else if let Some(text) = line.strip_prefix(b"PUB ") {
                let me = cx.id();
                let msg = Bytes::from([text, b"\n"].concat());
                cx.fan_out_with_reply(msg, Recipients::AllBut(me));
            } else if line == b"QUIT" {
                cx.write(b"BYE\n");
                cx.close();
            } else {
                cx.write(line);
                cx.write(b"\n");
            }
        }
    }

    fn on_fan_out_done(&mut self, cx: &mut Context<'_>, hold: &mut bool, report: FanOutReport) {
        cx.write(format!("OK {}\n", report.delivered).as_bytes());
        if std::mem::take(hold) {
            cx.hold_reply();
            self.held.push_back(cx.id());
        }
    }
}

fn start(config: Config) -> (Server<Later>, ReactorHandle<Later>) {
    let reactor = Reactor::bind("127.0.0.1:0".parse().unwrap(), config, Later::default())
        .expect("bind 127.0.0.1:0");
    let handle = reactor.handle();
    (Server::spawn(reactor), handle)
}

/// Fills the oldest hold asked for (of any connection) with `line`, on the
/// loop, once one has been asked for (within 1 s), and says how that went.
fn fill(handle: &ReactorHandle<Later>, line: &'static [u8]) -> Result<(), Gone> {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let (tx, rx) = mpsc::channel();
        handle
            .execute(move |later: &mut Later, lcx| {
                let filled = later.held.pop_front().map(|id| lcx.fill_reply(id, line));
                let _ = tx.send(filled);
            })
            .expect("the loop runs");
        if let Some(filled) = rx.recv_timeout(Duration::from_secs(1)).expect("run") {
            return filled;
        }
        assert!(Instant::now() < deadline, "no hold asked for within 1 s");
        std::thread::sleep(ms(5));
    }
}

#[test]
fn a_held_reply_keeps_its_place_until_it_is_filled() {
    let (server, handle) = start(config_ms(0));
    let mut a = server.connect();
    let mut b = server.connect();
    a.send(b"one\nHOLD\ntwo\nHOLD\nthree\n");
    a.expect(b"one");
    a.expect_silence(ms(100));
    b.send(b"PING\n");
    b.expect(b"PING"); // others are not held up
    assert_eq!(fill(&handle, b"first\n"), Ok(()));
    a.expect(b"first");
    a.expect(b"two");
    a.expect_silence(ms(100));
    assert_eq!(fill(&handle, b"second\n"), Ok(()));
    a.expect(b"second");
    a.expect(b"three");
    a.send(b"four\n");
    a.expect(b"four");
}

#[test]
fn fan_out_holds_and_reply_holds_are_filled_each_by_their_own() {
    // One recipient per loop turn: a fan-out to two takes two turns, so
    // its reply is a hold of its own in the sender's output.
    let mut config = config_ms(0);
    config.fan_out_budget = 1;
    let (server, handle) = start(config);
    let mut a = server.connect();
    let mut others = [server.connect(), server.connect()];
    for c in &mut others {
        c.send(b"PING\n");
        c.expect(b"PING");
    }
    a.send(b"PUB x\nHOLD\nPING\n");
    for c in &mut others {
        c.expect(b"x");
    }
    a.expect(b"OK 2");
    a.expect_silence(ms(100));
    assert_eq!(fill(&handle, b"ANSWER\n"), Ok(()));
    a.expect(b"ANSWER");
    a.expect(b"PING");

    // The reverse: the reply hold first; filled while the fan-out may
    // still run, it never takes the fan-out's place.
    a.send(b"HOLD\nPUB y\nPING\n");
    assert_eq!(fill(&handle, b"ANSWER\n"), Ok(()));
    a.expect(b"ANSWER");
    a.expect(b"OK 2");
    a.expect(b"PING");
}

#[test]
fn a_hold_asked_for_in_on_fan_out_done_follows_its_reply() {
    let (server, handle) = start(config_ms(0));
    let mut a = server.connect();
    let mut b = server.connect();
    b.send(b"PING\n");
    b.expect(b"PING");
    // The fan-out fits the turn's budget: its reply is written in place,
    // and the hold asked for there comes after it.
    a.send(b"one\nPUBHOLD x\ntwo\n");
    b.expect(b"x");
    a.expect(b"one");
    a.expect(b"OK 1");
    a.expect_silence(ms(100));
    assert_eq!(fill(&handle, b"held\n"), Ok(()));
    a.expect(b"held");
    a.expect(b"two");
}

#[test]
fn a_closing_connection_takes_its_fill_before_its_closing_line() {
    let (server, handle) = start(config_ms(0));
    let mut a = server.connect();
    a.send(b"HOLD\nQUIT\n");
    a.expect_silence(ms(100));
    assert_eq!(fill(&handle, b"ANSWER\n"), Ok(()));
    a.expect_rest(b"ANSWER\nBYE\n");
}

#[test]
fn an_unfilled_hold_holds_a_close_no_longer_than_linger() {
    let mut config = config_ms(0);
    config.linger = ms(200);
    let (server, handle) = start(config);
    let mut a = server.connect();
    let sent = Instant::now();
    a.send(b"HOLD\nQUIT\n");
    assert!(a.closed_by_server(), "closed");
    let took = sent.elapsed();
    assert!(took >= ms(150) && took <= ms(1000), "{took:?}");
    assert_eq!(a.received(), 0, "the closing line waited behind the hold");
    assert_eq!(fill(&handle, b"late\n"), Err(Gone));
}
