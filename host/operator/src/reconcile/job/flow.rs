//! Replacing a job, the same for both kinds: the first deployment, an upgrade started by a
//! spec change, a restart (a health restart, the autoscaler's redeploy) and a rollback each
//! record their target ahead and then run one flow, reconcile after reconcile, until the
//! target runs: secure the running job's state, stop what runs, then start the target (or
//! leave it suspended). What a kind does to start and stop a job, and how it secures its
//! state, is its [`Kind`]; upstream's `AbstractJobReconciler` has the same split.

use super::{Draft, JobStatusParts, Started, UpgradeStart};
use crate::reconcile::health;
use crate::reconcile::reconciled_spec::ReconciledSpec;
use crate::reconcile::upgrade_policy::UpgradePolicy;
use crate::reconcile::{Note, Reason};
use flink_api::{
    FlinkJobState, JobSpec, JobState, ReconciliationState, UpgradeMode, UpgradeProgress,
    UpgradeStep,
};

/// What differs between FlinkDeployments and FlinkSessionJobs in replacing a job.
pub trait Kind {
    type Spec: serde::Serialize + serde::de::DeserializeOwned + Clone + PartialEq;
    type Status: JobStatusParts;

    fn draft(&mut self) -> &mut Draft<Self::Status>;
    fn draft_ref(&self) -> &Draft<Self::Status>;
    /// The resource's spec and generation now.
    fn spec(&self) -> &Self::Spec;
    fn generation(&self) -> i64;
    fn job(spec: &Self::Spec) -> Option<&JobSpec>;
    /// Whether a job of `spec` has state to secure across a replacement (a session cluster's
    /// FlinkDeployment has no job).
    fn has_state(spec: &Self::Spec) -> bool;
    /// Whether a suspended job whose suspension secured no path kept its state in Flink's HA
    /// metadata, so it resumes from it under its job id (a FlinkDeployment with Kubernetes HA).
    fn state_in_ha_metadata(&self) -> bool {
        false
    }
    /// Whether something runs whose state an upgrade must secure first.
    fn running(&self) -> bool;
    /// The tenant's upgrade-strategy verdict, when the tenant has one.
    fn upgrade_policy(&self) -> Option<&UpgradePolicy>;
    /// The first step of securing the running job's state in `mode`.
    fn securing(&self, mode: UpgradeMode, generation: i64) -> UpgradeProgress;
    /// Secures the running job's state; `Some` once its restore path is recorded, `None` while
    /// under way or held (the status says why).
    fn secure(&mut self, mode: UpgradeMode) -> Option<()>;
    /// Whether `target`'s job runs (its cluster is deployed, or the session lists its job).
    fn started(&self, target: &ReconciledSpec<Self::Spec>) -> bool;
    /// Stops whatever runs that is not the target's job; true while something is stopping.
    fn stop(&mut self) -> bool;
    /// Starts `target`'s job: deploys its cluster, or submits it to the session cluster.
    fn start(&mut self, target: &ReconciledSpec<Self::Spec>);
    /// What a suspension stopped, for its event (`its cluster is stopped`).
    const STOPPED: &'static str;
    /// A new target was recorded (a session job's readiness timeout starts here; a
    /// deployment's starts when its cluster is deployed).
    fn target_recorded(&mut self) {}
    /// After `target` was started and does not run: true when the kind acted on it (a session
    /// job's submission Flink never listed rolls back once its readiness timeout is over).
    fn not_started(&mut self, _target: &ReconciledSpec<Self::Spec>) -> bool {
        false
    }
    /// What else keeps the job from becoming ready, for the rollback's event.
    fn not_ready(&self) -> Option<String> {
        None
    }
}

fn mode_of<K: Kind>(spec: &K::Spec) -> UpgradeMode {
    K::job(spec).map_or(UpgradeMode::Stateless, |j| j.upgrade_mode)
}

