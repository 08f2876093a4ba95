//! What a line from the server means to a client: the protocol's replies
//! (`docs/protocol.md`), the mirror of [`Request`](crate::protocol::Request),
//! shared by `vigil-client`, the load client and any other client.

use std::time::Duration;

use crate::protocol::keepalive::parse_millis;

/// A closing line of the server (`BYE <reason>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bye {
    /// `BYE idle`: nothing received for the idle timeout.
    Idle,
    /// `BYE lifetime`: the lifetime since accept ran out.
    Lifetime,
    /// `BYE shutdown`: the server is stopping.
    Shutdown,
    /// `BYE full`: the server was at its connection limit.
    Full,
    /// `BYE slow`: the client did not read its replies.
    Slow,
    /// `BYE quit`: the answer to `QUIT`.
    Quit,
    /// `BYE flood`: the client sent faster than the server's input rate
    /// (v1.2).
    Flood,
    /// A reason this version does not know.
    Other,
}

/// A line from the server, as a [`LineCodec`](crate::protocol::LineCodec)
/// hands it over (no newline, no `\r` before it).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use vigil::protocol::{Bye, Reply};
///
/// assert_eq!(Reply::parse(b"PONG 7"), Reply::Pong(Some(7)));
/// assert_eq!(Reply::parse(b"BYE idle"), Reply::Bye(Bye::Idle));
/// assert_eq!(Reply::parse(b"ERR line-too-long"), Reply::Err);
/// assert!(Reply::parse(b"BYE quit").is_closing());
/// assert_eq!(Reply::parse(b"KEEPALIVE 10m"), Reply::Keepalive(Some(Duration::from_secs(600))));
/// assert!(!Reply::parse(b"ERR keepalive").is_closing());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// `PONG` (`None`) or `PONG <n>` with a numeric payload.
    Pong(Option<u64>),
    /// A server probe, `PING`.
    Ping,
    /// A closing line.
    Bye(Bye),
    /// `KEEPALIVE <accepted>`, the answer to a declared keep-alive (v1.2);
    /// `None` if the value is not a DUR.
    Keepalive(Option<Duration>),
    /// `ERR keepalive`: the declared keep-alive was refused; nothing
    /// closes (v1.2).
    KeepaliveRefused,
    /// `ERR ...` (but `ERR keepalive`): a closing line.
    Err,
    /// Anything else (an echo).
    Other,
}

impl Reply {
    /// Reads one line: like a request, the command is the first word, and
    /// what follows its space is the argument.
    pub fn parse(line: &[u8]) -> Reply {
        let end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
        let (command, rest) = line.split_at(end);
        let arg = rest.strip_prefix(b" ");
        match (command, arg) {
            (b"PONG", None) => Reply::Pong(None),
            (b"PONG", Some(n)) => {
                Reply::Pong(std::str::from_utf8(n).ok().and_then(|n| n.parse().ok()))
            }
            (b"PING", _) => Reply::Ping,
            (b"BYE", Some(reason)) => Reply::Bye(match reason {
                b"idle" => Bye::Idle,
                b"lifetime" => Bye::Lifetime,
                b"shutdown" => Bye::Shutdown,
                b"full" => Bye::Full,
                b"slow" => Bye::Slow,
                b"quit" => Bye::Quit,
                b"flood" => Bye::Flood,
                _ => Bye::Other,
            }),
            (b"KEEPALIVE", Some(value)) => {
                Reply::Keepalive(parse_millis(value).map(Duration::from_millis))
            }
            (b"ERR", Some(b"keepalive")) => Reply::KeepaliveRefused,
            (b"ERR", _) => Reply::Err,
            _ => Reply::Other,
        }
    }

    /// Whether the server closes the connection after this line (`BYE ...`
    /// or `ERR ...`).
    pub fn is_closing(self) -> bool {
        matches!(self, Reply::Bye(_) | Reply::Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_server_lines() {
        assert_eq!(Reply::parse(b"PONG"), Reply::Pong(None));
        assert_eq!(Reply::parse(b"PONG 42"), Reply::Pong(Some(42)));
        assert_eq!(Reply::parse(b"PONG x"), Reply::Pong(None));
        assert_eq!(Reply::parse(b"BYE idle"), Reply::Bye(Bye::Idle));
        assert_eq!(Reply::parse(b"BYE full"), Reply::Bye(Bye::Full));
        assert_eq!(Reply::parse(b"BYE later"), Reply::Bye(Bye::Other));
        assert_eq!(Reply::parse(b"ERR line-too-long"), Reply::Err);
        assert_eq!(Reply::parse(b"BYE flood"), Reply::Bye(Bye::Flood));
        assert_eq!(
            Reply::parse(b"KEEPALIVE 1500ms"),
            Reply::Keepalive(Some(Duration::from_millis(1500)))
        );
        assert_eq!(Reply::parse(b"KEEPALIVE soon"), Reply::Keepalive(None));
        assert_eq!(Reply::parse(b"ERR keepalive"), Reply::KeepaliveRefused);
        assert!(!Reply::KeepaliveRefused.is_closing());
        assert_eq!(Reply::parse(b"PING"), Reply::Ping);
        assert_eq!(Reply::parse(b"PONGS"), Reply::Other);
        assert_eq!(Reply::parse(b"hello"), Reply::Other);
    }
}
