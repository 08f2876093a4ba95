//! What the benchmark runs: the sizes, the servers, and one table of
//! scenarios from which every server flag, load option and description is
//! derived.

use std::net::SocketAddr;
use std::time::Duration;

use vigil::load::{Options, Scenario};

/// Source addresses the load client spreads its connections over
/// (127.0.0.1 to 127.0.0.4), so that the client's ephemeral ports (and the
/// kernel's search for a free one) are not what limits the connect rate past
/// ~14,000 connections.
pub const SOURCES: u8 = 4;

/// Connection counts and durations of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    pub hold: usize,
    pub hold_secs: u64,
    pub hb_conns: usize,
    pub hb_window: usize,
    pub hb_secs: u64,
    pub reap: usize,
    pub keepalive: usize,
    pub keepalive_secs: u64,
    pub storm: usize,
}

impl Sizes {
    /// Near this machine's limit of 20,000 files per process, for server and client.
    pub const FULL: Sizes = Sizes {
        hold: 19_000,
        hold_secs: 5,
        hb_conns: 1_000,
        hb_window: 8,
        hb_secs: 5,
        reap: 10_000,
        keepalive: 2_000,
        keepalive_secs: 5,
        storm: 19_000,
    };
    /// A fast check.
    pub const QUICK: Sizes = Sizes {
        hold: 2_000,
        hold_secs: 2,
        hb_conns: 200,
        hb_window: 8,
        hb_secs: 2,
        reap: 1_000,
        keepalive: 200,
        keepalive_secs: 2,
        storm: 2_000,
    };

    /// One line for the report: every described case.
    pub fn describe(&self) -> String {
        CASES
            .iter()
            .filter_map(|c| c.describe.map(|d| d(c, self)))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The servers compared, vigil first, then what it is compared with: the
/// tokio baseline (what a Rust user would write instead) and the floor (the
/// least any readiness-based server must do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    Vigil,
    Baseline,
    Floor,
}

impl ServerKind {
    /// Every server, in the order they run and appear in the table.
    pub const ALL: [ServerKind; 3] = [ServerKind::Vigil, ServerKind::Baseline, ServerKind::Floor];

    /// The name in file names and `--label`.
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Vigil => "vigil",
            ServerKind::Baseline => "baseline",
            ServerKind::Floor => "floor",
        }
    }

    /// The column heading.
    pub fn heading(self) -> &'static str {
        match self {
            ServerKind::Vigil => "vigil",
            ServerKind::Baseline => "baseline (tokio)",
            ServerKind::Floor => "floor (mio)",
        }
    }

    /// Whether this server takes part in `case`: the floor has no timers,
    /// so it has nothing to reap.
    pub fn runs(self, case: &Case) -> bool {
        !(self == ServerKind::Floor && case.scenario == Scenario::Reap)
    }
}

/// One scenario of the benchmark: a load scenario against a server started
/// with some settings.
#[derive(Debug)]
pub struct Case {
    /// The name in file names (`<server>-<name>-<round>.json`).
    pub name: &'static str,
    /// The load client's scenario.
    pub scenario: Scenario,
    /// The server's idle timeout (`--idle-timeout`; zero: off; `None`: the
    /// server's default).
    pub idle_timeout: Option<Duration>,
    /// vigil's timer tick (`--tick`), where the case sets one.
    pub tick: Option<Duration>,
    /// keepalive: one `PING` per connection every this long.
    pub interval: Duration,
    /// reap: how long past its deadline a connection may stay open.
    pub grace: Duration,
    /// Connections, and how long the load runs, for these sizes.
    pub size: fn(&Sizes) -> (usize, Duration),
    /// The case in the report's `sizes:` line, if it has a place there.
    pub describe: Option<fn(&Case, &Sizes) -> String>,
}

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Opens N connections and holds them silent against a far idle timeout.
pub static HOLD: Case = Case {
    name: "hold",
    scenario: Scenario::Hold,
    idle_timeout: Some(secs(60 * 60)),
    tick: None,
    interval: Duration::ZERO,
    grace: Duration::ZERO,
    size: |s| (s.hold, secs(s.hold_secs)),
    describe: Some(|_, s| format!("hold {} for {}s", s.hold, s.hold_secs)),
};

/// `hold` against a server without an idle timeout: no timer per
/// connection, so the memory row shows what the timer costs.
pub static HOLD_NO_TIMER: Case = Case {
    name: "hold-no-timer",
    scenario: Scenario::Hold,
    idle_timeout: Some(Duration::ZERO),
    tick: None,
    interval: Duration::ZERO,
    grace: Duration::ZERO,
    size: |s| (s.hold, secs(1)),
    describe: None,
};

