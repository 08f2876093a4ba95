//! `--workers N`: N single-threaded worker processes share one port; this
//! process only supervises them.
//!
//! # How workers share the port
//!
//! The supervisor binds the address with `SO_REUSEPORT` but never listens on
//! it: that socket fixes the port (the real one when port 0 was asked) and
//! keeps it reserved while workers restart, but it is in no accept queue, so
//! the kernel never hands it a connection. Each worker is this binary again
//! ([`std::env::current_exe`]) with the user's flags followed by
//! `--listen <the real address> --reuse-port --workers 1 --worker-index I`
//! (a later flag overrides an earlier one) and its share of `--max-conns`
//! ([`worker_limit`]):
//! a complete server with its own reactor, listener and descriptor limit.
//! The kernel spreads new connections over the workers' listeners by a hash
//! of the four-tuple.
//!
//! # Supervision
//!
//! - SIGINT and SIGTERM are forwarded to every worker, each time they
//!   arrive (a second signal means what it means to a single server). They
//!   are counted, not flagged: two that arrive before the supervisor wakes
//!   are forwarded as two, a SIGTERM and a SIGINT (two of one kind sent at
//!   once could merge into one pending signal in the worker). Once every
//!   worker has exited after a signal, the supervisor exits 0.
//! - A worker that exits without being told to is restarted after a
//!   back-off that doubles from [`BACKOFF_MIN`] to [`BACKOFF_MAX`] while
//!   it keeps dying young, and resets once it has run for [`BACKOFF_MAX`].
//!   Each death and restart is logged.
//! - A worker whose first start fails with an exit status (it could not
//!   bind, say) is not retried: the supervisor stops the others and exits 1.
//! - Workers are in their own process group, so a terminal's Ctrl-C reaches
//!   only the supervisor, which forwards it once. A worker asks the kernel
//!   for SIGTERM when the supervisor dies, so killing the supervisor with
//!   SIGKILL does not leave workers serving.
//!
//! The supervisor is single-threaded too: signals (SIGCHLD included) write
//! to a self-pipe, and it sleeps in a read of that pipe with a timeout when
//! a restart is due.

use std::ffi::OsString;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use signal_hook::consts::{SIGCHLD, SIGINT, SIGTERM};
use socket2::{Domain, Protocol, Socket, Type};

use crate::cli::{Settings, Workers};

/// The first restart delay of a worker that died.
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// The longest restart delay; a worker that ran this long starts over at
/// [`BACKOFF_MIN`].
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// The environment variable through which a worker learns its supervisor's
/// process id (to notice that it died).
pub const SUPERVISOR_PID: &str = "VIGIL_SUPERVISOR_PID";
/// Descriptors a worker keeps for other things than connections (listener,
/// poll, pipes, logs).
const RESERVED_FDS: u64 = 64;
/// `--workers auto` fills each worker to this share of its descriptors:
/// the kernel's hash spreads connections evenly only on average.
const AUTO_FILL_PERCENT: u64 = 80;
/// What a worker may take beyond its even share of `--max-conns`: with
/// 10,000 connections each, the hash's spread is about 100 (one standard
/// deviation), so 10 % is far beyond what chance gives.
const SPREAD_SLACK_PERCENT: usize = 10;

/// One worker slot.
#[derive(Debug)]
struct Slot {
    index: usize,
    child: Option<Child>,
    started: Instant,
    /// When to start it again, after a death.
    restart_at: Option<Instant>,
    backoff: Duration,
    /// Started at least once and lived past its first second.
    proven: bool,
}

