//! Helpers the end-to-end suites share: waiting for a condition, counting our JVMs.

use std::path::Path;
use std::time::{Duration, Instant};

/// Java processes whose command line mentions `dir` (the runtime's work directory): the JVMs
/// a local cluster started, found through `/proc`.
pub fn jvms_under(dir: &Path) -> usize {
    jvm_pids_under(dir).len()
}

/// The PIDs of the JVMs whose command line names `dir` (a pod's directory names its JVM).
pub fn jvm_pids_under(dir: &Path) -> Vec<i32> {
    let needle = dir.display().to_string();
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let pid = e.file_name().to_string_lossy().parse::<i32>().ok()?;
                    let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
                    let cmd = String::from_utf8_lossy(&cmd);
                    ((cmd.starts_with("java") || cmd.contains("/bin/java"))
                        && cmd.contains(&needle))
                    .then_some(pid)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Polls `check` every half second until it yields a value; panics naming `what` at `timeout`.
pub async fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Resident memory of this process, in bytes (from /proc).
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}
