//! What the line protocol writes into its log lines: a peer's address and
//! the periodic counters line.

use std::fmt;

use crate::reactor::stats::{CloseReason, Stats};

/// A peer's address in a log line; `unknown` once the socket has lost it
/// (a reset). Behind a proxy this is the proxy's: the client's is in the
/// connection's `PROXY from` line.
pub(crate) struct Peer(pub(crate) Option<std::net::SocketAddr>);

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(addr) => write!(f, "{addr}"),
            None => f.write_str("unknown"),
        }
    }
}

/// The periodic counters line: `open 3 (peak 10), accepted 12, closed 9
/// (idle 7, quit 2)`.
pub(crate) struct Counters<'a>(pub(crate) &'a Stats);

impl fmt::Display for Counters<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stats = self.0;
        write!(
            f,
            "open {} (peak {}), accepted {}, closed {}",
            stats.open,
            stats.peak_open,
            stats.accepted,
            stats.closed_total()
        )?;
        let mut separator = " (";
        for reason in CloseReason::ALL {
            let count = stats.closed(reason);
            if count > 0 {
                write!(f, "{separator}{reason} {count}")?;
                separator = ", ";
            }
        }
        if separator == ", " {
            f.write_str(")")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_line_names_only_reasons_seen() {
        let mut stats = Stats::default();
        assert_eq!(
            Counters(&stats).to_string(),
            "open 0 (peak 0), accepted 0, closed 0"
        );
        stats.accepted = 12;
        stats.open = 3;
        stats.peak_open = 10;
        for reason in [CloseReason::Idle, CloseReason::Quit, CloseReason::Idle] {
            stats.count_close(reason);
        }
        assert_eq!(
            Counters(&stats).to_string(),
            "open 3 (peak 10), accepted 12, closed 3 (idle 2, quit 1)"
        );
    }
}
