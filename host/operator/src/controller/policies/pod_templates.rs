//! Passing the pod templates a plan applies through the tenant's pod-template plugin and the
//! guard; what the answers mean for the plan is `reconcile::pod_templates`.

use super::*;

impl Policies {
    /// Passes the pod templates `plan` applies through the resource's pod-template plugin.
    pub async fn pod_templates(
        &self,
        resource: &FlinkDeployment,
        plan: Plan<FlinkDeploymentStatus>,
        now_ms: i64,
    ) -> Plan<FlinkDeploymentStatus> {
        let namespace = resource.namespace().unwrap_or_default();
        let labels: BTreeMap<String, String> = resource.labels().clone();
        let active = self.active();
        let Some(binding) = active.binding_for(&namespace, &labels, ExtensionPoint::PodTemplate)
        else {
            return without_decision(plan, ExtensionPoint::PodTemplate);
        };
        let carries_pods = plan
            .actions
            .iter()
            .any(|a| matches!(a, Effect::ApplyCluster(_) | Effect::ApplyTaskManagers(_)));
        if !carries_pods {
            return plan;
        }
        let mut plan = plan;
        let mut outcomes = Vec::new();
        // Where the native-mode TaskManager pod template file sits in the rendered ConfigMap.
        let native_file = format!("/data/{}", crate::render::NATIVE_TM_TEMPLATE_FILE);
        for action in &mut plan.actions {
            // Each pod template the action carries: a Deployment's, or (native mode) the
            // TaskManager pod template file Flink reads from the ConfigMap.
            let mut templates: Vec<(Component, &mut Value, &str)> = Vec::new();
            match action {
                Effect::ApplyCluster(objects) => {
                    let objects = &mut **objects;
                    templates.push((
                        Component::JobManager,
                        &mut objects.job_manager,
                        "/spec/template",
                    ));
                    if let Some(tm) = objects.task_manager.as_mut() {
                        templates.push((Component::TaskManager, tm, "/spec/template"));
                    }
                    templates.push((
                        Component::TaskManager,
                        &mut objects.config_map,
                        &native_file,
                    ));
                }
                Effect::ApplyTaskManagers(tm) => {
                    templates.push((Component::TaskManager, &mut **tm, "/spec/template"))
                }
                _ => continue,
            }
            for (component, object, pointer) in templates {
                let Some(slot) = object.pointer_mut(pointer) else {
                    continue;
                };
                let in_file = pointer == native_file;
                let template = if in_file {
                    match slot
                        .as_str()
                        .and_then(|text| serde_json::from_str::<Value>(text).ok())
                    {
                        Some(template) => template,
                        None => continue,
                    }
                } else {
                    slot.clone()
                };
                let (outcome, patched) = self
                    .transform(resource, &binding, component, &template, now_ms)
                    .await;
                if let Some(patched) = patched {
                    *slot = if in_file {
                        Value::String(serde_json::to_string_pretty(&patched).unwrap_or_default())
                    } else {
                        patched
                    };
                }
                outcomes.push(outcome);
            }
        }
        let base = decision_base(&binding, &active);
        let stored = resource.status.clone().unwrap_or_default();
        apply_outcomes(plan, &stored, base, &outcomes)
    }

    /// One pod template through the plugin, or its fallback: the outcome and the template to
    /// apply instead of the rendered one (None: keep the rendered one, or hold).
    pub(super) async fn transform(
        &self,
        resource: &FlinkDeployment,
        binding: &ActiveBinding,
        component: Component,
        template: &Value,
        now_ms: i64,
    ) -> (PodOutcome, Option<Value>) {
        let key = format!(
            "{}/{}/{component:?}",
            resource.namespace().unwrap_or_default(),
            resource.name_any()
        );
        let input = PodInput {
            resource: resource_ref(resource, &binding.tenant),
            component,
            flink_version: resource
                .spec
                .flink_version
                .map(|v| v.as_str().to_string())
                .unwrap_or_default(),
            // A plugin never holds the resource's secrets (literal env values): it sees them
            // masked, and its patch is applied to the real template.
            pod_template: Redactor::for_resource(resource).scrub_json(template),
            config: binding.config.clone(),
        };
        let answer = guarded(binding, now_ms, async {
            self.engine
                .pod_template_onto(
                    &binding.plugin,
                    &input,
                    template,
                    &binding.guard,
                    &binding.limits,
                )
                .await
        })
        .await;
        let failure = match answer {
            Ok(decision) => {
                self.last_good
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, (binding.plugin.digest.clone(), decision.patch));
                return (PodOutcome::Applied, Some(decision.pod_template));
            }
            Err(failure) => failure,
        };
        let last = self
            .last_good
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        if let Some((digest, patch)) = last
            && let Ok(decision) =
                flink_policy::outputs::pod_template(template, &patch.to_string(), &binding.guard)
        {
            let why = format!("{failure}; the last good patch (from {digest}) was applied instead");
            return (PodOutcome::Fallback(why), Some(decision.pod_template));
        }
        (
            PodOutcome::Held(format!(
                "{failure}, and there is no earlier good patch for this {component:?} to fall back to"
            )),
            None,
        )
    }
}
