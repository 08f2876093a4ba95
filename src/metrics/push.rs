//! The push series (`docs/operations.md`, "Push").

use std::fmt;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use super::counter;
use crate::reactor::stats::Stats;

/// Pushes, deliveries, delivered bytes, sends to gone ids, and recipients
/// skipped by each overflow policy.
pub(super) fn encode(e: &mut DescriptorEncoder<'_>, s: &Stats) -> fmt::Result {
    counter(
        e,
        "pushes",
        None,
        "Pushes asked for (sends to one connection and fan-outs), each counted once",
        s.pushes,
    )?;
    counter(
        e,
        "push_deliveries",
        None,
        "Pushed payloads handed to a recipient (written or queued whole)",
        s.deliveries,
    )?;
    counter(
        e,
        "push_delivered",
        Some(&Unit::Bytes),
        "Bytes of pushed payloads handed to recipients, once per recipient",
        s.push_bytes,
    )?;
    counter(
        e,
        "push_gone",
        None,
        "Sends to a connection that was closed, closing or stale",
        s.push_gone,
    )?;
    let mut family = e.encode_descriptor(
        "push_recipients_skipped",
        "Recipients a push would take past max-output, by the policy applied: close (closed as slow) or drop (message not queued)",
        None,
        MetricType::Counter,
    )?;
    for (policy, n) in [("close", s.push_closed), ("drop", s.push_dropped)] {
        ConstCounter::new(n).encode(family.encode_family(&[("policy", policy)])?)?;
    }
    Ok(())
}
