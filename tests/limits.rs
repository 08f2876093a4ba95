//! Limits: an overlong line gets `ERR line-too-long` and a close (without
//! waiting for a newline); past `--max-conns` a newcomer gets `BYE full`; a
//! client that never reads is closed past `--max-output`, and none of these
//! disturb the other clients.
#![cfg(feature = "cli")]

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use support::process::Vigil;
use support::{assert_within, ms};

const VIGIL: Vigil = Vigil(env!("CARGO_BIN_EXE_vigil"));

/// Window: how soon a hog closed as a slow reader sees its writes fail (1 s
/// of discarding without write progress, then the close, with slack).
const WRITES_FAIL_WITHIN: Duration = Duration::from_secs(3);

#[test]
fn a_line_of_exactly_max_line_bytes_is_served() {
    let server = VIGIL.start(&["--max-line", "8"]);
    let mut client = server.connect();
    client.send(b"12345678\nPING 123\r\n");
    client.expect(b"12345678");
    client.expect(b"PONG 123");
}

#[test]
fn an_overlong_line_gets_err_line_too_long_and_a_close() {
    let server = VIGIL.start(&["--max-line", "8"]);
    let mut client = server.connect();
    client.send(b"PING 1\n123456789\nPING 2\n");
    client.expect(b"PONG 1");
    client.expect(b"ERR line-too-long");
    client.expect_closed();
}

#[test]
fn an_overlong_line_is_refused_before_its_newline() {
    let server = VIGIL.start(&["--max-line", "8"]);
    let mut client = server.connect();
    client.send(b"12345678");
    client.expect_silence(ms(100)); // window: 8 bytes may still be a line
    let sent = Instant::now();
    client.send(b"9"); // the 9th byte: certainly too long; no newline sent
    client.expect(b"ERR line-too-long");
    // Window: at once (no timer involved), 200 ms of slack.
    assert_within(sent.elapsed(), ms(0)..=ms(200));
    client.expect_closed();
}

#[test]
fn a_carriage_return_past_max_line_waits_for_its_newline() {
    let server = VIGIL.start(&["--max-line", "8"]);
    let mut client = server.connect();
    client.send(b"12345678\r");
    client.expect_silence(ms(100)); // window: "\r" may precede "\n"
    client.send(b"\n");
    client.expect(b"12345678");
}

#[test]
fn other_clients_are_unaffected_by_an_overlong_line() {
    let server = VIGIL.start(&["--max-line", "8"]);
    let mut bystander = server.connect();
    let mut offender = server.connect();
    offender.send(&[b'x'; 100]);
    offender.expect(b"ERR line-too-long");
    bystander.send(b"PING\n");
    bystander.expect(b"PONG");
}

#[test]
fn past_max_conns_a_newcomer_gets_bye_full_and_later_one_fits_again() {
    let server = VIGIL.start(&["--max-conns", "2"]);
    let mut first = server.connect();
    let mut second = server.connect();
    // Both answered: both accepted.
    for client in [&mut first, &mut second] {
        client.send(b"PING\n");
        client.expect(b"PONG");
    }
    let mut third = server.connect();
    third.expect(b"BYE full");
    third.expect_closed();

    first.send(b"QUIT\n");
    first.expect(b"BYE quit");
    first.expect_closed();
    let mut fourth = server.connect();
    fourth.send(b"PING 4\n");
    fourth.expect(b"PONG 4");
    second.send(b"PING 2\n");
    second.expect(b"PONG 2");
}

#[test]
fn a_client_that_never_reads_is_closed_and_others_are_unaffected() {
    let mut server = VIGIL.start(&["--max-output", "4096", "--log-level", "debug"]);
    let mut bystander = server.connect();
    let hog = server.connect();
    // Long pings, so that each reply is as long as its request: the
    // replies fill the socket buffers, then pass the 4 KiB output limit.
    let mut request = b"PING ".to_vec();
    request.extend_from_slice(&[b'x'; 1000]);
    request.push(b'\n');
    let burst = request.repeat(64);
    let mut writer = hog.stream().try_clone().unwrap();
    let started = Instant::now();
    let hog_thread = thread::spawn(move || {
        // Once it is closed, the server discards what the hog sends for at
        // most 1 s without write progress, then closes the socket, and the
        // writes fail. WRITES_FAIL_WITHIN at most.
        while started.elapsed() < WRITES_FAIL_WITHIN {
            if writer.write_all(&burst).is_err() {
                return true;
            }
        }
        false
    });
    let closed_line = server.wait_for_output("closed: slow-reader");
    assert!(
        closed_line.is_some(),
        "the hog was not closed as a slow reader"
    );
    assert!(
        hog_thread.join().unwrap(),
        "the hog's writes kept succeeding"
    );
    // Window: the buffers fill within a few MiB of input; WRITES_FAIL_WITHIN
    // at most.
    assert!(started.elapsed() < WRITES_FAIL_WITHIN);
    bystander.send(b"PING\n");
    bystander.expect(b"PONG");
    drop(hog);
}
