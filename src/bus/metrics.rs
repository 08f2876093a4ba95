//! The bus's series in a Prometheus exposition (features `bus` and
//! `metrics`), added with [`Exposition::bus`](crate::metrics::Exposition::bus).

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Unit;

use crate::bus::shared::{BusState, BusStats};
use crate::metrics::{counter, gauge, histogram};

/// A copy of a bus's counters, encoded as `<prefix>_bus_...` series.
#[derive(Debug)]
pub(crate) struct BusCollector(pub(crate) BusStats);

impl Collector for BusCollector {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> fmt::Result {
        let s = &self.0;
        let up = u64::from(s.state == BusState::Up);
        gauge(
            &mut e,
            "bus_up",
            "1 while both bus connections are up, else 0",
            up,
        )?;
        counter(
            &mut e,
            "bus_messages_in",
            None,
            "Messages received from the bus",
            s.messages_in,
        )?;
        counter(
            &mut e,
            "bus_messages_out",
            None,
            "Publishes Redis answered",
            s.messages_out,
        )?;
        counter(
            &mut e,
            "bus_publish_failed",
            None,
            "Publishes taken that failed: bus down, no answer in time, connection broken, refused",
            s.publish_failed,
        )?;
        counter(
            &mut e,
            "bus_publish_refused",
            None,
            "Publishes refused at the call: bus down or queue full",
            s.publish_refused,
        )?;
        counter(
            &mut e,
            "bus_reconnects",
            None,
            "Bus connections made again after a loss",
            s.reconnects,
        )?;
        counter(
            &mut e,
            "bus_cutoffs",
            None,
            "Subscriber connections closed by a reachable Redis (client-output-buffer-limit pubsub)",
            s.cutoffs,
        )?;
        counter(
            &mut e,
            "bus_downs",
            None,
            "Times the bus went down",
            s.downs,
        )?;
        histogram(
            &mut e,
            "bus_publish",
            Some(&Unit::Seconds),
            "From a publish call to Redis's answer",
            &s.publish_latency,
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::bus::BusStats;
    use crate::metrics::Exposition;

    #[test]
    fn the_bus_series_are_exposed() {
        let mut stats = BusStats {
            messages_in: 7,
            cutoffs: 1,
            ..BusStats::default()
        };
        stats.publish_latency.observe(2_000_000);
        let mut text = String::new();
        Exposition::new("vigil", None)
            .bus(&stats)
            .encode(&mut text)
            .unwrap();
        for line in [
            "vigil_bus_up 0\n",
            "vigil_bus_messages_in_total 7\n",
            "vigil_bus_cutoffs_total 1\n",
            "vigil_bus_publish_seconds_count 1\n",
            "vigil_bus_publish_seconds_bucket{le=\"0.0025\"} 1\n",
        ] {
            assert!(text.contains(line), "{line:?} in:\n{text}");
        }
    }
}
