//! Scale-out on one port: two `--reuse-port` servers bind the same address
//! and both serve; `--workers 2` runs two worker processes on one real port
//! (port 0 asked), restarts a worker that is killed (and logs it), and on
//! SIGTERM or SIGINT stops every worker and exits 0; its workers stop when
//! it is killed; `--workers auto` sizes the count by `--max-conns` and the
//! descriptor limit.
#![cfg(feature = "cli")]

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use support::client::Client;
use support::process::{Server, Vigil};
use support::{ms, PATIENCE};

const VIGIL: Vigil = Vigil(env!("CARGO_BIN_EXE_vigil"));

/// Clients opened to show that connections reach every process: the kernel
/// hashes each connection's addresses, so 64 all landing on one of two
/// listeners has a probability of 2^-63.
const CLIENTS: usize = 64;

/// The pids of `parent`'s children (from /proc/*/stat).
fn children(parent: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`: comm may hold spaces, so split after ')'.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let ppid = after.split_whitespace().nth(1).and_then(|p| p.parse().ok());
        if ppid == Some(parent) {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    pids
}

/// Waits until `parent` has `n` children; returns them.
fn wait_for_children(parent: u32, n: usize) -> Vec<u32> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let pids = children(parent);
        if pids.len() == n {
            return pids;
        }
        assert!(
            Instant::now() < deadline,
            "{parent} has children {pids:?}, expected {n}"
        );
        thread::sleep(ms(10));
    }
}

/// Opens [`CLIENTS`] connections to `addr`, checks each is served, and
/// counts the servers that logged opening at least one of them.
fn serving(servers: &mut [&mut Server], addr: std::net::SocketAddr) -> usize {
    let mut clients: Vec<_> = (0..CLIENTS).map(|_| Client::connect(addr)).collect();
    for client in &mut clients {
        client.send(b"PING\n");
        client.expect(b"PONG");
    }
    let mut count = 0;
    for server in servers {
        if server.wait_for_output(" opened").is_some() {
            count += 1;
        }
    }
    count
}

#[test]
fn two_reuse_port_servers_on_one_port_both_serve() {
    let mut first = VIGIL.start(&["--reuse-port", "--log-level", "debug"]);
    let addr = first.addr.to_string();
    let mut second = VIGIL.start(&["--reuse-port", "--log-level", "debug", "--listen", &addr]);
    assert_eq!(second.addr, first.addr);
    let addr = first.addr;
    assert_eq!(serving(&mut [&mut first, &mut second], addr), 2);
}

#[test]
fn without_reuse_port_the_second_server_cannot_bind() {
    let first = VIGIL.start(&[]);
    let output = VIGIL.run(&["--listen", &first.addr.to_string(), "--reuse-port"]);
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn workers_share_one_port_are_restarted_and_stop_on_sigterm() {
    let mut server = VIGIL.start(&["--workers", "2", "--log-level", "debug"]);
    assert_ne!(server.addr.port(), 0);
    let supervisor = server.pid();
    let workers = wait_for_children(supervisor, 2);
    // `start` saw the first worker's `listening on`; wait for the second's.
    server
        .wait_for_output("listening on")
        .expect("both workers listen");

    // Both workers serve the one port.
    let mut clients: Vec<_> = (0..CLIENTS).map(|_| server.connect()).collect();
    for client in &mut clients {
        client.send(b"PING\n");
        client.expect(b"PONG");
    }
    let mut serving = HashSet::new();
    while serving.len() < 2 {
        let line = server
            .wait_for_output(" opened")
            .unwrap_or_else(|| panic!("only {serving:?} logged connections"));
        for worker in ["worker 0: ", "worker 1: "] {
            if line.contains(worker) {
                serving.insert(worker);
            }
        }
    }
    drop(clients);

    // A worker killed with SIGKILL is restarted, and says so.
    let killed = workers[0];
    let status = Command::new("kill")
        .args(["-s", "KILL", &killed.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let died = server
        .wait_for_output("died (killed by signal 9)")
        .expect("the death is logged");
    assert!(died.contains("restarting in"), "{died}");
    server
        .wait_for_output(" started (pid ")
        .expect("the restart is logged");
    let restarted = wait_for_children(supervisor, 2);
    assert!(!restarted.contains(&killed), "{restarted:?}");
    let mut client = server.connect();
    client.send(b"PING\n");
    client.expect(b"PONG");

    // SIGTERM: every worker says goodbye and exits, then the supervisor
    // exits 0.
    server.signal("TERM");
    client.expect(b"BYE shutdown");
    let status = server
        .wait_exit(Duration::from_secs(3))
        .expect("the supervisor exits");
    assert_eq!(status.code(), Some(0));
    for pid in restarted {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "worker {pid} outlived its supervisor"
        );
    }
}

/// With the default `--max-conns` (100,000), more than 2 workers' 20,000
/// descriptors hold, each worker is given a share its descriptors hold:
/// the first README command with `--workers` warns of nothing.
#[test]
fn the_default_max_conns_gives_workers_no_warning() {
    let mut server = VIGIL.start(&["--workers", "2"]);
    server
        .wait_for_output("listening on")
        .expect("both workers listen");
    let _ = server.wait_for_output("worker 1: descriptor limit");
    server.signal("TERM");
    let _ = server.wait_exit(Duration::from_secs(3));
    let lines = server.output_so_far();
    assert!(
        lines.iter().all(|line| !line.contains("WARN")),
        "{lines:#?}"
    );
}

#[test]
fn workers_stop_when_the_supervisor_is_killed() {
    let mut server = VIGIL.start(&["--workers", "2"]);
    let workers = wait_for_children(server.pid(), 2);
    let status = Command::new("kill")
        .args(["-s", "KILL", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    server.wait_exit(PATIENCE).expect("the supervisor is gone");
    let deadline = Instant::now() + PATIENCE;
    for pid in workers {
        // Gone, or a zombie waiting for whoever adopted it.
        while fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            !stat
                .rsplit_once(')')
                .unwrap()
                .1
                .trim_start()
                .starts_with('Z')
        }) {
            assert!(Instant::now() < deadline, "worker {pid} still runs");
            thread::sleep(ms(10));
        }
    }
}

/// The soft limit on open descriptors, from /proc/self/limits (the server
/// inherits it).
fn nofile_soft_limit() -> u64 {
    let limits = fs::read_to_string("/proc/self/limits").unwrap();
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .unwrap();
    line.split_whitespace().nth(3).unwrap().parse().unwrap()
}

#[test]
fn workers_auto_sizes_by_max_conns_and_the_descriptor_limit() {
    // Each worker fills at most 80 % of its descriptors, 64 kept aside.
    let per_worker = (nofile_soft_limit() - 64) * 80 / 100;
    let max_conns = (2 * per_worker + 1).to_string();
    let mut server = VIGIL.start(&["--workers", "auto", "--max-conns", &max_conns]);
    wait_for_children(server.pid(), 3);
    let mut client = server.connect();
    client.send(b"PING\n");
    client.expect(b"PONG");
    server.signal("INT");
    client.expect(b"BYE shutdown");
    let status = server.wait_exit(Duration::from_secs(3)).expect("exits");
    assert_eq!(status.code(), Some(0));
}

/// Two consecutive free ports on 127.0.0.1: `port` and `port + 1`.
fn two_free_ports() -> u16 {
    for _ in 0..100 {
        let first = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = first.local_addr().unwrap().port();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no two consecutive free ports");
}

/// With `--workers N --metrics ADDR`, worker i serves its own figures on the
/// metrics port + i, each series labelled `worker="i"`.
#[test]
fn each_worker_serves_its_metrics_on_the_port_plus_its_index() {
    let port = two_free_ports();
    let metrics = format!("127.0.0.1:{port}");
    let mut server = VIGIL.start(&["--workers", "2", "--metrics", &metrics]);
    server
        .wait_for_output("listening on")
        .expect("both workers listen");
    for worker in 0..2u16 {
        let addr = format!("127.0.0.1:{}", port + worker).parse().unwrap();
        let label = worker.to_string();
        let m = support::scrape::scrape_until(addr, "a worker's metrics", |m| {
            m.try_value("vigil_connections_open", &[("worker", &label)])
                .is_some()
        });
        assert_eq!(
            m.value(
                "vigil_build_info",
                &[("worker", &label), ("version", env!("CARGO_PKG_VERSION"))]
            ),
            1.0
        );
    }
    server.signal("TERM");
    assert!(server.wait_exit(PATIENCE).is_some_and(|s| s.success()));
}
