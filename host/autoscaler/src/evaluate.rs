//! From a window of metric samples to each vertex's evaluated metrics (upstream's
//! `ScalingMetricEvaluator`): windowed rates and averages, the true processing rate, the
//! target rate propagated through the job graph with each edge's output ratio, the catch-up
//! rate, and whether the job is working off a backlog. Every stored value is rounded as
//! upstream stores it ([`round3`]).

use crate::round::{jmax, round3};
use crate::settings::{AutoscalerSettings, BusyTimeAggregator};
use crate::vertex::VertexMetrics;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A job vertex as the job graph describes it. Vertices come in topological order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GraphVertex {
    pub id: String,
    pub parallelism: u32,
    pub max_parallelism: u32,
    /// The vertices feeding this one, and whether that edge is keyed (HASH).
    pub inputs: Vec<(String, bool)>,
    /// Partitions of the source it reads (0: not a source, or unknown).
    #[serde(default)]
    pub source_partitions: u32,
    /// What the job graph calls it (for people; decisions use the id).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// How each input's records are shipped (`HASH`, `FORWARD`, `RESCALE`, `REBALANCE`, ...,
    /// as Flink's plan says), for the network memory memory tuning sizes. An input left out is
    /// taken as `HASH` when keyed, else `REBALANCE` (all-to-all, the most buffers).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ship_strategies: BTreeMap<String, String>,
}

/// What to call vertex `id` of `graph` for people: its name, else its id.
pub fn label_of<'a>(graph: &'a [GraphVertex], id: &'a str) -> &'a str {
    graph
        .iter()
        .find(|v| v.id == id && !v.name.is_empty())
        .map_or(id, |v| v.name.as_str())
}

/// One vertex's metrics at one sample time. A metric Flink did not report is NaN: it is
/// never invented.
/// In stored state and recordings, a missing metric is `null` (or left out).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VertexSample {
    /// `numRecordsIn` (a counter, summed over subtasks).
    #[serde(with = "crate::floats", default = "crate::floats::missing")]
    pub records_in: f64,
    /// `numRecordsOut` (a counter).
    #[serde(with = "crate::floats", default = "crate::floats::missing")]
    pub records_out: f64,
    /// `numRecordsInPerSecond` (the gauge, summed over subtasks).
    #[serde(with = "crate::floats", default = "crate::floats::missing")]
    pub records_in_per_second: f64,
    /// The busiest subtask's busy ratio (0.0 - 1.0).
    #[serde(with = "crate::floats", default = "crate::floats::missing")]
    pub load: f64,
    /// `accumulateBusyTimeMs` summed over subtasks (ms, a counter): the busy time when
    /// `metrics.busy-time.aggregator` is AVG.
    #[serde(
        with = "crate::floats",
        default = "crate::floats::missing",
        skip_serializing_if = "crate::floats::is_missing"
    )]
    pub accumulated_busy_ms: f64,
    /// Records waiting at a source (`pendingRecords`); NaN elsewhere.
    #[serde(with = "crate::floats", default = "crate::floats::missing")]
    pub lag: f64,
    /// The source's observed true processing rate sample, when it was catching up.
    #[serde(with = "crate::floats", default = "crate::floats::missing")]
    pub observed_tpr: f64,
}

impl VertexSample {
    /// A sample with every metric missing.
    pub const MISSING: VertexSample = VertexSample {
        records_in: f64::NAN,
        records_out: f64::NAN,
        records_in_per_second: f64::NAN,
        load: f64::NAN,
        accumulated_busy_ms: f64::NAN,
        lag: f64::NAN,
        observed_tpr: f64::NAN,
    };
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    pub time_ms: i64,
    pub vertices: BTreeMap<String, VertexSample>,
    /// The TaskManagers' JVMs (left out of recordings made before it was collected).
    #[serde(default)]
    pub task_managers: TaskManagerSample,
}

