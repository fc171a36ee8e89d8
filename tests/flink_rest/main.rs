//! The `flink-rest` client against a real Flink 2.3 cluster on loopback, one cluster for the
//! whole suite (started here, stopped by process group when the suite ends).
//!
//! The steps build on each other like an operator's day: upload and run the stateful example
//! job, read its details and metrics, savepoint and checkpoint it, stop it with a savepoint,
//! restore a new job from that savepoint (proving its state survived), rescale that one in place.

use flink_operator_tests::flink_cluster::{ClusterOptions, FlinkCluster, FlinkInstall};
use flink_rest::{
    Aggregation, CheckpointKind, ClientConfig, FlinkClient, FlinkError, JarId, JarRunRequest,
    JobId, JobState, SavepointRequest, StopRequest, TriggerId,
};
use libtest_mimic::{Arguments, Failed, Trial};
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const COUNT_METRIC: &str = "count.runningCount";

#[derive(Default)]
struct Scenario {
    jar: Option<JarId>,
    job: Option<JobId>,
    count_vertex: Option<String>,
    source_vertex: Option<String>,
    first_savepoint: Option<String>,
    stop_savepoint: Option<String>,
    count_at_stop: Option<f64>,
    restored_job: Option<JobId>,
}

struct Suite {
    runtime: tokio::runtime::Runtime,
    client: FlinkClient,
    example_jar: PathBuf,
    scenario: Mutex<Scenario>,
}

type Step = fn(&Suite) -> Result<(), String>;

fn main() {
    let mut args = Arguments::from_args();
    // The steps share one cluster and one job: they run in order.
    args.test_threads = Some(1);
    let steps: Vec<(&str, Step)> = vec![
        (
            "cluster_reports_its_flink_version",
            cluster_reports_its_flink_version,
        ),
        (
            "unknown_job_is_not_found_with_flinks_own_message",
            unknown_job_is_not_found_with_flinks_own_message,
        ),
        (
            "unreachable_cluster_is_reported_as_unreachable_after_retries",
            unreachable_cluster_is_reported_as_unreachable_after_retries,
        ),
        (
            "uploaded_jar_runs_with_the_job_id_we_chose",
            uploaded_jar_runs_with_the_job_id_we_chose,
        ),
        (
            "resubmitting_the_same_job_id_is_refused_not_duplicated",
            resubmitting_the_same_job_id_is_refused_not_duplicated,
        ),
        (
            "job_details_show_vertices_and_the_keyed_edge",
            job_details_show_vertices_and_the_keyed_edge,
        ),
        (
            "metrics_are_polled_until_flink_reports_them",
            metrics_are_polled_until_flink_reports_them,
        ),
        (
            "savepoint_trigger_is_idempotent_and_completes_on_disk",
            savepoint_trigger_is_idempotent_and_completes_on_disk,
        ),
        (
            "a_native_format_savepoint_completes",
            a_native_format_savepoint_completes,
        ),
        (
            "manual_checkpoint_completes_and_is_counted",
            manual_checkpoint_completes_and_is_counted,
        ),
        (
            "stop_with_savepoint_finishes_the_job",
            stop_with_savepoint_finishes_the_job,
        ),
        (
            "job_restored_from_the_savepoint_continues_its_count",
            job_restored_from_the_savepoint_continues_its_count,
        ),
        (
            "rescale_in_place_keeps_the_job_running_with_the_same_id",
            rescale_in_place_keeps_the_job_running_with_the_same_id,
        ),
        ("exceptions_are_readable", exceptions_are_readable),
        ("cancel_ends_the_job", cancel_ends_the_job),
        (
            "an_empty_jar_runs_a_class_from_the_clusters_classpath",
            an_empty_jar_runs_a_class_from_the_clusters_classpath,
        ),
        (
            "savepoint_disposal_removes_its_files",
            savepoint_disposal_removes_its_files,
        ),
        ("deleted_jar_cannot_be_run", deleted_jar_cannot_be_run),
    ];
    if args.list {
        let trials = steps
            .into_iter()
            .map(|(name, _)| Trial::test(name, || Ok(())))
            .collect();
        libtest_mimic::run(&args, trials).exit();
    }

    let install = match FlinkInstall::ensure() {
        Ok(install) => install,
        Err(e) => {
            eprintln!("cannot install Flink: {e}");
            std::process::exit(2);
        }
    };
    let started = Instant::now();
    let mut cluster = match FlinkCluster::start(install.clone(), ClusterOptions::default()) {
        Ok(cluster) => cluster,
        Err(e) => {
            eprintln!("cannot start Flink: {e}");
            std::process::exit(2);
        }
    };
    eprintln!(
        "Flink started at {} in {:.1?}",
        cluster.rest_url,
        started.elapsed()
    );
    let suite = Arc::new(Suite {
        runtime: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime"),
        client: FlinkClient::new(&cluster.rest_url, ClientConfig::default()).expect("client"),
        example_jar: install.example_jar.clone(),
        scenario: Mutex::new(Scenario::default()),
    });
    let trials = steps
        .into_iter()
        .map(|(name, step)| {
            let suite = suite.clone();
            Trial::test(name, move || step(&suite).map_err(Failed::from))
        })
        .collect();
    let conclusion = libtest_mimic::run(&args, trials);
    if conclusion.has_failed() {
        eprintln!(
            "JobManager output (last lines):\n{}",
            cluster.tail("jobmanager")
        );
    }
    cluster.stop(Duration::from_secs(15));
    drop(cluster);
    conclusion.exit();
}

