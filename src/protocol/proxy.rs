//! The PROXY protocol header (HAProxy's `send-proxy` and `send-proxy-v2`):
//! a load balancer's note, at the start of a connection, of the client
//! address it accepted the connection from.
//!
//! Both versions from the specification
//! (<https://www.haproxy.org/download/3.0/doc/proxy-protocol.txt>):
//!
//! - v1, text: `PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n` (also
//!   `TCP6`, and `UNKNOWN` with anything up to the CRLF); 107 bytes at most.
//! - v2, binary: a 12-byte signature, a version/command byte, a
//!   family/transport byte, a big-endian length, then that many bytes:
//!   addresses first, then optional TLVs (skipped here).
//!
//! The parser is a pure function of the bytes received so far and
//! allocates nothing: it tells a complete header (and its length) from one
//! that needs more bytes and from bytes that cannot start one.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The v2 signature, the first 12 bytes of every v2 header.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The v1 prefix.
const V1_PREFIX: &[u8; 6] = b"PROXY ";
/// The longest v1 header, CRLF included (the specification's limit).
pub const V1_MAX: usize = 107;
/// The longest v2 header accepted: the 16 fixed bytes and up to 2 KiB of
/// addresses and TLVs (HAProxy's TLVs are a few hundred bytes at most), so
/// that a peer cannot make the server buffer 64 KiB before the first line.
pub const V2_MAX: usize = 16 + 2048;

/// A complete PROXY header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyHeader {
    /// The header's length in bytes: the line stream starts after it.
    pub len: usize,
    /// The client's address and the address it connected to, as the proxy
    /// saw them; `None` for a v2 `LOCAL` header (the proxy's own health
    /// check), v1 `UNKNOWN`, and families other than IPv4 and IPv6.
    pub addrs: Option<(SocketAddr, SocketAddr)>,
}

/// Why bytes are not (yet) a PROXY header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyError {
    /// A valid beginning of a header: wait for more bytes.
    Incomplete,
    /// Not a PROXY header, and no more bytes can make it one.
    Malformed(&'static str),
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyError::Incomplete => f.write_str("incomplete PROXY header"),
            ProxyError::Malformed(why) => write!(f, "bad PROXY header: {why}"),
        }
    }
}

impl std::error::Error for ProxyError {}

/// Parses the PROXY header (v1 or v2) at the start of `bytes`.
///
/// # Errors
///
/// [`ProxyError::Incomplete`] while `bytes` could still become a header;
/// [`ProxyError::Malformed`] when they cannot (garbage, a bad field, a
/// header over the size limits).
///
/// # Examples
///
/// ```
/// use vigil::protocol::{parse_proxy_header, ProxyError};
///
/// let bytes = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 7373\r\nPING\n";
/// let header = parse_proxy_header(bytes)?;
/// let (client, _) = header.addrs.unwrap();
/// assert_eq!(client, "192.0.2.1:56324".parse()?);
/// assert_eq!(&bytes[header.len..], b"PING\n");
///
/// assert_eq!(parse_proxy_header(b"PROXY TC"), Err(ProxyError::Incomplete));
/// assert!(matches!(parse_proxy_header(b"PING\n"), Err(ProxyError::Malformed(_))));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn parse_proxy_header(bytes: &[u8]) -> Result<ProxyHeader, ProxyError> {
    if starts_like(bytes, V2_SIGNATURE) {
        parse_v2(bytes)
    } else if starts_like(bytes, V1_PREFIX) {
        parse_v1(bytes)
    } else {
        Err(ProxyError::Malformed("no PROXY signature"))
    }
}

/// Whether `bytes` and `prefix` agree on their common length.
fn starts_like(bytes: &[u8], prefix: &[u8]) -> bool {
    let n = bytes.len().min(prefix.len());
    bytes[..n] == prefix[..n]
}

