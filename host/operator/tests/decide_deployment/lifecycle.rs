//! Deploy, observe, change, suspend, delete: the life of a FlinkDeployment without state to keep.

use super::*;

#[test]
fn a_new_deployment_records_its_intent_then_applies_the_cluster() {
    let mut world = app();
    world.resource.metadata.finalizers = None;
    let plan = world.reconcile();
    assert_eq!(plan.actions[0], Effect::AddFinalizer);
    let intent = plan.intent.as_ref().expect("write-ahead intent");
    let reconciliation = intent.reconciliation_status.as_ref().expect("recorded");
    assert_eq!(reconciliation.state, ReconciliationState::Upgrading);
    assert!(
        reconciliation
            .last_reconciled_spec
            .as_deref()
            .unwrap_or_default()
            .contains("\"generation\":1")
    );
    let intended_id = intent
        .job_status
        .as_ref()
        .and_then(|j| j.job_id.clone())
        .expect("job id before submit");
    assert_eq!(applied_generation(&plan).as_deref(), Some("1"));
    assert_eq!(
        world
            .status()
            .reconciliation_status
            .as_ref()
            .map(|r| r.state),
        Some(ReconciliationState::Deployed)
    );
    assert_eq!(world.job_id(), intended_id);
    assert_eq!(
        world.status().job_manager_deployment_status,
        Some(JobManagerDeploymentStatus::Deploying)
    );
    assert!(plan.notes.iter().any(|n| n.reason == "Submit"));
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Deployed);
}

#[test]
fn a_crash_after_the_intent_resumes_without_deploying_twice() {
    let mut world = app();
    let plan = world.decide();
    world.resource.status = plan.intent.clone();
    // The apply happened before the crash: the JobManager Deployment carries generation 1.
    world.cluster_runs(1, FlinkJobState::Running);
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert_eq!(
        world
            .status()
            .reconciliation_status
            .as_ref()
            .map(|r| r.state),
        Some(ReconciliationState::Deployed)
    );
}

#[test]
fn a_running_job_becomes_stable_and_then_nothing_changes() {
    let mut world = app();
    world.reconcile();
    world.cluster_runs(1, FlinkJobState::Running);
    let plan = world.reconcile();
    assert!(plan.actions.is_empty());
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Stable);
    assert_eq!(
        world.status().job_manager_deployment_status,
        Some(JobManagerDeploymentStatus::Ready)
    );
    assert_eq!(
        world
            .status()
            .cluster_info
            .get("flink-version")
            .map(String::as_str),
        Some("2.3.0")
    );
    assert!(
        plan.notes
            .iter()
            .any(|n| n.message == "Job status changed from RECONCILING to RUNNING"),
        "{:?}",
        plan.notes
    );
    let before = world.status().clone();
    let plan = world.reconcile();
    assert!(plan.actions.is_empty() && plan.intent.is_none() && plan.notes.is_empty());
    assert_eq!(plan.status, before, "an idle reconcile changes nothing");
    assert_eq!(plan.requeue, Intervals::default().reconcile);
}

#[test]
fn a_parallelism_change_tears_down_waits_for_the_pods_then_deploys_the_new_generation() {
    let mut world = app();
    world.reconcile();
    world.cluster_runs(1, FlinkJobState::Running);
    world.reconcile();
    let old_id = world.job_id();
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(4));
    let plan = world.reconcile();
    assert_eq!(
        plan.intent
            .as_ref()
            .and_then(|s| s.reconciliation_status.as_ref())
            .map(|r| r.state),
        Some(ReconciliationState::Upgrading)
    );
    assert_eq!(
        plan.actions,
        vec![
            Effect::CancelJob {
                cluster: "counter".into(),
                job_id: old_id.clone(),
                best_effort: true
            },
            Effect::DeleteCluster
        ]
    );
    assert!(
        plan.notes
            .iter()
            .any(|n| n.reason == "SpecChanged" && n.message.contains("spec.job.parallelism"))
    );
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Upgrading);
    // The Deployments are going but a pod is still terminating: no new cluster yet.
    world.observed = ObservedCluster {
        pods: 1,
        ..Default::default()
    };
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    world.cluster_gone();
    let plan = world.reconcile();
    assert_eq!(applied_generation(&plan).as_deref(), Some("2"));
    assert_ne!(world.job_id(), old_id, "a new deployment gets a new job id");
    world.cluster_runs(2, FlinkJobState::Running);
    world.reconcile();
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Stable);
}

