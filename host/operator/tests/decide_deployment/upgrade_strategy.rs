//! The tenant's upgrade strategy (a plugin's verdict) on the upgrade about to start.

use super::*;

#[test]
fn an_upgrade_strategy_that_says_wait_leaves_the_job_alone_until_the_time() {
    let mut world = stateful(flink_api::UpgradeMode::Savepoint);
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(3));
    assert!(
        pending_upgrade(&world.resource).is_some(),
        "the controller asks the plugin"
    );
    let until = world.now + 3_600_000;
    policy_says(
        &mut world,
        UpgradeVerdict::WaitUntil {
            until_ms: until,
            reason: "outside the window".into(),
        },
    );
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert_eq!(world.progress(), None, "no upgrade started");
    assert!(world.recorded_generation().contains("\"generation\":1"));
    assert!(plan.requeue <= std::time::Duration::from_secs(3_600));
    let record = &world.status().policies[0];
    assert_eq!(
        (record.plugin.as_str(), record.outcome.as_str()),
        ("windows", "Applied")
    );
    assert!(
        record
            .message
            .as_deref()
            .unwrap()
            .contains("outside the window")
    );
    assert_eq!(
        plan.notes
            .iter()
            .filter(|n| n.reason == "UpgradeWaiting")
            .count(),
        1
    );
    // Asked again with the same answer: no second event.
    let plan = world.reconcile();
    assert!(
        plan.notes.iter().all(|n| n.reason != "UpgradeWaiting"),
        "{:?}",
        plan.notes
    );
    // The window opens: the plugin says proceed, the savepoint upgrade starts.
    policy_says(
        &mut world,
        UpgradeVerdict::Proceed {
            mode: flink_api::UpgradeMode::Savepoint,
            savepoint_first: false,
            reason: "inside the window".into(),
        },
    );
    let plan = world.reconcile();
    assert!(
        matches!(&plan.actions[..], [Effect::StopWithSavepoint { .. }]),
        "{:?}",
        plan.actions
    );
    // Under way, the plugin is no longer asked.
    assert!(pending_upgrade(&world.resource).is_none());
}

#[test]
fn an_upgrade_strategy_may_choose_a_savepoint_for_a_last_state_job() {
    let mut world = stateful(flink_api::UpgradeMode::LastState);
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(3));
    policy_says(
        &mut world,
        UpgradeVerdict::Proceed {
            mode: flink_api::UpgradeMode::LastState,
            savepoint_first: true,
            reason: "stateful: through a savepoint".into(),
        },
    );
    let plan = world.reconcile();
    assert!(
        matches!(&plan.actions[..], [Effect::StopWithSavepoint { .. }]),
        "{:?}",
        plan.actions
    );
    assert_eq!(
        world.progress().map(|p| p.mode),
        Some(flink_api::UpgradeMode::Savepoint)
    );
    // The next reconcile continues in the chosen mode although the spec says last-state.
    world.upgrade_policy = None;
    world.observed.savepoint = Some(ObservedOperation::InProgress);
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert_eq!(
        world.progress().map(|p| p.mode),
        Some(flink_api::UpgradeMode::Savepoint)
    );
}

#[test]
fn a_refusal_or_a_failed_plugin_keeps_the_running_job_and_says_why() {
    let mut world = stateful(flink_api::UpgradeMode::Savepoint);
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(3));
    policy_says(
        &mut world,
        UpgradeVerdict::Refuse {
            reason: "no stateless upgrades of jobs with state".into(),
        },
    );
    let plan = world.reconcile();
    assert!(plan.actions.is_empty());
    let error = world.status().error.clone().unwrap();
    assert!(
        error.contains("PolicyError")
            && error.contains("refused this change: no stateless upgrades"),
        "{error}"
    );
    assert_eq!(world.progress(), None);

    policy_says(
        &mut world,
        UpgradeVerdict::Unavailable {
            reason: "the plugin ran out of fuel".into(),
        },
    );
    let plan = world.reconcile();
    assert!(plan.actions.is_empty());
    assert!(
        world
            .status()
            .error
            .clone()
            .unwrap()
            .contains("could not decide (the plugin ran out of fuel); the upgrade is held")
    );
    assert_eq!(world.status().policies[0].outcome, "Held");
    assert!(
        plan.requeue <= Intervals::default().progress,
        "retried soon"
    );
}

#[test]
fn suspending_is_never_delayed_by_an_upgrade_strategy() {
    let mut world = stateful(flink_api::UpgradeMode::Savepoint);
    world.edit(|spec| spec.job.as_mut().expect("job").state = flink_api::JobState::Suspended);
    assert!(pending_upgrade(&world.resource).is_none());
    policy_says(
        &mut world,
        UpgradeVerdict::Refuse {
            reason: "never".into(),
        },
    );
    let plan = world.reconcile();
    assert!(
        matches!(&plan.actions[..], [Effect::StopWithSavepoint { .. }]),
        "{:?}",
        plan.actions
    );
}
