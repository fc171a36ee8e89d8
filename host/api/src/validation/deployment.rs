//! Rules for FlinkDeployment specs (and the template of a FlinkBlueGreenDeployment).

use super::{FieldError, at, check_name};
use crate::FlinkConfiguration;
use crate::blue_green::FlinkBlueGreenDeployment;
use crate::common::JobSpec;
use crate::config::{ConfigFile, ConfigOption, file_entry_problem, ha_enabled, options};
use crate::deployment::{FlinkDeployment, FlinkDeploymentSpec, FlinkVersion, Resource};
use crate::pod_template::PodTemplate;
use crate::quantity::{parse_cpu, parse_flink_duration, parse_memory};
use k8s_openapi::api::core::v1::ResourceRequirements;

/// Upstream appends `-taskmanager` and more to the name; it must stay a valid Service name.
const MAX_DEPLOYMENT_NAME: usize = 45;
/// The log configuration files Flink reads (`spec.logConfiguration`'s keys, and the operator
/// ConfigMap's defaults of them).
pub const LOG_CONFIG_FILES: [&str; 2] = ["log4j-console.properties", "logback-console.xml"];

pub fn deployment(resource: &FlinkDeployment) -> Vec<FieldError> {
    let mut errors = Vec::new();
    check_name(
        resource.metadata.name.as_deref(),
        MAX_DEPLOYMENT_NAME,
        &mut errors,
    );
    errors.extend(deployment_spec(&resource.spec, "spec"));
    errors
}

pub fn blue_green(resource: &FlinkBlueGreenDeployment) -> Vec<FieldError> {
    let mut errors = Vec::new();
    // The children are `<name>-blue` and `<name>-green`, FlinkDeployments themselves.
    check_name(
        resource.metadata.name.as_deref(),
        MAX_DEPLOYMENT_NAME - "-green".len(),
        &mut errors,
    );
    if let Err(settings) = crate::blue_green::BlueGreenSettings::read(&resource.spec.configuration)
    {
        errors.extend(settings);
    }
    if let Some(ingress) = &resource.spec.ingress {
        errors.extend(ingress_rules(ingress, "spec.ingress"));
    }
    if resource.spec.template.spec.job.is_none() {
        errors.push(FieldError::new(
            "spec.template.spec.job",
            "is required: blue/green switches a job between two clusters; add a job with its jarURI",
        ));
    }
    errors.extend(deployment_spec(
        &resource.spec.template.spec,
        "spec.template.spec",
    ));
    errors
}

