//! What one request line asks for: the protocol's table, as a pure function.

/// What the server does with one line from a client.
///
/// [`Request::parse`] is the request/reply table of the protocol, with no I/O:
/// [`LineProtocol`](crate::LineProtocol) parses each line and writes the
/// reply.
///
/// # Examples
///
/// ```
/// use vigil::protocol::Request;
///
/// assert_eq!(Request::parse(b"PING"), Request::Ping { rest: b"" });
/// assert_eq!(Request::parse(b"PING 42"), Request::Ping { rest: b" 42" });
/// assert_eq!(Request::parse(b"PONG"), Request::Silent);
/// assert_eq!(Request::parse(b""), Request::Silent);
/// assert_eq!(Request::parse(b"QUIT"), Request::Quit);
/// assert_eq!(Request::parse(b"ping"), Request::Echo(b"ping"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// `PING` or `PING <payload>`: answer `PONG` followed by `rest`, which is
    /// empty or a space and the payload, byte for byte.
    Ping {
        /// What follows `PING` on the line: empty, or starting with a space.
        rest: &'a [u8],
    },
    /// `PONG`, `PONG <anything>` (the answer to a probe) or an empty line (a
    /// bare heartbeat): no reply.
    Silent,
    /// `QUIT` or `QUIT <anything>`: answer `BYE quit` and close.
    Quit,
    /// `KEEPALIVE <dur>` (v1.2): the client declares how often it will send
    /// something; answer `KEEPALIVE <accepted>`, or `ERR keepalive` when
    /// `rest` is not a space and one DUR.
    Keepalive {
        /// What follows `KEEPALIVE` on the line: empty, or starting with a
        /// space.
        rest: &'a [u8],
    },
    /// Any other line: sent back verbatim.
    Echo(&'a [u8]),
}

impl<'a> Request<'a> {
    /// Reads one line (without its newline). Commands are case-sensitive and
    /// end at the first space; what follows the space is the command's
    /// argument. A line whose first word is no command is echoed.
    ///
    /// # Examples
    ///
    /// ```
    /// use vigil::protocol::Request;
    ///
    /// // The payload is everything after `PING`, its space included.
    /// assert_eq!(Request::parse(b"PING \0\xff"), Request::Ping { rest: b" \0\xff" });
    /// assert_eq!(Request::parse(b"QUIT now"), Request::Quit);
    /// assert_eq!(Request::parse(b"PINGX"), Request::Echo(b"PINGX"));
    /// ```
    pub fn parse(line: &'a [u8]) -> Request<'a> {
        let command_end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
        let (command, rest) = line.split_at(command_end);
        match command {
            b"PING" => Request::Ping { rest },
            b"PONG" => Request::Silent,
            b"QUIT" => Request::Quit,
            b"KEEPALIVE" => Request::Keepalive { rest },
            b"" if line.is_empty() => Request::Silent,
            _ => Request::Echo(line),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_with_and_without_payload() {
        assert_eq!(Request::parse(b"PING"), Request::Ping { rest: b"" });
        assert_eq!(Request::parse(b"PING "), Request::Ping { rest: b" " });
        assert_eq!(Request::parse(b"PING a b"), Request::Ping { rest: b" a b" });
        assert_eq!(
            Request::parse(b"PING \0\xff\r"),
            Request::Ping { rest: b" \0\xff\r" }
        );
    }

    #[test]
    fn pong_and_empty_lines_are_silent() {
        assert_eq!(Request::parse(b"PONG"), Request::Silent);
        assert_eq!(Request::parse(b"PONG 7"), Request::Silent);
        assert_eq!(Request::parse(b""), Request::Silent);
    }

    #[test]
    fn quit_is_the_first_word() {
        assert_eq!(Request::parse(b"QUIT"), Request::Quit);
        assert_eq!(Request::parse(b"QUIT now"), Request::Quit);
    }

    #[test]
    fn keepalive_keeps_its_argument() {
        assert_eq!(
            Request::parse(b"KEEPALIVE 5s"),
            Request::Keepalive { rest: b" 5s" }
        );
        assert_eq!(
            Request::parse(b"KEEPALIVE"),
            Request::Keepalive { rest: b"" }
        );
        assert_eq!(
            Request::parse(b"KEEPALIVEX 5s"),
            Request::Echo(b"KEEPALIVEX 5s")
        );
        assert_eq!(
            Request::parse(b"keepalive 5s"),
            Request::Echo(b"keepalive 5s")
        );
    }

    #[test]
    fn anything_else_is_echoed() {
        for line in [
            &b"PINGX"[..],
            b"ping",
            b"Ping",
            b"PONGS",
            b"QUITTER",
            b" PING",
            b" ",
            b"\tPING",
            b"hello world",
            b"\0",
        ] {
            assert_eq!(Request::parse(line), Request::Echo(line), "{line:?}");
        }
    }
}
