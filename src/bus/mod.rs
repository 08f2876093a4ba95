//! A bridge to a Redis pub/sub bus, so that a fan-out spans processes and
//! boxes: [`Bus`] subscribes to channels on demand and hands every message
//! to the embedder, and publishes what the embedder gives it.
//!
//! - [`Bus::start`] takes a [`BusUrl`] (`redis://HOST[:PORT][/DB]`, parsed
//!   strictly) and a callback through which everything arrives, as
//!   [`BusEvent`]s: messages, each publish's outcome, the bus going
//!   [`Up`](BusEvent::Up) or [`Down`](BusEvent::Down), Redis cutting the
//!   subscriber off ([`CutOff`](BusEvent::CutOff)).
//! - [`Bus::publish`] never blocks: the message is queued for the publisher
//!   thread, or refused at once ([`PublishError`]) when the bus is down or
//!   the queue is full. Its outcome comes later through the callback, within
//!   [`PUBLISH_DEADLINE`], with the number of subscribers Redis reached.
//! - [`Bus::subscribe`] and [`Bus::unsubscribe`] change what arrives: a bus
//!   subscribed to nothing receives nothing, so an instance with no member
//!   of a group pays nothing for the group's traffic.
//! - [`Bus::stats`] copies the counters ([`BusStats`]);
//!   `vigil::metrics::Exposition::bus` renders them (feature `metrics`).
//!
//! Behind the `bus` feature (off by default), with the [`redis`] crate's
//! blocking client.
//!
//! # Threads
//!
//! A bus is two threads, each with one connection: the subscriber (a
//! connection in subscribed mode can do nothing else) and the publisher.
//! The callback is called on both, so it must be `Sync`; it should be quick
//! (forward the event to the embedder's loop and return): a subscriber
//! callback that stalls makes Redis cut the subscriber off once its output
//! buffer for it is full. Each thread reconnects by itself, with a back-off
//! doubling from 25 ms up to [`MAX_BACKOFF`], and subscribes again to every
//! channel asked for. Every wait on Redis is bounded ([`IO_TIMEOUT`] for a
//! connect, a write, a subscribe, a keep-alive ping; [`PUBLISH_DEADLINE`]
//! for a publish's answer), so a Redis that accepts connections and never
//! answers stalls nothing: the bus is reported down and publishes fail.
//!
//! # Examples
//!
//! ```no_run
//! use std::sync::mpsc;
//! use vigil::bus::{Bus, BusEvent, BusUrl};
//!
//! let url: BusUrl = "redis://127.0.0.1:6379".parse()?;
//! let (tx, events) = mpsc::channel();
//! let bus: Bus<u64> = Bus::start(&url, move |event| {
//!     let _ = tx.send(event);
//! })?;
//! bus.subscribe("room.7");
//! // ... once `BusEvent::Up` and `BusEvent::Subscribed` have arrived:
//! bus.publish("room.7", "hello", 1)?;
//! for event in events {
//!     match event {
//!         BusEvent::Message { channel, payload } => println!("{channel}: {payload:?}"),
//!         BusEvent::Published { token, receivers } => println!("#{token} reached {receivers}"),
//!         BusEvent::PublishFailed { token, reason } => println!("#{token} failed: {reason}"),
//!         other => println!("{other:?}"),
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(feature = "metrics")]
pub(crate) mod metrics;
mod publisher;
mod shared;
mod subscriber;
mod url;

