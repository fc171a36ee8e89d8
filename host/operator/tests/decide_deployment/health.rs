//! Stability, rollback, health restarts and recovering a missing JobManager.

use super::*;

#[test]
fn a_deployment_not_stable_in_time_is_rolled_back_with_the_state_it_started_from() {
    let mut world = with_settings(flink_api::UpgradeMode::Savepoint, ROLLBACK);
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Stable);
    upgraded_from_savepoint(&mut world);
    // The new job fails at once (it never completes a checkpoint).
    world.cluster_runs(2, FlinkJobState::Failed);
    counted(&mut world, 0, 0);
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert!(
        plan.requeue <= std::time::Duration::from_secs(60),
        "looks again by the deadline: {:?}",
        plan.requeue
    );
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Failed);
    world.now += 60_000;
    // The rollback: written ahead, then the failed job's state secured without Flink's help.
    let stored = world.resource.status.clone();
    let plan = world.decide();
    assert!(reasons(&plan).contains(&"Rollback"), "{:?}", plan.notes);
    let intent = plan.intent.clone().expect("the rollback is written ahead");
    assert_eq!(
        intent.reconciliation_status.as_ref().map(|r| r.state),
        Some(ReconciliationState::RollingBack)
    );
    assert_eq!(plan.actions, vec![Effect::DeleteCluster]);
    assert_eq!(
        intent
            .upgrade
            .as_ref()
            .and_then(|p| p.restore_path.as_deref()),
        Some(SAVEPOINT),
        "the path is recorded before the cluster is deleted"
    );
    // An operator restarted right after the intent resumes the rollback.
    world.resource.status = Some(intent);
    let again = world.reconcile();
    assert_eq!(
        again.actions,
        vec![Effect::DeleteCluster],
        "{:?}",
        again.notes
    );
    assert_ne!(world.resource.status, stored);
    assert_eq!(world.lifecycle(), ResourceLifecycleState::RollingBack);
    world.cluster_gone();
    let plan = world.reconcile();
    assert_eq!(applied_generation(&plan).as_deref(), Some("2"));
    assert_eq!(applied_revision(&plan).as_deref(), Some("1"));
    assert_eq!(
        applied_parallelism(&plan).as_deref(),
        Some("2"),
        "the stable spec"
    );
    assert_eq!(restore_path(&plan).as_deref(), Some(SAVEPOINT));
    assert_eq!(
        reconciliation_state(&world),
        Some(ReconciliationState::RolledBack)
    );
    // The rolled-back cluster runs: the user's spec is not deployed again until it changes.
    world.revision = 1;
    world.cluster_runs(2, FlinkJobState::Running);
    counted(&mut world, 0, 1);
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert_eq!(world.lifecycle(), ResourceLifecycleState::RolledBack);
    world.now += 600_000;
    let plan = world.reconcile();
    assert!(
        plan.actions.is_empty(),
        "stays rolled back: {:?}",
        plan.actions
    );
    // A new change upgrades from what runs (a savepoint of the rolled-back job).
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(4));
    let plan = world.reconcile();
    assert!(
        matches!(&plan.actions[..], [Effect::StopWithSavepoint { .. }]),
        "{:?}",
        plan.actions
    );
}

#[test]
fn a_crash_looping_job_manager_is_rolled_back_unless_its_newest_state_is_unknown() {
    let mut world = with_settings(flink_api::UpgradeMode::Savepoint, ROLLBACK);
    upgraded_from_savepoint(&mut world);
    world.cluster_runs(2, FlinkJobState::Running);
    world.observed.flink = ObservedFlink::NotAsked;
    world.observed.waiting = vec![crash_looping()];
    world.now += 61_000;
    let mut blocked = World {
        resource: world.resource.clone(),
        observed: world.observed.clone(),
        now: world.now,
        upgrade_policy: None,
        revision: 0,
        defaults: BTreeMap::new(),
        log_defaults: BTreeMap::new(),
        manage_ingress: true,
        autoscaler: None,
        tenancy: None,
    };
    let plan = world.reconcile();
    assert!(reasons(&plan).contains(&"Rollback"), "{:?}", plan.notes);
    assert!(
        reasons(&plan).contains(&"StateFallback"),
        "{:?}",
        plan.notes
    );
    assert_eq!(plan.actions, vec![Effect::DeleteCluster]);
    // Had the failing job completed a checkpoint, only its JobManager would know the newest.
    blocked
        .resource
        .status
        .as_mut()
        .and_then(|s| s.health.as_mut())
        .expect("health")
        .checkpointed = true;
    let plan = blocked.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    let error = blocked.status().error.clone().unwrap_or_default();
    assert!(error.contains("manual restore required"), "{error}");
}

