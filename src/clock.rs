//! Conversion between `Instant`s and the wheel's `u64` ticks.
//!
//! A [`Clock`] fixes tick 0 at a start instant and a tick width (vigil's
//! default is 10 ms). Deadlines are rounded **up** to the next tick
//! ([`Clock::deadline_tick`], [`Clock::ticks_for`]) and the current time is
//! rounded **down** ([`Clock::tick_at`]), so a timer never fires before its
//! instant: at worst one tick late.
use std::time::{Duration, Instant};

/// How far past its start a clock's [`instant_of`](Clock::instant_of)
/// saturates when the exact instant is not representable: 100 years.
const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Converts between wall-clock `Instant`s and the wheel's `u64` ticks.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
/// use vigil::Clock;
///
/// let start = Instant::now();
/// let clock = Clock::with_start(start, Duration::from_millis(10));
/// let at = start + Duration::from_millis(25);
/// assert_eq!(clock.tick_at(at), 2); // now: rounded down
/// assert_eq!(clock.deadline_tick(at), 3); // deadline: rounded up
/// assert_eq!(clock.ticks_for(Duration::from_millis(1)), 1);
/// assert_eq!(clock.instant_of(3), start + Duration::from_millis(30));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
    tick: Duration,
}

impl Clock {
    /// A clock whose tick 0 starts now.
    ///
    /// # Panics
    ///
    /// If `tick` is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// let clock = vigil::Clock::new(std::time::Duration::from_millis(10));
    /// assert!(clock.tick_at(std::time::Instant::now()) < 10);
    /// ```
    #[track_caller]
    pub fn new(tick: Duration) -> Clock {
        Clock::with_start(Instant::now(), tick)
    }

    /// A clock whose tick 0 starts at `start`.
    ///
    /// # Panics
    ///
    /// If `tick` is zero.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let start = Instant::now();
    /// let clock = vigil::Clock::with_start(start, Duration::from_secs(1));
    /// assert_eq!(clock.tick_at(start), 0);
    /// ```
    #[track_caller]
    pub fn with_start(start: Instant, tick: Duration) -> Clock {
        assert!(!tick.is_zero(), "tick must be non-zero");
        Clock { start, tick }
    }

    /// The tick width.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let clock = vigil::Clock::new(Duration::from_millis(10));
    /// assert_eq!(clock.tick(), Duration::from_millis(10));
    /// ```
    pub fn tick(&self) -> Duration {
        self.tick
    }

    /// The instant tick 0 starts at.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let start = Instant::now();
    /// let clock = vigil::Clock::with_start(start, Duration::from_millis(10));
    /// assert_eq!(clock.start(), start);
    /// ```
    pub fn start(&self) -> Instant {
        self.start
    }

    /// The tick `instant` falls in, rounded down: use it for "now".
    /// Instants before the start are tick 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let start = Instant::now();
    /// let clock = vigil::Clock::with_start(start, Duration::from_millis(10));
    /// assert_eq!(clock.tick_at(start + Duration::from_millis(19)), 1);
    /// ```
    pub fn tick_at(&self, instant: Instant) -> u64 {
        let ns = instant.saturating_duration_since(self.start).as_nanos();
        saturate(ns / self.tick.as_nanos())
    }

    /// The first tick at or after `instant`, rounded up: use it for
    /// deadlines, so that the tick never begins before `instant`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let start = Instant::now();
    /// let clock = vigil::Clock::with_start(start, Duration::from_millis(10));
    /// assert_eq!(clock.deadline_tick(start + Duration::from_millis(11)), 2);
    /// assert_eq!(clock.deadline_tick(start + Duration::from_millis(20)), 2);
    /// ```
    pub fn deadline_tick(&self, instant: Instant) -> u64 {
        let ns = instant.saturating_duration_since(self.start).as_nanos();
        saturate(ns.div_ceil(self.tick.as_nanos()))
    }

