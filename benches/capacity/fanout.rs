//! `cargo bench --bench capacity -- --fanout`: the fan-out benchmark.
//!
//! vigil's fan-out example (`examples/fanout.rs`, built with `cargo build
//! --release --example fanout`; `--fanout-server PATH` names another
//! program), the tokio baseline and the floor (both with `--fanout`), in
//! that order, in the same run: a fresh server each, the `fanout` load
//! scenario against it (N subscribers from [`SOURCES`] source addresses,
//! one publisher, one pinger), server and load client pinned to different
//! CPUs. One table with every figure, the targets and vigil's
//! verdicts ([`crate::fanout_table`]), and a plot of the last-delivery
//! latency of every message, go to `target/capacity/fanout-*` (or
//! `target/capacity-quick/` with `--quick`: 2,000 subscribers, 20 + 100
//! messages). `--fanout-subs N` sets the subscribers; `--report-only` reads
//! the last run's JSON again. A server that cannot be started (vigil's
//! example not built) leaves its column empty and says why.
//!
//! `--fanout-bus` adds the bus row ([`crate::bus`]), run right after vigil's
//! single process: the same subscribers over 4 instances of the example
//! sharing one `redis-server` (`--fanout-bus-instances N`: N of them), in a
//! second table beside vigil's single process ([`crate::fanout_bus`]), and
//! as a fourth curve. `--fanout-no-baselines` skips the tokio baseline and
//! the floor (their columns stay empty).

use std::path::{Path, PathBuf};
use std::time::Duration;

use vigil::load::{Options, Report, Scenario};

use crate::plan::{ServerKind, SOURCES};
use crate::plot::{self, Curve, Labels};
use crate::supervise::{self, Server};
use crate::{bus, fanout_bus, fanout_table};

/// Subscribers of the full run: near the 20,000 files a process may open,
/// for the server and for the one load process (which also holds the
/// publisher and the pinger).
pub const FULL_SUBS: usize = 19_000;
const QUICK_SUBS: usize = 2_000;
/// The server's idle timeout: the example's default.
const IDLE: &str = "5s";
/// Subscribers heartbeat this often (an empty line), well inside [`IDLE`],
/// and rarely enough that heartbeats are a few percent of the server's
/// reads while it fans out.
const HEARTBEAT: Duration = Duration::from_secs(2);

/// What one fan-out run does.
#[derive(Debug, Clone)]
pub struct Plan {
    pub subs: usize,
    pub messages: usize,
    pub burst: usize,
    pub gap: Duration,
    pub payload: usize,
    /// vigil's fan-out example.
    pub server: PathBuf,
    /// Run the bus row too.
    pub bus: bool,
    /// Its instances ([`bus::INSTANCES`] unless `--fanout-bus-instances`).
    pub bus_instances: usize,
    /// Skip the tokio baseline and the floor.
    pub no_baselines: bool,
}

impl Plan {
    /// The plan the command line asks for.
    pub fn from_args(args: &[String], quick: bool) -> Plan {
        let value = |flag: &str| {
            let i = args.iter().position(|a| a == flag)?;
            args.get(i + 1).cloned()
        };
        let subs = value("--fanout-subs")
            .and_then(|n| n.parse().ok())
            .unwrap_or(if quick { QUICK_SUBS } else { FULL_SUBS });
        Plan {
            subs,
            messages: if quick { 20 } else { 50 },
            burst: if quick { 100 } else { 300 },
            gap: Duration::from_millis(100),
            payload: 64,
            server: value("--fanout-server")
                .map(PathBuf::from)
                .unwrap_or_else(default_server),
            bus: args.iter().any(|a| a == "--fanout-bus"),
            bus_instances: value("--fanout-bus-instances")
                .and_then(|n| n.parse().ok())
                .filter(|&n| n > 0)
                .unwrap_or(bus::INSTANCES),
            no_baselines: args.iter().any(|a| a == "--fanout-no-baselines"),
        }
    }

    /// The line under the table's title.
    pub fn describe(&self) -> String {
        format!(
            "{} subscribers from {SOURCES} source addresses, heartbeat every {}s, {}-byte texts; latency: {} messages {} ms apart; throughput: {} messages, each on the last OK",
            self.subs,
            HEARTBEAT.as_secs(),
            self.payload,
            self.messages,
            self.gap.as_millis(),
            self.burst
        )
    }

    /// The server's flags besides `--listen`.
    pub fn server_flags(&self, kind: ServerKind) -> Vec<String> {
        let mut flags = vec!["--idle-timeout".to_string(), IDLE.into()];
        if kind != ServerKind::Vigil {
            flags.push("--fanout".into());
        }
        flags
    }

