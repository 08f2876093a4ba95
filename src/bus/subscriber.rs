//! The subscriber thread: holds the subscriber connection, subscribes and
//! unsubscribes on demand, hands every message to the embedder in the order
//! Redis delivered them, and tells a cut-off from Redis going away.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::{Connection, PubSub, RedisResult};

use crate::bus::publisher::Job;
use crate::bus::shared::{Backoff, BusEvent, Link, Shared, IO_TIMEOUT, KEEPALIVE};

/// How long one wait for a message lasts: how soon a subscribe, an
/// unsubscribe or a stop asked meanwhile is acted on.
const POLL: Duration = Duration::from_millis(50);

/// What the subscriber thread is asked to do.
#[derive(Debug)]
pub(crate) enum Command {
    Subscribe(String),
    Unsubscribe(String),
    Stop,
}

/// Whether the thread goes on.
enum Flow {
    Go,
    Stop,
}

/// The subscriber thread's body.
pub(crate) fn run<T>(
    shared: Arc<Shared<T>>,
    commands: Receiver<Command>,
    publisher: SyncSender<Job<T>>,
) {
    Subscriber {
        shared,
        commands,
        publisher,
        channels: BTreeSet::new(),
    }
    .run();
}

struct Subscriber<T> {
    shared: Arc<Shared<T>>,
    commands: Receiver<Command>,
    /// To ask the publisher to check its connection when this one is lost.
    publisher: SyncSender<Job<T>>,
    /// The channels asked for, subscribed again on every connection.
    channels: BTreeSet<String>,
}

impl<T> Subscriber<T> {
    fn run(&mut self) {
        let mut backoff = Backoff::new();
        // A connection made at once after one was lost: Redis is there.
        let mut next: Option<Connection> = None;
        // Why the last connection ended, when Redis was still there.
        let mut cut_off: Option<String> = None;
        let mut lost = false;
        while !self.shared.stopping() {
            let made = match next.take() {
                Some(con) => Ok(con),
                None => self.shared.connect(),
            };
            let mut con = match made {
                Ok(con) => con,
                Err(e) => {
                    lost = true;
                    let reason = cut_off.take().unwrap_or_else(|| e.to_string());
                    self.shared.link(Link::Subscriber, Err(&reason));
                    match self.wait(backoff.next_delay()) {
                        Flow::Go => continue,
                        Flow::Stop => return,
                    }
                }
            };
            let mut pubsub = con.as_pubsub();
            if let Err(e) = self.subscribe_all(&mut pubsub) {
                lost = true;
                let reason = cut_off.take().unwrap_or_else(|| e.to_string());
                self.shared.link(Link::Subscriber, Err(&reason));
                drop(pubsub);
                match self.wait(backoff.next_delay()) {
                    Flow::Go => continue,
                    Flow::Stop => return,
                }
            }
            backoff.reset();
            if std::mem::take(&mut lost) {
                self.shared.reconnects.fetch_add(1, Relaxed);
            }
            if let Some(reason) = cut_off.take() {
                self.shared.cutoffs.fetch_add(1, Relaxed);
                log::warn!(
                    "bus {}: Redis cut the subscriber off ({reason}), maybe for falling behind; \
                     reconnected, messages published meanwhile are missed",
                    self.shared.url
                );
                self.shared.emit(BusEvent::CutOff { reason });
            }
            self.shared.link(Link::Subscriber, Ok(()));
            let Err(reason) = self.listen(&mut pubsub) else {
                return; // stopped
            };
            drop(pubsub);
            drop(con);
            lost = true;
            // Redis may be gone: the publisher should not wait for a
            // publish to find out. (A full queue means it is busy and will.)
            let _ = self.publisher.try_send(Job::Check);
            // A Redis that answers at once closed that connection on
            // purpose: a cut-off, not an outage.
            match self.shared.connect() {
                Ok(con) => {
                    next = Some(con);
                    cut_off = Some(reason);
                }
                Err(_) => {
                    self.shared.link(Link::Subscriber, Err(&reason));
                    if let Flow::Stop = self.wait(backoff.next_delay()) {
                        return;
                    }
                }
            }
        }
    }

