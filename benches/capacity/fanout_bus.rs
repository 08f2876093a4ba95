//! The bus row's table: vigil's fan-out in one process beside the same
//! subscribers spread over several instances sharing one Redis (issue 20's
//! target: the instances' last-delivery p99 within 1.3 x the single
//! process's), and what the bus adds per message. Pure: reports in,
//! Markdown out.

use std::fmt::Write as _;

use vigil::load::{Fanout, Report};

use crate::fanout_table::fmt;

/// Issue 20: the instances' last-delivery p99 at most this times the single
/// process's.
pub const P99_TARGET: f64 = 1.3;

type Get = fn(&Fanout) -> Option<f64>;

fn n(v: u64) -> Option<f64> {
    Some(v as f64)
}

/// CPU per message of the throughput phase, µs: the servers' (and, with
/// `with_bus`, the bus's).
fn cpu_per_message_us(f: &Fanout, with_bus: bool) -> Option<f64> {
    let t = &f.throughput;
    let mut cpu = t.server_cpu?.total();
    if with_bus {
        cpu += t.bus_cpu_secs?;
    }
    Some(cpu * 1e6 / t.messages.max(1) as f64)
}

/// The rows: figure, the single process's value, the instances' value, and
/// whether the row has issue 20's target.
fn rows() -> Vec<(&'static str, Get, bool)> {
    vec![
        ("subscribers", |f| n(f.subscribers), false),
        ("server instances", |f| n(f.instances.max(1)), false),
        (
            "(a) last delivery min (ms)",
            |f| f.latency.last_delivery_ms.min,
            false,
        ),
        (
            "(a) last delivery p50 (ms)",
            |f| f.latency.last_delivery_ms.p50,
            false,
        ),
        (
            "(a) last delivery p99 (ms)",
            |f| f.latency.last_delivery_ms.p99,
            true,
        ),
        (
            "(a) last delivery max (ms)",
            |f| f.latency.last_delivery_ms.max,
            false,
        ),
        (
            "(a) messages every subscriber got",
            |f| n(f.latency.complete),
            false,
        ),
        (
            "PING round trip p99 while fanning out (ms)",
            |f| f.latency.ping_rtt_ms.p99,
            false,
        ),
        (
            "(b) deliveries per second",
            |f| Some(f.throughput.deliveries_per_sec),
            false,
        ),
        (
            "(b) servers' CPU per delivery (us)",
            |f| f.throughput.cpu_per_delivery_us.map(|c| c.total()),
            false,
        ),
        (
            "(b) Redis CPU per message, its idle work included (us)",
            |f| f.throughput.bus_cpu_per_message_us,
            false,
        ),
        (
            "(b) CPU per message, servers + Redis (us)",
            |f| cpu_per_message_us(f, true).or_else(|| cpu_per_message_us(f, false)),
            false,
        ),
        (
            "(b) load client CPU use (1 = one core)",
            |f| f.throughput.client_cpu_share,
            false,
        ),
        (
            "RSS per connection before publishing (bytes)",
            |f| f.memory.as_ref().map(|m| m.per_conn_before_publishing),
            false,
        ),
        (
            "missing + duplicated + out of order",
            |f| {
                let d = f.deliveries;
                n(d.missing + d.duplicated + d.out_of_order)
            },
            false,
        ),
        (
            "unreadable, to the sender, OK too few",
            |f| {
                let d = f.deliveries;
                n(d.unreadable + d.to_sender + d.ok_short)
            },
            false,
        ),
        (
            "closed by the server",
            |f| n(f.closed_by_server.total()),
            false,
        ),
    ]
}

/// A whole number as one (a count), anything else as [`fmt`] writes it.
fn count_or(v: Option<f64>) -> String {
    match v {
        Some(v) if v.fract() == 0.0 => format!("{v:.0}"),
        _ => fmt(v),
    }
}

/// The table (`single`: vigil in one process; `bus`: the `instances`),
/// then the bus's cost per message and `notes`.
pub fn render(
    single: Option<&Report>,
    bus: Option<&Report>,
    instances: usize,
    notes: &[String],
) -> String {
    let single = single.and_then(Report::fanout);
    let bus = bus.and_then(Report::fanout);
    let mut s = format!(
        "| figure | vigil, 1 process | vigil, {instances} instances + Redis | ratio | target | met |\n|---|---:|---:|---:|---|---|\n"
    );
    for (figure, get, has_target) in rows() {
        let a = single.and_then(get);
        let b = bus.and_then(get);
        let ratio = a.zip(b).filter(|(a, _)| *a != 0.0).map(|(a, b)| b / a);
        let (target, met) = if has_target {
            let met = match ratio {
                None => "",
                Some(r) if r <= P99_TARGET => "yes",
                Some(_) => "**no**",
            };
            (format!("<= {P99_TARGET} x 1 process"), met)
        } else {
            (String::new(), "")
        };
        let _ = writeln!(
            s,
            "| {figure} | {} | {} | {} | {target} | {met} |",
            count_or(a),
            count_or(b),
            ratio.map_or("-".into(), |r| format!("{r:.2}"))
        );
    }
    if let (Some(a), Some(b)) = (single, bus) {
        let la = &a.latency.last_delivery_ms;
        let lb = &b.latency.last_delivery_ms;
        let diff = |x: Option<f64>, y: Option<f64>| fmt(x.zip(y).map(|(x, y)| y - x));
        let _ = writeln!(
            s,
            "\nWhat the bus adds per message: last delivery min {} ms (the least disturbed message), p50 {} ms, p99 {} ms; CPU (servers + Redis) {} us per message, of which Redis {} us.",
            diff(la.min, lb.min),
            diff(la.p50, lb.p50),
            diff(la.p99, lb.p99),
            diff(cpu_per_message_us(a, false), cpu_per_message_us(b, true)),
            fmt(b.throughput.bus_cpu_per_message_us),
        );
    }
    for note in notes {
        let _ = writeln!(s, "\n{note}");
    }
    s
}
