//! The input rate limit ([`Config::max_input_rate`](crate::Config::max_input_rate)):
//! each connection has a bucket of at most one second's worth of bytes,
//! full at accept and refilled by the tick, that every byte read draws on.
//!
//! The refill is arithmetic at read time, from the ticks since the
//! connection's last read (its `last_activity`): no timer, no clock reading
//! of its own, no syscall, no allocation. A connection pays one `u32` for
//! its bucket, in what was `Timing`'s padding; with no limit, a read pays one
//! predictable branch.

use super::TickLimits;

/// Draws `n` bytes from a bucket holding `tokens`, after refilling it for
/// `elapsed` ticks at `limits.input_rate` bytes a second, never past a full
/// bucket (`input_rate` bytes). Returns `false`, emptying the bucket, when
/// `n` is more than it holds: a flood.
pub(crate) fn draw(tokens: &mut u32, elapsed: u64, n: usize, limits: &TickLimits) -> bool {
    const SECOND: u128 = 1_000_000_000;
    let rate = u128::from(limits.input_rate);
    // u128: neither product can overflow (the second is below 2^94).
    let nanos = u128::from(elapsed) * u128::from(limits.tick_nanos);
    let held = if nanos >= SECOND {
        rate
    } else {
        // Whole bytes earned: the fraction of a byte is lost, at most one
        // byte a read, against the client.
        (u128::from(*tokens) + nanos * rate / SECOND).min(rate)
    };
    match held.checked_sub(n as u128) {
        Some(left) => {
            *tokens = u32::try_from(left).unwrap_or(u32::MAX);
            true
        }
        None => {
            *tokens = 0;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::clock::Clock;
    use crate::reactor::config::Config;
    use crate::reactor::conn::Timing;

    const LIMITS: TickLimits = TickLimits {
        idle: 0,
        lifetime: 0,
        probe: 0,
        linger: 100,
        linger_quiet: 10,
        input_rate: 1000,
        tick_nanos: 10_000_000,
    };

    #[test]
    fn the_bucket_refills_by_the_tick_up_to_one_second() {
        // 1000 bytes a second, 10 ms ticks: 10 bytes a tick.
        let limits = LIMITS;
        let mut t = Timing::accepted(0, &limits);
        assert_eq!(t.tokens, 1000, "full at accept");
        assert!(t.draw(0, 990, &limits));
        t.activity(0);
        assert!(t.draw(5, 60, &limits), "10 left, 50 earned");
        t.activity(5);
        assert_eq!(t.tokens, 0);
        assert!(!t.draw(6, 11, &limits), "10 earned, 11 asked");
        t.activity(6);
        // Long silence: never more than a second's worth.
        assert!(!t.draw(10_000, 1001, &limits));
        t.activity(10_000);
        assert!(t.draw(20_000, 1000, &limits));
    }

    #[test]
    fn huge_figures_saturate_instead_of_overflowing() {
        let limits = TickLimits {
            input_rate: u32::MAX,
            tick_nanos: u64::MAX,
            ..LIMITS
        };
        let mut tokens = 0;
        assert!(draw(&mut tokens, u64::MAX, u32::MAX as usize, &limits));
        assert_eq!(tokens, 0);
        assert!(!draw(&mut tokens, 0, 1, &limits));
    }

    #[test]
    fn an_input_rate_of_zero_is_refused() {
        let clock = Clock::new(Duration::from_millis(10));
        let mut config = Config {
            max_input_rate: Some(0),
            ..Config::default()
        };
        assert!(TickLimits::new(&config, &clock).is_err());
        config.max_input_rate = Some(5000);
        let limits = TickLimits::new(&config, &clock).unwrap();
        assert_eq!((limits.input_rate, limits.tick_nanos), (5000, 10_000_000));
    }
}
