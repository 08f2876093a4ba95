//! `vigil-client`: a heartbeat client for the `vigil` server.
//!
//! Connects, sends `--count` heartbeats `--interval` apart, optionally
//! pauses and sends `--then` more, then says `QUIT`. With `--keepalive DUR`
//! it first declares that keep-alive (`KEEPALIVE <dur>`, protocol v1.2) and
//! heartbeats at that interval. Prints every line sent
//! (`>`) and received (`<`) with the time since connecting, and exits with a
//! status that tells how the connection ended (see `EXIT_STATUS`).
#![forbid(unsafe_code)]

use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use clap::error::ErrorKind;
use clap::Parser;
use vigil::protocol::{Bye, Reply};

/// The DUR syntax, shared with the server's flags.
#[path = "../duration.rs"]
mod duration;

use duration::parse_duration;

const EXIT_STATUS: &str = "\
Exit status:
  0  the heartbeats were sent and QUIT was answered `BYE quit`
  1  could not connect
  2  bad flag or value
  3  the server closed the connection with `BYE idle`
  4  the server closed the connection with `BYE lifetime`
  5  the server closed the connection with another closing line (`BYE shutdown`, `BYE full`, `BYE slow`, `BYE flood`, `ERR ...`)
  6  the connection was lost without a closing line

DUR is a whole number with a unit, ms, s or m (250ms, 5s, 2m); 0 means none.";

/// How long to wait for the server to answer `QUIT`, or to close after a
/// failed write, before giving up.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// How long to try to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The flags.
#[derive(Debug, Parser)]
#[command(
    name = "vigil-client",
    version,
    about = "Sends heartbeats to a vigil server and reports how the connection ends.",
    after_help = EXIT_STATUS
)]
struct Args {
    /// Server address, HOST:PORT
    #[arg(
        long,
        allow_hyphen_values = true,
        value_name = "ADDR",
        default_value = "127.0.0.1:7373"
    )]
    connect: String,

    /// Time between heartbeats
    #[arg(long, allow_hyphen_values = true, value_name = "DUR", default_value = "1s", value_parser = parse_duration)]
    interval: Duration,

    /// Heartbeats to send before the pause
    #[arg(
        long,
        allow_hyphen_values = true,
        value_name = "N",
        default_value = "10",
        value_parser = parse_count
    )]
    count: u64,

    /// Silence after the first heartbeats (0: none)
    #[arg(long, allow_hyphen_values = true, value_name = "DUR", default_value = "0", value_parser = parse_duration)]
    pause: Duration,

    /// Heartbeats to send after the pause [default: the same as --count]
    #[arg(long, allow_hyphen_values = true, value_name = "N", value_parser = parse_count)]
    then: Option<u64>,

    /// Send empty lines as heartbeats instead of `PING <n>`
    #[arg(long)]
    empty: bool,

    /// Declare this keep-alive first (`KEEPALIVE <dur>`), then heartbeat at this interval (in place of --interval; 0 declares none and keeps --interval)
    #[arg(long, allow_hyphen_values = true, value_name = "DUR", value_parser = parse_duration)]
    keepalive: Option<Duration>,
}

impl Args {
    /// The time between heartbeats: the declared keep-alive, if any.
    fn heartbeat_interval(&self) -> Duration {
        match self.keepalive {
            Some(keepalive) if !keepalive.is_zero() => keepalive,
            _ => self.interval,
        }
    }
}

/// Parses a count of heartbeats: a whole number, 0 or more.
fn parse_count(text: &str) -> Result<u64, String> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("expected a whole number, 0 or more".to_owned());
    }
    text.parse()
        .map_err(|_| format!("more than the maximum of {}", u64::MAX))
}

/// How the connection ended, as the exit status says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Quit = 0,
    CannotConnect = 1,
    BadFlags = 2,
    Idle = 3,
    Lifetime = 4,
    OtherClose = 5,
    Lost = 6,
}

impl Ending {
    /// The ending told by the last closing line the server sent, if any.
    fn from_closing_line(line: Option<&[u8]>) -> Ending {
        match line.map(Reply::parse) {
            None => Ending::Lost,
            Some(Reply::Bye(Bye::Quit)) => Ending::Quit,
            Some(Reply::Bye(Bye::Idle)) => Ending::Idle,
            Some(Reply::Bye(Bye::Lifetime)) => Ending::Lifetime,
            Some(_) => Ending::OtherClose,
        }
    }
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(err)
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) =>
        {
            let _ = write!(io::stdout(), "{}", err.render());
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            let rendered = err.render().to_string();
            let first = rendered.lines().next().unwrap_or("bad arguments");
            eprintln!(
                "vigil-client: {}",
                first.strip_prefix("error: ").unwrap_or(first)
            );
            return ExitCode::from(Ending::BadFlags as u8);
        }
    };
    ExitCode::from(run(&args) as u8)
}

fn run(args: &Args) -> Ending {
    let stream = match connect(&args.connect) {
        Ok(stream) => stream,
        Err(err) => {
            eprintln!("vigil-client: cannot connect to {}: {err}", args.connect);
            return Ending::CannotConnect;
        }
    };
    let start = Instant::now();
    let closed = match spawn_reader(&stream, start) {
        Ok(closed) => closed,
        Err(err) => {
            eprintln!("vigil-client: {err}");
            return Ending::Lost;
        }
    };
    let mut session = Session {
        stream,
        start,
        closed,
        empty: args.empty,
        sent: 0,
    };
    session.converse(args)
}

/// The writing side of one connection.
struct Session {
    stream: TcpStream,
    start: Instant,
    /// Receives the server's last closing line (if any) when the connection
    /// ends.
    closed: Receiver<Option<Vec<u8>>>,
    empty: bool,
    sent: u64,
}

