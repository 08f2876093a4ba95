//! The server's logger: one line per record on stderr, saying which process
//! wrote it.
//!
//! `2026-11-29T07:30:00.123Z INFO  [vigil] worker 1: listening on 127.0.0.1:7373`
//!
//! With `--workers`, several processes write to the same stderr; each line
//! names its writer (`supervisor`, `worker I`). A single process writes no
//! name, as before workers existed. A line is one `write` of a whole
//! buffer, so lines from different processes do not interleave (stderr is
//! unbuffered and pipes write up to `PIPE_BUF` bytes atomically).

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use log::{LevelFilter, Log, Metadata, Record};

/// Writes records at or above a level to stderr, prefixed with a name.
#[derive(Debug)]
struct Logger {
    level: LevelFilter,
    /// `"worker 1: "`, `"supervisor: "` or empty.
    prefix: String,
}

/// Installs the logger for this process.
///
/// # Panics
///
/// A logger was installed already.
#[track_caller]
pub fn init(level: LevelFilter, name: Option<&str>) {
    let prefix = name.map(|name| format!("{name}: ")).unwrap_or_default();
    let logger = Box::leak(Box::new(Logger { level, prefix }));
    log::set_logger(logger).expect("the logger is set only once");
    log::set_max_level(level);
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= self.level
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format!(
            "{} {:<5} [{}] {}{}\n",
            Timestamp(SystemTime::now()),
            record.level(),
            record.target(),
            self.prefix,
            record.args()
        );
        // Nowhere to report a failed log write.
        let _ = std::io::stderr().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// A UTC time as RFC 3339 with milliseconds: `2026-11-29T07:30:00.123Z`.
struct Timestamp(SystemTime);

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let since = self.0.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        let (year, month, day) = civil_from_days(secs / 86_400);
        let rem = secs % 86_400;
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            rem / 3600,
            rem / 60 % 60,
            rem % 60,
            since.subsec_millis()
        )
    }
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, for days after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_match_known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(59), (1970, 3, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_421), (2025, 11, 29));
    }

    #[test]
    fn timestamps_are_rfc3339_with_milliseconds() {
        let t = UNIX_EPOCH + Duration::from_millis(1_764_401_400_123);
        assert_eq!(Timestamp(t).to_string(), "2025-11-29T07:30:00.123Z");
    }
}
