//! [`TimerKey`]: the handle to one timer, with its generation.

use std::num::NonZeroU32;

/// Opaque handle to one timer in a [`Wheel`].
///
/// A key names one timer only: once the timer has fired or been cancelled,
/// the key is refused by every method (`reset` returns `false`, `cancel`,
/// `get` and `deadline` return `None`), even after its storage is reused:
/// each storage cell carries a `u32` generation, bumped on every reuse, so a
/// stale key could only be mistaken for a later timer after its cell had
/// been reused 2^32 times while the key was held.
///
/// # Examples
///
/// ```
/// use vigil::Wheel;
///
/// let mut wheel = Wheel::new();
/// let key = wheel.insert(5, "a");
/// assert_eq!(wheel.cancel(key), Some("a"));
/// let other = wheel.insert(5, "b"); // may reuse the same storage
/// assert_eq!(wheel.cancel(key), None); // the old key stays dead
/// assert_eq!(wheel.get(other), Some(&"b"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerKey {
    pub(super) index: u32,
    /// Never 0: `Option<TimerKey>`, kept by every connection, is 8 bytes.
    pub(super) generation: NonZeroU32,
}

impl TimerKey {
    pub(super) fn new(index: u32, generation: u32) -> TimerKey {
        TimerKey {
            index,
            generation: NonZeroU32::new(generation).expect("generations start at 1"),
        }
    }
}
