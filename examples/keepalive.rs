//! Embedding the reactor with a protocol of your own.
//!
//! A tiny presence service, not vigil's line protocol: a client announces
//! itself with `HELLO <name>` and may declare how long it can stay silent
//! with `KEEPALIVE <seconds>` (1 to 3600); anything else is a heartbeat.
//! The reactor reaps each client at its own deadline and the handler tells
//! it why; `WHO` answers how many clients are present.
//!
//! ```text
//! cargo run --example keepalive            # listens on 127.0.0.1:7474
//! printf 'HELLO ada\nKEEPALIVE 2\n' | nc -q 5 127.0.0.1 7474
//! ```

use std::time::Duration;

use vigil::{CloseReason, Config, Context, Handler, Reactor};

/// Per-connection state: only a flag, so an idle client costs the reactor's
/// bytes plus one.
#[derive(Default)]
struct Client {
    greeted: bool,
}

struct Presence;

impl Handler for Presence {
    type Conn = Client;

    fn on_data(&mut self, cx: &mut Context<'_>, client: &mut Client, data: &[u8]) {
        // For brevity this example assumes whole lines per read; see
        // `vigil::protocol::LineCodec` for framing that handles any split.
        for line in data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let line = String::from_utf8_lossy(line);
            let mut words = line.split_whitespace();
            match (words.next(), words.next()) {
                (Some("HELLO"), Some(name)) => {
                    client.greeted = true;
                    cx.write(format!("WELCOME {name}\n").as_bytes());
                }
                (Some("KEEPALIVE"), Some(secs)) => match secs.parse::<u64>() {
                    Ok(secs @ 1..=3600) => {
                        cx.set_idle_timeout(Some(Duration::from_secs(secs)));
                        cx.write(b"OK\n");
                    }
                    _ => {
                        cx.write(b"ERROR keepalive must be 1..3600 seconds\n");
                        cx.close_protocol_error();
                    }
                },
                (Some("WHO"), None) => {
                    cx.write(format!("PRESENT {}\n", cx.stats().open).as_bytes());
                }
                _ if !client.greeted => {
                    cx.write(b"ERROR say HELLO first\n");
                    cx.close_protocol_error();
                }
                _ => {} // a heartbeat: the reactor already counted it
            }
        }
    }

    fn on_close(&mut self, cx: &mut Context<'_>, _: &mut Client, reason: CloseReason) {
        match reason {
            CloseReason::Idle => cx.write(b"TIMEOUT you went quiet\n"),
            CloseReason::Shutdown => cx.write(b"GOODBYE server stopping\n"),
            _ => {}
        }
    }

    fn on_full(&mut self) -> &[u8] {
        b"BUSY try later\n"
    }
}

fn main() -> std::io::Result<()> {
    let mut config = Config::default();
    config.idle_timeout = Some(Duration::from_secs(10));
    config.max_connections = 10_000;
    let mut reactor = Reactor::bind("127.0.0.1:7474".parse().unwrap(), config, Presence)?;
    println!("presence service on {}", reactor.local_addr()?);
    reactor.run()
}
