//! A hierarchical timer wheel: ticks in, expired timers out.
//!
//! The design is documented on [`Wheel`] (this module is private) and in
//! `docs/timer-wheel.md`.

mod entries;
mod expire;
mod filing;
mod key;
mod level;

pub use expire::Expire;
pub use key::TimerKey;

use std::fmt;

use entries::{Entries, State, NIL};
use level::{Lanes, Level, LANES, LEVELS, RANGE, SLOTS, TOP};

/// `loc` of an entry that is due: linked in the due list, not in a slot.
const DUE: u16 = (LEVELS * SLOTS) as u16;

/// A hierarchical timer wheel holding values of type `T`, keyed by
/// [`TimerKey`], due at `u64` ticks.
///
/// The wheel reads no clock: the caller passes the current tick to
/// [`pop_expired`](Wheel::pop_expired).
///
/// # Layout
///
/// Six levels of 64 slots over a `u64` tick counter. A slot at level `L` is
/// `64^L` ticks wide and level `L` spans `64^(L+1)` ticks:
///
/// | level | slot width  | level span  | at a 10 ms tick      |
/// |-------|-------------|-------------|----------------------|
/// | 0     | 1           | 64          | 10 ms / 0.64 s       |
/// | 1     | 64          | 4 096       | 0.64 s / 41 s        |
/// | 2     | 4 096       | 262 144     | 41 s / 43.7 min      |
/// | 3     | 2^18        | 2^24        | 43.7 min / 46.6 h    |
/// | 4     | 2^24        | 2^30        | 46.6 h / 124 days    |
/// | 5     | 2^30        | 2^36        | 124 days / 21.8 years|
///
/// A timer goes in the level of the highest bit in which its deadline
/// differs from the wheel's current tick, so it sits in a slot strictly
/// ahead of the current one. When time reaches a slot of level `L > 0`, its
/// timers are *cascaded*: re-filed into lower levels (or straight into the
/// due list). Deadlines more than 2^36 ticks ahead are held at the top level
/// and re-filed each time their top-level slot comes round (once per 2^36
/// ticks) until they are in range.
///
/// Each level has a `u64` occupancy bitmap, so the next occupied slot is a
/// `rotate_right` and a `trailing_zeros`, never a scan; advancing time jumps
/// from occupied slot to occupied slot, never tick by tick.
///
/// # Costs
///
/// - `insert`, `reset`, `cancel`, `deadline`, `get`: O(1), no allocation once
///   the storage has grown to the peak number of live timers.
/// - `next_deadline`: O(levels).
/// - `pop_expired(now)`: O(1) per due timer plus O(levels) per occupied slot
///   crossed; each timer is cascaded at most once per level. A jump of hours
///   or years costs O(levels + due timers + timers cascaded), not O(ticks).
/// - Memory: one 32-byte entry per timer for `Wheel<u64>`, storage kept at
///   its peak size, plus a fixed 12 KiB of list heads (each slot holds 8
///   independent lists, "lanes", so that walking a slot keeps 8 cache misses
///   in flight instead of one).
///
/// # Rounding
///
/// The wheel knows only ticks. Convert deadlines with
/// [`Clock::deadline_tick`](crate::Clock::deadline_tick) or
/// [`Clock::ticks_for`](crate::Clock::ticks_for), which round *up*, and the
/// current time with [`Clock::tick_at`](crate::Clock::tick_at), which rounds
/// *down*; then nothing fires early.
///
/// # Examples
///
/// ```
/// use vigil::Wheel;
///
/// let mut wheel = Wheel::new();
/// let a = wheel.insert(10, "a");
/// wheel.insert(3_000, "b");
/// assert!(wheel.pop_expired(9).is_none());
/// assert_eq!(wheel.pop_expired(10), Some((a, "a")));
/// assert!(wheel.pop_expired(2_999).is_none());
/// assert_eq!(wheel.pop_expired(5_000).map(|(_, v)| v), Some("b"));
/// assert!(wheel.is_empty());
/// ```
pub struct Wheel<T> {
    levels: [Level; LEVELS],
    /// Lane heads of the list of due entries (deadline <= `now`).
    due: Lanes,
    /// Number of due entries.
    due_len: usize,
    /// The lane the next due entry is popped from (round-robin, so that
    /// consecutive pops touch independent chains).
    due_lane: usize,
    /// A lower bound on the deadlines in the due list (exact when filed).
    due_min: u64,
    entries: Entries<T>,
    /// Internal cursor: every slot starting at or before it has been
    /// cascaded. `elapsed <= now`.
    elapsed: u64,
    /// The largest tick passed to `pop_expired`.
    now: u64,
    /// Slots cascaded so far (for tests of the jump cost).
    cascades: u64,
}

