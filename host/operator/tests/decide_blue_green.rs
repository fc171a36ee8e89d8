//! The FlinkBlueGreenDeployment decision, scenario by scenario: the World carries out each plan
//! on simulated children (an applied child exists, a deleted one is gone), feeds the decided
//! status back, and can crash by storing only the intent and carrying out nothing.

use flink_api::blue_green::{BlueGreenState, Colour};
use flink_api::{
    FlinkBlueGreenDeployment, FlinkDeployment, FlinkDeploymentStatus, FlinkJobState, JobState,
    JobStatus, ResourceLifecycleState, UpgradeMode,
};
use flink_operator::reconcile::blue_green::{
    BlueGreenContext, BlueGreenDiff, FINALIZER, ObservedBlueGreen, ObservedChild, ObservedIngress,
    SavepointProgress, decide, diff, pending_transition, read_timestamp,
};
use flink_operator::reconcile::reconciled_spec::ReconciledSpec;
use flink_operator::reconcile::upgrade_policy::{UpgradePolicy, UpgradeVerdict};
use flink_operator::reconcile::{Effect, Intervals, Plan};
use std::time::Duration;

const PARENT: &str = "
apiVersion: flink.apache.org/v1beta1
kind: FlinkBlueGreenDeployment
metadata: {name: counter, namespace: default, uid: 0b9c7c3e-1111-2222-3333-444455556666, generation: 1}
spec:
  configuration:
    kubernetes.operator.bluegreen.abort.grace-period: 2 min
    kubernetes.operator.bluegreen.deployment-deletion.delay: 5 s
  ingress: {template: '{{name}}.{{namespace}}.example.com', className: nginx}
  template:
    metadata: {labels: {tenant: team-a}}
    spec:
      image: flink:2.3
      flinkVersion: v2_3
      flinkConfiguration: {taskmanager.numberOfTaskSlots: '1', state.savepoints.dir: 'file:///tmp/sp', execution.checkpointing.dir: 'file:///tmp/cp'}
      jobManager: {resource: {memory: 1g, cpu: 0.5}}
      taskManager: {resource: {memory: 1g, cpu: 0.5}}
      job: {jarURI: 'local:///opt/flink/usrlib/job.jar', parallelism: 1, upgradeMode: savepoint}
";

type Status = flink_api::blue_green::FlinkBlueGreenDeploymentStatus;

struct World {
    parent: FlinkBlueGreenDeployment,
    observed: ObservedBlueGreen,
    now: i64,
    upgrade_policy: Option<UpgradePolicy>,
    dual_running: Duration,
    /// Every effect carried out, in order, for whole-story checks.
    history: Vec<Effect>,
}

fn world() -> World {
    let mut parent: FlinkBlueGreenDeployment = serde_saphyr::from_str(PARENT).expect("fixture");
    parent.metadata.finalizers = Some(vec![FINALIZER.to_string()]);
    World {
        parent,
        observed: ObservedBlueGreen::default(),
        now: 1_800_000_000_000,
        upgrade_policy: None,
        dual_running: Duration::ZERO,
        history: Vec::new(),
    }
}

fn slot(observed: &mut ObservedBlueGreen, colour: Colour) -> &mut Option<ObservedChild> {
    match colour {
        Colour::Blue => &mut observed.blue,
        Colour::Green => &mut observed.green,
    }
}

fn colour_of(name: &str) -> Colour {
    if name.ends_with("-blue") {
        Colour::Blue
    } else {
        Colour::Green
    }
}

impl World {
    fn decide(&mut self) -> Plan<Status> {
        let intervals = Intervals::default();
        let ctx = BlueGreenContext {
            now_ms: self.now,
            intervals: &intervals,
            upgrade_policy: self.upgrade_policy.as_ref(),
            dual_running: self.dual_running,
            tenancy: None,
            manage_ingress: true,
        };
        decide(&self.parent, &self.observed, &ctx)
    }

    /// Decides, carries the plan out on the simulated children, stores the status.
    fn reconcile(&mut self) -> Plan<Status> {
        let plan = self.decide();
        for effect in &plan.actions {
            self.carry_out(effect);
        }
        self.parent.status = Some(plan.status.clone());
        plan
    }

    /// The operator stops after writing the plan's intent: nothing else happens.
    fn crash(&mut self) -> Plan<Status> {
        let plan = self.decide();
        if let Some(intent) = &plan.intent {
            self.parent.status = Some(intent.clone());
        }
        plan
    }

