//! The capacity benchmark's pure parts (its scenario table, the final
//! table's figures and verdicts, the fan-out table's verdicts and its bus
//! row's, the plot's scales), tested here: the
//! benchmark itself runs without a test harness.
#![cfg(feature = "cli")]

#[path = "../benches/capacity/fanout_bus.rs"]
mod fanout_bus;
#[path = "../benches/capacity/fanout_table.rs"]
mod fanout_table;
#[path = "../benches/capacity/figures.rs"]
mod figures;
#[path = "../benches/capacity/plan.rs"]
mod plan;
#[path = "../benches/capacity/plot.rs"]
mod plot;
#[path = "../benches/capacity/table.rs"]
mod table;

mod plan_tests {
    use std::time::Duration;

    use crate::plan::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn the_sizes_line_is_the_one_the_docs_show() {
        assert_eq!(
            Sizes::FULL.describe(),
            "hold 19000 for 5s; heartbeat 1000 x window 8 for 5s; reap 10000 (idle 1s, tick 10ms); keepalive 2000 (PING every 500ms, idle 1s) for 5s; storm 19000 at once"
        );
    }

    #[test]
    fn server_flags_come_from_the_case() {
        let flags = |case: &Case, kind| case.server_flags(kind).join(" ");
        assert_eq!(flags(&HOLD, ServerKind::Vigil), "--idle-timeout 60m");
        assert_eq!(
            flags(&HOLD_NO_TIMER, ServerKind::Baseline),
            "--idle-timeout 0"
        );
        assert_eq!(flags(&HEARTBEAT, ServerKind::Vigil), "");
        assert_eq!(
            flags(&REAP, ServerKind::Vigil),
            "--idle-timeout 1s --tick 10ms"
        );
        assert_eq!(flags(&REAP, ServerKind::Baseline), "--idle-timeout 1s");
        assert_eq!(flags(&KEEPALIVE, ServerKind::Vigil), "--idle-timeout 1s");
    }

    #[test]
    fn load_options_come_from_the_case_and_sizes() {
        let addr = "127.0.0.1:1".parse().unwrap();
        let reap = REAP.options(&Sizes::QUICK, addr);
        assert_eq!((reap.conns, reap.sources), (1000, SOURCES));
        assert_eq!(reap.idle_timeout, secs(1));
        assert_eq!(reap.grace, secs(2));
        let hb = HEARTBEAT.options(&Sizes::FULL, addr);
        assert_eq!((hb.conns, hb.window, hb.duration), (1000, 8, secs(5)));
        let ka = KEEPALIVE.options(&Sizes::FULL, addr);
        assert_eq!(ka.interval, Duration::from_millis(500));
        assert_eq!(REAP.late_target_ms(), Some(25.0));
    }
}

mod table_tests {
    use vigil::load::{Figures, Hold, Keepalive, Opening, Reap, Report, Spread};

    use crate::figures::rows;
    use crate::plan::{Sizes, HOLD, KEEPALIVE, REAP};
    use crate::table::*;

    fn report(figures: Figures) -> Option<Report> {
        Some(Report {
            label: "x".into(),
            procs: None,
            figures,
            notes: vec![],
        })
    }

    fn reap(p99: f64, never: u64) -> Option<Report> {
        report(Figures::Reap(Reap {
            late_ms: Spread {
                p99: Some(p99),
                ..Spread::default()
            },
            never,
            reaped: 10,
            ..Reap::default()
        }))
    }

    #[test]
    fn rounds_give_the_median_or_the_worst() {
        let mut r = Results::default();
        for (p99, never) in [(3.0, 0), (1.0, 2), (2.0, 0)] {
            r.add(&REAP, reap(p99, never));
        }
        r.add(&REAP, None);
        let p99: Get = |r| r.reap()?.late_ms.p99;
        let never: Get = |r| Some(r.reap()?.never as f64);
        assert_eq!(r.figure(&REAP, p99, Over::Median), Some(2.0));
        assert_eq!(r.figure(&REAP, never, Over::Worst), Some(2.0));
        assert_eq!(r.figure(&REAP, never, Over::Least), Some(0.0));
        assert_eq!(r.figure(&HOLD, never, Over::Median), None);
        assert!(r.missing(&HOLD) && !r.missing(&REAP));
    }

    #[test]
    fn late_samples_are_every_rounds_together() {
        let mut r = Results::default();
        for samples in [vec![1.0, 2.0], vec![], vec![3.0]] {
            r.add(
                &REAP,
                report(Figures::Reap(Reap {
                    late_samples_ms: samples,
                    ..Reap::default()
                })),
            );
        }
        r.add(&REAP, None);
        assert_eq!(r.late_samples_ms(&REAP), [1.0, 2.0, 3.0]);
        assert!(r.late_samples_ms(&HOLD).is_empty());
    }