/// Every rule on a FlinkDeployment spec; `prefix` is where the spec sits in the document.
pub fn deployment_spec(spec: &FlinkDeploymentSpec, prefix: &str) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let config = spec.configuration();
    let conf_path = at(prefix, "flinkConfiguration");

    match spec.flink_version {
        None => errors.push(FieldError::new(
            &at(prefix, "flinkVersion"),
            "is required; set the Flink version of your image, e.g. `v2_2`",
        )),
        Some(v) if !v.is_supported() => errors.push(FieldError::new(
            &at(prefix, "flinkVersion"),
            format!(
                "{} is no longer supported, got {}; use {} or later",
                v.as_str(),
                v.as_str(),
                FlinkVersion::OLDEST_SUPPORTED.as_str()
            ),
        )),
        Some(_) => {}
    }

    // Flink 2 when the version is missing (reported above), as rendering assumes.
    let file = match spec.flink_version {
        Some(version) if !version.is_2x() => ConfigFile::Legacy,
        _ => ConfigFile::Yaml,
    };
    configuration(&config, &conf_path, file, &mut errors);
    if let Some(job) = &spec.job {
        job_spec(job, &config, &at(prefix, "job"), &conf_path, &mut errors);
        for (i, arg) in job.args.iter().enumerate() {
            if file == ConfigFile::Legacy && arg.contains('#') {
                errors.push(FieldError::new(
                    &format!("{}.args[{i}]", at(prefix, "job")),
                    "holds '#', where Flink 1.x's flink-conf.yaml (which carries the arguments) ends a value; remove it or use Flink 2",
                ));
            }
        }
    }

    let jm = spec.job_manager.clone().unwrap_or_default();
    let jm_path = at(prefix, "jobManager");
    if jm.replicas < 1 {
        errors.push(FieldError::new(
            &format!("{jm_path}.replicas"),
            format!("must be at least 1, got {}", jm.replicas),
        ));
    } else if jm.replicas > 1 && !ha_enabled(&config) {
        errors.push(FieldError::new(
            &format!("{jm_path}.replicas"),
            format!(
                "{} JobManagers need high availability to elect a leader; set `high-availability.type: kubernetes` in {conf_path}, or use 1 replica",
                jm.replicas
            ),
        ));
    }
    resources(
        jm.resource.as_ref(),
        jm.resources.as_ref(),
        &jm_path,
        &mut errors,
    );
    pod_template(
        jm.pod_template.as_ref(),
        &format!("{jm_path}.podTemplate"),
        &mut errors,
    );

    if let Some(tm) = &spec.task_manager {
        let tm_path = at(prefix, "taskManager");
        if let Some(replicas) = tm.replicas.filter(|r| *r < 1) {
            errors.push(FieldError::new(
                &format!("{tm_path}.replicas"),
                format!("must be at least 1, got {replicas}"),
            ));
        }
        resources(
            tm.resource.as_ref(),
            tm.resources.as_ref(),
            &tm_path,
            &mut errors,
        );
        pod_template(
            tm.pod_template.as_ref(),
            &format!("{tm_path}.podTemplate"),
            &mut errors,
        );
    }
    pod_template(
        spec.pod_template.as_ref(),
        &at(prefix, "podTemplate"),
        &mut errors,
    );

    if let Some(logs) = &spec.log_configuration {
        for name in logs
            .keys()
            .filter(|k| !LOG_CONFIG_FILES.contains(&k.as_str()))
        {
            errors.push(FieldError::new(
                &format!("{}.{name}", at(prefix, "logConfiguration")),
                format!(
                    "is not a log configuration file Flink reads; use {}",
                    LOG_CONFIG_FILES.join(" or ")
                ),
            ));
        }
    }

    if let Some(ingress) = &spec.ingress {
        errors.extend(ingress_rules(ingress, &at(prefix, "ingress")));
    }
    errors
}

/// `ingress.template` must make a host or a path (any name and namespace fill it the same way).
pub(crate) fn ingress_rules(
    ingress: &crate::deployment::IngressSpec,
    path: &str,
) -> Vec<FieldError> {
    match ingress.template.as_deref().map(str::trim) {
        None | Some("") => vec![FieldError::new(
            &at(path, "template"),
            "is required with an ingress; set a host or path template, e.g. `/{{namespace}}/{{name}}(/|$)(.*)`",
        )],
        Some(template) => match crate::ingress::ingress_rule(template, "name", "namespace") {
            Ok(_) => Vec::new(),
            Err(why) => vec![FieldError::new(&at(path, "template"), why)],
        },
    }
}

/// Options the operator sets itself and users must not.
const OPERATOR_OWNED: [(&str, &str); 4] = [
    ("kubernetes.namespace", "it is the resource's namespace"),
    ("kubernetes.cluster-id", "it is the resource's name"),
    (
        crate::artifact::ALLOWED_SCHEMES_KEY,
        "an administrator sets it in the operator ConfigMap",
    ),
    (
        crate::artifact::RESTRICTED_HOSTS_KEY,
        "an administrator sets it in the operator ConfigMap",
    ),
];

