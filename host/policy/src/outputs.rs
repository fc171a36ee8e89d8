//! The host never takes a plugin's word as is: every answer is checked and, where a safe
//! answer is near, clamped; what was changed is said in notes. Pure functions, unit-tested.

use crate::guard::{self, PodGuard};
use crate::model::{
    PodTemplateDecision, ScalingDecision, ScalingInput, UpgradeDecision, UpgradeInput, UpgradeMode,
    VertexParallelism,
};
use serde_json::Value;
use std::collections::BTreeSet;

/// Longest reason shown in events and status; longer ones are cut.
const REASON_CHARS: usize = 1024;
/// Farthest ahead an upgrade may be postponed by one answer (a week).
pub const MAX_WAIT_MS: i64 = 7 * 24 * 3_600_000;

fn reason(text: String, notes: &mut Vec<String>) -> String {
    if text.chars().count() <= REASON_CHARS {
        return text;
    }
    notes.push(format!("the reason was cut to {REASON_CHARS} characters"));
    let mut cut: String = text.chars().take(REASON_CHARS).collect();
    cut.push('…');
    cut
}

/// A scaling answer: every vertex named must exist (once), parallelism is clamped to
/// [1, max parallelism], and an override that changes nothing becomes a veto.
pub fn scaling(
    input: &ScalingInput,
    decision: ScalingDecision,
) -> Result<(ScalingDecision, Vec<String>), String> {
    let mut notes = Vec::new();
    let decision = match decision {
        ScalingDecision::Follow => ScalingDecision::Follow,
        ScalingDecision::Veto { reason: text } => {
            let text = if text.trim().is_empty() {
                "the scaling policy vetoed without a reason".into()
            } else {
                text
            };
            ScalingDecision::Veto {
                reason: reason(text, &mut notes),
            }
        }
        ScalingDecision::Override {
            vertices,
            reason: text,
        } => {
            let mut seen = BTreeSet::new();
            let mut changed = Vec::new();
            for VertexParallelism {
                vertex_id,
                parallelism,
            } in vertices
            {
                let Some(vertex) = input.vertices.iter().find(|v| v.id == vertex_id) else {
                    return Err(format!(
                        "it sets the parallelism of vertex {vertex_id:?}, which the job does not have"
                    ));
                };
                if !seen.insert(vertex_id.clone()) {
                    return Err(format!(
                        "it sets the parallelism of vertex {vertex_id:?} twice"
                    ));
                }
                let max = vertex.max_parallelism.max(1);
                let clamped = parallelism.clamp(1, max);
                if clamped != parallelism {
                    notes.push(format!(
                        "vertex {} ({vertex_id}): parallelism {parallelism} clamped to {clamped} (bounds 1..={max})",
                        vertex.name
                    ));
                }
                if clamped != vertex.parallelism {
                    changed.push(VertexParallelism {
                        vertex_id,
                        parallelism: clamped,
                    });
                }
            }
            let text = if text.trim().is_empty() {
                "the scaling policy gave no reason".into()
            } else {
                text
            };
            if changed.is_empty() {
                notes.push("the override changes no vertex: no scaling".into());
                ScalingDecision::Veto {
                    reason: reason(text, &mut notes),
                }
            } else {
                ScalingDecision::Override {
                    vertices: changed,
                    reason: reason(text, &mut notes),
                }
            }
        }
    };
    Ok((decision, notes))
}