    fn carry_out(&mut self, effect: &Effect) {
        self.history.push(effect.clone());
        match effect {
            Effect::ApplyChild(child) => {
                let colour = colour_of(child.metadata.name.as_deref().unwrap_or_default());
                let existing = slot(&mut self.observed, colour).take();
                let generation = match &existing {
                    Some(c) if c.spec == child.spec => c.generation,
                    Some(c) => c.generation.map(|g| g + 1),
                    None => Some(1),
                };
                *slot(&mut self.observed, colour) = Some(ObservedChild {
                    spec: child.spec.clone(),
                    status: existing.and_then(|c| c.status),
                    generation,
                    deleting: false,
                    owned: true,
                });
            }
            Effect::DeleteChild { name } => {
                // Whatever the story: a child that serves is deleted only while the other one
                // is ready to take over.
                let colour = colour_of(name);
                if self.child(colour).is_some_and(|c| c.is_ready()) {
                    assert!(
                        self.child(colour.other()).is_some_and(|c| c.is_ready()),
                        "{name} deleted while the other child is not ready"
                    );
                }
                *slot(&mut self.observed, colour) = None
            }
            Effect::ApplyIngress(ingress) => {
                self.observed.ingress = Some(ObservedIngress {
                    owned: true,
                    spec: ingress["spec"].clone(),
                    labels: ingress["metadata"]["labels"].clone(),
                    annotations: ingress["metadata"]["annotations"].clone(),
                })
            }
            Effect::DeleteIngress => self.observed.ingress = None,
            Effect::AddFinalizer | Effect::RemoveFinalizer | Effect::TriggerSavepoint { .. } => {}
            other => panic!("a blue/green plan does not {other:?}"),
        }
    }

    /// Flink reports the recorded savepoint complete at `path` for one reconcile.
    fn savepoint_completes(&mut self, path: &str) -> Plan<Status> {
        self.observed.savepoint = Some(SavepointProgress::Completed(path.into()));
        let plan = self.reconcile();
        self.observed.savepoint = None;
        plan
    }

    fn child(&self, colour: Colour) -> Option<&ObservedChild> {
        self.observed.child(colour)
    }

    /// The child's own controller got it running and stable on its latest spec.
    fn becomes_ready(&mut self, colour: Colour) {
        let child = slot(&mut self.observed, colour)
            .as_mut()
            .expect("the child exists");
        let suspended = child.spec.job.as_ref().map(|j| j.state) == Some(JobState::Suspended);
        let recorded = ReconciledSpec {
            spec: child.spec.clone(),
            generation: child.generation.unwrap_or(0),
            first_deployment: false,
            revision: 0,
        };
        child.status = Some(FlinkDeploymentStatus {
            observed_generation: child.generation,
            reconciliation_status: Some(flink_api::ReconciliationStatus {
                last_reconciled_spec: Some(recorded.to_json()),
                ..Default::default()
            }),
            lifecycle_state: Some(if suspended {
                ResourceLifecycleState::Suspended
            } else {
                ResourceLifecycleState::Stable
            }),
            job_status: Some(JobStatus {
                state: Some(if suspended {
                    FlinkJobState::Suspended
                } else {
                    FlinkJobState::Running
                }),
                job_id: Some(match colour {
                    Colour::Blue => "0000000000000000000000000000000b".into(),
                    Colour::Green => "0000000000000000000000000000000c".into(),
                }),
                ..Default::default()
            }),
            ..Default::default()
        });
    }

    fn edit(&mut self, change: impl FnOnce(&mut flink_api::FlinkDeploymentSpec)) {
        change(&mut self.parent.spec.template.spec);
        *self.parent.metadata.generation.get_or_insert(0) += 1;
    }

    fn state(&self) -> Option<BlueGreenState> {
        self.parent.status.as_ref()?.blue_green_state
    }

    fn job_state(&self) -> Option<FlinkJobState> {
        self.parent.status.as_ref()?.job_status.as_ref()?.state
    }

    fn status(&self) -> &Status {
        self.parent.status.as_ref().expect("a status")
    }

    fn backend(&self) -> Option<String> {
        let ingress = self.observed.ingress.as_ref()?;
        ingress
            .spec
            .pointer("/rules/0/http/paths/0/backend/service/name")
            .and_then(|v| v.as_str())
            .map(String::from)
    }

    fn wait(&mut self, ms: i64) {
        self.now += ms;
    }

