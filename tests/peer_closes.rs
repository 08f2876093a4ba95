//! A peer that half-closes still gets its replies, then the server closes;
//! a peer that resets is dropped quietly and the server serves the others.
#![cfg(feature = "cli")]

use std::thread;

use support::ms;
use support::process::Vigil;

const VIGIL: Vigil = Vigil(env!("CARGO_BIN_EXE_vigil"));

#[test]
fn a_half_closed_client_still_receives_its_replies_then_the_close() {
    let server = VIGIL.start(&[]);
    let mut client = server.connect();
    client.send(b"PING 1\nhello\n");
    client.shutdown_write();
    client.expect(b"PONG 1");
    client.expect(b"hello");
    client.expect_closed();
}

#[test]
fn a_half_close_with_an_unfinished_line_closes_quietly() {
    let server = VIGIL.start(&[]);
    let mut client = server.connect();
    client.send(b"PING 1\nPING 2"); // no newline before the FIN
    client.shutdown_write();
    client.expect(b"PONG 1");
    client.expect_closed();
}

#[test]
fn a_reset_is_survived_and_others_are_served() {
    let mut server = VIGIL.start(&["--log-level", "debug"]);
    let mut bystander = server.connect();
    for _ in 0..5 {
        let mut resetter = server.connect();
        resetter.send(b"PING 1\nPING 2\nunfinished");
        // Closing a socket whose received bytes were never read sends RST
        // instead of FIN (no SO_LINGER needed). Window: 50 ms for the
        // replies to arrive unread.
        thread::sleep(ms(50));
        drop(resetter);
    }
    let closed = server.wait_for_output("closed: reset");
    assert!(
        closed.is_some(),
        "the reset connection was not closed as reset"
    );
    bystander.send(b"PING\n");
    bystander.expect(b"PONG");
    let mut newcomer = server.connect();
    newcomer.send(b"PING\n");
    newcomer.expect(b"PONG");
}
