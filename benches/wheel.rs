//! Timer benchmark: vigil's `Wheel` against a lazy-deletion `BinaryHeap` and
//! tokio-util's `DelayQueue`, at 1 k, 100 k and 1 M live timers.
//!
//! ```text
//! cargo bench --bench wheel                  # 1000, 100000, 1000000
//! cargo bench --bench wheel -- 1000 100000   # pick sizes
//! VIGIL_BENCH_SIZES=1000,100000 cargo bench --bench wheel
//! ```
//!
//! Ticks are 10 ms (vigil's default). The wheel and the heap are driven by
//! tick numbers alone. The `DelayQueue` runs on tokio's real clock (the
//! `test-util` feature that pauses it is not enabled), used as a server
//! would: `insert(value, timeout)` and `reset(key, timeout)` relative to the
//! real now. Where its timers have to expire, its time is compressed so the
//! run only sleeps seconds, not hours: expire-all spreads its deadlines over
//! 1 s instead of 1 hour, the heartbeat pattern uses 1 ms per tick (30 s
//! timeout -> 3 s). Both make the `DelayQueue`'s job easier (fewer wheel
//! levels to cascade through), so its ratios understate the wheel's lead.
//! Sleeps are not timed. Each phase is timed with `Instant` around the whole
//! phase; the best of 3 runs is kept (1 run for the `DelayQueue` at 1 M).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::poll_fn;
use std::hint::black_box;
use std::task::Poll;
use std::time::{Duration, Instant};

use support::rng::Rng;
use tokio_util::time::{delay_queue, DelayQueue};
use vigil::{TimerKey, Wheel};

/// One tick, as in vigil's default configuration.
const TICK_MS: u64 = 10;
/// Deadlines of the insert/reset/cancel/expire phases spread over one hour.
const WINDOW: u64 = 3600 * 1000 / TICK_MS;
/// Heartbeat pattern: idle timeout of 30 s, 5 rounds of heartbeats.
const TIMEOUT: u64 = 30 * 1000 / TICK_MS;
const ROUNDS: usize = 5;
/// Heartbeat pattern: the clock moves one tick (and expiry is polled)
/// every `n / STEPS_PER_ROUND` heartbeats.
const STEPS_PER_ROUND: usize = 100;

/// The three implementations, behind one interface. `expire` is async only
/// because the `DelayQueue` has to let tokio's timer driver run.
trait Timers {
    type Key: Clone;
    const NAME: &'static str;
    /// `ns_per_tick` is the real time of one tick, used by the `DelayQueue`
    /// only.
    fn with_capacity(n: usize, ns_per_tick: u64) -> Self;
    fn insert(&mut self, deadline: u64, id: u64) -> Self::Key;
    fn reset(&mut self, key: &Self::Key, deadline: u64);
    fn cancel(&mut self, key: &Self::Key);
    /// Advances to `now` and removes everything due; returns how many.
    async fn expire(&mut self, now: u64) -> usize;
    /// Untimed: lets real time catch up with tick `now` (the `DelayQueue`
    /// sleeps; the others need nothing).
    fn wait_for(&mut self, _now: u64) {}
}

impl Timers for Wheel<u64> {
    type Key = TimerKey;
    const NAME: &'static str = "wheel";
    fn with_capacity(n: usize, _: u64) -> Self {
        Wheel::with_capacity(n)
    }
    fn insert(&mut self, deadline: u64, id: u64) -> TimerKey {
        Wheel::insert(self, deadline, id)
    }
    fn reset(&mut self, key: &TimerKey, deadline: u64) {
        assert!(Wheel::reset(self, *key, deadline));
    }
    fn cancel(&mut self, key: &TimerKey) {
        black_box(Wheel::cancel(self, *key));
    }
    async fn expire(&mut self, now: u64) -> usize {
        let mut fired = 0;
        while let Some(item) = self.pop_expired(now) {
            black_box(item);
            fired += 1;
        }
        fired
    }
}

