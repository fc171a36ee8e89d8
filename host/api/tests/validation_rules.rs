//! Validation rules that the CLI fixtures cannot show: changes against the previous spec,
//! canaries, and upstream's examples read into the types without losing anything.

mod shared_data;

use flink_api::document::{FlinkResource, read_document, split_documents, validate_documents};
use flink_api::snapshot::{FlinkStateSnapshotStatus, SnapshotState};
use flink_api::validation::{self, ValidationSettings};
use flink_api::{FlinkDeployment, FlinkSessionJob, FlinkStateSnapshot};
use serde_json::{Value, json};

fn deployment(yaml: &str) -> FlinkDeployment {
    serde_saphyr::from_str(yaml).expect("test YAML reads as a FlinkDeployment")
}

const APPLICATION: &str = "apiVersion: flink.apache.org/v1beta1\nkind: FlinkDeployment\nmetadata: {name: app}\nspec:\n  flinkVersion: v2_3\n  job: {jarURI: 'local:///opt/flink/usrlib/job.jar'}\n";

#[test]
fn a_session_cluster_cannot_become_an_application_cluster() {
    let old = deployment(
        "apiVersion: flink.apache.org/v1beta1\nkind: FlinkDeployment\nmetadata: {name: s}\nspec: {flinkVersion: v2_3}\n",
    );
    let new = deployment(APPLICATION);
    let errors = validation::deployment_change(&old.spec, &new.spec);
    assert_eq!(
        errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [
            "spec.job: cannot turn a session cluster into an application cluster; create a new FlinkDeployment"
        ]
    );
    assert_eq!(
        validation::deployment_change(&new.spec, &old.spec)[0].path,
        "spec.job"
    );
}

#[test]
fn the_deployment_mode_cannot_change_in_place() {
    let old = deployment(APPLICATION);
    let mut new = old.clone();
    new.spec.mode = Some(flink_api::deployment::KubernetesDeploymentMode::Standalone);
    let errors = validation::deployment_change(&old.spec, &new.spec);
    assert_eq!(
        errors[0].to_string(),
        "spec.mode: cannot change from native to standalone on a deployed cluster; create a new FlinkDeployment"
    );
    // Everything else (parallelism, upgrade mode, configuration) may change.
    let mut changed = old.clone();
    changed.spec.job.as_mut().unwrap().parallelism = Some(4);
    changed.spec.job.as_mut().unwrap().upgrade_mode = flink_api::UpgradeMode::Savepoint;
    assert!(validation::deployment_change(&old.spec, &changed.spec).is_empty());
}

#[test]
fn a_session_job_cannot_move_to_another_deployment() {
    let old: FlinkSessionJob = serde_saphyr::from_str(
        "apiVersion: flink.apache.org/v1beta1\nkind: FlinkSessionJob\nmetadata: {name: j}\nspec: {deploymentName: a, job: {jarURI: 'https://x/j.jar'}}\n",
    )
    .unwrap();
    let mut new = old.clone();
    new.spec.deployment_name = Some("b".into());
    assert_eq!(
        validation::session_job_change(&old.spec, &new.spec)[0].to_string(),
        "spec.deploymentName: cannot move a session job to another deployment (from \"a\" to \"b\"); delete it and create it again"
    );
    assert!(validation::session_job_change(&old.spec, &old.spec).is_empty());
}

#[test]
fn a_snapshot_cannot_change_after_it_completed_but_may_before() {
    let mut old: FlinkStateSnapshot = serde_saphyr::from_str(
        "apiVersion: flink.apache.org/v1beta1\nkind: FlinkStateSnapshot\nmetadata: {name: s}\nspec: {jobReference: {kind: FlinkDeployment, name: d}, savepoint: {}}\n",
    )
    .unwrap();
    let mut new = old.clone();
    new.spec.savepoint.as_mut().unwrap().path = Some("file:///elsewhere".into());
    old.status = Some(FlinkStateSnapshotStatus {
        state: Some(SnapshotState::InProgress),
        ..Default::default()
    });
    assert!(validation::snapshot_change(&old, &new).is_empty());
    old.status = Some(FlinkStateSnapshotStatus {
        state: Some(SnapshotState::Completed),
        ..Default::default()
    });
    assert_eq!(
        validation::snapshot_change(&old, &new)[0].to_string(),
        "spec: cannot change a FlinkStateSnapshot after it ended (COMPLETED); create a new FlinkStateSnapshot"
    );
}

