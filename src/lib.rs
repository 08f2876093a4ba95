//! # vigil
//!
//! A single-threaded [mio] event loop that holds many long-lived TCP
//! connections, keeps the ones that show signs of life and reaps the ones that
//! go quiet, on time, for almost no memory or CPU per connection.
//!
//! # From the top
//!
//! - [`Reactor`] owns the listener, the connections (in a [`slab`]) and one
//!   timer per connection. It decides *when*: readiness, deadlines, limits,
//!   closing.
//! - [`Handler`] is what an embedder writes. It decides *what bytes* go out
//!   when a connection opens, sends data, has been silent for a while, or
//!   closes. [`LineProtocol`] is vigil's own heartbeat protocol, written as one
//!   such handler.
//! - Pushing: from any callback, [`Context::send`] sends to another
//!   connection by its [`ConnId`] and [`Context::fan_out`] sends one
//!   [`Bytes`] to [`Recipients`] (all, all but one, a list), shared by every
//!   recipient, never copied; each connection has one ordered output queue
//!   flushed with one `writev`, large fan-outs are spread over loop turns
//!   ([`Config::fan_out_budget`]) with their recipients' writes coalesced,
//!   and [`Handler::on_drain`] reports backpressure (see
//!   `docs/embedding.md`).
//! - From other threads: [`Reactor::handle`] gives a [`ReactorHandle`]
//!   (`Clone + Send`) that sends, fans out, or runs a closure on the loop's
//!   thread through a bounded queue with coalesced wakeups. Timers: one per
//!   connection ([`Context::set_timer`], [`Handler::on_timer`]) in its
//!   existing wheel entry, and loop timers ([`LoopContext::set_periodic`],
//!   [`Handler::on_loop_timer`]). A reply can wait for something else
//!   ([`Context::hold_reply`], [`LoopContext::fill_reply`]) and keep its
//!   place among the connection's replies.
//! - [`Reactor::metrics`] copies the reactor's counters ([`Stats`],
//!   [`LoopStats`]); `vigil::metrics` (feature `metrics`) renders them in the
//!   Prometheus text format, and [`Reactor::serve_metrics`] serves them over
//!   HTTP from the reactor's own thread.
//! - [`Wheel`] is the hierarchical timer wheel under the reactor, usable on its
//!   own: ticks in, expired keys out. [`Clock`] converts `Instant`s to ticks.
//!
//! The standalone server (`cargo run --release`), its client `vigil-client`
//! and the load generator `vigil-load` are binaries of this package; their
//! command-line code is not part of the library, but the load generator's
//! machinery is: `vigil::load` (feature `load`, on by default), used by
//! `vigil-load` and by the capacity benchmark.
//!
//! `vigil::bus` (feature `bus`, off by default) bridges to a Redis pub/sub
//! bus, so that a fan-out spans processes and boxes.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]

#[cfg(feature = "bus")]
pub mod bus;
mod clock;
#[cfg(feature = "load")]
mod duration;
mod histogram;
#[cfg(feature = "load")]
pub mod load;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod protocol;
mod reactor;
mod wheel;

pub use clock::Clock;
pub use histogram::Histogram;
pub use protocol::LineProtocol;
pub use reactor::{
    Bytes, CloseReason, Config, ConnId, Context, FanOutReport, Gone, HandleError, Handler,
    LoopContext, LoopStats, LoopTimer, OverflowPolicy, Reactor, ReactorHandle, ReactorMetrics,
    Recipients, ScrapeConfig, ShutdownHandle, Stats, PROMETHEUS_TEXT,
};
pub use wheel::{Expire, TimerKey, Wheel};

/// The README's Rust examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

/// docs/embedding.md's Rust examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../docs/embedding.md")]
struct EmbeddingDoctests;