impl Session {
    fn converse(&mut self, args: &Args) -> Ending {
        if let Some(keepalive) = args.keepalive {
            let line = format!("KEEPALIVE {}ms", keepalive.as_millis());
            if let Err(ending) = self.send(line.as_bytes()) {
                return ending;
            }
        }
        let then = args.then.unwrap_or(args.count);
        let plan = [(args.count, Duration::ZERO), (then, args.pause)];
        for (round, (heartbeats, pause)) in plan.into_iter().enumerate() {
            if round > 0 {
                if pause.is_zero() {
                    break;
                }
                self.note(&format!("pausing {pause:?}"));
                if let Some(ending) = self.wait(pause) {
                    return ending;
                }
            }
            for _ in 0..heartbeats {
                if let Err(ending) = self.heartbeat() {
                    return ending;
                }
                if let Some(ending) = self.wait(args.heartbeat_interval()) {
                    return ending;
                }
            }
        }
        if let Err(ending) = self.send(b"QUIT") {
            return ending;
        }
        self.wait(CLOSE_WAIT).unwrap_or_else(|| {
            self.note("no answer to QUIT");
            Ending::Lost
        })
    }

    fn heartbeat(&mut self) -> Result<(), Ending> {
        self.sent += 1;
        if self.empty {
            self.send(b"")
        } else {
            self.send(format!("PING {}", self.sent).as_bytes())
        }
    }

    /// Sends one line; a failed write ends the session with whatever the
    /// server said before the connection went away.
    fn send(&mut self, line: &[u8]) -> Result<(), Ending> {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line);
        bytes.push(b'\n');
        // Printed first: the reply may be printed before write_all returns.
        print_line(self.start, '>', line);
        match self.stream.write_all(&bytes) {
            Ok(()) => Ok(()),
            Err(err) => {
                self.note(&format!("write failed: {err}"));
                Err(self.wait(CLOSE_WAIT).unwrap_or(Ending::Lost))
            }
        }
    }

    /// Waits `duration`, or less if the connection ends meanwhile.
    fn wait(&self, duration: Duration) -> Option<Ending> {
        match self.closed.recv_timeout(duration) {
            Ok(closing_line) => Some(Ending::from_closing_line(closing_line.as_deref())),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => Some(Ending::Lost),
        }
    }

    fn note(&self, what: &str) {
        println!("{} {what}", elapsed(self.start));
    }
}

fn connect(addr: &str) -> io::Result<TcpStream> {
    let mut last_err = io::Error::new(io::ErrorKind::InvalidInput, "no address");
    for addr in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(err) => last_err = err,
        }
    }
    Err(last_err)
}

/// Prints every line from the server; sends the last closing line (`BYE` or
/// `ERR`) seen, if any, once the connection ends.
fn spawn_reader(stream: &TcpStream, start: Instant) -> io::Result<Receiver<Option<Vec<u8>>>> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "?".to_owned(), |a: SocketAddr| a.to_string());
    println!("{} connected to {peer}", elapsed(start));
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name("reader".into())
        .spawn(move || {
            let mut closing_line = None;
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) => {
                        println!("{} connection closed by the server", elapsed(start));
                        break;
                    }
                    Ok(_) => {
                        let text = line.strip_suffix(b"\n").unwrap_or(&line);
                        print_line(start, '<', text);
                        if Reply::parse(text).is_closing() {
                            closing_line = Some(text.to_vec());
                        }
                    }
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(err) => {
                        println!("{} connection lost: {err}", elapsed(start));
                        break;
                    }
                }
            }
            let _ = tx.send(closing_line);
        })?;
    Ok(rx)
}

fn print_line(start: Instant, direction: char, line: &[u8]) {
    println!("{} {direction} {}", elapsed(start), line.escape_ascii());
}

/// `+1.234s`: the time since connecting.
fn elapsed(start: Instant) -> String {
    format!("+{:.3}s", start.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_closing_line_decides_the_exit_status() {
        let status = |line: Option<&[u8]>| Ending::from_closing_line(line) as u8;
        assert_eq!(status(Some(b"BYE quit")), 0);
        assert_eq!(status(Some(b"BYE idle")), 3);
        assert_eq!(status(Some(b"BYE lifetime")), 4);
        for other in [
            &b"BYE shutdown"[..],
            b"BYE full",
            b"BYE slow",
            b"ERR line-too-long",
        ] {
            assert_eq!(status(Some(other)), 5);
        }
        assert_eq!(status(None), 6);
    }

    #[test]
    fn then_defaults_to_count() {
        let args = Args::try_parse_from(["vigil-client", "--count", "4", "--pause", "2s"]).unwrap();
        assert_eq!(args.then, None);
        assert_eq!(args.count, 4);
        assert_eq!(args.pause, Duration::from_secs(2));
        assert_eq!(args.interval, Duration::from_secs(1));
        assert_eq!(args.keepalive, None);
    }

    #[test]
    fn a_declared_keepalive_sets_the_interval() {
        let args = |extra: &[&str]| {
            Args::try_parse_from(["vigil-client", "--interval", "2s"].iter().chain(extra)).unwrap()
        };
        let declared = args(&["--keepalive", "300ms"]);
        assert_eq!(declared.keepalive, Some(Duration::from_millis(300)));
        assert_eq!(declared.heartbeat_interval(), Duration::from_millis(300));
        assert_eq!(
            args(&["--keepalive", "0"]).heartbeat_interval(),
            Duration::from_secs(2)
        );
        assert_eq!(args(&[]).heartbeat_interval(), Duration::from_secs(2));
        assert!(Args::try_parse_from(["vigil-client", "--keepalive", "5"]).is_err());
    }
}
