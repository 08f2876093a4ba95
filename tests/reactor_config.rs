//! `Reactor::bind` refuses a `Config` that makes no sense, with
//! `InvalidInput` and a message naming the field, as the `vigil` binary
//! refuses the flags behind it: a zero tick, `max_connections`,
//! `max_output` or `read_budget`, a timeout of `Some(0)`, a probe not
//! shorter than the idle timeout. The defaults are accepted.

use std::io::ErrorKind;
use std::time::Duration;

use vigil::{Config, Handler, Reactor};

#[derive(Debug)]
struct Quiet;
impl Handler for Quiet {
    type Conn = ();
}

/// A change that spoils a default `Config`.
type Spoil = fn(&mut Config);

fn bind(config: Config) -> std::io::Result<Reactor<Quiet>> {
    Reactor::bind("127.0.0.1:0".parse().unwrap(), config, Quiet)
}

#[test]
fn configs_that_make_no_sense_are_refused() {
    let cases: Vec<(&str, Spoil)> = vec![
        ("tick", |c| c.tick = Duration::ZERO),
        ("max_connections", |c| c.max_connections = 0),
        ("max_output", |c| c.max_output = 0),
        ("read_budget", |c| c.read_budget = 0),
        ("idle_timeout", |c| c.idle_timeout = Some(Duration::ZERO)),
        ("lifetime", |c| c.lifetime = Some(Duration::ZERO)),
        ("probe_after", |c| c.probe_after = Some(Duration::ZERO)),
        ("probe_after", |c| c.probe_after = c.idle_timeout),
    ];
    for (field, spoil) in cases {
        let mut config = Config::default();
        spoil(&mut config);
        let err = bind(config).expect_err(field);
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{field}: {err}");
        assert!(err.to_string().contains(field), "{field}: {err}");
    }
}

#[test]
fn the_default_config_and_timeouts_off_are_accepted() {
    assert!(bind(Config::default()).is_ok());
    let mut off = Config::default();
    off.idle_timeout = None;
    off.lifetime = None;
    off.probe_after = None;
    assert!(bind(off).is_ok());
}
