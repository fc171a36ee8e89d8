//! Manual and periodic snapshots of a running deployment.

use super::*;

/// Snapshots kept in the status (upstream's legacy way), with `extra` settings.
fn in_status(mode: flink_api::UpgradeMode, extra: &[(&'static str, &'static str)]) -> World {
    let mut settings = vec![("kubernetes.operator.snapshot.resource.enabled", "false")];
    settings.extend_from_slice(extra);
    with_settings(mode, &settings)
}

#[test]
fn a_checkpoint_nonce_triggers_one_checkpoint_recorded_before_the_request() {
    let mut world = in_status(flink_api::UpgradeMode::LastState, &[]);
    world.reconcile();
    world.job().checkpoint_trigger_nonce = Some(4);
    let plan = world.reconcile();
    let trigger = match &plan.actions[..] {
        [Effect::TriggerCheckpoint { trigger_id, .. }] => trigger_id.clone(),
        other => panic!("expected one checkpoint trigger, got {other:?}"),
    };
    let recorded = |status: &flink_api::FlinkDeploymentStatus| {
        status
            .job_status
            .as_ref()
            .and_then(|j| j.checkpoint_info.as_ref())
            .and_then(|i| i.trigger_id.clone())
    };
    assert_eq!(
        plan.intent.as_ref().and_then(recorded),
        Some(trigger.clone()),
        "written ahead"
    );
    let needs =
        flink_operator::reconcile::deployment::observation_needs(&world.resource, &BTreeMap::new());
    assert_eq!(needs.checkpoint.map(|(_, t)| t), Some(trigger));
    world.observed.checkpoint = Some(ObservedOperation::Completed("file:/tmp/cp/chk-3".into()));
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    let info = world
        .status()
        .job_status
        .as_ref()
        .and_then(|j| j.checkpoint_info.clone())
        .expect("checkpoint info");
    assert_eq!(info.trigger_id, None);
    assert_eq!(info.last_checkpoint.and_then(|c| c.trigger_nonce), Some(4));
    world.observed.checkpoint = None;
    let plan = world.reconcile();
    assert!(
        plan.actions.is_empty(),
        "the nonce asks once: {:?}",
        plan.actions
    );
}

#[test]
fn a_savepoint_nonce_becomes_one_flinkstatesnapshot_of_the_deployment() {
    let mut world = stateful(flink_api::UpgradeMode::LastState);
    world.reconcile();
    let needs = |world: &World| {
        flink_operator::reconcile::deployment::observation_needs(&world.resource, &world.defaults)
    };
    assert!(!needs(&world).snapshot_resources, "nothing due: not listed");
    world.job().savepoint_trigger_nonce = Some(9);
    assert!(needs(&world).snapshot_resources);
    // Observation listed the job's snapshots: none.
    world.observed.snapshots = Some(Vec::new());
    let plan = world.reconcile();
    let [Effect::CreateSnapshot(snapshot)] = &plan.actions[..] else {
        panic!("expected one snapshot resource, got {:?}", plan.actions);
    };
    let spec = &snapshot.spec;
    assert_eq!(
        spec.job_reference.as_ref().and_then(|r| r.name.as_deref()),
        Some("counter")
    );
    assert_eq!(
        spec.savepoint.as_ref().and_then(|s| s.path.as_deref()),
        Some("file:///tmp/sp")
    );
    assert!(plan.intent.is_none(), "no trigger is written ahead");
    assert!(plan.notes.iter().any(|n| n.reason == "SnapshotCreated"));
    // The status remembers the nonce: observation stops listing, nothing more is created.
    assert!(!needs(&world).snapshot_resources);
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    let info = world
        .status()
        .job_status
        .as_ref()
        .and_then(|j| j.savepoint_info.clone())
        .expect("savepoint info");
    assert_eq!(info.trigger_nonce, Some(9));
    assert_eq!(info.trigger_id, None);
}

