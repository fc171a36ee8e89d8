//! The Flink configuration a cluster runs with, and its file in the version's format.
//!
//! Layers, later wins: the operator's defaults, the spec's `flinkConfiguration`, then what the
//! operator owns (cluster id, addresses, ports, memory and CPU from `resource(s)`, the job's
//! jar, class, arguments and fixed id, the path to restore from). Upstream does the same in
//! `FlinkConfigBuilder`; owning a key means a user's value for it is replaced, not merged.

use super::resources::{cpu_text, flink_memory_text, memory_bytes};
use super::{BLOB_PORT, REST_PORT, RPC_PORT, RenderError, RenderInput, TASKMANAGER_RPC_PORT};
use flink_api::FlinkVersion;
use flink_api::config::{ConfigFile, list_value, options};
use flink_api::deployment::KubernetesDeploymentMode;
use std::collections::BTreeMap;

/// The configuration file Flink reads: `config.yaml` from 2.0 on, `flink-conf.yaml` before.
pub fn config_file_name(version: FlinkVersion) -> &'static str {
    if version.is_2x() {
        "config.yaml"
    } else {
        "flink-conf.yaml"
    }
}

/// The format of the version's file.
pub fn config_file(version: FlinkVersion) -> ConfigFile {
    if version.is_2x() {
        ConfigFile::Yaml
    } else {
        ConfigFile::Legacy
    }
}

/// The file's text (`flink_api::config::config_file_text`); an entry the file cannot hold as
/// it is, whatever its source (defaults, the spec, a path Flink reported), is refused.
pub fn config_file_text(
    version: FlinkVersion,
    config: &BTreeMap<String, String>,
) -> Result<String, RenderError> {
    flink_api::config::config_file_text(config, config_file(version)).map_err(|(key, problem)| {
        RenderError::new(
            &format!("flinkConfiguration.{}", key.escape_debug()),
            problem,
        )
    })
}