    /// The load client's options against `addr`.
    pub fn options(&self, addr: std::net::SocketAddr) -> Options {
        let mut o = Options::new(Scenario::Fanout, addr);
        o.conns = self.subs;
        o.sources = SOURCES;
        o.messages = self.messages;
        o.burst = self.burst;
        o.gap = self.gap;
        o.payload = self.payload;
        o.interval = HEARTBEAT;
        o
    }
}

/// `target/release/examples/fanout`, beside the `vigil` binary this bench
/// was built with.
fn default_server() -> PathBuf {
    let release = Path::new(supervise::VIGIL)
        .parent()
        .expect("target/release");
    release.join("examples/fanout")
}

/// Runs (or, with `report_only`, reads back) the fan-out benchmark and
/// writes its table and plot to `out`; returns the table.
pub fn run(plan: &Plan, out: &Path, pin: bool, report_only: bool, machine: &str) -> String {
    let mut reports: Vec<Option<Report>> = Vec::new();
    let mut notes = Vec::new();
    // The bus row runs right after vigil's single process, so that the two
    // it compares see the same spell of the machine's other load.
    let mut bus_run = None;
    for kind in ServerKind::ALL {
        if kind != ServerKind::Vigil && plan.bus && bus_run.is_none() {
            bus_run = Some(bus::run(plan, out, pin, report_only));
        }
        let json = out.join(format!("fanout-{}.json", kind.name()));
        if report_only {
            reports.push(supervise::read_report(&json));
            continue;
        }
        if kind != ServerKind::Vigil && plan.no_baselines {
            let _ = std::fs::remove_file(&json);
            reports.push(None);
            continue;
        }
        if kind == ServerKind::Vigil && !plan.server.exists() {
            notes.push(format!(
                "vigil: no fan-out example at {} (`cargo build --release --example fanout`, or --fanout-server PATH)",
                plan.server.display()
            ));
            let _ = std::fs::remove_file(&json);
            reports.push(None);
            continue;
        }
        let flags = plan.server_flags(kind);
        let exe = plan.server.display().to_string();
        let server = Server::start_exe(kind, &exe, &flags, pin);
        let opts = plan.options(server.addr.parse().expect("server address"));
        reports.push(supervise::run_load(
            &server, kind, "fanout", opts, &flags, pin, &json,
        ));
    }
    for (kind, report) in ServerKind::ALL.iter().zip(&reports) {
        let Some(r) = report else { continue };
        if r.client_fd_limited() {
            notes.push(format!(
                "{}: the load client's descriptor limit stopped the opening at {} connections",
                kind.name(),
                r.figures.opening().established
            ));
        }
        notes.extend(r.notes.iter().cloned());
    }
    notes.sort();
    notes.dedup();
    let rows = fanout_table::rows(&reports);
    let mut text = format!(
        "{machine}\nfan-out: {}\n\n{}",
        plan.describe(),
        fanout_table::render(&rows, &notes)
    );
    let bus_report = if let Some((report, notes)) = bus_run {
        text.push_str(&format!(
            "\nfan-out over a bus: the same subscribers spread over {} instances sharing one redis-server\n\n{}",
            plan.bus_instances,
            fanout_bus::render(reports[0].as_ref(), report.as_ref(), plan.bus_instances, &notes)
        ));
        report
    } else {
        None
    };
    std::fs::write(out.join("fanout-table.md"), &text).expect("write table");
    let samples: Vec<Vec<f64>> = reports
        .iter()
        .chain(std::iter::once(&bus_report))
        .map(|r| {
            r.as_ref()
                .and_then(Report::fanout)
                .map(|f| f.latency.last_delivery_samples_ms.clone())
                .unwrap_or_default()
        })
        .collect();
    let colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd"];
    let bus_name = format!("vigil, {} instances + Redis", plan.bus_instances);
    let names = ServerKind::ALL
        .iter()
        .map(|k| k.heading())
        .chain(std::iter::once(bus_name.as_str()));
    let curves: Vec<Curve<'_>> = names
        .zip(&samples)
        .zip(colors)
        .filter(|((name, samples), _)| !samples.is_empty() || !name.contains("Redis"))
        .map(|((name, samples), color)| Curve {
            name,
            samples,
            color,
        })
        .collect();
    let target = fanout_table::latency_target_ms(&reports).unwrap_or(0.0);
    let labels = Labels {
        title: "Fan-out: PUB to the last subscriber's MSG, one point a message (CDF)",
        x_axis: "last delivery (ms)",
        target: "target p99 (1.1 x floor)",
    };
    std::fs::write(
        out.join("fanout-latency.svg"),
        plot::cdf_svg(&curves, (target * 10.0).round() / 10.0, &labels),
    )
    .expect("write svg");
    eprintln!(
        "capacity: wrote {}/fanout-table.md and fanout-latency.svg",
        out.display()
    );
    text
}
