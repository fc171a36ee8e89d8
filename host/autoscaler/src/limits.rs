//! What may stop a decision from being applied, besides metrics-only mode: an excluded period
//! (`job.autoscaler.excluded.periods`) and the resource quota (`job.autoscaler.quota.cpu`,
//! `job.autoscaler.quota.memory`). Pure: the time and the cluster's resources are inputs.
//!
//! An excluded period is upstream's expression: a daily window `H:mm[:ss]-H:mm[:ss]`, a Quartz
//! cron expression (6 or 7 fields: seconds, minutes, hours, day of month, month, day of week
//! [, year]) whose matching seconds are excluded, or both joined by `&&` (inside the window
//! *and* matching the cron). Several are separated by `;`. Times are UTC.

use crate::evaluate::GraphVertex;
use flink_cron::Cron;
use std::collections::BTreeMap;

const DAY_S: i64 = 86_400;

/// One excluded period, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct ExcludedPeriod {
    text: String,
    /// Seconds of the day, `from <= t <= to` (a window past midnight wraps).
    daily: Option<(i64, i64)>,
    cron: Option<Cron>,
}

fn seconds_of_day(text: &str) -> Result<i64, String> {
    let parts: Vec<&str> = text.trim().split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return Err(format!("{text:?} is not a time of day (H:mm or H:mm:ss)"));
    }
    let mut total = 0;
    for (i, part) in parts.iter().enumerate() {
        let value: i64 = part
            .parse()
            .map_err(|_| format!("{text:?} is not a time of day (H:mm or H:mm:ss)"))?;
        let limit = if i == 0 { 24 } else { 60 };
        if !(0..limit).contains(&value) {
            return Err(format!("{text:?} is not a time of day (H:mm or H:mm:ss)"));
        }
        total = total * 60 + value;
    }
    if parts.len() == 2 {
        total *= 60;
    }
    Ok(total)
}

impl ExcludedPeriod {
    pub fn parse(text: &str) -> Result<ExcludedPeriod, String> {
        let mut period = ExcludedPeriod {
            text: text.trim().to_string(),
            daily: None,
            cron: None,
        };
        for part in text.split("&&").map(str::trim) {
            let is_daily = part.contains(':') && !part.contains(' ');
            if is_daily {
                let (from, to) = part
                    .split_once('-')
                    .ok_or_else(|| format!("{part:?} is not a daily window (H:mm-H:mm)"))?;
                period.daily = Some((seconds_of_day(from)?, seconds_of_day(to)?));
            } else {
                period.cron = Some(Cron::parse(part)?);
            }
        }
        if period.daily.is_none() && period.cron.is_none() {
            return Err(format!("{text:?} is empty"));
        }
        Ok(period)
    }

