//! A real `redis-server` on a free port of 127.0.0.1, one per test, killed
//! on drop; and [`Events`], a receiver of what a callback saw.
//!
//! ```no_run
//! let Some(redis) = support::redis::Redis::start() else { return }; // skipped
//! println!("{}", redis.url()); // redis://127.0.0.1:<port>
//! redis.cli(&["CONFIG", "SET", "client-output-buffer-limit", "pubsub 1kb 1kb 0"]);
//! ```
//!
//! Redis is found on the `PATH` (`redis-server`, and `redis-cli` for
//! [`Redis::cli`]). When it is missing, [`Redis::start`] says the test was
//! skipped and why, and returns `None`; under `CI=true` it fails the test
//! instead (`.ci/run` installs it).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use crate::PATIENCE;

/// A `redis-server` child process serving 127.0.0.1:`port`, with no
/// persistence; killed on drop.
#[derive(Debug)]
pub struct Redis {
    child: Option<Child>,
    port: u16,
}

impl Redis {
    /// Starts a `redis-server` on a free port and waits until it answers;
    /// `None` (with a line on stderr) when there is no `redis-server` and
    /// `CI` is not `true`.
    ///
    /// # Panics
    ///
    /// No `redis-server` under `CI=true`; it does not start or answer
    /// within [`PATIENCE`].
    #[track_caller]
    pub fn start() -> Option<Redis> {
        if let Err(why) = Command::new("redis-server").arg("--version").output() {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(!ci, "redis-server is required under CI=true: {why}");
            eprintln!(
                "skipped: no redis-server on the PATH ({why}); \
                 install it (apt-get install redis-server) to run the bus tests"
            );
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut redis = Redis { child: None, port };
        redis.restart();
        Some(redis)
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its port (the same across [`kill`](Self::kill) and
    /// [`restart`](Self::restart)).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (`SIGKILL`) and waits for it: its clients see their
    /// connections reset or closed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (killing it first if it
    /// runs), and waits until it answers.
    #[track_caller]
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start redis-server: {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + PATIENCE;
        while self.cli(&["PING"]) != "PONG" {
            assert!(
                Instant::now() < deadline,
                "redis-server on {} does not answer",
                self.port
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends a signal (`STOP`, `CONT`) with `kill`: a stopped server holds
    /// its connections and answers nothing.
    #[track_caller]
    pub fn signal(&self, name: &str) {
        let pid = self.child.as_ref().expect("redis-server runs").id();
        let status = Command::new("kill")
            .args(["-s", name, &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -s {name} {pid} failed");
    }

    /// Runs `redis-cli -p <port> <args>` and returns its output, trimmed
    /// (empty when it could not connect).
    #[track_caller]
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run redis-cli: {e}"));
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port on 127.0.0.1 that accepts connections (the kernel completes the
/// handshake) and never reads or answers: a Redis that hangs.
#[derive(Debug)]
pub struct Silent {
    listener: TcpListener,
}

impl Silent {
    /// Binds a free port.
    pub fn bind() -> Silent {
        Silent {
            listener: TcpListener::bind("127.0.0.1:0").expect("bind"),
        }
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!(
            "redis://127.0.0.1:{}",
            self.listener.local_addr().unwrap().port()
        )
    }
}

/// What a callback sent, received with bounded waits. An event a wait
/// does not pick stays for the next one, in order.
#[derive(Debug)]
pub struct Events<E> {
    rx: Receiver<E>,
    /// Received, not picked yet.
    pending: RefCell<VecDeque<E>>,
}

impl<E: std::fmt::Debug + Send + 'static> Events<E> {
    /// A callback that sends each event it is given here, and the receiving
    /// end.
    pub fn channel() -> (impl Fn(E) + Send + Sync + 'static, Events<E>) {
        let (tx, rx) = mpsc::channel();
        let callback = move |event| {
            let _ = tx.send(event);
        };
        let events = Events {
            rx,
            pending: RefCell::new(VecDeque::new()),
        };
        (callback, events)
    }

    /// Takes the first event `pick` accepts, waiting at most `within`, and
    /// says how long it waited.
    ///
    /// # Panics
    ///
    /// No such event within `within`: the message lists what came.
    #[track_caller]
    pub fn wait_for<R>(
        &self,
        within: Duration,
        mut pick: impl FnMut(&E) -> Option<R>,
    ) -> (R, Duration) {
        let start = Instant::now();
        let mut pending = self.pending.borrow_mut();
        if let Some((i, found)) = pending
            .iter()
            .enumerate()
            .find_map(|(i, e)| pick(e).map(|r| (i, r)))
        {
            pending.remove(i);
            return (found, start.elapsed());
        }
        loop {
            let left = within.saturating_sub(start.elapsed());
            match self.rx.recv_timeout(left) {
                Ok(event) => match pick(&event) {
                    Some(found) => return (found, start.elapsed()),
                    None => pending.push_back(event),
                },
                Err(RecvTimeoutError::Timeout) => {
                    panic!("not seen within {within:?}; saw {pending:?}")
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("the sender is gone; saw {pending:?}")
                }
            }
        }
    }

    /// Takes every event not picked yet and every one received within
    /// `during`.
    pub fn collect(&self, during: Duration) -> Vec<E> {
        let until = Instant::now() + during;
        let mut seen: Vec<E> = self.pending.borrow_mut().drain(..).collect();
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            match self.rx.recv_timeout(left) {
                Ok(event) => seen.push(event),
                Err(_) => break,
            }
        }
        seen
    }
}
