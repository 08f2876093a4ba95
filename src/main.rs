//! `vigil`: the standalone heartbeat server.
//!
//! Parses the flags, starts the logger, serves until SIGINT or SIGTERM.
//! With `--workers` other than 1, supervises worker processes instead (see
//! `supervisor.rs`); each worker is this binary again. Exit status: 0 after a signal, 1 if the server cannot start (address in
//! use), 2 for a bad flag or value. The protocol and the flags are described
//! in `docs/protocol.md`.
#![forbid(unsafe_code)]

mod cli;
mod duration;
mod logger;
mod supervisor;

use std::io::{self, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use signal_hook::consts::{SIGINT, SIGTERM};
use socket2::{Domain, Protocol, Socket, Type};
use vigil::{LineProtocol, Reactor};

use cli::{CliExit, Settings, Workers};

fn main() -> ExitCode {
    let settings = match cli::parse(std::env::args_os()) {
        Ok(settings) => settings,
        Err(info @ CliExit::Info(_)) => {
            let _ = write!(io::stdout(), "{info}");
            return ExitCode::SUCCESS;
        }
        Err(usage @ CliExit::Usage(_)) => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    let supervising = settings.worker_index.is_none() && settings.workers != Workers::Count(1);
    let name = match settings.worker_index {
        Some(index) => Some(format!("worker {index}")),
        None if supervising => Some("supervisor".to_owned()),
        None => None,
    };
    logger::init(settings.log_level, name.as_deref());
    let result = if supervising {
        let args: Vec<_> = std::env::args_os().skip(1).collect();
        supervisor::run(&settings, &args)
    } else {
        if settings.worker_index.is_some() {
            stop_with_supervisor();
        }
        serve(settings)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("vigil: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Binds, serves until a signal, and closes every connection.
fn serve(settings: Settings) -> Result<(), String> {
    let listen = settings.listen;
    let protocol =
        LineProtocol::new(settings.max_line).with_proxy_protocol(settings.proxy_protocol);
    let mut reactor = listener(listen, settings.reuse_port)
        .and_then(|listener| Reactor::from_std(listener, settings.config, protocol))
        .map_err(|err| format!("cannot listen on {listen}: {err}"))?;
    let signal = stop_on_signals(&mut reactor)
        .map_err(|err| format!("cannot install signal handlers: {err}"))?;
    let addr = reactor.local_addr().map_err(|err| err.to_string())?;
    log::info!("listening on {addr}");
    reactor
        .run()
        .map_err(|err| format!("event loop failed: {err}"))?;
    log::info!(
        "stopped by signal {}: {} connections served",
        signal.load(Ordering::SeqCst),
        reactor.stats().accepted
    );
    Ok(())
}

/// Connections the kernel may hold for `accept` (capped by the system's
/// `net.core.somaxconn`). std's and mio's 128 drops SYNs, costing those
/// clients a one-second retransmission, as soon as a few hundred connect at
/// once.
const BACKLOG: i32 = 4096;

/// A listener on `addr` with address reuse (a restart does not wait for old
/// connections in `TIME_WAIT`), `SO_REUSEPORT` if asked (several processes
/// share the address; the kernel spreads connections over them), and a
/// [`BACKLOG`]-deep accept queue.
fn listener(addr: SocketAddr, reuse_port: bool) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// In a worker: asks the kernel for SIGTERM when the supervisor dies, so a
/// supervisor killed with SIGKILL leaves no worker serving; exits at once if
/// it has died already.
fn stop_with_supervisor() {
    #[cfg(target_os = "linux")]
    if let Err(err) = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM) {
        log::warn!("cannot follow the supervisor's death: {err}");
    }
    let supervisor = std::env::var(supervisor::SUPERVISOR_PID).ok();
    if supervisor.is_some_and(|pid| pid != nix::unistd::getppid().to_string()) {
        log::error!("the supervisor has gone: exiting");
        std::process::exit(1);
    }
}

/// Shuts the reactor down on the first SIGINT or SIGTERM; the returned cell
/// then holds the signal's number.
///
/// The handlers write to a self-pipe that the reactor polls, so the process
/// stays single-threaded: a second thread would make Linux wait for an RCU
/// grace period each time the file table grows, stalling the reactor for
/// milliseconds at 256, 512, 1024 ... connections.
fn stop_on_signals<H: vigil::Handler>(reactor: &mut Reactor<H>) -> io::Result<Arc<AtomicUsize>> {
    let received = Arc::new(AtomicUsize::new(0));
    let (wake, watched) = UnixStream::pair()?;
    for signal in [SIGINT, SIGTERM] {
        // Registered in this order, the handlers record the signal before
        // they wake the reactor.
        signal_hook::flag::register_usize(signal, Arc::clone(&received), signal as usize)?;
        signal_hook::low_level::pipe::register(signal, wake.try_clone()?)?;
    }
    watched.set_nonblocking(true)?;
    reactor.shutdown_when_readable(mio::net::UnixStream::from_std(watched))?;
    Ok(received)
}
