//! Runs the Lease protocol against the API every retry period: heartbeat this replica's member
//! Lease, count the live replicas, then keep, take or give up shard Leases until this replica
//! holds its fair share. A shard is given up only after the reconciles running in it finished.

use super::Shards;
use super::lease::{LeaseView, Record, Step, Timing, fair_share};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The label on member Leases (value: the Lease name prefix), to list the replicas.
pub const MEMBER_LABEL: &str = "flink-operator.io/member-of";

#[derive(Clone, Debug)]
pub struct ShardingSettings {
    /// This replica's name in the Leases: unique among the replicas (the pod name).
    pub identity: String,
    /// Where the Leases live (the operator's namespace).
    pub namespace: String,
    pub shards: u32,
    pub timing: Timing,
    /// Lease names: `<prefix>-shard-<i>` and `<prefix>-member-<identity>`.
    pub lease_prefix: String,
}

/// The Leases' names start with this unless `--lease-prefix` (or upstream's
/// `leader-election.lease-name`) says otherwise.
pub const DEFAULT_LEASE_PREFIX: &str = "flink-operator";

/// This replica's name in the Leases: the pod name (unique among replicas), else
/// `<hostname>-<pid>`.
pub fn replica_identity() -> String {
    std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "operator".into());
        format!("{host}-{}", std::process::id())
    })
}

impl ShardingSettings {
    fn shard_lease(&self, shard: u32) -> String {
        format!("{}-shard-{shard}", self.lease_prefix)
    }

    fn member_lease(&self) -> String {
        let identity: String = self
            .identity
            .to_ascii_lowercase()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        format!(
            "{}-member-{}",
            self.lease_prefix,
            identity.trim_matches('-')
        )
    }
}

fn now_micro() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

/// Keeps this replica's shards until `shutdown`, then gives them up (after their reconciles
/// finish) so the other replicas take them over at once instead of after the lease duration.
pub async fn run(
    client: kube::Client,
    shards: Arc<Shards>,
    settings: ShardingSettings,
    metrics: Arc<crate::observability::Metrics>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let api: Api<Lease> = Api::namespaced(client, &settings.namespace);
    let mut views = vec![LeaseView::default(); shards.count() as usize];
    let mut members: HashMap<String, (String, Instant)> = HashMap::new();
    tokio::pin!(shutdown);
    loop {
        let live = heartbeat(&api, &settings, &mut members).await;
        let fair = fair_share(shards.count(), &live, &settings.identity);
        let now = Instant::now();
        let owned: Vec<u32> = (0..shards.count())
            .filter(|s| views[*s as usize].owned(now))
            .collect();
        let mut holding = owned.len() as u32;
        for shard in 0..shards.count() {
            let want = match owned.iter().position(|s| *s == shard) {
                // Keep the lowest-numbered ones up to the fair share; give up the rest.
                Some(rank) => (rank as u32) < fair,
                None => holding < fair,
            };
            let view = &mut views[shard as usize];
            let was = view.owned(Instant::now());
            tend(&api, &settings, &shards, shard, view, want).await;
            let is = view.owned(Instant::now());
            if is && !was {
                holding += 1;
                tracing::info!(shard, identity = %settings.identity, "shard acquired");
            } else if was && !is {
                holding = holding.saturating_sub(1);
                tracing::info!(shard, identity = %settings.identity, "shard given up or lost");
            }
        }
        metrics.shards_owned(shards.owned().len());
        tokio::select! {
            _ = tokio::time::sleep(settings.timing.retry_period) => {}
            _ = &mut shutdown => break,
        }
    }
    for shard in 0..shards.count() {
        if views[shard as usize].owned(Instant::now()) {
            release(&api, &settings, &shards, shard, &mut views[shard as usize]).await;
        }
    }
    metrics.shards_owned(0);
    let _ = api
        .delete(&settings.member_lease(), &DeleteParams::default())
        .await;
}

