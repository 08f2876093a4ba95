//! Rendering vigil's counters in the Prometheus text exposition format
//! (feature `metrics`), with the Prometheus project's client,
//! [`prometheus_client`].
//!
//! The reactor keeps its counters as plain integers ([`ReactorMetrics`]);
//! nothing here runs on the hot path. An [`Exposition`] copies the figures
//! it is given into collectors and encodes them once: an embedder renders
//! the same series as the `vigil` binary, under its own prefix, whether or
//! not it serves them with [`Reactor::serve_metrics`](crate::Reactor::serve_metrics).
//!
//! The series and their meaning are listed in `docs/operations.md`.
//!
//! # Examples
//!
//! ```
//! use vigil::metrics::Exposition;
//! use vigil::{Config, LineProtocol, Reactor};
//!
//! let reactor = Reactor::bind("127.0.0.1:0".parse()?, Config::default(), LineProtocol::default())?;
//! let mut text = String::new();
//! Exposition::new("myapp", Some("3"))
//!     .reactor(&reactor.metrics(), LineProtocol::close_label)
//!     .lines(reactor.handler().lines())
//!     .build_info("1.2.3")
//!     .encode(&mut text)?;
//! assert!(text.contains("myapp_connections_open{worker=\"3\"} 0\n"));
//! assert!(text.contains("myapp_connections_closed_total{worker=\"3\",reason=\"slow\"} 0\n"));
//! assert!(text.contains("myapp_build_info{worker=\"3\",version=\"1.2.3\"} 1\n"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::borrow::Cow;
use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::histogram::Histogram;
use crate::protocol::LineCounts;
use crate::reactor::loop_stats::ReactorMetrics;
use crate::reactor::stats::CloseReason;

pub use crate::reactor::PROMETHEUS_TEXT as CONTENT_TYPE;

mod process;
mod push;

use process::{ProcessCollector, ProcessFigures};

/// One exposition being put together: the series to render, each with the
/// same optional `worker` label.
///
/// Series from [`reactor`](Exposition::reactor),
/// [`lines`](Exposition::lines) and [`build_info`](Exposition::build_info)
/// are named `<prefix>_...`; those from [`process`](Exposition::process)
/// keep the standard unprefixed `process_...` names that dashboards expect.
#[derive(Debug)]
pub struct Exposition {
    root: Registry,
    prefix: String,
}

impl Exposition {
    /// An empty exposition whose own series are named `<prefix>_...`, all
    /// labelled `worker="<worker>"` when `worker` is given (one process of
    /// several serving one port).
    pub fn new(prefix: &str, worker: Option<&str>) -> Exposition {
        let labels = worker
            .map(|w| (Cow::Borrowed("worker"), Cow::Owned(w.to_owned())))
            .into_iter();
        Exposition {
            root: Registry::with_labels(labels),
            prefix: prefix.to_owned(),
        }
    }

    fn add(&mut self, collector: impl Collector) -> &mut Exposition {
        self.root
            .sub_registry_with_prefix(&self.prefix)
            .register_collector(Box::new(collector));
        self
    }

    /// The reactor's series: connections, traffic, reap lateness, the loop.
    /// `close_label` names each [`CloseReason`] in the `reason` label
    /// ([`CloseReason::as_str`], or a protocol's own words such as
    /// [`LineProtocol::close_label`](crate::LineProtocol::close_label)).
    pub fn reactor(
        &mut self,
        metrics: &ReactorMetrics,
        close_label: fn(CloseReason) -> &'static str,
    ) -> &mut Exposition {
        self.add(ReactorCollector {
            metrics: metrics.clone(),
            close_label,
        })
    }

    /// The lines a [`LineProtocol`](crate::LineProtocol) read, by kind.
    pub fn lines(&mut self, lines: &LineCounts) -> &mut Exposition {
        self.add(LinesCollector(lines.clone()))
    }

    /// A [`Bus`](crate::bus::Bus)'s series (feature `bus`): `bus_up`,
    /// messages in and out, publish failures and refusals, reconnects,
    /// cut-offs, downs, the publish-to-answer time.
    #[cfg(feature = "bus")]
    pub fn bus(&mut self, stats: &crate::bus::BusStats) -> &mut Exposition {
        self.add(crate::bus::metrics::BusCollector(stats.clone()))
    }

