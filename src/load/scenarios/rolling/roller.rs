//! The clients of `rolling` after the opening ([`Roller`]): held clients
//! that `PING` every interval and reconnect after `BYE shutdown`, steady
//! connects at `--rate`, and where each `PING` ends.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::time::{Duration, Instant};

use super::{Rolling, RETRY};
use crate::load::drive::CloseCounter;
use crate::load::pool::{ConnectError, Ev, Pool};
use crate::protocol::reply::{Bye, Reply};

/// One connection: a held client's or a steady one.
#[derive(Debug, Clone, Copy)]
pub(super) struct Link {
    /// The held client it belongs to; `None`: a steady connect.
    pub(super) client: Option<u32>,
    /// Connecting, or open, from this side's point of view.
    pub(super) alive: bool,
    /// Its first `PING` was answered.
    pub(super) answered: bool,
    /// `PING`s sent on it and not answered yet.
    pub(super) unanswered: u32,
    /// The closing line that led to this connection, if it is a reconnect.
    pub(super) after_bye: Option<Instant>,
}

/// The run after the opening.
pub(super) struct Roller {
    pub(super) f: Rolling,
    pub(super) interval: Duration,
    pub(super) connect_timeout: Duration,
    pub(super) links: Vec<Link>,
    /// Each held client's current connection.
    pub(super) current: Vec<Option<usize>>,
    pub(super) told: Vec<bool>,
    /// Next `PING` of each held client, in time order.
    pub(super) due: VecDeque<(Instant, u32)>,
    /// Held clients to connect again, in time order, with the closing line
    /// that started it.
    pub(super) retries: VecDeque<(Instant, u32, Option<Instant>)>,
    /// Every connect with its start, in time order, for the timeout.
    pub(super) connecting: VecDeque<(Instant, usize)>,
    /// The next steady connect (`None`: none at this rate).
    pub(super) next_probe: Option<Instant>,
    pub(super) probe_period: Duration,
    /// Steady connections still alive.
    pub(super) probes_alive: usize,
    pub(super) reconnect_ms: Vec<f64>,
    pub(super) closes: CloseCounter,
}

impl Roller {
    /// Starts a connect for held client `client` (or a steady one).
    fn connect(
        &mut self,
        pool: &mut Pool,
        now: Instant,
        client: Option<u32>,
        after_bye: Option<Instant>,
    ) {
        self.f.connects += 1;
        match pool.connect() {
            Ok(key) => {
                debug_assert_eq!(key, self.links.len(), "one link per connect");
                self.links.push(Link {
                    client,
                    alive: true,
                    answered: false,
                    unanswered: 0,
                    after_bye,
                });
                self.connecting.push_back((now, key));
                match client {
                    Some(c) => self.current[c as usize] = Some(key),
                    None => self.probes_alive += 1,
                }
            }
            Err(err) => {
                match err {
                    ConnectError::Other(e) if e.kind() == ErrorKind::ConnectionRefused => {
                        self.f.refused += 1;
                    }
                    ConnectError::Other(e) if e.kind() == ErrorKind::ConnectionReset => {
                        self.f.reset += 1;
                    }
                    _ => self.f.failed_otherwise += 1,
                }
                if let Some(c) = client {
                    self.retries.push_back((now + RETRY, c, after_bye));
                }
            }
        }
    }

    /// Connection `key` is over from this side's point of view: its
    /// unanswered `PING`s are cut (after a closing line) or lost.
    pub(super) fn end(&mut self, pool: &mut Pool, key: usize, cut: bool) -> Link {
        let link = self.links[key];
        self.links[key].alive = false;
        self.links[key].unanswered = 0;
        if cut {
            self.f.pings_cut += u64::from(link.unanswered);
        } else {
            self.f.pings_lost += u64::from(link.unanswered);
        }
        if link.client.is_none() {
            self.probes_alive -= 1;
        }
        pool.close(key);
        link
    }

    /// A connection that failed before its first `PONG`: a held client
    /// tries again shortly.
    fn failed(&mut self, pool: &mut Pool, key: usize, now: Instant) {
        let link = self.end(pool, key, false);
        if let Some(c) = link.client {
            self.retries.push_back((now + RETRY, c, link.after_bye));
        }
    }

    fn on_pong(&mut self, pool: &mut Pool, key: usize, at: Instant) {
        self.f.pongs += 1;
        let link = &mut self.links[key];
        link.unanswered = link.unanswered.saturating_sub(1);
        if link.answered {
            return;
        }
        link.answered = true;
        let link = *link;
        if let Some(bye) = link.after_bye {
            self.f.reconnected += 1;
            let ms = at.saturating_duration_since(bye).as_secs_f64() * 1000.0;
            self.reconnect_ms.push(ms);
        }
        if link.client.is_none() {
            self.f.probes_answered += 1;
            self.end(pool, key, false);
        }
    }

