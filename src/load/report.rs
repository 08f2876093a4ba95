//! The result of a run: one typed [`Report`], its JSON (one writer, one
//! reader) and the table printed on stdout.

use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::options::Scenario;
use super::parts::{Cpu, Opening, StoppedBy};
use super::rows::Rows;
use super::scenarios::fanout_figures::Fanout;
use super::scenarios::heartbeat::Heartbeat;
use super::scenarios::hold::Hold;
use super::scenarios::keepalive::Keepalive;
use super::scenarios::reap::Reap;
use super::scenarios::rolling::Rolling;
use super::scenarios::storm::Storm;

/// Everything one run of `vigil-load` measured.
///
/// Written with [`Report::write_json`] and read back with
/// [`Report::read_json`]; a program that reads figures names them as fields,
/// so a renamed figure is a compile error.
///
/// # Examples
///
/// ```
/// use vigil::load::{Closes, Figures, Keepalive, Report};
///
/// let report = Report {
///     label: "vigil".into(),
///     procs: None,
///     figures: Figures::Keepalive(Keepalive::default()),
///     notes: vec![],
/// };
/// let back = Report::from_json(&report.to_json())?;
/// assert_eq!(back, report);
/// assert_eq!(back.keepalive().map(|k| k.closed_by_server), Some(Closes::default()));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The server's label (`--label`).
    pub label: String,
    /// With `--procs`: how the load was split and what the parent saw.
    pub procs: Option<Procs>,
    /// The scenario's figures.
    pub figures: Figures,
    /// Sentences printed under the table.
    pub notes: Vec<String>,
}

/// The figures of one scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "scenario", rename_all = "lowercase")]
pub enum Figures {
    /// See [`Hold`].
    Hold(Hold),
    /// See [`Heartbeat`].
    Heartbeat(Heartbeat),
    /// See [`Reap`].
    Reap(Reap),
    /// See [`Keepalive`].
    Keepalive(Keepalive),
    /// See [`Storm`].
    Storm(Storm),
    /// See [`Rolling`].
    Rolling(Rolling),
    /// See [`Fanout`] (boxed: it is the largest by far).
    Fanout(Box<Fanout>),
}

impl Figures {
    /// Which scenario these figures come from.
    pub fn scenario(&self) -> Scenario {
        match self {
            Figures::Hold(_) => Scenario::Hold,
            Figures::Heartbeat(_) => Scenario::Heartbeat,
            Figures::Reap(_) => Scenario::Reap,
            Figures::Keepalive(_) => Scenario::Keepalive,
            Figures::Storm(_) => Scenario::Storm,
            Figures::Rolling(_) => Scenario::Rolling,
            Figures::Fanout(_) => Scenario::Fanout,
        }
    }

    /// How the connections were opened.
    pub fn opening(&self) -> &Opening {
        match self {
            Figures::Hold(f) => &f.opening,
            Figures::Heartbeat(f) => &f.opening,
            Figures::Reap(f) => &f.opening,
            Figures::Keepalive(f) => &f.opening,
            Figures::Storm(f) => &f.opening,
            Figures::Rolling(f) => &f.opening,
            Figures::Fanout(f) => &f.opening,
        }
    }

    /// Adds the figures of another process's run of the same scenario
    /// (`--procs`); `false`, and nothing added, for another scenario.
    pub(crate) fn absorb(&mut self, other: &Figures) -> bool {
        match (self, other) {
            (Figures::Hold(a), Figures::Hold(b)) => a.absorb(b),
            (Figures::Heartbeat(a), Figures::Heartbeat(b)) => a.absorb(b),
            (Figures::Reap(a), Figures::Reap(b)) => a.absorb(b),
            (Figures::Keepalive(a), Figures::Keepalive(b)) => a.absorb(b),
            (Figures::Storm(a), Figures::Storm(b)) => a.absorb(b),
            (Figures::Rolling(a), Figures::Rolling(b)) => a.absorb(b),
            _ => return false,
        }
        true
    }

    pub(crate) fn rows(&self, t: &mut Rows) {
        match self {
            Figures::Hold(f) => f.rows(t),
            Figures::Heartbeat(f) => f.rows(t),
            Figures::Reap(f) => f.rows(t),
            Figures::Keepalive(f) => f.rows(t),
            Figures::Storm(f) => f.rows(t),
            Figures::Rolling(f) => f.rows(t),
            Figures::Fanout(f) => f.rows(t),
        }
    }
}