/// The effective flat configuration of the cluster.
pub fn flink_config(input: &RenderInput) -> Result<BTreeMap<String, String>, RenderError> {
    let spec = input.spec;
    let version = input.version();
    let mode = input.mode();
    let mut config = input.defaults.clone();
    config.extend(spec.configuration().flat());
    let mut set = |key: &str, value: String| {
        config.insert(key.to_string(), value);
    };

    set("kubernetes.cluster-id", input.name.to_string());
    set("kubernetes.namespace", input.namespace.to_string());
    set(
        "jobmanager.rpc.address",
        format!("{}.{}", input.name, input.namespace),
    );
    set("jobmanager.rpc.port", RPC_PORT.to_string());
    set("blob.server.port", BLOB_PORT.to_string());
    set("rest.port", REST_PORT.to_string());
    let image_key = if version >= FlinkVersion::V1_20 {
        "kubernetes.container.image.ref"
    } else {
        "kubernetes.container.image"
    };
    set(image_key, image(input));
    if let Some(policy) = &spec.image_pull_policy {
        set("kubernetes.container.image.pull-policy", policy.clone());
    }
    if let Some(account) = &spec.service_account {
        set("kubernetes.service-account", account.clone());
    }
    let jm_replicas = spec.job_manager.as_ref().map_or(1, |jm| jm.replicas);
    set("kubernetes.jobmanager.replicas", jm_replicas.to_string());

    let cpu_suffix = if version >= FlinkVersion::V1_17 {
        ".amount"
    } else {
        ""
    };
    if let Some(jm) = &spec.job_manager {
        let (memory, cpu) = component_resources(
            jm.resource.as_ref(),
            jm.resources.as_ref(),
            "spec.jobManager",
        )?;
        if let Some(bytes) = memory {
            set(options::JM_PROCESS_MEMORY.key, flink_memory_text(bytes));
        }
        if let Some(cpu) = cpu {
            set(
                &format!("kubernetes.jobmanager.cpu{cpu_suffix}"),
                cpu_text(cpu),
            );
        }
    }
    if let Some(tm) = &spec.task_manager {
        let (memory, cpu) = component_resources(
            tm.resource.as_ref(),
            tm.resources.as_ref(),
            "spec.taskManager",
        )?;
        if let Some(bytes) = memory {
            set(options::TM_PROCESS_MEMORY.key, flink_memory_text(bytes));
        }
        if let Some(cpu) = cpu {
            set(
                &format!("kubernetes.taskmanager.cpu{cpu_suffix}"),
                cpu_text(cpu),
            );
        }
    }

    // A fixed TaskManager RPC port in both modes: the TaskManager Deployment declares it, and
    // Flink's native ResourceManager refuses to create TaskManager pods without one (its
    // client-side descriptor sets it as we do here).
    set("taskmanager.rpc.port", TASKMANAGER_RPC_PORT.to_string());
    match mode {
        KubernetesDeploymentMode::Standalone => {}
        KubernetesDeploymentMode::Native => {
            set(
                "execution.target",
                if spec.is_application() {
                    "kubernetes-application"
                } else {
                    "kubernetes-session"
                }
                .into(),
            );
            set(
                "kubernetes.pod-template-file.taskmanager",
                format!(
                    "{}/{}",
                    super::CONF_DIR,
                    super::pod::NATIVE_TM_TEMPLATE_FILE
                ),
            );
        }
    }

    if let Some(job) = &spec.job {
        if let Some(parallelism) = job.parallelism {
            set(options::PARALLELISM_DEFAULT.key, parallelism.to_string());
        }
        if let Some(jar) = &job.jar_uri {
            set("pipeline.jars", jar.clone());
        }
        if let Some(class) = &job.entry_class {
            set("$internal.application.main", class.clone());
        }
        if !job.args.is_empty() {
            set(
                "$internal.application.program-args",
                list_value(&job.args, config_file(version)),
            );
        }
        if let Some(id) = input.job_id {
            set("$internal.pipeline.job-id", id.to_string());
        }
        // The JobManager outlives its job, so the operator can read a finished or cancelled
        // job's savepoint and checkpoints (upstream does the same).
        set("execution.shutdown-on-application-finish", "false".into());
        set(
            "execution.submit-failed-job-on-application-error",
            "true".into(),
        );
        let (path_key, ignore_key) = if version.is_2x() {
            (
                "execution.state-recovery.path",
                "execution.state-recovery.ignore-unclaimed-state",
            )
        } else {
            (
                "execution.savepoint.path",
                "execution.savepoint.ignore-unclaimed-state",
            )
        };
        retain_checkpoints(&mut config, job.upgrade_mode);
        for key in options::SAVEPOINT_PATH.all_keys() {
            config.remove(key);
        }
        if let Some(path) = input.restore_from {
            config.insert(path_key.into(), path.into());
        }
        if job.allow_non_restored_state == Some(true) {
            config.insert(ignore_key.into(), "true".into());
        }
        autoscaled(&mut config, input.autoscaler_overrides);
    }
    // Tuned TaskManager memory replaces the user's sizing (the pod's memory follows).
    if let Some(tuned) = input.autoscaler_memory {
        for key in &tuned.remove {
            config.remove(key);
        }
        config.extend(tuned.set.clone());
    }
    Ok(config)
}

/// A cancelled job's checkpoints must survive the cancel for a last-state upgrade, restart or
/// rollback (and for savepoint mode's fallback to the latest checkpoint): stateful jobs retain
/// them (savepoint mode unless the user chose otherwise). Application clusters and session
/// job submissions alike.
pub fn retain_checkpoints(config: &mut BTreeMap<String, String>, mode: flink_api::UpgradeMode) {
    let key = options::CHECKPOINT_RETENTION.key;
    match mode {
        flink_api::UpgradeMode::LastState => {
            config.insert(key.into(), "RETAIN_ON_CANCELLATION".into());
        }
        flink_api::UpgradeMode::Savepoint => {
            config
                .entry(key.into())
                .or_insert_with(|| "RETAIN_ON_CANCELLATION".into());
        }
        flink_api::UpgradeMode::Stateless => {}
    }
}

