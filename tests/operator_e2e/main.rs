//! The operator end to end: `kubectl` against the local cluster (API stand-in + process runtime
//! running real Flink JVMs) with the operator in-process, wired exactly as `flink-operator local`
//! wires it. One cluster for the suite, shared by stories (see `stories`): each creates its
//! own resources and runs its steps in order like a user's afternoon (deploy an application,
//! look at it, leave it alone, break it, change it, suspend and resume it, delete it), and any
//! step can be run alone by name, its story's earlier steps running first as its setup.

use flink_operator::commands::hosts_resolver;
use flink_operator::commands::local::{install_crds, local_settings};
use flink_operator::controller::{self, Context};
use flink_operator::reconcile::Intervals;
use flink_operator_tests::fault_proxy::{Fault, FaultProxy};
use flink_operator_tests::flink_cluster::{FlinkInstall, repo_dir};
use flink_operator_tests::support::{jvm_pids_under, jvms_under, wait_for};
use flink_rest::{ClientConfig, FlinkClient, JobId};
use libtest_mimic::{Arguments, Failed, Trial};
use sandbox::runtime::{self, RuntimeConfig};
use sandbox::{ApiServer, ServerHandle};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const INTERVALS: Intervals = Intervals {
    reconcile: Duration::from_secs(4),
    progress: Duration::from_secs(1),
};
const STARTUP: Duration = Duration::from_secs(150);
/// The keeper's REST Service, as the operator names it, and where the fault proxy listens for
/// it (outside the addresses the process runtime gives pods).
const KEEPER_REST: &str = "keeper-rest.default";
const PROXY_IP: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 1, 0, 1));

/// Resolves the keeper's REST Service to the fault proxy, every other name as local mode does.
struct Detour {
    local: flink_rest::Resolver,
}

impl reqwest::dns::Resolve for Detour {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        if name.as_str() == KEEPER_REST {
            let proxy = std::net::SocketAddr::new(PROXY_IP, 0);
            return Box::pin(
                async move { Ok(Box::new(std::iter::once(proxy)) as reqwest::dns::Addrs) },
            );
        }
        self.local.resolve(name)
    }
}

struct RunningOperator {
    ctx: Arc<Context>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

struct Suite {
    runtime: tokio::runtime::Runtime,
    server: ServerHandle,
    /// The running operator, which a step may stop and start again (like a restarted pod).
    operator: Mutex<Option<RunningOperator>>,
    usrlib: PathBuf,
    kubeconfig: PathBuf,
    work: PathBuf,
    /// The keeper's REST API goes through it, so a step can make Flink's answers fail.
    proxy: FaultProxy,
    /// What earlier steps learned.
    job_id: Mutex<Option<String>>,
    /// The stateful job's count when it was last read.
    count: Mutex<f64>,
}

type Step = fn(&Suite) -> Result<(), String>;

/// A story: steps that run in order on resources the story creates itself (and deletes by its
/// end). A step selected alone by name (`-- <story>::<step>` or any part of it) runs the
/// story's earlier steps first, and every step of the stories it `needs`, as its setup.
struct Story {
    name: &'static str,
    needs: &'static [&'static str],
    steps: Vec<(&'static str, Step)>,
}

/// `story!("name", needs ["other"], [step_fn, ...])`: each step's name is its function's.
macro_rules! story {
    ($name:literal $(, needs [$($need:literal),*])?, [$($step:ident),* $(,)?]) => {
        Story {
            name: $name,
            needs: &[$($($need),*)?],
            steps: vec![$((stringify!($step), $step as Step)),*],
        }
    };
}

fn stories() -> Vec<Story> {
    vec![
        story!(
            "application",
            [
                application_runs_the_example_job_at_the_requested_parallelism,
                kubectl_get_shows_the_printer_columns,
                an_idle_reconcile_writes_nothing,
                an_invalid_edit_is_reported_and_the_job_keeps_running,
                a_parallelism_change_redeploys_the_job,
                an_overrides_edit_rescales_the_adaptive_job_in_place,
                suspend_stops_the_jvms_and_resume_brings_the_job_back,
                deleting_the_application_leaves_no_object_and_no_process,
            ]
        ),
        story!(
            "session",
            [
                a_session_cluster_runs_two_session_jobs,
                a_session_job_savepoint_upgrade_restores_its_state,
                a_bad_session_job_upgrade_is_rolled_back_and_the_count_continues,
                an_unhealthy_session_job_is_restarted_from_its_last_checkpoint,
                a_session_job_naming_the_operators_own_files_uploads_nothing,
                a_session_cluster_waits_for_its_jobs_before_it_is_deleted,
            ]
        ),
        story!(
            "crash_loop",
            [a_missing_jar_ends_in_a_clear_status_without_a_hot_loop]
        ),
        story!(
            "lost_savepoint",
            [a_savepoint_that_does_not_exist_fails_the_job_with_flinks_reason]
        ),
        story!(
            "native",
            [
                a_native_application_gets_its_task_manager_pods_from_its_job_manager,
                a_native_parallelism_change_adds_pods_and_continues_the_count,
                deleting_a_native_application_leaves_no_pod_config_map_or_jvm,
            ]
        ),
        story!(
            "ha",
            [
                a_killed_job_manager_recovers_the_job_from_its_ha_metadata,
                a_last_state_upgrade_with_ha_keeps_the_job_and_its_count,
                a_last_state_suspension_with_ha_resumes_the_job_and_its_count,
                deleting_an_ha_application_removes_its_ha_metadata,
            ]
        ),
        story!(
            "standalone_ha",
            [a_standalone_job_manager_killed_recovers_the_job_from_its_ha_metadata]
        ),
        story!(
            "stateful",
            [
                a_savepoint_upgrade_continues_the_count,
                a_last_state_upgrade_continues_the_count,
                suspend_and_resume_with_a_savepoint_continue_the_count,
                a_bad_upgrade_is_rolled_back_and_the_count_continues,
                an_operator_restarted_at_each_step_of_a_savepoint_upgrade_keeps_the_state,
                faults_of_flink_mid_savepoint_neither_lose_nor_duplicate_the_state,
                manual_and_periodic_savepoints_and_checkpoints_are_taken_while_the_job_runs,
                state_snapshot_resources_take_savepoints_and_checkpoints_and_dispose_on_delete,
                an_unhealthy_deployment_is_restarted_from_its_last_checkpoint,
                a_stateless_upgrade_starts_the_count_from_zero,
            ]
        ),
        story!(
            "autoscaler",
            [the_autoscaler_rescales_the_busy_vertex_in_place_up_then_down]
        ),
        story!(
            "session_autoscaler",
            [a_busy_session_job_is_rescaled_in_place_on_its_session_cluster]
        ),
        story!(
            "native_autoscaler",
            [a_native_in_place_rescale_gets_its_task_managers_from_the_job_manager]
        ),
        story!(
            "metrics",
            needs ["application", "stateful", "autoscaler"],
            [the_metrics_show_what_the_afternoon_did]
        ),
        // After the metrics story: it binds (then unbinds) the tenant's upgrade plugin, and
        // the metrics story counts the calls of the scaling plugin the autoscaler story bound.
        story!(
            "blue_green",
            [
                a_blue_green_deployment_activates_blue_with_its_ingress,
                the_tenants_window_holds_the_switch_then_green_starts_from_blues_savepoint,
                a_change_green_takes_in_place_starts_no_blue,
                a_blue_that_never_becomes_ready_is_aborted_and_green_keeps_running,
                deleting_the_blue_green_deployment_removes_everything,
            ]
        ),
    ]
}

/// Runs the stories' steps on demand, each at most once: a step's setup (its story's earlier
/// steps, the stories it needs) runs first when it has not yet; a step after a failed one of
/// its story fails at once, naming it.
struct Runner {
    stories: Vec<Story>,
    /// Outcome of every step that ran, by (story, step) index.
    ran: Mutex<std::collections::BTreeMap<(usize, usize), Result<(), String>>>,
    /// Our resources before each story's first step: a failed step takes everything its
    /// story created with it, so the next stories start clean.
    before_story:
        Mutex<std::collections::BTreeMap<usize, std::collections::BTreeSet<(String, String)>>>,
}

impl Runner {
    fn run(&self, suite: &Suite, story: usize, step: usize) -> Result<(), String> {
        for need in self.stories[story].needs {
            let needed = self
                .stories
                .iter()
                .position(|s| s.name == *need)
                .unwrap_or_else(|| panic!("story {need:?} is not defined"));
            for earlier in 0..self.stories[needed].steps.len() {
                // What a needed story leaves is this step's to judge; its failures are its own.
                let _ = self.once(suite, needed, earlier);
            }
        }
        for earlier in 0..step {
            if let Err(why) = self.once(suite, story, earlier) {
                let (name, _) = self.stories[story].steps[earlier];
                return Err(format!("the story's earlier step {name} failed: {why}"));
            }
        }
        self.once(suite, story, step)
    }

    fn once(&self, suite: &Suite, story: usize, step: usize) -> Result<(), String> {
        if let Some(done) = self
            .ran
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(story, step))
        {
            return done.clone();
        }
        let (name, run) = self.stories[story].steps[step];
        let before = self
            .before_story
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(story)
            .or_insert_with(|| suite.flink_objects())
            .clone();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(suite)));
        if !matches!(outcome, Ok(Ok(()))) {
            // One failed step must not fail the next stories: what its story created goes.
            suite.remove_objects_since(&before);
        }
        let result = match outcome {
            Ok(result) => result,
            Err(panic) => Err(panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| format!("{name} panicked"))),
        };
        self.ran
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((story, step), result.clone());
        result
    }
}