impl<T> Wheel<T> {
    /// An empty wheel at tick 0.
    ///
    /// # Examples
    ///
    /// ```
    /// let wheel: vigil::Wheel<u64> = vigil::Wheel::new();
    /// assert_eq!(wheel.now(), 0);
    /// assert!(wheel.is_empty());
    /// ```
    pub fn new() -> Wheel<T> {
        Wheel::with_capacity(0)
    }

    /// An empty wheel at tick 0 with storage for `n` timers allocated up
    /// front.
    ///
    /// # Examples
    ///
    /// ```
    /// let wheel: vigil::Wheel<u64> = vigil::Wheel::with_capacity(1024);
    /// assert!(wheel.capacity() >= 1024);
    /// ```
    pub fn with_capacity(n: usize) -> Wheel<T> {
        Wheel {
            levels: std::array::from_fn(|_| Level::new(NIL)),
            due: [NIL; LANES],
            due_len: 0,
            due_lane: 0,
            due_min: u64::MAX,
            entries: Entries::with_capacity(n),
            elapsed: 0,
            now: 0,
            cascades: 0,
        }
    }

    /// The current tick: the largest `now` passed to
    /// [`pop_expired`](Wheel::pop_expired) so far (0 at first).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut wheel: vigil::Wheel<()> = vigil::Wheel::new();
    /// wheel.pop_expired(42);
    /// wheel.pop_expired(7); // time never goes back
    /// assert_eq!(wheel.now(), 42);
    /// ```
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Number of live timers.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut wheel = vigil::Wheel::new();
    /// wheel.insert(1, ());
    /// assert_eq!(wheel.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no timer is live.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut wheel = vigil::Wheel::new();
    /// assert!(wheel.is_empty());
    /// wheel.insert(1, ());
    /// assert!(!wheel.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of timers the storage holds without growing. Storage never
    /// shrinks: it stays at the peak number of live timers.
    ///
    /// # Examples
    ///
    /// ```
    /// let wheel: vigil::Wheel<u64> = vigil::Wheel::with_capacity(10);
    /// assert!(wheel.capacity() >= 10);
    /// ```
    pub fn capacity(&self) -> usize {
        self.entries.capacity()
    }

    /// Bytes of memory the wheel uses: the storage (at its capacity) plus
    /// the fixed slot tables (about 12 KiB). For `Wheel<u64>` each timer
    /// costs 32 bytes.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut wheel = vigil::Wheel::with_capacity(1000);
    /// for i in 0..1000u64 {
    ///     wheel.insert(i, i);
    /// }
    /// assert!(wheel.memory_bytes() <= 1000 * 32 + 16 * 1024);
    /// ```
    pub fn memory_bytes(&self) -> usize {
        self.capacity() * std::mem::size_of::<entries::Entry<T>>() + std::mem::size_of::<Self>()
    }

