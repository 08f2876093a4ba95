//! The DUR syntax of every command line here (`vigil`, `vigil-client`,
//! `vigil-load`, the benchmark's baseline): a whole number with a unit,
//! `ms`, `s` or `m`, or a bare `0`. One file: a module of the library
//! (public as `vigil::load::parse_duration`, feature `load`), and of the
//! `vigil` and `vigil-client` binaries.

use std::time::Duration;

/// The longest DUR accepted: far beyond any sensible timeout, and small
/// enough for every tick count to stay exact.
pub const MAX_DURATION: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// Parses a DUR: a whole number with a unit, `ms`, `s` or `m`; a bare `0` is
/// zero (off).
///
/// # Errors
///
/// No unit, an unknown one, anything but digits before it, a fraction
/// (`1.5s`: say `1500ms`), or more than 30 days: a sentence saying which.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use vigil::load::parse_duration;
///
/// assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
/// assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
/// assert!(parse_duration("5").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const EXPECTED: &str = "expected a whole number with a unit, ms, s or m (250ms, 5s, 2m), or 0";
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    if number.is_empty() {
        return Err(EXPECTED.to_owned());
    }
    let too_long = || {
        format!(
            "longer than the maximum of {}m",
            MAX_DURATION.as_secs() / 60
        )
    };
    if unit.starts_with('.') || unit.starts_with(',') {
        return Err("fractions are not allowed: use a smaller unit (1500ms, not 1.5s)".to_owned());
    }
    let number: u64 = number.parse().map_err(|_| too_long())?;
    let millis = match unit {
        "ms" => Some(number),
        "s" => number.checked_mul(1_000),
        "m" => number.checked_mul(60_000),
        "" => return Err(format!("missing unit: {EXPECTED}")),
        _ => return Err(format!("unknown unit '{unit}': {EXPECTED}")),
    };
    match millis.map(Duration::from_millis) {
        Some(duration) if duration <= MAX_DURATION => Ok(duration),
        _ => Err(too_long()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_have_a_unit_or_are_zero() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("0ms"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("43200m"), Ok(MAX_DURATION));
        for bad in [
            "",
            "5",
            "s",
            "1.5s",
            "-1s",
            "+1s",
            " 5s",
            "5s ",
            "5 s",
            "5h",
            "5S",
            "5sec",
            "1m30s",
            "43201m",
            "99999999999999999999s",
            "18446744073709551615m",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn a_fraction_is_refused_as_a_fraction() {
        for fraction in ["1.5s", "0.5m", "2,5s"] {
            let err = parse_duration(fraction).unwrap_err();
            assert!(
                err.starts_with("fractions are not allowed"),
                "{fraction}: {err}"
            );
        }
    }
}
