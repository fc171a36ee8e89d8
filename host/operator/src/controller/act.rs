//! Act: carry out a [`Plan`] in order. The finalizer first (nothing is created that deletion
//! could miss), then the write-ahead intent, then the actions, then the final status and the
//! events. The first failing action stops the rest; its error is recorded in the status and an
//! event, and the reconcile is retried with back-off. The autoscaler's writes are the exception
//! (`Effect::failure_does_not_stop`): a failure is an event, and its next step makes them again.

use super::status_patch::merge_patch;
use super::{Context, ReconcileError};
use crate::operator_config::Propagation;
use crate::reconcile::autoscaling::step::POD_DELETION_COST;
use crate::reconcile::status::error_json;
use crate::reconcile::{Effect, Note, Plan, Reason, SessionJobSubmission};
use crate::redact::Redactor;
use crate::render;
use flink_rest::{
    CheckpointKind, FlinkError, JarRunRequest, JobId, SavepointFormat, SavepointRequest,
    StopRequest, TriggerId,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference, Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::fmt::Debug;

/// What the operator reconciles: a namespaced, typed Kubernetes resource.
pub trait FlinkResource:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + Clone
    + DeserializeOwned
    + Serialize
    + Debug
{
}

impl<T> FlinkResource for T where
    T: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + Debug
{
}

pub async fn act<K, S>(
    ctx: &Context,
    resource: &K,
    stored: Option<&S>,
    plan: Plan<S>,
    finalizer: &str,
) -> Result<(), ReconcileError>
where
    K: FlinkResource,
    S: Serialize,
{
    let name = resource.name_any();
    let namespace = resource.namespace().unwrap_or_else(|| "default".into());
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &namespace);
    let mut written = serde_json::to_value(stored).unwrap_or(Value::Null);
    if written.is_null() {
        written = json!({});
    }
    // The autoscaler's state is written before the intent, unfenced, as it was before plans
    // carried it (see below); it needs no fence.
    let needs_fence = plan.intent.is_none()
        && plan
            .actions
            .iter()
            .any(|a| !writes_the_resource(a) && !matches!(a, Effect::StoreAutoscalerState(_)));
    let mut actions = plan.actions.into_iter().peekable();
    // Every write to the resource carries the resourceVersion the plan was decided from (then
    // the one each write returned): a stale decision, e.g. of a replica that lost the
    // resource's shard mid-reconcile, is refused (409) instead of overwriting a newer
    // write-ahead record; the next reconcile decides again from what is stored.
    let mut version = resource.resource_version();
    // The finalizer goes on before anything is created that deletion could otherwise miss.
    if let Some(add) = actions.next_if_eq(&Effect::AddFinalizer) {
        run(
            ctx,
            resource,
            &api,
            &namespace,
            add,
            finalizer,
            &mut version,
        )
        .await?;
    }
    let redactor = ctx.redactor(resource);
    // The autoscaler's state next: a rescale is recorded before it is asked for, and a redeploy
    // for the autoscaler (this plan's intent) renders what was recorded. When it cannot be
    // stored, the autoscaler's other writes are not made either (the next sample decides
    // again); the deployment's own go ahead.
    let mut autoscaler_held = false;
    if let Some(store) = actions.next_if(|a| matches!(a, Effect::StoreAutoscalerState(_)))
        && let Err(error) = run(
            ctx,
            resource,
            &api,
            &namespace,
            store,
            finalizer,
            &mut version,
        )
        .await
    {
        autoscaler_held = true;
        let message = redactor.scrub(&error.to_string());
        tracing::warn!(error = %message, "cannot store the autoscaler state");
        publish(
            ctx,
            resource,
            &[Note::warning(
                Reason::ScalingLimited,
                format!("The autoscaler's state could not be stored ({message}); nothing of this step was applied, the next sample decides again"),
            )],
        )
        .await;
    }
    if let Some(intent) = &plan.intent {
        write_status(&api, &name, &mut written, intent, &redactor, &mut version).await?;
    } else if needs_fence {
        // No intent to carry the precondition before actions outside the resource: a no-op
        // patch carries it (the API server writes nothing when nothing changes).
        fence(&api, &name, &mut version).await?;
    }
    for action in actions {
        let not_fatal = action.failure_does_not_stop();
        if autoscaler_held && not_fatal.is_some() {
            continue;
        }
        if let Err(error) = run(
            ctx,
            resource,
            &api,
            &namespace,
            action,
            finalizer,
            &mut version,
        )
        .await
        {
            let message = redactor.scrub(&error.to_string());
            if let Some(reason) = not_fatal {
                // Made again by the next step when it did not take; the rest of the plan goes on.
                tracing::warn!(error = %message, "an autoscaler write failed");
                publish(
                    ctx,
                    resource,
                    &[Note::warning(
                        reason,
                        format!("The autoscaler's change did not take: {message}"),
                    )],
                )
                .await;
                continue;
            }
            let mut failed = written.clone();
            failed["error"] = json!(error_json(
                "ReconcileError",
                &message,
                None,
                &ctx.dynamic().error_shape
            ));
            if let Some(patch) = merge_patch(&written, &failed) {
                let _ = api
                    .patch_status(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(&versioned(json!({"status": patch}), &version)),
                    )
                    .await;
            }
            publish(ctx, resource, &[Note::warning(Reason::Error, message)]).await;
            publish(ctx, resource, &plan.notes).await;
            return Err(error);
        }
    }
    write_status(
        &api,
        &name,
        &mut written,
        &plan.status,
        &redactor,
        &mut version,
    )
    .await?;
    publish(ctx, resource, &plan.notes).await;
    Ok(())
}