#[test]
fn richer_stability_rules_hold_the_stable_spec_until_they_are_met() {
    let mut world = with_settings(
        flink_api::UpgradeMode::Stateless,
        &[
            (
                "kubernetes.operator.deployment.stability.min-running-time",
                "30s",
            ),
            (
                "kubernetes.operator.deployment.stability.min-completed-checkpoints",
                "2",
            ),
        ],
    );
    // Running since 6 ms after the epoch in the fixture: move the start to now.
    if let ObservedFlink::Reachable { jobs, .. } = &mut world.observed.flink {
        jobs[0].last_modification = world.now;
    }
    counted(&mut world, 0, 1);
    world.reconcile();
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Deployed);
    let condition = world.status().conditions[0].message.clone();
    assert!(condition.contains("Not stable yet"), "{condition}");
    assert!(
        condition.contains("1 of 2 completed checkpoints"),
        "{condition}"
    );
    world.now += 31_000;
    counted(&mut world, 0, 2);
    world.reconcile();
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Stable);
}

#[test]
fn too_many_restarts_restart_the_job_from_its_latest_checkpoint_as_a_new_revision() {
    let mut world = with_settings(
        flink_api::UpgradeMode::LastState,
        &[
            ("kubernetes.operator.cluster.health-check.enabled", "true"),
            (
                "kubernetes.operator.cluster.health-check.restarts.threshold",
                "2",
            ),
            (
                "kubernetes.operator.cluster.health-check.restarts.window",
                "60s",
            ),
        ],
    );
    let old_job = world.job_id();
    counted(&mut world, 0, 4);
    world.reconcile();
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Stable);
    world.now += 10_000;
    counted(&mut world, 3, 5);
    world.observed.latest_checkpoint = Some(ObservedCheckpoint {
        path: CHECKPOINT.into(),
        completed_at: world.now,
    });
    let plan = world.reconcile();
    assert!(
        reasons(&plan).contains(&"RestartUnhealthyJob"),
        "{:?}",
        plan.notes
    );
    let message = &plan
        .notes
        .iter()
        .find(|n| n.reason == "RestartUnhealthyJob")
        .expect("note")
        .message;
    assert!(
        message.contains("restarted 3 times within 60 s"),
        "{message}"
    );
    assert!(
        matches!(
            &plan.actions[..],
            [Effect::CancelJob {
                best_effort: false,
                ..
            }]
        ),
        "{:?}",
        plan.actions
    );
    world.job_now(FlinkJobState::Canceled);
    let plan = world.reconcile();
    assert_eq!(plan.actions, vec![Effect::DeleteCluster]);
    world.cluster_gone();
    let plan = world.reconcile();
    assert_eq!(applied_generation(&plan).as_deref(), Some("1"));
    assert_eq!(applied_revision(&plan).as_deref(), Some("1"));
    assert_eq!(restore_path(&plan).as_deref(), Some(CHECKPOINT));
    assert_ne!(world.job_id(), old_job, "the restarted job has its own id");
    world.revision = 1;
    world.cluster_runs(1, FlinkJobState::Running);
    counted(&mut world, 0, 0);
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert_eq!(
        world.lifecycle(),
        ResourceLifecycleState::Stable,
        "the spec did not change"
    );
}

#[test]
fn a_failed_job_is_redeployed_only_with_restart_failed() {
    let mut world = with_settings(flink_api::UpgradeMode::Stateless, &[]);
    world.job_now(FlinkJobState::Failed);
    let plan = world.reconcile();
    assert!(
        plan.actions.is_empty(),
        "upstream's default keeps a failed job: {:?}",
        plan.actions
    );
    let mut world = with_settings(
        flink_api::UpgradeMode::Stateless,
        &[("kubernetes.operator.job.restart.failed", "true")],
    );
    world.job_now(FlinkJobState::Failed);
    let plan = world.reconcile();
    assert!(
        reasons(&plan).contains(&"RestartUnhealthyJob"),
        "{:?}",
        plan.notes
    );
    assert_eq!(plan.actions, vec![Effect::DeleteCluster]);
    world.cluster_gone();
    let plan = world.reconcile();
    assert_eq!(applied_revision(&plan).as_deref(), Some("1"));
}

