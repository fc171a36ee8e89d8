//! Installs done on first use (the pinned Flink, the example job, the chart test's Helm), safe
//! when several threads or processes reach them at once.
//!
//! One caller installs, under an exclusive lock on `<dest>.lock`, into `<dest>.partial`, and
//! renames it to `<dest>` once it is complete, with a marker inside naming what was installed.
//! The others wait for the lock and then find it done. What a killed install leaves behind (a
//! `.partial` directory, or a `<dest>` without the marker from before this scheme) is detected
//! under the lock and redone. The lock is `flock`: the kernel releases it when its holder dies,
//! so a crash never leaves it held.

use std::fs::{self, File, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The file inside a complete install holding its stamp.
const MARKER: &str = ".first-use-complete";

/// How long a caller waits for another one's install (a 350 MB download on a slow line).
const WAIT: Duration = Duration::from_secs(30 * 60);

/// Whether `dest` holds a complete install of `stamp` (what was installed, e.g. the pinned
/// package list: a different stamp is a stale install).
pub fn is_complete(dest: &Path, stamp: &str) -> bool {
    fs::read_to_string(dest.join(MARKER)).is_ok_and(|s| s == stamp)
}

/// Makes `dest` a complete install of `stamp`, running `install` into an empty staging
/// directory when it is not one yet. `progress` hears when this caller waits for another.
pub fn ensure(
    dest: &Path,
    stamp: &str,
    progress: &dyn Fn(&str),
    install: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), String> {
    if is_complete(dest, stamp) {
        return Ok(());
    }
    let parent = dest
        .parent()
        .ok_or_else(|| format!("{} has no parent directory", dest.display()))?;
    fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    let lock_path = sibling(dest, "lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
    wait_for(&lock, &lock_path, progress)?;
    // Whoever held the lock before may have finished it.
    if is_complete(dest, stamp) {
        return Ok(());
    }
    let started = Instant::now();
    let staging = sibling(dest, "partial");
    remove_if_present(&staging)?;
    fs::create_dir_all(&staging)
        .map_err(|e| format!("cannot create {}: {e}", staging.display()))?;
    if let Err(e) = install(&staging) {
        let _ = fs::remove_dir_all(&staging);
        return Err(e);
    }
    fs::write(staging.join(MARKER), stamp)
        .map_err(|e| format!("cannot write {}: {e}", staging.join(MARKER).display()))?;
    remove_if_present(dest)?;
    fs::rename(&staging, dest).map_err(|e| {
        format!(
            "cannot move {} to {}: {e}",
            staging.display(),
            dest.display()
        )
    })?;
    progress(&format!(
        "installed {} in {:.1} s",
        dest.display(),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
    // The lock is released when `lock` is dropped.
}

fn wait_for(lock: &File, path: &Path, progress: &dyn Fn(&str)) -> Result<(), String> {
    let started = Instant::now();
    let mut told = false;
    loop {
        match lock.try_lock() {
            Ok(()) => return Ok(()),
            Err(TryLockError::WouldBlock) if started.elapsed() < WAIT => {
                if !told {
                    progress(&format!(
                        "waiting for another process installing {} (holds {})",
                        path.with_extension("").display(),
                        path.display()
                    ));
                    told = true;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(TryLockError::WouldBlock) => {
                return Err(format!(
                    "gave up after {} s waiting for {}: another process has held it since; \
                     stop it or remove the install it is doing",
                    WAIT.as_secs(),
                    path.display()
                ));
            }
            Err(TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", path.display()));
            }
        }
    }
}

/// `<dest>.<suffix>`, beside `dest` (the same file system, so the rename is atomic).
fn sibling(dest: &Path, suffix: &str) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    dest.with_file_name(name)
}

fn remove_if_present(dir: &Path) -> Result<(), String> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot remove {}: {e}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("first-use-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// An install that takes a while and writes several files, as pip does.
    fn slow_install(dir: &Path) -> Result<(), String> {
        for i in 0..5 {
            fs::write(dir.join(format!("part-{i}")), "x").map_err(|e| e.to_string())?;
            std::thread::sleep(Duration::from_millis(40));
        }
        Ok(())
    }

    #[test]
    fn callers_racing_for_a_missing_install_run_it_once_and_all_see_it_complete() {
        let root = scratch("race");
        let dest = root.join("tool-1.0");
        let runs = Arc::new(AtomicUsize::new(0));
        let start = Arc::new(Barrier::new(4));
        let callers: Vec<_> = (0..4)
            .map(|_| {
                let (dest, runs, start) = (dest.clone(), runs.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    ensure(&dest, "tool==1.0", &|_| {}, |dir| {
                        runs.fetch_add(1, Ordering::SeqCst);
                        slow_install(dir)
                    })
                    .map(|()| (0..5).all(|i| dest.join(format!("part-{i}")).is_file()))
                })
            })
            .collect();
        for caller in callers {
            assert_eq!(
                caller.join().unwrap(),
                Ok(true),
                "every caller sees all parts"
            );
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1, "installed exactly once");
        assert!(is_complete(&dest, "tool==1.0"));
        assert!(!sibling(&dest, "partial").exists());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn what_a_killed_install_left_is_redone() {
        let root = scratch("killed");
        let dest = root.join("tool-1.0");
        // Killed mid-install: a staging directory with half its files, and an install from
        // before the marker existed, half done.
        fs::create_dir_all(sibling(&dest, "partial")).unwrap();
        fs::write(sibling(&dest, "partial").join("part-0"), "half").unwrap();
        fs::create_dir_all(&dest).unwrap();
        fs::write(dest.join("stale"), "").unwrap();
        ensure(&dest, "tool==1.0", &|_| {}, slow_install).unwrap();
        assert!(is_complete(&dest, "tool==1.0"));
        assert!(
            !dest.join("stale").exists(),
            "the unmarked install was replaced"
        );
        assert_eq!(fs::read_to_string(dest.join("part-0")).unwrap(), "x");
        assert!(!sibling(&dest, "partial").exists());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_failed_install_leaves_nothing_and_the_next_caller_tries_again() {
        let root = scratch("failed");
        let dest = root.join("tool-1.0");
        let failed = ensure(&dest, "tool==1.0", &|_| {}, |dir| {
            fs::write(dir.join("part-0"), "x").unwrap();
            Err("pip failed".into())
        });
        assert_eq!(failed, Err("pip failed".to_string()));
        assert!(!dest.exists() && !sibling(&dest, "partial").exists());
        ensure(&dest, "tool==1.0", &|_| {}, slow_install).unwrap();
        assert!(is_complete(&dest, "tool==1.0"));
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn another_stamp_is_a_stale_install_and_is_replaced() {
        let root = scratch("stamp");
        let dest = root.join("job");
        ensure(&dest, "sources-a", &|_| {}, |dir| {
            fs::write(dir.join("job.jar"), "a").map_err(|e| e.to_string())
        })
        .unwrap();
        ensure(&dest, "sources-b", &|_| {}, |dir| {
            fs::write(dir.join("job.jar"), "b").map_err(|e| e.to_string())
        })
        .unwrap();
        assert_eq!(fs::read_to_string(dest.join("job.jar")).unwrap(), "b");
        assert!(is_complete(&dest, "sources-b") && !is_complete(&dest, "sources-a"));
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_caller_waiting_on_another_says_so() {
        let root = scratch("wait");
        let dest = root.join("tool-1.0");
        let holder = File::create(sibling(&dest, "lock")).unwrap();
        holder.lock().unwrap();
        let told = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let waiter = {
            let (dest, told) = (dest.clone(), told.clone());
            std::thread::spawn(move || {
                ensure(
                    &dest,
                    "tool==1.0",
                    &|line| told.lock().unwrap().push(line.to_string()),
                    slow_install,
                )
            })
        };
        std::thread::sleep(Duration::from_millis(500));
        assert!(
            !dest.exists(),
            "nothing is installed while another holds the lock"
        );
        holder.unlock().unwrap();
        waiter.join().unwrap().unwrap();
        assert!(is_complete(&dest, "tool==1.0"));
        let told = told.lock().unwrap();
        assert!(told[0].contains("waiting for another process"), "{told:?}");
        assert!(told[1].starts_with("installed "), "{told:?}");
        fs::remove_dir_all(&root).unwrap();
    }
}
