//! Scaling history per vertex (upstream's `ScalingSummary` records), bounded by
//! `history.max.count` and `history.max.age`, and the ineffective-scaling check it enables: a
//! scale-up that did not raise the true processing rate by at least
//! `scaling.effectiveness.threshold` of what it promised is reported, and (when detection is
//! enabled) not repeated.

use crate::round::{ceil_decimals, jmax, jmin};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScalingRecord {
    pub time_ms: i64,
    pub current: u32,
    pub new: u32,
    /// The true processing rate when the decision was taken (an idle source's is infinite,
    /// which JSON cannot hold as a number: see [`crate::floats`]).
    #[serde(with = "crate::floats")]
    pub true_processing_rate: f64,
    /// What the new parallelism was expected to process.
    #[serde(with = "crate::floats")]
    pub expected_processing_rate: f64,
}

/// Each vertex's scalings, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScalingHistory(pub BTreeMap<String, Vec<ScalingRecord>>);

/// A scale-up that did not deliver.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ineffective {
    pub expected_increase: f64,
    pub actual_increase: f64,
    /// actual / expected.
    pub effectiveness: f64,
}

impl ScalingHistory {
    /// Records an applied scaling, keeping at most `max_count` records per vertex, none older
    /// than `max_age_ms`.
    pub fn record(
        &mut self,
        vertex: &str,
        record: ScalingRecord,
        max_count: usize,
        max_age_ms: i64,
    ) {
        let now = record.time_ms;
        let records = self.0.entry(vertex.to_string()).or_default();
        records.push(record);
        records.retain(|r| r.time_ms >= now - max_age_ms);
        let excess = records.len().saturating_sub(max_count);
        records.drain(..excess);
    }

    /// A vertex's records, oldest first (none: empty).
    pub fn of(&self, vertex: &str) -> &[ScalingRecord] {
        self.0.get(vertex).map_or(&[], Vec::as_slice)
    }

    /// For a vertex about to scale up from `current` with true processing rate `tpr` now: the
    /// last scale-up to `current` if it delivered less than `threshold` of its promise.
    pub fn ineffective(
        &self,
        vertex: &str,
        current: u32,
        tpr: f64,
        threshold: f64,
    ) -> Option<Ineffective> {
        let last = self.0.get(vertex)?.last()?;
        if last.new != current || last.new <= last.current {
            return None;
        }
        let expected_increase = last.expected_processing_rate - last.true_processing_rate;
        let actual_increase = tpr - last.true_processing_rate;
        let effectiveness = actual_increase / expected_increase;
        // NaN (no expected increase) counts as not effective, as upstream's `!(x >= t)` does.
        let effective = matches!(
            effectiveness.partial_cmp(&threshold),
            Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
        );
        (!effective).then_some(Ineffective {
            expected_increase,
            actual_increase,
            effectiveness,
        })
    }
}

/// How well a vertex scaled so far (`observed-scalability.*`): the coefficient `a` of the
/// model `rate = baseline * a * parallelism`, fitted by least squares to the true processing
/// rates the vertex's scalings were decided at, where `baseline` is the rate per subtask at
/// the smallest parallelism seen (at parallelism 1 if it ran there). 1.0 means linear scaling
/// (and is the answer with fewer than `min_observations` records or a missing rate); below 1 a
/// vertex delivers less per added subtask, so the scale factor is divided by it. Clamped to
/// `[coefficient_min, 1]` and rounded up to two decimals, as upstream.
pub fn observed_scalability(
    records: &[ScalingRecord],
    min_observations: usize,
    coefficient_min: f64,
) -> f64 {
    if records.is_empty() || records.len() < min_observations {
        return 1.0;
    }
    let baseline = baseline_rate(records);
    if baseline.is_nan() || records.iter().any(|r| r.true_processing_rate.is_nan()) {
        return 1.0;
    }
    let (weighted, squares) = records.iter().fold((0.0, 0.0), |(w, s), r| {
        let p = f64::from(r.current);
        (w + p * r.true_processing_rate, s + p * p)
    });
    if squares == 0.0 {
        return 1.0;
    }
    let alpha = jmax(coefficient_min, jmin(1.0, weighted / (squares * baseline)));
    if alpha.is_nan() {
        return 1.0;
    }
    ceil_decimals(alpha, 2)
}