#[test]
fn suspend_stops_the_cluster_and_resume_deploys_it_again() {
    let mut world = app();
    world.reconcile();
    world.cluster_runs(1, FlinkJobState::Running);
    world.reconcile();
    world.edit(|spec| spec.job.as_mut().expect("job").state = flink_api::JobState::Suspended);
    let plan = world.reconcile();
    assert!(plan.actions.contains(&Effect::DeleteCluster));
    world.cluster_gone();
    let plan = world.reconcile();
    assert!(plan.actions.is_empty());
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Suspended);
    assert_eq!(
        world.status().job_status.as_ref().and_then(|j| j.state),
        Some(FlinkJobState::Suspended)
    );
    let plan = world.reconcile();
    assert!(
        plan.actions.is_empty() && plan.notes.is_empty(),
        "a suspended deployment stays quiet"
    );
    world.edit(|spec| spec.job.as_mut().expect("job").state = flink_api::JobState::Running);
    let plan = world.reconcile();
    assert_eq!(applied_generation(&plan).as_deref(), Some("3"));
    assert!(plan.notes.iter().any(|n| n.message.contains("resuming")));
}

#[test]
fn an_invalid_edit_is_reported_and_the_running_job_is_kept() {
    let mut world = app();
    world.reconcile();
    world.cluster_runs(1, FlinkJobState::Running);
    world.reconcile();
    let recorded = world.status().reconciliation_status.clone();
    world.edit(|spec| spec.job.as_mut().expect("job").parallelism = Some(0));
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert_eq!(
        world.status().reconciliation_status,
        recorded,
        "the last valid spec stays recorded"
    );
    let error = world.status().error.clone().expect("error in status");
    assert!(
        error.contains("spec.job.parallelism") && error.contains("keeps running"),
        "{error}"
    );
    assert!(
        plan.notes
            .iter()
            .any(|n| n.reason == "ValidationError" && n.warning)
    );
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Stable);
    let plan = world.reconcile();
    assert!(
        plan.notes.is_empty(),
        "the same error is not announced twice"
    );
}

#[test]
fn a_crash_looping_job_manager_is_reported_without_a_hot_loop() {
    let mut world = app();
    world.reconcile();
    world.cluster_runs(1, FlinkJobState::Running);
    world.observed.flink = ObservedFlink::NotAsked;
    world.observed.waiting = vec![crash_looping()];
    if let Some(jm) = world.observed.job_manager.as_mut() {
        jm.ready_replicas = 0;
    }
    let plan = world.reconcile();
    assert_eq!(
        world.status().job_manager_deployment_status,
        Some(JobManagerDeploymentStatus::Error)
    );
    assert!(
        world
            .status()
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("CrashLoopBackOff")
    );
    assert_eq!(plan.requeue, Intervals::default().reconcile);
}

