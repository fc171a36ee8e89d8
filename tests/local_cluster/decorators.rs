//! Flink's `kubernetes.*` pod options mean the same pods here as in Flink: one FlinkDeployment
//! setting every option the operator applies is rendered in both modes, its rendered
//! configuration is handed to Flink 2.3's own decorators (`tests/java/decorators`, run from the
//! installed `flink-dist`), and what each option put into Flink's JobManager pod, TaskManager
//! pod and REST Service must be in ours: the native JobManager Deployment, the standalone
//! JobManager and TaskManager Deployments. (A native cluster's TaskManager pods are Flink's own.)

use flink_operator::render::{self, RenderInput};
use flink_operator_tests::flink_cluster::{FlinkInstall, repo_dir};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;

const RESOURCE: &str = r#"
apiVersion: flink.apache.org/v1beta1
kind: FlinkDeployment
metadata: {name: options, namespace: team, uid: 11111111-2222-3333-4444-555555555555, generation: 1}
spec:
  image: flink:2.3
  flinkVersion: v2_3
  serviceAccount: flink
  flinkConfiguration:
    taskmanager.numberOfTaskSlots: "2"
    high-availability.type: kubernetes
    high-availability.storageDir: file:///tmp/ha
    kubernetes.jobmanager.annotations: "a1:v1,example.com/owner:team"
    kubernetes.taskmanager.annotations: "t1:v1"
    kubernetes.jobmanager.labels: "team:one,tier:gold"
    kubernetes.taskmanager.labels: "team:one"
    kubernetes.jobmanager.node-selector: "disk:ssd"
    kubernetes.taskmanager.node-selector: "zone:a,disk:hdd"
    kubernetes.jobmanager.tolerations: "key:k1,operator:Equal,value:v1,effect:NoSchedule"
    kubernetes.taskmanager.tolerations: "key:k2,operator:Exists,effect:NoExecute,tolerationSeconds:30;key:k3,operator:Exists"
    kubernetes.secrets: "s1:/opt/s1,s2:/opt/s2"
    kubernetes.env.secretKeyRef: "env:PASSWORD,secret:db,key:pw;env:USER,secret:db,key:user"
    containerized.master.env.JM_ONLY: jm
    containerized.taskmanager.env.TM_ONLY: tm
    kubernetes.rest-service.exposed.type: NodePort
    kubernetes.rest-service.annotations: "r1:v1"
    kubernetes.rest-service.labels: "exposed:yes"
    kubernetes.internal-service.annotations: "i1:v1"
    kubernetes.internal-service.labels: "internal:yes"
    kubernetes.taskmanager.service-account: flink-tm
    kubernetes.jobmanager.cpu.limit-factor: "2.0"
    kubernetes.jobmanager.memory.limit-factor: "1.5"
    kubernetes.taskmanager.cpu.limit-factor: "3.0"
    kubernetes.taskmanager.memory.limit-factor: "1.25"
    kubernetes.container.image.pull-secrets: "regcred;other"
  podTemplate:
    metadata:
      labels: {team: template, kept: "yes"}
  jobManager:
    replicas: 2
    resource: {memory: 1024m, cpu: 0.5}
  taskManager:
    resource: {memory: 1024m, cpu: 1}
  job:
    jarURI: local:///opt/flink/usrlib/job.jar
    parallelism: 2
    upgradeMode: last-state
"#;

