//! `rolling`: clients across a rolling restart. N held connections `PING`
//! every interval and reconnect at once when they read `BYE shutdown`; a
//! steady `--rate` of new connects each do one `PING` and its `PONG`. It
//! counts what a restart must not cause: refused or reset connects, and
//! `PING`s that go unanswered without the server saying why.
//!
//! # Where every `PING` ends
//!
//! Each `PING` sent is counted once as answered (a `PONG`), cut (its
//! connection read `BYE shutdown` first: the server decided to close before
//! it read the `PING`, and the client sends one again on its new
//! connection), or lost (the connection was reset, closed without a line or
//! timed out, or the run ended first). So `pings = pongs + cut + lost`.

use std::collections::VecDeque;
use std::io::{self, ErrorKind};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::load::drive::{drive, CloseCounter, Handler, Progress};
use crate::load::opener::Opener;
use crate::load::pool::{ConnectError, Ev, Pool};
use crate::load::rows::Rows;
use crate::load::{Closes, Figures, Opening, Options, Report, Spread};
use crate::protocol::{Bye, Reply};

/// A held client whose connect failed tries again this much later (a
/// closing line makes it reconnect at once).
const RETRY: Duration = Duration::from_millis(100);

/// What `rolling` measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rolling {
    /// How the held connections were first opened.
    pub opening: Opening,
    /// Each held connection sends a `PING` this often, milliseconds.
    pub interval_ms: f64,
    /// New connects started per second besides the held ones.
    pub rate: u64,
    /// Seconds the run took, opening included.
    pub secs: f64,
    /// Connects started after the opening: reconnects and the steady ones.
    pub connects: u64,
    /// Connects refused (`ECONNREFUSED`).
    pub refused: u64,
    /// Connections reset (`ECONNRESET`) while connecting or before their
    /// first `PONG`.
    pub reset: u64,
    /// Connections reset after their first `PONG`.
    pub reset_later: u64,
    /// Connects that failed otherwise: timed out, closed before their first
    /// `PONG` without a line, or any other error.
    pub failed_otherwise: u64,
    /// Steady connects started (`--rate`), reconnects not included.
    pub probes: u64,
    /// Steady connects whose `PING` was answered (on their connection or on
    /// the one made after `BYE shutdown`).
    pub probes_answered: u64,
    /// `PING`s sent.
    pub pings: u64,
    /// `PONG`s received.
    pub pongs: u64,
    /// `PING`s unanswered when their connection read `BYE shutdown`: sent
    /// again as the first `PING` of the next connection.
    pub pings_cut: u64,
    /// `PING`s never answered on a connection that ended without a closing
    /// line, or still unanswered at the end.
    pub pings_lost: u64,
    /// Connections closed by the server, by closing line.
    pub closed_by_server: Closes,
    /// Reconnects started after a closing line.
    pub reconnects: u64,
    /// Reconnects whose first `PING` was answered.
    pub reconnected: u64,
    /// From a `BYE shutdown` to the first `PONG` on a new connection,
    /// milliseconds.
    pub reconnect_ms: Spread,
    /// Held clients (the connections of the opening).
    pub held: u64,
    /// Held clients that read `BYE shutdown` at least once.
    pub held_told: u64,
    /// Held clients connected and answered at the end.
    pub held_connected: u64,
}

impl Rolling {
    /// Adds another process's figures (`--procs`).
    pub(crate) fn absorb(&mut self, o: &Rolling) {
        self.opening.absorb(&o.opening);
        self.secs = self.secs.max(o.secs);
        self.rate += o.rate;
        for (a, b) in [
            (&mut self.connects, o.connects),
            (&mut self.refused, o.refused),
            (&mut self.reset, o.reset),
            (&mut self.reset_later, o.reset_later),
            (&mut self.failed_otherwise, o.failed_otherwise),
            (&mut self.probes, o.probes),
            (&mut self.probes_answered, o.probes_answered),
            (&mut self.pings, o.pings),
            (&mut self.pongs, o.pongs),
            (&mut self.pings_cut, o.pings_cut),
            (&mut self.pings_lost, o.pings_lost),
            (&mut self.reconnects, o.reconnects),
            (&mut self.reconnected, o.reconnected),
            (&mut self.held, o.held),
            (&mut self.held_told, o.held_told),
            (&mut self.held_connected, o.held_connected),
        ] {
            *a += b;
        }
        self.closed_by_server.absorb(&o.closed_by_server);
        self.reconnect_ms.absorb_worst(&o.reconnect_ms);
    }

