//! A FlinkBlueGreenDeployment's decision: two child FlinkDeployments, `<name>-blue` and
//! `<name>-green`, one active; a change that needs a new cluster starts the other colour (from a
//! savepoint of the active one when the job keeps state), waits until it is ready, keeps the old
//! one for the deletion delay (or the tenant's dual-running window), switches the parent's
//! Ingress and deletes the old child. Upstream's states, diff types and settings; see
//! docs/blue-green.md for where this differs from upstream and why.
//!
//! Crash safety: every state that starts something is written ahead (the plan's intent) with
//! what it needs to be carried out again: the recorded spec, the savepoint path the new child
//! restores from (`jobStatus.upgradeSavepointPath`), the savepoint's trigger id (derived, so a
//! resend is the same savepoint) and the deadlines. A transition re-applies its child whenever
//! the child is missing or differs from what the record says; the old child is deleted only by
//! a transition whose new child is ready, and only two child names exist.

use super::job_id;
use super::reconciled_spec::ReconciledSpec;
use super::spec_diff::{DiffClass, deployment_diff};
use super::upgrade_policy::{UpgradePolicy, UpgradeVerdict};
use super::{Effect, Intervals, Note, Plan, Reason, rfc3339, until};
use crate::render;
use flink_api::blue_green::{
    BlueGreenSettings, BlueGreenState, Colour, FlinkBlueGreenDeploymentStatus,
};
use flink_api::{
    FlinkBlueGreenDeployment, FlinkBlueGreenDeploymentSpec, FlinkDeployment, FlinkDeploymentSpec,
    FlinkDeploymentStatus, FlinkJobState, JobState, JobStatus, ResourceLifecycleState, UpgradeMode,
};
use serde_json::Value;
use std::time::Duration;

/// How a spec change reaches the children (upstream's `BlueGreenDiffType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlueGreenDiff {
    /// Nothing of the children's spec changed (the parent's configuration, ingress and
    /// template metadata are not the children's spec).
    Ignore,
    /// A change the active child takes in place (nonces, upgrade mode, autoscaler settings).
    PatchChild,
    Suspend,
    Resume,
    /// `savepointRedeployNonce`: the other colour starts from `initialSavepointPath`.
    SavepointRedeploy,
    /// A change that needs a new cluster: the other colour starts.
    Transition,
}

/// How `new` (the template's spec) differs from the recorded `old`.
pub fn diff(old: &FlinkDeploymentSpec, new: &FlinkDeploymentSpec) -> BlueGreenDiff {
    let state = |s: &FlinkDeploymentSpec| s.job.as_ref().map_or(JobState::Running, |j| j.state);
    if state(old) != state(new) {
        return if state(new) == JobState::Suspended {
            BlueGreenDiff::Suspend
        } else {
            BlueGreenDiff::Resume
        };
    }
    let class = deployment_diff(old, new).class;
    if class == DiffClass::SavepointRedeploy {
        BlueGreenDiff::SavepointRedeploy
    } else if old == new {
        BlueGreenDiff::Ignore
    } else if class == DiffClass::Ignore {
        BlueGreenDiff::PatchChild
    } else {
        BlueGreenDiff::Transition
    }
}

/// A child FlinkDeployment as observed.
#[derive(Clone, Debug, PartialEq)]
pub struct ObservedChild {
    pub spec: FlinkDeploymentSpec,
    pub status: Option<FlinkDeploymentStatus>,
    pub generation: Option<i64>,
    pub deleting: bool,
    /// This parent is among its owners (a FlinkDeployment of the same name that it does not
    /// own is never touched).
    pub owned: bool,
}

impl ObservedChild {
    /// Upstream's readiness (lifecycle `STABLE`, job `RUNNING`), for the spec last applied:
    /// a status from before the child's latest spec does not count.
    pub fn is_ready(&self) -> bool {
        let Some(status) = &self.status else {
            return false;
        };
        // Seen is not enough: the child's own decision may have held the spec (an invalid
        // change); it must have recorded this very spec as what runs.
        let applied = status
            .reconciliation_status
            .as_ref()
            .and_then(|r| r.last_reconciled_spec.as_deref())
            .and_then(|text| ReconciledSpec::<FlinkDeploymentSpec>::from_json(text).ok())
            .is_some_and(|r| r.spec == self.spec);
        !self.deleting
            && applied
            && status.observed_generation.is_some()
            && status.observed_generation >= self.generation
            && status.lifecycle_state == Some(ResourceLifecycleState::Stable)
            && status.job_status.as_ref().and_then(|j| j.state) == Some(FlinkJobState::Running)
    }

