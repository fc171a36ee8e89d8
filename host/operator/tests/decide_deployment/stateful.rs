//! Upgrades, suspensions and deletions that keep the job's state: savepoints, checkpoints, and
//! a crash at every step.

use super::*;

#[test]
fn a_savepoint_upgrade_records_the_trigger_then_the_path_before_deleting_anything() {
    let mut world = stateful(flink_api::UpgradeMode::Savepoint);
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(3));
    let plan = world.reconcile();
    let trigger = match &plan.actions[..] {
        [Effect::StopWithSavepoint { trigger_id, .. }] => trigger_id.clone(),
        other => panic!("expected one stop-with-savepoint, got {other:?}"),
    };
    let intent = plan
        .intent
        .as_ref()
        .and_then(|s| s.upgrade.clone())
        .expect("the trigger is written ahead");
    assert_eq!(intent.trigger_id.as_deref(), Some(trigger.as_str()));
    assert_eq!(intent.step, flink_api::UpgradeStep::Savepointing);
    assert!(
        world.recorded_generation().contains("\"generation\":1"),
        "nothing is recorded as deployed yet"
    );
    assert!(
        flink_operator::reconcile::deployment::observation_needs(&world.resource, &world.defaults)
            .snapshot_resources,
        "the job's snapshots are listed while its upgrade savepoint is awaited (to trim them)"
    );
    // The savepoint runs: nothing else happens, and no second trigger is sent.
    world.observed.savepoint = Some(ObservedOperation::InProgress);
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    // It completes (the job stops): the path is recorded with UPGRADING before the delete.
    world.observed.savepoint = Some(ObservedOperation::Completed(SAVEPOINT.into()));
    world.job_now(FlinkJobState::Finished);
    let plan = world.reconcile();
    let intent = plan.intent.clone().expect("intent before the delete");
    assert_eq!(
        intent
            .upgrade
            .as_ref()
            .and_then(|p| p.restore_path.as_deref()),
        Some(SAVEPOINT)
    );
    assert_eq!(
        intent
            .job_status
            .as_ref()
            .and_then(|j| j.upgrade_savepoint_path.as_deref()),
        Some(SAVEPOINT)
    );
    assert_eq!(
        intent.reconciliation_status.as_ref().map(|r| r.state),
        Some(ReconciliationState::Upgrading)
    );
    // The savepoint is also recorded as an UPGRADE FlinkStateSnapshot (snapshot resources
    // are on by default), once: named after the upgrade's start.
    let [Effect::CreateSnapshot(record)] = &snapshot_records(&plan.actions)[..] else {
        panic!("expected one snapshot record: {:?}", plan.actions)
    };
    let recorded = record.spec.savepoint.clone().unwrap_or_default();
    assert_eq!(recorded.path.as_deref(), Some(SAVEPOINT));
    assert_eq!(recorded.already_exists, Some(true));
    assert_eq!(
        record
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("snapshot.trigger-type"))
            .map(String::as_str),
        Some("UPGRADE")
    );
    assert_eq!(
        without_snapshot_records(&plan.actions),
        vec![Effect::DeleteCluster],
        "a stopped job is not cancelled again"
    );
    world.observed = ObservedCluster::default();
    let plan = world.reconcile();
    assert_eq!(restore_path(&plan).as_deref(), Some(SAVEPOINT));
    assert_eq!(applied_generation(&plan).as_deref(), Some("2"));
    let info = world
        .status()
        .job_status
        .as_ref()
        .and_then(|j| j.savepoint_info.clone())
        .unwrap_or_default();
    assert_eq!(
        info.last_savepoint.and_then(|s| s.location).as_deref(),
        Some(SAVEPOINT)
    );
    assert!(
        info.savepoint_history.is_empty(),
        "its history is the FlinkStateSnapshots (upstream)"
    );
    assert_eq!(world.progress(), None);
}

#[test]
fn the_savepoint_format_setting_chooses_the_upgrade_savepoints_format() {
    let mut world = with_settings(
        flink_api::UpgradeMode::Savepoint,
        &[("kubernetes.operator.savepoint.format.type", "NATIVE")],
    );
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(3));
    let plan = world.reconcile();
    assert!(
        matches!(
            &plan.actions[..],
            [Effect::StopWithSavepoint {
                format: flink_api::SavepointFormatType::Native,
                ..
            }]
        ),
        "{:?}",
        plan.actions
    );
}

