//! What a running reactor shows of itself: the counters copied out for
//! metrics, the per-iteration loop figures, and the optional metrics
//! listener served from the loop's own `Poll`.

use std::io;
use std::time::Duration;

use mio::event::Event;
use mio::net::TcpListener;

use super::scrape::Scrape;
use super::token::METRICS_LISTENER;
use super::{Core, Reactor};
use crate::reactor::handler::Handler;
use crate::reactor::loop_stats::ReactorMetrics;
use crate::reactor::scrape::ScrapeConfig;

impl<H: Handler> Reactor<H> {
    /// A copy of every counter: connections, the loop, the timer wheel, the
    /// metrics listener. Cheap (a few hundred bytes, no system call), so an
    /// embedder can call it whenever it renders metrics; see
    /// `vigil::metrics` (feature `metrics`) for the exposition format.
    pub fn metrics(&self) -> ReactorMetrics {
        let mut metrics = self.core.metrics();
        if let Some(scrape) = &self.scrape {
            metrics.scrapes_open = scrape.open() as u64;
            metrics.scrapes = scrape.answered;
        }
        metrics
    }

    /// Serves `GET /metrics` over HTTP/1.1 on `listener`, from this
    /// reactor's own loop (no thread): `render` appends the response body,
    /// given the reactor's counters ([`Reactor::metrics`]) and the handler.
    /// Scrape connections are bounded in number, size and time (see
    /// [`ScrapeConfig`]); they are not counted as connections, not limited
    /// by [`Config::max_connections`](crate::Config::max_connections) and not reaped as idle.
    ///
    /// Replaces a listener given earlier (which is closed).
    ///
    /// # Errors
    ///
    /// The listener cannot be made non-blocking or registered.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::net::{TcpListener, TcpStream};
    /// use std::thread;
    /// use vigil::{Config, Handler, Reactor, ScrapeConfig};
    ///
    /// struct Quiet;
    /// impl Handler for Quiet {
    ///     type Conn = ();
    /// }
    ///
    /// let mut reactor = Reactor::bind("127.0.0.1:0".parse()?, Config::default(), Quiet)?;
    /// let metrics = TcpListener::bind("127.0.0.1:0")?;
    /// let metrics_addr = metrics.local_addr()?;
    /// reactor.serve_metrics(metrics, ScrapeConfig::default(), |m, _quiet, body| {
    ///     body.push_str(&format!("open {}\n", m.stats.open));
    /// })?;
    /// let handle = reactor.shutdown_handle();
    /// let server = thread::spawn(move || reactor.run());
    ///
    /// let mut scraper = TcpStream::connect(metrics_addr)?;
    /// scraper.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")?;
    /// let mut response = String::new();
    /// scraper.read_to_string(&mut response)?;
    /// assert!(response.starts_with("HTTP/1.1 200 OK\r\n"));
    /// assert!(response.ends_with("\r\n\r\nopen 0\n"));
    /// handle.shutdown();
    /// server.join().unwrap()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn serve_metrics<F>(
        &mut self,
        listener: std::net::TcpListener,
        config: ScrapeConfig,
        render: F,
    ) -> io::Result<()>
    where
        F: FnMut(&ReactorMetrics, &H, &mut String) + Send + 'static,
    {
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener);
        self.scrape = None;
        self.scrape = Some(Scrape::new(
            listener,
            config,
            Box::new(render),
            self.core.poll.registry(),
        )?);
        Ok(())
    }

    /// The poll timeout: the core's, or sooner when a scrape connection's
    /// time runs out first.
    pub(super) fn poll_timeout(&mut self) -> Option<Duration> {
        let timeout = self.core.poll_timeout();
        let Some(scrape) = &self.scrape else {
            return timeout;
        };
        if scrape.wants_turn() {
            return Some(Duration::ZERO);
        }
        let paused = scrape
            .paused_until()
            .map(|tick| self.core.clock.instant_of(tick));
        match [scrape.next_deadline(), paused].into_iter().flatten().min() {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(self.core.last_read);
                Some(timeout.map_or(left, |t| t.min(left)))
            }
            None => timeout,
        }
    }

    /// The metrics listener's turn at the end of an iteration: closes the
    /// scrape connections whose time is up and takes scrapers waiting in
    /// its backlog, if a slot is free and accepting is not paused.
    pub(super) fn scrape_turn(&mut self) {
        let Some(scrape) = &mut self.scrape else {
            return;
        };
        let core = &self.core;
        scrape.expire(core.last_read);
        scrape.accept_backlog(
            core.poll.registry(),
            core.last_read,
            core.now,
            core.accept_retry(),
        );
    }

    /// An event for the metrics listener or a scrape connection.
    pub(super) fn on_metrics_event(&mut self, token: mio::Token, event: &Event) {
        let Some(scrape) = &mut self.scrape else {
            return; // sporadic events happen
        };
        let core = &self.core;
        if token == METRICS_LISTENER {
            scrape.on_ready(core.poll.registry(), core.last_read, core.accept_retry());
        } else {
            scrape.on_event(
                core.poll.registry(),
                token,
                event,
                || core.metrics(),
                &self.handler,
            );
        }
    }
}

impl<S: Default> Core<S> {
    /// Reads the clock after a poll and records the iteration before it:
    /// its busy time runs from its own poll's return to the last clock
    /// reading before this poll, or to this reading when the poll did not
    /// wait (`waited` false: a zero timeout). No clock reading of its own.
    pub(super) fn begin_iteration(&mut self, waited: bool) {
        let before_poll = self.last_read;
        self.read_clock();
        if let Some(start) = self.iteration_start {
            let end = if waited { before_poll } else { self.last_read };
            self.loop_stats
                .iteration(end.saturating_duration_since(start), self.iteration_events);
        }
        self.iteration_start = Some(self.last_read);
        self.iteration_events = 0;
    }

    pub(super) fn metrics(&self) -> ReactorMetrics {
        ReactorMetrics {
            stats: self.stats.clone(),
            loop_stats: self.loop_stats.clone(),
            timers: self.wheel.len() as u64,
            deferred: self.deferred.len() as u64,
            max_connections: self.config.max_connections as u64,
            scrapes_open: 0,
            scrapes: 0,
        }
    }
}
