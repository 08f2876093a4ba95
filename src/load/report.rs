//! The result of a run: one typed [`Report`], its JSON (one writer, one
//! reader) and the table printed on stdout.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::scenarios::{Heartbeat, Hold, Keepalive, Reap};
use super::Scenario;

/// Everything one run of `vigil-load` measured.
///
/// Written with [`Report::write_json`] and read back with
/// [`Report::read_json`]; a program that reads figures names them as fields,
/// so a renamed figure is a compile error.
///
/// # Examples
///
/// ```
/// use vigil::load::{Closes, Figures, Keepalive, Report};
///
/// let report = Report {
///     label: "vigil".into(),
///     procs: None,
///     figures: Figures::Keepalive(Keepalive::default()),
///     notes: vec![],
/// };
/// let back = Report::from_json(&report.to_json())?;
/// assert_eq!(back, report);
/// assert_eq!(back.keepalive().map(|k| k.closed_by_server), Some(Closes::default()));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The server's label (`--label`).
    pub label: String,
    /// With `--procs`: how the load was split and what the parent saw.
    pub procs: Option<Procs>,
    /// The scenario's figures.
    pub figures: Figures,
    /// Sentences printed under the table.
    pub notes: Vec<String>,
}

/// The figures of one scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "scenario", rename_all = "lowercase")]
pub enum Figures {
    /// See [`Hold`].
    Hold(Hold),
    /// See [`Heartbeat`].
    Heartbeat(Heartbeat),
    /// See [`Reap`].
    Reap(Reap),
    /// See [`Keepalive`].
    Keepalive(Keepalive),
}

impl Figures {
    /// Which scenario these figures come from.
    pub fn scenario(&self) -> Scenario {
        match self {
            Figures::Hold(_) => Scenario::Hold,
            Figures::Heartbeat(_) => Scenario::Heartbeat,
            Figures::Reap(_) => Scenario::Reap,
            Figures::Keepalive(_) => Scenario::Keepalive,
        }
    }

    /// How the connections were opened.
    pub fn opening(&self) -> &Opening {
        match self {
            Figures::Hold(f) => &f.opening,
            Figures::Heartbeat(f) => &f.opening,
            Figures::Reap(f) => &f.opening,
            Figures::Keepalive(f) => &f.opening,
        }
    }

    /// Adds the figures of another process's run of the same scenario
    /// (`--procs`); `false`, and nothing added, for another scenario.
    pub(crate) fn absorb(&mut self, other: &Figures) -> bool {
        match (self, other) {
            (Figures::Hold(a), Figures::Hold(b)) => a.absorb(b),
            (Figures::Heartbeat(a), Figures::Heartbeat(b)) => a.absorb(b),
            (Figures::Reap(a), Figures::Reap(b)) => a.absorb(b),
            (Figures::Keepalive(a), Figures::Keepalive(b)) => a.absorb(b),
            _ => return false,
        }
        true
    }

    pub(crate) fn rows(&self, t: &mut Rows) {
        match self {
            Figures::Hold(f) => f.rows(t),
            Figures::Heartbeat(f) => f.rows(t),
            Figures::Reap(f) => f.rows(t),
            Figures::Keepalive(f) => f.rows(t),
        }
    }
}

impl Report {
    /// The hold figures, if this is a hold run.
    pub fn hold(&self) -> Option<&Hold> {
        match &self.figures {
            Figures::Hold(f) => Some(f),
            _ => None,
        }
    }

    /// The heartbeat figures, if this is a heartbeat run.
    pub fn heartbeat(&self) -> Option<&Heartbeat> {
        match &self.figures {
            Figures::Heartbeat(f) => Some(f),
            _ => None,
        }
    }

    /// The reap figures, if this is a reap run.
    pub fn reap(&self) -> Option<&Reap> {
        match &self.figures {
            Figures::Reap(f) => Some(f),
            _ => None,
        }
    }

    /// The keepalive figures, if this is a keepalive run.
    pub fn keepalive(&self) -> Option<&Keepalive> {
        match &self.figures {
            Figures::Keepalive(f) => Some(f),
            _ => None,
        }
    }

    /// Whether the load client stopped at its own file-descriptor limit.
    pub fn client_fd_limited(&self) -> bool {
        self.figures.opening().stopped_by == StoppedBy::ClientFdLimit
    }