fn main() {
    let mut args = Arguments::from_args();
    args.test_threads = Some(1);
    let stories = stories();
    let names: Vec<(usize, usize, String)> = stories
        .iter()
        .enumerate()
        .flat_map(|(i, story)| {
            story
                .steps
                .iter()
                .enumerate()
                .map(move |(j, (step, _))| (i, j, format!("{}::{step}", story.name)))
        })
        .collect();
    if args.list {
        libtest_mimic::run(
            &args,
            names
                .into_iter()
                .map(|(_, _, n)| Trial::test(n, || Ok(())))
                .collect(),
        )
        .exit();
    }
    let install = FlinkInstall::ensure().unwrap_or_else(|e| {
        eprintln!("cannot install Flink: {e}");
        std::process::exit(2)
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let work = std::env::temp_dir().join(format!("operator-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).expect("work dir");
    let usrlib = install.example_jar.parent().expect("jar dir").to_path_buf();
    let runtime_dir = work.join("runtime");
    let (server, cluster_runtime, proxy) = runtime.block_on(async {
        let server = ApiServer::default()
            .with_in_cluster()
            .start("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("stand-in");
        install_crds(&server).expect("CRDs install");
        let cluster_runtime = runtime::start(
            server.store_access(),
            RuntimeConfig {
                flink_home: install.flink_home.clone(),
                usrlib: usrlib.clone(),
                work_dir: runtime_dir.clone(),
                max_grace: Duration::from_secs(10),
                api_url: Some(server.url()),
                in_cluster: server.in_cluster().cloned(),
            },
        )
        .expect("runtime starts");
        let hosts = runtime_dir.join("hosts");
        let proxy = FaultProxy::start(
            std::net::SocketAddr::new(PROXY_IP, flink_operator::render::REST_PORT),
            move || {
                let text = std::fs::read_to_string(&hosts).ok()?;
                let ip = hosts_resolver::lookup(&text, KEEPER_REST)?;
                Some(std::net::SocketAddr::new(
                    ip,
                    flink_operator::render::REST_PORT,
                ))
            },
        )
        .await
        .expect("fault proxy");
        (server, cluster_runtime, proxy)
    });
    let kubeconfig = work.join("kubeconfig");
    std::fs::write(&kubeconfig, server.kubeconfig()).expect("kubeconfig");
    let suite = Arc::new(Suite {
        runtime,
        server,
        operator: Mutex::new(None),
        usrlib,
        kubeconfig,
        work: runtime_dir,
        proxy,
        job_id: Mutex::new(None),
        count: Mutex::new(0.0),
    });
    suite.start_operator();
    let runner = Arc::new(Runner {
        stories,
        ran: Mutex::new(Default::default()),
        before_story: Mutex::new(Default::default()),
    });
    let trials = names
        .into_iter()
        .map(|(story, step, name)| {
            let (suite, runner) = (suite.clone(), runner.clone());
            Trial::test(name, move || {
                runner.run(&suite, story, step).map_err(Failed::from)
            })
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    if conclusion.has_failed() {
        for (kind, name) in [
            ("flinkdeployments", "counter"),
            ("flinkdeployments", "shared"),
            ("flinkdeployments", "keeper"),
            ("flinkdeployments", "elastic"),
        ] {
            eprintln!(
                "--- {kind}/{name}: {:#}",
                suite
                    .get(flink_api::GROUP, "v1beta1", kind, name)
                    .unwrap_or_default()
            );
        }
    }
    suite.stop_operator();
    let suite = Arc::into_inner(suite).expect("steps are done");
    cluster_runtime.stop();
    suite.runtime.block_on(suite.server.shutdown());
    let _ = std::fs::remove_dir_all(&work);
    conclusion.exit();
}

impl Suite {
    /// Starts an operator, wired as `flink-operator local` wires it, with fresh state.
    fn start_operator(&self) {
        // The kube client spawns its request buffer: it must be built inside the runtime.
        let _inside = self.runtime.enter();
        let plugins = self.work.join("plugins");
        let _ = std::fs::create_dir_all(&plugins);
        let (client, mut settings) = local_settings(
            &self.server,
            &self.work,
            &self.usrlib,
            INTERVALS,
            Some(plugins),
        )
        .expect("operator settings");
        let local = settings
            .flink_client
            .resolver
            .take()
            .expect("local mode resolves Service names");
        settings.flink_client.resolver = Some(flink_rest::Resolver(Arc::new(Detour { local })));
        let ctx = Context::new(client, settings);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = self.runtime.spawn(controller::run(ctx.clone(), async move {
            let _ = stopped.await;
        }));
        *self.operator.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(RunningOperator { ctx, stop, task });
    }

    /// Stops the operator and waits until its controllers have ended.
    fn stop_operator(&self) {
        let running = self
            .operator
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(running) = running {
            let _ = running.stop.send(());
            self.runtime.block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(10), running.task).await;
            });
        }
    }

    fn ctx(&self) -> Arc<Context> {
        self.operator
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|o| o.ctx.clone())
            .expect("an operator runs")
    }

    fn kubectl(&self, args: &[&str]) -> Result<String, String> {
        let output = std::process::Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .map_err(|e| format!("cannot run kubectl: {e}"))?;
        let text = String::from_utf8_lossy(&output.stdout).to_string();
        if output.status.success() {
            Ok(text)
        } else {
            Err(format!(
                "kubectl {args:?} failed: {}{text}",
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    fn get(&self, group: &str, version: &str, plural: &str, name: &str) -> Option<Value> {
        self.server.with_store(|s| {
            let rt = s.resource_type(group, version, plural).cloned()?;
            s.get(&rt, Some("default"), name).ok()
        })
    }

    fn deployment(&self, name: &str) -> Option<Value> {
        self.get(flink_api::GROUP, "v1beta1", "flinkdeployments", name)
    }

    /// Objects of `plural` in the default namespace labelled `app=<app>`.
    fn labelled(&self, group: &str, plural: &str, app: &str) -> Vec<String> {
        self.server.with_store(|s| {
            let Some(rt) = s.resource_type(group, "v1", plural).cloned() else {
                return Vec::new();
            };
            s.list(&rt, &Default::default())
                .map(|(items, _)| items)
                .unwrap_or_default()
                .into_iter()
                .filter(|o| o.pointer("/metadata/labels/app").and_then(Value::as_str) == Some(app))
                .filter_map(|o| {
                    o.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .map(String::from)
                })
                .collect()
        })
    }

    /// A REST client for the cluster's JobManager pod.
    fn flink(&self, cluster: &str) -> Result<FlinkClient, String> {
        let ip = self.server.with_store(|s| {
            let rt = s.resource_type("", "v1", "pods").cloned()?;
            let (pods, _) = s.list(&rt, &Default::default()).ok()?;
            // The newest JobManager that is not going away: right after a redeploy the old
            // one may still be listed.
            pods.into_iter()
                .filter(|p| {
                    p.pointer("/metadata/labels/app").and_then(Value::as_str) == Some(cluster)
                })
                .filter(|p| {
                    p.pointer("/metadata/labels/component")
                        .and_then(Value::as_str)
                        == Some("jobmanager")
                })
                .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none())
                .filter_map(|p| {
                    let ip = p.pointer("/status/podIP").and_then(Value::as_str)?;
                    Some((text(&p, "/metadata/creationTimestamp"), ip.to_string()))
                })
                .max()
                .map(|(_, ip)| ip)
        });
        let ip = ip.ok_or_else(|| format!("no JobManager pod of {cluster} with an IP"))?;
        FlinkClient::new(&format!("http://{ip}:8081"), ClientConfig::default())
            .map_err(|e| e.to_string())
    }

    /// Waits for the FlinkDeployment's lifecycle and job state; returns its status.
    fn wait_deployment(
        &self,
        name: &str,
        lifecycle: &str,
        job: Option<&str>,
        timeout: Duration,
    ) -> Value {
        self.runtime.block_on(wait_for(
            &format!("{name} {lifecycle} with job {job:?}"),
            timeout,
            async || {
                let status = self.deployment(name)?.get("status")?.clone();
                let ok = status.pointer("/lifecycleState").and_then(Value::as_str)
                    == Some(lifecycle)
                    && job.is_none_or(|j| {
                        status.pointer("/jobStatus/state").and_then(Value::as_str) == Some(j)
                    });
                ok.then_some(status)
            },
        ))
    }

    /// Writes `manifest` into the work directory as `file` and `kubectl apply`s it.
    fn apply_manifest(&self, file: &str, manifest: &str) -> Result<(), String> {
        let path = self.work.join(file);
        std::fs::write(&path, manifest).map_err(|e| e.to_string())?;
        self.kubectl(&["apply", "-f", &path.display().to_string()])
            .map(|_| ())
    }

    /// Our resources in the store, as `(plural, name)` (the suite works in `default`).
    fn flink_objects(&self) -> std::collections::BTreeSet<(String, String)> {
        self.server.with_store(|s| {
            [
                "flinkstatesnapshots",
                "flinksessionjobs",
                "flinkbluegreendeployments",
                "flinkdeployments",
            ]
            .into_iter()
            .filter_map(|plural| {
                let rt = s
                    .resource_type(flink_api::GROUP, "v1beta1", plural)
                    .cloned()?;
                let (items, _) = s.list(&rt, &Default::default()).ok()?;
                Some(
                    items
                        .into_iter()
                        .map(move |o| (plural.to_string(), text(&o, "/metadata/name"))),
                )
            })
            .flatten()
            .collect()
        })
    }

    /// Deletes the resources created since `before` (snapshots and session jobs first) and waits
    /// for their pods and the JVMs of the local cluster to go, so that the next step starts clean.
    fn remove_objects_since(&self, before: &std::collections::BTreeSet<(String, String)>) {
        let created: Vec<_> = self.flink_objects().difference(before).cloned().collect();
        for (plural, name) in &created {
            if let Err(e) = self.kubectl(&["delete", plural, name, "--timeout=90s"]) {
                eprintln!("cleaning up after the failed step: {e}");
            }
        }
        let gone = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < gone
            && created
                .iter()
                .any(|(_, name)| !self.labelled("", "pods", name).is_empty())
        {
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Waits until no pod labelled `app=<app>` and no JVM of the local cluster is left.
    fn wait_until_stopped(&self, app: &str) {
        self.runtime.block_on(wait_for(
            &format!("no pod of {app} and no JVM"),
            Duration::from_secs(30),
            async || {
                (self.labelled("", "pods", app).is_empty() && jvms_under(&self.work) == 0)
                    .then_some(())
            },
        ));
    }

    /// `kubectl patch KIND NAME --type merge -p PATCH`, as a user edits a resource.
    fn patch(&self, kind: &str, name: &str, patch: &str) -> Result<String, String> {
        self.kubectl(&["patch", kind, name, "--type", "merge", "-p", patch])
    }

    /// Reasons of the events published about the object `name`.
    fn event_reasons(&self, name: &str) -> Vec<String> {
        self.server.with_store(|s| {
            let Some(rt) = s.resource_type("events.k8s.io", "v1", "events").cloned() else {
                return Vec::new();
            };
            s.list(&rt, &Default::default())
                .map(|(items, _)| items)
                .unwrap_or_default()
                .into_iter()
                .filter(|e| e.pointer("/regarding/name").and_then(Value::as_str) == Some(name))
                .map(|e| text(&e, "/reason"))
                .collect()
        })
    }

    fn remember_job(&self, id: &str) {
        *self.job_id.lock().unwrap_or_else(|e| e.into_inner()) = Some(id.to_string());
    }

    fn remembered_job(&self) -> Result<String, String> {
        self.job_id
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| "no job: an earlier step failed".into())
    }
}

fn fixture(name: &str) -> String {
    repo_dir()
        .join("tests/fixtures/e2e")
        .join(name)
        .display()
        .to_string()
}

fn text(value: &Value, pointer: &str) -> String {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Parallelism of every vertex of the job, read from Flink. Flink answers job details from a
/// cache that can predate the job's graph (seen once as a RUNNING job without vertices), so an
/// empty list is asked again for a few seconds; what comes back is the callers' to judge.
fn vertex_parallelism(suite: &Suite, cluster: &str, job: &str) -> Result<Vec<i32>, String> {
    let client = suite.flink(cluster)?;
    let id = JobId::parse(job).map_err(|e| e.to_string())?;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let details = suite
            .runtime
            .block_on(client.job_details(&id))
            .map_err(|e| e.to_string())?;
        if !details.vertices.is_empty() || std::time::Instant::now() >= deadline {
            return Ok(details.vertices.iter().map(|v| v.parallelism).collect());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn application_runs_the_example_job_at_the_requested_parallelism(
    suite: &Suite,
) -> Result<(), String> {
    suite.kubectl(&["apply", "-f", &fixture("application.yaml")])?;
    let status = suite.wait_deployment("counter", "STABLE", Some("RUNNING"), STARTUP);
    let job = text(&status, "/jobStatus/jobId");
    assert_eq!(text(&status, "/jobManagerDeploymentStatus"), "READY");
    assert_eq!(text(&status, "/clusterInfo/flink-version"), "2.3.0");
    let parallelism = vertex_parallelism(suite, "counter", &job)?;
    assert!(
        !parallelism.is_empty() && parallelism.iter().all(|p| *p == 2),
        "vertex parallelism {parallelism:?}"
    );
    let reasons = suite.event_reasons("counter");
    assert!(
        reasons.iter().any(|r| r == "Submit") && reasons.iter().any(|r| r == "JobStatusChanged"),
        "events {reasons:?}"
    );
    suite.remember_job(&job);
    Ok(())
}

fn kubectl_get_shows_the_printer_columns(suite: &Suite) -> Result<(), String> {
    let table = suite.kubectl(&["get", "flinkdep", "counter"])?;
    let mut lines = table.lines();
    let header = lines.next().unwrap_or_default();
    let row = lines.next().unwrap_or_default();
    for column in ["NAME", "JOB STATUS", "LIFECYCLE STATE"] {
        assert!(header.contains(column), "{column} missing from {header:?}");
    }
    assert!(
        row.starts_with("counter") && row.contains("RUNNING") && row.contains("STABLE"),
        "{row:?}"
    );
    Ok(())
}

fn an_idle_reconcile_writes_nothing(suite: &Suite) -> Result<(), String> {
    use std::sync::atomic::Ordering;
    let writes = suite.server.write_count();
    let reconciles = suite.ctx().reconciles.load(Ordering::Relaxed);
    // Three reconcile intervals: at least two reconciles of the running deployment.
    suite
        .runtime
        .block_on(async { tokio::time::sleep(INTERVALS.reconcile * 3).await });
    let done = suite.ctx().reconciles.load(Ordering::Relaxed) - reconciles;
    assert!(done >= 2, "only {done} reconciles in three intervals");
    assert_eq!(
        suite.server.write_count() - writes,
        0,
        "writes during {done} idle reconciles"
    );
    Ok(())
}

fn an_invalid_edit_is_reported_and_the_job_keeps_running(suite: &Suite) -> Result<(), String> {
    let job = suite.remembered_job()?;
    // No admission webhook in front of the local API: it stores the edit and the operator reports it.
    suite.patch(
        "flinkdep",
        "counter",
        r#"{"spec":{"job":{"parallelism":0}}}"#,
    )?;
    let status = suite.runtime.block_on(wait_for(
        "the error in status",
        Duration::from_secs(30),
        async || {
            let status = suite.deployment("counter")?.get("status")?.clone();
            text(&status, "/error")
                .contains("spec.job.parallelism")
                .then_some(status)
        },
    ));
    assert_eq!(
        text(&status, "/jobStatus/jobId"),
        job,
        "the running job was kept"
    );
    assert_eq!(text(&status, "/jobStatus/state"), "RUNNING");
    let reasons = suite.event_reasons("counter");
    assert!(
        reasons.iter().any(|r| r == "ValidationError"),
        "no ValidationError event among {reasons:?}"
    );
    suite.patch(
        "flinkdep",
        "counter",
        r#"{"spec":{"job":{"parallelism":2}}}"#,
    )?;
    suite.runtime.block_on(wait_for(
        "the error cleared",
        Duration::from_secs(30),
        async || {
            let status = suite.deployment("counter")?.get("status")?.clone();
            status.get("error").is_none().then_some(())
        },
    ));
    let status = suite.wait_deployment(
        "counter",
        "STABLE",
        Some("RUNNING"),
        Duration::from_secs(10),
    );
    assert_eq!(
        text(&status, "/jobStatus/jobId"),
        job,
        "reverting did not redeploy"
    );
    Ok(())
}

fn a_parallelism_change_redeploys_the_job(suite: &Suite) -> Result<(), String> {
    let old = suite.remembered_job()?;
    suite.patch(
        "flinkdep",
        "counter",
        r#"{"spec":{"job":{"parallelism":3}}}"#,
    )?;
    let status = suite
        .runtime
        .block_on(wait_for("a new job running", STARTUP, async || {
            let status = suite.deployment("counter")?.get("status")?.clone();
            let new_job = text(&status, "/jobStatus/jobId") != old;
            (new_job
                && text(&status, "/jobStatus/state") == "RUNNING"
                && text(&status, "/lifecycleState") == "STABLE")
                .then_some(status)
        }));
    let job = text(&status, "/jobStatus/jobId");
    let parallelism = vertex_parallelism(suite, "counter", &job)?;
    assert!(
        parallelism.iter().all(|p| *p == 3),
        "vertex parallelism {parallelism:?}"
    );
    let tm = suite
        .get("apps", "v1", "deployments", "counter-taskmanager")
        .ok_or("no TaskManager Deployment")?;
    assert_eq!(
        tm.pointer("/spec/replicas"),
        Some(&json!(2)),
        "3 subtasks on 2 slots each need 2 TaskManagers"
    );
    assert_eq!(status.pointer("/taskManager/replicas"), Some(&json!(2)));
    suite.remember_job(&job);
    Ok(())
}

/// On the adaptive scheduler, a user's `pipeline.jobvertex-parallelism-overrides` edit reaches
/// the running job in place: the same job id, its vertex at the new parallelism, no redeploy.
fn an_overrides_edit_rescales_the_adaptive_job_in_place(suite: &Suite) -> Result<(), String> {
    let old = suite.remembered_job()?;
    // The scheduler is an upgrade field: the job is redeployed on the adaptive scheduler, which
    // may rescale it at once (no cooldown, no waiting for a checkpoint to trigger it).
    suite.patch(
        "flinkdep",
        "counter",
        r#"{"spec":{"flinkConfiguration":{"jobmanager.scheduler":"adaptive","jobmanager.adaptive-scheduler.executing.cooldown-after-rescaling":"0 s","jobmanager.adaptive-scheduler.rescale-trigger.max-delay":"1 s"}}}"#,
    )?;
    let status = suite.runtime.block_on(wait_for(
        "the job on the adaptive scheduler",
        STARTUP,
        async || {
            let status = suite.deployment("counter")?.get("status")?.clone();
            (text(&status, "/jobStatus/jobId") != old
                && text(&status, "/jobStatus/state") == "RUNNING"
                && text(&status, "/lifecycleState") == "STABLE")
                .then_some(status)
        },
    ));
    let job = text(&status, "/jobStatus/jobId");
    let client = suite.flink("counter")?;
    let id = JobId::parse(&job).map_err(|e| e.to_string())?;
    let details = suite
        .runtime
        .block_on(client.job_details(&id))
        .map_err(|e| e.to_string())?;
    let vertex = details
        .vertices
        .last()
        .ok_or("a job without vertices")?
        .id
        .clone();
    suite.patch(
        "flinkdep",
        "counter",
        &json!({"spec": {"flinkConfiguration": {
            "pipeline.jobvertex-parallelism-overrides": format!("{vertex}:1")
        }}})
        .to_string(),
    )?;
    suite.runtime.block_on(wait_for(
        "the vertex rescaled in place",
        STARTUP,
        async || {
            let details = client.job_details(&id).await.ok()?;
            let rescaled = details
                .vertices
                .iter()
                .find(|v| v.id == vertex)
                .is_some_and(|v| v.parallelism == 1);
            (rescaled && details.state == flink_rest::JobState::Running).then_some(())
        },
    ));
    let status = suite.runtime.block_on(wait_for(
        "the edit recorded",
        Duration::from_secs(30),
        async || {
            let status = suite.deployment("counter")?.get("status")?.clone();
            text(&status, "/reconciliationStatus/lastReconciledSpec")
                .contains(&format!("{vertex}:1"))
                .then_some(status)
        },
    ));
    assert_eq!(
        text(&status, "/jobStatus/jobId"),
        job,
        "the same job, rescaled in place"
    );
    let reasons = suite.event_reasons("counter");
    assert!(reasons.iter().any(|r| r == "Scaling"), "events {reasons:?}");
    suite.remember_job(&job);
    Ok(())
}

fn suspend_stops_the_jvms_and_resume_brings_the_job_back(suite: &Suite) -> Result<(), String> {
    suite.patch(
        "flinkdep",
        "counter",
        r#"{"spec":{"job":{"state":"suspended"}}}"#,
    )?;
    let status = suite.wait_deployment(
        "counter",
        "SUSPENDED",
        Some("SUSPENDED"),
        Duration::from_secs(60),
    );
    assert_eq!(text(&status, "/jobManagerDeploymentStatus"), "MISSING");
    suite.wait_until_stopped("counter");
    suite.patch(
        "flinkdep",
        "counter",
        r#"{"spec":{"job":{"state":"running"}}}"#,
    )?;
    let status = suite.wait_deployment("counter", "STABLE", Some("RUNNING"), STARTUP);
    assert_ne!(
        text(&status, "/jobStatus/jobId"),
        suite.remembered_job()?,
        "resumed as a new deployment"
    );
    Ok(())
}

fn deleting_the_application_leaves_no_object_and_no_process(suite: &Suite) -> Result<(), String> {
    suite.kubectl(&["delete", "flinkdep", "counter", "--timeout=90s"])?;
    assert!(
        suite.deployment("counter").is_none(),
        "the FlinkDeployment is gone once delete returns"
    );
    suite.runtime.block_on(wait_for(
        "every object and JVM gone",
        Duration::from_secs(30),
        async || {
            let left: Vec<String> = [
                ("apps", "deployments"),
                ("", "services"),
                ("", "configmaps"),
                ("", "pods"),
            ]
            .iter()
            .flat_map(|(g, p)| suite.labelled(g, p, "counter"))
            .collect();
            (left.is_empty() && jvms_under(&suite.work) == 0).then_some(())
        },
    ));
    Ok(())
}

/// Makes the policies ConfigMap bind the example plugin `package` to `tenant`, which owns the
/// `default` namespace (every resource in it is the tenant's, whatever its labels), for
/// `point`, with `config` (YAML flow text); waits until the operator has it active. The
/// ConfigMap holds only this binding afterwards; [`unbind_tenants`] empties it.
fn bind_tenant_plugin(
    suite: &Suite,
    tenant: &str,
    point: flink_policy::ExtensionPoint,
    package: &str,
    config: &str,
) -> Result<(), String> {
    let wasm = flink_policy::dev::plugin_bytes(package);
    std::fs::write(suite.work.join(format!("plugins/{package}.wasm")), &wasm)
        .map_err(|e| e.to_string())?;
    let section = match point {
        flink_policy::ExtensionPoint::Scaling => "scaling",
        flink_policy::ExtensionPoint::Upgrade => "upgrade",
        flink_policy::ExtensionPoint::PodTemplate => "podTemplate",
    };
    let policies = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: flink-operator-policies}}\ndata:\n  policies.yaml: |\n    tenants:\n    - name: {tenant}\n      namespaces: [default]\n      {section}:\n        plugin: {package}\n        sha256: \"{}\"\n        config: {config}\n",
        flink_policy::Digest::of(&wasm).0
    );
    suite.apply_manifest("policies.yaml", &policies)?;
    let ctx = suite.ctx();
    let labels =
        std::collections::BTreeMap::from([("example.com/tenant".to_string(), tenant.to_string())]);
    suite.runtime.block_on(wait_for(
        &format!("the {} plugin of {tenant} active", point.world()),
        Duration::from_secs(60),
        async || ctx.policies.active().binding_for("default", &labels, point),
    ));
    Ok(())
}

/// Makes the policies ConfigMap bind nothing, and waits until the operator has no binding.
fn unbind_tenants(suite: &Suite) -> Result<(), String> {
    suite.apply_manifest(
        "policies.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: flink-operator-policies}\ndata:\n  policies.yaml: |\n    tenants: []\n",
    )?;
    let ctx = suite.ctx();
    suite.runtime.block_on(wait_for(
        "no tenant binding active",
        Duration::from_secs(60),
        async || ctx.policies.active().bindings.is_empty().then_some(()),
    ));
    Ok(())
}

fn session_job_status(suite: &Suite, name: &str) -> Option<Value> {
    suite
        .get(flink_api::GROUP, "v1beta1", "flinksessionjobs", name)?
        .get("status")
        .cloned()
}

fn a_session_cluster_runs_two_session_jobs(suite: &Suite) -> Result<(), String> {
    let manifest = std::fs::read_to_string(fixture("session.yaml"))
        .map_err(|e| e.to_string())?
        .replace("DIR", &suite.work.display().to_string());
    suite.apply_manifest("session.yaml", &manifest)?;
    suite.wait_deployment("shared", "STABLE", None, STARTUP);
    let ids = suite
        .runtime
        .block_on(wait_for("both session jobs running", STARTUP, async || {
            let ids: Vec<String> = ["first", "second"]
                .iter()
                .filter_map(|n| session_job_status(suite, n))
                .filter(|s| text(s, "/jobStatus/state") == "RUNNING")
                .map(|s| text(&s, "/jobStatus/jobId"))
                .collect();
            (ids.len() == 2).then_some(ids)
        }));
    let client = suite.flink("shared")?;
    let overview = suite
        .runtime
        .block_on(client.jobs_overview())
        .map_err(|e| e.to_string())?;
    let mut running: Vec<String> = overview
        .jobs
        .iter()
        .filter(|j| j.state == flink_rest::JobState::Running)
        .map(|j| j.jid.clone())
        .collect();
    running.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(
        running, expected,
        "one cluster runs exactly the two recorded jobs"
    );
    Ok(())
}

fn a_bad_session_job_upgrade_is_rolled_back_and_the_count_continues(
    suite: &Suite,
) -> Result<(), String> {
    let status = session_job_status(suite, "second").ok_or("no second job")?;
    let old = text(&status, "/jobStatus/jobId");
    let client = suite.flink("shared")?;
    let before = suite.runtime.block_on(count_of(&client, &old))?;
    // Rollback on, a short readiness timeout, and arguments the job's main() rejects: the
    // session cluster refuses the job, so it never runs.
    suite.patch(
        "flinksessionjob",
        "second",
        r#"{"spec":{"flinkConfiguration":{"kubernetes.operator.deployment.rollback.enabled":"true","kubernetes.operator.deployment.readiness.timeout":"20s"},"job":{"args":["--rate","not-a-number"]}}}"#,
    )?;
    // Until the rollback, the session job's status carries Flink's reason for refusing it.
    let refused = suite.runtime.block_on(wait_for(
        "Flink's refusal in the session job's status",
        STARTUP,
        async || {
            let error = text(&session_job_status(suite, "second")?, "/error");
            error.contains("not-a-number").then_some(error)
        },
    ));
    // Flink's most specific cause: the job's own NumberFormatException.
    assert!(refused.contains("Flink refused"), "{refused}");
    let status = suite.runtime.block_on(wait_for(
        "the session job rolled back and running",
        STARTUP,
        async || {
            let status = session_job_status(suite, "second")?;
            (text(&status, "/reconciliationStatus/state") == "ROLLED_BACK"
                && text(&status, "/jobStatus/state") == "RUNNING")
                .then_some(status)
        },
    ));
    let job = text(&status, "/jobStatus/jobId");
    assert_ne!(job, old);
    let savepoint = text(&status, "/jobStatus/upgradeSavepointPath");
    let restored = restored_in(suite, "shared", &job)?.unwrap_or_default();
    assert_eq!(
        restored.trim_end_matches('/'),
        savepoint.trim_end_matches('/'),
        "the rolled-back job restores the savepoint the failed upgrade took"
    );
    let after = suite.runtime.block_on(count_of(&client, &job))?;
    assert!(after >= before, "count went from {before} to {after}");
    let details = suite
        .runtime
        .block_on(client.job_details(&JobId::parse(&job).map_err(|e| e.to_string())?))
        .map_err(|e| e.to_string())?;
    assert_eq!(details.state, flink_rest::JobState::Running);
    let reasons = suite.event_reasons("second");
    assert!(reasons.iter().any(|r| r == "Rollback"), "{reasons:?}");
    Ok(())
}

/// The health check of a session job on a real Flink: the job fails again and again (the
/// example job throws while a file exists); more than 2 restarts within the window make the
/// operator submit it again from its latest checkpoint (last-state); once the cause is gone it
/// runs on, its count continued.
fn an_unhealthy_session_job_is_restarted_from_its_last_checkpoint(
    suite: &Suite,
) -> Result<(), String> {
    let fail = suite.work.join("fail-first");
    let patch = serde_json::json!({"spec": {
        "flinkConfiguration": {
            "kubernetes.operator.cluster.health-check.enabled": "true",
            "kubernetes.operator.cluster.health-check.restarts.threshold": "2",
            "kubernetes.operator.cluster.health-check.restarts.window": "5 min",
        },
        "job": {
            "upgradeMode": "last-state",
            "args": ["--rate", "50", "--fail-while-file", fail.display().to_string()],
        },
    }});
    suite.patch("flinksessionjob", "first", &patch.to_string())?;
    let client = suite.flink("shared")?;
    let healthy = suite.runtime.block_on(wait_for(
        "the session job upgraded and checkpointing",
        STARTUP,
        async || {
            let status = session_job_status(suite, "first")?;
            let job = text(&status, "/jobStatus/jobId");
            let id = JobId::parse(&job).ok()?;
            let stats = client.checkpoint_statistics(&id).await.ok()?;
            (text(&status, "/reconciliationStatus/state") == "DEPLOYED"
                && text(&status, "/jobStatus/state") == "RUNNING"
                && stats.counts.completed > 0
                && status.pointer("/health/restartsBaseline").is_some())
            .then_some(job)
        },
    ));
    let before = suite.runtime.block_on(count_of(&client, &healthy))?;
    std::fs::write(&fail, b"fail").map_err(|e| e.to_string())?;
    let restarted = suite.runtime.block_on(wait_for(
        "the operator restarting the failing job",
        STARTUP,
        async || {
            let status = session_job_status(suite, "first")?;
            let job = text(&status, "/jobStatus/jobId");
            (job != healthy).then_some(job)
        },
    ));
    std::fs::remove_file(&fail).map_err(|e| e.to_string())?;
    let reasons = suite.event_reasons("first");
    assert!(
        reasons.iter().any(|r| r == "RestartUnhealthyJob"),
        "{reasons:?}"
    );
    let id = JobId::parse(&restarted).map_err(|e| e.to_string())?;
    suite
        .runtime
        .block_on(wait_for("the restarted job running", STARTUP, async || {
            let details = client.job_details(&id).await.ok()?;
            (details.state == flink_rest::JobState::Running).then_some(())
        }));
    let restored = restored_in(suite, "shared", &restarted)?.unwrap_or_default();
    assert!(
        restored.contains("session-checkpoints"),
        "restored from a checkpoint, not empty: {restored:?}"
    );
    let after = suite.runtime.block_on(count_of(&client, &restarted))?;
    assert!(after >= before, "count went from {before} to {after}");
    Ok(())
}

/// Hostile (docs/security.md): a tenant's session job names a file of the operator through a
/// symbolic link in the jar directory, and one through `..`; neither is read, both say why,
/// and the session cluster holds no uploaded jar.
fn a_session_job_naming_the_operators_own_files_uploads_nothing(
    suite: &Suite,
) -> Result<(), String> {
    let link = suite.usrlib.join("escape.jar");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&suite.kubeconfig, &link).map_err(|e| e.to_string())?;
    let job = |name: &str, uri: &str| {
        format!(
            "apiVersion: flink.apache.org/v1beta1\nkind: FlinkSessionJob\nmetadata: {{name: {name}}}\nspec:\n  deploymentName: shared\n  job: {{jarURI: \"{uri}\", parallelism: 1, upgradeMode: stateless}}\n"
        )
    };
    let manifest = [
        job("thief-link", "local:///opt/flink/usrlib/escape.jar"),
        job(
            "thief-dots",
            &format!("local:///opt/flink/usrlib/..{}", suite.kubeconfig.display()),
        ),
    ]
    .join("---\n");
    suite.apply_manifest("thieves.yaml", &manifest)?;
    for name in ["thief-link", "thief-dots"] {
        let error = suite.runtime.block_on(wait_for(
            "the refusal in the status",
            Duration::from_secs(60),
            async || {
                let error = text(&session_job_status(suite, name)?, "/error");
                (!error.is_empty()).then_some(error)
            },
        ));
        assert!(
            error.contains("outside the directories the operator serves jars from"),
            "{name}: {error}"
        );
    }
    let jars = suite
        .runtime
        .block_on(suite.flink("shared")?.jars())
        .map_err(|e| e.to_string())?;
    assert_eq!(jars.files, vec![], "nothing was uploaded");
    suite.kubectl(&[
        "delete",
        "flinksessionjob",
        "thief-link",
        "thief-dots",
        "--timeout=60s",
    ])?;
    std::fs::remove_file(&link).map_err(|e| e.to_string())
}

fn a_session_cluster_waits_for_its_jobs_before_it_is_deleted(suite: &Suite) -> Result<(), String> {
    suite.kubectl(&["delete", "flinkdep", "shared", "--wait=false"])?;
    suite.runtime.block_on(wait_for(
        "the cluster waiting for its jobs",
        Duration::from_secs(30),
        async || {
            let status = suite.deployment("shared")?.get("status")?.clone();
            text(&status, "/error")
                .contains("first, second")
                .then_some(())
        },
    ));
    assert!(
        !suite.labelled("", "pods", "shared").is_empty(),
        "the cluster still runs its jobs"
    );
    suite.kubectl(&[
        "delete",
        "flinksessionjob",
        "first",
        "second",
        "--timeout=60s",
    ])?;
    suite.runtime.block_on(wait_for(
        "the session cluster deleted",
        Duration::from_secs(60),
        async || suite.deployment("shared").is_none().then_some(()),
    ));
    suite.wait_until_stopped("shared");
    Ok(())
}

fn a_missing_jar_ends_in_a_clear_status_without_a_hot_loop(suite: &Suite) -> Result<(), String> {
    use std::sync::atomic::Ordering;
    let manifest = std::fs::read_to_string(fixture("application.yaml"))
        .map_err(|e| e.to_string())?
        .replace("name: counter", "name: broken")
        .replace("stateful-counter.jar", "missing.jar");
    suite.apply_manifest("broken.yaml", &manifest)?;
    let status = suite.runtime.block_on(wait_for(
        "the crash loop reported",
        Duration::from_secs(120),
        async || {
            let status = suite.deployment("broken")?.get("status")?.clone();
            (text(&status, "/jobManagerDeploymentStatus") == "ERROR").then_some(status)
        },
    ));
    assert!(
        text(&status, "/error").contains("CrashLoopBackOff"),
        "{status:#}"
    );
    // The event follows the status write.
    suite.runtime.block_on(wait_for(
        "an Error event on broken",
        Duration::from_secs(20),
        async || {
            suite
                .event_reasons("broken")
                .iter()
                .any(|r| r == "Error")
                .then_some(())
        },
    ));
    let reconciles = suite.ctx().reconciles.load(Ordering::Relaxed);
    suite
        .runtime
        .block_on(async { tokio::time::sleep(INTERVALS.reconcile * 2).await });
    let done = suite.ctx().reconciles.load(Ordering::Relaxed) - reconciles;
    // Pod status changes (restarts) trigger some; a hot loop would be hundreds.
    assert!(done <= 12, "{done} reconciles in two intervals");
    suite.kubectl(&["delete", "flinkdep", "broken", "--timeout=60s"])?;
    suite.wait_until_stopped("broken");
    Ok(())
}

// ---- blue/green: two children, one active, switched with a savepoint ----

fn blue_green(suite: &Suite) -> Option<Value> {
    suite.get(
        flink_api::GROUP,
        "v1beta1",
        "flinkbluegreendeployments",
        "flip",
    )
}

/// Waits until the parent is in `state` with its job `job`; returns its status.
fn wait_blue_green(suite: &Suite, state: &str, job: &str, timeout: Duration) -> Value {
    suite.runtime.block_on(wait_for(
        &format!("flip {state} with job {job}"),
        timeout,
        async || {
            let status = blue_green(suite)?.get("status")?.clone();
            (text(&status, "/blueGreenState") == state && text(&status, "/jobStatus/state") == job)
                .then_some(status)
        },
    ))
}

/// The REST Service the parent's Ingress leads to, as `kubectl` reads it.
fn ingress_backend(suite: &Suite) -> Result<String, String> {
    suite.kubectl(&[
        "get",
        "ingress",
        "flip",
        "-o",
        "jsonpath={.spec.rules[0].http.paths[0].backend.service.name}",
    ])
}

fn child_job(suite: &Suite, child: &str) -> Result<String, String> {
    let status = suite
        .deployment(child)
        .and_then(|d| d.get("status").cloned())
        .ok_or_else(|| format!("no {child}"))?;
    Ok(text(&status, "/jobStatus/jobId"))
}

fn a_blue_green_deployment_activates_blue_with_its_ingress(suite: &Suite) -> Result<(), String> {
    let dir = suite.work.join("flip");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let manifest = std::fs::read_to_string(fixture("blue-green.yaml"))
        .map_err(|e| e.to_string())?
        .replace("DIR", &dir.display().to_string());
    suite.apply_manifest("blue-green.yaml", &manifest)?;
    suite.wait_deployment("flip-blue", "STABLE", Some("RUNNING"), STARTUP);
    wait_blue_green(suite, "ACTIVE_BLUE", "RUNNING", Duration::from_secs(60));
    let blue = suite.deployment("flip-blue").ok_or("no flip-blue")?;
    assert_eq!(
        text(&blue, "/metadata/labels/flink~1blue-green-deployment-type"),
        "BLUE",
        "{blue:#}"
    );
    let owner = blue
        .pointer("/metadata/ownerReferences/0")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        (text(&owner, "/kind"), text(&owner, "/name")),
        ("FlinkBlueGreenDeployment".into(), "flip".into())
    );
    assert!(suite.deployment("flip-green").is_none());
    let listed = suite.kubectl(&["get", "ingress"])?;
    assert!(
        listed.contains("flip")
            && listed.contains("flip.default.example.com")
            && listed.contains("nginx"),
        "{listed}"
    );
    assert_eq!(ingress_backend(suite)?, "flip-blue-rest");
    let shown = suite.kubectl(&["get", "flinkbgdep", "flip"])?;
    assert!(shown.contains("RUNNING"), "{shown}");
    Ok(())
}

/// The next minute of the UTC day as `HH:MM`, with its weekday (`mon`..`sun`) and the time it
/// begins (ms since the epoch).
fn next_minute() -> (String, String, i64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let start = now / 60_000 * 60_000 + 60_000;
    // The epoch's day was a Thursday.
    let day = ["thu", "fri", "sat", "sun", "mon", "tue", "wed"][(start / 86_400_000 % 7) as usize];
    (hh_mm(start), day.into(), start)
}

fn hh_mm(ms: i64) -> String {
    let minute = ms / 60_000 % 1440;
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

/// The tenant's maintenance window opens at the next minute: a template change waits for it
/// with blue untouched, then blue is savepointed, green starts from that savepoint, blue keeps
/// running for the tenant's dual-running window and goes; the count continues in green and the
/// Ingress leads there.
fn the_tenants_window_holds_the_switch_then_green_starts_from_blues_savepoint(
    suite: &Suite,
) -> Result<(), String> {
    let blue_job = child_job(suite, "flip-blue")?;
    let client = suite.flink("flip-blue")?;
    suite.runtime.block_on(wait_for(
        "a count of 400 in blue",
        Duration::from_secs(60),
        async || {
            count_of(&client, &blue_job)
                .await
                .ok()
                .filter(|c| *c >= 400.0)
        },
    ));
    let (from, day, opens) = next_minute();
    // A window that ends the next day (past midnight) is read as such by the plugin.
    let to = hh_mm(opens + 10 * 60_000);
    bind_tenant_plugin(
        suite,
        "flip-team",
        flink_policy::ExtensionPoint::Upgrade,
        "maintenance-window-upgrade",
        &format!(
            "{{windows: [{{days: [{day}], from: \"{from}\", to: \"{to}\"}}]}}\n        dualRunningSeconds: 5"
        ),
    )?;
    // From here blue counts one record a second: a green that lost the state cannot catch up.
    suite.patch(
        "flinkbgdep",
        "flip",
        r#"{"spec":{"template":{"spec":{"job":{"args":["--rate","1"]}}}}}"#,
    )?;
    let held = suite.runtime.block_on(wait_for(
        "the switch held by the tenant's window",
        Duration::from_secs(30),
        async || {
            let status = blue_green(suite)?.get("status")?.clone();
            text(&status, "/error")
                .contains("holds the switch")
                .then_some(status)
        },
    ));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    if now < opens - 2_000 {
        assert_eq!(text(&held, "/blueGreenState"), "ACTIVE_BLUE", "{held:#}");
        assert!(
            suite.deployment("flip-green").is_none(),
            "nothing started before the window"
        );
        assert!(
            suite
                .event_reasons("flip")
                .iter()
                .any(|r| r == "UpgradeWaiting")
        );
    }
    let before = suite
        .runtime
        .block_on(count_of(&suite.flink("flip-blue")?, &blue_job))?;
    suite.wait_deployment(
        "flip-green",
        "STABLE",
        Some("RUNNING"),
        STARTUP + Duration::from_secs(60),
    );
    let green_ready = std::time::Instant::now();
    suite.runtime.block_on(wait_for(
        "flip-blue's deletion asked for",
        Duration::from_secs(60),
        async || {
            suite
                .deployment("flip-blue")
                .is_none_or(|b| b.pointer("/metadata/deletionTimestamp").is_some())
                .then_some(())
        },
    ));
    // The tenant's 5 s window, not the resource's 2 s deletion delay (the operator saw green
    // ready at most a poll before this test did).
    let overlap = green_ready.elapsed();
    assert!(
        overlap >= Duration::from_millis(3_500),
        "blue ran only {overlap:?} beside a ready green"
    );
    let status = wait_blue_green(suite, "ACTIVE_GREEN", "RUNNING", Duration::from_secs(60));
    let switched_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    assert!(switched_at >= opens, "switched before the window opened");
    let savepoint = text(&status, "/jobStatus/upgradeSavepointPath");
    assert!(savepoint.contains("/savepoints/"), "{status:#}");
    let green = suite.deployment("flip-green").ok_or("no flip-green")?;
    assert_eq!(text(&green, "/spec/job/initialSavepointPath"), savepoint);
    let green_job = child_job(suite, "flip-green")?;
    let restored = restored_in(suite, "flip-green", &green_job)?.unwrap_or_default();
    assert_eq!(
        restored.trim_end_matches('/'),
        savepoint.trim_end_matches('/')
    );
    let after = count_continues(suite, "flip-green", &green_job, before)?;
    assert!(after >= before);
    suite.runtime.block_on(wait_for(
        "flip-blue and its pods gone",
        Duration::from_secs(60),
        async || {
            (suite.deployment("flip-blue").is_none()
                && suite.labelled("", "pods", "flip-blue").is_empty())
            .then_some(())
        },
    ));
    assert_eq!(ingress_backend(suite)?, "flip-green-rest");
    let reasons = suite.event_reasons("flip");
    assert!(
        reasons.iter().any(|r| r == "BlueGreenTransition"),
        "{reasons:?}"
    );
    unbind_tenants(suite)?;
    remember_count(suite, after);
    suite.remember_job(&green_job);
    Ok(())
}

/// A change green takes in place (an operator setting of the child) is applied to green: no
/// blue, the same job.
fn a_change_green_takes_in_place_starts_no_blue(suite: &Suite) -> Result<(), String> {
    let job = suite.remembered_job()?;
    suite.patch(
        "flinkbgdep",
        "flip",
        r#"{"spec":{"template":{"spec":{"flinkConfiguration":{"kubernetes.operator.savepoint.history.max.count":"3"}}}}}"#,
    )?;
    suite.runtime.block_on(wait_for(
        "the setting on flip-green",
        Duration::from_secs(60),
        async || {
            let green = suite.deployment("flip-green")?;
            (green
                .pointer("/spec/flinkConfiguration/kubernetes.operator.savepoint.history.max.count")
                .is_some())
            .then_some(())
        },
    ));
    wait_blue_green(suite, "ACTIVE_GREEN", "RUNNING", Duration::from_secs(60));
    assert!(suite.deployment("flip-blue").is_none(), "no transition");
    assert_eq!(child_job(suite, "flip-green")?, job, "the same job runs");
    Ok(())
}

/// A template whose job cannot start: blue comes up from green's savepoint, never gets ready,
/// and after the grace period is suspended; green keeps running and counting.
fn a_blue_that_never_becomes_ready_is_aborted_and_green_keeps_running(
    suite: &Suite,
) -> Result<(), String> {
    let job = suite.remembered_job()?;
    let before = suite
        .runtime
        .block_on(count_of(&suite.flink("flip-green")?, &job))?;
    suite.patch(
        "flinkbgdep",
        "flip",
        r#"{"spec":{"configuration":{"kubernetes.operator.bluegreen.abort.grace-period":"40 s"},"template":{"spec":{"job":{"entryClass":"org.flinkoperator.examples.NoSuchJob"}}}}}"#,
    )?;
    suite.runtime.block_on(wait_for(
        "flip-blue being brought up",
        Duration::from_secs(90),
        async || suite.deployment("flip-blue").map(|_| ()),
    ));
    let status = wait_blue_green(suite, "ACTIVE_GREEN", "FAILING", Duration::from_secs(150));
    assert!(
        text(&status, "/error").contains("Aborting deployment 'flip-blue'"),
        "{status:#}"
    );
    let blue = suite
        .deployment("flip-blue")
        .ok_or("the aborted child is kept")?;
    assert_eq!(text(&blue, "/spec/job/state"), "suspended");
    // Suspended for real: its cluster goes (stateless: a job that never ran has no savepoint
    // to take), so it cannot run beside green.
    suite.runtime.block_on(wait_for(
        "no pod of the aborted flip-blue",
        Duration::from_secs(90),
        async || {
            suite
                .labelled("", "pods", "flip-blue")
                .is_empty()
                .then_some(())
        },
    ));
    assert_eq!(
        child_job(suite, "flip-green")?,
        job,
        "green still runs its job"
    );
    count_continues(suite, "flip-green", &job, before)?;
    assert_eq!(ingress_backend(suite)?, "flip-green-rest");
    assert!(
        suite
            .event_reasons("flip")
            .iter()
            .any(|r| r == "BlueGreenAborted")
    );
    Ok(())
}

fn deleting_the_blue_green_deployment_removes_everything(suite: &Suite) -> Result<(), String> {
    suite.kubectl(&["delete", "flinkbgdep", "flip", "--timeout=120s"])?;
    suite.runtime.block_on(wait_for(
        "both children, their pods and the Ingress gone",
        Duration::from_secs(120),
        async || {
            (suite.deployment("flip-blue").is_none()
                && suite.deployment("flip-green").is_none()
                && suite
                    .get("networking.k8s.io", "v1", "ingresses", "flip")
                    .is_none()
                && suite.labelled("", "pods", "flip-blue").is_empty()
                && suite.labelled("", "pods", "flip-green").is_empty())
            .then_some(())
        },
    ));
    suite.wait_until_stopped("flip-green");
    Ok(())
}

// ---- stateful: the example job's count proves where its state came from ----

/// The job's running count (the counter's `count.runningCount` gauge summed over subtasks).
/// A job just submitted is INITIALIZING with no vertices yet (seen on Flink 2.3 right after a
/// stateless upgrade): its graph is waited for, up to 60 s.
async fn count_of(client: &FlinkClient, job: &str) -> Result<f64, String> {
    let id = JobId::parse(job).map_err(|e| e.to_string())?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let vertex = loop {
        let details = client.job_details(&id).await.map_err(|e| e.to_string())?;
        if let Some(vertex) = details
            .vertices
            .iter()
            .find(|v| v.name.starts_with("count"))
        {
            break vertex.clone();
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!(
                "no count vertex in job {job} ({:?}) within 60 s: {:?}",
                details.state,
                details.vertices.iter().map(|v| &v.name).collect::<Vec<_>>()
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let metrics = client
        .vertex_metrics_when_present(
            &id,
            &vertex.id,
            &["count.runningCount"],
            &[flink_rest::Aggregation::Sum],
            Duration::from_secs(60),
        )
        .await
        .map_err(|e| e.to_string())?;
    metrics["count.runningCount"]
        .sum
        .ok_or_else(|| "no sum".to_string())
}

fn running_count(suite: &Suite, job: &str) -> Result<f64, String> {
    let client = suite.flink("keeper")?;
    suite.runtime.block_on(count_of(&client, job))
}

/// The path Flink says the keeper's job was restored from.
fn restored_from(suite: &Suite, job: &str) -> Result<Option<String>, String> {
    restored_in(suite, "keeper", job)
}

/// The path Flink says a job of `cluster` was restored from.
///
/// Asked again for up to 30 s: right after a job starts, Flink 2.3 can list it as RUNNING and
/// still answer its checkpoint statistics with "Could not find Flink job" for a moment.
fn restored_in(suite: &Suite, cluster: &str, job: &str) -> Result<Option<String>, String> {
    let id = JobId::parse(job).map_err(|e| e.to_string())?;
    retrying(Duration::from_secs(30), || {
        let client = suite.flink(cluster)?;
        let stats = suite
            .runtime
            .block_on(client.checkpoint_statistics(&id))
            .map_err(|e| e.to_string())?;
        Ok(stats.latest.restored.and_then(|r| r.external_path))
    })
}

/// `f` until it succeeds, at most for `timeout`; its last error otherwise.
fn retrying<T>(timeout: Duration, mut f: impl FnMut() -> Result<T, String>) -> Result<T, String> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match f() {
            Ok(value) => return Ok(value),
            Err(e) if std::time::Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

fn keeper_patch(suite: &Suite, patch: &str) -> Result<(), String> {
    suite.patch("flinkdep", "keeper", patch).map(|_| ())
}

/// Patches, then waits for a new job id to run and be stable; returns the new status.
fn upgrade_keeper(suite: &Suite, patch: &str) -> Result<Value, String> {
    let old = suite.remembered_job()?;
    keeper_patch(suite, patch)?;
    Ok(wait_for_new_job(suite, &old))
}

/// Waits until a job other than `old` runs and the keeper is stable; remembers that job.
fn wait_for_new_job(suite: &Suite, old: &str) -> Value {
    let deadline = std::time::Instant::now() + STARTUP;
    loop {
        let status = suite
            .deployment("keeper")
            .and_then(|d| d.get("status").cloned())
            .unwrap_or_default();
        let ok = text(&status, "/jobStatus/jobId") != old
            && text(&status, "/jobStatus/state") == "RUNNING"
            && text(&status, "/lifecycleState") == "STABLE";
        if ok {
            suite.remember_job(&text(&status, "/jobStatus/jobId"));
            return status;
        }
        // On a timeout, say where the upgrade stood.
        assert!(
            std::time::Instant::now() < deadline,
            "the upgraded job is not running within {STARTUP:?}; status: {status:#}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// 1 if the keeper runs at 2, else 2: a change that needs an upgrade whatever ran before.
fn other_parallelism(suite: &Suite) -> i64 {
    let current = suite
        .deployment("keeper")
        .and_then(|d| d.pointer("/spec/job/parallelism").and_then(Value::as_i64));
    if current == Some(2) { 1 } else { 2 }
}

fn remembered_count(suite: &Suite) -> f64 {
    *suite.count.lock().unwrap_or_else(|e| e.into_inner())
}

fn remember_count(suite: &Suite, count: f64) {
    *suite.count.lock().unwrap_or_else(|e| e.into_inner()) = count;
}

/// The TaskManager pods of the native cluster `native`, as (name, owner kind/name, controller).
fn native_task_managers(suite: &Suite) -> Vec<(String, String, bool)> {
    suite.server.with_store(|s| {
        let Some(rt) = s.resource_type("", "v1", "pods").cloned() else {
            return Vec::new();
        };
        s.list(&rt, &Default::default())
            .map(|(items, _)| items)
            .unwrap_or_default()
            .into_iter()
            .filter(|p| {
                p.pointer("/metadata/labels/app").and_then(Value::as_str) == Some("native")
                    && p.pointer("/metadata/labels/component")
                        .and_then(Value::as_str)
                        == Some("taskmanager")
                    && p.pointer("/metadata/deletionTimestamp").is_none()
            })
            .map(|p| {
                (
                    text(&p, "/metadata/name"),
                    format!(
                        "{}/{}",
                        text(&p, "/metadata/ownerReferences/0/kind"),
                        text(&p, "/metadata/ownerReferences/0/name")
                    ),
                    p.pointer("/metadata/ownerReferences/0/controller") == Some(&Value::Bool(true)),
                )
            })
            .collect()
    })
}

/// Upstream's default mode: the keeper's spec with `mode` left out. Flink's JobManager asks
/// the API stand-in for its TaskManager pods itself (its fabric8 client, over WebSocket).
fn a_native_application_gets_its_task_manager_pods_from_its_job_manager(
    suite: &Suite,
) -> Result<(), String> {
    let dir = suite.work.join("native");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let manifest = std::fs::read_to_string(fixture("stateful.yaml"))
        .map_err(|e| e.to_string())?
        .replace("DIR", &dir.display().to_string())
        .replace("name: keeper", "name: native")
        .replace("  mode: standalone\n", "");
    assert!(!manifest.contains("mode:"), "{manifest}");
    suite.apply_manifest("native.yaml", &manifest)?;
    let status = suite.wait_deployment("native", "STABLE", Some("RUNNING"), STARTUP);
    // Flink lists the job RUNNING while its tasks still wait for the slots it asked for.
    let pods = suite.runtime.block_on(wait_for(
        "a TaskManager pod of the JobManager's",
        Duration::from_secs(90),
        async || {
            let pods = native_task_managers(suite);
            (!pods.is_empty()).then_some(pods)
        },
    ));
    assert_eq!(pods.len(), 1, "one TaskManager pod for 1 subtask: {pods:?}");
    let (name, owner, controller) = &pods[0];
    assert_eq!(
        owner, "Deployment/native",
        "owned by the JobManager Deployment"
    );
    assert!(controller, "its controller");
    assert!(
        suite
            .get("apps", "v1", "deployments", "native-taskmanager")
            .is_none(),
        "no TaskManager Deployment in native mode"
    );
    let listed = suite.kubectl(&["get", "pods", "-l", "app=native,component=taskmanager"])?;
    assert!(listed.contains(name.as_str()), "{listed}");
    let job = text(&status, "/jobStatus/jobId");
    let count = suite
        .runtime
        .block_on(count_of(&suite.flink("native")?, &job))?;
    suite.remember_job(&job);
    remember_count(suite, count);
    Ok(())
}

/// A savepoint upgrade to parallelism 3 on 2-slot TaskManagers: the new JobManager asks for
/// two TaskManager pods, and the count continues from the savepoint.
fn a_native_parallelism_change_adds_pods_and_continues_the_count(
    suite: &Suite,
) -> Result<(), String> {
    let old = suite.remembered_job()?;
    let before = remembered_count(suite);
    suite.patch(
        "flinkdep",
        "native",
        r#"{"spec":{"job":{"parallelism":3}}}"#,
    )?;
    let status = suite.runtime.block_on(wait_for(
        "the native job redeployed at parallelism 3",
        STARTUP,
        async || {
            let status = suite.deployment("native")?.get("status")?.clone();
            (text(&status, "/jobStatus/jobId") != old
                && text(&status, "/jobStatus/state") == "RUNNING"
                && text(&status, "/lifecycleState") == "STABLE")
                .then_some(status)
        },
    ));
    let job = text(&status, "/jobStatus/jobId");
    let pods = suite.runtime.block_on(wait_for(
        "two TaskManager pods",
        Duration::from_secs(60),
        async || {
            let pods = native_task_managers(suite);
            (pods.len() == 2).then_some(pods)
        },
    ));
    assert!(
        pods.iter()
            .all(|(_, owner, _)| owner == "Deployment/native"),
        "{pods:?}"
    );
    count_continues(suite, "native", &job, before)?;
    Ok(())
}

/// Deleting it takes the JobManager's TaskManager pods, the configuration and every JVM.
fn deleting_a_native_application_leaves_no_pod_config_map_or_jvm(
    suite: &Suite,
) -> Result<(), String> {
    suite.kubectl(&["delete", "flinkdep", "native", "--timeout=90s"])?;
    suite.wait_until_stopped("native");
    let left: Vec<String> = ["configmaps", "services"]
        .iter()
        .flat_map(|plural| suite.labelled("", plural, "native"))
        .chain(suite.labelled("apps", "deployments", "native"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    Ok(())
}

/// The name of the JobManager pod of `cluster` that is not going away.
fn job_manager_pod(suite: &Suite, cluster: &str) -> Option<Value> {
    suite.server.with_store(|s| {
        let rt = s.resource_type("", "v1", "pods").cloned()?;
        s.list(&rt, &Default::default())
            .ok()?
            .0
            .into_iter()
            .find(|p| {
                p.pointer("/metadata/labels/app").and_then(Value::as_str) == Some(cluster)
                    && p.pointer("/metadata/labels/component")
                        .and_then(Value::as_str)
                        == Some("jobmanager")
                    && p.pointer("/metadata/deletionTimestamp").is_none()
            })
    })
}

/// Native mode with Kubernetes HA and last-state upgrades: the keeper's spec, mode left out.
fn a_killed_job_manager_recovers_the_job_from_its_ha_metadata(suite: &Suite) -> Result<(), String> {
    let (job, count) = killed_job_manager_recovers(suite, "guarded", false)?;
    suite.remember_job(&job);
    remember_count(suite, count);
    Ok(())
}

/// Kubernetes HA in standalone mode: Flink's HA services talk to the API server from the
/// standalone JobManager too; a killed JobManager JVM recovers the job, and deleting the
/// resource removes the HA metadata.
fn a_standalone_job_manager_killed_recovers_the_job_from_its_ha_metadata(
    suite: &Suite,
) -> Result<(), String> {
    killed_job_manager_recovers(suite, "sentinel", true)?;
    deleted_with_its_ha_metadata(suite, "sentinel")
}

/// The count of `job` in cluster `name` is at least `before`: no state was lost.
fn count_continues(suite: &Suite, name: &str, job: &str, before: f64) -> Result<f64, String> {
    let after = suite.runtime.block_on(count_of(&suite.flink(name)?, job))?;
    assert!(
        after >= before,
        "count went from {before} to {after}: state lost"
    );
    Ok(after)
}

/// The count of `job` in cluster `name`, once a checkpoint triggered after it was read has
/// completed (checkpoints every 2 s): what a restore from the latest checkpoint holds at least.
fn checkpointed_count(suite: &Suite, name: &str, job: &str) -> Result<f64, String> {
    let client = suite.flink(name)?;
    let id = JobId::parse(job).map_err(|e| e.to_string())?;
    let count = suite.runtime.block_on(count_of(&client, job))?;
    let read_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    suite.runtime.block_on(wait_for(
        "a checkpoint triggered after the count was read",
        Duration::from_secs(60),
        async || {
            let latest = client
                .checkpoint_statistics(&id)
                .await
                .ok()?
                .latest
                .completed?;
            (latest.trigger_timestamp > read_at).then_some(())
        },
    ));
    Ok(count)
}

/// A last-state job `name` with Kubernetes HA (native, or `standalone`) runs and checkpoints;
/// its JobManager's JVM is killed and the restarted container recovers the job under its id
/// with at least the count it had. Returns the job id and that count.
fn killed_job_manager_recovers(
    suite: &Suite,
    name: &str,
    standalone: bool,
) -> Result<(String, f64), String> {
    let dir = suite.work.join(name);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let manifest = std::fs::read_to_string(fixture("stateful.yaml"))
        .map_err(|e| e.to_string())?
        .replace("DIR", &dir.display().to_string())
        .replace("name: keeper", &format!("name: {name}"))
        .replace(
            "  mode: standalone\n",
            if standalone { "  mode: standalone\n" } else { "" },
        )
        .replace("upgradeMode: savepoint", "upgradeMode: last-state")
        .replace(
            "    taskmanager.numberOfTaskSlots: 2\n",
            &format!("    taskmanager.numberOfTaskSlots: 2\n    high-availability.type: kubernetes\n    high-availability.storageDir: file://{}/ha\n", dir.display()),
        );
    assert!(manifest.contains("high-availability.type"), "{manifest}");
    suite.apply_manifest(&format!("{name}.yaml"), &manifest)?;
    let status = suite.wait_deployment(name, "STABLE", Some("RUNNING"), STARTUP);
    let job = text(&status, "/jobStatus/jobId");
    let client = suite.flink(name)?;
    suite.runtime.block_on(wait_for(
        "a count of 400",
        Duration::from_secs(90),
        async || (count_of(&client, &job).await.ok()? >= 400.0).then_some(()),
    ));
    let before = checkpointed_count(suite, name, &job)?;
    let leader = suite.labelled("", "configmaps", name);
    assert!(
        leader
            .iter()
            .any(|n| *n == format!("{name}-cluster-config-map")),
        "Flink's leader election keeps its ConfigMap: {leader:?}"
    );
    // The JobManager's JVM dies (as an OOM kill would); its container restarts.
    let pod = job_manager_pod(suite, name).ok_or("no JobManager pod")?;
    let pod_name = text(&pod, "/metadata/name");
    let pids = jvm_pids_under(&suite.work.join("pods/default").join(&pod_name));
    assert_eq!(pids.len(), 1, "one JobManager JVM: {pids:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pids[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .map_err(|e| e.to_string())?;
    suite.runtime.block_on(wait_for(
        "the JobManager container restarted",
        Duration::from_secs(60),
        async || {
            let pod = job_manager_pod(suite, name)?;
            (pod.pointer("/status/containerStatuses/0/restartCount")
                .and_then(Value::as_u64)
                >= Some(1))
            .then_some(())
        },
    ));
    let client = suite.runtime.block_on(wait_for(
        "the job recovered under its id",
        STARTUP,
        async || {
            let client = suite.flink(name).ok()?;
            let id = JobId::parse(&job).ok()?;
            let overview = client.jobs_overview().await.ok()?;
            overview
                .jobs
                .iter()
                .any(|j| j.jid == id.to_string() && j.state == flink_rest::JobState::Running)
                .then_some(client)
        },
    ));
    let after = suite.runtime.block_on(count_of(&client, &job))?;
    assert!(
        after >= before,
        "count went from {before} to {after}: the recovery lost the state"
    );
    Ok((job, after))
}

/// A last-state upgrade with HA: the cluster goes without cancelling the job, and the new
/// JobManager resumes it under the same id from its HA metadata.
fn a_last_state_upgrade_with_ha_keeps_the_job_and_its_count(suite: &Suite) -> Result<(), String> {
    let job = suite.remembered_job()?;
    let before = remembered_count(suite);
    let old_pod = job_manager_pod(suite, "guarded").map(|p| text(&p, "/metadata/name"));
    suite.patch(
        "flinkdep",
        "guarded",
        r#"{"spec":{"job":{"parallelism":2}}}"#,
    )?;
    let status = suite.runtime.block_on(wait_for(
        "the upgraded job running on a new JobManager",
        STARTUP,
        async || {
            let status = suite.deployment("guarded")?.get("status")?.clone();
            let new_pod = job_manager_pod(suite, "guarded").map(|p| text(&p, "/metadata/name"));
            (new_pod.is_some()
                && new_pod != old_pod
                && text(&status, "/jobStatus/state") == "RUNNING"
                && text(&status, "/lifecycleState") == "STABLE"
                && status
                    .pointer("/reconciliationStatus/lastReconciledSpec")
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.contains("\"parallelism\":2")))
            .then_some(status)
        },
    ));
    assert_eq!(
        text(&status, "/jobStatus/jobId"),
        job,
        "HA keeps the job id"
    );
    // Upstream's guard was passed (the job checkpointed) and Flink, with its HA metadata,
    // restored the checkpoint instead of failing on the path.
    let config = suite
        .get("", "v1", "configmaps", "flink-config-guarded")
        .ok_or("no configuration ConfigMap")?;
    assert!(
        text(&config, "/data/config.yaml").contains("KUBERNETES_OPERATOR_LAST_STATE"),
        "{}",
        text(&config, "/data/config.yaml")
    );
    count_continues(suite, "guarded", &job, before)?;
    Ok(())
}

/// A last-state suspension with HA stops the cluster without cancelling the job and keeps its
/// HA metadata; the resume finds the job there under the same id, and the count continues.
/// (Before, the resume restored an older upgrade savepoint under a new job id.)
fn a_last_state_suspension_with_ha_resumes_the_job_and_its_count(
    suite: &Suite,
) -> Result<(), String> {
    let job = suite.remembered_job()?;
    // Last-state restores the latest checkpoint: the count read before one completes is what
    // the resumed job must at least hold.
    let before = checkpointed_count(suite, "guarded", &job)?;
    suite.patch(
        "flinkdep",
        "guarded",
        r#"{"spec":{"job":{"state":"suspended"}}}"#,
    )?;
    suite
        .runtime
        .block_on(wait_for("guarded suspended", STARTUP, async || {
            let status = suite.deployment("guarded")?.get("status")?.clone();
            (text(&status, "/lifecycleState") == "SUSPENDED").then_some(())
        }));
    suite.wait_until_stopped("guarded");
    let kept: Vec<String> = suite
        .labelled("", "configmaps", "guarded")
        .into_iter()
        .filter(|name| name.ends_with("-config-map"))
        .collect();
    assert!(!kept.is_empty(), "the HA metadata is kept while suspended");
    suite.patch(
        "flinkdep",
        "guarded",
        r#"{"spec":{"job":{"state":"running"}}}"#,
    )?;
    let status = suite
        .runtime
        .block_on(wait_for("guarded resumed", STARTUP, async || {
            let status = suite.deployment("guarded")?.get("status")?.clone();
            (text(&status, "/jobStatus/state") == "RUNNING"
                && text(&status, "/lifecycleState") == "STABLE")
                .then_some(status)
        }));
    assert_eq!(
        text(&status, "/jobStatus/jobId"),
        job,
        "resumed from HA under its id"
    );
    count_continues(suite, "guarded", &job, before)?;
    Ok(())
}

/// Deleting it removes Flink's HA ConfigMaps, which have no owner to take them (upstream
/// deletes them too).
fn deleting_an_ha_application_removes_its_ha_metadata(suite: &Suite) -> Result<(), String> {
    deleted_with_its_ha_metadata(suite, "guarded")
}

/// Deletes the FlinkDeployment `name` and waits until no pod, JVM or ConfigMap of it is left
/// (its HA ConfigMaps have no owner: the operator deletes them).
fn deleted_with_its_ha_metadata(suite: &Suite, name: &str) -> Result<(), String> {
    suite.kubectl(&["delete", "flinkdep", name, "--timeout=90s"])?;
    suite.wait_until_stopped(name);
    let left = suite.runtime.block_on(wait_for(
        &format!("no ConfigMap of {name}"),
        Duration::from_secs(30),
        async || {
            let left = suite.labelled("", "configmaps", name);
            left.is_empty().then_some(left)
        },
    ));
    assert!(left.is_empty());
    Ok(())
}

fn a_savepoint_upgrade_continues_the_count(suite: &Suite) -> Result<(), String> {
    let dir = suite.work.join("keeper");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let manifest = std::fs::read_to_string(fixture("stateful.yaml"))
        .map_err(|e| e.to_string())?
        .replace("DIR", &dir.display().to_string());
    suite.apply_manifest("stateful.yaml", &manifest)?;
    let status = suite.wait_deployment("keeper", "STABLE", Some("RUNNING"), STARTUP);
    let job = text(&status, "/jobStatus/jobId");
    suite.remember_job(&job);
    let client = suite.flink("keeper")?;
    let before = suite.runtime.block_on(wait_for(
        "a count of 400",
        Duration::from_secs(60),
        async || count_of(&client, &job).await.ok().filter(|c| *c >= 400.0),
    ));
    // From here the job counts one record a second: a job that lost its state cannot catch up.
    let status = upgrade_keeper(
        suite,
        r#"{"spec":{"job":{"parallelism":2,"args":["--rate","1"]}}}"#,
    )?;
    let savepoint = text(&status, "/jobStatus/upgradeSavepointPath");
    assert!(
        savepoint.starts_with("file:") && savepoint.contains("/savepoints/"),
        "savepoint path {savepoint:?}"
    );
    let on_disk = std::path::Path::new(savepoint.trim_start_matches("file:"));
    assert!(
        on_disk.join("_metadata").is_file(),
        "no savepoint at {}",
        on_disk.display()
    );
    let job = suite.remembered_job()?;
    let restored = restored_from(suite, &job)?.unwrap_or_default();
    assert_eq!(
        restored.trim_end_matches('/'),
        savepoint.trim_end_matches('/'),
        "Flink restored from the recorded savepoint"
    );
    let after = running_count(suite, &job)?;
    assert!(
        after >= before,
        "count went from {before} to {after}: state lost"
    );
    assert_eq!(status.get("upgrade"), None, "no upgrade left in progress");
    // Snapshot resources are on (upstream's default): the savepoint is also an UPGRADE
    // FlinkStateSnapshot of the keeper, completed at once.
    let recorded = suite.runtime.block_on(wait_for(
        "the upgrade savepoint as a FlinkStateSnapshot",
        Duration::from_secs(30),
        async || {
            keeper_snapshots(suite)
                .ok()?
                .into_iter()
                .find(|(_, trigger, state, _)| trigger == "UPGRADE" && state == "COMPLETED")
        },
    ));
    assert_eq!(recorded.3, savepoint, "{recorded:?}");
    remember_count(suite, after);
    Ok(())
}

fn a_last_state_upgrade_continues_the_count(suite: &Suite) -> Result<(), String> {
    let before = remembered_count(suite);
    let status = upgrade_keeper(
        suite,
        r#"{"spec":{"job":{"parallelism":1,"upgradeMode":"last-state"}}}"#,
    )?;
    let job = suite.remembered_job()?;
    let restored = restored_from(suite, &job)?.unwrap_or_default();
    assert!(
        restored.contains("/checkpoints/") && restored.contains("chk-"),
        "restored from {restored:?}, not a retained checkpoint"
    );
    assert_eq!(
        text(&status, "/jobStatus/upgradeSavepointPath").trim_end_matches('/'),
        restored.trim_end_matches('/')
    );
    let after = running_count(suite, &job)?;
    assert!(
        after >= before,
        "count went from {before} to {after}: state lost"
    );
    remember_count(suite, after);
    Ok(())
}

fn suspend_and_resume_with_a_savepoint_continue_the_count(suite: &Suite) -> Result<(), String> {
    keeper_patch(suite, r#"{"spec":{"job":{"upgradeMode":"savepoint"}}}"#)?;
    let before = running_count(suite, &suite.remembered_job()?)?;
    keeper_patch(suite, r#"{"spec":{"job":{"state":"suspended"}}}"#)?;
    let status = suite.wait_deployment(
        "keeper",
        "SUSPENDED",
        Some("SUSPENDED"),
        Duration::from_secs(90),
    );
    let savepoint = text(&status, "/jobStatus/upgradeSavepointPath");
    assert!(
        savepoint.contains("/savepoints/"),
        "suspended without a savepoint: {savepoint:?}"
    );
    suite.wait_until_stopped("keeper");
    upgrade_keeper(suite, r#"{"spec":{"job":{"state":"running"}}}"#)?;
    let job = suite.remembered_job()?;
    assert_eq!(
        restored_from(suite, &job)?
            .unwrap_or_default()
            .trim_end_matches('/'),
        savepoint.trim_end_matches('/')
    );
    let after = running_count(suite, &job)?;
    assert!(
        after >= before,
        "count went from {before} to {after} across suspend/resume"
    );
    remember_count(suite, after);
    Ok(())
}

/// An upgrade whose job cannot start (its main() rejects an argument) is rolled back after the
/// readiness timeout to the last stable spec, restoring the savepoint the upgrade took: the count
/// continues. Putting the stable spec back then just marks it deployed.
fn a_bad_upgrade_is_rolled_back_and_the_count_continues(suite: &Suite) -> Result<(), String> {
    keeper_patch(
        suite,
        r#"{"spec":{"flinkConfiguration":{"kubernetes.operator.deployment.rollback.enabled":"true","kubernetes.operator.deployment.readiness.timeout":"20s"}}}"#,
    )?;
    let stable_job = suite.remembered_job()?;
    let stable_args = suite
        .deployment("keeper")
        .and_then(|d| d.pointer("/spec/job/args").cloned())
        .ok_or("the keeper has args")?;
    let before = running_count(suite, &stable_job)?;
    keeper_patch(
        suite,
        r#"{"spec":{"job":{"args":["--rate","not-a-number"]}}}"#,
    )?;
    let status = suite.wait_deployment(
        "keeper",
        "ROLLED_BACK",
        Some("RUNNING"),
        Duration::from_secs(240),
    );
    let job = text(&status, "/jobStatus/jobId");
    assert_ne!(job, stable_job, "the rollback deployed a new job");
    suite.remember_job(&job);
    let savepoint = text(&status, "/jobStatus/upgradeSavepointPath");
    assert!(
        savepoint.contains("/savepoints/"),
        "the bad upgrade took a savepoint first: {savepoint:?}"
    );
    // Flink serves a job's graph and statistics a moment after it reports it running.
    let restored = retrying(Duration::from_secs(30), || restored_from(suite, &job))?;
    assert_eq!(
        restored.unwrap_or_default().trim_end_matches('/'),
        savepoint.trim_end_matches('/'),
        "the rolled-back job restored the savepoint the failed upgrade started from"
    );
    let after = retrying(Duration::from_secs(30), || running_count(suite, &job))?;
    assert!(
        after >= before,
        "count went from {before} to {after} across the rollback"
    );
    let reasons = suite.event_reasons("keeper");
    assert!(reasons.iter().any(|r| r == "Rollback"), "{reasons:?}");
    // Back to the stable arguments: nothing is redeployed, the resource is stable again.
    keeper_patch(
        suite,
        &serde_json::json!({"spec": {"job": {"args": stable_args}}}).to_string(),
    )?;
    let status =
        suite.wait_deployment("keeper", "STABLE", Some("RUNNING"), Duration::from_secs(60));
    assert_eq!(
        text(&status, "/jobStatus/jobId"),
        job,
        "the job was not redeployed"
    );
    // The 20 s timeout is for this step only: later deploys on a busy machine take longer.
    keeper_patch(
        suite,
        r#"{"spec":{"flinkConfiguration":{"kubernetes.operator.deployment.rollback.enabled":null,"kubernetes.operator.deployment.readiness.timeout":null}}}"#,
    )?;
    remember_count(suite, after);
    Ok(())
}

/// The health check of a FlinkDeployment on real Flink (the session-job step proves the same
/// rules for a session job): a job that keeps failing over is redeployed from its latest
/// checkpoint, and its count continues.
fn an_unhealthy_deployment_is_restarted_from_its_last_checkpoint(
    suite: &Suite,
) -> Result<(), String> {
    let fail = suite.work.join("fail-keeper");
    let patch = serde_json::json!({"spec": {
        "flinkConfiguration": {
            "kubernetes.operator.cluster.health-check.enabled": "true",
            "kubernetes.operator.cluster.health-check.restarts.threshold": "2",
            "kubernetes.operator.cluster.health-check.restarts.window": "5 min",
        },
        "job": {
            "upgradeMode": "last-state",
            "args": ["--rate", "5", "--fail-while-file", fail.display().to_string()],
        },
    }});
    let old = suite.remembered_job()?;
    keeper_patch(suite, &patch.to_string())?;
    // Every redeploy moves the JobManager: a client is made for the cluster that runs now.
    let healthy = suite.runtime.block_on(wait_for(
        "the keeper upgraded and checkpointing",
        STARTUP,
        async || {
            let status = suite.deployment("keeper")?.get("status")?.clone();
            let job = text(&status, "/jobStatus/jobId");
            let id = JobId::parse(&job).ok()?;
            let client = suite.flink("keeper").ok()?;
            let stats = client.checkpoint_statistics(&id).await.ok()?;
            (job != old
                && text(&status, "/lifecycleState") == "STABLE"
                && text(&status, "/jobStatus/state") == "RUNNING"
                && stats.counts.completed > 0
                && status.pointer("/health/restartsBaseline").is_some())
            .then_some(job)
        },
    ));
    let before = running_count(suite, &healthy)?;
    std::fs::write(&fail, b"fail").map_err(|e| e.to_string())?;
    suite.runtime.block_on(wait_for(
        "the operator restarting the failing job",
        STARTUP,
        async || {
            let status = suite.deployment("keeper")?.get("status")?.clone();
            let job = text(&status, "/jobStatus/jobId");
            (job != healthy && !job.is_empty()).then_some(())
        },
    ));
    std::fs::remove_file(&fail).map_err(|e| e.to_string())?;
    let reasons = suite.event_reasons("keeper");
    assert!(
        reasons.iter().any(|r| r == "RestartUnhealthyJob"),
        "{reasons:?}"
    );
    // The job that runs now (a restart while the file was still there would be another one),
    // as Flink reports it.
    let restarted = text(&wait_for_new_job(suite, &healthy), "/jobStatus/jobId");
    let id = JobId::parse(&restarted).map_err(|e| e.to_string())?;
    suite
        .runtime
        .block_on(wait_for("the restarted job running", STARTUP, async || {
            let client = suite.flink("keeper").ok()?;
            let details = client.job_details(&id).await.ok()?;
            (details.state == flink_rest::JobState::Running).then_some(())
        }));
    let restored = restored_from(suite, &restarted)?.unwrap_or_default();
    assert!(
        restored.contains("/checkpoints/") || restored.contains("/savepoints/"),
        "restored from the job's state, not empty: {restored:?}"
    );
    // The state came along: the count reaches where it was (from zero it would take minutes).
    let client = suite.flink("keeper")?;
    let after = suite.runtime.block_on(wait_for(
        "the count back where it was",
        Duration::from_secs(60),
        async || {
            count_of(&client, &restarted)
                .await
                .ok()
                .filter(|c| *c >= before)
        },
    ));
    remember_count(suite, after);
    Ok(())
}

fn a_stateless_upgrade_starts_the_count_from_zero(suite: &Suite) -> Result<(), String> {
    let before = remembered_count(suite);
    upgrade_keeper(
        suite,
        &format!(
            r#"{{"spec":{{"job":{{"upgradeMode":"stateless","parallelism":{}}}}}}}"#,
            other_parallelism(suite)
        ),
    )?;
    let job = suite.remembered_job()?;
    assert_eq!(
        restored_from(suite, &job)?,
        None,
        "a stateless deployment restores nothing"
    );
    let after = running_count(suite, &job)?;
    assert!(
        after < before / 2.0,
        "count {after} after a stateless upgrade, was {before}"
    );
    assert!(
        suite
            .event_reasons("keeper")
            .iter()
            .any(|r| r == "StatelessUpgrade"),
        "no StatelessUpgrade event"
    );
    suite.kubectl(&["delete", "flinkdep", "keeper", "--timeout=90s"])?;
    suite.wait_until_stopped("keeper");
    Ok(())
}

/// Waits until the keeper's upgrade reaches `step`, then stops the operator there for a while
/// (Flink goes on: the savepoint completes, pods terminate) and starts a fresh one.
fn restart_operator_at(suite: &Suite, step: &str) {
    // Some steps last a second: look often.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while suite
        .deployment("keeper")
        .is_none_or(|d| text(&d, "/status/upgrade/step") != step)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "upgrade step {step} not reached within 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    suite.stop_operator();
    std::thread::sleep(Duration::from_secs(4));
    suite.start_operator();
}

fn an_operator_restarted_at_each_step_of_a_savepoint_upgrade_keeps_the_state(
    suite: &Suite,
) -> Result<(), String> {
    for step in ["SAVEPOINTING", "STOPPING_CLUSTER"] {
        let parallelism = other_parallelism(suite);
        let before = running_count(suite, &suite.remembered_job()?)?;
        let old = suite.remembered_job()?;
        keeper_patch(
            suite,
            &format!(r#"{{"spec":{{"job":{{"parallelism":{parallelism}}}}}}}"#),
        )?;
        restart_operator_at(suite, step);
        let status = wait_for_new_job(suite, &old);
        let job = text(&status, "/jobStatus/jobId");
        let savepoint = text(&status, "/jobStatus/upgradeSavepointPath");
        let restored = restored_from(suite, &job)?.unwrap_or_default();
        assert_eq!(
            restored.trim_end_matches('/'),
            savepoint.trim_end_matches('/'),
            "restarted at {step}"
        );
        let after = running_count(suite, &job)?;
        assert!(
            after >= before,
            "restarted at {step}: count went from {before} to {after}"
        );
        let pods = suite.labelled("", "pods", "keeper");
        assert!(
            pods.iter().filter(|p| !p.contains("taskmanager")).count() == 1,
            "one JobManager, never two clusters: {pods:?}"
        );
        remember_count(suite, after);
    }
    Ok(())
}

/// The savepoint directories of the keeper, by name.
fn keeper_savepoints(suite: &Suite) -> std::collections::BTreeSet<String> {
    std::fs::read_dir(suite.work.join("keeper/savepoints"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Upgrades the keeper (`during` runs while the upgrade is under way, e.g. to break and mend
/// something); checks that the new job restores the one savepoint taken for it (the only one
/// beside `savepoints`, those there before) and that the count goes on.
fn upgrade_through_fault(
    suite: &Suite,
    savepoints: std::collections::BTreeSet<String>,
    during: impl FnOnce(&str),
) -> Result<Value, String> {
    let old = suite.remembered_job()?;
    let before = running_count(suite, &old)?;
    let parallelism = other_parallelism(suite);
    keeper_patch(
        suite,
        &format!(r#"{{"spec":{{"job":{{"parallelism":{parallelism}}}}}}}"#),
    )?;
    during(&old);
    let status = wait_for_new_job(suite, &old);
    assert_eq!(suite.proxy.pending_rules(), 0, "{:?}", suite.proxy.log());
    let job = text(&status, "/jobStatus/jobId");
    let savepoint = text(&status, "/jobStatus/upgradeSavepointPath");
    let new: Vec<String> = keeper_savepoints(suite)
        .difference(&savepoints)
        .cloned()
        .collect();
    assert_eq!(new.len(), 1, "one savepoint for one upgrade: {new:?}");
    assert!(savepoint.contains(&new[0]), "{savepoint} is {new:?}");
    let restored = restored_from(suite, &job)?.unwrap_or_default();
    assert_eq!(
        restored.trim_end_matches('/'),
        savepoint.trim_end_matches('/')
    );
    let after = running_count(suite, &job)?;
    assert!(after >= before, "count went from {before} to {after}");
    remember_count(suite, after);
    Ok(status)
}

fn faults_of_flink_mid_savepoint_neither_lose_nor_duplicate_the_state(
    suite: &Suite,
) -> Result<(), String> {
    // Flink stops the job with a savepoint but its answers never arrive (the request and its
    // retry): the operator learns the result by the trigger id it wrote ahead, and the retry
    // with that id takes no second savepoint.
    suite.proxy.inject("POST", "/stop", Fault::LoseResponse, 2);
    upgrade_through_fault(suite, keeper_savepoints(suite), |_| {})?;
    let lost = suite
        .proxy
        .log()
        .iter()
        .filter(|l| l.ends_with("-> LoseResponse"))
        .count();
    assert_eq!(lost, 2, "{:?}", suite.proxy.log());

    // Flink's API goes away for 20 s right after it accepted the stop: the upgrade waits at its
    // step with the reason in the status, the JobManager (and the savepoint it holds the result
    // of) is kept, and the upgrade completes once the API is back.
    suite.proxy.inject(
        "POST",
        "/stop",
        Fault::PassThenOutage(Duration::from_secs(20)),
        1,
    );
    upgrade_through_fault(suite, keeper_savepoints(suite), |old| {
        suite.runtime.block_on(wait_for(
            "the outage",
            Duration::from_secs(60),
            async || suite.proxy.in_outage().then_some(()),
        ));
        let mut reported = None;
        while suite.proxy.in_outage() {
            let status = suite
                .deployment("keeper")
                .and_then(|d| d.get("status").cloned())
                .unwrap_or_default();
            assert_eq!(text(&status, "/jobStatus/jobId"), old, "{status:#}");
            assert_eq!(text(&status, "/upgrade/step"), "SAVEPOINTING", "{status:#}");
            let job_managers = suite
                .labelled("", "pods", "keeper")
                .into_iter()
                .filter(|p| !p.contains("taskmanager"))
                .count();
            assert_eq!(job_managers, 1, "the cluster is kept");
            let running = status
                .pointer("/conditions")
                .and_then(Value::as_array)
                .and_then(|c| c.iter().find(|c| text(c, "/type") == "Running"))
                .map(|c| text(c, "/message"))
                .unwrap_or_default();
            if running.contains("does not answer") {
                reported = Some(running);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        assert!(
            reported.is_some_and(|r| r.contains("the upgrade waits")),
            "the Running condition says why the upgrade waits"
        );
    })?;

    // The savepoint itself fails (a file stands where its directory must be created, as an
    // unwritable directory would): the job keeps running untouched, the status and a
    // SavepointError event carry Flink's reason, and the upgrade is retried; once the directory
    // is usable again it completes.
    let dir = suite.work.join("keeper/savepoints");
    let aside = suite.work.join("keeper/savepoints-aside");
    let savepoints = keeper_savepoints(suite);
    std::fs::rename(&dir, &aside).map_err(|e| e.to_string())?;
    let blocked = PutBack {
        moved: aside.clone(),
        to: dir.clone(),
    };
    std::fs::write(&dir, "not a directory").map_err(|e| e.to_string())?;
    upgrade_through_fault(suite, savepoints, |old| {
        let status = suite.runtime.block_on(wait_for(
            "the failed savepoint in the status",
            Duration::from_secs(120),
            async || {
                let status = suite.deployment("keeper")?.get("status")?.clone();
                text(&status, "/error")
                    .contains("SavepointError")
                    .then_some(status)
            },
        ));
        assert_eq!(text(&status, "/jobStatus/jobId"), old, "{status:#}");
        assert_eq!(text(&status, "/jobStatus/state"), "RUNNING", "{status:#}");
        let error = text(&status, "/error");
        assert!(
            error.contains("the job keeps running and the upgrade is retried"),
            "{error}"
        );
        // The event follows the status write.
        suite.runtime.block_on(wait_for(
            "a SavepointError event on keeper",
            Duration::from_secs(20),
            async || {
                suite
                    .event_reasons("keeper")
                    .iter()
                    .any(|r| r == "SavepointError")
                    .then_some(())
            },
        ));
        drop(blocked);
    })?;
    Ok(())
}

/// Puts a directory a step moved aside back in place (also when the step fails), replacing
/// whatever was put there instead.
struct PutBack {
    moved: PathBuf,
    to: PathBuf,
}

impl Drop for PutBack {
    fn drop(&mut self) {
        if self.moved.exists() {
            let _ = std::fs::remove_file(&self.to);
            let _ = std::fs::rename(&self.moved, &self.to);
        }
    }
}

fn manual_and_periodic_savepoints_and_checkpoints_are_taken_while_the_job_runs(
    suite: &Suite,
) -> Result<(), String> {
    let job = suite.remembered_job()?;
    // First kept in the status (upstream with FlinkStateSnapshot resources off), then as
    // resources (upstream's default).
    keeper_patch(
        suite,
        r#"{"spec":{"job":{"savepointTriggerNonce":1},"flinkConfiguration":{"kubernetes.operator.snapshot.resource.enabled":"false"}}}"#,
    )?;
    let manual = suite.runtime.block_on(wait_for(
        "a manual savepoint",
        Duration::from_secs(60),
        async || {
            let info = suite
                .deployment("keeper")?
                .pointer("/status/jobStatus/savepointInfo/lastSavepoint")?
                .clone();
            (text(&info, "/triggerType") == "MANUAL"
                && info.pointer("/triggerNonce") == Some(&json!(1)))
            .then_some(info)
        },
    ));
    let path = text(&manual, "/location");
    assert!(
        std::path::Path::new(path.trim_start_matches("file:"))
            .join("_metadata")
            .is_file(),
        "no savepoint at {path}"
    );
    // Periodic savepoints: an operator setting, so the job is not redeployed for it.
    keeper_patch(
        suite,
        r#"{"spec":{"flinkConfiguration":{"kubernetes.operator.periodic.savepoint.interval":"3s"}}}"#,
    )?;
    suite.runtime.block_on(wait_for(
        "two periodic savepoints",
        Duration::from_secs(60),
        async || {
            let history = suite
                .deployment("keeper")?
                .pointer("/status/jobStatus/savepointInfo/savepointHistory")?
                .as_array()?
                .clone();
            (history
                .iter()
                .filter(|s| text(s, "/triggerType") == "PERIODIC")
                .count()
                >= 2)
                .then_some(())
        },
    ));
    keeper_patch(
        suite,
        r#"{"spec":{"flinkConfiguration":{"kubernetes.operator.periodic.savepoint.interval":null}}}"#,
    )?;
    // A manual checkpoint from its nonce, then periodic ones on a cron schedule (every 5 s).
    keeper_patch(suite, r#"{"spec":{"job":{"checkpointTriggerNonce":1}}}"#)?;
    let manual = suite.runtime.block_on(wait_for(
        "a manual checkpoint",
        Duration::from_secs(60),
        async || {
            let info = suite
                .deployment("keeper")?
                .pointer("/status/jobStatus/checkpointInfo/lastCheckpoint")?
                .clone();
            (text(&info, "/triggerType") == "MANUAL"
                && info.pointer("/triggerNonce") == Some(&json!(1)))
            .then_some(info)
        },
    ));
    let manual_at = manual
        .pointer("/timeStamp")
        .and_then(Value::as_i64)
        .unwrap_or_default();
    keeper_patch(
        suite,
        r#"{"spec":{"flinkConfiguration":{"kubernetes.operator.periodic.checkpoint.interval":"0/5 * * * * ?"}}}"#,
    )?;
    suite.runtime.block_on(wait_for(
        "a periodic checkpoint on the cron schedule",
        Duration::from_secs(60),
        async || {
            let info = suite
                .deployment("keeper")?
                .pointer("/status/jobStatus/checkpointInfo")?
                .clone();
            let last = info.pointer("/lastCheckpoint")?;
            (text(last, "/triggerType") == "PERIODIC"
                && last.pointer("/timeStamp").and_then(Value::as_i64) > Some(manual_at))
            .then_some(())
        },
    ));
    let reasons = suite.event_reasons("keeper");
    assert!(
        reasons.iter().any(|r| r == "CheckpointCompleted"),
        "{reasons:?}"
    );
    keeper_patch(
        suite,
        r#"{"spec":{"flinkConfiguration":{"kubernetes.operator.periodic.checkpoint.interval":null,"kubernetes.operator.snapshot.resource.enabled":null}}}"#,
    )?;
    snapshots_become_flinkstatesnapshots(suite)?;
    let status = suite
        .deployment("keeper")
        .and_then(|d| d.get("status").cloned())
        .ok_or("no status")?;
    assert_eq!(
        text(&status, "/jobStatus/jobId"),
        job,
        "savepoints do not redeploy the job"
    );
    assert_eq!(text(&status, "/jobStatus/state"), "RUNNING");
    Ok(())
}

/// The keeper's FlinkStateSnapshots as `kubectl get -l` selects them: (name, trigger type,
/// state, path).
fn keeper_snapshots(suite: &Suite) -> Result<Vec<(String, String, String, String)>, String> {
    let listed = suite.kubectl(&[
        "get",
        "flinkstatesnapshots",
        "-l",
        "job-reference.kind=FlinkDeployment,job-reference.name=keeper",
        "-o",
        "json",
    ])?;
    let listed: Value = serde_json::from_str(&listed).map_err(|e| e.to_string())?;
    Ok(listed["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| {
            (
                text(s, "/metadata/name"),
                text(s, "/metadata/labels/snapshot.trigger-type"),
                text(s, "/status/state"),
                text(s, "/status/path"),
            )
        })
        .collect())
}

/// With FlinkStateSnapshot resources on (the default): a nonce creates one savepoint resource,
/// periodic savepoints create one each, and their history is kept at
/// `kubernetes.operator.savepoint.history.max.count`.
fn snapshots_become_flinkstatesnapshots(suite: &Suite) -> Result<(), String> {
    keeper_patch(suite, r#"{"spec":{"job":{"savepointTriggerNonce":2}}}"#)?;
    let (name, path) = suite.runtime.block_on(wait_for(
        "a savepoint resource for the nonce, completed",
        Duration::from_secs(60),
        async || {
            keeper_snapshots(suite)
                .ok()?
                .into_iter()
                .find(|(_, trigger, state, _)| trigger == "MANUAL" && state == "COMPLETED")
                .map(|(name, _, _, path)| (name, path))
        },
    ));
    assert!(name.starts_with("keeper-savepoint-manual-"), "{name}");
    let files = std::path::PathBuf::from(format!(
        "/{}",
        path.trim_start_matches("file:").trim_start_matches('/')
    ));
    assert!(files.join("_metadata").is_file(), "no savepoint at {path}");
    keeper_patch(
        suite,
        r#"{"spec":{"flinkConfiguration":{"kubernetes.operator.periodic.savepoint.interval":"2s","kubernetes.operator.savepoint.history.max.count":"2"}}}"#,
    )?;
    let mut seen = std::collections::BTreeSet::new();
    let live = suite.runtime.block_on(wait_for(
        "four periodic savepoint resources, the oldest deleted",
        Duration::from_secs(90),
        async || {
            let periodic: Vec<_> = keeper_snapshots(suite)
                .ok()?
                .into_iter()
                .filter(|(_, trigger, _, _)| trigger == "PERIODIC")
                .collect();
            seen.extend(periodic.iter().map(|(name, ..)| name.clone()));
            let first = seen.first()?;
            (seen.len() >= 4 && !periodic.iter().any(|(name, ..)| name == first))
                .then_some(periodic)
        },
    ));
    keeper_patch(
        suite,
        r#"{"spec":{"flinkConfiguration":{"kubernetes.operator.periodic.savepoint.interval":null,"kubernetes.operator.savepoint.history.max.count":null}}}"#,
    )?;
    // Two kept, plus the newest one created before the history was trimmed again.
    assert!(live.len() <= 3, "{live:?}");
    assert!(
        live.iter()
            .any(|(_, _, state, path)| state == "COMPLETED" && path.contains("savepoint-")),
        "{live:?}"
    );
    let manual = keeper_snapshots(suite)?;
    assert!(
        manual.iter().any(|(n, ..)| *n == name),
        "manual snapshots are not part of the history: {manual:?}"
    );
    Ok(())
}

fn a_savepoint_that_does_not_exist_fails_the_job_with_flinks_reason(
    suite: &Suite,
) -> Result<(), String> {
    let manifest = std::fs::read_to_string(fixture("application.yaml"))
        .map_err(|e| e.to_string())?
        .replace("name: counter", "name: lost")
        .replace("upgradeMode: stateless", "upgradeMode: savepoint\n    initialSavepointPath: file:///nowhere/savepoint-0")
        .replace("taskmanager.numberOfTaskSlots: 2", &format!("taskmanager.numberOfTaskSlots: 2\n    execution.checkpointing.dir: file://{dir}/lost-checkpoints\n    execution.checkpointing.savepoint-dir: file://{dir}/lost-savepoints", dir = suite.work.display()));
    suite.apply_manifest("lost.yaml", &manifest)?;
    suite.wait_deployment("lost", "FAILED", Some("FAILED"), STARTUP);
    // Flink's reason follows within seconds (its REST API caches the job's exceptions).
    let error = suite.runtime.block_on(wait_for(
        "the job's failure reported",
        Duration::from_secs(30),
        async || {
            let status = suite.deployment("lost")?.get("status")?.clone();
            Some(text(&status, "/error")).filter(|e| !e.is_empty())
        },
    ));
    assert!(
        error.contains("JobFailed") && error.contains("/nowhere/savepoint-0"),
        "{error}"
    );
    // Flink's exception is also a JobException event, as upstream reports it.
    suite.runtime.block_on(wait_for(
        "a JobException event",
        Duration::from_secs(30),
        async || {
            suite
                .event_reasons("lost")
                .iter()
                .any(|r| r == "JobException")
                .then_some(())
        },
    ));
    suite.kubectl(&["delete", "flinkdep", "lost", "--timeout=60s"])?;
    suite.wait_until_stopped("lost");
    Ok(())
}

fn a_session_job_savepoint_upgrade_restores_its_state(suite: &Suite) -> Result<(), String> {
    let old = session_job_status(suite, "second")
        .map(|s| text(&s, "/jobStatus/jobId"))
        .ok_or("no second job")?;
    let client = suite.flink("shared")?;
    let before = suite.runtime.block_on(wait_for(
        "a count of 100",
        Duration::from_secs(60),
        async || count_of(&client, &old).await.ok().filter(|c| *c >= 100.0),
    ));
    // The job's tenant has an upgrade strategy that upgrades stateful jobs through a fresh
    // savepoint: the spec asks for last-state, the plugin's savepoint mode is what happens.
    bind_tenant_plugin(
        suite,
        "session-team",
        flink_policy::ExtensionPoint::Upgrade,
        "maintenance-window-upgrade",
        "{forceSavepoint: true}",
    )?;
    suite.patch(
        "flinksessionjob",
        "second",
        r#"{"spec":{"job":{"upgradeMode":"last-state","args":["--rate","1"]}}}"#,
    )?;
    let status = suite.runtime.block_on(wait_for(
        "the upgraded session job running",
        STARTUP,
        async || {
            let status = session_job_status(suite, "second")?;
            (text(&status, "/jobStatus/jobId") != old
                && text(&status, "/jobStatus/state") == "RUNNING")
                .then_some(status)
        },
    ));
    let job = text(&status, "/jobStatus/jobId");
    let savepoint = text(&status, "/jobStatus/upgradeSavepointPath");
    assert!(
        savepoint.contains("/session-savepoints/"),
        "a savepoint, not the latest checkpoint: {savepoint:?}"
    );
    let policy = status
        .pointer("/policies")
        .and_then(Value::as_array)
        .and_then(|p| {
            p.iter()
                .find(|p| text(p, "/extensionPoint") == "upgrade-strategy")
                .cloned()
        })
        .ok_or_else(|| format!("no upgrade strategy in the status: {status:#}"))?;
    assert_eq!(text(&policy, "/outcome"), "Applied", "{policy}");
    assert!(
        text(&policy, "/message").starts_with("upgrade in savepoint mode"),
        "{policy}"
    );
    let restored = restored_in(suite, "shared", &job)?.unwrap_or_default();
    assert_eq!(
        restored.trim_end_matches('/'),
        savepoint.trim_end_matches('/')
    );
    let after = suite.runtime.block_on(count_of(&client, &job))?;
    assert!(
        after >= before,
        "session job count went from {before} to {after}"
    );
    // A checkpoint nonce becomes a FlinkStateSnapshot of the session job, taken through the
    // session cluster.
    suite.patch(
        "flinksessionjob",
        "second",
        r#"{"spec":{"job":{"checkpointTriggerNonce":1}}}"#,
    )?;
    let path = suite.runtime.block_on(wait_for(
        "a completed checkpoint resource of the session job",
        Duration::from_secs(60),
        async || {
            let listed = suite
                .kubectl(&[
                    "get",
                    "flinksnp",
                    "-l",
                    "job-reference.kind=FlinkSessionJob,job-reference.name=second",
                    "-o",
                    "json",
                ])
                .ok()?;
            let listed: Value = serde_json::from_str(&listed).ok()?;
            listed["items"].as_array()?.iter().find_map(|s| {
                (text(s, "/metadata/labels/snapshot.trigger-type") == "MANUAL"
                    && text(s, "/status/state") == "COMPLETED")
                    .then(|| text(s, "/status/path"))
            })
        },
    ));
    assert!(path.contains(&job) && path.contains("chk-"), "{path}");
    let status = session_job_status(suite, "second").ok_or("no second job")?;
    assert_eq!(text(&status, "/jobStatus/jobId"), job, "not redeployed");
    // The tenant owns `default`: the other resources of the afternoon are not its.
    unbind_tenants(suite)
}

fn snapshot_status(suite: &Suite, name: &str) -> Option<Value> {
    suite
        .get(flink_api::GROUP, "v1beta1", "flinkstatesnapshots", name)?
        .get("status")
        .cloned()
}

fn state_snapshot_resources_take_savepoints_and_checkpoints_and_dispose_on_delete(
    suite: &Suite,
) -> Result<(), String> {
    let backups = suite.work.join("keeper").join("backups");
    let manifest = format!(
        "apiVersion: flink.apache.org/v1beta1\nkind: FlinkStateSnapshot\nmetadata: {{name: keeper-backup}}\nspec:\n  jobReference: {{kind: FlinkDeployment, name: keeper}}\n  savepoint: {{path: 'file://{}', disposeOnDelete: true}}\n---\napiVersion: flink.apache.org/v1beta1\nkind: FlinkStateSnapshot\nmetadata: {{name: keeper-checkpoint}}\nspec:\n  jobReference: {{kind: FlinkDeployment, name: keeper}}\n  checkpoint: {{}}\n",
        backups.display()
    );
    suite.apply_manifest("snapshots.yaml", &manifest)?;
    let completed = |name: &'static str| {
        suite.runtime.block_on(wait_for(
            &format!("{name} completed"),
            Duration::from_secs(90),
            async || {
                let status = snapshot_status(suite, name)?;
                (text(&status, "/state") == "COMPLETED").then(|| text(&status, "/path"))
            },
        ))
    };
    let savepoint = completed("keeper-backup");
    assert!(savepoint.contains("/backups/"), "savepoint at {savepoint}");
    let files = std::path::PathBuf::from(format!(
        "/{}",
        savepoint
            .trim_start_matches("file:")
            .trim_start_matches('/')
    ));
    assert!(
        files.join("_metadata").is_file(),
        "no savepoint at {}",
        files.display()
    );
    let checkpoint = completed("keeper-checkpoint");
    assert!(checkpoint.contains("chk-"), "checkpoint at {checkpoint}");
    // A user's snapshots get upstream's labels too: selectable by job, kind and state.
    suite.runtime.block_on(wait_for(
        "the user's snapshots selectable by their labels",
        Duration::from_secs(30),
        async || {
            let names = suite
                .kubectl(&[
                    "get",
                    "flinksnp",
                    "-l",
                    "job-reference.name=keeper,snapshot.state=COMPLETED,snapshot.trigger-type=MANUAL",
                    "-o",
                    "name",
                ])
                .ok()?;
            (names.contains("/keeper-backup") && names.contains("/keeper-checkpoint")).then_some(())
        },
    ));
    suite.kubectl(&[
        "delete",
        "flinkstatesnapshot",
        "keeper-backup",
        "keeper-checkpoint",
        "--timeout=60s",
    ])?;
    suite.runtime.block_on(wait_for(
        "the savepoint disposed of",
        Duration::from_secs(30),
        async || (!files.join("_metadata").exists()).then_some(()),
    ));
    Ok(())
}

/// The counter vertex's parallelism while it changes from `from`: polls the job every 100 ms
/// and adds up the time it was not processing (the job or one of its vertices not RUNNING:
/// a rescale redeploys the tasks). Returns (new parallelism, job id, downtime).
fn watch_rescale(
    suite: &Suite,
    cluster: &str,
    job: &str,
    from: i32,
    timeout: Duration,
) -> Result<(i32, String, Duration), String> {
    let client = suite.flink(cluster)?;
    let id = JobId::parse(job).map_err(|e| e.to_string())?;
    suite.runtime.block_on(async {
        let deadline = std::time::Instant::now() + timeout;
        let mut down = Duration::ZERO;
        let mut last = std::time::Instant::now();
        loop {
            let details = client.job_details(&id).await.map_err(|e| e.to_string())?;
            let now = std::time::Instant::now();
            let processing = details.state == flink_rest::JobState::Running
                && details
                    .vertices
                    .iter()
                    .all(|v| v.status.as_deref() == Some("RUNNING"));
            if !processing {
                down += now - last;
            }
            last = now;
            let counter = details
                .vertices
                .iter()
                .find(|v| v.name.starts_with("count"))
                .ok_or("no count vertex")?;
            if counter.parallelism != from && processing {
                return Ok((counter.parallelism, details.jid, down));
            }
            if now > deadline {
                return Err(format!(
                    "the counter stayed at parallelism {from} for {timeout:?}; events: {:?}",
                    suite.event_reasons(cluster)
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

fn task_manager_pods(suite: &Suite, cluster: &str) -> Vec<(String, i64)> {
    suite.server.with_store(|s| {
        let Some(rt) = s.resource_type("", "v1", "pods").cloned() else {
            return Vec::new();
        };
        s.list(&rt, &Default::default())
            .map(|(items, _)| items)
            .unwrap_or_default()
            .into_iter()
            .filter(|p| text(p, "/metadata/labels/app") == cluster)
            .filter(|p| text(p, "/metadata/labels/component") == "taskmanager")
            .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none())
            .map(|p| {
                let restarts = p
                    .pointer("/status/containerStatuses/0/restartCount")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                (text(&p, "/metadata/name"), restarts)
            })
            .collect()
    })
}

fn the_autoscaler_rescales_the_busy_vertex_in_place_up_then_down(
    suite: &Suite,
) -> Result<(), String> {
    // The tenant's scaling policy caps its jobs at 3 slots in all (the built-in decision will
    // want 4).
    bind_tenant_plugin(
        suite,
        "elastic-team",
        flink_policy::ExtensionPoint::Scaling,
        "tenant-quota-scaling",
        "{tenantMaxSlots: 3}",
    )?;

    let rate_file = suite.work.join("elastic-rate");
    std::fs::write(&rate_file, "100").map_err(|e| e.to_string())?;
    let manifest = std::fs::read_to_string(fixture("autoscaled.yaml"))
        .map_err(|e| e.to_string())?
        .replace("RATE_FILE", &rate_file.display().to_string());
    suite.apply_manifest("autoscaled.yaml", &manifest)?;
    let status = suite.wait_deployment("elastic", "STABLE", Some("RUNNING"), STARTUP);
    let job = text(&status, "/jobStatus/jobId");
    let before = task_manager_pods(suite, "elastic");
    assert_eq!(before.len(), 1, "one TaskManager to start with: {before:?}");

    // 100 records/s at 2 ms each keep the counter inside its band; 1000/s saturate it.
    std::fs::write(&rate_file, "1000").map_err(|e| e.to_string())?;
    let (up, job_after_up, up_downtime) =
        watch_rescale(suite, "elastic", &job, 1, Duration::from_secs(240))?;
    assert_eq!(up, 3, "scaled up, to the tenant's quota");
    assert_eq!(job_after_up, job, "an in-place rescale keeps the job");
    let status = suite
        .deployment("elastic")
        .and_then(|d| d.get("status").cloned())
        .unwrap_or_default();
    let policy = status
        .pointer("/policies")
        .and_then(Value::as_array)
        .and_then(|p| {
            p.iter()
                .find(|p| text(p, "/extensionPoint") == "scaling-policy")
        })
        .cloned()
        .ok_or_else(|| format!("no scaling policy in the status: {status:#}"))?;
    assert_eq!(text(&policy, "/outcome"), "Applied", "{policy}");
    assert!(text(&policy, "/message").contains("quota"), "{policy}");
    let scalings = status
        .pointer("/autoscaler/scalings")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    assert!(
        scalings
            .iter()
            .any(|s| s.get("from") == Some(&json!(1)) && s.get("to") == Some(&json!(3))),
        "the scaling in status.autoscaler: {status:#}"
    );
    let after = task_manager_pods(suite, "elastic");
    for (pod, _) in &before {
        let kept = after.iter().find(|(p, _)| p == pod);
        assert_eq!(
            kept.map(|(_, restarts)| *restarts),
            Some(0),
            "TaskManager {pod} kept without a restart: {after:?}"
        );
    }
    assert!(after.len() >= 2, "{up} subtasks on 2 slots each: {after:?}");
    let reasons = suite.event_reasons("elastic");
    for reason in ["ScalingReport", "Scaling"] {
        assert!(
            reasons.iter().any(|r| r == reason),
            "{reason} in {reasons:?}"
        );
    }
    let state = suite
        .get("", "v1", "configmaps", "autoscaler-elastic")
        .ok_or("no autoscaler-elastic ConfigMap")?;
    // binaryData (base64) of gzip-compressed JSON.
    let packed: k8s_openapi::ByteString = serde_json::from_value(
        state
            .pointer("/binaryData/state.json.gz")
            .cloned()
            .ok_or("no binaryData state.json.gz")?,
    )
    .map_err(|e| format!("stored state: {e}"))?;
    let stored: Value = serde_json::from_reader(flate2::read::GzDecoder::new(&packed.0[..]))
        .map_err(|e| format!("stored state: {e}"))?;
    let recording: flink_autoscaler::replay::Recording = serde_json::from_value(stored.clone())
        .map_err(|e| format!("the stored state is a recording: {e}"))?;
    assert_eq!(
        recording.graph.len(),
        2,
        "the stored state carries the graph"
    );
    // Right after a rescale the window starts over and may hold no sample yet.
    if let Err(problems) = flink_autoscaler::replay::replay(&recording, &Default::default()) {
        assert!(
            problems.iter().all(|p| p.contains("no samples")),
            "the stored state replays: {problems:?}"
        );
    }
    assert!(
        stored
            .pointer("/overrides")
            .and_then(Value::as_object)
            .is_some_and(|o| o.values().any(|p| p == &json!(up))),
        "the chosen parallelism is stored: {}",
        stored.pointer("/overrides").cloned().unwrap_or_default()
    );

    // The load drops: back down, in place again.
    std::fs::write(&rate_file, "50").map_err(|e| e.to_string())?;
    let (down, job_after_down, down_downtime) =
        watch_rescale(suite, "elastic", &job, up, Duration::from_secs(240))?;
    assert!(down < up, "scaled down from {up} to {down}");
    assert_eq!(job_after_down, job, "an in-place rescale keeps the job");
    // The TaskManager the job no longer uses is released once Flink reports it idle; the
    // job keeps running on the other one without a restart.
    // When the job last became RUNNING (Flink's job details, not a cached metric): a restart
    // caused by the release would move it.
    let running_since = |suite: &Suite| -> Result<Option<i64>, String> {
        let client = suite.flink("elastic")?;
        let id = JobId::parse(&job).map_err(|e| e.to_string())?;
        let details = suite
            .runtime
            .block_on(client.job_details(&id))
            .map_err(|e| e.to_string())?;
        Ok(details.timestamps.get("RUNNING").copied())
    };
    let running_before = running_since(suite)?;
    let needed = (down as usize).div_ceil(2);
    let kept = suite.runtime.block_on(wait_for(
        "the idle TaskManager released",
        Duration::from_secs(120),
        async || {
            let alive = task_manager_pods(suite, "elastic");
            (alive.len() == needed).then_some(alive)
        },
    ));
    assert!(
        kept.iter().all(|(_, restarts)| *restarts == 0),
        "kept TaskManagers did not restart: {kept:?}"
    );
    let status = suite
        .deployment("elastic")
        .and_then(|d| d.get("status").cloned())
        .unwrap_or_default();
    assert_eq!(text(&status, "/jobStatus/jobId"), job);
    assert_eq!(text(&status, "/jobStatus/state"), "RUNNING");
    // A lost TaskManager with tasks on it fails the job over within seconds.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        running_since(suite)?,
        running_before,
        "releasing an idle TaskManager does not restart the job"
    );

    // For comparison, the same change of parallelism by a redeploy (a spec change).
    let started = std::time::Instant::now();
    suite.patch(
        "flinkdep",
        "elastic",
        r#"{"spec":{"job":{"parallelism":2}}}"#,
    )?;
    let status = suite.runtime.block_on(wait_for(
        "the redeployed job running",
        STARTUP,
        async || {
            let status = suite.deployment("elastic")?.get("status")?.clone();
            (text(&status, "/jobStatus/jobId") != job
                && text(&status, "/jobStatus/state") == "RUNNING")
                .then_some(status)
        },
    ));
    let redeploy_downtime = started.elapsed();
    eprintln!(
        "rescale downtime (not every vertex RUNNING): in place up 1 -> {up}: {} ms, down {up} -> {down}: {} ms; redeploy: {} ms (job {})",
        up_downtime.as_millis(),
        down_downtime.as_millis(),
        redeploy_downtime.as_millis(),
        text(&status, "/jobStatus/jobId"),
    );
    assert!(
        up_downtime < redeploy_downtime,
        "in place ({up_downtime:?}) is quicker than a redeploy ({redeploy_downtime:?})"
    );
    memory_tuning_redeploys_with_right_sized_task_managers(suite, &rate_file, &status)?;
    suite.kubectl(&["delete", "flinkdep", "elastic", "--wait=false"])?;
    suite.runtime.block_on(wait_for(
        "elastic's pods and autoscaler state gone with it",
        Duration::from_secs(60),
        async || {
            (suite.labelled("", "pods", "elastic").is_empty()
                && suite
                    .get("", "v1", "configmaps", "autoscaler-elastic")
                    .is_none())
            .then_some(())
        },
    ));
    Ok(())
}

/// A session job is autoscaled as upstream's (FLIP-271): in place on its session cluster's
/// adaptive scheduler, under the same job id, with its state in a ConfigMap it owns and the
/// scaling in its own status and events.
fn a_busy_session_job_is_rescaled_in_place_on_its_session_cluster(
    suite: &Suite,
) -> Result<(), String> {
    let rate_file = suite.work.join("busy-rate");
    std::fs::write(&rate_file, "100").map_err(|e| e.to_string())?;
    let manifest = std::fs::read_to_string(fixture("session-autoscaled.yaml"))
        .map_err(|e| e.to_string())?
        .replace("RATE_FILE", &rate_file.display().to_string());
    suite.apply_manifest("session-autoscaled.yaml", &manifest)?;
    suite.wait_deployment("pool", "STABLE", None, STARTUP);
    let job = suite
        .runtime
        .block_on(wait_for("the session job running", STARTUP, async || {
            let status = session_job_status(suite, "busy")?;
            (text(&status, "/jobStatus/state") == "RUNNING")
                .then(|| text(&status, "/jobStatus/jobId"))
        }));
    // 1000 records/s at 2 ms each saturate one subtask.
    std::fs::write(&rate_file, "1000").map_err(|e| e.to_string())?;
    let (up, job_after_up, _) = watch_rescale(suite, "pool", &job, 1, Duration::from_secs(240))?;
    assert!(up > 1, "scaled up: {up}");
    assert_eq!(job_after_up, job, "an in-place rescale keeps the job");
    let status = session_job_status(suite, "busy").ok_or("no session job status")?;
    let scalings = status
        .pointer("/autoscaler/scalings")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    assert!(
        scalings.iter().any(|s| s.get("from") == Some(&json!(1))),
        "the scaling in the session job's status.autoscaler: {status:#}"
    );
    assert_eq!(
        text(&status, "/jobStatus/jobId"),
        job,
        "the session job still records its job"
    );
    let reasons = suite.event_reasons("busy");
    assert!(
        reasons.iter().any(|r| r == "Scaling"),
        "Scaling in {reasons:?}"
    );
    let state = suite
        .get("", "v1", "configmaps", "autoscaler-busy.sessionjob")
        .ok_or("no autoscaler-busy.sessionjob ConfigMap")?;
    assert_eq!(
        text(&state, "/metadata/ownerReferences/0/kind"),
        "FlinkSessionJob"
    );
    // The session cluster's TaskManagers are not the job's: neither scaled (its one
    // TaskManager of 4 slots has room) nor a TaskManager Deployment made after the job's name.
    let task_managers = task_manager_pods(suite, "pool");
    assert_eq!(task_managers.len(), 1, "{task_managers:?}");
    let deployments = suite.labelled("apps", "deployments", "pool");
    assert_eq!(
        deployments.len(),
        2,
        "a JobManager and a TaskManager Deployment: {deployments:?}"
    );
    assert!(
        suite.labelled("apps", "deployments", "busy").is_empty()
            && suite.labelled("", "pods", "busy").is_empty(),
        "nothing made for the session job itself"
    );
    suite.kubectl(&["delete", "flinksessionjob", "busy", "--wait=false"])?;
    suite.runtime.block_on(wait_for(
        "the session job's autoscaler state gone with it",
        Duration::from_secs(60),
        async || {
            (session_job_status(suite, "busy").is_none()
                && suite
                    .get("", "v1", "configmaps", "autoscaler-busy.sessionjob")
                    .is_none())
            .then_some(())
        },
    ));
    suite.kubectl(&["delete", "flinkdep", "pool", "--wait=false"])?;
    suite.runtime.block_on(wait_for(
        "the session cluster's pods gone",
        Duration::from_secs(60),
        async || suite.labelled("", "pods", "pool").is_empty().then_some(()),
    ));
    Ok(())
}

/// Native mode (upstream's default): the autoscaler rescales in place through
/// `/resource-requirements` and the JobManager itself asks the API server for the TaskManager
/// pods the new slots need (no TaskManager Deployment to scale); after the scale-down Flink
/// releases the idle one.
fn a_native_in_place_rescale_gets_its_task_managers_from_the_job_manager(
    suite: &Suite,
) -> Result<(), String> {
    const CLUSTER: &str = "elastic-native";
    let rate_file = suite.work.join("elastic-native-rate");
    std::fs::write(&rate_file, "100").map_err(|e| e.to_string())?;
    let manifest = std::fs::read_to_string(fixture("autoscaled-native.yaml"))
        .map_err(|e| e.to_string())?
        .replace("RATE_FILE", &rate_file.display().to_string());
    suite.apply_manifest("autoscaled-native.yaml", &manifest)?;
    let status = suite.wait_deployment(CLUSTER, "STABLE", Some("RUNNING"), STARTUP);
    let job = text(&status, "/jobStatus/jobId");
    let before = task_manager_pods(suite, CLUSTER);
    assert_eq!(before.len(), 1, "one TaskManager to start with: {before:?}");
    assert!(
        suite.labelled("apps", "deployments", CLUSTER).len() == 1,
        "native mode has no TaskManager Deployment"
    );

    std::fs::write(&rate_file, "1000").map_err(|e| e.to_string())?;
    let (up, job_after_up, _) = watch_rescale(suite, CLUSTER, &job, 1, Duration::from_secs(240))?;
    assert!(up > 2, "scaled up beyond one TaskManager's 2 slots: {up}");
    assert_eq!(job_after_up, job, "an in-place rescale keeps the job");
    let needed = (up as usize).div_ceil(2);
    let after = suite.runtime.block_on(wait_for(
        "the JobManager's new TaskManager pods",
        Duration::from_secs(60),
        async || {
            let pods = task_manager_pods(suite, CLUSTER);
            (pods.len() >= needed).then_some(pods)
        },
    ));
    for (pod, _) in &before {
        assert!(
            after.iter().any(|(p, restarts)| p == pod && *restarts == 0),
            "TaskManager {pod} kept without a restart: {after:?}"
        );
    }
    let owners: Vec<String> = suite.server.with_store(|s| {
        let Some(rt) = s.resource_type("", "v1", "pods").cloned() else {
            return Vec::new();
        };
        after
            .iter()
            .filter_map(|(name, _)| s.get(&rt, Some("default"), name).ok())
            .map(|p| text(&p, "/metadata/ownerReferences/0/name"))
            .collect()
    });
    assert!(
        owners.iter().all(|o| o == CLUSTER),
        "every TaskManager pod is owned by the JobManager Deployment: {owners:?}"
    );

    std::fs::write(&rate_file, "50").map_err(|e| e.to_string())?;
    let (down, job_after_down, _) =
        watch_rescale(suite, CLUSTER, &job, up, Duration::from_secs(240))?;
    assert!(down < up, "scaled down from {up} to {down}");
    assert_eq!(job_after_down, job, "an in-place rescale keeps the job");
    let needed = (down as usize).div_ceil(2);
    suite.runtime.block_on(wait_for(
        "Flink releasing the idle TaskManager",
        Duration::from_secs(120),
        async || (task_manager_pods(suite, CLUSTER).len() == needed).then_some(()),
    ));
    suite.kubectl(&["delete", "flinkdep", CLUSTER, "--timeout=90s"])?;
    suite.wait_until_stopped(CLUSTER);
    Ok(())
}

/// Memory tuning on real Flink: with `memory.tuning.enabled` the next scale-up also sizes the
/// TaskManagers from what they were seen to use; TaskManager memory cannot change in place, so
/// the job is redeployed and its TaskManagers run the tuned process size (as Flink reports
/// it), smaller than the spec's 800Mi, at the new parallelism.
fn memory_tuning_redeploys_with_right_sized_task_managers(
    suite: &Suite,
    rate_file: &std::path::Path,
    status: &Value,
) -> Result<(), String> {
    let job = text(status, "/jobStatus/jobId");
    // Twice the observed use: the test's JVMs must not run out of metaspace after a restart.
    suite.patch(
        "flinkdep",
        "elastic",
        r#"{"spec":{"flinkConfiguration":{"job.autoscaler.memory.tuning.enabled":"true","job.autoscaler.memory.tuning.overhead":"1.0"}}}"#,
    )?;
    std::fs::write(rate_file, "1000").map_err(|e| e.to_string())?;
    let (job_after, tuned) = suite.runtime.block_on(wait_for(
        "the job redeployed onto TaskManagers with the tuned memory",
        Duration::from_secs(300),
        async || {
            let status = suite.deployment("elastic")?.get("status")?.clone();
            let now = text(&status, "/jobStatus/jobId");
            if now == job || text(&status, "/jobStatus/state") != "RUNNING" {
                return None;
            }
            // The redeployed JobManager has a new address.
            let client = suite.flink("elastic").ok()?;
            let running = client.task_managers().await.ok()?.taskmanagers;
            let sizes: Vec<u64> = running
                .iter()
                .filter_map(|t| t.memory_configuration.as_ref()?.total_process_memory)
                .collect();
            (!sizes.is_empty() && sizes.iter().all(|s| *s == sizes[0]) && sizes[0] != 800 << 20)
                .then_some((now, sizes[0]))
        },
    ));
    std::fs::write(rate_file, "50").map_err(|e| e.to_string())?;
    assert!(tuned < 800 << 20, "tuned to {tuned} bytes");
    let reasons = suite.event_reasons("elastic");
    assert!(
        reasons.iter().any(|r| r == "Configuration recommendation"),
        "{reasons:?}"
    );
    // The redeployed job takes the chosen parallelism too (restored in place once it runs:
    // Flink 2.x ignores the rendered parallelism overrides).
    let client = suite.flink("elastic")?;
    let id = JobId::parse(&job_after).map_err(|e| e.to_string())?;
    let parallelism = suite.runtime.block_on(wait_for(
        "the redeployed counter at the chosen parallelism",
        Duration::from_secs(120),
        async || {
            let details = client.job_details(&id).await.ok()?;
            let counter = details
                .vertices
                .iter()
                .find(|v| v.name.starts_with("count"))?;
            (counter.parallelism > 2).then_some(counter.parallelism)
        },
    ));
    let status = suite
        .deployment("elastic")
        .and_then(|d| d.get("status").cloned())
        .unwrap_or_default();
    assert_eq!(
        text(&status, "/jobStatus/jobId"),
        job_after,
        "one redeploy: no churn from the recommendation moving with the usage"
    );
    eprintln!("memory tuning: TaskManagers 838860800 -> {tuned} bytes, counter at {parallelism}");
    Ok(())
}

/// A scrape of the operator's `/metrics` after the steps above (since the operator's last
/// restart): reconciles and their latency per kind, resources per state, the stateless
/// upgrade's duration, completed snapshots, the autoscaler's scalings and the scaling plugin's
/// calls, each with a value the steps must have produced.
fn the_metrics_show_what_the_afternoon_did(suite: &Suite) -> Result<(), String> {
    let address = *suite
        .ctx()
        .health
        .address
        .get()
        .ok_or("the operator serves no metrics")?;
    let text = suite.runtime.block_on(async {
        let response = reqwest::get(format!("http://{address}/metrics"))
            .await
            .map_err(|e| e.to_string())?;
        response.text().await.map_err(|e| e.to_string())
    })?;
    let value = |series: &str, labels: &[&str]| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(&format!("{series}{{")))
            .filter(|l| labels.iter().all(|label| l.contains(label)))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    for (series, labels, at_least) in [
        (
            "flink_operator_reconciles_total",
            &[r#"kind="FlinkDeployment""#, r#"outcome="success""#][..],
            10.0,
        ),
        (
            "flink_operator_reconcile_duration_seconds_count",
            &[r#"kind="FlinkStateSnapshot""#],
            1.0,
        ),
        (
            "flink_operator_lifecycle_transition_seconds_count",
            &[r#"kind="FlinkDeployment""#, r#"transition="Upgrade""#],
            1.0,
        ),
        (
            "flink_operator_snapshots_total",
            &[r#"snapshot_type="savepoint""#, r#"result="COMPLETED""#],
            1.0,
        ),
        (
            "flink_operator_autoscaler_scalings_total",
            &[r#"namespace="default""#, r#"outcome="applied""#],
            2.0,
        ),
        (
            "flink_operator_plugin_calls_total",
            &[r#"extension="scaling-policy""#],
            1.0,
        ),
    ] {
        let found = value(series, labels);
        assert!(
            found >= at_least,
            "{series} {labels:?} = {found}, expected at least {at_least}:\n{text}"
        );
    }
    assert!(
        text.lines().any(|l| l
            .starts_with(r#"flink_operator_resources{kind="FlinkDeployment",namespace="default""#)),
        "{text}"
    );
    Ok(())
}
