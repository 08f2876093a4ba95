//! Connection ids and the mio tokens they travel in.
//!
//! Slab keys are reused as soon as a connection closes, so a key alone cannot
//! tell a late event or timer for the old connection from one for the new.
//! Every id therefore packs the slab key with a generation that the reactor
//! bumps on each accept; an event or timer whose generation differs from the
//! connection's in that slot is stale and dropped.

use std::fmt;

use mio::Token;

#[cfg(not(target_pointer_width = "64"))]
compile_error!("vigil packs (slab key, generation) into a mio Token and needs a 64-bit usize");

/// Scrape connections (see `scrape.rs`) open at once, at most.
pub(crate) const SCRAPE_SLOTS: usize = 64;

/// Slab keys stay below this, so a connection's token never has the low 32
/// bits equal to those of the reactor's own tokens (the four highest
/// values) or of a scrape connection (the [`SCRAPE_SLOTS`] below those),
/// whatever its generation.
pub(crate) const MAX_KEYS: usize = u32::MAX as usize - 3 - SCRAPE_SLOTS;

/// The listener's token.
pub(crate) const LISTENER: Token = Token(usize::MAX);
/// The shutdown waker's token.
pub(crate) const WAKER: Token = Token(usize::MAX - 1);
/// The token of a source that shuts the reactor down when readable.
pub(crate) const SHUTDOWN_SOURCE: Token = Token(usize::MAX - 2);
/// The metrics listener's token.
pub(crate) const METRICS_LISTENER: Token = Token(usize::MAX - 3);

/// The token of scrape connection `slot` (below [`SCRAPE_SLOTS`]), whose
/// generation tells a late event for an earlier occupant of the slot.
pub(crate) fn scrape_token(slot: usize, generation: u32) -> Token {
    debug_assert!(slot < SCRAPE_SLOTS);
    Token(((generation as usize) << 32) | (MAX_KEYS + slot))
}

/// The (slot, generation) a scrape connection's token carries; `None` for
/// any other token.
pub(crate) fn scrape_slot(token: Token) -> Option<(usize, u32)> {
    let low = token.0 & u32::MAX as usize;
    (MAX_KEYS..MAX_KEYS + SCRAPE_SLOTS)
        .contains(&low)
        .then(|| (low - MAX_KEYS, (token.0 >> 32) as u32))
}

/// Identifies one connection for as long as it is open.
///
/// A later connection that reuses the same slot gets another id: an id
/// carries a 32-bit generation bumped on every accept, so an id kept past its
/// connection's close refers to nothing (it is *stale*) until the generation
/// wraps, 2^32 accepts later.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId(u64);

impl ConnId {
    pub(crate) fn new(key: usize, generation: u32) -> ConnId {
        debug_assert!(key < MAX_KEYS, "connection key {key} out of range");
        ConnId((u64::from(generation) << 32) | key as u64)
    }

    pub(crate) fn key(self) -> usize {
        (self.0 & u64::from(u32::MAX)) as usize
    }

    pub(crate) fn generation(self) -> u32 {
        (self.0 >> 32) as u32
    }

    pub(crate) fn token(self) -> Token {
        Token(self.0 as usize)
    }

    /// The id as a number, to carry it where a [`ConnId`] cannot go (a
    /// message on a bus, a database row); [`from_u64`](ConnId::from_u64)
    /// turns it back.
    ///
    /// # Examples
    ///
    /// ```
    /// use vigil::{ConnId, Context, Handler};
    ///
    /// struct Tagged;
    /// impl Handler for Tagged {
    ///     type Conn = ();
    ///     fn on_open(&mut self, cx: &mut Context<'_>, _: &mut ()) {
    ///         let tag = cx.id().to_u64();
    ///         assert_eq!(ConnId::from_u64(tag), cx.id());
    ///         cx.write(format!("YOU {tag:x}\n").as_bytes());
    ///     }
    /// }
    /// ```
    pub fn to_u64(self) -> u64 {
        self.0
    }

    /// The id [`to_u64`](ConnId::to_u64) gave. Any number is accepted: one
    /// that names no connection of this reactor (another process's, a
    /// stale one) is gone for every use ([`Gone`](crate::Gone) from a
    /// send, skipped by a fan-out).
    ///
    /// # Examples
    ///
    /// ```
    /// let id = vigil::ConnId::from_u64(u64::MAX);
    /// assert_eq!(vigil::ConnId::from_u64(id.to_u64()), id);
    /// ```
    pub fn from_u64(bits: u64) -> ConnId {
        ConnId(bits)
    }

    /// The id carried by a connection's token; `None` for the reactor's own
    /// tokens and scrape connections'.
    pub(crate) fn from_token(token: Token) -> Option<ConnId> {
        ((token.0 & u32::MAX as usize) < MAX_KEYS).then_some(ConnId(token.0 as u64))
    }
}

impl fmt::Debug for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnId({}#{})", self.key(), self.generation())
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.key(), self.generation())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reactor::conn::{Conn, ConnIo, Liveness, TickLimits, Timing};
    use crate::reactor::live;

    #[test]
    fn packs_key_and_generation() {
        let id = ConnId::new(MAX_KEYS - 1, u32::MAX);
        assert_eq!(id.key(), MAX_KEYS - 1);
        assert_eq!(id.generation(), u32::MAX);
        assert_eq!(ConnId::from_token(id.token()), Some(id));
    }

    #[test]
    fn reactor_tokens_are_not_connections() {
        assert_eq!(ConnId::from_token(LISTENER), None);
        assert_eq!(ConnId::from_token(WAKER), None);
        assert_eq!(ConnId::from_token(SHUTDOWN_SOURCE), None);
        assert_eq!(ConnId::from_token(METRICS_LISTENER), None);
        assert_eq!(scrape_slot(METRICS_LISTENER), None);
        let last = ConnId::new(MAX_KEYS - 1, u32::MAX).token();
        assert!(last != LISTENER && last != WAKER && last != SHUTDOWN_SOURCE);
    }

    #[test]
    fn scrape_tokens_are_neither_connections_nor_reactor_tokens() {
        for slot in [0, SCRAPE_SLOTS - 1] {
            for generation in [0, u32::MAX] {
                let token = scrape_token(slot, generation);
                assert_eq!(ConnId::from_token(token), None);
                assert_eq!(scrape_slot(token), Some((slot, generation)));
                assert!(![LISTENER, WAKER, SHUTDOWN_SOURCE, METRICS_LISTENER].contains(&token));
            }
        }
        assert_eq!(scrape_slot(ConnId::new(MAX_KEYS - 1, 7).token()), None);
    }

    #[test]
    fn same_key_other_generation_differs() {
        assert_ne!(ConnId::new(7, 1), ConnId::new(7, 2));
    }

    /// The generation check is what keeps a late event or timer of a closed
    /// connection from reaching the next one in its slot.
    #[test]
    fn an_id_of_another_generation_is_stale() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let mut conns = slab::Slab::new();
        let key = conns.insert(Conn {
            io: ConnIo {
                stream: mio::net::TcpStream::from_std(stream),
                generation: 7,
                timer: None,
                on_deferred_list: false,
                read_to_block: false,
                corked_at: 0,
                liveness: Liveness::Serving(Timing::accepted(0, &TickLimits::default())),
                output: None,
            },
            state: (),
        });
        assert!(live(&mut conns, ConnId::new(key, 7)).is_some());
        assert!(live(&mut conns, ConnId::new(key, 6)).is_none());
        assert!(live(&mut conns, ConnId::new(key, 8)).is_none());
    }
}