/// State `UPGRADING` or `ROLLING_BACK` toward `target`: secure the running job's state when
/// that is the step, stop what else runs, then start the target (or leave it suspended).
pub fn continue_upgrade<K: Kind>(k: &mut K, target: &ReconciledSpec<K::Spec>) {
    k.draft().progressing = true;
    if k.started(target) {
        let done = k.draft().done_state();
        k.draft().set_state(done);
        *k.draft().status.parts().upgrade = None;
        return;
    }
    if k.not_started(target) {
        return;
    }
    // A restart or a rollback records its target first and then secures the state.
    if let Some(progress) = k.draft_ref().status.upgrade()
        && matches!(
            progress.step,
            UpgradeStep::Savepointing | UpgradeStep::Cancelling
        )
        && progress.restore_path.is_none()
        && k.secure(progress.mode).is_none()
    {
        return;
    }
    if k.stop() {
        return;
    }
    if K::job(&target.spec).is_some_and(|j| j.state == JobState::Suspended) {
        let draft = k.draft();
        let done = draft.done_state();
        draft.set_state(done);
        draft.job_status().state = Some(FlinkJobState::Suspended);
        let kept = draft
            .status
            .parts()
            .upgrade
            .take()
            .and_then(|p| p.restore_path);
        let message = match kept {
            Some(path) => format!("Job suspended: {}, its state kept at {path}", K::STOPPED),
            None => format!("Job suspended: {}", K::STOPPED),
        };
        draft.notes.push(Note::normal(Reason::Suspended, message));
        draft.progressing = false;
        return;
    }
    k.start(target);
}

/// The first deployment of the resource's spec.
pub fn first<K: Kind>(k: &mut K) {
    let target = ReconciledSpec {
        spec: k.spec().clone(),
        generation: k.generation(),
        first_deployment: true,
        revision: 0,
    };
    k.draft()
        .record_target(&target, ReconciliationState::Upgrading);
    k.target_recorded();
    *k.draft().status.parts().error = None;
    continue_upgrade(k, &target);
}

/// The spec changed from `last` in `fields` that need the job replaced: once the tenant's
/// upgrade strategy lets it start (`Draft::start_upgrade`), the running job's state is
/// secured (a resumed job restores what its suspension secured), the new spec recorded
/// `UPGRADING` ahead, and the flow continues.
pub fn upgrade<K: Kind>(k: &mut K, last: &ReconciledSpec<K::Spec>, fields: &str) {
    let spec = k.spec().clone();
    let policy = k.upgrade_policy().cloned();
    let Some(Started {
        mode,
        was_suspended,
    }) = k.draft().start_upgrade(&UpgradeStart {
        fields,
        from: K::job(&last.spec),
        to: K::job(&spec),
        policy: policy.as_ref(),
    })
    else {
        return;
    };
    if mode.is_stateful() && K::has_state(&spec) {
        if was_suspended {
            let path = k.draft_ref().secured_path();
            // Suspended in last-state with HA (see `Kind::state_in_ha_metadata`): a stateful
            // resume takes the job from the HA metadata, as upstream's resume requires HA
            // metadata when the suspension was last-state.
            let suspended_last_state = mode_of::<K>(&last.spec) == UpgradeMode::LastState;
            let mode = match suspended_last_state && path.is_none() && k.state_in_ha_metadata() {
                true => UpgradeMode::LastState,
                false => mode,
            };
            let mut progress = k.securing(mode, k.generation());
            progress.step = UpgradeStep::StoppingCluster;
            progress.restore_path = path;
            *k.draft().status.parts().upgrade = Some(progress);
        } else if k.running() && k.secure(mode).is_none() {
            return;
        }
    }
    let generation = k.generation();
    k.draft()
        .record(&spec, generation, ReconciliationState::Upgrading);
    k.target_recorded();
    *k.draft().status.parts().error = None;
    k.draft().write_ahead();
    continue_upgrade(
        k,
        &ReconciledSpec {
            spec,
            generation,
            first_deployment: false,
            revision: 0,
        },
    );
}

