//! Pushing from another thread: a feed thread sends `TICK <n>` to every
//! connection every 10 ms through a `ReactorHandle`, the way a market-data
//! feed or a job queue would, while the reactor's own thread does the I/O.
//!
//! ```text
//! cargo run --release --example ticker               # serve 127.0.0.1:7575
//! nc 127.0.0.1 7575                                  # TICK 1, TICK 2, ...
//! cargo run --release --example ticker -- --demo 200 3         # measure
//! cargo run --release --example ticker -- --demo 200 3 --each  # one send per client
//! ```
//!
//! `--demo <clients> <seconds>` opens that many local clients, runs the
//! feed for that long, and prints the handle's counters. By default each
//! tick is one fan-out (one message, one shared buffer for every client);
//! with `--each` the feed sends to every client by id (one message per
//! client per tick), keeping the ids the handler reports.
//!
//! # Wakeups per message, measured
//!
//! On a loaded 2-core machine (`--demo 200 3`, release build):
//!
//! | mode | ticks | messages | wakeups | wakeups per message | lines received |
//! | --- | --- | --- | --- | --- | --- |
//! | fan-out | 297 | 297 | 297 | 1.000 | 59,400 |
//! | `--each` | 297 | 59,400 | 298 | 0.005 | 59,400 |
//!
//! One tick every 10 ms is slow for the loop: it sleeps between two ticks,
//! and the first message of a tick wakes it, once (a system call). The
//! other 199 messages of an `--each` tick find it awake and wake nothing:
//! wakeups are coalesced per burst (about one per tick), not paid per
//! message. Every client got every tick. See
//! `benches/handle.rs` for producers that never pause.

use std::io::{self, BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use vigil::{
    Bytes, CloseReason, Config, ConnId, Context, Handler, Reactor, ReactorHandle, Recipients,
};

const TICK: Duration = Duration::from_millis(10);

/// Keeps the ids of the open connections, for the `--each` feed.
#[derive(Default)]
struct Ticker {
    ids: Arc<Mutex<Vec<ConnId>>>,
}

impl Handler for Ticker {
    type Conn = ();

    fn on_open(&mut self, cx: &mut Context<'_>, _: &mut ()) {
        self.ids.lock().unwrap().push(cx.id());
    }

    fn on_close(&mut self, cx: &mut Context<'_>, _: &mut (), _: CloseReason) {
        self.ids.lock().unwrap().retain(|&id| id != cx.id());
    }
}

/// The feed: a tick every 10 ms until the reactor stops or `until`.
/// Returns the ticks sent.
fn feed(
    handle: ReactorHandle<Ticker>,
    ids: Arc<Mutex<Vec<ConnId>>>,
    each: bool,
    until: Option<Instant>,
) -> u64 {
    let mut n = 0;
    while until.is_none_or(|until| Instant::now() < until) && !handle.is_stopped() {
        thread::sleep(TICK);
        n += 1;
        let line = Bytes::from(format!("TICK {n}\n"));
        if each {
            let ids = ids.lock().unwrap().clone();
            for id in ids {
                // A full queue drops this client's tick; the next one comes.
                let _ = handle.send(id, line.clone());
            }
        } else {
            let _ = handle.fan_out(line, Recipients::All);
        }
    }
    n
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let each = args.iter().any(|a| a == "--each");
    let demo = match args.iter().position(|a| a == "--demo") {
        Some(i) => {
            let number = |j: usize| args.get(i + j).and_then(|s| s.parse::<u64>().ok());
            Some((number(1).unwrap_or(100), number(2).unwrap_or(3)))
        }
        None => None,
    };
    let addr: SocketAddr = if demo.is_some() {
        "127.0.0.1:0"
    } else {
        "127.0.0.1:7575"
    }
    .parse()
    .unwrap();

    let mut config = Config::default();
    config.idle_timeout = None; // clients only listen
    let ticker = Ticker::default();
    let ids = Arc::clone(&ticker.ids);
    let mut reactor = Reactor::bind(addr, config, ticker)?;
    let addr = reactor.local_addr()?;
    let handle = reactor.handle();

    let Some((clients, seconds)) = demo else {
        println!("ticking to every client of {addr} every 10 ms");
        thread::spawn(move || feed(handle, ids, each, None));
        return reactor.run();
    };

    let server = thread::spawn(move || reactor.run().map(|()| reactor));
    let readers: Vec<_> = (0..clients)
        .map(|_| {
            let stream = TcpStream::connect(addr)?;
            Ok(thread::spawn(move || {
                BufReader::new(stream).lines().map_while(Result::ok).count() as u64
            }))
        })
        .collect::<io::Result<_>>()?;
    while ids.lock().unwrap().len() < clients as usize {
        thread::sleep(Duration::from_millis(1));
    }
    let until = Instant::now() + Duration::from_secs(seconds);
    let feeder = {
        let handle = handle.clone();
        thread::spawn(move || feed(handle, ids, each, Some(until)))
    };
    let ticks = feeder.join().unwrap();
    handle.shutdown();
    let reactor = server.join().unwrap()?;
    let received: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
    let stats = reactor.stats();
    println!("| mode | ticks | messages | wakeups | wakeups per message | lines received |");
    println!("| --- | --- | --- | --- | --- | --- |");
    println!(
        "| {} | {ticks} | {} | {} | {:.3} | {received} |",
        if each { "`--each`" } else { "fan-out" },
        stats.handle_messages,
        stats.handle_wakeups,
        stats.handle_wakeups as f64 / stats.handle_messages.max(1) as f64,
    );
    Ok(())
}
