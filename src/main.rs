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
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use signal_hook::consts::{SIGINT, SIGTERM};
use socket2::{Domain, Protocol, Socket, Type};
use vigil::metrics::Exposition;
use vigil::{LineProtocol, Reactor, ScrapeConfig};

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
    // Before anything sizes itself by the limit (`--workers auto`); a
    // server logs the result once it listens.
    let descriptors = raise_descriptor_limit();
    let result = if supervising {
        let args: Vec<_> = std::env::args_os().skip(1).collect();
        supervisor::run(&settings, &args)
    } else {
        if settings.worker_index.is_some() {
            stop_with_supervisor();
        }
        serve(settings, descriptors)
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
fn serve(mut settings: Settings, descriptors: Result<u64, String>) -> Result<(), String> {
    let listen = settings.listen;
    if settings.reuse_port && kernel_migrates_backlog() {
        // The kernel hands connections waiting in our backlog to another
        // listener of the port when ours closes: let it, so they are served.
        settings.config.close_backlog_at_shutdown = false;
    }
    let max_conns = settings.config.max_connections;
    let (min_keepalive, max_keepalive) = settings.keepalive;
    let protocol = LineProtocol::new(settings.max_line)
        .with_proxy_protocol(settings.proxy_protocol)
        .with_proxy_timeout(settings.proxy_timeout)
        .with_keepalive(min_keepalive, max_keepalive);
    let mut reactor = listener(listen, settings.reuse_port)
        .and_then(|listener| Reactor::from_std(listener, settings.config, protocol))
        .map_err(|err| format!("cannot listen on {listen}: {err}"))?;
    let metrics = match settings.metrics {
        Some(at) => Some(
            serve_metrics(&mut reactor, at, settings.worker_index)
                .map_err(|err| format!("cannot serve metrics on {at}: {err}"))?,
        ),
        None => None,
    };
    let signal = stop_on_signals(&mut reactor)
        .map_err(|err| format!("cannot install signal handlers: {err}"))?;
    let addr = reactor.local_addr().map_err(|err| err.to_string())?;
    // In this order, with or without --metrics: listening, the descriptor
    // limit, then the metrics address.
    log::info!("listening on {addr}");
    match descriptors {
        Ok(limit) => log_descriptor_limit(limit, max_conns),
        Err(err) => log::warn!("{err}"),
    }
    if let Some(metrics) = metrics {
        log::info!("serving metrics on http://{metrics}/metrics");
    }
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

/// Descriptors the server needs besides its connections: the listener, the
/// poll, the signal pipe, standard streams, a few to spare.
const OTHER_DESCRIPTORS: u64 = 16;

/// Raises the soft limit on open files to the hard limit (a shell's usual
/// soft limit, 1024, would cap the server far below `--max-conns`), before
/// anything sizes itself by it (`--workers auto`). Returns the limit now in
/// force.
fn raise_descriptor_limit() -> Result<u64, String> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) =
        getrlimit(Resource::RLIMIT_NOFILE).map_err(|err| format!("getrlimit: {err}"))?;
    if soft >= hard {
        return Ok(soft);
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => Ok(hard),
        Err(err) => Err(format!(
            "cannot raise the open-file limit from {soft}: {err}"
        )),
    }
}

/// Logs the descriptor limit. When `max_conns` connections cannot fit in
/// it, the line says how many can; a `--max-conns` given on the command
/// line that cannot be reached is also warned about, the default is not
/// (it is the most a reactor takes, not a promise).
fn log_descriptor_limit(limit: u64, max_conns: usize) {
    let room = limit.saturating_sub(OTHER_DESCRIPTORS);
    if max_conns as u64 <= room {
        log::info!("descriptor limit {limit}");
    } else if max_conns == vigil::Config::default().max_connections {
        log::info!(
            "descriptor limit {limit}: room for about {room} connections (below the default --max-conns {max_conns})"
        );
    } else {
        log::info!("descriptor limit {limit}");
        log::warn!(
            "--max-conns {max_conns} cannot be reached: the descriptor limit {limit} holds about {room} connections; raise the hard limit (ulimit -Hn, LimitNOFILE=) or lower --max-conns"
        );
    }
}

