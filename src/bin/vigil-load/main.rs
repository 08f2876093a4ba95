//! `vigil-load`: a load client for the vigil heartbeat line protocol.
//!
//! One process, one thread, one mio `Poll`: it opens and holds many
//! connections and runs one scenario (`hold`, `heartbeat`, `reap`,
//! `keepalive`, `storm`, `rolling`, `fanout`), printing a table on stdout and, with
//! `--json FILE`, every raw figure. With `--server-pid` it also reads the server's memory, CPU
//! time, context switches and open files from `/proc`. The machinery is the
//! library's [`vigil::load`].
#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use log::{LevelFilter, Log, Metadata, Record};
use vigil::load::{proc_stats, Options};

/// Load client for the vigil heartbeat line protocol.
///
/// Opens and holds many TCP connections from one single-threaded mio loop,
/// runs one scenario, prints a table on stdout (progress on stderr) and, with
/// `--json FILE`, writes every raw figure.
#[derive(Debug, Parser)]
#[command(name = "vigil-load", version)]
struct Args {
    #[command(flatten)]
    opts: Options,
}

/// Shows the library's progress lines (`log` records at `info` and above)
/// on stderr as they are, one write a line: the table goes to stdout.
struct Progress;

impl Log for Progress {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            let line = format!("{}\n", record.args());
            // Nowhere to report a failed progress line.
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
    }

    fn flush(&self) {}
}

fn main() -> ExitCode {
    let args = Args::parse().opts;
    if log::set_logger(&Progress).is_ok() {
        log::set_max_level(LevelFilter::Info);
    }
    if let Some(limit) = proc_stats::own_fd_limit() {
        let need = args.conns.div_ceil(args.procs.max(1)) as u64 + proc_stats::own_fds() + 8;
        if need > limit {
            eprintln!(
                "vigil-load: {} connections need about {need} files; this process may open {limit}",
                args.conns
            );
        }
    }
    let report = match vigil::load::run(&args) {
        Ok(report) => report,
        Err(err) => {
            eprintln!("vigil-load: {err}");
            return ExitCode::FAILURE;
        }
    };
    let title = format!(
        "vigil-load {} against {} ({})",
        args.scenario.name(),
        args.addr,
        args.label
    );
    print!("{}", report.table(&title));
    if let Some(path) = &args.json {
        if let Err(err) = report.write_json(path) {
            eprintln!("vigil-load: cannot write {}: {err}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
