//! The server's command line: a bad flag or value is refused with one line
//! on stderr naming the flag and exit status 2, before anything is bound;
//! `--help` and `--version` exit 0; port 0 logs the real port; an address
//! in use exits 1.
#![cfg(feature = "cli")]

use std::net::TcpListener;

use support::process::{Server, Vigil};

const VIGIL: Vigil = Vigil(env!("CARGO_BIN_EXE_vigil"));

#[test]
fn bad_flags_and_values_exit_2_with_one_line_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["--bogus"], "--bogus"),
        (&["--listen", "nowhere"], "--listen"),
        (&["--listen"], "--listen"),
        (&["--idle-timeout", "5"], "--idle-timeout"),
        (&["--idle-timeout", "5h"], "--idle-timeout"),
        (&["--idle-timeout", "1.5s"], "--idle-timeout"),
        (&["--lifetime", "-1s"], "--lifetime"),
        (&["--probe-after", "x"], "--probe-after"),
        (&["--probe-after", "5s"], "--probe-after"), // not shorter than the 5 s idle timeout
        (
            &["--probe-after", "300ms", "--idle-timeout", "200ms"],
            "--probe-after",
        ),
        (&["--max-conns", "0"], "--max-conns"),
        (&["--max-conns", "many"], "--max-conns"),
        (&["--max-line", "0"], "--max-line"),
        (&["--max-output", "-5"], "--max-output"),
        (&["--tick", "0"], "--tick"),
        (&["--tick", "10"], "--tick"),
        (&["--log-level", "loud"], "--log-level"),
        (&["--metrics", "9373"], "--metrics"),
        (&["--workers", "0"], "--workers"),
        (&["--workers", "some"], "--workers"),
        (&["--reuse-port=1"], "--reuse-port"),
        (&["--proxy-protocol=yes"], "--proxy-protocol"),
        (&["--proxy-timeout", "5"], "--proxy-timeout"),
        (&["--min-keepalive", "soon"], "--min-keepalive"),
        (&["--max-keepalive", "-1s"], "--max-keepalive"),
        (
            &["--min-keepalive", "2m", "--max-keepalive", "1m"],
            "--min-keepalive",
        ),
        (&["--max-input-rate", "-1"], "--max-input-rate"),
        (&["--max-input-rate", "fast"], "--max-input-rate"),
        (&["--max-input-rate", "4294967296"], "--max-input-rate"),
        (&["stray"], "stray"),
    ];
    for (args, flag) in cases {
        // A free port: a server that wrongly started would log it.
        let mut all = vec!["--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let output = VIGIL.run(&all);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(
            stderr.lines().count(),
            1,
            "{args:?}: not one line: {stderr:?}"
        );
        assert!(
            stderr.contains(flag),
            "{args:?}: {stderr:?} does not name {flag}"
        );
        assert!(
            !stdout.contains("listening on"),
            "{args:?} bound: {stdout:?}"
        );
    }
}

#[test]
fn help_lists_every_flag_and_exits_0() {
    let output = VIGIL.run(&["--help"]);
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--listen",
        "--idle-timeout",
        "--lifetime",
        "--probe-after",
        "--max-conns",
        "--max-line",
        "--max-output",
        "--tick",
        "--log-level",
        "--drain",
        "--metrics",
        "--reuse-port",
        "--workers",
        "--proxy-protocol",
    ] {
        assert!(help.contains(flag), "--help does not mention {flag}");
    }
}

#[test]
fn version_exits_0() {
    let output = VIGIL.run(&["--version"]);
    assert_eq!(output.status.code(), Some(0));
    let version = String::from_utf8_lossy(&output.stdout);
    assert!(version.contains(env!("CARGO_PKG_VERSION")), "{version:?}");
}

#[test]
fn port_0_logs_the_real_port() {
    let server = VIGIL.start(&[]);
    assert_ne!(server.addr.port(), 0);
    assert!(server.addr.ip().is_loopback());
    let mut client = server.connect();
    client.send(b"PING\n");
    client.expect(b"PONG");
}

#[test]
fn an_address_in_use_exits_1_with_one_line() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = VIGIL.run(&["--listen", &addr]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr:?}");
    assert!(stderr.contains(&addr), "{stderr:?} does not name {addr}");
}

