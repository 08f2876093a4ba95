//! [`Histogram`]: fixed buckets of plain counts, for the hot path.

/// Bucket bounds for durations under a second, in nanoseconds: 100 µs to
/// 1 s in 1-2.5-5 steps (reap lateness, a bus publish's latency).
pub(crate) const SUB_SECOND_BOUNDS_NS: [u64; 13] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
];

/// Buckets a histogram can have at most, `+Inf` not counted.
pub const MAX_BUCKETS: usize = 16;

/// Counts of observations in fixed buckets, with their sum: the Prometheus
/// histogram, kept as plain integers.
///
/// The bucket bounds are a `'static` slice chosen when the histogram is
/// built; an observation is a few comparisons and three additions, with no
/// allocation and no atomic operation. The reactor keeps its histograms this
/// way and reads them only when metrics are rendered.
///
/// Values are whole numbers in a unit the owner chooses (nanoseconds for
/// durations, plain counts for events); [`Histogram::scale`] converts them
/// to the exposed unit (seconds).
///
/// # Examples
///
/// ```
/// use vigil::Histogram;
///
/// static BOUNDS: [u64; 3] = [1, 10, 100];
/// let mut h = Histogram::new(&BOUNDS, 1.0);
/// for v in [0, 5, 10, 50, 1000] {
///     h.observe(v);
/// }
/// let cumulative: Vec<(u64, u64)> = h.buckets().collect();
/// assert_eq!(cumulative, [(1, 1), (10, 3), (100, 4)]);
/// assert_eq!(h.count(), 5); // the +Inf bucket
/// assert_eq!(h.sum(), 1065);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: &'static [u64],
    /// `counts[i]`: observations in `(bounds[i - 1], bounds[i]]`, not
    /// cumulative, so that an observation touches one slot.
    counts: [u64; MAX_BUCKETS],
    count: u64,
    sum: u64,
    scale: f64,
}

impl Histogram {
    /// Bucket bounds for durations under a second, in nanoseconds (100 µs
    /// to 1 s in 1-2.5-5 steps), as the reactor's reap lateness and the
    /// bus's publish time use: with a scale of `1e-9`, a histogram in
    /// seconds.
    ///
    /// ```
    /// let mut h = vigil::Histogram::new(vigil::Histogram::SUB_SECOND_NS, 1e-9);
    /// h.observe(2_000_000); // 2 ms
    /// assert_eq!(h.count(), 1);
    /// ```
    pub const SUB_SECOND_NS: &'static [u64] = &SUB_SECOND_BOUNDS_NS;

    /// An empty histogram with these upper bounds (inclusive, ascending), whose
    /// values are multiplied by `scale` when exposed (`1e-9` for
    /// nanoseconds exposed as seconds).
    ///
    /// # Panics
    ///
    /// More than 16 bounds (the counts are kept inline), or bounds not
    /// strictly ascending.
    ///
    /// # Examples
    ///
    /// ```
    /// static MICROS: [u64; 2] = [1_000, 1_000_000];
    /// let h = vigil::Histogram::new(&MICROS, 1e-9);
    /// assert_eq!(h.count(), 0);
    /// ```
    #[track_caller]
    pub fn new(bounds: &'static [u64], scale: f64) -> Histogram {
        assert!(bounds.len() <= MAX_BUCKETS, "at most {MAX_BUCKETS} buckets");
        assert!(
            bounds.windows(2).all(|w| w[0] < w[1]),
            "bounds must be strictly ascending"
        );
        Histogram {
            bounds,
            counts: [0; MAX_BUCKETS],
            count: 0,
            sum: 0,
            scale,
        }
    }

    /// Counts one observation of `value`.
    #[inline]
    pub fn observe(&mut self, value: u64) {
        let i = self.bounds.partition_point(|&bound| bound < value);
        if let Some(slot) = self.counts.get_mut(i).filter(|_| i < self.bounds.len()) {
            *slot += 1;
        }
        self.count += 1;
        self.sum = self.sum.saturating_add(value);
    }

    /// Each bucket's upper bound with the observations at or below it
    /// (cumulative, as Prometheus counts them), `+Inf` left out: it is
    /// [`count`](Histogram::count).
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.bounds
            .iter()
            .zip(&self.counts)
            .scan(0, |total, (&bound, &n)| {
                *total += n;
                Some((bound, *total))
            })
    }

    /// Observations in all.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The sum of all observed values (saturating).
    pub fn sum(&self) -> u64 {
        self.sum
    }

    /// The factor from observed values to the exposed unit.
    pub fn scale(&self) -> f64 {
        self.scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static BOUNDS: [u64; 4] = [10, 20, 30, 40];

    #[test]
    fn bounds_are_inclusive_and_overflow_goes_to_inf_only() {
        let mut h = Histogram::new(&BOUNDS, 1.0);
        for v in [10, 11, 20, 40, 41, u64::MAX] {
            h.observe(v);
        }
        let b: Vec<_> = h.buckets().collect();
        assert_eq!(b, [(10, 1), (20, 3), (30, 3), (40, 4)]);
        assert_eq!(h.count(), 6);
        assert_eq!(h.sum(), u64::MAX);
    }

    #[test]
    #[should_panic(expected = "ascending")]
    fn unsorted_bounds_are_refused() {
        static BAD: [u64; 2] = [2, 1];
        let _ = Histogram::new(&BAD, 1.0);
    }
}
