//! The Flink distribution the local cluster runs: `FLINK_HOME`, else the pinned PyPI
//! distribution in the cache, installed there on first use. `flink-operator local` and the
//! real-Flink tests both use it, so they run the same Flink.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The pinned version.
pub const FLINK_VERSION: &str = "2.3.0";

/// `$FLINK_OPERATOR_CACHE`, else `$XDG_CACHE_HOME/flink-operator`, else `~/.cache/flink-operator`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FLINK_OPERATOR_CACHE") {
        return PathBuf::from(dir);
    }
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("flink-operator")
}

/// A user's `FLINK_HOME` may be any version; a cached one must be the pinned one.
pub fn find(cache: &Path) -> Option<PathBuf> {
    let runnable = |p: &Path| p.join("bin/jobmanager.sh").is_file();
    if let Some(home) = std::env::var_os("FLINK_HOME")
        .map(PathBuf::from)
        .filter(|p| runnable(p))
    {
        return Some(home);
    }
    let lib = cache.join(format!("flink-{FLINK_VERSION}/lib"));
    std::fs::read_dir(lib)
        .ok()?
        .flatten()
        .map(|python| python.path().join("site-packages/pyflink"))
        .find(|p| {
            runnable(p)
                && p.join(format!("lib/flink-dist-{FLINK_VERSION}.jar"))
                    .is_file()
        })
}

/// Installs the pinned distribution into `cache` (a Python venv with `apache-flink` and
/// `apache-flink-libraries`, `--no-deps`), telling `progress` what it does.
pub fn install(cache: &Path, progress: &dyn Fn(&str)) -> Result<PathBuf, String> {
    let venv = cache.join(format!("flink-{FLINK_VERSION}"));
    progress(&format!(
        "installing Flink {FLINK_VERSION} from PyPI into {} (about 350 MB, once)",
        venv.display()
    ));
    let _ = std::fs::remove_dir_all(&venv);
    std::fs::create_dir_all(cache)
        .map_err(|e| format!("cannot create {}: {e}", cache.display()))?;
    let run = |program: &Path, args: &[&str]| -> Result<(), String> {
        let status = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} {} failed ({status})",
                program.display(),
                args.join(" ")
            ))
        }
    };
    run(
        Path::new("python3"),
        &["-m", "venv", venv.to_str().ok_or("non-UTF-8 cache path")?],
    )
    .map_err(|e| format!("{e}; Flink is installed from PyPI and needs Python 3 with venv"))?;
    let flink = format!("apache-flink=={FLINK_VERSION}");
    let libraries = format!("apache-flink-libraries=={FLINK_VERSION}");
    run(
        &venv.join("bin/pip"),
        &[
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            &flink,
            &libraries,
        ],
    )?;
    let home = find(cache).ok_or_else(|| {
        format!(
            "the installed packages hold no Flink distribution under {}",
            venv.display()
        )
    })?;
    progress(&format!(
        "Flink {FLINK_VERSION} installed at {}",
        home.display()
    ));
    Ok(home)
}