    #[test]
    fn verdicts() {
        assert_eq!(Target::None.met(Some(1.0), None), None);
        assert_eq!(
            Target::AtLeastBaseline.met(Some(2.0), Some(2.0)),
            Some(true)
        );
        assert_eq!(
            Target::AtLeastBaseline.met(Some(1.0), Some(2.0)),
            Some(false)
        );
        assert_eq!(
            Target::AtMostTimesBaseline(0.7).met(Some(0.7), Some(1.0)),
            Some(true)
        );
        assert_eq!(
            Target::AtMostTimesBaseline(0.7).met(Some(0.8), Some(1.0)),
            Some(false)
        );
        assert_eq!(Target::AtMost(25.0, "").met(None, None), Some(false));
        assert_eq!(Target::Below(1.0, "").met(Some(1.0), None), Some(false));
        assert_eq!(Target::Exactly(0.0).met(Some(0.0), None), Some(true));
        assert_eq!(Target::AtMost(25.0, "").describe(), "<= 25");
        assert_eq!(Target::AtMost(25.0, "(why)").describe(), "<= 25 (why)");
    }

    #[test]
    fn the_table_has_a_row_per_figure_and_a_column_per_server() {
        let sizes = Sizes::QUICK;
        let mut vigil = Results::default();
        let mut baseline = Results::default();
        vigil.add(&REAP, reap(20.0, 0));
        baseline.add(&REAP, reap(4.0, 0));
        let opening = Opening {
            established: sizes.hold as u64,
            early_conns: 10_000.min(sizes.hold as u64),
            ..Opening::default()
        };
        let hold = Figures::Hold(Hold {
            opening,
            ..Hold::default()
        });
        vigil.add(&HOLD, report(hold));
        baseline.add(&KEEPALIVE, report(Figures::Keepalive(Keepalive::default())));
        let results = [vigil, baseline];
        let rows = rows(&results, &sizes);
        let p99 = rows
            .iter()
            .find(|r| r.figure == "reap: lateness p99 (ms)")
            .expect("p99 row");
        assert_eq!(p99.values, [Some(20.0), Some(4.0)]);
        assert_eq!(p99.target, Target::AtMost(25.0, "(2 ticks + 5)"));
        assert_eq!(p99.met(), Some(true));
        let held = &rows[0];
        assert_eq!(
            held.figure,
            "hold: connections established (of 2000, worst round)"
        );
        assert_eq!(held.met(), Some(true));
        assert!(rows
            .iter()
            .any(|r| r.figure == "hold: connect rate, first 2000 (conn/s)"));
        let table = render(&rows, &results);
        let header = table.lines().next().expect("header");
        assert_eq!(
            header.split('|').map(str::trim).collect::<Vec<_>>(),
            [
                "",
                "figure",
                "vigil",
                "baseline (tokio)",
                "vigil ÷ baseline",
                "vigil target",
                "vigil",
                ""
            ]
        );
        assert!(table.contains("| reap: lateness p99 (ms)"));
        assert!(
            table.contains("|             5.00 | <= 25 (2 ticks + 5) | met "),
            "{table}"
        );
        assert!(table.contains("note: no result for baseline hold"));
        assert!(table.contains("note: no result for vigil keepalive"));
        assert_eq!(
            rows.len(),
            table.lines().filter(|l| l.starts_with("| ")).count() - 1
        );
    }

    #[test]
    fn figures_are_rounded_by_size() {
        assert_eq!(fmt(None), "n/a");
        assert_eq!(fmt(Some(412164.4)), "412164");
        assert_eq!(fmt(Some(3.0)), "3");
        assert_eq!(fmt(Some(16.24)), "16.2");
        assert_eq!(fmt(Some(2.414)), "2.41");
        assert_eq!(ratio(Some(1.0), Some(0.0)), "-");
        assert_eq!(ratio(Some(1.0), Some(4.0)), "0.25");
    }
}

mod plot_tests {
    use crate::plot::*;

    #[test]
    fn steps_are_round() {
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(1.5), 2.0);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(4.6), 5.0);
        assert_eq!(nice_step(6.0), 10.0);
        assert_eq!(nice_step(23.0), 50.0);
    }

    #[test]
    fn the_axis_holds_samples_zero_and_target() {
        let s = Scale::fit([-1.5, 3.0, 30.0].into_iter(), 25.0);
        assert_eq!((s.min, s.max), (-2.0, 33.0));
        assert_eq!(s.step, 10.0);
        assert_eq!(s.ticks(), [0.0, 10.0, 20.0, 30.0]);
        assert_eq!(s.x(-2.0), L);
        assert_eq!(s.x(33.0), W - R);
        // No samples: the target still fits.
        let empty = Scale::fit([].into_iter(), 25.0);
        assert_eq!((empty.min, empty.max), (0.0, 28.0));
    }

    #[test]
    fn one_curve_per_server() {
        let svg = lateness_svg(
            &[
                Curve {
                    name: "vigil",
                    samples: &[1.0, 2.0],
                    color: "#1f77b4",
                },
                Curve {
                    name: "floor",
                    samples: &[],
                    color: "#2ca02c",
                },
            ],
            25.0,
        );
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("vigil (n=2)") && svg.contains("floor (n=0)"));
        assert!(svg.ends_with("</svg>\n"));
    }
}

