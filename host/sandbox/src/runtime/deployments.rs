//! The Deployment controller, as pure functions: which pods a Deployment needs and what its
//! status says. (The stand-in owns pods by the Deployment directly; there is no ReplicaSet.)

use serde_json::{Value, json};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

/// A stable hash of a pod template, as the `pod-template-hash` label.
pub fn template_hash(template: &Value) -> String {
    let mut hasher = DefaultHasher::new();
    template.to_string().hash(&mut hasher);
    format!("{:010x}", hasher.finish() & 0xff_ffff_ffff)
}

/// What to do to bring a Deployment's pods to its spec.
#[derive(Debug, Default, PartialEq)]
pub struct PodPlan {
    pub create: Vec<Value>,
    pub delete: Vec<String>,
}

/// `existing` are the pods the Deployment owns. A changed template replaces every pod
/// (the Recreate strategy, which upstream's JobManager Deployments use).
pub fn plan(
    deployment: &Value,
    existing: &[Value],
    next_suffix: &mut dyn FnMut() -> String,
) -> PodPlan {
    let replicas = deployment
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1)
        .max(0) as usize;
    let template = deployment
        .pointer("/spec/template")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let hash = template_hash(&template);
    let name = deployment
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let is_current = |pod: &Value| {
        pod.pointer("/metadata/labels/pod-template-hash")
            .and_then(Value::as_str)
            == Some(hash.as_str())
    };
    let alive = |pod: &Value| pod.pointer("/metadata/deletionTimestamp").is_none();
    let mut plan = PodPlan::default();
    let mut current: Vec<&Value> = Vec::new();
    for pod in existing.iter().filter(|p| alive(p)) {
        if is_current(pod) {
            current.push(pod);
        } else {
            plan.delete.push(pod_name(pod));
        }
    }
    // Which pods go first when scaling down, as a ReplicaSet ranks them: not ready before
    // ready, a lower `controller.kubernetes.io/pod-deletion-cost` first, then the newest.
    current.sort_by_key(|p| {
        (
            is_ready(p),
            deletion_cost(p),
            std::cmp::Reverse(
                p.pointer("/metadata/creationTimestamp")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            ),
        )
    });
    while current.len() > replicas {
        if let Some(pod) = current.first() {
            plan.delete.push(pod_name(pod));
        }
        current.remove(0);
    }
    for _ in current.len()..replicas {
        let mut labels = template
            .pointer("/metadata/labels")
            .cloned()
            .unwrap_or_else(|| json!({}));
        labels["pod-template-hash"] = json!(hash);
        plan.create.push(json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": format!("{name}-{hash}-{}", next_suffix()),
                "labels": labels,
                "annotations": template.pointer("/metadata/annotations").cloned().unwrap_or_else(|| json!({})),
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                    "uid": deployment.pointer("/metadata/uid"), "controller": true, "blockOwnerDeletion": true,
                }],
            },
            "spec": template.get("spec").cloned().unwrap_or_else(|| json!({})),
            "status": {"phase": "Pending"},
        }));
    }
    plan
}

/// The annotation that tells a ReplicaSet which of its pods to delete first when it scales down.
pub const POD_DELETION_COST: &str = "controller.kubernetes.io/pod-deletion-cost";

/// A pod's deletion cost (0 unless annotated with a valid int32, like the ReplicaSet
/// controller reads it).
fn deletion_cost(pod: &Value) -> i32 {
    pod.pointer("/metadata/annotations")
        .and_then(|a| a.get(POD_DELETION_COST))
        .and_then(Value::as_str)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn pod_name(pod: &Value) -> String {
    pod.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

/// The Deployment's status given its pods.
pub fn status(deployment: &Value, pods: &[Value]) -> Value {
    let replicas = deployment
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    let hash = template_hash(deployment.pointer("/spec/template").unwrap_or(&Value::Null));
    let alive: Vec<&Value> = pods
        .iter()
        .filter(|p| p.pointer("/metadata/deletionTimestamp").is_none())
        .collect();
    let updated = alive
        .iter()
        .filter(|p| {
            p.pointer("/metadata/labels/pod-template-hash")
                .and_then(Value::as_str)
                == Some(hash.as_str())
        })
        .count();
    let ready = alive.iter().filter(|p| is_ready(p)).count() as i64;
    let available = ready >= replicas;
    let created = deployment
        .pointer("/metadata/creationTimestamp")
        .cloned()
        .unwrap_or(Value::Null);
    json!({
        "observedGeneration": deployment.pointer("/metadata/generation"),
        "replicas": alive.len(),
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "unavailableReplicas": (replicas - ready).max(0),
        "conditions": [
            {"type": "Available", "status": if available { "True" } else { "False" },
             "reason": if available { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
             "message": format!("{ready} of {replicas} replicas ready"), "lastUpdateTime": created, "lastTransitionTime": created},
            {"type": "Progressing", "status": "True", "reason": if updated as i64 >= replicas { "NewReplicaSetAvailable" } else { "ReplicaSetUpdated" },
             "message": "", "lastUpdateTime": created, "lastTransitionTime": created},
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(replicas: i64, image: &str) -> Value {
        json!({"metadata": {"name": "jm", "uid": "u1", "generation": 1},
               "spec": {"replicas": replicas, "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": image}]}}}})
    }

    #[test]
    fn creates_missing_replicas_and_replaces_pods_of_an_old_template() {
        let mut n = 0;
        let mut suffix = || {
            n += 1;
            format!("p{n}")
        };
        let first = plan(&deployment(2, "a"), &[], &mut suffix);
        assert_eq!(first.create.len(), 2);
        assert_eq!(
            first.create[0]["metadata"]["ownerReferences"][0]["uid"],
            "u1"
        );
        assert_eq!(first.create[0]["metadata"]["labels"]["app"], "x");
        let changed = plan(&deployment(2, "b"), &first.create, &mut suffix);
        assert_eq!(changed.delete.len(), 2);
        assert_eq!(changed.create.len(), 2);
        let scaled = plan(&deployment(1, "a"), &first.create, &mut suffix);
        assert_eq!((scaled.create.len(), scaled.delete.len()), (0, 1));
    }

    #[test]
    fn a_scale_down_deletes_unready_then_cheapest_then_newest_pods_first() {
        let mut n = 0;
        let mut suffix = || {
            n += 1;
            format!("p{n}")
        };
        let mut pods = plan(&deployment(4, "a"), &[], &mut suffix).create;
        for (i, pod) in pods.iter_mut().enumerate() {
            pod["metadata"]["creationTimestamp"] = json!(format!("2026-01-01T00:00:0{i}Z"));
            pod["status"]["conditions"] = json!([{"type": "Ready", "status": "True"}]);
        }
        let names: Vec<String> = pods.iter().map(pod_name).collect();
        // Equal costs: the newest goes.
        let newest = plan(&deployment(3, "a"), &pods, &mut suffix);
        assert_eq!(newest.delete, [names[3].clone()]);
        // The oldest pod is cheap to delete: it goes first, then the newest.
        pods[0]["metadata"]["annotations"] = json!({POD_DELETION_COST: "-100"});
        let cheap = plan(&deployment(2, "a"), &pods, &mut suffix);
        assert_eq!(cheap.delete, [names[0].clone(), names[3].clone()]);
        // A pod that is not ready goes before any ready one, whatever its cost.
        pods[1]["status"]["conditions"] = json!([{"type": "Ready", "status": "False"}]);
        let unready = plan(&deployment(3, "a"), &pods, &mut suffix);
        assert_eq!(unready.delete, [names[1].clone()]);
    }
}
