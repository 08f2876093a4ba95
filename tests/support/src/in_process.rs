//! A [`Reactor`] on its own thread, bound to 127.0.0.1 on a free port, and
//! [`Script`], a small handler that tests drive with lines.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use vigil::{CloseReason, Config, Context, Handler, Reactor, ShutdownHandle};

use crate::client::Client;

/// A test handler. Lines it understands (anything else is echoed):
/// `idle <ms>` / `life <ms>`: override this connection's timeouts;
/// `quit`: close. On probe it writes `probe`; on close, `bye <reason>`.
#[derive(Debug, Default)]
pub struct Script {
    /// The line a newcomer over `max_connections` gets.
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

/// Config with the given idle timeout (0: none) and a 5 ms tick.
pub fn config_ms(idle_ms: u64) -> Config {
    let mut config = Config::default();
    config.idle_timeout = (idle_ms > 0).then(|| Duration::from_millis(idle_ms));
    config.tick = Duration::from_millis(5);
    config
}

/// A reactor running on its own thread; shut down on drop.
#[derive(Debug)]
pub struct Server<H: Handler> {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Stops it from any thread.
    pub handle: ShutdownHandle,
    thread: Option<JoinHandle<Reactor<H>>>,
}

impl Server<Script> {
    /// A [`Script`] reactor with `config`.
    #[track_caller]
    pub fn start(config: Config) -> Server<Script> {
        Server::with_handler(config, Script::default())
    }
}

impl<H> Server<H>
where
    H: Handler + Send + 'static,
    H::Conn: Send,
{
    /// A reactor with `handler` and `config`, on 127.0.0.1, port 0.
    #[track_caller]
    pub fn with_handler(config: Config, handler: H) -> Server<H> {
        let reactor = Reactor::bind("127.0.0.1:0".parse().unwrap(), config, handler)
            .expect("bind 127.0.0.1:0");
        Server::spawn(reactor)
    }

    /// Runs `reactor`, set up by the caller (e.g. with a metrics listener),
    /// on its own thread.
    #[track_caller]
    pub fn spawn(mut reactor: Reactor<H>) -> Server<H> {
        let addr = reactor.local_addr().expect("local_addr");
        let handle = reactor.shutdown_handle();
        let thread = thread::spawn(move || {
            reactor.run().expect("the reactor runs");
            reactor
        });
        Server {
            addr,
            handle,
            thread: Some(thread),
        }
    }

    /// Connects a new client.
    #[track_caller]
    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Shuts the reactor down and returns it, for its final counters and
    /// its handler.
    #[track_caller]
    pub fn stop(mut self) -> Reactor<H> {
        self.handle.shutdown();
        let thread = self.thread.take().expect("stopped once");
        thread.join().expect("the reactor thread")
    }
}

impl<H: Handler> Drop for Server<H> {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}
