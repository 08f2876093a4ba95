//! `vigil`: the standalone heartbeat server.
//!
//! Parses the flags, starts the logger, serves until SIGINT or SIGTERM.
//! Exit status: 0 after a signal, 1 if the server cannot start (address in
//! use), 2 for a bad flag or value. The protocol and the flags are described
//! in `docs/protocol.md`.
#![forbid(unsafe_code)]

mod cli;

use std::io::{self, Write};
use std::process::ExitCode;
use std::thread;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use vigil::{LineProtocol, Reactor, ShutdownHandle};

use cli::{CliExit, Settings};

fn main() -> ExitCode {
    let settings = match cli::parse(std::env::args_os()) {
        Ok(settings) => settings,
        Err(info @ CliExit::Info(_)) => {
            let _ = write!(io::stdout(), "{info}");
            return ExitCode::SUCCESS;
        }
        Err(usage @ CliExit::Usage(_)) => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    simple_logger::SimpleLogger::new()
        .with_level(settings.log_level)
        .init()
        .expect("the logger is set only once");
    match serve(settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("vigil: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Binds, serves until a signal, and closes every connection.
fn serve(settings: Settings) -> Result<(), String> {
    let listen = settings.listen;
    let protocol = LineProtocol::new(settings.max_line);
    let mut reactor = Reactor::bind(listen, settings.config, protocol)
        .map_err(|err| format!("cannot listen on {listen}: {err}"))?;
    stop_on_signals(reactor.shutdown_handle())
        .map_err(|err| format!("cannot install signal handlers: {err}"))?;
    let addr = reactor.local_addr().map_err(|err| err.to_string())?;
    log::info!("listening on {addr}");
    reactor
        .run()
        .map_err(|err| format!("event loop failed: {err}"))?;
    log::info!("stopped: {} connections served", reactor.stats().accepted);
    Ok(())
}

/// Shuts the reactor down on the first SIGINT or SIGTERM.
fn stop_on_signals(handle: ShutdownHandle) -> io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM])?;
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                log::info!("signal {signal}: shutting down");
                handle.shutdown();
            }
        })?;
    Ok(())
}
