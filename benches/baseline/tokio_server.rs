//! The baseline: what a Rust user would write instead of vigil.
//!
//! A tokio current-thread runtime (single-threaded, like vigil), one task
//! per connection, the idle deadline as `tokio::time::timeout` around each
//! line read (so a partial line does not extend it, unlike vigil: a fair
//! simplification for a baseline), replies through a `BufWriter` flushed
//! when no more input is buffered. It speaks the same protocol for what the
//! benchmark uses: `PING`/`PONG`, `PONG` answers, `QUIT`, empty lines,
//! echo, `BYE idle`, `BYE full`, `BYE shutdown`, `ERR line-too-long`. Not
//! implemented: `--lifetime`, `--probe-after`, `--max-output`, `--tick`.
//!
//! With `--fanout` it also speaks the fan-out example's `PUB <text>` as a
//! Rust user would write it with tokio: one `tokio::sync::broadcast`
//! channel of shared lines (`Arc<[u8]>`: one allocation per message, never
//! a copy per subscriber), a receiver per connection task, the sender
//! answering `OK <n>` with the receivers the channel counted (less its
//! own) as soon as `send` returns. Each task writes what it received, and
//! whatever else the channel already holds, then flushes once. A task that
//! falls more than `FANOUT_QUEUE` messages behind (`Lagged`) is closed
//! with `BYE slow`, the protocol's slow reader. `broadcast` rather than a
//! channel per subscriber: it is tokio's own answer to one-to-all (the
//! mini-redis `SUBSCRIBE` and tokio's docs use it), it keeps one copy of a
//! message for all receivers, and the sender does O(1) work per message
//! where a channel per subscriber costs it a send per subscriber.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

/// Messages the fan-out channel holds: a receiver further behind is closed.
const FANOUT_QUEUE: usize = 1024;

/// A fan-out message: the sender's number and the whole `MSG <text>\n`.
type Msg = (u64, Arc<[u8]>);

/// The baseline's flags (same names as vigil's).
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub idle: Option<Duration>,
    pub max_conns: usize,
    pub max_line: usize,
    pub fanout: bool,
}

impl Config {
    /// Parses `--listen ADDR --idle-timeout DUR --max-conns N --max-line N`.
    pub fn parse(args: &[String]) -> Result<Config, String> {
        let mut cfg = Config {
            listen: "127.0.0.1:7373".parse().expect("valid"),
            idle: Some(Duration::from_secs(5)),
            max_conns: 100_000,
            max_line: 1024,
            fanout: false,
        };
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{flag}: value missing"));
            match flag.as_str() {
                "--listen" => cfg.listen = value()?.parse().map_err(|e| format!("{e}"))?,
                "--idle-timeout" => {
                    // vigil's DUR syntax, through vigil's parser; `0` is off.
                    let idle = vigil::load::parse_duration(value()?)?;
                    cfg.idle = Some(idle).filter(|d| !d.is_zero());
                }
                "--max-conns" => cfg.max_conns = value()?.parse().map_err(|e| format!("{e}"))?,
                "--max-line" => cfg.max_line = value()?.parse().map_err(|e| format!("{e}"))?,
                "--fanout" => cfg.fanout = true,
                _ => {}
            }
        }
        Ok(cfg)
    }
}

/// Serves until SIGTERM or SIGINT; then `BYE shutdown` to everyone.
pub fn serve(cfg: Config) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        // Signals arrive through a socket pair: no polling, no wakeups.
        let (rx, tx) = std::os::unix::net::UnixStream::pair()?;
        signal_hook::low_level::pipe::register(signal_hook::consts::SIGTERM, tx.try_clone()?)?;
        signal_hook::low_level::pipe::register(signal_hook::consts::SIGINT, tx)?;
        rx.set_nonblocking(true)?;
        let mut signals = tokio::net::UnixStream::from_std(rx)?;

        let listener = TcpListener::bind(cfg.listen).await?;
        println!("baseline: listening on {}", listener.local_addr()?);
        let (stop_tx, stop_rx) = watch::channel(false);
        let open = Rc::new(Cell::new(0usize));
        let hub = cfg.fanout.then(|| broadcast::channel::<Msg>(FANOUT_QUEUE).0);
        let mut ids = 0u64;
        let cfg = Rc::new(cfg);
        let mut sig = [0u8; 1];
        loop {
            tokio::select! {
                _ = signals.read(&mut sig) => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        let (cfg, open, stop) = (cfg.clone(), open.clone(), stop_rx.clone());
                        ids += 1;
                        let fan = hub.as_ref().map(|tx| Fan { id: ids, tx: tx.clone(), rx: tx.subscribe() });
                        tokio::task::spawn_local(async move {
                            if open.get() >= cfg.max_conns {
                                let mut stream = stream;
                                let _ = stream.write_all(b"BYE full\n").await;
                                return;
                            }
                            open.set(open.get() + 1);
                            let _ = match fan {
                                Some(fan) => fan_connection(stream, &cfg, stop, fan).await,
                                None => connection(stream, &cfg, stop).await,
                            };
                            open.set(open.get() - 1);
                        });
                    }
                    // Out of files: back off a little, as tokio's docs advise.
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                },
            }
        }
        let _ = stop_tx.send(true);
        // Let the tasks write their BYE shutdown.
        while open.get() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    })
}

