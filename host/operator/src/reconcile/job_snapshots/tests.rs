//! The snapshot decisions, each rule alone.

use super::*;

fn input<'a>(
    config: &'a BTreeMap<String, String>,
    result: Option<&'a ObservedOperation>,
    now: i64,
) -> SnapshotInput<'a> {
    SnapshotInput {
        uid: "uid",
        cluster: "c",
        job_id: "j",
        nonce: None,
        config,
        result,
        job_started: 0,
        keep: None,
        now_ms: now,
        owner: (JobKind::FlinkDeployment, "keeper"),
        resources: None,
        thresholds: HistoryThresholds::default(),
    }
}

/// Settings with snapshots kept in the status (upstream's legacy way).
fn legacy(mut config: BTreeMap<String, String>) -> BTreeMap<String, String> {
    config.insert(
        options::SNAPSHOT_RESOURCE_ENABLED.key.to_string(),
        "false".to_string(),
    );
    config
}

/// What observation would list after `actions` created snapshot resources at `at`.
fn created(actions: &[Effect], at: i64) -> Vec<JobSnapshot> {
    actions
        .iter()
        .filter_map(|a| match a {
            Effect::CreateSnapshot(s) => Some(JobSnapshot {
                name: s.metadata.name.clone().unwrap_or_default(),
                created_ms: at,
                savepoint: s.spec.savepoint.is_some(),
                trigger_type: labels::trigger_type_of(
                    s.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(labels::TRIGGER_TYPE))
                        .map(String::as_str),
                ),
                completed: false,
                path: None,
                nonce: s
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(flink_api::snapshot::TRIGGER_NONCE_ANNOTATION))
                    .and_then(|n| n.parse().ok()),
                deleting: false,
            }),
            _ => None,
        })
        .collect()
}

#[test]
fn a_new_nonce_creates_one_snapshot_resource_even_across_a_crash() {
    let config = BTreeMap::from([(
        "execution.checkpointing.savepoint-dir".to_string(),
        "file:///sp".to_string(),
    )]);
    let mut info = SavepointInfo::default();
    let mut asked = input(&config, None, 1_000);
    asked.nonce = Some(3);
    // Not listed: nothing can be decided.
    assert_eq!(savepoints(&mut info, &asked), Outcome::default());
    asked.resources = Some(&[]);
    let out = savepoints(&mut info, &asked);
    let [Effect::CreateSnapshot(snapshot)] = &out.actions[..] else {
        panic!("{:?}", out.actions)
    };
    assert!(!out.write_ahead, "the resource itself is the record");
    assert_eq!(
        snapshot.metadata.name.as_deref(),
        Some("keeper-savepoint-manual-1000")
    );
    let labels = snapshot.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels[labels::SNAPSHOT_TYPE], "SAVEPOINT");
    assert_eq!(labels[labels::TRIGGER_TYPE], "MANUAL");
    assert_eq!(labels[labels::JOB_KIND], "FlinkDeployment");
    assert_eq!(labels[labels::JOB_NAME], "keeper");
    let spec = snapshot.spec.savepoint.clone().unwrap_or_default();
    assert_eq!(spec.path.as_deref(), Some("file:///sp"));
    assert_eq!(spec.dispose_on_delete, Some(false), "upstream's default");
    assert_eq!(info.trigger_nonce, Some(3));
    assert_eq!(info.trigger_id, None, "nothing is triggered here");
    // The operator stopped before the status was written: the resource tells.
    let listed = created(&out.actions, 1_000);
    let mut forgot = SavepointInfo::default();
    let mut again = input(&config, None, 2_000);
    again.nonce = Some(3);
    again.resources = Some(&listed);
    let out = savepoints(&mut forgot, &again);
    assert!(out.actions.is_empty(), "{:?}", out.actions);
    assert_eq!(forgot.trigger_nonce, Some(3));
    // The same nonce asks once; a new one asks again.
    assert!(savepoints(&mut info, &again).actions.is_empty());
    again.nonce = Some(4);
    assert_eq!(savepoints(&mut info, &again).actions.len(), 1);
}