    /// Subscribes to every channel asked for (one `SUBSCRIBE`), and says so.
    fn subscribe_all(&mut self, pubsub: &mut PubSub<'_>) -> RedisResult<()> {
        if !self.channels.is_empty() {
            let channels: Vec<&str> = self.channels.iter().map(String::as_str).collect();
            bounded(pubsub, |pubsub| pubsub.subscribe(&channels))?;
        }
        for channel in &self.channels {
            self.shared.emit(BusEvent::Subscribed {
                channel: channel.clone(),
            });
        }
        Ok(())
    }

    /// Hands messages to the embedder until the connection fails
    /// (`Err(reason)`) or the bus stops (`Ok`).
    fn listen(&mut self, pubsub: &mut PubSub<'_>) -> Result<(), String> {
        pubsub
            .set_read_timeout(Some(POLL))
            .map_err(|e| e.to_string())?;
        let mut heard = Instant::now();
        loop {
            if self.shared.stopping() {
                return Ok(());
            }
            loop {
                let command = match self.commands.try_recv() {
                    Ok(command) => command,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return Ok(()),
                };
                if let Flow::Stop = self
                    .apply(command, Some(pubsub))
                    .map_err(|e| e.to_string())?
                {
                    return Ok(());
                }
            }
            match pubsub.get_message() {
                Ok(msg) => {
                    heard = Instant::now();
                    self.shared.messages_in.fetch_add(1, Relaxed);
                    self.shared.emit(BusEvent::Message {
                        channel: msg.get_channel_name().to_owned(),
                        payload: Bytes::copy_from_slice(msg.get_payload_bytes()),
                    });
                }
                Err(e) if e.is_timeout() => {
                    if heard.elapsed() >= KEEPALIVE {
                        bounded(pubsub, |pubsub| pubsub.ping::<()>())
                            .map_err(|e| format!("ping: {e}"))?;
                        heard = Instant::now();
                    }
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// Notes `command`, and tells Redis when connected.
    fn apply(&mut self, command: Command, pubsub: Option<&mut PubSub<'_>>) -> RedisResult<Flow> {
        match command {
            Command::Subscribe(channel) => {
                let new = self.channels.insert(channel.clone());
                if let Some(pubsub) = pubsub {
                    if new {
                        bounded(pubsub, |pubsub| pubsub.subscribe(&channel))?;
                    }
                    self.shared.emit(BusEvent::Subscribed { channel });
                }
            }
            Command::Unsubscribe(channel) => {
                if let (true, Some(pubsub)) = (self.channels.remove(&channel), pubsub) {
                    bounded(pubsub, |pubsub| pubsub.unsubscribe(&channel))?;
                }
            }
            Command::Stop => return Ok(Flow::Stop),
        }
        Ok(Flow::Go)
    }

    /// Waits `delay` before the next attempt to connect, noting the
    /// subscribes and unsubscribes asked for meanwhile.
    fn wait(&mut self, delay: Duration) -> Flow {
        let until = Instant::now() + delay;
        loop {
            if self.shared.stopping() {
                return Flow::Stop;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Flow::Go;
            }
            match self.commands.recv_timeout(left) {
                Ok(command) => {
                    // Not connected: nothing is sent, so nothing can fail.
                    if let Ok(Flow::Stop) = self.apply(command, None) {
                        return Flow::Stop;
                    }
                }
                Err(RecvTimeoutError::Timeout) => return Flow::Go,
                Err(RecvTimeoutError::Disconnected) => return Flow::Stop,
            }
        }
    }
}

/// Runs `f`, which waits for Redis's answer, with that wait bounded by
/// [`IO_TIMEOUT`] rather than [`POLL`].
fn bounded<R>(
    pubsub: &mut PubSub<'_>,
    f: impl FnOnce(&mut PubSub<'_>) -> RedisResult<R>,
) -> RedisResult<R> {
    pubsub.set_read_timeout(Some(IO_TIMEOUT))?;
    let result = f(pubsub)?;
    pubsub.set_read_timeout(Some(POLL))?;
    Ok(result)
}
