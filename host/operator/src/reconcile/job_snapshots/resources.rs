//! Due snapshots as FlinkStateSnapshot resources (their own controller takes them), and the
//! history of those resources trimmed.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Kind {
    Savepoint,
    Checkpoint,
}

impl Kind {
    pub(super) fn is_savepoint(self) -> bool {
        self == Kind::Savepoint
    }

    pub(super) fn word(self) -> &'static str {
        match self {
            Kind::Savepoint => "savepoint",
            Kind::Checkpoint => "checkpoint",
        }
    }

    pub(super) fn periodic_key(self) -> &'static str {
        match self {
            Kind::Savepoint => PERIODIC_SAVEPOINTS,
            Kind::Checkpoint => PERIODIC_CHECKPOINTS,
        }
    }
}

/// What the status must remember of a snapshot resource created (or found created).
#[derive(Debug, PartialEq)]
pub(super) enum Recorded {
    Nothing,
    Nonce(i64),
    Periodic(i64),
}

/// A due snapshot as a FlinkStateSnapshot resource: a new `nonce` first, then the schedule
/// (counted from the status's `last_periodic`, or from the newest periodic resource when that
/// is newer: the operator stopped between creating it and recording it). A snapshot already
/// created for the nonce is only recorded, so one nonce makes one resource.
pub(super) fn create_due(
    kind: Kind,
    nonce: Option<i64>,
    last_periodic: i64,
    input: &SnapshotInput,
    existing: &[JobSnapshot],
    out: &mut Outcome,
) -> Recorded {
    let same_kind = || {
        existing
            .iter()
            .filter(|s| s.savepoint == kind.is_savepoint())
    };
    if let Some(nonce) = nonce {
        if !same_kind().any(|s| s.nonce == Some(nonce)) {
            create(kind, SnapshotTriggerType::Manual, Some(nonce), input, out);
        }
        return Recorded::Nonce(nonce);
    }
    let newest = same_kind()
        .filter(|s| s.trigger_type == SnapshotTriggerType::Periodic)
        .map(|s| s.created_ms)
        .max()
        .unwrap_or(0);
    if trigger_due(false, kind.periodic_key(), last_periodic.max(newest), input).is_none() {
        return Recorded::Nothing;
    }
    create(kind, SnapshotTriggerType::Periodic, None, input, out);
    Recorded::Periodic(input.now_ms)
}

pub(super) fn create(
    kind: Kind,
    trigger: SnapshotTriggerType,
    nonce: Option<i64>,
    input: &SnapshotInput,
    out: &mut Outcome,
) {
    let snapshot = snapshot_resource(
        kind,
        trigger,
        nonce,
        input.owner,
        input.config,
        input.now_ms,
    );
    let name = snapshot.metadata.name.clone().unwrap_or_default();
    out.notes.push(Note::normal(
        Reason::SnapshotCreated,
        format!(
            "{} {}: FlinkStateSnapshot {name}",
            self::kind(trigger),
            kind.word()
        ),
    ));
    out.actions.push(Effect::CreateSnapshot(Box::new(snapshot)));
}

/// The FlinkStateSnapshot upstream creates for a manual or periodic snapshot: named
/// `<resource>-<savepoint|checkpoint>-<manual|periodic>-<ms>`, labelled so it can be selected,
/// a savepoint into the job's savepoint directory, disposed of on deletion when
/// `kubernetes.operator.savepoint.dispose-on-delete`.
pub(super) fn snapshot_resource(
    kind: Kind,
    trigger: SnapshotTriggerType,
    nonce: Option<i64>,
    owner: (JobKind, &str),
    config: &BTreeMap<String, String>,
    stamp: i64,
) -> FlinkStateSnapshot {
    let (job_kind, job_name) = owner;
    let trigger_label = labels::trigger_type(trigger);
    let name = format!(
        "{job_name}-{}-{}-{}",
        kind.word(),
        trigger_label.to_ascii_lowercase(),
        stamp
    );
    let mut snapshot = FlinkStateSnapshot::new(
        &name,
        FlinkStateSnapshotSpec {
            job_reference: Some(JobReference {
                kind: Some(job_kind),
                name: Some(job_name.to_string()),
            }),
            savepoint: kind.is_savepoint().then(|| SavepointSpec {
                path: options::SAVEPOINTS_DIR.in_flat(config).map(str::to_string),
                format_type: Some(savepoint_format(config)),
                dispose_on_delete: Some(
                    options::SAVEPOINT_DISPOSE_ON_DELETE.in_flat(config) == Some("true"),
                ),
                already_exists: Some(false),
            }),
            checkpoint: (!kind.is_savepoint()).then(CheckpointSpec::default),
            backoff_limit: None,
        },
    );
    // Its trigger type; the others are the ones every snapshot carries.
    snapshot.metadata.labels = Some(BTreeMap::from([(
        labels::TRIGGER_TYPE.to_string(),
        trigger_label.to_string(),
    )]));
    snapshot.metadata.labels = Some(crate::reconcile::state_snapshot::labels(
        &snapshot,
        &Default::default(),
    ));
    snapshot.metadata.annotations = nonce.map(|nonce| {
        BTreeMap::from([(
            flink_api::snapshot::TRIGGER_NONCE_ANNOTATION.to_string(),
            nonce.to_string(),
        )])
    });
    snapshot
}

