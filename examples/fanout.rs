//! The reference embedding that speaks first: vigil's line protocol plus
//! `PUB <text>`, which gives every other open connection `MSG <text>` and
//! then the sender `OK <n>` (`n`: the connections the `MSG` was queued
//! for). The wire contract is PROTOCOL.md, "The fan-out example (v1.2)".
//!
//! ```text
//! cargo build --release --example fanout
//! target/release/examples/fanout --listen 127.0.0.1:7374
//! ```
//!
//! Flags: `--listen ADDR` (default `127.0.0.1:7374`), `--idle-timeout DUR`
//! (`5s`; `0`: off), `--max-conns N` (`100000`), `--max-output N`
//! (`65536`), `--max-line N` (`1024`), `--log-level LEVEL` (`info`),
//! `--metrics ADDR` (off: Prometheus text at `/metrics`, the series of
//! `docs/operations.md` under the prefix `vigil`, the bus's too with
//! `--bus`; worker i of `--workers` on the port plus i). DUR is
//! a whole number with `ms`, `s` or `m`, or a bare `0`. A bad flag is
//! refused with one line on stderr and exit status 2.
//!
//! How it is built: the line protocol ([`LineProtocol`]) serves every line
//! but `PUB`, which [`LineProtocol::on_data_with`] hands to this handler.
//! The `MSG` line is one [`Bytes`] shared by every recipient
//! ([`Context::fan_out_with_reply`]); the reactor writes it straight to each
//! socket that takes it, queues a reference for the others, and carries a
//! fan-out to many connections out over several loop turns, answering
//! everyone else in between. `OK <n>` is written in
//! [`Handler::on_fan_out_done`], in the place of the `PUB` among the
//! sender's replies. A recipient that does not read is closed past
//! `--max-output` (`BYE slow`) and not counted.
//!
//! # Over a bus (v1.3)
//!
//! `--bus redis://HOST[:PORT][/DB]` (off by default; needs the `bus`
//! feature: `cargo build --release --example fanout --features bus`) and
//! `--channel NAME` (`vigil.fanout`): every instance on the same bus and
//! channel is one fan-out, and `OK <n>` counts the instances Redis reached,
//! once it has answered (`bus.rs`; PROTOCOL.md, "Fan-out over a bus
//! (v1.3)"). `--reuse-port` and `--workers N` (`auto`: one per CPU) run
//! several instances on one port (`workers.rs`). A `--bus` value that is not
//! a well-formed URL, or `--bus` in a build without the feature, is refused
//! with one line and exit status 2.

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

// The crate root's modules would be looked for beside it, in examples/.
#[cfg(feature = "bus")]
#[path = "fanout/bus.rs"]
mod bus;
#[path = "fanout/workers.rs"]
mod workers;

use vigil::protocol::PartialLine;
use vigil::{
    Bytes, CloseReason, Config, Context, FanOutReport, Handler, LineProtocol, Reactor, Recipients,
    Stats,
};

/// The line protocol, plus `PUB`.
struct Fanout {
    lines: LineProtocol,
    /// `--bus`: `PUB` goes through it (set once the reactor, whose handle
    /// it needs, exists).
    #[cfg(feature = "bus")]
    bus: Option<bus::BusLink>,
}

/// The text of a `PUB` line: what follows `PUB `; empty for a bare `PUB`.
/// `PUBX`, `pub` and the like are not `PUB`.
fn pub_text(line: &[u8]) -> Option<&[u8]> {
    if line == b"PUB" {
        Some(b"")
    } else {
        line.strip_prefix(b"PUB ")
    }
}

impl Handler for Fanout {
    type Conn = PartialLine;

    fn on_open(&mut self, cx: &mut Context<'_>, partial: &mut PartialLine) {
        self.lines.on_open(cx, partial);
    }

