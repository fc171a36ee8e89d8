//! A real Flink cluster (one JobManager, one TaskManager) on 127.0.0.1 for tests.
//!
//! The distribution is the pinned PyPI Flink in the cache (`sandbox::flink_dist`, the installer
//! `flink-operator local` uses too); the example job is compiled against it here. Both JVMs run in the foreground as children of the test,
//! each in its own process group, and are stopped by process group id when the cluster is
//! dropped: SIGTERM, then SIGKILL after a grace period. They also receive SIGKILL if the test
//! process dies first, so no JVM outlives its test.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the pinned Flink and the example job are.
#[derive(Clone, Debug)]
pub struct FlinkInstall {
    pub flink_home: PathBuf,
    pub example_jar: PathBuf,
}

impl FlinkInstall {
    /// The pinned Flink (installed into the cache on first use, like `flink-operator local`
    /// does) and the example job compiled against it (rebuilt when its sources change).
    pub fn ensure() -> Result<Self, String> {
        let cache = sandbox::flink_dist::cache_dir();
        let flink_home =
            sandbox::flink_dist::ensure(&cache, &|line| eprintln!("flink-setup: {line}"))?;
        let example_jar = compile_example_job(&flink_home, &cache)?;
        Ok(Self {
            flink_home,
            example_jar,
        })
    }
}

/// Compiles `examples/jobs/stateful-counter` into a jar in the cache (see `flink_dist`).
fn compile_example_job(flink_home: &Path, cache: &Path) -> Result<PathBuf, String> {
    sandbox::flink_dist::example_job(
        flink_home,
        cache,
        &repo_dir().join("examples/jobs/stateful-counter/src/main/java"),
    )
}

pub fn repo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A running JobManager + TaskManager.
pub struct FlinkCluster {
    pub install: FlinkInstall,
    pub rest_url: String,
    pub work_dir: PathBuf,
    processes: Vec<(String, Child)>,
}

/// Cluster settings beyond the defaults the harness needs for loopback and small memory.
#[derive(Clone, Debug, Default)]
pub struct ClusterOptions {
    pub task_slots: u32,
    pub extra: BTreeMap<String, String>,
}

/// Two distinct free ports below Linux's ephemeral range (32768 and up). A port the kernel
/// hands out for port 0 is in that range, where Flink's own random ports (the BLOB server's)
/// are drawn from too: seen on CI, the BLOB server took the REST port chosen a moment before
/// and the JobManager could not start.
fn free_ports() -> Result<(u16, u16), String> {
    use std::hash::{BuildHasher, Hasher};
    let mut seed = std::collections::hash_map::RandomState::new().build_hasher();
    seed.write_u32(std::process::id());
    let start = seed.finish();
    const LOW: u64 = 20_000;
    const SPAN: u64 = 12_000;
    // Held until both are chosen, so they differ.
    let mut held = Vec::new();
    for i in 0..SPAN {
        let port = (LOW + (start.wrapping_add(i * 7_919)) % SPAN) as u16;
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)) {
            held.push((port, listener));
            if let [(a, _), (b, _)] = held[..] {
                return Ok((a, b));
            }
        }
    }
    Err(format!("no two free ports from {LOW} to {}", LOW + SPAN))
}

impl FlinkCluster {
    pub fn start(install: FlinkInstall, options: ClusterOptions) -> Result<Self, String> {
        static SEQUENCE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        remove_stale_work_dirs();
        let work_dir =
            std::env::temp_dir().join(format!("flink-operator-it-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&work_dir);
        let conf_dir = work_dir.join("conf");
        let log_dir = work_dir.join("log");
        for dir in [&conf_dir, &log_dir] {
            fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let (rest_port, rpc_port) = free_ports()?;
        let config = cluster_config(
            &install.flink_home,
            &work_dir,
            rest_port,
            rpc_port,
            &options,
        )?;
        fs::write(conf_dir.join("config.yaml"), config).map_err(|e| e.to_string())?;
        for file in ["log4j-console.properties", "logback-console.xml"] {
            let _ = fs::copy(
                install.flink_home.join("conf").join(file),
                conf_dir.join(file),
            );
        }

        let mut cluster = Self {
            install,
            rest_url: format!("http://127.0.0.1:{rest_port}"),
            work_dir,
            processes: Vec::new(),
        };
        cluster.spawn("jobmanager", "jobmanager.sh")?;
        cluster.spawn("taskmanager", "taskmanager.sh")?;
        cluster.wait_until_ready(Duration::from_secs(90))?;
        Ok(cluster)
    }

    fn spawn(&mut self, name: &str, script: &str) -> Result<(), String> {
        let out = fs::File::create(self.work_dir.join(format!("{name}.out")))
            .map_err(|e| e.to_string())?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let mut command = Command::new("bash");
        command
            .arg(self.install.flink_home.join("bin").join(script))
            .arg("start-foreground")
            .env("FLINK_CONF_DIR", self.work_dir.join("conf"))
            .env("FLINK_LOG_DIR", self.work_dir.join("log"))
            .current_dir(&self.work_dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        // SAFETY: only an async-signal-safe prctl between fork and exec; it makes the kernel
        // kill the JVM (the scripts exec into it) if the test process dies without cleaning up.
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
            });
        }
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        self.processes.push((name.to_string(), child));
        Ok(())
    }

    fn wait_until_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let address = self.rest_url.trim_start_matches("http://").to_string();
        loop {
            let exited = self.processes.iter_mut().find_map(|(name, child)| {
                child
                    .try_wait()
                    .ok()
                    .flatten()
                    .map(|status| (name.clone(), status))
            });
            if let Some((name, status)) = exited {
                return Err(format!(
                    "{name} exited during start-up ({status}); output:\n{}",
                    self.tail(&name)
                ));
            }
            if let Some(body) = http_get(&address, "/taskmanagers")
                && body.contains("\"id\"")
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "Flink not ready within {timeout:?}; JobManager output:\n{}",
                    self.tail("jobmanager")
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The last lines a process wrote, for failure messages.
    pub fn tail(&self, name: &str) -> String {
        let text =
            fs::read_to_string(self.work_dir.join(format!("{name}.out"))).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Process ids of the JobManager and TaskManager JVMs.
    pub fn pids(&self) -> Vec<u32> {
        self.processes.iter().map(|(_, c)| c.id()).collect()
    }

    /// Stops both JVMs: SIGTERM to each process group, SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        for (_, child) in &self.processes {
            let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        for (_, child) in &mut self.processes {
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(100));
            }
            if matches!(child.try_wait(), Ok(None)) {
                let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
                let _ = child.wait();
            }
        }
        self.processes.clear();
    }
}

