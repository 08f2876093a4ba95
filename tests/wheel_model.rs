//! The wheel fires exactly the timers a sorted reference map says are due, at the same tick, through millions of random inserts, resets, cancels, stale-key uses and time jumps of hours to decades.
//!
//! Reference: a `BTreeMap<(deadline, id), key>`. After every advance the set
//! of `(key, value)` pairs the wheel fires equals the reference's entries
//! with `deadline <= now`. Also checked: `next_deadline()` is never after
//! the earliest reference deadline, is exact when that deadline is in the
//! current 64-tick block, and `pop_expired(next_deadline())` always makes
//! progress; stale keys are refused.
//!
//! `VIGIL_MODEL_OPS` (default 2 000 000) sets the number of operations and
//! `VIGIL_MODEL_SEED` the seed (printed on failure).

use std::collections::{BTreeMap, HashMap};

use vigil::{TimerKey, Wheel};

use support::rng::Rng;

/// Ticks per hour and per year at vigil's default 10 ms tick.
const HOUR: u64 = 3600 * 100;
const YEAR: u64 = 365 * 24 * HOUR;
/// The wheel's range: 6 levels of 64 slots.
const RANGE: u64 = 1 << 36;
/// Keep the population around this size so the reference stays fast.
const MAX_LIVE: usize = 4_000;
const STALE_KEPT: usize = 256;

struct Model {
    wheel: Wheel<u64>,
    /// (deadline, id) -> key: the reference.
    due: BTreeMap<(u64, u64), TimerKey>,
    /// id -> (key, deadline, position in `ids`).
    live: HashMap<u64, (TimerKey, u64, usize)>,
    ids: Vec<u64>,
    stale: Vec<TimerKey>,
    now: u64,
    next_id: u64,
    seed: u64,
    op: u64,
    /// False after a partial drain: the wheel may still have slots to
    /// cascade at or before `now`, so `next_deadline` need not be exact.
    settled: bool,
    stats: Stats,
}

#[derive(Debug, Default)]
struct Stats {
    inserts: u64,
    resets: u64,
    cancels: u64,
    stale_checks: u64,
    advances: u64,
    partial_drains: u64,
    stepped_wakeups: u64,
    fired: u64,
}

impl Model {
    fn ctx(&self) -> String {
        format!(
            "seed {:#x} (VIGIL_MODEL_SEED), op {}, now {}",
            self.seed, self.op, self.now
        )
    }

    fn random_deadline(&mut self, rng: &mut Rng) -> u64 {
        let now = self.now;
        match rng.below(100) {
            0..=4 => now.saturating_sub(rng.below(1_000)), // past
            5..=7 => now,
            8..=39 => now + 1 + rng.below(64),
            40..=64 => now + rng.below(4_096),
            65..=79 => now + rng.below(1 << 20),
            80..=89 => now + rng.below(HOUR * 48),
            90..=95 => now + rng.below(20 * YEAR),
            _ => now + RANGE + rng.below(4 * RANGE), // beyond the range
        }
    }

    fn insert(&mut self, rng: &mut Rng) {
        let deadline = self.random_deadline(rng);
        let id = self.next_id;
        self.next_id += 1;
        let key = self.wheel.insert(deadline, id);
        self.due.insert((deadline, id), key);
        self.live.insert(id, (key, deadline, self.ids.len()));
        self.ids.push(id);
        self.stats.inserts += 1;
    }

    fn random_live(&mut self, rng: &mut Rng) -> Option<u64> {
        if self.ids.is_empty() {
            None
        } else {
            Some(self.ids[rng.below(self.ids.len() as u64) as usize])
        }
    }

    fn forget(&mut self, id: u64) -> (TimerKey, u64) {
        let (key, deadline, pos) = self.live.remove(&id).expect("live id");
        self.ids.swap_remove(pos);
        if let Some(&moved) = self.ids.get(pos) {
            self.live.get_mut(&moved).unwrap().2 = pos;
        }
        assert!(self.due.remove(&(deadline, id)).is_some());
        if self.stale.len() < STALE_KEPT {
            self.stale.push(key);
        } else {
            let i = (id as usize) % STALE_KEPT;
            self.stale[i] = key;
        }
        (key, deadline)
    }

    fn reset(&mut self, rng: &mut Rng) {
        let Some(id) = self.random_live(rng) else {
            return;
        };
        let deadline = self.random_deadline(rng);
        let (key, old, pos) = self.live[&id];
        assert_eq!(self.wheel.deadline(key), Some(old), "{}", self.ctx());
        assert!(self.wheel.reset(key, deadline), "{}", self.ctx());
        self.due.remove(&(old, id));
        self.due.insert((deadline, id), key);
        self.live.insert(id, (key, deadline, pos));
        self.stats.resets += 1;
    }

    fn cancel(&mut self, rng: &mut Rng) {
        let Some(id) = self.random_live(rng) else {
            return;
        };
        let (key, _) = self.forget(id);
        assert_eq!(self.wheel.cancel(key), Some(id), "{}", self.ctx());
        self.stats.cancels += 1;
    }

    fn use_stale(&mut self, rng: &mut Rng) {
        if self.stale.is_empty() {
            return;
        }
        let key = self.stale[rng.below(self.stale.len() as u64) as usize];
        let ctx = self.ctx();
        assert!(!self.wheel.reset(key, self.now + 5), "stale reset: {}", ctx);
        assert_eq!(self.wheel.cancel(key), None, "stale cancel: {}", ctx);
        assert_eq!(self.wheel.deadline(key), None, "stale deadline: {}", ctx);
        assert_eq!(self.wheel.get(key), None, "stale get: {}", ctx);
        self.stats.stale_checks += 1;
    }