/// Runs the supervisor until every worker has exited after a signal.
///
/// `args` are the command line's arguments after the program name.
///
/// # Errors
///
/// The address cannot be reserved, a worker cannot be started or failed its
/// first start, or signals cannot be set up: a message for stderr (exit 1).
pub fn run(settings: &Settings, args: &[OsString]) -> Result<(), String> {
    let workers = match settings.workers {
        Workers::Count(n) => n,
        Workers::Auto => auto_workers(settings.config.max_connections, nofile_limit()),
    };
    let mut share = worker_limit(settings.config.max_connections, workers);
    if !max_conns_given(args) {
        // The default is the most a reactor takes, not a promise: each
        // worker's share of it is sized to what its descriptors hold, so
        // that a default does not warn.
        let room = nofile_limit().saturating_sub(RESERVED_FDS);
        share = share.min(usize::try_from(room).unwrap_or(usize::MAX).max(1));
    }
    let reserved = reserve(settings.listen)
        .map_err(|err| format!("cannot listen on {}: {err}", settings.listen))?;
    let addr = reserved
        .local_addr()
        .ok()
        .and_then(|addr| addr.as_socket())
        .ok_or("cannot read the reserved address")?;
    let exe = std::env::current_exe().map_err(|err| format!("cannot find my binary: {err}"))?;
    let command_for = |index: usize| {
        let mut command = Command::new(&exe);
        command
            .args(args)
            .arg("--listen")
            .arg(addr.to_string())
            .args(["--reuse-port", "--workers", "1", "--max-conns"])
            .arg(share.to_string())
            .arg("--worker-index")
            .arg(index.to_string())
            .env(SUPERVISOR_PID, std::process::id().to_string())
            .process_group(0);
        command
    };
    let signals =
        Signals::install().map_err(|err| format!("cannot install signal handlers: {err}"))?;
    log::info!(
        "supervising {workers} workers on {addr}, at most {share} connections each (pid {})",
        std::process::id()
    );

    let now = Instant::now();
    let mut slots: Vec<Slot> = (0..workers)
        .map(|index| Slot {
            index,
            child: None,
            started: now,
            restart_at: Some(now),
            backoff: BACKOFF_MIN,
            proven: false,
        })
        .collect();
    let mut stopping = false;
    let mut failure = None;
    loop {
        let stops = signals.take_stops();
        if let Some(&signal) = stops.first() {
            if !stopping {
                log::info!("signal {signal}: stopping {workers} workers");
            }
            stopping = true;
            for signal in stops {
                forward(&slots, signal);
            }
        }
        for slot in &mut slots {
            if let Some(status) = reap(slot) {
                if stopping {
                    log::info!("worker {} stopped: {}", slot.index, describe(status));
                } else if !slot.proven && status.code().is_some() {
                    failure = Some(format!(
                        "worker {} could not start: {}",
                        slot.index,
                        describe(status)
                    ));
                } else {
                    slot.schedule_restart(status);
                }
            }
        }
        if let (Some(reason), false) = (&failure, stopping) {
            log::error!("{reason}: stopping the others");
            stopping = true;
            forward(&slots, Signal::SIGTERM);
        }
        if stopping {
            if slots.iter().all(|slot| slot.child.is_none()) {
                break;
            }
        } else {
            let now = Instant::now();
            for slot in slots
                .iter_mut()
                .filter(|s| s.restart_at.is_some_and(|t| t <= now))
            {
                slot.start(command_for(slot.index))
                    .map_err(|err| format!("cannot start worker {}: {err}", slot.index))?;
            }
            for slot in slots.iter_mut().filter(|s| !s.proven) {
                slot.proven =
                    slot.child.is_some() && slot.started.elapsed() >= Duration::from_secs(1);
            }
        }
        signals.wait(next_wake(&slots, stopping));
    }
    drop(reserved);
    match failure {
        Some(reason) => Err(reason),
        None => {
            log::info!("all workers stopped");
            Ok(())
        }
    }
}

impl Slot {
    fn start(&mut self, mut command: Command) -> io::Result<()> {
        let child = command.spawn()?;
        log::info!("worker {} started (pid {})", self.index, child.id());
        self.child = Some(child);
        self.started = Instant::now();
        self.restart_at = None;
        Ok(())
    }

    fn schedule_restart(&mut self, status: ExitStatus) {
        if self.started.elapsed() >= BACKOFF_MAX {
            self.backoff = BACKOFF_MIN;
        }
        log::warn!(
            "worker {} died ({}); restarting in {:?}",
            self.index,
            describe(status),
            self.backoff
        );
        self.restart_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }
}

/// The exit status of `slot`'s worker if it has exited (and the slot is
/// then empty).
fn reap(slot: &mut Slot) -> Option<ExitStatus> {
    let child = slot.child.as_mut()?;
    match child.try_wait() {
        Ok(Some(status)) => {
            slot.child = None;
            Some(status)
        }
        Ok(None) => None,
        Err(err) => {
            log::error!("cannot wait for worker {}: {err}", slot.index);
            None
        }
    }
}

/// Sends `signal` to every running worker.
fn forward(slots: &[Slot], signal: Signal) {
    for slot in slots {
        if let Some(child) = &slot.child {
            // A worker that exited a moment ago is reaped on the next turn.
            let pid = Pid::from_raw(child.id() as i32);
            if let Err(err) = kill(pid, signal) {
                log::warn!("cannot signal worker {}: {err}", slot.index);
            }
        }
    }
}

/// How long to sleep at most: until the next restart is due, or until a
/// signal when none is.
fn next_wake(slots: &[Slot], stopping: bool) -> Option<Duration> {
    let now = Instant::now();
    // While workers are young, wake when they become proven.
    let proving = slots
        .iter()
        .filter(|s| !stopping && !s.proven && s.child.is_some())
        .map(|s| s.started + Duration::from_secs(1));
    slots
        .iter()
        .filter_map(|s| s.restart_at.filter(|_| !stopping))
        .chain(proving)
        .min()
        .map(|at| at.saturating_duration_since(now))
}

/// `exit status 1`, `signal 9`.
fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => status.to_string(),
    }
}

/// Binds `addr` with `SO_REUSEPORT` without listening, so that workers can
/// bind the same address.
fn reserve(addr: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// The soft limit on open descriptors of this process (workers inherit it).
pub fn nofile_limit() -> u64 {
    use nix::sys::resource::{getrlimit, Resource};
    getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft)
}

