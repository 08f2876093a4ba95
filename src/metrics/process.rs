//! The standard `process_...` series, from what `/proc/self` says.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use super::gauge;

/// What `/proc/self` says about this process.
#[derive(Debug, Default)]
pub(super) struct ProcessFigures {
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
    pub(super) fn read() -> ProcessFigures {
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
pub(super) struct ProcessCollector(pub(super) ProcessFigures);

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