use std::fmt;
use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{self, Sender, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Instant;

use bytes::Bytes;

use publisher::{Job, Publish};
use shared::Shared;
use subscriber::Command;

pub use publisher::PUBLISH_DEADLINE;
pub use shared::{
    BusEvent, BusState, BusStats, PublishError, PublishFailure, IO_TIMEOUT, LATENCY_BOUNDS_NS,
    MAX_BACKOFF,
};
pub use url::{BadBusUrl, BusUrl, DEFAULT_PORT};

/// Publishes the queue to the publisher thread holds by default.
pub const DEFAULT_QUEUE: usize = 4096;

/// A connection to a Redis pub/sub bus: a subscriber and a publisher
/// thread, and the embedder's callback. Dropping it stops both threads.
///
/// `T` is the embedder's token for a publish, handed back with its outcome.
///
/// # Examples
///
/// ```no_run
/// use vigil::bus::{Bus, BusEvent};
///
/// let bus: Bus<u64> = Bus::start(&"redis://127.0.0.1".parse()?, |event: BusEvent<u64>| {
///     println!("{event:?}");
/// })?;
/// bus.subscribe("device.42");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Bus<T = u64> {
    shared: Arc<Shared<T>>,
    jobs: SyncSender<Job<T>>,
    commands: Sender<Command>,
    threads: Vec<JoinHandle<()>>,
}

impl<T: Send + 'static> Bus<T> {
    /// Starts a bus on `url` with a queue of [`DEFAULT_QUEUE`] publishes;
    /// every [`BusEvent`] goes to `callback`, on the bus's threads.
    ///
    /// It returns at once: the first event says whether Redis was reached
    /// ([`Up`](BusEvent::Up)) or not ([`Down`](BusEvent::Down)); until
    /// `Up`, [`publish`](Self::publish) refuses.
    ///
    /// # Errors
    ///
    /// The threads could not be spawned.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let url = "redis://127.0.0.1:6379/0".parse()?;
    /// let bus: vigil::bus::Bus<u64> = vigil::bus::Bus::start(&url, |_event| {})?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start<F>(url: &BusUrl, callback: F) -> io::Result<Bus<T>>
    where
        F: Fn(BusEvent<T>) + Send + Sync + 'static,
    {
        Bus::with_queue(url, DEFAULT_QUEUE, callback)
    }

    /// [`start`](Self::start), with a queue of `capacity` publishes (at
    /// least 1): a publish that finds it full is refused
    /// ([`PublishError::Full`]).
    ///
    /// # Errors
    ///
    /// The threads could not be spawned.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// let url = "redis://127.0.0.1".parse()?;
    /// let bus: vigil::bus::Bus<u32> = vigil::bus::Bus::with_queue(&url, 64, |_event| {})?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_queue<F>(url: &BusUrl, capacity: usize, callback: F) -> io::Result<Bus<T>>
    where
        F: Fn(BusEvent<T>) + Send + Sync + 'static,
    {
        let info = redis::ConnectionInfo {
            addr: redis::ConnectionAddr::Tcp(url.host().to_owned(), url.port()),
            redis: redis::RedisConnectionInfo {
                db: i64::from(url.db()),
                ..Default::default()
            },
        };
        let client = redis::Client::open(info).map_err(io::Error::other)?;
        let shared = Arc::new(Shared::new(url.clone(), client, Box::new(callback)));
        let (jobs, job_rx) = mpsc::sync_channel(capacity.max(1));
        let (commands, command_rx) = mpsc::channel();
        let mut bus = Bus {
            shared: shared.clone(),
            jobs: jobs.clone(),
            commands,
            threads: Vec::with_capacity(2),
        };
        let sub = shared.clone();
        bus.threads.push(
            thread::Builder::new()
                .name("vigil-bus-sub".into())
                .spawn(move || subscriber::run(sub, command_rx, jobs))?,
        );
        bus.threads.push(
            thread::Builder::new()
                .name("vigil-bus-pub".into())
                .spawn(move || publisher::run(shared, job_rx))?,
        );
        Ok(bus)
    }

    /// Queues `payload` for publishing on `channel`; never blocks. Its
    /// outcome comes through the callback with `token`:
    /// [`Published`](BusEvent::Published) with the number of subscribers
    /// Redis reached, or [`PublishFailed`](BusEvent::PublishFailed), within
    /// [`PUBLISH_DEADLINE`] of this call. A failed publish is never retried.
    ///
    /// # Errors
    ///
    /// Refused at once, with no event to follow: the bus is not
    /// [`Up`](BusState::Up) ([`PublishError::Down`]), or the queue is full
    /// ([`PublishError::Full`]).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let bus: vigil::bus::Bus<u64> = vigil::bus::Bus::start(&"redis://h".parse()?, |_| {})?;
    /// match bus.publish("room.7", "hello", 42) {
    ///     Ok(()) => {} // the answer comes through the callback
    ///     Err(refused) => eprintln!("not published: {refused}"),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish(
        &self,
        channel: &str,
        payload: impl Into<Bytes>,
        token: T,
    ) -> Result<(), PublishError> {
        if self.shared.state() != BusState::Up {
            self.shared.publish_refused.fetch_add(1, Relaxed);
            return Err(PublishError::Down);
        }
        let job = Job::Publish(Publish {
            channel: channel.to_owned(),
            payload: payload.into(),
            token,
            at: Instant::now(),
        });
        self.jobs.try_send(job).map_err(|e| {
            self.shared.publish_refused.fetch_add(1, Relaxed);
            match e {
                TrySendError::Full(_) => PublishError::Full,
                TrySendError::Disconnected(_) => PublishError::Down,
            }
        })
    }
}

