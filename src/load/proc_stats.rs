//! What Linux says about a process, read from `/proc`.

use std::fs;
use std::time::Instant;

use super::parts::Cpu;

/// Clock ticks per second of `utime`/`stime` in `/proc/PID/stat` (`USER_HZ`,
/// 100 on every mainstream Linux build).
pub const CLOCK_TICKS_PER_SEC: f64 = 100.0;

/// One reading of a process's counters.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// When it was read.
    pub at: Instant,
    /// Resident memory in bytes (`VmRSS`).
    pub rss_bytes: u64,
    /// CPU time since the process started, all threads.
    pub cpu: Cpu,
    /// Voluntary plus involuntary context switches, all threads.
    pub ctx_switches: u64,
    /// Open file descriptors.
    pub fds: u64,
}

/// Reads the counters of process `pid`; `None` if it is gone or unreadable.
pub fn sample(pid: u32) -> Option<Sample> {
    let at = Instant::now();
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status_field(&status, "VmRSS:")?;
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 here.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let mut ctx_switches = 0;
    for task in fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(task) = task else { continue };
        let Ok(status) = fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        ctx_switches += status_field(&status, "voluntary_ctxt_switches:").unwrap_or(0)
            + status_field(&status, "nonvoluntary_ctxt_switches:").unwrap_or(0);
    }
    let fds = fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some(Sample {
        at,
        rss_bytes: rss_kib * 1024,
        cpu: Cpu {
            user: utime as f64 / CLOCK_TICKS_PER_SEC,
            kernel: stime as f64 / CLOCK_TICKS_PER_SEC,
        },
        ctx_switches,
        fds,
    })
}

/// CPU time of every thread of process `pid` since it started, in
/// nanoseconds, from `/proc/PID/task/*/schedstat` (the scheduler's own
/// count, exact, where `stat`'s is in 10 ms ticks; user and kernel
/// together); `None` if it is gone or the kernel has no schedstat.
pub fn cpu_ns(pid: u32) -> Option<u64> {
    let mut total = 0;
    for task in fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        // A thread that exited since the listing is gone, with its time.
        total += schedstat_ns(&task.path().join("schedstat")).unwrap_or(0);
    }
    Some(total)
}

/// The CPU time in a `schedstat` file (its first field, nanoseconds).
fn schedstat_ns(path: &std::path::Path) -> Option<u64> {
    let stat = fs::read_to_string(path).ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

impl Sample {
    /// CPU time from `earlier` to this sample.
    pub fn cpu_since(&self, earlier: &Sample) -> Cpu {
        Cpu {
            user: self.cpu.user - earlier.cpu.user,
            kernel: self.cpu.kernel - earlier.cpu.kernel,
        }
    }

    /// Seconds from `earlier` to this sample.
    pub fn secs_since(&self, earlier: &Sample) -> f64 {
        self.at.duration_since(earlier.at).as_secs_f64().max(1e-6)
    }

    /// Context switches per second from `earlier` to this sample.
    pub fn wakeups_per_sec_since(&self, earlier: &Sample) -> f64 {
        (self.ctx_switches - earlier.ctx_switches) as f64 / self.secs_since(earlier)
    }
}

/// The first number after `key` in a `/proc/*/status` text.
fn status_field(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// Counters of the TCP stack (`TcpExt` in `/proc/net/netstat`), for this
/// network namespace: every process in it counts, not only the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tcp {
    /// SYNs dropped because the listen queue was full (`ListenDrops`).
    pub listen_drops: u64,
    /// Accept queue overflows (`ListenOverflows`).
    pub listen_overflows: u64,
    /// SYNs sent again (`TCPSynRetrans`).
    pub syn_retrans: u64,
}

/// Reads the TCP counters; `None` where `/proc/net/netstat` is unreadable.
pub fn tcp() -> Option<Tcp> {
    let text = fs::read_to_string("/proc/net/netstat").ok()?;
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (lines.next()?, lines.next()?);
    let get = |key: &str| {
        let i = names.split_whitespace().position(|n| n == key)?;
        values.split_whitespace().nth(i)?.parse().ok()
    };
    Some(Tcp {
        listen_drops: get("ListenDrops")?,
        listen_overflows: get("ListenOverflows")?,
        syn_retrans: get("TCPSynRetrans")?,
    })
}

/// This process's soft limit on open files, from `/proc/self/limits`.
pub fn own_fd_limit() -> Option<u64> {
    let limits = fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Open file descriptors of this process.
pub fn own_fds() -> u64 {
    fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_itself() {
        let s = sample(std::process::id()).expect("own /proc entry");
        assert!(s.rss_bytes > 0);
        assert!(s.fds >= 3);
        assert!(own_fd_limit().is_some());
        assert!(tcp().is_some());
    }

    #[test]
    fn counts_its_own_cpu_exactly() {
        // This thread's own: the test harness's other threads come and go
        // (and take their time with them from the process's sum).
        let own = std::path::Path::new("/proc/thread-self/schedstat");
        assert!(cpu_ns(std::process::id()).is_some(), "own task list");
        let before = schedstat_ns(own).expect("own schedstat");
        let spin = std::time::Instant::now();
        while spin.elapsed() < std::time::Duration::from_millis(20) {}
        let after = schedstat_ns(own).expect("own schedstat");
        // Counted to the nanosecond: grows over any spin, where stat's
        // 10 ms ticks may not (no bound on the amount: the machine may be
        // busy and take the CPU away).
        assert!(after > before, "{before} -> {after}");
    }
}