#[test]
fn canary_resources_need_no_spec_and_are_not_validated() {
    let docs = split_documents(
        "apiVersion: flink.apache.org/v1beta1\nkind: FlinkDeployment\nmetadata:\n  name: canary\n  labels: {flink.apache.org/canary: 'true'}\n",
    )
    .unwrap();
    assert!(validate_documents(docs, &ValidationSettings::default()).is_empty());
    let not_canary = split_documents(
        "apiVersion: flink.apache.org/v1beta1\nkind: FlinkDeployment\nmetadata: {name: plain}\n",
    )
    .unwrap();
    let findings = validate_documents(not_canary, &ValidationSettings::default());
    assert_eq!(findings[0].error.path, "spec.flinkVersion");
}

#[test]
fn jar_schemes_are_an_operator_setting() {
    let docs = split_documents(
        "apiVersion: flink.apache.org/v1beta1\nkind: FlinkSessionJob\nmetadata: {name: j}\nspec: {deploymentName: s, job: {jarURI: 's3://b/j.jar'}}\n",
    )
    .unwrap();
    assert_eq!(
        validate_documents(docs.clone(), &ValidationSettings::default()).len(),
        1
    );
    let settings = ValidationSettings {
        session_job_jar_schemes: vec!["s3".into()],
        ..ValidationSettings::default()
    };
    assert!(validate_documents(docs, &settings).is_empty());
}

/// Serialises a typed resource and checks that every field of the original document is still
/// there with the same value (the typed form may add defaults, never drop or change).
fn assert_nothing_lost(original: &Value, typed: &Value, path: &str) {
    match (original, typed) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                let child = format!("{path}.{key}");
                let other = b
                    .get(key)
                    .unwrap_or_else(|| panic!("{child} lost in the typed resource"));
                assert_nothing_lost(value, other, &child);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{path}");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert_nothing_lost(x, y, &format!("{path}[{i}]"));
            }
        }
        (a, b) => assert_eq!(a, b, "{path} changed"),
    }
}

#[test]
fn upstream_examples_read_into_the_types_without_losing_anything() {
    let dir = shared_data::shared_dir().join("upstream-examples");
    let mut files = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(d).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "yaml") {
                files.push(p);
            }
        }
    }
    assert!(
        files.len() >= 15,
        "found only {} upstream examples",
        files.len()
    );
    let mut resources = 0;
    for file in files {
        for document in split_documents(&std::fs::read_to_string(&file).unwrap()).unwrap() {
            let resource = read_document(document.clone())
                .unwrap_or_else(|e| panic!("{}: {e:?}", file.display()));
            let typed = match &resource {
                FlinkResource::Deployment(r) => serde_json::to_value(r),
                FlinkResource::SessionJob(r) => serde_json::to_value(r),
                FlinkResource::Snapshot(r) => serde_json::to_value(r),
                FlinkResource::BlueGreen(r) => serde_json::to_value(r),
            }
            .unwrap();
            assert_nothing_lost(&document, &typed, &file.display().to_string());
            resources += 1;
        }
    }
    assert!(resources >= 16);
}

#[test]
fn nested_flink_configuration_is_exposed_flat() {
    let dir = shared_data::shared_dir().join("upstream-examples/autoscaling/autoscaling.yaml");
    let doc = split_documents(&std::fs::read_to_string(dir).unwrap())
        .unwrap()
        .remove(0);
    let FlinkResource::Deployment(d) = read_document(doc).unwrap() else {
        panic!("not a deployment")
    };
    let flat = d.spec.configuration().flat();
    assert_eq!(flat["job.autoscaler.enabled"], "true");
    assert_eq!(flat["job.autoscaler.metrics.window"], "3m");
    assert_eq!(flat["pipeline.max-parallelism"], "24");
    assert_eq!(flat["high-availability.type"], "kubernetes");
    assert_eq!(
        flat["state.savepoints.dir"],
        "file:///flink-data/savepoints"
    );
    let round_trip = serde_json::to_value(&d.spec.flink_configuration).unwrap();
    assert_eq!(round_trip["job.autoscaler"]["enabled"], json!(true));
}

