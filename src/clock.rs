//! `Instant` <-> tick conversion. (Owned by the wheel work; stub.)
use std::time::{Duration, Instant};

/// Converts between wall-clock `Instant`s and the wheel's `u64` ticks.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
    tick: Duration,
}

impl Clock {
    /// A clock whose tick 0 starts now.
    pub fn new(tick: Duration) -> Clock {
        Clock::with_start(Instant::now(), tick)
    }
    /// A clock whose tick 0 starts at `start`.
    pub fn with_start(start: Instant, tick: Duration) -> Clock {
        assert!(!tick.is_zero(), "tick must be non-zero");
        Clock { start, tick }
    }
    /// The tick width.
    pub fn tick(&self) -> Duration {
        self.tick
    }
    /// The tick `instant` falls in (rounded down).
    pub fn tick_at(&self, instant: Instant) -> u64 {
        (instant.saturating_duration_since(self.start).as_nanos() / self.tick.as_nanos()) as u64
    }
    /// The first tick at or after `instant` (rounded up).
    pub fn deadline_tick(&self, instant: Instant) -> u64 {
        let ns = instant.saturating_duration_since(self.start).as_nanos();
        ns.div_ceil(self.tick.as_nanos()) as u64
    }
    /// A duration as a whole number of ticks, rounded up.
    pub fn ticks_for(&self, duration: Duration) -> u64 {
        duration.as_nanos().div_ceil(self.tick.as_nanos()) as u64
    }
    /// The instant at which `tick` begins.
    pub fn instant_of(&self, tick: u64) -> Instant {
        self.start + self.tick * (tick as u32)
    }
}