    /// The report as JSON.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a report always serialises");
        s.push('\n');
        s
    }

    /// A report from its JSON.
    ///
    /// # Errors
    ///
    /// The text is not a report's JSON (or one of another version).
    pub fn from_json(json: &str) -> Result<Report, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// Writes [`Report::to_json`] to `path`.
    ///
    /// # Errors
    ///
    /// The file cannot be written.
    pub fn write_json(&self, path: &Path) -> io::Result<()> {
        std::fs::write(path, self.to_json())
    }

    /// Reads a report written by [`Report::write_json`].
    ///
    /// # Errors
    ///
    /// The file cannot be read or holds no report.
    pub fn read_json(path: &Path) -> io::Result<Report> {
        let text = std::fs::read_to_string(path)?;
        Report::from_json(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// The table printed on stdout, under `title`.
    pub fn table(&self, title: &str) -> String {
        let mut t = Rows::default();
        t.text("scenario", self.figures.scenario().name());
        t.text("server", &self.label);
        if let Some(p) = &self.procs {
            t.int("load processes", p.procs);
            t.int("load processes that reported", p.reported);
        }
        self.figures.rows(&mut t);
        if let Some(s) = self.procs.as_ref().and_then(|p| p.server.as_ref()) {
            t.int_unit("server RSS before", "bytes", s.rss_before);
            t.int_unit("server RSS peak while running", "bytes", s.rss_peak);
            t.num(
                "server RSS growth per connection (peak)",
                "bytes",
                s.rss_per_conn,
            );
            t.int("server open fds peak", s.fds_peak);
            t.cpu("server CPU over the whole run", s.cpu);
        }
        t.render(title, &self.notes)
    }
}

/// How a `--procs` run was split, and the server as the parent saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Procs {
    /// Load processes started.
    pub procs: u64,
    /// Load processes that left a report.
    pub reported: u64,
    /// The server over the whole run (with `--server-pid`).
    pub server: Option<WholeRun>,
}

/// The server over a whole `--procs` run, sampled by the parent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WholeRun {
    /// Resident memory before, bytes.
    pub rss_before: u64,
    /// Largest resident memory seen while the processes ran, bytes.
    pub rss_peak: u64,
    /// Peak growth divided by the connections established, bytes.
    pub rss_per_conn: f64,
    /// Most open files seen.
    pub fds_peak: u64,
    /// CPU time over the run.
    pub cpu: Cpu,
}

/// CPU time of a process over a span, in seconds, split into user and
/// kernel time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    /// In user space.
    pub user_secs: f64,
    /// In the kernel.
    pub sys_secs: f64,
}

impl Cpu {
    /// User plus kernel time.
    pub fn total(&self) -> f64 {
        self.user_secs + self.sys_secs
    }

    /// Both parts multiplied by `k` (e.g. per PONG, in microseconds).
    pub fn scaled(&self, k: f64) -> Cpu {
        Cpu {
            user_secs: self.user_secs * k,
            sys_secs: self.sys_secs * k,
        }
    }

    pub(crate) fn add(&mut self, other: &Cpu) {
        self.user_secs += other.user_secs;
        self.sys_secs += other.sys_secs;
    }
}

/// How the connections of a run were opened.
///
/// A connection counts as established when the server has answered its
/// first `PING`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Opening {
    /// Connections asked for.
    pub target: u64,
    /// Connections whose first `PING` was answered.
    pub established: u64,
    /// Connects refused, reset, or closed before the first `PONG`.
    pub failed: u64,
    /// Connects or first `PING`s given up after `--connect-timeout`.
    pub timed_out: u64,
    /// Seconds from the first connect to the last established.
    pub secs: f64,
    /// Established connections per second over the whole opening.
    pub rate: f64,
    /// The early window: the rate is also measured over this many first
    /// connections (or all, if fewer were asked).
    pub early_conns: u64,
    /// Established connections per second over the early window (`None`
    /// if it was never filled).
    pub early_rate: Option<f64>,
    /// The load client's open-file limit.
    pub client_fd_limit: Option<u64>,
    /// What stopped the opening.
    pub stopped_by: StoppedBy,
    /// The first error that was not a file-descriptor limit.
    pub first_error: Option<String>,
}

