//! Opening connections: a bounded number in flight, each established once
//! its first `PING` is answered.

use std::time::{Duration, Instant};

use super::parts::{Opening, StoppedBy};
use super::pool::{ConnectError, Ev, Pool};
use super::proc_stats;
use crate::protocol::reply::Reply;

/// The connect rate is also measured over this many first connections:
/// past about 14,000 connections from one source address to one server
/// port, the kernel's search for a free ephemeral port (it tries one parity
/// of `ip_local_port_range` first) dominates, on the client's side.
pub const EARLY_RATE_CONNS: usize = 10_000;

/// Files kept free under the limit (for `/proc`, the JSON file, stdio).
const FD_RESERVE: u64 = 12;

/// Opens up to `target` connections, at most `max_pending` in flight.
///
/// A connection counts as established when the server has answered its
/// first `PING`, not when the kernel completed the handshake: the kernel
/// completes handshakes for the server before the server accepts them, so
/// only an answer proves the server took the connection. Bounding connects
/// plus unanswered first `PING`s keeps the listen queue (128 by default)
/// from overflowing, which would cost a 1 s SYN retransmission.
#[derive(Debug)]
pub(crate) struct Opener {
    pub(crate) target: usize,
    max_pending: usize,
    started: usize,
    pub(crate) established: usize,
    pub(crate) failed: usize,
    pub(crate) timed_out: usize,
    /// Stopped by this process's file-descriptor limit.
    fd_limited: bool,
    /// The first error that was not a file-descriptor limit.
    first_error: Option<String>,
    begun: Instant,
    last_established: Option<Instant>,
    /// When the first [`EARLY_RATE_CONNS`] were established.
    early_established: Option<Instant>,
    pub(crate) finished: Option<Instant>,
    connect_timeout: Duration,
    stopped: bool,
    /// This process's open-file limit, read at the start.
    fd_limit: Option<u64>,
    /// Connections that fit under the limit, keeping [`FD_RESERVE`] files
    /// free so that `/proc` can still be read and the report written.
    fd_room: usize,
    /// Connections whose first `PING` is not answered yet.
    unconfirmed: usize,
    confirming: Vec<bool>,
    /// When each connect was started.
    started_at: Vec<Instant>,
    /// Each established connection's wait from its connect to its first
    /// `PONG`, in ms.
    pub(crate) waits_ms: Vec<f64>,
}

impl Opener {
    /// An opener that starts now.
    pub(crate) fn new(target: usize, max_pending: usize, connect_timeout: Duration) -> Opener {
        let fd_limit = proc_stats::own_fd_limit();
        let fd_room = fd_limit.map_or(usize::MAX, |limit| {
            limit.saturating_sub(proc_stats::own_fds() + FD_RESERVE) as usize
        });
        Opener {
            fd_limit,
            fd_room,
            target,
            max_pending: max_pending.max(1),
            started: 0,
            established: 0,
            failed: 0,
            timed_out: 0,
            fd_limited: false,
            first_error: None,
            begun: Instant::now(),
            last_established: None,
            early_established: None,
            finished: None,
            connect_timeout,
            stopped: false,
            unconfirmed: 0,
            confirming: Vec::new(),
            started_at: Vec::new(),
            waits_ms: Vec::new(),
        }
    }

    /// Starts connects until the pending bound, the target or a limit.
    pub(crate) fn fill(&mut self, pool: &mut Pool, now: Instant) {
        if self.finished.is_some() {
            return;
        }
        while !self.stopped
            && self.started < self.target
            && pool.pending + self.unconfirmed < self.max_pending
        {
            if self.started >= self.fd_room {
                self.fd_limited = true;
                self.stopped = true;
                break;
            }
            match pool.connect() {
                Ok(key) => {
                    self.started += 1;
                    if self.started_at.len() <= key {
                        self.started_at.resize(key + 1, now);
                    }
                    self.started_at[key] = Instant::now();
                }
                Err(ConnectError::FdLimit) => {
                    self.fd_limited = true;
                    self.stopped = true;
                }
                Err(ConnectError::Other(e)) => {
                    self.failed += 1;
                    self.first_error.get_or_insert_with(|| e.to_string());
                    // Out of ports or addresses: trying again will not help.
                    self.stopped = true;
                }
            }
        }
        if now.duration_since(self.begun) > self.connect_timeout
            && pool.pending + self.unconfirmed > 0
        {
            self.timed_out += pool.abandon_pending().len();
            for key in 0..self.confirming.len() {
                if self.confirming[key] {
                    self.confirming[key] = false;
                    pool.close(key);
                    self.timed_out += 1;
                }
            }
            self.unconfirmed = 0;
            self.stopped = true;
        }
        if pool.pending + self.unconfirmed == 0 && (self.stopped || self.started >= self.target) {
            self.finished = Some(now);
        }
    }

