//! Several operator replicas against one API stand-in (no Flink: what is checked is who
//! reconciles what): the shards spread over the replicas, no resource is ever reconciled by two
//! replicas at once, a replica that crashes loses its shards to the others once its Leases
//! expire, and one that stops gracefully hands them over at once.

mod common;

use flink_operator::commands::local::install_crds;
use flink_operator::controller::{self, Context};
use flink_operator::settings::Settings;
use flink_operator::sharding::elector::ShardingSettings;
use flink_operator::sharding::lease::Timing;
use flink_operator::sharding::{Witness, shard_of};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SHARDS: u32 = 4;
const TIMING: Timing = Timing {
    lease_duration: Duration::from_secs(3),
    renew_deadline: Duration::from_secs(2),
    retry_period: Duration::from_millis(300),
};
const RESOURCES: usize = 12;

/// One operator replica on its own runtime, so that dropping it is a crash: no task of it
/// runs on, nothing is handed over.
struct Replica {
    name: String,
    runtime: Option<tokio::runtime::Runtime>,
    ctx: Arc<Context>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Replica {
    fn start(name: &str, url: &str, witness: &Arc<Witness>) -> Replica {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let mut settings = Settings::default();
        settings.policies.namespace = "default".into();
        settings.intervals.progress = Duration::from_millis(500);
        settings.intervals.reconcile = Duration::from_millis(500);
        settings.sharding = Some(ShardingSettings {
            identity: name.to_string(),
            namespace: "default".into(),
            shards: SHARDS,
            timing: TIMING,
            lease_prefix: "flink-operator".into(),
        });
        settings.witness = Some(witness.clone());
        let ctx = {
            let _inside = runtime.enter();
            let client = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
            Context::new(client, settings)
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = runtime.spawn(controller::run(ctx.clone(), async move {
            let _ = stopped.await;
        }));
        Replica {
            name: name.to_string(),
            runtime: Some(runtime),
            ctx,
            stop: Some(stop),
            task: Some(task),
        }
    }

    fn owned(&self) -> Vec<u32> {
        self.ctx
            .shards
            .as_ref()
            .map(|s| s.owned())
            .unwrap_or_default()
    }

    /// Like a killed pod: every task stops where it is.
    fn crash(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    /// Like a pod sent SIGTERM: the shards are handed over before it exits.
    fn stop(&mut self) {
        if let (Some(stop), Some(task), Some(runtime)) =
            (self.stop.take(), self.task.take(), self.runtime.take())
        {
            let _ = stop.send(());
            runtime
                .block_on(async { tokio::time::timeout(Duration::from_secs(20), task).await })
                .expect("stops within 20 s")
                .expect("the operator task ends cleanly");
        }
    }
}

fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !check() {
        assert!(
            started.elapsed() < timeout,
            "{what}: not within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    started.elapsed()
}

fn names() -> Vec<String> {
    (0..RESOURCES).map(|i| format!("job-{i}")).collect()
}

/// Resources whose shard `replica` held and that a survivor reconciled since `since`.
fn picked_up(witness: &Witness, shards: &[u32], by: &[&str], since: Instant) -> bool {
    let log = witness.log();
    names()
        .iter()
        .filter(|n| shards.contains(&shard_of("default", n, SHARDS)))
        .all(|n| {
            let key = format!("FlinkDeployment/default/{n}");
            log.reconciles
                .iter()
                .any(|(k, replica, at)| *k == key && by.contains(&replica.as_str()) && *at > since)
        })
}

#[test]
fn replicas_share_the_shards_never_overlap_and_take_over_from_a_crashed_or_stopped_one() {
    let server_runtime = tokio::runtime::Runtime::new().unwrap();
    let server = server_runtime.block_on(async {
        sandbox::ApiServer::default()
            .start("127.0.0.1:0".parse().unwrap())
            .await
            .unwrap()
    });
    install_crds(&server).unwrap();
    let url = server.url();
    server_runtime.block_on(async {
        let client = kube::Client::try_from(kube::Config::new(url.parse().unwrap())).unwrap();
        for name in names() {
            common::create_deployment(&client, "default", &name).await;
        }
    });

    let witness = Arc::new(Witness::default());
    let mut replicas: Vec<Replica> = ["op-a", "op-b", "op-c"]
        .iter()
        .map(|n| Replica::start(n, &url, &witness))
        .collect();

    // Every shard owned by exactly one replica, spread 2/1/1, every resource reconciled.
    wait_until(
        "the shards spread over the three replicas",
        Duration::from_secs(30),
        || {
            let counts: Vec<usize> = replicas.iter().map(|r| r.owned().len()).collect();
            let all: BTreeSet<u32> = replicas.iter().flat_map(|r| r.owned()).collect();
            counts.iter().all(|c| *c >= 1)
                && all.len() == SHARDS as usize
                && counts.iter().sum::<usize>() == SHARDS as usize
        },
    );
    wait_until("every resource reconciled", Duration::from_secs(30), || {
        let log = witness.log();
        names().iter().all(|n| {
            let key = format!("FlinkDeployment/default/{n}");
            log.reconciles.iter().any(|(k, _, _)| *k == key)
        })
    });
    for replica in &replicas {
        println!("{} owns shards {:?}", replica.name, replica.owned());
    }
    // While the shards stay put, each resource is reconciled by its shard's owner only.
    let settled = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let owner_of = |shard: u32| {
        replicas
            .iter()
            .find(|r| r.owned().contains(&shard))
            .map(|r| r.name.clone())
    };
    let log = witness.log();
    let recent: Vec<_> = log
        .reconciles
        .iter()
        .filter(|(_, _, at)| *at > settled)
        .collect();
    assert!(
        recent.len() >= RESOURCES,
        "{} reconciles in 2 s",
        recent.len()
    );
    for (key, replica, _) in recent {
        let name = key.rsplit('/').next().unwrap_or_default();
        let owner = owner_of(shard_of("default", name, SHARDS));
        assert_eq!(
            owner.as_ref(),
            Some(replica),
            "{key} reconciled by {replica}"
        );
    }

    // A crash: its Leases expire, the others take its shards and reconcile their resources.
    let crashed_shards = replicas[0].owned();
    let crashed_at = Instant::now();
    replicas[0].crash();
    let took = wait_until(
        "the crashed replica's resources picked up",
        Duration::from_secs(30),
        || picked_up(&witness, &crashed_shards, &["op-b", "op-c"], crashed_at),
    );
    println!(
        "after a crash, shards {crashed_shards:?} were picked up in {took:?} (lease duration {:?})",
        TIMING.lease_duration
    );

    // A graceful stop hands over at once.
    let stopped_shards = replicas[1].owned();
    assert!(!stopped_shards.is_empty());
    let stopped_at = Instant::now();
    replicas[1].stop();
    let took = wait_until(
        "the stopped replica's resources picked up",
        Duration::from_secs(30),
        || picked_up(&witness, &stopped_shards, &["op-c"], stopped_at),
    );
    println!("after a graceful stop, shards {stopped_shards:?} were picked up in {took:?}");
    wait_until(
        "the last replica owns every shard",
        Duration::from_secs(30),
        || replicas[2].owned().len() == SHARDS as usize,
    );

    let log = witness.log();
    assert!(
        log.overlaps.is_empty(),
        "reconciled by two replicas at once: {:?}",
        log.overlaps
    );
    assert!(
        log.reconciles.len() > RESOURCES,
        "{} reconciles",
        log.reconciles.len()
    );
    replicas[2].stop();
}
