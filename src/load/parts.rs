//! The figures every scenario shares: how the connections were opened,
//! how the server closed them, CPU time, quantiles.

use serde::{Deserialize, Serialize};

use super::rows::Rows;

/// CPU time of a process, split into user and kernel time: in seconds over
/// a span, or in the unit of the field that holds it (e.g.
/// [`HeartbeatServer::cpu_per_pong_us`](super::HeartbeatServer)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    /// In user space.
    pub user: f64,
    /// In the kernel.
    pub kernel: f64,
}

impl Cpu {
    /// User plus kernel time.
    pub fn total(&self) -> f64 {
        self.user + self.kernel
    }

    /// Both parts multiplied by `k` (e.g. per PONG, in microseconds).
    pub fn scaled(&self, k: f64) -> Cpu {
        Cpu {
            user: self.user * k,
            kernel: self.kernel * k,
        }
    }

    pub(crate) fn add(&mut self, other: &Cpu) {
        self.user += other.user;
        self.kernel += other.kernel;
    }
}

/// How the connections of a run were opened.
///
/// A connection counts as established when the server has answered its
/// first `PING`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Opening {
    /// Connections asked for.
    pub target: u64,
    /// Connections whose first `PING` was answered.
    pub established: u64,
    /// Connects refused, reset, or closed before the first `PONG`.
    pub failed: u64,
    /// Connects or first `PING`s given up after `--connect-timeout`.
    pub timed_out: u64,
    /// Seconds from the first connect to the last established.
    pub secs: f64,
    /// Established connections per second over the whole opening.
    pub rate: f64,
    /// The early window: the rate is also measured over this many first
    /// connections (or all, if fewer were asked).
    pub early_conns: u64,
    /// Established connections per second over the early window (`None`
    /// if it was never filled).
    pub early_rate: Option<f64>,
    /// The load client's open-file limit.
    pub client_fd_limit: Option<u64>,
    /// What stopped the opening.
    pub stopped_by: StoppedBy,
    /// The first error that was not a file-descriptor limit.
    pub first_error: Option<String>,
}

impl Opening {
    /// Adds another process's opening: counts and rates summed (the
    /// processes ran at the same time), the slowest process's time.
    pub(crate) fn absorb(&mut self, o: &Opening) {
        self.target += o.target;
        self.established += o.established;
        self.failed += o.failed;
        self.timed_out += o.timed_out;
        self.secs = self.secs.max(o.secs);
        self.rate += o.rate;
        self.early_conns += o.early_conns;
        self.early_rate = match (self.early_rate, o.early_rate) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        self.client_fd_limit = self.client_fd_limit.max(o.client_fd_limit);
        self.stopped_by = self.stopped_by.max(o.stopped_by);
        if self.first_error.is_none() {
            self.first_error.clone_from(&o.first_error);
        }
    }

    pub(crate) fn rows(&self, t: &mut Rows) {
        t.int("connections asked", self.target);
        t.int("connections established", self.established);
        t.int("connects failed", self.failed);
        t.int("connects timed out", self.timed_out);
        t.num("time to open them", "s", self.secs);
        t.num("connect rate (all)", "conn/s", self.rate);
        t.opt(
            &format!("connect rate (first {})", self.early_conns),
            "conn/s",
            self.early_rate,
        );
        t.opt_int("load client fd limit", self.client_fd_limit);
        t.text("stopped by", self.stopped_by.describe());
    }
}

/// What stopped the opening of connections, least to most telling.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoppedBy {
    /// Every connection asked for was established.
    #[default]
    Nothing,
    /// Failures or time-outs: the server or the network.
    ServerOrNetwork,
    /// The load client's own file-descriptor limit, not the server.
    ClientFdLimit,
}

impl StoppedBy {
    /// Words for the table.
    pub fn describe(self) -> &'static str {
        match self {
            StoppedBy::Nothing => "nothing (target reached)",
            StoppedBy::ServerOrNetwork => "server or network",
            StoppedBy::ClientFdLimit => "client fd limit",
        }
    }
}

/// How the server closed connections, by closing line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closes {
    /// `BYE idle`.
    pub idle: u64,
    /// `BYE full`.
    pub full: u64,
    /// `BYE shutdown`.
    pub shutdown: u64,
    /// Any other `BYE`.
    pub other_bye: u64,
    /// `ERR ...`.
    pub err: u64,
    /// Closed without a closing line.
    pub silent: u64,
}

impl Closes {
    /// Every close by the server.
    pub fn total(&self) -> u64 {
        self.idle + self.full + self.shutdown + self.other_bye + self.err + self.silent
    }

    pub(crate) fn absorb(&mut self, o: &Closes) {
        self.idle += o.idle;
        self.full += o.full;
        self.shutdown += o.shutdown;
        self.other_bye += o.other_bye;
        self.err += o.err;
        self.silent += o.silent;
    }

    /// A row with the total; the breakdown as a note when there was any.
    pub(crate) fn rows(&self, t: &mut Rows, label: &str) {
        t.int(label, self.total());
        if self.total() > 0 {
            t.note(format!(
                "{label}: {} BYE idle, {} BYE full, {} BYE shutdown, {} other BYE, {} ERR, {} without a line",
                self.idle, self.full, self.shutdown, self.other_bye, self.err, self.silent
            ));
        }
    }
}

/// Quantiles of a set of samples (`None` where there was no sample).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// The smallest.
    pub min: Option<f64>,
    /// The median.
    pub p50: Option<f64>,
    /// The 99th percentile.
    pub p99: Option<f64>,
    /// The largest.
    pub max: Option<f64>,
}

impl Spread {
    /// The quantiles of `samples` (nearest rank).
    ///
    /// # Examples
    ///
    /// ```
    /// use vigil::load::Spread;
    ///
    /// let s = Spread::of((1..=100).map(f64::from).collect());
    /// assert_eq!((s.p50, s.p99, s.max), (Some(50.0), Some(99.0), Some(100.0)));
    /// assert_eq!(Spread::of(vec![]).p50, None);
    /// ```
    pub fn of(mut samples: Vec<f64>) -> Spread {
        samples.sort_by(f64::total_cmp);
        Spread {
            min: quantile(&samples, 0.0),
            p50: quantile(&samples, 0.5),
            p99: quantile(&samples, 0.99),
            max: quantile(&samples, 1.0),
        }
    }

    /// Each quantile the worse (larger) of two processes'.
    pub(crate) fn absorb_worst(&mut self, o: &Spread) {
        let worst = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.min = match (self.min, o.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.p50 = worst(self.p50, o.p50);
        self.p99 = worst(self.p99, o.p99);
        self.max = worst(self.max, o.max);
    }
}

/// The `q`-quantile (0..=1) of sorted samples, nearest rank.
fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile(&v, 0.5), Some(50.0));
        assert_eq!(quantile(&v, 0.99), Some(99.0));
        assert_eq!(quantile(&v, 1.0), Some(100.0));
        assert_eq!(quantile(&v, 0.0), Some(1.0));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn openings_add_up() {
        let a = Opening {
            target: 10,
            established: 10,
            secs: 1.0,
            rate: 10.0,
            early_conns: 10,
            early_rate: Some(10.0),
            ..Opening::default()
        };
        let mut b = Opening {
            stopped_by: StoppedBy::ClientFdLimit,
            secs: 2.0,
            ..a.clone()
        };
        b.absorb(&a);
        assert_eq!((b.target, b.established, b.rate), (20, 20, 20.0));
        assert_eq!((b.secs, b.early_rate), (2.0, Some(20.0)));
        assert_eq!(b.stopped_by, StoppedBy::ClientFdLimit);
    }
}