    /// Counts an event; for a connect, sends the first `PING` and returns
    /// the time taken just before sending it.
    pub(crate) fn on_event(&mut self, pool: &mut Pool, ev: &Ev) -> Option<Instant> {
        match *ev {
            Ev::Connected(key, _) => {
                if self.confirming.len() <= key {
                    self.confirming.resize(key + 1, false);
                }
                // Before the send: a deadline computed from it is never later
                // than the server's, so a close before it is truly early.
                let at = Instant::now();
                if pool.send(key, b"PING\n") {
                    self.confirming[key] = true;
                    self.unconfirmed += 1;
                }
                return Some(at);
            }
            Ev::Msg(key, Reply::Pong(_), at) if self.is_confirming(key) => {
                self.confirming[key] = false;
                self.unconfirmed -= 1;
                self.established += 1;
                self.last_established = Some(at);
                if let Some(start) = self.started_at.get(key) {
                    let wait = at.saturating_duration_since(*start);
                    self.waits_ms.push(wait.as_secs_f64() * 1000.0);
                }
                if self.established == EARLY_RATE_CONNS.min(self.target) {
                    self.early_established = Some(at);
                }
            }
            Ev::Closed(key, ..) if self.is_confirming(key) => {
                self.confirming[key] = false;
                self.unconfirmed -= 1;
                self.failed += 1;
                self.first_error.get_or_insert_with(|| {
                    format!("connection #{key} closed before its first PONG")
                });
            }
            Ev::ConnectFailed(key, _) => {
                self.failed += 1;
                self.first_error
                    .get_or_insert_with(|| format!("connect #{key} refused or reset"));
            }
            _ => {}
        }
        None
    }

    fn is_confirming(&self, key: usize) -> bool {
        self.confirming.get(key).copied().unwrap_or(false)
    }

    /// Whether every connect has finished one way or another.
    pub(crate) fn is_done(&self) -> bool {
        self.finished.is_some()
    }

    /// Established connections per second over the opening.
    pub(crate) fn rate(&self) -> f64 {
        match self.last_established {
            Some(last) if self.established > 0 => {
                let secs = last.duration_since(self.begun).as_secs_f64();
                self.established as f64 / secs.max(1e-6)
            }
            _ => 0.0,
        }
    }

    /// Established connections per second over the first
    /// [`EARLY_RATE_CONNS`] (or all, if fewer were asked).
    pub(crate) fn early_rate(&self) -> Option<f64> {
        self.early_established.map(|at| {
            let n = EARLY_RATE_CONNS.min(self.target) as f64;
            n / at.duration_since(self.begun).as_secs_f64().max(1e-6)
        })
    }

    /// Seconds the opening took.
    pub(crate) fn secs(&self) -> f64 {
        self.last_established
            .map_or(0.0, |l| l.duration_since(self.begun).as_secs_f64())
    }

    /// The opening figures, and a note where something stopped it.
    pub(crate) fn figures(&self, notes: &mut Vec<String>) -> Opening {
        let stopped_by = if self.fd_limited {
            StoppedBy::ClientFdLimit
        } else if self.timed_out > 0 || self.failed > 0 {
            StoppedBy::ServerOrNetwork
        } else {
            StoppedBy::Nothing
        };
        if self.fd_limited {
            notes.push(format!(
                "stopped by this process's file-descriptor limit ({}), not by the server",
                self.fd_limit.unwrap_or(0)
            ));
        }
        if let Some(e) = &self.first_error {
            notes.push(format!(
                "{} connects failed, {} timed out; first error: {e}",
                self.failed, self.timed_out
            ));
        }
        Opening {
            target: self.target as u64,
            established: self.established as u64,
            failed: self.failed as u64,
            timed_out: self.timed_out as u64,
            secs: self.secs(),
            rate: self.rate(),
            early_conns: EARLY_RATE_CONNS.min(self.target) as u64,
            early_rate: self.early_rate(),
            client_fd_limit: self.fd_limit,
            stopped_by,
            first_error: self.first_error.clone(),
        }
    }
}