impl Opening {
    /// Adds another process's opening: counts and rates summed (the
    /// processes ran at the same time), the slowest process's time.
    pub(crate) fn absorb(&mut self, o: &Opening) {
        self.target += o.target;
        self.established += o.established;
        self.failed += o.failed;
        self.timed_out += o.timed_out;
        self.secs = self.secs.max(o.secs);
        self.rate += o.rate;
        self.early_conns += o.early_conns;
        self.early_rate = match (self.early_rate, o.early_rate) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        self.client_fd_limit = self.client_fd_limit.max(o.client_fd_limit);
        self.stopped_by = self.stopped_by.max(o.stopped_by);
        if self.first_error.is_none() {
            self.first_error.clone_from(&o.first_error);
        }
    }

    pub(crate) fn rows(&self, t: &mut Rows) {
        t.int("connections asked", self.target);
        t.int("connections established", self.established);
        t.int("connects failed", self.failed);
        t.int("connects timed out", self.timed_out);
        t.num("time to open them", "s", self.secs);
        t.num("connect rate (all)", "conn/s", self.rate);
        t.opt(
            &format!("connect rate (first {})", self.early_conns),
            "conn/s",
            self.early_rate,
        );
        t.opt_int("load client fd limit", self.client_fd_limit);
        t.text("stopped by", self.stopped_by.describe());
    }
}

/// What stopped the opening of connections, least to most telling.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoppedBy {
    /// Every connection asked for was established.
    #[default]
    Nothing,
    /// Failures or time-outs: the server or the network.
    ServerOrNetwork,
    /// The load client's own file-descriptor limit, not the server.
    ClientFdLimit,
}

impl StoppedBy {
    /// Words for the table.
    pub fn describe(self) -> &'static str {
        match self {
            StoppedBy::Nothing => "nothing (target reached)",
            StoppedBy::ServerOrNetwork => "server or network",
            StoppedBy::ClientFdLimit => "client fd limit",
        }
    }
}

/// How the server closed connections, by closing line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closes {
    /// `BYE idle`.
    pub idle: u64,
    /// `BYE full`.
    pub full: u64,
    /// `BYE shutdown`.
    pub shutdown: u64,
    /// Any other `BYE`.
    pub other_bye: u64,
    /// `ERR ...`.
    pub err: u64,
    /// Closed without a closing line.
    pub silent: u64,
}

impl Closes {
    /// Every close by the server.
    pub fn total(&self) -> u64 {
        self.idle + self.full + self.shutdown + self.other_bye + self.err + self.silent
    }

    pub(crate) fn absorb(&mut self, o: &Closes) {
        self.idle += o.idle;
        self.full += o.full;
        self.shutdown += o.shutdown;
        self.other_bye += o.other_bye;
        self.err += o.err;
        self.silent += o.silent;
    }

    /// A row with the total; the breakdown as a note when there was any.
    pub(crate) fn rows(&self, t: &mut Rows, label: &str) {
        t.int(label, self.total());
        if self.total() > 0 {
            t.note(format!(
                "{label}: {} BYE idle, {} BYE full, {} BYE shutdown, {} other BYE, {} ERR, {} without a line",
                self.idle, self.full, self.shutdown, self.other_bye, self.err, self.silent
            ));
        }
    }
}

/// Quantiles of a set of samples (`None` where there was no sample).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// The smallest.
    pub min: Option<f64>,
    /// The median.
    pub p50: Option<f64>,
    /// The 99th percentile.
    pub p99: Option<f64>,
    /// The largest.
    pub max: Option<f64>,
}

impl Spread {
    /// The quantiles of `samples` (nearest rank).
    ///
    /// # Examples
    ///
    /// ```
    /// use vigil::load::Spread;
    ///
    /// let s = Spread::of((1..=100).map(f64::from).collect());
    /// assert_eq!((s.p50, s.p99, s.max), (Some(50.0), Some(99.0), Some(100.0)));
    /// assert_eq!(Spread::of(vec![]).p50, None);
    /// ```
    pub fn of(mut samples: Vec<f64>) -> Spread {
        samples.sort_by(f64::total_cmp);
        Spread {
            min: quantile(&samples, 0.0),
            p50: quantile(&samples, 0.5),
            p99: quantile(&samples, 0.99),
            max: quantile(&samples, 1.0),
        }
    }