#[test]
fn periodic_snapshot_resources_follow_the_schedule_and_their_history_is_trimmed() {
    let config = BTreeMap::from([
        (PERIODIC_SAVEPOINTS.to_string(), "10s".to_string()),
        (PERIODIC_CHECKPOINTS.to_string(), "10s".to_string()),
        (
            "kubernetes.operator.savepoint.history.max.count".to_string(),
            "2".to_string(),
        ),
    ]);
    let mut info = SavepointInfo::default();
    let mut checkpoint_info = CheckpointInfo::default();
    let mut listed: Vec<JobSnapshot> = Vec::new();
    let mut deleted = Vec::new();
    for now in [5_000, 10_000, 15_000, 20_000, 30_000, 40_000] {
        let mut at = input(&config, None, now);
        at.resources = Some(&listed);
        let out = savepoints(&mut info, &at);
        let more = checkpoints(&mut checkpoint_info, &at);
        let mut new = created(&out.actions, now);
        new.extend(created(&more.actions, now));
        for action in out.actions.iter().chain(&more.actions) {
            if let Effect::DeleteSnapshot { name } = action {
                deleted.push(name.clone());
                listed.retain(|s| &s.name != name);
            }
        }
        // Whatever existed has completed by the next reconcile.
        listed.iter_mut().for_each(|s| s.completed = true);
        listed.extend(new);
    }
    let names = |savepoint: bool| {
        listed
            .iter()
            .filter(|s| s.savepoint == savepoint)
            .map(|s| s.name.clone())
            .collect::<Vec<_>>()
    };
    // Due at 10 s, 20 s, 30 s, 40 s: four savepoints; at most two kept before the newest
    // is created (the count is enforced on what was listed).
    assert_eq!(
        names(true),
        vec![
            "keeper-savepoint-periodic-20000",
            "keeper-savepoint-periodic-30000",
            "keeper-savepoint-periodic-40000"
        ]
    );
    // Checkpoints: as many as Flink retains (1): the newest completed one is kept, and the
    // newest listed one (still running when trimmed).
    assert_eq!(
        names(false),
        vec![
            "keeper-checkpoint-periodic-20000",
            "keeper-checkpoint-periodic-30000",
            "keeper-checkpoint-periodic-40000"
        ]
    );
    assert!(deleted.contains(&"keeper-savepoint-periodic-10000".to_string()));
    assert_eq!(info.last_periodic_savepoint_timestamp, 40_000);
    // The operator stopped after creating the last one, before recording it: the resource
    // counts, no second savepoint.
    let mut forgot = SavepointInfo {
        last_periodic_savepoint_timestamp: 30_000,
        ..Default::default()
    };
    let mut at = input(&config, None, 41_000);
    at.resources = Some(&listed);
    let out = savepoints(&mut forgot, &at);
    assert!(
        !out.actions
            .iter()
            .any(|a| matches!(a, Effect::CreateSnapshot(_))),
        "{:?}",
        out.actions
    );
}

fn listed(name: &str, at: i64, trigger_type: SnapshotTriggerType, path: &str) -> JobSnapshot {
    JobSnapshot {
        name: name.to_string(),
        created_ms: at,
        savepoint: true,
        trigger_type,
        completed: true,
        path: Some(path.to_string()),
        nonce: None,
        deleting: false,
    }
}

#[test]
fn an_upgrade_savepoint_is_recorded_as_a_resource_and_the_restored_one_is_never_trimmed() {
    let config = BTreeMap::from([(
        "kubernetes.operator.savepoint.history.max.count".to_string(),
        "1".to_string(),
    )]);
    let before = vec![
        listed(
            "restored",
            1,
            SnapshotTriggerType::Upgrade,
            "file:/sp/restored",
        ),
        listed("p2", 2, SnapshotTriggerType::Periodic, "file:/sp/2"),
        listed("p3", 3, SnapshotTriggerType::Periodic, "file:/sp/3"),
    ];
    let deleted = |actions: &[Effect]| -> Vec<String> {
        actions
            .iter()
            .filter_map(|a| match a {
                Effect::DeleteSnapshot { name } => Some(name.clone()),
                _ => None,
            })
            .collect()
    };
    let mut at = input(&config, None, 10);
    at.resources = Some(&before);
    at.keep = Some("file:/sp/restored");
    let out = savepoints(&mut SavepointInfo::default(), &at);
    assert_eq!(
        deleted(&out.actions),
        vec!["p2"],
        "the job restored from it"
    );
    at.keep = None;
    let out = savepoints(&mut SavepointInfo::default(), &at);
    assert_eq!(deleted(&out.actions), vec!["restored", "p2"]);
    // An upgrade's savepoint: one resource named after the upgrade's start, the history
    // trimmed around it.
    let owner = (JobKind::FlinkDeployment, "keeper");
    let out = record_upgrade_savepoint(
        "file:/sp/new",
        7,
        owner,
        &config,
        HistoryThresholds::default(),
        Some(&before),
        10,
    );
    let Some(Effect::CreateSnapshot(record)) = out.actions.first() else {
        panic!("{:?}", out.actions)
    };
    assert_eq!(
        record.metadata.name.as_deref(),
        Some("keeper-savepoint-upgrade-7")
    );
    let spec = record.spec.savepoint.clone().unwrap_or_default();
    assert_eq!(
        (spec.path.as_deref(), spec.already_exists),
        (Some("file:/sp/new"), Some(true))
    );
    assert_eq!(deleted(&out.actions), vec!["restored", "p2"]);
    // Off without snapshot resources.
    let out = record_upgrade_savepoint(
        "file:/sp/new",
        7,
        owner,
        &legacy(config),
        HistoryThresholds::default(),
        None,
        10,
    );
    assert_eq!(out, Outcome::default());
}

