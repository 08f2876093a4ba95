//! The one line client: blocking, with a deadline on every read, counting
//! the bytes it sends and receives.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::PATIENCE;

/// A blocking client of a line protocol. Every read waits [`PATIENCE`] at
/// most (less where a method takes a window).
#[derive(Debug)]
pub struct Client {
    reader: BufReader<TcpStream>,
    sent: usize,
    received: usize,
    last_send: Instant,
}

impl Client {
    /// Connects to `addr`, with `TCP_NODELAY` (each send is one segment).
    #[track_caller]
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        Client {
            reader: BufReader::new(stream),
            sent: 0,
            received: 0,
            last_send: Instant::now(),
        }
    }

    /// The socket, e.g. to clone a writer for another thread or to set
    /// socket options. Bytes read through it bypass the line buffer.
    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    /// Writes all of `bytes`.
    #[track_caller]
    pub fn send(&mut self, bytes: &[u8]) {
        self.try_send(bytes).expect("send");
    }

    /// Writes all of `bytes`, reporting failure.
    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.reader.get_mut().write_all(bytes)?;
        self.sent += bytes.len();
        self.last_send = Instant::now();
        Ok(())
    }

    /// How long ago the last successful send finished (since the connect
    /// before any).
    pub fn since_send(&self) -> Duration {
        self.last_send.elapsed()
    }

    /// Bytes sent so far.
    pub fn sent(&self) -> usize {
        self.sent
    }

    /// Bytes received so far (through this client's reads).
    pub fn received(&self) -> usize {
        self.received
    }

    /// Shuts down the writing half: the server reads EOF.
    #[track_caller]
    pub fn shutdown_write(&self) {
        self.stream().shutdown(Shutdown::Write).expect("shutdown");
    }

    /// The next line, without its `\n`; panics at EOF, at a reset, or after
    /// [`PATIENCE`].
    #[track_caller]
    pub fn line(&mut self) -> Vec<u8> {
        match self.next_line(PATIENCE) {
            Ok(Some(line)) => line,
            Ok(None) => panic!("connection closed, a line was expected"),
            Err(err) => panic!("no line within {PATIENCE:?}: {err}"),
        }
    }

    /// Asserts that the next line is `expected`.
    #[track_caller]
    pub fn expect(&mut self, expected: &[u8]) {
        let line = self.line();
        assert_eq!(
            line.escape_ascii().to_string(),
            expected.escape_ascii().to_string()
        );
    }

    /// The next line within `within`: `Ok(None)` at EOF or reset, an error
    /// if the window passes or the connection ends mid-line.
    pub fn next_line(&mut self, within: Duration) -> io::Result<Option<Vec<u8>>> {
        self.stream().set_read_timeout(Some(within))?;
        let mut line = Vec::new();
        let read = self.reader.read_until(b'\n', &mut line);
        self.stream().set_read_timeout(Some(PATIENCE))?;
        self.received += line.len();
        match read {
            Ok(0) => Ok(None),
            Err(err) if err.kind() == io::ErrorKind::ConnectionReset => Ok(None),
            Ok(_) if line.ends_with(b"\n") => {
                line.pop();
                Ok(Some(line))
            }
            Ok(_) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "line cut short",
            )),
            Err(err) if line.is_empty() => Err(err),
            // Not a timeout to the caller: part of a line came.
            Err(err) => Err(io::Error::other(format!(
                "{err} after {:?}",
                line.escape_ascii().to_string()
            ))),
        }
    }

    /// Everything the server still sends, up to its FIN: an error if the
    /// connection is reset instead, or nothing ends it within [`PATIENCE`].
    pub fn read_to_eof(&mut self) -> io::Result<Vec<u8>> {
        let mut rest = Vec::new();
        let read = self.reader.read_to_end(&mut rest);
        self.received += rest.len();
        read.map(|_| rest)
    }

    /// Asserts that the server sends exactly `expected`, then its FIN.
    #[track_caller]
    pub fn expect_rest(&mut self, expected: &[u8]) {
        let rest = self.read_to_eof().expect("EOF in time");
        assert_eq!(
            rest.escape_ascii().to_string(),
            expected.escape_ascii().to_string()
        );
    }

    /// Asserts that the server closes the connection (EOF or reset) with
    /// nothing more sent, within [`PATIENCE`].
    #[track_caller]
    pub fn expect_closed(&mut self) {
        match self.next_line(PATIENCE) {
            Ok(None) => {}
            Ok(Some(line)) => panic!(
                "expected the close, got {:?}",
                line.escape_ascii().to_string()
            ),
            Err(err) => panic!("expected the close within {PATIENCE:?}: {err}"),
        }
    }

    /// Whether the server closes the connection (EOF or reset) within
    /// [`PATIENCE`], whatever it sends first (which is discarded).
    pub fn closed_by_server(&mut self) -> bool {
        let mut buf = [0; 512];
        loop {
            match self.reader.read(&mut buf) {
                Ok(0) => return true,
                Ok(n) => self.received += n,
                Err(err) if err.kind() == io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }

    /// Asserts that nothing arrives and the connection stays open for
    /// `window`.
    #[track_caller]
    pub fn expect_silence(&mut self, window: Duration) {
        match self.next_line(window) {
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Ok(Some(line)) => panic!(
                "expected silence, got {:?}",
                line.escape_ascii().to_string()
            ),
            Ok(None) => panic!("expected silence, the connection closed"),
            Err(err) => panic!("expected silence: {err}"),
        }
    }
}
