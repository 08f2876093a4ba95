//! The fan-out benchmark's table: every figure for every server (vigil's
//! fan-out example, the tokio baseline, the floor), issue 19's target for
//! vigil, and whether vigil met it. Pure: reports in, Markdown out.

use std::fmt::Write as _;

use vigil::load::{Fanout, Report};

use crate::plan::ServerKind;

/// What vigil's figure must be (issue 19, "Targets").
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Goal {
    /// No target.
    None,
    /// At most `k` times the floor's figure.
    AtMostTimesFloor(f64),
    /// At least `k` times the floor's figure.
    AtLeastTimesFloor(f64),
    /// At most this.
    AtMost(f64),
    /// Below this.
    Below(f64),
}

impl Goal {
    /// The words in the target column.
    pub fn describe(self) -> String {
        match self {
            Goal::None => String::new(),
            Goal::AtMostTimesFloor(k) => format!("<= {k} x floor"),
            Goal::AtLeastTimesFloor(k) => format!(">= {k} x floor"),
            Goal::AtMost(x) => format!("<= {x}"),
            Goal::Below(x) => format!("< {x}"),
        }
    }

    /// Whether vigil's `v` met it against the floor's `floor`; `None`
    /// without a target or without vigil's figure.
    pub fn met(self, v: Option<f64>, floor: Option<f64>) -> Option<bool> {
        let v = v?;
        let f = floor.unwrap_or(f64::NAN);
        Some(match self {
            Goal::None => return None,
            Goal::AtMostTimesFloor(k) => v <= k * f,
            Goal::AtLeastTimesFloor(k) => v >= k * f,
            Goal::AtMost(x) => v <= x,
            Goal::Below(x) => v < x,
        })
    }
}

/// One row: a figure, one value per server in [`ServerKind::ALL`] order,
/// and vigil's target.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub figure: &'static str,
    pub values: Vec<Option<f64>>,
    pub goal: Goal,
}

impl Row {
    /// Whether vigil met its target (`None`: no target or no figure).
    pub fn met(&self) -> Option<bool> {
        let floor = ServerKind::ALL
            .iter()
            .position(|&k| k == ServerKind::Floor)
            .and_then(|i| self.values[i]);
        self.goal.met(self.values[0], floor)
    }
}

type Get = fn(&Fanout) -> Option<f64>;

/// A count as a figure.
fn n(v: u64) -> Option<f64> {
    Some(v as f64)
}

/// The rows of the table, from one report per server (`None`: no run).
pub fn rows(reports: &[Option<Report>]) -> Vec<Row> {
    let row = |figure, get: Get, goal| Row {
        figure,
        values: reports
            .iter()
            .map(|r| r.as_ref().and_then(Report::fanout).and_then(get))
            .collect(),
        goal,
    };
    vec![
        row("subscribers", |f| n(f.subscribers), Goal::None),
        row(
            "(a) last delivery p50 (ms)",
            |f| f.latency.last_delivery_ms.p50,
            Goal::None,
        ),
        row(
            "(a) last delivery p99 (ms)",
            |f| f.latency.last_delivery_ms.p99,
            Goal::AtMostTimesFloor(1.1),
        ),
        row(
            "(a) last delivery max (ms)",
            |f| f.latency.last_delivery_ms.max,
            Goal::None,
        ),
        row(
            "(a) messages every subscriber got",
            |f| n(f.latency.complete),
            Goal::None,
        ),
        row(
            "PING round trip p99 while fanning out (ms)",
            |f| f.latency.ping_rtt_ms.p99,
            Goal::Below(5.0),
        ),
        row(
            "(b) deliveries per second",
            |f| Some(f.throughput.deliveries_per_sec),
            Goal::AtLeastTimesFloor(1.3),
        ),
        row(
            "(b) server CPU per delivery (us)",
            |f| f.throughput.cpu_per_delivery_us.map(|c| c.total()),
            Goal::AtMostTimesFloor(0.8),
        ),
        row(
            "(b) of which user (us)",
            |f| f.throughput.cpu_per_delivery_us.map(|c| c.user),
            Goal::AtMost(0.3),
        ),
        row(
            "(b) of which kernel (us)",
            |f| f.throughput.cpu_per_delivery_us.map(|c| c.kernel),
            Goal::None,
        ),
        row(
            "(b) load client CPU use (1 = one core)",
            |f| f.throughput.client_cpu_share,
            Goal::None,
        ),
        row(
            "RSS per connection before publishing (bytes)",
            |f| f.memory.as_ref().map(|m| m.per_conn_before_publishing),
            Goal::AtMost(128.0),
        ),
        row(
            "RSS per connection after publishing (bytes)",
            |f| f.memory.as_ref().map(|m| m.per_conn_after_publishing),
            Goal::AtMost(128.0),
        ),
        row(
            "missing + duplicated + out of order",
            |f| {
                let d = f.deliveries;
                n(d.missing + d.duplicated + d.out_of_order)
            },
            Goal::AtMost(0.0),
        ),
        row(
            "unreadable, to the sender, OK too few",
            |f| {
                let d = f.deliveries;
                n(d.unreadable + d.to_sender + d.ok_short)
            },
            Goal::AtMost(0.0),
        ),
        row(
            "closed by the server",
            |f| n(f.closed_by_server.total()),
            Goal::AtMost(0.0),
        ),
    ]
}

/// The latency target in ms: 1.1 times the floor's p99, if it ran.
pub fn latency_target_ms(reports: &[Option<Report>]) -> Option<f64> {
    let floor = ServerKind::ALL
        .iter()
        .position(|&k| k == ServerKind::Floor)?;
    let p99 = reports.get(floor)?.as_ref()?.fanout()?;
    p99.latency.last_delivery_ms.p99.map(|v| v * 1.1)
}

/// The Markdown table, then `notes`.
pub fn render(rows: &[Row], notes: &[String]) -> String {
    let mut s = String::from("| figure |");
    for kind in ServerKind::ALL {
        let _ = write!(s, " {} |", kind.heading());
    }
    s.push_str(" vigil's target | met |\n|---|");
    s.push_str(&"---:|".repeat(ServerKind::ALL.len()));
    s.push_str("---|---|\n");
    for row in rows {
        let _ = write!(s, "| {} |", row.figure);
        for v in &row.values {
            let _ = write!(s, " {} |", fmt(*v));
        }
        let met = match row.met() {
            None => "",
            Some(true) => "yes",
            Some(false) => "**no**",
        };
        let _ = writeln!(s, " {} | {met} |", row.goal.describe());
    }
    for note in notes {
        let _ = writeln!(s, "\n{note}");
    }
    s
}

/// A value for the table: `-` where missing, three significant digits or
/// whole numbers.
pub fn fmt(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v.abs() >= 1000.0 || v == 0.0 => format!("{v:.0}"),
        Some(v) if v.fract() == 0.0 && v.abs() >= 10.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        Some(v) if v.abs() >= 1.0 => format!("{v:.2}"),
        Some(v) => format!("{v:.3}"),
    }
}