/// K connections each keeping W `PING`s in flight.
pub static HEARTBEAT: Case = Case {
    name: "heartbeat",
    scenario: Scenario::Heartbeat,
    idle_timeout: None,
    tick: None,
    interval: Duration::ZERO,
    grace: Duration::ZERO,
    size: |s| (s.hb_conns, secs(s.hb_secs)),
    describe: Some(|_, s| {
        format!(
            "heartbeat {} x window {} for {}s",
            s.hb_conns, s.hb_window, s.hb_secs
        )
    }),
};

/// N connections fall silent and are reaped.
pub static REAP: Case = Case {
    name: "reap",
    scenario: Scenario::Reap,
    idle_timeout: Some(secs(1)),
    tick: Some(Duration::from_millis(10)),
    interval: Duration::ZERO,
    grace: secs(2),
    size: |s| (s.reap, Duration::ZERO),
    describe: Some(|c, s| {
        format!(
            "reap {} (idle {}, tick {})",
            s.reap,
            c.idle_timeout.map_or("-".into(), dur),
            c.tick.map_or("-".into(), dur)
        )
    }),
};

/// N connections `PING` every interval against twice that idle timeout.
pub static KEEPALIVE: Case = Case {
    name: "keepalive",
    scenario: Scenario::Keepalive,
    idle_timeout: Some(secs(1)),
    tick: None,
    interval: Duration::from_millis(500),
    grace: Duration::ZERO,
    size: |s| (s.keepalive, secs(s.keepalive_secs)),
    describe: Some(|c, s| {
        format!(
            "keepalive {} (PING every {}, idle {}) for {}s",
            s.keepalive,
            dur(c.interval),
            c.idle_timeout.map_or("-".into(), dur),
            s.keepalive_secs
        )
    }),
};

/// A reconnect storm: every client connects at once, sends `PING` and
/// waits for its `PONG`.
pub static STORM: Case = Case {
    name: "storm",
    scenario: Scenario::Storm,
    idle_timeout: Some(secs(60 * 60)),
    tick: None,
    interval: Duration::ZERO,
    grace: Duration::ZERO,
    size: |s| (s.storm, Duration::ZERO),
    describe: Some(|_, s| format!("storm {} at once", s.storm)),
};

/// The scenarios, in the order they run.
pub static CASES: [&Case; 6] = [&HOLD, &HOLD_NO_TIMER, &HEARTBEAT, &REAP, &KEEPALIVE, &STORM];

impl Case {
    /// The server's flags (besides `--listen`). The baseline has no timer
    /// wheel, so no tick.
    pub fn server_flags(&self, kind: ServerKind) -> Vec<String> {
        let mut flags = Vec::new();
        if let Some(idle) = self.idle_timeout {
            flags.extend(["--idle-timeout".to_string(), dur(idle)]);
        }
        if let (Some(tick), ServerKind::Vigil) = (self.tick, kind) {
            flags.extend(["--tick".to_string(), dur(tick)]);
        }
        if kind == ServerKind::Vigil {
            flags.extend(extra_vigil_flags());
        }
        flags
    }

    /// The load client's options against a server at `addr`.
    pub fn options(&self, sizes: &Sizes, addr: SocketAddr) -> Options {
        let mut o = Options::new(self.scenario, addr);
        let (conns, duration) = (self.size)(sizes);
        o.conns = conns;
        o.sources = SOURCES;
        match self.scenario {
            Scenario::Hold => o.duration = duration,
            Scenario::Heartbeat => {
                o.duration = duration;
                o.window = sizes.hb_window;
            }
            Scenario::Reap => {
                o.idle_timeout = self.idle_timeout.unwrap_or(o.idle_timeout);
                o.grace = self.grace;
            }
            Scenario::Keepalive => {
                o.duration = duration;
                o.interval = self.interval;
            }
            Scenario::Storm | Scenario::Rolling | Scenario::Fanout => {}
        }
        o
    }

    /// The reap target: the p99 lateness vigil may have, two ticks plus
    /// 5 ms (in ms; `None` without a tick).
    pub fn late_target_ms(&self) -> Option<f64> {
        self.tick.map(|t| 2.0 * t.as_secs_f64() * 1000.0 + 5.0)
    }
}

/// A duration as the command lines write it: whole seconds as `Ns`,
/// anything else in `ms`; zero as `0`.
pub fn dur(d: Duration) -> String {
    if d.is_zero() {
        "0".into()
    } else if d.subsec_millis() == 0 && d.as_secs().is_multiple_of(60) {
        format!("{}m", d.as_secs() / 60)
    } else if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// More flags for vigil in every scenario, from `VIGIL_EXTRA_FLAGS`
/// (separated by spaces), e.g. `--metrics 127.0.0.1:0` to measure what
/// serving metrics costs.
fn extra_vigil_flags() -> Vec<String> {
    std::env::var("VIGIL_EXTRA_FLAGS")
        .map(|flags| flags.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}