impl Report {
    /// The hold figures, if this is a hold run.
    pub fn hold(&self) -> Option<&Hold> {
        match &self.figures {
            Figures::Hold(f) => Some(f),
            _ => None,
        }
    }

    /// The heartbeat figures, if this is a heartbeat run.
    pub fn heartbeat(&self) -> Option<&Heartbeat> {
        match &self.figures {
            Figures::Heartbeat(f) => Some(f),
            _ => None,
        }
    }

    /// The reap figures, if this is a reap run.
    pub fn reap(&self) -> Option<&Reap> {
        match &self.figures {
            Figures::Reap(f) => Some(f),
            _ => None,
        }
    }

    /// The keepalive figures, if this is a keepalive run.
    pub fn keepalive(&self) -> Option<&Keepalive> {
        match &self.figures {
            Figures::Keepalive(f) => Some(f),
            _ => None,
        }
    }

    /// The storm figures, if this is a storm run.
    pub fn storm(&self) -> Option<&Storm> {
        match &self.figures {
            Figures::Storm(f) => Some(f),
            _ => None,
        }
    }

    /// The rolling figures, if this is a rolling run.
    pub fn rolling(&self) -> Option<&Rolling> {
        match &self.figures {
            Figures::Rolling(f) => Some(f),
            _ => None,
        }
    }

    /// The fan-out figures, if this is a fanout run.
    pub fn fanout(&self) -> Option<&Fanout> {
        match &self.figures {
            Figures::Fanout(f) => Some(f.as_ref()),
            _ => None,
        }
    }

    /// Whether the load client stopped at its own file-descriptor limit.
    pub fn client_fd_limited(&self) -> bool {
        self.figures.opening().stopped_by == StoppedBy::ClientFdLimit
    }

    /// The report as JSON.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a report always serialises");
        s.push('\n');
        s
    }

    /// A report from its JSON.
    ///
    /// # Errors
    ///
    /// The text is not a report's JSON (or one of another version).
    pub fn from_json(json: &str) -> Result<Report, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// Writes [`Report::to_json`] to `path`.
    ///
    /// # Errors
    ///
    /// The file cannot be written.
    pub fn write_json(&self, path: &Path) -> io::Result<()> {
        std::fs::write(path, self.to_json())
    }

    /// Reads a report written by [`Report::write_json`].
    ///
    /// # Errors
    ///
    /// The file cannot be read or holds no report.
    pub fn read_json(path: &Path) -> io::Result<Report> {
        let text = std::fs::read_to_string(path)?;
        Report::from_json(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    /// The table printed on stdout, under `title`.
    pub fn table(&self, title: &str) -> String {
        let mut t = Rows::default();
        t.text("scenario", self.figures.scenario().name());
        t.text("server", &self.label);
        if let Some(p) = &self.procs {
            t.int("load processes", p.procs);
            t.int("load processes that reported", p.reported);
        }
        self.figures.rows(&mut t);
        if let Some(s) = self.procs.as_ref().and_then(|p| p.server.as_ref()) {
            t.int_unit("server RSS before", "bytes", s.rss_before);
            t.int_unit("server RSS peak while running", "bytes", s.rss_peak);
            t.num(
                "server RSS growth per connection (peak)",
                "bytes",
                s.rss_per_conn,
            );
            t.int("server open fds peak", s.fds_peak);
            t.cpu("server CPU over the whole run", s.cpu);
        }
        t.render(title, &self.notes)
    }
}

/// How a `--procs` run was split, and the server as the parent saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Procs {
    /// Load processes started.
    pub procs: u64,
    /// Load processes that left a report.
    pub reported: u64,
    /// The server over the whole run (with `--server-pid`).
    pub server: Option<WholeRun>,
}

/// The server over a whole `--procs` run, sampled by the parent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WholeRun {
    /// Resident memory before, bytes.
    pub rss_before: u64,
    /// Largest resident memory seen while the processes ran, bytes.
    pub rss_peak: u64,
    /// Peak growth divided by the connections established, bytes.
    pub rss_per_conn: f64,
    /// Most open files seen.
    pub fds_peak: u64,
    /// CPU time over the run.
    pub cpu: Cpu,
}