    /// A child asked to stay suspended: one this parent aborted, kept for inspection. It is
    /// never resumed: a transition to its colour deletes it and starts afresh.
    pub fn is_leftover(&self) -> bool {
        self.spec.job.as_ref().map(|j| j.state) == Some(JobState::Suspended)
    }

    fn is_suspended(&self) -> bool {
        self.status.as_ref().and_then(|s| s.lifecycle_state)
            == Some(ResourceLifecycleState::Suspended)
            && self.status.as_ref().and_then(|s| s.observed_generation) >= self.generation
    }

    fn job_id(&self) -> Option<&str> {
        self.status.as_ref()?.job_status.as_ref()?.job_id.as_deref()
    }
}

/// What became of the savepoint the status's trigger id names.
#[derive(Clone, Debug, PartialEq)]
pub enum SavepointProgress {
    /// Flink does not know the trigger (never sent: the operator stopped between recording
    /// and sending it): it is sent again, under the same id.
    Unknown,
    InProgress,
    Completed(String),
    Failed(String),
}

/// The parent's own Ingress as observed.
#[derive(Clone, Debug, PartialEq)]
pub struct ObservedIngress {
    pub owned: bool,
    pub spec: Value,
    pub labels: Value,
    pub annotations: Value,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObservedBlueGreen {
    pub blue: Option<ObservedChild>,
    pub green: Option<ObservedChild>,
    pub ingress: Option<ObservedIngress>,
    /// Asked only while savepointing.
    pub savepoint: Option<SavepointProgress>,
}

impl ObservedBlueGreen {
    pub fn child(&self, colour: Colour) -> Option<&ObservedChild> {
        match colour {
            Colour::Blue => self.blue.as_ref(),
            Colour::Green => self.green.as_ref(),
        }
    }

    /// A child that exists and is not on its way out.
    fn live(&self, colour: Colour) -> Option<&ObservedChild> {
        self.child(colour).filter(|c| !c.deleting)
    }
}

pub struct BlueGreenContext<'a> {
    pub now_ms: i64,
    pub intervals: &'a Intervals,
    /// The tenant's upgrade strategy on the transition about to start (see
    /// [`pending_transition`]).
    pub upgrade_policy: Option<&'a UpgradePolicy>,
    /// The tenant's dual-running window: the old child keeps running at least this long once
    /// the new one is ready (beyond upstream; the deletion delay applies when it is longer).
    pub dual_running: Duration,
    /// Why the resource's tenant cannot be told, if it cannot: it is held like an invalid one.
    pub tenancy: Option<&'a flink_api::validation::FieldError>,
    /// `kubernetes.operator.ingress.manage`: off, the parent's Ingress is left alone.
    pub manage_ingress: bool,
}

/// The transition a reconcile would start now (the recorded template spec and the new one),
/// for the controller to ask the tenant's upgrade strategy about; None when none would start.
pub fn pending_transition(
    resource: &FlinkBlueGreenDeployment,
) -> Option<(FlinkDeploymentSpec, FlinkDeploymentSpec)> {
    let status = resource.status.as_ref()?;
    if !matches!(
        status.blue_green_state,
        Some(BlueGreenState::ActiveBlue | BlueGreenState::ActiveGreen)
    ) {
        return None;
    }
    let recorded = recorded(status)?.ok()?;
    let new = &resource.spec.template.spec;
    matches!(
        diff(&recorded.template.spec, new),
        BlueGreenDiff::Transition | BlueGreenDiff::SavepointRedeploy
    )
    .then(|| (recorded.template.spec, new.clone()))
}

fn recorded(
    status: &FlinkBlueGreenDeploymentStatus,
) -> Option<Result<FlinkBlueGreenDeploymentSpec, String>> {
    let text = status.last_reconciled_spec.as_deref()?;
    Some(
        ReconciledSpec::<FlinkBlueGreenDeploymentSpec>::from_json(text)
            .map(|r| r.spec)
            .map_err(|e| e.to_string()),
    )
}