#[test]
fn without_snapshot_resources_an_upgrade_savepoint_goes_into_the_status_history() {
    let mut world = with_settings(
        flink_api::UpgradeMode::Savepoint,
        &[("kubernetes.operator.snapshot.resource.enabled", "false")],
    );
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(3));
    world.reconcile();
    world.observed.savepoint = Some(ObservedOperation::Completed(SAVEPOINT.into()));
    world.job_now(FlinkJobState::Finished);
    let plan = world.reconcile();
    assert_eq!(plan.actions, vec![Effect::DeleteCluster], "no resource");
    let history = world
        .status()
        .job_status
        .as_ref()
        .and_then(|j| j.savepoint_info.as_ref())
        .map(|i| i.savepoint_history.len());
    assert_eq!(history, Some(1), "the savepoint is in the history");
}

#[test]
fn a_crash_at_any_step_of_a_savepoint_upgrade_resumes_without_losing_the_path() {
    // Run the upgrade; before every step, lose the final status (keep only the intent, or what
    // was stored before) and decide again, as an operator restarted at that point would.
    let mut world = stateful(flink_api::UpgradeMode::Savepoint);
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(3));
    let observations = [
        None,
        Some(ObservedOperation::InProgress),
        Some(ObservedOperation::Completed(SAVEPOINT.into())),
    ];
    let mut triggers = std::collections::BTreeSet::new();
    for savepoint in observations {
        let stored = world.resource.status.clone();
        world.observed.savepoint = savepoint.clone();
        if matches!(savepoint, Some(ObservedOperation::Completed(_))) {
            world.job_now(FlinkJobState::Finished);
        }
        let plan = world.decide();
        world.resource.status = plan.intent.clone().or(stored);
        let again = world.reconcile();
        for action in plan.actions.iter().chain(&again.actions) {
            match action {
                Effect::StopWithSavepoint { trigger_id, .. } => {
                    triggers.insert(trigger_id.clone());
                }
                Effect::DeleteCluster => {
                    let recorded = world
                        .status()
                        .job_status
                        .as_ref()
                        .and_then(|j| j.upgrade_savepoint_path.clone());
                    assert_eq!(
                        recorded.as_deref(),
                        Some(SAVEPOINT),
                        "deleted before the path was recorded"
                    );
                }
                Effect::ApplyCluster(_) => panic!("deployed while the old cluster runs"),
                _ => {}
            }
        }
    }
    assert_eq!(
        triggers.len(),
        1,
        "a retry is the same savepoint: {triggers:?}"
    );
    world.observed = ObservedCluster::default();
    let stored = world.resource.status.clone();
    let plan = world.decide();
    world.resource.status = plan.intent.clone().or(stored);
    let plan = world.reconcile();
    assert_eq!(
        restore_path(&plan).as_deref(),
        Some(SAVEPOINT),
        "the deploy after a crash still restores"
    );
}

#[test]
fn a_failed_savepoint_keeps_the_job_running_and_retries_with_a_new_trigger() {
    let mut world = stateful(flink_api::UpgradeMode::Savepoint);
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(3));
    let first = world.reconcile().actions;
    world.observed.savepoint = Some(ObservedOperation::Failed(
        "the savepoint directory is not writable".into(),
    ));
    let plan = world.reconcile();
    assert!(plan.actions.is_empty());
    assert!(
        plan.notes
            .iter()
            .any(|n| n.reason == "SavepointError" && n.message.contains("not writable")),
        "{:?}",
        plan.notes
    );
    assert!(
        world
            .status()
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("SavepointError")
    );
    assert_eq!(
        plan.requeue,
        Intervals::default().reconcile,
        "retried at the normal pace"
    );
    world.observed.savepoint = None;
    let retry = world.reconcile().actions;
    assert!(matches!(&retry[..], [Effect::StopWithSavepoint { .. }]));
    assert_ne!(first, retry, "a new attempt has a new trigger id");
}