/// Patches the status from `written` to `status`, if anything differs; `error`, free text
/// that may echo the spec or Flink, with the resource's secrets masked.
async fn write_status<K, S>(
    api: &Api<K>,
    name: &str,
    written: &mut Value,
    status: &S,
    redactor: &Redactor,
    version: &mut Option<String>,
) -> Result<(), ReconcileError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    S: Serialize,
{
    let mut target = serde_json::to_value(status).unwrap_or(Value::Null);
    if let Some(error) = target.get_mut("error").filter(|e| e.is_string()) {
        *error = redactor.scrub_json(error);
    }
    if let Some(patch) = merge_patch(written, &target) {
        match api
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(&versioned(json!({"status": patch}), version)),
            )
            .await
        {
            Ok(stored) => *version = stored.resource_version(),
            // Gone (finalizer removed and deleted): nothing left to record.
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e.into()),
        }
        *written = target;
    }
    Ok(())
}

/// Actions that write the resource itself, and carry the precondition themselves.
fn writes_the_resource(action: &Effect) -> bool {
    matches!(
        action,
        Effect::AddFinalizer | Effect::RemoveFinalizer | Effect::SetLabels(_)
    )
}

/// Refuses (409) unless the resource is still at `version`; writes nothing.
async fn fence<K>(
    api: &Api<K>,
    name: &str,
    version: &mut Option<String>,
) -> Result<(), ReconcileError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    if version.is_none() {
        return Ok(());
    }
    match api
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(&versioned(json!({}), version)),
        )
        .await
    {
        Ok(stored) => {
            *version = stored.resource_version();
            Ok(())
        }
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// `patch` with `metadata.resourceVersion` set to `version`: a precondition of the write.
fn versioned(mut patch: Value, version: &Option<String>) -> Value {
    if let Some(version) = version {
        patch["metadata"]["resourceVersion"] = json!(version);
    }
    patch
}

async fn run<K>(
    ctx: &Context,
    resource: &K,
    api: &Api<K>,
    namespace: &str,
    action: Effect,
    finalizer: &str,
    version: &mut Option<String>,
) -> Result<(), ReconcileError>
where
    K: FlinkResource,
{
    let name = resource.name_any();
    let apply = PatchParams::apply(&ctx.settings.field_manager).force();
    match action {
        Effect::AddFinalizer | Effect::RemoveFinalizer => {
            let finalizers: Vec<String> = if action == Effect::AddFinalizer {
                let mut f = resource.finalizers().to_vec();
                f.push(finalizer.to_string());
                f
            } else {
                resource
                    .finalizers()
                    .iter()
                    .filter(|f| *f != finalizer)
                    .cloned()
                    .collect()
            };
            let patch = versioned(json!({"metadata": {"finalizers": finalizers}}), version);
            merge_unless_gone(api, &name, &patch, version).await?;
            if action == Effect::RemoveFinalizer {
                ctx.forget(resource);
            }
        }
        Effect::ApplyCluster(objects) => {
            let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), namespace);
            let services: Api<Service> = Api::namespaced(ctx.client.clone(), namespace);
            let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), namespace);
            config_maps
                .patch(
                    &object_name(&objects.config_map),
                    &apply,
                    &Patch::Apply(&objects.config_map),
                )
                .await?;
            for service in [&objects.internal_service, &objects.rest_service] {
                services
                    .patch(&object_name(service), &apply, &Patch::Apply(service))
                    .await?;
            }
            deployments
                .patch(
                    &object_name(&objects.job_manager),
                    &apply,
                    &Patch::Apply(&objects.job_manager),
                )
                .await?;
            if let Some(tm) = &objects.task_manager {
                deployments
                    .patch(&object_name(tm), &apply, &Patch::Apply(tm))
                    .await?;
            }
            let ingresses: Api<Ingress> = Api::namespaced(ctx.client.clone(), namespace);
            match &objects.ingress {
                // `kubernetes.operator.ingress.manage: false`: left alone.
                _ if objects.ingress_unmanaged => {}
                Some(ingress) => apply_owned(&ingresses, ingress, &apply, resource).await?,
                // `spec.ingress` removed: the Ingress this resource owns goes (one the user
                // made under the same name is not the operator's to delete).
                None => delete_owned(&ingresses, &name, resource.uid().as_deref()).await?,
            }
        }
        Effect::ApplyTaskManagers(tm) => {
            let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), namespace);
            deployments
                .patch(&object_name(&tm), &apply, &Patch::Apply(&*tm))
                .await?;
        }
        Effect::DeleteCluster => {
            let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), namespace);
            let params = match ctx.dynamic().deletion_propagation {
                Propagation::Foreground => DeleteParams::foreground(),
                Propagation::Background => DeleteParams::background(),
                Propagation::Orphan => DeleteParams::orphan(),
            };
            for deployment in [
                render::job_manager_name(&name),
                render::task_manager_name(&name),
            ] {
                delete_with(&deployments, &deployment, &params).await?;
            }
        }
        Effect::DeleteHaMetadata => {
            let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), namespace);
            let listed = config_maps
                .list(
                    &kube::api::ListParams::default().labels(&render::ha_metadata_selector(&name)),
                )
                .await?;
            for map in listed.items {
                let map_name = map.name_any();
                if !render::is_ha_metadata(&name, &map_name) {
                    continue;
                }
                delete_unless_gone(&config_maps, &map_name).await?;
            }
        }
        Effect::CancelJob {
            cluster,
            job_id,
            best_effort,
        } => {
            let client = ctx.flink.for_cluster(&cluster, namespace)?;
            let id = JobId::parse(&job_id)?;
            match client.cancel_job(&id).await {
                Ok(()) | Err(FlinkError::NotFound { .. }) => {}
                Err(FlinkError::Unreachable { .. }) if best_effort => {}
                Err(e) => return Err(e.into()),
            }
        }
        Effect::StopWithSavepoint {
            cluster,
            job_id,
            trigger_id,
            format,
            drain,
        } => {
            let client = ctx.flink.for_cluster(&cluster, namespace)?;
            let request = StopRequest {
                target_directory: None,
                drain,
                format_type: savepoint_format(format),
                trigger_id: Some(TriggerId::parse(&trigger_id)?),
            };
            client
                .stop_with_savepoint(&JobId::parse(&job_id)?, &request)
                .await?;
        }
        Effect::TriggerSavepoint {
            cluster,
            job_id,
            trigger_id,
            directory,
            format,
        } => {
            let client = ctx.flink.for_cluster(&cluster, namespace)?;
            let request = SavepointRequest {
                target_directory: directory,
                cancel_job: false,
                format_type: savepoint_format(format),
                trigger_id: Some(TriggerId::parse(&trigger_id)?),
            };
            client
                .trigger_savepoint(&JobId::parse(&job_id)?, &request)
                .await?;
        }
        Effect::TriggerCheckpoint {
            cluster,
            job_id,
            trigger_id,
            kind,
        } => {
            let client = ctx.flink.for_cluster(&cluster, namespace)?;
            let trigger = TriggerId::parse(&trigger_id)?;
            let kind = match kind {
                flink_api::CheckpointType::Full => CheckpointKind::Full,
                flink_api::CheckpointType::Incremental => CheckpointKind::Incremental,
                flink_api::CheckpointType::Unknown => CheckpointKind::Configured,
            };
            client
                .trigger_checkpoint(&JobId::parse(&job_id)?, kind, Some(trigger))
                .await?;
        }
        Effect::DeleteSavepointFiles { path } => {
            if let Err(why) =
                super::snapshot_files::delete(&path, &ctx.settings.snapshots.local_roots).await
            {
                tracing::warn!(%path, "savepoint files not deleted: {why}");
            }
        }
        Effect::DisposeSavepoint { cluster, path } => {
            // Best effort: a savepoint whose files are gone is not worth failing a reconcile.
            if let Ok(client) = ctx.flink.for_cluster(&cluster, namespace)
                && let Err(e) = client.dispose_savepoint(&path).await
            {
                tracing::warn!(%path, error = %e, "cannot dispose of an expired savepoint");
            }
        }
        Effect::SubmitSessionJob(submission) => submit(ctx, namespace, &submission).await?,
        Effect::CreateSnapshot(snapshot) => {
            let snapshots: Api<flink_api::FlinkStateSnapshot> =
                Api::namespaced(ctx.client.clone(), namespace);
            match snapshots.create(&Default::default(), &snapshot).await {
                Ok(_) => {}
                // Created by an earlier attempt of this reconcile.
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(e.into()),
            }
        }
        Effect::SetLabels(labels) => {
            let patch = versioned(json!({"metadata": {"labels": labels}}), version);
            merge_unless_gone(api, &name, &patch, version).await?;
        }
        Effect::DeleteSnapshot { name } => {
            let snapshots: Api<flink_api::FlinkStateSnapshot> =
                Api::namespaced(ctx.client.clone(), namespace);
            delete_unless_gone(&snapshots, &name).await?;
        }
        Effect::StoreAutoscalerState(map) => {
            let maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), namespace);
            maps.patch(&object_name(&map), &apply, &Patch::Apply(&*map))
                .await?;
        }
        Effect::SetResourceRequirements {
            cluster,
            job_id,
            requirements,
        } => {
            let client = ctx.flink.for_cluster(&cluster, namespace)?;
            client
                .set_resource_requirements(&JobId::parse(&job_id)?, &requirements)
                .await?;
        }
        Effect::ScaleTaskManagers { replicas } => {
            let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), namespace);
            let patch = json!({"spec": {"replicas": replicas}});
            deployments
                .patch(
                    &render::task_manager_name(&name),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
        }
        Effect::ApplyChild(child) => {
            let children: Api<flink_api::FlinkDeployment> =
                Api::namespaced(ctx.client.clone(), namespace);
            // Only what the parent decides: a status would be refused, and is the child's.
            let mut object = serde_json::to_value(&*child).unwrap_or_default();
            if let Some(map) = object.as_object_mut() {
                map.remove("status");
            }
            apply_owned(&children, &object, &apply, resource).await?;
        }
        Effect::DeleteChild { name } => {
            let children: Api<flink_api::FlinkDeployment> =
                Api::namespaced(ctx.client.clone(), namespace);
            delete_unless_gone(&children, &name).await?;
        }
        Effect::ApplyIngress(ingress) => {
            let ingresses: Api<Ingress> = Api::namespaced(ctx.client.clone(), namespace);
            apply_owned(&ingresses, &ingress, &apply, resource).await?;
        }
        Effect::DeleteIngress => {
            let ingresses: Api<Ingress> = Api::namespaced(ctx.client.clone(), namespace);
            delete_owned(&ingresses, &name, resource.uid().as_deref()).await?;
        }
        Effect::ReleaseTaskManagers { marks, replicas } => {
            let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), namespace);
            for (pod, cost) in marks {
                let patch = json!({"metadata": {"annotations": {POD_DELETION_COST: cost}}});
                pods.patch(&pod, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
            }
            let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), namespace);
            let patch = json!({"spec": {"replicas": replicas}});
            deployments
                .patch(
                    &render::task_manager_name(&name),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
        }
    }
    Ok(())
}

