//! Slab-like storage for timer entries: a `Vec` with an intrusive free list,
//! linked by `u32` indices (no pointers, no `unsafe`, no allocation per insert
//! once the `Vec` has grown).
//!
//! Every entry, live or free, keeps a `u32` generation that changes each time
//! the entry is reused, so a key naming an earlier occupant is refused.
//! A key can only be mistaken for a later timer after its index has been
//! reused 2^32 times while the key is held.
//!
//! For `T = u64` an entry is 32 bytes: `next` and `prev` (4 + 4), then the
//! 24-byte [`State`] (tag, 2-byte location and 4-byte generation share the
//! first 8 bytes; deadline 8; value 8).

/// "No entry": end of a list.
pub(crate) const NIL: u32 = u32::MAX;

/// One storage cell: list links plus the timer (or the free marker).
#[derive(Debug)]
pub(crate) struct Entry<T> {
    /// Next entry in the same slot list (or next free cell when vacant).
    pub(crate) next: u32,
    /// Previous entry in the same slot list (unused when vacant).
    pub(crate) prev: u32,
    pub(crate) state: State<T>,
}

/// A storage cell's contents. The fields sit directly in the variants (not
/// in a nested struct) so the tag shares its word with `loc` and
/// `generation`.
#[derive(Debug)]
pub(crate) enum State<T> {
    Occupied {
        /// Where the entry is linked: `level * 64 + slot`, or `PENDING`.
        loc: u16,
        generation: u32,
        deadline: u64,
        value: T,
    },
    Vacant {
        generation: u32,
    },
}

/// Vec-backed storage with a free list threaded through `Entry::next`.
#[derive(Debug)]
pub(crate) struct Entries<T> {
    cells: Vec<Entry<T>>,
    free: u32,
    live: usize,
}

impl<T> Entries<T> {
    pub(crate) fn with_capacity(n: usize) -> Entries<T> {
        Entries {
            cells: Vec::with_capacity(n),
            free: NIL,
            live: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.live
    }

    /// Cells allocated (live + free + spare `Vec` capacity).
    pub(crate) fn capacity(&self) -> usize {
        self.cells.capacity()
    }

    /// Stores a new unlinked entry; returns its index and generation.
    /// Panics past `u32::MAX - 1` live entries, at the caller's location
    /// (`Wheel::insert`'s caller).
    #[track_caller]
    pub(crate) fn alloc(&mut self, loc: u16, deadline: u64, value: T) -> (u32, u32) {
        self.live += 1;
        if self.free != NIL {
            let index = self.free;
            let cell = &mut self.cells[index as usize];
            let State::Vacant { generation } = cell.state else {
                unreachable!("free list points at a live entry");
            };
            // Never 0: keys keep a niche, so `Option<TimerKey>` is 8 bytes.
            let generation = match generation.wrapping_add(1) {
                0 => 1,
                g => g,
            };
            self.free = cell.next;
            cell.next = NIL;
            cell.prev = NIL;
            cell.state = State::Occupied {
                loc,
                generation,
                deadline,
                value,
            };
            (index, generation)
        } else {
            let index = u32::try_from(self.cells.len())
                .ok()
                .filter(|&i| i != NIL)
                .expect("timer wheel: more than u32::MAX - 1 live timers");
            self.cells.push(Entry {
                next: NIL,
                prev: NIL,
                state: State::Occupied {
                    loc,
                    generation: 1,
                    deadline,
                    value,
                },
            });
            (index, 1)
        }
    }

    /// Frees an (already unlinked) live entry and returns its generation
    /// and value.
    pub(crate) fn free(&mut self, index: u32) -> (u32, T) {
        let cell = &mut self.cells[index as usize];
        let generation = match cell.state {
            State::Occupied { generation, .. } => generation,
            State::Vacant { .. } => unreachable!("freeing a vacant entry"),
        };
        let old = std::mem::replace(&mut cell.state, State::Vacant { generation });
        cell.next = self.free;
        cell.prev = NIL;
        self.free = index;
        self.live -= 1;
        match old {
            State::Occupied { value, .. } => (generation, value),
            State::Vacant { .. } => unreachable!(),
        }
    }

    /// The live entry `index` if its generation is `generation`.
    pub(crate) fn live(&self, index: u32, generation: u32) -> Option<&Entry<T>> {
        let cell = self.cells.get(index as usize)?;
        match cell.state {
            State::Occupied { generation: g, .. } if g == generation => Some(cell),
            _ => None,
        }
    }

    /// Mutable form of [`Entries::live`].
    pub(crate) fn live_mut(&mut self, index: u32, generation: u32) -> Option<&mut Entry<T>> {
        let cell = self.cells.get_mut(index as usize)?;
        match cell.state {
            State::Occupied { generation: g, .. } if g == generation => Some(cell),
            _ => None,
        }
    }

    pub(crate) fn get(&self, index: u32) -> &Entry<T> {
        &self.cells[index as usize]
    }

    pub(crate) fn get_mut(&mut self, index: u32) -> &mut Entry<T> {
        &mut self.cells[index as usize]
    }

    /// `(loc, deadline)` of a live entry.
    pub(crate) fn place(&self, index: u32) -> (u16, u64) {
        match self.cells[index as usize].state {
            State::Occupied { loc, deadline, .. } => (loc, deadline),
            State::Vacant { .. } => unreachable!("linked entry is vacant"),
        }
    }

    /// Sets where a live entry is linked.
    pub(crate) fn set_loc(&mut self, index: u32, to: u16) {
        match &mut self.cells[index as usize].state {
            State::Occupied { loc, .. } => *loc = to,
            State::Vacant { .. } => unreachable!("linked entry is vacant"),
        }
    }
}

impl<T> Entry<T> {
    pub(crate) fn deadline(&self) -> u64 {
        match self.state {
            State::Occupied { deadline, .. } => deadline,
            State::Vacant { .. } => unreachable!("vacant entry has no deadline"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_for_u64_is_32_bytes() {
        assert_eq!(std::mem::size_of::<Entry<u64>>(), 32);
    }

    #[test]
    fn free_cells_are_reused_with_a_new_generation() {
        let mut e = Entries::with_capacity(0);
        let (a, ga) = e.alloc(0, 5, 'a');
        assert_eq!(e.free(a), (ga, 'a'));
        assert!(e.live(a, ga).is_none());
        let (b, gb) = e.alloc(0, 6, 'b');
        assert_eq!(a, b);
        assert_ne!(ga, gb);
        assert!(e.live(b, gb).is_some());
        assert!(e.live(b, ga).is_none());
        assert!(e.live(7, 0).is_none());
        assert_eq!(e.len(), 1);
    }
}