    /// blue runs, ACTIVE_BLUE.
    fn blue_active(&mut self) {
        self.reconcile();
        self.becomes_ready(Colour::Blue);
        self.reconcile();
        assert_eq!(self.state(), Some(BlueGreenState::ActiveBlue));
    }

    /// A change that needs a new cluster.
    fn edit_slots(&mut self) {
        self.edit(|s| {
            s.flink_configuration
                .as_mut()
                .expect("configuration")
                .set("taskmanager.numberOfTaskSlots", "2")
        });
    }
}

fn applied(plan: &Plan<Status>) -> Vec<&FlinkDeployment> {
    plan.actions
        .iter()
        .filter_map(|a| match a {
            Effect::ApplyChild(c) => Some(&**c),
            _ => None,
        })
        .collect()
}

fn restore_path(child: &ObservedChild) -> Option<&str> {
    child.spec.job.as_ref()?.initial_savepoint_path.as_deref()
}

const SAVEPOINT: &str = "file:/tmp/sp/savepoint-00000b-0123456789ab";

#[test]
fn the_first_deploy_starts_blue_owned_by_the_parent_and_activates_it_with_its_ingress() {
    let mut w = world();
    let first = w.reconcile();
    let intent = first.intent.as_ref().expect("written ahead");
    assert_eq!(
        intent.blue_green_state,
        Some(BlueGreenState::TransitioningToBlue)
    );
    let children = applied(&first);
    assert_eq!(children.len(), 1);
    let blue = children[0];
    assert_eq!(blue.metadata.name.as_deref(), Some("counter-blue"));
    let labels = blue.metadata.labels.as_ref().expect("labels");
    assert_eq!(labels.get(Colour::LABEL).map(String::as_str), Some("BLUE"));
    assert_eq!(
        labels.get("tenant").map(String::as_str),
        Some("team-a"),
        "the template's labels bind the tenant"
    );
    let owner = &blue.metadata.owner_references.as_ref().expect("owned")[0];
    assert_eq!(
        (
            owner.kind.as_str(),
            owner.controller,
            owner.block_owner_deletion
        ),
        ("FlinkBlueGreenDeployment", Some(false), Some(true))
    );
    assert_eq!(w.job_state(), Some(FlinkJobState::Reconciling));
    // Not ready yet: nothing more.
    assert!(w.reconcile().actions.is_empty());
    w.becomes_ready(Colour::Blue);
    w.reconcile();
    assert_eq!(w.state(), Some(BlueGreenState::ActiveBlue));
    assert_eq!(w.job_state(), Some(FlinkJobState::Running));
    assert_eq!(w.backend().as_deref(), Some("counter-blue-rest"));
    // Quiet from now on: no writes.
    let idle = w.reconcile();
    assert!(idle.actions.is_empty(), "{:?}", idle.actions);
    assert!(idle.intent.is_none());
}

#[test]
fn a_stateful_transition_starts_green_from_blues_savepoint_and_deletes_blue_after_the_delay() {
    let mut w = world();
    w.blue_active();
    w.edit_slots();
    let trigger = w.reconcile();
    assert_eq!(w.state(), Some(BlueGreenState::SavepointingBlue));
    let id = w
        .status()
        .savepoint_trigger_id
        .clone()
        .expect("the trigger id, written ahead");
    assert_eq!(
        trigger
            .intent
            .as_ref()
            .and_then(|s| s.savepoint_trigger_id.clone()),
        Some(id.clone())
    );
    assert!(
        matches!(&trigger.actions[..], [Effect::TriggerSavepoint { cluster, trigger_id, .. }] if cluster == "counter-blue" && *trigger_id == id)
    );
    assert!(
        w.child(Colour::Green).is_none(),
        "no green before the savepoint"
    );
    w.observed.savepoint = Some(SavepointProgress::InProgress);
    assert!(w.reconcile().actions.is_empty());
    let start = w.savepoint_completes(SAVEPOINT);
    assert_eq!(
        start.intent.as_ref().and_then(|s| s.blue_green_state),
        Some(BlueGreenState::TransitioningToGreen)
    );
    assert_eq!(
        w.status()
            .job_status
            .as_ref()
            .and_then(|j| j.upgrade_savepoint_path.as_deref()),
        Some(SAVEPOINT),
        "the path is recorded ahead"
    );
    assert_eq!(
        restore_path(w.child(Colour::Green).expect("green")),
        Some(SAVEPOINT)
    );
    assert_eq!(
        w.backend().as_deref(),
        Some("counter-blue-rest"),
        "blue serves until the cut-over"
    );
    w.becomes_ready(Colour::Green);
    w.reconcile();
    assert!(w.status().deployment_ready_timestamp.is_some());
    assert!(
        w.child(Colour::Blue).is_some(),
        "blue runs through the deletion delay"
    );
    w.wait(4_000);
    assert!(w.reconcile().actions.is_empty());
    w.wait(1_000);
    let cut = w.reconcile();
    assert!(
        matches!(&cut.actions[..], [Effect::ApplyIngress(_), Effect::DeleteChild { name }] if name == "counter-blue"),
        "{:?}",
        cut.actions
    );
    assert_eq!(w.state(), Some(BlueGreenState::ActiveGreen));
    assert_eq!(w.backend().as_deref(), Some("counter-green-rest"));
    assert_eq!(w.job_state(), Some(FlinkJobState::Running));
    assert!(w.status().savepoint_trigger_id.is_none());
    // And back to blue the same way.
    w.edit(|s| s.image = Some("flink:2.3-java17".into()));
    w.reconcile();
    assert_eq!(w.state(), Some(BlueGreenState::SavepointingGreen));
}

