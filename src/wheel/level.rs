//! Slot arithmetic and one level of the wheel.
//!
//! The wheel has [`LEVELS`] levels of [`SLOTS`] slots each. A slot at level
//! `L` is `64^L` ticks wide and a whole level spans `64^(L + 1)` ticks, so
//! level 0 holds the next 64 ticks one tick per slot, level 1 the next 4096
//! ticks 64 ticks per slot, and so on up to level 5, whose 64 slots of 2^30
//! ticks span 2^36 ticks.
//!
//! Everything here is a small pure function of the wheel's current tick
//! (`elapsed`) and a deadline, in the style of tokio's
//! `runtime/time/wheel`.

/// Bits of the tick counter consumed by one level. Six bits make 64 slots:
/// a power of two, so the slot is a shift and a mask, and exactly the width
/// of one `u64` occupancy bitmap, so "next occupied slot" is one
/// `rotate_right` plus one `trailing_zeros`.
pub(crate) const SLOT_BITS: u32 = 6;

/// Slots per level (64 = one bit each in a `u64` bitmap).
pub(crate) const SLOTS: usize = 1 << SLOT_BITS;

/// Mask that extracts a slot number from a shifted tick.
pub(crate) const SLOT_MASK: u64 = (SLOTS as u64) - 1;

/// Number of levels. 6 levels × 6 bits cover 2^36 ticks (≈ 21.8 years at a
/// 10 ms tick); deadlines further out are parked at the top level and
/// re-filed each time their top-level slot comes round.
pub(crate) const LEVELS: usize = 6;

/// The top level, where out-of-range deadlines are held.
pub(crate) const TOP: usize = LEVELS - 1;

/// Ticks the whole wheel covers: 2^36.
pub(crate) const RANGE: u64 = 1 << (SLOT_BITS * LEVELS as u32);

/// Width in ticks of one slot at `level`: `64^level`.
pub(crate) const fn slot_width(level: usize) -> u64 {
    1 << (SLOT_BITS * level as u32)
}

/// Ticks spanned by all 64 slots of `level`: `64^(level + 1)`.
#[cfg(test)]
pub(crate) const fn level_span(level: usize) -> u64 {
    slot_width(level) << SLOT_BITS
}

/// The level a `deadline` belongs in when the wheel stands at `elapsed`
/// (`deadline > elapsed`): the level of the highest bit in which the two
/// differ. Ticks that agree above level `L`'s bits lie in the same level-`L`
/// span, so the entry sits in a slot strictly after the current one and is
/// met again when time reaches that slot. Deadlines differing at or above
/// bit 36 are out of range and go to the top level.
pub(crate) fn level_for(elapsed: u64, deadline: u64) -> usize {
    // `| SLOT_MASK` makes ticks that differ only within level 0 land in 0.
    let masked = (elapsed ^ deadline) | SLOT_MASK;
    if masked >= RANGE {
        return TOP;
    }
    let significant = 63 - masked.leading_zeros();
    (significant / SLOT_BITS) as usize
}

/// The slot of `level` that `tick` falls in.
pub(crate) fn slot_for(tick: u64, level: usize) -> usize {
    ((tick >> (SLOT_BITS * level as u32)) & SLOT_MASK) as usize
}

/// The first tick of the slot of `level` that `tick` falls in.
pub(crate) fn slot_start(tick: u64, level: usize) -> u64 {
    tick & !(slot_width(level) - 1)
}

/// The tick at which the next occupied slot of a level begins, counting
/// strictly after the slot that `elapsed` is in, or `None` if the level is
/// empty. `occupied` is the level's bitmap.
///
/// The current slot counts as 64 slots away: below the top level it is
/// never occupied (see [`level_for`]), and at the top level an occupied
/// current slot holds only out-of-range entries, due no sooner than when
/// the slot comes round again. The result saturates at `u64::MAX`.
pub(crate) fn next_slot_tick(occupied: u64, elapsed: u64, level: usize) -> Option<u64> {
    if occupied == 0 {
        return None;
    }
    let current = slot_for(elapsed, level) as u32;
    // Rotate so that bit 0 is the slot after the current one.
    let distance = u64::from(occupied.rotate_right((current + 1) % 64).trailing_zeros()) + 1;
    let ahead = distance.saturating_mul(slot_width(level));
    Some(slot_start(elapsed, level).saturating_add(ahead))
}

/// Independent linked lists ("lanes") per slot; an entry's lane is its
/// storage index modulo `LANES`. Walking one long linked list is a chain of
/// dependent cache misses (~100 ns each once the entries outgrow the cache);
/// walking 8 lists round-robin keeps 8 misses in flight, which makes
/// cascading and bulk expiry several times faster at a million timers. The
/// cost is 32 bytes of heads per slot instead of 4 (12 KiB per wheel), and
/// nothing per timer.
pub(crate) const LANES: usize = 8;