mod fanout_table_tests {
    use vigil::load::{Fanout, Figures, Report, Spread};

    use crate::fanout_table::*;

    fn report(p99: f64, per_sec: f64) -> Option<Report> {
        let mut f = Fanout::default();
        f.latency.last_delivery_ms = Spread {
            p99: Some(p99),
            ..Spread::default()
        };
        f.throughput.deliveries_per_sec = per_sec;
        Some(Report {
            label: "x".into(),
            procs: None,
            figures: Figures::Fanout(Box::new(f)),
            notes: vec![],
        })
    }

    fn row<'a>(rows: &'a [Row], name: &str) -> &'a Row {
        rows.iter()
            .find(|r| r.figure.starts_with(name))
            .expect(name)
    }

    #[test]
    fn vigil_is_judged_against_the_floor() {
        // vigil, tokio, floor.
        let reports = [
            report(105.0, 300_000.0),
            report(290.0, 1.0),
            report(100.0, 260_000.0),
        ];
        let rows = rows(&reports);
        assert_eq!(row(&rows, "(a) last delivery p99").met(), Some(true));
        assert_eq!(row(&rows, "(b) deliveries per second").met(), Some(false));
        assert_eq!(row(&rows, "missing").met(), Some(true));
        let target = latency_target_ms(&reports).expect("a floor p99");
        assert!((target - 110.0).abs() < 1e-9);
        let md = render(&rows, &["a note".into()]);
        assert!(
            md.contains("| (a) last delivery p99 (ms) | 105 | 290 | 100 | <= 1.1 x floor | yes |"),
            "{md}"
        );
        assert!(md.contains("| **no** |") && md.ends_with("\na note\n"));
    }

    #[test]
    fn no_vigil_run_no_verdict() {
        let reports = [None, report(290.0, 1.0), report(100.0, 260_000.0)];
        let rows = rows(&reports);
        assert!(rows.iter().all(|r| r.met().is_none()));
        assert_eq!(fmt(None), "-");
        assert_eq!(
            (fmt(Some(0.0)), fmt(Some(1.0)), fmt(Some(12345.6))),
            ("0".into(), "1.00".into(), "12346".into())
        );
    }
}

mod fanout_bus_tests {
    use vigil::load::{Cpu, Fanout, Figures, Report, Spread};

    use crate::fanout_bus::*;

    fn report(p50: f64, p99: f64, instances: u64, server_s: f64, bus_s: Option<f64>) -> Report {
        let mut f = Fanout {
            instances,
            ..Fanout::default()
        };
        f.latency.last_delivery_ms = Spread {
            p50: Some(p50),
            p99: Some(p99),
            ..Spread::default()
        };
        f.throughput.messages = 100;
        f.throughput.server_cpu = Some(Cpu {
            user: 0.0,
            kernel: server_s,
        });
        f.throughput.bus_cpu_secs = bus_s;
        f.throughput.bus_cpu_per_message_us = bus_s.map(|s| s * 1e4);
        Report {
            label: "x".into(),
            procs: None,
            figures: Figures::Fanout(Box::new(f)),
            notes: vec![],
        }
    }

    #[test]
    fn the_instances_are_judged_against_the_single_process() {
        let single = report(60.0, 100.0, 1, 1.0, None);
        let within = report(70.0, 125.0, 4, 1.2, Some(0.01));
        let md = render(Some(&single), Some(&within), 4, &[]);
        assert!(
            md.contains(
                "| (a) last delivery p99 (ms) | 100 | 125 | 1.25 | <= 1.3 x 1 process | yes |"
            ),
            "{md}"
        );
        // 1 s over 100 messages against 1.21 s: 2,100 us more a message.
        assert!(
            md.contains("min - ms (the least disturbed message), p50 10 ms, p99 25 ms; CPU (servers + Redis) 2100 us per message, of which Redis 100 us."),
            "{md}"
        );
        let past = report(70.0, 140.0, 4, 1.2, Some(0.01));
        let md = render(Some(&single), Some(&past), 4, &["why".into()]);
        assert!(
            md.contains("| 1.40 | <= 1.3 x 1 process | **no** |"),
            "{md}"
        );
        assert!(md.ends_with("\nwhy\n"));
    }

    #[test]
    fn a_skipped_bus_row_has_no_verdict() {
        let single = report(60.0, 100.0, 1, 1.0, None);
        let md = render(
            Some(&single),
            None,
            4,
            &["bus row skipped: no redis".into()],
        );
        assert!(md.contains("| vigil, 4 instances + Redis |"), "{md}");
        assert!(
            md.contains("| 100 | - | - | <= 1.3 x 1 process |  |"),
            "{md}"
        );
        assert!(!md.contains("What the bus adds"));
    }
}
