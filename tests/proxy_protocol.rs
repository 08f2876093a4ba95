//! `--proxy-protocol`: a PROXY v1 or v2 header (as HAProxy's `send-proxy`
//! and `send-proxy-v2` write it) is consumed before the first line, in one
//! write or in pieces, and the client address it carries is logged; a
//! missing or malformed header gets `ERR proxy-header` and the close, and
//! nothing sent after it is answered; a header that never completes gets
//! `ERR proxy-header` at `--proxy-timeout` (with `0`, the idle timeout
//! reaps it).
#![cfg(feature = "cli")]

use std::thread;

use support::ms;
use support::process::{Server, Vigil};

const VIGIL: Vigil = Vigil(env!("CARGO_BIN_EXE_vigil"));

/// A v2 header: `command` 0 (LOCAL) or 1 (PROXY), `family` byte, `body`.
fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
    let mut bytes = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    bytes.push(0x20 | command);
    bytes.push(family);
    bytes.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
    bytes.extend_from_slice(body);
    bytes
}

/// A v2 PROXY header for TCP over IPv4 from 192.0.2.7:40000 to 10.0.0.1:7373.
fn v2_inet() -> Vec<u8> {
    let mut body = vec![192, 0, 2, 7, 10, 0, 0, 1];
    body.extend_from_slice(&40000u16.to_be_bytes());
    body.extend_from_slice(&7373u16.to_be_bytes());
    v2(1, 0x11, &body)
}

fn server() -> Server {
    VIGIL.start(&["--proxy-protocol", "--log-level", "debug"])
}

#[test]
fn a_v1_header_is_consumed_and_its_client_address_logged() {
    let mut server = server();
    let mut client = server.connect();
    client.send(b"PROXY TCP4 192.0.2.1 127.0.0.1 56324 7373\r\nPING 1\n");
    client.expect(b"PONG 1");
    let line = server
        .wait_for_output("PROXY from ")
        .expect("the header's addresses are logged");
    assert!(
        line.contains("PROXY from 192.0.2.1:56324 to 127.0.0.1:7373"),
        "{line}"
    );
    client.send(b"PING 2\n");
    client.expect(b"PONG 2");
}

#[test]
fn a_v1_tcp6_header_works_too() {
    let mut server = server();
    let mut client = server.connect();
    client.send(b"PROXY TCP6 2001:db8::5 ::1 1234 7373\r\nPING\n");
    client.expect(b"PONG");
    let line = server.wait_for_output("PROXY from ").unwrap();
    assert!(line.contains("[2001:db8::5]:1234"), "{line}");
}

#[test]
fn a_v2_header_is_consumed_and_its_client_address_logged() {
    let mut server = server();
    let mut client = server.connect();
    client.send(&[&v2_inet()[..], b"PING v2\n"].concat());
    client.expect(b"PONG v2");
    let line = server.wait_for_output("PROXY from ").unwrap();
    assert!(
        line.contains("PROXY from 192.0.2.7:40000 to 10.0.0.1:7373"),
        "{line}"
    );
}

#[test]
fn a_v2_local_header_from_a_health_check_is_accepted() {
    let server = server();
    let mut client = server.connect();
    client.send(&[&v2(0, 0x00, &[])[..], b"PING\n"].concat());
    client.expect(b"PONG");
}

#[test]
fn a_header_in_pieces_is_put_together() {
    let server = server();
    for header in [
        v2_inet(),
        b"PROXY TCP4 192.0.2.1 127.0.0.1 56324 7373\r\n".to_vec(),
    ] {
        let mut client = server.connect();
        // Separate writes with pauses: separate reads on the server (the
        // client sets TCP_NODELAY).
        for piece in [&header[..3], &header[3..14], &header[14..]] {
            client.send(piece);
            thread::sleep(ms(30));
        }
        client.send(b"PING\n");
        client.expect(b"PONG");
    }
}

#[test]
fn a_missing_header_gets_err_proxy_header_and_nothing_else() {
    let server = server();
    let mut client = server.connect();
    client.send(b"PING\nPING\n");
    client.expect(b"ERR proxy-header");
    client.expect_closed();
}

#[test]
fn malformed_and_truncated_headers_get_err_proxy_header() {
    let server = server();
    let cases: Vec<Vec<u8>> = vec![
        b"PROXY TCP4 192.0.2.1\r\nPING\n".to_vec(), // v1 cut short before its CRLF
        b"PROXY TCP4 192.0.2.1 127.0.0.1 56324 99999\r\nPING\n".to_vec(),
        b"PROXY TCP4 ::1 ::1 1 2\r\nPING\n".to_vec(),
        b"PROXY TCP4 192.0.2.1 127.0.0.1 56324 7373\nPING\n".to_vec(), // no CR
        [&b"PROXY UNKNOWN "[..], &[b'x'; 200]].concat(),               // no CRLF in 107 bytes
        [&v2(1, 0x11, &[192, 0, 2, 7])[..], b"PING\n"].concat(),       // addresses cut short
        [&v2(1, 0x51, &[0; 12])[..], b"PING\n"].concat(),              // unknown family
        b"\r\n\r\n\0\r\nQUIZ\n!!!!PING\n".to_vec(),                    // garbled signature
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
    ];
    for case in cases {
        let mut client = server.connect();
        client.send(&case);
        let line = client.line();
        assert_eq!(
            line.escape_ascii().to_string(),
            "ERR proxy-header",
            "{}",
            case.escape_ascii()
        );
        client.expect_closed();
    }
}

/// v1.2: until the header is complete only `--proxy-timeout` applies, not
/// the (here shorter) idle timeout.
#[test]
fn a_header_that_never_completes_gets_err_proxy_header_at_the_deadline() {
    let server = VIGIL.start(&[
        "--proxy-protocol",
        "--idle-timeout",
        "100ms",
        "--proxy-timeout",
        "300ms",
    ]);
    let mut client = server.connect();
    client.send(b"PROXY TCP4 192.0.2.1 ");
    client.expect(b"ERR proxy-header");
    client.expect_closed();
}

/// With `--proxy-timeout 0` the header has no deadline of its own: the idle
/// timeout reaps it.
#[test]
fn without_a_proxy_timeout_a_header_that_never_completes_is_reaped_when_idle() {
    let server = VIGIL.start(&[
        "--proxy-protocol",
        "--idle-timeout",
        "300ms",
        "--proxy-timeout",
        "0",
    ]);
    let mut client = server.connect();
    client.send(b"PROXY TCP4 192.0.2.1 ");
    client.expect(b"BYE idle");
    client.expect_closed();
}

#[test]
fn without_the_flag_a_header_is_just_a_line() {
    let server = VIGIL.start(&[]);
    let mut client = server.connect();
    client.send(b"PROXY TCP4 192.0.2.1 127.0.0.1 56324 7373\r\nPING\n");
    client.expect(b"PROXY TCP4 192.0.2.1 127.0.0.1 56324 7373");
    client.expect(b"PONG");
}
