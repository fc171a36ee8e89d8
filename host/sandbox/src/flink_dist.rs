//! The Flink distribution the local cluster runs: `FLINK_HOME`, else the pinned PyPI
//! distribution in the cache, installed there on first use. `flink-operator local` and the
//! real-Flink tests both use it, so they run the same Flink.

use std::fs;
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

/// Compiles the example job (`examples/jobs/stateful-counter`, Java sources under `src`) with
/// `javac` against the distribution into `<cache>/jobs-<version>/stateful-counter.jar`; reused
/// while the sources are unchanged.
pub fn example_job(flink_home: &Path, cache: &Path, src: &Path) -> Result<PathBuf, String> {
    use std::hash::{Hash, Hasher};
    let src = src.to_path_buf();
    let mut sources = Vec::new();
    let mut stack = vec![src.clone()];
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
    let out = cache.join(format!("jobs-{}", FLINK_VERSION));
    let jar = out.join("stateful-counter.jar");
    let stamp_file = out.join("stateful-counter.stamp");
    if jar.is_file() && fs::read_to_string(&stamp_file).ok().as_deref() == Some(stamp.as_str()) {
        return Ok(jar);
    }
    eprintln!("flink-setup: compiling the stateful-counter example job");
    let classes = out.join("classes");
    let _ = fs::remove_dir_all(&classes);
    fs::create_dir_all(&classes).map_err(|e| e.to_string())?;
    let run = |program: &str, args: Vec<String>| -> Result<(), String> {
        let status = Command::new(program).args(&args).status().map_err(|e| {
            format!("cannot run {program} ({e}): the example job needs a JDK 17 (apt-get install openjdk-17-jdk-headless)")
        })?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("{program} failed ({status})"))
        }
    };
    let mut javac = vec![
        "--release".to_string(),
        "11".into(),
        "-nowarn".into(),
        "-cp".into(),
        format!("{}/lib/*", flink_home.display()),
        "-d".into(),
        classes.display().to_string(),
    ];
    javac.extend(sources.iter().map(|s| s.display().to_string()));
    run("javac", javac)?;
    run(
        "jar",
        vec![
            "--create".into(),
            "--file".into(),
            jar.display().to_string(),
            "--main-class".into(),
            "org.flinkoperator.examples.StatefulCounterJob".into(),
            "-C".into(),
            classes.display().to_string(),
            ".".into(),
        ],
    )?;
    fs::write(&stamp_file, stamp).map_err(|e| e.to_string())?;
    Ok(jar)
}