/// The server raises its soft open-file limit to the hard one (a shell's
/// soft 1024 would cap it far below `--max-conns`), says so, and warns when
/// a `--max-conns` given on the command line cannot fit.
#[test]
fn the_descriptor_limit_is_raised_and_a_shortfall_is_warned() {
    let hard = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "ulimit -Hn"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let hard = hard.trim();
    if hard == "unlimited" {
        return; // nothing to raise to or fall short of
    }
    let mut server = Server::start_with(std::process::Command::new("sh").args([
        "-c",
        "ulimit -Sn 64 && exec \"$0\" \"$@\"",
        VIGIL.0,
        "--listen",
        "127.0.0.1:0",
        "--max-conns",
        "100000000",
    ]));
    let line = server.wait_for_output("descriptor limit").unwrap();
    assert!(
        line.ends_with(&format!("descriptor limit {hard}")),
        "{line}"
    );
    let warning = server.wait_for_output("cannot be reached").unwrap();
    assert!(warning.contains("--max-conns 100000000"), "{warning}");
}

/// Log lines (simple_logger's): a UTC timestamp in RFC 3339 form with
/// milliseconds, the level, the target, the message; a single server names
/// no process (`--workers` lines do: tests/workers.rs).
#[test]
fn log_lines_start_with_a_utc_rfc3339_timestamp() {
    let mut server = VIGIL.start(&[]);
    let line = server.wait_for_output("descriptor limit").unwrap();
    let (stamp, rest) = line.split_once(' ').unwrap();
    let today = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .unwrap()
        .stdout;
    let today = String::from_utf8(today).unwrap();
    // The date is today's or (at midnight) yesterday's: same year-month at least.
    assert_eq!(&stamp[..7], &today.trim()[..7], "{line}");
    let shape: String = stamp
        .chars()
        .map(|c| if c.is_ascii_digit() { '9' } else { c })
        .collect();
    assert_eq!(shape, "9999-99-99T99:99:99.999Z", "{line}");
    assert!(rest.starts_with("INFO  [vigil] descriptor limit"), "{line}");
}

/// Log lines go to stderr, nothing to stdout (the logger points stdout at
/// stderr so that each line is one write: tests/workers.rs parses the
/// lines of two processes sharing one pipe).
#[test]
fn log_lines_go_to_stderr_only() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};
    let mut child = Command::new(VIGIL.0)
        .args(["--listen", "127.0.0.1:0", "--log-level", "debug"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("listening on") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "no listening line"
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert_eq!(stdout, "");
}

/// The default `--max-conns` (100,000) under a smaller descriptor limit is
/// not warned about: one `info` line gives the figure that fits. (Issue 18:
/// the README's first command used to print a warning.)
#[test]
fn the_default_max_conns_under_a_small_limit_is_information() {
    let mut server = Server::start_with(std::process::Command::new("sh").args([
        "-c",
        "ulimit -n 2000 && exec \"$0\" \"$@\"",
        VIGIL.0,
        "--listen",
        "127.0.0.1:0",
    ]));
    let line = server.wait_for_output("descriptor limit").unwrap();
    assert!(
        line.contains("INFO")
            && line.ends_with("descriptor limit 2000: room for about 1984 connections (below the default --max-conns 100000)"),
        "{line}"
    );
    let mut client = server.connect();
    client.send(b"PING\n");
    client.expect(b"PONG");
    let warnings: Vec<String> = server
        .output_so_far()
        .into_iter()
        .filter(|l| l.contains("WARN"))
        .collect();
    assert!(warnings.is_empty(), "{warnings:?}");
}

/// With `--metrics` the start-up lines keep their order: `listening on`,
/// `descriptor limit`, then `serving metrics on`.
#[test]
fn start_up_lines_keep_their_order_with_metrics() {
    let mut server = VIGIL.start(&["--metrics", "127.0.0.1:0"]);
    // `start` consumed the lines up to `listening on`.
    let limit = server.wait_for_output("descriptor limit");
    assert!(limit.is_some(), "no descriptor limit after listening on");
    let metrics = server.wait_for_output("serving metrics on");
    assert!(metrics.is_some(), "serving metrics came before the limit");
}

/// `--idle-timeout 1.5s` says that fractions are not allowed (it used to
/// say "unknown unit '.5s'").
#[test]
fn a_fractional_duration_is_refused_as_a_fraction() {
    let output = VIGIL.run(&["--listen", "127.0.0.1:0", "--idle-timeout", "1.5s"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--idle-timeout") && stderr.contains("fractions are not allowed"),
        "{stderr}"
    );
}