/// The heads of one slot's lanes (`NIL` for an empty lane).
pub(crate) type Lanes = [u32; LANES];

/// The lane of the entry at storage `index`.
pub(crate) fn lane_of(index: u32) -> usize {
    index as usize % LANES
}

/// One level: the lane heads of 64 slots and the bitmap saying which slots
/// are non-empty.
#[derive(Debug, Clone)]
pub(crate) struct Level {
    /// Bit `s` is set when some lane of `heads[s]` is non-empty.
    pub(crate) occupied: u64,
    /// Index of the first entry of each lane of each slot, or `NIL`.
    pub(crate) heads: [Lanes; SLOTS],
}

impl Level {
    pub(crate) const fn new(nil: u32) -> Level {
        Level {
            occupied: 0,
            heads: [[nil; LANES]; SLOTS],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_explain_themselves() {
        assert_eq!(SLOTS, 64);
        assert_eq!(RANGE, 1 << 36);
        assert_eq!(level_span(TOP), RANGE);
        for level in 0..LEVELS {
            assert_eq!(slot_width(level), 64u64.pow(level as u32));
            assert_eq!(level_span(level), 64u64.pow(level as u32 + 1));
        }
    }

    #[test]
    fn level_at_every_boundary() {
        // From tick 0: deadline d goes to the level whose span first holds it.
        assert_eq!(level_for(0, 1), 0);
        for level in 0..TOP {
            let span = level_span(level);
            assert_eq!(level_for(0, span - 1), level, "{} - 1", span);
            assert_eq!(level_for(0, span), level + 1, "{}", span);
        }
        // 63/64, 4095/4096, ... spelled out.
        assert_eq!(level_for(0, 63), 0);
        assert_eq!(level_for(0, 64), 1);
        assert_eq!(level_for(0, 4095), 1);
        assert_eq!(level_for(0, 4096), 2);
        assert_eq!(level_for(0, (1 << 24) - 1), 3);
        assert_eq!(level_for(0, 1 << 24), 4);
        assert_eq!(level_for(0, (1 << 30) - 1), 4);
        assert_eq!(level_for(0, 1 << 30), 5);
        assert_eq!(level_for(0, RANGE - 1), TOP);
        // Beyond the range: held at the top level.
        assert_eq!(level_for(0, RANGE), TOP);
        assert_eq!(level_for(0, u64::MAX), TOP);
        // Relative to elapsed, it is the highest differing bit that counts:
        // 63 -> 64 crosses a level-0 span boundary, so level 1.
        assert_eq!(level_for(63, 64), 1);
        assert_eq!(level_for(64, 127), 0);
        assert_eq!(level_for(4095, 4096), 2);
        assert_eq!(level_for(RANGE - 1, RANGE), TOP);
        assert_eq!(level_for(RANGE, RANGE + 63), 0);
    }

    #[test]
    fn slot_at_every_boundary() {
        for level in 0..LEVELS {
            let w = slot_width(level);
            assert_eq!(slot_for(0, level), 0);
            assert_eq!(slot_for(w - 1, level), 0);
            assert_eq!(slot_for(w, level), 1);
            assert_eq!(slot_for(level_span(level) - 1, level), 63);
            assert_eq!(slot_for(level_span(level), level), 0);
            assert_eq!(slot_start(w * 5 + w / 2, level), w * 5);
        }
        // Beyond range, the top-level slot wraps every 2^36 ticks.
        assert_eq!(slot_for(RANGE + (3 << 30), TOP), 3);
        assert_eq!(slot_for(u64::MAX, TOP), 63);
    }

    #[test]
    fn next_slot_tick_finds_the_next_occupied_slot() {
        assert_eq!(next_slot_tick(0, 0, 0), None);
        // Level 0 at tick 10: slot 12 is due at tick 12.
        assert_eq!(next_slot_tick(1 << 12, 10, 0), Some(12));
        // Level 1 at tick 70 (slot 1): slot 3 starts at 192.
        assert_eq!(next_slot_tick(1 << 3, 70, 1), Some(192));
        // Wrapping: at slot 62 of the top level, slot 1 is in the next span.
        let at = 62 << 30;
        assert_eq!(next_slot_tick(1 << 1, at, TOP), Some(RANGE + (1 << 30)));
        // The current top slot counts as a whole span away.
        assert_eq!(next_slot_tick(1 << 62, at, TOP), Some(at + RANGE));
        // Nearest wins.
        assert_eq!(next_slot_tick((1 << 63) | (1 << 5), 3, 0), Some(5));
        // Saturates near the end of time.
        assert_eq!(next_slot_tick(1 << 62, u64::MAX - 5, TOP), Some(u64::MAX));
    }
}