/// Upstream's history of snapshot resources: of the periodic and upgrade ones of `kind` (a
/// user's and manual ones are never touched), the oldest beyond the count (savepoints:
/// `...savepoint.history.max.count`, checkpoints: as many as Flink retains,
/// `execution.checkpointing.num-retained`) and savepoints older than `...history.max.age` are
/// deleted, keeping the newest completed one and the newest one. Deleting a savepoint resource
/// disposes of its files when it says `disposeOnDelete`. Off with
/// `kubernetes.operator.savepoint.cleanup.enabled: false`.
pub(super) fn trim_resources(
    existing: &[JobSnapshot],
    kind: Kind,
    input: &SnapshotInput,
    out: &mut Outcome,
) {
    out.actions.extend(
        trimmed(
            existing,
            kind,
            input.config,
            input.thresholds,
            input.keep,
            input.now_ms,
        )
        .into_iter()
        .map(|name| Effect::DeleteSnapshot { name }),
    );
}

/// The snapshot resources `trim_resources` deletes; never the one at `keep` (what the job
/// was restored from).
pub(super) fn trimmed(
    existing: &[JobSnapshot],
    kind: Kind,
    config: &BTreeMap<String, String>,
    thresholds: HistoryThresholds,
    keep: Option<&str>,
    now_ms: i64,
) -> Vec<String> {
    if options::SAVEPOINT_CLEANUP_ENABLED.in_flat(config) == Some("false") {
        return Vec::new();
    }
    let mut candidates: Vec<&JobSnapshot> = existing
        .iter()
        .filter(|s| !s.deleting && s.savepoint == kind.is_savepoint())
        .filter(|s| {
            matches!(
                s.trigger_type,
                SnapshotTriggerType::Periodic | SnapshotTriggerType::Upgrade
            )
        })
        .collect();
    candidates.sort_by_key(|s| (s.created_ms, s.name.clone()));
    if candidates.len() < 2 {
        return Vec::new();
    }
    let (max_count, oldest_allowed) = match kind {
        Kind::Savepoint => {
            let limits = HistoryLimits::of(config, thresholds);
            (limits.max_count, now_ms - limits.max_age.as_millis() as i64)
        }
        Kind::Checkpoint => {
            let retained = options::MAX_RETAINED_CHECKPOINTS
                .in_flat(config)
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(1);
            (retained.max(1), i64::MIN)
        }
    };
    let newest_completed = candidates
        .iter()
        .rev()
        .find(|s| s.completed)
        .map(|s| &s.name);
    let total = candidates.len();
    let mut deleted = Vec::new();
    for snapshot in &candidates[..total - 1] {
        if Some(&snapshot.name) == newest_completed
            || (keep.is_some() && snapshot.path.as_deref() == keep)
        {
            continue;
        }
        if total - deleted.len() > max_count || snapshot.created_ms < oldest_allowed {
            deleted.push(snapshot.name.clone());
        }
    }
    deleted
}

/// With snapshot resources on (upstream): a savepoint an upgrade, a suspension or a rollback
/// took is recorded as an `UPGRADE` FlinkStateSnapshot (`alreadyExists`, completed at once),
/// named after the upgrade's start (`started_ms`) so a retried reconcile creates it once, and
/// the job's savepoint resources listed while it was awaited are trimmed. Best effort: the
/// job status records the path first, and the upgrade restores from there.
pub fn record_upgrade_savepoint(
    path: &str,
    started_ms: i64,
    owner: (JobKind, &str),
    config: &BTreeMap<String, String>,
    thresholds: HistoryThresholds,
    listed: Option<&[JobSnapshot]>,
    now_ms: i64,
) -> Outcome {
    let mut out = Outcome::default();
    if !as_resources(config) {
        return out;
    }
    let mut snapshot = snapshot_resource(
        Kind::Savepoint,
        SnapshotTriggerType::Upgrade,
        None,
        owner,
        config,
        started_ms,
    );
    if let Some(savepoint) = snapshot.spec.savepoint.as_mut() {
        savepoint.path = Some(path.to_string());
        savepoint.already_exists = Some(true);
    }
    out.notes.push(Note::normal(
        Reason::SnapshotCreated,
        format!(
            "Upgrade savepoint {path}: FlinkStateSnapshot {}",
            snapshot.metadata.name.as_deref().unwrap_or_default()
        ),
    ));
    out.actions.push(Effect::CreateSnapshot(Box::new(snapshot)));
    let trimmed = trimmed(
        listed.unwrap_or_default(),
        Kind::Savepoint,
        config,
        thresholds,
        Some(path),
        now_ms,
    );
    out.actions.extend(
        trimmed
            .into_iter()
            .map(|name| Effect::DeleteSnapshot { name }),
    );
    out
}
