//! Scaling history per vertex (upstream's `ScalingSummary` records), bounded by
//! `history.max.count` and `history.max.age`, and the ineffective-scaling check it enables: a
//! scale-up that did not raise the true processing rate by at least
//! `scaling.effectiveness.threshold` of what it promised is reported, and (when detection is
//! enabled) not repeated.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScalingRecord {
    pub time_ms: i64,
    pub current: u32,
    pub new: u32,
    /// The true processing rate when the decision was taken.
    pub true_processing_rate: f64,
    /// What the new parallelism was expected to process.
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
