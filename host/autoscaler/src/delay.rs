//! Scale-down is delayed (upstream's `DelayedScaleDown`): a vertex scales down only after it
//! wanted to for a whole `scale-down.interval`, and then to the highest parallelism it wanted
//! within that interval, so a short dip never costs a rescale and the load coming back is
//! anticipated. The pending requests are state the operator keeps between decisions (in the
//! autoscaler ConfigMap), so they serialize.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingScaleDown {
    /// When the vertex first wanted to scale down (fixed until the request is cleared).
    pub first_trigger_ms: i64,
    /// (time, parallelism, outside band), parallelism strictly decreasing from the front.
    pub requests: Vec<(i64, u32, bool)>,
}

/// The pending scale-downs of a job's vertices.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DelayedScaleDowns(pub BTreeMap<String, PendingScaleDown>);

impl DelayedScaleDowns {
    /// Records that `vertex` wants `new` (< its current parallelism) now; the scale-down to
    /// apply (parallelism, outside band) once it has been wanted for `interval_ms`, or None to
    /// wait. An interval of 0 or less applies at once.
    pub fn scale_down(
        &mut self,
        vertex: &str,
        now_ms: i64,
        current: u32,
        new: u32,
        outside: bool,
        interval_ms: i64,
    ) -> Option<(u32, bool)> {
        if interval_ms <= 0 {
            return Some((new, outside));
        }
        let pending = self
            .0
            .entry(vertex.to_string())
            .or_insert_with(|| PendingScaleDown {
                first_trigger_ms: now_ms,
                requests: Vec::new(),
            });
        while pending.requests.last().is_some_and(|(_, p, _)| *p <= new) {
            pending.requests.pop();
        }
        pending.requests.push((now_ms, new, outside));
        if now_ms - interval_ms < pending.first_trigger_ms {
            return None;
        }
        let cutoff = now_ms - interval_ms;
        pending.requests.retain(|(at, _, _)| *at >= cutoff);
        let (_, parallelism, outside) = *pending.requests.first()?;
        (parallelism != current).then_some((parallelism, outside))
    }

    /// A vertex that scales up or stays: its pending scale-down is dropped.
    pub fn clear(&mut self, vertex: &str) {
        self.0.remove(vertex);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    #[test]
    fn a_scale_down_waits_the_interval_then_takes_the_highest_wish_within_it() {
        let mut pending = DelayedScaleDowns::default();
        assert_eq!(pending.scale_down("v", 0, 10, 4, true, HOUR), None);
        assert_eq!(
            pending.scale_down("v", HOUR / 2, 10, 6, true, HOUR),
            None,
            "a higher wish replaces lower ones"
        );
        assert_eq!(pending.scale_down("v", HOUR - 1, 10, 5, true, HOUR), None);
        // An hour after the first wish: the highest within the last hour is 6.
        assert_eq!(
            pending.scale_down("v", HOUR, 10, 3, true, HOUR),
            Some((6, true))
        );
        // Later, the 6 has aged out; 5 is the highest left.
        assert_eq!(
            pending.scale_down("v", HOUR + HOUR / 2 + 1, 10, 2, false, HOUR),
            Some((5, true))
        );
    }

    #[test]
    fn scaling_up_or_staying_drops_the_pending_scale_down() {
        let mut pending = DelayedScaleDowns::default();
        pending.scale_down("v", 0, 10, 4, true, HOUR);
        pending.clear("v");
        assert_eq!(
            pending.scale_down("v", HOUR, 10, 4, true, HOUR),
            None,
            "the interval starts again"
        );
        assert_eq!(pending.0["v"].first_trigger_ms, HOUR);
    }

    #[test]
    fn no_interval_scales_down_at_once_and_wishes_equal_to_current_do_nothing() {
        let mut pending = DelayedScaleDowns::default();
        assert_eq!(pending.scale_down("v", 0, 10, 4, true, 0), Some((4, true)));
        assert!(pending.0.is_empty());
        pending.scale_down("v", 0, 10, 10, false, HOUR);
        assert_eq!(
            pending.scale_down("v", HOUR, 10, 7, true, HOUR),
            None,
            "the head wish is the current parallelism"
        );
    }

    #[test]
    fn pending_requests_survive_a_restart_as_json() {
        let mut pending = DelayedScaleDowns::default();
        pending.scale_down("v", 5, 10, 4, true, HOUR);
        let text = serde_json::to_string(&pending).unwrap();
        assert_eq!(
            serde_json::from_str::<DelayedScaleDowns>(&text).unwrap(),
            pending
        );
    }
}