    /// Adds a timer due at tick `deadline` holding `value`, and returns its
    /// key. A deadline at or before [`now`](Wheel::now) is due at the next
    /// [`pop_expired`](Wheel::pop_expired).
    ///
    /// # Panics
    ///
    /// With more than `u32::MAX - 1` live timers.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut wheel = vigil::Wheel::new();
    /// wheel.pop_expired(100);
    /// let late = wheel.insert(50, "late"); // already past: due now
    /// assert_eq!(wheel.pop_expired(100), Some((late, "late")));
    /// ```
    #[track_caller]
    pub fn insert(&mut self, deadline: u64, value: T) -> TimerKey {
        let (index, generation) = self.entries.alloc(DUE, deadline, value);
        self.link(index, deadline);
        TimerKey::new(index, generation)
    }

    /// Moves a live timer to a new `deadline` (earlier or later). Returns
    /// `false`, changing nothing, if `key` is stale (its timer fired or was
    /// cancelled).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut wheel = vigil::Wheel::new();
    /// let key = wheel.insert(10, ());
    /// assert!(wheel.reset(key, 20));
    /// assert!(wheel.pop_expired(19).is_none());
    /// assert!(wheel.pop_expired(20).is_some());
    /// assert!(!wheel.reset(key, 30)); // fired: stale
    /// ```
    pub fn reset(&mut self, key: TimerKey, deadline: u64) -> bool {
        let target = self.loc_for(deadline);
        let Some(entry) = self.entries.live_mut(key.index, key.generation.get()) else {
            return false;
        };
        let State::Occupied {
            deadline: d, loc, ..
        } = &mut entry.state
        else {
            unreachable!("live entry is vacant");
        };
        *d = deadline;
        if *loc == target {
            // Same list (common when a heartbeat pushes a far deadline a
            // little later): nothing to relink.
            if target == DUE {
                self.due_min = self.due_min.min(deadline);
            }
            return true;
        }
        self.unlink(key.index);
        self.link(key.index, deadline);
        true
    }

    /// Removes a live timer and returns its value, or `None` if `key` is
    /// stale.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut wheel = vigil::Wheel::new();
    /// let key = wheel.insert(10, 'x');
    /// assert_eq!(wheel.cancel(key), Some('x'));
    /// assert_eq!(wheel.cancel(key), None);
    /// assert!(wheel.pop_expired(10).is_none());
    /// ```
    pub fn cancel(&mut self, key: TimerKey) -> Option<T> {
        self.entries.live(key.index, key.generation.get())?;
        self.unlink(key.index);
        Some(self.entries.free(key.index).1)
    }

    /// The deadline of a live timer, or `None` if `key` is stale.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut wheel = vigil::Wheel::new();
    /// let key = wheel.insert(10, ());
    /// assert_eq!(wheel.deadline(key), Some(10));
    /// ```
    pub fn deadline(&self, key: TimerKey) -> Option<u64> {
        Some(
            self.entries
                .live(key.index, key.generation.get())?
                .deadline(),
        )
    }

    /// The value of a live timer, or `None` if `key` is stale.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut wheel = vigil::Wheel::new();
    /// let key = wheel.insert(10, 7u64);
    /// assert_eq!(wheel.get(key), Some(&7));
    /// ```
    pub fn get(&self, key: TimerKey) -> Option<&T> {
        match &self.entries.live(key.index, key.generation.get())?.state {
            State::Occupied { value, .. } => Some(value),
            State::Vacant { .. } => None,
        }
    }

    /// The value of a live timer, mutably, or `None` if `key` is stale.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut wheel = vigil::Wheel::new();
    /// let key = wheel.insert(10, 7u64);
    /// *wheel.get_mut(key).unwrap() += 1;
    /// assert_eq!(wheel.get(key), Some(&8));
    /// ```
    pub fn get_mut(&mut self, key: TimerKey) -> Option<&mut T> {
        match &mut self
            .entries
            .live_mut(key.index, key.generation.get())?
            .state
        {
            State::Occupied { value, .. } => Some(value),
            State::Vacant { .. } => None,
        }
    }