impl Suite {
    fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
        self.runtime.block_on(future)
    }

    fn scenario(&self) -> std::sync::MutexGuard<'_, Scenario> {
        self.scenario.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn job(&self) -> Result<JobId, String> {
        self.scenario()
            .job
            .clone()
            .ok_or_else(|| "no job: an earlier step failed".into())
    }

    async fn wait_for_state(
        &self,
        job: &JobId,
        wanted: JobState,
        timeout: Duration,
    ) -> Result<(), String> {
        let mut last = None;
        let reached = self
            .client
            .poll(timeout, Duration::from_millis(500), || async {
                let details = self.client.job_details(job).await?;
                Ok((details.state == wanted).then_some(()))
            })
            .await
            .map_err(|e| e.to_string())?;
        if reached.is_none() {
            last = self.client.job_details(job).await.ok().map(|d| d.state);
        }
        reached.ok_or_else(|| {
            format!("job {job} not {wanted:?} within {timeout:?}; last state {last:?}")
        })
    }

    /// The job's total count: the sum of the counter's `runningCount` gauge over subtasks.
    async fn running_count(&self, job: &JobId, vertex: &str) -> Result<f64, String> {
        let metrics = self
            .client
            .vertex_metrics_when_present(
                job,
                vertex,
                &[COUNT_METRIC],
                &[Aggregation::Sum],
                Duration::from_secs(60),
            )
            .await
            .map_err(|e| e.to_string())?;
        metrics[COUNT_METRIC].sum.ok_or_else(|| "no sum".into())
    }

    fn count_vertex(&self) -> Result<String, String> {
        self.scenario()
            .count_vertex
            .clone()
            .ok_or_else(|| "no vertex ids: an earlier step failed".into())
    }
}

fn check(condition: bool, message: impl FnOnce() -> String) -> Result<(), String> {
    if condition { Ok(()) } else { Err(message()) }
}

fn local_path(uri: &str) -> PathBuf {
    PathBuf::from(
        uri.trim_start_matches("file://")
            .trim_start_matches("file:"),
    )
}

fn cluster_reports_its_flink_version(suite: &Suite) -> Result<(), String> {
    let config = suite
        .block_on(suite.client.config())
        .map_err(|e| e.to_string())?;
    check(config.flink_version == "2.3.0", || {
        format!("version {}", config.flink_version)
    })
}