#[test]
fn reverting_the_change_before_the_savepoint_was_requested_abandons_the_upgrade() {
    let mut world = stateful(flink_api::UpgradeMode::Savepoint);
    world.observed.flink = ObservedFlink::Unreachable("timeout".into());
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(3));
    let plan = world.reconcile();
    assert!(
        plan.actions.is_empty(),
        "nothing can be secured while Flink does not answer"
    );
    assert!(world.progress().is_some());
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(2));
    world.cluster_runs(1, FlinkJobState::Running);
    let plan = world.reconcile();
    assert!(plan.actions.is_empty());
    assert_eq!(world.progress(), None);
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Stable);
}

#[test]
fn a_last_state_upgrade_cancels_then_restores_from_the_latest_retained_checkpoint() {
    let mut world = stateful(flink_api::UpgradeMode::LastState);
    let old = world.job_id();
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(3));
    let plan = world.reconcile();
    assert!(
        plan.actions.is_empty(),
        "no checkpoint yet: held, {:?}",
        plan.actions
    );
    assert!(
        world
            .status()
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("completed checkpoint")
    );
    world.observed.latest_checkpoint = Some(ObservedCheckpoint {
        path: "file:///tmp/cp/abc/chk-6".into(),
        completed_at: 1,
    });
    let plan = world.reconcile();
    assert_eq!(
        plan.actions,
        vec![Effect::CancelJob {
            cluster: "counter".into(),
            job_id: old,
            best_effort: false
        }]
    );
    assert_eq!(
        world.progress().map(|p| p.step),
        Some(flink_api::UpgradeStep::Cancelling)
    );
    // Cancelled; a later checkpoint completed before the cancel and is the one to use.
    world.job_now(FlinkJobState::Canceled);
    world.observed.latest_checkpoint = Some(ObservedCheckpoint {
        path: CHECKPOINT.into(),
        completed_at: 2,
    });
    let plan = world.reconcile();
    assert_eq!(plan.actions, vec![Effect::DeleteCluster]);
    world.observed = ObservedCluster::default();
    let plan = world.reconcile();
    assert_eq!(restore_path(&plan).as_deref(), Some(CHECKPOINT));
}

#[test]
fn a_savepoint_job_that_is_not_running_falls_back_to_its_latest_checkpoint() {
    let mut world = stateful(flink_api::UpgradeMode::Savepoint);
    world.job_now(FlinkJobState::Restarting);
    world.reconcile();
    world.observed.latest_checkpoint = Some(ObservedCheckpoint {
        path: CHECKPOINT.into(),
        completed_at: 2,
    });
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(3));
    let plan = world.reconcile();
    assert!(
        plan.notes.iter().any(|n| n.reason == "SavepointFallback"),
        "{:?}",
        plan.notes
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
}

/// A deployed savepoint job with `kubernetes.operator.job.upgrade.last-state-fallback.enabled:
/// false`.
fn without_fallback() -> World {
    let mut world = stateful(flink_api::UpgradeMode::Savepoint);
    world
        .resource
        .spec
        .flink_configuration
        .get_or_insert_default()
        .set(
            "kubernetes.operator.job.upgrade.last-state-fallback.enabled",
            "false",
        );
    world.reconcile();
    world
}

/// `kubernetes.operator.job.upgrade.last-state-fallback.enabled: false`: a savepoint upgrade
/// of a job that is not running waits for it, touching nothing, and says why; once the job
/// runs again, the savepoint is taken.
#[test]
fn without_the_last_state_fallback_a_savepoint_upgrade_waits_for_the_job_to_run() {
    let mut world = without_fallback();
    world.job_now(FlinkJobState::Restarting);
    world.observed.latest_checkpoint = Some(ObservedCheckpoint {
        path: CHECKPOINT.into(),
        completed_at: 2,
    });
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(3));
    let plan = world.reconcile();
    assert!(
        without_snapshot_records(&plan.actions).is_empty(),
        "{:?}",
        plan.actions
    );
    let error = world
        .resource
        .status
        .as_ref()
        .and_then(|s| s.error.clone())
        .unwrap_or_default();
    assert!(
        error.contains("last-state-fallback.enabled is false"),
        "{error}"
    );
    world.job_now(FlinkJobState::Running);
    let plan = world.reconcile();
    assert!(
        matches!(&plan.actions[..], [Effect::StopWithSavepoint { .. }]),
        "{:?}",
        plan.actions
    );
}