/// `file`: where the configuration is written (a session job's goes to Flink as JSON, which
/// holds what `ConfigFile::Yaml` holds).
pub(super) fn configuration(
    config: &FlinkConfiguration,
    conf_path: &str,
    file: ConfigFile,
    errors: &mut Vec<FieldError>,
) {
    for duplicate in config.duplicate_keys() {
        errors.push(FieldError::new(
            &format!("{conf_path}.{}", duplicate.key),
            "is set twice, once as a flat key and once nested; keep one",
        ));
    }
    let flat = config.flat();
    for (key, value) in &flat {
        if let Some(problem) = file_entry_problem(key, value, file) {
            errors.push(FieldError::new(
                &format!("{conf_path}.{}", key.escape_debug()),
                problem,
            ));
        }
    }
    for (key, why) in OPERATOR_OWNED {
        if flat.contains_key(key) {
            errors.push(FieldError::new(
                &format!("{conf_path}.{key}"),
                format!("is owned by the operator ({why}); remove it"),
            ));
        }
    }
    for key in options::SAVEPOINT_PATH.all_keys() {
        if flat.contains_key(key) {
            errors.push(FieldError::new(
                &format!("{conf_path}.{key}"),
                "is owned by the operator, which restores from the savepoints it records; to start from a savepoint set spec.job.initialSavepointPath",
            ));
        }
    }
    for key in flat.keys().filter(|k| k.starts_with("$internal.")) {
        errors.push(FieldError::new(
            &format!("{conf_path}.{key}"),
            "is internal to Flink; remove it",
        ));
    }
    for option in [
        options::TASK_SLOTS,
        options::PARALLELISM_DEFAULT,
        options::MAX_PARALLELISM,
    ] {
        if let Some((key, value)) = config.get(&option) {
            match value.trim().parse::<i64>() {
                Ok(n) if (1..=32768).contains(&n) => {}
                _ => errors.push(FieldError::new(
                    &format!("{conf_path}.{key}"),
                    format!("must be a whole number from 1 to 32768, got {value:?}"),
                )),
            }
        }
    }
    for option in [
        options::CHECKPOINT_INTERVAL,
        options::CHECKPOINT_TIMEOUT,
        options::READINESS_TIMEOUT,
        options::STABILITY_MIN_RUNNING_TIME,
        options::HEALTH_RESTARTS_WINDOW,
        options::HEALTH_CHECKPOINT_PROGRESS_WINDOW,
        options::SAVEPOINT_TRIGGER_GRACE_PERIOD,
        options::CHECKPOINT_TRIGGER_GRACE_PERIOD,
    ] {
        if let Some((key, value)) = config.get(&option)
            && let Err(e) = parse_flink_duration(&value)
        {
            errors.push(FieldError::new(&format!("{conf_path}.{key}"), e));
        }
    }
    for option in [
        options::PERIODIC_SAVEPOINT_INTERVAL,
        options::PERIODIC_CHECKPOINT_INTERVAL,
    ] {
        if let Some((key, value)) = config.get(&option)
            && parse_flink_duration(&value).is_err()
            && let Err(why) = flink_cron::Cron::parse(&value)
        {
            errors.push(FieldError::new(
                &format!("{conf_path}.{key}"),
                format!("must be a duration like `1h` or a Quartz cron expression like `0 0 * * * ?`, got {value:?} ({why})"),
            ));
        }
    }
    for option in [
        options::TOLERABLE_FAILED_CHECKPOINTS,
        options::STABILITY_MIN_CHECKPOINTS,
        options::STABILITY_MAX_RESTARTS,
        options::HEALTH_RESTARTS_THRESHOLD,
    ] {
        if let Some((key, value)) = config.get(&option)
            && value.trim().parse::<u32>().is_err()
        {
            errors.push(FieldError::new(
                &format!("{conf_path}.{key}"),
                format!("must be a whole number, 0 or more, got {value:?}"),
            ));
        }
    }
    for option in [
        options::ROLLBACK_ENABLED,
        options::HEALTH_CHECK_ENABLED,
        options::HEALTH_CHECKPOINT_PROGRESS_ENABLED,
        options::JOB_RESTART_FAILED,
        options::JM_DEPLOYMENT_RECOVERY,
        options::DRAIN_ON_SAVEPOINT_DELETION,
        options::IGNORE_PENDING_SAVEPOINT,
        options::LAST_STATE_JOB_CANCEL,
    ] {
        if let Some((key, value)) = config.get(&option)
            && !matches!(value.trim(), "true" | "false")
        {
            errors.push(FieldError::new(
                &format!("{conf_path}.{key}"),
                format!("must be true or false, got {value:?}"),
            ));
        }
    }
    for (option, allowed) in [
        (options::CHECKPOINT_TYPE, &["FULL", "INCREMENTAL"][..]),
        (options::SAVEPOINT_FORMAT_TYPE, &["CANONICAL", "NATIVE"][..]),
    ] {
        if let Some((key, value)) = config.get(&option)
            && !allowed.iter().any(|a| a.eq_ignore_ascii_case(value.trim()))
        {
            errors.push(FieldError::new(
                &format!("{conf_path}.{key}"),
                format!("must be {}, got {value:?}", allowed.join(" or ")),
            ));
        }
    }
    for option in [
        options::JM_PROCESS_MEMORY,
        options::JM_FLINK_MEMORY,
        options::TM_PROCESS_MEMORY,
        options::TM_FLINK_MEMORY,
    ] {
        if let Some((key, value)) = config.get(&option)
            && let Err(e) = parse_memory(&value)
        {
            errors.push(FieldError::new(&format!("{conf_path}.{key}"), e));
        }
    }
    if ha_enabled(config) && config.get(&options::HA_STORAGE_DIR).is_none() {
        let (key, _) = config.get(&options::HA_TYPE).unwrap_or_default();
        errors.push(FieldError::new(
            &format!("{conf_path}.{key}"),
            "high availability needs a place for its metadata; set `high-availability.storageDir`",
        ));
    }
}

