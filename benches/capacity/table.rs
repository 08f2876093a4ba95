//! The final table: every figure for every server, from the typed reports
//! of each round, with vigil's ratio to each other server and its verdicts.

use std::fmt::Write as _;

use vigil::load::Report;

use crate::plan::{Case, ServerKind, Sizes, CASES};

/// The reports of every round of every case against one server (`None`
/// where a run left no report).
#[derive(Debug, Default)]
pub struct Results(Vec<(&'static str, Vec<Option<Report>>)>);

impl Results {
    /// Adds one round of `case`.
    pub fn add(&mut self, case: &'static str, report: Option<Report>) {
        match self.0.iter_mut().find(|(c, _)| *c == case) {
            Some((_, runs)) => runs.push(report),
            None => self.0.push((case, vec![report])),
        }
    }

    fn reports<'a>(&'a self, case: &'a str) -> impl Iterator<Item = &'a Report> + 'a {
        self.0
            .iter()
            .filter(move |(c, _)| *c == case)
            .flat_map(|(_, runs)| runs.iter().flatten())
    }

    fn values(&self, case: &str, get: Get) -> Vec<f64> {
        self.reports(case).filter_map(get).collect()
    }

    /// Whether no round of `case` left a report.
    pub fn missing(&self, case: &str) -> bool {
        self.reports(case).next().is_none()
    }

    /// Whether a round of `case` was stopped by the load client's own file
    /// limit.
    pub fn client_fd_limited(&self, case: &str) -> bool {
        self.reports(case).any(Report::client_fd_limited)
    }

    /// Every reap lateness of `case`, every round's together.
    pub fn late_samples_ms(&self, case: &str) -> Vec<f64> {
        self.reports(case)
            .filter_map(Report::reap)
            .flat_map(|r| r.late_samples_ms.iter().copied())
            .collect()
    }

    /// One figure over the rounds, as `over` says (`None` where no round
    /// has it).
    pub fn figure(&self, case: &str, get: Get, over: Over) -> Option<f64> {
        let mut v = self.values(case, get);
        v.sort_by(f64::total_cmp);
        match over {
            Over::Median => v.get(v.len() / 2).copied(),
            Over::Worst => v.last().copied(),
            Over::Least => v.first().copied(),
        }
    }
}

/// A figure read from a report: a field of its typed figures.
pub type Get = fn(&Report) -> Option<f64>;

/// How the rounds are summed up into one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    /// The median round.
    Median,
    /// The largest value: counts that must be zero in every round.
    Worst,
    /// The smallest value.
    Least,
}