#[test]
fn the_status_follows_a_job_manager_that_stops_running_and_comes_back() {
    let mut world = app();
    world.reconcile();
    world.cluster_runs(1, FlinkJobState::Running);
    world.reconcile();
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Stable);
    let job_state = |world: &World| world.status().job_status.as_ref().and_then(|j| j.state);
    // The JobManager's process exits and the kubelet backs off: nothing runs the job.
    let running = world.observed.clone();
    world.observed.flink = ObservedFlink::NotAsked;
    world.observed.waiting = vec![crash_looping()];
    if let Some(jm) = world.observed.job_manager.as_mut() {
        jm.ready_replicas = 0;
    }
    world.reconcile();
    assert_eq!(job_state(&world), Some(FlinkJobState::Reconciling));
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Failed);
    // Between two crashes its container runs, not ready: still failed, not stable again.
    world.observed.waiting.clear();
    world.reconcile();
    assert_eq!(
        world.status().job_manager_deployment_status,
        Some(JobManagerDeploymentStatus::Deploying)
    );
    assert_eq!(job_state(&world), Some(FlinkJobState::Reconciling));
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Failed);
    // It runs again: the job is seen running, the error goes, the spec is stable as it was.
    world.observed = running;
    world.reconcile();
    assert_eq!(job_state(&world), Some(FlinkJobState::Running));
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Stable);
    assert_eq!(world.status().error, None);
    // A JobManager that is up but whose REST API does not answer says nothing of the job.
    world.observed.flink = ObservedFlink::Unreachable("connection refused".into());
    world.reconcile();
    assert_eq!(job_state(&world), Some(FlinkJobState::Reconciling));
    assert_eq!(
        world.lifecycle(),
        ResourceLifecycleState::Stable,
        "not ready is not failed (upstream's lifecycle)"
    );
}

#[test]
fn a_resource_whose_tenant_cannot_be_told_is_held_like_an_invalid_spec() {
    let mut world = app();
    world.tenancy = Some(flink_api::validation::FieldError::new(
        "metadata.labels.example.com/tenant",
        "is not set in namespace shared, which tenants share; set the label example.com/tenant to one of a, b",
    ));
    let plan = world.reconcile();
    assert!(
        plan.actions.is_empty(),
        "nothing deployed: {:?}",
        plan.actions
    );
    let error = world.status().error.clone().unwrap_or_default();
    assert!(
        error.contains("metadata.labels.example.com/tenant"),
        "{error}"
    );
    world.tenancy = None;
    let plan = world.reconcile();
    assert!(
        plan.actions
            .iter()
            .any(|a| matches!(a, Effect::ApplyCluster(_))),
        "deployed once the label is fixed: {:?}",
        plan.actions
    );
}

#[test]
fn a_deletion_whose_cluster_never_goes_gives_up_after_the_cleanup_timeout() {
    let mut world = app();
    world.reconcile();
    world.cluster_runs(1, FlinkJobState::Running);
    world.reconcile();
    world.delete();
    let plan = world.reconcile();
    assert!(
        plan.actions.contains(&Effect::DeleteCluster),
        "{:?}",
        plan.actions
    );
    // The cluster's pods never go (a node lost, a stuck finalizer of their own).
    world.now += 299_000;
    let plan = world.reconcile();
    assert!(!plan.actions.contains(&Effect::RemoveFinalizer));
    world.now += 2_000;
    let plan = world.reconcile();
    assert_eq!(plan.actions, vec![Effect::RemoveFinalizer]);
    assert!(
        plan.notes
            .iter()
            .any(|n| n.warning && n.reason == "CleanupFailed" && n.message.contains("300 s")),
        "{:?}",
        plan.notes
    );
}

#[test]
fn deleting_a_session_cluster_waits_for_its_session_jobs_then_cleans_up() {
    let mut world = app();
    world.resource.spec.job = None;
    world.reconcile();
    world.observed = session_cluster_with(&["job-a"]);
    world.delete();
    let plan = world.reconcile();
    assert!(plan.actions.is_empty());
    assert!(plan.notes.iter().any(|n| n.message.contains("job-a")));
    world.observed.session_jobs.clear();
    let plan = world.reconcile();
    assert_eq!(plan.actions, vec![Effect::DeleteCluster]);
    world.cluster_gone();
    let plan = world.reconcile();
    assert_eq!(plan.actions, vec![Effect::RemoveFinalizer]);
}