    fn on_data(&mut self, cx: &mut Context<'_>, partial: &mut PartialLine, data: &[u8]) {
        self.lines.on_data_with(cx, partial, data, |cx, line| {
            let Some(text) = pub_text(line) else {
                return false;
            };
            #[cfg(feature = "bus")]
            if let Some(bus) = &self.bus {
                bus.publish(cx, text);
                return true;
            }
            let mut msg = Vec::with_capacity(text.len() + 5);
            msg.extend_from_slice(b"MSG ");
            msg.extend_from_slice(text);
            msg.push(b'\n');
            let me = cx.id();
            cx.fan_out_with_reply(Bytes::from(msg), Recipients::AllBut(me));
            true
        });
    }

    fn on_fan_out_done(&mut self, cx: &mut Context<'_>, _: &mut PartialLine, report: FanOutReport) {
        cx.write(format!("OK {}\n", report.delivered).as_bytes());
    }

    fn on_probe(&mut self, cx: &mut Context<'_>, partial: &mut PartialLine) {
        self.lines.on_probe(cx, partial);
    }

    fn on_close(&mut self, cx: &mut Context<'_>, partial: &mut PartialLine, reason: CloseReason) {
        self.lines.on_close(cx, partial, reason);
    }

    fn on_full(&mut self) -> &[u8] {
        self.lines.on_full()
    }

    fn on_stats(&mut self, stats: &Stats) {
        self.lines.on_stats(stats);
    }
}

/// The flags.
struct Flags {
    listen: SocketAddr,
    idle_timeout: Option<Duration>,
    max_conns: usize,
    max_output: usize,
    max_line: usize,
    log_level: log::LevelFilter,
    /// `--bus`, checked.
    #[cfg(feature = "bus")]
    bus: Option<vigil::bus::BusUrl>,
    channel: String,
    workers: usize,
    reuse_port: bool,
    /// `--metrics ADDR`: Prometheus text at `/metrics` (worker i of
    /// `--workers` on the port plus i).
    metrics: Option<SocketAddr>,
}

fn parse_flags(mut args: impl Iterator<Item = String>) -> Result<Flags, String> {
    let mut flags = Flags {
        listen: "127.0.0.1:7374".parse().unwrap(),
        idle_timeout: Some(Duration::from_secs(5)),
        max_conns: 100_000,
        max_output: 65_536,
        max_line: 1024,
        log_level: log::LevelFilter::Info,
        #[cfg(feature = "bus")]
        bus: None,
        channel: "vigil.fanout".to_owned(),
        workers: 1,
        reuse_port: false,
        metrics: None,
    };
    while let Some(flag) = args.next() {
        if flag == "--reuse-port" {
            flags.reuse_port = true;
            continue;
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |what: &str| format!("{flag}: {what}: {value:?}");
        match flag.as_str() {
            "--listen" => flags.listen = value.parse().map_err(|_| bad("not an address"))?,
            "--idle-timeout" => {
                flags.idle_timeout = parse_duration(&value).ok_or_else(|| bad("not a duration"))?
            }
            "--max-conns" => flags.max_conns = value.parse().map_err(|_| bad("not a count"))?,
            "--max-output" => flags.max_output = value.parse().map_err(|_| bad("not a count"))?,
            "--max-line" => match value.parse() {
                Ok(n) if n > 0 => flags.max_line = n,
                _ => return Err(bad("not a positive count")),
            },
            "--log-level" => flags.log_level = value.parse().map_err(|_| bad("not a level"))?,
            #[cfg(feature = "bus")]
            "--bus" => flags.bus = Some(value.parse().map_err(|e| format!("--bus: {e}"))?),
            #[cfg(not(feature = "bus"))]
            "--bus" => {
                return Err("--bus needs the bus feature \
                            (cargo build --example fanout --features bus)"
                    .to_owned())
            }
            #[cfg(feature = "metrics")]
            "--metrics" => flags.metrics = Some(value.parse().map_err(|_| bad("not an address"))?),
            #[cfg(not(feature = "metrics"))]
            "--metrics" => return Err("--metrics needs the metrics feature".to_owned()),
            "--channel" if value.is_empty() => return Err(bad("not a channel name")),
            "--channel" => flags.channel = value,
            "--workers" => {
                flags.workers =
                    workers::parse_workers(&value).ok_or_else(|| bad("not a count or auto"))?
            }
            _ => return Err(format!("unknown flag {flag:?}")),
        }
    }
    Ok(flags)
}

/// `250ms`, `5s`, `2m`; a bare `0` is off (`Some(None)`). `None` if malformed.
fn parse_duration(text: &str) -> Option<Option<Duration>> {
    if text == "0" {
        return Some(None);
    }
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        _ => return None,
    };
    Some((!d.is_zero()).then_some(d))
}