/// An autoscaled job runs the adaptive scheduler unless the user chose a scheduler (so a
/// rescale happens in place), and a deploy keeps the parallelism the autoscaler chose.
fn autoscaled(config: &mut BTreeMap<String, String>, overrides: Option<&BTreeMap<String, u32>>) {
    let enabled = flink_api::config::options::AUTOSCALER_ENABLED.flag_in_flat(config, false);
    if !enabled {
        return;
    }
    config
        .entry(options::SCHEDULER.key.into())
        .or_insert_with(|| "adaptive".into());
    let Some(overrides) = overrides.filter(|o| !o.is_empty()) else {
        return;
    };
    // The user's own overrides stay for vertices the autoscaler has not scaled.
    let key = options::PARALLELISM_OVERRIDES.key;
    let mut merged = parallelism_overrides(config.get(key));
    merged.extend(overrides.iter().map(|(v, p)| (v.clone(), *p)));
    config.insert(key.into(), parallelism_overrides_text(&merged));
}

/// Overrides in `pipeline.jobvertex-parallelism-overrides`' form: `vertex:parallelism,...`.
pub fn parallelism_overrides_text(overrides: &BTreeMap<String, u32>) -> String {
    overrides
        .iter()
        .map(|(v, p)| format!("{v}:{p}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `pipeline.jobvertex-parallelism-overrides` (`vertex:parallelism,...`); entries that do not
/// parse are left out.
pub fn parallelism_overrides(text: Option<&String>) -> BTreeMap<String, u32> {
    text.map(String::as_str)
        .unwrap_or("")
        .split(',')
        .filter_map(|entry| {
            let (vertex, parallelism) = entry.split_once(':')?;
            Some((vertex.trim().to_string(), parallelism.trim().parse().ok()?))
        })
        .collect()
}

pub(super) fn image(input: &RenderInput) -> String {
    input
        .spec
        .image
        .clone()
        .unwrap_or_else(|| super::DEFAULT_IMAGE.to_string())
}

/// Process memory (bytes) and CPU (cores) of a component: `resource` (deprecated) or the
/// memory/CPU request (else limit) of `resources`.
pub(super) fn component_resources(
    resource: Option<&flink_api::deployment::Resource>,
    resources: Option<&k8s_openapi::api::core::v1::ResourceRequirements>,
    prefix: &str,
) -> Result<(Option<u64>, Option<f64>), RenderError> {
    if let Some(resources) = resources {
        let pick = |name: &str| {
            resources
                .requests
                .as_ref()
                .and_then(|r| r.get(name))
                .map(|q| ("requests", q))
                .or_else(|| {
                    resources
                        .limits
                        .as_ref()
                        .and_then(|l| l.get(name))
                        .map(|q| ("limits", q))
                })
        };
        let memory = match pick("memory") {
            Some((side, q)) => Some(memory_bytes(
                &q.0,
                &format!("{prefix}.resources.{side}.memory"),
            )?),
            None => None,
        };
        let cpu = match pick("cpu") {
            Some((side, q)) => Some(
                flink_api::quantity::parse_cpu(&q.0)
                    .map_err(|e| RenderError::new(&format!("{prefix}.resources.{side}.cpu"), e))?,
            ),
            None => None,
        };
        return Ok((memory, cpu));
    }
    match resource {
        Some(resource) => {
            let memory = match &resource.memory {
                Some(text) => Some(memory_bytes(text, &format!("{prefix}.resource.memory"))?),
                None => None,
            };
            Ok((memory, resource.cpu))
        }
        None => Ok((None, None)),
    }
}
