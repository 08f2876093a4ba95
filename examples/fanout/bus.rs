//! `--bus redis://HOST[:PORT][/DB]` (feature `bus`): every instance on the
//! same bus and channel is one fan-out (PROTOCOL.md, "Fan-out over a bus
//! (v1.3)").
//!
//! - A `PUB` is published on the channel ([`Bus::publish`], which never
//!   blocks) and its reply place held ([`Context::hold_reply`]): `OK <n>`
//!   fills it once Redis has answered (n: Redis's count of subscribers),
//!   `ERR bus` when the publish failed. A publish refused at once (the bus
//!   is down, its queue full) is answered `ERR bus` at once. Other replies
//!   never wait on the bus, only those behind a `PUB` on the same
//!   connection, to keep the request order (at most
//!   [`PUBLISH_DEADLINE`](vigil::bus::PUBLISH_DEADLINE), 900 ms).
//! - Every message the bus delivers becomes `MSG <text>` for each open
//!   connection of this instance, in the bus's order: the instance that
//!   published it skips the sender, the others skip no one. The payload on
//!   the bus carries the origin (this process's random instance id and the
//!   sender's [`ConnId`]) before the text.
//! - The bus's threads hand everything to the loop through the reactor's
//!   handle ([`ReactorHandle::execute_blocking`]): a message waits for
//!   room in the handle's queue rather than being lost, and a bus that
//!   waits long enough for it is cut off by Redis (a reconnect, logged by
//!   the bus), never a stall of the loop.

use std::hash::{BuildHasher, Hasher};
use std::io;
use std::time::{Duration, SystemTime};

use vigil::bus::{Bus, BusEvent, BusUrl};
use vigil::{Bytes, ConnId, Context, LoopContext, ReactorHandle, Recipients};

use crate::Fanout;

/// How often a bus thread retries a full handle queue.
const RETRY: Duration = Duration::from_millis(1);

/// The origin before the text: 16 hex digits of the instance, `/`, 16 of
/// the sender's id, `/`, 16 of the publish time (microseconds since the
/// Unix epoch, this box's clock), a space.
const HEADER: usize = 16 + 1 + 16 + 1 + 16 + 1;

/// This instance's bus, and what it needs to publish.
pub struct BusLink {
    bus: Bus<ConnId>,
    channel: String,
    instance: u64,
    /// From a `PUB`'s publish (on any instance) to this instance handing
    /// its `MSG` to the loop's fan-out, by the two instances' clocks.
    #[cfg(feature = "metrics")]
    handover: vigil::Histogram,
}

impl BusLink {
    /// Starts the bus on `url`, subscribed to `channel`; what it receives
    /// goes to the loop through `handle`.
    pub fn start(
        url: &BusUrl,
        channel: String,
        handle: ReactorHandle<Fanout>,
    ) -> io::Result<BusLink> {
        let bus = Bus::start(url, move |event| forward(&handle, event))?;
        bus.subscribe(&channel);
        Ok(BusLink {
            bus,
            channel,
            instance: instance_id(),
            #[cfg(feature = "metrics")]
            handover: vigil::Histogram::new(vigil::Histogram::SUB_SECOND_NS, 1e-9),
        })
    }

    /// The bus's counters, for `--metrics`.
    #[cfg(feature = "metrics")]
    pub fn stats(&self) -> vigil::bus::BusStats {
        self.bus.stats()
    }

    /// The publish-to-hand-over times, for `--metrics`.
    #[cfg(feature = "metrics")]
    pub fn handover(&self) -> &vigil::Histogram {
        &self.handover
    }

