//! Cross-thread handle benchmark: 1 and 4 producer threads saturating a
//! reactor's `ReactorHandle`, against a baseline that wakes the loop once
//! per message (a bare `mio::Waker` beside the same bounded queue), run in
//! the same process.
//!
//! ```text
//! cargo bench --bench handle                 # 2,000,000 messages per run
//! cargo bench --bench handle -- 500000       # pick the count
//! ```
//!
//! Each producer pushes its share of the messages as fast as it can (a
//! closure that captures nothing, so boxing it allocates nothing); on
//! `Full` it yields and tries again, so the queue stays full and the loop
//! saturated. Timed from the producers' start to the loop running the last
//! message. Reported: messages per second into the loop, wakeups per
//! message (`Stats::handle_wakeups` / `Stats::handle_messages`; the
//! target is at most 0.01 while saturated), and how often producers found
//! the queue full. The median of 5 runs (by rate) is kept.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;
use mio::{Events, Poll, Token, Waker};
use vigil::{Config, Handler, Reactor};

/// The producer threads of each row.
const PRODUCERS: [usize; 2] = [1, 4];
const RUNS: usize = 5;
const DEFAULT_MESSAGES: u64 = 2_000_000;

/// Counts what the loop ran.
#[derive(Debug, Default)]
struct Counter {
    ran: u64,
}

impl Handler for Counter {
    type Conn = ();
}

#[derive(Debug, Clone, Copy)]
struct Row {
    secs: f64,
    messages: u64,
    wakeups: u64,
    full: u64,
}

impl Row {
    fn rate(&self) -> f64 {
        self.messages as f64 / self.secs
    }
    fn wakeups_per_message(&self) -> f64 {
        self.wakeups as f64 / self.messages as f64
    }
}

/// vigil's handle: `producers` threads push `total` messages.
fn handle_run(producers: usize, total: u64) -> io::Result<Row> {
    let mut reactor = Reactor::bind(
        "127.0.0.1:0".parse().unwrap(),
        Config::default(),
        Counter::default(),
    )?;
    let handle = reactor.handle();
    let server = thread::spawn(move || reactor.run().map(|()| reactor));
    let each = total / producers as u64;
    let (done, finished) = mpsc::channel();
    let start = Instant::now();
    let threads: Vec<_> = (0..producers)
        .map(|_| {
            let handle = handle.clone();
            let done = done.clone();
            thread::spawn(move || {
                let mut full = 0u64;
                for _ in 0..each {
                    let mut job = |c: &mut Counter, _: &mut vigil::LoopContext<'_>| c.ran += 1;
                    loop {
                        match handle.execute(job) {
                            Ok(()) => break,
                            Err(err) if err.is_full() => {
                                full += 1;
                                job = err.into_inner();
                                thread::yield_now();
                            }
                            Err(_) => panic!("the reactor stopped"),
                        }
                    }
                }
                // The loop runs messages in order: this one is the last of
                // this producer's.
                let done = done.clone();
                handle
                    .execute_blocking(
                        move |_, _| done.send(Instant::now()).unwrap(),
                        Duration::from_micros(10),
                    )
                    .unwrap();
                full
            })
        })
        .collect();
    let full: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let end = (0..producers)
        .map(|_| finished.recv().unwrap())
        .max()
        .unwrap();
    handle.shutdown();
    let reactor = server.join().unwrap()?;
    let stats = reactor.stats();
    assert_eq!(reactor.handler().ran, each * producers as u64);
    Ok(Row {
        secs: end.duration_since(start).as_secs_f64(),
        messages: stats.handle_messages,
        wakeups: stats.handle_wakeups,
        full,
    })
}

/// The baseline: the same bounded queue, a loop blocked in `poll`, and a
/// `Waker::wake` per message, as with mio's `Waker` alone.
fn wake_per_message_run(producers: usize, total: u64) -> io::Result<Row> {
    const WAKER: Token = Token(0);
    let mut poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let queue = Arc::new(ArrayQueue::<u64>::new(4096));
    let stop = Arc::new(AtomicBool::new(false));
    let wakeups = Arc::new(AtomicU64::new(0));
    let each = total / producers as u64;
    let expected = each * producers as u64;
    let consumer = {
        let (queue, stop) = (Arc::clone(&queue), Arc::clone(&stop));
        thread::spawn(move || -> io::Result<(u64, u64, Instant)> {
            let mut events = Events::with_capacity(64);
            let (mut ran, mut polls) = (0u64, 0u64);
            while ran < expected && !stop.load(Ordering::Relaxed) {
                poll.poll(&mut events, None)?;
                polls += 1;
                while let Some(n) = queue.pop() {
                    ran += n;
                }
            }
            Ok((ran, polls, Instant::now()))
        })
    };
    let start = Instant::now();
    let threads: Vec<_> = (0..producers)
        .map(|_| {
            let (queue, waker, wakeups) =
                (Arc::clone(&queue), Arc::clone(&waker), Arc::clone(&wakeups));
            thread::spawn(move || {
                let mut full = 0u64;
                for _ in 0..each {
                    while queue.push(1).is_err() {
                        full += 1;
                        thread::yield_now();
                    }
                    wakeups.fetch_add(1, Ordering::Relaxed);
                    waker.wake().unwrap();
                }
                full
            })
        })
        .collect();
    let full: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let (ran, _polls, end) = consumer.join().unwrap()?;
    stop.store(true, Ordering::Relaxed);
    assert_eq!(ran, expected);
    Ok(Row {
        secs: end.duration_since(start).as_secs_f64(),
        messages: ran,
        wakeups: wakeups.load(Ordering::Relaxed),
        full,
    })
}

/// The median of `RUNS` runs, by rate.
fn median(mut run: impl FnMut() -> io::Result<Row>) -> io::Result<Row> {
    let mut rows = (0..RUNS).map(|_| run()).collect::<io::Result<Vec<_>>>()?;
    rows.sort_by(|a, b| a.secs.total_cmp(&b.secs));
    Ok(rows[RUNS / 2])
}

fn main() -> io::Result<()> {
    let total = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse::<u64>().ok())
        .unwrap_or(DEFAULT_MESSAGES);
    println!("{total} messages per run, median of {RUNS}");
    println!(
        "{:<22} {:>9} {:>14} {:>16} {:>12} {:>9}",
        "", "producers", "messages/s", "wakeups/message", "full/message", "ratio"
    );
    for producers in PRODUCERS {
        let vigil = median(|| handle_run(producers, total))?;
        let base = median(|| wake_per_message_run(producers, total))?;
        for (name, row) in [("vigil ReactorHandle", vigil), ("wake per message", base)] {
            println!(
                "{:<22} {:>9} {:>14.0} {:>16.5} {:>12.3} {:>8.2}x",
                name,
                producers,
                row.rate(),
                row.wakeups_per_message(),
                row.full as f64 / row.messages as f64,
                row.rate() / base.rate(),
            );
        }
    }
    Ok(())
}