    /// Pops everything due at `at` from both and compares.
    fn fire(&mut self, at: u64) -> usize {
        let mut got = Vec::new();
        while let Some((key, id)) = self.wheel.pop_expired(at) {
            got.push((id, key));
        }
        self.now = self.now.max(at);
        let mut want = Vec::new();
        while let Some((&(deadline, id), &key)) = self.due.first_key_value() {
            if deadline > self.now {
                break;
            }
            want.push((id, key));
            self.forget(id);
        }
        got.sort_unstable_by_key(|&(id, _)| id);
        want.sort_unstable_by_key(|&(id, _)| id);
        assert_eq!(got, want, "fired set differs: {}", self.ctx());
        for &(_, key) in &got {
            assert_eq!(self.wheel.deadline(key), None, "{}", self.ctx());
        }
        self.stats.fired += got.len() as u64;
        self.settled = true;
        got.len()
    }

    /// Advances a little and pops only a few due timers, as a reactor that
    /// re-inserts while handling does; the rest stay due (and may be reset
    /// or cancelled while due) until the next full `fire`.
    fn partial_drain(&mut self, rng: &mut Rng) {
        let at = self.now + rng.below(300);
        self.now = at;
        for _ in 0..1 + rng.below(4) {
            let Some((key, id)) = self.wheel.pop_expired(at) else {
                break;
            };
            let ctx = self.ctx();
            let &(k, deadline, _) = self.live.get(&id).unwrap_or_else(|| panic!("{}", ctx));
            assert_eq!(k, key, "{}", ctx);
            assert!(deadline <= at, "fired early: {}", ctx);
            self.forget(id);
            self.stats.fired += 1;
        }
        self.settled = false;
        self.stats.partial_drains += 1;
    }

    fn check_next_deadline(&self) {
        let next = self.wheel.next_deadline();
        let Some((&(min, _), _)) = self.due.first_key_value() else {
            assert_eq!(next, None, "{}", self.ctx());
            return;
        };
        let next = next.unwrap_or_else(|| panic!("None with timers pending: {}", self.ctx()));
        assert!(
            next <= min,
            "next_deadline {} > {}: {}",
            next,
            min,
            self.ctx()
        );
        if min <= self.now {
            assert!(next <= self.now, "{}", self.ctx());
        } else if self.settled && min >> 6 == self.now >> 6 {
            assert_eq!(next, min, "not exact in level 0: {}", self.ctx());
        }
    }

    fn advance(&mut self, rng: &mut Rng) {
        self.stats.advances += 1;
        let step = match rng.below(100) {
            0..=9 => 0,
            10..=59 => 1 + rng.below(8),
            60..=84 => rng.below(200),
            85..=93 => rng.below(5_000),
            94..=96 => rng.below(4 * HOUR),
            97..=98 => rng.below(3 * YEAR),
            _ => rng.below(2 * RANGE), // up to ~44 years
        };
        let target = self.now + step;
        if rng.below(4) == 0 {
            // Sleep-until-next_deadline, as the reactor does.
            while let Some(next) = self.wheel.next_deadline() {
                if next > target {
                    break;
                }
                self.stats.stepped_wakeups += 1;
                let fired = self.fire(next);
                if fired == 0 {
                    let after = self.wheel.next_deadline();
                    assert!(
                        after.is_none_or(|a| a > next),
                        "pop_expired(next_deadline()) made no progress at {}: {}",
                        next,
                        self.ctx()
                    );
                }
                self.check_next_deadline();
            }
        }
        self.fire(target);
        assert_eq!(self.wheel.now(), self.now, "{}", self.ctx());
        self.check_next_deadline();
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.replace('_', "").parse().ok(),
    }
}

#[test]
fn wheel_matches_reference_model() {
    let ops = env_u64("VIGIL_MODEL_OPS").unwrap_or(2_000_000);
    let seed = env_u64("VIGIL_MODEL_SEED").unwrap_or(0x5EED_F00D);
    eprintln!("wheel model: {} ops, seed {:#x}", ops, seed);
    let mut rng = Rng(seed);
    let mut m = Model {
        wheel: Wheel::new(),
        due: BTreeMap::new(),
        live: HashMap::new(),
        ids: Vec::new(),
        stale: Vec::new(),
        now: 0,
        next_id: 0,
        seed,
        op: 0,
        settled: true,
        stats: Stats::default(),
    };
    for op in 0..ops {
        m.op = op;
        let full = m.ids.len() >= MAX_LIVE;
        match rng.below(100) {
            0..=34 if !full => m.insert(&mut rng),
            0..=34 => m.cancel(&mut rng),
            35..=59 => m.reset(&mut rng),
            60..=69 => m.cancel(&mut rng),
            70..=74 => m.use_stale(&mut rng),
            75..=77 => m.partial_drain(&mut rng),
            _ => m.advance(&mut rng),
        }
        assert_eq!(m.wheel.len(), m.ids.len(), "{}", m.ctx());
        if op % 64 == 0 {
            m.check_next_deadline();
            if let Some(id) = m.random_live(&mut rng) {
                let (key, deadline, _) = m.live[&id];
                assert_eq!(m.wheel.deadline(key), Some(deadline), "{}", m.ctx());
                assert_eq!(m.wheel.get(key), Some(&id), "{}", m.ctx());
            }
        }
    }
    // Drain: everything left fires, at its tick, however far out.
    while let Some(next) = m.wheel.next_deadline() {
        m.fire(next);
    }
    assert!(m.due.is_empty() && m.wheel.is_empty(), "{}", m.ctx());
    eprintln!("{:?}", m.stats);
}