fn parse_v1(bytes: &[u8]) -> Result<ProxyHeader, ProxyError> {
    let window = &bytes[..bytes.len().min(V1_MAX)];
    let Some(newline) = window.iter().position(|&b| b == b'\n') else {
        return if bytes.len() >= V1_MAX {
            Err(ProxyError::Malformed("v1 header longer than 107 bytes"))
        } else {
            Err(ProxyError::Incomplete)
        };
    };
    let Some(line) = window[..newline].strip_suffix(b"\r") else {
        return Err(ProxyError::Malformed("v1 header does not end with CRLF"));
    };
    let len = newline + 1;
    let line = std::str::from_utf8(&line[V1_PREFIX.len()..])
        .map_err(|_| ProxyError::Malformed("v1 header is not text"))?;
    let mut fields = line.split(' ');
    let family = fields.next().unwrap_or_default();
    if family == "UNKNOWN" {
        return Ok(ProxyHeader { len, addrs: None });
    }
    let parse_ip = |text: Option<&str>| -> Result<IpAddr, ProxyError> {
        let text = text.ok_or(ProxyError::Malformed("v1 header lacks an address"))?;
        match family {
            "TCP4" => text.parse::<Ipv4Addr>().map(IpAddr::V4),
            "TCP6" => text.parse::<Ipv6Addr>().map(IpAddr::V6),
            _ => {
                return Err(ProxyError::Malformed(
                    "v1 family is not TCP4, TCP6 or UNKNOWN",
                ))
            }
        }
        .map_err(|_| ProxyError::Malformed("v1 address does not match its family"))
    };
    let src = parse_ip(fields.next())?;
    let dst = parse_ip(fields.next())?;
    let src_port = parse_port(fields.next())?;
    let dst_port = parse_port(fields.next())?;
    if fields.next().is_some() {
        return Err(ProxyError::Malformed("v1 header has extra fields"));
    }
    Ok(ProxyHeader {
        len,
        addrs: Some((
            SocketAddr::new(src, src_port),
            SocketAddr::new(dst, dst_port),
        )),
    })
}

/// A v1 port: 1 to 5 decimal digits, at most 65535.
fn parse_port(text: Option<&str>) -> Result<u16, ProxyError> {
    let text = text.ok_or(ProxyError::Malformed("v1 header lacks a port"))?;
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ProxyError::Malformed("v1 port is not a number"));
    }
    text.parse()
        .map_err(|_| ProxyError::Malformed("v1 port is out of range"))
}

