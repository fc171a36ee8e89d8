//! Scaling policy for shared platforms: caps a tenant's task slots across all its jobs, uses a
//! different utilization target by hour of day (tidal load), and never scales down during the
//! tenant's declared peaks.
//!
//! Config (JSON, every field optional):
//! ```json
//! { "tenantMaxSlots": 64,
//!   "utcOffsetMinutes": 60,
//!   "targets": [{ "fromHour": 8, "toHour": 20, "utilization": 0.6 }],
//!   "peaks": [{ "fromHour": 17, "toHour": 21 }] }
//! ```
//! Hours are local (UTC plus `utcOffsetMinutes`); `toHour` is exclusive and may be smaller than
//! `fromHour` for a range over midnight.

use flink_policy_sdk::scaling::{
    ParallelismOverride, ScalingDecision, ScalingInput, Vertex, VertexParallelism,
};
use flink_policy_sdk::{LogLevel, log, parse_config};
use serde::Deserialize;

#[derive(Deserialize, Default, Debug)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    pub tenant_max_slots: Option<u32>,
    #[serde(default)]
    pub utc_offset_minutes: i32,
    #[serde(default)]
    pub targets: Vec<Target>,
    #[serde(default)]
    pub peaks: Vec<Hours>,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Target {
    pub from_hour: u8,
    pub to_hour: u8,
    pub utilization: f64,
}

impl Target {
    fn hours(&self) -> Hours {
        Hours {
            from_hour: self.from_hour,
            to_hour: self.to_hour,
        }
    }
}

#[derive(Deserialize, Debug, Clone, Copy)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Hours {
    pub from_hour: u8,
    pub to_hour: u8,
}

impl Hours {
    fn contains(self, hour: u8) -> bool {
        if self.from_hour <= self.to_hour {
            (self.from_hour..self.to_hour).contains(&hour)
        } else {
            hour >= self.from_hour || hour < self.to_hour
        }
    }
}

impl Config {
    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = parse_config(text)?;
        let ranges = config
            .peaks
            .iter()
            .copied()
            .chain(config.targets.iter().map(Target::hours));
        for (i, hours) in ranges.enumerate() {
            if hours.from_hour > 23 || hours.to_hour > 24 {
                return Err(format!(
                    "config: hour range #{i} ({}..{}) is outside 0..24; use hours of the day",
                    hours.from_hour, hours.to_hour
                ));
            }
        }
        for (i, target) in config.targets.iter().enumerate() {
            if !(target.utilization > 0.0 && target.utilization <= 1.0) {
                return Err(format!(
                    "config.targets[{i}].utilization: {} is not in (0, 1]; use e.g. 0.7",
                    target.utilization
                ));
            }
        }
        if config.utc_offset_minutes.abs() > 14 * 60 {
            return Err(format!(
                "config.utcOffsetMinutes: {} is beyond ±14 hours",
                config.utc_offset_minutes
            ));
        }
        Ok(config)
    }

    fn local_hour(&self, now_epoch_ms: i64) -> u8 {
        let minutes = now_epoch_ms.div_euclid(60_000) + i64::from(self.utc_offset_minutes);
        (minutes.div_euclid(60).rem_euclid(24)) as u8
    }
}