/// The TaskManagers' memory at one sample time, from `/taskmanagers/metrics` aggregated over
/// TaskManagers (the worst one counts). NaN when Flink did not report it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskManagerSample {
    /// Share of time in garbage collection: `Status.JVM.GarbageCollector.All.TimeMsPerSecond`
    /// (max) / 1000.
    #[serde(with = "crate::floats", default = "crate::floats::missing")]
    pub gc_pressure: f64,
    /// `Status.JVM.Memory.Heap.Used` (max) / `Status.JVM.Memory.Heap.Max` (max).
    #[serde(with = "crate::floats", default = "crate::floats::missing")]
    pub heap_usage: f64,
    /// Bytes used (max over TaskManagers): `Status.JVM.Memory.Heap.Used`,
    /// `Status.JVM.Memory.Metaspace.Used`, `Status.Flink.Memory.Managed.Used` (memory tuning).
    #[serde(
        with = "crate::floats",
        default = "crate::floats::missing",
        skip_serializing_if = "crate::floats::is_missing"
    )]
    pub heap_used: f64,
    #[serde(
        with = "crate::floats",
        default = "crate::floats::missing",
        skip_serializing_if = "crate::floats::is_missing"
    )]
    pub metaspace_used: f64,
    #[serde(
        with = "crate::floats",
        default = "crate::floats::missing",
        skip_serializing_if = "crate::floats::is_missing"
    )]
    pub managed_used: f64,
}

impl TaskManagerSample {
    pub const MISSING: TaskManagerSample = TaskManagerSample {
        gc_pressure: f64::NAN,
        heap_usage: f64::NAN,
        heap_used: f64::NAN,
        metaspace_used: f64::NAN,
        managed_used: f64::NAN,
    };
}

impl Default for TaskManagerSample {
    fn default() -> Self {
        Self::MISSING
    }
}

/// What evaluation concluded about a vertex, rounded as upstream stores it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Evaluated {
    pub true_processing_rate: f64,
    pub target_rate: f64,
    pub catch_up_rate: f64,
    /// Average busy time, ms per second.
    pub busy_time_ms_per_second: f64,
}

/// One vertex's samples over the window, oldest first.
type Series<'a> = [(i64, &'a VertexSample)];

/// `rate(M)`: per second, from the first to the last sample that has a value.
fn rate(series: &Series, metric: fn(&VertexSample) -> f64) -> f64 {
    let mut points = series.iter().filter_map(|(t, s)| {
        let value = metric(s);
        (!value.is_nan()).then_some((*t, value))
    });
    let Some(first) = points.next() else {
        return f64::NAN;
    };
    let Some(last) = points.next_back() else {
        return f64::NAN;
    };
    1000.0 * (last.1 - first.1) / ((last.0 - first.0).max(1) as f64)
}

/// `avg(M, k)`: the mean of the finite samples; NaN with fewer than `k` of them, +Inf when
/// only infinite ones exist.
fn average(series: &Series, metric: fn(&VertexSample) -> f64, k: usize) -> f64 {
    mean_of_at_least(series.iter().map(|(_, s)| metric(s)), k)
}

/// `avg(M)` of values that are not a vertex's.
fn mean(values: impl Iterator<Item = f64>) -> f64 {
    mean_of_at_least(values, 1)
}

fn mean_of_at_least(values: impl Iterator<Item = f64>, k: usize) -> f64 {
    let (mut sum, mut finite, mut infinite) = (0.0, 0usize, false);
    for value in values {
        if value.is_finite() {
            sum += value;
            finite += 1;
        } else if value.is_infinite() {
            infinite = true;
        }
    }
    if finite == 0 {
        return if infinite { f64::INFINITY } else { f64::NAN };
    }
    if finite < k {
        return f64::NAN;
    }
    sum / finite as f64
}

fn latest(series: &Series, metric: fn(&VertexSample) -> f64) -> f64 {
    series
        .iter()
        .rev()
        .map(|(_, s)| metric(s))
        .find(|v| !v.is_nan())
        .unwrap_or(f64::NAN)
}

/// The window turned around: each vertex's samples in time order, read once. Every sample's
/// vertices come sorted (a BTreeMap) and are nearly always the same, so each sample is merged
/// into the sorted series with a cursor instead of a lookup per value.
fn by_vertex(samples: &[Sample]) -> BTreeMap<&str, Vec<(i64, &VertexSample)>> {
    let mut series: Vec<(&str, Vec<(i64, &VertexSample)>)> = Vec::new();
    for sample in samples {
        let mut cursor = 0;
        for (id, values) in &sample.vertices {
            while cursor < series.len() && series[cursor].0 < id.as_str() {
                cursor += 1;
            }
            if cursor == series.len() || series[cursor].0 != id.as_str() {
                series.insert(cursor, (id.as_str(), Vec::with_capacity(samples.len())));
            }
            series[cursor].1.push((sample.time_ms, values));
            cursor += 1;
        }
    }
    series.into_iter().collect()
}

