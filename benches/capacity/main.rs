//! Connection-capacity benchmark: vigil against a tokio baseline and the
//! floor (a bare mio loop that only answers `PING`s).
//!
//! `cargo bench --bench capacity` (add `-- --quick` for a fast check, or
//! `-- --report-only` to print the table and plot again from the last run's
//! JSON files; with `--quick` the sizes in the table are the quick ones).
//! `-- --fanout` runs the fan-out benchmark instead (`fanout.rs`: vigil's
//! `examples/fanout`, the baseline and the floor in fan-out mode, 19,000
//! subscribers; with `--quick`, 2,000); add `--fanout-bus` for the same
//! subscribers over 4 instances sharing one `redis-server` (`bus.rs`).
//! `VIGIL_EXTRA_FLAGS="--metrics 127.0.0.1:0"` adds flags to every vigil
//! server (here: to measure what serving metrics costs). The full run ends
//! with the box scenario at 100,000 connections (`scripts/box.sh`, several
//! vigil workers and load processes); `-- --box C` runs it at C (also with
//! `--quick`), `-- --box 0` skips it.
//!
//! Starts each server in turn on `127.0.0.1:0` (vigil, then the baseline
//! and the floor, which are this same executable re-run with
//! `--serve-baseline` and `--serve-floor`), a fresh server per scenario,
//! runs `vigil-load` for every scenario against it with `--server-pid`,
//! server and load client pinned to different CPUs, and prints one table
//! with every server, vigil's ratio to each other one and whether vigil met
//! each target. Raw JSON, the table and an SVG plot of
//! reap lateness go to `target/capacity/` (`target/capacity-quick/` with
//! `--quick`).
//!
//! One file a job: `plan` (the scenarios, their flags and sizes),
//! `supervise` (processes), `figures` (which field of the reports each row
//! shows, and its target), `table` (rounds, verdicts, Markdown), `plot` (the
//! SVG), `machine` (what it runs on).

#[path = "../baseline/floor.rs"]
mod floor;
#[path = "../baseline/tokio_server.rs"]
mod tokio_server;

mod box_scale;
mod bus;
mod fanout;
mod fanout_bus;
mod fanout_table;
mod figures;
mod machine;
mod plan;
mod plot;
mod supervise;
mod table;

use std::path::Path;

use plan::{ServerKind, Sizes, CASES, REAP, SOURCES};
use plot::Curve;
use table::Results;

/// Rounds of every scenario against every server (`--quick`: one).
const ROUNDS: usize = 3;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--serve-baseline") => {
            let cfg = tokio_server::Config::parse(&args[1..]);
            return serve_as("baseline", cfg, tokio_server::serve);
        }
        Some("--serve-floor") => {
            return serve_as("floor", floor::Config::parse(&args[1..]), floor::serve);
        }
        _ => {}
    }
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this
    // executable without it, and must not start a five-minute benchmark.
    if !args.iter().any(|a| a == "--bench" || a == "--report-only") {
        eprintln!("capacity: not run under `cargo test`; use `cargo bench --bench capacity`");
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let sizes = if quick { Sizes::QUICK } else { Sizes::FULL };
    // `--report-only`: no runs, the table and plot again from the JSON files
    // of the last run.
    let report_only = args.iter().any(|a| a == "--report-only");
    // Quick runs keep their files apart, so they never mix with a full run's.
    let name = if quick { "capacity-quick" } else { "capacity" };
    let out = machine::out_dir(supervise::VIGIL, name);
    std::fs::create_dir_all(&out).expect("create target/capacity");
    let pin = Path::new(supervise::TASKSET).exists()
        && std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2;
    let machine = machine::describe();
    eprintln!(
        "capacity: {machine}; pinning: {pin}; output in {}",
        out.display()
    );
    if args.iter().any(|a| a == "--fanout") {
        let plan = fanout::Plan::from_args(&args, quick);
        println!("\n{}", fanout::run(&plan, &out, pin, report_only, &machine));
        return;
    }

    // Rounds alternate the servers so that noise from the rest of the
    // machine falls on both; the table shows the median of the rounds.
    let rounds = if quick { 1 } else { ROUNDS };
    let mut results: Vec<Results> = ServerKind::ALL.iter().map(|_| Results::default()).collect();
    for round in 0..rounds {
        if !report_only {
            eprintln!("capacity: round {} of {rounds}", round + 1);
        }
        for (kind, results) in ServerKind::ALL.into_iter().zip(&mut results) {
            for case in CASES.into_iter().filter(|c| kind.runs(c)) {
                let json = out.join(format!("{}-{}-{round}.json", kind.name(), case.name));
                let report = if report_only {
                    supervise::read_report(&json)
                } else {
                    supervise::run_case(kind, case, &sizes, pin, &json)
                };
                results.add(case, report);
            }
        }
    }
    let rows = figures::rows(&results, &sizes);
    let report = format!(
        "{machine}\nsizes: {}; load from {SOURCES} source addresses; median of {rounds} round(s)\n\n{}",
        sizes.describe(),
        table::render(&rows, &results)
    );
    println!("\n{report}");
    std::fs::write(out.join("table.md"), &report).expect("write table");
    let samples: Vec<Vec<f64>> = results.iter().map(|r| r.late_samples_ms(&REAP)).collect();
    let colors = ["#1f77b4", "#ff7f0e", "#2ca02c"];
    let curves: Vec<Curve<'_>> = ServerKind::ALL
        .iter()
        .zip(&samples)
        .zip(colors)
        .filter(|((kind, _), _)| kind.runs(&REAP))
        .map(|((kind, samples), color)| Curve {
            name: kind.heading(),
            samples,
            color,
        })
        .collect();
    let target = REAP.late_target_ms().unwrap_or(0.0);
    std::fs::write(
        out.join("reap-lateness.svg"),
        plot::lateness_svg(&curves, target),
    )
    .expect("write svg");
    eprintln!(
        "capacity: wrote {}/table.md and reap-lateness.svg",
        out.display()
    );
    // The box scenario: past one process's descriptor limit, with workers.
    let box_size = match args.iter().position(|a| a == "--box") {
        Some(i) => args.get(i + 1).and_then(|n| n.parse().ok()),
        None if quick || report_only => None,
        None => Some(box_scale::FULL),
    };
    if let Some(conns) = box_size.filter(|&n| n > 0) {
        println!("\n{}", box_scale::run(conns, &out));
    }
}

/// `--serve-NAME FLAGS`: this executable as one of the servers vigil is
/// compared with; exits 2 for bad flags, 1 if serving fails.
fn serve_as<C>(name: &str, cfg: Result<C, String>, serve: fn(C) -> std::io::Result<()>) {
    let cfg = cfg.unwrap_or_else(|e| {
        eprintln!("{name}: {e}");
        std::process::exit(2)
    });
    if let Err(e) = serve(cfg) {
        eprintln!("{name}: {e}");
        std::process::exit(1);
    }
}
