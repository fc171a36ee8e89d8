//! AdmissionReview v1 in, AdmissionReview v1 out, as pure functions: `/validate` applies the
//! rules the reconciler applies (the CRD schema, the kind's rules, and the changes a deployed
//! resource cannot take, against the spec it last deployed), and `/mutate` adds upstream's
//! defaults. What the API server then tells the user is the message built here.

use crate::reconcile::reconciled_spec::ReconciledSpec;
use flink_api::document::{FlinkResource, read_document};
use flink_api::validation::{self, FieldError, ValidationSettings};
use flink_api::{FlinkDeploymentSpec, FlinkSessionJobSpec, FlinkStateSnapshot};
use serde_json::{Value, json};

/// The label upstream's mutating webhook puts on a FlinkSessionJob: the session cluster it runs
/// in, so `kubectl get flinksessionjob -l target.session=NAME` lists a cluster's jobs.
pub const TARGET_SESSION_LABEL: &str = "target.session";

/// Answers a `/validate` review.
pub fn validate(review: &Value, settings: &ValidationSettings) -> Value {
    let request = review.get("request").unwrap_or(&Value::Null);
    let uid = request.get("uid").cloned().unwrap_or(json!(""));
    let operation = request
        .get("operation")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !matches!(operation, "CREATE" | "UPDATE") || unjudged_update(request) {
        return answer(uid, json!({"allowed": true}));
    }
    let errors = problems(request, settings);
    if errors.is_empty() {
        return answer(uid, json!({"allowed": true}));
    }
    let message = errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    answer(
        uid,
        json!({
            "allowed": false,
            "status": {"code": 422, "reason": "Invalid", "message": message},
        }),
    )
}

/// Answers a `/mutate` review: a JSON patch, or nothing to change.
pub fn mutate(review: &Value) -> Value {
    let request = review.get("request").unwrap_or(&Value::Null);
    let uid = request.get("uid").cloned().unwrap_or(json!(""));
    let object = request.get("object").unwrap_or(&Value::Null);
    let patch = defaults(object);
    if patch.is_empty() {
        return answer(uid, json!({"allowed": true}));
    }
    let bytes = serde_json::to_vec(&Value::Array(patch)).unwrap_or_default();
    answer(
        uid,
        json!({
            "allowed": true,
            "patchType": "JSONPatch",
            "patch": serde_json::to_value(k8s_openapi::ByteString(bytes)).unwrap_or(Value::Null),
        }),
    )
}

/// An UPDATE that leaves the spec as it was (finalizers, labels, annotations, the status), or of
/// an object being deleted, is not judged: the spec was admitted before, and the rules may have
/// tightened since (an operator setting changed, an upgrade of the operator), but refusing the
/// operator's own finalizer removal would leave the resource undeletable.
fn unjudged_update(request: &Value) -> bool {
    if request.get("operation").and_then(Value::as_str) != Some("UPDATE") {
        return false;
    }
    let object = request.get("object").unwrap_or(&Value::Null);
    let old = request.get("oldObject").unwrap_or(&Value::Null);
    object.pointer("/metadata/deletionTimestamp").is_some()
        || (!old.is_null() && object.get("spec") == old.get("spec"))
}

fn answer(uid: Value, mut response: Value) -> Value {
    response["uid"] = uid;
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
}

/// Every problem with the object of a CREATE or UPDATE, with its field path.
fn problems(request: &Value, settings: &ValidationSettings) -> Vec<FieldError> {
    let object = request.get("object").cloned().unwrap_or(Value::Null);
    let resource = match read_document(object) {
        Ok(resource) => resource,
        Err(problems) => return problems.errors,
    };
    if resource.is_canary() {
        return Vec::new();
    }
    let mut errors = resource.validate(settings);
    // Changes are judged against what the operator deployed (as the reconciler does), read
    // from the status that travels with the object.
    match &resource {
        FlinkResource::Deployment(deployment) => {
            if let Some(last) = deployed::<FlinkDeploymentSpec>(request) {
                errors.extend(validation::deployment_change(&last, &deployment.spec));
            }
        }
        FlinkResource::SessionJob(job) => {
            if let Some(last) = deployed::<FlinkSessionJobSpec>(request) {
                errors.extend(validation::session_job_change(&last, &job.spec));
            }
        }
        FlinkResource::Snapshot(snapshot) => {
            let old = request
                .get("oldObject")
                .cloned()
                .and_then(|o| serde_json::from_value::<FlinkStateSnapshot>(o).ok());
            if let Some(old) = old {
                errors.extend(validation::snapshot_change(&old, snapshot));
            }
        }
        FlinkResource::BlueGreen(_) => {}
    }
    errors
}