#[test]
fn a_stateless_transition_and_a_savepoint_redeploy_take_no_savepoint() {
    let mut w = world();
    w.edit(|s| s.job.as_mut().expect("job").upgrade_mode = UpgradeMode::Stateless);
    w.blue_active();
    w.edit_slots();
    let plan = w.reconcile();
    assert_eq!(w.state(), Some(BlueGreenState::TransitioningToGreen));
    assert!(
        !plan
            .actions
            .iter()
            .any(|a| matches!(a, Effect::TriggerSavepoint { .. }))
    );
    assert_eq!(restore_path(w.child(Colour::Green).expect("green")), None);

    let mut w = world();
    w.blue_active();
    w.edit(|s| {
        let job = s.job.as_mut().expect("job");
        job.initial_savepoint_path = Some("file:/tmp/sp/chosen".into());
        job.savepoint_redeploy_nonce = Some(1);
    });
    let plan = w.reconcile();
    assert_eq!(w.state(), Some(BlueGreenState::TransitioningToGreen));
    assert!(
        !plan
            .actions
            .iter()
            .any(|a| matches!(a, Effect::TriggerSavepoint { .. }))
    );
    assert_eq!(
        restore_path(w.child(Colour::Green).expect("green")),
        Some("file:/tmp/sp/chosen")
    );
}

#[test]
fn a_change_the_active_child_takes_in_place_is_no_transition() {
    let mut w = world();
    w.blue_active();
    w.edit(|s| s.job.as_mut().expect("job").savepoint_trigger_nonce = Some(7));
    assert_eq!(pending_transition(&w.parent), None);
    let plan = w.reconcile();
    assert_eq!(w.state(), Some(BlueGreenState::TransitioningToBlue));
    assert_eq!(applied(&plan).len(), 1);
    assert!(w.child(Colour::Green).is_none());
    assert_eq!(
        w.child(Colour::Blue)
            .and_then(|b| b.spec.job.as_ref()?.savepoint_trigger_nonce),
        Some(7)
    );
    w.becomes_ready(Colour::Blue);
    w.reconcile();
    assert_eq!(w.state(), Some(BlueGreenState::ActiveBlue));
}

#[test]
fn suspend_and_resume_reach_the_active_child_in_place() {
    let mut w = world();
    w.blue_active();
    w.edit(|s| s.job.as_mut().expect("job").state = JobState::Suspended);
    w.reconcile();
    assert_eq!(w.state(), Some(BlueGreenState::TransitioningToBlue));
    w.becomes_ready(Colour::Blue);
    w.reconcile();
    assert_eq!(
        (w.state(), w.job_state()),
        (
            Some(BlueGreenState::ActiveBlue),
            Some(FlinkJobState::Suspended)
        )
    );
    w.edit(|s| s.job.as_mut().expect("job").state = JobState::Running);
    w.reconcile();
    w.becomes_ready(Colour::Blue);
    w.reconcile();
    assert_eq!(
        (w.state(), w.job_state()),
        (
            Some(BlueGreenState::ActiveBlue),
            Some(FlinkJobState::Running)
        )
    );
    assert!(w.child(Colour::Green).is_none());
}

