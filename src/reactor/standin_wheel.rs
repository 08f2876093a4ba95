//! TEMPORARY stand-in for crate::wheel until it lands (BTreeMap). Delete me.
#![allow(missing_docs, dead_code, clippy::len_without_is_empty)]

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerKey {
    index: u32,
    generation: u32,
}

#[derive(Debug)]
pub struct Wheel<T> {
    map: BTreeMap<(u64, u64), (TimerKey, T)>,
    by_key: std::collections::HashMap<TimerKey, (u64, u64)>,
    seq: u64,
    now: u64,
}
impl<T> Default for Wheel<T> {
    fn default() -> Self {
        Self::new()
    }
}
impl<T> Wheel<T> {
    pub fn new() -> Self {
        Wheel {
            map: BTreeMap::new(),
            by_key: Default::default(),
            seq: 0,
            now: 0,
        }
    }
    pub fn insert(&mut self, deadline: u64, value: T) -> TimerKey {
        self.seq += 1;
        let key = TimerKey {
            index: self.seq as u32,
            generation: (self.seq >> 32) as u32,
        };
        self.map.insert((deadline, self.seq), (key, value));
        self.by_key.insert(key, (deadline, self.seq));
        key
    }
    pub fn reset(&mut self, key: TimerKey, deadline: u64) -> bool {
        let Some(pos) = self.by_key.remove(&key) else {
            return false;
        };
        let v = self.map.remove(&pos).unwrap();
        self.map.insert((deadline, pos.1), v);
        self.by_key.insert(key, (deadline, pos.1));
        true
    }
    pub fn cancel(&mut self, key: TimerKey) -> Option<T> {
        let pos = self.by_key.remove(&key)?;
        self.map.remove(&pos).map(|v| v.1)
    }
    pub fn deadline(&self, key: TimerKey) -> Option<u64> {
        self.by_key.get(&key).map(|p| p.0)
    }
    pub fn next_deadline(&self) -> Option<u64> {
        self.map.keys().next().map(|k| k.0)
    }
    pub fn pop_expired(&mut self, now: u64) -> Option<(TimerKey, T)> {
        self.now = self.now.max(now);
        let (&pos, _) = self.map.iter().next()?;
        if pos.0 > self.now {
            return None;
        }
        let (key, v) = self.map.remove(&pos).unwrap();
        self.by_key.remove(&key);
        Some((key, v))
    }
    pub fn len(&self) -> usize {
        self.map.len()
    }
}