/// Cron as upstream's periodic snapshots take it: 6 or 7 fields (Quartz style).
fn needs(option: &ConfigOption, config: &FlinkConfiguration) -> bool {
    config.get(option).is_none_or(|(_, v)| v.trim().is_empty())
}

pub(super) fn job_spec(
    job: &JobSpec,
    config: &FlinkConfiguration,
    job_path: &str,
    conf_path: &str,
    errors: &mut Vec<FieldError>,
) {
    job_basics(job, job_path, errors);
    if let Some(uri) = &job.jar_uri
        && !uri.contains("://")
    {
        errors.push(FieldError::new(
            &format!("{job_path}.jarURI"),
            format!(
                "must be a URI with a scheme, got {uri:?}; e.g. `local:///opt/flink/usrlib/job.jar`"
            ),
        ));
    }
    job_storage(job, config, job_path, conf_path, errors);
}

/// Rules on the job spec that need no configuration.
pub(super) fn job_basics(job: &JobSpec, job_path: &str, errors: &mut Vec<FieldError>) {
    // Arguments travel in the configuration file (native mode) and container arguments.
    for (i, arg) in job.args.iter().enumerate() {
        if let Some(c) = arg.chars().find(|c| c.is_control() && *c != '\t') {
            errors.push(FieldError::new(
                &format!("{job_path}.args[{i}]"),
                format!(
                    "holds the control character U+{:04X}; remove it (pass several values as several arguments)",
                    c as u32
                ),
            ));
        }
    }
    if let Some(p) = job.parallelism.filter(|p| *p < 1) {
        errors.push(FieldError::new(
            &format!("{job_path}.parallelism"),
            format!("must be at least 1, got {p}"),
        ));
    }
    if job
        .initial_savepoint_path
        .as_deref()
        .is_some_and(|p| p.trim().is_empty())
    {
        errors.push(FieldError::new(
            &format!("{job_path}.initialSavepointPath"),
            "is empty; remove it or give the path of a savepoint",
        ));
    }
}

/// Checkpoint and savepoint storage that the job's upgrade mode and snapshots need.
fn job_storage(
    job: &JobSpec,
    config: &FlinkConfiguration,
    job_path: &str,
    conf_path: &str,
    errors: &mut Vec<FieldError>,
) {
    if job.upgrade_mode.is_stateful() && needs(&options::CHECKPOINTS_DIR, config) {
        errors.push(FieldError::new(
            &format!("{job_path}.upgradeMode"),
            format!(
                "{} keeps state across upgrades and needs checkpoint storage; set {} in {conf_path}",
                job.upgrade_mode.name(),
                options::CHECKPOINTS_DIR.describe()
            ),
        ));
    }
    let savepoint_dir_missing = needs(&options::SAVEPOINTS_DIR, config);
    if savepoint_dir_missing {
        let dir = options::SAVEPOINTS_DIR.describe();
        if job.upgrade_mode == crate::UpgradeMode::Savepoint {
            errors.push(FieldError::new(
                &format!("{job_path}.upgradeMode"),
                format!("savepoint upgrades need a savepoint directory; set {dir} in {conf_path}"),
            ));
        }
        if job.savepoint_trigger_nonce.is_some() {
            errors.push(FieldError::new(
                &format!("{job_path}.savepointTriggerNonce"),
                format!("manual savepoints need a savepoint directory; set {dir} in {conf_path}"),
            ));
        }
        if let Some((key, value)) = config.get(&options::PERIODIC_SAVEPOINT_INTERVAL)
            && !is_zero_duration(&value)
        {
            errors.push(FieldError::new(
                &format!("{conf_path}.{key}"),
                format!("periodic savepoints need a savepoint directory; set {dir} in {conf_path}"),
            ));
        }
    }
}

