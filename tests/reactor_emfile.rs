//! Running out of file descriptors degrades and recovers: the server (the
//! real `vigil` binary, in a child process with a low `RLIMIT_NOFILE`)
//! neither dies nor spins while descriptors are short, keeps serving the
//! connections it has, warns once for the episode, and accepts the
//! connections waiting in the backlog once descriptors free up.
#![cfg(feature = "cli")]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use support::process::{Server, Vigil};

const VIGIL: Vigil = Vigil(env!("CARGO_BIN_EXE_vigil"));

/// Descriptors the child may hold: a handful for itself, the rest for
/// connections.
const NOFILE: u32 = 32;

/// `vigil` with `RLIMIT_NOFILE` at [`NOFILE`], set by a shell first.
fn start() -> Server {
    Server::start_with(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
        "ulimit -n {NOFILE} && exec \"$0\" --listen 127.0.0.1:0 --idle-timeout 0 --log-level info"
    ))
            .arg(VIGIL.0),
    )
}

/// CPU time (user + system) the process has used, in clock ticks (1/100 s).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Whether a PONG is already waiting on `stream`.
fn answered_now(stream: &mut TcpStream) -> bool {
    stream.set_nonblocking(true).unwrap();
    let mut reply = [0; 5];
    let answered = matches!(stream.read(&mut reply), Ok(5)) && &reply == b"PONG\n";
    stream.set_nonblocking(false).unwrap();
    answered
}

fn ping(stream: &mut TcpStream) -> bool {
    let mut reply = [0; 5];
    stream.write_all(b"PING\n").is_ok()
        && stream.read_exact(&mut reply).is_ok()
        && &reply == b"PONG\n"
}

#[test]
fn fd_exhaustion_pauses_accepting_without_spinning_and_recovers() {
    let mut vigil = start();
    let connect = || {
        let stream = TcpStream::connect(vigil.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        stream
    };

    // More clients than descriptors: the kernel completes every handshake
    // (the backlog), the server accepts only what it can hold.
    let mut clients: Vec<TcpStream> = (0..NOFILE + 8).map(|_| connect()).collect();
    for client in &mut clients {
        client.write_all(b"PING\n").unwrap();
    }
    thread::sleep(Duration::from_millis(300));
    let served: Vec<bool> = clients.iter_mut().map(answered_now).collect();
    let held = served.iter().filter(|&&ok| ok).count();
    assert!(
        held > 0 && held < clients.len(),
        "served {held} of {}",
        clients.len()
    );

    // Window: 1 s of exhaustion may cost at most 0.1 s of CPU (no busy loop).
    let pid = vigil.pid();
    let before = cpu_ticks(pid);
    thread::sleep(Duration::from_secs(1));
    let spent = cpu_ticks(pid) - before;
    assert!(spent <= 10, "spent {spent} ticks of CPU while paused");

    // Still serving what it holds.
    let first_served = served.iter().position(|&ok| ok).unwrap();
    assert!(ping(&mut clients[first_served]));

    // Free descriptors: the waiting clients are accepted and answered.
    let mut waiting: Vec<TcpStream> = Vec::new();
    for (client, ok) in clients.drain(..).zip(served) {
        if !ok {
            waiting.push(client);
        }
    }
    // The served clients are closed now; each waiting one, still in the
    // backlog with its PING unanswered, gets a descriptor.
    let started = Instant::now();
    for mut client in waiting {
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut reply = [0; 5];
        client.read_exact(&mut reply).unwrap(); // the PONG for the earlier PING
        assert_eq!(&reply, b"PONG\n");
        assert!(ping(&mut client));
    }
    assert!(started.elapsed() < Duration::from_secs(5));

    let log = vigil.output_so_far();
    let warnings = log
        .iter()
        .filter(|l| l.contains("out of file descriptors"))
        .count();
    assert_eq!(warnings, 1, "{log:#?}");
    assert!(
        vigil.is_running(),
        "the server exited while descriptors were short"
    );
}