/// The decision for one input: pure, so unit tests call it natively.
pub fn decide(input: &ScalingInput, config: &Config) -> ScalingDecision {
    let hour = config.local_hour(input.now_epoch_ms);
    let target = config
        .targets
        .iter()
        .find(|t| t.hours().contains(hour))
        .map(|t| t.utilization);
    let in_peak = config.peaks.iter().any(|p| p.contains(hour));
    let quota_left = match config.tenant_max_slots {
        None => None,
        Some(max) => match flink_policy_sdk::tenant_usage(input) {
            Ok(used) => Some(max.saturating_sub(used)),
            // A quota is not enforced against a usage nobody knows: no scaling this time.
            Err(why) => {
                return ScalingDecision::Veto(format!(
                    "the tenant's usage is unknown ({why}); no scaling against the quota of {max} slots until it is known"
                ));
            }
        },
    };

    let mut reasons = Vec::new();
    let mut wanted: Vec<(String, u32, u32)> = Vec::new(); // (vertex, current, wanted)
    for vertex in &input.vertices {
        let recommended = input
            .recommendations
            .iter()
            .find(|r| r.vertex_id == vertex.id)
            .map(|r| r.recommended);
        let mut parallelism = match (target, vertex.busy_ratio) {
            (Some(target), Some(busy)) => {
                let p = for_target(vertex, busy, target);
                if Some(p) != recommended && p != vertex.parallelism {
                    reasons.push(format!(
                        "{}: busy {}% at hour {hour} target {}% -> {p}",
                        vertex.name,
                        percent(busy),
                        percent(target)
                    ));
                }
                p
            }
            _ => recommended.unwrap_or(vertex.parallelism),
        };
        if in_peak && parallelism < vertex.parallelism {
            reasons.push(format!(
                "{}: no scale-down during the peak at hour {hour} (keeps {})",
                vertex.name, vertex.parallelism
            ));
            parallelism = vertex.parallelism;
        }
        if let Some(left) = quota_left {
            // Scale-ups stop at the quota; what already runs is never cut by this policy.
            let cap = left.max(vertex.parallelism.min(parallelism));
            if parallelism > cap {
                reasons.push(format!(
                    "{}: tenant quota leaves {left} slots (wanted {parallelism})",
                    vertex.name
                ));
                parallelism = cap;
            }
        }
        wanted.push((vertex.id.clone(), vertex.parallelism, parallelism));
    }

    let follows_recommendation = wanted.iter().all(|(id, current, p)| {
        let recommended = input.recommendations.iter().find(|r| &r.vertex_id == id);
        recommended.map_or(p == current, |r| r.recommended == *p)
    });
    if follows_recommendation {
        return ScalingDecision::Follow;
    }
    if wanted.iter().all(|(_, current, p)| p == current) {
        return ScalingDecision::Veto(reasons.join("; "));
    }
    log(LogLevel::Info, &reasons.join("; "));
    ScalingDecision::Override(ParallelismOverride {
        vertices: wanted
            .into_iter()
            .filter(|(_, current, p)| p != current)
            .map(|(vertex_id, _, parallelism)| VertexParallelism {
                vertex_id,
                parallelism,
            })
            .collect(),
        reason: reasons.join("; "),
    })
}

/// A ratio as whole percent, for reasons people read (integer formatting costs a fraction of
/// float formatting inside a plugin, where every instruction counts against its fuel).
fn percent(ratio: f64) -> u32 {
    (ratio * 100.0).round().clamp(0.0, u32::MAX as f64) as u32
}

/// The parallelism at which the vertex's current load would keep it `target` busy.
fn for_target(vertex: &Vertex, busy: f64, target: f64) -> u32 {
    let exact = f64::from(vertex.parallelism) * busy / target;
    (exact.ceil() as u32).clamp(1, vertex.max_parallelism.max(1))
}

flink_policy_sdk::scaling_plugin!(config: Config::parse, decide: decide);

#[cfg(test)]
mod tests {
    use super::*;
    use flink_policy_sdk::ResourceRef;
    use flink_policy_sdk::scaling::Recommendation;

    const HOUR: i64 = 3_600_000;

    fn vertex(id: &str, parallelism: u32, busy: f64) -> Vertex {
        Vertex {
            id: id.into(),
            name: id.into(),
            parallelism,
            max_parallelism: 128,
            busy_ratio: Some(busy),
            processing_rate: None,
            target_rate: None,
            pending_records: None,
            is_source: false,
        }
    }

    fn input(
        at_hour: i64,
        vertices: Vec<Vertex>,
        recs: &[(&str, u32)],
        in_use: u32,
    ) -> ScalingInput {
        ScalingInput {
            resource: ResourceRef {
                kind: "FlinkDeployment".into(),
                namespace: "team-a".into(),
                name: "orders".into(),
                tenant: "team-a".into(),
                labels: vec![],
            },
            job_id: "00000000000000000000000000000001".into(),
            now_epoch_ms: 20_000 * 24 * HOUR + at_hour * HOUR,
            recommendations: recs
                .iter()
                .map(|(id, p)| Recommendation {
                    vertex_id: (*id).into(),
                    current: vertices.iter().find(|v| v.id == *id).unwrap().parallelism,
                    recommended: *p,
                    reasons: vec![],
                })
                .collect(),
            vertices,
            tenant_slots_in_use: in_use,
            config: String::new(),
        }
    }