    /// `PUB <text>` from `cx`'s connection: published, its reply held; or
    /// `ERR bus` now.
    pub fn publish(&self, cx: &mut Context<'_>, text: &[u8]) {
        let me = cx.id();
        let mut payload = Vec::with_capacity(HEADER + text.len());
        let header = format!(
            "{:016x}/{:016x}/{:016x} ",
            self.instance,
            me.to_u64(),
            micros()
        );
        payload.extend_from_slice(header.as_bytes());
        payload.extend_from_slice(text);
        match self.bus.publish(&self.channel, payload, me) {
            Ok(()) => cx.hold_reply(),
            Err(_) => cx.write(b"ERR bus\n"),
        }
    }

    /// A message from the bus: `MSG <text>` to every open connection but
    /// its sender.
    fn deliver(&mut self, lcx: &mut LoopContext<'_>, payload: &[u8]) {
        let (origin, text) = split_origin(payload);
        #[cfg(feature = "metrics")]
        if let Some(origin) = &origin {
            let micros = micros().saturating_sub(origin.published);
            self.handover.observe(micros.saturating_mul(1_000));
        }
        let to = match origin {
            Some(origin) if origin.instance == self.instance => {
                Recipients::AllBut(ConnId::from_u64(origin.sender))
            }
            _ => Recipients::All,
        };
        let mut msg = Vec::with_capacity(text.len() + 5);
        msg.extend_from_slice(b"MSG ");
        msg.extend_from_slice(text);
        msg.push(b'\n');
        lcx.fan_out(Bytes::from(msg), to);
    }
}

/// Hands a bus event to the loop (on a bus thread).
fn forward(handle: &ReactorHandle<Fanout>, event: BusEvent<ConnId>) {
    // `Stopped`: the reactor has returned, nobody is left to tell.
    match event {
        BusEvent::Message { payload, .. } => {
            let _ = handle.execute_blocking(
                move |fanout: &mut Fanout, lcx: &mut LoopContext<'_>| {
                    if let Some(link) = &mut fanout.bus {
                        link.deliver(lcx, &payload);
                    }
                },
                RETRY,
            );
        }
        BusEvent::Published { token, receivers } => {
            let _ = handle.execute_blocking(
                move |_: &mut Fanout, lcx: &mut LoopContext<'_>| {
                    // Gone: the sender left meanwhile.
                    let _ = lcx.fill_reply(token, format!("OK {receivers}\n").as_bytes());
                },
                RETRY,
            );
        }
        BusEvent::PublishFailed { token, .. } => {
            let _ = handle.execute_blocking(
                move |_: &mut Fanout, lcx: &mut LoopContext<'_>| {
                    let _ = lcx.fill_reply(token, b"ERR bus\n");
                },
                RETRY,
            );
        }
        // Logged by the bus itself, once per change.
        BusEvent::Up | BusEvent::Down { .. } | BusEvent::CutOff { .. } => {}
        BusEvent::Subscribed { .. } => {}
    }
}

/// Where a message published by a fan-out instance comes from.
struct Origin {
    instance: u64,
    sender: u64,
    /// Microseconds since the Unix epoch, by the publisher's clock.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    published: u64,
}

/// The origin of a payload published by a fan-out instance, and its text;
/// a payload from anyone else (`redis-cli PUBLISH`) is all text.
fn split_origin(payload: &[u8]) -> (Option<Origin>, &[u8]) {
    let hex = |bytes: &[u8]| {
        std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| u64::from_str_radix(s, 16).ok())
    };
    let framed = payload.len() >= HEADER
        && payload[16] == b'/'
        && payload[33] == b'/'
        && payload[HEADER - 1] == b' ';
    if framed {
        let fields = (
            hex(&payload[..16]),
            hex(&payload[17..33]),
            hex(&payload[34..50]),
        );
        if let (Some(instance), Some(sender), Some(published)) = fields {
            let origin = Origin {
                instance,
                sender,
                published,
            };
            return (Some(origin), &payload[HEADER..]);
        }
    }
    (None, payload)
}

/// Now, in microseconds since the Unix epoch.
fn micros() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// A random id for this process: another instance (this box or another)
/// has another.
fn instance_id() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    hasher.write_u128(now.as_nanos());
    hasher.finish()
}
