//! Connection-capacity benchmark: vigil against a tokio baseline.
//!
//! `cargo bench --bench capacity` (add `-- --quick` for a fast check, or
//! `-- --report-only` to print the table and plot again from the last run's
//! JSON files; with `--quick` the sizes in the table are the quick ones).
//!
//! Starts each server in turn on `127.0.0.1:0` (vigil, then the baseline,
//! which is this same executable re-run with `--serve-baseline`), a fresh
//! server per scenario, runs `vigil-load` for every scenario against it with
//! `--server-pid`, server and load client pinned to different CPUs, and
//! prints one table with both servers, their ratio (vigil ÷ baseline) and
//! whether vigil met each target. Raw JSON, the table and an SVG plot of
//! reap lateness go to `target/capacity/` (`target/capacity-quick/` with
//! `--quick`).

#[path = "baseline/tokio_server.rs"]
mod tokio_server;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const VIGIL: &str = env!("CARGO_BIN_EXE_vigil");
const LOAD: &str = env!("CARGO_BIN_EXE_vigil-load");
const TASKSET: &str = "/usr/bin/taskset";
/// vigil's timer tick in the reap scenario; the lateness target is 2 ticks + 5 ms.
const TICK_MS: f64 = 10.0;
/// Source addresses the load client spreads its connections over
/// (127.0.0.1 to 127.0.0.4).
const SOURCES: u8 = 4;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve-baseline") {
        let cfg = tokio_server::Config::parse(&args[1..]).unwrap_or_else(|e| {
            eprintln!("baseline: {e}");
            std::process::exit(2)
        });
        if let Err(e) = tokio_server::serve(cfg) {
            eprintln!("baseline: {e}");
            std::process::exit(1);
        }
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this
    // executable without it, and must not start a five-minute benchmark.
    if !args.iter().any(|a| a == "--bench" || a == "--report-only") {
        eprintln!("capacity: not run under `cargo test`; use `cargo bench --bench capacity`");
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let sizes = if quick { Sizes::QUICK } else { Sizes::FULL };
    // `--report-only`: no runs, the table and plot again from the JSON files
    // of the last run.
    let report_only = args.iter().any(|a| a == "--report-only");
    // Quick runs keep their files apart, so they never mix with a full run's.
    let out = out_dir(if quick { "capacity-quick" } else { "capacity" });
    std::fs::create_dir_all(&out).expect("create target/capacity");
    let pin = Path::new(TASKSET).exists()
        && std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2;
    let machine = machine();
    eprintln!(
        "capacity: {machine}; pinning: {pin}; output in {}",
        out.display()
    );

    // Rounds alternate the servers so that noise from the rest of the
    // machine falls on both; the table shows the median of the rounds.
    let rounds = if quick { 1 } else { ROUNDS };
    let mut results = [Results::default(), Results::default()];
    for round in 0..rounds {
        if !report_only {
            eprintln!("capacity: round {} of {rounds}", round + 1);
        }
        for (i, server) in [ServerKind::Vigil, ServerKind::Baseline]
            .into_iter()
            .enumerate()
        {
            for scenario in SCENARIOS {
                let path = out.join(format!("{}-{scenario}-{round}.json", server.name()));
                let json = if report_only {
                    std::fs::read_to_string(path).unwrap_or_default()
                } else {
                    run_scenario(server, scenario, &sizes, pin, &path)
                };
                results[i].add(scenario, json);
            }
        }
    }
    let table = table(&results[0], &results[1], &sizes);
    let report = format!(
        "{machine}\nsizes: {}; load from {SOURCES} source addresses; median of {rounds} round(s)\n\n{table}",
        sizes.describe()
    );
    println!("\n{report}");
    std::fs::write(out.join("table.md"), &report).expect("write table");
    let svg = lateness_svg(
        &results[0].samples("reap", "reap_lateness_ms"),
        &results[1].samples("reap", "reap_lateness_ms"),
    );
    std::fs::write(out.join("reap-lateness.svg"), svg).expect("write svg");
    eprintln!(
        "capacity: wrote {}/table.md and reap-lateness.svg",
        out.display()
    );
}

/// Connection counts and durations of one run.
struct Sizes {
    hold: usize,
    hold_secs: u64,
    hb_conns: usize,
    hb_window: usize,
    hb_secs: u64,
    reap: usize,
    keepalive: usize,
    keepalive_secs: u64,
}

