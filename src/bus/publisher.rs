//! The publisher thread: takes publishes from a bounded queue, sends them
//! to Redis in pipelined batches, and reports each one's outcome.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::{Connection, Value};

use crate::bus::shared::{
    lock, Backoff, BusEvent, Link, PublishFailure, Shared, IO_TIMEOUT, KEEPALIVE,
};

/// How long Redis has to answer a publish, from the
/// [`publish`](crate::bus::Bus::publish) call: its
/// [`PublishFailed`](BusEvent::PublishFailed) comes by then. A little under
/// a second, so that the embedder's reply to its peer is still within one.
pub const PUBLISH_DEADLINE: Duration = Duration::from_millis(900);

/// The most publishes sent in one write (one pipelined batch).
const BATCH: usize = 256;

/// What the publisher thread is asked to do.
pub(crate) enum Job<T> {
    /// Publish a message.
    Publish(Publish<T>),
    /// Check the connection now (the subscriber lost its own: Redis may be
    /// gone), so that the bus does not come back up on a dead connection.
    Check,
    /// The bus is being dropped.
    Stop,
}

/// One publish, as queued by [`Bus::publish`](crate::bus::Bus::publish).
pub(crate) struct Publish<T> {
    pub(crate) channel: String,
    pub(crate) payload: Bytes,
    pub(crate) token: T,
    /// When `publish` was called.
    pub(crate) at: Instant,
}

impl<T> Publish<T> {
    fn deadline(&self) -> Instant {
        self.at + PUBLISH_DEADLINE
    }
}

/// The publisher thread's body.
pub(crate) fn run<T>(shared: Arc<Shared<T>>, jobs: Receiver<Job<T>>) {
    let mut publisher = Publisher {
        shared,
        jobs,
        packed: Vec::new(),
        batch: Vec::with_capacity(BATCH),
        sent: VecDeque::with_capacity(BATCH),
    };
    publisher.run();
}

struct Publisher<T> {
    shared: Arc<Shared<T>>,
    jobs: Receiver<Job<T>>,
    /// The batch's commands, encoded; kept to reuse its allocation.
    packed: Vec<u8>,
    /// Publishes taken from the queue, not yet sent.
    batch: Vec<Publish<T>>,
    /// Publishes sent, not yet answered, oldest first.
    sent: VecDeque<Publish<T>>,
}

/// Whether the thread goes on.
enum Flow {
    Go,
    Stop,
}

impl<T> Publisher<T> {
    fn run(&mut self) {
        let mut backoff = Backoff::new();
        let mut lost = false;
        while !self.shared.stopping() {
            let mut con = match self.shared.connect() {
                Ok(con) => con,
                Err(e) => {
                    lost = true;
                    self.shared.link(Link::Publisher, Err(&e.to_string()));
                    match self.fail_for(backoff.next_delay()) {
                        Flow::Go => continue,
                        Flow::Stop => return,
                    }
                }
            };
            backoff.reset();
            if std::mem::take(&mut lost) {
                self.shared.reconnects.fetch_add(1, Relaxed);
            }
            self.shared.link(Link::Publisher, Ok(()));
            match self.serve(&mut con) {
                Ok(Flow::Stop) => return,
                Ok(Flow::Go) => {}
                Err(reason) => {
                    lost = true;
                    self.shared.link(Link::Publisher, Err(&reason));
                    // The bus is down: what is queued fails now, not after
                    // the next attempt to connect.
                    if let Flow::Stop = self.fail_queued() {
                        return;
                    }
                }
            }
        }
    }

    /// Publishes on `con` until it fails (`Err(reason)`) or the bus stops.
    fn serve(&mut self, con: &mut Connection) -> Result<Flow, String> {
        loop {
            if self.shared.stopping() {
                return Ok(Flow::Stop);
            }
            match self.jobs.recv_timeout(KEEPALIVE) {
                Ok(Job::Publish(first)) => {
                    self.batch.push(first);
                    let flow = self.fill_batch();
                    self.send_batch(con)?;
                    if let Flow::Stop = flow {
                        return Ok(Flow::Stop);
                    }
                }
                Ok(Job::Check) | Err(RecvTimeoutError::Timeout) => ping(con)?,
                Ok(Job::Stop) | Err(RecvTimeoutError::Disconnected) => return Ok(Flow::Stop),
            }
        }
    }

    /// Takes what else is queued, up to a batch.
    fn fill_batch(&mut self) -> Flow {
        while self.batch.len() < BATCH {
            match self.jobs.try_recv() {
                Ok(Job::Publish(p)) => self.batch.push(p),
                Ok(Job::Check) => {}
                Err(TryRecvError::Empty) => break,
                Ok(Job::Stop) | Err(TryRecvError::Disconnected) => return Flow::Stop,
            }
        }
        Flow::Go
    }