/// An upgrade answer: a plugin may never turn a stateful upgrade into a stateless one (that
/// would drop the job's state on a plugin's word), and a wait is kept between now and a week.
pub fn upgrade(
    input: &UpgradeInput,
    decision: UpgradeDecision,
) -> Result<(UpgradeDecision, Vec<String>), String> {
    let mut notes = Vec::new();
    let decision = match decision {
        UpgradeDecision::Proceed {
            mode,
            savepoint_first,
            reason: text,
        } => {
            if mode == UpgradeMode::Stateless && input.requested_mode != UpgradeMode::Stateless {
                return Err(format!(
                    "it chose a stateless upgrade for a job whose spec asks for {:?}; the operator never drops state on a policy's word",
                    input.requested_mode
                ));
            }
            UpgradeDecision::Proceed {
                mode,
                savepoint_first,
                reason: reason(text, &mut notes),
            }
        }
        UpgradeDecision::WaitUntil {
            until_epoch_ms,
            reason: text,
        } => {
            let earliest = input.now_epoch_ms + 1_000;
            let latest = input.now_epoch_ms + MAX_WAIT_MS;
            let until = until_epoch_ms.clamp(earliest, latest);
            if until != until_epoch_ms {
                notes.push(format!(
                    "the wait until {until_epoch_ms} was moved to {until} (1 s to 7 days ahead)"
                ));
            }
            UpgradeDecision::WaitUntil {
                until_epoch_ms: until,
                reason: reason(text, &mut notes),
            }
        }
        UpgradeDecision::Refuse { reason: text } => {
            let text = if text.trim().is_empty() {
                "the upgrade policy refused without a reason".into()
            } else {
                text
            };
            UpgradeDecision::Refuse {
                reason: reason(text, &mut notes),
            }
        }
    };
    Ok((decision, notes))
}

/// The most operations a pod-template patch may have.
pub const MAX_PATCH_OPERATIONS: usize = 1_000;
/// The largest template a patch may leave, in bytes of JSON (a ConfigMap, which carries a
/// native TaskManager template, holds 1 MiB).
pub const MAX_PATCHED_BYTES: usize = 1 << 20;
/// The deepest template a patch may leave (a PodTemplateSpec is about 12 levels deep).
pub const MAX_PATCHED_DEPTH: usize = 64;

/// A pod-template answer: a JSON Patch that applies to the rendered template, leaves a valid
/// PodTemplateSpec, and introduces nothing the tenant's guard forbids.
pub fn pod_template(
    template: &Value,
    patch_text: &str,
    guard: &PodGuard,
) -> Result<PodTemplateDecision, String> {
    let patch_value: Value =
        serde_json::from_str(patch_text).map_err(|err| format!("the patch is not JSON: {err}"))?;
    let patch: json_patch::Patch = serde_json::from_value(patch_value.clone())
        .map_err(|err| format!("the patch is not an RFC 6902 JSON Patch: {err}"))?;
    let mut patched = template.clone();
    apply_bounded(&mut patched, &patch)?;
    serde_json::from_value::<k8s_openapi::api::core::v1::PodTemplateSpec>(patched.clone())
        .map_err(|err| format!("the patched template is not a valid PodTemplateSpec: {err}"))?;
    let violations = guard::violations(template, &patched, guard);
    if !violations.is_empty() {
        return Err(format!(
            "the patch is refused by the tenant's guard: {}",
            violations.join("; ")
        ));
    }
    Ok(PodTemplateDecision {
        patch: patch_value,
        pod_template: patched,
    })
}

/// Applies `patch` one operation at a time, refusing before an operation would take the
/// document past [`MAX_PATCHED_BYTES`] or [`MAX_PATCHED_DEPTH`]: `copy` doubles a document per
/// operation, so 40 operations of a few bytes each could ask for terabytes. What an operation
/// adds is measured before it runs, and the measuring stops at the limit, so a refused patch
/// costs at most about the limit.
fn apply_bounded(doc: &mut Value, patch: &json_patch::Patch) -> Result<(), String> {
    use json_patch::PatchOperation as Op;
    if patch.0.len() > MAX_PATCH_OPERATIONS {
        return Err(format!(
            "the patch has {} operations, more than the {MAX_PATCH_OPERATIONS} the host applies",
            patch.0.len()
        ));
    }
    let mut size = weight(doc, usize::MAX);
    for (i, op) in patch.0.iter().enumerate() {
        let budget = MAX_PATCHED_BYTES.saturating_sub(size) + 1;
        let (added, path, value_depth) = match op {
            Op::Add(op) => (
                weight(&op.value, budget),
                op.path.as_str(),
                depth(&op.value),
            ),
            Op::Replace(op) => (
                weight(&op.value, budget),
                op.path.as_str(),
                depth(&op.value),
            ),
            Op::Copy(op) => match doc.pointer(op.from.as_str()) {
                Some(source) => (weight(source, budget), op.path.as_str(), depth(source)),
                // json_patch names the missing source below.
                None => (0, op.path.as_str(), 0),
            },
            // A move adds no bytes, but can nest what it moves deeper.
            Op::Move(op) => (
                0,
                op.path.as_str(),
                doc.pointer(op.from.as_str()).map_or(0, depth),
            ),
            Op::Remove(_) | Op::Test(_) => (0, "", 0),
        };
        size = size.saturating_add(added);
        if size > MAX_PATCHED_BYTES {
            return Err(format!(
                "operation {i} would make the template larger than {MAX_PATCHED_BYTES} bytes; the patch is refused"
            ));
        }
        let levels = path.matches('/').count() + value_depth;
        if levels > MAX_PATCHED_DEPTH {
            return Err(format!(
                "operation {i} would nest the template {levels} levels deep, more than {MAX_PATCHED_DEPTH}; the patch is refused"
            ));
        }
        json_patch::patch(doc, std::slice::from_ref(op))
            .map_err(|err| format!("the patch does not apply: operation {i}: {err}"))?;
    }
    Ok(())
}

