//! Shared helpers for the reactor tests: a reactor on its own thread with a
//! small scriptable handler, and a client with deadlines on every read.
#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use vigil::{CloseReason, Config, Context, Handler, Reactor, ShutdownHandle, Stats};

/// A test handler. Lines it understands (anything else is echoed):
/// `idle <ms>` / `life <ms>`: override this connection's timeouts;
/// `quit`: close. On probe it writes `probe`; on close, `bye <reason>`.
#[derive(Debug, Default)]
pub struct Script {
    pub full_line: &'static [u8],
    /// Connections closed so far, for tests that must wait for closes the
    /// client cannot see.
    pub closes: Arc<AtomicUsize>,
}

impl Handler for Script {
    type Conn = ();

    fn on_data(&mut self, cx: &mut Context<'_>, _: &mut (), data: &[u8]) {
        for line in data.split_inclusive(|&b| b == b'\n') {
            let text = std::str::from_utf8(line).unwrap_or("").trim_end();
            if let Some(ms) = text.strip_prefix("idle ") {
                cx.set_idle_timeout(Some(Duration::from_millis(ms.parse().unwrap())));
            } else if let Some(ms) = text.strip_prefix("life ") {
                cx.set_lifetime(Some(Duration::from_millis(ms.parse().unwrap())));
            } else if text == "quit" {
                cx.close();
            } else {
                cx.write(line);
            }
        }
    }

    fn on_probe(&mut self, cx: &mut Context<'_>, _: &mut ()) {
        cx.write(b"probe\n");
    }

    fn on_close(&mut self, cx: &mut Context<'_>, _: &mut (), reason: CloseReason) {
        self.closes.fetch_add(1, Ordering::SeqCst);
        cx.write(format!("bye {reason}\n").as_bytes());
    }

    fn on_full(&mut self) -> &[u8] {
        self.full_line
    }
}

/// A reactor running on its own thread.
pub struct Server {
    pub addr: SocketAddr,
    pub handle: ShutdownHandle,
    thread: Option<JoinHandle<Stats>>,
}

impl Server {
    pub fn start(config: Config) -> Server {
        Server::with_handler(config, Script::default())
    }

    pub fn with_handler<H>(config: Config, handler: H) -> Server
    where
        H: Handler + Send + 'static,
        H::Conn: Send,
    {
        let mut reactor = Reactor::bind("127.0.0.1:0".parse().unwrap(), config, handler).unwrap();
        let addr = reactor.local_addr().unwrap();
        let handle = reactor.shutdown_handle();
        let thread = thread::spawn(move || {
            reactor.run().unwrap();
            reactor.stats().clone()
        });
        Server {
            addr,
            handle,
            thread: Some(thread),
        }
    }

    /// Shuts the reactor down and returns its final counters.
    pub fn stop(mut self) -> Stats {
        self.handle.shutdown();
        self.thread.take().unwrap().join().unwrap()
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// Config with the given idle timeout and a 5 ms tick.
pub fn config_ms(idle_ms: u64) -> Config {
    let mut config = Config::default();
    config.idle_timeout = (idle_ms > 0).then(|| Duration::from_millis(idle_ms));
    config.tick = Duration::from_millis(5);
    config
}

pub struct Client {
    pub reader: BufReader<TcpStream>,
    pub since: Instant,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        Client {
            reader: BufReader::new(stream),
            since: Instant::now(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).unwrap();
        self.since = Instant::now();
    }

    /// The next line, without its newline; `None` at EOF.
    pub fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => None,
            Ok(_) => Some(line.trim_end_matches('\n').to_string()),
            Err(err) if err.kind() == io::ErrorKind::ConnectionReset => None,
            Err(err) => panic!("read failed: {err}"),
        }
    }

    /// Reads to EOF and returns what came.
    pub fn rest(&mut self) -> String {
        let mut rest = String::new();
        let _ = self.reader.read_to_string(&mut rest);
        rest
    }

    /// Whether the server has closed: waits up to `wait` for EOF.
    pub fn closed_within(&mut self, wait: Duration) -> bool {
        let stream = self.reader.get_ref();
        stream.set_read_timeout(Some(wait)).unwrap();
        let mut buf = [0; 256];
        let closed = loop {
            match self.reader.read(&mut buf) {
                Ok(0) => break true,
                Ok(_) => continue,
                Err(err) if err.kind() == io::ErrorKind::ConnectionReset => break true,
                Err(_) => break false,
            }
        };
        self.reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        closed
    }

    /// Milliseconds since the last send.
    pub fn elapsed_ms(&self) -> u128 {
        self.since.elapsed().as_millis()
    }
}
