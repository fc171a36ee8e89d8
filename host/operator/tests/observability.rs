//! What the people who run the operator see, from a running operator against the API
//! stand-in (no Flink needed): `/metrics`, `/healthz` and `/readyz` on its HTTP port, JSON log
//! lines with the resource's span, and a secret echoed by a validation message masked in both
//! the event and the log.

mod common;

use common::{WAIT, eventually};
use flink_operator::controller::{self, Context};
use flink_operator::observability::logging::{self, Captured, LogFormat};
use flink_operator::settings::Settings;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const SECRET: &str = "hunter2-url";

fn cluster() -> Value {
    json!({
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkDeployment",
        "metadata": {"name": "shared", "namespace": "team-a"},
        "spec": {
            "image": "flink:2.3", "flinkVersion": "v2_3", "mode": "standalone",
            "flinkConfiguration": {"taskmanager.numberOfTaskSlots": "2", "s3.secret-key": "hunter2-s3"},
            "jobManager": {"resource": {"memory": "1g", "cpu": 1}},
            "taskManager": {"resource": {"memory": "1g", "cpu": 1}, "replicas": 1}
        }
    })
}

/// A session job whose jar URL carries a password and a scheme the operator does not allow:
/// the validation message quotes the URL.
fn session_job() -> Value {
    json!({
        "apiVersion": "flink.apache.org/v1beta1",
        "kind": "FlinkSessionJob",
        "metadata": {"name": "reports", "namespace": "team-a"},
        "spec": {
            "deploymentName": "shared",
            "job": {"jarURI": format!("ftp://deployer:{SECRET}@repo.example.com/reports.jar"), "parallelism": 1, "upgradeMode": "stateless"}
        }
    })
}