/// About how many bytes `value` takes as JSON, counted no further than `budget`.
fn weight(value: &Value, budget: usize) -> usize {
    let mut total = 0usize;
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        total += match v {
            Value::Null | Value::Bool(_) => 5,
            Value::Number(_) => 8,
            Value::String(s) => s.len() + 2,
            Value::Array(items) => {
                stack.extend(items);
                2 + items.len()
            }
            Value::Object(map) => {
                for (key, item) in map {
                    total += key.len() + 4;
                    stack.push(item);
                }
                2
            }
        };
        if total > budget {
            return total;
        }
    }
    total
}

/// How many levels of arrays and objects `value` nests.
fn depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((v, level)) = stack.pop() {
        deepest = deepest.max(level);
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|i| (i, level + 1))),
            Value::Object(map) => stack.extend(map.values().map(|i| (i, level + 1))),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ResourceRef, SnapshotInfo, Vertex};
    use serde_json::json;

    fn job() -> ScalingInput {
        let vertex = |id: &str, p| Vertex {
            id: id.into(),
            name: format!("op-{id}"),
            parallelism: p,
            max_parallelism: 8,
            busy_ratio: None,
            processing_rate: None,
            target_rate: None,
            pending_records: None,
            is_source: false,
        };
        ScalingInput {
            resource: ResourceRef::default(),
            job_id: "j".into(),
            now_epoch_ms: 0,
            vertices: vec![vertex("a", 2), vertex("b", 4)],
            recommendations: vec![],
            tenant_slots_in_use: 0,
            tenant_usage_error: None,
            config: json!({}),
        }
    }

    fn set(list: &[(&str, u32)]) -> ScalingDecision {
        ScalingDecision::Override {
            vertices: list
                .iter()
                .map(|(id, p)| VertexParallelism {
                    vertex_id: (*id).into(),
                    parallelism: *p,
                })
                .collect(),
            reason: "r".into(),
        }
    }

    #[test]
    fn parallelism_is_clamped_to_the_vertex_bounds_and_said_so() {
        let (decision, notes) = scaling(&job(), set(&[("a", 0), ("b", 1000)])).unwrap();
        assert_eq!(decision, set(&[("a", 1), ("b", 8)]));
        assert_eq!(notes.len(), 2);
        assert!(
            notes[1].contains("parallelism 1000 clamped to 8"),
            "{notes:?}"
        );
    }

    #[test]
    fn unknown_or_repeated_vertices_are_invalid() {
        assert!(
            scaling(&job(), set(&[("zzz", 2)]))
                .unwrap_err()
                .contains("\"zzz\", which the job does not have")
        );
        assert!(
            scaling(&job(), set(&[("a", 3), ("a", 4)]))
                .unwrap_err()
                .contains("twice")
        );
    }

    #[test]
    fn an_override_that_changes_nothing_is_a_veto() {
        let (decision, _) = scaling(&job(), set(&[("a", 2), ("b", 4)])).unwrap();
        assert!(matches!(decision, ScalingDecision::Veto { .. }));
    }

    fn upgrade_input(mode: UpgradeMode) -> UpgradeInput {
        UpgradeInput {
            resource: ResourceRef::default(),
            now_epoch_ms: 1_000_000,
            old_spec: json!({}),
            new_spec: json!({}),
            requested_mode: mode,
            job_state: "RUNNING".into(),
            snapshots: SnapshotInfo::default(),
            config: json!({}),
        }
    }

    #[test]
    fn a_policy_cannot_drop_state() {
        let stateless = UpgradeDecision::Proceed {
            mode: UpgradeMode::Stateless,
            savepoint_first: false,
            reason: String::new(),
        };
        let err = upgrade(&upgrade_input(UpgradeMode::Savepoint), stateless.clone()).unwrap_err();
        assert!(err.contains("never drops state"), "{err}");
        assert!(upgrade(&upgrade_input(UpgradeMode::Stateless), stateless).is_ok());
    }

    #[test]
    fn waits_are_kept_between_a_second_and_a_week() {
        let wait = |until| UpgradeDecision::WaitUntil {
            until_epoch_ms: until,
            reason: "w".into(),
        };
        let (d, notes) = upgrade(&upgrade_input(UpgradeMode::Savepoint), wait(i64::MAX)).unwrap();
        assert_eq!(d, wait(1_000_000 + MAX_WAIT_MS));
        assert_eq!(notes.len(), 1);
        let (d, _) = upgrade(&upgrade_input(UpgradeMode::Savepoint), wait(0)).unwrap();
        assert_eq!(d, wait(1_001_000));
    }

    #[test]
    fn a_pod_patch_must_apply_type_check_and_pass_the_guard() {
        let template = json!({"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "flink-main-container"}]}});
        let ok = pod_template(
            &template,
            r#"[{"op": "add", "path": "/metadata/labels/team", "value": "a"}]"#,
            &PodGuard::default(),
        )
        .unwrap();
        assert_eq!(ok.pod_template["metadata"]["labels"]["team"], "a");
        let err = pod_template(&template, r#"{"op": "add"}"#, &PodGuard::default()).unwrap_err();
        assert!(err.contains("not an RFC 6902 JSON Patch"), "{err}");
        let err = pod_template(
            &template,
            r#"[{"op": "remove", "path": "/spec/volumes"}]"#,
            &PodGuard::default(),
        )
        .unwrap_err();
        assert!(err.contains("does not apply"), "{err}");
        let err = pod_template(
            &template,
            r#"[{"op": "add", "path": "/spec/containers/0/ports", "value": "many"}]"#,
            &PodGuard::default(),
        )
        .unwrap_err();
        assert!(err.contains("not a valid PodTemplateSpec"), "{err}");
        let err = pod_template(
            &template,
            r#"[{"op": "add", "path": "/spec/hostPID", "value": true}]"#,
            &PodGuard::default(),
        )
        .unwrap_err();
        assert!(
            err.contains("refused by the tenant's guard: spec.hostPID"),
            "{err}"
        );
    }

    fn rendered() -> Value {
        json!({"metadata": {"labels": {"app": "orders"}},
               "spec": {"containers": [{"name": "flink-main-container", "image": "flink:2.3"}]}})
    }

    /// The patch of the issue: 40 `copy` operations, each doubling the template (under 3 KB
    /// of text). Before the host measured while applying, this asked for terabytes.
    #[test]
    fn a_copy_bomb_is_refused_at_the_size_limit_without_being_applied() {
        let mut ops =
            vec![json!({"op": "add", "path": "/metadata/annotations", "value": {"a": "x"}})];
        for i in 0..40 {
            ops.push(json!({"op": "copy", "from": "/metadata/annotations", "path": format!("/metadata/annotations/k{i}")}));
        }
        let started = std::time::Instant::now();
        let error = pod_template(
            &rendered(),
            &Value::Array(ops).to_string(),
            &PodGuard::default(),
        )
        .expect_err("refused");
        assert!(error.contains("larger than 1048576 bytes"), "{error}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn too_many_operations_and_too_deep_templates_are_refused() {
        let many: Vec<Value> = (0..=MAX_PATCH_OPERATIONS)
            .map(|_| json!({"op": "test", "path": "/spec", "value": null}))
            .collect();
        let error = pod_template(
            &rendered(),
            &Value::Array(many).to_string(),
            &PodGuard::default(),
        )
        .expect_err("refused");
        assert!(error.contains("1001 operations"), "{error}");
        let mut deep = json!("bottom");
        for _ in 0..70 {
            deep = json!({"d": deep});
        }
        let patch = json!([{"op": "add", "path": "/metadata/annotations", "value": deep}]);
        let error = pod_template(&rendered(), &patch.to_string(), &PodGuard::default())
            .expect_err("refused");
        assert!(error.contains("levels deep"), "{error}");
        // Chains each within the bound, moved one into the next: each move nests deeper.
        let mut chain = json!("bottom");
        for _ in 0..40 {
            chain = json!({"d": chain});
        }
        let mut ops = vec![json!({"op": "add", "path": "/metadata/annotations", "value": {}})];
        for i in 0..10 {
            ops.push(
                json!({"op": "add", "path": format!("/metadata/annotations/c{i}"), "value": chain}),
            );
        }
        let leaf = "/d".repeat(40);
        for i in 1..10 {
            ops.push(
                json!({"op": "move", "from": format!("/metadata/annotations/c{}", i - 1),
                            "path": format!("/metadata/annotations/c{i}{leaf}")}),
            );
        }
        let error = pod_template(
            &rendered(),
            &Value::Array(ops).to_string(),
            &PodGuard::default(),
        )
        .expect_err("refused");
        assert!(error.contains("levels deep"), "{error}");
    }

    #[test]
    fn an_ordinary_patch_applies_whole() {
        let patch = json!([
            {"op": "add", "path": "/metadata/annotations", "value": {"team": "a"}},
            {"op": "copy", "from": "/metadata/annotations/team", "path": "/metadata/annotations/owner"},
            {"op": "move", "from": "/metadata/annotations/owner", "path": "/metadata/annotations/lead"},
        ]);
        let decision =
            pod_template(&rendered(), &patch.to_string(), &PodGuard::default()).expect("applies");
        assert_eq!(
            decision.pod_template["metadata"]["annotations"],
            json!({"team": "a", "lead": "a"})
        );
    }
}

#[cfg(test)]
mod patch_properties {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn template() -> Value {
        json!({"metadata": {"labels": {"app": "orders"}, "annotations": {"a": "x"}},
               "spec": {"containers": [{"name": "flink-main-container", "image": "flink:2.3",
                        "env": [{"name": "TZ", "value": "UTC"}]}],
                        "volumes": [{"name": "conf", "configMap": {"name": "c"}}]}})
    }

    fn pointer() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "/metadata/annotations/b",
            "/metadata/annotations",
            "/metadata/labels/app",
            "/spec/containers/0/env/-",
            "/spec/containers/0/securityContext",
            "/spec/volumes/-",
            "/spec/volumes/0",
            "/spec/hostNetwork",
            "/spec",
            "",
            "/nope/deeper",
        ])
        .prop_map(String::from)
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(json!(true)),
            Just(json!({"privileged": true})),
            Just(json!({"name": "h", "hostPath": {"path": "/"}})),
            "[a-z]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect()))
        })
    }

    fn operation() -> impl Strategy<Value = Value> {
        prop_oneof![
            (pointer(), value()).prop_map(|(p, v)| json!({"op": "add", "path": p, "value": v})),
            (pointer(), value()).prop_map(|(p, v)| json!({"op": "replace", "path": p, "value": v})),
            (pointer(), pointer()).prop_map(|(f, p)| json!({"op": "copy", "from": f, "path": p})),
            (pointer(), pointer()).prop_map(|(f, p)| json!({"op": "move", "from": f, "path": p})),
            pointer().prop_map(|p| json!({"op": "remove", "path": p})),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

        /// Whatever patch a plugin returns, the host answers (never panics), and what it
        /// accepts stays within the bounds and passes the default guard.
        #[test]
        fn any_patch_is_refused_or_yields_a_bounded_guarded_template(
            ops in prop::collection::vec(operation(), 0..60)
        ) {
            let text = Value::Array(ops).to_string();
            if let Ok(decision) = pod_template(&template(), &text, &PodGuard::default()) {
                prop_assert!(weight(&decision.pod_template, usize::MAX) <= MAX_PATCHED_BYTES);
                prop_assert!(depth(&decision.pod_template) <= MAX_PATCHED_DEPTH);
                prop_assert!(guard::violations(&template(), &decision.pod_template, &PodGuard::default()).is_empty());
            }
        }
    }
}