impl Sizes {
    /// Near this machine's limit of 20,000 files per process, for server and client.
    const FULL: Sizes = Sizes {
        hold: 19_000,
        hold_secs: 5,
        hb_conns: 1_000,
        hb_window: 8,
        hb_secs: 5,
        reap: 10_000,
        keepalive: 2_000,
        keepalive_secs: 5,
    };
    /// A fast check.
    const QUICK: Sizes = Sizes {
        hold: 2_000,
        hold_secs: 2,
        hb_conns: 200,
        hb_window: 8,
        hb_secs: 2,
        reap: 1_000,
        keepalive: 200,
        keepalive_secs: 2,
    };

    fn describe(&self) -> String {
        format!(
            "hold {} for {}s; heartbeat {} x window {} for {}s; reap {} (idle 1s, tick 10ms); keepalive {} (PING every 500ms, idle 1s) for {}s",
            self.hold, self.hold_secs, self.hb_conns, self.hb_window, self.hb_secs,
            self.reap, self.keepalive, self.keepalive_secs
        )
    }
}

/// `hold-no-timer` is `hold` against a server without an idle timeout: no
/// timer per connection, so the memory row shows what the timer costs.
const SCENARIOS: [&str; 5] = ["hold", "hold-no-timer", "heartbeat", "reap", "keepalive"];
/// Rounds of every scenario against every server (`--quick`: one).
const ROUNDS: usize = 3;

#[derive(Clone, Copy, PartialEq)]
enum ServerKind {
    Vigil,
    Baseline,
}

impl ServerKind {
    fn name(self) -> &'static str {
        match self {
            ServerKind::Vigil => "vigil",
            ServerKind::Baseline => "baseline",
        }
    }
}

/// A running server, stopped with SIGTERM (then killed) when dropped.
struct Server {
    child: Child,
    addr: String,
    name: &'static str,
}