/// A session cluster whose JobManager still runs a job no FlinkSessionJob manages (submitted
/// with the CLI) waits for it, as upstream's `block-on-unmanaged-jobs`; with either switch off
/// (`block-on-session-jobs` turns both off), it goes at once.
#[test]
fn deleting_a_session_cluster_waits_for_jobs_no_session_job_manages_unless_switched_off() {
    for switch_off in [
        None,
        Some("kubernetes.operator.session.deletion.block-on-unmanaged-jobs"),
        Some("kubernetes.operator.session.deletion.block-on-session-jobs"),
    ] {
        let mut world = app();
        world.resource.spec.job = None;
        if let Some(key) = switch_off {
            world
                .resource
                .spec
                .flink_configuration
                .get_or_insert_default()
                .set(key, "false");
        }
        world.reconcile();

        let cli_job = |state| ObservedJob {
            id: "a1b2c3d4e5f60718293a4b5c6d7e8f90".into(),
            name: "submitted with the CLI".into(),
            state,
            start_time: 5,
            last_modification: 6,
        };
        world.observed = ObservedCluster {
            flink: ObservedFlink::Reachable {
                jobs: vec![cli_job(FlinkJobState::Running)],
                flink_version: None,
                flink_revision: None,
            },
            ..session_cluster_with(&["job-a"])
        };
        world.delete();
        let plan = world.reconcile();
        if switch_off == Some("kubernetes.operator.session.deletion.block-on-session-jobs") {
            assert!(
                plan.actions.contains(&Effect::DeleteCluster),
                "no waiting at all: {:?}",
                plan.actions
            );
            continue;
        }
        assert!(plan.actions.is_empty(), "{:?}", plan.actions);
        world.observed.session_jobs.clear();
        let plan = world.reconcile();
        if switch_off.is_some() {
            // The cluster goes with the job it runs (not cancelled first: it is not the
            // cluster's own).
            assert!(
                plan.actions.contains(&Effect::DeleteCluster),
                "{:?}",
                plan.actions
            );
            continue;
        }
        assert!(plan.actions.is_empty(), "{:?}", plan.actions);
        let error = world.status().error.clone().unwrap_or_default();
        assert!(
            error.contains("a1b2c3d4e5f60718293a4b5c6d7e8f90")
                && error.contains("block-on-unmanaged-jobs"),
            "{error}"
        );
        // Cancelled: the cluster goes.
        world.observed.flink = ObservedFlink::Reachable {
            jobs: vec![cli_job(FlinkJobState::Canceled)],
            flink_version: None,
            flink_revision: None,
        };
        let plan = world.reconcile();
        assert_eq!(plan.actions, vec![Effect::DeleteCluster]);
    }
}

#[test]
fn a_new_restart_nonce_redeploys_and_ignored_fields_do_not() {
    let mut world = app();
    world.reconcile();
    world.cluster_runs(1, FlinkJobState::Running);
    world.reconcile();
    world.edit(|spec| {
        spec.flink_configuration
            .get_or_insert_default()
            .set("kubernetes.operator.reconcile.interval", "30s")
    });
    let plan = world.reconcile();
    assert_eq!(world.status().error, None);
    assert!(
        plan.actions.is_empty(),
        "operator settings do not redeploy: {:?}",
        plan.actions
    );
    let recorded = world
        .status()
        .reconciliation_status
        .as_ref()
        .and_then(|r| r.last_reconciled_spec.clone())
        .unwrap_or_default();
    assert!(recorded.contains("\"generation\":2"), "{recorded}");
    world.edit(|spec| spec.restart_nonce = Some(7));
    let plan = world.reconcile();
    assert!(
        plan.actions.contains(&Effect::DeleteCluster),
        "{:?}",
        plan.actions
    );
    assert!(
        plan.notes
            .iter()
            .any(|n| n.message.contains("spec.restartNonce"))
    );
}

