//! The PROXY header as a connection's preamble: the bytes before the first
//! line, held across reads until the header is complete, then handed over
//! (with its deadline lifted) so that the lines after it are served. The
//! header's format is [`proxy`](crate::protocol::proxy)'s.

use crate::protocol::partial::PartialLine;
use crate::protocol::proxy::{parse_proxy_header, ProxyError, V2_MAX};
use crate::reactor::Context;

/// Consumes the PROXY header from the bytes held so far and `data`: the
/// bytes after it, once it is complete; `None` while it is incomplete, or
/// when it is malformed (the connection is then closing).
pub(crate) fn take_proxy_header<'d>(
    cx: &mut Context<'_>,
    partial: &mut PartialLine,
    data: &'d [u8],
) -> Option<&'d [u8]> {
    let held = partial.preamble()?;
    let before = held.len();
    let parsed = if before == 0 {
        // The usual case: the whole header in the first read, no copy.
        parse_proxy_header(data)
    } else {
        // Never more than the longest header: the parser refuses past it.
        let take = data.len().min(V2_MAX.saturating_sub(before));
        held.extend_from_slice(&data[..take]);
        parse_proxy_header(held)
    };
    match parsed {
        Ok(header) => {
            partial.clear();
            cx.proxy_header_received();
            match header.addrs {
                Some((client, server)) => {
                    log::debug!("connection {}: PROXY from {client} to {server}", cx.id());
                }
                None => log::debug!("connection {}: PROXY without addresses", cx.id()),
            }
            // Bytes held before belong to the header: it did not end there.
            Some(&data[header.len - before..])
        }
        Err(ProxyError::Incomplete) => {
            if before == 0 {
                held.extend_from_slice(data);
            }
            None
        }
        Err(err) => {
            log::debug!("connection {}: {err}", cx.id());
            partial.clear();
            cx.close_proxy_header();
            None
        }
    }
}