impl<T> Bus<T> {
    /// Subscribes to `channel`, now and after every reconnect, until
    /// [`unsubscribe`](Self::unsubscribe). [`BusEvent::Subscribed`] says
    /// when Redis has confirmed it (within about 50 ms while connected);
    /// messages published before that are not received.
    ///
    /// Subscriptions are not counted: subscribing twice, then unsubscribing
    /// once, leaves the channel unsubscribed. An embedder with groups
    /// subscribes when a group gets its first local member and unsubscribes
    /// when it loses its last.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let bus: vigil::bus::Bus<u64> = vigil::bus::Bus::start(&"redis://h".parse()?, |_| {})?;
    /// bus.subscribe("room.7");
    /// bus.unsubscribe("room.7");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe(&self, channel: &str) {
        let _ = self.commands.send(Command::Subscribe(channel.to_owned()));
    }

    /// Stops receiving `channel`'s messages (messages already on their way
    /// may still arrive).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let bus: vigil::bus::Bus<u64> = vigil::bus::Bus::start(&"redis://h".parse()?, |_| {})?;
    /// bus.unsubscribe("room.7");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn unsubscribe(&self, channel: &str) {
        let _ = self.commands.send(Command::Unsubscribe(channel.to_owned()));
    }

    /// The state last reported through [`BusEvent::Up`] / [`BusEvent::Down`].
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let bus: vigil::bus::Bus<u64> = vigil::bus::Bus::start(&"redis://h".parse()?, |_| {})?;
    /// if bus.state() != vigil::bus::BusState::Up {
    ///     eprintln!("publishes are refused for now");
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn state(&self) -> BusState {
        self.shared.state()
    }

    /// A copy of the counters.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let bus: vigil::bus::Bus<u64> = vigil::bus::Bus::start(&"redis://h".parse()?, |_| {})?;
    /// let stats = bus.stats();
    /// println!("{} in, {} out, {} reconnects", stats.messages_in, stats.messages_out, stats.reconnects);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> BusStats {
        self.shared.stats()
    }

    /// The URL it was started with.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # let bus: vigil::bus::Bus<u64> = vigil::bus::Bus::start(&"redis://h".parse()?, |_| {})?;
    /// assert_eq!(bus.url().host(), "h");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn url(&self) -> &BusUrl {
        &self.shared.url
    }
}

impl<T> Drop for Bus<T> {
    /// Stops both threads and waits for them: at most about one
    /// [`IO_TIMEOUT`] or [`PUBLISH_DEADLINE`], plus a callback in progress
    /// (so a bus must not be dropped from its own callback: that thread
    /// would wait for itself).
    fn drop(&mut self) {
        self.shared.stop.store(true, Relaxed);
        let _ = self.commands.send(Command::Stop);
        // A full queue means the publisher is working and sees the flag
        // between batches.
        let _ = self.jobs.try_send(Job::Stop);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl<T> fmt::Debug for Bus<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bus")
            .field("url", &self.shared.url.to_string())
            .field("state", &self.shared.state())
            .finish_non_exhaustive()
    }
}
