//! A publish reaches every instance subscribed to its channel, each once and
//! all in one order, and Redis's count of receivers comes back with it; an
//! instance not subscribed to a channel receives none of its traffic.
//! Windows: each outcome within `PUBLISH_DEADLINE` (900 ms), each message
//! within 1 s, "nothing arrives" watched for 200 ms.

use std::time::Duration;

use support::ms;
use support::redis::Redis;
use vigil::bus::{BusEvent, PublishError, PUBLISH_DEADLINE};

use crate::{instance, next_message, outcome};

#[test]
fn publishes_from_two_instances_reach_all_three_once_in_one_order() {
    let Some(redis) = Redis::start() else { return };
    let url = redis.url();
    let instances = [
        instance(&url, &["room.7"]),
        instance(&url, &["room.7"]),
        instance(&url, &["room.7"]),
    ];
    // Instances 0 and 1 publish in turns; each publish is answered before
    // the next, so the bus's order is the order of the calls.
    let mut sent = Vec::new();
    for i in 0..40u64 {
        let (bus, events) = &instances[(i % 2) as usize];
        let text = format!("m{i}");
        bus.publish("room.7", text.clone(), i).unwrap();
        assert_eq!(
            outcome(events, i, PUBLISH_DEADLINE),
            Ok(3),
            "every instance is a receiver"
        );
        sent.push(text);
    }
    for (n, (bus, events)) in instances.iter().enumerate() {
        let got: Vec<String> = (0..sent.len())
            .map(|_| next_message(events, Duration::from_secs(1)))
            .collect();
        assert_eq!(
            got, sent,
            "instance {n} sees every message once, in the bus's order"
        );
        let stats = bus.stats();
        assert_eq!(stats.messages_in, 40);
        let published = if n < 2 { 20 } else { 0 };
        assert_eq!(stats.messages_out, published);
        assert_eq!(stats.publish_latency.count(), published);
        assert_eq!(stats.publish_failed + stats.publish_refused, 0);
    }
}

#[test]
fn only_instances_subscribed_to_a_channel_receive_it() {
    let Some(redis) = Redis::start() else { return };
    let url = redis.url();
    let (publisher, published) = instance(&url, &[]);
    let (member, member_events) = instance(&url, &["group.1"]);
    let (other, other_events) = instance(&url, &["group.2"]);

    publisher.publish("group.1", "one", 1).unwrap();
    assert_eq!(
        outcome(&published, 1, PUBLISH_DEADLINE),
        Ok(1),
        "one instance has a member"
    );
    assert_eq!(next_message(&member_events, Duration::from_secs(1)), "one");

    // On demand: the other instance gets a member of group 1.
    other.subscribe("group.1");
    other_events.wait_for(Duration::from_secs(1), |e| {
        matches!(e, BusEvent::Subscribed { .. }).then_some(())
    });
    publisher.publish("group.1", "two", 2).unwrap();
    assert_eq!(outcome(&published, 2, PUBLISH_DEADLINE), Ok(2));
    assert_eq!(next_message(&member_events, Duration::from_secs(1)), "two");
    assert_eq!(next_message(&other_events, Duration::from_secs(1)), "two");

    // And loses it: Redis stops sending it group 1's traffic.
    other.unsubscribe("group.1");
    let mut token = 3;
    loop {
        publisher
            .publish("group.1", format!("t{token}"), token)
            .unwrap();
        if outcome(&published, token, PUBLISH_DEADLINE) == Ok(1) {
            break;
        }
        assert!(token < 3 + 20, "the unsubscribe takes effect within 1 s");
        std::thread::sleep(ms(50));
        token += 1;
    }
    let last = format!("t{token}");
    let seen: Vec<String> = other_events
        .collect(ms(200))
        .into_iter()
        .filter_map(|e| match e {
            BusEvent::Message { payload, .. } => {
                Some(String::from_utf8_lossy(&payload).into_owned())
            }
            _ => None,
        })
        .collect();
    assert!(
        !seen.contains(&last),
        "{last} was published after the unsubscribe: {seen:?}"
    );
    assert!(
        published
            .collect(ms(200))
            .iter()
            .all(|e| !matches!(e, BusEvent::Message { .. })),
        "the publisher, subscribed to nothing, receives nothing"
    );
    assert_eq!(publisher.stats().messages_in, 0);
    assert_eq!(member.stats().messages_in, token, "one, two, t3..=t{token}");
}

#[test]
fn a_publish_is_refused_at_once_until_the_bus_is_up() {
    // No Redis at all: a port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (callback, events) = support::redis::Events::channel();
    let bus: vigil::bus::Bus<u64> = vigil::bus::Bus::start(
        &format!("redis://127.0.0.1:{port}").parse().unwrap(),
        callback,
    )
    .unwrap();
    assert_eq!(bus.publish("room.7", "x", 1), Err(PublishError::Down));
    let (reason, _) = events.wait_for(Duration::from_secs(1), |e| match e {
        BusEvent::Down { reason } => Some(reason.clone()),
        _ => None,
    });
    assert!(!reason.is_empty());
    assert_eq!(bus.publish("room.7", "x", 2), Err(PublishError::Down));
    assert_eq!(bus.stats().publish_refused, 2);
}

#[test]
fn bad_urls_are_errors() {
    for bad in [
        "redis//127.0.0.1",
        "redis://127.0.0.1:99999",
        "redis://127.0.0.1/x",
        "tcp://127.0.0.1:6379",
    ] {
        let err = bad.parse::<vigil::bus::BusUrl>().expect_err(bad);
        assert!(err.to_string().starts_with("bad bus URL"), "{err}");
    }
}