    pub(crate) fn rows(&self, t: &mut Rows) {
        self.opening.rows(t);
        t.num("PING interval", "ms", self.interval_ms);
        t.int("new connects per second", self.rate);
        t.num("run time", "s", self.secs);
        t.int("connects after the opening", self.connects);
        t.int("refused (ECONNREFUSED)", self.refused);
        t.int("reset before the first PONG", self.reset);
        t.int("reset later", self.reset_later);
        t.int("failed otherwise", self.failed_otherwise);
        t.int("steady connects", self.probes);
        t.int("steady connects answered", self.probes_answered);
        t.int("PINGs sent", self.pings);
        t.int("PONGs received", self.pongs);
        t.int("PINGs cut by BYE shutdown (sent again)", self.pings_cut);
        t.int("PINGs lost", self.pings_lost);
        t.int("BYE shutdown received", self.closed_by_server.shutdown);
        self.closed_by_server.rows(t, "closed by server");
        t.int("reconnects", self.reconnects);
        t.int("reconnects answered", self.reconnected);
        t.opt("BYE shutdown to PONG p50", "ms", self.reconnect_ms.p50);
        t.opt("BYE shutdown to PONG p99", "ms", self.reconnect_ms.p99);
        t.opt("BYE shutdown to PONG max", "ms", self.reconnect_ms.max);
        t.int("held clients", self.held);
        t.int("held clients told BYE shutdown", self.held_told);
        t.int("held clients connected at the end", self.held_connected);
    }
}

/// One connection: a held client's or a steady one.
#[derive(Debug, Clone, Copy)]
struct Link {
    /// The held client it belongs to; `None`: a steady connect.
    client: Option<u32>,
    /// Connecting, or open, from this side's point of view.
    alive: bool,
    /// Its first `PING` was answered.
    answered: bool,
    /// `PING`s sent on it and not answered yet.
    unanswered: u32,
    /// The closing line that led to this connection, if it is a reconnect.
    after_bye: Option<Instant>,
}

/// The opening: held connections opened as in every scenario.
struct OpeningPhase {
    pings: u64,
    pongs: u64,
    closes: CloseCounter,
}

impl Handler for OpeningPhase {
    fn on_event(&mut self, pool: &mut Pool, ev: Ev) {
        self.closes.on_event(&ev);
        match ev {
            Ev::Connected(key, _) if pool.is_open(key) => self.pings += 1,
            Ev::Msg(_, Reply::Pong(_), _) => self.pongs += 1,
            _ => {}
        }
    }

    fn done(&self, _pool: &Pool, opener: &Opener, _now: Instant) -> bool {
        opener.is_done()
    }

    fn progress(&self, pool: &Pool, opener: &Opener) -> String {
        format!(
            "opening: answered {} pending {}",
            opener.established, pool.pending
        )
    }
}

