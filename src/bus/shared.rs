//! What the bus's two threads share: the embedder's callback, the bus state
//! and its transitions, the counters.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::bus::url::BusUrl;
use crate::histogram::{Histogram, SUB_SECOND_BOUNDS_NS};

/// Everything the bus tells its embedder, through the callback given to
/// [`Bus::start`](crate::bus::Bus::start).
///
/// `T` is the embedder's token for a publish (a connection id, say): it
/// comes back in the publish's one outcome, [`Published`](Self::Published)
/// or [`PublishFailed`](Self::PublishFailed).
///
/// # Order
///
/// Messages come from one thread, in the order Redis delivered them, so two
/// instances subscribed to one channel see its messages in the same order.
/// Publish outcomes come from another thread, in the order of the
/// [`publish`](crate::bus::Bus::publish) calls. [`Up`](Self::Up) and
/// [`Down`](Self::Down) alternate (the first one is either), from whichever
/// thread saw the change. Between the threads there is no order: a message
/// may arrive before or after the [`Published`](Self::Published) of the
/// publish that sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusEvent<T = u64> {
    /// The bus is connected (both its connections) and subscribed to the
    /// channels asked for: publishes are taken again, messages flow. Sent
    /// at start and after every [`Down`](Self::Down).
    Up,
    /// The bus lost Redis, or could not reach it at start: publishes are
    /// refused at once until [`Up`](Self::Up), and what is published
    /// meanwhile is missed (pub/sub keeps no history). The bus reconnects
    /// by itself, with a back-off capped at [`MAX_BACKOFF`](crate::bus::MAX_BACKOFF).
    Down {
        /// What failed, for the log.
        reason: String,
    },
    /// Redis closed the subscriber connection while staying reachable: most
    /// often because the subscriber fell behind (`client-output-buffer-limit
    /// pubsub`), or a `CLIENT KILL`. Messages published between the close
    /// and this event were missed. The bus has already reconnected and
    /// subscribed again when it says so (no [`Down`](Self::Down) is sent).
    CutOff {
        /// The error the subscriber connection ended with.
        reason: String,
    },
    /// Redis confirmed a [`subscribe`](crate::bus::Bus::subscribe): messages
    /// published on `channel` from now on arrive.
    Subscribed {
        /// The channel.
        channel: String,
    },
    /// A message published on a channel the bus is subscribed to (by any
    /// instance, this one included).
    Message {
        /// The channel it was published on.
        channel: String,
        /// Its bytes, as published.
        payload: Bytes,
    },
    /// Redis answered a publish: `receivers` subscribers (connections, so
    /// instances) were subscribed to its channel and got it.
    Published {
        /// The token given to [`publish`](crate::bus::Bus::publish).
        token: T,
        /// Redis's answer to `PUBLISH`.
        receivers: u64,
    },
    /// A publish that will never be answered: the bus went down before it
    /// was sent (it went nowhere), Redis did not answer within
    /// [`PUBLISH_DEADLINE`](crate::bus::PUBLISH_DEADLINE) or the connection
    /// broke after it was sent (whether it reached anyone is unknown: a
    /// Redis that hung may still deliver it when it wakes), or Redis refused
    /// it. It is never retried, so never delivered twice.
    PublishFailed {
        /// The token given to [`publish`](crate::bus::Bus::publish).
        token: T,
        /// Why.
        reason: PublishFailure,
    },
}

/// Why a publish taken by [`Bus::publish`](crate::bus::Bus::publish) failed.
///
/// # Examples
///
/// ```
/// use vigil::bus::PublishFailure;
///
/// assert_eq!(PublishFailure::Timeout.to_string(), "no answer from Redis in time");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishFailure {
    /// The bus went down before the publish was sent; it went nowhere.
    Down,
    /// Redis did not answer in time (the connection is then replaced). The
    /// publish may or may not reach the subscribers (a Redis that hung
    /// delivers what it had read when it wakes).
    Timeout,
    /// The connection broke while or after the publish was sent: it may or
    /// may not have reached the subscribers.
    Broken(String),
    /// Redis answered with an error.
    Refused(String),
}

impl std::fmt::Display for PublishFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublishFailure::Down => f.write_str("the bus is down"),
            PublishFailure::Timeout => f.write_str("no answer from Redis in time"),
            PublishFailure::Broken(why) => write!(f, "the connection broke: {why}"),
            PublishFailure::Refused(why) => write!(f, "Redis refused it: {why}"),
        }
    }
}

/// Why [`Bus::publish`](crate::bus::Bus::publish) refused a message at once
/// (no event follows for it).
///
/// # Examples
///
/// ```
/// assert_eq!(vigil::bus::PublishError::Full.to_string(), "the publish queue is full");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishError {
    /// The bus is not [`Up`](BusState::Up).
    Down,
    /// The queue to the publisher thread is full: Redis is slower than the
    /// publishes.
    Full,
}