    fn config(text: &str) -> Config {
        Config::parse(text).unwrap()
    }

    #[test]
    fn without_rules_it_follows_the_recommendation() {
        let i = input(3, vec![vertex("a", 2, 0.9)], &[("a", 4)], 0);
        assert!(matches!(decide(&i, &config("{}")), ScalingDecision::Follow));
    }

    #[test]
    fn a_scale_up_stops_at_the_tenant_quota() {
        let i = input(
            3,
            vec![vertex("a", 2, 0.9), vertex("b", 2, 0.2)],
            &[("a", 10)],
            30,
        );
        let ScalingDecision::Override(o) = decide(&i, &config(r#"{"tenantMaxSlots": 36}"#)) else {
            panic!("expected an override");
        };
        assert_eq!(o.vertices.len(), 1);
        assert_eq!(
            (o.vertices[0].vertex_id.as_str(), o.vertices[0].parallelism),
            ("a", 6)
        );
        assert!(o.reason.contains("quota leaves 6 slots"), "{}", o.reason);
    }

    #[test]
    fn an_unknown_usage_vetoes_instead_of_counting_as_zero() {
        let i = input(3, vec![vertex("a", 2, 0.9)], &[("a", 10)], 0);
        flink_policy_sdk::testing::set_tenant_usage(Some(Err("the API did not answer".into())));
        let decision = decide(&i, &config(r#"{"tenantMaxSlots": 36}"#));
        flink_policy_sdk::testing::set_tenant_usage(None);
        assert!(
            matches!(&decision, ScalingDecision::Veto(r) if r.contains("the API did not answer")),
            "{decision:?}"
        );
    }

    #[test]
    fn an_exhausted_quota_vetoes_a_scale_up_but_never_cuts_what_runs() {
        let i = input(3, vec![vertex("a", 4, 0.9)], &[("a", 8)], 40);
        let decision = decide(&i, &config(r#"{"tenantMaxSlots": 36}"#));
        assert!(
            matches!(&decision, ScalingDecision::Veto(r) if r.contains("quota leaves 0")),
            "{decision:?}"
        );
    }

    #[test]
    fn no_scale_down_during_a_peak_even_over_midnight() {
        let cfg = config(r#"{"peaks": [{"fromHour": 22, "toHour": 2}]}"#);
        let at = |hour| {
            decide(
                &input(hour, vec![vertex("a", 8, 0.1)], &[("a", 2)], 0),
                &cfg,
            )
        };
        assert!(matches!(at(23), ScalingDecision::Veto(r) if r.contains("no scale-down")));
        assert!(matches!(at(1), ScalingDecision::Veto(_)));
        assert!(matches!(at(2), ScalingDecision::Follow));
    }

    #[test]
    fn the_hours_target_replaces_the_builtin_one() {
        // 4 subtasks 90% busy at a 0.6 target need ceil(4 * 0.9 / 0.6) = 6.
        let cfg = config(
            r#"{"targets": [{"fromHour": 8, "toHour": 20, "utilization": 0.6}], "utcOffsetMinutes": 120}"#,
        );
        let day = decide(&input(7, vec![vertex("a", 4, 0.9)], &[("a", 5)], 0), &cfg);
        let ScalingDecision::Override(o) = day else {
            panic!("{day:?}")
        };
        assert_eq!(o.vertices[0].parallelism, 6);
        // 23:00 local (21:00 UTC + 2h) is outside the range: the recommendation stands.
        let night = decide(&input(21, vec![vertex("a", 4, 0.9)], &[("a", 5)], 0), &cfg);
        assert!(matches!(night, ScalingDecision::Follow), "{night:?}");
    }

    #[test]
    fn bad_config_names_the_field() {
        let err =
            Config::parse(r#"{"targets": [{"fromHour": 8, "toHour": 20, "utilization": 7}]}"#)
                .unwrap_err();
        assert!(err.contains("targets[0].utilization"), "{err}");
        let err = Config::parse(r#"{"tenantMaxSlots": "lots"}"#).unwrap_err();
        assert!(err.contains("tenantMaxSlots"), "{err}");
    }
}
