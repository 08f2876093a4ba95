//! The loop every scenario shares.
//!
//! Every scenario is a [`Handler`] driven by [`drive`]: one loop that opens
//! connections through an [`Opener`] (bounded pending connects), polls, hands
//! each event to the handler, lets it send what is due, and prints progress
//! once a second. Every loop is bounded by a deadline.

use std::io;
use std::time::{Duration, Instant};

use super::opener::Opener;
use super::parts::Closes;
use super::pool::{Ev, Pool};
use crate::protocol::reply::{Bye, Reply};

/// What a scenario does with the events of its connections.
pub(crate) trait Handler {
    /// One event, seen at the time it carries.
    fn on_event(&mut self, pool: &mut Pool, ev: Ev);
    /// Called every turn: send what is due; returns when it wants the next turn.
    fn on_turn(&mut self, _pool: &mut Pool, _now: Instant) -> Option<Instant> {
        None
    }
    /// Whether the phase is over (checked every turn).
    fn done(&self, pool: &Pool, opener: &Opener, now: Instant) -> bool;
    /// A short progress line.
    fn progress(&self, pool: &Pool, opener: &Opener) -> String;
}

/// A progress line at most once a second, logged at `info` (`vigil-load`
/// shows them on stderr).
pub(crate) struct Progress {
    name: &'static str,
    begun: Instant,
    last: Instant,
}

impl Progress {
    /// Progress for scenario `name`, starting now.
    pub(crate) fn new(name: &'static str) -> Progress {
        let now = Instant::now();
        Progress {
            name,
            begun: now,
            last: now,
        }
    }

    /// Logs `line()` if a second has passed since the last line.
    pub(crate) fn tick(&mut self, now: Instant, line: impl FnOnce() -> String) {
        if now.duration_since(self.last) >= Duration::from_secs(1) {
            self.last = now;
            let t = now.duration_since(self.begun).as_secs_f64();
            log::info!("[{}] {t:6.1}s {}", self.name, line());
        }
    }

    /// Logs a line now.
    pub(crate) fn say(&self, line: &str) {
        let t = self.begun.elapsed().as_secs_f64();
        log::info!("[{}] {t:6.1}s {line}", self.name);
    }
}

/// Runs one phase: opens, polls, dispatches, until `handler.done()` or `end`.
pub(crate) fn drive<H: Handler>(
    pool: &mut Pool,
    handler: &mut H,
    opener: &mut Opener,
    end: Instant,
    progress: &mut Progress,
) -> io::Result<()> {
    let mut events = Vec::with_capacity(1024);
    loop {
        let now = Instant::now();
        opener.fill(pool, now);
        if now >= end || handler.done(pool, opener, now) {
            return Ok(());
        }
        let mut wake = end.min(now + Duration::from_millis(250));
        if let Some(at) = handler.on_turn(pool, now) {
            wake = wake.min(at);
        }
        pool.poll(Some(wake.saturating_duration_since(now)), &mut events)?;
        for ev in events.drain(..) {
            let ev = match (opener.on_event(pool, &ev), ev) {
                (Some(ping_at), Ev::Connected(key, _)) => Ev::Connected(key, ping_at),
                _ => ev,
            };
            handler.on_event(pool, ev);
        }
        progress.tick(Instant::now(), || handler.progress(pool, opener));
    }
}

/// Counts the server's closes by closing line, into [`Closes`].
#[derive(Debug, Default)]
pub(crate) struct CloseCounter {
    pub(crate) closes: Closes,
    /// Connections whose closing line was seen.
    saw_line: Vec<bool>,
}

impl CloseCounter {
    /// Counts a closing line or a close.
    pub(crate) fn on_event(&mut self, ev: &Ev) {
        let c = &mut self.closes;
        match *ev {
            Ev::Msg(key, Reply::Bye(b), _) => {
                mark(&mut self.saw_line, key);
                match b {
                    Bye::Idle => c.idle += 1,
                    Bye::Full => c.full += 1,
                    Bye::Shutdown => c.shutdown += 1,
                    _ => c.other_bye += 1,
                }
            }
            Ev::Msg(key, Reply::Err, _) => {
                mark(&mut self.saw_line, key);
                c.err += 1;
            }
            Ev::Closed(key, ..) if !self.saw_line.get(key).copied().unwrap_or(false) => {
                c.silent += 1;
            }
            _ => {}
        }
    }

    /// Every close so far.
    pub(crate) fn total(&self) -> u64 {
        self.closes.total()
    }
}

fn mark(seen: &mut Vec<bool>, key: usize) {
    if seen.len() <= key {
        seen.resize(key + 1, false);
    }
    seen[key] = true;
}