/// Server-side applies `object` unless an object of its name exists that `owner` does not
/// own: a tenant's resource never takes over an Ingress or a FlinkDeployment someone else made.
async fn apply_owned<K, O>(
    api: &Api<K>,
    object: &Value,
    params: &PatchParams,
    owner: &O,
) -> Result<(), ReconcileError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    O: Resource,
{
    let name = object_name(object);
    if let Some(existing) = api.get_opt(&name).await?
        && !owned_by(&existing, owner.meta().uid.as_deref())
    {
        return Err(ReconcileError::NotOwned(format!(
            "{} {name} exists and is not this resource's; it is left alone (rename or delete it)",
            K::kind(&())
        )));
    }
    api.patch(&name, params, &Patch::Apply(object)).await?;
    Ok(())
}

/// Whether `owner` (a uid) is among `object`'s owners.
pub fn owned_by(object: &impl Resource, owner: Option<&str>) -> bool {
    object
        .owner_references()
        .iter()
        .any(|o| Some(o.uid.as_str()) == owner)
}

/// Deletes `name` if the object `owner` (a uid) owns it; one that is gone is done.
async fn delete_owned<K>(
    api: &Api<K>,
    name: &str,
    owner: Option<&str>,
) -> Result<(), ReconcileError>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let Some(object) = api.get_opt(name).await? else {
        return Ok(());
    };
    if owned_by(&object, owner) {
        delete_unless_gone(api, name).await?;
    }
    Ok(())
}

