//! The real `vigil` binary in a child process, serving 127.0.0.1 on a free
//! port, and one-shot runs of it.
//!
//! Cargo tells only the package's own test crates where the binary is
//! (`env!("CARGO_BIN_EXE_vigil")`, set at their compile time), so each names
//! it once, `const VIGIL: Vigil = Vigil(env!("CARGO_BIN_EXE_vigil"));`, then
//! starts servers with `VIGIL.start(&["--idle-timeout", "0"])`.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::PATIENCE;

/// The path of a `vigil` binary.
#[derive(Debug, Clone, Copy)]
pub struct Vigil(pub &'static str);

impl Vigil {
    /// Starts `vigil --listen 127.0.0.1:0 <args>` and waits for its
    /// `listening on <addr>` line.
    #[track_caller]
    pub fn start(self, args: &[&str]) -> Server {
        Server::start_with(
            Command::new(self.0)
                .args(["--listen", "127.0.0.1:0"])
                .args(args),
        )
    }

    /// Runs `vigil <args>` to completion (see [`run`]).
    #[track_caller]
    pub fn run(self, args: &[&str]) -> Output {
        run(Command::new(self.0).args(args))
    }
}

/// A `vigil` process serving 127.0.0.1 on a free port; killed on drop.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// The address it listens on, from its log.
    pub addr: SocketAddr,
    /// Every line the server writes (stdout and stderr), as it writes them.
    output: Receiver<String>,
}

impl Server {
    /// Starts `command`, which runs `vigil` (e.g. through a shell that
    /// sets limits first), and waits for its `listening on <addr>` line.
    #[track_caller]
    pub fn start_with(command: &mut Command) -> Server {
        let mut child = spawn_captured(command);
        let (tx, output) = mpsc::channel();
        // Both pipes are drained for the whole run: a server whose log pipe
        // fills or closes would block or fail.
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for pipe in [Box::new(stdout) as Box<dyn Read + Send>, Box::new(stderr)] {
            let tx = tx.clone();
            thread::spawn(move || {
                for line in BufReader::new(pipe).lines() {
                    let Ok(line) = line else { return };
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            });
        }
        let mut server = Server {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            output,
        };
        let line = server
            .wait_for_output("listening on ")
            .expect("vigil logs `listening on <addr>`");
        let addr = line.split("listening on ").nth(1).unwrap().trim();
        server.addr = addr
            .parse()
            .unwrap_or_else(|_| panic!("bad address in {line:?}"));
        server
    }

    /// Connects a new client.
    #[track_caller]
    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// The first line of output containing `needle`, within [`PATIENCE`];
    /// the lines before it are consumed.
    pub fn wait_for_output(&mut self, needle: &str) -> Option<String> {
        let deadline = Instant::now() + PATIENCE;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.output.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    }

    /// The lines of output written so far and not consumed yet.
    pub fn output_so_far(&mut self) -> Vec<String> {
        self.output.try_iter().collect()
    }

    /// Sends a signal (`TERM`, `INT`, `STOP`, `CONT`) with `kill`.
    #[track_caller]
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -s {name} failed");
    }

    /// The exit status, if the process exits within `within`.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// How many descriptors the server process holds now (0 once it is
    /// gone).
    pub fn descriptors(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .map(|dir| dir.count())
            .unwrap_or(0)
    }

    /// Waits until the server holds `count` descriptors; false after
    /// `within`.
    pub fn descriptors_return_to(&self, count: usize, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if self.descriptors() == count {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The path of the package's example `name`, built once per test process
/// (`cargo build --example <name>`, in the profile of `vigil`, the path of
/// the `vigil` binary: `env!("CARGO_BIN_EXE_vigil")`). Cargo tells tests
/// where the package's binaries are, not its examples; an example is built
/// into `examples/` beside them.
#[track_caller]
pub fn example(name: &str, vigil: &str) -> PathBuf {
    example_with(name, vigil, &[])
}

/// As [`example`], built with the package's `features` (e.g. `["bus"]`)
/// besides the default ones. The binary has one path whatever its
/// features: a test process builds each example with one set only.
#[track_caller]
pub fn example_with(name: &str, vigil: &str, features: &[&str]) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let profile_dir = Path::new(vigil).parent().expect("the binary's directory");
    let path = profile_dir.join("examples").join(name);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|b| b == name) {
        let mut build = Command::new(env!("CARGO"));
        build
            .args(["build", "--quiet", "--example", name])
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
        if !features.is_empty() {
            build.arg("--features").arg(features.join(","));
        }
        if profile_dir.ends_with("release") {
            build.arg("--release");
        }
        let status = build.status().expect("run cargo build --example");
        assert!(status.success(), "cargo build --example {name} failed");
        assert!(path.exists(), "{} not built", path.display());
        built.push(name.to_owned());
    }
    path
}

/// Runs `command` with its output captured; kills it after [`PATIENCE`]
/// (for invocations that should exit at once).
#[track_caller]
pub fn run(command: &mut Command) -> Output {
    let mut child = spawn_captured(command);
    let deadline = Instant::now() + PATIENCE;
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            break;
        }
        thread::sleep(Duration::from_millis(5));
    }
    child.wait_with_output().expect("wait")
}

/// Starts `command` with no input and its output piped to the test.
#[track_caller]
fn spawn_captured(command: &mut Command) -> Child {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("start {:?}: {err}", command.get_program()))
}