impl std::fmt::Display for PublishError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PublishError::Down => "the bus is down",
            PublishError::Full => "the publish queue is full",
        })
    }
}

impl std::error::Error for PublishError {}

/// Whether the bus is connected, as last reported by [`BusEvent::Up`] and
/// [`BusEvent::Down`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusState {
    /// Started, neither up nor down yet.
    Connecting,
    /// Both connections are up.
    Up,
    /// At least one connection is down and being reconnected.
    Down,
}

impl BusState {
    fn from_u8(v: u8) -> BusState {
        match v {
            1 => BusState::Up,
            2 => BusState::Down,
            _ => BusState::Connecting,
        }
    }
}

/// Upper bounds (nanoseconds) of the publish-latency histogram's buckets.
pub static LATENCY_BOUNDS_NS: [u64; 13] = SUB_SECOND_BOUNDS_NS;

/// A copy of the bus's counters, from [`Bus::stats`](crate::bus::Bus::stats).
///
/// # Examples
///
/// ```
/// let stats = vigil::bus::BusStats::default();
/// assert_eq!(stats.state, vigil::bus::BusState::Connecting);
/// assert_eq!(stats.publish_latency.count(), 0);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BusStats {
    /// The state last reported.
    pub state: BusState,
    /// Messages received from the bus (handed to the callback).
    pub messages_in: u64,
    /// Publishes Redis answered ([`BusEvent::Published`]).
    pub messages_out: u64,
    /// Publishes taken that failed ([`BusEvent::PublishFailed`]).
    pub publish_failed: u64,
    /// Publishes refused at the call ([`PublishError`]).
    pub publish_refused: u64,
    /// Connections made again after one was lost or could not be made, both
    /// connections together (cut-offs included).
    pub reconnects: u64,
    /// Subscriber connections closed by a reachable Redis
    /// ([`BusEvent::CutOff`]).
    pub cutoffs: u64,
    /// Times the bus went [`Down`](BusState::Down).
    pub downs: u64,
    /// From the [`publish`](crate::bus::Bus::publish) call to Redis's
    /// answer, in nanoseconds (exposed as seconds): the queue, one round
    /// trip and Redis's fan-out to its subscribers. The time on to the
    /// receiving instances' hand-over is theirs to measure: the payload
    /// carries nothing but the embedder's bytes.
    pub publish_latency: Histogram,
}

impl Default for BusStats {
    fn default() -> BusStats {
        BusStats {
            state: BusState::Connecting,
            messages_in: 0,
            messages_out: 0,
            publish_failed: 0,
            publish_refused: 0,
            reconnects: 0,
            cutoffs: 0,
            downs: 0,
            publish_latency: Histogram::new(&LATENCY_BOUNDS_NS, 1e-9),
        }
    }
}

/// One of the bus's two connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Link {
    Subscriber,
    Publisher,
}

/// The embedder's callback, shared by both threads.
pub(crate) type Callback<T> = Box<dyn Fn(BusEvent<T>) + Send + Sync + 'static>;

/// The state both threads share.
pub(crate) struct Shared<T> {
    pub(crate) url: BusUrl,
    pub(crate) client: redis::Client,
    callback: Callback<T>,
    pub(crate) stop: AtomicBool,
    /// [`BusState`] as a `u8`, written under `transitions`.
    state: AtomicU8,
    /// Each link's own state, written under `transitions`.
    links: Mutex<[bool; 2]>,
    pub(crate) messages_in: AtomicU64,
    pub(crate) messages_out: AtomicU64,
    pub(crate) publish_failed: AtomicU64,
    pub(crate) publish_refused: AtomicU64,
    pub(crate) reconnects: AtomicU64,
    pub(crate) cutoffs: AtomicU64,
    downs: AtomicU64,
    pub(crate) latency: Mutex<Histogram>,
}

impl<T> Shared<T> {
    pub(crate) fn new(url: BusUrl, client: redis::Client, callback: Callback<T>) -> Shared<T> {
        Shared {
            url,
            client,
            callback,
            stop: AtomicBool::new(false),
            state: AtomicU8::new(0),
            links: Mutex::new([false; 2]),
            messages_in: AtomicU64::new(0),
            messages_out: AtomicU64::new(0),
            publish_failed: AtomicU64::new(0),
            publish_refused: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            cutoffs: AtomicU64::new(0),
            downs: AtomicU64::new(0),
            latency: Mutex::new(Histogram::new(&LATENCY_BOUNDS_NS, 1e-9)),
        }
    }

    /// Hands `event` to the embedder.
    pub(crate) fn emit(&self, event: BusEvent<T>) {
        (self.callback)(event);
    }

