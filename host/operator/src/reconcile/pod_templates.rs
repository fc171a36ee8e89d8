//! What the tenant's pod-template plugin's answers do to a FlinkDeployment's plan. The
//! controller asks the plugin about each pod template the plan applies (a plugin call is I/O,
//! after `deployment::decide`, because it patches what `render` produced); deciding what the
//! answers mean for the plan (applied, fallen back, or the whole plan held) is here.

use super::status::{error_json, policy_decision, record_policy};
use super::{Effect, Note, Plan, Reason};
use flink_api::{FlinkDeploymentStatus, PolicyDecision};
use flink_policy::ExtensionPoint;
use std::time::Duration;

/// How one pod template fared.
#[derive(Debug, Clone, PartialEq)]
pub enum PodOutcome {
    Applied,
    Fallback(String),
    Held(String),
}

/// A plan whose resource has no plugin for `point` (any more): its record goes.
pub fn without_decision(
    mut plan: Plan<FlinkDeploymentStatus>,
    point: ExtensionPoint,
) -> Plan<FlinkDeploymentStatus> {
    let world = point.world();
    plan.status.policies.retain(|d| d.extension_point != world);
    if let Some(intent) = plan.intent.as_mut() {
        intent.policies.retain(|d| d.extension_point != world);
    }
    plan
}

/// The plan after its pod templates went through the plugin: recorded in status when all were
/// patched or fell back; held when one could not be: no action, the stored status (plus the
/// reason) is written, and the same decision is tried again soon.
pub fn apply_outcomes(
    mut plan: Plan<FlinkDeploymentStatus>,
    stored: &FlinkDeploymentStatus,
    base: PolicyDecision,
    outcomes: &[PodOutcome],
) -> Plan<FlinkDeploymentStatus> {
    let decision =
        |outcome: &str, message: Option<String>| policy_decision(&base, outcome, message);
    let held = outcomes.iter().find_map(|o| match o {
        PodOutcome::Held(why) => Some(why.clone()),
        _ => None,
    });
    if let Some(why) = held {
        let mut status = stored.clone();
        record_policy(&mut status.policies, decision("Held", Some(why.clone())));
        let message = format!(
            "The pod-template policy {} ({}): {why}; nothing was applied",
            base.plugin, base.digest
        );
        // Shaped with upstream's default limits: the operator's `exception.*` settings do not
        // reach the plugin's hold (a message of ours, not an exception).
        status.error = Some(error_json(
            "PolicyError",
            &message,
            None,
            &super::status::ErrorShape::default(),
        ));
        return Plan {
            intent: None,
            actions: plan
                .actions
                .into_iter()
                .filter(|a| matches!(a, Effect::AddFinalizer))
                .collect(),
            status,
            notes: vec![Note::warning(Reason::PolicyHeld, message)],
            requeue: plan.requeue.min(Duration::from_secs(30)),
        };
    }
    let fallbacks: Vec<&str> = outcomes
        .iter()
        .filter_map(|o| match o {
            PodOutcome::Fallback(why) => Some(why.as_str()),
            _ => None,
        })
        .collect();
    let recorded = if fallbacks.is_empty() {
        decision("Applied", None)
    } else {
        let why = fallbacks.join("; ");
        plan.notes.push(Note::warning(
            Reason::PolicyFallback,
            format!("Pod-template policy {}: {why}", base.plugin),
        ));
        decision("Fallback", Some(why))
    };
    if let Some(intent) = plan.intent.as_mut() {
        record_policy(&mut intent.policies, recorded.clone());
    }
    record_policy(&mut plan.status.policies, recorded);
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::ClusterObjects;
    use serde_json::json;

    fn base() -> PolicyDecision {
        PolicyDecision {
            extension_point: "pod-template".into(),
            tenant: "team-a".into(),
            plugin: "connectors".into(),
            digest: "sha256:00".into(),
            outcome: String::new(),
            message: None,
        }
    }

    fn deploying_plan() -> Plan<FlinkDeploymentStatus> {
        let deploying = FlinkDeploymentStatus {
            error: None,
            ..Default::default()
        };
        Plan {
            intent: Some(deploying.clone()),
            actions: vec![
                Effect::AddFinalizer,
                Effect::ApplyCluster(Box::new(ClusterObjects {
                    config_map: json!({}),
                    internal_service: json!({}),
                    rest_service: json!({}),
                    job_manager: json!({}),
                    task_manager: None,
                    ingress: None,
                    ingress_unmanaged: false,
                })),
            ],
            status: deploying,
            notes: vec![Note::normal(Reason::Submit, "Starting deployment")],
            requeue: Duration::from_secs(60),
        }
    }

    #[test]
    fn a_plugin_without_a_fallback_holds_the_whole_plan() {
        let stored = FlinkDeploymentStatus {
            observed_generation: Some(3),
            ..Default::default()
        };
        let held = apply_outcomes(
            deploying_plan(),
            &stored,
            base(),
            &[
                PodOutcome::Applied,
                PodOutcome::Held("the plugin trapped".into()),
            ],
        );
        assert_eq!(
            held.actions,
            vec![Effect::AddFinalizer],
            "only the finalizer may still be added"
        );
        assert_eq!(held.intent, None);
        assert_eq!(
            held.status.observed_generation,
            Some(3),
            "the stored status, not the plan's"
        );
        assert_eq!(held.status.policies[0].outcome, "Held");
        assert!(
            held.status
                .error
                .as_deref()
                .unwrap()
                .contains("the plugin trapped; nothing was applied")
        );
        assert_eq!(held.notes.len(), 1);
        assert_eq!(held.notes[0].reason, "PolicyHeld");
        assert_eq!(held.requeue, Duration::from_secs(30));
    }

    #[test]
    fn a_fallback_is_recorded_and_announced_and_the_plan_goes_ahead() {
        let plan = apply_outcomes(
            deploying_plan(),
            &Default::default(),
            base(),
            &[PodOutcome::Fallback(
                "the plugin ran out of fuel; the last good patch was applied instead".into(),
            )],
        );
        assert_eq!(plan.actions.len(), 2);
        assert_eq!(plan.status.policies[0].outcome, "Fallback");
        assert_eq!(
            plan.intent.as_ref().unwrap().policies[0].outcome,
            "Fallback",
            "recorded before the actions too"
        );
        assert!(
            plan.notes
                .iter()
                .any(|n| n.reason == "PolicyFallback" && n.warning)
        );
    }

    #[test]
    fn an_applied_patch_replaces_the_previous_record_of_its_extension_point() {
        let mut plan = deploying_plan();
        plan.status.policies.push(PolicyDecision {
            outcome: "Held".into(),
            message: Some("old".into()),
            ..base()
        });
        let plan = apply_outcomes(
            plan,
            &Default::default(),
            base(),
            &[PodOutcome::Applied, PodOutcome::Applied],
        );
        assert_eq!(plan.status.policies.len(), 1);
        assert_eq!(plan.status.policies[0].outcome, "Applied");
        assert_eq!(plan.status.policies[0].message, None);
    }
}
