//! The binaries' logger: `simple_logger` (UTC timestamps in RFC 3339 form,
//! on stderr), behind a thin wrapper that says which process wrote each
//! line.
//!
//! `2026-11-29T07:30:00.123Z INFO  [vigil] worker 1: listening on 127.0.0.1:7373`
//!
//! With `--workers`, several processes write to the same stderr; each line
//! names its writer (`supervisor`, `worker I`). A single process writes no
//! name, as before workers existed.
//!
//! # One line, one write
//!
//! Lines of several processes must not interleave. std's stderr is
//! unbuffered, and `simple_logger` would write a line's text and its
//! newline to it in two writes, between which another worker's line can
//! land. Its stdout is line-buffered: a whole line leaves in one `write`
//! (atomic on a pipe up to `PIPE_BUF` bytes). So `simple_logger` writes to
//! stdout, and [`init`] points this process's stdout at its stderr: log
//! lines still go to stderr, and nothing else is written to stdout once the
//! flags are parsed (`--help` and `--version` print before).

use log::{LevelFilter, Log, Metadata, Record};
use simple_logger::SimpleLogger;

/// Hands each record on to `simple_logger`, its message prefixed with the
/// process's name.
struct Named {
    inner: SimpleLogger,
    /// `"worker 1: "`, `"supervisor: "` or empty.
    prefix: String,
}

/// Installs the logger for this process: records at or above `level`, each
/// line naming the process `name` if given.
///
/// # Panics
///
/// A logger was installed already.
#[track_caller]
pub fn init(level: LevelFilter, name: Option<&str>) {
    // Should this fail, the lines go to stdout, whole all the same.
    let _ = nix::unistd::dup2_stdout(std::io::stderr());
    let inner = SimpleLogger::new().with_level(level).with_utc_timestamps();
    let prefix = name.map(|name| format!("{name}: ")).unwrap_or_default();
    log::set_max_level(inner.max_level());
    let logger = Box::leak(Box::new(Named { inner, prefix }));
    log::set_logger(logger).expect("the logger is set only once");
}

impl Log for Named {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.inner.enabled(metadata)
    }

    fn log(&self, record: &Record<'_>) {
        if self.prefix.is_empty() {
            return self.inner.log(record);
        }
        self.inner.log(
            &Record::builder()
                .metadata(record.metadata().clone())
                .args(format_args!("{}{}", self.prefix, record.args()))
                .module_path(record.module_path())
                .file(record.file())
                .line(record.line())
                .build(),
        );
    }

    fn flush(&self) {
        self.inner.flush();
    }
}
