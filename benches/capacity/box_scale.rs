//! The box scenario: vigil with enough workers (`--workers auto
//! --reuse-port`) holds C connections opened by several `vigil-load`
//! processes from several source addresses, all on this machine, past the
//! per-process descriptor limit. It runs `scripts/box.sh` (which
//! `docs/box.md` explains) and keeps what it prints.

use std::path::Path;
use std::process::Command;

/// Connections the full run's box scenario holds.
pub const FULL: usize = 100_000;
/// How long the connections are held silent once open (the silent window
/// in which wakeups are counted lies inside it).
const HOLD: &str = "10s";

/// Runs the box scenario at `conns`; returns its table, or why it did not
/// run.
pub fn run(conns: usize, out: &Path) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/box.sh");
    eprintln!("capacity: box {conns} ({})", script.display());
    let output = Command::new("bash")
        .arg(&script)
        .args([&conns.to_string(), "", "", HOLD])
        .output();
    let text = match output {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        Ok(o) => format!(
            "box {conns}: scripts/box.sh failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ),
        Err(err) => format!("box {conns}: cannot run scripts/box.sh: {err}"),
    };
    let _ = std::fs::write(out.join("box.txt"), &text);
    text
}