#[test]
fn a_failing_task_manager_or_a_waiting_standby_job_manager_does_not_fail_a_running_job() {
    let mut world = app();
    world.reconcile();
    world.cluster_runs(1, FlinkJobState::Running);
    world.reconcile();
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Stable);
    // A standby JobManager waits to be scheduled, a TaskManager pod Flink will replace
    // crash-loops: the job runs and is seen running, every time, without an event.
    if let Some(jm) = world.observed.job_manager.as_mut() {
        jm.replicas = 2;
    }
    world.observed.waiting = vec![flink_operator::reconcile::observed::WaitingContainer {
        pod: "counter-taskmanager-1-1".into(),
        job_manager: false,
        ..crash_looping()
    }];
    world.reconcile();
    assert_eq!(
        world.status().job_manager_deployment_status,
        Some(JobManagerDeploymentStatus::Ready)
    );
    assert_eq!(world.lifecycle(), ResourceLifecycleState::Stable);
    let error = world.status().error.clone().unwrap_or_default();
    assert!(
        error.contains("counter-taskmanager-1-1"),
        "reported: {error}"
    );
    let plan = world.reconcile();
    assert!(
        plan.notes.is_empty(),
        "nothing new to say: {:?}",
        plan.notes
    );
    assert_eq!(
        world.status().job_status.as_ref().and_then(|j| j.state),
        Some(FlinkJobState::Running)
    );
}

#[test]
fn containers_that_only_wait_their_turn_are_no_problem() {
    let mut world = app();
    world.reconcile();
    world.cluster_runs(1, FlinkJobState::Running);
    world.observed.waiting = vec![flink_operator::reconcile::observed::WaitingContainer {
        reason: "ContainerCreating".into(),
        message: None,
        ..crash_looping()
    }];
    world.reconcile();
    assert_eq!(world.status().error, None);
    assert_ne!(
        world.status().job_manager_deployment_status,
        Some(JobManagerDeploymentStatus::Error)
    );
}

#[test]
fn an_ingress_is_deployed_with_the_cluster_and_an_ingress_edit_changes_only_the_ingress() {
    let mut world = app();
    world.edit(|spec| {
        spec.ingress = Some(flink_api::deployment::IngressSpec {
            template: Some("/{{namespace}}/{{name}}(/|$)(.*)".into()),
            class_name: Some("nginx".into()),
            ..Default::default()
        })
    });
    let deploy = world.reconcile();
    let ingress = deploy
        .actions
        .iter()
        .find_map(|a| match a {
            Effect::ApplyCluster(objects) => objects.ingress.clone(),
            _ => None,
        })
        .expect("the Ingress is deployed with the cluster");
    assert_eq!(
        ingress.pointer("/spec/rules/0/http/paths/0/path"),
        Some(&serde_json::json!("/default/counter(/|$)(.*)"))
    );
    assert_eq!(
        ingress.pointer("/metadata/ownerReferences/0/kind"),
        Some(&serde_json::json!("FlinkDeployment"))
    );
    world.cluster_runs(2, FlinkJobState::Running);
    world.reconcile();
    world.edit(|spec| {
        spec.ingress.as_mut().expect("ingress").template = Some("{{name}}.example.com".into())
    });
    let edit = world.reconcile();
    let [Effect::ApplyIngress(changed)] = &edit.actions[..] else {
        panic!("only the Ingress changes: {:?}", edit.actions);
    };
    assert_eq!(
        changed.pointer("/spec/rules/0/host"),
        Some(&serde_json::json!("counter.example.com"))
    );
    world.edit(|spec| spec.ingress = None);
    assert_eq!(world.reconcile().actions, vec![Effect::DeleteIngress]);
}

/// Sets `pipeline.jobvertex-parallelism-overrides` in the spec.
fn set_overrides(world: &mut World, overrides: &str) {
    world.edit(|spec| {
        spec.flink_configuration
            .get_or_insert_default()
            .set("pipeline.jobvertex-parallelism-overrides", overrides);
    });
}

fn requirements(vertices: &[(&str, i32)]) -> flink_rest::ResourceRequirements {
    vertices
        .iter()
        .map(|(v, p)| {
            (
                v.to_string(),
                flink_rest::VertexRequirements {
                    parallelism: flink_rest::ParallelismBounds {
                        lower_bound: 1,
                        upper_bound: *p,
                    },
                },
            )
        })
        .collect()
}