    /// A histogram of the embedder's own, `<prefix>_<name>`, with
    /// `_seconds` appended when `seconds` (its values scaled to seconds by
    /// the histogram's scale, see [`Histogram::new`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use vigil::metrics::Exposition;
    /// use vigil::Histogram;
    ///
    /// static BOUNDS_NS: [u64; 3] = [1_000_000, 10_000_000, 100_000_000];
    /// let mut handover = Histogram::new(&BOUNDS_NS, 1e-9);
    /// handover.observe(2_000_000); // 2 ms
    /// let mut text = String::new();
    /// Exposition::new("myapp", None)
    ///     .histogram("handover", "From publish to hand-over", true, &handover)
    ///     .encode(&mut text)?;
    /// assert!(text.contains("myapp_handover_seconds_bucket{le=\"0.01\"} 1\n"));
    /// assert!(text.contains("myapp_handover_seconds_count 1\n"));
    /// # Ok::<(), std::fmt::Error>(())
    /// ```
    pub fn histogram(
        &mut self,
        name: &str,
        help: &str,
        seconds: bool,
        histogram: &Histogram,
    ) -> &mut Exposition {
        self.add(OwnHistogram {
            name: name.to_owned(),
            help: help.to_owned(),
            seconds,
            histogram: histogram.clone(),
        })
    }

    /// `<prefix>_build_info{version="..."} 1`.
    pub fn build_info(&mut self, version: &str) -> &mut Exposition {
        self.add(BuildInfo(version.to_owned()))
    }

    /// This process's descriptors, memory, CPU time and start time, read
    /// from `/proc/self` now (Linux; elsewhere, or if unreadable, the
    /// series that cannot be read are left out).
    pub fn process(&mut self) -> &mut Exposition {
        self.root
            .register_collector(Box::new(ProcessCollector(ProcessFigures::read())));
        self
    }

    /// Appends the exposition, in the Prometheus text format version 0.0.4
    /// ([`CONTENT_TYPE`]), to `out`.
    ///
    /// # Errors
    ///
    /// Only those of `out` (none for a `String`).
    pub fn encode(&self, out: &mut impl fmt::Write) -> fmt::Result {
        prometheus_client::encoding::prometheus_text::encode(out, &self.root)
    }
}

/// One histogram of the embedder's ([`Exposition::histogram`]).
#[derive(Debug)]
struct OwnHistogram {
    name: String,
    help: String,
    seconds: bool,
    histogram: Histogram,
}

impl Collector for OwnHistogram {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> fmt::Result {
        let unit = self.seconds.then_some(&Unit::Seconds);
        histogram(&mut e, &self.name, unit, &self.help, &self.histogram)
    }
}

#[derive(Debug)]
struct ReactorCollector {
    metrics: ReactorMetrics,
    close_label: fn(CloseReason) -> &'static str,
}