    /// Each quantile the worse (larger) of two processes'.
    pub(crate) fn absorb_worst(&mut self, o: &Spread) {
        let worst = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.min = match (self.min, o.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.p50 = worst(self.p50, o.p50);
        self.p99 = worst(self.p99, o.p99);
        self.max = worst(self.max, o.max);
    }
}

/// The `q`-quantile (0..=1) of sorted samples, nearest rank.
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied()
}

/// The rows of the table printed on stdout, and the notes under it.
#[derive(Debug, Default)]
pub(crate) struct Rows {
    rows: Vec<(String, String)>,
    notes: Vec<String>,
}

impl Rows {
    pub(crate) fn int(&mut self, label: &str, v: u64) {
        self.rows.push((label.into(), v.to_string()));
    }

    pub(crate) fn int_unit(&mut self, label: &str, unit: &str, v: u64) {
        self.rows.push((label.into(), format!("{v} {unit}")));
    }

    pub(crate) fn opt_int(&mut self, label: &str, v: Option<u64>) {
        self.rows
            .push((label.into(), v.map_or("n/a".into(), |v| v.to_string())));
    }

    pub(crate) fn num(&mut self, label: &str, unit: &str, v: f64) {
        self.opt(label, unit, Some(v).filter(|v| !v.is_nan()));
    }

    pub(crate) fn opt(&mut self, label: &str, unit: &str, v: Option<f64>) {
        let text = match v {
            None => "n/a".into(),
            Some(v) if unit.is_empty() => format_num(v),
            Some(v) => format!("{} {unit}", format_num(v)),
        };
        self.rows.push((label.into(), text));
    }

    /// A CPU time: the total, and the kernel's part on the next row.
    pub(crate) fn cpu(&mut self, label: &str, cpu: Cpu) {
        self.num(label, "s", cpu.total());
        self.num("  of which in the kernel", "s", cpu.sys_secs);
    }

    pub(crate) fn text(&mut self, label: &str, v: &str) {
        self.rows.push((label.into(), v.into()));
    }

    pub(crate) fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    fn render(&self, title: &str, notes: &[String]) -> String {
        let w0 = self.rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        let w0 = w0.max(6);
        let w1 = self.rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
        let w1 = w1.max(5);
        let mut out = String::new();
        let _ = writeln!(out, "{title}");
        let _ = writeln!(out, "| {:<w0$} | {:>w1$} |", "figure", "value");
        let _ = writeln!(out, "|-{}-|{}:|", "-".repeat(w0), "-".repeat(w1 + 1));
        for (label, value) in &self.rows {
            let _ = writeln!(out, "| {label:<w0$} | {value:>w1$} |");
        }
        for note in self.notes.iter().chain(notes) {
            let _ = writeln!(out, "{note}");
        }
        out
    }
}

/// A measurement for the table: three significant-ish decimals.
fn format_num(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), Some(50.0));
        assert_eq!(quantile(&v, 0.99), Some(99.0));
        assert_eq!(quantile(&v, 1.0), Some(100.0));
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn openings_add_up() {
        let a = Opening {
            target: 10,
            established: 10,
            secs: 1.0,
            rate: 10.0,
            early_conns: 10,
            early_rate: Some(10.0),
            ..Opening::default()
        };
        let mut b = Opening {
            stopped_by: StoppedBy::ClientFdLimit,
            secs: 2.0,
            ..a.clone()
        };
        b.absorb(&a);
        assert_eq!((b.target, b.established, b.rate), (20, 20, 20.0));
        assert_eq!((b.secs, b.early_rate), (2.0, Some(20.0)));
        assert_eq!(b.stopped_by, StoppedBy::ClientFdLimit);
    }

    #[test]
    fn table_shows_missing_figures_as_n_a() {
        let mut t = Rows::default();
        t.opt("x", "ms", None);
        t.num("y", "ms", 1.5);
        t.note("done".into());
        let out = t.render("title", &[]);
        assert!(out.contains("| x      |      n/a |"), "{out}");
        assert!(out.contains("| y      | 1.500 ms |"), "{out}");
        assert!(out.ends_with("done\n"));
    }
}