/// A user's overrides edit of a job on the adaptive scheduler sets its resource requirements
/// and keeps the job (no teardown); the spec is recorded only once Flink reports them, so a
/// crash before that sends them again.
#[test]
fn an_overrides_edit_rescales_the_running_job_in_place() {
    use flink_operator::reconcile::observed::ObservedRequirements;
    let mut world = app();
    world.reconcile();
    world.cluster_runs(1, FlinkJobState::Running);
    world.reconcile();
    let job = world.job_id();
    set_overrides(&mut world, "source:1,sink:3");
    let adaptive = |current| ObservedRequirements {
        state: flink_rest::JobState::Running,
        adaptive: true,
        current: Some(current),
    };
    world.observed.requirements = Some(adaptive(requirements(&[("source", 2), ("sink", 2)])));
    let plan = world.reconcile();
    assert_eq!(
        plan.actions,
        [Effect::SetResourceRequirements {
            cluster: "counter".into(),
            job_id: job.clone(),
            requirements: requirements(&[("source", 1), ("sink", 3)]),
        }]
    );
    let recorded = |world: &World| {
        world
            .status()
            .reconciliation_status
            .as_ref()
            .and_then(|r| r.last_reconciled_spec.clone())
            .unwrap_or_default()
            .contains("sink:3")
    };
    assert!(!recorded(&world), "not recorded before Flink runs it");
    // Crashed before the request reached Flink: the next reconcile asks again.
    let again = world.reconcile();
    assert_eq!(again.actions, plan.actions);
    // Flink reports the new requirements: the edit is recorded, the job was never touched.
    world.observed.requirements = Some(adaptive(requirements(&[("source", 1), ("sink", 3)])));
    let plan = world.reconcile();
    assert!(
        !plan.actions.iter().any(|a| matches!(
            a,
            Effect::DeleteCluster | Effect::SetResourceRequirements { .. }
        )),
        "{:?}",
        plan.actions
    );
    assert!(recorded(&world));
    assert_eq!(world.job_id(), job);
}

/// Where it cannot be done in place (the default scheduler, or in-place scaling switched off),
/// the overrides edit is a full upgrade, as upstream falls back.
#[test]
fn an_overrides_edit_that_cannot_be_applied_in_place_redeploys() {
    use flink_operator::reconcile::observed::ObservedRequirements;
    for in_place_enabled in [true, false] {
        let mut world = app();
        world.reconcile();
        world.cluster_runs(1, FlinkJobState::Running);
        world.reconcile();
        if !in_place_enabled {
            world.edit(|spec| {
                spec.flink_configuration.get_or_insert_default().set(
                    "kubernetes.operator.job.upgrade.inplace-scaling.enabled",
                    "false",
                )
            });
            world.reconcile();
        }
        set_overrides(&mut world, "sink:3");
        world.observed.requirements = Some(ObservedRequirements {
            state: flink_rest::JobState::Running,
            adaptive: !in_place_enabled,
            current: None,
        });
        let plan = world.reconcile();
        assert_eq!(
            plan.intent
                .as_ref()
                .and_then(|s| s.reconciliation_status.as_ref())
                .map(|r| r.state),
            Some(ReconciliationState::Upgrading),
            "in place enabled: {in_place_enabled}: {:?}",
            plan.actions
        );
        assert!(
            !plan
                .actions
                .iter()
                .any(|a| matches!(a, Effect::SetResourceRequirements { .. })),
            "{:?}",
            plan.actions
        );
    }
}

