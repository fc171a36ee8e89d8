//! From Flink's aggregated subtask metrics to one [`VertexSample`] (upstream's
//! `ScalingMetricCollector`, per sample). The I/O is the caller's: it asks Flink for
//! [`vertex_query`]'s names with the `sum`, `max` and `avg` aggregations and hands the answers
//! to [`vertex_sample`]. A metric Flink did not report stays NaN and is named in the notes;
//! nothing is invented.

use crate::evaluate::{TaskManagerSample, VertexSample};
use crate::settings::{AutoscalerSettings, BusyTimeAggregator};
use std::collections::BTreeMap;

/// One metric's aggregations over a vertex's subtasks.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Aggregated {
    pub sum: Option<f64>,
    pub max: Option<f64>,
    pub min: Option<f64>,
    pub avg: Option<f64>,
}

const BUSY: &str = "busyTimeMsPerSecond";
const ACCUMULATED_BUSY: &str = "accumulateBusyTimeMs";
const BACKPRESSURE: &str = "backPressuredTimeMsPerSecond";
const RECORDS_IN: &str = "numRecordsIn";
const RECORDS_OUT: &str = "numRecordsOut";
const RECORDS_IN_PER_SECOND: &str = "numRecordsInPerSecond";
const PENDING: &str = ".pendingRecords";

fn is_source_metric(name: &str, metric: &str) -> bool {
    name.starts_with("Source__") && name.ends_with(&format!(".{metric}"))
}

/// The metric names to ask for, among those the vertex reports (`GET .../subtasks/metrics`
/// lists them): the task's busy and back-pressured time and record counters, and for a source
/// its operator's counters and every `pendingRecords` gauge. Only names the vertex reports are
/// asked for once it reports any: one unknown name makes Flink answer `[]` for all of them.
pub fn vertex_query(available: &[String], source: bool) -> Vec<String> {
    let mut names: Vec<String> = [
        BUSY,
        ACCUMULATED_BUSY,
        BACKPRESSURE,
        RECORDS_IN,
        RECORDS_OUT,
        RECORDS_IN_PER_SECOND,
    ]
    .into_iter()
    .filter(|n| available.is_empty() || available.iter().any(|a| a == n))
    .map(String::from)
    .collect();
    if source {
        names.extend(
            available
                .iter()
                .filter(|n| {
                    n.ends_with(PENDING)
                        || is_source_metric(n, RECORDS_IN)
                        || is_source_metric(n, RECORDS_OUT)
                        || is_source_metric(n, RECORDS_IN_PER_SECOND)
                        || is_source_metric(n, "numRecordsOutPerSecond")
                })
                .cloned(),
        );
    }
    names
}

/// The sum over every name `matches` picks; None when none was reported.
fn summed(values: &BTreeMap<String, Aggregated>, matches: impl Fn(&str) -> bool) -> Option<f64> {
    values
        .iter()
        .filter(|(name, _)| matches(name))
        .filter_map(|(_, v)| v.sum)
        .fold(None, |total, v| Some(total.unwrap_or(0.0) + v))
}

/// One vertex's sample from Flink's answers, with a note per metric that was missing.
pub fn vertex_sample(
    values: &BTreeMap<String, Aggregated>,
    source: bool,
    settings: &AutoscalerSettings,
) -> (VertexSample, Vec<String>) {
    let mut notes = Vec::new();
    let mut sample = VertexSample::MISSING;
    let busy = values
        .get(BUSY)
        .and_then(|v| match settings.busy_time_aggregator {
            BusyTimeAggregator::Max => v.max,
            BusyTimeAggregator::Min => v.min,
            BusyTimeAggregator::Avg => v.avg,
        });
    match busy {
        Some(busy) if busy.is_finite() => sample.load = busy.max(0.0) / 1000.0,
        _ => notes.push(format!("{BUSY} not reported yet")),
    }
    sample.accumulated_busy_ms = values
        .get(ACCUMULATED_BUSY)
        .and_then(|v| v.sum)
        .unwrap_or(f64::NAN);
    if settings.busy_time_aggregator == BusyTimeAggregator::Avg
        && sample.accumulated_busy_ms.is_nan()
    {
        notes.push(format!("{ACCUMULATED_BUSY} not reported yet"));
    }
    sample.records_out = values
        .get(RECORDS_OUT)
        .and_then(|v| v.sum)
        .unwrap_or(f64::NAN);
    if source {
        // A source's task reads nothing over the network: what it reads is its operator's
        // numRecordsIn, or (for sources that do not count input, such as generators) what it
        // emits.
        let read = summed(values, |n| is_source_metric(n, RECORDS_IN)).filter(|v| *v > 0.0);
        let emitted = summed(values, |n| is_source_metric(n, RECORDS_OUT));
        sample.records_in = read.or(emitted).unwrap_or(f64::NAN);
        let per_second = summed(values, |n| is_source_metric(n, RECORDS_IN_PER_SECOND))
            .filter(|v| *v > 0.0)
            .or_else(|| summed(values, |n| is_source_metric(n, "numRecordsOutPerSecond")));
        sample.records_in_per_second = per_second.unwrap_or(f64::NAN);
        match summed(values, |n| n.ends_with(PENDING)) {
            Some(lag) => sample.lag = lag,
            None => notes.push(
                "no pendingRecords: the source does not report its lag, taken as none".into(),
            ),
        }
        sample.observed_tpr = observed_rate(
            sample.lag,
            sample.records_in_per_second,
            values.get(BACKPRESSURE).and_then(|v| v.avg),
            settings,
        );
    } else {
        sample.records_in = values
            .get(RECORDS_IN)
            .and_then(|v| v.sum)
            .unwrap_or(f64::NAN);
        sample.records_in_per_second = values
            .get(RECORDS_IN_PER_SECOND)
            .and_then(|v| v.sum)
            .unwrap_or(f64::NAN);
    }
    if sample.records_in.is_nan() {
        notes.push(format!("{RECORDS_IN} not reported yet"));
    }
    (sample, notes)
}

