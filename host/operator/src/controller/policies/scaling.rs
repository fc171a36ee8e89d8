//! Asking the tenant's scaling plugin about the autoscaler's decision, with the tenant's slots
//! in use; what its verdict means is `reconcile::autoscaling::resolve`.

use super::*;

impl Policies {
    /// The tenant's scaling plugin's verdict on the autoscaler's decision (None:
    /// the tenant has no scaling plugin). Checked and clamped by the host; a failure is
    /// `Unavailable`, and the built-in decision applies (scaling fails open).
    pub async fn scaling_verdict<K: Resource<DynamicType = ()>>(
        &self,
        client: &Client,
        resource: &K,
        question: &ScalingQuestion<'_>,
        now_ms: i64,
    ) -> Option<ScalingPolicy> {
        let ScalingQuestion {
            job_id,
            graph,
            decision,
            window,
        } = *question;
        let namespace = resource.namespace().unwrap_or_default();
        let active = self.active();
        let binding = active.binding_for(&namespace, resource.labels(), ExtensionPoint::Scaling)?;
        let by = decision_base(&binding, &active);
        let usage = tenant_slots_in_use(client, &active, &binding.tenant, resource.uid()).await;
        // A quota is never enforced against a made-up 0: a plugin of interface 1.1 is told
        // the error (`tenant.slots-in-use`); one of 1.0 cannot be, so it is not asked and the
        // binding's choice decides.
        if let Err(why) = &usage
            && !binding.plugin.shape.imports_tenant()
        {
            let verdict = unknown_usage_verdict(why, binding.on_unknown_usage);
            return Some(ScalingPolicy { by, verdict });
        }
        let answer = guarded(&binding, now_ms, async {
            let mut input = scaling_input(
                resource_ref(resource, &binding.tenant),
                graph,
                decision,
                window,
                *usage.as_ref().unwrap_or(&0),
                binding.config.clone(),
                now_ms,
            );
            input.tenant_usage_error = usage.as_ref().err().cloned();
            input.job_id = job_id.to_string();
            self.engine
                .scaling(&binding.plugin, &input, &binding.limits)
                .await
        })
        .await;
        let verdict = match answer {
            Ok(decision) => match decision {
                ScalingDecision::Follow => ScalingVerdict::Follow,
                ScalingDecision::Override { vertices, reason } => ScalingVerdict::Override {
                    parallelism: vertices
                        .into_iter()
                        .map(|v| (v.vertex_id, v.parallelism))
                        .collect(),
                    reason,
                },
                ScalingDecision::Veto { reason } => ScalingVerdict::Veto { reason },
            },
            Err(reason) => ScalingVerdict::Unavailable { reason },
        };
        Some(ScalingPolicy { by, verdict })
    }
}

/// What a scaling plugin is asked about: the autoscaler's decision for a running job.
pub struct ScalingQuestion<'a> {
    pub job_id: &'a str,
    pub graph: &'a [GraphVertex],
    pub decision: &'a JobDecision,
    /// The metric window the decision was taken on (a source's latest lag is read from it).
    pub window: &'a MetricWindow,
}

/// A scaling plugin's input: the vertices with what the autoscaler evaluated (busy ratio, true
/// processing rate, target rate, a source's latest lag) and the built-in recommendation with
/// its reasons.
pub(super) fn scaling_input(
    resource: ResourceRef,
    graph: &[GraphVertex],
    decision: &JobDecision,
    window: &MetricWindow,
    tenant_slots_in_use: u32,
    config: Value,
    now_ms: i64,
) -> ScalingInput {
    let latest = window.samples.last();
    let finite = |v: f64| v.is_finite().then_some(v);
    let vertices = graph
        .iter()
        .map(|v| {
            let evaluated = decision.evaluation.vertices.get(&v.id);
            let lag = latest
                .and_then(|s| s.vertices.get(&v.id))
                .and_then(|s| finite(s.lag));
            Vertex {
                id: v.id.clone(),
                name: v.name.clone(),
                parallelism: v.parallelism,
                max_parallelism: v.max_parallelism,
                busy_ratio: evaluated.and_then(|e| finite(e.busy_time_ms_per_second / 1000.0)),
                processing_rate: evaluated.and_then(|e| finite(e.true_processing_rate)),
                target_rate: evaluated.and_then(|e| finite(e.target_rate)),
                pending_records: lag.map(|l| l.max(0.0) as u64),
                is_source: v.inputs.is_empty(),
            }
        })
        .collect();
    let recommendations = decision
        .changes
        .iter()
        .map(|(id, outcome)| Recommendation {
            vertex_id: id.clone(),
            current: outcome.current,
            recommended: outcome.new,
            reasons: outcome
                .reasons
                .iter()
                .filter_map(|r| serde_json::to_string(r).ok())
                .collect(),
        })
        .collect();
    ScalingInput {
        job_id: String::new(),
        resource,
        now_epoch_ms: now_ms,
        vertices,
        recommendations,
        tenant_slots_in_use,
        tenant_usage_error: None,
        config,
    }
}

