//! A minimal HTTP/1.1 client for the metrics listener, and the scraped
//! exposition parsed by a real Prometheus text-format parser
//! (`prometheus-parse`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use prometheus_parse::{Scrape, Value};

use crate::PATIENCE;

/// One HTTP response, read to EOF.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers, in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body (`Content-Length` bytes, checked).
    pub body: String,
}

impl Response {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `request` as is and reads the response until the server closes.
#[track_caller]
pub fn http(addr: SocketAddr, request: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).expect("connect to the metrics listener");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(request).expect("send the request");
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .expect("read the response to EOF");
    parse_response(&raw)
}

/// Parses a whole `Connection: close` response.
#[track_caller]
pub fn parse_response(raw: &[u8]) -> Response {
    let text = String::from_utf8(raw.to_vec()).expect("a UTF-8 response");
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers in {text:?}"));
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').expect("a header line");
            (n.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    let response = Response {
        status,
        headers,
        body: body.to_owned(),
    };
    let length: usize = response
        .header("Content-Length")
        .expect("Content-Length")
        .parse()
        .unwrap();
    assert_eq!(
        length,
        response.body.len(),
        "Content-Length matches the body"
    );
    response
}

/// `GET /metrics` of a server rendering under the `vigil` prefix, checked
/// to be a 200 in the Prometheus text format and to account for every
/// connection, and parsed.
#[track_caller]
pub fn scrape(addr: SocketAddr) -> Metrics {
    let response = http(addr, b"GET /metrics HTTP/1.1\r\nHost: vigil\r\n\r\n");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(
        response.header("Content-Type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let metrics = Metrics::parse(&response.body);
    // Every scrape, whatever the test waits for: each connection accepted
    // is open or was closed for exactly one reason.
    metrics.assert_accounted("vigil");
    metrics
}

/// Scrapes until `done` holds for the figures, within [`PATIENCE`].
#[track_caller]
pub fn scrape_until(addr: SocketAddr, what: &str, done: impl Fn(&Metrics) -> bool) -> Metrics {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let metrics = scrape(addr);
        if done(&metrics) {
            return metrics;
        }
        assert!(Instant::now() < deadline, "never saw {what}: {metrics:#?}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// A parsed exposition.
#[derive(Debug)]
pub struct Metrics {
    /// The parsed samples.
    pub scrape: Scrape,
    /// The text as scraped, for failure messages.
    pub text: String,
}

impl Metrics {
    /// Parses an exposition in the Prometheus text format; panics if it is
    /// not one.
    #[track_caller]
    pub fn parse(text: &str) -> Metrics {
        let scrape =
            Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("a valid exposition");
        Metrics {
            scrape,
            text: text.to_owned(),
        }
    }

    /// The value of the counter, gauge or untyped sample `name` with
    /// exactly `labels` (besides a `worker` label); panics if absent.
    #[track_caller]
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.try_value(name, labels)
            .unwrap_or_else(|| panic!("no sample {name} {labels:?} in\n{}", self.text))
    }

    /// The value of the sample `name` with exactly `labels`, if present.
    pub fn try_value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.scrape
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(v)))
            .find_map(|s| match s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => Some(v),
                _ => None,
            })
    }

    /// The sum over all samples named `name`, whatever their labels.
    pub fn sum(&self, name: &str) -> f64 {
        self.scrape
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .map(|s| match s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    }

    /// The cumulative buckets `(le, count)` of histogram `name`, `+Inf`
    /// last.
    #[track_caller]
    pub fn histogram(&self, name: &str) -> Vec<(f64, f64)> {
        let sample = self
            .scrape
            .samples
            .iter()
            .find(|s| s.metric == name)
            .unwrap_or_else(|| panic!("no histogram {name} in\n{}", self.text));
        let Value::Histogram(buckets) = &sample.value else {
            panic!("{name} is not a histogram: {:?}", sample.value);
        };
        buckets.iter().map(|b| (b.less_than, b.count)).collect()
    }

    /// Observations in histogram `name` (its `+Inf` bucket).
    pub fn histogram_count(&self, name: &str) -> f64 {
        self.histogram(name).last().map_or(0.0, |&(_, n)| n)
    }

    /// Whether a series named `name` (a sample or a histogram) is present.
    pub fn has(&self, name: &str) -> bool {
        self.scrape.samples.iter().any(|s| s.metric == name)
    }

    /// Checks the bookkeeping identity: every connection accepted is open
    /// or was closed for exactly one reason.
    #[track_caller]
    pub fn assert_accounted(&self, prefix: &str) {
        let accepted = self.value(&format!("{prefix}_connections_accepted_total"), &[]);
        let open = self.value(&format!("{prefix}_connections_open"), &[]);
        let closed = self.sum(&format!("{prefix}_connections_closed_total"));
        assert_eq!(
            accepted,
            open + closed,
            "accepted {accepted} != open {open} + closed {closed}\n{}",
            self.text
        );
    }
}
