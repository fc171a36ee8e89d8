//! Decision time of the pure autoscaler for jobs of 10, 100 and 1000 vertices with a full
//! metric window (90 samples: 15 minutes at one sample per 10 s), the memory the window takes,
//! and the size of the state the operator stores per job (the `autoscaler-<name>` ConfigMap).
//! Run: `cargo bench -p flink-autoscaler`. Aim (issue 6): under 1 ms for 100 vertices.

use flink_autoscaler::decide::decide;
use flink_autoscaler::evaluate::{GraphVertex, Sample, TaskManagerSample, VertexSample};
use flink_autoscaler::{AutoscalerSettings, AutoscalerState};
use std::time::{Duration, Instant};

const SAMPLES: i64 = 90;

/// A source whose lag grows 100/s and a chain of operators, every fifth one too slow for it.
fn job(vertices: usize) -> (Vec<GraphVertex>, Vec<Sample>) {
    let graph: Vec<GraphVertex> = (0..vertices)
        .map(|i| GraphVertex {
            id: format!("{i:032x}"),
            parallelism: 4,
            max_parallelism: 128,
            inputs: if i == 0 {
                vec![]
            } else {
                vec![(format!("{:032x}", i - 1), i % 3 == 0)]
            },
            source_partitions: if i == 0 { 24 } else { 0 },
            name: String::new(),
            ship_strategies: Default::default(),
        })
        .collect();
    let samples = (0..SAMPLES)
        .map(|s| {
            let n = s as f64;
            Sample {
                time_ms: s * 10_000,
                vertices: graph
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let load = if i % 5 == 4 {
                            0.995
                        } else {
                            0.4 + 0.01 * (i % 7) as f64
                        };
                        let sample = VertexSample {
                            records_in: 10_000.0 * n * 10.0,
                            records_out: 10_000.0 * n * 10.0,
                            records_in_per_second: 10_000.0,
                            load,
                            lag: if i == 0 { 1000.0 * n } else { f64::NAN },
                            observed_tpr: f64::NAN,
                            accumulated_busy_ms: f64::NAN,
                        };
                        (v.id.clone(), sample)
                    })
                    .collect(),
                task_managers: TaskManagerSample::MISSING,
            }
        })
        .collect();
    (graph, samples)
}

fn main() {
    let settings = AutoscalerSettings::default();
    println!(
        "| vertices | samples | decision p50 | decision max | vertices changed | window in memory (approx.) | stored state (JSON) | stored (gzip) | samples kept under 512 KiB gzip |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for vertices in [10, 100, 1000] {
        let (graph, samples) = job(vertices);
        let runs = if vertices >= 1000 { 20 } else { 200 };
        let mut times: Vec<Duration> = Vec::with_capacity(runs);
        let mut changed = 0;
        for _ in 0..runs {
            let started = Instant::now();
            let decision = decide(
                &graph,
                &samples,
                &settings,
                300.0,
                &[],
                0,
                &mut flink_autoscaler::delay::DelayedScaleDowns::default(),
                &flink_autoscaler::history::ScalingHistory::default(),
            );
            times.push(started.elapsed());
            changed = decision.changes.len();
        }
        times.sort();
        let per_vertex_sample = std::mem::size_of::<VertexSample>() + 32 + 48; // value + id + map node
        let window_bytes = SAMPLES as usize * vertices * per_vertex_sample;
        // What the operator stores in the autoscaler-<name> ConfigMap for this job, before and
        // after keeping it under its 512 KiB limit.
        let mut state = AutoscalerState {
            graph: graph.clone(),
            ..AutoscalerState::default()
        };
        for sample in &samples {
            // Running since before the window: every sample is kept.
            state.step(&graph, sample.clone(), -600_000, &settings);
        }
        let stored = serde_json::to_string(&state).map_or(0, |t| t.len());
        let gzipped = |s: &AutoscalerState| {
            use std::io::Write;
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            let _ = gz.write_all(serde_json::to_string(s).unwrap_or_default().as_bytes());
            gz.finish().map_or(0, |b| b.len())
        };
        let packed = gzipped(&state);
        state.thin_until(|s| gzipped(s) <= 512 * 1024);
        let kept = state.window.samples.len();
        println!(
            "| {vertices} | {SAMPLES} | {:.3} ms | {:.3} ms | {changed} | {:.1} MiB | {:.0} KiB | {:.0} KiB | {kept} |",
            times[runs / 2].as_secs_f64() * 1e3,
            times[runs - 1].as_secs_f64() * 1e3,
            window_bytes as f64 / (1 << 20) as f64,
            stored as f64 / 1024.0,
            packed as f64 / 1024.0,
        );
    }
}