/// Flink's decorators on a rendered configuration ConfigMap's `config.yaml`, its files where a
/// container has them mounted (the TaskManager pod template) given a local path.
fn flink_decorates(install: &FlinkInstall, config_map: &Value) -> Value {
    let jar = sandbox::flink_dist::java_program(
        &install.flink_home,
        &sandbox::flink_dist::cache_dir(),
        &repo_dir().join("tests/java/decorators/src"),
        "decorators",
        "org.flinkoperator.tests.Decorators",
    )
    .expect("the decorators program compiles");
    let dir = std::env::temp_dir().join(format!("decorators-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temp dir");
    let mut config = config_map["data"]["config.yaml"]
        .as_str()
        .expect("config.yaml")
        .to_string();
    if let Some(template) = config_map["data"][render::NATIVE_TM_TEMPLATE_FILE].as_str() {
        let local = dir.join(render::NATIVE_TM_TEMPLATE_FILE);
        std::fs::write(&local, template).expect("template written");
        config = config.replace(
            &format!("/opt/flink/conf/{}", render::NATIVE_TM_TEMPLATE_FILE),
            &local.display().to_string(),
        );
    }
    std::fs::write(dir.join("config.yaml"), config).expect("config written");
    let output = Command::new("timeout")
        .arg("120")
        .arg("java")
        .arg(format!(
            "-Dlog4j.configurationFile={}/conf/log4j-console.properties",
            install.flink_home.display()
        ))
        .arg("-cp")
        .arg(format!(
            "{}:{}/lib/*",
            jar.display(),
            install.flink_home.display()
        ))
        .arg("org.flinkoperator.tests.Decorators")
        .arg(&dir)
        .output()
        .expect("java runs");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("{\"jobmanager\""))
        .unwrap_or_else(|| {
            panic!(
                "no output from Flink's decorators:\n{stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
    serde_json::from_str(line).expect("JSON")
}

fn at<'v>(value: &'v Value, pointer: &str) -> &'v Value {
    value.pointer(pointer).unwrap_or(&Value::Null)
}

fn string_map(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn main_container(pod: &Value) -> &Value {
    at(pod, "/spec/containers")
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "flink-main-container"))
        .unwrap_or(&Value::Null)
}

/// A Kubernetes quantity as a number (cores, or bytes).
fn quantity(value: &Value) -> f64 {
    let text = value.as_str().unwrap_or_default();
    let (number, scale) = [
        ("Gi", 1024f64.powi(3)),
        ("Mi", 1024f64.powi(2)),
        ("Ki", 1024.0),
        ("m", 0.001),
    ]
    .iter()
    .find_map(|(suffix, scale)| text.strip_suffix(suffix).map(|n| (n, *scale)))
    .unwrap_or((text, 1.0));
    number.parse::<f64>().unwrap_or(f64::NAN) * scale
}

/// Every option's mark on Flink's pod (`theirs`) is on ours, with the same value; `what` names
/// the pod in messages. Labels: the options' and, when `same_mode`, Flink's own too.
fn same_options(what: &str, ours: &Value, theirs: &Value, user_labels: &[&str]) {
    let our_labels = string_map(at(ours, "/metadata/labels"));
    let their_labels = string_map(at(theirs, "/metadata/labels"));
    for key in user_labels {
        assert_eq!(
            our_labels.get(*key),
            their_labels.get(*key),
            "{what}: label {key}"
        );
        assert!(
            their_labels.contains_key(*key),
            "{what}: Flink sets label {key}"
        );
    }
    assert_eq!(
        string_map(at(ours, "/metadata/annotations")),
        string_map(at(theirs, "/metadata/annotations")),
        "{what}: annotations"
    );
    for field in [
        "nodeSelector",
        "tolerations",
        "imagePullSecrets",
        "serviceAccountName",
    ] {
        assert_eq!(
            at(ours, &format!("/spec/{field}")),
            at(theirs, &format!("/spec/{field}")),
            "{what}: spec.{field}"
        );
    }
    let (our_main, their_main) = (main_container(ours), main_container(theirs));
    let env = |container: &Value| -> BTreeMap<String, Value> {
        at(container, "/env")
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                (
                    e["name"].as_str().unwrap_or_default().to_string(),
                    e.clone(),
                )
            })
            .collect()
    };
    let our_env = env(our_main);
    for (name, variable) in env(their_main) {
        // Flink's own plumbing of a native TaskManager, not an option.
        if ["FLINK_TM_JVM_MEM_OPTS", "_POD_NODE_ID"].contains(&name.as_str()) {
            continue;
        }
        assert_eq!(our_env.get(&name), Some(&variable), "{what}: env {name}");
    }
    // The secrets Flink mounts (`<secret>-volume`), where it mounts them.
    let secret_volumes = |pod: &Value| -> Vec<Value> {
        at(pod, "/spec/volumes")
            .as_array()
            .into_iter()
            .flatten()
            .filter(|v| v.get("secret").is_some())
            .cloned()
            .collect()
    };
    assert_eq!(
        secret_volumes(ours),
        secret_volumes(theirs),
        "{what}: secret volumes"
    );
    let mounts = |container: &Value| -> Vec<Value> {
        at(container, "/volumeMounts")
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["name"].as_str().is_some_and(|n| n.starts_with('s')))
            .cloned()
            .collect()
    };
    assert_eq!(
        mounts(our_main),
        mounts(their_main),
        "{what}: secret mounts"
    );
    for part in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            let pointer = format!("/resources/{part}/{resource}");
            assert_eq!(
                quantity(at(our_main, &pointer)),
                quantity(at(their_main, &pointer)),
                "{what}: {part}.{resource}: ours {}, Flink's {}",
                at(our_main, &pointer),
                at(their_main, &pointer)
            );
        }
    }
}

