//! The Flink distribution the local cluster runs: `FLINK_HOME`, else the pinned PyPI
//! distribution in the cache, installed there on first use. `flink-operator local` and the
//! real-Flink tests both use it, so they run the same Flink.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::first_use;

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

/// What the cached install holds, which is also its stamp (another list is a stale install).
fn packages() -> [String; 2] {
    [
        format!("apache-flink=={FLINK_VERSION}"),
        format!("apache-flink-libraries=={FLINK_VERSION}"),
    ]
}

/// A user's `FLINK_HOME` may be any version; a cached one must be the pinned one, completely
/// installed.
pub fn find(cache: &Path) -> Option<PathBuf> {
    let runnable = |p: &Path| p.join("bin/jobmanager.sh").is_file();
    if let Some(home) = std::env::var_os("FLINK_HOME")
        .map(PathBuf::from)
        .filter(|p| runnable(p))
    {
        return Some(home);
    }
    let venv = cache.join(format!("flink-{FLINK_VERSION}"));
    if !first_use::is_complete(&venv, &packages().join(" ")) {
        return None;
    }
    distribution_in(&venv)
}

fn distribution_in(venv: &Path) -> Option<PathBuf> {
    fs::read_dir(venv.join("lib"))
        .ok()?
        .flatten()
        .map(|python| python.path().join("site-packages/pyflink"))
        .find(|p| {
            p.join("bin/jobmanager.sh").is_file()
                && p.join(format!("lib/flink-dist-{FLINK_VERSION}.jar"))
                    .is_file()
        })
}

/// `FLINK_HOME`, or the pinned distribution in `cache`, installed there first if it is not (a
/// Python venv with `apache-flink` and `apache-flink-libraries`, `--no-deps`), once however
/// many processes ask at the same time (`first_use`). `progress` hears what it does.
pub fn ensure(cache: &Path, progress: &dyn Fn(&str)) -> Result<PathBuf, String> {
    if let Some(home) = find(cache) {
        return Ok(home);
    }
    let venv = cache.join(format!("flink-{FLINK_VERSION}"));
    let packages = packages();
    first_use::ensure(&venv, &packages.join(" "), progress, |staging| {
        progress(&format!(
            "installing Flink {FLINK_VERSION} from PyPI into {} (about 350 MB, once)",
            venv.display()
        ));
        python_venv(staging, &packages.each_ref().map(String::as_str))?;
        distribution_in(staging).map(|_| ()).ok_or_else(|| {
            format!(
                "the installed packages hold no Flink {FLINK_VERSION} distribution under {}",
                staging.display()
            )
        })
    })?;
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

/// Creates a Python venv at `dir` and installs `packages` into it (`--no-deps`: pinned lists
/// name every package). Only `bin/python` is run from it afterwards, never a script with the
/// venv's path in its first line, so the venv still works after `first_use` renames it.
pub fn python_venv(dir: &Path, packages: &[&str]) -> Result<(), String> {
    let python = "; it needs Python 3 with venv";
    run(
        Command::new("python3").arg("-m").arg("venv").arg(dir),
        python,
    )?;
    run(
        Command::new(dir.join("bin/python"))
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                // helm-sdkpy declares Python >= 3.12 but runs on 3.11 (a ctypes wrapper of a
                // Go library); nothing pinned here needs the check.
                "--ignore-requires-python",
            ])
            .args(packages),
        python,
    )
}

/// Compiles the example job (`examples/jobs/stateful-counter`, Java sources under `src`)
/// against the distribution (see [`java_program`]).
pub fn example_job(flink_home: &Path, cache: &Path, src: &Path) -> Result<PathBuf, String> {
    java_program(
        flink_home,
        cache,
        src,
        "stateful-counter",
        "org.flinkoperator.examples.StatefulCounterJob",
    )
}

/// `java` running `main` from `jar` with the distribution's `lib/` on the class path and
/// Flink's console logging (its rolling file appender writing to a temporary file named after
/// `log_name`), in a process group of its own so the caller can stop it and all it started.
pub fn java(flink_home: &Path, jar: &Path, main: &str, log_name: &str) -> Command {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new("java");
    command
        .arg(format!(
            "-Dlog4j.configurationFile={}/conf/log4j-console.properties",
            flink_home.display()
        ))
        .arg(format!(
            "-Dlog.file={}",
            std::env::temp_dir()
                .join(format!("{log_name}-{}.log", std::process::id()))
                .display()
        ))
        .arg("-cp")
        .arg(format!("{}:{}/lib/*", jar.display(), flink_home.display()))
        .arg(main)
        .process_group(0);
    command
}

/// Compiles the Java sources under `src` with `javac` against the distribution's `lib/` into
/// `<cache>/jobs-<version>/<name>-<digest of the sources>/<name>.jar` (main class `main`),
/// once however many processes ask at the same time; a change of the sources builds anew.
pub fn java_program(
    flink_home: &Path,
    cache: &Path,
    src: &Path,
    name: &str,
    main: &str,
) -> Result<PathBuf, String> {
    use std::hash::{Hash, Hasher};
    let mut sources = Vec::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "java") {
                sources.push(path);
            }
        }
    }
    sources.sort();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for source in &sources {
        fs::read(source)
            .map_err(|e| e.to_string())?
            .hash(&mut hasher);
    }
    let stamp = format!("{:016x}", hasher.finish());
    let dest = cache
        .join(format!("jobs-{FLINK_VERSION}"))
        .join(format!("{name}-{stamp}"));
    let jar = format!("{name}.jar");
    let jdk = "; it needs a JDK 17 (apt-get install openjdk-17-jdk-headless)";
    first_use::ensure(
        &dest,
        &stamp,
        &|line| eprintln!("flink-setup: {line}"),
        |staging| {
            eprintln!("flink-setup: compiling {name}");
            let classes = staging.join("classes");
            run(
                Command::new("javac")
                    .args(["--release", "11", "-nowarn", "-cp"])
                    .arg(format!("{}/lib/*", flink_home.display()))
                    .arg("-d")
                    .arg(&classes)
                    .args(&sources),
                jdk,
            )?;
            run(
                Command::new("jar")
                    .args(["--create", "--file"])
                    .arg(staging.join(&jar))
                    .args(["--main-class", main, "-C"])
                    .arg(&classes)
                    .arg("."),
                jdk,
            )
        },
    )?;
    Ok(dest.join(jar))
}

/// Runs `command` to success; `missing` (`; ...`) says what to install when it cannot start.
fn run(command: &mut Command, missing: &str) -> Result<(), String> {
    let status = command
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run {command:?} ({e}){missing}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{command:?} failed ({status})"))
    }
}