#[test]
fn a_missing_job_manager_of_a_stateful_job_is_recovered_with_ha_and_reported_without() {
    let mut world = with_settings(flink_api::UpgradeMode::LastState, HA);
    let job = world.job_id();
    world.cluster_gone();
    let plan = world.reconcile();
    assert!(
        reasons(&plan).contains(&"RecoverDeployment"),
        "{:?}",
        plan.notes
    );
    assert!(
        plan.actions
            .iter()
            .any(|a| matches!(a, Effect::ApplyCluster(_))),
        "{:?}",
        plan.actions
    );
    assert_eq!(
        world.job_id(),
        job,
        "HA finds the job's checkpoints by its id"
    );
    let mut world = with_settings(flink_api::UpgradeMode::LastState, &[]);
    world.cluster_gone();
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    let error = world.status().error.clone().unwrap_or_default();
    assert!(error.contains("manual restore required"), "{error}");
    assert!(error.contains("initialSavepointPath"), "{error}");
    let status = world.status();
    assert_eq!(
        status.job_status.as_ref().and_then(|j| j.state),
        Some(FlinkJobState::Reconciling),
        "nothing runs the job"
    );
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Failed);
}

#[test]
fn a_health_restart_after_a_rollback_stays_rolled_back_and_never_deploys_the_failed_spec() {
    // Fixed with the shared job core: a FlinkDeployment's restart finished DEPLOYED, so the
    // next reconcile deployed the spec the rollback had replaced (session jobs stayed
    // ROLLED_BACK, as both do now).
    let mut settings = ROLLBACK.to_vec();
    settings.extend([
        ("kubernetes.operator.cluster.health-check.enabled", "true"),
        (
            "kubernetes.operator.cluster.health-check.restarts.threshold",
            "2",
        ),
        (
            "kubernetes.operator.cluster.health-check.restarts.window",
            "60s",
        ),
    ]);
    let mut world = with_settings(flink_api::UpgradeMode::Stateless, &settings);
    counted(&mut world, 0, 1);
    world.reconcile();
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Stable);
    // A bad upgrade (parallelism 3) that fails, rolled back after the readiness timeout.
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(3));
    let plan = world.reconcile();
    assert!(
        plan.actions.contains(&Effect::DeleteCluster),
        "{:?}",
        plan.actions
    );
    world.cluster_gone();
    assert_eq!(applied_generation(&world.reconcile()).as_deref(), Some("2"));
    world.cluster_runs(2, FlinkJobState::Failed);
    counted(&mut world, 0, 0);
    world.reconcile();
    world.now += 60_000;
    let plan = world.reconcile();
    assert!(reasons(&plan).contains(&"Rollback"), "{:?}", plan.notes);
    world.cluster_gone();
    let plan = world.reconcile();
    assert_eq!(applied_parallelism(&plan).as_deref(), Some("2"));
    world.revision = 1;
    world.cluster_runs(2, FlinkJobState::Running);
    counted(&mut world, 0, 1);
    world.reconcile();
    assert_eq!(
        reconciliation_state(&world),
        Some(ReconciliationState::RolledBack)
    );
    // The rolled-back job restarts too often: restarted as the next revision of what runs.
    world.now += 10_000;
    counted(&mut world, 3, 2);
    let plan = world.reconcile();
    assert!(
        reasons(&plan).contains(&"RestartUnhealthyJob"),
        "{:?}",
        plan.notes
    );
    assert!(
        plan.actions.contains(&Effect::DeleteCluster),
        "{:?}",
        plan.actions
    );
    world.cluster_gone();
    let plan = world.reconcile();
    assert_eq!(applied_revision(&plan).as_deref(), Some("2"));
    assert_eq!(applied_parallelism(&plan).as_deref(), Some("2"));
    assert_eq!(
        reconciliation_state(&world),
        Some(ReconciliationState::RolledBack)
    );
    // It runs; the spec that failed is still not deployed.
    world.revision = 2;
    world.cluster_runs(2, FlinkJobState::Running);
    counted(&mut world, 0, 1);
    for _ in 0..3 {
        world.now += 60_000;
        let plan = world.reconcile();
        assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    }
    assert_eq!(world.lifecycle(), ResourceLifecycleState::RolledBack);
}