/// Binary heap with lazy deletion: a reset pushes a new entry and bumps the
/// timer's generation, so the old entry is skipped when popped.
struct Heap {
    heap: BinaryHeap<Reverse<(u64, u32, u32)>>,
    generation: Vec<u32>,
    now: u64,
}

impl Timers for Heap {
    type Key = u32;
    const NAME: &'static str = "heap";
    fn with_capacity(n: usize, _: u64) -> Self {
        Heap {
            heap: BinaryHeap::with_capacity(n),
            generation: Vec::with_capacity(n),
            now: 0,
        }
    }
    fn insert(&mut self, deadline: u64, _id: u64) -> u32 {
        let id = self.generation.len() as u32;
        self.generation.push(0);
        self.heap.push(Reverse((deadline, id, 0)));
        id
    }
    fn reset(&mut self, &id: &u32, deadline: u64) {
        let g = &mut self.generation[id as usize];
        *g += 1;
        self.heap.push(Reverse((deadline, id, *g)));
    }
    fn cancel(&mut self, &id: &u32) {
        self.generation[id as usize] += 1;
    }
    async fn expire(&mut self, now: u64) -> usize {
        self.now = self.now.max(now);
        let mut fired = 0;
        while let Some(&Reverse((deadline, id, g))) = self.heap.peek() {
            if deadline > self.now {
                break;
            }
            self.heap.pop();
            if self.generation[id as usize] == g {
                self.generation[id as usize] += 1; // fired: later entries are stale
                black_box(id);
                fired += 1;
            }
        }
        fired
    }
}

/// tokio-util's `DelayQueue` on tokio's real clock. Deadlines in ticks
/// become timeouts relative to the real now: `(deadline - now) * ns_per_tick`.
struct Queue {
    queue: DelayQueue<u64>,
    now: u64,
    ns_per_tick: u64,
}

impl Queue {
    fn timeout(&self, deadline: u64) -> Duration {
        Duration::from_nanos(deadline.saturating_sub(self.now) * self.ns_per_tick)
    }
}

impl Timers for Queue {
    type Key = delay_queue::Key;
    const NAME: &'static str = "DelayQueue";
    fn with_capacity(n: usize, ns_per_tick: u64) -> Self {
        Queue {
            queue: DelayQueue::with_capacity(n),
            now: 0,
            ns_per_tick,
        }
    }
    fn insert(&mut self, deadline: u64, id: u64) -> delay_queue::Key {
        let timeout = self.timeout(deadline);
        self.queue.insert(id, timeout)
    }
    fn reset(&mut self, key: &delay_queue::Key, deadline: u64) {
        let timeout = self.timeout(deadline);
        self.queue.reset(key, timeout);
    }
    fn cancel(&mut self, key: &delay_queue::Key) {
        black_box(self.queue.remove(key));
    }
    async fn expire(&mut self, now: u64) -> usize {
        self.now = self.now.max(now);
        let mut fired = 0;
        let mut yielded = false;
        loop {
            match poll_fn(|cx| Poll::Ready(self.queue.poll_expired(cx))).await {
                Poll::Ready(Some(item)) => {
                    black_box(item.into_inner());
                    fired += 1;
                    yielded = false;
                }
                Poll::Ready(None) => break,
                // Its sleep may be due but not yet seen by tokio's timer
                // driver, which runs when the task yields: yield once.
                Poll::Pending if !yielded => {
                    tokio::task::yield_now().await;
                    yielded = true;
                }
                Poll::Pending => break,
            }
        }
        fired
    }
    fn wait_for(&mut self, now: u64) {
        let ahead = now.saturating_sub(self.now) * self.ns_per_tick;
        std::thread::sleep(Duration::from_nanos(ahead) + Duration::from_millis(5));
    }
}

/// Prepared inputs, shared by all implementations.
struct Input {
    deadlines: Vec<u64>,
    resets: Vec<u64>,
    order: Vec<usize>,
}

impl Input {
    fn new(n: usize) -> Input {
        let mut rng = Rng(0x00C0_FFEE ^ n as u64);
        Input {
            deadlines: (0..n).map(|_| 1 + rng.next_u64() % WINDOW).collect(),
            resets: (0..n).map(|_| 1 + rng.next_u64() % WINDOW).collect(),
            order: rng.permutation(n),
        }
    }
}