const GC_TIME: &str = "Status.JVM.GarbageCollector.All.TimeMsPerSecond";
const HEAP_USED: &str = "Status.JVM.Memory.Heap.Used";
const HEAP_MAX: &str = "Status.JVM.Memory.Heap.Max";
const METASPACE_USED: &str = "Status.JVM.Memory.Metaspace.Used";
const MANAGED_USED: &str = "Status.Flink.Memory.Managed.Used";

/// The TaskManager metrics to ask `/taskmanagers/metrics` for, with the `max` aggregation.
pub const TASK_MANAGER_QUERY: [&str; 5] =
    [GC_TIME, HEAP_USED, HEAP_MAX, METASPACE_USED, MANAGED_USED];

/// The TaskManagers' sample from Flink's answer to [`TASK_MANAGER_QUERY`] (the worst
/// TaskManager counts), with a note per metric that was missing.
pub fn task_manager_sample(
    values: &BTreeMap<String, Aggregated>,
) -> (TaskManagerSample, Vec<String>) {
    let max = |name: &str| values.get(name).and_then(|v| v.max);
    let mut notes = Vec::new();
    let mut sample = TaskManagerSample::MISSING;
    match max(GC_TIME) {
        Some(ms) => sample.gc_pressure = ms / 1000.0,
        None => notes.push(format!("TaskManagers: {GC_TIME} not reported yet")),
    }
    match (max(HEAP_USED), max(HEAP_MAX)) {
        (Some(used), Some(limit)) if limit > 0.0 => sample.heap_usage = used / limit,
        _ => notes.push(format!(
            "TaskManagers: {HEAP_USED} / {HEAP_MAX} not reported yet"
        )),
    }
    sample.heap_used = max(HEAP_USED).unwrap_or(f64::NAN);
    sample.metaspace_used = max(METASPACE_USED).unwrap_or(f64::NAN);
    sample.managed_used = max(MANAGED_USED).unwrap_or(f64::NAN);
    (sample, notes)
}