impl Drop for FlinkCluster {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(15));
        if std::env::var_os("KEEP_FLINK_WORK_DIR").is_none() {
            let _ = fs::remove_dir_all(&self.work_dir);
        }
    }
}

/// Work directories of test processes that died without cleaning up (their JVMs died with
/// them through the parent-death signal; their files did not).
fn remove_stale_work_dirs() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = name
            .strip_prefix("flink-operator-it-")
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        let alive = pid
            .parse::<i32>()
            .is_ok_and(|pid| nix::sys::signal::kill(Pid::from_raw(pid), None).is_ok());
        if !alive {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// The cluster's `config.yaml`: the distribution's JVM options (Flink needs its `--add-opens`),
/// loopback addresses, small memory, the adaptive scheduler, file-based state.
fn cluster_config(
    flink_home: &Path,
    work_dir: &Path,
    rest_port: u16,
    rpc_port: u16,
    options: &ClusterOptions,
) -> Result<String, String> {
    let shipped = fs::read_to_string(flink_home.join("conf/config.yaml"))
        .map_err(|e| format!("distribution config: {e}"))?;
    let shipped: flink_api::FlinkConfiguration = serde_saphyr::from_str(&shipped)
        .map_err(|e| format!("distribution config is not YAML: {e}"))?;
    let java_opts = shipped
        .flat()
        .get("env.java.opts.all")
        .cloned()
        .unwrap_or_default();
    let dir = |name: &str| format!("file://{}", work_dir.join(name).display());
    let slots = if options.task_slots == 0 {
        4
    } else {
        options.task_slots
    };
    let mut config: BTreeMap<String, String> = [
        ("env.java.opts.all", java_opts),
        ("jobmanager.rpc.address", "127.0.0.1".into()),
        ("jobmanager.rpc.port", rpc_port.to_string()),
        ("jobmanager.bind-host", "127.0.0.1".into()),
        ("jobmanager.memory.process.size", "768m".into()),
        ("jobmanager.memory.jvm-metaspace.size", "160m".into()),
        ("taskmanager.host", "127.0.0.1".into()),
        ("taskmanager.bind-host", "127.0.0.1".into()),
        ("taskmanager.memory.process.size", "800m".into()),
        ("taskmanager.memory.managed.size", "64m".into()),
        ("taskmanager.memory.network.min", "32m".into()),
        ("taskmanager.memory.network.max", "32m".into()),
        ("taskmanager.memory.jvm-metaspace.size", "160m".into()),
        ("taskmanager.numberOfTaskSlots", slots.to_string()),
        ("rest.address", "127.0.0.1".into()),
        ("rest.bind-address", "127.0.0.1".into()),
        ("rest.port", rest_port.to_string()),
        ("jobmanager.scheduler", "adaptive".into()),
        ("execution.checkpointing.interval", "2s".into()),
        ("execution.checkpointing.dir", dir("checkpoints")),
        ("execution.checkpointing.savepoint-dir", dir("savepoints")),
        ("metrics.fetcher.update-interval", "1000".into()),
        (
            "web.upload.dir",
            work_dir.join("uploads").display().to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    config.extend(options.extra.clone());
    let lines: Vec<String> = config
        .iter()
        .map(|(key, value)| format!("{key}: {}", yaml_string(value)))
        .collect();
    Ok(format!(
        "# Written by the test harness.\n{}\n",
        lines.join("\n")
    ))
}

fn yaml_string(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A minimal HTTP GET for readiness checks, before any client exists.
fn http_get(address: &str, path: &str) -> Option<String> {
    use std::io::Read;
    let mut stream =
        TcpStream::connect_timeout(&address.parse().ok()?, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.starts_with("HTTP/1.1 200").then_some(response)
}