#[test]
fn flinks_pod_options_render_as_flinks_decorators_apply_them() {
    let install = FlinkInstall::ensure().expect("Flink is installed");
    let native: flink_api::FlinkDeployment = serde_saphyr::from_str(RESOURCE).expect("fixture");
    let mut standalone = native.clone();
    standalone.spec.mode = Some(flink_api::deployment::KubernetesDeploymentMode::Standalone);
    let defaults = BTreeMap::new();
    let render = |resource: &flink_api::FlinkDeployment| {
        let mut input = RenderInput::for_resource(resource, &resource.spec, &defaults);
        input.job_id = Some("0b9c7c3e5a8e4c520000000000000003");
        render::render(&input).expect("renders")
    };
    let (native, standalone) = (render(&native), render(&standalone));
    let flink = flink_decorates(&install, &native.config_map);
    // Our configuration is one Flink's own JobManager factory can write (it cannot when one key
    // prefixes another, see Decorators.java).
    assert_eq!(flink["factoryError"], Value::Null);

    let native_jm = at(&native.job_manager, "/spec/template");
    same_options(
        "native JobManager",
        native_jm,
        &flink["jobmanager"],
        &["team", "tier", "app", "component", "type"],
    );
    same_options(
        "standalone JobManager",
        at(&standalone.job_manager, "/spec/template"),
        &flink["jobmanager"],
        &["team", "tier"],
    );
    // The option's label wins over the template's, as in Flink; the template's others stay.
    assert_eq!(at(native_jm, "/metadata/labels/team"), "one");
    assert_eq!(at(native_jm, "/metadata/labels/kept"), "yes");
    same_options(
        "standalone TaskManager",
        at(
            standalone
                .task_manager
                .as_ref()
                .expect("standalone TaskManagers"),
            "/spec/template",
        ),
        &flink["taskmanager"],
        &["team"],
    );
    // Standby JobManagers, bound to their pod's IP (Flink's entrypoint reads `_POD_IP_ADDRESS`
    // with HA).
    assert_eq!(
        at(&native.job_manager, "/spec/replicas"),
        &flink["replicas"]
    );
    assert_eq!(flink["replicas"], 2);
    // The REST Service.
    let their_rest = flink["services"]
        .as_array()
        .and_then(|s| s.iter().find(|s| at(s, "/metadata/name") == "options-rest"))
        .expect("Flink's REST Service");
    // Without HA, Flink also has an internal Service (with HA it finds the leader by itself).
    let mut without_ha: flink_api::FlinkDeployment =
        serde_saphyr::from_str(RESOURCE).expect("fixture");
    if let Some(config) = without_ha.spec.flink_configuration.as_mut() {
        config.set("high-availability.type", "NONE");
    }
    if let Some(jm) = without_ha.spec.job_manager.as_mut() {
        jm.replicas = 1;
    }
    let without_ha = render(&without_ha);
    let flink_without_ha = flink_decorates(&install, &without_ha.config_map);
    let their_internal = flink_without_ha["services"]
        .as_array()
        .and_then(|s| s.iter().find(|s| at(s, "/metadata/name") == "options"))
        .expect("Flink's internal Service");
    for objects in [&native, &standalone] {
        let rest = &objects.rest_service;
        assert_eq!(at(rest, "/spec/type"), at(their_rest, "/spec/type"));
        for (ours, theirs, label) in [
            (rest, their_rest, "exposed"),
            (&objects.internal_service, their_internal, "internal"),
        ] {
            assert_eq!(
                string_map(at(ours, "/metadata/annotations")),
                string_map(at(theirs, "/metadata/annotations"))
            );
            assert_eq!(
                at(ours, &format!("/metadata/labels/{label}")),
                at(theirs, &format!("/metadata/labels/{label}"))
            );
            assert_eq!(at(theirs, &format!("/metadata/labels/{label}")), "yes");
        }
    }
}
