//! The close sequence (docs/protocol.md): the end of a connection is exact.
//! Each test is a defect that the server once had, reproduced over real
//! sockets against the real binary.
//!
//! Some need bytes to be waiting in the server's socket before it reads a
//! single one: the server is stopped (SIGSTOP) while the client sends, the
//! test waits until the client's send queue is empty (everything is in the
//! server's receive queue), then the server continues (SIGCONT).
#![cfg(feature = "cli")]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::fd::AsRawFd;
use std::thread;
use std::time::{Duration, Instant};

use socket2::SockRef;
use support::client::Client;
use support::process::{Server, Vigil};
use support::{ms, PATIENCE};

const VIGIL: Vigil = Vigil(env!("CARGO_BIN_EXE_vigil"));

/// Bytes the client has sent that the server's kernel has not acknowledged.
fn unsent(stream: &TcpStream) -> usize {
    let mut queued: libc::c_int = 0;
    // SAFETY: TIOCOUTQ writes one c_int through the pointer, which is valid.
    let rc = unsafe { libc::ioctl(stream.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
    assert_eq!(rc, 0, "ioctl(TIOCOUTQ)");
    queued as usize
}

/// Runs `send` on `client` while `server` is stopped, waits until all of it
/// sits in the server's receive queue, then lets the server run.
fn send_while_stopped(server: &Server, client: &TcpStream, send: impl FnOnce()) {
    server.signal("STOP");
    send();
    let deadline = Instant::now() + PATIENCE;
    while unsent(client) > 0 {
        assert!(
            Instant::now() < deadline,
            "the server's socket did not take it all"
        );
        thread::sleep(ms(1));
    }
    server.signal("CONT");
}

/// Defect 1: a FIN behind more than one read budget of input was never
/// seen: the deferred read took its short read for "drained". With no idle
/// timeout, the connection (and its descriptor) stayed forever.
#[test]
fn a_fin_behind_a_burst_closes_the_connection() {
    let server = VIGIL.start(&["--idle-timeout", "0"]);
    let baseline = server.descriptors();
    let mut client = server.connect();
    let burst = vec![b'\n'; 100 * 1024]; // empty lines: no replies
    let stream = client.stream().try_clone().unwrap();
    send_while_stopped(&server, &stream, || {
        client.send(&burst);
        client.shutdown_write();
    });
    assert_eq!(client.read_to_eof().expect("a clean EOF"), b"");
    assert!(
        server.descriptors_return_to(baseline, PATIENCE),
        "the descriptor leaked"
    );
}

/// Defect 1, with a reset instead of a FIN behind the burst.
#[test]
fn a_reset_behind_a_burst_closes_the_connection() {
    let mut server = VIGIL.start(&["--idle-timeout", "0", "--log-level", "debug"]);
    let baseline = server.descriptors();
    let client = server.connect();
    let stream = client.stream().try_clone().unwrap();
    let burst = vec![b'\n'; 100 * 1024];
    send_while_stopped(&server, &stream, || {
        (&stream).write_all(&burst).unwrap();
    });
    server.signal("STOP");
    // A reset: linger zero, then close.
    SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(stream);
    drop(client);
    thread::sleep(ms(20));
    server.signal("CONT");
    assert!(server.wait_for_output("closed: reset").is_some());
    assert!(
        server.descriptors_return_to(baseline, PATIENCE),
        "the descriptor leaked"
    );
}

/// Defect 2: a client that half-closes with replies still queued got only
/// part of them. It must get every reply to what it sent, then EOF.
#[test]
fn a_half_closed_slow_reader_gets_every_reply() {
    // 4 MB of replies: more than the kernel's send buffer takes while the
    // client's window is small, so most wait in the server's own queue
    // (allowed to grow that far here) when the FIN arrives.
    const PINGS: usize = 800_000;
    let server = VIGIL.start(&["--max-output", "8388608"]);
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&server.addr.into()).unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = thread::spawn(move || {
        writer.write_all(&b"PING\n".repeat(PINGS)).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    // Window: reads of at most 4 KiB with a pause after each, so replies
    // queue up in the server while it reads the FIN.
    let mut got = Vec::new();
    let mut buf = [0; 4096];
    let mut reader = &stream;
    for reads in 0.. {
        let n = reader.read(&mut buf).expect("read replies");
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        if reads % 4 == 0 {
            thread::sleep(ms(1));
        }
    }
    sender.join().unwrap();
    assert_eq!(got.len(), PINGS * 5, "every PONG, then EOF");
    assert!(got.chunks(5).all(|pong| pong == b"PONG\n"));
}

/// Defect 3: `QUIT` with more input behind it ended in a reset instead of
/// `BYE quit` and a clean EOF.
#[test]
fn quit_with_more_input_behind_it_ends_with_a_clean_eof() {
    let server = VIGIL.start(&[]);
    let mut client = server.connect();
    let mut writer = client.stream().try_clone().unwrap();
    let sender = thread::spawn(move || {
        let mut input = b"PING 1\nQUIT\n".to_vec();
        input.extend(b"PING 2\n".repeat(100 * 1024 / 7));
        let _ = writer.write_all(&input);
    });
    let rest = client.read_to_eof().expect("a clean EOF, not a reset");
    sender.join().unwrap();
    assert_eq!(rest, b"PONG 1\nBYE quit\n");
}

/// Defect 3, for an overlong line with more bytes behind it.
#[test]
fn an_overlong_line_with_more_behind_it_ends_with_a_clean_eof() {
    let server = VIGIL.start(&["--max-line", "64"]);
    let mut client = server.connect();
    let mut writer = client.stream().try_clone().unwrap();
    let sender = thread::spawn(move || {
        let _ = writer.write_all(&[b'x'; 100 * 1024]);
    });
    let rest = client.read_to_eof().expect("a clean EOF, not a reset");
    sender.join().unwrap();
    assert_eq!(rest, b"ERR line-too-long\n");
}

/// Defect 3, for every closing line: `BYE idle` to a client that keeps
/// sending after it, while the server is stopped.
#[test]
fn a_closing_line_is_followed_by_eof_even_when_input_crosses_it() {
    let server = VIGIL.start(&["--idle-timeout", "100ms", "--tick", "5ms"]);
    let mut client = server.connect();
    let stream = client.stream().try_clone().unwrap();
    // Window: 100 ms idle; the server is stopped for the write so that the
    // PING arrives before it reads anything, then it answers and goes idle.
    send_while_stopped(&server, &stream, || client.send(b"PING\n"));
    client.expect(b"PONG");
    client.expect(b"BYE idle");
    // Input after the server's FIN is discarded, never answered by a reset
    // while the client still reads.
    let _ = client.try_send(b"PING late\n");
    assert_eq!(client.read_to_eof().expect("a clean EOF"), b"");
}

/// Defect 4: an urgent byte (MSG_OOB) ends a read early with data still
/// queued; the lines after it waited for the idle timeout. They must be
/// answered at once, and the urgent byte is not part of the stream.
#[test]
fn lines_after_an_urgent_byte_are_answered() {
    let server = VIGIL.start(&["--idle-timeout", "5s"]);
    let mut client = server.connect();
    client.send(b"PING 0\n"); // accepted and drained before the stop
    client.expect(b"PONG 0");
    let stream = client.stream().try_clone().unwrap();
    send_while_stopped(&server, &stream, || {
        client.send(b"PING 1\n");
        SockRef::from(&stream).send_out_of_band(b"!").unwrap();
        client.send(b"PING 2\n");
    });
    let asked = Instant::now();
    client.expect(b"PONG 1");
    client.expect(b"PONG 2");
    // Window: well under the 5 s idle timeout the lines used to wait for.
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
}

/// The iteration that sees the shutdown signal serves nothing more: a
/// client waiting in the backlog at that moment is not answered; it reads
/// `BYE shutdown` and EOF (rather than the reset a closing listener would
/// give it).
#[test]
fn no_connection_is_served_after_the_shutdown_signal() {
    let mut server = VIGIL.start(&[]);
    server.signal("STOP");
    let mut late = Client::connect(server.addr); // waits in the backlog
    late.send(b"PING\n");
    server.signal("TERM");
    server.signal("CONT");
    assert!(server.wait_exit(PATIENCE).is_some_and(|s| s.success()));
    assert_eq!(
        late.read_to_eof().expect("a clean EOF"),
        b"BYE shutdown\n",
        "a connection from the backlog was served"
    );
}
