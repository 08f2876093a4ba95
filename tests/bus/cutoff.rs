//! When Redis cuts off a subscriber that fell behind
//! (`client-output-buffer-limit pubsub`), the embedder is told through a
//! `CutOff` event, the cut-off and the reconnect are counted, the bus never
//! goes down for it, and fan-out resumes. Windows: the cut-off is seen
//! within 1 s of the stalled callback returning, messages arrive again
//! within 1 s.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use support::redis::{Events, Redis};
use support::{ms, PATIENCE};
use vigil::bus::{Bus, BusEvent, PublishError, PUBLISH_DEADLINE};

use crate::{instance, next_message, outcome};

#[test]
fn a_subscriber_that_falls_behind_is_cut_off_reconnects_and_is_told() {
    let Some(redis) = Redis::start() else { return };
    let limit = [
        "CONFIG",
        "SET",
        "client-output-buffer-limit",
        "pubsub 1kb 1kb 0",
    ];
    assert_eq!(redis.cli(&limit), "OK");
    let url = redis.url();
    let (publisher, published) = instance(&url, &[]);

    // The slow instance: its callback stalls on messages while `stall` is
    // set, and says so in `stalled`. (Each message is below the limit: the
    // backlog is what crosses it.)
    let stall = Arc::new(AtomicBool::new(true));
    let stalled = Arc::new(AtomicBool::new(false));
    let (forward, slow_events) = Events::channel();
    let (gate, entered) = (stall.clone(), stalled.clone());
    let slow: Bus<u64> = Bus::start(&url.parse().unwrap(), move |event| {
        let since = Instant::now();
        if matches!(event, BusEvent::Message { .. }) {
            entered.store(true, Ordering::Relaxed);
            while gate.load(Ordering::Relaxed) && since.elapsed() < PATIENCE {
                std::thread::sleep(ms(5));
            }
        }
        forward(event);
    })
    .unwrap();
    slow.subscribe("room.7");
    slow_events.wait_for(PATIENCE, |e| {
        matches!(e, BusEvent::Subscribed { .. }).then_some(())
    });
    slow_events.wait_for(PATIENCE, |e| matches!(e, BusEvent::Up).then_some(()));

    // Its subscriber thread stalls on a first message (so it cannot
    // reconnect before the flood is over); then flood it until Redis
    // reports no receiver: the slow subscriber's connection is gone.
    publisher.publish("room.7", "first", u64::MAX).unwrap();
    assert_eq!(outcome(&published, u64::MAX, PATIENCE), Ok(1));
    let waiting = Instant::now();
    while !stalled.load(Ordering::Relaxed) {
        assert!(waiting.elapsed() < PATIENCE, "the first message never came");
        std::thread::sleep(ms(1));
    }
    let chunk = Bytes::from(vec![b'x'; 512]);
    let started = Instant::now();
    let mut token = 0;
    loop {
        assert!(
            started.elapsed() < PATIENCE,
            "Redis never cut the slow subscriber off"
        );
        match publisher.publish("room.7", chunk.clone(), token) {
            Ok(()) => token += 1,
            Err(PublishError::Full) => {
                std::thread::sleep(ms(1));
                continue;
            }
            Err(down) => panic!("{down}"),
        }
        if token % 256 == 0 && outcome(&published, token - 1, PATIENCE) == Ok(0) {
            break;
        }
    }
    // Every publish is answered before the slow instance may reconnect, so
    // that none of the flood reaches its next connection.
    for earlier in 0..token - 1 {
        assert!(outcome(&published, earlier, PATIENCE).is_ok());
    }
    stall.store(false, Ordering::Relaxed);
    let released = Instant::now();

    let (reason, _) = slow_events.wait_for(PATIENCE, |e| match e {
        BusEvent::CutOff { reason } => Some(reason.clone()),
        _ => None,
    });
    assert_within_a_second(released);
    assert!(!reason.is_empty());
    let stats = slow.stats();
    assert_eq!(
        (stats.cutoffs, stats.downs),
        (1, 0),
        "a cut-off, not an outage: {stats:?}"
    );
    assert!(stats.reconnects >= 1, "{stats:?}");

    // Subscribed again: the next publish reaches it.
    publisher.publish("room.7", "caught up", 1_000_000).unwrap();
    assert_eq!(outcome(&published, 1_000_000, PUBLISH_DEADLINE), Ok(1));
    let late: Vec<BusEvent<u64>> = slow_events.collect(Duration::ZERO);
    assert!(
        late.iter().all(|e| !matches!(e, BusEvent::Down { .. })),
        "{late:?}"
    );
    assert_eq!(
        next_message(&slow_events, Duration::from_secs(1)),
        "caught up"
    );
}

#[track_caller]
fn assert_within_a_second(since: Instant) {
    support::assert_within(since.elapsed(), Duration::ZERO..=Duration::from_secs(1));
}