impl Server {
    fn start(kind: ServerKind, flags: &[&str], pin: bool) -> Server {
        let exe = std::env::current_exe().expect("own path");
        let mut argv: Vec<String> = Vec::new();
        if pin {
            argv.extend([TASKSET.into(), "-c".into(), "0".into()]);
        }
        match kind {
            ServerKind::Vigil => argv.push(VIGIL.into()),
            ServerKind::Baseline => {
                argv.push(exe.display().to_string());
                argv.push("--serve-baseline".into());
            }
        }
        argv.extend(["--listen".into(), "127.0.0.1:0".into()]);
        argv.extend(flags.iter().map(|s| s.to_string()));
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", argv[0]));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        for pipe in [Box::new(stdout) as Box<dyn Read + Send>, Box::new(stderr)] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    if let Some(i) = line.find("listening on ") {
                        let addr = line[i + 13..].split_whitespace().next().unwrap_or("");
                        let _ = tx.send(Ok(addr.to_string()));
                    } else if line.contains("ERROR") || line.contains("WARN") {
                        eprintln!("  server: {line}");
                    }
                }
                let _ = tx.send(Err(()));
            });
        }
        let mut server = Server {
            child,
            addr: String::new(),
            name: kind.name(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Ok(addr)) => {
                    server.addr = addr;
                    return server;
                }
                Ok(Err(())) => continue,
                Err(_) => panic!("{} did not print `listening on` within 10 s", kind.name()),
            }
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                if !status.success() {
                    eprintln!("  {} exited with {status} after SIGTERM", self.name);
                }
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("  {} ignored SIGTERM for 5 s; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The load client, killed if the bench unwinds before it ends.
struct LoadGuard(Child);

impl Drop for LoadGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Starts a fresh server, runs one scenario against it, returns the JSON.
fn run_scenario(
    kind: ServerKind,
    scenario: &str,
    s: &Sizes,
    pin: bool,
    json_path: &Path,
) -> String {
    let server_flags: Vec<&str> = match (scenario, kind) {
        ("hold", _) => vec!["--idle-timeout", "60m"],
        ("hold-no-timer", _) => vec!["--idle-timeout", "0"],
        ("reap", ServerKind::Vigil) => vec!["--idle-timeout", "1s", "--tick", "10ms"],
        ("reap", ServerKind::Baseline) => vec!["--idle-timeout", "1s"],
        ("keepalive", _) => vec!["--idle-timeout", "1s"],
        _ => vec![],
    };
    let server = Server::start(kind, &server_flags, pin);
    let _ = std::fs::remove_file(json_path);
    let subcommand = match scenario {
        "hold-no-timer" => "hold",
        other => other,
    };
    let mut load: Vec<String> = vec![
        subcommand.into(),
        "--addr".into(),
        server.addr.clone(),
        "--server-pid".into(),
        server.pid().to_string(),
        "--label".into(),
        kind.name().into(),
        "--json".into(),
        json_path.display().to_string(),
        // Four source addresses, so the client's ephemeral ports (and the
        // kernel's search for a free one) are not what limits the connect
        // rate past ~14,000 connections.
        format!("--sources={SOURCES}"),
    ];
    let more: Vec<String> = match scenario {
        "hold" => vec![
            format!("--conns={}", s.hold),
            format!("--duration={}s", s.hold_secs),
        ],
        "hold-no-timer" => vec![format!("--conns={}", s.hold), "--duration=1s".into()],
        "heartbeat" => vec![
            format!("--conns={}", s.hb_conns),
            format!("--window={}", s.hb_window),
            format!("--duration={}s", s.hb_secs),
        ],
        "reap" => vec![
            format!("--conns={}", s.reap),
            "--idle-timeout=1s".into(),
            "--grace=2s".into(),
        ],
        _ => vec![
            format!("--conns={}", s.keepalive),
            "--interval=500ms".into(),
            format!("--duration={}s", s.keepalive_secs),
        ],
    };
    load.extend(more);
    eprintln!(
        "capacity: {} {scenario} on {} (server flags: {})",
        kind.name(),
        server.addr,
        server_flags.join(" ")
    );
    let mut cmd = if pin {
        let mut c = Command::new(TASKSET);
        c.args(["-c", "1", LOAD]);
        c
    } else {
        Command::new(LOAD)
    };
    let mut load = LoadGuard(
        cmd.args(&load)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start vigil-load"),
    );
    let child = &mut load.0;
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if Instant::now() > deadline {
            eprintln!("capacity: vigil-load ran past 180 s; killing it");
            let _ = child.kill();
            break child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let table = reader.join().unwrap_or_default();
    for line in table.lines() {
        eprintln!("  {line}");
    }
    if !status.success() {
        eprintln!(
            "capacity: vigil-load {scenario} against {} failed: {status}",
            kind.name()
        );
    }
    drop(server);
    std::fs::read_to_string(json_path).unwrap_or_default()
}

/// The JSON of each round of each scenario against one server.
#[derive(Default)]
struct Results(Vec<(&'static str, Vec<String>)>);

impl Results {
    fn add(&mut self, scenario: &'static str, json: String) {
        match self.0.iter_mut().find(|(s, _)| *s == scenario) {
            Some((_, runs)) => runs.push(json),
            None => self.0.push((scenario, vec![json])),
        }
    }

    fn runs(&self, scenario: &str) -> &[String] {
        self.0
            .iter()
            .find(|(s, _)| *s == scenario)
            .map_or(&[], |(_, j)| j.as_slice())
    }

    /// Whether no round of `scenario` left a result.
    fn missing(&self, scenario: &str) -> bool {
        self.runs(scenario).iter().all(String::is_empty)
    }

    /// Whether any round's JSON contains `text`.
    fn mentions(&self, scenario: &str, text: &str) -> bool {
        self.runs(scenario).iter().any(|j| j.contains(text))
    }

    /// The median over the rounds of a number (NaN if absent everywhere).
    fn num(&self, scenario: &str, key: &str) -> f64 {
        let mut v: Vec<f64> = self
            .runs(scenario)
            .iter()
            .map(|j| json_num(j, key))
            .filter(|x| !x.is_nan())
            .collect();
        if v.is_empty() {
            return f64::NAN;
        }
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    }

    /// The largest value over the rounds (NaN if absent everywhere): counts
    /// that must be zero must be zero in every round.
    fn max(&self, scenario: &str, key: &str) -> f64 {
        self.runs(scenario)
            .iter()
            .map(|j| json_num(j, key))
            .filter(|x| !x.is_nan())
            .fold(f64::NAN, f64::max)
    }

    /// The smallest value over the rounds (NaN if absent everywhere).
    fn min(&self, scenario: &str, key: &str) -> f64 {
        self.runs(scenario)
            .iter()
            .map(|j| json_num(j, key))
            .filter(|x| !x.is_nan())
            .fold(f64::NAN, f64::min)
    }

    /// An array of numbers, every round's concatenated.
    fn samples(&self, scenario: &str, key: &str) -> Vec<f64> {
        let pat = format!("\"{key}\": [");
        let mut out = Vec::new();
        for json in self.runs(scenario) {
            let Some(i) = json.find(&pat) else { continue };
            let rest = &json[i + pat.len()..];
            let end = rest.find(']').unwrap_or(0);
            out.extend(
                rest[..end]
                    .split(',')
                    .filter_map(|x| x.trim().parse::<f64>().ok()),
            );
        }
        out
    }
}

/// A number from one JSON text written by `vigil-load` (NaN if absent).
fn json_num(json: &str, key: &str) -> f64 {
    let pat = format!("\"{key}\": ");
    let Some(i) = json.find(&pat) else {
        return f64::NAN;
    };
    let rest = &json[i + pat.len()..];
    let end = rest.find([',', '\n']).unwrap_or(rest.len());
    rest[..end].trim().parse().unwrap_or(f64::NAN)
}

/// One row of the final table.
struct Row {
    figure: String,
    vigil: f64,
    baseline: f64,
    target: String,
    /// `Some(met)` where vigil has a target.
    met: Option<bool>,
}

fn table(v: &Results, b: &Results, s: &Sizes) -> String {
    let mut rows = Vec::new();
    let mut row = |figure: &str,
                   scen: &str,
                   key: &str,
                   target: &str,
                   met: Option<&dyn Fn(f64, f64) -> bool>| {
        // `max:key` / `min:key`: the worst round (counts that must hold in
        // every round); a bare key: the median round.
        let get = |r: &Results| match key.split_once(':') {
            Some(("max", k)) => r.max(scen, k),
            Some(("min", k)) => r.min(scen, k),
            _ => r.num(scen, key),
        };
        let (x, y) = (get(v), get(b));
        rows.push(Row {
            figure: figure.to_string(),
            vigil: x,
            baseline: y,
            target: target.to_string(),
            met: met.map(|f| f(x, y)),
        });
    };
    // hold
    let held_ok = |r: &Results| {
        r.min("hold", "established") == s.hold as f64
            && r.max("hold", "connect_failed") == 0.0
            && r.max("hold", "connect_timed_out") == 0.0
            && r.max("hold", "closed_by_server") == 0.0
    };
    let vigil_held = held_ok(v);
    row(
        &format!("hold: connections established (of {}, worst round)", s.hold),
        "hold",
        "min:established",
        "all, no failures",
        Some(&|_, _| vigil_held),
    );
    row(
        "hold: connects failed (worst round)",
        "hold",
        "max:connect_failed",
        "",
        None,
    );
    row(
        "hold: closed by the server (worst round)",
        "hold",
        "max:closed_by_server",
        "",
        None,
    );
    row(
        "hold: server open fds with the connections",
        "hold",
        "server_fds_after",
        "",
        None,
    );
    row(
        &format!("hold: connect rate, first {} (conn/s)", s.hold.min(10_000)),
        "hold",
        "connect_rate_first_10k",
        "",
        None,
    );
    row(
        &format!("hold: connect rate, all {} (conn/s)", s.hold),
        "hold",
        "connect_rate",
        ">= baseline",
        Some(&|x, y| x >= y),
    );
    row(
        "hold: server CPU to accept them (s)",
        "hold",
        "server_cpu_opening",
        "",
        None,
    );
    row(
        "hold: load client CPU to open them (s)",
        "hold",
        "client_cpu_opening",
        "",
        None,
    );
    row(
        "hold: of which in the client's kernel (s)",
        "hold",
        "client_sys_opening",
        "",
        None,
    );
    row(
        "hold: server RSS growth per connection (bytes)",
        "hold",
        "server_rss_per_conn",
        "<= 128",
        Some(&|x, _| x <= 128.0),
    );
    row(
        "hold, no idle timeout: server RSS growth per connection (bytes)",
        "hold-no-timer",
        "server_rss_per_conn",
        "",
        None,
    );
    row(
        "hold: server wakeups/s while silent (context switches)",
        "hold",
        "server_wakeups_per_sec",
        "~0 (< 1/s)",
        Some(&|x, _| x < 1.0),
    );
    row(
        "hold: server CPU while silent (s)",
        "hold",
        "server_cpu_while_silent",
        "",
        None,
    );
    // heartbeat
    row("heartbeat: PONGs/s", "heartbeat", "pongs_per_sec", "", None);
    row(
        "heartbeat: server CPU use (1 = one core)",
        "heartbeat",
        "server_cpu_share",
        "",
        None,
    );
    row(
        "heartbeat: load client CPU use (1 = one core)",
        "heartbeat",
        "client_cpu_share",
        "",
        None,
    );
    row(
        "heartbeat: round trip p50 (us)",
        "heartbeat",
        "rtt_p50_us",
        "",
        None,
    );
    row(
        "heartbeat: round trip p99 (us)",
        "heartbeat",
        "rtt_p99_us",
        "",
        None,
    );
    row(
        "heartbeat: round trip max (us)",
        "heartbeat",
        "rtt_max_us",
        "",
        None,
    );
    row(
        "heartbeat: server CPU per PONG (us)",
        "heartbeat",
        "server_cpu_per_pong_us",
        "<= 0.7 x baseline",
        Some(&|x, y| x <= 0.7 * y),
    );
    // reap
    let late_target = 2.0 * TICK_MS + 5.0;
    row(
        &format!("reap: connections reaped with BYE idle (of {})", s.reap),
        "reap",
        "min:reaped",
        "all",
        Some(&|x, _| x == s.reap as f64),
    );
    row("reap: lateness p50 (ms)", "reap", "late_p50_ms", "", None);
    row(
        "reap: lateness p99 (ms)",
        "reap",
        "late_p99_ms",
        &format!("<= {late_target} (2 ticks + 5)"),
        Some(&|x, _| x <= late_target),
    );
    row("reap: lateness max (ms)", "reap", "late_max_ms", "", None);
    row(
        "reap: lateness from the PONG p99 (ms, lower bound)",
        "reap",
        "late_from_pong_p99_ms",
        "",
        None,
    );
    row(
        "reap: first PING round trip p99 (ms)",
        "reap",
        "ping_rtt_p99_ms",
        "",
        None,
    );
    row(
        "reap: closed before the deadline (worst round)",
        "reap",
        "max:early",
        "0",
        Some(&|x, _| x == 0.0),
    );
    row(
        "reap: never closed, 2 s grace (worst round)",
        "reap",
        "max:never",
        "0",
        Some(&|x, _| x == 0.0),
    );
    // keepalive
    row(
        &format!("keepalive: reaped while heartbeating (of {})", s.keepalive),
        "keepalive",
        "max:reaped",
        "0",
        Some(&|x, _| x == 0.0),
    );
    row("keepalive: PONGs", "keepalive", "pongs", "", None);
    row(
        "keepalive: server context switches/s",
        "keepalive",
        "server_wakeups_per_sec",
        "",
        None,
    );

    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            let ratio = if r.baseline != 0.0 && r.vigil.is_finite() && r.baseline.is_finite() {
                format!("{:.2}", r.vigil / r.baseline)
            } else {
                "-".into()
            };
            [
                r.figure.clone(),
                fmt(r.vigil),
                fmt(r.baseline),
                ratio,
                r.target.clone(),
                match r.met {
                    Some(true) => "met".into(),
                    Some(false) => "MISSED".into(),
                    None => String::new(),
                },
            ]
        })
        .collect();
    let head = [
        "figure",
        "vigil",
        "baseline (tokio)",
        "vigil ÷ baseline",
        "vigil target",
        "vigil",
    ];
    let mut w = head.map(|h| h.chars().count());
    for c in &cells {
        for (i, x) in c.iter().enumerate() {
            w[i] = w[i].max(x.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, c: &[String; 6]| {
        let _ = write!(out, "|");
        for (i, x) in c.iter().enumerate() {
            let pad = w[i] - x.chars().count();
            if i == 0 || i >= 4 {
                let _ = write!(out, " {x}{} |", " ".repeat(pad));
            } else {
                let _ = write!(out, " {}{x} |", " ".repeat(pad));
            }
        }
        out.push('\n');
    };
    line(&mut out, &head.map(String::from));
    let _ = write!(out, "|");
    for (i, wi) in w.iter().enumerate() {
        if i == 0 || i >= 4 {
            let _ = write!(out, "{}|", "-".repeat(wi + 2));
        } else {
            let _ = write!(out, "{}:|", "-".repeat(wi + 1));
        }
    }
    out.push('\n');
    for c in &cells {
        line(&mut out, c);
    }
    let missed = rows.iter().filter(|r| r.met == Some(false)).count();
    let met = rows.iter().filter(|r| r.met == Some(true)).count();
    let _ = writeln!(out, "\nvigil targets: {met} met, {missed} missed");
    for (name, r) in [("vigil", v), ("baseline", b)] {
        for scen in SCENARIOS {
            if r.missing(scen) {
                let _ = writeln!(out, "note: no result for {name} {scen} (see the log above)");
            }
            if r.mentions(scen, "file-descriptor limit") {
                let _ = writeln!(
                    out,
                    "note: {name} {scen}: the load client was stopped by its own file-descriptor limit, not by the server"
                );
            }
        }
    }
    out
}

fn fmt(v: f64) -> String {
    if v.is_nan() {
        "n/a".into()
    } else if v.abs() >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Where the results go: `target/<name>/`.
fn out_dir(name: &str) -> PathBuf {
    let release = Path::new(VIGIL).parent().expect("target/release");
    release.parent().unwrap_or(release).join(name)
}

/// Cores, file limit, kernel.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let fd = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .unwrap_or("?")
        .to_string();
    let kernel = Command::new("uname")
        .arg("-r")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("machine: {cores} cores, open-file limit {fd} per process, Linux {kernel}")
}

/// A hand-written SVG: the cumulative distribution of reap lateness.
fn lateness_svg(vigil: &[f64], baseline: &[f64]) -> String {
    let (w, h, l, r, t, b) = (640.0, 360.0, 60.0, 20.0, 30.0, 50.0);
    let mut all: Vec<f64> = vigil.iter().chain(baseline).copied().collect();
    all.sort_by(|a, b| a.total_cmp(b));
    let target = 2.0 * TICK_MS + 5.0;
    let xmax = (all.last().copied().unwrap_or(target).max(target) * 1.1)
        .ceil()
        .max(1.0);
    let xmin = all.first().copied().unwrap_or(0.0).min(0.0).floor();
    let x = |v: f64| l + (v - xmin) / (xmax - xmin) * (w - l - r);
    let y = |p: f64| h - b - p * (h - t - b);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="18" text-anchor="middle" font-size="14">Reap lateness: BYE idle after the deadline (CDF)</text>"#,
        w / 2.0
    );
    // Axes and grid.
    for i in 0..=4 {
        let p = i as f64 / 4.0;
        let _ = writeln!(
            s,
            r##"<line x1="{l}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}%</text>"##,
            w - r,
            l - 6.0,
            y(p) + 4.0,
            (p * 100.0) as u32,
            y = y(p)
        );
    }
    // Round tick steps: 1, 2 or 5 times a power of ten, five to ten ticks.
    let raw = (xmax - xmin) / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|st| *st >= raw)
        .unwrap_or(10.0 * mag);
    let mut v = (xmin / step).ceil() * step;
    while v <= xmax + 1e-9 {
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{}" y2="{}" stroke="#ddd"/><text x="{x:.1}" y="{}" text-anchor="middle">{v}</text>"##,
            t,
            h - b,
            h - b + 16.0,
            x = x(v)
        );
        v += step;
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">lateness (ms)</text>"#,
        (l + w - r) / 2.0,
        h - 12.0
    );
    let _ = writeln!(
        s,
        r##"<line x1="{x:.1}" x2="{x:.1}" y1="{t}" y2="{}" stroke="#c00" stroke-dasharray="4 3"/><text x="{:.1}" y="{}" fill="#c00">target p99 {target} ms</text>"##,
        h - b,
        x(target) + 4.0,
        t + 14.0,
        x = x(target)
    );
    for (name, data, color, ly) in [
        ("vigil", vigil, "#1f77b4", 0.0),
        ("baseline (tokio)", baseline, "#ff7f0e", 16.0),
    ] {
        let mut d: Vec<f64> = data.to_vec();
        d.sort_by(|a, b| a.total_cmp(b));
        let n = d.len().max(1) as f64;
        // At most ~400 points per curve.
        let step = (d.len() / 400).max(1);
        let mut pts = String::new();
        for (i, v) in d.iter().enumerate() {
            if i % step == 0 || i + 1 == d.len() {
                let _ = write!(pts, "{:.1},{:.1} ", x(*v), y((i + 1) as f64 / n));
            }
        }
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{pts}"/>"#
        );
        let _ = writeln!(
            s,
            r#"<line x1="{}" x2="{}" y1="{ly2}" y2="{ly2}" stroke="{color}" stroke-width="2"/><text x="{}" y="{}">{name} (n={})</text>"#,
            w - r - 240.0,
            w - r - 220.0,
            w - r - 215.0,
            h - b - 60.0 + ly + 4.0,
            d.len(),
            ly2 = h - b - 60.0 + ly
        );
    }
    s.push_str("</svg>\n");
    s
}
