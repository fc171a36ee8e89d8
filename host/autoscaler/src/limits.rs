//! What may stop a decision from being applied, besides metrics-only mode: an excluded period
//! (`job.autoscaler.excluded.periods`) and the resource quota (`job.autoscaler.quota.cpu`,
//! `job.autoscaler.quota.memory`). Pure: the time and the cluster's resources are inputs.
//!
//! An excluded period is upstream's expression: a daily window `H:mm[:ss]-H:mm[:ss]`, a Quartz
//! cron expression (6 or 7 fields: seconds, minutes, hours, day of month, month, day of week
//! [, year]) whose matching seconds are excluded, or both joined by `&&` (inside the window
//! *and* matching the cron). Several are separated by `;`. Times are UTC.

use crate::evaluate::GraphVertex;
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

#[derive(Debug, Clone, PartialEq)]
struct Cron {
    seconds: Vec<bool>,
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days: Vec<bool>,
    months: Vec<bool>,
    /// 1 = Sunday .. 7 = Saturday (Quartz).
    weekdays: Vec<bool>,
    years: Option<Vec<(i64, i64)>>,
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

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// One cron field as a set over `min..=max`; names (JAN, MON) where `names` starts at `min`.
fn field(text: &str, min: i64, max: i64, names: &[&str]) -> Result<Vec<bool>, String> {
    let mut set = vec![false; (max + 1) as usize];
    let value = |t: &str| -> Result<i64, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(t)) {
            return Ok(min + i as i64);
        }
        let v: i64 = t
            .parse()
            .map_err(|_| format!("{t:?} is not a number or name"))?;
        if (min..=max).contains(&v) {
            Ok(v)
        } else {
            Err(format!("{v} is outside {min}-{max}"))
        }
    };
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<i64>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| format!("{part:?}: the step is not a positive number"))?,
            ),
            None => (part, 1),
        };
        let (from, to) = match range {
            "*" | "?" => (min, max),
            _ => match range.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                None if step > 1 => (value(range)?, max),
                None => {
                    let v = value(range)?;
                    (v, v)
                }
            },
        };
        let mut v = from;
        while v <= to {
            set[v as usize] = true;
            v += step;
        }
    }
    Ok(set)
}

fn cron(text: &str) -> Result<Cron, String> {
    let fields: Vec<&str> = text.split_whitespace().collect();
    if !(6..=7).contains(&fields.len()) {
        return Err(format!(
            "{text:?} is not a Quartz cron expression (6 or 7 fields: seconds minutes hours day-of-month month day-of-week [year])"
        ));
    }
    let years = match fields.get(6) {
        None | Some(&"*") | Some(&"?") => None,
        Some(years) => Some(
            years
                .split(',')
                .map(|part| {
                    let (a, b) = part.split_once('-').unwrap_or((part, part));
                    match (a.parse::<i64>(), b.parse::<i64>()) {
                        (Ok(a), Ok(b)) => Ok((a, b)),
                        _ => Err(format!("{part:?} is not a year or range of years")),
                    }
                })
                .collect::<Result<Vec<_>, String>>()?,
        ),
    };
    Ok(Cron {
        seconds: field(fields[0], 0, 59, &[])?,
        minutes: field(fields[1], 0, 59, &[])?,
        hours: field(fields[2], 0, 23, &[])?,
        days: field(fields[3], 1, 31, &[])?,
        months: field(fields[4], 1, 12, &MONTHS)?,
        weekdays: field(fields[5], 1, 7, &WEEKDAYS)?,
        years,
    })
}

/// Year, month (1-12), day (1-31) of a day count since 1970-01-01 (Hinnant's algorithm).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

impl Cron {
    fn matches(&self, epoch_s: i64) -> bool {
        let days = epoch_s.div_euclid(DAY_S);
        let second_of_day = epoch_s.rem_euclid(DAY_S);
        let (year, month, day) = civil(days);
        // 1970-01-01 was a Thursday (Quartz: 5).
        let weekday = (days + 4).rem_euclid(7) + 1;
        self.seconds[(second_of_day % 60) as usize]
            && self.minutes[(second_of_day / 60 % 60) as usize]
            && self.hours[(second_of_day / 3600) as usize]
            && self.days[day as usize]
            && self.months[month as usize]
            && self.weekdays[weekday as usize]
            && self
                .years
                .as_ref()
                .is_none_or(|ranges| ranges.iter().any(|(a, b)| (*a..=*b).contains(&year)))
    }
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
                period.cron = Some(cron(part)?);
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
    fn the_calendar_is_right() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(1_795_996_800 / DAY_S), (2026, 11, 30));
        assert_eq!(civil(19_782), (2024, 2, 29), "a leap day");
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
