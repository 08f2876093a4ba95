//! The Redis bus bridge (`vigil::bus`, feature `bus`) against a real
//! `redis-server`, one per test on a free port: fan-out between instances
//! (`fanout`), Redis going away or hanging (`outage`), Redis cutting a slow
//! subscriber off (`cutoff`), and the fan-out example over the bus
//! (`example`, with the `cli` feature: it needs the binaries). Without
//! `redis-server` each test says it was skipped and passes, except under
//! `CI=true`.

mod cutoff;
#[cfg(feature = "cli")]
mod example;
mod fanout;
mod outage;

use std::time::Duration;

use support::redis::Events;
use vigil::bus::{Bus, BusEvent};

/// One bus instance and what its callback saw.
type Instance = (Bus<u64>, Events<BusEvent<u64>>);

/// Starts a bus on `url`, subscribed to `channels`, and waits (within
/// `support::PATIENCE`) until it is up and Redis has confirmed them.
#[track_caller]
fn instance(url: &str, channels: &[&str]) -> Instance {
    let (callback, events) = Events::channel();
    let bus = Bus::start(&url.parse().expect("a good URL"), callback).expect("start the bus");
    for channel in channels {
        bus.subscribe(channel);
    }
    let mut waiting: Vec<String> = channels.iter().map(|c| c.to_string()).collect();
    let mut up = false;
    while !up || !waiting.is_empty() {
        let (event, _) = events.wait_for(support::PATIENCE, |event| match event {
            BusEvent::Up | BusEvent::Subscribed { .. } => Some(event.clone()),
            _ => None,
        });
        match event {
            BusEvent::Subscribed { channel } => waiting.retain(|c| *c != channel),
            _ => up = true,
        }
    }
    (bus, events)
}

/// The payload of the next message on `events` within `within`, as text.
#[track_caller]
fn next_message(events: &Events<BusEvent<u64>>, within: Duration) -> String {
    events
        .wait_for(within, |event| match event {
            BusEvent::Message { payload, .. } => {
                Some(String::from_utf8_lossy(payload).into_owned())
            }
            _ => None,
        })
        .0
}

/// Redis's answer to publish `token`, within `within`: `Ok(receivers)` or
/// `Err(reason)`.
#[track_caller]
fn outcome(events: &Events<BusEvent<u64>>, token: u64, within: Duration) -> Result<u64, String> {
    events
        .wait_for(within, |event| match event {
            BusEvent::Published {
                token: t,
                receivers,
            } if *t == token => Some(Ok(*receivers)),
            BusEvent::PublishFailed { token: t, reason } if *t == token => {
                Some(Err(reason.to_string()))
            }
            _ => None,
        })
        .0
}
