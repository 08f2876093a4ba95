//! `examples/fanout.rs` keeps the wire contract of PROTOCOL.md, "The
//! fan-out example (v1.2)": its flags and defaults, `PUB` semantics (empty
//! text, `\r` kept inside, `PUBX` and `pub` echoed), `OK <n>` counting only
//! the open connections the `MSG` was queued for, one order of `MSG`s for
//! everyone, and the rest of the line protocol unchanged. Time windows: a
//! 100 ms silence where nothing may arrive.
//!
//! The example is built by the test (`support::process::example`).
#![cfg(feature = "cli")]

use std::path::PathBuf;
use std::process::Command;

use support::ms;
use support::process::{example, run, Server};

/// The example's binary, built once per test run.
fn fanout() -> PathBuf {
    example("fanout", env!("CARGO_BIN_EXE_vigil"))
}

fn start(args: &[&str]) -> Server {
    Server::start_with(
        Command::new(fanout())
            .args(["--listen", "127.0.0.1:0"])
            .args(args),
    )
}

#[test]
fn pub_reaches_every_other_open_connection_then_ok_counts_them() {
    let server = start(&[]);
    let mut a = server.connect();
    let mut b = server.connect();
    let mut c = server.connect();
    for client in [&mut a, &mut b, &mut c] {
        client.send(b"PING\n");
        client.expect(b"PONG");
    }
    a.send(b"PING 1\nPUB hello world\nPING 2\n");
    a.expect(b"PONG 1");
    a.expect(b"OK 2");
    a.expect(b"PONG 2");
    for client in [&mut b, &mut c] {
        client.expect(b"MSG hello world");
    }
    a.expect_silence(ms(100));

    // Empty texts; `\r` framing dropped, one inside kept; not-PUBs echoed.
    a.send(b"PUB\nPUB \nPUB a\rb\r\nPUBX\npub x\n");
    a.expect(b"OK 2");
    a.expect(b"OK 2");
    a.expect(b"OK 2");
    a.expect(b"PUBX");
    a.expect(b"pub x");
    for client in [&mut b, &mut c] {
        client.expect(b"MSG ");
        client.expect(b"MSG ");
        client.expect(b"MSG a\rb");
    }

    // Not open: one that quit (closing), one whose EOF was read.
    c.send(b"QUIT\n");
    c.expect(b"BYE quit");
    c.expect_closed();
    b.shutdown_write();
    b.expect_closed();
    let mut d = server.connect();
    d.send(b"PING\n");
    d.expect(b"PONG");
    a.send(b"PUB late\n");
    a.expect(b"OK 1");
    d.expect(b"MSG late");
}

#[test]
fn every_connection_sees_the_msgs_in_one_order() {
    let server = start(&[]);
    let mut clients: Vec<_> = (0..4).map(|_| server.connect()).collect();
    for client in &mut clients {
        client.send(b"PING\n");
        client.expect(b"PONG");
    }
    // Two publishers, interleaved by the server in some order.
    let mut script0 = Vec::new();
    let mut script1 = Vec::new();
    for i in 0..50 {
        script0.extend_from_slice(format!("PUB p0 {i}\n").as_bytes());
        script1.extend_from_slice(format!("PUB p1 {i}\n").as_bytes());
    }
    clients[0].send(&script0);
    clients[1].send(&script1);
    let mut orders = Vec::new();
    for (i, client) in clients.iter_mut().enumerate() {
        let mut seen = Vec::new();
        let mut oks = 0;
        let theirs = if i < 2 { 50 } else { 100 };
        while seen.len() < theirs || (i < 2 && oks < 50) {
            let line = client.line();
            if line.starts_with(b"OK ") {
                oks += 1;
            } else {
                seen.push(line);
            }
        }
        orders.push(seen);
    }
    let all = &orders[2];
    assert_eq!(orders[3], *all, "every subscriber, one order");
    let from = |who: &[u8]| -> Vec<Vec<u8>> {
        all.iter().filter(|l| l.starts_with(who)).cloned().collect()
    };
    assert_eq!(
        orders[0],
        from(b"MSG p1 "),
        "p0 sees p1's, in the same order"
    );
    assert_eq!(orders[1], from(b"MSG p0 "));
    let sent: Vec<Vec<u8>> = (0..50)
        .map(|i| format!("MSG p0 {i}").into_bytes())
        .collect();
    assert_eq!(from(b"MSG p0 "), sent, "each sender's in its order");
}

#[test]
fn the_line_protocol_is_unchanged_and_the_text_bound_is_max_line_minus_4() {
    let server = start(&["--max-line", "16", "--idle-timeout", "300ms"]);
    let mut a = server.connect();
    let mut b = server.connect();
    b.send(b"PING\n");
    b.expect(b"PONG");
    a.send(b"PUB 123456789012\n"); // 16 bytes: the longest line
    a.expect(b"OK 1");
    b.expect(b"MSG 123456789012");
    a.send(b"echo me\n");
    a.expect(b"echo me");
    a.send(b"PUB 1234567890123\n");
    a.expect(b"ERR line-too-long");
    a.expect_closed();
    // Listening only, no heartbeat: reaped as idle; MSGs are no activity.
    b.expect(b"BYE idle");
    b.expect_closed();
}

#[test]
fn flags_are_checked_at_start() {
    for args in [
        &["--max-conns", "many"][..],
        &["--idle-timeout", "5"],
        &["--bogus", "1"],
        &["--listen"],
        &["--workers", "0"],
        // Built without the bus feature (`support::process::example`).
        &["--bus", "redis://127.0.0.1:6379"],
    ] {
        let out = run(Command::new(fanout()).args(args));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}