/// Whether Linux moves the connections waiting in a closing listener's
/// backlog to another listener of the same `SO_REUSEPORT` group
/// (`net.ipv4.tcp_migrate_req` = 1, Linux 5.14+).
fn kernel_migrates_backlog() -> bool {
    std::fs::read_to_string("/proc/sys/net/ipv4/tcp_migrate_req").is_ok_and(|v| v.trim() == "1")
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

/// Serves Prometheus metrics at `addr` `/metrics` from the reactor's own
/// loop; returns the address bound (the real port when 0 was asked).
///
/// `worker`: this process's index among `--workers N` (`None` for a single
/// server). Worker `i` serves at `addr`'s port plus `i` and labels every
/// series `worker="i"`, so one scrape target per worker sees every
/// worker's figures, with no gathering between processes.
fn serve_metrics(
    reactor: &mut Reactor<LineProtocol>,
    addr: SocketAddr,
    worker: Option<usize>,
) -> io::Result<SocketAddr> {
    let addr = worker_metrics_addr(addr, worker);
    let listener = std::net::TcpListener::bind(addr)?;
    let bound = listener.local_addr()?;
    let worker = worker.map(|i| i.to_string());
    reactor.serve_metrics(
        listener,
        ScrapeConfig::default(),
        move |metrics, protocol, body| {
            let rendered = Exposition::new("vigil", worker.as_deref())
                .reactor(metrics, LineProtocol::close_label)
                .lines(protocol.lines())
                .process()
                .build_info(env!("CARGO_PKG_VERSION"))
                .encode(body);
            debug_assert!(rendered.is_ok(), "a String takes any text");
        },
    )?;
    Ok(bound)
}

/// Worker `i`'s metrics address: `addr`'s port plus `i` (port 0 stays 0:
/// any free port).
fn worker_metrics_addr(mut addr: SocketAddr, worker: Option<usize>) -> SocketAddr {
    if let (Some(i), port @ 1..) = (worker, addr.port()) {
        addr.set_port(port.saturating_add(u16::try_from(i).unwrap_or(u16::MAX)));
    }
    addr
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

/// Shuts the reactor down on the first SIGINT or SIGTERM, and ends a
/// `--drain` on the second; the returned cell then holds the last signal's
/// number.
///
/// The handlers write one byte per signal to the reactor's shutdown pipe,
/// which it polls and counts, so the process stays single-threaded (a
/// second thread would make Linux wait for an RCU grace period each time
/// the file table grows, stalling the reactor for milliseconds at 256, 512,
/// 1024 ... connections), and two signals that arrive before the loop runs
/// again still count as two.
fn stop_on_signals<H: vigil::Handler>(reactor: &mut Reactor<H>) -> io::Result<Arc<AtomicUsize>> {
    let received = Arc::new(AtomicUsize::new(0));
    let requested = reactor.shutdown_handle().flag();
    let wake = reactor.shutdown_pipe()?;
    for signal in [SIGINT, SIGTERM] {
        // Registered in this order, the handlers record the signal and ask
        // for shutdown before they wake the reactor: an iteration whose
        // events were collected before the signal still sees the request
        // before it accepts anything. The pipe's bytes are the count.
        signal_hook::flag::register_usize(signal, Arc::clone(&received), signal as usize)?;
        signal_hook::flag::register(signal, Arc::clone(&requested))?;
        signal_hook::low_level::pipe::register(signal, wake.try_clone()?)?;
    }
    Ok(received)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_i_serves_metrics_on_the_port_plus_i() {
        let base: SocketAddr = "127.0.0.1:9373".parse().unwrap();
        assert_eq!(worker_metrics_addr(base, None), base);
        assert_eq!(worker_metrics_addr(base, Some(0)), base);
        assert_eq!(
            worker_metrics_addr(base, Some(3)),
            "127.0.0.1:9376".parse().unwrap()
        );
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        assert_eq!(worker_metrics_addr(any, Some(3)), any);
    }
}