#[test]
fn the_parents_own_settings_and_metadata_are_no_change_to_the_children() {
    let mut w = world();
    w.blue_active();
    w.parent.spec.configuration.insert(
        "kubernetes.operator.bluegreen.deployment-deletion.delay".into(),
        "1 min".into(),
    );
    assert!(w.reconcile().actions.is_empty());
    let old = w.parent.spec.template.spec.clone();
    let mut new = old.clone();
    assert_eq!(diff(&old, &new), BlueGreenDiff::Ignore);
    new.job.as_mut().expect("job").upgrade_mode = UpgradeMode::LastState;
    assert_eq!(diff(&old, &new), BlueGreenDiff::PatchChild);
    new.job.as_mut().expect("job").parallelism = Some(4);
    assert_eq!(diff(&old, &new), BlueGreenDiff::Transition);
    new.job.as_mut().expect("job").savepoint_redeploy_nonce = Some(2);
    assert_eq!(diff(&old, &new), BlueGreenDiff::SavepointRedeploy);
    new.job.as_mut().expect("job").state = JobState::Suspended;
    assert_eq!(diff(&old, &new), BlueGreenDiff::Suspend);
    assert_eq!(diff(&new, &old), BlueGreenDiff::Resume);
}

#[test]
fn a_green_that_never_becomes_ready_is_suspended_after_the_grace_period_and_blue_keeps_running() {
    let mut w = world();
    w.blue_active();
    w.edit_slots();
    w.reconcile();
    w.savepoint_completes(SAVEPOINT);
    assert_eq!(w.state(), Some(BlueGreenState::TransitioningToGreen));
    w.wait(60_000);
    assert!(w.reconcile().actions.is_empty(), "within the grace period");
    w.wait(61_000);
    let abort = w.reconcile();
    assert_eq!(w.state(), Some(BlueGreenState::ActiveBlue));
    assert_eq!(w.job_state(), Some(FlinkJobState::Failing));
    assert!(
        w.status()
            .error
            .as_deref()
            .is_some_and(|e| e.contains("Aborting deployment 'counter-green'"))
    );
    assert!(abort.notes.iter().any(|n| n.warning));
    let green = w.child(Colour::Green).expect("kept for inspection");
    let job = green.spec.job.as_ref().expect("job");
    assert_eq!(job.state, JobState::Suspended);
    assert_eq!(
        job.upgrade_mode,
        UpgradeMode::Stateless,
        "it stops without a savepoint it cannot take"
    );
    assert!(
        abort.intent.is_some(),
        "the abort is written ahead of the suspension"
    );
    assert!(
        w.child(Colour::Blue).is_some_and(|b| b.is_ready()),
        "blue keeps running"
    );
    assert_eq!(w.backend().as_deref(), Some("counter-blue-rest"));
    // The failed spec is not tried again until the user changes it.
    w.wait(600_000);
    assert!(w.reconcile().actions.is_empty());
    w.edit(|s| s.image = Some("flink:2.3-fixed".into()));
    w.reconcile();
    assert_eq!(w.state(), Some(BlueGreenState::SavepointingBlue));
    // The next green is a new one, from the new savepoint: the aborted one goes first (its own
    // controller would resume it from its own state).
    let replace = w.savepoint_completes("file:/tmp/sp/savepoint-2");
    assert!(
        matches!(&replace.actions[..], [Effect::DeleteChild { name }] if name == "counter-green"),
        "{:?}",
        replace.actions
    );
    w.reconcile();
    let green = w.child(Colour::Green).expect("a new green");
    assert_eq!(
        green.spec.job.as_ref().map(|j| j.state),
        Some(JobState::Running)
    );
    assert_eq!(restore_path(green), Some("file:/tmp/sp/savepoint-2"));
    assert_eq!(green.spec.image.as_deref(), Some("flink:2.3-fixed"));
}

#[test]
fn a_change_during_a_transition_goes_to_the_child_being_brought_up_with_its_savepoint() {
    let mut w = world();
    w.blue_active();
    w.edit_slots();
    w.reconcile();
    w.savepoint_completes(SAVEPOINT);
    w.edit(|s| s.image = Some("flink:2.3-patched".into()));
    let plan = w.reconcile();
    assert_eq!(w.state(), Some(BlueGreenState::TransitioningToGreen));
    let green = applied(&plan)[0];
    assert_eq!(green.spec.image.as_deref(), Some("flink:2.3-patched"));
    assert_eq!(
        green
            .spec
            .job
            .as_ref()
            .and_then(|j| j.initial_savepoint_path.as_deref()),
        Some(SAVEPOINT)
    );
    // A suspend waits until the transition ends.
    w.edit(|s| s.job.as_mut().expect("job").state = JobState::Suspended);
    assert!(applied(&w.reconcile()).is_empty());
}