    fn on_line(&mut self, pool: &mut Pool, key: usize, bye: Option<Bye>, at: Instant) {
        let shutdown = bye == Some(Bye::Shutdown);
        let link = self.end(pool, key, shutdown);
        if let Some(c) = link.client {
            if shutdown {
                self.told[c as usize] = true;
            }
        } else if !shutdown {
            return;
        }
        self.f.reconnects += 1;
        let after = link.after_bye.or(Some(at).filter(|_| shutdown));
        self.connect(pool, Instant::now(), link.client, after);
    }

    /// The run is over: the steady connects stop and held clients send no
    /// new `PING`; replies and reconnects still count.
    pub(super) fn finished(&self) -> bool {
        self.retries.is_empty()
            && self.probes_alive == 0
            && self.current.iter().all(|key| {
                key.is_some_and(|k| {
                    let l = &self.links[k];
                    l.alive && l.answered && l.unanswered == 0
                })
            })
    }

    /// One turn: whatever is due. Returns when the next thing is due.
    pub(super) fn turn(&mut self, pool: &mut Pool, now: Instant, running: bool) -> Option<Instant> {
        let mut wake: Option<Instant> = None;
        let mut at = |t: Instant| wake = Some(wake.map_or(t, |w| w.min(t)));
        while let Some(&(t, key)) = self.connecting.front() {
            if t + self.connect_timeout > now {
                at(t + self.connect_timeout);
                break;
            }
            self.connecting.pop_front();
            let l = self.links[key];
            if l.alive && !l.answered {
                self.f.failed_otherwise += 1;
                self.failed(pool, key, now);
            }
        }
        while let Some(&(t, c, after)) = self.retries.front() {
            if t > now {
                at(t);
                break;
            }
            self.retries.pop_front();
            self.connect(pool, now, Some(c), after);
        }
        if !running {
            return wake;
        }
        while let Some(&(t, c)) = self.due.front() {
            if t > now {
                at(t);
                break;
            }
            self.due.pop_front();
            self.due.push_back((t + self.interval, c));
            let Some(key) = self.current[c as usize] else {
                continue;
            };
            let l = self.links[key];
            // A connection still waiting for its first PONG has a PING out.
            if l.alive && l.answered && pool.send(key, b"PING\n") {
                self.f.pings += 1;
                self.links[key].unanswered += 1;
            }
        }
        while let Some(t) = self.next_probe.filter(|&t| t <= now) {
            self.f.probes += 1;
            self.connect(pool, now, None, None);
            self.next_probe = Some(t + self.probe_period);
        }
        if let Some(t) = self.next_probe {
            at(t);
        }
        wake
    }

    pub(super) fn on_event(&mut self, pool: &mut Pool, ev: Ev) {
        self.closes.on_event(&ev);
        let key = match ev {
            Ev::Connected(k, _)
            | Ev::ConnectFailed(k, _)
            | Ev::Msg(k, _, _)
            | Ev::Fan(k, _, _)
            | Ev::Closed(k, _, _) => k,
        };
        if !self.links.get(key).is_some_and(|l| l.alive) {
            return; // closed from this side in this same batch
        }
        let now = Instant::now();
        match ev {
            Ev::Connected(key, _) => {
                if pool.send(key, b"PING\n") {
                    self.f.pings += 1;
                    self.links[key].unanswered += 1;
                }
            }
            Ev::ConnectFailed(key, kind) => {
                match kind {
                    ErrorKind::ConnectionRefused => self.f.refused += 1,
                    ErrorKind::ConnectionReset => self.f.reset += 1,
                    _ => self.f.failed_otherwise += 1,
                }
                self.failed(pool, key, now);
            }
            Ev::Msg(key, Reply::Pong(_), at) => self.on_pong(pool, key, at),
            Ev::Msg(key, Reply::Bye(bye), at) => self.on_line(pool, key, Some(bye), at),
            Ev::Msg(key, Reply::Err, at) => self.on_line(pool, key, None, at),
            Ev::Msg(..) | Ev::Fan(..) => {}
            Ev::Closed(key, _, error) => {
                let l = self.links[key];
                let reset = error == Some(ErrorKind::ConnectionReset);
                match (l.answered, reset) {
                    (false, true) => self.f.reset += 1,
                    (false, false) => self.f.failed_otherwise += 1,
                    (true, true) => self.f.reset_later += 1,
                    (true, false) => {}
                }
                self.failed(pool, key, now);
            }
        }
    }

    pub(super) fn progress(&self, pool: &Pool) -> String {
        format!(
            "open {} pings {} pongs {} bye {} refused {} reset {} lost {}",
            pool.open,
            self.f.pings,
            self.f.pongs,
            self.closes.closes.shutdown,
            self.f.refused,
            self.f.reset + self.f.reset_later,
            self.f.pings_lost
        )
    }
}