/// One connection: read a line (within the idle timeout), answer, repeat.
async fn connection(
    stream: TcpStream,
    cfg: &Config,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    let (r, w) = stream.into_split();
    let mut reader = BufReader::new(r);
    let mut writer = BufWriter::new(w);
    let mut line = Vec::new();
    loop {
        line.clear();
        let limit = cfg.max_line as u64 + 2;
        let mut limited = (&mut reader).take(limit);
        let read = limited.read_until(b'\n', &mut line);
        let n = tokio::select! {
            _ = stop.changed() => return bye(&mut writer, b"BYE shutdown\n").await,
            n = async {
                match cfg.idle {
                    Some(idle) => tokio::time::timeout(idle, read).await.ok(),
                    None => Some(read.await),
                }
            } => match n {
                None => return bye(&mut writer, b"BYE idle\n").await,
                Some(n) => n?,
            },
        };
        if n == 0 {
            return writer.flush().await;
        }
        let body = line.strip_suffix(b"\n");
        let complete = body.is_some();
        let body = body.unwrap_or(&line);
        let body = body.strip_suffix(b"\r").unwrap_or(body);
        if body.len() > cfg.max_line || (!complete && line.len() as u64 >= limit) {
            return bye(&mut writer, b"ERR line-too-long\n").await;
        }
        if !complete {
            // End of stream in the middle of a line.
            return writer.flush().await;
        }
        if !reply(body, &mut writer).await? {
            return bye(&mut writer, b"BYE quit\n").await;
        }
        if reader.buffer().is_empty() {
            writer.flush().await?;
        }
    }
}

/// Answers one request line; false for `QUIT` (the caller says goodbye).
async fn reply<W: AsyncWriteExt + Unpin>(body: &[u8], writer: &mut W) -> io::Result<bool> {
    if body == b"PING" || body.starts_with(b"PING ") {
        writer.write_all(b"PONG").await?;
        writer.write_all(&body[4..]).await?;
        writer.write_all(b"\n").await?;
    } else if body == b"QUIT" {
        return Ok(false);
    } else if body.is_empty() || body == b"PONG" || body.starts_with(b"PONG ") {
    } else {
        writer.write_all(body).await?;
        writer.write_all(b"\n").await?;
    }
    Ok(true)
}

/// A connection's part in the fan-out: its number (to skip its own
/// messages), the channel, and its receiver.
struct Fan {
    id: u64,
    tx: broadcast::Sender<Msg>,
    rx: broadcast::Receiver<Msg>,
}

/// One connection in fan-out mode: lines and messages, whichever comes
/// first; the idle deadline runs from the last complete line.
async fn fan_connection(
    stream: TcpStream,
    cfg: &Config,
    mut stop: watch::Receiver<bool>,
    mut fan: Fan,
) -> io::Result<()> {
    let (r, w) = stream.into_split();
    let mut reader = BufReader::new(r);
    let mut writer = BufWriter::new(w);
    let mut line = Vec::new();
    let limit = cfg.max_line + 2;
    let mut deadline = cfg.idle.map(|idle| Instant::now() + idle);
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    loop {
        // `read_until` keeps what it read if the select drops it, so a line
        // cut by a message goes on where it was.
        let room = limit.saturating_sub(line.len()) as u64;
        let mut limited = (&mut reader).take(room);
        tokio::select! {
            _ = stop.changed() => return bye(&mut writer, b"BYE shutdown\n").await,
            _ = tokio::time::sleep_until(deadline.unwrap_or(far)), if deadline.is_some() => {
                return bye(&mut writer, b"BYE idle\n").await;
            }
            msg = fan.rx.recv() => match msg {
                Ok((from, msg)) => {
                    if from != fan.id {
                        writer.write_all(&msg).await?;
                    }
                    loop {
                        match fan.rx.try_recv() {
                            Ok((from, msg)) if from != fan.id => writer.write_all(&msg).await?,
                            Ok(_) => {}
                            Err(broadcast::error::TryRecvError::Lagged(_)) => {
                                return bye(&mut writer, b"BYE slow\n").await;
                            }
                            Err(_) => break,
                        }
                    }
                    writer.flush().await?;
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    return bye(&mut writer, b"BYE slow\n").await;
                }
                Err(broadcast::error::RecvError::Closed) => return writer.flush().await,
            },
            n = limited.read_until(b'\n', &mut line) => {
                let n = n?;
                let complete = line.last() == Some(&b'\n');
                if n == 0 || (!complete && line.len() < limit) {
                    // End of stream (perhaps in the middle of a line).
                    return writer.flush().await;
                }
                let body = line.strip_suffix(b"\n").unwrap_or(&line);
                let body = body.strip_suffix(b"\r").unwrap_or(body);
                if body.len() > cfg.max_line || !complete {
                    return bye(&mut writer, b"ERR line-too-long\n").await;
                }
                deadline = cfg.idle.map(|idle| Instant::now() + idle);
                if let Some(text) = body.strip_prefix(b"PUB").filter(|t| t.is_empty() || t[0] == b' ') {
                    let text = text.strip_prefix(b" ").unwrap_or(text);
                    let mut msg = Vec::with_capacity(text.len() + 5);
                    msg.extend_from_slice(b"MSG ");
                    msg.extend_from_slice(text);
                    msg.push(b'\n');
                    let n = fan.tx.send((fan.id, msg.into())).map_or(0, |r| r - 1);
                    writer.write_all(format!("OK {n}\n").as_bytes()).await?;
                } else if !reply(body, &mut writer).await? {
                    return bye(&mut writer, b"BYE quit\n").await;
                }
                line.clear();
                if limited.get_ref().buffer().is_empty() {
                    writer.flush().await?;
                }
            }
        }
    }
}

async fn bye<W: AsyncWriteExt + Unpin>(w: &mut W, line: &[u8]) -> io::Result<()> {
    w.write_all(line).await?;
    w.flush().await
}