/// Evaluation of a whole job over a window of samples.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobEvaluation {
    pub vertices: BTreeMap<String, Evaluated>,
    /// Some source would need longer than `backlog-processing.lag-threshold` to work off its lag.
    pub backlog: bool,
    /// Vertices that are never rescaled because a metric is missing, and why (said, not
    /// invented). One without busy time is still evaluated, for the vertices downstream.
    pub missing: Vec<(String, &'static str)>,
    /// The TaskManagers' GC pressure at the latest sample that has it (NaN: not reported).
    #[serde(with = "crate::floats")]
    pub gc_pressure: f64,
    /// The fullest heap's usage ratio, averaged over the window.
    #[serde(with = "crate::floats")]
    pub heap_usage: f64,
    /// The memory the TaskManagers used, averaged over the window (for memory tuning).
    #[serde(skip)]
    pub memory_used: crate::memory::MemoryUsage,
}

/// The edge rate into `to` from `from` as a share of `from`'s input rate.
fn output_ratio(
    outputs: &BTreeMap<&str, usize>,
    series: &BTreeMap<&str, Vec<(i64, &VertexSample)>>,
    from: &str,
    to: &GraphVertex,
) -> f64 {
    let of = |id: &str| series.get(id).map_or(&[][..], Vec::as_slice);
    let input_rate = rate(of(from), |s| s.records_in);
    let edge_rate = if to.inputs.len() == 1 {
        rate(of(&to.id), |s| s.records_in)
    } else {
        let others: Vec<&str> = to
            .inputs
            .iter()
            .map(|(id, _)| id.as_str())
            .filter(|id| *id != from)
            .collect();
        if others.iter().all(|id| outputs.get(id) == Some(&1)) {
            rate(of(&to.id), |s| s.records_in)
                - others
                    .iter()
                    .map(|id| rate(of(id), |s| s.records_out))
                    .sum::<f64>()
        } else {
            rate(of(from), |s| s.records_out)
        }
    };
    if input_rate.is_nan() || edge_rate.is_nan() || input_rate <= 0.0 || edge_rate <= 0.0 {
        0.0
    } else {
        edge_rate / input_rate
    }
}