/// Log lines to stderr: `LEVEL message`.
struct Stderr;

impl log::Log for Stderr {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        let _ = writeln!(std::io::stderr(), "{} {}", record.level(), record.args());
    }
    fn flush(&self) {}
}

/// Serves the reactor's, the line protocol's, the process's and (with
/// `--bus`) the bus's series at `at`, under the prefix `vigil`.
#[cfg(feature = "metrics")]
fn serve_metrics(reactor: &mut Reactor<Fanout>, at: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(at)?;
    let bound = listener.local_addr()?;
    reactor.serve_metrics(
        listener,
        vigil::ScrapeConfig::default(),
        |metrics, fanout: &Fanout, body| {
            let mut exposition = vigil::metrics::Exposition::new("vigil", None);
            exposition
                .reactor(metrics, LineProtocol::close_label)
                .lines(fanout.lines.lines())
                .process();
            #[cfg(feature = "bus")]
            if let Some(link) = &fanout.bus {
                exposition.bus(&link.stats()).histogram(
                    "bus_handover",
                    "From a PUB's publish on any instance to this instance handing its MSG \
                     to its connections (the two instances' clocks)",
                    true,
                    link.handover(),
                );
            }
            let rendered = exposition.encode(body);
            debug_assert!(rendered.is_ok(), "a String takes any text");
        },
    )?;
    Ok(bound)
}

fn main() -> ExitCode {
    let flags = match parse_flags(std::env::args().skip(1)) {
        Ok(flags) => flags,
        Err(err) => {
            eprintln!("fanout: {err}");
            return ExitCode::from(2);
        }
    };
    let _ = log::set_logger(&Stderr);
    log::set_max_level(flags.log_level);
    let mut config = Config::default();
    config.idle_timeout = flags.idle_timeout;
    config.max_connections = flags.max_conns;
    config.max_output = flags.max_output;
    if flags.workers > 1 {
        return workers::supervise(flags.workers, flags.listen, flags.max_conns, flags.metrics);
    }
    let handler = Fanout {
        lines: LineProtocol::new(flags.max_line),
        #[cfg(feature = "bus")]
        bus: None,
    };
    let bound = if flags.reuse_port {
        workers::reuse_port_listener(flags.listen)
            .and_then(|listener| Reactor::from_std(listener, config, handler))
    } else {
        Reactor::bind(flags.listen, config, handler)
    };
    let mut reactor = match bound {
        Ok(reactor) => reactor,
        Err(err) => {
            eprintln!("fanout: cannot listen on {}: {err}", flags.listen);
            return ExitCode::from(2);
        }
    };
    #[cfg(feature = "bus")]
    if let Some(url) = &flags.bus {
        let channel = flags.channel.clone();
        match bus::BusLink::start(url, channel, reactor.handle()) {
            Ok(link) => reactor.handler_mut().bus = Some(link),
            Err(err) => {
                eprintln!("fanout: cannot start the bus: {err}");
                return ExitCode::FAILURE;
            }
        }
        log::info!("bus {url}, channel {}", flags.channel);
    }
    #[cfg(not(feature = "bus"))]
    let _ = &flags.channel;
    match reactor.local_addr() {
        Ok(addr) => log::info!("listening on {addr}"),
        Err(err) => log::warn!("listening on an unknown address: {err}"),
    }
    // After `listening on`, as the server logs them.
    #[cfg(feature = "metrics")]
    if let Some(at) = flags.metrics {
        match serve_metrics(&mut reactor, at) {
            Ok(bound) => log::info!("metrics on http://{bound}/metrics"),
            Err(err) => {
                eprintln!("fanout: cannot serve metrics on {at}: {err}");
                return ExitCode::from(2);
            }
        }
    }
    match reactor.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            log::error!("{err}");
            ExitCode::FAILURE
        }
    }
}
