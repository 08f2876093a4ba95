//! `--reuse-port` and `--workers N`, as the server has them, in their
//! simplest form.
//!
//! `--workers N` (N > 1): this process reserves the address with
//! `SO_REUSEPORT` without listening on it (the real port when port 0 was
//! asked; it gets no connections), then runs itself N times with the same
//! flags followed by `--listen <the real address> --reuse-port --workers 1
//! --max-conns <its share>`: N complete instances, each with its own
//! reactor, listener and, with `--bus`, its own bus connection (so Redis
//! counts N subscribers). The kernel spreads connections over their
//! listeners. Unlike the server's supervisor it restarts nothing: when a
//! worker exits, the others are stopped and this process exits with the
//! worker's status. Workers ask the kernel for SIGTERM when this process
//! dies, so killing it stops them.

use std::io;
use std::net::SocketAddr;
use std::process::{Child, Command, ExitCode};
use std::thread;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

/// A socket bound to `addr` with `SO_REUSEADDR`, and `SO_REUSEPORT` when
/// `reuse_port`.
fn bound(addr: SocketAddr, reuse_port: bool) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// A listener on `addr` that other processes with `SO_REUSEPORT` share.
pub fn reuse_port_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = bound(addr, true)?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// `workers` given as a count, or `auto`: one per CPU.
pub fn parse_workers(text: &str) -> Option<usize> {
    match text {
        "auto" => Some(thread::available_parallelism().map_or(1, |n| n.get())),
        _ => text.parse().ok().filter(|&n| n > 0),
    }
}

/// Runs `workers` instances of this program on `listen` and waits for them.
pub fn supervise(
    workers: usize,
    listen: SocketAddr,
    max_conns: usize,
    metrics: Option<SocketAddr>,
) -> ExitCode {
    let reserved = match bound(listen, true) {
        Ok(socket) => socket,
        Err(err) => {
            eprintln!("fanout: cannot listen on {listen}: {err}");
            return ExitCode::from(2);
        }
    };
    let Some(addr) = reserved.local_addr().ok().and_then(|a| a.as_socket()) else {
        eprintln!("fanout: cannot read the reserved address");
        return ExitCode::FAILURE;
    };
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(err) => {
            eprintln!("fanout: cannot find my binary: {err}");
            return ExitCode::FAILURE;
        }
    };
    let share = max_conns.div_ceil(workers).max(1);
    log::info!(
        "supervising {workers} workers on {addr}, at most {share} connections each (pid {})",
        std::process::id()
    );
    let mut children: Vec<Child> = Vec::with_capacity(workers);
    for index in 0..workers {
        let mut command = Command::new(&exe);
        command
            .args(std::env::args_os().skip(1))
            .arg("--listen")
            .arg(addr.to_string())
            .args(["--reuse-port", "--workers", "1", "--max-conns"])
            .arg(share.to_string());
        if let Some(mut at) = metrics {
            // Worker i on the port plus i (a later flag wins).
            if at.port() != 0 {
                at.set_port(at.port().saturating_add(index as u16));
            }
            command.arg("--metrics").arg(at.to_string());
        }
        die_with_parent(&mut command);
        match command.spawn() {
            Ok(child) => children.push(child),
            Err(err) => {
                log::error!("cannot start worker {index}: {err}");
                stop(&mut children);
                return ExitCode::FAILURE;
            }
        }
    }
    let (index, status) = 'wait: loop {
        for (index, child) in children.iter_mut().enumerate() {
            if let Ok(Some(status)) = child.try_wait() {
                break 'wait (index, status);
            }
        }
        thread::sleep(Duration::from_millis(50));
    };
    log::warn!("worker {index} exited ({status}): stopping the others");
    stop(&mut children);
    drop(reserved);
    match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    }
}

/// Kills and reaps every child still running.
fn stop(children: &mut [Child]) {
    for child in children.iter_mut() {
        let _ = child.kill();
    }
    for child in children.iter_mut() {
        let _ = child.wait();
    }
}

/// The child gets SIGTERM when this process dies (Linux).
#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe, and the closure touches nothing
    // else between fork and exec.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_: &mut Command) {}
