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
    json_patch::patch(&mut patched, &patch)
        .map_err(|err| format!("the patch does not apply: {err}"))?;
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
}