/// The spec last deployed, from the object's (or the old object's) status.
fn deployed<S: serde::Serialize + serde::de::DeserializeOwned>(request: &Value) -> Option<S> {
    ["object", "oldObject"].iter().find_map(|which| {
        let text = request
            .get(*which)?
            .pointer("/status/reconciliationStatus/lastReconciledSpec")?
            .as_str()?;
        ReconciledSpec::<S>::from_json(text).ok().map(|r| r.spec)
    })
}

/// JSON patch operations that add upstream's defaults to `object`.
fn defaults(object: &Value) -> Vec<Value> {
    if object.get("kind").and_then(Value::as_str) != Some("FlinkSessionJob") {
        return Vec::new();
    }
    let Some(target) = object
        .pointer("/spec/deploymentName")
        .and_then(Value::as_str)
    else {
        return Vec::new();
    };
    let labels = object.pointer("/metadata/labels");
    if labels
        .and_then(|l| l.get(TARGET_SESSION_LABEL))
        .and_then(Value::as_str)
        == Some(target)
    {
        return Vec::new();
    }
    match labels {
        Some(Value::Object(_)) => vec![json!({
            "op": "add",
            "path": format!("/metadata/labels/{}", TARGET_SESSION_LABEL.replace('~', "~0").replace('/', "~1")),
            "value": target,
        })],
        _ => vec![json!({
            "op": "add",
            "path": "/metadata/labels",
            "value": {TARGET_SESSION_LABEL: target},
        })],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review(operation: &str, object: Value, old: Option<Value>) -> Value {
        json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "operation": operation,
                        "object": object, "oldObject": old}
        })
    }

    fn deployment(parallelism: i64) -> Value {
        json!({
            "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkDeployment",
            "metadata": {"name": "orders", "namespace": "team-a"},
            "spec": {"image": "flink:2.3", "flinkVersion": "v2_3",
                     "jobManager": {"resource": {"memory": "1g", "cpu": 1}},
                     "taskManager": {"resource": {"memory": "1g", "cpu": 1}},
                     "job": {"jarURI": "local:///opt/flink/usrlib/job.jar", "parallelism": parallelism, "upgradeMode": "stateless"}}
        })
    }

    #[test]
    fn a_valid_resource_is_allowed_with_its_uid() {
        let answer = validate(&review("CREATE", deployment(2), None), &Default::default());
        assert_eq!(answer["kind"], "AdmissionReview");
        assert_eq!(answer["response"]["allowed"], true);
        assert_eq!(
            answer["response"]["uid"],
            "705ab4f5-6393-11e8-b7cc-42010a800002"
        );
    }

    #[test]
    fn an_invalid_resource_is_denied_with_the_field_and_the_fix() {
        let answer = validate(&review("CREATE", deployment(0), None), &Default::default());
        assert_eq!(answer["response"]["allowed"], false);
        assert_eq!(answer["response"]["status"]["code"], 422);
        let message = answer["response"]["status"]["message"].as_str().unwrap();
        assert!(
            message.contains("spec.job.parallelism: must be at least 1, got 0"),
            "{message}"
        );
    }

    /// The operator's own finalizer removal of a resource whose spec the rules refuse today
    /// (they tightened since it was admitted) is not refused: it would never be deleted.
    #[test]
    fn an_update_that_leaves_the_spec_alone_or_of_a_deleted_object_is_not_judged() {
        let invalid = deployment(0);
        let mut relabelled = invalid.clone();
        relabelled["metadata"]["finalizers"] = json!([]);
        let answer = validate(
            &review("UPDATE", relabelled, Some(invalid.clone())),
            &Default::default(),
        );
        assert_eq!(answer["response"]["allowed"], true);
        let mut deleting = invalid.clone();
        deleting["metadata"]["deletionTimestamp"] = json!("2026-12-07T00:00:00Z");
        deleting["spec"]["job"]["parallelism"] = json!(-1);
        let answer = validate(
            &review("UPDATE", deleting, Some(invalid.clone())),
            &Default::default(),
        );
        assert_eq!(answer["response"]["allowed"], true);
        let answer = validate(
            &review("UPDATE", deployment(-1), Some(invalid)),
            &Default::default(),
        );
        assert_eq!(
            answer["response"]["allowed"], false,
            "a spec change is judged"
        );
    }

    #[test]
    fn an_update_is_judged_against_the_deployed_spec() {
        let mut deployed = deployment(2);
        let last = ReconciledSpec {
            spec: serde_json::from_value::<FlinkDeploymentSpec>(deployed["spec"].clone()).unwrap(),
            generation: 1,
            first_deployment: true,
            revision: 0,
        };
        deployed["status"] =
            json!({"reconciliationStatus": {"lastReconciledSpec": last.to_json()}});
        let mut session = deployed.clone();
        session["spec"].as_object_mut().unwrap().remove("job");
        let answer = validate(
            &review("UPDATE", session, Some(deployed.clone())),
            &Default::default(),
        );
        assert_eq!(answer["response"]["allowed"], false);
        let message = answer["response"]["status"]["message"].as_str().unwrap();
        assert!(
            message.starts_with("spec.job: cannot be removed"),
            "{message}"
        );
        let mut scaled = deployed.clone();
        scaled["spec"]["job"]["parallelism"] = json!(4);
        let answer = validate(
            &review("UPDATE", scaled, Some(deployed)),
            &Default::default(),
        );
        assert_eq!(answer["response"]["allowed"], true);
    }

    #[test]
    fn deletes_and_canaries_are_not_judged() {
        let answer = validate(
            &review("DELETE", Value::Null, Some(deployment(0))),
            &Default::default(),
        );
        assert_eq!(answer["response"]["allowed"], true);
        let mut canary = deployment(0);
        canary["metadata"]["labels"] = json!({"flink.apache.org/canary": "true"});
        let answer = validate(&review("CREATE", canary, None), &Default::default());
        assert_eq!(answer["response"]["allowed"], true);
    }

    #[test]
    fn a_session_job_gets_its_target_session_label() {
        let job = json!({
            "apiVersion": "flink.apache.org/v1beta1", "kind": "FlinkSessionJob",
            "metadata": {"name": "reports", "namespace": "team-a", "labels": {"team": "a"}},
            "spec": {"deploymentName": "shared", "job": {"jarURI": "https://repo/x.jar"}}
        });
        let answer = mutate(&review("CREATE", job.clone(), None));
        assert_eq!(answer["response"]["patchType"], "JSONPatch");
        let patch: k8s_openapi::ByteString =
            serde_json::from_value(answer["response"]["patch"].clone()).unwrap();
        let ops: Value = serde_json::from_slice(&patch.0).unwrap();
        assert_eq!(
            ops,
            json!([{"op": "add", "path": "/metadata/labels/target.session", "value": "shared"}])
        );
        let mut patched = job.clone();
        let ops: json_patch::Patch = serde_json::from_value(ops).unwrap();
        json_patch::patch(&mut patched, &ops).unwrap();
        assert_eq!(patched["metadata"]["labels"]["target.session"], "shared");
        let again = mutate(&review("UPDATE", patched, Some(job)));
        assert_eq!(again["response"].get("patch"), None, "nothing left to add");
        let answer = mutate(&review("CREATE", deployment(2), None));
        assert_eq!(
            answer["response"],
            json!({"allowed": true, "uid": "705ab4f5-6393-11e8-b7cc-42010a800002"})
        );
    }
}
