//! Sending to a connection by id (`Context::send`): an open one gets the
//! payload, after the replies written before it; a closed id, a reused
//! slot's old id and a connection closed by the shutdown's drain give
//! `Gone`, and nothing ever reaches the wrong connection. Time windows: a
//! 150 ms silence where nothing may arrive; a 600 ms drain.

use std::time::Duration;

use support::in_process::{config_ms, Server};
use support::ms;
use vigil::{Bytes, ConnId, Context, Handler};

/// `WHO` answers `YOU <n>`, n counting opens; `SEND <n> <text>` sends
/// `FROM <text>` to the n-th connection opened and answers `SENT ok` or
/// `SENT gone` (written after the send was asked for, so that a send to
/// oneself comes before it); `QUEUED` answers this connection's queued
/// bytes; anything else is echoed.
#[derive(Debug, Default)]
struct Directory {
    ids: Vec<ConnId>,
}

impl Handler for Directory {
    type Conn = ();

    fn on_open(&mut self, cx: &mut Context<'_>, _: &mut ()) {
        self.ids.push(cx.id());
        assert!(cx.peer_addr().is_some_and(|a| a.ip().is_loopback()));
    }

    fn on_data(&mut self, cx: &mut Context<'_>, _: &mut (), data: &[u8]) {
        for line in data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let text = String::from_utf8_lossy(line).into_owned();
            if text == "WHO" {
                let n = self.ids.iter().position(|&id| id == cx.id()).unwrap();
                cx.write(format!("YOU {n}\n").as_bytes());
            } else if let Some(rest) = text.strip_prefix("SEND ") {
                let (n, msg) = rest.split_once(' ').unwrap();
                let to = self.ids[n.parse::<usize>().unwrap()];
                let payload = Bytes::from(format!("FROM {msg}\n"));
                match cx.send(to, payload) {
                    Ok(()) => cx.write(b"SENT ok\n"),
                    Err(vigil::Gone) => cx.write(b"SENT gone\n"),
                }
            } else if text == "QUEUED" {
                cx.write(format!("QUEUED {}\n", cx.queued()).as_bytes());
            } else {
                cx.write(line);
                cx.write(b"\n");
            }
        }
    }
}

#[test]
fn a_send_reaches_the_connection_named_and_only_it() {
    let server = Server::with_handler(config_ms(0), Directory::default());
    let mut a = server.connect();
    a.send(b"WHO\n");
    a.expect(b"YOU 0");
    let mut b = server.connect();
    b.send(b"WHO\n");
    b.expect(b"YOU 1");
    let mut c = server.connect();
    c.send(b"WHO\n");
    c.expect(b"YOU 2");

    a.send(b"SEND 1 hello\n");
    a.expect(b"SENT ok");
    b.expect(b"FROM hello");
    c.expect_silence(ms(150));

    // To oneself: where it was asked for, between the replies.
    a.send(b"y\nSEND 0 me\nx\n");
    a.expect(b"y");
    a.expect(b"FROM me");
    a.expect(b"SENT ok");
    a.expect(b"x");
    a.send(b"x\nQUEUED\n");
    a.expect(b"x");
    a.expect(b"QUEUED 2"); // this callback's "x\n", nothing else queued
}

#[test]
fn a_closed_or_reused_slots_id_is_gone_and_reaches_no_one() {
    let server = Server::with_handler(config_ms(0), Directory::default());
    let mut a = server.connect();
    a.send(b"WHO\n");
    a.expect(b"YOU 0");
    let mut b = server.connect();
    b.send(b"WHO\n");
    b.expect(b"YOU 1");
    drop(b);
    // The server reads the FIN and closes its side; until then a send may
    // still be handed over, so wait for the close to be decided.
    let mut gone = false;
    for _ in 0..100 {
        a.send(b"SEND 1 late\n");
        if a.line() == b"SENT gone" {
            gone = true;
            break;
        }
        std::thread::sleep(ms(10));
    }
    assert!(gone, "a closed connection's id is gone");

    // c takes b's slab slot (keys are reused at once) with a new generation.
    let mut c = server.connect();
    c.send(b"WHO\n");
    c.expect(b"YOU 2");
    a.send(b"SEND 1 stale\n");
    a.expect(b"SENT gone");
    c.expect_silence(ms(150));
    a.send(b"SEND 2 fresh\n");
    a.expect(b"SENT ok");
    c.expect(b"FROM fresh");

    let reactor = server.stop();
    let stats = reactor.stats();
    assert!(stats.push_gone >= 2, "{stats:?}");
    assert_eq!(
        stats.pushes,
        stats.deliveries + stats.push_gone,
        "{stats:?}"
    );
}

#[test]
fn during_the_shutdown_drain_a_closed_connection_is_gone() {
    let mut config = config_ms(0);
    config.drain = Duration::from_millis(600);
    let server = Server::with_handler(config, Directory::default());
    let mut a = server.connect();
    a.send(b"WHO\n");
    a.expect(b"YOU 0");
    let mut b = server.connect();
    b.send(b"WHO\n");
    b.expect(b"YOU 1");
    server.handle.shutdown();
    // The drain closes a at once, b 300 ms later; b is served meanwhile.
    a.expect_closed();
    b.send(b"SEND 0 after\n");
    b.expect(b"SENT gone");
    b.send(b"SEND 1 self\n");
    b.expect(b"FROM self");
    b.expect(b"SENT ok");
}