/// One round for one shard Lease.
async fn tend(
    api: &Api<Lease>,
    settings: &ShardingSettings,
    shards: &Shards,
    shard: u32,
    view: &mut LeaseView,
    want: bool,
) {
    let name = settings.shard_lease(shard);
    let timing = &settings.timing;
    let sent = Instant::now();
    let lease = match api.get_opt(&name).await {
        Ok(lease) => lease,
        Err(e) => {
            // Ownership lapses on its own if this goes on.
            tracing::warn!(lease = %name, error = %e, "cannot read the shard Lease");
            shards.set_owned(shard, view.owned_until());
            return;
        }
    };
    let record = lease.as_ref().map(|l| Record {
        version: l.metadata.resource_version.as_deref().unwrap_or_default(),
        holder: l.spec.as_ref().and_then(|s| s.holder_identity.as_deref()),
    });
    match view.next(record, &settings.identity, want, sent, timing) {
        Step::Wait => {}
        Step::Create => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    ..Default::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(settings.identity.clone()),
                    lease_duration_seconds: Some(timing.lease_duration.as_secs() as i32),
                    acquire_time: Some(now_micro()),
                    renew_time: Some(now_micro()),
                    lease_transitions: Some(0),
                    ..Default::default()
                }),
            };
            match api.create(&PostParams::default(), &lease).await {
                Ok(_) => view.held(sent, timing),
                Err(e) => {
                    tracing::debug!(lease = %name, error = %e, "another replica created it first")
                }
            }
        }
        step @ (Step::Renew | Step::Acquire) => {
            let Some(mut lease) = lease else { return };
            let spec = lease.spec.get_or_insert_with(Default::default);
            spec.holder_identity = Some(settings.identity.clone());
            spec.lease_duration_seconds = Some(timing.lease_duration.as_secs() as i32);
            spec.renew_time = Some(now_micro());
            if step == Step::Acquire {
                spec.acquire_time = Some(now_micro());
                spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            }
            // A replace carries the resourceVersion read: a concurrent writer makes it a 409.
            match api.replace(&name, &PostParams::default(), &lease).await {
                Ok(_) => view.held(sent, timing),
                Err(kube::Error::Api(status)) if status.code == 409 => view.lost(),
                Err(e) => tracing::warn!(lease = %name, error = %e, "cannot write the shard Lease"),
            }
        }
        Step::Release => release(api, settings, shards, shard, view).await,
    }
    shards.set_owned(shard, view.owned_until());
}

/// Stops reconciling in the shard, waits for the reconciles in it, then frees the Lease.
async fn release(
    api: &Api<Lease>,
    settings: &ShardingSettings,
    shards: &Shards,
    shard: u32,
    view: &mut LeaseView,
) {
    let deadline = view.owned_until();
    shards.set_owned(shard, None);
    view.lost();
    while shards.in_flight(shard) > 0 && deadline.is_some_and(|d| Instant::now() < d) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let name = settings.shard_lease(shard);
    let patch = json!({"spec": {"holderIdentity": null, "renewTime": null}});
    if let Err(e) = api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        tracing::warn!(lease = %name, error = %e, "cannot free the shard Lease; it expires on its own");
    }
}

/// Renews this replica's member Lease and names the live replicas, sorted (this one included):
/// those whose member Lease changed within the lease duration, as seen on this replica's clock.
async fn heartbeat(
    api: &Api<Lease>,
    settings: &ShardingSettings,
    seen: &mut HashMap<String, (String, Instant)>,
) -> Vec<String> {
    let name = settings.member_lease();
    let renew = json!({"spec": {"renewTime": now_micro(), "holderIdentity": settings.identity}});
    let renewed = api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&renew))
        .await;
    if let Err(kube::Error::Api(status)) = &renewed
        && status.code == 404
    {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(BTreeMap::from([(
                    MEMBER_LABEL.to_string(),
                    settings.lease_prefix.clone(),
                )])),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(settings.identity.clone()),
                lease_duration_seconds: Some(settings.timing.lease_duration.as_secs() as i32),
                renew_time: Some(now_micro()),
                ..Default::default()
            }),
        };
        if let Err(e) = api.create(&PostParams::default(), &lease).await {
            tracing::warn!(lease = %name, error = %e, "cannot create the member Lease");
        }
    }
    let selector = format!("{MEMBER_LABEL}={}", settings.lease_prefix);
    let mut live = vec![settings.identity.clone()];
    let Ok(list) = api.list(&ListParams::default().labels(&selector)).await else {
        return live;
    };
    let now = Instant::now();
    for lease in list.items {
        let Some(other) = lease.metadata.name.clone().filter(|n| *n != name) else {
            continue;
        };
        let Some(identity) = lease.spec.and_then(|s| s.holder_identity) else {
            continue;
        };
        let version = lease.metadata.resource_version.unwrap_or_default();
        let entry = seen.entry(other).or_insert_with(|| (version.clone(), now));
        if entry.0 != version {
            *entry = (version, now);
        }
        if now.saturating_duration_since(entry.1) < settings.timing.lease_duration {
            live.push(identity);
        }
    }
    live.sort();
    live.dedup();
    live
}
