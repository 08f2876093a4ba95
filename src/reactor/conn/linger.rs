//! A closing connection's bounds: how long it may take to write what it
//! is owed, how long and how much it may be read after, counted from the
//! moment its close is decided (`docs/protocol.md`, "The close sequence").

use super::after;

/// A closing connection's progress and bounds (`docs/protocol.md`, "The
/// close sequence"). Its reason is decided and counted; what is left is to
/// write what it is owed, send our FIN, and read the peer's input until its
/// FIN, so that closing the socket never turns into a reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Linger {
    /// Give up (close the socket as it is) at this tick. While output is
    /// queued: `linger` after the last write progress. Once our FIN is sent:
    /// the quiet interval after the last byte read, never past `cap`.
    pub(crate) until: u64,
    /// The latest `until` may become once our FIN is sent.
    pub(crate) cap: u64,
    /// Input bytes read and discarded since the close was decided.
    pub(crate) discarded: u32,
    /// Our FIN is sent: everything owed was written.
    pub(crate) write_shut: bool,
    /// The peer's FIN was read: nothing more will arrive.
    pub(crate) input_closed: bool,
}

impl Linger {
    /// A close that began at tick `now`, with `flush` ticks to write what is
    /// queued (renewed by each write progress).
    pub(crate) fn begin(now: u64, flush: u64, input_closed: bool) -> Linger {
        let until = after(now, flush.max(1));
        Linger {
            until,
            cap: until,
            discarded: 0,
            write_shut: false,
            input_closed,
        }
    }

    /// Some queued output was written at tick `now`.
    pub(crate) fn wrote(&mut self, now: u64, flush: u64) {
        if !self.write_shut {
            self.until = after(now, flush.max(1));
        }
    }

    /// Our FIN was sent at tick `now`: lingering lasts at most `total`
    /// ticks, and ends earlier after `quiet` ticks without input.
    pub(crate) fn shut(&mut self, now: u64, total: u64, quiet: u64) {
        self.write_shut = true;
        self.cap = after(now, total.max(1));
        self.until = after(now, quiet.max(1)).min(self.cap);
    }

    /// `n` input bytes were read and discarded at tick `now`. Returns whether
    /// the close may go on (`false`: more than `max_bytes` discarded since
    /// the close was decided). Every byte counts, those that arrive while
    /// output is still owed as well as those after our FIN: a peer that
    /// floods and never reads must not be read at wire speed until write
    /// progress runs out. Only after our FIN does input extend the wait.
    pub(crate) fn discard(&mut self, now: u64, n: usize, quiet: u64, max_bytes: usize) -> bool {
        let total = (self.discarded as usize).saturating_add(n);
        self.discarded = u32::try_from(total).unwrap_or(u32::MAX);
        if self.write_shut {
            self.until = after(now, quiet.max(1)).min(self.cap);
        }
        total <= max_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reactor::conn::{Due, Liveness, TickLimits};

    const LIMITS: TickLimits = super::super::TEST_LIMITS;

    #[test]
    fn a_close_waits_for_write_progress_then_for_quiet() {
        let mut linger = Linger::begin(10, 100, false);
        assert!(linger.discard(20, 96, 10, 4096), "owed output first");
        assert_eq!(linger.until, 111, "input before the FIN extends nothing");
        let close = Liveness::Closing(linger);
        assert_eq!(close.due(110, &LIMITS), Due::At(111));
        assert_eq!(close.due(111, &LIMITS), Due::Abandon);
        linger.wrote(50, 100);
        assert_eq!(linger.until, 151);
        // FIN sent at 60: quiet 10, at most 100.
        linger.shut(60, 100, 10);
        assert_eq!((linger.until, linger.cap), (71, 161));
        linger.wrote(65, 100); // nothing left to write: no effect
        assert_eq!(linger.until, 71);
        assert!(linger.discard(155, 1000, 10, 4096));
        assert_eq!(linger.until, 161, "input never extends past the cap");
        assert!(linger.discard(156, 3000, 10, 4096), "4096 in all");
        assert!(!linger.discard(157, 1, 10, 4096));
    }

    #[test]
    fn a_close_counts_input_while_output_is_owed() {
        // A peer that never reads and floods: its close ends at the byte
        // bound, long before write progress runs out.
        let mut linger = Linger::begin(10, 100, false);
        assert!(linger.discard(11, 4096, 10, 4096));
        assert!(!linger.discard(11, 1, 10, 4096));
        assert!(!linger.write_shut);
    }
}