#[test]
fn a_session_job_may_bring_its_own_checkpoint_and_savepoint_directories() {
    // As upstream: a session job is checked against its cluster's configuration under its own.
    let cluster = deployment(
        "apiVersion: flink.apache.org/v1beta1\nkind: FlinkDeployment\nmetadata: {name: shared}\nspec: {flinkVersion: v2_3}\n",
    );
    let job = |config: &str| -> FlinkSessionJob {
        serde_saphyr::from_str(&format!(
            "apiVersion: flink.apache.org/v1beta1\nkind: FlinkSessionJob\nmetadata: {{name: j}}\nspec:\n  deploymentName: shared\n  flinkConfiguration: {{{config}}}\n  job: {{jarURI: 'https://x/j.jar', upgradeMode: savepoint}}\n"
        ))
        .expect("a session job")
    };
    let bare = job("");
    let problems = validation::references(&[&cluster], &[&bare], &[]);
    let messages: Vec<String> = problems
        .session_jobs
        .iter()
        .map(|(_, e)| e.to_string())
        .collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(
        messages[0].contains("or in this job's spec.flinkConfiguration"),
        "the fix is named: {messages:?}"
    );
    let own = job(
        "execution.checkpointing.dir: 'file:///tmp/cp', execution.checkpointing.savepoint-dir: 'file:///tmp/sp'",
    );
    let problems = validation::references(&[&cluster], &[&own], &[]);
    assert!(
        problems.session_jobs.is_empty(),
        "{:?}",
        problems.session_jobs
    );
}

#[test]
fn a_blue_green_deployment_is_checked_for_its_childrens_names_its_settings_and_its_ingress() {
    let parent = |name: &str, extra: &str| -> flink_api::FlinkBlueGreenDeployment {
        serde_saphyr::from_str(&format!(
            "apiVersion: flink.apache.org/v1beta1\nkind: FlinkBlueGreenDeployment\nmetadata: {{name: {name}}}\nspec:\n{extra}  template:\n    spec:\n      flinkVersion: v2_3\n      job: {{jarURI: 'local:///opt/flink/usrlib/j.jar', upgradeMode: stateless}}\n"
        ))
        .expect("a blue/green deployment")
    };
    let messages = |r: &flink_api::FlinkBlueGreenDeployment| -> Vec<String> {
        validation::blue_green(r)
            .iter()
            .map(|e| e.to_string())
            .collect()
    };
    assert_eq!(messages(&parent("orders", "")), Vec::<String>::new());
    // `<name>-green` must still be a FlinkDeployment name (45 characters).
    assert!(messages(&parent(&"a".repeat(39), "")).is_empty());
    let long = messages(&parent(&"a".repeat(40), ""));
    assert!(
        long[0].starts_with("metadata.name:") && long[0].contains("at most 39"),
        "{long:?}"
    );
    let settings = messages(&parent(
        "orders",
        "  configuration: {kubernetes.operator.bluegreen.deployment-deletion.delay: later}\n",
    ));
    assert!(
        settings[0].starts_with("spec.configuration.kubernetes.operator.bluegreen.deployment-deletion.delay: is not a duration"),
        "{settings:?}"
    );
    let ingress = messages(&parent(
        "orders",
        "  ingress: {template: 'example.com:port/{{name}}'}\n",
    ));
    assert!(
        ingress[0].starts_with("spec.ingress.template: has a port that is not a number"),
        "{ingress:?}"
    );
}

/// Upstream's jar-less session job: without `jarURI`, the entry class comes from the session
/// cluster's classpath, so `entryClass` is what it needs.
#[test]
fn a_session_job_without_a_jar_needs_its_entry_class() {
    let job = |job: &str| -> FlinkSessionJob {
        serde_saphyr::from_str(&format!(
            "apiVersion: flink.apache.org/v1beta1\nkind: FlinkSessionJob\nmetadata: {{name: j}}\nspec: {{deploymentName: a, job: {job}}}\n"
        ))
        .unwrap()
    };
    let settings = ValidationSettings::default();
    let errors = |text: &str| {
        validation::session_job(&job(text), &settings)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        errors("{entryClass: com.example.Job}"),
        Vec::<String>::new()
    );
    let missing = errors("{parallelism: 2}");
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(
        missing[0].starts_with("spec.job.entryClass: is required without `spec.job.jarURI`"),
        "{missing:?}"
    );
    let empty = errors("{jarURI: '', entryClass: com.example.Job}");
    assert!(
        empty[0].starts_with("spec.job.jarURI: is empty"),
        "{empty:?}"
    );
}