/// The run after the opening.
struct Roller {
    f: Rolling,
    interval: Duration,
    connect_timeout: Duration,
    links: Vec<Link>,
    /// Each held client's current connection.
    current: Vec<Option<usize>>,
    told: Vec<bool>,
    /// Next `PING` of each held client, in time order.
    due: VecDeque<(Instant, u32)>,
    /// Held clients to connect again, in time order, with the closing line
    /// that started it.
    retries: VecDeque<(Instant, u32, Option<Instant>)>,
    /// Every connect with its start, in time order, for the timeout.
    connecting: VecDeque<(Instant, usize)>,
    /// The next steady connect (`None`: none at this rate).
    next_probe: Option<Instant>,
    probe_period: Duration,
    /// Steady connections still alive.
    probes_alive: usize,
    reconnect_ms: Vec<f64>,
    closes: CloseCounter,
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
    fn end(&mut self, pool: &mut Pool, key: usize, cut: bool) -> Link {
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
    fn finished(&self) -> bool {
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
    fn turn(&mut self, pool: &mut Pool, now: Instant, running: bool) -> Option<Instant> {
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

    fn on_event(&mut self, pool: &mut Pool, ev: Ev) {
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

    fn progress(&self, pool: &Pool) -> String {
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

/// Runs the scenario.
pub(crate) fn run(args: &Options, pool: &mut Pool) -> io::Result<Report> {
    let begun = Instant::now();
    let mut progress = Progress::new("rolling");
    let mut opener = Opener::new(args.conns, args.pending, args.connect_timeout);
    let mut opening = OpeningPhase {
        pings: 0,
        pongs: 0,
        closes: CloseCounter::default(),
    };
    let cap = begun + args.connect_timeout + Duration::from_secs(1);
    drive(pool, &mut opening, &mut opener, cap, &mut progress)?;
    let mut notes = Vec::new();

    // The opening's connections: those still open become the held clients.
    let links: Vec<Link> = (0..pool.len())
        .map(|_| Link {
            client: None,
            alive: false,
            answered: false,
            unanswered: 0,
            after_bye: None,
        })
        .collect();
    let mut r = Roller {
        f: Rolling {
            opening: opener.figures(&mut notes),
            interval_ms: args.interval.as_secs_f64() * 1000.0,
            rate: u64::from(args.rate),
            pings: opening.pings,
            pongs: opening.pongs,
            ..Rolling::default()
        },
        interval: args.interval,
        connect_timeout: args.connect_timeout,
        links,
        current: Vec::new(),
        told: Vec::new(),
        due: VecDeque::new(),
        retries: VecDeque::new(),
        connecting: VecDeque::new(),
        next_probe: None,
        probe_period: Duration::ZERO,
        probes_alive: 0,
        reconnect_ms: Vec::new(),
        closes: opening.closes,
    };
    let start = Instant::now();
    for key in (0..pool.len()).filter(|&key| pool.is_open(key)) {
        let client = r.current.len() as u32;
        r.links[key] = Link {
            client: Some(client),
            alive: true,
            answered: true,
            unanswered: 0,
            after_bye: None,
        };
        r.current.push(Some(key));
        r.told.push(false);
        // Spread over one interval, as the opening spread them.
        let offset = r
            .interval
            .mul_f64(f64::from(client) / args.conns.max(1) as f64);
        r.due.push_back((start + offset, client));
    }
    if args.rate > 0 {
        r.probe_period = Duration::from_secs_f64(1.0 / f64::from(args.rate));
        r.next_probe = Some(start);
    }

    let run_end = start + args.duration;
    let end = run_end + args.grace;
    let mut events = Vec::with_capacity(1024);
    loop {
        let now = Instant::now();
        let running = now < run_end;
        if now >= end || (!running && r.finished()) {
            break;
        }
        if !running {
            r.next_probe = None;
        }
        let mut wake = end.min(now + Duration::from_millis(250));
        if running {
            wake = wake.min(run_end);
        }
        if let Some(t) = r.turn(pool, now, running) {
            wake = wake.min(t);
        }
        pool.poll(Some(wake.saturating_duration_since(now)), &mut events)?;
        for ev in events.drain(..) {
            r.on_event(pool, ev);
        }
        progress.tick(Instant::now(), || r.progress(pool));
    }

    r.f.held = r.current.len() as u64;
    r.f.held_told = r.told.iter().filter(|&&t| t).count() as u64;
    r.f.held_connected = r
        .current
        .iter()
        .filter(|key| key.is_some_and(|k| r.links[k].alive && r.links[k].answered))
        .count() as u64;
    // What is still out at the end is lost; a connect never answered failed.
    for key in 0..r.links.len() {
        let l = r.links[key];
        if l.alive {
            if !l.answered {
                r.f.failed_otherwise += 1;
            }
            r.end(pool, key, false);
        }
    }
    r.f.secs = begun.elapsed().as_secs_f64();
    r.f.closed_by_server = r.closes.closes;
    r.f.reconnect_ms = Spread::of(std::mem::take(&mut r.reconnect_ms));
    if r.f.pings != r.f.pongs + r.f.pings_cut + r.f.pings_lost {
        notes.push(format!(
            "PINGs sent ({}) differ from PONGs + cut + lost ({})",
            r.f.pings,
            r.f.pongs + r.f.pings_cut + r.f.pings_lost
        ));
    }
    Ok(Report::single(args, Figures::Rolling(r.f), notes))
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{Shutdown, TcpListener, TcpStream};
    use std::thread;

    use super::*;
    use crate::load::Scenario;

    /// Answers each `PING` with `PONG`. The first `old` connections are
    /// told `BYE shutdown` after their third `PING`, then read to the
    /// client's end (so that a `PING` crossing the `BYE` is not answered
    /// and causes no reset).
    fn server(old: usize) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(stream) = stream else { return };
                thread::spawn(move || serve(stream, n < old));
            }
        });
        addr
    }

    fn serve(mut stream: TcpStream, old: bool) {
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut line = String::new();
        let mut pings = 0;
        while matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
            let ping = line.trim_end() == "PING";
            line.clear();
            if !ping {
                continue;
            }
            pings += 1;
            if old && pings == 3 {
                let _ = stream.write_all(b"PONG\nBYE shutdown\n");
                let _ = stream.shutdown(Shutdown::Write);
                let _ = reader.read_to_end(&mut Vec::new());
                return;
            }
            if stream.write_all(b"PONG\n").is_err() {
                return;
            }
        }
    }

    #[test]
    fn held_clients_reconnect_after_bye_shutdown_and_every_ping_is_accounted_for() {
        let mut opts = Options::new(Scenario::Rolling, server(5));
        opts.conns = 5;
        opts.rate = 20;
        opts.interval = Duration::from_millis(30);
        opts.duration = Duration::from_millis(500);
        opts.grace = Duration::from_millis(500);
        let report = crate::load::run(&opts).expect("run");
        let r = report.rolling().expect("rolling");
        assert_eq!(
            (r.refused, r.reset, r.reset_later, r.failed_otherwise),
            (0, 0, 0, 0)
        );
        assert_eq!(r.pings_lost, 0);
        assert_eq!(r.pings, r.pongs + r.pings_cut + r.pings_lost);
        assert_eq!(r.closed_by_server.shutdown, 5);
        assert_eq!((r.held_told, r.held_connected), (5, 5));
        assert_eq!((r.reconnects, r.reconnected), (5, 5));
        assert!(r.probes > 0 && r.probes == r.probes_answered, "{r:?}");
        assert!(r.reconnect_ms.max.is_some());
    }
}