/// The switch does not hold an ended job's upgrade: a FAILED job has nothing to stop with a
/// savepoint, and its latest checkpoint is its state (as upstream upgrades ended jobs).
#[test]
fn without_the_last_state_fallback_an_ended_job_is_still_upgraded_from_its_checkpoint() {
    let mut world = without_fallback();
    world.job_now(FlinkJobState::Failed);
    world.observed.latest_checkpoint = Some(ObservedCheckpoint {
        path: CHECKPOINT.into(),
        completed_at: 2,
    });
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(3));
    let plan = world.reconcile();
    assert!(
        plan.notes.iter().any(|n| n.reason == "SavepointFallback"),
        "{:?}",
        plan.notes
    );
    let error = world
        .resource
        .status
        .as_ref()
        .and_then(|s| s.error.clone())
        .unwrap_or_default();
    assert!(!error.contains("last-state-fallback"), "{error}");
}

#[test]
fn a_stateful_suspend_keeps_the_savepoint_and_resume_restores_it() {
    let mut world = stateful(flink_api::UpgradeMode::Savepoint);
    world.edit(|spec| spec.job.as_mut().expect("job").state = flink_api::JobState::Suspended);
    world.reconcile();
    world.observed.savepoint = Some(ObservedOperation::Completed(SAVEPOINT.into()));
    world.job_now(FlinkJobState::Finished);
    let plan = world.reconcile();
    assert_eq!(
        without_snapshot_records(&plan.actions),
        vec![Effect::DeleteCluster]
    );
    world.observed = ObservedCluster::default();
    let plan = world.reconcile();
    assert!(
        plan.notes
            .iter()
            .any(|n| n.reason == "Suspended" && n.message.contains(SAVEPOINT)),
        "{:?}",
        plan.notes
    );
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Suspended);
    world.edit(|spec| spec.job.as_mut().expect("job").state = flink_api::JobState::Running);
    let plan = world.reconcile();
    assert_eq!(restore_path(&plan).as_deref(), Some(SAVEPOINT));
}

#[test]
fn switching_to_stateless_drops_the_state_and_says_so() {
    let mut world = stateful(flink_api::UpgradeMode::Savepoint);
    world.edit(|spec| {
        let job = spec.job.as_mut().expect("job");
        job.upgrade_mode = flink_api::UpgradeMode::Stateless;
        job.parallelism = Some(3);
    });
    let plan = world.reconcile();
    assert!(
        plan.notes
            .iter()
            .any(|n| n.reason == "StatelessUpgrade" && n.warning)
    );
    assert!(plan.actions.contains(&Effect::DeleteCluster));
    world.observed = ObservedCluster::default();
    let plan = world.reconcile();
    assert_eq!(restore_path(&plan), None);
}

#[test]
fn a_failed_job_reports_flinks_reason_once() {
    let mut world = app();
    world.reconcile();
    world.cluster_runs(1, FlinkJobState::Failed);
    world.observed.job_failure = Some(flink_operator::reconcile::observed::JobFailure {
        message: "Cannot find savepoint at file:/nowhere".into(),
        stack_trace: "org.apache.flink.runtime.client.JobInitializationException: Could not start the JobMaster.\n\tat org.apache.flink.runtime.jobmaster.DefaultJobMasterServiceProcess.lambda$new$0(DefaultJobMasterServiceProcess.java:97)\nCaused by: java.util.concurrent.CompletionException: java.lang.RuntimeException: boom\n\tat java.base/java.util.concurrent.CompletableFuture.encodeThrowable(CompletableFuture.java:315)\nCaused by: java.io.FileNotFoundException: Cannot find savepoint at file:/nowhere\n\t... 3 more\nCaused by: java.lang.IllegalStateException: third\n".into(),
    });
    let plan = world.reconcile();
    let error = world.status().error.clone().unwrap_or_default();
    assert!(
        error.contains("JobFailed") && error.contains("file:/nowhere"),
        "{error}"
    );
    // Upstream's shape: its causes (at most 2), no stack trace unless the operator enables it.
    let shaped: serde_json::Value = serde_json::from_str(&error).expect("JSON");
    assert_eq!(
        shaped["throwableList"],
        serde_json::json!([
            {"type": "java.util.concurrent.CompletionException", "message": "java.lang.RuntimeException: boom", "additionalMetadata": {}},
            {"type": "java.io.FileNotFoundException", "message": "Cannot find savepoint at file:/nowhere", "additionalMetadata": {}},
        ])
    );
    assert_eq!(shaped["additionalMetadata"], serde_json::json!({}));
    assert!(shaped.get("stackTrace").is_none(), "{shaped:#}");
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Failed);
    assert!(
        plan.notes
            .iter()
            .any(|n| n.warning && n.message.contains("file:/nowhere"))
    );
    // Observation no longer fetches the exceptions once they are reported.
    world.observed.job_failure = None;
    let plan = world.reconcile();
    assert!(plan.notes.is_empty(), "announced once: {:?}", plan.notes);
    let kept = world.status().error.clone().unwrap_or_default();
    assert_eq!(kept, error, "the reported reason is kept");
}

