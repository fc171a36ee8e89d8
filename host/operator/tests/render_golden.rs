//! Rendering is pinned by golden files: `golden/<case>.input.yaml` (a FlinkDeployment, plus
//! the reconciler's choices in annotations of the test only) renders to exactly
//! `golden/<case>.rendered.yaml`. `UPDATE_GOLDEN=1 cargo test -p flink-operator --test
//! render_golden` rewrites them; review the diff like code.
//!
//! Every rendered object is also read back as its typed Kubernetes object, and every upstream
//! example FlinkDeployment must render.

#[path = "../../api/tests/shared_data.rs"]
mod shared_data;

use flink_api::FlinkDeployment;
use flink_operator::render::{self, ClusterObjects, RenderInput};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn read_deployment(path: &Path) -> FlinkDeployment {
    let text = std::fs::read_to_string(path).expect("fixture readable");
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The reconciler's choices a case asks for, in the fixture's `spec.job`.
fn render_case(resource: &FlinkDeployment) -> ClusterObjects {
    let defaults = BTreeMap::new();
    let mut input = RenderInput::for_resource(resource, &resource.spec, &defaults);
    let restore = resource
        .spec
        .job
        .as_ref()
        .filter(|j| j.upgrade_mode.is_stateful())
        .map(|_| "file:///tmp/savepoints/savepoint-0b9c7c-1234");
    input.restore_from = restore;
    input.job_id = resource
        .spec
        .job
        .as_ref()
        .map(|_| "0b9c7c3e5a8e4c520000000000000003");
    render::render(&input).unwrap_or_else(|e| panic!("renders: {e}"))
}

fn to_yaml(objects: &ClusterObjects) -> String {
    objects
        .all()
        .into_iter()
        .map(|o| serde_saphyr::to_string(o).expect("serializes"))
        .collect::<Vec<_>>()
        .join("---\n")
}

/// Every object reads back as its Kubernetes type without losing a field.
fn assert_typed(objects: &ClusterObjects) {
    fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(value: &Value) {
        let typed: T = serde_json::from_value(value.clone()).unwrap_or_else(|e| {
            panic!("not a valid {}: {e}\n{value:#}", std::any::type_name::<T>())
        });
        let back = serde_json::to_value(&typed).expect("serializes");
        assert_eq!(
            &back,
            value,
            "a field was lost reading it as {}",
            std::any::type_name::<T>()
        );
    }
    round_trip::<ConfigMap>(&objects.config_map);
    round_trip::<Service>(&objects.internal_service);
    round_trip::<Service>(&objects.rest_service);
    round_trip::<Deployment>(&objects.job_manager);
    if let Some(tm) = &objects.task_manager {
        round_trip::<Deployment>(tm);
    }
}

#[test]
fn golden_files_match() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut cases = 0;
    let mut mismatches = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(golden_dir())
        .expect("golden dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".input.yaml"))
        .collect();
    entries.sort();
    for input in entries {
        cases += 1;
        let resource = read_deployment(&input);
        let objects = render_case(&resource);
        assert_typed(&objects);
        let rendered = to_yaml(&objects);
        let expected_path = PathBuf::from(
            input
                .to_string_lossy()
                .replace(".input.yaml", ".rendered.yaml"),
        );
        if update {
            std::fs::write(&expected_path, &rendered).expect("writes golden");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != rendered {
            mismatches.push(format!(
                "{} differs from its rendering (UPDATE_GOLDEN=1 to accept):\n{rendered}",
                expected_path.display()
            ));
        }
    }
    assert!(cases >= 3, "golden cases missing");
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn rendering_is_deterministic() {
    let resource = read_deployment(&golden_dir().join("standalone-application.input.yaml"));
    assert_eq!(
        to_yaml(&render_case(&resource)),
        to_yaml(&render_case(&resource))
    );
}

#[test]
fn every_upstream_example_deployment_renders_to_valid_objects() {
    let dir = shared_data::shared_dir().join("upstream-examples");
    let mut rendered = 0;
    let mut stack = vec![dir];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("examples dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("readable");
            for document in flink_api::document::split_documents(&text).expect("splits") {
                if document.get("kind").and_then(Value::as_str) != Some("FlinkDeployment")
                    || document.get("spec").is_none()
                {
                    continue;
                }
                let resource: FlinkDeployment = serde_json::from_value(document)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let objects = render_case(&resource);
                assert_typed(&objects);
                rendered += 1;
            }
        }
    }
    assert!(
        rendered >= 10,
        "only {rendered} upstream FlinkDeployments found"
    );
}

#[test]
fn task_managers_follow_parallelism_and_slots_unless_replicas_are_set() {
    let mut resource = read_deployment(&golden_dir().join("standalone-application.input.yaml"));
    let replicas = |r: &FlinkDeployment| {
        render_case(r)
            .task_manager
            .expect("standalone renders TaskManagers")["spec"]["replicas"]
            .clone()
    };
    assert_eq!(replicas(&resource), 1, "parallelism 2 on 2 slots");
    resource.spec.job.as_mut().expect("job").parallelism = Some(5);
    assert_eq!(replicas(&resource), 3, "parallelism 5 on 2 slots rounds up");
    resource.spec.task_manager.as_mut().expect("tm").replicas = Some(4);
    assert_eq!(replicas(&resource), 4, "explicit replicas win");
}

#[test]
fn a_bad_memory_value_names_its_field() {
    let mut resource = read_deployment(&golden_dir().join("standalone-application.input.yaml"));
    resource
        .spec
        .job_manager
        .as_mut()
        .expect("jm")
        .resource
        .as_mut()
        .expect("resource")
        .memory = Some("lots".into());
    let defaults = BTreeMap::new();
    let input = RenderInput::for_resource(&resource, &resource.spec, &defaults);
    let error = render::render(&input).expect_err("bad memory");
    assert_eq!(error.path, "spec.jobManager.resource.memory");
    assert!(error.message.contains("lots"), "{error}");
}

/// An autoscaled job runs the adaptive scheduler (unless the user chose one), a deploy keeps
/// the autoscaler's parallelism next to the user's own overrides, and the TaskManagers follow
/// the widest vertex.
#[test]
fn an_autoscaled_job_renders_the_adaptive_scheduler_and_keeps_its_scaled_parallelism() {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/e2e/autoscaled.yaml");
    let mut resource = read_deployment(&path);
    let defaults = BTreeMap::new();
    let overrides = BTreeMap::from([("b717".to_string(), 5u32)]);
    let mut input = RenderInput::for_resource(&resource, &resource.spec, &defaults);
    let config = render::flink_config(&input).unwrap();
    assert_eq!(config["jobmanager.scheduler"], "adaptive");
    assert!(!config.contains_key("pipeline.jobvertex-parallelism-overrides"));
    input.autoscaler_overrides = Some(&overrides);
    let config = render::flink_config(&input).unwrap();
    assert_eq!(config["pipeline.jobvertex-parallelism-overrides"], "b717:5");
    assert_eq!(
        render::task_manager_replicas(&resource.spec, &config),
        3,
        "5 subtasks on 2 slots each"
    );

    let mut spec = resource.spec.clone();
    let mut flat = spec.configuration().flat();
    flat.insert("jobmanager.scheduler".into(), "default".into());
    flat.insert(
        "pipeline.jobvertex-parallelism-overrides".into(),
        "a1:2,b717:1".into(),
    );
    spec.flink_configuration =
        Some(serde_json::from_value(serde_json::to_value(&flat).unwrap()).unwrap());
    resource.spec = spec;
    let mut input = RenderInput::for_resource(&resource, &resource.spec, &defaults);
    input.autoscaler_overrides = Some(&overrides);
    let config = render::flink_config(&input).unwrap();
    assert_eq!(
        config["jobmanager.scheduler"], "default",
        "the user's choice stays"
    );
    assert_eq!(
        config["pipeline.jobvertex-parallelism-overrides"],
        "a1:2,b717:5"
    );
}

/// The JobManager's startup probe is on unless
/// `kubernetes.operator.jm-deployment.startup.probe.enabled` says otherwise (the operator's
/// defaults or the spec).
#[test]
fn the_job_manager_startup_probe_follows_its_switch() {
    let resource = read_deployment(&golden_dir().join("standalone-application.input.yaml"));
    let probe = |defaults: &BTreeMap<String, String>| {
        let input = RenderInput::for_resource(&resource, &resource.spec, defaults);
        let objects = render::render(&input).expect("renders");
        objects.job_manager["spec"]["template"]["spec"]["containers"][0]
            .get("startupProbe")
            .cloned()
    };
    assert!(probe(&BTreeMap::new()).is_some(), "on by default");
    let off = BTreeMap::from([(
        "kubernetes.operator.jm-deployment.startup.probe.enabled".to_string(),
        "FALSE".to_string(),
    )]);
    assert_eq!(probe(&off), None);
}
