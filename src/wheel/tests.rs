//! Behaviour tests for the wheel (slot arithmetic is tested in `level`).

use super::level::{level_span, RANGE};
use super::*;

/// Pops everything due at `now`, sorted by value.
fn fire<T: Ord>(wheel: &mut Wheel<T>, now: u64) -> Vec<T> {
    let mut out: Vec<T> = wheel.expire(now).map(|(_, v)| v).collect();
    out.sort();
    wheel.assert_invariants();
    out
}

#[test]
fn fires_at_exactly_its_tick_at_every_level_boundary() {
    let mut deadlines = vec![1, 2, 63, 64, 65, 4095, 4096, 4097];
    for level in 2..LEVELS {
        let span = level_span(level);
        deadlines.extend([span - 1, span, span + 1]);
    }
    deadlines.extend([RANGE - 1, RANGE, RANGE + 1, 3 * RANGE + 12345]);
    for &d in &deadlines {
        let mut wheel = Wheel::new();
        wheel.insert(d, d);
        wheel.assert_invariants();
        // Sleep-until-next_deadline loop: must never fire early, never spin.
        let mut wakeups = 0;
        loop {
            let next = wheel.next_deadline().expect("timer still pending");
            assert!(next <= d, "next_deadline {} after deadline {}", next, d);
            if next == d {
                assert_eq!(fire(&mut wheel, d - 1), Vec::<u64>::new());
                assert_eq!(fire(&mut wheel, d), vec![d]);
                break;
            }
            assert_eq!(fire(&mut wheel, next), Vec::<u64>::new(), "fired early");
            wakeups += 1;
            assert!(wakeups <= 2 * LEVELS, "too many wake-ups for {}", d);
        }
        assert!(wheel.is_empty());
    }
}

#[test]
fn nothing_fires_before_its_tick() {
    let mut wheel = Wheel::new();
    for d in 1..=300u64 {
        wheel.insert(d * 7, d * 7);
    }
    for now in 0..=2100u64 {
        let fired = fire(&mut wheel, now);
        let expect: Vec<u64> = if now > 0 && now % 7 == 0 {
            vec![now]
        } else {
            vec![]
        };
        assert_eq!(fired, expect, "at {}", now);
    }
    assert!(wheel.is_empty());
}

#[test]
fn reset_earlier_and_later() {
    let mut wheel = Wheel::new();
    let a = wheel.insert(5_000, 'a');
    let b = wheel.insert(10, 'b');
    assert!(wheel.reset(a, 20)); // earlier: from level 2 to level 0
    assert!(wheel.reset(b, 100_000)); // later
    assert_eq!(wheel.deadline(a), Some(20));
    assert_eq!(wheel.deadline(b), Some(100_000));
    assert!(fire(&mut wheel, 19).is_empty());
    assert_eq!(fire(&mut wheel, 20), vec!['a']);
    assert!(fire(&mut wheel, 99_999).is_empty());
    assert_eq!(fire(&mut wheel, 100_000), vec!['b']);
}

#[test]
fn reset_within_the_same_slot() {
    let mut wheel = Wheel::new();
    let a = wheel.insert(1_000, 'a'); // level 1, slot [960, 1024)
    assert!(wheel.reset(a, 1_010)); // same slot: no relink
    wheel.assert_invariants();
    assert!(fire(&mut wheel, 1_000).is_empty());
    assert_eq!(fire(&mut wheel, 1_010), vec!['a']);
}

#[test]
fn reset_and_cancel_while_due() {
    let mut wheel = Wheel::new();
    let keys: Vec<TimerKey> = (0..4u64).map(|i| wheel.insert(10 + i, i)).collect();
    let (first, _) = wheel.pop_expired(100).unwrap();
    let rest: Vec<TimerKey> = keys.into_iter().filter(|&k| k != first).collect();
    // Still due, moved within the due list: stays due.
    assert!(wheel.reset(rest[0], 5));
    assert!(wheel.next_deadline().unwrap() <= 5);
    // Moved out of the due list into the future.
    assert!(wheel.reset(rest[1], 200));
    assert!(wheel.cancel(rest[2]).is_some());
    wheel.assert_invariants();
    assert_eq!(wheel.pop_expired(100).map(|(k, _)| k), Some(rest[0]));
    assert_eq!(wheel.pop_expired(100), None);
    // From tick 100, 200 is in level 1, slot [192, 256).
    assert_eq!(wheel.next_deadline(), Some(192));
    assert_eq!(wheel.pop_expired(199), None);
    assert_eq!(wheel.pop_expired(200).map(|(k, _)| k), Some(rest[1]));
}