impl Collector for ReactorCollector {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> fmt::Result {
        let m = &self.metrics;
        let s = &m.stats;
        let l = &m.loop_stats;
        gauge(&mut e, "connections_open", "Connections open now", s.open)?;
        gauge(
            &mut e,
            "connections_closing",
            "Connections whose close is counted but not finished (writing their last bytes, lingering): they hold descriptors",
            s.closing,
        )?;
        gauge(
            &mut e,
            "connections_peak",
            "Most connections open at once since start",
            s.peak_open,
        )?;
        gauge(
            &mut e,
            "connections_max",
            "The connection limit (--max-conns)",
            m.max_connections,
        )?;
        counter(
            &mut e,
            "connections_accepted",
            None,
            "Connections accepted, those refused as full included",
            s.accepted,
        )?;
        {
            let mut family = e.encode_descriptor(
                "connections_closed",
                "Connections closed, by reason; accepted = open + the sum over reasons",
                None,
                MetricType::Counter,
            )?;
            for reason in CloseReason::ALL {
                let labels = [("reason", (self.close_label)(reason))];
                ConstCounter::new(s.closed(reason)).encode(family.encode_family(&labels)?)?;
            }
        }
        counter(
            &mut e,
            "connections_refused",
            None,
            "Connections refused with BYE full at the connection limit",
            s.closed(CloseReason::Full),
        )?;
        counter(
            &mut e,
            "received",
            Some(&Unit::Bytes),
            "Bytes read from heartbeat connections",
            s.bytes_in,
        )?;
        counter(
            &mut e,
            "sent",
            Some(&Unit::Bytes),
            "Bytes written to heartbeat connections",
            s.bytes_out,
        )?;
        counter(
            &mut e,
            "probes_sent",
            None,
            "Probes sent to silent connections",
            l.probes_sent,
        )?;
        counter(
            &mut e,
            "probes_answered",
            None,
            "Probed connections that sent something before their idle timeout",
            l.probes_answered,
        )?;
        push::encode(&mut e, s)?;
        histogram(
            &mut e,
            "reap_lateness",
            Some(&Unit::Seconds),
            "From the tick an idle or lifetime deadline fell due to the close",
            &l.reap_lateness,
        )?;
        counter(
            &mut e,
            "loop_iterations",
            None,
            "Event loop iterations (one poll each)",
            l.iterations,
        )?;
        counter(
            &mut e,
            "loop_events",
            None,
            "Readiness events handled",
            l.events,
        )?;
        histogram(
            &mut e,
            "loop_iteration_busy",
            Some(&Unit::Seconds),
            "Busy time of one loop iteration, from the poll's return to the next poll",
            &l.iteration_busy,
        )?;
        histogram(
            &mut e,
            "loop_events_per_iteration",
            None,
            "Readiness events handled per loop iteration",
            &l.events_per_iteration,
        )?;
        gauge(
            &mut e,
            "timer_entries",
            "Entries in the timer wheel",
            m.timers,
        )?;
        counter(
            &mut e,
            "deferred_reads",
            None,
            "Reads cut short by the read budget and resumed in the next iteration",
            l.deferred_reads,
        )?;
        gauge(
            &mut e,
            "deferred_connections",
            "Connections waiting for another read turn now",
            m.deferred,
        )?;
        counter(
            &mut e,
            "accept_pauses",
            None,
            "Times accepting paused because descriptors ran out",
            s.accept_pauses,
        )?;
        counter(
            &mut e,
            "handle_messages",
            None,
            "Messages the loop took from its cross-thread handles",
            s.handle_messages,
        )?;
        counter(
            &mut e,
            "handle_full",
            None,
            "Handle messages refused because the queue was full",
            s.handle_full,
        )?;
        counter(
            &mut e,
            "handle_wakeups",
            None,
            "Times a handle woke the loop (coalesced: only a sleeping loop is woken)",
            s.handle_wakeups,
        )?;
        gauge(
            &mut e,
            "scrape_connections",
            "Metrics scrape connections open now",
            m.scrapes_open,
        )?;
        counter(
            &mut e,
            "scrapes",
            None,
            "Metrics requests answered, any status",
            m.scrapes,
        )?;
        Ok(())
    }
}

#[derive(Debug)]
struct LinesCollector(LineCounts);

impl Collector for LinesCollector {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> fmt::Result {
        let mut family = e.encode_descriptor(
            "lines_received",
            "Lines read from heartbeat connections, by kind",
            None,
            MetricType::Counter,
        )?;
        for (kind, n) in self.0.by_kind() {
            ConstCounter::new(n).encode(family.encode_family(&[("kind", kind)])?)?;
        }
        Ok(())
    }
}

#[derive(Debug)]
struct BuildInfo(String);

impl Collector for BuildInfo {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> fmt::Result {
        let mut family = e.encode_descriptor(
            "build_info",
            "Always 1; the version in a label",
            None,
            MetricType::Gauge,
        )?;
        let labels = [("version", self.0.as_str())];
        ConstGauge::new(1u64).encode(family.encode_family(&labels)?)
    }
}

pub(crate) fn gauge(
    e: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> fmt::Result {
    let metric = ConstGauge::new(value);
    metric.encode(e.encode_descriptor(name, help, None, metric.metric_type())?)
}

pub(crate) fn counter(
    e: &mut DescriptorEncoder<'_>,
    name: &str,
    unit: Option<&Unit>,
    help: &str,
    value: u64,
) -> fmt::Result {
    let metric = ConstCounter::new(value);
    metric.encode(e.encode_descriptor(name, help, unit, metric.metric_type())?)
}

pub(crate) fn histogram(
    e: &mut DescriptorEncoder<'_>,
    name: &str,
    unit: Option<&Unit>,
    help: &str,
    h: &Histogram,
) -> fmt::Result {
    let scale = h.scale();
    let mut below = 0;
    let buckets: Vec<(f64, u64)> = h
        .buckets()
        .map(|(bound, cumulative)| {
            let n = cumulative - below;
            below = cumulative;
            (bound as f64 * scale, n)
        })
        .collect();
    let mut encoder = e.encode_descriptor(name, help, unit, MetricType::Histogram)?;
    encoder.encode_histogram::<NoLabelSet>(h.sum() as f64 * scale, h.count(), &buckets, None)
}