/// The child FlinkDeployment of `colour` for the template `spec`, restoring from `restore`
/// when given (else the template's own `initialSavepointPath`). The parent's and the template's
/// labels and the template's annotations go to the child (so the tenant's plugins bind it and
/// the operator's label selector selects it), with the colour label and an owner reference to
/// the parent (not as controller, as upstream: the child has its own).
pub fn child(
    parent: &FlinkBlueGreenDeployment,
    spec: &FlinkDeploymentSpec,
    colour: Colour,
    restore: Option<&str>,
) -> FlinkDeployment {
    let name = parent.metadata.name.clone().unwrap_or_default();
    let mut spec = spec.clone();
    if let (Some(job), Some(path)) = (spec.job.as_mut(), restore) {
        job.initial_savepoint_path = Some(path.to_string());
    }
    let template = parent.spec.template.metadata.as_ref();
    // The parent's labels first (its tenant label, the operator's label selector), then the
    // template's, then the colour.
    let mut labels = parent.metadata.labels.clone().unwrap_or_default();
    labels.extend(template.and_then(|m| m.labels.clone()).unwrap_or_default());
    labels.insert(Colour::LABEL.into(), colour.as_str().into());
    let mut child = FlinkDeployment::new(&colour.child_name(&name), spec);
    child.metadata.namespace = parent.metadata.namespace.clone();
    child.metadata.labels = Some(labels);
    child.metadata.annotations = template
        .and_then(|m| m.annotations.clone())
        .filter(|a| !a.is_empty());
    child.metadata.owner_references = Some(vec![owner_reference(parent, false)]);
    child
}

/// `observed`'s spec suspended, in stateless mode: the state that counts is the active
/// child's, and a job that never ran must stop without a savepoint it cannot take.
fn suspended(
    parent: &FlinkBlueGreenDeployment,
    colour: Colour,
    observed: &ObservedChild,
) -> FlinkDeployment {
    let mut spec = observed.spec.clone();
    if let Some(job) = spec.job.as_mut() {
        job.state = JobState::Suspended;
        job.upgrade_mode = UpgradeMode::Stateless;
    }
    child(parent, &spec, colour, None)
}

fn owner_reference(
    parent: &FlinkBlueGreenDeployment,
    controller: bool,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
        api_version: flink_api::API_VERSION.into(),
        kind: "FlinkBlueGreenDeployment".into(),
        name: parent.metadata.name.clone().unwrap_or_default(),
        uid: parent.metadata.uid.clone().unwrap_or_default(),
        controller: Some(controller),
        block_owner_deletion: Some(true),
    }
}

/// The parent's Ingress to the REST Service of `active`.
pub fn parent_ingress(
    parent: &FlinkBlueGreenDeployment,
    active: Colour,
) -> Option<Result<Value, render::RenderError>> {
    let spec = parent.spec.ingress.as_ref()?;
    let name = parent.metadata.name.clone().unwrap_or_default();
    let owner = serde_json::to_value(owner_reference(parent, true)).unwrap_or_default();
    Some(render::ingress::ingress(
        spec,
        &name,
        parent.metadata.namespace.as_deref().unwrap_or_default(),
        &render::rest_service_name(&active.child_name(&name)),
        render::REST_PORT,
        owner,
    ))
}

pub const FINALIZER: &str = "flinkbluegreendeployments.flink.apache.org/finalizer";

/// The decision of one reconcile.
pub fn decide(
    resource: &FlinkBlueGreenDeployment,
    observed: &ObservedBlueGreen,
    ctx: &BlueGreenContext,
) -> Plan<FlinkBlueGreenDeploymentStatus> {
    let stored = resource.status.clone().unwrap_or_default();
    let mut d = Decision {
        resource,
        observed,
        ctx,
        status: stored.clone(),
        intent: None,
        actions: Vec::new(),
        notes: Vec::new(),
        requeue: ctx.intervals.reconcile,
        // Bad values are reported by validation below; the defaults stand in until fixed.
        settings: BlueGreenSettings::read(&resource.spec.configuration).unwrap_or_default(),
    };
    let finalized = resource
        .metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|f| f == FINALIZER));
    if resource.metadata.deletion_timestamp.is_some() {
        // The children and the Ingress are owned: the garbage collector takes them (each
        // child through its own finalizer, which tears its cluster down). The finalizer is
        // only there so the operator sees the deletion and forgets the resource.
        if finalized {
            d.actions.push(Effect::RemoveFinalizer);
        }
        return d.plan();
    }
    if !finalized {
        d.actions.push(Effect::AddFinalizer);
    }
    let errors = flink_api::validation::blue_green(resource);
    if !errors.is_empty() {
        let message = errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; ");
        d.fail(Reason::ValidationError, message);
        return d.plan();
    }
    if let Some(tenancy) = ctx.tenancy {
        d.fail(Reason::ValidationError, tenancy.to_string());
        return d.plan();
    }
    for colour in [Colour::Blue, Colour::Green] {
        if observed.child(colour).is_some_and(|c| !c.owned) {
            let name = colour.child_name(&d.name());
            d.fail(
                Reason::Error,
                format!("A FlinkDeployment named {name} exists that this FlinkBlueGreenDeployment does not own; it is left alone and nothing is deployed until it is renamed or deleted"),
            );
            return d.plan();
        }
    }
    let recorded = match recorded(&stored) {
        None => None,
        Some(Ok(spec)) => Some(spec),
        Some(Err(why)) => {
            d.fail(
                Reason::Error,
                format!("status.lastReconciledSpec cannot be read ({why}); nothing is changed until it holds a spec this operator or upstream's wrote"),
            );
            return d.plan();
        }
    };
    match (stored.blue_green_state, recorded) {
        (None | Some(BlueGreenState::InitializingBlue), recorded) => d.initializing(recorded),
        (Some(_), None) => d.initializing(None),
        (Some(state), Some(recorded)) => match state {
            BlueGreenState::ActiveBlue | BlueGreenState::ActiveGreen => {
                d.active(state.colour(), &recorded)
            }
            BlueGreenState::SavepointingBlue | BlueGreenState::SavepointingGreen => {
                d.savepointing(state.colour(), &recorded)
            }
            BlueGreenState::TransitioningToBlue | BlueGreenState::TransitioningToGreen => {
                d.transitioning(state.colour(), &recorded)
            }
            BlueGreenState::InitializingBlue => unreachable!("matched above"),
        },
    }
    d.plan()
}

