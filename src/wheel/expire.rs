//! [`Expire`]: the draining iterator of [`Wheel::expire`].

use std::fmt;

use super::{TimerKey, Wheel};

/// Iterator returned by [`Wheel::expire`]: removes and yields the timers
/// due at its `now`.
///
/// # Examples
///
/// ```
/// let mut wheel = vigil::Wheel::new();
/// wheel.insert(1, ());
/// assert_eq!(wheel.expire(1).count(), 1);
/// ```
pub struct Expire<'a, T> {
    pub(super) wheel: &'a mut Wheel<T>,
    pub(super) now: u64,
}

impl<T> Iterator for Expire<'_, T> {
    type Item = (TimerKey, T);

    fn next(&mut self) -> Option<(TimerKey, T)> {
        self.wheel.pop_expired(self.now)
    }
}

impl<T> fmt::Debug for Expire<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Expire")
            .field("wheel", &self.wheel)
            .field("now", &self.now)
            .finish()
    }
}