    /// The tick to sleep until: the earliest tick at which
    /// [`pop_expired`](Wheel::pop_expired) can yield a timer or has to
    /// cascade a slot; `None` when the wheel is empty. O(levels).
    ///
    /// It is never later than the earliest deadline, and
    /// `pop_expired(next_deadline())` always makes progress (yields a timer,
    /// or moves timers to lower levels), so a caller sleeping until it never
    /// spins. When something is already due it is at most [`now`](Wheel::now).
    /// It is exact when the earliest timer is within the current 64-tick
    /// block (level 0); otherwise it is the start of the slot that holds the
    /// earliest timer, so a caller may wake up to once per level, at a slot
    /// boundary, before the real deadline while the timer cascades down.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut wheel = vigil::Wheel::new();
    /// assert_eq!(wheel.next_deadline(), None);
    /// wheel.insert(10, ());
    /// assert_eq!(wheel.next_deadline(), Some(10)); // level 0: exact
    /// wheel.pop_expired(10);
    /// wheel.insert(1_000, ());
    /// // Level 1, slot [960, 1024): wake at 960, cascade, then exact.
    /// assert_eq!(wheel.next_deadline(), Some(960));
    /// assert!(wheel.pop_expired(960).is_none());
    /// assert_eq!(wheel.next_deadline(), Some(1_000));
    /// ```
    pub fn next_deadline(&self) -> Option<u64> {
        // Slots are consulted even when something is due: after a partial
        // drain, a slot at or before `now` may hold an earlier deadline.
        let slot = self.next_slot().map(|(tick, _)| tick);
        let due = (self.due_len > 0).then(|| self.due_min.min(self.now));
        match (due, slot) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Advances the wheel to `now` and removes and returns one timer whose
    /// deadline is at or before `now`, or `None` when none is due (then the
    /// wheel stands at `now`). Call it in a loop; timers inserted or reset
    /// in between are taken into account. A `now` smaller than
    /// [`now()`](Wheel::now) is treated as `now()`. Order among timers due by
    /// `now` is unspecified.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut wheel = vigil::Wheel::new();
    /// for t in [5, 70, 10_000_000_000] {
    ///     wheel.insert(t, t);
    /// }
    /// let mut fired = Vec::new();
    /// while let Some((_, t)) = wheel.pop_expired(100) {
    ///     fired.push(t);
    /// }
    /// fired.sort();
    /// assert_eq!(fired, [5, 70]);
    /// assert_eq!(wheel.len(), 1);
    /// ```
    pub fn pop_expired(&mut self, now: u64) -> Option<(TimerKey, T)> {
        self.now = self.now.max(now);
        loop {
            if self.due_len > 0 {
                let index = self.pop_due();
                let (generation, value) = self.entries.free(index);
                return Some((TimerKey::new(index, generation), value));
            }
            match self.next_slot() {
                Some((tick, TOP)) if self.now.saturating_sub(tick) >= RANGE => self.refile_top(),
                Some((tick, level)) if tick <= self.now => self.cascade(tick, level),
                _ => {
                    self.elapsed = self.now;
                    return None;
                }
            }
        }
    }

    /// Iterates over the timers due at `now`, removing them: a loop over
    /// [`pop_expired`](Wheel::pop_expired).
    ///
    /// # Examples
    ///
    /// ```
    /// let mut wheel = vigil::Wheel::new();
    /// wheel.insert(1, 'a');
    /// wheel.insert(2, 'b');
    /// wheel.insert(3, 'c');
    /// let mut due: Vec<char> = wheel.expire(2).map(|(_, v)| v).collect();
    /// due.sort();
    /// assert_eq!(due, ['a', 'b']);
    /// ```
    pub fn expire(&mut self, now: u64) -> Expire<'_, T> {
        Expire { wheel: self, now }
    }
}

impl<T> Default for Wheel<T> {
    fn default() -> Wheel<T> {
        Wheel::new()
    }
}

impl<T> fmt::Debug for Wheel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wheel")
            .field("now", &self.now)
            .field("len", &self.len())
            .field("next_deadline", &self.next_deadline())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