fn is_zero_duration(text: &str) -> bool {
    parse_flink_duration(text).is_ok_and(|d| d.is_zero())
}

fn resources(
    resource: Option<&Resource>,
    resources: Option<&ResourceRequirements>,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    if resource.is_some() && resources.is_some() {
        errors.push(FieldError::new(
            path,
            "sets both `resources` and the deprecated `resource`; keep `resources`",
        ));
    }
    if let Some(r) = resource {
        if let Some(cpu) = r.cpu.filter(|c| !(*c > 0.0 && c.is_finite())) {
            errors.push(FieldError::new(
                &format!("{path}.resource.cpu"),
                format!("must be more than 0, got {cpu}"),
            ));
        }
        if let Some(memory) = &r.memory {
            memory_value(memory, &format!("{path}.resource.memory"), errors);
        }
        if let Some(storage) = &r.ephemeral_storage {
            memory_value(
                storage,
                &format!("{path}.resource.ephemeralStorage"),
                errors,
            );
        }
    }
    let Some(r) = resources else { return };
    let mut parsed = std::collections::BTreeMap::new();
    for (section, map) in [("requests", &r.requests), ("limits", &r.limits)] {
        for (name, quantity) in map.iter().flatten() {
            let field = format!("{path}.resources.{section}.{name}");
            let value = match name.as_str() {
                "cpu" => match parse_cpu(&quantity.0) {
                    Ok(v) if v > 0.0 => Some(v),
                    Ok(v) => {
                        errors.push(FieldError::new(
                            &field,
                            format!("must be more than 0, got {v}"),
                        ));
                        None
                    }
                    Err(e) => {
                        errors.push(FieldError::new(&field, e));
                        None
                    }
                },
                "memory" | "ephemeral-storage" => {
                    memory_value(&quantity.0, &field, errors).map(|b| b as f64)
                }
                _ => None,
            };
            if let Some(v) = value {
                parsed.insert((section, name.clone()), (v, quantity.0.clone()));
            }
        }
    }
    for name in ["cpu", "memory", "ephemeral-storage"] {
        if let (Some((req, req_text)), Some((lim, lim_text))) = (
            parsed.get(&("requests", name.to_string())),
            parsed.get(&("limits", name.to_string())),
        ) && req > lim
        {
            errors.push(FieldError::new(
                &format!("{path}.resources.requests.{name}"),
                format!("{req_text} is more than limits.{name} {lim_text}; lower the request or raise the limit"),
            ));
        }
    }
}

fn memory_value(text: &str, path: &str, errors: &mut Vec<FieldError>) -> Option<u64> {
    match parse_memory(text) {
        Ok(0) => {
            errors.push(FieldError::new(
                path,
                format!("must be more than 0, got {text:?}"),
            ));
            None
        }
        Ok(bytes) => Some(bytes),
        Err(e) => {
            errors.push(FieldError::new(path, e));
            None
        }
    }
}

fn pod_template(template: Option<&PodTemplate>, path: &str, errors: &mut Vec<FieldError>) {
    if let Some(t) = template
        && let Err((inner, message)) = t.typed()
    {
        let field = if inner == "." || inner.is_empty() {
            path.to_string()
        } else {
            format!("{path}.{inner}")
        };
        errors.push(FieldError::new(
            &field,
            format!("is not a valid Pod fragment: {message}"),
        ));
    }
}
