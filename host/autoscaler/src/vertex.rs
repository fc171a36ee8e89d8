//! One vertex's scaling decision from its evaluated metrics (upstream's `JobVertexScaler`
//! core): the capacity it needs at a utilization, the band outside which it scales, and the
//! target parallelism with the factor limits, bounds and alignment. Every number that led to a
//! decision is in its [`Reason`]s.

use crate::align::{Alignment, AlignmentInput, align};
use crate::round::{jmax, jmin, jround, round3};
use crate::settings::AutoscalerSettings;
use serde::Serialize;

/// A vertex's evaluated metrics over the metrics window (records per second unless stated).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VertexMetrics {
    pub parallelism: u32,
    pub max_parallelism: u32,
    /// Partitions of the source it reads (0: not a source, or unknown).
    pub source_partitions: u32,
    /// Whether some input is keyed.
    pub keyed_input: bool,
    /// True processing rate (average): what the vertex could process at full utilization.
    pub true_processing_rate: f64,
    /// The rate it must keep up with (average).
    pub target_rate: f64,
    /// The extra rate needed to work off the current lag within the catch-up duration.
    pub catch_up_rate: f64,
}

/// The rates between which a vertex is left alone.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Thresholds {
    /// Below this true processing rate, the vertex is too slow (scale up).
    pub scale_up: f64,
    /// Above this, it is needlessly fast (scale down).
    pub scale_down: f64,
}

/// Why a vertex got its new parallelism, with the numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "reason", rename_all = "camelCase")]
pub enum Reason {
    /// The capacity the target utilization needs, against the true processing rate.
    #[serde(rename_all = "camelCase")]
    ScaleFactor {
        required_capacity: f64,
        true_processing_rate: f64,
        factor: f64,
    },
    /// The vertex scaled less than linearly so far (`observed-scalability.enabled`): the
    /// factor was divided by the fitted coefficient.
    #[serde(rename_all = "camelCase")]
    ObservedScalability { coefficient: f64, factor: f64 },
    /// The factor was limited by `scale-up.max-factor` / `scale-down.max-factor`.
    #[serde(rename_all = "camelCase")]
    FactorLimited { wanted: f64, limited_to: f64 },
    /// The parallelism was held within the vertex's bounds.
    #[serde(rename_all = "camelCase")]
    Bounded { wanted: u32, lower: u32, upper: u32 },
    /// The parallelism was aligned to key groups or source partitions.
    #[serde(rename_all = "camelCase")]
    Aligned {
        computed: u32,
        aligned: u32,
        over: u32,
    },
    /// A legacy alignment mode found no aligned parallelism above the computed one and
    /// walked down from it (upstream's `ScalingLimited`).
    #[serde(rename_all = "camelCase")]
    AlignmentLimited {
        computed: u32,
        aligned: u32,
        over: u32,
    },
}

/// A vertex whose computed change a legacy alignment mode refused, because aligning it would
/// have turned a scale-up into a scale-down or the other way round (upstream's
/// `ScalingLimited`, parallelism kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlignmentBlocked {
    pub current: u32,
    pub computed: u32,
    /// The key groups or source partitions aligned to.
    pub over: u32,
}

/// What a vertex's metrics call for.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Its parallelism stays.
    Same,
    /// A change was computed and alignment refused it.
    Blocked(AlignmentBlocked),
    Change(VertexOutcome),
}

impl Target {
    pub fn change(self) -> Option<VertexOutcome> {
        match self {
            Target::Change(outcome) => Some(outcome),
            Target::Same | Target::Blocked(_) => None,
        }
    }
}

/// A vertex whose parallelism should change.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VertexOutcome {
    pub current: u32,
    pub new: u32,
    /// The true processing rate expected at the new parallelism.
    pub expected_processing_rate: f64,
    /// Whether the vertex is outside its utilization band (only such changes trigger scaling).
    pub outside_band: bool,
    pub thresholds: Thresholds,
    pub reasons: Vec<Reason>,
}

/// `capacity(u)`: the true processing rate needed to run at utilization `u` while keeping up
/// with the target rate and the catch-up rate (and, with `with_restart`, the backlog a restart
/// builds up). Rounded as upstream (Java `Math.round`).
pub fn capacity(
    m: &VertexMetrics,
    utilization: f64,
    with_restart: bool,
    restart_s: f64,
    catch_up_s: f64,
) -> f64 {
    if m.catch_up_rate.is_nan() || m.target_rate.is_nan() {
        return f64::NAN;
    }
    let u = jmin(1.0, jmax(0.0, utilization));
    if u == 0.0 {
        return f64::INFINITY;
    }
    let restart = if with_restart && catch_up_s != 0.0 {
        m.target_rate * restart_s / catch_up_s
    } else {
        0.0
    };
    jround(m.catch_up_rate + restart + m.target_rate / u)
}