/// Whether the command line gives `--max-conns` (else it is the default).
fn max_conns_given(args: &[OsString]) -> bool {
    args.iter().any(|arg| {
        arg.to_str()
            .is_some_and(|arg| arg == "--max-conns" || arg.starts_with("--max-conns="))
    })
}

/// Each worker's `--max-conns`: its share of `max_conns`, plus
/// [`SPREAD_SLACK_PERCENT`] because the kernel spreads connections by a
/// hash, evenly only on average; never more than `max_conns`.
pub fn worker_limit(max_conns: usize, workers: usize) -> usize {
    let share = max_conns.div_ceil(workers);
    share
        .saturating_add(share.saturating_mul(SPREAD_SLACK_PERCENT) / 100)
        .min(max_conns)
}

/// `--workers auto`: enough workers that each holds its share of
/// `max_conns` within [`AUTO_FILL_PERCENT`] of its usable descriptors.
pub fn auto_workers(max_conns: usize, nofile: u64) -> usize {
    let per_worker = (nofile.saturating_sub(RESERVED_FDS) * AUTO_FILL_PERCENT / 100).max(1);
    let needed = (max_conns as u64).div_ceil(per_worker);
    usize::try_from(needed).unwrap_or(usize::MAX).max(1)
}

/// The supervisor's signals: SIGINT and SIGTERM to stop, SIGCHLD to reap,
/// all waking it through one self-pipe; SIGINT and SIGTERM also write one
/// byte each to a pipe of their own, so that they are counted.
struct Signals {
    watched: UnixStream,
    int: UnixStream,
    term: UnixStream,
}

impl Signals {
    fn install() -> io::Result<Signals> {
        let (wake, watched) = UnixStream::pair()?;
        let (int_in, int) = UnixStream::pair()?;
        let (term_in, term) = UnixStream::pair()?;
        for pipe in [&int_in, &term_in, &int, &term] {
            pipe.set_nonblocking(true)?;
        }
        // Counted before the wake-up, so a woken supervisor finds them.
        signal_hook::low_level::pipe::register(SIGINT, int_in)?;
        signal_hook::low_level::pipe::register(SIGTERM, term_in)?;
        for signal in [SIGINT, SIGTERM, SIGCHLD] {
            signal_hook::low_level::pipe::register(signal, wake.try_clone()?)?;
        }
        Ok(Signals { watched, int, term })
    }

    /// The stop signals to forward for those received since the last
    /// call: none, the one received, or for two or more, a SIGTERM and a
    /// SIGINT (two signals of one kind sent at once may reach a worker as
    /// one; the two kinds never merge, and a worker counts either as a
    /// request to stop).
    fn take_stops(&self) -> Vec<Signal> {
        let int = count_bytes(&self.int);
        let term = count_bytes(&self.term);
        match (term, int) {
            (0, 0) => Vec::new(),
            (1, 0) => vec![Signal::SIGTERM],
            (0, 1) => vec![Signal::SIGINT],
            _ => vec![Signal::SIGTERM, Signal::SIGINT],
        }
    }

    /// Sleeps until a signal arrives or `timeout` passes (`None`: no
    /// timeout), and empties the pipe.
    fn wait(&self, timeout: Option<Duration>) {
        // A zero timeout means "block" to the socket: round up to 1 ms.
        let timeout = timeout.map(|t| t.max(Duration::from_millis(1)));
        if self.watched.set_read_timeout(timeout).is_err() {
            return;
        }
        let mut buf = [0u8; 64];
        if matches!((&self.watched).read(&mut buf), Ok(n) if n > 0) {
            // More signals may be queued: take them without blocking.
            let _ = self.watched.set_nonblocking(true);
            while matches!((&self.watched).read(&mut buf), Ok(n) if n > 0) {}
            let _ = self.watched.set_nonblocking(false);
        }
    }
}

/// Reads the non-blocking `pipe` until it would block; returns the bytes
/// read.
fn count_bytes(mut pipe: &UnixStream) -> usize {
    let mut buf = [0u8; 64];
    let mut count = 0;
    loop {
        match pipe.read(&mut buf) {
            Ok(0) => return count,
            Ok(n) => count += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return count,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_sizes_workers_under_the_descriptor_limit() {
        // 20,000 descriptors: (20,000 - 64) * 80 % = 15,948 connections each.
        assert_eq!(auto_workers(1, 20_000), 1);
        assert_eq!(auto_workers(15_948, 20_000), 1);
        assert_eq!(auto_workers(15_949, 20_000), 2);
        assert_eq!(auto_workers(100_000, 20_000), 7);
        assert_eq!(auto_workers(1_000_000, 20_000), 63);
        assert_eq!(auto_workers(10, 10), 10); // no usable descriptors: one per connection
    }

    #[test]
    fn a_worker_may_take_a_tenth_more_than_its_share() {
        assert_eq!(worker_limit(20_000, 2), 11_000);
        assert_eq!(worker_limit(100_000, 7), 15_714);
        assert_eq!(worker_limit(5, 1), 5);
        assert_eq!(worker_limit(1, 4), 1);
    }
}