#[test]
fn the_history_keeps_the_newest_completed_snapshot_and_leaves_manual_ones_alone() {
    let config = BTreeMap::from([(
        "kubernetes.operator.savepoint.history.max.count".to_string(),
        "1".to_string(),
    )]);
    let snapshot = |name: &str, at, trigger_type, completed| JobSnapshot {
        name: name.to_string(),
        created_ms: at,
        savepoint: true,
        trigger_type,
        completed,
        path: None,
        nonce: None,
        deleting: false,
    };
    let listed = vec![
        snapshot("manual", 1, SnapshotTriggerType::Manual, true),
        snapshot("old", 2, SnapshotTriggerType::Periodic, true),
        snapshot("done", 3, SnapshotTriggerType::Upgrade, true),
        snapshot("failed", 4, SnapshotTriggerType::Periodic, false),
        snapshot("running", 5, SnapshotTriggerType::Periodic, false),
    ];
    let mut at = input(&config, None, 10);
    at.resources = Some(&listed);
    let out = savepoints(&mut SavepointInfo::default(), &at);
    let deleted: Vec<&str> = out
        .actions
        .iter()
        .filter_map(|a| match a {
            Effect::DeleteSnapshot { name } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(deleted, vec!["old", "failed"]);
    let off = BTreeMap::from([(
        "kubernetes.operator.savepoint.cleanup.enabled".to_string(),
        "false".to_string(),
    )]);
    let mut at = input(&off, None, 10);
    at.resources = Some(&listed);
    assert!(
        savepoints(&mut SavepointInfo::default(), &at)
            .actions
            .is_empty()
    );
}

#[test]
fn a_new_nonce_triggers_one_manual_savepoint() {
    let config = legacy(BTreeMap::new());
    let mut info = SavepointInfo::default();
    let mut asked = input(&config, None, 1_000);
    asked.nonce = Some(3);
    let out = savepoints(&mut info, &asked);
    assert!(out.write_ahead && matches!(&out.actions[..], [Effect::TriggerSavepoint { .. }]));
    assert_eq!(info.trigger_type, Some(SnapshotTriggerType::Manual));
    let done = ObservedOperation::Completed("file:/sp/1".into());
    let mut finished = input(&config, Some(&done), 2_000);
    finished.nonce = Some(3);
    let out = savepoints(&mut info, &finished);
    assert!(out.actions.is_empty(), "{:?}", out.actions);
    assert_eq!(
        info.last_savepoint.as_ref().and_then(|s| s.trigger_nonce),
        Some(3)
    );
    assert_eq!(info.trigger_id, None);
    let mut again = input(&config, None, 3_000);
    again.nonce = Some(3);
    assert!(
        savepoints(&mut info, &again).actions.is_empty(),
        "the same nonce asks once"
    );
}

#[test]
fn periodic_savepoints_come_every_interval_and_the_history_is_bounded() {
    let config = legacy(BTreeMap::from([
        (
            "kubernetes.operator.periodic.savepoint.interval".to_string(),
            "10s".to_string(),
        ),
        (
            "kubernetes.operator.savepoint.history.max.count".to_string(),
            "2".to_string(),
        ),
    ]));
    let mut info = SavepointInfo::default();
    assert!(
        savepoints(&mut info, &input(&config, None, 5_000))
            .actions
            .is_empty(),
        "not due yet"
    );
    let mut disposed = Vec::new();
    for (i, now) in [10_000, 20_000, 30_000].into_iter().enumerate() {
        let out = savepoints(&mut info, &input(&config, None, now));
        assert!(
            matches!(&out.actions[..], [Effect::TriggerSavepoint { .. }]),
            "due at {now}"
        );
        let done = ObservedOperation::Completed(format!("file:/sp/{i}"));
        let out = savepoints(&mut info, &input(&config, Some(&done), now + 1));
        disposed.extend(out.actions);
    }
    assert_eq!(info.savepoint_history.len(), 2);
    assert_eq!(
        disposed,
        vec![Effect::DisposeSavepoint {
            cluster: "c".into(),
            path: "file:/sp/0".into()
        }]
    );
}

#[test]
fn the_operators_thresholds_cap_a_resources_savepoint_history() {
    // The resource keeps 5 savepoints for a week; the operator allows 2 and a minute.
    let config = legacy(BTreeMap::from([
        (
            "kubernetes.operator.periodic.savepoint.interval".to_string(),
            "10s".to_string(),
        ),
        (
            "kubernetes.operator.savepoint.history.max.count".to_string(),
            "5".to_string(),
        ),
        (
            "kubernetes.operator.savepoint.history.max.age".to_string(),
            "7d".to_string(),
        ),
        // A resource naming a threshold itself changes nothing: only the operator's counts.
        (
            "kubernetes.operator.savepoint.history.max.count.threshold".to_string(),
            "100".to_string(),
        ),
    ]));
    let run = |thresholds: HistoryThresholds, times: &[i64]| {
        let mut info = SavepointInfo::default();
        for (i, &now) in times.iter().enumerate() {
            let mut due = input(&config, None, now);
            due.thresholds = thresholds;
            savepoints(&mut info, &due);
            let done = ObservedOperation::Completed(format!("file:/sp/{i}"));
            let mut result = input(&config, Some(&done), now + 1);
            result.thresholds = thresholds;
            savepoints(&mut info, &result);
        }
        info.savepoint_history
            .iter()
            .filter_map(|s| s.location.clone())
            .collect::<Vec<_>>()
    };
    let times = [10_000, 20_000, 30_000, 40_000];
    assert_eq!(run(HistoryThresholds::default(), &times).len(), 4);
    let capped = HistoryThresholds {
        max_count: Some(2),
        max_age: None,
    };
    assert_eq!(run(capped, &times), vec!["file:/sp/2", "file:/sp/3"]);
    // A threshold above the resource's own leaves it as it is.
    let loose = HistoryThresholds {
        max_count: Some(50),
        max_age: None,
    };
    assert_eq!(run(loose, &times).len(), 4);
    // Age: savepoints older than a minute go, however long the resource keeps them.
    let young = HistoryThresholds {
        max_count: None,
        max_age: Some(Duration::from_secs(60)),
    };
    let spread = [10_000, 40_000, 80_000, 100_000];
    assert_eq!(
        run(young, &spread),
        vec!["file:/sp/1", "file:/sp/2", "file:/sp/3"]
    );
}

#[test]
fn a_failed_savepoint_is_retried_within_the_grace_period_of_its_first_trigger_then_given_up() {
    let config = legacy(BTreeMap::new());
    let mut info = SavepointInfo::default();
    let mut asked = input(&config, None, 1_000);
    asked.nonce = Some(1);
    savepoints(&mut info, &asked);
    let first = info.trigger_id.clone();
    // Flink declines it (the job's tasks are still being deployed): triggered again under a
    // new id, recorded before the request, as the same manual savepoint of the same nonce.
    let failed = ObservedOperation::Failed("not all required tasks are running".into());
    let mut result = input(&config, Some(&failed), 2_000);
    result.nonce = Some(1);
    let out = savepoints(&mut info, &result);
    let [Effect::TriggerSavepoint { trigger_id, .. }] = &out.actions[..] else {
        panic!("{:?}", out.actions)
    };
    assert!(out.write_ahead);
    assert_ne!(Some(trigger_id), first.as_ref());
    assert_eq!(info.trigger_id.as_ref(), Some(trigger_id));
    assert_eq!(info.trigger_type, Some(SnapshotTriggerType::Manual));
    assert_eq!(info.trigger_nonce, Some(1));
    assert_eq!(
        info.trigger_timestamp,
        Some(1_000),
        "the first trigger's time"
    );
    assert!(out.notes.iter().any(|n| n.warning
        && n.message.contains("not all required tasks")
        && n.message.contains("triggered again")));
    // Failing again a minute after the first trigger (upstream's default): given up, and the
    // same nonce does not ask again.
    result.now_ms = 61_000;
    let out = savepoints(&mut info, &result);
    assert!(out.actions.is_empty(), "{:?}", out.actions);
    assert_eq!(info.trigger_id, None);
    assert!(out.notes.iter().any(|n| {
        n.reason == "SavepointError"
            && n.message
                .contains("given up, the trigger grace period of 1 min")
    }));
    let mut again = input(&config, None, 62_000);
    again.nonce = Some(1);
    assert!(savepoints(&mut info, &again).actions.is_empty());
    // A period of its own, by the deprecated key too; zero never retries.
    for key in [
        "kubernetes.operator.savepoint.trigger.grace-period",
        "kubernetes.operator.observer.savepoint.trigger.grace-period",
    ] {
        for (period, retried) in [("0", false), ("5 min", true)] {
            let config = legacy(BTreeMap::from([(key.to_string(), period.to_string())]));
            let mut info = SavepointInfo::default();
            let mut asked = input(&config, None, 1_000);
            asked.nonce = Some(1);
            savepoints(&mut info, &asked);
            let mut result = input(&config, Some(&failed), 200_000);
            result.nonce = Some(1);
            let out = savepoints(&mut info, &result);
            assert_eq!(!out.actions.is_empty(), retried, "{key}: {period}");
        }
    }
}

#[test]
fn the_status_checkpoints_are_of_the_configured_type() {
    let asked = |extra: &[(&str, &str)]| {
        let mut config = BTreeMap::from([(PERIODIC_CHECKPOINTS.to_string(), "30s".to_string())]);
        config.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let config = legacy(config);
        let mut info = CheckpointInfo::default();
        let mut input = input(&config, None, 1_000);
        input.nonce = Some(1);
        let out = checkpoints(&mut info, &input);
        let [Effect::TriggerCheckpoint { kind, .. }] = &out.actions[..] else {
            panic!("{:?}", out.actions);
        };
        // What was asked for is recorded, and so lands in lastCheckpoint.
        assert_eq!(info.format_type, Some(*kind));
        let done = ObservedOperation::Completed("file:/cp/chk-2".into());
        let mut result = self::input(&config, Some(&done), 2_000);
        result.nonce = Some(1);
        checkpoints(&mut info, &result);
        assert_eq!(info.last_checkpoint.map(|c| c.format_type), Some(*kind));
        *kind
    };
    assert_eq!(asked(&[]), CheckpointType::Full, "upstream's default");
    assert_eq!(
        asked(&[("kubernetes.operator.checkpoint.type", "INCREMENTAL")]),
        CheckpointType::Incremental
    );
}

#[test]
fn a_checkpoint_nonce_asks_once_and_periodic_checkpoints_follow_their_interval() {
    let config = legacy(BTreeMap::from([
        (PERIODIC_CHECKPOINTS.to_string(), "30s".to_string()),
        // No retries here (see the grace-period test).
        (
            options::CHECKPOINT_TRIGGER_GRACE_PERIOD.key.to_string(),
            "0 s".to_string(),
        ),
    ]));
    let mut info = CheckpointInfo::default();
    let mut asked = input(&config, None, 1_000);
    asked.nonce = Some(7);
    let out = checkpoints(&mut info, &asked);
    assert!(out.write_ahead && matches!(&out.actions[..], [Effect::TriggerCheckpoint { .. }]));
    assert_eq!(info.trigger_type, Some(SnapshotTriggerType::Manual));
    // It fails: reported, given up, and the same nonce does not ask again.
    let failed = ObservedOperation::Failed("checkpoint declined".into());
    let mut result = input(&config, Some(&failed), 2_000);
    result.nonce = Some(7);
    let out = checkpoints(&mut info, &result);
    assert!(
        out.notes
            .iter()
            .any(|n| n.reason == "CheckpointError" && n.message.contains("declined"))
    );
    let mut again = input(&config, None, 3_000);
    again.nonce = Some(7);
    assert!(checkpoints(&mut info, &again).actions.is_empty());
    // A new nonce asks again; its checkpoint completes.
    again.nonce = Some(8);
    assert_eq!(checkpoints(&mut info, &again).actions.len(), 1);
    let done = ObservedOperation::Completed("file:/cp/chk-9".into());
    let mut result = input(&config, Some(&done), 4_000);
    result.nonce = Some(8);
    let out = checkpoints(&mut info, &result);
    assert!(out.notes.iter().any(|n| n.reason == "CheckpointCompleted"));
    assert_eq!(
        info.last_checkpoint.as_ref().and_then(|c| c.trigger_nonce),
        Some(8)
    );
    // Periodic: 30 s after the job started, then 30 s after that.
    assert!(
        checkpoints(&mut info, &input(&config, None, 29_000))
            .actions
            .is_empty()
    );
    let out = checkpoints(&mut info, &input(&config, None, 30_000));
    assert_eq!(info.trigger_type, Some(SnapshotTriggerType::Periodic));
    assert_eq!(out.actions.len(), 1);
    checkpoints(&mut info, &input(&config, Some(&done), 31_000));
    assert!(
        checkpoints(&mut info, &input(&config, None, 59_000))
            .actions
            .is_empty()
    );
    assert_eq!(
        checkpoints(&mut info, &input(&config, None, 60_000))
            .actions
            .len(),
        1
    );
}

#[test]
fn a_cron_schedule_takes_a_savepoint_at_its_times_only() {
    // Every day at 02:30:00 UTC; 1_795_996_800 s is 2026-11-30 00:00 UTC.
    let midnight = 1_795_996_800_000;
    let at = |h: i64, m: i64| midnight + (h * 3600 + m * 60) * 1000;
    let config = legacy(BTreeMap::from([(
        PERIODIC_SAVEPOINTS.to_string(),
        "0 30 2 * * ?".to_string(),
    )]));
    let mut info = SavepointInfo::default();
    let mut started = input(&config, None, at(1, 0));
    started.job_started = at(0, 10);
    assert!(
        savepoints(&mut info, &started).actions.is_empty(),
        "not yet 02:30"
    );
    let mut later = input(&config, None, at(2, 31));
    later.job_started = at(0, 10);
    assert!(matches!(
        &savepoints(&mut info, &later).actions[..],
        [Effect::TriggerSavepoint { .. }]
    ));
    let done = ObservedOperation::Completed("file:/sp/nightly".into());
    savepoints(&mut info, &input(&config, Some(&done), at(2, 32)));
    assert!(
        savepoints(&mut info, &input(&config, None, at(23, 59)))
            .actions
            .is_empty(),
        "once a day"
    );
    let tomorrow = input(&config, None, at(26, 30));
    assert_eq!(savepoints(&mut info, &tomorrow).actions.len(), 1);
}

#[test]
fn a_zero_or_unusable_schedule_takes_nothing() {
    for value in ["0s", "0", "every day", "0 0 0 L * MON"] {
        let config = BTreeMap::from([(PERIODIC_SAVEPOINTS.to_string(), value.to_string())]);
        assert_eq!(Schedule::of(&config, PERIODIC_SAVEPOINTS), None, "{value}");
    }
}

#[test]
fn a_failed_periodic_checkpoint_is_retried_within_the_grace_period() {
    let config = legacy(BTreeMap::from([(
        PERIODIC_CHECKPOINTS.to_string(),
        "30s".to_string(),
    )]));
    let mut info = CheckpointInfo::default();
    checkpoints(&mut info, &input(&config, None, 30_000));
    assert_eq!(info.trigger_type, Some(SnapshotTriggerType::Periodic));
    let failed = ObservedOperation::Failed("checkpoint declined".into());
    let out = checkpoints(&mut info, &input(&config, Some(&failed), 40_000));
    assert!(matches!(
        &out.actions[..],
        [Effect::TriggerCheckpoint { .. }]
    ));
    assert_eq!(info.trigger_type, Some(SnapshotTriggerType::Periodic));
    assert_eq!(info.last_periodic_checkpoint_timestamp, 30_000);
    let out = checkpoints(&mut info, &input(&config, Some(&failed), 90_000));
    assert!(out.actions.is_empty(), "{:?}", out.actions);
    assert!(out.notes.iter().any(|n| n.message.contains("given up")));
    // The next one comes at its interval.
    assert_eq!(
        checkpoints(&mut info, &input(&config, None, 90_000))
            .actions
            .len(),
        1
    );
}