/// Deletes `name` in the background; one that is gone already is done.
async fn delete_unless_gone<K>(api: &Api<K>, name: &str) -> Result<(), ReconcileError>
where
    K: Clone + DeserializeOwned + Debug,
{
    delete_with(api, name, &DeleteParams::background()).await
}

/// Deletes `name` with `params`; one that is gone needs nothing more.
async fn delete_with<K>(
    api: &Api<K>,
    name: &str,
    params: &DeleteParams,
) -> Result<(), ReconcileError>
where
    K: Clone + DeserializeOwned + Debug,
{
    match api.delete(name, params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Merge-patches the resource (the patch carries its precondition); one that is gone needs
/// nothing more.
async fn merge_unless_gone<K>(
    api: &Api<K>,
    name: &str,
    patch: &Value,
    version: &mut Option<String>,
) -> Result<(), ReconcileError>
where
    K: FlinkResource,
{
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(stored) => {
            *version = stored.resource_version();
            Ok(())
        }
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Flink's savepoint format: native only when asked for.
fn savepoint_format(format: flink_api::SavepointFormatType) -> SavepointFormat {
    match format {
        flink_api::SavepointFormatType::Native => SavepointFormat::Native,
        _ => SavepointFormat::Canonical,
    }
}

async fn submit(
    ctx: &Context,
    namespace: &str,
    submission: &SessionJobSubmission,
) -> Result<(), ReconcileError> {
    let client = ctx.flink.for_cluster(&submission.cluster, namespace)?;
    let jar = match submission.jar_uri.is_empty() {
        // Upstream's jar-less session job: a jar with only a manifest, the class from the
        // cluster's classpath.
        true => {
            client
                .upload_jar("empty.jar", flink_rest::empty_jar())
                .await?
        }
        false => upload_artifact(ctx, namespace, submission, &client).await?,
    };
    let request = JarRunRequest {
        entry_class: submission.entry_class.clone(),
        program_args_list: submission.args.clone(),
        parallelism: submission.parallelism,
        job_id: Some(JobId::parse(&submission.job_id)?),
        allow_non_restored_state: submission.allow_non_restored_state.then_some(true),
        savepoint_path: submission.restore_from.clone(),
        flink_configuration: submission.configuration.clone(),
    };
    let result = client
        .run_jar_within(&jar, &request, submission.timeout)
        .await;
    // The uploaded copy is not needed once the job runs (or failed to); leave no litter.
    let _ = client.delete_jar(&jar).await;
    result?;
    Ok(())
}

/// Fetches the session job's jar (from where `jarURI` says, checked again) and uploads it.
async fn upload_artifact(
    ctx: &Context,
    namespace: &str,
    submission: &SessionJobSubmission,
    client: &flink_rest::FlinkClient,
) -> Result<flink_rest::JarId, ReconcileError> {
    let dynamic = ctx.dynamic();
    let headers = super::artifact::headers_for(
        &submission.jar_uri,
        &dynamic.artifact_headers,
        &dynamic.artifact_header_hosts,
        submission
            .configuration
            .get(flink_api::artifact::HTTP_HEADER_KEY),
    )
    .map_err(ReconcileError::Jar)?;
    let artifact = ctx
        .artifacts
        .fetch(
            namespace,
            &submission.jar_uri,
            &dynamic.validation,
            &headers,
        )
        .await
        .map_err(ReconcileError::Jar)?;
    let file = artifact
        .file
        .try_clone()
        .await
        .map_err(|e| ReconcileError::Jar(format!("cannot read the fetched jar: {e}")))?;
    // `artifact` lives until the upload ends: its download and its fetch slot with it.
    let jar = client
        .upload_jar_file(&artifact.file_name, file, artifact.len)
        .await?;
    drop(artifact);
    Ok(jar)
}

fn object_name(object: &Value) -> String {
    object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Publishes each note as an event on `resource`, with the resource's secrets masked.
pub async fn publish<K>(ctx: &Context, resource: &K, notes: &[Note])
where
    K: Resource<DynamicType = ()> + Serialize,
{
    if notes.is_empty() {
        return;
    }
    let redactor = ctx.redactor(resource);
    publish_to(&ctx.recorder, &resource.object_ref(&()), notes, &redactor).await;
}

/// Reports on one of the operator's own ConfigMaps (its configuration, the policies): the
/// status `annotation` set to `value` unless it holds it already, and `notes` as events on the
/// ConfigMap. Best effort: the report is about the ConfigMap, no reconcile depends on it.
pub async fn report_on_config_map(
    api: &Api<ConfigMap>,
    recorder: &Recorder,
    config_map: &ConfigMap,
    annotation: &str,
    value: &str,
    notes: &[Note],
) {
    let name = config_map.name_any();
    let current = config_map
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(annotation));
    if current.map(String::as_str) != Some(value) {
        let patch = json!({"metadata": {"annotations": {annotation: value}}});
        if let Err(e) = api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            tracing::warn!(config_map = %name, error = %e, "cannot write the status annotation");
        }
    }
    publish_to(
        recorder,
        &config_map.object_ref(&()),
        notes,
        &Default::default(),
    )
    .await;
}

/// Publishes each note as an event on the object `reference` points to, and logs it (events
/// expire within hours; logs are kept), both through `redactor`.
pub async fn publish_to(
    recorder: &Recorder,
    reference: &ObjectReference,
    notes: &[Note],
    redactor: &Redactor,
) {
    for note in notes {
        let message = redactor.scrub(&note.message);
        tracing::info!(
            object = %format_args!(
                "{}/{}/{}",
                reference.kind.as_deref().unwrap_or_default(),
                reference.namespace.as_deref().unwrap_or_default(),
                reference.name.as_deref().unwrap_or_default()
            ),
            reason = note.reason.as_str(),
            warning = note.warning,
            %message,
            "event"
        );
        let event = Event {
            type_: if note.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: note.reason.to_string(),
            note: Some(message.chars().take(1000).collect()),
            action: action_of(note, &message),
            secondary: None,
        };
        if let Err(e) = recorder.publish(&event, reference).await {
            tracing::warn!(error = %e, reason = note.reason.as_str(), "cannot publish an event");
        }
    }
}

/// An event's action: its reason, except for a job's exceptions, which Kubernetes would fold
/// into one series by reason: each distinct exception is its own event (upstream's identity
/// key), and the same one again counts up its series.
fn action_of(note: &Note, message: &str) -> String {
    match note.reason {
        Reason::JobException => {
            // FNV-1a: stable across runs and replicas.
            let hash = message.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            format!("JobException-{hash:016x}")
        }
        _ => note.reason.to_string(),
    }
}
