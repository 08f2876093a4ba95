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

use crate::protocol::LineCounts;
use crate::{CloseReason, Histogram, ReactorMetrics};

pub use crate::reactor::PROMETHEUS_TEXT as CONTENT_TYPE;

mod push;

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

/// What `/proc/self` says about this process.
#[derive(Debug, Default)]
struct ProcessFigures {
    open_fds: Option<u64>,
    max_fds: Option<u64>,
    resident_bytes: Option<u64>,
    cpu_seconds: Option<f64>,
    start_time_seconds: Option<f64>,
}

/// `USER_HZ`, the unit of `/proc/*/stat` times: 100 on every mainstream
/// Linux build.
const CLOCK_TICKS_PER_SEC: f64 = 100.0;

impl ProcessFigures {
    fn read() -> ProcessFigures {
        use std::fs;
        let status = fs::read_to_string("/proc/self/status").ok();
        let stat = fs::read_to_string("/proc/self/stat").ok();
        // Fields after the command name, which is in parentheses.
        let stat_fields: Vec<&str> = stat
            .as_deref()
            .and_then(|s| {
                s.rfind(')')
                    .map(|i| s[i + 1..].split_whitespace().collect())
            })
            .unwrap_or_default();
        // Fields 14, 15 (utime, stime) and 22 (starttime) of the whole line.
        let field = |n: usize| stat_fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
        let boot_time = fs::read_to_string("/proc/stat").ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse::<u64>().ok())
        });
        ProcessFigures {
            open_fds: open_fds(),
            max_fds: fs::read_to_string("/proc/self/limits").ok().and_then(|l| {
                l.lines()
                    .find(|l| l.starts_with("Max open files"))
                    .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
            }),
            resident_bytes: status.as_deref().and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                    .map(|kib| kib * 1024)
            }),
            cpu_seconds: field(14)
                .zip(field(15))
                .map(|(u, s)| (u + s) as f64 / CLOCK_TICKS_PER_SEC),
            start_time_seconds: field(22)
                .zip(boot_time)
                .map(|(start, boot)| boot as f64 + start as f64 / CLOCK_TICKS_PER_SEC),
        }
    }
}

/// Open descriptors. Linux 6.2 and later give the count as the size of
/// `/proc/self/fd`, at no cost per descriptor; listing the directory
/// instead takes milliseconds per 10,000 descriptors on the reactor's
/// thread, so that is only the fallback for older kernels.
fn open_fds() -> Option<u64> {
    match std::fs::metadata("/proc/self/fd") {
        Ok(meta) if meta.len() > 0 => Some(meta.len()),
        _ => std::fs::read_dir("/proc/self/fd")
            .ok()
            // The directory being read holds one descriptor of its own.
            .map(|d| d.count().saturating_sub(1) as u64),
    }
}

#[derive(Debug)]
struct ProcessCollector(ProcessFigures);

impl Collector for ProcessCollector {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> fmt::Result {
        let p = &self.0;
        if let Some(n) = p.open_fds {
            gauge(&mut e, "process_open_fds", "Open file descriptors", n)?;
        }
        if let Some(n) = p.max_fds {
            gauge(
                &mut e,
                "process_max_fds",
                "The open file descriptor limit (soft)",
                n,
            )?;
        }
        if let Some(n) = p.resident_bytes {
            let metric = ConstGauge::new(n);
            metric.encode(e.encode_descriptor(
                "process_resident_memory",
                "Resident memory",
                Some(&Unit::Bytes),
                MetricType::Gauge,
            )?)?;
        }
        if let Some(secs) = p.cpu_seconds {
            let metric = ConstCounter::new(secs);
            metric.encode(e.encode_descriptor(
                "process_cpu",
                "User and system CPU time",
                Some(&Unit::Seconds),
                MetricType::Counter,
            )?)?;
        }
        if let Some(secs) = p.start_time_seconds {
            let metric = ConstGauge::new(secs);
            metric.encode(e.encode_descriptor(
                "process_start_time",
                "Start time of the process since the Unix epoch",
                Some(&Unit::Seconds),
                MetricType::Gauge,
            )?)?;
        }
        Ok(())
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