#[test]
fn the_operator_stopping_in_any_state_loses_nothing_and_never_deletes_the_only_running_child() {
    // Crash right after each written-ahead intent; the next reconcile must carry it out.
    let mut w = world();
    w.crash();
    assert_eq!(w.state(), Some(BlueGreenState::TransitioningToBlue));
    assert!(w.child(Colour::Blue).is_none());
    w.reconcile();
    assert!(
        w.child(Colour::Blue).is_some(),
        "the recorded child is applied"
    );
    w.becomes_ready(Colour::Blue);
    w.reconcile();
    w.edit_slots();
    w.crash();
    assert_eq!(w.state(), Some(BlueGreenState::SavepointingBlue));
    let recorded = w.status().savepoint_trigger_id.clone();
    // The trigger never reached Flink: sent again under the same id.
    w.observed.savepoint = Some(SavepointProgress::Unknown);
    let resend = w.reconcile();
    assert!(
        matches!(&resend.actions[..], [Effect::TriggerSavepoint { trigger_id, .. }] if Some(trigger_id) == recorded.as_ref())
    );
    w.observed.savepoint = Some(SavepointProgress::Completed(SAVEPOINT.into()));
    w.crash();
    w.observed.savepoint = None;
    assert_eq!(w.state(), Some(BlueGreenState::TransitioningToGreen));
    assert!(w.child(Colour::Green).is_none());
    // The savepoint path survived in the status: green starts from it, with no new savepoint.
    let again = w.reconcile();
    assert!(
        !again
            .actions
            .iter()
            .any(|a| matches!(a, Effect::TriggerSavepoint { .. }))
    );
    assert_eq!(
        restore_path(w.child(Colour::Green).expect("green")),
        Some(SAVEPOINT)
    );
    // A stale, earlier green (say, an aborted one) is replaced by what the record says.
    if let Some(green) = slot(&mut w.observed, Colour::Green) {
        green.spec.job.as_mut().expect("job").state = JobState::Suspended;
    }
    w.reconcile();
    assert!(w.child(Colour::Green).is_none(), "the leftover goes first");
    w.reconcile();
    assert_eq!(
        w.child(Colour::Green)
            .and_then(|g| g.spec.job.as_ref().map(|j| j.state)),
        Some(JobState::Running)
    );
    w.becomes_ready(Colour::Green);
    w.reconcile();
    w.wait(5_000);
    // Blue deleted, then the operator stops before ACTIVE_GREEN is written.
    let plan = w.decide();
    for effect in &plan.actions {
        w.carry_out(effect);
    }
    assert!(w.child(Colour::Blue).is_none());
    w.reconcile();
    assert_eq!(w.state(), Some(BlueGreenState::ActiveGreen));
    // Over the whole story: a child is deleted only while the other one is ready, and no
    // name but the two children's is ever applied.
    for effect in &w.history {
        if let Effect::ApplyChild(c) = effect {
            assert!(matches!(
                c.metadata.name.as_deref(),
                Some("counter-blue" | "counter-green")
            ));
        }
    }
    // The leftover, then blue at the cut-over.
    assert_eq!(
        w.history
            .iter()
            .filter(|e| matches!(e, Effect::DeleteChild { .. }))
            .count(),
        2
    );
}

#[test]
fn the_tenants_upgrade_strategy_holds_refuses_or_chooses_the_mode_of_the_cut_over() {
    let by = flink_api::PolicyDecision {
        plugin: "maintenance-window-upgrade".into(),
        digest: "sha256:abc".into(),
        ..Default::default()
    };
    let mut w = world();
    w.blue_active();
    w.edit_slots();
    assert!(pending_transition(&w.parent).is_some());
    let opens = w.now + 3_600_000;
    w.upgrade_policy = Some(UpgradePolicy {
        by: by.clone(),
        verdict: UpgradeVerdict::WaitUntil {
            until_ms: opens,
            reason: "outside the window".into(),
        },
    });
    let held = w.reconcile();
    assert!(held.actions.is_empty());
    assert_eq!(w.state(), Some(BlueGreenState::ActiveBlue));
    assert!(
        w.status()
            .error
            .as_deref()
            .is_some_and(|e| e.contains("holds the switch"))
    );
    assert!(held.requeue <= Duration::from_secs(60));
    w.upgrade_policy = Some(UpgradePolicy {
        by: by.clone(),
        verdict: UpgradeVerdict::Refuse {
            reason: "frozen".into(),
        },
    });
    assert!(w.reconcile().actions.is_empty());
    assert_eq!(w.job_state(), Some(FlinkJobState::Failing));
    w.upgrade_policy = Some(UpgradePolicy {
        by,
        verdict: UpgradeVerdict::Proceed {
            mode: UpgradeMode::Stateless,
            savepoint_first: false,
            reason: "window open".into(),
        },
    });
    let go = w.reconcile();
    assert_eq!(
        w.state(),
        Some(BlueGreenState::TransitioningToGreen),
        "stateless: no savepoint"
    );
    assert!(
        !go.actions
            .iter()
            .any(|a| matches!(a, Effect::TriggerSavepoint { .. }))
    );
    assert_eq!(w.status().error, None);
}

