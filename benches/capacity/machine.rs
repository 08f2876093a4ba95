//! The machine the benchmark runs on, and where its files go.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Cores, file limit, kernel: the report's first line.
pub fn describe() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let fd = vigil::load::proc_stats::own_fd_limit().map_or("?".into(), |n| n.to_string());
    let kernel = Command::new("uname")
        .arg("-r")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("machine: {cores} cores, open-file limit {fd} per process, Linux {kernel}")
}

/// Where the results go: `target/<name>/`, beside `target/release/`, the
/// folder of the binaries `exe_in_release` is one of.
pub fn out_dir(exe_in_release: &str, name: &str) -> PathBuf {
    let release = Path::new(exe_in_release).parent().expect("target/release");
    release.parent().unwrap_or(release).join(name)
}