/// An application whose job ended keeps its JobManager for
/// `kubernetes.operator.jm-deployment.shutdown-ttl` after Flink last changed the job, then the
/// cluster is shut down, and the missing JobManager of an ended job is not brought back.
#[test]
fn a_finished_applications_cluster_is_shut_down_after_the_ttl_and_not_recovered() {
    let mut world = app();
    world.edit(|spec| {
        spec.flink_configuration
            .get_or_insert_default()
            .set("kubernetes.operator.jm-deployment.shutdown-ttl", "1 h");
    });
    world.reconcile();
    world.cluster_runs(1, FlinkJobState::Running);
    world.reconcile();
    world.cluster_runs(1, FlinkJobState::Finished);
    let ended_at = world.now;
    if let ObservedFlink::Reachable { jobs, .. } = &mut world.observed.flink {
        jobs[0].last_modification = ended_at;
    }
    let plan = world.reconcile();
    assert!(
        !plan.actions.contains(&Effect::DeleteCluster),
        "within the TTL: {:?}",
        plan.actions
    );
    world.now = ended_at + 3_600_000;
    let plan = world.reconcile();
    assert_eq!(plan.actions, vec![Effect::DeleteCluster]);
    assert!(
        plan.notes
            .iter()
            .any(|n| n.message.contains("shutdown-ttl"))
    );
    world.cluster_gone();
    let plan = world.reconcile();
    assert!(plan.actions.is_empty(), "not recovered: {:?}", plan.actions);
    assert_eq!(
        world.status().job_status.as_ref().and_then(|j| j.state),
        Some(FlinkJobState::Finished)
    );
}

/// A session cluster blocked on its session jobs waits no longer than
/// `kubernetes.operator.resource.cleanup.timeout` (5 min).
#[test]
fn a_blocked_session_cluster_deletion_ends_at_the_cleanup_timeout() {
    let mut world = app();
    world.resource.spec.job = None;
    world.reconcile();
    world.observed = session_cluster_with(&["job-a"]);
    world.delete();
    assert!(world.reconcile().actions.is_empty(), "blocked");
    world.now += 5 * 60_000 + 1_000;
    assert_eq!(world.reconcile().actions, vec![Effect::RemoveFinalizer]);
}

/// Removing a vertex's override sends it back to the job's own parallelism, which only a
/// deploy knows: a full upgrade, not a rescale that would leave it capped.
#[test]
fn removing_an_override_redeploys() {
    use flink_operator::reconcile::observed::ObservedRequirements;
    let mut world = app();
    world.edit(|spec| {
        spec.flink_configuration.get_or_insert_default().set(
            "pipeline.jobvertex-parallelism-overrides",
            "source:1,sink:3",
        );
    });
    world.reconcile();
    world.cluster_runs(2, FlinkJobState::Running);
    world.reconcile();
    set_overrides(&mut world, "sink:3");
    world.observed.requirements = Some(ObservedRequirements {
        state: flink_rest::JobState::Running,
        adaptive: true,
        current: Some(requirements(&[("source", 1), ("sink", 3)])),
    });
    let plan = world.reconcile();
    assert_eq!(
        plan.intent
            .as_ref()
            .and_then(|s| s.reconciliation_status.as_ref())
            .map(|r| r.state),
        Some(ReconciliationState::Upgrading),
        "{:?}",
        plan.actions
    );
}

/// A ready session cluster's JobManager, with the FlinkSessionJobs that name it.
fn session_cluster_with(session_jobs: &[&str]) -> ObservedCluster {
    ObservedCluster {
        job_manager: Some(ObservedDeployment {
            generation: Some(1),
            revision: 0,
            replicas: 1,
            ready_replicas: 1,
            deleting: false,
        }),
        pods: 1,
        session_jobs: session_jobs.iter().map(|j| j.to_string()).collect(),
        ..Default::default()
    }
}

/// The log configuration files the plan's ConfigMap carries.
fn applied_log_files(plan: &Plan<flink_api::FlinkDeploymentStatus>) -> BTreeMap<String, String> {
    plan.actions
        .iter()
        .find_map(|a| match a {
            Effect::ApplyCluster(objects) => objects.config_map["data"].as_object().cloned(),
            _ => None,
        })
        .unwrap_or_default()
        .into_iter()
        .filter(|(file, _)| file.starts_with("log"))
        .map(|(file, text)| (file, text.as_str().unwrap_or_default().to_string()))
        .collect()
}