#[test]
fn a_dual_running_window_keeps_the_old_child_past_the_deletion_delay() {
    let mut w = world();
    w.dual_running = Duration::from_secs(300);
    w.edit(|s| s.job.as_mut().expect("job").upgrade_mode = UpgradeMode::Stateless);
    w.blue_active();
    w.edit_slots();
    w.reconcile();
    w.becomes_ready(Colour::Green);
    let ready = w.reconcile();
    assert!(
        ready
            .notes
            .iter()
            .any(|n| n.message.contains("keeps running for 5 min"))
    );
    let at = read_timestamp(w.status().deployment_ready_timestamp.as_deref()).expect("recorded");
    w.wait(290_000);
    assert!(w.reconcile().actions.is_empty());
    assert!(w.child(Colour::Blue).is_some());
    w.now = at + 300_000;
    w.reconcile();
    assert!(w.child(Colour::Blue).is_none());
    assert_eq!(w.state(), Some(BlueGreenState::ActiveGreen));
}

#[test]
fn a_failed_savepoint_keeps_blue_and_is_retried_only_for_a_new_spec() {
    let mut w = world();
    w.blue_active();
    w.edit_slots();
    w.reconcile();
    w.observed.savepoint = Some(SavepointProgress::Failed("disk full".into()));
    w.reconcile();
    w.observed.savepoint = None;
    assert_eq!(
        (w.state(), w.job_state()),
        (
            Some(BlueGreenState::ActiveBlue),
            Some(FlinkJobState::Failing)
        )
    );
    assert!(
        w.status()
            .error
            .as_deref()
            .is_some_and(|e| e.contains("disk full"))
    );
    assert!(
        w.reconcile().actions.is_empty(),
        "not retried for the same spec"
    );
    w.edit(|s| s.image = Some("flink:2.3-b".into()));
    w.reconcile();
    assert_eq!(w.state(), Some(BlueGreenState::SavepointingBlue));
    // A savepoint that never completes gives up at the grace period.
    w.observed.savepoint = Some(SavepointProgress::InProgress);
    w.wait(121_000);
    w.reconcile();
    assert_eq!(w.state(), Some(BlueGreenState::ActiveBlue));
    assert!(
        w.status()
            .error
            .as_deref()
            .is_some_and(|e| e.contains("did not complete within 2 min"))
    );
}

#[test]
fn a_foreign_child_is_left_alone_and_deletion_only_lets_the_finalizer_go() {
    let mut w = world();
    w.observed.blue = Some(ObservedChild {
        spec: w.parent.spec.template.spec.clone(),
        status: None,
        generation: Some(1),
        deleting: false,
        owned: false,
    });
    let plan = w.reconcile();
    assert!(plan.actions.is_empty());
    assert!(
        w.status()
            .error
            .as_deref()
            .is_some_and(|e| e.contains("does not own"))
    );

    let mut w = world();
    w.blue_active();
    w.parent.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            jiff::Timestamp::from_millisecond(w.now).expect("a time"),
        ));
    assert_eq!(w.reconcile().actions, vec![Effect::RemoveFinalizer]);
}

#[test]
fn an_invalid_resource_is_reported_and_nothing_starts() {
    let mut w = world();
    w.parent.spec.configuration.insert(
        "kubernetes.operator.bluegreen.abort.grace-period".into(),
        "soon".into(),
    );
    let plan = w.reconcile();
    assert!(applied(&plan).is_empty());
    let error = w.status().error.clone().unwrap_or_default();
    assert!(
        error.contains("spec.configuration.kubernetes.operator.bluegreen.abort.grace-period"),
        "{error}"
    );
}

