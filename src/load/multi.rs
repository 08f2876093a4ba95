//! `--procs P`: the connections split over P load processes.
//!
//! Each process is this program re-run with its share of `--conns` and
//! `--pending` and its own JSON file; the parent watches the server through
//! `/proc` while they run and adds their reports up
//! ([`Figures::absorb`](super::Figures)).

use std::io;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::options::Options;
use super::proc_stats;
use super::report::{Procs, Report, WholeRun};

struct Kid {
    child: Child,
    json: PathBuf,
}

impl Drop for Kid {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.json);
    }
}

/// Runs the scenario in `args.procs` processes of the program `exe` (which
/// must be `vigil-load`) and adds their reports up.
pub(crate) fn run(args: &Options, exe: &std::path::Path) -> io::Result<Report> {
    let procs = args.procs.max(1);
    let before = args.server_pid.and_then(proc_stats::sample);
    let mut kids = Vec::with_capacity(procs);
    for i in 0..procs {
        let json = std::env::temp_dir().join(format!("vigil-load-{}-{i}.json", std::process::id()));
        let child_args = Options {
            conns: args.conns / procs + usize::from(i < args.conns % procs),
            pending: (args.pending / procs).max(1),
            server_pid: None,
            json: Some(json.clone()),
            label: format!("{}#{i}", args.label),
            procs: 1,
            ..args.clone()
        };
        let child = Command::new(exe)
            .args(child_args.to_args())
            .stdout(Stdio::null())
            .spawn()?;
        kids.push(Kid { child, json });
    }
    // Watch the server while they run; every child bounds its own time, and
    // this bounds them all once more.
    let limit = args.connect_timeout
        + args.duration
        + args.idle_timeout
        + args.grace * 2
        + Duration::from_secs(30);
    let end = Instant::now() + limit;
    let (mut peak_rss, mut peak_fds) = (0, 0);
    loop {
        if let Some(s) = args.server_pid.and_then(proc_stats::sample) {
            peak_rss = peak_rss.max(s.rss_bytes);
            peak_fds = peak_fds.max(s.fds);
        }
        let mut running = 0;
        for kid in &mut kids {
            if let Ok(None) = kid.child.try_wait() {
                running += 1;
            }
        }
        if running == 0 || Instant::now() > end {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let after = args.server_pid.and_then(proc_stats::sample);
    let parts: Vec<Report> = kids
        .iter()
        .filter_map(|k| Report::read_json(&k.json).ok())
        .collect();
    drop(kids);

    let mut parts = parts.into_iter();
    let Some(mut report) = parts.next() else {
        return Err(io::Error::other(format!(
            "none of the {procs} load processes left a report"
        )));
    };
    let mut reported = 1;
    for part in parts {
        if report.figures.absorb(&part.figures) {
            reported += 1;
            report.notes.extend(part.notes);
        }
    }
    report.label.clone_from(&args.label);
    let established = report.figures.opening().established;
    report.procs = Some(Procs {
        procs: procs as u64,
        reported,
        server: before.zip(after).map(|(b, a)| WholeRun {
            rss_before: b.rss_bytes,
            rss_peak: peak_rss,
            rss_per_conn: (peak_rss as f64 - b.rss_bytes as f64) / established.max(1) as f64,
            fds_peak: peak_fds,
            cpu: a.cpu_since(&b),
        }),
    });
    // The processes say the same things: each once, in the first's order.
    let mut seen = std::collections::HashSet::new();
    report.notes.retain(|n| seen.insert(n.clone()));
    if reported < procs as u64 {
        report.notes.push(format!(
            "{} load processes left no report",
            procs as u64 - reported
        ));
    }
    report.notes.push(format!(
        "{procs} load processes: counts and rates summed, times and latencies the worst process's, reap lateness from every sample"
    ));
    report.notes.push(
        "per-process phases are not synchronised: server wakeups are not measured with --procs"
            .into(),
    );
    Ok(report)
}