/// The value of the first series line that starts with `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|rest| rest.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_health_json_logs_and_masked_secrets_from_a_running_operator() {
    let logs = Captured::default();
    logging::try_init(LogFormat::Json, "warn,flink_operator=info", logs.clone())
        .expect("the only subscriber of this test binary");
    let (server, client) = common::stand_in(&["team-a"]).await;

    let mut settings = Settings::default();
    settings.policies.namespace = "default".into();
    settings.intervals.progress = Duration::from_secs(1);
    settings.http_address = Some(([127, 0, 0, 1], 0).into());
    let ctx: Arc<Context> = Context::new(client.clone(), settings);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let operator = tokio::spawn(controller::run(ctx.clone(), async move {
        let _ = stopped.await;
    }));
    let address = eventually("the HTTP port", async || ctx.health.address.get().copied()).await;
    let http = reqwest::Client::new();
    let get = async |path: &str| {
        let response = http
            .get(format!("http://{address}{path}"))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    assert_eq!(get("/healthz").await, (200, "ok".to_string()));
    eventually("ready", async || {
        (get("/readyz").await.0 == 200).then_some(())
    })
    .await;

    let deployments: Api<flink_api::FlinkDeployment> = Api::namespaced(client.clone(), "team-a");
    deployments
        .create(
            &PostParams::default(),
            &serde_json::from_value(cluster()).unwrap(),
        )
        .await
        .unwrap();
    let jobs: Api<flink_api::FlinkSessionJob> = Api::namespaced(client.clone(), "team-a");
    jobs.create(
        &PostParams::default(),
        &serde_json::from_value(session_job()).unwrap(),
    )
    .await
    .unwrap();

    // The event quotes the URL with its password masked.
    let note = eventually("the ValidationError event", async || {
        server.with_store(|s| {
            let rt = s.resource_type("events.k8s.io", "v1", "events").cloned()?;
            let (events, _) = s.list(&rt, &Default::default()).ok()?;
            events
                .into_iter()
                .find(|e| {
                    e.pointer("/regarding/name") == Some(&json!("reports"))
                        && e.get("reason") == Some(&json!("ValidationError"))
                })
                .and_then(|e| e.get("note").and_then(Value::as_str).map(String::from))
        })
    })
    .await;
    assert!(
        note.contains("ftp://deployer:******@repo.example.com/reports.jar"),
        "{note}"
    );
    assert!(!note.contains(SECRET), "{note}");

    // The metrics count both kinds' reconciles and place each resource in its state.
    let text = eventually("both kinds in the metrics", async || {
        let (status, text) = get("/metrics").await;
        assert_eq!(status, 200);
        (text.contains(r#"kind="FlinkSessionJob""#) && text.contains(r#"kind="FlinkDeployment""#))
            .then_some(text)
    })
    .await;
    let reconciled = sample(
        &text,
        r#"flink_operator_reconciles_total{kind="FlinkDeployment",outcome="success"} "#,
    );
    assert!(reconciled.is_some_and(|n| n >= 1.0), "{text}");
    let in_states: f64 = text
        .lines()
        .filter(|l| {
            l.starts_with(r#"flink_operator_resources{kind="FlinkDeployment",namespace="team-a","#)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(in_states, 1.0, "one deployment, in one state: {text}");
    assert!(
        text.contains(r#"flink_operator_reconcile_duration_seconds_count{kind="FlinkSessionJob"}"#),
        "{text}"
    );
    assert!(
        text.contains("# TYPE flink_operator_plugins_loaded gauge"),
        "{text}"
    );

    // Every log line is a JSON object; the event is logged, masked, in the job's span.
    let logged = logs.text();
    assert!(!logged.contains(SECRET), "the password leaked into the log");
    let lines: Vec<Value> = logged
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let event = lines
        .iter()
        .find(|l| l.pointer("/fields/reason") == Some(&json!("ValidationError")))
        .unwrap_or_else(|| panic!("no ValidationError event logged:\n{logged}"));
    assert_eq!(
        event.pointer("/span/resource"),
        Some(&json!("FlinkSessionJob/team-a/reports")),
        "{event}"
    );

    let _ = stop.send(());
    tokio::time::timeout(WAIT, operator).await.unwrap().unwrap();
    assert_eq!(ctx.health.live(), Err("the controllers are not running"));
    server.shutdown().await;
}

/// Every series the chart's Grafana dashboard queries is one the operator exports: its panel
/// and variable queries are read from `charts/flink-operator/dashboards/`, and the exported
/// families from an encoding after a reconcile of every kind.
#[test]
fn the_grafana_dashboard_queries_only_series_the_operator_exports() {
    use flink_operator::observability::metrics::{PluginCollector, PluginSample};
    use flink_operator::observability::{Metrics, ScalingOutcome, Seen};
    let metrics = Metrics::new().with_collector(PluginCollector(Vec::<PluginSample>::new));
    // DEPLOYED then STABLE: a lifecycle transition is timed.
    for (kind, state, snapshot_type) in [
        ("FlinkDeployment", "DEPLOYED", None),
        ("FlinkDeployment", "STABLE", None),
        ("FlinkSessionJob", "STABLE", None),
        ("FlinkBlueGreenDeployment", "ACTIVE_BLUE", None),
        ("FlinkStateSnapshot", "COMPLETED", Some("savepoint")),
    ] {
        metrics.seen(Seen {
            kind,
            namespace: "team-a",
            name: "x",
            state: Some(state),
            snapshot_type,
            job_manager: Some("READY"),
            flink_version: Some("2.3.0"),
            gone: false,
        });
        metrics.reconciled(kind, Duration::from_millis(3), true);
    }
    // A snapshot that ends is counted.
    for state in ["IN_PROGRESS", "FAILED"] {
        metrics.seen(Seen {
            kind: "FlinkStateSnapshot",
            namespace: "team-a",
            name: "sp",
            state: Some(state),
            snapshot_type: Some("savepoint"),
            job_manager: None,
            flink_version: None,
            gone: false,
        });
    }
    metrics.scaling("team-a", ScalingOutcome::Applied);
    metrics.shards_owned(1);
    let text = metrics.encode();
    // `# TYPE <family> <type>`: a counter's samples end in `_total`, a histogram's in
    // `_bucket`, `_sum` and `_count`.
    let mut series = std::collections::BTreeSet::new();
    for line in text.lines() {
        let mut words = line.strip_prefix("# TYPE ").unwrap_or("").split(' ');
        let (Some(family), Some(kind)) = (words.next(), words.next()) else {
            continue;
        };
        series.insert(family.to_string());
        let suffixes: &[&str] = match kind {
            "counter" => &["_total"],
            "histogram" => &["_bucket", "_sum", "_count"],
            _ => &[],
        };
        for suffix in suffixes {
            series.insert(format!("{family}{suffix}"));
        }
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../charts/flink-operator/dashboards");
    let mut queried = 0;
    for entry in std::fs::read_dir(&dir).expect("the chart's dashboards") {
        let path = entry.expect("an entry").path();
        let dashboard: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("readable")).expect("JSON");
        let mut queries = Vec::new();
        collect_queries(&dashboard, &mut queries);
        assert!(!queries.is_empty(), "{}: no queries", path.display());
        for query in queries {
            for name in metric_names(&query) {
                queried += 1;
                assert!(
                    series.contains(&name),
                    "{}: {name} (in {query}) is not exported; exported: {series:#?}",
                    path.display()
                );
            }
        }
    }
    assert!(queried > 10, "the dashboards query {queried} series");
}

/// Panel expressions and variable queries, wherever they are in a dashboard.
fn collect_queries(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("expr" | "definition" | "query", Value::String(q)) => out.push(q.clone()),
                    _ => collect_queries(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_queries(v, out)),
        _ => {}
    }
}

/// The `flink_...` identifiers of a PromQL expression.
fn metric_names(query: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = query.as_bytes();
    let mut i = 0;
    while let Some(at) = query[i..].find("flink_") {
        let start = i + at;
        let boundary =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let end = query[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(query.len(), |e| start + e);
        if boundary {
            names.push(query[start..end].to_string());
        }
        i = end;
    }
    names
}
