//! Shared helpers for the tests of the `vigil` binary: the real server
//! process on a free port, and a line client with a deadline on every read.
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

/// The longest a test waits for something that should happen.
pub const PATIENCE: Duration = Duration::from_secs(3);

/// The `vigil` binary under test.
pub const VIGIL: &str = env!("CARGO_BIN_EXE_vigil");

/// A `vigil` process serving 127.0.0.1 on a free port; killed on drop.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    /// Every line the server writes (stdout and stderr), as it writes them.
    output: Receiver<String>,
}

impl Server {
    /// Starts `vigil --listen 127.0.0.1:0 <args>` and waits for its
    /// `listening on <addr>` line.
    pub fn start(args: &[&str]) -> Server {
        Server::start_with(
            Command::new(VIGIL)
                .args(["--listen", "127.0.0.1:0"])
                .args(args),
        )
    }

    /// Starts `command`, which runs `vigil` (e.g. through a shell that
    /// sets limits first), and waits for its `listening on <addr>` line.
    pub fn start_with(command: &mut Command) -> Server {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start vigil");
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
    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// The first line of output containing `needle`, within [`PATIENCE`].
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

    /// Sends a signal (`TERM`, `INT`) with `kill`.
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
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `vigil <args>` to completion, killing it after [`PATIENCE`] (for
/// invocations that should exit at once).
pub fn run_vigil(args: &[&str]) -> Output {
    run_to_completion(Command::new(VIGIL).args(args))
}

/// Runs `command` with its output captured; kills it after [`PATIENCE`].
pub fn run_to_completion(command: &mut Command) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
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

/// A blocking client that reads lines with a deadline.
pub struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        Client {
            reader: BufReader::new(stream),
        }
    }

    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    /// Writes all of `bytes`.
    pub fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).expect("send");
    }

    /// Writes all of `bytes`, reporting failure.
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.reader.get_mut().write_all(bytes)
    }

    /// Shuts down the writing half: the server reads EOF.
    pub fn shutdown_write(&self) {
        self.stream().shutdown(Shutdown::Write).expect("shutdown");
    }

    /// The next line, without its `\n`; panics on EOF or after [`PATIENCE`].
    pub fn line(&mut self) -> Vec<u8> {
        match self.next_line(PATIENCE) {
            Ok(Some(line)) => line,
            Ok(None) => panic!("connection closed, a line was expected"),
            Err(err) => panic!("no line within {PATIENCE:?}: {err}"),
        }
    }

    /// Asserts that the next line is `expected`.
    #[track_caller]
    pub fn expect(&mut self, expected: &[u8]) {
        let line = self.line();
        assert_eq!(
            line.escape_ascii().to_string(),
            expected.escape_ascii().to_string()
        );
    }

    /// The next line within `within` (`Ok(None)` at EOF or reset).
    pub fn next_line(&mut self, within: Duration) -> io::Result<Option<Vec<u8>>> {
        self.stream().set_read_timeout(Some(within))?;
        let mut line = Vec::new();
        let read = self.reader.read_until(b'\n', &mut line);
        self.stream().set_read_timeout(Some(PATIENCE))?;
        match read {
            Ok(0) => Ok(None),
            Err(err) if err.kind() == io::ErrorKind::ConnectionReset => Ok(None),
            Ok(_) if line.ends_with(b"\n") => {
                line.pop();
                Ok(Some(line))
            }
            Ok(_) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "line cut short",
            )),
            Err(err) => Err(err),
        }
    }

    /// Everything the server still sends, up to its FIN: an error if the
    /// connection is reset instead, or nothing ends it within [`PATIENCE`].
    pub fn read_to_eof(&mut self) -> io::Result<Vec<u8>> {
        let mut rest = Vec::new();
        self.reader.read_to_end(&mut rest)?;
        Ok(rest)
    }

    /// Asserts that the server closes the connection (EOF or reset) with
    /// nothing more sent, within [`PATIENCE`].
    #[track_caller]
    pub fn expect_closed(&mut self) {
        match self.next_line(PATIENCE) {
            Ok(None) => {}
            Ok(Some(line)) => panic!(
                "expected the close, got {:?}",
                line.escape_ascii().to_string()
            ),
            Err(err) => panic!("expected the close within {PATIENCE:?}: {err}"),
        }
    }

    /// Asserts that nothing arrives and the connection stays open for
    /// `window`.
    #[track_caller]
    pub fn expect_silence(&mut self, window: Duration) {
        match self.next_line(window) {
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Ok(Some(line)) => panic!(
                "expected silence, got {:?}",
                line.escape_ascii().to_string()
            ),
            Ok(None) => panic!("expected silence, the connection closed"),
            Err(err) => panic!("expected silence: {err}"),
        }
    }
}

/// Asserts that `elapsed` lies in `window` (inclusive).
#[track_caller]
pub fn assert_within(elapsed: Duration, window: std::ops::RangeInclusive<Duration>) {
    assert!(
        window.contains(&elapsed),
        "{elapsed:?} is outside {:?}..={:?}",
        window.start(),
        window.end()
    );
}

/// `n` milliseconds.
pub const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