#[test]
fn the_operators_log_files_are_every_clusters_unless_its_spec_has_its_own() {
    let operators = BTreeMap::from([
        (
            "log4j-console.properties".to_string(),
            "rootLogger.level = WARN\n".to_string(),
        ),
        (
            "logback-console.xml".to_string(),
            "<configuration/>\n".to_string(),
        ),
    ]);
    let mut world = app();
    world.log_defaults = operators.clone();
    assert_eq!(applied_log_files(&world.reconcile()), operators);
    let mut world = app();
    world.log_defaults = operators;
    let own = BTreeMap::from([(
        "log4j-console.properties".to_string(),
        "rootLogger.level = DEBUG\n".to_string(),
    )]);
    world.resource.spec.log_configuration = Some(own.clone());
    assert_eq!(
        applied_log_files(&world.reconcile()),
        own,
        "the spec's own win whole"
    );
    // A logback file alone keeps the built-in log4j file beside it.
    let mut world = app();
    world.log_defaults = BTreeMap::from([(
        "logback-console.xml".to_string(),
        "<configuration/>\n".to_string(),
    )]);
    let applied = applied_log_files(&world.reconcile());
    assert_eq!(
        applied.keys().collect::<Vec<_>>(),
        ["log4j-console.properties", "logback-console.xml"]
    );
    // Neither: Flink's image's console logging.
    let applied = applied_log_files(&app().reconcile());
    assert!(
        applied["log4j-console.properties"]
            .contains("rootLogger.level = ${env:ROOT_LOG_LEVEL:-INFO}"),
        "{applied:?}"
    );
}

#[test]
fn with_ingress_management_off_spec_ingress_is_left_alone_and_a_warning_says_so() {
    let mut world = app();
    world.manage_ingress = false;
    world.edit(|spec| {
        spec.ingress = Some(flink_api::deployment::IngressSpec {
            template: Some("{{name}}.example.com".into()),
            ..Default::default()
        })
    });
    let deploy = world.reconcile();
    let applied = deploy.actions.iter().find_map(|a| match a {
        Effect::ApplyCluster(objects) => Some((objects.ingress.clone(), objects.ingress_unmanaged)),
        _ => None,
    });
    assert_eq!(
        applied,
        Some((None, true)),
        "the cluster, its Ingress left alone (neither applied nor deleted)"
    );
    assert!(
        deploy
            .notes
            .iter()
            .any(|n| n.warning && n.reason == "IngressManagement"),
        "{:?}",
        deploy.notes
    );
    world.cluster_runs(2, FlinkJobState::Running);
    world.reconcile();
    world.edit(|spec| {
        spec.ingress.as_mut().expect("ingress").template = Some("{{name}}.other.com".into())
    });
    let edit = world.reconcile();
    assert!(
        !edit
            .actions
            .iter()
            .any(|a| matches!(a, Effect::ApplyIngress(_) | Effect::DeleteIngress)),
        "{:?}",
        edit.actions
    );
    assert!(
        edit.notes.iter().any(|n| n.reason == "IngressManagement"),
        "{:?}",
        edit.notes
    );
}

/// A session cluster's redeploy keeps its HA metadata so its session jobs resume from it; none
/// of its jobs is cancelled on the way (a cancelled job is done for Flink, and its metadata
/// goes). The cluster records no job of its own.
#[test]
fn a_session_cluster_redeploy_cancels_none_of_its_jobs() {
    let mut world = app();
    world.resource.spec.job = None;
    world.reconcile();
    world.observed = ObservedCluster {
        flink: ObservedFlink::Reachable {
            jobs: vec![ObservedJob {
                id: "a1b2c3d4e5f60718293a4b5c6d7e8f90".into(),
                name: "a session job's".into(),
                state: FlinkJobState::Running,
                start_time: 5,
                last_modification: 6,
            }],
            flink_version: None,
            flink_revision: None,
        },
        ..session_cluster_with(&["job-a"])
    };
    world.edit(|spec| spec.image = Some("flink:2.3.1".into()));
    let plan = world.reconcile();
    assert!(
        plan.actions.contains(&Effect::DeleteCluster),
        "redeployed: {:?}",
        plan.actions
    );
    assert!(
        !plan
            .actions
            .iter()
            .any(|a| matches!(a, Effect::CancelJob { .. })),
        "{:?}",
        plan.actions
    );
}
