//! vigil's heartbeat line protocol, as a [`Handler`](crate::Handler). (Stub: being built.)

/// The heartbeat line protocol of `PROTOCOL.md`. (Stub.)
#[derive(Debug, Default)]
pub struct LineProtocol {}
