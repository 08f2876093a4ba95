//! The final table: every figure for every server, from the typed reports
//! of each round, with vigil's ratio to each other server and its verdicts.

use std::fmt::Write as _;

use vigil::load::Report;

use crate::plan::{Case, ServerKind, CASES};

/// The reports of every round of every case against one server (`None`
/// where a run left no report).
#[derive(Debug, Default)]
pub struct Results(Vec<(&'static Case, Vec<Option<Report>>)>);

impl Results {
    /// Adds one round of `case`.
    pub fn add(&mut self, case: &'static Case, report: Option<Report>) {
        match self.0.iter_mut().find(|(c, _)| c.name == case.name) {
            Some((_, runs)) => runs.push(report),
            None => self.0.push((case, vec![report])),
        }
    }

    fn reports<'a>(&'a self, case: &'a Case) -> impl Iterator<Item = &'a Report> + 'a {
        self.0
            .iter()
            .filter(move |(c, _)| c.name == case.name)
            .flat_map(|(_, runs)| runs.iter().flatten())
    }

    fn values(&self, case: &Case, get: Get) -> Vec<f64> {
        self.reports(case).filter_map(get).collect()
    }

    /// Whether no round of `case` left a report.
    pub fn missing(&self, case: &Case) -> bool {
        self.reports(case).next().is_none()
    }

    /// Whether a round of `case` was stopped by the load client's own file
    /// limit.
    pub fn client_fd_limited(&self, case: &Case) -> bool {
        self.reports(case).any(Report::client_fd_limited)
    }

    /// Every reap lateness of `case`, every round's together.
    pub fn late_samples_ms(&self, case: &Case) -> Vec<f64> {
        self.reports(case)
            .filter_map(Report::reap)
            .flat_map(|r| r.late_samples_ms.iter().copied())
            .collect()
    }

    /// One figure over the rounds, as `over` says (`None` where no round
    /// has it).
    pub fn figure(&self, case: &Case, get: Get, over: Over) -> Option<f64> {
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
        for case in CASES.into_iter().filter(|c| kind.runs(c)) {
            let case_name = case.name;
            if r.missing(case) {
                let _ = writeln!(
                    out,
                    "note: no result for {name} {case_name} (see the log above)"
                );
            }
            if r.client_fd_limited(case) {
                let _ = writeln!(
                    out,
                    "note: {name} {case_name}: the load client was stopped by its own file-descriptor limit, not by the server"
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