fn parse_v2(bytes: &[u8]) -> Result<ProxyHeader, ProxyError> {
    let Some(fixed) = bytes.get(..16) else {
        return Err(ProxyError::Incomplete);
    };
    let version_command = fixed[12];
    if version_command >> 4 != 2 {
        return Err(ProxyError::Malformed("v2 version is not 2"));
    }
    let local = match version_command & 0x0f {
        0 => true,
        1 => false,
        _ => return Err(ProxyError::Malformed("v2 command is not LOCAL or PROXY")),
    };
    let family = fixed[13];
    let body_len = usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    let len = 16 + body_len;
    if len > V2_MAX {
        return Err(ProxyError::Malformed("v2 header longer than 2064 bytes"));
    }
    let Some(body) = bytes.get(16..len) else {
        return Err(ProxyError::Incomplete);
    };
    // Checked whatever the command: a LOCAL header must still be well formed.
    let needed = match family >> 4 {
        0 => 0,   // AF_UNSPEC
        1 => 12,  // AF_INET: 2 x 4 address bytes, 2 x 2 port bytes
        2 => 36,  // AF_INET6: 2 x 16, 2 x 2
        3 => 216, // AF_UNIX: 2 x 108
        _ => return Err(ProxyError::Malformed("v2 address family is unknown")),
    };
    if family & 0x0f > 2 {
        return Err(ProxyError::Malformed("v2 transport is unknown"));
    }
    if body.len() < needed {
        return Err(ProxyError::Malformed(
            "v2 header too short for its addresses",
        ));
    }
    let port = |at: usize| u16::from_be_bytes([body[at], body[at + 1]]);
    let addrs = match family >> 4 {
        _ if local => None,
        1 => {
            let ip = |at: usize| IpAddr::from(<[u8; 4]>::try_from(&body[at..at + 4]).unwrap());
            Some((
                SocketAddr::new(ip(0), port(8)),
                SocketAddr::new(ip(4), port(10)),
            ))
        }
        2 => {
            let ip = |at: usize| IpAddr::from(<[u8; 16]>::try_from(&body[at..at + 16]).unwrap());
            Some((
                SocketAddr::new(ip(0), port(32)),
                SocketAddr::new(ip(16), port(34)),
            ))
        }
        _ => None,
    };
    Ok(ProxyHeader { len, addrs })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut bytes = V2_SIGNATURE.to_vec();
        bytes.push(0x20 | command);
        bytes.push(family);
        bytes.extend_from_slice(&(body.len() as u16).to_be_bytes());
        bytes.extend_from_slice(body);
        bytes
    }

    fn malformed(bytes: &[u8]) -> bool {
        matches!(parse_proxy_header(bytes), Err(ProxyError::Malformed(_)))
    }

    fn addrs(src: &str, dst: &str) -> Option<(SocketAddr, SocketAddr)> {
        Some((src.parse().unwrap(), dst.parse().unwrap()))
    }

    #[test]
    fn v1_tcp4_tcp6_and_unknown() {
        let tcp4 = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nrest";
        assert_eq!(
            parse_proxy_header(tcp4),
            Ok(ProxyHeader {
                len: tcp4.len() - 4,
                addrs: addrs("192.0.2.1:56324", "198.51.100.2:443")
            })
        );
        let tcp6 = b"PROXY TCP6 2001:db8::1 ::1 65535 7373\r\n";
        assert_eq!(
            parse_proxy_header(tcp6),
            Ok(ProxyHeader {
                len: tcp6.len(),
                addrs: addrs("[2001:db8::1]:65535", "[::1]:7373")
            })
        );
        for unknown in [
            &b"PROXY UNKNOWN\r\n"[..],
            b"PROXY UNKNOWN ffff::1 ::1 1 2\r\n",
        ] {
            assert_eq!(
                parse_proxy_header(unknown),
                Ok(ProxyHeader {
                    len: unknown.len(),
                    addrs: None
                })
            );
        }
    }

    #[test]
    fn every_truncation_of_a_good_header_is_incomplete() {
        let good_v1 = b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
        let mut body = [0u8; 36];
        body[32..].copy_from_slice(&[0x1c, 0xcd, 0, 80]);
        let good_v2 = v2(1, 0x21, &body);
        for good in [&good_v1[..], &good_v2] {
            assert!(parse_proxy_header(good).is_ok());
            for end in 0..good.len() {
                assert_eq!(
                    parse_proxy_header(&good[..end]),
                    Err(ProxyError::Incomplete),
                    "{:?}",
                    &good[..end]
                );
            }
        }
    }

    #[test]
    fn v1_garbage_is_malformed() {
        for bad in [
            &b"PING\n"[..],
            b"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
            b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 ::1 1 2\r\n",
            b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
            b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\xff\r\n",
            b"PROXY \r\n",
        ] {
            assert!(malformed(bad), "{:?}", String::from_utf8_lossy(bad));
        }
        // No CRLF within 107 bytes; 107 exactly is fine.
        let longest = [&b"PROXY UNKNOWN "[..], &[b'x'; 91], b"\r\n"].concat();
        assert_eq!(longest.len(), V1_MAX);
        assert!(parse_proxy_header(&longest).is_ok());
        let long = [&b"PROXY UNKNOWN "[..], &[b'x'; 92], b"\r\n"].concat();
        assert!(malformed(&long));
    }

    #[test]
    fn v2_inet_inet6_local_and_unspec() {
        let inet = v2(
            1,
            0x11,
            &[192, 0, 2, 1, 127, 0, 0, 1, 0xdc, 0x04, 0x1c, 0xcd],
        );
        assert_eq!(
            parse_proxy_header(&[&inet[..], b"PING\n"].concat()),
            Ok(ProxyHeader {
                len: 28,
                addrs: addrs("192.0.2.1:56324", "127.0.0.1:7373")
            })
        );
        let mut body = [0u8; 36];
        body[15] = 1;
        body[31] = 1;
        body[32..].copy_from_slice(&[0, 1, 0, 2]);
        let inet6 = v2(1, 0x21, &body);
        assert_eq!(
            parse_proxy_header(&inet6).unwrap().addrs,
            addrs("[::1]:1", "[::1]:2")
        );
        // HAProxy's health checks with send-proxy-v2: LOCAL, no addresses.
        assert_eq!(
            parse_proxy_header(&v2(0, 0x00, &[])),
            Ok(ProxyHeader {
                len: 16,
                addrs: None
            })
        );
        // TLVs after the addresses are skipped.
        let with_tlv = v2(
            1,
            0x11,
            &[1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2, 0x04, 0, 1, b'x'],
        );
        assert_eq!(parse_proxy_header(&with_tlv).unwrap().len, 32);
        // AF_UNIX: well formed, no IP addresses.
        assert_eq!(
            parse_proxy_header(&v2(1, 0x31, &[0; 216])).unwrap().addrs,
            None
        );
    }

    #[test]
    fn v2_garbage_is_malformed() {
        let inet = [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2];
        let mut bad_version = v2(1, 0x11, &inet);
        bad_version[12] = 0x11;
        let mut bad_command = v2(1, 0x11, &inet);
        bad_command[12] = 0x22;
        let mut garbled_signature = v2(1, 0x11, &inet);
        garbled_signature[6] = b'X';
        for bad in [
            bad_version,
            bad_command,
            garbled_signature,
            v2(1, 0x41, &inet),
            v2(1, 0x13, &inet),
            v2(1, 0x11, &inet[..11]),
            v2(1, 0x21, &[0; 35]),
            v2(0, 0x11, &inet[..4]),
            v2(1, 0x11, &[0; V2_MAX - 15]),
        ] {
            assert!(malformed(&bad), "{bad:?}");
        }
    }
}
