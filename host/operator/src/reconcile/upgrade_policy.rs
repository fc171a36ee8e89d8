//! What a tenant's upgrade-strategy plugin said about the upgrade a reconcile is about to
//! start. The controller asks the plugin (async, sandboxed) before deciding and hands the
//! answer in; `decide` stays pure and applies it: proceed in the chosen mode, wait until a
//! time, refuse, or hold when the plugin could not answer (fail closed).

use super::reconciled_spec::ReconciledSpec;
use super::spec_diff::{DiffClass, deployment_diff};
use flink_api::{
    FlinkDeployment, FlinkDeploymentSpec, JobState, PolicyDecision, ReconciliationState,
    UpgradeMode,
};

#[derive(Clone, Debug, PartialEq)]
pub enum UpgradeVerdict {
    Proceed {
        mode: UpgradeMode,
        savepoint_first: bool,
        reason: String,
    },
    WaitUntil {
        until_ms: i64,
        reason: String,
    },
    Refuse {
        reason: String,
    },
    /// The plugin failed (the message says how): the upgrade is held.
    Unavailable {
        reason: String,
    },
}

/// The verdict and who gave it (`outcome` and `message` are filled in by `decide`).
#[derive(Clone, Debug, PartialEq)]
pub struct UpgradePolicy {
    pub by: PolicyDecision,
    pub verdict: UpgradeVerdict,
}

/// The upgrade a reconcile would start now: the spec running and the spec to roll out. None
/// when nothing is to be started (no change, a change that is no upgrade, an upgrade already
/// under way, or a suspend/resume, which the user asked for and no policy delays).
pub fn pending_upgrade(
    resource: &FlinkDeployment,
) -> Option<(FlinkDeploymentSpec, FlinkDeploymentSpec)> {
    let status = resource.status.as_ref()?;
    if status.upgrade.is_some() {
        return None;
    }
    let reconciliation = status.reconciliation_status.as_ref()?;
    if reconciliation.state == ReconciliationState::Upgrading {
        return None;
    }
    let last = ReconciledSpec::<FlinkDeploymentSpec>::from_json(
        reconciliation.last_reconciled_spec.as_deref()?,
    )
    .ok()?;
    let suspended = |s: &FlinkDeploymentSpec| {
        s.job
            .as_ref()
            .is_some_and(|j| j.state == JobState::Suspended)
    };
    if suspended(&last.spec) || suspended(&resource.spec) {
        return None;
    }
    (deployment_diff(&last.spec, &resource.spec).class == DiffClass::Upgrade)
        .then(|| (last.spec, resource.spec.clone()))
}

/// The record of a policy decision in `status.policies`, and whether it is news (for events).
pub fn record(
    policies: &mut Vec<PolicyDecision>,
    by: &PolicyDecision,
    outcome: &str,
    message: String,
) -> bool {
    super::status::record_policy(
        policies,
        super::status::policy_decision(by, outcome, Some(message)),
    )
}
