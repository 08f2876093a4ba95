//! Every row of the request/reply table: each request line gets exactly its
//! reply, byte for byte, in request order.
#![cfg(feature = "cli")]

use support::ms;
use support::process::Vigil;

const VIGIL: Vigil = Vigil(env!("CARGO_BIN_EXE_vigil"));

#[test]
fn ping_is_answered_pong() {
    let server = VIGIL.start(&[]);
    let mut client = server.connect();
    client.send(b"PING\n");
    client.expect(b"PONG");
}

#[test]
fn ping_payload_comes_back_byte_for_byte() {
    let server = VIGIL.start(&[]);
    let mut client = server.connect();
    client.send(b"PING 42\nPING a  b \nPING \0\x01\xff\xfe\rz\n");
    client.expect(b"PONG 42");
    client.expect(b"PONG a  b ");
    client.expect(b"PONG \0\x01\xff\xfe\rz");
}

#[test]
fn ping_with_an_empty_payload_keeps_its_space() {
    let server = VIGIL.start(&[]);
    let mut client = server.connect();
    client.send(b"PING \n");
    client.expect(b"PONG ");
}

#[test]
fn pong_gets_no_reply() {
    let server = VIGIL.start(&[]);
    let mut client = server.connect();
    client.send(b"PONG\nPONG 7\nPONG anything at all\nPING 1\n");
    // The first reply is the one to PING: the PONGs were silent.
    client.expect(b"PONG 1");
}

#[test]
fn an_empty_line_gets_no_reply() {
    let server = VIGIL.start(&[]);
    let mut client = server.connect();
    client.send(b"\n\r\n\nPING 1\n");
    client.expect(b"PONG 1");
    client.expect_silence(ms(100)); // window: nothing else within 100 ms
}

#[test]
fn quit_is_answered_bye_quit_then_closed() {
    let server = VIGIL.start(&[]);
    let mut client = server.connect();
    client.send(b"QUIT\n");
    client.expect(b"BYE quit");
    client.expect_closed();
}

#[test]
fn lines_after_quit_are_not_answered() {
    let server = VIGIL.start(&[]);
    let mut client = server.connect();
    client.send(b"PING 1\nQUIT\nPING 2\n");
    client.expect(b"PONG 1");
    client.expect(b"BYE quit");
    client.expect_closed();
}

#[test]
fn any_other_line_is_echoed_verbatim() {
    let server = VIGIL.start(&[]);
    let mut client = server.connect();
    client.send(b"hello world\nping\nPINGX\nQUITTER\n PING\n\x00\xff bytes\n");
    for line in [
        &b"hello world"[..],
        b"ping",
        b"PINGX",
        b"QUITTER",
        b" PING",
        b"\x00\xff bytes",
    ] {
        client.expect(line);
    }
}

#[test]
fn carriage_return_before_newline_is_dropped() {
    let server = VIGIL.start(&[]);
    let mut client = server.connect();
    client.send(b"PING 1\r\nhello\r\nQUIT\r\n");
    client.expect(b"PONG 1");
    client.expect(b"hello");
    client.expect(b"BYE quit");
}

#[test]
fn replies_to_thousands_of_pipelined_lines_come_in_order() {
    let server = VIGIL.start(&[]);
    let mut client = server.connect();
    const LINES: usize = 5_000;
    let mut burst = Vec::new();
    for i in 0..LINES {
        burst.extend_from_slice(format!("PING {i}\n").as_bytes());
    }
    // Written from another thread: the replies must be read meanwhile.
    let mut writer = client.stream().try_clone().unwrap();
    let sender = std::thread::spawn(move || std::io::Write::write_all(&mut writer, &burst));
    for i in 0..LINES {
        client.expect(format!("PONG {i}").as_bytes());
    }
    sender.join().unwrap().unwrap();
}

#[test]
fn lines_split_into_one_byte_writes_are_joined() {
    let server = VIGIL.start(&[]);
    let mut client = server.connect();
    for &byte in b"PING split\r\nhello\n".iter() {
        client.send(&[byte]);
        std::thread::sleep(ms(1));
    }
    client.expect(b"PONG split");
    client.expect(b"hello");
}

#[test]
fn a_carriage_return_newline_split_across_writes_is_one_line_end() {
    let server = VIGIL.start(&[]);
    let mut client = server.connect();
    client.send(b"PING 1\r");
    std::thread::sleep(ms(20));
    client.send(b"\n");
    client.expect(b"PONG 1");
}

#[test]
fn many_clients_are_answered_independently() {
    let server = VIGIL.start(&[]);
    let mut clients: Vec<_> = (0..20).map(|_| server.connect()).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        client.send(format!("PING {i}\n").as_bytes());
    }
    for (i, client) in clients.iter_mut().enumerate() {
        client.expect(format!("PONG {i}").as_bytes());
    }
}
