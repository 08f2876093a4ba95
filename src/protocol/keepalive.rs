//! The declared keep-alive (v1.2, `docs/protocol.md`, "Liveness"): a
//! client's `KEEPALIVE <dur>`, the range the server clamps it into, and the
//! reply's wording. Pure: the handler applies the result.

use std::io::Write;
use std::time::Duration;

/// The keep-alive a client may declare, in whole milliseconds (the DUR
/// syntax has no finer unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeepaliveRange {
    min_ms: u64,
    max_ms: u64,
}

impl Default for KeepaliveRange {
    /// `1s` to `10m`, the standalone server's defaults.
    fn default() -> KeepaliveRange {
        KeepaliveRange {
            min_ms: 1_000,
            max_ms: 600_000,
        }
    }
}

impl KeepaliveRange {
    /// The range `[min, max]`, each rounded down to the millisecond.
    ///
    /// # Panics
    ///
    /// `min` is longer than `max`.
    #[track_caller]
    pub(crate) fn new(min: Duration, max: Duration) -> KeepaliveRange {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let (min_ms, max_ms) = (ms(min), ms(max));
        assert!(
            min_ms <= max_ms,
            "the shortest keep-alive ({min:?}) is longer than the longest ({max:?})"
        );
        KeepaliveRange { min_ms, max_ms }
    }

    /// The shortest keep-alive accepted.
    pub(crate) fn min(&self) -> Duration {
        Duration::from_millis(self.min_ms)
    }

    /// The longest keep-alive accepted.
    pub(crate) fn max(&self) -> Duration {
        Duration::from_millis(self.max_ms)
    }

    /// What the server accepts for a declared `value` (the bytes after
    /// `KEEPALIVE `), in milliseconds: clamped into the range, zero asking
    /// for none and getting the longest. `None` when `value` is not one DUR.
    pub(crate) fn accept(&self, value: &[u8]) -> Option<u64> {
        match parse_millis(value)? {
            0 => Some(self.max_ms),
            ms => Some(ms.clamp(self.min_ms, self.max_ms)),
        }
    }
}

/// Parses one DUR (`250ms`, `5s`, `2m`, or a bare `0`) into milliseconds,
/// saturating: a DUR too long to count is as long as can be. `None` for
/// anything else, spaces and signs included.
pub(crate) fn parse_millis(text: &[u8]) -> Option<u64> {
    if text == b"0" {
        return Some(0);
    }
    let digits = text.iter().take_while(|b| b.is_ascii_digit()).count();
    let (number, unit) = text.split_at(digits);
    let scale = match unit {
        b"ms" => 1,
        b"s" => 1_000,
        b"m" => 60_000,
        _ => return None,
    };
    if number.is_empty() {
        return None;
    }
    let n = number.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    });
    Some(n.saturating_mul(scale))
}

/// Writes `KEEPALIVE <ms>` with the duration in its largest whole unit
/// (`10m`, `2s`, `1500ms`) into `buf`; returns the line, newline included.
pub(crate) fn reply(ms: u64, buf: &mut [u8; 40]) -> &[u8] {
    let (n, unit) = if ms != 0 && ms.is_multiple_of(60_000) {
        (ms / 60_000, "m")
    } else if ms != 0 && ms.is_multiple_of(1_000) {
        (ms / 1_000, "s")
    } else {
        (ms, "ms")
    };
    let mut cursor = &mut buf[..];
    // 10 + 20 digits + 2 + 1 bytes always fit in 40.
    let _ = writeln!(cursor, "KEEPALIVE {n}{unit}");
    let left = cursor.len();
    &buf[..40 - left]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dur_is_digits_and_a_unit_or_a_bare_zero() {
        assert_eq!(parse_millis(b"250ms"), Some(250));
        assert_eq!(parse_millis(b"5s"), Some(5_000));
        assert_eq!(parse_millis(b"2m"), Some(120_000));
        assert_eq!(parse_millis(b"0"), Some(0));
        assert_eq!(parse_millis(b"0s"), Some(0));
        assert_eq!(parse_millis(b"99999999999999999999999m"), Some(u64::MAX));
        for bad in [
            &b""[..],
            b"5",
            b"s",
            b"5 s",
            b" 5s",
            b"5s ",
            b"+5s",
            b"-5s",
            b"1.5s",
            b"5S",
            b"5h",
            b"5s 6s",
            b"00",
        ] {
            assert_eq!(parse_millis(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn declared_values_are_clamped_and_zero_gets_the_longest() {
        let range = KeepaliveRange::default();
        assert_eq!(range.accept(b"30s"), Some(30_000));
        assert_eq!(range.accept(b"100ms"), Some(1_000));
        assert_eq!(range.accept(b"1h"), None);
        assert_eq!(range.accept(b"11m"), Some(600_000));
        assert_eq!(range.accept(b"0"), Some(600_000));
        assert_eq!(range.accept(b"0ms"), Some(600_000));
        assert_eq!(range.accept(b"9999999999999999999999s"), Some(600_000));
    }

    #[test]
    fn the_reply_uses_the_largest_whole_unit() {
        let mut buf = [0; 40];
        assert_eq!(reply(600_000, &mut buf), b"KEEPALIVE 10m\n");
        assert_eq!(reply(2_000, &mut buf), b"KEEPALIVE 2s\n");
        assert_eq!(reply(1_500, &mut buf), b"KEEPALIVE 1500ms\n");
        assert_eq!(reply(90_000, &mut buf), b"KEEPALIVE 90s\n");
        assert_eq!(reply(0, &mut buf), b"KEEPALIVE 0ms\n");
        assert_eq!(
            reply(u64::MAX, &mut buf),
            b"KEEPALIVE 18446744073709551615ms\n"
        );
    }

    #[test]
    #[should_panic(expected = "longer than the longest")]
    fn min_above_max_is_refused() {
        let _ = KeepaliveRange::new(Duration::from_secs(2), Duration::from_secs(1));
    }
}
