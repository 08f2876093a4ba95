//! THROWAWAY STUB of the push interface (branch `push` owns the real one,
//! `src/reactor/push.rs`); deleted at merge. Same types and signatures,
//! minimal bodies: a delivery is a callback's write, a fan-out a loop over
//! the slab.

use std::sync::Arc;

pub use bytes::Bytes;

use super::conn::Liveness;
use super::{live, Core};
use crate::{ConnId, Handler};

/// Who a fan-out goes to.
#[derive(Debug, Clone)]
pub enum Recipients {
    /// Every open connection.
    All,
    /// Every open connection but this one (e.g. the sender).
    AllBut(ConnId),
    /// The connections in this list that are still open.
    List(Arc<[ConnId]>),
}

/// The connection is closed, closing, or the id is stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

impl<S: Default> Core<S> {
    /// Queues `payload` to `to` now (or writes it at once); `Err(Gone)` if
    /// closed, closing or stale.
    pub(crate) fn deliver<H: Handler<Conn = S>>(
        &mut self,
        handler: &mut H,
        to: ConnId,
        payload: Bytes,
    ) -> Result<(), Gone> {
        match live(&mut self.conns, to) {
            Some(conn) if matches!(conn.io.liveness, Liveness::Serving(_)) => {}
            _ => return Err(Gone),
        }
        self.write_buf.extend_from_slice(&payload);
        if let Err(reason) = self.flush(to) {
            self.close(handler, to, reason);
        }
        Ok(())
    }

    /// Starts a fan-out of one shared buffer.
    pub(crate) fn fan_out<H: Handler<Conn = S>>(
        &mut self,
        handler: &mut H,
        payload: Bytes,
        to: Recipients,
    ) {
        let ids: Vec<ConnId> = match to {
            Recipients::List(ids) => ids.to_vec(),
            Recipients::All | Recipients::AllBut(_) => self
                .conns
                .iter()
                .map(|(key, conn)| ConnId::new(key, conn.io.generation))
                .filter(|id| !matches!(to, Recipients::AllBut(but) if but == *id))
                .collect(),
        };
        for id in ids {
            let _ = self.deliver(handler, id, payload.clone());
        }
    }
}
