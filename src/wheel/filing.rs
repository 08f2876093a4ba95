//! Where entries are filed: a deadline's slot, linking and unlinking in
//! slot lanes, cascading a slot's entries down a level, and the checks of
//! the wheel's structural invariants.

use super::entries::NIL;
use super::level::{
    lane_of, level_for, next_slot_tick, slot_for, Lanes, Level, LANES, LEVELS, SLOTS, TOP,
};
use super::{Wheel, DUE};

impl<T> Wheel<T> {
    /// The earliest occupied slot over all levels: (its start tick, level).
    pub(super) fn next_slot(&self) -> Option<(u64, usize)> {
        let mut best: Option<(u64, usize)> = None;
        for (level, l) in self.levels.iter().enumerate() {
            if let Some(tick) = next_slot_tick(l.occupied, self.elapsed, level) {
                match best {
                    Some((b, _)) if b <= tick => {}
                    _ => best = Some((tick, level)),
                }
            }
        }
        best
    }

    /// Moves time to `tick`, the start of the occupied slot of `level`, and
    /// re-files that slot's entries: due ones to the due list, the rest to
    /// lower levels (or, if still out of range, back to the top level).
    pub(super) fn cascade(&mut self, tick: u64, level: usize) {
        debug_assert!(tick > self.elapsed && tick <= self.now);
        self.cascades += 1;
        self.elapsed = tick;
        let slot = slot_for(tick, level);
        let l = &mut self.levels[level];
        let lanes = std::mem::replace(&mut l.heads[slot], [NIL; LANES]);
        l.occupied &= !(1 << slot);
        self.refile(lanes, level);
    }

    /// Re-files every entry of the detached lists `lanes` (taken from a
    /// slot of `level`), walking the lanes round-robin so that their cache
    /// misses overlap.
    pub(super) fn refile(&mut self, mut lanes: Lanes, level: usize) {
        let mut live = lanes.iter().filter(|&&i| i != NIL).count();
        while live > 0 {
            for cursor in lanes.iter_mut() {
                let index = *cursor;
                if index == NIL {
                    continue;
                }
                *cursor = self.entries.get(index).next;
                if *cursor == NIL {
                    live -= 1;
                }
                let (_, deadline) = self.entries.place(index);
                self.link(index, deadline);
                debug_assert_moved_down(self.entries.place(index).0, level);
            }
        }
    }

    /// Unlinks and returns the head of the next non-empty due lane,
    /// round-robin, so that consecutive pops touch independent chains. Only
    /// called with `due_len > 0`.
    pub(super) fn pop_due(&mut self) -> u32 {
        let lane = loop {
            let lane = self.due_lane;
            self.due_lane = (lane + 1) % LANES;
            if self.due[lane] != NIL {
                break lane;
            }
        };
        let index = self.due[lane];
        let next = self.entries.get(index).next;
        self.due[lane] = next;
        if next != NIL {
            self.entries.get_mut(next).prev = NIL;
        }
        self.due_len -= 1;
        if self.due_len == 0 {
            self.due_min = u64::MAX;
        }
        index
    }

    /// Jumps straight to `now` when it is a whole top-level span or more
    /// past the next top-level slot, which slot-by-slot cascading would
    /// visit again and again (once per 2^36 ticks). Only the top level can be
    /// occupied then (everything below lies before its next slot), so every
    /// top-level entry is re-filed relative to `now`: O(top-level entries)
    /// however far the jump.
    pub(super) fn refile_top(&mut self) {
        debug_assert_only_top_occupied(&self.levels);
        self.cascades += 1;
        self.elapsed = self.now;
        let top = std::mem::replace(&mut self.levels[TOP], Level::new(NIL));
        for lanes in top.heads {
            self.refile(lanes, TOP);
        }
    }

    /// The list a timer due at `deadline` belongs in now: the due list, or
    /// `level * 64 + slot`.
    pub(super) fn loc_for(&self, deadline: u64) -> u16 {
        if deadline <= self.now {
            DUE
        } else {
            let level = level_for(self.elapsed, deadline);
            (level * SLOTS + slot_for(deadline, level)) as u16
        }
    }