    pub(crate) fn state(&self) -> BusState {
        BusState::from_u8(self.state.load(Relaxed))
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Relaxed)
    }

    /// Records that `link` is up (`Ok`) or failed (`Err(reason)`), and
    /// reports the bus's change of state, if any, once: one event, one log
    /// line. The bus is up when both links are; a failure makes it down.
    pub(crate) fn link(&self, link: Link, outcome: Result<(), &str>) {
        let mut links = lock(&self.links);
        links[link as usize] = outcome.is_ok();
        let before = self.state();
        let after = match outcome {
            Err(_) => BusState::Down,
            Ok(()) if links.iter().all(|&up| up) => BusState::Up,
            Ok(()) => before,
        };
        if after == before {
            return;
        }
        self.state.store(after as u8, Relaxed);
        // Reported under the lock, so that Up and Down reach the embedder
        // in the order they happened.
        match outcome {
            Err(reason) => {
                self.downs.fetch_add(1, Relaxed);
                log::warn!("bus {}: down ({reason}); reconnecting", self.url);
                self.emit(BusEvent::Down {
                    reason: reason.to_owned(),
                });
            }
            Ok(()) => {
                log::info!("bus {}: up", self.url);
                self.emit(BusEvent::Up);
            }
        }
    }

    pub(crate) fn stats(&self) -> BusStats {
        BusStats {
            state: self.state(),
            messages_in: self.messages_in.load(Relaxed),
            messages_out: self.messages_out.load(Relaxed),
            publish_failed: self.publish_failed.load(Relaxed),
            publish_refused: self.publish_refused.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
            cutoffs: self.cutoffs.load(Relaxed),
            downs: self.downs.load(Relaxed),
            publish_latency: lock(&self.latency).clone(),
        }
    }

    /// Connects one link and checks that Redis answers (`PING`), all
    /// within about [`IO_TIMEOUT`]: a Redis that accepts and stays silent
    /// fails here.
    pub(crate) fn connect(&self) -> redis::RedisResult<redis::Connection> {
        let start = Instant::now();
        let mut con = self.client.get_connection_with_timeout(IO_TIMEOUT)?;
        let left = IO_TIMEOUT.saturating_sub(start.elapsed());
        con.set_write_timeout(Some(IO_TIMEOUT))?;
        con.set_read_timeout(Some(left.max(Duration::from_millis(1))))?;
        redis::cmd("PING").query::<()>(&mut con)?;
        con.set_read_timeout(Some(IO_TIMEOUT))?;
        Ok(con)
    }
}

/// Locks `mutex`, whether or not a thread panicked holding it (what it
/// guards is plain data, valid at every step).
pub(crate) fn lock<X>(mutex: &Mutex<X>) -> MutexGuard<'_, X> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The bound on connecting, on each write, and on each answer the bus
/// waits for outside a publish (a subscribe, a keep-alive ping).
pub const IO_TIMEOUT: Duration = Duration::from_millis(500);

/// A silent connection is pinged after this long, so that a Redis that
/// stopped answering is noticed.
pub(crate) const KEEPALIVE: Duration = Duration::from_secs(1);

/// The delay before the first attempt to connect again.
const FIRST_BACKOFF: Duration = Duration::from_millis(25);

/// The longest delay between two attempts to connect: fan-out resumes within
/// this (plus one connect) of Redis coming back.
pub const MAX_BACKOFF: Duration = Duration::from_millis(400);

/// Delays between attempts to connect: doubling from 25 ms, capped at
/// [`MAX_BACKOFF`].
#[derive(Debug)]
pub(crate) struct Backoff(Duration);

impl Backoff {
    pub(crate) fn new() -> Backoff {
        Backoff(FIRST_BACKOFF)
    }

    pub(crate) fn reset(&mut self) {
        self.0 = FIRST_BACKOFF;
    }

    /// The delay before the next attempt.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.0;
        self.0 = (self.0 * 2).min(MAX_BACKOFF);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_stays_below_a_second() {
        let mut b = Backoff::new();
        let delays: Vec<u64> = (0..8).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(delays, [25, 50, 100, 200, 400, 400, 400, 400]);
        b.reset();
        assert_eq!(b.next_delay(), FIRST_BACKOFF);
    }

    #[test]
    fn up_needs_both_links_and_down_is_reported_once() {
        let events = std::sync::Arc::new(Mutex::new(Vec::new()));
        let seen = events.clone();
        let shared: Shared<u64> = Shared::new(
            "redis://127.0.0.1:1".parse().unwrap(),
            redis::Client::open("redis://127.0.0.1:1").unwrap(),
            Box::new(move |e| seen.lock().unwrap().push(e)),
        );
        shared.link(Link::Subscriber, Ok(()));
        assert_eq!(shared.state(), BusState::Connecting);
        shared.link(Link::Publisher, Ok(()));
        shared.link(Link::Publisher, Err("gone"));
        shared.link(Link::Subscriber, Err("gone too"));
        shared.link(Link::Publisher, Ok(()));
        assert_eq!(shared.state(), BusState::Down);
        shared.link(Link::Subscriber, Ok(()));
        let reason = "gone".to_owned();
        assert_eq!(
            *events.lock().unwrap(),
            [BusEvent::Up, BusEvent::Down { reason }, BusEvent::Up]
        );
        assert_eq!(shared.stats().downs, 1);
    }
}