/// Task slots the tenant's other jobs use, its FlinkDeployments' and its FlinkSessionJobs'
/// alike ([`slots_taken`]), summed; resources count for the tenant they belong to
/// (`tenant_of`), so no label makes one count for another. A listing that fails is an error,
/// never 0.
pub(super) async fn tenant_slots_in_use(
    client: &Client,
    active: &ActivePolicies,
    tenant: &str,
    asking: Option<String>,
) -> Result<u32, String> {
    // Only where the tenant's resources can be (a namespaced operator cannot list elsewhere).
    let namespaces: std::collections::BTreeSet<&String> = active
        .config
        .tenants
        .iter()
        .filter(|t| t.name == tenant)
        .flat_map(|t| t.namespaces.iter().chain(&t.shared_namespaces))
        .collect();
    let mut slots = 0;
    for namespace in namespaces {
        slots += theirs::<FlinkDeployment>(client, active, tenant, &asking, namespace, |d| {
            slots_taken(
                d.spec.job.as_ref(),
                d.status.as_ref().and_then(|s| s.autoscaler.as_ref()),
            )
        })
        .await?;
        slots += theirs::<FlinkSessionJob>(client, active, tenant, &asking, namespace, |j| {
            slots_taken(
                j.spec.job.as_ref(),
                j.status.as_ref().and_then(|s| s.autoscaler.as_ref()),
            )
        })
        .await?;
    }
    Ok(slots)
}

/// The slots `taken` by the tenant's resources of kind `K` in `namespace`, but the asking one.
async fn theirs<K>(
    client: &Client,
    active: &ActivePolicies,
    tenant: &str,
    asking: &Option<String>,
    namespace: &str,
    taken: impl Fn(&K) -> u32,
) -> Result<u32, String>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let list = api.list(&Default::default()).await.map_err(|e| {
        format!(
            "the tenant's {}s in {namespace} cannot be listed: {e}",
            K::kind(&())
        )
    })?;
    Ok(list
        .items
        .iter()
        .filter(|r| &r.uid() != asking)
        .filter(|r| {
            active
                .config
                .tenant_of(&r.namespace().unwrap_or_default(), r.labels())
                .is_ok_and(|t| t.is_some_and(|t| t.name == tenant))
        })
        .map(taken)
        .sum())
}

/// The slots a resource's job takes: its highest parallelism (the autoscaler's, when it scaled
/// the job, else `spec.job.parallelism`, 1 unset). A session cluster (no job) takes none
/// itself: its session jobs count.
pub(super) fn slots_taken(
    job: Option<&flink_api::JobSpec>,
    autoscaler: Option<&flink_api::AutoscalerStatus>,
) -> u32 {
    let Some(job) = job else {
        return 0;
    };
    let spec = job.parallelism.unwrap_or(1);
    let scaled = autoscaler
        .and_then(|a| a.parallelism.values().max().copied())
        .unwrap_or(0);
    spec.max(scaled).max(0) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_takes_its_highest_parallelism_and_a_session_cluster_none() {
        let job = |parallelism| flink_api::JobSpec {
            parallelism,
            ..Default::default()
        };
        assert_eq!(
            slots_taken(None, None),
            0,
            "a session cluster: its jobs count"
        );
        assert_eq!(slots_taken(Some(&job(None)), None), 1);
        assert_eq!(slots_taken(Some(&job(Some(3))), None), 3);
        let scaled = flink_api::AutoscalerStatus {
            parallelism: [("a".to_string(), 2), ("b".to_string(), 6)].into(),
            ..Default::default()
        };
        assert_eq!(slots_taken(Some(&job(Some(3))), Some(&scaled)), 6);
        assert_eq!(slots_taken(Some(&job(Some(8))), Some(&scaled)), 8);
    }
}