    /// A duration as a whole number of ticks, rounded up.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let clock = vigil::Clock::new(Duration::from_millis(10));
    /// assert_eq!(clock.ticks_for(Duration::from_secs(30)), 3_000);
    /// assert_eq!(clock.ticks_for(Duration::from_micros(10_001)), 2);
    /// assert_eq!(clock.ticks_for(Duration::ZERO), 0);
    /// ```
    pub fn ticks_for(&self, duration: Duration) -> u64 {
        saturate(duration.as_nanos().div_ceil(self.tick.as_nanos()))
    }

    /// The instant at which `tick` begins. Exact for any tick whose instant
    /// the platform can represent; beyond that it saturates at 100 years
    /// past the start (so `instant_of(u64::MAX)` is "never" in practice).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let start = Instant::now();
    /// let clock = vigil::Clock::with_start(start, Duration::from_millis(10));
    /// assert_eq!(clock.instant_of(100), start + Duration::from_secs(1));
    /// assert!(clock.instant_of(u64::MAX) > start + Duration::from_secs(3600 * 24 * 365));
    /// ```
    pub fn instant_of(&self, tick: u64) -> Instant {
        let ns = self.tick.as_nanos().saturating_mul(u128::from(tick));
        let secs = u64::try_from(ns / 1_000_000_000).unwrap_or(u64::MAX);
        let offset = Duration::new(secs, (ns % 1_000_000_000) as u32);
        self.start
            .checked_add(offset.min(FAR_FUTURE))
            .or_else(|| self.start.checked_add(Duration::from_secs(365 * 24 * 3600)))
            .unwrap_or(self.start)
    }
}

/// A tick count that does not fit a `u64` is as good as never.
fn saturate(ticks: u128) -> u64 {
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clock() -> (Instant, Clock) {
        let start = Instant::now();
        (start, Clock::with_start(start, Duration::from_millis(10)))
    }

    #[test]
    fn now_rounds_down_and_deadlines_round_up() {
        let (start, clock) = clock();
        let ms = |n| start + Duration::from_millis(n);
        assert_eq!(clock.tick_at(ms(0)), 0);
        assert_eq!(clock.tick_at(ms(9)), 0);
        assert_eq!(clock.tick_at(ms(10)), 1);
        assert_eq!(clock.deadline_tick(ms(0)), 0);
        assert_eq!(clock.deadline_tick(ms(1)), 1);
        assert_eq!(clock.deadline_tick(ms(10)), 1);
        assert_eq!(clock.deadline_tick(ms(11)), 2);
        // A deadline tick never begins before its instant.
        for n in 0..100 {
            assert!(clock.instant_of(clock.deadline_tick(ms(n))) >= ms(n));
            assert!(clock.instant_of(clock.tick_at(ms(n))) <= ms(n));
        }
    }

    #[test]
    fn before_start_is_tick_zero() {
        let (start, clock) = clock();
        let later = Clock::with_start(start + Duration::from_secs(5), clock.tick());
        assert_eq!(later.tick_at(start), 0);
        assert_eq!(later.deadline_tick(start), 0);
    }

    #[test]
    fn instant_of_big_ticks_does_not_truncate_or_panic() {
        let (start, clock) = clock();
        // 2^33 ticks used to be truncated to u32.
        let big = 1u64 << 33;
        assert_eq!(
            clock.instant_of(big),
            start + Duration::from_millis(10) * 1024 * (1 << 23)
        );
        assert_eq!(clock.instant_of(u64::MAX), start + FAR_FUTURE);
        let huge = Clock::with_start(start, Duration::from_secs(u64::MAX / 4));
        assert!(huge.instant_of(u64::MAX) > start);
        assert_eq!(huge.ticks_for(Duration::MAX), 5);
    }

    #[test]
    fn tiny_ticks_saturate() {
        let (start, _) = clock();
        let ns = Clock::with_start(start, Duration::from_nanos(1));
        assert_eq!(ns.ticks_for(Duration::MAX), u64::MAX);
    }

    #[test]
    #[should_panic(expected = "tick must be non-zero")]
    fn zero_tick_panics() {
        Clock::new(Duration::ZERO);
    }
}
