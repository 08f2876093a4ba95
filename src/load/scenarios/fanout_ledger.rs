//! The `fanout` scenario's books: every message sent, and which subscriber
//! received which message, when, how often and in what order.
//!
//! Each message's text starts with its sequence number, so a subscriber's
//! line says which message it is; a count per (subscriber, message) finds
//! what is missing or duplicated, and the highest number each subscriber
//! has seen finds what arrives out of order.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::load::rows::Rows;

/// Every delivery accounted for: missing, duplicated and out-of-order must
/// all be 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deliveries {
    /// Deliveries owed: for each message, the subscribers open when it was
    /// sent and still open at the end.
    pub expected: u64,
    /// `MSG` lines the subscribers received (duplicates included).
    pub delivered: u64,
    /// Owed and never received.
    pub missing: u64,
    /// Received more than once (each extra copy counts).
    pub duplicated: u64,
    /// Received after a later message (each late one counts).
    pub out_of_order: u64,
    /// `MSG` lines whose text does not start with a number that was sent.
    pub unreadable: u64,
    /// `MSG` lines the publisher itself received (the server must skip the
    /// sender).
    pub to_sender: u64,
    /// `OK <n>` with n below the connections open besides the sender when
    /// the `PUB` was sent (or not a number).
    pub ok_short: u64,
}

impl Deliveries {
    /// Whether nothing was lost, doubled, reordered, garbled or misrouted.
    pub fn clean(&self) -> bool {
        self.missing == 0
            && self.duplicated == 0
            && self.out_of_order == 0
            && self.unreadable == 0
            && self.to_sender == 0
            && self.ok_short == 0
    }

    pub(crate) fn rows(&self, t: &mut Rows) {
        t.int("deliveries owed", self.expected);
        t.int("deliveries received", self.delivered);
        t.int("missing", self.missing);
        t.int("duplicated", self.duplicated);
        t.int("out of order", self.out_of_order);
        t.int("unreadable MSG lines", self.unreadable);
        t.int("MSG lines to the sender", self.to_sender);
        t.int("OK counting too few", self.ok_short);
    }
}

/// The books of one run: `subs` subscribers, `msgs` messages at most.
pub(crate) struct Ledger {
    subs: usize,
    msgs: usize,
    /// Receipts per (subscriber, message), saturating.
    counts: Vec<u8>,
    /// Per subscriber, one past the highest message number seen.
    next: Vec<u32>,
    /// When each message was sent.
    pub(crate) sent_at: Vec<Option<Instant>>,
    /// Subscribers open when each message was sent.
    pub(crate) owed: Vec<u32>,
    /// Subscribers that received each message (first copies).
    pub(crate) got: Vec<u32>,
    /// The last first-copy receipt of each message.
    pub(crate) last_at: Vec<Option<Instant>>,
    pub(crate) totals: Deliveries,
}

impl Ledger {
    /// Empty books for `subs` subscribers and `msgs` messages.
    pub(crate) fn new(subs: usize, msgs: usize) -> Ledger {
        Ledger {
            subs,
            msgs,
            counts: vec![0; subs * msgs],
            next: vec![0; subs],
            sent_at: vec![None; msgs],
            owed: vec![0; msgs],
            got: vec![0; msgs],
            last_at: vec![None; msgs],
            totals: Deliveries::default(),
        }
    }

    /// Message `seq` was sent at `at` with `open` subscribers open.
    pub(crate) fn sent(&mut self, seq: usize, at: Instant, open: usize) {
        self.sent_at[seq] = Some(at);
        self.owed[seq] = open as u32;
    }

    /// Whether every subscriber open when `seq` was sent has received it.
    pub(crate) fn complete(&self, seq: usize) -> bool {
        self.sent_at[seq].is_some() && self.got[seq] >= self.owed[seq]
    }

    /// Subscriber `sub` received a `MSG` whose text starts with `seq`;
    /// true when that receipt completes the message.
    pub(crate) fn receive(&mut self, sub: usize, seq: Option<u64>, at: Instant) -> bool {
        self.totals.delivered += 1;
        let seq = match seq.map(|s| s as usize) {
            Some(s) if s < self.msgs && sub < self.subs && self.sent_at[s].is_some() => s,
            _ => {
                self.totals.unreadable += 1;
                return false;
            }
        };
        let count = &mut self.counts[sub * self.msgs + seq];
        *count = count.saturating_add(1);
        if *count > 1 {
            self.totals.duplicated += 1;
            return false;
        }
        let next = &mut self.next[sub];
        if (seq as u32) < *next {
            self.totals.out_of_order += 1;
        } else {
            *next = seq as u32 + 1;
        }
        self.got[seq] += 1;
        self.last_at[seq] = Some(at);
        self.got[seq] == self.owed[seq]
    }

    /// The totals, with what is missing counted over the subscribers for
    /// which `still_open` holds.
    pub(crate) fn totals(&self, still_open: impl Fn(usize) -> bool) -> Deliveries {
        let mut d = self.totals;
        let sent: Vec<usize> = (0..self.msgs)
            .filter(|&s| self.sent_at[s].is_some())
            .collect();
        for sub in (0..self.subs).filter(|&s| still_open(s)) {
            let row = &self.counts[sub * self.msgs..(sub + 1) * self.msgs];
            d.expected += sent.len() as u64;
            d.missing += sent.iter().filter(|&&s| row[s] == 0).count() as u64;
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_missing_duplicated_and_late_messages() {
        let now = Instant::now();
        let mut l = Ledger::new(2, 4);
        for seq in 0..3 {
            l.sent(seq, now, 2);
        }
        // Subscriber 0: 0, 2, 1, 1 (1 is late, then doubled).
        assert!(!l.receive(0, Some(0), now));
        assert!(!l.receive(0, Some(2), now));
        assert!(!l.receive(0, Some(1), now));
        assert!(!l.receive(0, Some(1), now));
        // Subscriber 1: 0 and 1; 2 is missing; 3 was never sent.
        assert!(l.receive(1, Some(0), now));
        assert!(l.receive(1, Some(1), now));
        assert!(!l.receive(1, Some(3), now));
        assert!(!l.receive(1, None, now));
        assert!(l.complete(0) && l.complete(1) && !l.complete(2));
        let d = l.totals(|_| true);
        assert_eq!((d.expected, d.delivered, d.missing), (6, 8, 1));
        assert_eq!((d.duplicated, d.out_of_order, d.unreadable), (1, 1, 2));
        assert!(!d.clean());
        // Counted only over the subscribers still open.
        assert_eq!(l.totals(|s| s == 0).missing, 0);
    }
}
