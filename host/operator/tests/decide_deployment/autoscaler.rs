//! What the autoscaler's step hands the deployment's decision.

use super::*;

#[test]
fn a_job_that_cannot_rescale_in_place_is_redeployed_through_a_savepoint_at_the_chosen_parallelism()
{
    let mut world = with_settings(
        flink_api::UpgradeMode::Savepoint,
        &[
            ("job.autoscaler.enabled", "true"),
            ("jobmanager.scheduler", "default"),
        ],
    );
    let old_job = world.job_id();
    let chosen = BTreeMap::from([("cbc357ccb763df2852fee8c4fc7d55f2".to_string(), 3)]);
    // Memory tuning chose smaller TaskManagers (600 MiB instead of the spec's).
    let tuned = flink_autoscaler::memory::MemoryRecommendation {
        process: 600 << 20,
        heap: 120 << 20,
        managed: 0,
        network: 1 << 20,
        metaspace: 96 << 20,
        set: BTreeMap::from([
            (
                "taskmanager.memory.process.size".to_string(),
                "629145600 bytes".to_string(),
            ),
            (
                "taskmanager.memory.managed.fraction".to_string(),
                "0".to_string(),
            ),
        ]),
        remove: vec!["taskmanager.memory.managed.size".to_string()],
    };
    world.autoscaler = Some(AutoscalerStep {
        view: Some(AutoscalerView {
            overrides: chosen.clone(),
            redeploy: Some("count 1 -> 3".into()),
            memory: Some(tuned),
            ..Default::default()
        }),
        ..Default::default()
    });
    let plan = world.reconcile();
    assert!(
        matches!(&plan.actions[..], [Effect::StopWithSavepoint { job_id, .. }] if *job_id == old_job),
        "{:?}",
        plan.actions
    );
    let note = plan
        .notes
        .iter()
        .find(|n| n.reason == "Scaling")
        .expect("a Scaling event");
    assert!(
        note.message.contains("in savepoint mode") && note.message.contains("count 1 -> 3"),
        "{}",
        note.message
    );
    world.observed.savepoint = Some(ObservedOperation::Completed(SAVEPOINT.into()));
    world.job_now(FlinkJobState::Finished);
    let plan = world.reconcile();
    assert_eq!(
        without_snapshot_records(&plan.actions),
        vec![Effect::DeleteCluster]
    );
    world.cluster_gone();
    let plan = world.reconcile();
    assert_eq!(applied_revision(&plan).as_deref(), Some("1"));
    assert_eq!(restore_path(&plan).as_deref(), Some(SAVEPOINT));
    assert_eq!(
        applied_config(&plan, "pipeline.jobvertex-parallelism-overrides").as_deref(),
        Some("cbc357ccb763df2852fee8c4fc7d55f2:3"),
        "the new job runs the chosen parallelism"
    );
    assert_eq!(
        applied_config(&plan, "taskmanager.memory.process.size").as_deref(),
        Some("629145600 bytes"),
        "and the tuned TaskManager memory"
    );
    assert_eq!(
        applied_config(&plan, "taskmanager.memory.managed.fraction").as_deref(),
        Some("0")
    );
    let tm_memory = plan.actions.iter().find_map(|a| match a {
        Effect::ApplyCluster(objects) => objects.task_manager.as_ref().map(|tm| {
            tm.pointer("/spec/template/spec/containers/0/resources/limits/memory")
                .cloned()
        }),
        _ => None,
    });
    assert_eq!(
        tm_memory.flatten(),
        Some(serde_json::json!("600Mi")),
        "the TaskManager pods get the tuned memory"
    );
    // The new job runs what was chosen: nothing more to do, and the spec stayed stable.
    world
        .autoscaler
        .as_mut()
        .and_then(|step| step.view.as_mut())
        .expect("view")
        .redeploy = None;
    world.revision = 1;
    world.cluster_runs(1, FlinkJobState::Running);
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Stable);
    assert_ne!(world.job_id(), old_job);
}

#[test]
fn the_autoscalers_writes_and_events_join_the_plan_even_a_held_one() {
    // Every write is in a plan: the autoscaler's step hands its state, rescale and TaskManager
    // writes to the deployment's plan (after the pod-template plugin had its say, so a plan
    // held for that plugin still carries them) instead of making them itself.
    let world = with_settings(
        flink_api::UpgradeMode::Savepoint,
        &[("job.autoscaler.enabled", "true")],
    );
    let job_id = world.job_id();
    let writes = vec![
        Effect::StoreAutoscalerState(Box::new(
            serde_json::json!({"metadata": {"name": "autoscaler-counter"}}),
        )),
        Effect::ScaleTaskManagers { replicas: 2 },
        Effect::SetResourceRequirements {
            cluster: "counter".into(),
            job_id,
            requirements: Default::default(),
        },
    ];
    let step = AutoscalerStep {
        view: Some(AutoscalerView::default()),
        actions: writes.clone(),
        notes: vec![flink_operator::reconcile::Note::normal(
            flink_operator::reconcile::Reason::Scaling,
            "Rescaling in place: count 1 -> 2",
        )],
        log: Vec::new(),
    };
    let mut deploying = app();
    deploying.resource.metadata.finalizers = None;
    let plan = with_step(deploying.decide(), &step);
    assert_eq!(plan.actions[0], Effect::AddFinalizer);
    assert_eq!(
        plan.actions[1..4],
        writes[..],
        "right after the finalizer, the state first"
    );
    assert!(
        matches!(plan.actions[4], Effect::ApplyCluster(_)),
        "{:?}",
        plan.actions
    );
    assert_eq!(reasons(&plan)[0], "Scaling", "{:?}", plan.notes);
    // A plan the pod-template plugin held keeps only its finalizer, and still the step.
    let held = flink_operator::reconcile::pod_templates::apply_outcomes(
        deploying.decide(),
        &Default::default(),
        flink_api::PolicyDecision::default(),
        &[flink_operator::reconcile::pod_templates::PodOutcome::Held(
            "the plugin trapped".into(),
        )],
    );
    let plan = with_step(held, &step);
    assert_eq!(plan.actions[0], Effect::AddFinalizer);
    assert_eq!(plan.actions[1..], writes[..]);
    assert!(
        writes.iter().all(|a| a.failure_does_not_stop().is_some()),
        "a failed autoscaler write does not stop the deployment's own effects"
    );
    assert_eq!(Effect::DeleteCluster.failure_does_not_stop(), None);
}