#[test]
fn reset_after_partial_cascade() {
    let mut wheel = Wheel::new();
    let a = wheel.insert(1_000, 'a');
    assert!(fire(&mut wheel, 960).is_empty()); // cascaded to level 0
    assert!(wheel.reset(a, 200_000));
    assert!(fire(&mut wheel, 1_000).is_empty());
    assert!(wheel.reset(a, 1_001));
    assert_eq!(fire(&mut wheel, 1_001), vec!['a']);
}

#[test]
fn cancel_removes() {
    let mut wheel = Wheel::new();
    let a = wheel.insert(70, 'a');
    let b = wheel.insert(70, 'b');
    let c = wheel.insert(70, 'c');
    assert_eq!(wheel.cancel(b), Some('b')); // middle of a slot list
    assert_eq!(wheel.cancel(c), Some('c')); // head
    assert_eq!(wheel.len(), 1);
    wheel.assert_invariants();
    assert_eq!(fire(&mut wheel, 70), vec!['a']);
    assert_eq!(wheel.cancel(a), None);
}

#[test]
fn stale_keys_are_refused_after_fire_cancel_and_reuse() {
    let mut wheel = Wheel::new();
    let fired = wheel.insert(1, 1u64);
    let cancelled = wheel.insert(2, 2);
    assert_eq!(wheel.pop_expired(1), Some((fired, 1)));
    assert_eq!(wheel.cancel(cancelled), Some(2));
    // Both cells are reused by new timers.
    let x = wheel.insert(10, 10);
    let y = wheel.insert(10, 20);
    let reused = [x.index, y.index];
    assert!(reused.contains(&fired.index) && reused.contains(&cancelled.index));
    for stale in [fired, cancelled] {
        assert!(!wheel.reset(stale, 5));
        assert_eq!(wheel.cancel(stale), None);
        assert_eq!(wheel.deadline(stale), None);
        assert_eq!(wheel.get(stale), None);
        assert_eq!(wheel.get_mut(stale), None);
    }
    assert_eq!(wheel.deadline(x), Some(10));
    assert_eq!(wheel.deadline(y), Some(10));
    assert_eq!(fire(&mut wheel, 10), vec![10, 20]);
    // A key from another index range entirely.
    let bogus = TimerKey::new(1_000, 1);
    assert!(!wheel.reset(bogus, 1));
}

#[test]
fn deadline_in_the_past_fires_on_next_pop() {
    let mut wheel = Wheel::new();
    assert_eq!(fire(&mut wheel, 1_000), Vec::<u64>::new());
    wheel.insert(3, 3);
    wheel.insert(1_000, 1_000);
    wheel.insert(1_001, 1_001);
    assert_eq!(wheel.next_deadline(), Some(3));
    // A smaller `now` is treated as the current tick.
    assert_eq!(fire(&mut wheel, 5), vec![3, 1_000]);
    assert_eq!(wheel.now(), 1_000);
    assert_eq!(fire(&mut wheel, 1_001), vec![1_001]);
}

#[test]
fn reset_into_the_past_is_due() {
    let mut wheel = Wheel::new();
    let a = wheel.insert(500, ());
    wheel.pop_expired(100);
    assert!(wheel.reset(a, 50));
    assert_eq!(wheel.next_deadline(), Some(50));
    assert_eq!(wheel.pop_expired(100), Some((a, ())));
}

#[test]
fn far_future_deadline_is_held_and_refiled() {
    let mut wheel = Wheel::new();
    let far = 5 * RANGE + 777;
    wheel.insert(far, "far");
    wheel.insert(RANGE + 1, "just out of range");
    wheel.assert_invariants();
    assert!(wheel.next_deadline().unwrap() <= RANGE + 1);
    assert_eq!(fire(&mut wheel, RANGE), Vec::<&str>::new());
    assert_eq!(fire(&mut wheel, RANGE + 1), vec!["just out of range"]);
    // Step through it as a sleeping caller would.
    let mut wakeups = 0;
    while let Some(next) = wheel.next_deadline() {
        assert!(next <= far);
        let fired = fire(&mut wheel, next);
        if next == far {
            assert_eq!(fired, vec!["far"]);
        } else {
            assert!(fired.is_empty(), "fired early at {}", next);
        }
        wakeups += 1;
    }
    // Once per top-level span while out of range, then once per level.
    assert!(wakeups <= 5 + 2 * LEVELS, "{} wake-ups", wakeups);
}