#[test]
fn a_savepoint_redeploy_nonce_redeploys_from_the_initial_savepoint_without_taking_one() {
    let mut world = stateful(flink_api::UpgradeMode::Savepoint);
    world.edit(|spec| {
        let job = spec.job.as_mut().expect("job");
        job.initial_savepoint_path = Some("file:///backups/savepoint-42".into());
        job.savepoint_redeploy_nonce = Some(1);
    });
    let plan = world.reconcile();
    assert!(
        !plan
            .actions
            .iter()
            .any(|a| matches!(a, Effect::StopWithSavepoint { .. })),
        "{:?}",
        plan.actions
    );
    assert!(plan.actions.contains(&Effect::DeleteCluster));
    world.observed = ObservedCluster::default();
    let plan = world.reconcile();
    assert_eq!(
        restore_path(&plan).as_deref(),
        Some("file:///backups/savepoint-42")
    );
}

#[test]
fn savepoint_on_deletion_stops_the_job_with_a_savepoint_before_the_cluster_goes() {
    let mut world = stateful(flink_api::UpgradeMode::Savepoint);
    world
        .resource
        .spec
        .flink_configuration
        .get_or_insert_default()
        .set("kubernetes.operator.job.savepoint-on-deletion", "true");
    world.delete();
    let plan = world.reconcile();
    assert!(
        matches!(&plan.actions[..], [Effect::StopWithSavepoint { .. }]),
        "{:?}",
        plan.actions
    );
    world.observed.savepoint = Some(ObservedOperation::Completed(SAVEPOINT.into()));
    world.job_now(FlinkJobState::Finished);
    let plan = world.reconcile();
    assert_eq!(
        without_snapshot_records(&plan.actions),
        vec![Effect::DeleteCluster]
    );
    assert!(
        plan.notes
            .iter()
            .any(|n| n.reason == "SavepointOnDeletion" && n.message.contains(SAVEPOINT))
    );
    let plan = world.reconcile();
    assert!(
        !plan.notes.iter().any(|n| n.reason == "SavepointOnDeletion"),
        "said once"
    );
    world.observed = ObservedCluster::default();
    assert_eq!(world.reconcile().actions, vec![Effect::RemoveFinalizer]);
}

#[test]
fn the_operators_savepoint_on_deletion_default_is_honoured() {
    // Fixed with the shared job core: only the resource's own configuration was read.
    let mut world = stateful(flink_api::UpgradeMode::Savepoint);
    world.defaults.insert(
        "kubernetes.operator.job.savepoint-on-deletion".into(),
        "true".into(),
    );
    world.delete();
    let plan = world.reconcile();
    assert!(
        matches!(&plan.actions[..], [Effect::StopWithSavepoint { .. }]),
        "{:?}",
        plan.actions
    );
}