pub fn evaluate(
    graph: &[GraphVertex],
    samples: &[Sample],
    settings: &AutoscalerSettings,
) -> JobEvaluation {
    let catch_up_s = settings.catch_up_seconds();
    let mut out = JobEvaluation {
        vertices: BTreeMap::new(),
        backlog: false,
        missing: Vec::new(),
        gc_pressure: samples
            .iter()
            .rev()
            .map(|s| s.task_managers.gc_pressure)
            .find(|v| !v.is_nan())
            .map_or(f64::NAN, round3),
        heap_usage: round3(mean(samples.iter().map(|s| s.task_managers.heap_usage))),
        memory_used: crate::memory::MemoryUsage {
            heap: mean(samples.iter().map(|s| s.task_managers.heap_used)),
            metaspace: mean(samples.iter().map(|s| s.task_managers.metaspace_used)),
            managed: mean(samples.iter().map(|s| s.task_managers.managed_used)),
        },
    };
    let series = by_vertex(samples);
    // How many vertices each vertex feeds (counted once, not per edge).
    let mut outputs: BTreeMap<&str, usize> = BTreeMap::new();
    for vertex in graph {
        let distinct: std::collections::BTreeSet<&str> = vertex
            .inputs
            .iter()
            .map(|(input, _)| input.as_str())
            .collect();
        for input in distinct {
            *outputs.entry(input).or_default() += 1;
        }
    }
    for vertex in graph {
        let id = series
            .get(vertex.id.as_str())
            .map_or(&[][..], Vec::as_slice);
        let in_rate = rate(id, |s| s.records_in);
        let average_busy = settings.busy_time_aggregator == BusyTimeAggregator::Avg;
        let busy = if average_busy {
            rate(id, |s| s.accumulated_busy_ms) / f64::from(vertex.parallelism.max(1))
        } else {
            average(id, |s| s.load, 1) * 1000.0
        };
        // A vertex without busy time (a legacy source, say) is still evaluated: its rates
        // carry the target rates of the vertices downstream. It is only never rescaled
        // (upstream adds it to `vertex.exclude.ids`).
        if busy.is_nan() {
            out.missing.push((
                vertex.id.clone(),
                if average_busy {
                    "no busy time (accumulateBusyTimeMs)"
                } else {
                    "no busy time (busyTimeMsPerSecond)"
                },
            ));
        }
        // True processing rate: what the vertex processes per second of busy time.
        // Non-sources: the mean of the per-second gauge; sources (and a gauge that is missing,
        // and the AVG aggregator, whose busy time is a counter's rate too): the counter's rate.
        let per_second = if vertex.inputs.is_empty() || average_busy {
            f64::NAN
        } else {
            average(id, |s| s.records_in_per_second, 1)
        };
        let numerator = if per_second.is_finite() {
            per_second
        } else {
            in_rate
        };
        let busy_tpr = if numerator == 0.0 {
            f64::INFINITY
        } else {
            numerator / (busy / 1000.0)
        };
        let observed = average(
            id,
            |s| s.observed_tpr,
            settings.observed_min_observations.max(1),
        );
        let switch = 1.0 + settings.observed_switch_threshold;
        let tpr = if observed.is_nan() || (busy_tpr.is_finite() && busy_tpr <= observed * switch) {
            busy_tpr
        } else {
            observed
        };
        let (target, catch_up) = if vertex.inputs.is_empty() {
            let lag_rate = rate(id, |s| s.lag);
            let target = jmax(
                0.0,
                in_rate + if lag_rate.is_nan() { 0.0 } else { lag_rate },
            );
            if target.is_nan() {
                out.missing
                    .push((vertex.id.clone(), "no input rate (numRecordsIn)"));
                continue;
            }
            let lag = latest(id, |s| s.lag);
            let lag = if lag.is_nan() { 0.0 } else { lag };
            // Lag with nothing read is an endless backlog (lag / 0 is infinite); no lag and no
            // input is none (0 / 0 compares false), as upstream computes it.
            if lag / in_rate > settings.backlog_lag_threshold.as_secs() as f64 {
                out.backlog = true;
            }
            (
                target,
                if catch_up_s == 0.0 {
                    0.0
                } else {
                    lag / catch_up_s
                },
            )
        } else {
            let mut target = 0.0;
            let mut catch_up = 0.0;
            for (input, _) in &vertex.inputs {
                let Some(upstream) = out.vertices.get(input) else {
                    continue;
                };
                let ratio = output_ratio(&outputs, &series, input, vertex);
                target += upstream.target_rate * ratio;
                catch_up += upstream.catch_up_rate * ratio;
            }
            (target, catch_up)
        };
        out.vertices.insert(
            vertex.id.clone(),
            Evaluated {
                true_processing_rate: round3(tpr),
                target_rate: round3(target),
                catch_up_rate: round3(catch_up),
                busy_time_ms_per_second: round3(busy),
            },
        );
    }
    out
}

