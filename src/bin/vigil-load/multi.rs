//! `--procs P`: the connections split over P load processes.
//!
//! Each process is this program re-run with its share of `--conns` and
//! `--pending` and its own JSON file; the parent watches the server through
//! `/proc` while they run and adds their figures up.

use std::io;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::args::Args;
use crate::proc_stats;
use crate::report::Report;
use crate::scenarios::{quantile, sort};

/// Figures summed over the processes: counts, and rates of processes that
/// ran at the same time.
const SUMMED: [(&str, &str); 19] = [
    ("conns_target", "connections asked"),
    ("established", "connections established"),
    ("connect_failed", "connects failed"),
    ("connect_timed_out", "connects timed out"),
    ("connect_rate", "connect rate (all, summed)"),
    (
        "connect_rate_first_10k",
        "connect rate (first 10,000 each, summed)",
    ),
    ("closed_during_open", "closed by server while opening"),
    ("closed_by_server", "closed by server"),
    ("held_open", "still open at the end"),
    ("still_open", "still open at the end (keepalive)"),
    ("pings", "PINGs sent"),
    ("pongs", "PONGs"),
    ("pongs_per_sec", "PONGs per second (summed)"),
    ("out_of_order", "PONGs out of order"),
    ("reaped", "reaped (BYE idle)"),
    ("early", "closed before the deadline"),
    ("never", "not closed within the grace period"),
    ("closed_otherwise", "closed without BYE idle"),
    ("client_cpu_opening", "load clients' CPU to open them"),
];

/// Figures taken from the worst process.
const WORST: [(&str, &str); 8] = [
    ("connect_secs", "time to open them (slowest process)"),
    ("rtt_p50_us", "round trip p50 (worst process), us"),
    ("rtt_p99_us", "round trip p99 (worst process), us"),
    ("rtt_max_us", "round trip max, us"),
    (
        "ping_rtt_p99_ms",
        "first PING round trip p99 (worst process), ms",
    ),
    (
        "late_from_pong_p99_ms",
        "lateness from the PONG p99 (worst process), ms",
    ),
    ("max_send_lag_ms", "client PING lag max, ms"),
    ("client_fd_limit", "load client fd limit (each)"),
];

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

fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