/// How a child is started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Start {
    /// The first child (a failed earlier one goes first: it has no state worth keeping, and
    /// its own controller would try to upgrade the failed job).
    First,
    /// A new child for a transition (a leftover of its colour goes first).
    Fresh,
    /// The active child, or the one being brought up, takes the change.
    InPlace,
}

struct Decision<'a> {
    resource: &'a FlinkBlueGreenDeployment,
    observed: &'a ObservedBlueGreen,
    ctx: &'a BlueGreenContext<'a>,
    status: FlinkBlueGreenDeploymentStatus,
    intent: Option<FlinkBlueGreenDeploymentStatus>,
    actions: Vec<Effect>,
    notes: Vec<Note>,
    requeue: Duration,
    settings: BlueGreenSettings,
}

impl Decision<'_> {
    fn name(&self) -> String {
        self.resource.metadata.name.clone().unwrap_or_default()
    }

    fn spec(&self) -> &FlinkDeploymentSpec {
        &self.resource.spec.template.spec
    }

    fn plan(self) -> Plan<FlinkBlueGreenDeploymentStatus> {
        Plan {
            intent: self.intent,
            actions: self.actions,
            status: self.status,
            notes: self.notes,
            requeue: self.requeue,
        }
    }

    fn set_job_state(&mut self, state: FlinkJobState) {
        self.status.job_status = Some(JobStatus {
            state: Some(state),
            ..self.status.job_status.take().unwrap_or_default()
        });
    }

    fn job_state(&self) -> Option<FlinkJobState> {
        self.status.job_status.as_ref().and_then(|j| j.state)
    }

    /// `FAILING` with `message` in `status.error`; an event when the message is new.
    fn fail(&mut self, reason: Reason, message: String) {
        if self.status.error.as_deref() != Some(message.as_str()) {
            self.notes.push(Note::warning(reason, message.clone()));
        }
        self.status.error = Some(message);
        self.set_job_state(FlinkJobState::Failing);
    }

    /// Records the spec as the children's; `first`: no child has been active yet.
    fn record(&mut self, first: bool) {
        let generation = self.resource.metadata.generation.unwrap_or(0);
        self.status.last_reconciled_spec = Some(
            ReconciledSpec {
                spec: self.resource.spec.clone(),
                generation,
                first_deployment: first,
                revision: 0,
            }
            .to_json(),
        );
        self.status.last_reconciled_timestamp = Some(rfc3339(self.ctx.now_ms));
    }

    fn soon(&mut self, at_ms: Option<i64>) {
        let mut wait = self
            .settings
            .reschedule_interval
            .max(Duration::from_secs(1));
        if let Some(at) = at_ms {
            wait = wait.min(until(at, self.ctx.now_ms));
        }
        self.requeue = wait;
    }

    /// Starts `colour` from the current spec (restoring from `restore`): recorded ahead, then
    /// applied. A fresh child for a transition replaces a leftover of its colour (an aborted
    /// one): that is deleted first, and the transition applies the child once it is gone, since
    /// the leftover's own controller would resume it from its own state instead of `restore`.
    fn start(&mut self, colour: Colour, restore: Option<String>, why: String, how: Start) {
        self.record(how == Start::First);
        self.status.blue_green_state = Some(BlueGreenState::transitioning_to(colour));
        self.status.abort_timestamp = Some(rfc3339(
            self.ctx.now_ms + self.settings.abort_grace_period.as_millis() as i64,
        ));
        self.status.deployment_ready_timestamp = None;
        self.status.savepoint_trigger_id = None;
        self.status.error = None;
        self.set_job_state(FlinkJobState::Reconciling);
        if let Some(job) = self.status.job_status.as_mut() {
            job.upgrade_savepoint_path = restore.clone();
        }
        self.intent = Some(self.status.clone());
        if how != Start::InPlace && self.observed.child(colour).is_some() {
            self.actions.push(Effect::DeleteChild {
                name: colour.child_name(&self.name()),
            });
        } else {
            let child = child(self.resource, self.spec(), colour, restore.as_deref());
            self.actions.push(Effect::ApplyChild(Box::new(child)));
        }
        self.notes
            .push(Note::normal(Reason::BlueGreenTransition, why));
        self.soon(None);
    }

    fn initializing(&mut self, recorded: Option<FlinkBlueGreenDeploymentSpec>) {
        self.status.blue_green_state = Some(BlueGreenState::InitializingBlue);
        if self.spec().job.as_ref().map(|j| j.state) == Some(JobState::Suspended) {
            // Nothing runs until the job is asked to.
            self.set_job_state(FlinkJobState::Suspended);
            return;
        }
        let retry = recorded.is_some_and(|r| {
            self.job_state() == Some(FlinkJobState::Failing)
                && diff(&r.template.spec, self.spec()) != BlueGreenDiff::Ignore
        });
        if self.status.last_reconciled_spec.is_none() || retry {
            let name = Colour::Blue.child_name(&self.name());
            self.start(
                Colour::Blue,
                None,
                format!("Deploying {name}, the first child"),
                Start::First,
            );
        }
    }

    /// The parent's Ingress leads to `active`'s REST Service; one `spec.ingress` no longer
    /// asks for goes.
    fn ingress(&mut self, active: Colour) {
        if !self.ctx.manage_ingress {
            return;
        }
        if self.observed.ingress.as_ref().is_some_and(|i| !i.owned) {
            let name = self.name();
            self.fail(
                Reason::Error,
                format!("An Ingress named {name} exists that this FlinkBlueGreenDeployment does not own; it is left alone (rename or delete it, or remove spec.ingress)"),
            );
            return;
        }
        match parent_ingress(self.resource, active) {
            Some(Ok(desired)) => {
                let current = self.observed.ingress.as_ref();
                let same = current.is_some_and(|c| {
                    c.spec == desired["spec"]
                        && contains(&c.labels, &desired["metadata"]["labels"])
                        && contains(&c.annotations, &desired["metadata"]["annotations"])
                });
                if !same {
                    self.actions.push(Effect::ApplyIngress(Box::new(desired)));
                }
            }
            Some(Err(e)) => self.fail(Reason::Error, e.to_string()),
            None => {
                if self.observed.ingress.as_ref().is_some_and(|i| i.owned) {
                    self.actions.push(Effect::DeleteIngress);
                }
            }
        }
    }

    fn active(&mut self, active: Colour, recorded: &FlinkBlueGreenDeploymentSpec) {
        let name = active.child_name(&self.name());
        let Some(current) = self.observed.live(active) else {
            self.fail(
                Reason::Error,
                format!("The active child {name} is missing; nothing is started in its place, since its state would be lost: restore it, or delete this resource and apply it again"),
            );
            return;
        };
        self.ingress(active);
        if let Some(other) = self
            .observed
            .live(active.other())
            .filter(|c| !c.is_leftover())
        {
            // Only an abort leaves the other colour behind, suspended; this one was not (the
            // operator stopped between recording the abort and suspending it).
            let child = suspended(self.resource, active.other(), other);
            self.actions.push(Effect::ApplyChild(Box::new(child)));
        }
        let change = diff(&recorded.template.spec, self.spec());
        let suspended_child =
            current.spec.job.as_ref().map(|j| j.state) == Some(JobState::Suspended);
        match change {
            BlueGreenDiff::Ignore => {}
            BlueGreenDiff::Suspend | BlueGreenDiff::Resume | BlueGreenDiff::PatchChild => {
                self.patch(active, current)
            }
            _ if suspended_child => self.patch(active, current),
            BlueGreenDiff::Transition | BlueGreenDiff::SavepointRedeploy => {
                self.transition(active, current, change)
            }
        }
    }

    /// The active child takes the change in place (it keeps its restore path).
    fn patch(&mut self, colour: Colour, current: &ObservedChild) {
        let carry = current
            .spec
            .job
            .as_ref()
            .and_then(|j| j.initial_savepoint_path.clone());
        let name = colour.child_name(&self.name());
        self.start(
            colour,
            carry,
            format!("Applying the change to {name} in place"),
            Start::InPlace,
        );
    }

    fn transition(&mut self, active: Colour, current: &ObservedChild, change: BlueGreenDiff) {
        let next = active.other();
        let (from, to) = (
            active.child_name(&self.name()),
            next.child_name(&self.name()),
        );
        if !current.is_ready() {
            self.fail(
                Reason::Error,
                format!("Transition to {} not possible, current Flink Deployment '{from}' is not READY; the change waits until it is", next.as_str()),
            );
            self.soon(None);
            return;
        }
        let mut mode = self
            .spec()
            .job
            .as_ref()
            .map_or(UpgradeMode::Stateless, |j| j.upgrade_mode);
        let mut chosen = None;
        if let Some(policy) = self.ctx.upgrade_policy {
            let plugin = format!("{} ({})", policy.by.plugin, policy.by.digest);
            match &policy.verdict {
                UpgradeVerdict::Proceed {
                    mode: chosen_mode,
                    reason,
                    ..
                } => {
                    mode = *chosen_mode;
                    // Said when the switch starts, not on every reconcile that waits.
                    chosen = Some(Note::normal(
                        Reason::UpgradePolicy,
                        format!(
                            "The upgrade strategy {plugin} chose to switch to {to} in {} mode: {reason}",
                            chosen_mode.name()
                        ),
                    ));
                }
                UpgradeVerdict::WaitUntil { until_ms, reason } => {
                    let at = rfc3339(*until_ms);
                    let message = format!(
                        "The upgrade strategy {plugin} holds the switch to {to} until {at}: {reason}; {from} keeps running"
                    );
                    if self.status.error.as_deref() != Some(message.as_str()) {
                        self.notes
                            .push(Note::normal(Reason::UpgradeWaiting, message.clone()));
                    }
                    self.status.error = Some(message);
                    self.requeue =
                        until(*until_ms, self.ctx.now_ms).min(self.ctx.intervals.reconcile);
                    return;
                }
                UpgradeVerdict::Refuse { reason } => {
                    self.fail(Reason::PolicyRejected, format!("The upgrade strategy {plugin} refused this change: {reason}; {from} keeps running"));
                    return;
                }
                UpgradeVerdict::Unavailable { reason } => {
                    self.fail(Reason::PolicyError, format!("The upgrade strategy {plugin} could not decide ({reason}); the switch to {to} is held until it can, {from} keeps running"));
                    self.soon(None);
                    return;
                }
            }
        }
        if change == BlueGreenDiff::SavepointRedeploy || mode == UpgradeMode::Stateless {
            // The new child starts from the template's initialSavepointPath, or empty.
            self.notes.extend(chosen);
            self.start(
                next,
                None,
                format!("Starting {to} to replace {from}"),
                Start::Fresh,
            );
            return;
        }
        let generation = self.resource.metadata.generation.unwrap_or(0);
        let uid = self.resource.metadata.uid.as_deref().unwrap_or_default();
        if self.job_state() == Some(FlinkJobState::Failing)
            && self
                .status
                .savepoint_trigger_id
                .as_deref()
                .is_some_and(|t| job_id::is_trigger_of(t, uid, generation))
        {
            // This spec's savepoint failed already; a new spec (or a nonce) tries again.
            return;
        }
        let Some(job_id) = current.job_id() else {
            self.fail(
                Reason::SavepointError,
                format!("{from} reports no job id to take a savepoint of; the change waits"),
            );
            self.soon(None);
            return;
        };
        let trigger = job_id::trigger_id(uid, generation, (self.ctx.now_ms / 1000) as i32);
        self.status.blue_green_state = Some(BlueGreenState::savepointing(active));
        self.status.savepoint_trigger_id = Some(trigger.clone());
        // The savepoint's deadline: a savepoint that never completes does not hold the
        // resource forever (upstream waits without end).
        self.status.abort_timestamp = Some(rfc3339(
            self.ctx.now_ms + self.settings.abort_grace_period.as_millis() as i64,
        ));
        self.status.error = None;
        self.set_job_state(FlinkJobState::Running);
        self.intent = Some(self.status.clone());
        self.actions.push(self.savepoint(&from, job_id, trigger));
        self.notes.extend(chosen);
        self.notes.push(Note::normal(
            Reason::BlueGreenTransition,
            format!("Taking a savepoint of {from} for {to} to start from"),
        ));
        self.soon(None);
    }

    fn savepoint(&self, cluster: &str, job_id: &str, trigger_id: String) -> Effect {
        Effect::TriggerSavepoint {
            cluster: cluster.to_string(),
            job_id: job_id.to_string(),
            trigger_id,
            directory: None,
            format: super::job_snapshots::savepoint_format(&self.spec().configuration().flat()),
        }
    }

    fn savepointing(&mut self, active: Colour, recorded: &FlinkBlueGreenDeploymentSpec) {
        let (from, to) = (
            active.child_name(&self.name()),
            active.other().child_name(&self.name()),
        );
        let back_to_active = |d: &mut Self| {
            d.status.blue_green_state = Some(BlueGreenState::active(active));
            d.status.abort_timestamp = None;
        };
        match diff(&recorded.template.spec, self.spec()) {
            BlueGreenDiff::Transition => {}
            // Reverted (or now a change the active child takes in place): no new child.
            _ => {
                back_to_active(self);
                self.status.savepoint_trigger_id = None;
                self.requeue = Duration::from_secs(1);
                return;
            }
        }
        let deadline = read_timestamp(self.status.abort_timestamp.as_deref());
        match self.observed.savepoint.clone() {
            Some(SavepointProgress::Completed(path)) => {
                self.start(
                    active.other(),
                    Some(path.clone()),
                    format!("Starting {to} from {from}'s savepoint {path}"),
                    Start::Fresh,
                );
            }
            Some(SavepointProgress::Failed(why)) => {
                back_to_active(self);
                self.fail(Reason::SavepointError, format!("Could not take the savepoint of {from} ({why}); {from} keeps running, and a new spec tries again"));
            }
            _ if deadline.is_some_and(|d| d <= self.ctx.now_ms) => {
                back_to_active(self);
                self.fail(Reason::SavepointError, format!("The savepoint of {from} did not complete within {}; {from} keeps running, and a new spec tries again", humantime(self.settings.abort_grace_period)));
            }
            Some(SavepointProgress::Unknown) => {
                // Recorded but never sent (or forgotten by a restarted JobManager): sent again
                // under the same id.
                match (
                    self.observed.live(active).and_then(ObservedChild::job_id),
                    self.status.savepoint_trigger_id.clone(),
                ) {
                    (Some(job_id), Some(trigger)) => {
                        let effect = self.savepoint(&from, job_id, trigger);
                        self.actions.push(effect);
                    }
                    _ => {
                        back_to_active(self);
                        self.fail(Reason::SavepointError, format!("{from} runs no job to take the savepoint of; a new spec tries again"));
                    }
                }
                self.soon(deadline);
            }
            Some(SavepointProgress::InProgress) | None => self.soon(deadline),
        }
    }

    fn transitioning(&mut self, next: Colour, recorded: &FlinkBlueGreenDeploymentSpec) {
        let previous = next.other();
        let to = next.child_name(&self.name());
        let change = diff(&recorded.template.spec, self.spec());
        let restore = self
            .status
            .job_status
            .as_ref()
            .and_then(|j| j.upgrade_savepoint_path.clone());
        // The child this transition replaces, when it is one (the other colour, running); an
        // in-place change, a resume or the first deployment has none.
        let old = self
            .observed
            .live(previous)
            .filter(|c| !c.is_leftover())
            .cloned();
        match change {
            // A suspend waits until the transition ends, as upstream.
            BlueGreenDiff::Ignore | BlueGreenDiff::Suspend => {}
            // A change that needs a new cluster waits until an in-place one ends: it is a
            // transition of its own then, with its savepoint and the tenant's say.
            BlueGreenDiff::Transition | BlueGreenDiff::SavepointRedeploy if old.is_none() => {}
            _ => {
                // Any other change goes to the child being brought up.
                let restore = if change == BlueGreenDiff::SavepointRedeploy {
                    None
                } else {
                    restore
                };
                self.start(
                    next,
                    restore,
                    format!("Applying the change to {to}, which is being brought up"),
                    Start::InPlace,
                );
                return;
            }
        }
        let desired = child(
            self.resource,
            &recorded.template.spec,
            next,
            restore.as_deref(),
        );
        let suspending = desired.spec.job.as_ref().map(|j| j.state) == Some(JobState::Suspended);
        let now = self.ctx.now_ms;
        let target = self.observed.child(next).cloned();
        let ready = target.as_ref().is_some_and(|t| {
            t.spec == desired.spec
                && if suspending {
                    t.is_suspended()
                } else {
                    t.is_ready()
                }
        });
        let abort = read_timestamp(self.status.abort_timestamp.as_deref());
        if !ready && abort.is_some_and(|a| a <= now) {
            // Also when the child could not even be applied (refused by the API server).
            self.abort(next, target.as_ref(), old.is_some());
            return;
        }
        match &target {
            // A leftover on its way out: the new child is applied once it is gone.
            Some(t) if t.deleting => {
                self.soon(abort);
                return;
            }
            // Recorded but not applied (the operator stopped in between), or deleted by hand.
            None => {
                self.actions.push(Effect::ApplyChild(Box::new(desired)));
                self.soon(abort);
                return;
            }
            Some(t) if t.spec != desired.spec => {
                if t.is_leftover() && !suspending {
                    // An aborted child is never resumed from its own state.
                    self.actions.push(Effect::DeleteChild { name: to.clone() });
                } else {
                    self.actions.push(Effect::ApplyChild(Box::new(desired)));
                }
                self.soon(abort);
                return;
            }
            Some(_) => {}
        }
        if !ready {
            self.soon(abort);
            return;
        }
        if suspending {
            self.finish(next, FlinkJobState::Suspended);
            return;
        }
        if old.is_none() {
            self.ingress(next);
            self.finish(next, FlinkJobState::Running);
            return;
        }
        let delay = self.settings.deletion_delay.max(self.ctx.dual_running);
        let Some(ready_at) = read_timestamp(self.status.deployment_ready_timestamp.as_deref())
        else {
            self.status.deployment_ready_timestamp = Some(rfc3339(now));
            self.requeue = until(now + delay.as_millis() as i64, now);
            if !delay.is_zero() {
                self.notes.push(Note::normal(
                    Reason::BlueGreenTransition,
                    format!(
                        "{to} is ready; {} keeps running for {} before it is deleted",
                        previous.child_name(&self.name()),
                        humantime(delay)
                    ),
                ));
            }
            return;
        };
        let deadline = ready_at + delay.as_millis() as i64;
        if deadline > now {
            self.requeue = until(deadline, now);
            return;
        }
        // The Ingress leads to the new child before the old one goes.
        self.ingress(next);
        self.actions.push(Effect::DeleteChild {
            name: previous.child_name(&self.name()),
        });
        self.finish(next, FlinkJobState::Running);
    }

    fn finish(&mut self, active: Colour, job: FlinkJobState) {
        self.status.blue_green_state = Some(BlueGreenState::active(active));
        self.status.abort_timestamp = None;
        self.status.deployment_ready_timestamp = None;
        self.status.savepoint_trigger_id = None;
        if job == FlinkJobState::Running {
            self.status.error = None;
        }
        self.set_job_state(job);
        self.notes.push(Note::normal(
            Reason::BlueGreenTransition,
            format!("{} is active", active.child_name(&self.name())),
        ));
        self.requeue = Duration::from_secs(1);
    }

    /// The child that did not become ready in time. With another child running (a real
    /// transition), it is suspended (kept for inspection; the next transition to its colour
    /// replaces it) and the other stays active: written ahead, so an operator that stops in
    /// between leaves `ACTIVE_*` to finish the suspension (see `active`). The first child goes
    /// back to `INITIALIZING_BLUE` (a new spec tries again), as upstream; a child that took a
    /// change in place is the only one there is and is left as it is, `FAILING` says why.
    fn abort(&mut self, next: Colour, target: Option<&ObservedChild>, other_runs: bool) {
        let name = next.child_name(&self.name());
        let first = self
            .status
            .last_reconciled_spec
            .as_deref()
            .and_then(|t| ReconciledSpec::<FlinkBlueGreenDeploymentSpec>::from_json(t).ok())
            .is_some_and(|r| r.first_deployment);
        let back = if other_runs {
            BlueGreenState::active(next.other())
        } else if first {
            BlueGreenState::InitializingBlue
        } else {
            BlueGreenState::active(next)
        };
        self.status.blue_green_state = Some(back);
        self.status.abort_timestamp = None;
        self.status.deployment_ready_timestamp = None;
        self.status.savepoint_trigger_id = None;
        let state = serde_json::to_value(back)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        self.fail(
            Reason::BlueGreenAborted,
            format!(
                "Aborting deployment '{name}', rolling B/G deployment back to {state}: it was not ready within {}",
                humantime(self.settings.abort_grace_period)
            ),
        );
        if other_runs && let Some(target) = target.filter(|t| !t.deleting) {
            self.intent = Some(self.status.clone());
            let child = suspended(self.resource, next, target);
            self.actions.push(Effect::ApplyChild(Box::new(child)));
        }
    }
}

/// Every key of `part` is in `whole` with the same value (`null` part: nothing asked).
fn contains(whole: &Value, part: &Value) -> bool {
    match part.as_object() {
        None => true,
        Some(part) => part.iter().all(|(k, v)| whole.get(k) == Some(v)),
    }
}

/// An instant read back; upstream's cleared value (the epoch) and anything unreadable are none.
pub fn read_timestamp(text: Option<&str>) -> Option<i64> {
    let ms = text?.parse::<jiff::Timestamp>().ok()?.as_millisecond();
    (ms > 0).then_some(ms)
}

use super::humantime;