/// A source's observed true processing rate: while it is catching up (its lag is at least
/// `observed-true-processing-rate.lag-threshold` of input), what it reads per second of time
/// it was not back-pressured. NaN when it is not catching up (nothing is observed then).
fn observed_rate(
    lag: f64,
    per_second: f64,
    backpressure_ms: Option<f64>,
    settings: &AutoscalerSettings,
) -> f64 {
    if lag.is_nan() || per_second.is_nan() {
        return f64::NAN;
    }
    if per_second == 0.0 {
        return f64::INFINITY;
    }
    let threshold_s = settings.observed_lag_threshold.as_secs() as f64;
    if lag < threshold_s * per_second {
        return f64::NAN;
    }
    let backpressure = backpressure_ms.unwrap_or(0.0);
    if backpressure >= 1000.0 {
        return f64::NAN;
    }
    per_second / (1.0 - backpressure / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(pairs: &[(&str, f64)]) -> BTreeMap<String, Aggregated> {
        pairs
            .iter()
            .map(|(name, v)| {
                (
                    name.to_string(),
                    Aggregated {
                        sum: Some(*v),
                        max: Some(*v),
                        min: Some(*v),
                        avg: Some(*v),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn a_generator_source_is_read_by_what_it_emits_and_its_missing_lag_is_said() {
        let values = answers(&[
            ("busyTimeMsPerSecond", 63.0),
            ("numRecordsIn", 0.0),
            ("numRecordsOut", 8430.0),
            ("Source__numbers.numRecordsIn", 0.0),
            ("Source__numbers.numRecordsOut", 8430.0),
            ("Source__numbers.numRecordsInPerSecond", 0.0),
            ("Source__numbers.numRecordsOutPerSecond", 127.95),
        ]);
        let (sample, notes) = vertex_sample(&values, true, &AutoscalerSettings::default());
        assert_eq!(sample.records_in, 8430.0);
        assert_eq!(sample.records_in_per_second, 127.95);
        assert_eq!(sample.load, 0.063);
        assert!(sample.lag.is_nan() && sample.observed_tpr.is_nan());
        assert_eq!(
            notes,
            ["no pendingRecords: the source does not report its lag, taken as none"]
        );
    }

    #[test]
    fn a_catching_up_source_observes_its_rate_and_an_empty_answer_invents_nothing() {
        let values = answers(&[
            ("busyTimeMsPerSecond", 900.0),
            ("backPressuredTimeMsPerSecond", 500.0),
            ("Source__kafka.numRecordsIn", 50_000.0),
            ("Source__kafka.numRecordsInPerSecond", 1000.0),
            ("Source__kafka.partition0.pendingRecords", 20_000.0),
            ("Source__kafka.partition1.pendingRecords", 20_000.0),
        ]);
        let (sample, notes) = vertex_sample(&values, true, &AutoscalerSettings::default());
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(sample.lag, 40_000.0);
        // 40 s of input waiting (threshold 30 s): 1000/s in half the time.
        assert_eq!(sample.observed_tpr, 2000.0);
        let (sample, notes) =
            vertex_sample(&BTreeMap::new(), false, &AutoscalerSettings::default());
        assert!(sample.load.is_nan() && sample.records_in.is_nan());
        assert_eq!(notes.len(), 2, "{notes:?}");
    }

    #[test]
    fn the_busy_time_is_aggregated_over_subtasks_as_configured() {
        let values: BTreeMap<String, Aggregated> = [
            (
                "busyTimeMsPerSecond".to_string(),
                Aggregated {
                    sum: Some(900.0),
                    max: Some(600.0),
                    min: Some(100.0),
                    avg: Some(300.0),
                },
            ),
            (
                "accumulateBusyTimeMs".to_string(),
                Aggregated {
                    sum: Some(12_000.0),
                    ..Aggregated::default()
                },
            ),
        ]
        .into();
        let load = |aggregator| {
            let settings = AutoscalerSettings {
                busy_time_aggregator: aggregator,
                ..Default::default()
            };
            vertex_sample(&values, false, &settings).0.load
        };
        assert_eq!(load(BusyTimeAggregator::Max), 0.6);
        assert_eq!(load(BusyTimeAggregator::Min), 0.1);
        assert_eq!(load(BusyTimeAggregator::Avg), 0.3);
        let (sample, _) = vertex_sample(&values, false, &AutoscalerSettings::default());
        assert_eq!(sample.accumulated_busy_ms, 12_000.0);
    }

    #[test]
    fn the_worst_task_managers_gc_time_and_heap_are_the_jobs() {
        let (sample, notes) = task_manager_sample(&answers(&[
            ("Status.JVM.GarbageCollector.All.TimeMsPerSecond", 250.0),
            ("Status.JVM.Memory.Heap.Used", 384.0 * 1024.0 * 1024.0),
            ("Status.JVM.Memory.Heap.Max", 512.0 * 1024.0 * 1024.0),
        ]));
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!((sample.gc_pressure, sample.heap_usage), (0.25, 0.75));
        assert_eq!(sample.heap_used, 384.0 * 1024.0 * 1024.0);
        assert!(sample.metaspace_used.is_nan(), "not reported, not invented");
        let (sample, notes) = task_manager_sample(&BTreeMap::new());
        assert!(sample.gc_pressure.is_nan() && sample.heap_usage.is_nan());
        assert_eq!(notes.len(), 2, "{notes:?}");
    }

    #[test]
    fn only_a_sources_own_metrics_are_asked_for() {
        let available: Vec<String> = [
            "busyTimeMsPerSecond",
            "Source__numbers.numRecordsOut",
            "Source__numbers.split.1.watermark.currentWatermark",
            "Source__kafka.partition0.pendingRecords",
            "count.numRecordsIn",
        ]
        .map(String::from)
        .to_vec();
        let names = vertex_query(&available, true);
        assert!(names.contains(&"Source__numbers.numRecordsOut".to_string()));
        assert!(names.contains(&"Source__kafka.partition0.pendingRecords".to_string()));
        assert!(
            !names
                .iter()
                .any(|n| n.contains("watermark") || n.starts_with("count."))
        );
        assert_eq!(
            vertex_query(&available, false),
            ["busyTimeMsPerSecond"],
            "only what the vertex reports"
        );
        assert_eq!(
            vertex_query(&[], false).len(),
            6,
            "nothing listed yet: the task metrics every vertex has"
        );
    }
}