/// Runs the scenario in `args.procs` processes and adds their reports up.
pub fn run(args: &Args) -> io::Result<Report> {
    let procs = args.procs.max(1);
    let exe = std::env::current_exe()?;
    let before = args.server_pid.and_then(proc_stats::sample);
    let mut kids = Vec::with_capacity(procs);
    for i in 0..procs {
        let conns = args.conns / procs + usize::from(i < args.conns % procs);
        let json = std::env::temp_dir().join(format!("vigil-load-{}-{i}.json", std::process::id()));
        let child = Command::new(&exe)
            .arg(args.scenario.name())
            .args(["--addr", &args.addr.to_string()])
            .args(["--conns", &conns.to_string()])
            .args(["--pending", &(args.pending / procs).max(1).to_string()])
            .args(["--sources", &args.sources.to_string()])
            .args(["--duration", &ms(args.duration)])
            .args(["--window", &args.window.to_string()])
            .args(["--idle-timeout", &ms(args.idle_timeout)])
            .args(["--grace", &ms(args.grace)])
            .args(["--interval", &ms(args.interval)])
            .args(["--connect-timeout", &ms(args.connect_timeout)])
            .args(["--label", &format!("{}#{i}", args.label)])
            .arg("--json")
            .arg(&json)
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
    let jsons: Vec<String> = kids
        .iter()
        .map(|k| std::fs::read_to_string(&k.json).unwrap_or_default())
        .collect();
    drop(kids);

    let mut r = Report::default();
    r.text("scenario", "scenario", args.scenario.name());
    r.text("label", "server", args.label.clone());
    r.int("procs", "load processes", "", procs as u64);
    let answered = jsons.iter().filter(|j| !j.is_empty()).count();
    r.int(
        "procs_reported",
        "load processes that reported",
        "",
        answered as u64,
    );
    for (key, label) in SUMMED {
        let v: Vec<f64> = jsons.iter().filter_map(|j| json_num(j, key)).collect();
        if !v.is_empty() {
            put(&mut r, key, label, v.iter().sum());
        }
    }
    for (key, label) in WORST {
        let v: Vec<f64> = jsons.iter().filter_map(|j| json_num(j, key)).collect();
        if !v.is_empty() {
            put(
                &mut r,
                key,
                label,
                v.iter().copied().fold(f64::NAN, f64::max),
            );
        }
    }
    let mut late: Vec<f64> = jsons
        .iter()
        .flat_map(|j| json_samples(j, "reap_lateness_ms"))
        .collect();
    if !late.is_empty() {
        let raw = late.clone();
        sort(&mut late);
        r.num("late_p50_ms", "lateness p50", "ms", quantile(&late, 0.5));
        r.num("late_p99_ms", "lateness p99", "ms", quantile(&late, 0.99));
        r.num("late_max_ms", "lateness max", "ms", quantile(&late, 1.0));
        r.num("late_min_ms", "lateness min", "ms", quantile(&late, 0.0));
        r.samples("reap_lateness_ms", raw);
    }
    if let (Some(b), Some(a)) = (before, after) {
        let est = jsons
            .iter()
            .filter_map(|j| json_num(j, "established"))
            .sum::<f64>()
            .max(1.0);
        r.int(
            "server_rss_before",
            "server RSS before",
            "bytes",
            b.rss_bytes,
        );
        r.int(
            "server_rss_peak",
            "server RSS peak while running",
            "bytes",
            peak_rss,
        );
        r.num(
            "server_rss_per_conn",
            "server RSS growth per connection (peak)",
            "bytes",
            (peak_rss as f64 - b.rss_bytes as f64) / est,
        );
        r.int("server_fds_peak", "server open fds peak", "", peak_fds);
        r.num(
            "server_cpu_secs",
            "server CPU over the whole run",
            "s",
            a.cpu_secs - b.cpu_secs,
        );
    }
    if jsons.iter().any(|j| j.contains("client fd limit")) {
        r.note("a load process was stopped by its own file-descriptor limit, not by the server");
    }
    if answered < procs {
        r.note(format!(
            "{} load processes left no report",
            procs - answered
        ));
    }
    r.note("per-process phases are not synchronised: server wakeups are not measured with --procs");
    Ok(r)
}

/// Adds a whole figure as a count, any other as a measurement.
fn put(r: &mut Report, key: &'static str, label: &'static str, v: f64) {
    if v.fract() == 0.0 && (0.0..9e15).contains(&v) {
        r.int(key, label, "", v as u64);
    } else {
        r.num(key, label, "", v);
    }
}

/// A number from a report's JSON (`None` if absent or null).
fn json_num(json: &str, key: &str) -> Option<f64> {
    let pat = format!("\"{key}\": ");
    let rest = &json[json.find(&pat)? + pat.len()..];
    rest[..rest.find([',', '\n']).unwrap_or(rest.len())]
        .trim()
        .parse()
        .ok()
}

/// An array of numbers from a report's JSON.
fn json_samples(json: &str, key: &str) -> Vec<f64> {
    let pat = format!("\"{key}\": [");
    let Some(i) = json.find(&pat) else {
        return Vec::new();
    };
    let rest = &json[i + pat.len()..];
    rest[..rest.find(']').unwrap_or(0)]
        .split(',')
        .filter_map(|x| x.trim().parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_its_json() {
        let mut r = Report::default();
        r.int("established", "e", "", 7);
        r.num("late_p99_ms", "l", "ms", f64::NAN);
        r.samples("reap_lateness_ms", vec![1.5, -2.0]);
        let j = r.json();
        assert_eq!(json_num(&j, "established"), Some(7.0));
        assert_eq!(json_num(&j, "late_p99_ms"), None);
        assert_eq!(json_samples(&j, "reap_lateness_ms"), vec![1.5, -2.0]);
    }
}