/// As upstream: Kubernetes HA metadata goes with a cluster whose state it does not carry on
/// (a savepoint redeploy, the resource's deletion), deleted before the next cluster starts so
/// its JobManager does not recover the previous job next to the new one; it stays for a
/// last-state upgrade, whose new JobManager resumes the job from it. Fixed here: it was never
/// deleted.
#[test]
fn ha_metadata_is_deleted_unless_the_next_cluster_resumes_from_it() {
    let position = |plan: &Plan<flink_api::FlinkDeploymentStatus>, f: fn(&Effect) -> bool| {
        plan.actions.iter().position(f)
    };
    // A savepoint upgrade: deleted once the old cluster is gone, before the new one.
    let mut world = with_settings(flink_api::UpgradeMode::Savepoint, HA);
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(3));
    world.reconcile();
    world.observed.savepoint = Some(ObservedOperation::Completed(SAVEPOINT.into()));
    world.job_now(FlinkJobState::Finished);
    let plan = world.reconcile();
    assert!(
        position(&plan, |a| *a == Effect::DeleteHaMetadata).is_none(),
        "{:?}",
        plan.actions
    );
    world.cluster_gone();
    let plan = world.reconcile();
    let deleted = position(&plan, |a| *a == Effect::DeleteHaMetadata);
    let applied = position(&plan, |a| matches!(a, Effect::ApplyCluster(_)));
    assert!(deleted.is_some() && deleted < applied, "{:?}", plan.actions);

    // A last-state upgrade with HA keeps it: the job resumes from it under the same id. Its
    // cluster goes without cancelling the job, which would make Flink delete that metadata
    // and record the job as done (seen on the local cluster: the new JobManager reported the
    // job CANCELED).
    let mut world = with_settings(flink_api::UpgradeMode::LastState, HA);
    let job = world.job_id();
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(3));
    let plan = world.reconcile();
    assert_eq!(plan.actions, vec![Effect::DeleteCluster]);
    world.cluster_gone();
    let plan = world.reconcile();
    assert!(
        position(&plan, |a| matches!(a, Effect::ApplyCluster(_))).is_some(),
        "{:?}",
        plan.actions
    );
    assert!(
        !plan.actions.contains(&Effect::DeleteHaMetadata),
        "{:?}",
        plan.actions
    );
    assert_eq!(world.job_id(), job);
    assert_eq!(
        restore_path(&plan),
        None,
        "no checkpoint was seen: HA metadata alone"
    );

    // A session cluster keeps it when it is redeployed (its session jobs resume from it), as
    // upstream; it goes with the resource only.
    let mut world = app();
    world.resource.spec.job = None;
    let config = world
        .resource
        .spec
        .flink_configuration
        .get_or_insert_default();
    for (key, value) in HA {
        config.set(key, *value);
    }
    world.reconcile();
    world.observed = ObservedCluster::default();
    world.edit(|spec| {
        spec.flink_configuration
            .get_or_insert_default()
            .set("taskmanager.numberOfTaskSlots", "4")
    });
    let plan = world.reconcile();
    assert!(
        position(&plan, |a| matches!(a, Effect::ApplyCluster(_))).is_some()
            && !plan.actions.contains(&Effect::DeleteHaMetadata),
        "{:?}",
        plan.actions
    );

    // Deletion: once the cluster is gone, with the finalizer.
    for (settings, expected) in [
        (HA, vec![Effect::DeleteHaMetadata, Effect::RemoveFinalizer]),
        (&[][..], vec![Effect::RemoveFinalizer]),
    ] {
        let mut world = with_settings(flink_api::UpgradeMode::Savepoint, settings);
        world.delete();
        let plan = world.reconcile();
        assert!(
            plan.actions.contains(&Effect::DeleteCluster),
            "{:?}",
            plan.actions
        );
        world.cluster_gone();
        assert_eq!(world.reconcile().actions, expected);
    }
}

