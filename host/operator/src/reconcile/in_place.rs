//! A user's `pipeline.jobvertex-parallelism-overrides` edit reaches the running job in place,
//! as upstream's `kubernetes.operator.job.upgrade.inplace-scaling.enabled` (true) does: the
//! adaptive scheduler of Flink 1.18+ takes new per-vertex parallelism through
//! `/jobs/:id/resource-requirements`. Pure: the configuration and what Flink said in, what to
//! do out. An autoscaled job's requirements are the autoscaler's, so this leaves them alone.

use super::observed::ObservedRequirements;
use flink_api::FlinkVersion;
use flink_api::config::options;
use flink_rest::{JobState, ResourceRequirements};
use std::collections::BTreeMap;

/// What an overrides edit does.
#[derive(Clone, Debug, PartialEq)]
pub enum InPlace {
    /// Set these requirements (the job does not run them yet).
    Set(ResourceRequirements),
    /// The job runs them: the edit is applied.
    Applied,
    /// Not observed yet (the JobManager did not answer): ask again soon.
    Unknown,
    /// Cannot be done in place, for this reason: the edit is a full upgrade (upstream's
    /// fallback).
    Redeploy(String),
}

/// The overrides to apply in place, when the configuration asks for in-place scaling of a job
/// that is not autoscaled and names some; None: an edit of them is a full upgrade.
pub fn wanted(config: &BTreeMap<String, String>) -> Option<BTreeMap<String, u32>> {
    if !options::INPLACE_SCALING.flag_in_flat(config, true)
        || options::AUTOSCALER_ENABLED.flag_in_flat(config, false)
    {
        return None;
    }
    let overrides =
        crate::render::parallelism_overrides(config.get(options::PARALLELISM_OVERRIDES.key));
    (!overrides.is_empty()).then_some(overrides)
}

/// What the edit from `before` to `overrides` does, from what the job's JobManager said.
pub fn decide(
    before: &BTreeMap<String, u32>,
    overrides: &BTreeMap<String, u32>,
    version: Option<FlinkVersion>,
    observed: Option<&ObservedRequirements>,
) -> InPlace {
    // A vertex whose override is removed goes back to the job's own parallelism, which only a
    // deploy knows.
    if before.keys().any(|vertex| !overrides.contains_key(vertex)) {
        return InPlace::Redeploy("an override was removed".into());
    }
    if version.is_some_and(|v| !v.supports_in_place_rescale()) {
        return InPlace::Redeploy("Flink before 1.18 cannot rescale a job in place".into());
    }
    let Some(observed) = observed else {
        return InPlace::Unknown;
    };
    match observed.state {
        JobState::Running => {}
        // Starting (or a JobManager's cached details from just before it ran): not a reason
        // to redeploy a job that is about to run; ask again soon.
        JobState::Initializing | JobState::Created | JobState::Reconciling | JobState::Unknown => {
            return InPlace::Unknown;
        }
        _ => return InPlace::Redeploy("the job is not RUNNING".into()),
    }
    if !observed.adaptive {
        return InPlace::Redeploy(
            "the job does not run the adaptive scheduler (jobmanager.scheduler: adaptive)".into(),
        );
    }
    let Some(current) = &observed.current else {
        return InPlace::Unknown;
    };
    let unknown: Vec<&str> = overrides
        .keys()
        .filter(|v| !current.contains_key(*v))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return InPlace::Redeploy(format!(
            "the running job has no vertex {}",
            unknown.join(", ")
        ));
    }
    let wanted = super::autoscaling::in_place_requirements(current, overrides);
    if &wanted == current {
        InPlace::Applied
    } else {
        InPlace::Set(wanted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flink_rest::{ParallelismBounds, VertexRequirements};

    fn requirements(vertices: &[(&str, i32)]) -> ResourceRequirements {
        vertices
            .iter()
            .map(|(v, p)| {
                (
                    v.to_string(),
                    VertexRequirements {
                        parallelism: ParallelismBounds {
                            lower_bound: 1,
                            upper_bound: *p,
                        },
                    },
                )
            })
            .collect()
    }

    fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_a_job_not_autoscaled_with_in_place_scaling_on_and_overrides_set_is_rescaled_in_place() {
        let key = "pipeline.jobvertex-parallelism-overrides";
        assert_eq!(
            wanted(&config(&[(key, "a:2, b:x,c:3")])),
            Some(BTreeMap::from([("a".into(), 2), ("c".into(), 3)]))
        );
        assert_eq!(wanted(&config(&[])), None);
        assert_eq!(
            wanted(&config(&[
                (key, "a:2"),
                (
                    "kubernetes.operator.job.upgrade.inplace-scaling.enabled",
                    "false"
                )
            ])),
            None
        );
        assert_eq!(
            wanted(&config(&[(key, "a:2"), ("job.autoscaler.enabled", "true")])),
            None
        );
    }

    #[test]
    fn the_requirements_are_set_until_the_job_runs_them_else_it_is_redeployed() {
        let overrides = BTreeMap::from([("a".to_string(), 4)]);
        let observed = |adaptive, current: Option<ResourceRequirements>| ObservedRequirements {
            state: JobState::Running,
            adaptive,
            current,
        };
        let none = BTreeMap::new();
        let now = requirements(&[("a", 2), ("b", 2)]);
        assert_eq!(
            decide(
                &none,
                &overrides,
                Some(FlinkVersion::V2_3),
                Some(&observed(true, Some(now.clone())))
            ),
            InPlace::Set(requirements(&[("a", 4), ("b", 2)]))
        );
        assert_eq!(
            decide(
                &none,
                &overrides,
                Some(FlinkVersion::V2_3),
                Some(&observed(true, Some(requirements(&[("a", 4), ("b", 2)]))))
            ),
            InPlace::Applied
        );
        assert_eq!(decide(&none, &overrides, None, None), InPlace::Unknown);
        assert!(matches!(
            decide(&none, &overrides, None, Some(&observed(false, None))),
            InPlace::Redeploy(why) if why.contains("adaptive")
        ));
        assert!(matches!(
            decide(&none, &overrides, Some(FlinkVersion::V1_17), None),
            InPlace::Redeploy(why) if why.contains("1.18")
        ));
        let failed = ObservedRequirements {
            state: JobState::Failing,
            ..observed(true, None)
        };
        assert!(matches!(
            decide(&none, &overrides, None, Some(&failed)),
            InPlace::Redeploy(why) if why.contains("not RUNNING")
        ));
        // A job that is still starting (or whose cached details say so) is asked about again,
        // not redeployed: seen on CI right after a redeploy.
        for starting in [JobState::Created, JobState::Initializing] {
            let starting = ObservedRequirements {
                state: starting,
                ..observed(true, Some(now.clone()))
            };
            assert_eq!(
                decide(&none, &overrides, None, Some(&starting)),
                InPlace::Unknown
            );
        }
        let before = BTreeMap::from([("a".to_string(), 2), ("b".to_string(), 2)]);
        assert!(matches!(
            decide(&before, &overrides, None, None),
            InPlace::Redeploy(why) if why.contains("removed")
        ));
        let unknown = BTreeMap::from([("zz".to_string(), 4)]);
        assert!(matches!(
            decide(&none, &unknown, None, Some(&observed(true, Some(now)))),
            InPlace::Redeploy(why) if why.contains("no vertex zz")
        ));
    }
}