/// What vigil's figure must be.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// No target.
    None,
    /// Decided from more than one figure, by the table's builder.
    Decided(&'static str, bool),
    /// At least the first other server's figure.
    AtLeastBaseline,
    /// At most `k` times the first other server's figure.
    AtMostTimesBaseline(f64),
    /// At most this (and words on why).
    AtMost(f64, &'static str),
    /// Below this.
    Below(f64, &'static str),
    /// Exactly this.
    Exactly(f64),
}

impl Target {
    /// The words in the target column.
    pub fn describe(self) -> String {
        match self {
            Target::None => String::new(),
            Target::Decided(words, _) | Target::Below(_, words) => words.into(),
            Target::AtLeastBaseline => ">= baseline".into(),
            Target::AtMostTimesBaseline(k) => format!("<= {k} x baseline"),
            Target::AtMost(x, why) => format!("<= {} {why}", fmt(Some(x))).trim_end().into(),
            Target::Exactly(x) => fmt(Some(x)),
        }
    }

    /// Whether vigil's figure `v` met it, against the baseline's `b`;
    /// `None` without a target. A missing figure misses its target.
    pub fn met(self, v: Option<f64>, b: Option<f64>) -> Option<bool> {
        let v = v.unwrap_or(f64::NAN);
        let b = b.unwrap_or(f64::NAN);
        Some(match self {
            Target::None => return None,
            Target::Decided(_, met) => met,
            Target::AtLeastBaseline => v >= b,
            Target::AtMostTimesBaseline(k) => v <= k * b,
            Target::AtMost(x, _) => v <= x,
            Target::Below(x, _) => v < x,
            Target::Exactly(x) => v == x,
        })
    }
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub figure: String,
    /// One value per server, in [`ServerKind::ALL`] order.
    pub values: Vec<Option<f64>>,
    pub target: Target,
}

impl Row {
    /// Whether vigil met its target (`None` without one).
    pub fn met(&self) -> Option<bool> {
        let at = |i: usize| self.values.get(i).copied().flatten();
        self.target.met(at(0), at(1))
    }
}

/// A row of the figure list: label, case, what to read, over which rounds,
/// and vigil's target.
struct Spec(String, &'static str, Get, Over, Target);

/// The rows, from every server's results (in [`ServerKind::ALL`] order).
pub fn rows(results: &[Results], s: &Sizes) -> Vec<Row> {
    use Over::{Least, Median, Worst};
    let vigil = &results[0];
    let held_all = vigil.figure(
        "hold",
        |r| Some(r.hold()?.opening.established as f64),
        Least,
    ) == Some(s.hold as f64)
        && [
            (|r: &Report| Some(r.hold()?.opening.failed as f64)) as Get,
            |r| Some(r.hold()?.opening.timed_out as f64),
            |r| Some(r.hold()?.closed_by_server.total() as f64),
        ]
        .into_iter()
        .all(|get| vigil.figure("hold", get, Worst) == Some(0.0));
    // The early window as the load client reported it.
    let early: Get = |r| Some(r.hold()?.opening.early_conns as f64);
    let early_conns = results
        .iter()
        .find_map(|r| r.figure("hold", early, Least))
        .unwrap_or(vigil::load::EARLY_RATE_CONNS.min(s.hold) as f64);
    let late_target = Case::named("reap").late_target_ms().unwrap_or(f64::NAN);
    let specs = [
        Spec(
            format!("hold: connections established (of {}, worst round)", s.hold),
            "hold",
            |r| Some(r.hold()?.opening.established as f64),
            Least,
            Target::Decided("all, no failures", held_all),
        ),
        Spec(
            "hold: connects failed (worst round)".into(),
            "hold",
            |r| Some(r.hold()?.opening.failed as f64),
            Worst,
            Target::None,
        ),
        Spec(
            "hold: closed by the server (worst round)".into(),
            "hold",
            |r| Some(r.hold()?.closed_by_server.total() as f64),
            Worst,
            Target::None,
        ),
        Spec(
            "hold: server open fds with the connections".into(),
            "hold",
            |r| Some(r.hold()?.server.as_ref()?.fds_after as f64),
            Median,
            Target::None,
        ),
        Spec(
            format!("hold: connect rate, first {early_conns} (conn/s)"),
            "hold",
            |r| r.hold()?.opening.early_rate,
            Median,
            Target::None,
        ),
        Spec(
            format!("hold: connect rate, all {} (conn/s)", s.hold),
            "hold",
            |r| Some(r.hold()?.opening.rate),
            Median,
            Target::AtLeastBaseline,
        ),
        Spec(
            "hold: server CPU to accept them (s)".into(),
            "hold",
            |r| Some(r.hold()?.server.as_ref()?.cpu_opening.total()),
            Median,
            Target::None,
        ),
        Spec(
            "hold: load client CPU to open them (s)".into(),
            "hold",
            |r| Some(r.hold()?.client_cpu_opening?.total()),
            Median,
            Target::None,
        ),
        Spec(
            "hold: of which in the client's kernel (s)".into(),
            "hold",
            |r| Some(r.hold()?.client_cpu_opening?.sys_secs),
            Median,
            Target::None,
        ),
        Spec(
            "hold: server RSS growth per connection (bytes)".into(),
            "hold",
            |r| Some(r.hold()?.server.as_ref()?.rss_per_conn),
            Median,
            Target::AtMost(128.0, ""),
        ),
        Spec(
            "hold, no idle timeout: server RSS growth per connection (bytes)".into(),
            "hold-no-timer",
            |r| Some(r.hold()?.server.as_ref()?.rss_per_conn),
            Median,
            Target::None,
        ),
        Spec(
            "hold: server wakeups/s while silent (context switches)".into(),
            "hold",
            |r| Some(r.hold()?.server.as_ref()?.wakeups_per_sec),
            Median,
            Target::Below(1.0, "~0 (< 1/s)"),
        ),
        Spec(
            "hold: server CPU while silent (s)".into(),
            "hold",
            |r| Some(r.hold()?.server.as_ref()?.cpu_while_silent.total()),
            Median,
            Target::None,
        ),
        Spec(
            "heartbeat: PONGs/s".into(),
            "heartbeat",
            |r| Some(r.heartbeat()?.pongs_per_sec),
            Median,
            Target::None,
        ),
        Spec(
            "heartbeat: server CPU use (1 = one core)".into(),
            "heartbeat",
            |r| Some(r.heartbeat()?.server.as_ref()?.cpu_share),
            Median,
            Target::None,
        ),
        Spec(
            "heartbeat: load client CPU use (1 = one core)".into(),
            "heartbeat",
            |r| r.heartbeat()?.client_cpu_share,
            Median,
            Target::None,
        ),
        Spec(
            "heartbeat: round trip p50 (us)".into(),
            "heartbeat",
            |r| r.heartbeat()?.rtt_us.p50,
            Median,
            Target::None,
        ),
        Spec(
            "heartbeat: round trip p99 (us)".into(),
            "heartbeat",
            |r| r.heartbeat()?.rtt_us.p99,
            Median,
            Target::None,
        ),
        Spec(
            "heartbeat: round trip max (us)".into(),
            "heartbeat",
            |r| r.heartbeat()?.rtt_us.max,
            Median,
            Target::None,
        ),
        Spec(
            "heartbeat: server CPU per PONG (us)".into(),
            "heartbeat",
            |r| Some(r.heartbeat()?.server.as_ref()?.cpu_per_pong_us.total()),
            Median,
            Target::AtMostTimesBaseline(0.7),
        ),
        Spec(
            format!("reap: connections reaped with BYE idle (of {})", s.reap),
            "reap",
            |r| Some(r.reap()?.reaped as f64),
            Least,
            Target::Decided(
                "all",
                vigil.figure("reap", |r| Some(r.reap()?.reaped as f64), Least)
                    == Some(s.reap as f64),
            ),
        ),
        Spec(
            "reap: lateness p50 (ms)".into(),
            "reap",
            |r| r.reap()?.late_ms.p50,
            Median,
            Target::None,
        ),
        Spec(
            "reap: lateness p99 (ms)".into(),
            "reap",
            |r| r.reap()?.late_ms.p99,
            Median,
            Target::AtMost(late_target, "(2 ticks + 5)"),
        ),
        Spec(
            "reap: lateness max (ms)".into(),
            "reap",
            |r| r.reap()?.late_ms.max,
            Median,
            Target::None,
        ),
        Spec(
            "reap: lateness from the PONG p99 (ms, lower bound)".into(),
            "reap",
            |r| r.reap()?.late_from_pong_ms.p99,
            Median,
            Target::None,
        ),
        Spec(
            "reap: first PING round trip p99 (ms)".into(),
            "reap",
            |r| r.reap()?.ping_rtt_ms.p99,
            Median,
            Target::None,
        ),
        Spec(
            "reap: closed before the deadline (worst round)".into(),
            "reap",
            |r| Some(r.reap()?.early as f64),
            Worst,
            Target::Exactly(0.0),
        ),
        Spec(
            format!(
                "reap: never closed, {} s grace (worst round)",
                Case::named("reap").grace.as_secs_f64()
            ),
            "reap",
            |r| Some(r.reap()?.never as f64),
            Worst,
            Target::Exactly(0.0),
        ),
        Spec(
            format!("keepalive: reaped while heartbeating (of {})", s.keepalive),
            "keepalive",
            |r| Some(r.keepalive()?.reaped as f64),
            Worst,
            Target::Exactly(0.0),
        ),
        Spec(
            "keepalive: PONGs".into(),
            "keepalive",
            |r| Some(r.keepalive()?.pongs as f64),
            Median,
            Target::None,
        ),
        Spec(
            "keepalive: server context switches/s".into(),
            "keepalive",
            |r| Some(r.keepalive()?.server.as_ref()?.wakeups_per_sec),
            Median,
            Target::None,
        ),
    ];
    specs
        .into_iter()
        .map(|Spec(figure, case, get, over, target)| {
            let values: Vec<Option<f64>> =
                results.iter().map(|r| r.figure(case, get, over)).collect();
            Row {
                figure,
                values,
                target,
            }
        })
        .collect()
}

/// The table in Markdown, with the count of targets met and notes on
/// missing or client-limited runs.
pub fn render(rows: &[Row], results: &[Results]) -> String {
    let servers = &ServerKind::ALL[..results.len()];
    let mut head: Vec<String> = servers.iter().map(|k| k.heading().to_string()).collect();
    for other in &servers[1..] {
        head.push(format!("vigil ÷ {}", other.name()));
    }
    let numeric = head.len();
    head.insert(0, "figure".into());
    head.extend(["vigil target".into(), "vigil".into()]);
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut c = vec![r.figure.clone()];
            c.extend(r.values.iter().map(|v| fmt(*v)));
            c.extend(r.values[1..].iter().map(|b| ratio(r.values[0], *b)));
            c.push(r.target.describe());
            c.push(match r.met() {
                Some(true) => "met".into(),
                Some(false) => "MISSED".into(),
                None => String::new(),
            });
            c
        })
        .collect();
    let right = |i: usize| i >= 1 && i <= numeric;
    let mut out = markdown(&head, &cells, right);
    let met = rows.iter().filter(|r| r.met() == Some(true)).count();
    let missed = rows.iter().filter(|r| r.met() == Some(false)).count();
    let _ = writeln!(out, "\nvigil targets: {met} met, {missed} missed");
    for (kind, r) in servers.iter().zip(results) {
        let name = kind.name();
        for case in &CASES {
            let case = case.name;
            if r.missing(case) {
                let _ = writeln!(out, "note: no result for {name} {case} (see the log above)");
            }
            if r.client_fd_limited(case) {
                let _ = writeln!(
                    out,
                    "note: {name} {case}: the load client was stopped by its own file-descriptor limit, not by the server"
                );
            }
        }
    }
    out
}

/// A Markdown table, columns padded; `right(i)`: column `i` is numbers.
fn markdown(head: &[String], cells: &[Vec<String>], right: impl Fn(usize) -> bool) -> String {
    let mut w: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for c in cells {
        for (i, x) in c.iter().enumerate() {
            w[i] = w[i].max(x.chars().count());
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, c: &[String]| {
        out.push('|');
        for (i, x) in c.iter().enumerate() {
            let pad = " ".repeat(w[i] - x.chars().count());
            if right(i) {
                let _ = write!(out, " {pad}{x} |");
            } else {
                let _ = write!(out, " {x}{pad} |");
            }
        }
        out.push('\n');
    };
    line(&mut out, head);
    out.push('|');
    for (i, wi) in w.iter().enumerate() {
        if right(i) {
            let _ = write!(out, "{}:|", "-".repeat(wi + 1));
        } else {
            let _ = write!(out, "{}|", "-".repeat(wi + 2));
        }
    }
    out.push('\n');
    for c in cells {
        line(&mut out, c);
    }
    out
}

/// `v ÷ b` to two decimals, `-` where it means nothing.
pub fn ratio(v: Option<f64>, b: Option<f64>) -> String {
    match (v, b) {
        (Some(v), Some(b)) if b != 0.0 && v.is_finite() && b.is_finite() => {
            format!("{:.2}", v / b)
        }
        _ => "-".into(),
    }
}

/// A figure for the table: whole numbers and large ones without decimals.
pub fn fmt(v: Option<f64>) -> String {
    match v {
        None => "n/a".into(),
        Some(v) if v.is_nan() => "n/a".into(),
        Some(v) if v.abs() >= 100.0 || v == v.trunc() => format!("{v:.0}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}