#[test]
fn a_last_state_suspension_with_ha_resumes_from_the_ha_metadata_not_an_older_savepoint() {
    // Upgraded once with a savepoint, so `upgradeSavepointPath` names it; then last-state.
    let mut world = with_settings(flink_api::UpgradeMode::Savepoint, HA);
    upgraded_from_savepoint(&mut world);
    assert_eq!(
        world
            .status()
            .job_status
            .as_ref()
            .and_then(|j| j.upgrade_savepoint_path.as_deref()),
        Some(SAVEPOINT)
    );
    world.edit(|spec| {
        let job = spec.job.as_mut().expect("job");
        job.upgrade_mode = flink_api::UpgradeMode::LastState;
    });
    world.reconcile();
    let generation = world.resource.metadata.generation.unwrap_or_default();
    world.cluster_runs(generation, FlinkJobState::Running);
    world.reconcile();
    let job = world.job_id();
    // Suspended: the cluster goes, the job is not cancelled, its HA metadata stays. Its latest
    // checkpoint, read for the securing, says the metadata holds one.
    world.edit(|spec| spec.job.as_mut().expect("job").state = flink_api::JobState::Suspended);
    world.observed.latest_checkpoint = Some(ObservedCheckpoint {
        path: CHECKPOINT.into(),
        completed_at: 1,
    });
    let plan = world.reconcile();
    assert_eq!(plan.actions, vec![Effect::DeleteCluster]);
    world.cluster_gone();
    world.reconcile();
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Suspended);
    // Resumed, even with the mode switched to savepoint: the same job id, no path, the HA
    // metadata kept; before, the older savepoint was restored under a new id.
    world.edit(|spec| {
        let job = spec.job.as_mut().expect("job");
        job.state = flink_api::JobState::Running;
        job.upgrade_mode = flink_api::UpgradeMode::Savepoint;
    });
    let plan = world.reconcile();
    assert!(
        plan.actions
            .iter()
            .any(|a| matches!(a, Effect::ApplyCluster(_))),
        "{:?}",
        plan.actions
    );
    // Upstream's safety net, as the job checkpointed: a path that does not exist, ignored by
    // Flink while the HA metadata has a checkpoint, fatal if that metadata were gone.
    assert_eq!(
        restore_path(&plan).as_deref(),
        Some("KUBERNETES_OPERATOR_LAST_STATE")
    );
    assert!(!plan.actions.contains(&Effect::DeleteHaMetadata));
    assert_eq!(world.job_id(), job);
}

#[test]
fn a_change_that_turns_ha_on_secures_a_checkpoint_first() {
    // The running cluster has no HA metadata: the new spec's HA cannot carry the state.
    let mut world = stateful(flink_api::UpgradeMode::LastState);
    let old = world.job_id();
    world.edit(|spec| {
        let config = spec.flink_configuration.get_or_insert_default();
        for (key, value) in HA {
            config.set(key, *value);
        }
    });
    world.observed.latest_checkpoint = Some(ObservedCheckpoint {
        path: CHECKPOINT.into(),
        completed_at: 1,
    });
    let plan = world.reconcile();
    assert_eq!(
        plan.actions,
        vec![Effect::CancelJob {
            cluster: "counter".into(),
            job_id: old.clone(),
            best_effort: false
        }],
        "cancelled and its checkpoint taken, not left to HA metadata that does not exist"
    );
    world.job_now(FlinkJobState::Canceled);
    world.reconcile();
    world.cluster_gone();
    let plan = world.reconcile();
    assert_eq!(restore_path(&plan).as_deref(), Some(CHECKPOINT));
    assert_ne!(world.job_id(), old);
}

#[test]
fn with_job_cancel_enabled_a_last_state_upgrade_with_ha_cancels_and_resumes_from_a_checkpoint() {
    let mut settings = HA.to_vec();
    settings.push((
        "kubernetes.operator.job.upgrade.last-state.job-cancel.enabled",
        "true",
    ));
    let mut world = with_settings(flink_api::UpgradeMode::LastState, &settings);
    let old = world.job_id();
    world.observed.latest_checkpoint = Some(ObservedCheckpoint {
        path: "file:///tmp/cp/abc/chk-6".into(),
        completed_at: 1,
    });
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(3));
    let plan = world.reconcile();
    assert_eq!(
        plan.actions,
        vec![Effect::CancelJob {
            cluster: "counter".into(),
            job_id: old.clone(),
            best_effort: false
        }],
        "cancelled, not left to its HA metadata"
    );
    world.job_now(FlinkJobState::Canceled);
    world.observed.latest_checkpoint = Some(ObservedCheckpoint {
        path: CHECKPOINT.into(),
        completed_at: 2,
    });
    assert_eq!(world.reconcile().actions, vec![Effect::DeleteCluster]);
    world.cluster_gone();
    let plan = world.reconcile();
    assert_eq!(restore_path(&plan).as_deref(), Some(CHECKPOINT));
    assert_ne!(world.job_id(), old, "a new job id restores from the path");

    // A JobManager that does not answer cannot cancel: the HA metadata is the state.
    let mut world = with_settings(flink_api::UpgradeMode::LastState, &settings);
    world.observed.flink = ObservedFlink::Unreachable("connection refused".into());
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(3));
    assert_eq!(world.reconcile().actions, vec![Effect::DeleteCluster]);
}