fn unknown_job_is_not_found_with_flinks_own_message(suite: &Suite) -> Result<(), String> {
    let unknown = JobId::from_u128(0xdead_beef);
    match suite.block_on(suite.client.job_details(&unknown)) {
        Err(FlinkError::NotFound { message, .. }) => check(
            message == format!("Could not find Flink job ({unknown})"),
            || format!("message should be Flink's own, without stack trace: {message:?}"),
        ),
        other => Err(format!("expected NotFound, got {other:?}")),
    }
}

fn unreachable_cluster_is_reported_as_unreachable_after_retries(
    suite: &Suite,
) -> Result<(), String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let config = ClientConfig {
        retries: 2,
        min_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(100),
        ..ClientConfig::default()
    };
    let client =
        FlinkClient::new(&format!("http://127.0.0.1:{port}"), config).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let result = suite.block_on(client.jobs_overview());
    check(
        matches!(&result, Err(FlinkError::Unreachable { .. })),
        || format!("got {result:?}"),
    )?;
    check(started.elapsed() < Duration::from_secs(5), || {
        format!("took {:?}", started.elapsed())
    })
}

fn uploaded_jar_runs_with_the_job_id_we_chose(suite: &Suite) -> Result<(), String> {
    let bytes = std::fs::read(&suite.example_jar).map_err(|e| e.to_string())?;
    let jar = suite
        .block_on(suite.client.upload_jar("stateful-counter.jar", bytes))
        .map_err(|e| e.to_string())?;
    let job = JobId::from_u128(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
    let request = JarRunRequest {
        program_args_list: ["--rate", "400", "--cost-micros", "200"]
            .map(String::from)
            .to_vec(),
        parallelism: Some(2),
        job_id: Some(job.clone()),
        ..JarRunRequest::default()
    };
    let started = suite
        .block_on(suite.client.run_jar(&jar, &request))
        .map_err(|e| e.to_string())?;
    check(started == job, || {
        format!("Flink started {started}, we asked for {job}")
    })?;
    suite.block_on(suite.wait_for_state(&job, JobState::Running, Duration::from_secs(60)))?;
    let mut scenario = suite.scenario();
    scenario.jar = Some(jar);
    scenario.job = Some(job);
    Ok(())
}

fn resubmitting_the_same_job_id_is_refused_not_duplicated(suite: &Suite) -> Result<(), String> {
    let job = suite.job()?;
    let jar = suite.scenario().jar.clone().ok_or("no jar")?;
    let request = JarRunRequest {
        job_id: Some(job.clone()),
        ..JarRunRequest::default()
    };
    let result = suite.block_on(suite.client.run_jar(&jar, &request));
    check(matches!(result, Err(FlinkError::Refused { .. })), || {
        format!("second submission: {result:?}")
    })?;
    let overview = suite
        .block_on(suite.client.jobs_overview())
        .map_err(|e| e.to_string())?;
    let copies = overview
        .jobs
        .iter()
        .filter(|j| j.jid == job.as_str())
        .count();
    check(copies == 1, || format!("{copies} jobs with id {job}"))
}

fn job_details_show_vertices_and_the_keyed_edge(suite: &Suite) -> Result<(), String> {
    let job = suite.job()?;
    let details = suite
        .block_on(suite.client.job_details(&job))
        .map_err(|e| e.to_string())?;
    check(details.vertices.len() == 2, || {
        format!("vertices: {:?}", details.vertices)
    })?;
    check(details.vertices.iter().all(|v| v.parallelism == 2), || {
        format!("{:?}", details.vertices)
    })?;
    let source = details
        .vertices
        .iter()
        .find(|v| v.name.starts_with("Source: numbers"))
        .ok_or("no source vertex")?;
    let count = details
        .vertices
        .iter()
        .find(|v| v.name.starts_with("count"))
        .ok_or("no count vertex")?;
    let edges = details.edges();
    check(
        edges == vec![(source.id.clone(), count.id.clone(), "HASH".to_string())],
        || format!("edges: {edges:?}"),
    )?;
    let mut scenario = suite.scenario();
    scenario.source_vertex = Some(source.id.clone());
    scenario.count_vertex = Some(count.id.clone());
    Ok(())
}

fn metrics_are_polled_until_flink_reports_them(suite: &Suite) -> Result<(), String> {
    let job = suite.job()?;
    let vertex = suite.count_vertex()?;
    let names = [COUNT_METRIC, "busyTimeMsPerSecond", "numRecordsInPerSecond"];
    let vertex_metrics = suite
        .block_on(suite.client.vertex_metrics_when_present(
            &job,
            &vertex,
            &names,
            &[Aggregation::Sum, Aggregation::Max],
            Duration::from_secs(60),
        ))
        .map_err(|e| e.to_string())?;
    check(
        names.iter().all(|n| vertex_metrics.contains_key(*n)),
        || format!("{vertex_metrics:?}"),
    )?;
    check(
        vertex_metrics[COUNT_METRIC].sum.unwrap_or(0.0) > 0.0,
        || format!("{vertex_metrics:?}"),
    )?;
    let job_metrics = suite
        .block_on(suite.client.job_metrics_when_present(
            &job,
            &["numRestarts"],
            Duration::from_secs(30),
        ))
        .map_err(|e| e.to_string())?;
    check(job_metrics["numRestarts"] == "0", || {
        format!("{job_metrics:?}")
    })?;
    // The TaskManager metrics the autoscaler's memory pressure check reads exist under the
    // names it asks for (GC time share and heap usage of the worst TaskManager).
    let tm = suite
        .block_on(suite.client.taskmanager_metrics(
            &flink_autoscaler::collect::TASK_MANAGER_QUERY,
            &[Aggregation::Max],
        ))
        .map_err(|e| e.to_string())?;
    let values = tm
        .iter()
        .map(|m| {
            let aggregated = flink_autoscaler::collect::Aggregated {
                max: m.max,
                ..Default::default()
            };
            (m.id.clone(), aggregated)
        })
        .collect();
    let (memory, notes) = flink_autoscaler::collect::task_manager_sample(&values);
    check(
        notes.is_empty()
            && (0.0..=1.0).contains(&memory.gc_pressure)
            && memory.heap_usage > 0.0
            && memory.heap_usage < 1.0,
        || format!("TaskManager metrics {tm:?}: {memory:?} {notes:?}"),
    )?;
    let jm = suite
        .block_on(suite.client.jobmanager_metrics(&["taskSlotsTotal"]))
        .map_err(|e| e.to_string())?;
    check(
        jm.first().and_then(|m| m.value.as_deref()) == Some("4"),
        || format!("JobManager metrics {jm:?}"),
    )?;
    // A metric that does not exist is reported as missing, not invented.
    let missing = suite.block_on(suite.client.vertex_metrics_when_present(
        &job,
        &vertex,
        &["noSuchMetric"],
        &[Aggregation::Sum],
        Duration::from_secs(2),
    ));
    check(
        matches!(&missing, Err(FlinkError::MetricsUnavailable { missing, .. }) if missing == &vec!["noSuchMetric".to_string()]),
        || format!("{missing:?}"),
    )
}

fn savepoint_trigger_is_idempotent_and_completes_on_disk(suite: &Suite) -> Result<(), String> {
    let job = suite.job()?;
    let trigger = TriggerId::from_u128(0x5a5a);
    let request = SavepointRequest {
        trigger_id: Some(trigger.clone()),
        ..SavepointRequest::default()
    };
    let first = suite
        .block_on(suite.client.trigger_savepoint(&job, &request))
        .map_err(|e| e.to_string())?;
    let again = suite
        .block_on(suite.client.trigger_savepoint(&job, &request))
        .map_err(|e| e.to_string())?;
    check(first == trigger && again == trigger, || {
        format!("trigger ids {first} and {again}, asked for {trigger}")
    })?;
    let location = suite
        .block_on(
            suite
                .client
                .await_savepoint(&job, &trigger, Duration::from_secs(60)),
        )
        .map_err(|e| e.to_string())?
        .map_err(|cause| format!("savepoint failed: {cause}"))?;
    check(local_path(&location).join("_metadata").is_file(), || {
        format!("no _metadata under {location}")
    })?;
    suite.scenario().first_savepoint = Some(location);
    Ok(())
}

/// `kubernetes.operator.savepoint.format.type: NATIVE` and a FlinkStateSnapshot's
/// `formatType: NATIVE` ask Flink for this.
fn a_native_format_savepoint_completes(suite: &Suite) -> Result<(), String> {
    let job = suite.job()?;
    let trigger = TriggerId::from_u128(0x4a7e);
    let request = SavepointRequest {
        trigger_id: Some(trigger.clone()),
        format_type: flink_rest::SavepointFormat::Native,
        ..SavepointRequest::default()
    };
    suite
        .block_on(suite.client.trigger_savepoint(&job, &request))
        .map_err(|e| e.to_string())?;
    let location = suite
        .block_on(
            suite
                .client
                .await_savepoint(&job, &trigger, Duration::from_secs(60)),
        )
        .map_err(|e| e.to_string())?
        .map_err(|cause| format!("native savepoint failed: {cause}"))?;
    check(local_path(&location).join("_metadata").is_file(), || {
        format!("no _metadata under {location}")
    })
}

fn manual_checkpoint_completes_and_is_counted(suite: &Suite) -> Result<(), String> {
    let job = suite.job()?;
    let trigger = suite
        .block_on(suite.client.trigger_checkpoint(
            &job,
            CheckpointKind::Full,
            Some(TriggerId::from_u128(0xc4ec)),
        ))
        .map_err(|e| e.to_string())?;
    let id = suite
        .block_on(suite.client.await_operation(
            "manual checkpoint",
            Duration::from_secs(60),
            || suite.client.checkpoint_status(&job, &trigger),
        ))
        .map_err(|e| e.to_string())?
        .map_err(|cause| format!("checkpoint failed: {cause}"))?;
    let stats = suite
        .block_on(suite.client.checkpoint_statistics(&job))
        .map_err(|e| e.to_string())?;
    check(stats.counts.completed >= 1, || {
        format!("{:?}", stats.counts)
    })?;
    let latest = stats.latest.completed.map(|c| c.id).unwrap_or_default();
    check(latest >= id, || {
        format!("latest completed {latest} < manual checkpoint {id}")
    })
}

/// Runs on the restored job: an in-place rescale restarts tasks from the latest checkpoint, so
/// the count is compared before any rescale, where the gauge only ever grows.
fn rescale_in_place_keeps_the_job_running_with_the_same_id(suite: &Suite) -> Result<(), String> {
    let job = suite
        .scenario()
        .restored_job
        .clone()
        .ok_or("no restored job")?;
    let mut requirements = suite
        .block_on(suite.client.resource_requirements(&job))
        .map_err(|e| e.to_string())?;
    check(requirements.len() == 2, || format!("{requirements:?}"))?;
    for vertex in requirements.values_mut() {
        vertex.parallelism.upper_bound = 3;
    }
    suite
        .block_on(suite.client.set_resource_requirements(&job, &requirements))
        .map_err(|e| e.to_string())?;
    let rescaled = suite
        .block_on(suite.client.poll(
            Duration::from_secs(60),
            Duration::from_millis(500),
            || async {
                let details = suite.client.job_details(&job).await?;
                Ok((details.state == JobState::Running
                    && details.vertices.iter().all(|v| v.parallelism == 3))
                .then_some(details))
            },
        ))
        .map_err(|e| e.to_string())?;
    let details = rescaled.ok_or("vertices did not reach parallelism 3")?;
    check(details.jid == job.as_str(), || "job id changed".into())?;
    // The slots the job now holds (slot sharing: as many as its widest vertex).
    let task_managers = suite
        .block_on(suite.client.task_managers())
        .map_err(|e| e.to_string())?
        .taskmanagers;
    let used: u32 = task_managers
        .iter()
        .map(|t| t.slots_number - t.free_slots)
        .sum();
    check(!task_managers.is_empty() && used == 3, || {
        format!("slots in use {used} of {task_managers:?}")
    })?;
    // Each TaskManager says how much memory its process was given (memory tuning compares it
    // with what it chose).
    check(
        task_managers.iter().all(|t| {
            t.memory_configuration
                .as_ref()
                .and_then(|m| m.total_process_memory)
                .is_some_and(|bytes| bytes > 0)
        }),
        || format!("memory configuration of {task_managers:?}"),
    )?;
    let after = suite
        .block_on(suite.client.resource_requirements(&job))
        .map_err(|e| e.to_string())?;
    check(after == requirements, || {
        format!("requirements read back {after:?}")
    })
}

fn stop_with_savepoint_finishes_the_job(suite: &Suite) -> Result<(), String> {
    let job = suite.job()?;
    let vertex = suite.count_vertex()?;
    let count = suite.block_on(suite.running_count(&job, &vertex))?;
    let request = StopRequest {
        trigger_id: Some(TriggerId::from_u128(0x5709)),
        ..StopRequest::default()
    };
    let trigger = suite
        .block_on(suite.client.stop_with_savepoint(&job, &request))
        .map_err(|e| e.to_string())?;
    let location = suite
        .block_on(
            suite
                .client
                .await_savepoint(&job, &trigger, Duration::from_secs(90)),
        )
        .map_err(|e| e.to_string())?
        .map_err(|cause| format!("stop-with-savepoint failed: {cause}"))?;
    suite.block_on(suite.wait_for_state(&job, JobState::Finished, Duration::from_secs(30)))?;
    check(local_path(&location).join("_metadata").is_file(), || {
        format!("no _metadata under {location}")
    })?;
    let mut scenario = suite.scenario();
    scenario.stop_savepoint = Some(location);
    scenario.count_at_stop = Some(count);
    Ok(())
}

fn job_restored_from_the_savepoint_continues_its_count(suite: &Suite) -> Result<(), String> {
    let (jar, savepoint, count_at_stop) = {
        let s = suite.scenario();
        (s.jar.clone(), s.stop_savepoint.clone(), s.count_at_stop)
    };
    let (jar, savepoint, count_at_stop) = (
        jar.ok_or("no jar")?,
        savepoint.ok_or("no savepoint")?,
        count_at_stop.ok_or("no count")?,
    );
    check(count_at_stop > 100.0, || {
        format!("count at stop only {count_at_stop}")
    })?;
    let job = JobId::from_u128(0x0123_4567_89ab_cdef_0011_2233_4455_7777);
    // One record a second: a job that lost its state could not reach the old count in time.
    let request = JarRunRequest {
        program_args_list: ["--rate", "1"].map(String::from).to_vec(),
        parallelism: Some(2),
        job_id: Some(job.clone()),
        savepoint_path: Some(savepoint.clone()),
        ..JarRunRequest::default()
    };
    suite
        .block_on(suite.client.run_jar(&jar, &request))
        .map_err(|e| e.to_string())?;
    suite.block_on(suite.wait_for_state(&job, JobState::Running, Duration::from_secs(60)))?;
    let stats = suite
        .block_on(suite.client.poll(
            Duration::from_secs(30),
            Duration::from_millis(500),
            || async {
                let stats = suite.client.checkpoint_statistics(&job).await?;
                Ok(stats.latest.restored.clone().map(|_| stats))
            },
        ))
        .map_err(|e| e.to_string())?
        .ok_or("checkpoint statistics show no restore")?;
    let restored = stats.latest.restored.ok_or("no restore")?;
    check(restored.is_savepoint, || format!("{restored:?}"))?;
    let restored_path = restored.external_path.unwrap_or_default();
    check(local_path(&restored_path) == local_path(&savepoint), || {
        format!("restored {restored_path}, savepoint {savepoint}")
    })?;
    let details = suite
        .block_on(suite.client.job_details(&job))
        .map_err(|e| e.to_string())?;
    let vertex = details
        .vertices
        .iter()
        .find(|v| v.name.starts_with("count"))
        .ok_or("no count vertex")?
        .id
        .clone();
    let count = suite.block_on(suite.running_count(&job, &vertex))?;
    check(count >= count_at_stop, || {
        format!("count {count} after restore, {count_at_stop} at stop: state lost")
    })?;
    suite.scenario().restored_job = Some(job);
    Ok(())
}

fn exceptions_are_readable(suite: &Suite) -> Result<(), String> {
    let job = suite
        .scenario()
        .restored_job
        .clone()
        .ok_or("no restored job")?;
    let exceptions = suite
        .block_on(suite.client.job_exceptions(&job))
        .map_err(|e| e.to_string())?;
    check(exceptions.latest().is_none(), || {
        format!("a healthy job has no exceptions: {exceptions:?}")
    })
}

fn cancel_ends_the_job(suite: &Suite) -> Result<(), String> {
    let job = suite
        .scenario()
        .restored_job
        .clone()
        .ok_or("no restored job")?;
    suite
        .block_on(suite.client.cancel_job(&job))
        .map_err(|e| e.to_string())?;
    suite.block_on(suite.wait_for_state(&job, JobState::Canceled, Duration::from_secs(30)))
}

/// A session job without `jarURI` (upstream's jar-less job): the operator uploads a jar holding
/// only a manifest and names the entry class, which Flink loads from the classpath the job's
/// configuration gives (here `pipeline.classpaths`; a cluster's `lib/` serves the same way).
fn an_empty_jar_runs_a_class_from_the_clusters_classpath(suite: &Suite) -> Result<(), String> {
    let jar = suite
        .block_on(
            suite
                .client
                .upload_jar("empty.jar", flink_rest::empty_jar()),
        )
        .map_err(|e| e.to_string())?;
    let job = JobId::from_u128(0x0e3b_7a11_0000_0000_0000_0000_0000_00e1);
    let request = JarRunRequest {
        entry_class: Some("org.flinkoperator.examples.StatefulCounterJob".into()),
        program_args_list: ["--rate", "10"].map(String::from).to_vec(),
        parallelism: Some(1),
        job_id: Some(job.clone()),
        flink_configuration: [(
            "pipeline.classpaths".to_string(),
            format!("file://{}", suite.example_jar.display()),
        )]
        .into(),
        ..JarRunRequest::default()
    };
    let started = suite
        .block_on(suite.client.run_jar(&jar, &request))
        .map_err(|e| e.to_string())?;
    check(started == job, || format!("Flink started {started}"))?;
    suite.block_on(suite.wait_for_state(&job, JobState::Running, Duration::from_secs(60)))?;
    suite
        .block_on(suite.client.cancel_job(&job))
        .map_err(|e| e.to_string())?;
    suite.block_on(suite.wait_for_state(&job, JobState::Canceled, Duration::from_secs(30)))?;
    let _ = suite.block_on(suite.client.delete_jar(&jar));
    Ok(())
}

fn savepoint_disposal_removes_its_files(suite: &Suite) -> Result<(), String> {
    let savepoint = suite
        .scenario()
        .first_savepoint
        .clone()
        .ok_or("no savepoint")?;
    let trigger = suite
        .block_on(suite.client.dispose_savepoint(&savepoint))
        .map_err(|e| e.to_string())?;
    suite
        .block_on(suite.client.await_operation(
            "savepoint disposal",
            Duration::from_secs(30),
            || suite.client.disposal_status(&trigger),
        ))
        .map_err(|e| e.to_string())?
        .map_err(|cause| format!("disposal failed: {cause}"))?;
    check(!local_path(&savepoint).exists(), || {
        format!("{savepoint} still exists")
    })
}

fn deleted_jar_cannot_be_run(suite: &Suite) -> Result<(), String> {
    let jar = suite.scenario().jar.clone().ok_or("no jar")?;
    suite
        .block_on(suite.client.delete_jar(&jar))
        .map_err(|e| e.to_string())?;
    let result = suite.block_on(suite.client.run_jar(&jar, &JarRunRequest::default()));
    check(
        matches!(
            result,
            Err(FlinkError::NotFound { .. }) | Err(FlinkError::Refused { .. })
        ),
        || format!("{result:?}"),
    )
}
