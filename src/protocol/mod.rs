//! vigil's heartbeat line protocol: the [`LineProtocol`] handler, the
//! [`LineCodec`] that frames its lines, the [`Request`] table and its
//! mirror for clients, [`Reply`], and the
//! PROXY protocol header parser ([`parse_proxy_header`]) for connections
//! that come through a load balancer.
//!
//! The wire contract is in `docs/protocol.md`. In short: lines end with
//! `\n` (a `\r` before it is dropped); `PING [payload]` is answered
//! `PONG [payload]`, `PONG` and empty lines are silent heartbeats, `QUIT` is
//! answered `BYE quit`, `KEEPALIVE <dur>` declares how often the client
//! will send something, anything else is echoed; every byte received keeps
//! the connection alive.
//!
//! # Examples
//!
//! ```no_run
//! use vigil::{Config, LineProtocol, Reactor};
//!
//! let mut reactor = Reactor::bind("127.0.0.1:7373".parse()?, Config::default(), LineProtocol::default())?;
//! reactor.run()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub(crate) mod codec;
pub(crate) mod counts;
pub(crate) mod handler;
pub(crate) mod keepalive;
pub(crate) mod log_lines;
pub(crate) mod partial;
pub(crate) mod preamble;
pub(crate) mod proxy;
pub(crate) mod reply;
pub(crate) mod request;

pub use codec::{LineCodec, LineTooLong};
pub use counts::LineCounts;
pub use handler::LineProtocol;
pub use partial::PartialLine;
pub use proxy::{parse_proxy_header, ProxyError, ProxyHeader};
pub use reply::{Bye, Reply};
pub use request::Request;
