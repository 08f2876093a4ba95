//! `vigil-load`: a load client for the vigil heartbeat line protocol.
//!
//! One process, one thread, one mio `Poll`: it opens and holds many
//! connections and runs one scenario (`hold`, `heartbeat`, `reap`,
//! `keepalive`), printing a table on stdout and, with `--json FILE`, every
//! raw figure. With `--server-pid` it also reads the server's memory, CPU
//! time, context switches and open files from `/proc`. It uses nothing of
//! the vigil library: it is a plain client of the wire protocol
//! (`docs/protocol.md`).
#![forbid(unsafe_code)]

mod args;
mod conn;
/// The DUR syntax, shared with the server's and the client's flags.
#[path = "../../duration.rs"]
mod duration;
mod multi;
mod proc_stats;
mod report;
mod scenarios;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = args::Args::parse();
    if let Some(limit) = proc_stats::own_fd_limit() {
        let need = args.conns.div_ceil(args.procs.max(1)) as u64 + proc_stats::own_fds() + 8;
        if need > limit {
            eprintln!(
                "vigil-load: {} connections need about {need} files; this process may open {limit}",
                args.conns
            );
        }
    }
    let result = if args.procs > 1 {
        multi::run(&args)
    } else {
        scenarios::run(&args)
    };
    let report = match result {
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
