//! Throughput of the API stand-in over HTTP: creates/s, patches/s and watch events/s with 10
//! watchers, and the process's resident memory. Run with `cargo bench -p sandbox`.
//! Prints a table; the operator's own benchmarks must not be limited by these numbers.

use futures::StreamExt;
use sandbox::ApiServer;
use std::time::{Duration, Instant};

const OBJECTS: usize = 10_000;
const CLIENTS: usize = 8;
const WATCHERS: usize = 10;

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

async fn run_parallel<F, Fut>(count: usize, f: F) -> Duration
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|worker| {
            let f = f.clone();
            tokio::spawn(async move {
                for i in (worker..count).step_by(CLIENTS) {
                    f(i).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("worker");
    }
    started.elapsed()
}

#[tokio::main]
async fn main() {
    let rss_start = rss_mib();
    let server = ApiServer::default()
        .with_history_limit(50_000)
        .start("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let maps = format!("{}/api/v1/namespaces/default/configmaps", server.url());
    let http = reqwest::Client::new();

    // Watchers count every event they receive.
    let mut watchers = Vec::new();
    for _ in 0..WATCHERS {
        let url = format!("{maps}?watch=true&timeoutSeconds=600");
        let response = http.get(&url).send().await.unwrap();
        watchers.push(tokio::spawn(async move {
            let mut stream = response.bytes_stream();
            let mut events = 0usize;
            let started = Instant::now();
            let mut last = started;
            while let Some(Ok(chunk)) = stream.next().await {
                events += chunk.iter().filter(|b| **b == b'\n').count();
                last = Instant::now();
                if events >= 2 * OBJECTS {
                    break;
                }
            }
            (events, last - started)
        }));
    }

    let client = http.clone();
    let url = maps.clone();
    let create = run_parallel(OBJECTS, move |i| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let body = format!(r#"{{"metadata":{{"name":"cm-{i}","labels":{{"app":"bench","shard":"{}"}}}},"data":{{"v":"0"}}}}"#, i % 10);
            let r = client.post(&url).header("Content-Type", "application/json").body(body).send().await.unwrap();
            assert_eq!(r.status(), 201);
        }
    })
    .await;
    let rss_after_create = rss_mib();

    let client = http.clone();
    let url = maps.clone();
    let patch = run_parallel(OBJECTS, move |i| {
        let client = client.clone();
        let url = format!("{url}/cm-{i}");
        async move {
            let r = client
                .patch(&url)
                .header("Content-Type", "application/merge-patch+json")
                .body(r#"{"data":{"v":"1"}}"#)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    })
    .await;

    let started = Instant::now();
    let list = http
        .get(format!("{maps}?labelSelector=shard%3D3"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let list_time = started.elapsed();

    let mut watch_events = 0usize;
    let mut watch_time = Duration::ZERO;
    for w in watchers {
        let (events, elapsed) = tokio::time::timeout(Duration::from_secs(120), w)
            .await
            .unwrap()
            .unwrap();
        watch_events += events;
        watch_time = watch_time.max(elapsed);
    }

    let per_sec = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    println!("| measure ({OBJECTS} ConfigMaps, {CLIENTS} clients, {WATCHERS} watchers) | value |");
    println!("|---|---|");
    println!("| creates/s | {:.0} |", per_sec(OBJECTS, create));
    println!("| merge patches/s | {:.0} |", per_sec(OBJECTS, patch));
    println!(
        "| watch events delivered/s (all watchers) | {:.0} |",
        per_sec(watch_events, watch_time)
    );
    println!(
        "| watch events delivered | {watch_events} of {} |",
        2 * OBJECTS * WATCHERS
    );
    println!(
        "| list with label selector (1000 of {OBJECTS}) | {:.1} ms, {} KiB |",
        list_time.as_secs_f64() * 1e3,
        list.len() / 1024
    );
    println!(
        "| RSS at start / after {OBJECTS} creates / end | {rss_start:.0} / {rss_after_create:.0} / {:.0} MiB |",
        rss_mib()
    );
    server.shutdown().await;
}
