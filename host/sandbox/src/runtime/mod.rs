//! The process runtime: plays the Deployment controller, the kubelet, the endpoints controller
//! and cluster DNS for the stand-in. Deployments get pods; each pod's Flink container runs as a
//! local process (the distribution's scripts in the foreground) on its own loopback address;
//! Services resolve, through a hosts file the JVMs read, to their ready pods.
//!
//! It runs on its own thread and talks to the store the way controllers talk to an API server,
//! so everything it does is visible through the API (pods, statuses, EndpointSlices).

pub mod deployments;
pub mod endpoints;
pub mod process;

use crate::StoreAccess;
use crate::store::{DeleteOptions, ListOptions, Subresource};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The environment that gives a pod's process the API server at `url`, as a kubelet gives a
/// container its in-cluster configuration: Flink's shaded fabric8 client (and any other
/// fabric8 client) reads `KUBERNETES_MASTER` over whatever it found, and neither a
/// developer's `~/.kube/config` nor a service-account directory of the machine is read.
pub fn api_access_env(url: &str) -> Vec<(String, String)> {
    [
        ("KUBERNETES_MASTER", url),
        ("KUBERNETES_AUTH_TRYKUBECONFIG", "false"),
        ("KUBERNETES_AUTH_TRYSERVICEACCOUNT", "false"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .into()
}

#[derive(Clone, Debug)]
pub struct RuntimeConfig {
    /// The Flink distribution that stands in for the image's `/opt/flink`.
    pub flink_home: PathBuf,
    /// What `/opt/flink/usrlib` (and `local:///opt/flink/usrlib/...`) maps to.
    pub usrlib: PathBuf,
    /// Pod directories (volumes, configuration, logs) and the hosts file.
    pub work_dir: PathBuf,
    /// How long a stopped container may take before SIGKILL (capped pod grace period).
    pub max_grace: Duration,
    /// The API server pods reach over plain HTTP (`api_access_env`), when `in_cluster` is not
    /// set: Flink's native JobManager asks it for TaskManager pods.
    pub api_url: Option<String>,
    /// The API server as a pod sees it on a real cluster (HTTPS, the service account's token
    /// and CA in a projected directory, `KUBERNETES_SERVICE_HOST/PORT`); preferred over
    /// `api_url`.
    pub in_cluster: Option<crate::api_server::InClusterAccess>,
}

struct Running {
    uid: String,
    child: Option<Child>,
    ip: String,
    restarts: u32,
    restart_at: Option<Instant>,
    started: Instant,
    last_exit: Option<i32>,
    error: Option<String>,
    /// The container exited and its restart policy keeps it down (`Never`, or `OnFailure`
    /// after a success): its exit code.
    finished: Option<i32>,
}

/// A running process runtime; stops every pod process when dropped.
pub struct RuntimeHandle {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RuntimeHandle {
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for RuntimeHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

pub fn start(store: StoreAccess, config: RuntimeConfig) -> std::io::Result<RuntimeHandle> {
    std::fs::create_dir_all(config.work_dir.join("pods"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("process-runtime".into())
        .spawn(move || {
            let mut runtime = Runtime {
                store,
                config,
                pods: BTreeMap::new(),
                next_ip: 0,
                suffix: 0,
                hosts: String::new(),
                hostname: std::fs::read_to_string("/etc/hostname")
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            };
            while !flag.load(Ordering::SeqCst) {
                runtime.tick();
                std::thread::sleep(Duration::from_millis(250));
            }
            runtime.stop_all();
        })?;
    Ok(RuntimeHandle {
        stop,
        thread: Some(thread),
    })
}

struct Runtime {
    store: StoreAccess,
    config: RuntimeConfig,
    /// By `(namespace, name)`.
    pods: BTreeMap<(String, String), Running>,
    next_ip: u32,
    suffix: u64,
    hosts: String,
    /// The machine's name, which Flink resolves for itself (read once).
    hostname: String,
}

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// The replicas of the Deployment with `uid`: the pods it owns that it made itself (they carry
/// the `pod-template-hash` label, as a ReplicaSet's pods do). Other pods it owns, such as the
/// TaskManager pods a native JobManager creates with its Deployment as owner, are not its
/// replicas: it neither counts nor replaces them (they go with it, by garbage collection).
fn replicas_of(pods: &[Value], uid: &str) -> Vec<Value> {
    pods.iter()
        .filter(|p| {
            p.pointer("/metadata/ownerReferences/0/uid")
                .and_then(Value::as_str)
                == Some(uid)
                && p.pointer("/metadata/labels/pod-template-hash").is_some()
        })
        .cloned()
        .collect()
}

fn key(v: &Value) -> (String, String) {
    (
        text(v, "/metadata/namespace").to_string(),
        text(v, "/metadata/name").to_string(),
    )
}

impl Runtime {
    fn list(&self, group: &str, version: &str, plural: &str) -> Vec<Value> {
        self.store.with_store(|s| {
            s.resource_type(group, version, plural)
                .cloned()
                .and_then(|rt| s.list(&rt, &ListOptions::default()).ok())
                .map(|(items, _)| items)
                .unwrap_or_default()
        })
    }

    fn tick(&mut self) {
        self.reconcile_deployments();
        let pods = self.list("", "v1", "pods");
        self.run_pods(&pods);
        let pods = self.list("", "v1", "pods");
        self.reconcile_deployment_status(&pods);
        self.reconcile_endpoints(&pods);
    }

    fn reconcile_deployments(&mut self) {
        let deployments = self.list("apps", "v1", "deployments");
        let pods = self.list("", "v1", "pods");
        for deployment in &deployments {
            if deployment.pointer("/metadata/deletionTimestamp").is_some() {
                continue;
            }
            let uid = text(deployment, "/metadata/uid");
            let owned = replicas_of(&pods, uid);
            let suffix = &mut self.suffix;
            let mut next = || {
                *suffix += 1;
                let id = suffix.wrapping_mul(0x9e37_79b9_7f4a_7c15);
                format!("{:05x}", id >> 44)
            };
            let plan = deployments::plan(deployment, &owned, &mut next);
            let namespace = text(deployment, "/metadata/namespace").to_string();
            self.store.with_store(|s| {
                let Some(rt) = s.resource_type("", "v1", "pods").cloned() else {
                    return;
                };
                for name in &plan.delete {
                    let _ = s.delete(&rt, Some(&namespace), name, &DeleteOptions::default());
                }
                for pod in plan.create {
                    if let Err(e) = s.create(&rt, Some(&namespace), pod, false) {
                        tracing::warn!(error = %e, "cannot create pod");
                    }
                }
            });
        }
    }

    fn reconcile_deployment_status(&mut self, pods: &[Value]) {
        for deployment in self.list("apps", "v1", "deployments") {
            let uid = text(&deployment, "/metadata/uid");
            let owned = replicas_of(pods, uid);
            let status = deployments::status(&deployment, &owned);
            self.write_status("apps", "deployments", &deployment, status);
        }
    }

    fn write_status(&self, group: &str, plural: &str, object: &Value, status: Value) {
        if object.get("status") == Some(&status) {
            return;
        }
        let (namespace, name) = key(object);
        let mut next = object.clone();
        next["status"] = status;
        self.store.with_store(|s| {
            // Every kind the runtime writes (pods, deployments) is served at v1.
            if let Some(rt) = s.resource_type(group, "v1", plural).cloned()
                && let Err(e) = s.replace(
                    &rt,
                    Some(&namespace),
                    &name,
                    next,
                    Subresource::Status,
                    false,
                )
                && e.code != 404
                && e.code != 409
            {
                tracing::warn!(error = %e, "cannot write status of {plural} {namespace}/{name}");
            }
        });
    }

    fn allocate_ip(&mut self) -> String {
        let n = self.next_ip;
        self.next_ip += 1;
        format!("127.0.{}.{}", 1 + n / 250 % 250, 2 + n % 250)
    }

    fn run_pods(&mut self, pods: &[Value]) {
        // Processes of pods that are gone (or were replaced under the same name) stop.
        let live: BTreeMap<(String, String), &Value> = pods
            .iter()
            .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none())
            .map(|p| (key(p), p))
            .collect();
        let gone: Vec<(String, String)> = self
            .pods
            .iter()
            .filter(|(k, r)| {
                live.get(*k)
                    .is_none_or(|p| text(p, "/metadata/uid") != r.uid)
            })
            .map(|(k, _)| k.clone())
            .collect();
        let mut stopping: Vec<Running> = gone.iter().filter_map(|k| self.pods.remove(k)).collect();
        // All are told at once, then each is waited for (up to its grace).
        for running in &stopping {
            if let Some(child) = &running.child {
                let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            }
        }
        for running in &mut stopping {
            self.terminate(running);
        }
        // The kubelet's part of a graceful deletion: a pod marked for deletion whose
        // containers are stopped is removed.
        for pod in pods
            .iter()
            .filter(|p| p.pointer("/metadata/deletionTimestamp").is_some())
        {
            let (namespace, name) = key(pod);
            let options = DeleteOptions {
                grace_period_seconds: Some(0),
                precondition_uid: Some(text(pod, "/metadata/uid").to_string()),
                ..Default::default()
            };
            self.store.with_store(|s| {
                if let Some(rt) = s.resource_type("", "v1", "pods").cloned() {
                    let _ = s.delete(&rt, Some(&namespace), &name, &options);
                }
            });
        }
        let config_maps = self.list("", "v1", "configmaps");
        let secrets = self.list("", "v1", "secrets");
        for (k, pod) in &live {
            if !self.pods.contains_key(k) {
                self.bind(pod);
                let ip = self.allocate_ip();
                let running = self.launch(pod, &ip, &config_maps, &secrets);
                self.pods.insert(k.clone(), running);
            }
            self.supervise(k, pod, &config_maps, &secrets);
        }
    }

    /// Binds a pod to this machine (`spec.nodeName`), as the scheduler does: a bound pod's
    /// deletion waits for its containers to stop.
    fn bind(&self, pod: &Value) {
        if !text(pod, "/spec/nodeName").is_empty() {
            return;
        }
        let (namespace, name) = key(pod);
        let mut next = pod.clone();
        next["spec"]["nodeName"] = json!(if self.hostname.is_empty() {
            "localhost"
        } else {
            self.hostname.as_str()
        });
        self.store.with_store(|s| {
            if let Some(rt) = s.resource_type("", "v1", "pods").cloned()
                && let Err(e) =
                    s.replace(&rt, Some(&namespace), &name, next, Subresource::Main, false)
                && e.code != 404
                && e.code != 409
            {
                tracing::warn!(error = %e, "cannot bind pod {namespace}/{name}");
            }
        });
    }

    fn pod_dir(&self, pod: &Value) -> PathBuf {
        let (ns, name) = key(pod);
        self.config.work_dir.join("pods").join(ns).join(name)
    }

    fn launch(&self, pod: &Value, ip: &str, config_maps: &[Value], secrets: &[Value]) -> Running {
        let mut running = Running {
            uid: text(pod, "/metadata/uid").to_string(),
            child: None,
            ip: ip.to_string(),
            restarts: 0,
            restart_at: None,
            started: Instant::now(),
            last_exit: None,
            error: None,
            finished: None,
        };
        match self.spawn(pod, ip, config_maps, secrets) {
            Ok(child) => running.child = Some(child),
            Err(e) => running.error = Some(e),
        }
        running
    }

    fn spawn(
        &self,
        pod: &Value,
        ip: &str,
        config_maps: &[Value],
        secrets: &[Value],
    ) -> Result<Child, String> {
        let container = pod
            .pointer("/spec/containers/0")
            .ok_or("the pod has no containers")?;
        let dir = self.pod_dir(pod);
        let env = process::environment(container, pod, ip);
        let (program, args) = process::command(
            container,
            &env,
            &self.config.flink_home,
            &self.config.usrlib,
        )?;
        let mounts = process::materialize_volumes(pod, container, &dir, config_maps, secrets)?;
        let conf_dir = dir.join("conf");
        let log_dir = dir.join("log");
        for d in [&conf_dir, &log_dir] {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        let source = mounts.get("/opt/flink/conf").cloned();
        let mut config =
            process::flink_config(source.as_deref(), &self.config.flink_home, &env, ip)?;
        process::map_config_paths(
            &mut config,
            &mounts,
            &self.config.flink_home,
            &self.config.usrlib,
        );
        // A container has its own filesystem: Flink fetches the job's jars into
        // `/opt/flink/artifacts` and never overwrites one that is there, so a machine-wide
        // directory would run a stale jar from an earlier pod.
        config.insert(
            "user.artifacts.base-dir".into(),
            dir.join("artifacts").display().to_string(),
        );
        std::fs::write(conf_dir.join("config.yaml"), process::config_yaml(&config)?)
            .map_err(|e| e.to_string())?;
        for file in [
            "log4j-console.properties",
            "logback-console.xml",
            "log4j.properties",
        ] {
            let from = source
                .as_ref()
                .map(|s| s.join(file))
                .filter(|p| p.is_file())
                .unwrap_or_else(|| self.config.flink_home.join("conf").join(file));
            let _ = std::fs::copy(from, conf_dir.join(file));
        }
        let container_name = text(container, "/name");
        let log_path = dir.join(format!("{container_name}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| e.to_string())?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let (ns, name) = key(pod);
        self.store.set_log(&ns, &name, log_path);
        let hosts = self.config.work_dir.join("hosts");
        let mut command = Command::new(program);
        if let Some(access) = &self.config.in_cluster {
            // The service account's projected volume.
            let env = access
                .project(&dir.join("serviceaccount"), &ns)
                .map_err(|e| e.to_string())?;
            command.envs(env);
        } else if let Some(url) = &self.config.api_url {
            command.envs(api_access_env(url));
        }
        command
            .args(&args)
            .envs(&env)
            .env("FLINK_CONF_DIR", &conf_dir)
            .env("FLINK_LOG_DIR", &log_dir)
            .env("HOSTNAME", &name)
            .env("JVM_ARGS", format!("-Djdk.net.hosts.file={} -Dsun.net.inetaddr.ttl=1 -Dsun.net.inetaddr.negative.ttl=1", hosts.display()))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .process_group(0);
        // SAFETY: only an async-signal-safe prctl between fork and exec: the JVM (the scripts
        // exec into it) dies with the runtime's process, so no JVM is ever orphaned.
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
            });
        }
        command.spawn().map_err(|e| {
            format!(
                "cannot start {program_name}: {e}",
                program_name = args.first().cloned().unwrap_or_default()
            )
        })
    }

    /// Restarts with backoff (10 s doubling to 5 min, as the kubelet) and reports status.
    fn supervise(
        &mut self,
        k: &(String, String),
        pod: &Value,
        config_maps: &[Value],
        secrets: &[Value],
    ) {
        let now = Instant::now();
        let mut respawn = false;
        if let Some(running) = self.pods.get_mut(k) {
            if let Some(child) = running.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                running.child = None;
                let code = status.code().unwrap_or(137);
                let policy = text(pod, "/spec/restartPolicy");
                if policy == "Never" || (policy == "OnFailure" && code == 0) {
                    running.finished = Some(code);
                    running.last_exit = Some(code);
                    let status = pod_status(pod, running);
                    self.write_status("", "pods", pod, status);
                    return;
                }
                running.last_exit = Some(code);
                running.restarts += 1;
                let backoff =
                    Duration::from_secs(10u64.saturating_mul(1 << (running.restarts - 1).min(5)))
                        .min(Duration::from_secs(300));
                running.restart_at = Some(now + backoff);
            }
            if running.finished.is_some() {
                return;
            }
            if running.child.is_none()
                && running.error.is_none()
                && running.restart_at.is_some_and(|t| now >= t)
            {
                respawn = true;
            }
        }
        if respawn {
            let ip = self.pods.get(k).map(|r| r.ip.clone()).unwrap_or_default();
            let result = self.spawn(pod, &ip, config_maps, secrets);
            if let Some(running) = self.pods.get_mut(k) {
                running.restart_at = None;
                running.started = now;
                match result {
                    Ok(child) => running.child = Some(child),
                    Err(e) => running.error = Some(e),
                }
            }
        }
        let Some(running) = self.pods.get(k) else {
            return;
        };
        let status = pod_status(pod, running);
        self.write_status("", "pods", pod, status);
    }

    fn terminate(&self, running: &mut Running) {
        if let Some(mut child) = running.child.take() {
            let group = Pid::from_raw(child.id() as i32);
            let _ = killpg(group, Signal::SIGTERM);
            let deadline = Instant::now() + self.config.max_grace;
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(100));
            }
            if matches!(child.try_wait(), Ok(None)) {
                let _ = killpg(group, Signal::SIGKILL);
            }
            let _ = child.wait();
        }
    }

    fn stop_all(&mut self) {
        let mut pods = std::mem::take(&mut self.pods);
        for running in pods.values_mut() {
            if let Some(child) = &running.child {
                let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            }
        }
        for running in pods.values_mut() {
            self.terminate(running);
        }
    }

    fn reconcile_endpoints(&mut self, pods: &[Value]) {
        let services = self.list("", "v1", "services");
        let existing = self.list("discovery.k8s.io", "v1", "endpointslices");
        for service in &services {
            let wanted = endpoints::endpoint_slice(service, pods);
            let (namespace, name) = key(service);
            let current = existing
                .iter()
                .find(|e| key(e) == (namespace.clone(), name.clone()));
            let same = current.is_some_and(|c| {
                c.get("endpoints") == wanted.get("endpoints")
                    && c.get("ports") == wanted.get("ports")
            });
            if same {
                continue;
            }
            self.store.with_store(|s| {
                let Some(rt) = s.resource_type("discovery.k8s.io", "v1", "endpointslices").cloned() else { return };
                let result = match current {
                    Some(c) => {
                        let mut next = wanted.clone();
                        next["metadata"]["resourceVersion"] = c.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null);
                        s.replace(&rt, Some(&namespace), &name, next, Subresource::Main, false)
                    }
                    None => s.create(&rt, Some(&namespace), wanted, false),
                };
                if let Err(e) = result {
                    tracing::warn!(error = %e, "cannot write the EndpointSlice of {namespace}/{name}");
                }
            });
        }
        let hosts = endpoints::hosts_file(&services, pods, &self.hostname);
        if hosts != self.hosts {
            let path = self.config.work_dir.join("hosts");
            let staging = self.config.work_dir.join("hosts.new");
            if std::fs::write(&staging, &hosts)
                .and_then(|_| std::fs::rename(&staging, &path))
                .is_ok()
            {
                self.hosts = hosts;
            }
        }
    }
}

/// Readiness: the readiness probe's port (TCP or HTTP), else the first declared container
/// port, answering on the pod's address; a container without either is ready once running.
fn probe_port(container: &Value) -> Option<u16> {
    let port = |v: Option<&Value>| {
        v.and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
    };
    port(container.pointer("/readinessProbe/tcpSocket/port"))
        .or_else(|| port(container.pointer("/readinessProbe/httpGet/port")))
        .or_else(|| port(container.pointer("/ports/0/containerPort")))
}

fn pod_status(pod: &Value, running: &Running) -> Value {
    let container = pod
        .pointer("/spec/containers/0")
        .cloned()
        .unwrap_or_default();
    let name = text(&container, "/name").to_string();
    let alive = running.child.is_some();
    let ready = alive
        && match probe_port(&container) {
            Some(port) => std::net::TcpStream::connect_timeout(
                &std::net::SocketAddr::new(
                    running.ip.parse().unwrap_or([127, 0, 0, 1].into()),
                    port,
                ),
                Duration::from_millis(200),
            )
            .is_ok(),
            None => running.started.elapsed() > Duration::from_secs(2),
        };
    let previous_ready = pod
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .cloned();
    let ready_text = if ready { "True" } else { "False" };
    let transition = match &previous_ready {
        Some(c) if c["status"] == ready_text => c["lastTransitionTime"].clone(),
        _ => json!(
            jiff::Timestamp::now()
                .round(jiff::Unit::Second)
                .map(|t| t.to_string())
                .unwrap_or_default()
        ),
    };
    if let Some(code) = running.finished {
        let (phase, reason) = match code {
            0 => ("Succeeded", "Completed"),
            _ => ("Failed", "Error"),
        };
        return json!({
            "phase": phase,
            "podIP": running.ip,
            "podIPs": [{"ip": running.ip}],
            "hostIP": "127.0.0.1",
            "startTime": pod.pointer("/metadata/creationTimestamp"),
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "False", "lastTransitionTime": transition},
                {"type": "ContainersReady", "status": "False", "lastTransitionTime": transition},
            ],
            "containerStatuses": [{
                "name": name, "ready": false, "started": false, "restartCount": running.restarts,
                "image": container.get("image"),
                "state": {"terminated": {"exitCode": code, "reason": reason}},
            }],
        });
    }
    let state = match (&running.error, alive) {
        (Some(e), _) => json!({"waiting": {"reason": "CreateContainerConfigError", "message": e}}),
        (None, true) => {
            json!({"running": {"startedAt": pod.pointer("/metadata/creationTimestamp")}})
        }
        (None, false) if running.restarts > 0 => {
            json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!("back-off restarting failed container {name}")}})
        }
        (None, false) => json!({"waiting": {"reason": "ContainerCreating"}}),
    };
    let mut container_status = json!({
        "name": name, "ready": ready, "started": alive, "restartCount": running.restarts,
        "image": container.get("image"), "state": state,
    });
    if let Some(code) = running.last_exit {
        container_status["lastState"] =
            json!({"terminated": {"exitCode": code, "reason": "Error"}});
    }
    json!({
        "phase": if running.error.is_some() { "Pending" } else if alive || running.restarts > 0 { "Running" } else { "Pending" },
        "podIP": running.ip,
        "podIPs": [{"ip": running.ip}],
        "hostIP": "127.0.0.1",
        "startTime": pod.pointer("/metadata/creationTimestamp"),
        "conditions": [
            // Scheduled as soon as the runtime has it: Flink counts a TaskManager pod as
            // scheduled by this condition.
            {"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": ready_text, "lastTransitionTime": transition},
            {"type": "ContainersReady", "status": ready_text, "lastTransitionTime": transition},
        ],
        "containerStatuses": [container_status],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deployments_replicas_are_the_pods_it_made_not_every_pod_it_owns() {
        let owned = |name: &str, hash: Option<&str>| {
            let mut pod = json!({"metadata": {"name": name, "ownerReferences": [{"uid": "jm-uid", "kind": "Deployment", "controller": true}], "labels": {}}});
            if let Some(hash) = hash {
                pod["metadata"]["labels"]["pod-template-hash"] = json!(hash);
            }
            pod
        };
        let pods = vec![
            owned("jm-abc-1", Some("abc")),
            // A TaskManager pod a native JobManager created, owned by its Deployment.
            owned("jm-taskmanager-1-1", None),
            json!({"metadata": {"name": "other", "labels": {"pod-template-hash": "abc"}}}),
        ];
        let names: Vec<String> = replicas_of(&pods, "jm-uid")
            .iter()
            .map(|p| text(p, "/metadata/name").to_string())
            .collect();
        assert_eq!(names, ["jm-abc-1"]);
    }
}
