//! A tenant's pod-template plugin (a real component, `plugins/hostile-pods`) tries every
//! escalation a pod template allows, and a JSON Patch that asks for terabytes: the default
//! guard (Pod Security Standards' baseline and the operator's own rules) refuses each one,
//! naming it, and the patch is refused at its size bound with the host's memory flat.

use flink_operator_tests::support::rss_bytes;
use flink_policy::contract::{Sample, samples};
use flink_policy::dev::plugin_bytes;
use flink_policy::{CallFailure, ExtensionPoint, Limits, PodGuard, PolicyEngine};
use serde_json::json;

fn engine_and_plugin() -> (PolicyEngine, std::sync::Arc<flink_policy::Plugin>) {
    let engine = PolicyEngine::new(None).expect("engine");
    let plugin = engine
        .load("hostile-pods", &plugin_bytes("hostile-pods-plugin"))
        .expect("the hostile pod-template plugin loads");
    (engine, plugin)
}

fn task_manager_input(misbehave: &str) -> flink_policy::model::PodInput {
    samples(
        ExtensionPoint::PodTemplate,
        &json!({"misbehave": misbehave}),
    )
    .into_iter()
    .find_map(|(name, sample)| match sample {
        Sample::Pod(input) if name.contains("TaskManager") => Some(input),
        _ => None,
    })
    .expect("the contract's TaskManager pod")
}

#[tokio::test]
async fn every_escalation_a_pod_template_plugin_tries_is_refused_by_the_default_guard() {
    let (engine, plugin) = engine_and_plugin();
    let limits = Limits::default_for(ExtensionPoint::PodTemplate);
    let mut refused = Vec::new();
    for name in hostile_pods_plugin::ESCALATIONS {
        let answer = engine
            .pod_template(
                &plugin,
                &task_manager_input(name),
                &PodGuard::default(),
                &limits,
            )
            .await;
        match answer {
            Err(CallFailure::InvalidOutput { message })
                if message.contains("refused by the tenant's guard") =>
            {
                refused.push(*name)
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    assert_eq!(refused.len(), hostile_pods_plugin::ESCALATIONS.len());
    // The same plugin asked for nothing is fine: the refusals are the guard's, not noise.
    let harmless = engine
        .pod_template(
            &plugin,
            &task_manager_input("nothing"),
            &PodGuard::default(),
            &limits,
        )
        .await;
    assert!(harmless.is_ok(), "{harmless:?}");
}

#[tokio::test]
async fn a_copy_bomb_patch_is_refused_with_the_hosts_memory_flat() {
    let (engine, plugin) = engine_and_plugin();
    let before = rss_bytes();
    let started = std::time::Instant::now();
    let answer = engine
        .pod_template(
            &plugin,
            &task_manager_input("copy-bomb"),
            &PodGuard::default(),
            &Limits::default_for(ExtensionPoint::PodTemplate),
        )
        .await;
    let grown = rss_bytes().saturating_sub(before);
    assert!(
        matches!(&answer, Err(CallFailure::InvalidOutput { message }) if message.contains("larger than 1048576 bytes")),
        "{answer:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(grown < 64 << 20, "the host grew by {} MiB", grown >> 20);
}
