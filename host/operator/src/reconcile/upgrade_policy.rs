//! What a tenant's upgrade-strategy plugin said about the upgrade a reconcile is about to
//! start. The controller asks the plugin (async, sandboxed) before deciding and hands the
//! answer in; `decide` stays pure and applies it: proceed in the chosen mode, wait until a
//! time, refuse, or hold when the plugin could not answer (fail closed).

use super::job::{Outcome, Pace};
use super::reconciled_spec::ReconciledSpec;
use super::spec_diff::{DiffClass, deployment_diff, session_job_diff};
use super::{Note, Reason};
use flink_api::{
    FlinkDeployment, FlinkDeploymentSpec, FlinkSessionJob, FlinkSessionJobSpec, JobSpec, JobState,
    PolicyDecision, ReconciliationState, ReconciliationStatus, UpgradeMode, UpgradeProgress,
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

/// The upgrade a FlinkDeployment's reconcile would start now: the spec running and the spec to
/// roll out. None when nothing is to be started (no change, a change that is no upgrade, an
/// upgrade already under way, or a suspend/resume, which the user asked for and no policy
/// delays).
pub fn pending_upgrade(
    resource: &FlinkDeployment,
) -> Option<(FlinkDeploymentSpec, FlinkDeploymentSpec)> {
    let status = resource.status.as_ref()?;
    pending(
        status.upgrade.as_ref(),
        status.reconciliation_status.as_ref(),
        &resource.spec,
        |s: &FlinkDeploymentSpec| s.job.as_ref(),
        |old, new| deployment_diff(old, new).class == DiffClass::Upgrade,
    )
}

/// The same for a FlinkSessionJob.
pub fn pending_session_job_upgrade(
    resource: &FlinkSessionJob,
) -> Option<(FlinkSessionJobSpec, FlinkSessionJobSpec)> {
    let status = resource.status.as_ref()?;
    pending(
        status.upgrade.as_ref(),
        status.reconciliation_status.as_ref(),
        &resource.spec,
        |s: &FlinkSessionJobSpec| s.job.as_ref(),
        |old, new| session_job_diff(old, new).class == DiffClass::Upgrade,
    )
}

fn pending<S: Clone + serde::Serialize + serde::de::DeserializeOwned>(
    upgrade: Option<&UpgradeProgress>,
    reconciliation: Option<&ReconciliationStatus>,
    spec: &S,
    job: impl Fn(&S) -> Option<&JobSpec>,
    is_upgrade: impl Fn(&S, &S) -> bool,
) -> Option<(S, S)> {
    if upgrade.is_some() {
        return None;
    }
    let reconciliation = reconciliation?;
    if reconciliation.state == ReconciliationState::Upgrading {
        return None;
    }
    let last =
        ReconciledSpec::<S>::from_json(reconciliation.last_reconciled_spec.as_deref()?).ok()?;
    let suspended = |s: &S| job(s).is_some_and(|j| j.state == JobState::Suspended);
    if suspended(&last.spec) || suspended(spec) {
        return None;
    }
    is_upgrade(&last.spec, spec).then(|| (last.spec, spec.clone()))
}

/// Applies the tenant's verdict to an upgrade about to start, recording it in `policies` and
/// in the resource's `error` (a refusal or a hold is reported there; a go-ahead clears what an
/// earlier verdict reported).
pub fn apply(
    policy: &UpgradePolicy,
    policies: &mut Vec<PolicyDecision>,
    error: &mut Option<String>,
) -> Outcome<Option<UpgradeMode>> {
    let plugin = format!("{} ({})", policy.by.plugin, policy.by.digest);
    let mut applied = Outcome::<Option<UpgradeMode>>::default();
    match &policy.verdict {
        UpgradeVerdict::Proceed {
            mode,
            savepoint_first,
            reason,
        } => {
            let mode = if *savepoint_first && *mode == UpgradeMode::LastState {
                UpgradeMode::Savepoint
            } else {
                *mode
            };
            let message = format!("upgrade in {} mode: {reason}", mode.name());
            record(policies, &policy.by, "Applied", message.clone());
            applied.notes.push(Note::normal(
                Reason::UpgradePolicy,
                format!("The upgrade strategy {plugin} chose to {message}"),
            ));
            applied.value = Some(mode);
            *error = None;
        }
        UpgradeVerdict::WaitUntil { until_ms, reason } => {
            let at = super::rfc3339(*until_ms);
            let message = format!("waiting until {at}: {reason}");
            if record(policies, &policy.by, "Applied", message.clone()) {
                applied.notes.push(Note::normal(Reason::UpgradeWaiting, format!("The upgrade strategy {plugin} holds the upgrade, {message}; the running job is untouched")));
            }
            applied.waiting = Some((format!("The upgrade is {message}"), *until_ms));
        }
        UpgradeVerdict::Refuse { reason } => {
            record(
                policies,
                &policy.by,
                "Applied",
                format!("refused: {reason}"),
            );
            applied.error = Some((
                "PolicyError",
                format!(
                    "The upgrade strategy {plugin} refused this change: {reason}; the running job is untouched"
                ),
            ));
        }
        UpgradeVerdict::Unavailable { reason } => {
            record(policies, &policy.by, "Held", reason.clone());
            applied.error = Some((
                "PolicyError",
                format!(
                    "The upgrade strategy {plugin} could not decide ({reason}); the upgrade is held until it can, the running job is untouched"
                ),
            ));
            applied.pace = Pace::Soon;
        }
    }
    applied
}

/// The record of a policy decision in `status.policies`, and whether it is news (for events).
fn record(
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