#[test]
fn deadline_at_the_end_of_time() {
    let mut wheel = Wheel::new();
    wheel.insert(u64::MAX, 1);
    wheel.insert(u64::MAX - 1, 0);
    assert_eq!(fire(&mut wheel, u64::MAX - 2), Vec::<u64>::new());
    assert_eq!(fire(&mut wheel, u64::MAX - 1), vec![0]);
    assert_eq!(fire(&mut wheel, u64::MAX), vec![1]);
}

#[test]
fn jumps_of_many_ranges_do_not_revisit_slots() {
    let mut wheel = Wheel::new();
    wheel.insert(1 << 62, 'b');
    wheel.insert(1 << 50, 'a');
    wheel.insert((1 << 62) + 1, 'c');
    assert_eq!(fire(&mut wheel, 1 << 61), vec!['a']);
    assert_eq!(fire(&mut wheel, 1 << 62), vec!['b']);
    assert_eq!(fire(&mut wheel, u64::MAX), vec!['c']);
    assert!(wheel.cascades < 20, "{}", wheel.cascades);
}

#[test]
fn huge_jump_costs_slots_not_ticks() {
    // 1000 timers spread over ~20 years of 10 ms ticks, then jump 10 years.
    const YEAR: u64 = 365 * 24 * 3600 * 100;
    let mut wheel = Wheel::new();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut deadlines = Vec::new();
    for i in 0..1000u64 {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let d = 1 + rng % (20 * YEAR);
        deadlines.push(d);
        wheel.insert(d, i);
    }
    let start = std::time::Instant::now();
    let fired = fire(&mut wheel, 10 * YEAR);
    let due = deadlines.iter().filter(|&&d| d <= 10 * YEAR).count();
    assert_eq!(fired.len(), due);
    assert_eq!(wheel.len(), 1000 - due);
    // Each slot is cascaded at most once per level visit: far fewer steps
    // than the 3e10 ticks crossed.
    assert!(wheel.cascades <= 1000 * LEVELS as u64, "{}", wheel.cascades);
    assert!(start.elapsed() < std::time::Duration::from_secs(1));
    let rest = fire(&mut wheel, 20 * YEAR);
    assert_eq!(rest.len(), 1000 - due);
    assert!(wheel.is_empty());
}

#[test]
fn reinsert_while_draining() {
    // The reactor pattern: handle a fired timer by inserting a new one.
    let mut wheel = Wheel::new();
    wheel.insert(10, 0u64);
    let mut seen = Vec::new();
    while let Some((_, n)) = wheel.pop_expired(100) {
        seen.push(n);
        if n < 5 {
            wheel.insert(10 + 10 * (n + 1), n + 1); // 20, 30, ... all <= 100
            wheel.insert(1_000, 100 + n); // not due
        }
    }
    assert_eq!(seen, [0, 1, 2, 3, 4, 5]);
    assert_eq!(wheel.len(), 5);
    wheel.assert_invariants();
}

#[test]
fn next_deadline_is_exact_in_level_0_and_makes_progress() {
    let mut wheel = Wheel::new();
    wheel.insert(100_000, ());
    wheel.insert(5_000, ());
    let mut last = 0;
    while let Some(next) = wheel.next_deadline() {
        assert!(next > last || wheel.due_len > 0, "no progress");
        let before = (wheel.len(), wheel.cascades);
        wheel.pop_expired(next);
        assert_ne!((wheel.len(), wheel.cascades), before, "spun at {}", next);
        last = next;
    }
}

#[test]
fn values_are_reachable_by_key() {
    let mut wheel: Wheel<String> = Wheel::with_capacity(4);
    let k = wheel.insert(9, "x".to_string());
    wheel.get_mut(k).unwrap().push('y');
    assert_eq!(wheel.get(k).map(String::as_str), Some("xy"));
    assert_eq!(wheel.pop_expired(9).map(|(_, v)| v).as_deref(), Some("xy"));
    assert!(format!("{:?}", wheel).contains("Wheel"));
}

#[test]
fn an_optional_key_costs_no_more_than_a_key() {
    // Every connection keeps an `Option<TimerKey>`.
    assert_eq!(std::mem::size_of::<Option<TimerKey>>(), 8);
}