/// Nanoseconds per operation of each phase, for one implementation.
#[derive(Clone, Copy, Default)]
struct Phases {
    insert: f64,
    reset: f64,
    cancel: f64,
    expire: f64,
    heartbeat: f64,
}

fn per_op(start: Instant, ops: usize) -> f64 {
    start.elapsed().as_nanos() as f64 / ops as f64
}

/// Real time per tick for the `DelayQueue`: 10 ms where nothing has to
/// expire, compressed where it does (see the top of this file).
const NS_REAL: u64 = TICK_MS * 1_000_000;
const NS_EXPIRE_ALL: u64 = 1_000_000_000 / WINDOW;
const NS_HEARTBEAT: u64 = 1_000_000;

/// Runs every phase once on a fresh `T`.
async fn run<T: Timers>(input: &Input) -> Phases {
    let n = input.deadlines.len();
    let mut out = Phases::default();

    // insert, reset, cancel on one structure.
    let mut t = T::with_capacity(n, NS_REAL);
    let start = Instant::now();
    let keys: Vec<T::Key> = (0..n)
        .map(|i| t.insert(input.deadlines[i], i as u64))
        .collect();
    out.insert = per_op(start, n);
    let start = Instant::now();
    for &i in &input.order {
        t.reset(&keys[i], input.resets[i]);
    }
    out.reset = per_op(start, n);
    let start = Instant::now();
    for &i in &input.order {
        t.cancel(&keys[i]);
    }
    out.cancel = per_op(start, n);
    drop((t, keys));

    // expire-all: n timers spread over the window, all due at once.
    let mut t = T::with_capacity(n, NS_EXPIRE_ALL);
    for (i, &d) in input.deadlines.iter().enumerate() {
        t.insert(d, i as u64);
    }
    t.wait_for(WINDOW);
    let start = Instant::now();
    let fired = t.expire(WINDOW).await;
    out.expire = per_op(start, n);
    assert_eq!(fired, n, "{} expire-all", T::NAME);
    drop(t);

    // Heartbeat server: idle timeouts pushed back by each heartbeat.
    let mut t = T::with_capacity(n, NS_HEARTBEAT);
    let step = (n / STEPS_PER_ROUND).max(1);
    let mut start = Instant::now();
    let keys: Vec<T::Key> = (0..n)
        .map(|i| t.insert(TIMEOUT + input.deadlines[i] % TIMEOUT, i as u64))
        .collect();
    let mut now = 0;
    for _ in 0..ROUNDS {
        for (j, &i) in input.order.iter().enumerate() {
            if j % step == 0 {
                now += 1;
                assert_eq!(t.expire(now).await, 0, "{} heartbeat", T::NAME);
            }
            t.reset(&keys[i], now + TIMEOUT);
        }
    }
    // Untimed wait (real time for the DelayQueue only), then the expiry.
    let worked = start.elapsed();
    t.wait_for(now + TIMEOUT);
    start = Instant::now() - worked;
    let fired = t.expire(now + TIMEOUT).await;
    out.heartbeat = per_op(start, n * (ROUNDS + 2));
    assert_eq!(fired, n, "{} heartbeat expiry", T::NAME);
    out
}

/// Best (lowest) of `runs` runs, phase by phase.
fn best<T: Timers>(input: &Input, runs: usize) -> Phases {
    let mut best = Phases {
        insert: f64::MAX,
        reset: f64::MAX,
        cancel: f64::MAX,
        expire: f64::MAX,
        heartbeat: f64::MAX,
    };
    for _ in 0..runs {
        // A fresh runtime per run; only the DelayQueue uses its timers.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("tokio runtime");
        let p = rt.block_on(run::<T>(input));
        best.insert = best.insert.min(p.insert);
        best.reset = best.reset.min(p.reset);
        best.cancel = best.cancel.min(p.cancel);
        best.expire = best.expire.min(p.expire);
        best.heartbeat = best.heartbeat.min(p.heartbeat);
    }
    best
}