/// The processing rate of one subtask: the newest record taken at parallelism 1, else the
/// newest at the smallest parallelism, per subtask.
fn baseline_rate(records: &[ScalingRecord]) -> f64 {
    let mut smallest: Option<&ScalingRecord> = None;
    for record in records.iter().rev() {
        if record.current == 1 {
            return record.true_processing_rate;
        }
        if smallest.is_none_or(|s| record.current < s.current) {
            smallest = Some(record);
        }
    }
    smallest.map_or(f64::NAN, |r| r.true_processing_rate / f64::from(r.current))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(time_ms: i64, current: u32, new: u32, tpr: f64, expected: f64) -> ScalingRecord {
        ScalingRecord {
            time_ms,
            current,
            new,
            true_processing_rate: tpr,
            expected_processing_rate: expected,
        }
    }

    #[test]
    fn a_scale_up_that_did_not_raise_the_rate_is_ineffective() {
        let mut history = ScalingHistory::default();
        history.record("v", up(0, 2, 4, 1000.0, 2000.0), 3, i64::MAX);
        // Now at 4 subtasks the vertex processes 1050/s: 5% of the promised 1000 more.
        let found = history.ineffective("v", 4, 1050.0, 0.1).unwrap();
        assert_eq!(
            (found.expected_increase, found.actual_increase),
            (1000.0, 50.0)
        );
        assert!(
            history.ineffective("v", 4, 1900.0, 0.1).is_none(),
            "90% delivered is effective"
        );
        assert!(
            history.ineffective("v", 8, 1050.0, 0.1).is_none(),
            "only the scale-up to the current parallelism counts"
        );
    }

    fn at(current: u32, tpr: f64) -> ScalingRecord {
        up(0, current, current * 2, tpr, f64::NAN)
    }

    #[test]
    fn observed_scalability_fits_how_the_rate_grew_with_parallelism() {
        // Linear: 50/s per subtask at every parallelism.
        let linear = [at(2, 100.0), at(4, 200.0), at(8, 400.0)];
        assert_eq!(observed_scalability(&linear, 3, 0.5), 1.0);
        // Diminishing: baseline 100/2 = 50; (2*100 + 4*180 + 8*300) / ((4 + 16 + 64) * 50)
        // = 3320 / 4200 = 0.7905, rounded up to 0.8.
        let diminishing = [at(2, 100.0), at(4, 180.0), at(8, 300.0)];
        assert_eq!(observed_scalability(&diminishing, 3, 0.5), 0.8);
        // Almost flat: 1600 / 4200 = 0.381, held at the minimum.
        let flat = [at(2, 100.0), at(4, 110.0), at(8, 120.0)];
        assert_eq!(observed_scalability(&flat, 3, 0.5), 0.5);
        // Better than linear is taken as linear.
        let super_linear = [at(2, 100.0), at(4, 300.0), at(8, 900.0)];
        assert_eq!(observed_scalability(&super_linear, 3, 0.5), 1.0);
        // A record at parallelism 1 is the baseline: 1 * 60 + 2 * 100 + 4 * 180 = 980 over
        // (1 + 4 + 16) * 60 = 1260: 0.7778, rounded up to 0.78.
        let from_one = [at(2, 100.0), at(4, 180.0), at(1, 60.0)];
        assert_eq!(observed_scalability(&from_one, 3, 0.5), 0.78);
    }

    #[test]
    fn too_few_or_incomplete_observations_assume_linear_scaling() {
        let diminishing = [at(2, 100.0), at(4, 180.0), at(8, 300.0)];
        assert_eq!(observed_scalability(&diminishing[..2], 3, 0.5), 1.0);
        assert_eq!(observed_scalability(&[], 0, 0.5), 1.0);
        let missing = [at(2, 100.0), at(4, f64::NAN), at(8, 300.0)];
        assert_eq!(observed_scalability(&missing, 3, 0.5), 1.0);
        let idle = [at(2, 0.0), at(4, 0.0), at(8, 0.0)];
        assert_eq!(observed_scalability(&idle, 3, 0.5), 1.0, "0 / 0");
    }

    #[test]
    fn a_record_of_an_idle_source_survives_storage() {
        // An idle source's true processing rate is infinite; a plain f64 would be written as
        // null and the whole stored state could not be read back.
        let mut history = ScalingHistory::default();
        history.record(
            "source",
            up(0, 2, 1, f64::INFINITY, f64::INFINITY),
            3,
            i64::MAX,
        );
        history.record("map", up(0, 2, 4, f64::NAN, 10.0), 3, i64::MAX);
        let text = serde_json::to_string(&history).unwrap();
        let back: ScalingHistory = serde_json::from_str(&text).unwrap();
        assert_eq!(back.0["source"][0].true_processing_rate, f64::INFINITY);
        assert!(back.0["map"][0].true_processing_rate.is_nan());
    }

    #[test]
    fn history_is_bounded_by_count_and_age() {
        let mut history = ScalingHistory::default();
        for i in 0..5 {
            history.record(
                "v",
                up(i * 1000, i as u32 + 1, i as u32 + 2, 1.0, 2.0),
                3,
                10_000,
            );
        }
        assert_eq!(
            history.0["v"].iter().map(|r| r.time_ms).collect::<Vec<_>>(),
            vec![2000, 3000, 4000]
        );
        history.record("v", up(20_000, 6, 7, 1.0, 2.0), 3, 10_000);
        assert_eq!(history.0["v"].len(), 1, "older than the max age");
    }
}