    /// Sends the batch in one write and reports every publish's outcome.
    /// `Err` when the connection can no longer be trusted.
    fn send_batch(&mut self, con: &mut Connection) -> Result<(), String> {
        let now = Instant::now();
        // Publishes that waited out their deadline in the queue are not sent.
        let mut batch = std::mem::take(&mut self.batch);
        for p in batch.drain(..) {
            if p.deadline() <= now {
                self.fail(p.token, PublishFailure::Timeout);
            } else {
                self.sent.push_back(p);
            }
        }
        self.batch = batch;
        let result = self.exchange(con);
        // What is left was not answered.
        let reason = match &result {
            Err(Lost::TimedOut) | Ok(()) => PublishFailure::Timeout,
            Err(Lost::Broken(why)) => PublishFailure::Broken(why.clone()),
        };
        while let Some(p) = self.sent.pop_front() {
            self.fail(p.token, reason.clone());
        }
        result.map_err(|lost| lost.to_string())
    }

    /// Writes the publishes in `sent` and reads their answers, reporting
    /// each one's outcome as it comes.
    fn exchange(&mut self, con: &mut Connection) -> Result<(), Lost> {
        let Some(first) = self.sent.front() else {
            return Ok(());
        };
        let left = first.deadline().saturating_duration_since(Instant::now());
        self.packed.clear();
        for p in &self.sent {
            redis::cmd("PUBLISH")
                .arg(&p.channel)
                .arg(&p.payload[..])
                .write_packed_command(&mut self.packed);
        }
        con.set_write_timeout(Some(left.clamp(Duration::from_millis(1), IO_TIMEOUT)))?;
        con.send_packed_command(&self.packed)?;
        while let Some(p) = self.sent.front() {
            let left = p.deadline().saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Lost::TimedOut);
            }
            con.set_read_timeout(Some(left))?;
            let outcome = match con.recv_response() {
                Ok(Value::Int(n)) => Ok(u64::try_from(n).unwrap_or(0)),
                Ok(Value::ServerError(e)) => Err(PublishFailure::Refused(format!("{e:?}"))),
                Ok(other) => Err(PublishFailure::Refused(format!("answer {other:?}"))),
                Err(e) if e.is_io_error() => return Err(e.into()),
                Err(e) => Err(PublishFailure::Refused(e.to_string())),
            };
            let Some(p) = self.sent.pop_front() else {
                break;
            };
            match outcome {
                Ok(receivers) => {
                    let ns = u64::try_from(p.at.elapsed().as_nanos()).unwrap_or(u64::MAX);
                    self.shared.messages_out.fetch_add(1, Relaxed);
                    lock(&self.shared.latency).observe(ns);
                    self.shared.emit(BusEvent::Published {
                        token: p.token,
                        receivers,
                    });
                }
                Err(reason) => self.fail(p.token, reason),
            }
        }
        Ok(())
    }

    fn fail(&self, token: T, reason: PublishFailure) {
        self.shared.publish_failed.fetch_add(1, Relaxed);
        self.shared.emit(BusEvent::PublishFailed { token, reason });
    }

    /// Fails every publish queued now.
    fn fail_queued(&mut self) -> Flow {
        loop {
            match self.jobs.try_recv() {
                Ok(Job::Publish(p)) => self.fail(p.token, PublishFailure::Down),
                Ok(Job::Check) => {}
                Err(TryRecvError::Empty) => return Flow::Go,
                Ok(Job::Stop) | Err(TryRecvError::Disconnected) => return Flow::Stop,
            }
        }
    }

    /// Waits `delay` before the next attempt to connect, failing at once
    /// every publish that comes meanwhile.
    fn fail_for(&mut self, delay: Duration) -> Flow {
        let until = Instant::now() + delay;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || self.shared.stopping() {
                return if self.shared.stopping() {
                    Flow::Stop
                } else {
                    Flow::Go
                };
            }
            match self.jobs.recv_timeout(left) {
                Ok(Job::Publish(p)) => self.fail(p.token, PublishFailure::Down),
                Ok(Job::Check) => {}
                Err(RecvTimeoutError::Timeout) => return Flow::Go,
                Ok(Job::Stop) | Err(RecvTimeoutError::Disconnected) => return Flow::Stop,
            }
        }
    }
}

/// Why the publisher's connection can no longer be trusted.
enum Lost {
    /// An answer did not come by its publish's deadline: it may come later,
    /// after the connection has been used for something else.
    TimedOut,
    /// Writing or reading failed.
    Broken(String),
}

impl From<redis::RedisError> for Lost {
    fn from(e: redis::RedisError) -> Lost {
        if e.is_timeout() {
            Lost::TimedOut
        } else {
            Lost::Broken(e.to_string())
        }
    }
}

impl fmt::Display for Lost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lost::TimedOut => f.write_str("a publish was not answered in time"),
            Lost::Broken(why) => f.write_str(why),
        }
    }
}

/// Pings `con`: `Err` unless Redis answers within [`IO_TIMEOUT`].
fn ping(con: &mut Connection) -> Result<(), String> {
    con.set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| redis::cmd("PING").query::<()>(con))
        .map_err(|e| format!("ping: {e}"))
}
