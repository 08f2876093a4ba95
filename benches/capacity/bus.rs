//! The fan-out benchmark's bus row (`--fanout-bus`): the same subscribers
//! spread over [`INSTANCES`] (or `--fanout-bus-instances N`) instances of
//! vigil's fan-out example that share
//! one `redis-server` (protocol v1.3, "Fan-out over a bus"), the publisher
//! and the pinger on the first.
//!
//! Separate instances, each on its own port, rather than one `--workers 4
//! --reuse-port`: the load client then puts exactly a quarter of the
//! subscribers on each (the kernel's `SO_REUSEPORT` hash is even only on
//! average), knows which instance holds the publisher, and reads each
//! instance's CPU and memory from its own pid (a worker's CPU is not in
//! its supervisor's `/proc/PID/stat` while it runs). Both forms take the
//! same path through Redis: every instance is one subscribed process.
//!
//! The instances and Redis are pinned to CPU 0 like the single server, the
//! load client to CPU 1: the bus row gets the same one core as the
//! single-process rows, so the difference is what the bus costs.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use vigil::load::Report;

use crate::fanout::Plan;
use crate::plan::ServerKind;
use crate::supervise::{self, Server, TASKSET};

/// Fan-out instances sharing the bus, unless `--fanout-bus-instances N`.
pub const INSTANCES: usize = 4;
/// The example's default channel.
const CHANNEL: &str = "vigil.fanout";
/// How long Redis and the instances' subscriptions may take to be ready.
const READY: Duration = Duration::from_secs(10);

/// A `redis-server` on a free port of 127.0.0.1, without persistence;
/// killed on drop.
pub struct Redis {
    child: Child,
    pub port: u16,
}

impl Redis {
    /// Starts one (on CPU 0 with `pin`) and waits until it answers `PING`;
    /// why not, if it cannot.
    pub fn start(pin: bool) -> Result<Redis, String> {
        for tool in ["redis-server", "redis-cli"] {
            if let Err(e) = Command::new(tool).arg("--version").output() {
                return Err(format!(
                    "no {tool} on the PATH ({e}): `apt-get install -y redis-server` to run the bus row"
                ));
            }
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let mut argv: Vec<String> = Vec::new();
        if pin {
            argv.extend([TASKSET.into(), "-c".into(), "0".into()]);
        }
        argv.push("redis-server".into());
        for arg in [
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ] {
            argv.push(arg.into());
        }
        let child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start redis-server: {e}"))?;
        let redis = Redis { child, port };
        let deadline = Instant::now() + READY;
        while redis.cli(&["PING"]) != "PONG" {
            if Instant::now() > deadline {
                return Err(format!("redis-server on port {port} does not answer"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(redis)
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `redis-cli -p <port> ARGS`, its output trimmed ("" if it failed).
    pub fn cli(&self, args: &[&str]) -> String {
        Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    }

    /// Processes subscribed to `channel` (`PUBSUB NUMSUB`).
    fn subscribers(&self, channel: &str) -> usize {
        let out = self.cli(&["PUBSUB", "NUMSUB", channel]);
        out.lines()
            .last()
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the program at `exe` starts with `--bus url` (prints its
/// `listening on` line); the reason if not (its first line, e.g. an
/// unknown flag, or `--bus` in a build without the `bus` feature).
fn takes_bus(exe: &Path, url: &str) -> Result<(), String> {
    let mut child = Command::new(exe)
        .args(["--listen", "127.0.0.1:0", "--bus", url])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    let (tx, rx) = mpsc::channel();
    for pipe in [
        Box::new(child.stdout.take().expect("piped")) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().expect("piped")),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    drop(tx);
    let mut said = Vec::new();
    let deadline = Instant::now() + READY;
    let verdict = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("listening on ") => break Ok(()),
            Ok(line) => said.push(line),
            Err(RecvTimeoutError::Disconnected) => {
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                break Err(format!(
                    "{} --bus exited ({status}): {}",
                    exe.display(),
                    said.first().map_or("", String::as_str)
                ));
            }
            Err(RecvTimeoutError::Timeout) => {
                break Err(format!("{} --bus did not start listening", exe.display()))
            }
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    verdict
}

/// Runs (or, with `report_only`, reads back) the bus row: its report, and
/// what to say under the table (why it did not run, if it did not).
pub fn run(plan: &Plan, out: &Path, pin: bool, report_only: bool) -> (Option<Report>, Vec<String>) {
    let json = out.join("fanout-bus.json");
    if report_only {
        return (supervise::read_report(&json), Vec::new());
    }
    let _ = std::fs::remove_file(&json);
    let skip = |why: String| (None, vec![format!("bus row skipped: {why}")]);
    let redis = match Redis::start(pin) {
        Ok(r) => r,
        Err(why) => return skip(why),
    };
    if let Err(why) = takes_bus(&plan.server, &redis.url()) {
        return skip(format!(
            "{why} (`cargo build --release --example fanout --features bus`, or --fanout-server PATH)"
        ));
    }
    let mut flags = plan.server_flags(ServerKind::Vigil);
    flags.extend(["--bus".into(), redis.url()]);
    let exe = plan.server.display().to_string();
    let instances = plan.bus_instances;
    let servers: Vec<Server> = (0..instances)
        .map(|_| Server::start_exe(ServerKind::Vigil, &exe, &flags, pin))
        .collect();
    let mut notes = Vec::new();
    let deadline = Instant::now() + READY;
    while redis.subscribers(CHANNEL) < instances {
        if Instant::now() > deadline {
            notes.push(format!(
                "bus row: only {} of {instances} instances subscribed to {CHANNEL} after {READY:?}",
                redis.subscribers(CHANNEL)
            ));
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut opts = plan.options(servers[0].addr.parse().expect("server address"));
    for s in &servers[1..] {
        opts.spread.push(s.addr.parse().expect("server address"));
        opts.spread_pids.push(s.pid());
    }
    opts.bus_pid = Some(redis.pid());
    let name = format!("fanout over {instances} instances and Redis");
    let report = supervise::run_load(
        &servers[0],
        ServerKind::Vigil,
        &name,
        opts,
        &flags,
        pin,
        &json,
    );
    drop(servers);
    if let Some(line) = redis
        .cli(&["INFO", "commandstats"])
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_publish:"))
    {
        notes.push(format!(
            "bus row: Redis's own count of PUBLISH (INFO commandstats, the command itself; its writes to the {instances} subscribed instances follow in Redis's loop): {line}"
        ));
    }
    drop(redis);
    (report, notes)
}