    /// Links an unlinked live entry where `deadline` belongs now.
    pub(super) fn link(&mut self, index: u32, deadline: u64) {
        let loc = self.loc_for(deadline);
        if loc == DUE {
            self.due_min = self.due_min.min(deadline);
            self.due_len += 1;
        } else {
            let (level, slot) = (loc as usize / SLOTS, loc as usize % SLOTS);
            debug_assert_well_placed(self.elapsed, deadline, level, slot);
            self.levels[level].occupied |= 1 << slot;
        }
        self.entries.set_loc(index, loc);
        let head = self.head_mut(loc, lane_of(index));
        let old = std::mem::replace(head, index);
        if old != NIL {
            self.entries.get_mut(old).prev = index;
        }
        let entry = self.entries.get_mut(index);
        entry.next = old;
        entry.prev = NIL;
    }

    /// Unlinks a live entry from its list, clearing the slot's bit if the
    /// list becomes empty.
    pub(super) fn unlink(&mut self, index: u32) {
        let (loc, _) = self.entries.place(index);
        let (next, prev) = {
            let e = self.entries.get(index);
            (e.next, e.prev)
        };
        if next != NIL {
            self.entries.get_mut(next).prev = prev;
        }
        if prev != NIL {
            self.entries.get_mut(prev).next = next;
        } else {
            *self.head_mut(loc, lane_of(index)) = next;
        }
        if loc == DUE {
            self.due_len -= 1;
            if self.due_len == 0 {
                self.due_min = u64::MAX;
            }
        } else if next == NIL && prev == NIL {
            let (level, slot) = (loc as usize / SLOTS, loc as usize % SLOTS);
            if self.levels[level].heads[slot].iter().all(|&h| h == NIL) {
                self.levels[level].occupied &= !(1 << slot);
            }
        }
    }

    pub(super) fn head_mut(&mut self, loc: u16, lane: usize) -> &mut u32 {
        if loc == DUE {
            &mut self.due[lane]
        } else {
            let (level, slot) = (loc as usize / SLOTS, loc as usize % SLOTS);
            &mut self.levels[level].heads[slot][lane]
        }
    }

    /// Checks every structural invariant (O(n)); for tests.
    #[cfg(test)]
    pub(super) fn assert_invariants(&self) {
        assert!(self.elapsed <= self.now);
        let walk = |head: u32, loc: u16| -> usize {
            let mut count = 0;
            let (mut index, mut prev) = (head, NIL);
            while index != NIL {
                let e = self.entries.get(index);
                assert_eq!(e.prev, prev, "broken back link");
                let (l, deadline) = self.entries.place(index);
                assert_eq!(l, loc, "entry in the wrong list");
                assert_eq!(lane_of(head), lane_of(index), "entry in the wrong lane");
                if loc == DUE {
                    assert!(deadline <= self.now);
                    assert!(self.due_min <= deadline);
                } else {
                    let (level, slot) = (loc as usize / SLOTS, loc as usize % SLOTS);
                    debug_assert_well_placed(self.elapsed, deadline, level, slot);
                }
                count += 1;
                prev = index;
                index = e.next;
            }
            count
        };
        let due: usize = self.due.iter().map(|&lane| walk(lane, DUE)).sum();
        assert_eq!(due, self.due_len);
        let mut count = due;
        for (level, l) in self.levels.iter().enumerate() {
            for slot in 0..SLOTS {
                let bit = l.occupied & (1 << slot) != 0;
                let used = l.heads[slot].iter().any(|&h| h != NIL);
                assert_eq!(bit, used, "bitmap out of sync");
                for lane in l.heads[slot] {
                    count += walk(lane, (level * SLOTS + slot) as u16);
                }
            }
        }
        assert_eq!(count, self.len());
    }
}

/// An entry filed in `level`/`slot` at `elapsed` must be ahead of `elapsed`
/// in exactly the level and slot the slot arithmetic gives.
fn debug_assert_well_placed(elapsed: u64, deadline: u64, level: usize, slot: usize) {
    debug_assert!(deadline > elapsed, "filed entry is not in the future");
    debug_assert_eq!(level, level_for(elapsed, deadline), "wrong level");
    debug_assert_eq!(slot, slot_for(deadline, level), "wrong slot");
}

/// Nothing may sit below the top level when the top level is next due.
fn debug_assert_only_top_occupied(levels: &[Level; LEVELS]) {
    debug_assert!(
        levels[..TOP].iter().all(|l| l.occupied == 0),
        "lower levels occupied before the next top-level slot"
    );
}

/// A cascaded entry must end up due or strictly lower, unless it was out of
/// range at the top level.
fn debug_assert_moved_down(loc: u16, from_level: usize) {
    debug_assert!(
        loc == DUE || (loc as usize / SLOTS) < from_level || from_level == TOP,
        "cascade did not move an entry down"
    );
}