/// The scale-up and scale-down thresholds of a vertex. During a backlog the band is [0, 1].
pub fn thresholds(
    m: &VertexMetrics,
    settings: &AutoscalerSettings,
    backlog: bool,
    restart_s: f64,
) -> Thresholds {
    let catch_up_s = settings.catch_up_seconds();
    Thresholds {
        scale_up: capacity(
            m,
            settings.utilization_max(backlog),
            false,
            restart_s,
            catch_up_s,
        ),
        scale_down: capacity(
            m,
            settings.utilization_min(backlog),
            true,
            restart_s,
            catch_up_s,
        ),
    }
}

/// The new parallelism of a vertex, or None when it stays as it is (see [`target`]).
pub fn target_parallelism(
    m: &VertexMetrics,
    settings: &AutoscalerSettings,
    backlog: bool,
    restart_s: f64,
    scalability: f64,
) -> Option<VertexOutcome> {
    target(m, settings, backlog, restart_s, scalability).change()
}

/// What a vertex's metrics call for. `scalability` is the vertex's observed scalability
/// coefficient (1.0: linear, or not enabled), see [`crate::history::observed_scalability`].
pub fn target(
    m: &VertexMetrics,
    settings: &AutoscalerSettings,
    backlog: bool,
    restart_s: f64,
    scalability: f64,
) -> Target {
    let p = m.parallelism;
    let catch_up_s = settings.catch_up_seconds();
    let required = capacity(m, settings.utilization_target, true, restart_s, catch_up_s);
    if m.true_processing_rate.is_nan() || required.is_nan() || p == 0 {
        return Target::Same;
    }
    let mut reasons = Vec::new();
    let mut wanted = required / m.true_processing_rate;
    reasons.push(Reason::ScaleFactor {
        required_capacity: required,
        true_processing_rate: m.true_processing_rate,
        factor: wanted,
    });
    if scalability != 1.0 {
        wanted /= scalability;
        reasons.push(Reason::ObservedScalability {
            coefficient: scalability,
            factor: wanted,
        });
    }
    let (min_factor, max_factor) = (
        1.0 - settings.scale_down_max_factor,
        1.0 + settings.scale_up_max_factor,
    );
    let factor = if wanted < min_factor {
        min_factor
    } else if wanted > max_factor {
        max_factor
    } else {
        wanted
    };
    if factor != wanted && !wanted.is_nan() {
        reasons.push(Reason::FactorLimited {
            wanted,
            limited_to: factor,
        });
    }
    let lower = p.min(settings.vertex_min_parallelism);
    let upper = p.max(settings.vertex_max_parallelism);
    let scaled = (factor * f64::from(p)).ceil();
    let raw = if scaled.is_nan() {
        0
    } else {
        scaled.min(f64::from(i32::MAX)) as u32
    };
    let ceiling = m.max_parallelism.min(upper);
    let bounded = raw.max(lower).min(ceiling);
    if bounded != raw {
        reasons.push(Reason::Bounded {
            wanted: raw,
            lower,
            upper: ceiling,
        });
    }
    let aligned = if bounded == p {
        Alignment {
            parallelism: p,
            limited: false,
        }
    } else {
        align(
            AlignmentInput {
                current: p,
                target: bounded,
                max_parallelism: m.max_parallelism,
                upper,
                lower,
                source_partitions: m.source_partitions,
                keyed_input: m.keyed_input,
            },
            settings.alignment,
        )
    };
    let new = aligned.parallelism;
    let over = if m.source_partitions > 0 {
        m.source_partitions
    } else {
        m.max_parallelism
    };
    if new == p {
        return if aligned.limited {
            Target::Blocked(AlignmentBlocked {
                current: p,
                computed: bounded,
                over,
            })
        } else {
            Target::Same
        };
    }
    if new != bounded {
        let (computed, aligned_to) = (bounded, new);
        reasons.push(if aligned.limited {
            Reason::AlignmentLimited {
                computed,
                aligned: aligned_to,
                over,
            }
        } else {
            Reason::Aligned {
                computed,
                aligned: aligned_to,
                over,
            }
        });
    }
    let thresholds = thresholds(m, settings, backlog, restart_s);
    let tpr = m.true_processing_rate;
    Target::Change(VertexOutcome {
        current: p,
        new,
        expected_processing_rate: round3(tpr / f64::from(p) * f64::from(new)),
        outside_band: tpr < thresholds.scale_up || tpr > thresholds.scale_down,
        thresholds,
        reasons,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vertex(p: u32, tpr: f64, target: f64) -> VertexMetrics {
        VertexMetrics {
            parallelism: p,
            max_parallelism: 128,
            source_partitions: 0,
            keyed_input: false,
            true_processing_rate: tpr,
            target_rate: target,
            catch_up_rate: 0.0,
        }
    }

    #[test]
    fn a_slow_vertex_scales_up_by_the_capacity_it_needs() {
        // cap(0.7) = round(160 * 300 / 1800 + 160 / 0.7) = round(26.67 + 228.57) = 255;
        // factor 2.55, ceil(2.55 * 2) = 6; expected rate 100 / 2 * 6 = 300.
        let outcome = target_parallelism(
            &vertex(2, 100.0, 160.0),
            &AutoscalerSettings::default(),
            false,
            300.0,
            1.0,
        )
        .unwrap();
        assert_eq!((outcome.current, outcome.new), (2, 6));
        assert_eq!(outcome.expected_processing_rate, 300.0);
        assert_eq!(
            outcome.reasons[0],
            Reason::ScaleFactor {
                required_capacity: 255.0,
                true_processing_rate: 100.0,
                factor: 2.55
            }
        );
        // Up: capacity at 1.0 (no restart) = 160; down: round(26.67 + 160 / 0.39999999999999997) = 427.
        assert_eq!(
            outcome.thresholds,
            Thresholds {
                scale_up: 160.0,
                scale_down: 427.0
            }
        );
        assert!(outcome.outside_band);
    }

    #[test]
    fn a_vertex_that_scaled_less_than_linearly_asks_for_more() {
        // The factor 2.55 of the slow vertex above, divided by the coefficient 0.8: 3.1875,
        // ceil(3.1875 * 2) = 7 instead of 6.
        let outcome = target_parallelism(
            &vertex(2, 100.0, 160.0),
            &AutoscalerSettings::default(),
            false,
            300.0,
            0.8,
        )
        .unwrap();
        assert_eq!(outcome.new, 7);
        assert!(
            outcome.reasons.iter().any(|r| matches!(
                r,
                Reason::ObservedScalability { coefficient, factor }
                    if *coefficient == 0.8 && (factor - 3.1875).abs() < 1e-9
            )),
            "{:?}",
            outcome.reasons
        );
    }

    #[test]
    fn a_scale_down_is_limited_by_the_max_factor() {
        // Needs round(10 * 300 / 1800 + 10 / 0.7) = round(1.67 + 14.29) = 16 of 1000: factor
        // 0.016, limited to 1 - 0.6 = 0.4: 10 -> 4.
        let outcome = target_parallelism(
            &vertex(10, 1000.0, 10.0),
            &AutoscalerSettings::default(),
            false,
            300.0,
            1.0,
        )
        .unwrap();
        assert_eq!(outcome.new, 4);
        assert!(
            outcome.reasons.contains(&Reason::FactorLimited {
                wanted: 0.016,
                limited_to: 0.4
            }),
            "{:?}",
            outcome.reasons
        );
        assert!(outcome.outside_band);
    }

    #[test]
    fn a_vertex_inside_its_band_with_no_parallelism_change_is_left_alone() {
        // cap = round(0 + 70 / 0.7) = 100 with no restart term (catch-up 0 disables it).
        let settings = AutoscalerSettings {
            catch_up: std::time::Duration::ZERO,
            ..Default::default()
        };
        assert_eq!(
            target_parallelism(&vertex(4, 100.0, 70.0), &settings, false, 300.0, 1.0),
            None
        );
        assert_eq!(
            target_parallelism(&vertex(4, f64::NAN, 70.0), &settings, false, 300.0, 1.0),
            None,
            "no rate, no decision"
        );
    }

    #[test]
    fn bounds_and_alignment_are_applied_and_explained() {
        let settings = AutoscalerSettings {
            vertex_max_parallelism: 12,
            ..Default::default()
        };
        let outcome =
            target_parallelism(&vertex(2, 10.0, 160.0), &settings, false, 300.0, 1.0).unwrap();
        assert_eq!(outcome.new, 12);
        assert!(
            outcome
                .reasons
                .iter()
                .any(|r| matches!(r, Reason::Bounded { upper: 12, .. })),
            "{:?}",
            outcome.reasons
        );

        let mut keyed = vertex(4, 100.0, 160.0);
        keyed.keyed_input = true;
        let settings = AutoscalerSettings {
            alignment: crate::AlignmentMode::EvenlySpread,
            ..Default::default()
        };
        let outcome = target_parallelism(&keyed, &settings, false, 300.0, 1.0).unwrap();
        // ceil(2.55 * 4) = 11, aligned to 16 (a divisor of 128).
        assert_eq!(outcome.new, 16);
        assert!(outcome.reasons.contains(&Reason::Aligned {
            computed: 11,
            aligned: 16,
            over: 128
        }));
    }

    #[test]
    fn decisions_always_respect_bounds_and_factor_limits() {
        let settings = AutoscalerSettings::default();
        for p in [1u32, 2, 3, 7, 16, 50, 128] {
            for tpr in [1.0, 37.5, 100.0, 999.0, 1e6] {
                for target in [0.0, 1.0, 80.0, 160.0, 5000.0, 1e7] {
                    let m = vertex(p, tpr, target);
                    let Some(outcome) = target_parallelism(&m, &settings, false, 300.0, 1.0) else {
                        continue;
                    };
                    assert!(outcome.new >= 1 && outcome.new <= 128, "{m:?}: {outcome:?}");
                    assert_ne!(outcome.new, p);
                    if outcome.new < p {
                        let floor =
                            (f64::from(p) * (1.0 - settings.scale_down_max_factor)).ceil() as u32;
                        assert!(
                            outcome.new >= floor.max(1),
                            "scale-down past the max factor: {m:?} -> {}",
                            outcome.new
                        );
                    }
                    // Deterministic.
                    assert_eq!(
                        target_parallelism(&m, &settings, false, 300.0, 1.0),
                        Some(outcome)
                    );
                }
            }
        }
    }
}