#[test]
fn an_abort_stopped_halfway_is_finished_and_the_first_child_or_an_in_place_change_is_never_suspended()
 {
    // The operator stops after recording the abort: the green it did not suspend is
    // suspended from ACTIVE_BLUE.
    let mut w = world();
    w.blue_active();
    w.edit_slots();
    w.reconcile();
    w.savepoint_completes(SAVEPOINT);
    w.wait(121_000);
    w.crash();
    assert_eq!(w.state(), Some(BlueGreenState::ActiveBlue));
    let green_state = |w: &World| {
        w.child(Colour::Green)
            .and_then(|g| g.spec.job.as_ref().map(|j| j.state))
    };
    assert_eq!(green_state(&w), Some(JobState::Running));
    w.reconcile();
    assert_eq!(green_state(&w), Some(JobState::Suspended));
    assert!(w.reconcile().actions.is_empty(), "then quiet");

    // A first blue that never gets ready: back to INITIALIZING_BLUE, left as it is, and a new
    // spec applies it again.
    let mut w = world();
    w.reconcile();
    w.wait(121_000);
    let abort = w.reconcile();
    assert_eq!(w.state(), Some(BlueGreenState::InitializingBlue));
    assert!(applied(&abort).is_empty(), "nothing suspended");
    w.edit(|s| s.image = Some("flink:2.3-fixed".into()));
    let retry = w.reconcile();
    assert!(
        matches!(&retry.actions[..], [Effect::DeleteChild { name }] if name == "counter-blue"),
        "the failed first blue goes first: {:?}",
        retry.actions
    );
    assert_eq!(w.state(), Some(BlueGreenState::TransitioningToBlue));
    let apply = w.reconcile();
    assert_eq!(applied(&apply).len(), 1);
    assert_eq!(
        w.child(Colour::Blue)
            .and_then(|b| b.spec.image.clone())
            .as_deref(),
        Some("flink:2.3-fixed")
    );

    // An in-place change the active blue does not get ready with: blue is not suspended (it is
    // the only child), the parent says why.
    let mut w = world();
    w.blue_active();
    w.edit(|s| s.job.as_mut().expect("job").savepoint_trigger_nonce = Some(3));
    w.reconcile();
    if let Some(blue) = slot(&mut w.observed, Colour::Blue) {
        blue.status = None;
    }
    w.wait(121_000);
    let abort = w.reconcile();
    assert!(applied(&abort).is_empty(), "{:?}", abort.actions);
    assert_eq!(
        (w.state(), w.job_state()),
        (
            Some(BlueGreenState::ActiveBlue),
            Some(FlinkJobState::Failing)
        )
    );
}

#[test]
fn a_transition_change_during_an_in_place_change_waits_and_then_transitions() {
    let mut w = world();
    w.blue_active();
    w.edit(|s| s.job.as_mut().expect("job").savepoint_trigger_nonce = Some(3));
    w.reconcile();
    assert_eq!(w.state(), Some(BlueGreenState::TransitioningToBlue));
    w.edit_slots();
    assert!(
        w.reconcile().actions.is_empty(),
        "not applied to blue in place"
    );
    w.becomes_ready(Colour::Blue);
    w.reconcile();
    assert_eq!(w.state(), Some(BlueGreenState::ActiveBlue));
    w.reconcile();
    assert_eq!(
        w.state(),
        Some(BlueGreenState::SavepointingBlue),
        "a transition of its own"
    );
}

#[test]
fn a_child_whose_own_controller_held_the_change_is_not_ready() {
    let mut w = world();
    w.blue_active();
    w.edit(|s| s.job.as_mut().expect("job").savepoint_trigger_nonce = Some(3));
    w.reconcile();
    // The child saw the new generation but recorded (and runs) the old spec.
    let blue = slot(&mut w.observed, Colour::Blue).as_mut().expect("blue");
    let status = blue.status.as_mut().expect("status");
    status.observed_generation = blue.generation;
    assert!(!blue.is_ready());
    w.reconcile();
    assert_eq!(w.state(), Some(BlueGreenState::TransitioningToBlue));
}

#[test]
fn an_ingress_the_parent_does_not_own_is_left_alone() {
    let mut w = world();
    w.blue_active();
    if let Some(ingress) = w.observed.ingress.as_mut() {
        ingress.owned = false;
        ingress.spec = serde_json::json!({"rules": []});
    }
    let plan = w.reconcile();
    assert!(
        !plan
            .actions
            .iter()
            .any(|a| matches!(a, Effect::ApplyIngress(_) | Effect::DeleteIngress))
    );
    assert!(
        w.status()
            .error
            .as_deref()
            .is_some_and(|e| e.contains("does not own"))
    );
}