#[test]
fn an_upgrade_waits_for_a_pending_status_savepoint_unless_told_to_ignore_it() {
    let pending = |extra: &[(&'static str, &'static str)]| {
        let mut world = in_status(flink_api::UpgradeMode::Savepoint, extra);
        world.reconcile();
        world.job().savepoint_trigger_nonce = Some(2);
        let plan = world.reconcile();
        assert!(
            matches!(&plan.actions[..], [Effect::TriggerSavepoint { .. }]),
            "{:?}",
            plan.actions
        );
        world.observed.snapshot = Some(ObservedOperation::InProgress);
        world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(3));
        world
    };
    let mut world = pending(&[]);
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert!(world.status().upgrade.is_none(), "not started");
    let message = world.status().conditions[0].message.clone();
    assert!(
        message.contains("waits for savepoint")
            && message.contains("kubernetes.operator.job.upgrade.ignore-pending-savepoint"),
        "{message}"
    );
    // The savepoint completes: recorded (this reconcile still holds), then the upgrade starts.
    world.observed.snapshot = Some(ObservedOperation::Completed("file:/tmp/sp/manual".into()));
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    let info = world
        .status()
        .job_status
        .as_ref()
        .and_then(|j| j.savepoint_info.clone())
        .expect("savepoint info");
    assert_eq!(info.trigger_id, None);
    assert_eq!(
        info.last_savepoint.and_then(|s| s.location),
        Some("file:/tmp/sp/manual".into())
    );
    world.observed.snapshot = None;
    let plan = world.reconcile();
    assert!(
        matches!(&plan.actions[..], [Effect::StopWithSavepoint { .. }]),
        "{:?}",
        plan.actions
    );
    // A job that is not running does not hold it: its savepoint is never observed to an end.
    let mut world = pending(&[]);
    world.job_now(FlinkJobState::Failed);
    world.reconcile();
    let message = world.status().conditions[0].message.clone();
    assert!(!message.contains("waits for savepoint"), "{message}");
    assert!(
        world.status().upgrade.is_some()
            || world
                .status()
                .error
                .as_deref()
                .is_some_and(|e| e.contains("Upgrade")),
        "the upgrade was taken up: {:?}",
        world.status()
    );
    // Told to ignore it, the upgrade goes ahead at once.
    let mut world = pending(&[(
        "kubernetes.operator.job.upgrade.ignore-pending-savepoint",
        "true",
    )]);
    let plan = world.reconcile();
    assert!(
        matches!(&plan.actions[..], [Effect::StopWithSavepoint { .. }]),
        "{:?}",
        plan.actions
    );
}

#[test]
fn a_status_savepoint_of_a_job_that_stops_running_is_given_up_with_a_warning() {
    let mut world = in_status(flink_api::UpgradeMode::Savepoint, &[]);
    world.reconcile();
    world.job().savepoint_trigger_nonce = Some(5);
    world.reconcile();
    world.observed.snapshot = Some(ObservedOperation::InProgress);
    let trigger = |world: &World| {
        world
            .status()
            .job_status
            .as_ref()
            .and_then(|j| j.savepoint_info.as_ref())
            .and_then(|i| i.trigger_id.clone())
    };
    assert!(trigger(&world).is_some());
    // Not seen (its JobManager does not answer): kept.
    let flink = std::mem::replace(
        &mut world.observed.flink,
        ObservedFlink::Unreachable("connection refused".into()),
    );
    world.reconcile();
    assert!(trigger(&world).is_some(), "a job not seen keeps it");
    world.observed.flink = flink;
    world.job_now(FlinkJobState::Restarting);
    let plan = world.reconcile();
    assert_eq!(trigger(&world), None);
    assert!(
        plan.notes.iter().any(|n| n.warning
            && n.reason == "SavepointError"
            && n.message.contains("RESTARTING, not RUNNING")),
        "{:?}",
        plan.notes
    );
    // The nonce is not asked again once the job runs.
    world.job_now(FlinkJobState::Running);
    world.observed.snapshot = None;
    assert!(world.reconcile().actions.is_empty());
    // One that completed before the job stopped is recorded, not given up.
    world.job().savepoint_trigger_nonce = Some(6);
    world.reconcile();
    assert!(trigger(&world).is_some());
    world.job_now(FlinkJobState::Finished);
    world.observed.snapshot = Some(ObservedOperation::Completed("file:/sp/6".into()));
    let plan = world.reconcile();
    assert_eq!(trigger(&world), None);
    assert_eq!(
        world
            .status()
            .job_status
            .as_ref()
            .and_then(|j| j.savepoint_info.as_ref())
            .and_then(|i| i.last_savepoint.as_ref())
            .and_then(|s| s.location.clone()),
        Some("file:/sp/6".into())
    );
    assert!(
        !plan.notes.iter().any(|n| n.reason == "SavepointError"),
        "{:?}",
        plan.notes
    );
}