fn sizes() -> Vec<usize> {
    let parse = |s: &str| s.trim().replace('_', "").parse::<usize>().ok();
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .filter_map(|a| parse(&a))
        .collect();
    if !args.is_empty() {
        return args;
    }
    if let Ok(env) = std::env::var("VIGIL_BENCH_SIZES") {
        let env: Vec<usize> = env.split(',').filter_map(parse).collect();
        if !env.is_empty() {
            return env;
        }
    }
    vec![1_000, 100_000, 1_000_000]
}

/// Bytes per live timer: storage capacity × entry size / n, for a wheel
/// sized up front and for one grown by `Vec` doubling; and the fixed part
/// (slot tables) every wheel has.
fn memory(n: usize) -> (f64, f64, usize) {
    let fixed = Wheel::<u64>::new().memory_bytes();
    let mut sized = Wheel::<u64>::with_capacity(n);
    let mut grown = Wheel::<u64>::new();
    for i in 0..n as u64 {
        sized.insert(i, i);
        grown.insert(i, i);
    }
    (
        (sized.memory_bytes() - fixed) as f64 / n as f64,
        (grown.memory_bytes() - fixed) as f64 / n as f64,
        fixed,
    )
}

fn main() {
    let total = Instant::now();
    println!(
        "vigil wheel benchmark: {} ms ticks, {}-hour window, heartbeat timeout {} s, {} rounds",
        TICK_MS,
        WINDOW * TICK_MS / 3_600_000,
        TIMEOUT * TICK_MS / 1000,
        ROUNDS
    );
    println!();
    println!(
        "{:<11} {:>9} | {:>9} {:>9} {:>11} | {:>7} {:>7}",
        "operation", "N", "wheel", "heap", "DelayQueue", "heap/w", "DQ/w"
    );
    println!(
        "{:<11} {:>9} | {:>9} {:>9} {:>11} | {:>7} {:>7}",
        "", "", "ns/op", "ns/op", "ns/op", "", ""
    );
    println!("{}", "-".repeat(74));
    let mut notes = Vec::new();
    for n in sizes() {
        let input = Input::new(n);
        // The DelayQueue sleeps ~4 s per run (see above): once at 1 M.
        let w = best::<Wheel<u64>>(&input, 3);
        let h = best::<Heap>(&input, 3);
        let q = best::<Queue>(&input, if n >= 1_000_000 { 1 } else { 3 });
        let rows = [
            ("insert", w.insert, h.insert, q.insert),
            ("reset", w.reset, h.reset, q.reset),
            ("cancel", w.cancel, h.cancel, q.cancel),
            ("expire-all", w.expire, h.expire, q.expire),
            ("heartbeat", w.heartbeat, h.heartbeat, q.heartbeat),
        ];
        for (op, w, h, q) in rows {
            println!(
                "{:<11} {:>9} | {:>9.1} {:>9.1} {:>11.1} | {:>6.1}x {:>6.1}x",
                op,
                n,
                w,
                h,
                q,
                h / w,
                q / w
            );
        }
        println!("{}", "-".repeat(74));
        let (sized, grown, fixed) = memory(n);
        notes.push(format!(
            "N = {:>9}: wheel bytes/live timer {:.1} (with_capacity), {:.1} (grown from empty), \
             + {} fixed; expire-all took {:.1} ms; heartbeat {:.1} ms total",
            n,
            sized,
            grown,
            fixed,
            w.expire * n as f64 / 1e6,
            w.heartbeat * (n * (ROUNDS + 2)) as f64 / 1e6
        ));
    }
    println!();
    let (entry, _, fixed) = memory(1 << 16);
    println!(
        "entry size: {} bytes per timer (Wheel<u64>); fixed slot tables: {} bytes per wheel",
        entry, fixed
    );
    for note in notes {
        println!("{}", note);
    }
    println!(
        "heartbeat ops = N inserts + {} x N resets + N expiries (expiry polled every N/{} resets)",
        ROUNDS, STEPS_PER_ROUND
    );
    println!("total bench time {:.1} s", total.elapsed().as_secs_f64());
}
