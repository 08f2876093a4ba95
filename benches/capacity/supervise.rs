//! Starting the servers and the load client, and stopping them.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use vigil::load::{Options, Report};

use crate::plan::{Case, ServerKind, Sizes};

pub const VIGIL: &str = env!("CARGO_BIN_EXE_vigil");
const LOAD: &str = env!("CARGO_BIN_EXE_vigil-load");
pub const TASKSET: &str = "/usr/bin/taskset";
/// The load client is killed if it runs longer than this.
const LOAD_LIMIT: Duration = Duration::from_secs(180);

/// A running server, stopped with SIGTERM (then killed) when dropped.
pub struct Server {
    child: Child,
    pub addr: String,
    name: &'static str,
}

impl Server {
    /// Starts `kind` on `127.0.0.1:0` with `flags` (on CPU 0 with `pin`)
    /// and waits for its `listening on` line.
    pub fn start(kind: ServerKind, flags: &[String], pin: bool) -> Server {
        Server::start_exe(kind, VIGIL, flags, pin)
    }

    /// As [`Server::start`], with `vigil` as vigil's program (e.g. the
    /// fan-out example).
    pub fn start_exe(kind: ServerKind, vigil: &str, flags: &[String], pin: bool) -> Server {
        let mut argv: Vec<String> = Vec::new();
        if pin {
            argv.extend([TASKSET.into(), "-c".into(), "0".into()]);
        }
        match kind {
            ServerKind::Vigil => argv.push(vigil.into()),
            ServerKind::Baseline | ServerKind::Floor => {
                let exe = std::env::current_exe().expect("own path");
                argv.push(exe.display().to_string());
                argv.push(format!("--serve-{}", kind.name()));
            }
        }
        argv.extend(["--listen".into(), "127.0.0.1:0".into()]);
        argv.extend(flags.iter().cloned());
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
                        let _ = tx.send(Some(addr.to_string()));
                    } else if line.contains("ERROR") || line.contains("WARN") {
                        eprintln!("  server: {line}");
                    }
                }
                let _ = tx.send(None);
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
                Ok(Some(addr)) => {
                    server.addr = addr;
                    return server;
                }
                Ok(None) => continue,
                Err(_) => panic!("{} did not print `listening on` within 10 s", kind.name()),
            }
        }
    }

    pub fn pid(&self) -> u32 {
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

/// Starts a fresh server, runs `case` against it with `vigil-load` (on CPU
/// 1 with `pin`), and returns the report it wrote to `json`.
pub fn run_case(
    kind: ServerKind,
    case: &Case,
    sizes: &Sizes,
    pin: bool,
    json: &Path,
) -> Option<Report> {
    let flags = case.server_flags(kind);
    let server = Server::start(kind, &flags, pin);
    let opts = case.options(sizes, server.addr.parse().expect("server address"));
    run_load(&server, kind, case.name, opts, &flags, pin, json)
}

/// Runs `vigil-load` with `opts` (the case `name`) against `server` (a
/// `kind` started with `flags`) and returns the report it wrote to `json`.
pub fn run_load(
    server: &Server,
    kind: ServerKind,
    name: &str,
    mut opts: Options,
    flags: &[String],
    pin: bool,
    json: &Path,
) -> Option<Report> {
    let _ = std::fs::remove_file(json);
    opts.server_pid = Some(server.pid());
    opts.label = kind.name().into();
    opts.json = Some(json.to_path_buf());
    eprintln!(
        "capacity: {} {} on {} (server flags: {})",
        kind.name(),
        name,
        server.addr,
        flags.join(" ")
    );
    let mut cmd = if pin {
        let mut c = Command::new(TASKSET);
        c.args(["-c", "1", LOAD]);
        c
    } else {
        Command::new(LOAD)
    };
    let mut load = LoadGuard(
        cmd.args(opts.to_args())
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
    let deadline = Instant::now() + LOAD_LIMIT;
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break status;
        }
        if Instant::now() > deadline {
            eprintln!("capacity: vigil-load ran past {LOAD_LIMIT:?}; killing it");
            let _ = child.kill();
            break child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    for line in reader.join().unwrap_or_default().lines() {
        eprintln!("  {line}");
    }
    if !status.success() {
        eprintln!(
            "capacity: vigil-load {name} against {} failed: {status}",
            kind.name()
        );
    }
    read_report(json)
}

/// The report in `json`, if there is a readable one.
pub fn read_report(json: &Path) -> Option<Report> {
    match Report::read_json(json) {
        Ok(r) => Some(r),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            eprintln!("capacity: cannot read {}: {e}", json.display());
            None
        }
    }
}