impl GraphVertex {
    /// This vertex's evaluated metrics in the form the scaling decision takes.
    pub fn metrics(&self, evaluated: &Evaluated) -> VertexMetrics {
        VertexMetrics {
            parallelism: self.parallelism,
            max_parallelism: self.max_parallelism,
            source_partitions: self.source_partitions,
            keyed_input: self.inputs.iter().any(|(_, keyed)| *keyed),
            true_processing_rate: evaluated.true_processing_rate,
            target_rate: evaluated.target_rate,
            catch_up_rate: evaluated.catch_up_rate,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(time_ms: i64, vertices: &[(&str, VertexSample)]) -> Sample {
        Sample {
            time_ms,
            vertices: vertices
                .iter()
                .map(|(id, s)| (id.to_string(), *s))
                .collect(),
            task_managers: TaskManagerSample::MISSING,
        }
    }

    fn metrics(records_in: f64, records_out: f64, load: f64, lag: f64) -> VertexSample {
        VertexSample {
            records_in,
            records_out,
            records_in_per_second: f64::NAN,
            load,
            lag,
            observed_tpr: f64::NAN,
            accumulated_busy_ms: f64::NAN,
        }
    }

    fn vertex(id: &str, inputs: &[&str]) -> GraphVertex {
        GraphVertex {
            id: id.into(),
            parallelism: 2,
            max_parallelism: 128,
            inputs: inputs.iter().map(|i| (i.to_string(), true)).collect(),
            source_partitions: 0,
            name: String::new(),
            ship_strategies: Default::default(),
        }
    }

    /// source (1000 rec/s in, lag growing 100/s) -> map (filters half: 500 rec/s in).
    fn window() -> Vec<Sample> {
        (0..=10)
            .map(|i| {
                let t = i * 1000;
                let n = i as f64;
                sample(
                    t,
                    &[
                        ("source", metrics(1000.0 * n, 1000.0 * n, 0.5, 100.0 * n)),
                        ("map", metrics(500.0 * n, 500.0 * n, 0.8, f64::NAN)),
                    ],
                )
            })
            .collect()
    }

    #[test]
    fn target_rates_flow_through_the_graph_with_each_edges_ratio() {
        let graph = [vertex("source", &[]), vertex("map", &["source"])];
        let evaluation = evaluate(&graph, &window(), &AutoscalerSettings::default());
        let source = evaluation.vertices["source"];
        // Input 1000/s plus a lag growing 100/s; it processes 1000/s at 50% busy: 2000/s.
        assert_eq!(source.target_rate, 1100.0);
        assert_eq!(source.true_processing_rate, 2000.0);
        // Lag 1000 now, over a 30 min catch-up: 1000 / 1800 = 0.5555… stored as 0.556.
        assert_eq!(source.catch_up_rate, 0.556);
        let map = evaluation.vertices["map"];
        // The edge carries 500/s of the source's 1000/s: half of 1100 target.
        assert_eq!(map.target_rate, 550.0);
        assert_eq!(map.catch_up_rate, 0.278);
        assert_eq!(map.true_processing_rate, 625.0, "500 / 0.8");
        assert!(
            !evaluation.backlog,
            "1000 records of lag is one second of input"
        );
    }

    #[test]
    fn the_avg_aggregator_takes_the_busy_time_from_its_counter() {
        // The map's two subtasks were busy 1200 ms per second together: 600 ms each on
        // average, so 500/s processed is 500 / 0.6 = 833.333/s at full utilization (the MAX
        // aggregator's 0.8 load gave 625).
        let mut samples = window();
        for (i, s) in samples.iter_mut().enumerate() {
            let map = s.vertices.get_mut("map").unwrap();
            map.accumulated_busy_ms = 1200.0 * i as f64;
            map.records_in_per_second = 10.0;
        }
        let graph = [vertex("source", &[]), vertex("map", &["source"])];
        let settings = AutoscalerSettings {
            busy_time_aggregator: BusyTimeAggregator::Avg,
            ..Default::default()
        };
        let evaluation = evaluate(&graph, &samples, &settings);
        let map = evaluation.vertices["map"];
        assert_eq!(map.busy_time_ms_per_second, 600.0);
        assert_eq!(
            map.true_processing_rate, 833.333,
            "the counter's rate, not the gauge"
        );
        assert_eq!(
            evaluation.missing,
            vec![("source".to_string(), "no busy time (accumulateBusyTimeMs)")]
        );
        // The source without busy time still hands its target rate down the graph.
        assert_eq!(map.target_rate, 550.0);
        assert!(evaluation.vertices["source"].true_processing_rate.is_nan());
    }

    #[test]
    fn a_vertex_without_busy_time_is_evaluated_for_those_downstream() {
        // A legacy source reports no busy time: its own processing rate is unknown, but its
        // input rate and lag are what the map downstream must keep up with.
        let mut samples = window();
        for s in &mut samples {
            s.vertices.get_mut("source").unwrap().load = f64::NAN;
        }
        let graph = [vertex("source", &[]), vertex("map", &["source"])];
        let evaluation = evaluate(&graph, &samples, &AutoscalerSettings::default());
        assert_eq!(
            evaluation.missing,
            vec![("source".to_string(), "no busy time (busyTimeMsPerSecond)")]
        );
        let source = evaluation.vertices["source"];
        assert!(source.true_processing_rate.is_nan());
        assert_eq!((source.target_rate, source.catch_up_rate), (1100.0, 0.556));
        let map = evaluation.vertices["map"];
        assert_eq!((map.target_rate, map.catch_up_rate), (550.0, 0.278));
        assert_eq!(map.true_processing_rate, 625.0);
    }

    #[test]
    fn a_source_with_lag_that_reads_nothing_is_a_backlog() {
        // Stuck: the source reads nothing while 5000 records wait. Upstream's lag / rate is
        // infinite, so this is backlog (the wider utilization band applies); with no lag
        // either it is not.
        let stuck = |lag: f64| -> Vec<Sample> {
            (0..=10)
                .map(|i| {
                    sample(
                        i * 1000,
                        &[
                            ("source", metrics(7000.0, 7000.0, 0.0, lag)),
                            ("map", metrics(3500.0, 3500.0, 0.0, f64::NAN)),
                        ],
                    )
                })
                .collect()
        };
        let graph = [vertex("source", &[]), vertex("map", &["source"])];
        let settings = AutoscalerSettings::default();
        assert!(evaluate(&graph, &stuck(5000.0), &settings).backlog);
        assert!(!evaluate(&graph, &stuck(0.0), &settings).backlog);
    }

    #[test]
    fn a_long_lag_is_a_backlog_and_missing_metrics_are_reported_not_invented() {
        let mut samples = window();
        for s in &mut samples {
            s.vertices.get_mut("source").unwrap().lag = 400_000.0;
            s.vertices.get_mut("map").unwrap().load = f64::NAN;
        }
        let graph = [vertex("source", &[]), vertex("map", &["source"])];
        let evaluation = evaluate(&graph, &samples, &AutoscalerSettings::default());
        assert!(
            evaluation.backlog,
            "400 s of input waiting, over the 300 s threshold"
        );
        assert_eq!(
            evaluation.missing,
            vec![("map".to_string(), "no busy time (busyTimeMsPerSecond)")]
        );
        assert!(evaluation.vertices["map"].true_processing_rate.is_nan());
    }

    #[test]
    fn windowed_aggregates_follow_upstreams_rules() {
        let samples = window();
        let series = by_vertex(&samples);
        let source = series["source"].as_slice();
        assert!(
            rate(&source[..1], |s| s.records_in).is_nan(),
            "one sample is no rate"
        );
        assert_eq!(average(source, |s| s.load, 1), 0.5);
        assert!(average(source, |s| s.observed_tpr, 2).is_nan());
        let mut infinite = samples.clone();
        for s in &mut infinite {
            s.vertices.get_mut("source").unwrap().observed_tpr = f64::INFINITY;
        }
        let infinite = by_vertex(&infinite);
        assert_eq!(
            average(&infinite["source"], |s| s.observed_tpr, 2),
            f64::INFINITY
        );
    }

    #[test]
    fn an_observed_rate_replaces_an_implausibly_high_busy_time_rate() {
        let mut samples = window();
        for s in &mut samples {
            s.vertices.get_mut("source").unwrap().observed_tpr = 1500.0;
        }
        let graph = [vertex("source", &[])];
        // Busy-time rate 2000 > 1500 * 1.15: the observed 1500 is used.
        assert_eq!(
            evaluate(&graph, &samples, &AutoscalerSettings::default()).vertices["source"]
                .true_processing_rate,
            1500.0
        );
    }

    #[test]
    fn a_join_splits_its_input_rate_between_single_output_inputs() {
        // a (300/s) and b (700/s) feed join j, which reads 1000/s: a's edge carries
        // 1000 - 700 = 300 of a's 300 (ratio 1), b's 1000 - 300 = 700 of 700.
        let samples: Vec<Sample> = (0..=10)
            .map(|i| {
                let n = i as f64;
                sample(
                    i * 1000,
                    &[
                        ("a", metrics(300.0 * n, 300.0 * n, 0.5, 0.0)),
                        ("b", metrics(700.0 * n, 700.0 * n, 0.5, 0.0)),
                        ("j", metrics(1000.0 * n, 1000.0 * n, 0.5, f64::NAN)),
                    ],
                )
            })
            .collect();
        let graph = [vertex("a", &[]), vertex("b", &[]), vertex("j", &["a", "b"])];
        let evaluation = evaluate(&graph, &samples, &AutoscalerSettings::default());
        assert_eq!(evaluation.vertices["j"].target_rate, 1000.0);
        // With a second consumer of b, b's edge falls back to its own output rate.
        let graph = [
            vertex("a", &[]),
            vertex("b", &[]),
            vertex("j", &["a", "b"]),
            vertex("k", &["b"]),
        ];
        let evaluation = evaluate(&graph, &samples, &AutoscalerSettings::default());
        assert_eq!(
            evaluation.vertices["j"].target_rate, 1000.0,
            "a: 1000 - 700 of 300 (ratio 1); b: its 700 of 700"
        );
    }
}
