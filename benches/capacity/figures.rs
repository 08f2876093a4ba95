//! The figures of the final table: one list that says, for each row, its
//! label, its case, the field of the typed report it reads, over which
//! rounds, and vigil's target.

use vigil::load::Report;

use crate::plan::{Case, Sizes, HEARTBEAT, HOLD, HOLD_NO_TIMER, KEEPALIVE, REAP, STORM};
use crate::table::{Get, Over, Results, Row, Target};

/// A row of the figure list: label, case, what to read, over which rounds,
/// and vigil's target.
struct Spec(String, &'static Case, Get, Over, Target);

/// The rows, from every server's results (in [`ServerKind::ALL`] order).
pub fn rows(results: &[Results], s: &Sizes) -> Vec<Row> {
    use Over::{Least, Median, Worst};
    let vigil = &results[0];
    let held_all = vigil.figure(&HOLD, |r| Some(r.hold()?.opening.established as f64), Least)
        == Some(s.hold as f64)
        && [
            (|r: &Report| Some(r.hold()?.opening.failed as f64)) as Get,
            |r| Some(r.hold()?.opening.timed_out as f64),
            |r| Some(r.hold()?.closed_by_server.total() as f64),
        ]
        .into_iter()
        .all(|get| vigil.figure(&HOLD, get, Worst) == Some(0.0));
    // The early window as the load client reported it.
    let early: Get = |r| Some(r.hold()?.opening.early_conns as f64);
    let early_conns = results
        .iter()
        .find_map(|r| r.figure(&HOLD, early, Least))
        .unwrap_or(vigil::load::EARLY_RATE_CONNS.min(s.hold) as f64);
    let late_target = REAP.late_target_ms().unwrap_or(f64::NAN);
    let specs = [
        Spec(
            format!("hold: connections established (of {}, worst round)", s.hold),
            &HOLD,
            |r| Some(r.hold()?.opening.established as f64),
            Least,
            Target::Decided("all, no failures", held_all),
        ),
        Spec(
            "hold: connects failed (worst round)".into(),
            &HOLD,
            |r| Some(r.hold()?.opening.failed as f64),
            Worst,
            Target::None,
        ),
        Spec(
            "hold: closed by the server (worst round)".into(),
            &HOLD,
            |r| Some(r.hold()?.closed_by_server.total() as f64),
            Worst,
            Target::None,
        ),
        Spec(
            "hold: server open fds with the connections".into(),
            &HOLD,
            |r| Some(r.hold()?.server.as_ref()?.fds_after as f64),
            Median,
            Target::None,
        ),
        Spec(
            format!("hold: connect rate, first {early_conns} (conn/s)"),
            &HOLD,
            |r| r.hold()?.opening.early_rate,
            Median,
            Target::None,
        ),
        Spec(
            format!("hold: connect rate, all {} (conn/s)", s.hold),
            &HOLD,
            |r| Some(r.hold()?.opening.rate),
            Median,
            Target::AtLeastBaseline,
        ),
        Spec(
            "hold: server CPU to accept them (s)".into(),
            &HOLD,
            |r| Some(r.hold()?.server.as_ref()?.cpu_opening.total()),
            Median,
            Target::None,
        ),
        Spec(
            "hold: load client CPU to open them (s)".into(),
            &HOLD,
            |r| Some(r.hold()?.client_cpu_opening?.total()),
            Median,
            Target::None,
        ),
        Spec(
            "hold: of which in the client's kernel (s)".into(),
            &HOLD,
            |r| Some(r.hold()?.client_cpu_opening?.kernel),
            Median,
            Target::None,
        ),
        Spec(
            "hold: server RSS growth per connection (bytes)".into(),
            &HOLD,
            |r| Some(r.hold()?.server.as_ref()?.rss_per_conn),
            Median,
            Target::AtMost(128.0, ""),
        ),
        Spec(
            "hold, no idle timeout: server RSS growth per connection (bytes)".into(),
            &HOLD_NO_TIMER,
            |r| Some(r.hold()?.server.as_ref()?.rss_per_conn),
            Median,
            Target::None,
        ),
        Spec(
            "hold: server wakeups/s while silent (context switches)".into(),
            &HOLD,
            |r| Some(r.hold()?.server.as_ref()?.wakeups_per_sec),
            Median,
            Target::Below(1.0, "~0 (< 1/s)"),
        ),
        Spec(
            "hold: server CPU while silent (s)".into(),
            &HOLD,
            |r| Some(r.hold()?.server.as_ref()?.cpu_while_silent.total()),
            Median,
            Target::None,
        ),
        Spec(
            "heartbeat: PONGs/s".into(),
            &HEARTBEAT,
            |r| Some(r.heartbeat()?.pongs_per_sec),
            Median,
            Target::None,
        ),
        Spec(
            "heartbeat: server CPU use (1 = one core)".into(),
            &HEARTBEAT,
            |r| Some(r.heartbeat()?.server.as_ref()?.cpu_share),
            Median,
            Target::None,
        ),
        Spec(
            "heartbeat: load client CPU use (1 = one core)".into(),
            &HEARTBEAT,
            |r| r.heartbeat()?.client_cpu_share,
            Median,
            Target::None,
        ),
        Spec(
            "heartbeat: round trip p50 (us)".into(),
            &HEARTBEAT,
            |r| r.heartbeat()?.rtt_us.p50,
            Median,
            Target::None,
        ),
        Spec(
            "heartbeat: round trip p99 (us)".into(),
            &HEARTBEAT,
            |r| r.heartbeat()?.rtt_us.p99,
            Median,
            Target::None,
        ),
        Spec(
            "heartbeat: round trip max (us)".into(),
            &HEARTBEAT,
            |r| r.heartbeat()?.rtt_us.max,
            Median,
            Target::None,
        ),
        Spec(
            "heartbeat: server CPU per PONG (us)".into(),
            &HEARTBEAT,
            |r| Some(r.heartbeat()?.server.as_ref()?.cpu_per_pong_us.total()),
            Median,
            Target::AtMostTimesBaseline(0.7),
        ),
        Spec(
            "heartbeat: of which in user space (us)".into(),
            &HEARTBEAT,
            |r| Some(r.heartbeat()?.server.as_ref()?.cpu_per_pong_us.user),
            Median,
            Target::None,
        ),
        Spec(
            "heartbeat: of which in the kernel (us)".into(),
            &HEARTBEAT,
            |r| Some(r.heartbeat()?.server.as_ref()?.cpu_per_pong_us.kernel),
            Median,
            Target::None,
        ),
        Spec(
            format!("reap: connections reaped with BYE idle (of {})", s.reap),
            &REAP,
            |r| Some(r.reap()?.reaped as f64),
            Least,
            Target::Decided(
                "all",
                vigil.figure(&REAP, |r| Some(r.reap()?.reaped as f64), Least)
                    == Some(s.reap as f64),
            ),
        ),
        Spec(
            "reap: lateness p50 (ms)".into(),
            &REAP,
            |r| r.reap()?.late_ms.p50,
            Median,
            Target::None,
        ),
        Spec(
            "reap: lateness p99 (ms)".into(),
            &REAP,
            |r| r.reap()?.late_ms.p99,
            Median,
            Target::AtMost(late_target, "(2 ticks + 5)"),
        ),
        Spec(
            "reap: lateness max (ms)".into(),
            &REAP,
            |r| r.reap()?.late_ms.max,
            Median,
            Target::None,
        ),
        Spec(
            "reap: lateness from the PONG p99 (ms, lower bound)".into(),
            &REAP,
            |r| r.reap()?.late_from_pong_ms.p99,
            Median,
            Target::None,
        ),
        Spec(
            "reap: first PING round trip p99 (ms)".into(),
            &REAP,
            |r| r.reap()?.ping_rtt_ms.p99,
            Median,
            Target::None,
        ),
        Spec(
            "reap: closed before the deadline (worst round)".into(),
            &REAP,
            |r| Some(r.reap()?.early as f64),
            Worst,
            Target::Exactly(0.0),
        ),
        Spec(
            format!(
                "reap: never closed, {} s grace (worst round)",
                REAP.grace.as_secs_f64()
            ),
            &REAP,
            |r| Some(r.reap()?.never as f64),
            Worst,
            Target::Exactly(0.0),
        ),
        Spec(
            format!("keepalive: reaped while heartbeating (of {})", s.keepalive),
            &KEEPALIVE,
            |r| Some(r.keepalive()?.reaped as f64),
            Worst,
            Target::Exactly(0.0),
        ),
        Spec(
            "keepalive: PONGs".into(),
            &KEEPALIVE,
            |r| Some(r.keepalive()?.pongs as f64),
            Median,
            Target::None,
        ),
        Spec(
            "keepalive: server context switches/s".into(),
            &KEEPALIVE,
            |r| Some(r.keepalive()?.server.as_ref()?.wakeups_per_sec),
            Median,
            Target::None,
        ),
        Spec(
            format!("storm: clients answered (of {}, worst round)", s.storm),
            &STORM,
            |r| Some(r.storm()?.opening.established as f64),
            Least,
            Target::None,
        ),
        Spec(
            "storm: time until all are answered (s)".into(),
            &STORM,
            |r| Some(r.storm()?.opening.secs),
            Median,
            Target::None,
        ),
        Spec(
            "storm: wait for the PONG p99 (ms)".into(),
            &STORM,
            |r| r.storm()?.wait_ms.p99,
            Median,
            Target::None,
        ),
        Spec(
            "storm: slowest client's wait (ms)".into(),
            &STORM,
            |r| r.storm()?.wait_ms.max,
            Median,
            Target::None,
        ),
        Spec(
            "storm: listen drops (worst round, whole machine)".into(),
            &STORM,
            |r| Some(r.storm()?.tcp?.listen_drops as f64),
            Worst,
            Target::None,
        ),
        Spec(
            "storm: listen overflows (worst round, whole machine)".into(),
            &STORM,
            |r| Some(r.storm()?.tcp?.listen_overflows as f64),
            Worst,
            Target::None,
        ),
        Spec(
            "storm: SYN retransmits (worst round, whole machine)".into(),
            &STORM,
            |r| Some(r.storm()?.tcp?.syn_retrans as f64),
            Worst,
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