    /// Whether `now_ms` falls inside the period.
    pub fn contains(&self, now_ms: i64) -> bool {
        let epoch_s = now_ms.div_euclid(1000);
        let daily = self.daily.is_none_or(|(from, to)| {
            let t = epoch_s.rem_euclid(DAY_S);
            if from <= to {
                (from..=to).contains(&t)
            } else {
                t >= from || t <= to
            }
        });
        daily && self.cron.as_ref().is_none_or(|c| c.matches(epoch_s))
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

/// `job.autoscaler.excluded.periods`: `;`-separated periods.
pub fn parse_periods(text: &str) -> Result<Vec<ExcludedPeriod>, String> {
    text.split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(ExcludedPeriod::parse)
        .collect()
}

/// The TaskManagers of a cluster and what each one costs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClusterResources {
    pub task_managers: u32,
    pub slots_per_task_manager: u32,
    /// Cores per TaskManager.
    pub cpu: f64,
    /// Bytes per TaskManager.
    pub memory: u64,
}

/// TaskManagers the job needs once `graph` is rescaled by `apply`, at `slots_per_task_manager`
/// slots each. Slot sharing: the job needs as many slots as its widest vertex.
pub fn task_managers_needed(
    graph: &[GraphVertex],
    apply: &BTreeMap<String, u32>,
    slots_per_task_manager: u32,
) -> u32 {
    let slots = graph
        .iter()
        .map(|v| apply.get(&v.id).copied().unwrap_or(v.parallelism))
        .max()
        .unwrap_or(1);
    slots.div_ceil(slots_per_task_manager.max(1))
}

/// Upstream's quota check: when the rescaled job needs more TaskManagers than it has, their
/// total CPU and memory must stay within `quota.cpu` and `quota.memory`.
pub fn quota_problem(
    graph: &[GraphVertex],
    apply: &BTreeMap<String, u32>,
    cluster: &ClusterResources,
    quota_cpu: Option<f64>,
    quota_memory: Option<u64>,
) -> Option<String> {
    let task_managers = task_managers_needed(graph, apply, cluster.slots_per_task_manager);
    if task_managers <= cluster.task_managers {
        return None;
    }
    let cpu = f64::from(task_managers) * cluster.cpu;
    if let Some(quota) = quota_cpu
        && cpu > quota
    {
        return Some(format!(
            "{task_managers} TaskManagers would take {cpu} CPU, over job.autoscaler.quota.cpu ({quota})"
        ));
    }
    let memory = u64::from(task_managers) * cluster.memory;
    if let Some(quota) = quota_memory
        && memory > quota
    {
        return Some(format!(
            "{task_managers} TaskManagers would take {memory} bytes of memory, over job.autoscaler.quota.memory ({quota} bytes)"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-30 (a Monday) at `h:m:s` UTC, in ms.
    fn monday(h: i64, m: i64, s: i64) -> i64 {
        (1_795_996_800 + h * 3600 + m * 60 + s) * 1000
    }

    #[test]
    fn daily_windows_cron_and_both_together() {
        let window = ExcludedPeriod::parse("9:30-10:50:20").unwrap();
        assert!(window.contains(monday(10, 0, 0)));
        assert!(!window.contains(monday(10, 50, 21)));
        let night = ExcludedPeriod::parse("22:00-2:00").unwrap();
        assert!(night.contains(monday(23, 0, 0)) && night.contains(monday(1, 0, 0)));
        assert!(!night.contains(monday(12, 0, 0)));
        // Weekdays (Quartz 2-6 = Monday to Friday), hours 9-11 and 14-16.
        let cron = ExcludedPeriod::parse("* * 9-11,14-16 ? * 2-6").unwrap();
        assert!(cron.contains(monday(9, 0, 0)) && cron.contains(monday(16, 59, 59)));
        assert!(!cron.contains(monday(12, 0, 0)));
        assert!(!cron.contains(monday(10, 0, 0) - DAY_S * 1000), "Sunday");
        let both = ExcludedPeriod::parse("9:30:30-10:50:20 && * * * ? * MON,THU").unwrap();
        assert!(both.contains(monday(9, 31, 0)));
        assert!(!both.contains(monday(9, 31, 0) + DAY_S * 1000), "Tuesday");
        let periods = parse_periods("0:00-1:00; * * 12 ? * *").unwrap();
        assert_eq!(periods.len(), 2);
        assert!(periods[1].contains(monday(12, 30, 0)));
    }

    #[test]
    fn bad_periods_say_what_is_wrong() {
        assert!(
            parse_periods("25:00-26:00")
                .unwrap_err()
                .contains("time of day")
        );
        assert!(parse_periods("* * 9").unwrap_err().contains("Quartz"));
        assert!(
            parse_periods("* * 30 ? * *")
                .unwrap_err()
                .contains("outside 0-23")
        );
    }

    #[test]
    fn the_quota_is_checked_only_when_more_task_managers_are_needed() {
        let graph = vec![GraphVertex {
            id: "v".into(),
            parallelism: 4,
            max_parallelism: 128,
            inputs: vec![],
            source_partitions: 0,
            name: String::new(),
            ship_strategies: Default::default(),
        }];
        let cluster = ClusterResources {
            task_managers: 2,
            slots_per_task_manager: 2,
            cpu: 1.0,
            memory: 1 << 30,
        };
        let to = |p: u32| BTreeMap::from([("v".to_string(), p)]);
        assert_eq!(
            quota_problem(&graph, &to(4), &cluster, Some(1.0), None),
            None
        );
        assert!(
            quota_problem(&graph, &to(8), &cluster, Some(3.5), None)
                .unwrap()
                .contains("4 TaskManagers would take 4 CPU")
        );
        assert!(
            quota_problem(&graph, &to(6), &cluster, None, Some(2 << 30))
                .unwrap()
                .contains("quota.memory")
        );
        assert_eq!(
            quota_problem(&graph, &to(8), &cluster, Some(4.0), None),
            None
        );
    }
}