/// The securing of the running job's state that replacing it with `spec` (at `generation`)
/// starts with, when `spec` is stateful. Asked before the replacement is recorded: how the
/// running job can be secured depends on what runs (a session job submitted without
/// retaining its checkpoints is secured with a savepoint).
fn securing_for<K: Kind>(k: &K, spec: &K::Spec, generation: i64) -> Option<UpgradeProgress> {
    let mode = mode_of::<K>(spec);
    (mode.is_stateful() && K::has_state(spec)).then(|| k.securing(mode, generation))
}

/// Writes the recorded `target` (a restart's or a rollback's) ahead, with `securing` (see
/// [`securing_for`]) as its first step, and continues the flow.
fn replace<K: Kind>(
    k: &mut K,
    target: &ReconciledSpec<K::Spec>,
    securing: Option<UpgradeProgress>,
) {
    *k.draft().status.parts().upgrade = securing;
    k.target_recorded();
    *k.draft().status.parts().error = None;
    k.draft().write_ahead();
    continue_upgrade(k, target);
}

/// Redeploys what runs now (`last`) as the next revision, its state secured first in its
/// upgrade mode. After a rollback it stays rolled back (see `Draft::record_restart`).
pub fn redeploy<K: Kind>(k: &mut K, last: &ReconciledSpec<K::Spec>) {
    let securing = securing_for(k, &last.spec, last.generation);
    let target = k.draft().record_restart(last);
    replace(k, &target, securing);
}

/// A health restart (`why` says which rule) of what runs now.
/// `kubernetes.operator.job.savepoint-on-deletion`: the job is stopped with a savepoint before
/// the resource goes. `None` while that is under way; `Some` once the state is secured, the
/// first time with its event and the status written ahead (the resource is going away: the
/// path stays in the event, and in the status until then).
pub fn save_before_deletion<K: Kind>(k: &mut K) -> Option<()> {
    let already = k
        .draft_ref()
        .status
        .upgrade()
        .is_some_and(|p| p.restore_path.is_some());
    k.secure(UpgradeMode::Savepoint)?;
    if !already {
        let path = k.draft_ref().secured_path().unwrap_or_default();
        let draft = k.draft();
        draft.notes.push(Note::normal(
            Reason::SavepointOnDeletion,
            format!("The job was stopped with savepoint {path}"),
        ));
        draft.intent = Some(draft.status.clone());
    }
    Some(())
}

pub fn restart<K: Kind>(k: &mut K, last: &ReconciledSpec<K::Spec>, why: String) {
    k.draft()
        .notes
        .push(Note::warning(Reason::RestartUnhealthyJob, why));
    redeploy(k, last);
}

/// A spec that is not stable within the readiness timeout (`unmet` says why) goes back to
/// the last stable spec, once: recorded at this generation as the next revision with
/// `ROLLING_BACK`, the failing job's state secured in the stable spec's mode, and the stable
/// spec started. True when the rollback started.
pub fn maybe_roll_back<K: Kind>(
    k: &mut K,
    last: &ReconciledSpec<K::Spec>,
    settings: &health::Settings,
    unmet: &[String],
) -> bool {
    if k.draft_ref().recorded_stable() || unmet.is_empty() {
        return false;
    }
    let stable = match health::rollback(
        settings,
        k.draft_ref().status.reconciliation(),
        k.draft_ref().status.health(),
        last,
        k.draft_ref().now_ms,
    ) {
        health::Rollback::No => return false,
        health::Rollback::At(deadline) => {
            k.draft().look_again_at(deadline);
            return false;
        }
        health::Rollback::Due(stable) => stable,
    };
    let mut why = unmet.join("; ");
    if let Some(problem) = k.not_ready() {
        why = format!("{why}; {problem}");
    }
    k.draft().notes.push(Note::warning(
        Reason::Rollback,
        format!(
            "Rolling back to the last stable spec (generation {}): not stable within {} s ({why})",
            stable.generation,
            settings.readiness_timeout.as_secs()
        ),
    ));
    let generation = k.generation();
    let securing = securing_for(k, &stable.spec, generation);
    let target = k.draft().record_rollback(last, stable, generation);
    replace(k, &target, securing);
    true
}
