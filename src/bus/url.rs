//! [`BusUrl`]: `redis://HOST[:PORT][/DB]`, parsed strictly.

use std::fmt;
use std::str::FromStr;

/// The port Redis listens on when the URL names none.
pub const DEFAULT_PORT: u16 = 6379;

/// Where the bus is: a Redis server's host, port and database, from a URL of
/// the form `redis://HOST[:PORT][/DB]`.
///
/// The parse is strict, so that a typo is refused at start rather than
/// retried forever: no user or password, no query, no fragment, no other
/// scheme (`rediss://`, `unix://`), a port in `1..=65535`, a database that
/// is a plain decimal number. An IPv6 host goes in brackets
/// (`redis://[::1]:6379`). The host is not resolved here; a well-formed URL
/// whose server cannot be reached is not an error of the URL.
///
/// # Examples
///
/// ```
/// use vigil::bus::BusUrl;
///
/// let url: BusUrl = "redis://127.0.0.1:7000/2".parse()?;
/// assert_eq!((url.host(), url.port(), url.db()), ("127.0.0.1", 7000, 2));
///
/// let url: BusUrl = "redis://cache.internal".parse()?;
/// assert_eq!((url.port(), url.db()), (6379, 0));
/// assert_eq!(url.to_string(), "redis://cache.internal:6379/0");
///
/// assert!("redis://:6379".parse::<BusUrl>().is_err());
/// assert!("redis://user:pw@host".parse::<BusUrl>().is_err());
/// assert!("http://host:6379".parse::<BusUrl>().is_err());
/// # Ok::<(), vigil::bus::BadBusUrl>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusUrl {
    host: String,
    port: u16,
    db: u16,
}

impl BusUrl {
    /// The host name or address (an IPv6 address without its brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port ([`DEFAULT_PORT`] when the URL names none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The database number (0 when the URL names none). Pub/sub ignores it
    /// (channels are server-wide), but Redis checks it at connect.
    pub fn db(&self) -> u16 {
        self.db
    }
}

/// Why a string is not a [`BusUrl`]: a one-line message naming the part at
/// fault.
///
/// # Examples
///
/// ```
/// let err = "redis://host:0".parse::<vigil::bus::BusUrl>().unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "bad bus URL \"redis://host:0\": the port must be a number in 1..=65535 \
///      (expected redis://HOST[:PORT][/DB])"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadBusUrl {
    input: String,
    why: &'static str,
}

impl fmt::Display for BadBusUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad bus URL {:?}: {} (expected redis://HOST[:PORT][/DB])",
            self.input, self.why
        )
    }
}

impl std::error::Error for BadBusUrl {}

impl FromStr for BusUrl {
    type Err = BadBusUrl;

    fn from_str(input: &str) -> Result<BusUrl, BadBusUrl> {
        let bad = |why| BadBusUrl {
            input: input.to_owned(),
            why,
        };
        let rest = input
            .strip_prefix("redis://")
            .ok_or_else(|| bad("the scheme must be redis://"))?;
        if rest.contains(['@', '?', '#']) {
            return Err(bad("no user, password, query or fragment is allowed"));
        }
        let (authority, db) = match rest.split_once('/') {
            None => (rest, 0),
            Some((authority, db)) => (
                authority,
                parse_number(db)
                    .ok_or_else(|| bad("the database must be a number in 0..=65535"))?,
            ),
        };
        let (host, port) =
            split_host_port(authority).ok_or_else(|| bad("the host is missing or malformed"))?;
        let port = match port {
            None => DEFAULT_PORT,
            Some(port) => parse_number(port)
                .filter(|&port| port != 0)
                .ok_or_else(|| bad("the port must be a number in 1..=65535"))?,
        };
        Ok(BusUrl {
            host: host.to_owned(),
            port,
            db,
        })
    }
}

impl fmt::Display for BusUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "redis://[{}]:{}/{}", self.host, self.port, self.db)
        } else {
            write!(f, "redis://{}:{}/{}", self.host, self.port, self.db)
        }
    }
}

/// `HOST[:PORT]` or `[V6]` `[:PORT]` into the host and the port's text.
fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']')?;
        if !host.contains(':')
            || !host
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return None;
        }
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        let (host, port) = match authority.split_once(':') {
            None => (authority, None),
            Some((host, port)) => (host, Some(port)),
        };
        let name_char = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_';
        if !host.chars().all(name_char) {
            return None;
        }
        (host, port)
    };
    (!host.is_empty()).then_some((host, port))
}

/// A plain decimal `u16`: digits only (no sign, no spaces), not empty.
fn parse_number(text: &str) -> Option<u16> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_urls_parse() {
        let cases = [
            ("redis://localhost", ("localhost", 6379, 0)),
            ("redis://127.0.0.1:7000", ("127.0.0.1", 7000, 0)),
            ("redis://h:1/15", ("h", 1, 15)),
            ("redis://h/3", ("h", 6379, 3)),
            ("redis://[::1]:6380/0", ("::1", 6380, 0)),
            ("redis://[::1]", ("::1", 6379, 0)),
            (
                "redis://redis-0.bus_svc.local:65535",
                ("redis-0.bus_svc.local", 65535, 0),
            ),
        ];
        for (input, (host, port, db)) in cases {
            let url: BusUrl = input.parse().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                (url.host(), url.port(), url.db()),
                (host, port, db),
                "{input}"
            );
            let again: BusUrl = url.to_string().parse().unwrap();
            assert_eq!(again, url, "{input} round-trips through Display");
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for input in [
            "",
            "localhost:6379",
            "redis:/h",
            "rediss://h",
            "REDIS://h",
            "unix:///tmp/redis.sock",
            "redis://",
            "redis://:6379",
            "redis://h:",
            "redis://h:0",
            "redis://h:65536",
            "redis://h:+1",
            "redis://h:63 79",
            "redis://h:port",
            "redis://h/",
            "redis://h/-1",
            "redis://h/1/2",
            "redis://h/x",
            "redis://u:p@h",
            "redis://h?db=1",
            "redis://h#x",
            "redis://h h",
            "redis://[::1",
            "redis://[::1]x",
            "redis://[h]:1",
            "redis://::1",
        ] {
            let err = input.parse::<BusUrl>().expect_err(input);
            assert!(!err.to_string().contains('\n'), "one line: {err}");
        }
    }
}
