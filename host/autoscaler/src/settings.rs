//! The `job.autoscaler.*` settings the autoscaler reads, with upstream's defaults.

use std::time::Duration;

/// How a new parallelism is aligned to key groups or source partitions
/// (`job.autoscaler.scaling.parallelism-alignment.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlignmentMode {
    /// A divisor of the key groups/partitions, or any parallelism that lowers the largest
    /// per-subtask share; else the computed parallelism.
    #[default]
    Balanced,
    /// A divisor only; else the computed parallelism.
    EvenlySpread,
    /// The computed parallelism as is.
    Off,
    /// The deprecated `scaling.key-group.partitions.adjust.mode: EVENLY_SPREAD`, when set
    /// explicitly (and the new key is not): a divisor, else walks down to the largest
    /// parallelism with the target's share, and blocks a change that would turn around.
    #[serde(rename = "LEGACY_EVENLY_SPREAD")]
    LegacyEvenlySpread,
    /// The deprecated `scaling.key-group.partitions.adjust.mode: MAXIMIZE_UTILISATION`: as
    /// [`AlignmentMode::LegacyEvenlySpread`], also accepting a lower largest share.
    #[serde(rename = "LEGACY_MAXIMIZE_UTILISATION")]
    LegacyMaximizeUtilisation,
}

/// How a vertex's busy time is taken from its subtasks
/// (`job.autoscaler.metrics.busy-time.aggregator`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BusyTimeAggregator {
    /// The busiest subtask's `busyTimeMsPerSecond` (sizes for the hottest subtask).
    #[default]
    Max,
    /// The least busy subtask's.
    Min,
    /// The mean over subtasks, from the growth of `accumulateBusyTimeMs`; the true processing
    /// rate's numerator is then the `numRecordsIn` counter's rate.
    Avg,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AutoscalerSettings {
    /// `utilization.target`
    pub utilization_target: f64,
    /// `utilization.max` (default target + boundary)
    pub utilization_max: Option<f64>,
    /// `utilization.min` (default target - boundary)
    pub utilization_min: Option<f64>,
    /// `target.utilization.boundary` (deprecated)
    pub utilization_boundary: f64,
    /// `scale-down.max-factor`
    pub scale_down_max_factor: f64,
    /// `scale-up.max-factor`
    pub scale_up_max_factor: f64,
    /// `vertex.min-parallelism`
    pub vertex_min_parallelism: u32,
    /// `vertex.max-parallelism`
    pub vertex_max_parallelism: u32,
    /// `catch-up.duration`
    pub catch_up: Duration,
    /// `restart.time`
    pub restart_time: Duration,
    /// `scaling.parallelism-alignment.mode`
    pub alignment: AlignmentMode,
    /// `backlog-processing.lag-threshold`
    pub backlog_lag_threshold: Duration,
    /// `scale-down.interval`: how long a vertex must want a scale-down before it happens.
    pub scale_down_interval: Duration,
    /// `metrics.window`
    pub metrics_window: Duration,
    /// `stabilization.interval`: no samples are kept this long after the job (re)starts.
    pub stabilization_interval: Duration,
    /// `scaling.effectiveness.detection.enabled`: an ineffective scale-up is not repeated.
    pub effectiveness_detection: bool,
    /// `scaling.effectiveness.threshold`
    pub effectiveness_threshold: f64,
    /// `enabled`: the operator runs the autoscaler for the job at all.
    pub enabled: bool,
    /// `scaling.enabled`: false is metrics-only mode (decisions are reported, not applied).
    pub scaling_enabled: bool,
    /// `vertex.exclude.ids`: vertices evaluated but never rescaled.
    pub excluded_vertices: Vec<String>,
    /// `restart.time-tracking.enabled` / `.limit`: use the measured rescale time (at most the
    /// limit) instead of `restart.time` once one has been measured.
    pub restart_time_tracking: bool,
    pub restart_time_limit: Duration,
    /// `observed-true-processing-rate.lag-threshold`: a source whose lag is at least this many
    /// seconds of input is catching up, and its observed rate is a true processing rate sample.
    pub observed_lag_threshold: Duration,
    /// `observed-true-processing-rate.switch-threshold`: the observed rate replaces the busy
    /// time based one when that is more than this fraction above it.
    pub observed_switch_threshold: f64,
    /// `observed-true-processing-rate.min-observations`: observed samples needed to use them.
    pub observed_min_observations: usize,
    /// `metrics.busy-time.aggregator`
    pub busy_time_aggregator: BusyTimeAggregator,
    /// `observed-scalability.enabled` / `.min-observations` / `.coefficient-min`: divide the
    /// scale factor by how well the vertex scaled so far (see
    /// [`crate::history::observed_scalability`]).
    pub observed_scalability: bool,
    pub observed_scalability_min_observations: usize,
    pub observed_scalability_coefficient_min: f64,
    /// `memory.gc-pressure.threshold`: no scaling while a TaskManager spends more than this
    /// fraction of its time in GC (latest sample).
    pub gc_pressure_threshold: f64,
    /// `memory.heap-usage.threshold`: no scaling while the fullest TaskManager heap is above
    /// this fraction of its maximum (average over the window).
    pub heap_usage_threshold: f64,
    /// `memory.tuning.*`
    pub memory_tuning: crate::memory::TuningSettings,
    /// `history.max.count` / `history.max.age`: scaling history kept per vertex.
    pub history_max_count: usize,
    pub history_max_age: Duration,
    /// `scaling.event.interval`: a recommendation or warning of the autoscaler is not repeated
    /// sooner (an applied scaling always is reported).
    pub scaling_event_interval: Duration,
    /// `flink.rest-client.timeout`: how long each of the autoscaler's calls to the JobManager
    /// may take (the operator's own client timeout bounds every call too).
    pub rest_client_timeout: Duration,
    /// `excluded.periods`: while one holds, decisions are reported, not applied.
    pub excluded_periods: Vec<crate::limits::ExcludedPeriod>,
    /// `quota.cpu` (cores) / `quota.memory` (bytes): a scale-up needing TaskManagers beyond
    /// them is not applied.
    pub quota_cpu: Option<f64>,
    pub quota_memory: Option<u64>,
}

impl Default for AutoscalerSettings {
    fn default() -> Self {
        Self {
            utilization_target: 0.7,
            utilization_max: None,
            utilization_min: None,
            utilization_boundary: 0.3,
            scale_down_max_factor: 0.6,
            scale_up_max_factor: 100_000.0,
            vertex_min_parallelism: 1,
            vertex_max_parallelism: 200,
            catch_up: Duration::from_secs(30 * 60),
            restart_time: Duration::from_secs(5 * 60),
            alignment: AlignmentMode::Balanced,
            backlog_lag_threshold: Duration::from_secs(5 * 60),
            scale_down_interval: Duration::from_secs(60 * 60),
            metrics_window: Duration::from_secs(15 * 60),
            stabilization_interval: Duration::from_secs(5 * 60),
            effectiveness_detection: false,
            effectiveness_threshold: 0.1,
            enabled: false,
            scaling_enabled: true,
            excluded_vertices: Vec::new(),
            restart_time_tracking: false,
            restart_time_limit: Duration::from_secs(15 * 60),
            observed_lag_threshold: Duration::from_secs(30),
            observed_switch_threshold: 0.15,
            observed_min_observations: 2,
            busy_time_aggregator: BusyTimeAggregator::Max,
            observed_scalability: false,
            observed_scalability_min_observations: 3,
            observed_scalability_coefficient_min: 0.5,
            gc_pressure_threshold: 1.0,
            heap_usage_threshold: 1.0,
            memory_tuning: crate::memory::TuningSettings::default(),
            history_max_count: 3,
            history_max_age: Duration::from_secs(24 * 60 * 60),
            scaling_event_interval: Duration::from_secs(30 * 60),
            rest_client_timeout: Duration::from_secs(10),
            excluded_periods: Vec::new(),
            quota_cpu: None,
            quota_memory: None,
        }
    }
}

impl AutoscalerSettings {
    /// The utilization above which a vertex scales up (1.0 while the job works off a backlog).
    pub fn utilization_max(&self, backlog: bool) -> f64 {
        if backlog {
            1.0
        } else {
            self.utilization_max
                .unwrap_or(self.utilization_target + self.utilization_boundary)
        }
    }

    /// The utilization below which a vertex scales down (0.0 while working off a backlog).
    pub fn utilization_min(&self, backlog: bool) -> f64 {
        if backlog {
            0.0
        } else {
            self.utilization_min
                .unwrap_or(self.utilization_target - self.utilization_boundary)
        }
    }

    /// The restart time to plan with, in whole seconds: the longest measured rescale (capped
    /// by the limit) when tracking is on and one was measured, else `restart.time`.
    pub fn restart_seconds(&self, measured_ms: &[i64]) -> f64 {
        match measured_ms.iter().max() {
            Some(&longest) if self.restart_time_tracking => {
                let longest = Duration::from_millis(longest.max(0) as u64);
                longest.min(self.restart_time_limit).as_secs() as f64
            }
            _ => self.restart_time.as_secs() as f64,
        }
    }

    /// Whole seconds, as upstream truncates (`Duration.toSeconds()`).
    pub fn catch_up_seconds(&self) -> f64 {
        self.catch_up.as_secs() as f64
    }
}

/// `job.autoscaler.` + key.
const PREFIX: &str = "job.autoscaler.";
/// The keys' names before upstream's operator 1.8, which upstream still reads where the new
/// key is not set (each option's fallback key).
const LEGACY_PREFIX: &str = "kubernetes.operator.job.autoscaler.";

/// Flink's memory sizes: a number and an optional unit (`b`, `k`/`kb`, `m`/`mb`, `g`/`gb`,
/// `t`/`tb`, powers of 1024), e.g. `16 gb`, `512m`, `1073741824`.
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a memory size; use e.g. 16 gb"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" | "bytes" => 1,
        "k" | "kb" | "kibibytes" => 1 << 10,
        "m" | "mb" | "mebibytes" => 1 << 20,
        "g" | "gb" | "gibibytes" => 1 << 30,
        "t" | "tb" | "tebibytes" => 1 << 40,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?}; use b, kb, mb, gb or tb"
            ));
        }
    };
    Ok((value * factor as f64).round() as u64)
}

/// Flink's duration syntax: a number and a unit (`30 s`, `5min`, `1h`, `100ms`); a bare
/// number is milliseconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = (&text[..split], text[split..].trim());
    let value: f64 = number.parse().map_err(|_| {
        format!("{text:?} is not a duration; use e.g. \"30 s\", \"5 min\" or \"1 h\"")
    })?;
    let millis = match unit.to_ascii_lowercase().as_str() {
        "" | "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => 1.0,
        "s" | "sec" | "secs" | "second" | "seconds" => 1e3,
        "m" | "min" | "mins" | "minute" | "minutes" => 60e3,
        "h" | "hour" | "hours" => 3_600e3,
        "d" | "day" | "days" => 86_400e3,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?}; use ms, s, min, h or d"
            ));
        }
    };
    Ok(Duration::from_millis((value * millis).round() as u64))
}

impl AutoscalerSettings {
    /// The settings from a job's flat Flink configuration, defaults for what it leaves out.
    /// Every problem is returned, each naming its key, the bad value and the fix; the checks
    /// are upstream's validator's.
    pub fn from_config(
        config: &std::collections::BTreeMap<String, String>,
    ) -> Result<AutoscalerSettings, Vec<String>> {
        let mut settings = AutoscalerSettings::default();
        let mut problems = Vec::new();
        // A legacy key counts where its new name is not set, and is reported under the new name.
        let value = |key: &str| {
            config
                .get(&format!("{PREFIX}{key}"))
                .or_else(|| config.get(&format!("{LEGACY_PREFIX}{key}")))
                .map(|v| v.trim().to_string())
        };
        let number = |key: &str, problems: &mut Vec<String>| -> Option<f64> {
            let text = value(key)?;
            match text.parse::<f64>() {
                Ok(v) if v.is_finite() => Some(v),
                _ => {
                    problems.push(format!("{PREFIX}{key}: {text:?} is not a number"));
                    None
                }
            }
        };
        if let Some(v) = number("utilization.target", &mut problems) {
            settings.utilization_target = v;
        }
        if let Some(v) = number("target.utilization.boundary", &mut problems) {
            settings.utilization_boundary = v;
        }
        settings.utilization_max = number("utilization.max", &mut problems);
        settings.utilization_min = number("utilization.min", &mut problems);
        if let Some(v) = number("scale-down.max-factor", &mut problems) {
            settings.scale_down_max_factor = v;
        }
        if let Some(v) = number("scale-up.max-factor", &mut problems) {
            settings.scale_up_max_factor = v;
        }
        if let Some(v) = number("scaling.effectiveness.threshold", &mut problems) {
            settings.effectiveness_threshold = v;
        }
        for (key, slot) in [
            (
                "observed-true-processing-rate.switch-threshold",
                &mut settings.observed_switch_threshold,
            ),
            (
                "observed-scalability.coefficient-min",
                &mut settings.observed_scalability_coefficient_min,
            ),
            (
                "memory.gc-pressure.threshold",
                &mut settings.gc_pressure_threshold,
            ),
            (
                "memory.heap-usage.threshold",
                &mut settings.heap_usage_threshold,
            ),
            (
                "memory.tuning.overhead",
                &mut settings.memory_tuning.overhead,
            ),
        ] {
            if let Some(v) = number(key, &mut problems) {
                *slot = v;
            }
        }
        for (key, slot) in [
            (
                "scaling.effectiveness.detection.enabled",
                &mut settings.effectiveness_detection,
            ),
            ("enabled", &mut settings.enabled),
            ("scaling.enabled", &mut settings.scaling_enabled),
            (
                "restart.time-tracking.enabled",
                &mut settings.restart_time_tracking,
            ),
            (
                "observed-scalability.enabled",
                &mut settings.observed_scalability,
            ),
            ("memory.tuning.enabled", &mut settings.memory_tuning.enabled),
            (
                "memory.tuning.maximize-managed-memory",
                &mut settings.memory_tuning.maximize_managed,
            ),
            (
                "memory.tuning.scale-down-compensation.enabled",
                &mut settings.memory_tuning.scale_down_compensation,
            ),
        ] {
            if let Some(text) = value(key) {
                match text.to_ascii_lowercase().as_str() {
                    "true" => *slot = true,
                    "false" => *slot = false,
                    _ => problems.push(format!("{PREFIX}{key}: {text:?} is not true or false")),
                }
            }
        }
        if let Some(text) = value("vertex.exclude.ids") {
            settings.excluded_vertices = text
                .split([',', ';'])
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(String::from)
                .collect();
        }
        if let Some(text) = value("excluded.periods") {
            match crate::limits::parse_periods(&text) {
                Ok(periods) => settings.excluded_periods = periods,
                Err(why) => problems.push(format!(
                    "{PREFIX}excluded.periods: {why}; use H:mm-H:mm, a Quartz cron expression, or both joined by &&"
                )),
            }
        }
        settings.quota_cpu = number("quota.cpu", &mut problems);
        if let Some(text) = value("quota.memory") {
            match parse_memory(&text) {
                Ok(bytes) => settings.quota_memory = Some(bytes),
                Err(why) => problems.push(format!("{PREFIX}quota.memory: {why}")),
            }
        }
        for (key, slot) in [
            ("history.max.count", &mut settings.history_max_count),
            (
                "observed-true-processing-rate.min-observations",
                &mut settings.observed_min_observations,
            ),
            (
                "observed-scalability.min-observations",
                &mut settings.observed_scalability_min_observations,
            ),
        ] {
            if let Some(text) = value(key) {
                match text.parse::<usize>() {
                    Ok(v) => *slot = v,
                    Err(_) => {
                        problems.push(format!("{PREFIX}{key}: {text:?} is not a whole number"))
                    }
                }
            }
        }
        if let Some(text) = value("metrics.busy-time.aggregator") {
            settings.busy_time_aggregator = match text.to_ascii_uppercase().as_str() {
                "MAX" => BusyTimeAggregator::Max,
                "MIN" => BusyTimeAggregator::Min,
                "AVG" => BusyTimeAggregator::Avg,
                _ => {
                    problems.push(format!(
                        "{PREFIX}metrics.busy-time.aggregator: {text:?} is not MAX, MIN or AVG"
                    ));
                    settings.busy_time_aggregator
                }
            };
        }
        for (key, slot) in [
            (
                "vertex.min-parallelism",
                &mut settings.vertex_min_parallelism,
            ),
            (
                "vertex.max-parallelism",
                &mut settings.vertex_max_parallelism,
            ),
        ] {
            if let Some(text) = value(key) {
                match text.parse::<u32>() {
                    Ok(v) if v >= 1 => *slot = v,
                    _ => problems.push(format!(
                        "{PREFIX}{key}: {text:?} is not a parallelism (a whole number, at least 1)"
                    )),
                }
            }
        }
        for (key, slot) in [
            ("catch-up.duration", &mut settings.catch_up),
            ("restart.time", &mut settings.restart_time),
            (
                "backlog-processing.lag-threshold",
                &mut settings.backlog_lag_threshold,
            ),
            ("scale-down.interval", &mut settings.scale_down_interval),
            ("metrics.window", &mut settings.metrics_window),
            (
                "stabilization.interval",
                &mut settings.stabilization_interval,
            ),
            (
                "restart.time-tracking.limit",
                &mut settings.restart_time_limit,
            ),
            (
                "observed-true-processing-rate.lag-threshold",
                &mut settings.observed_lag_threshold,
            ),
            ("history.max.age", &mut settings.history_max_age),
            (
                "flink.rest-client.timeout",
                &mut settings.rest_client_timeout,
            ),
            (
                "scaling.event.interval",
                &mut settings.scaling_event_interval,
            ),
        ] {
            if let Some(text) = value(key) {
                match parse_duration(&text) {
                    Ok(d) => *slot = d,
                    Err(why) => problems.push(format!("{PREFIX}{key}: {why}")),
                }
            }
        }
        // The deprecated key keeps its old, blocking behaviour, but only when set explicitly
        // and the key that supersedes it is not (upstream's `ParallelismAligner.resolve`).
        if value("scaling.parallelism-alignment.mode").is_none()
            && let Some(text) = value("scaling.key-group.partitions.adjust.mode")
        {
            settings.alignment = match text.trim().to_ascii_uppercase().as_str() {
                "EVENLY_SPREAD" => AlignmentMode::LegacyEvenlySpread,
                "MAXIMIZE_UTILISATION" => AlignmentMode::LegacyMaximizeUtilisation,
                _ => {
                    problems.push(format!("{PREFIX}scaling.key-group.partitions.adjust.mode: {text:?} is not EVENLY_SPREAD or MAXIMIZE_UTILISATION; better, use scaling.parallelism-alignment.mode"));
                    settings.alignment
                }
            };
        }
        if let Some(text) = value("scaling.parallelism-alignment.mode") {
            settings.alignment = match text.to_ascii_uppercase().replace('-', "_").as_str() {
                "BALANCED" => AlignmentMode::Balanced,
                "EVENLY_SPREAD" => AlignmentMode::EvenlySpread,
                "OFF" => AlignmentMode::Off,
                _ => {
                    problems.push(format!("{PREFIX}scaling.parallelism-alignment.mode: {text:?} is not BALANCED, EVENLY_SPREAD or OFF"));
                    settings.alignment
                }
            };
        }
        if settings.metrics_window.is_zero() {
            problems.push(format!(
                "{PREFIX}metrics.window: must be longer than 0; use e.g. 10 min"
            ));
        }
        let target = settings.utilization_target;
        if !(0.0..=1.0).contains(&target) {
            problems.push(format!(
                "{PREFIX}utilization.target: {target} is not within [0, 1]; use e.g. 0.7"
            ));
        }
        if let Some(max) = settings.utilization_max
            && !(target..=1.0).contains(&max)
        {
            problems.push(format!(
                "{PREFIX}utilization.max: {max} is not within [utilization.target = {target}, 1]"
            ));
        }
        if let Some(min) = settings.utilization_min
            && !(0.0..=target).contains(&min)
        {
            problems.push(format!(
                "{PREFIX}utilization.min: {min} is not within [0, utilization.target = {target}]"
            ));
        }
        if !(0.0..=1.0).contains(&settings.scale_down_max_factor) {
            problems.push(format!(
                "{PREFIX}scale-down.max-factor: {} is not within [0, 1]",
                settings.scale_down_max_factor
            ));
        }
        if settings.scale_up_max_factor < 0.0 {
            problems.push(format!(
                "{PREFIX}scale-up.max-factor: {} is negative",
                settings.scale_up_max_factor
            ));
        }
        let coefficient_min = settings.observed_scalability_coefficient_min;
        if !(coefficient_min > 0.0 && coefficient_min <= 1.0) {
            problems.push(format!(
                "{PREFIX}observed-scalability.coefficient-min: {coefficient_min} is not within (0, 1]; use e.g. 0.5"
            ));
        }
        for (key, threshold) in [
            (
                "memory.gc-pressure.threshold",
                settings.gc_pressure_threshold,
            ),
            ("memory.heap-usage.threshold", settings.heap_usage_threshold),
        ] {
            if !(0.0..=1.0).contains(&threshold) {
                problems.push(format!(
                    "{PREFIX}{key}: {threshold} is not within [0, 1] (1 disables the check)"
                ));
            }
        }
        if settings.memory_tuning.overhead < 0.0 {
            problems.push(format!(
                "{PREFIX}memory.tuning.overhead: {} is negative; use e.g. 0.2 (20% over the observed usage)",
                settings.memory_tuning.overhead
            ));
        }
        if settings.vertex_min_parallelism > settings.vertex_max_parallelism {
            problems.push(format!(
                "{PREFIX}vertex.min-parallelism: {} is above vertex.max-parallelism ({})",
                settings.vertex_min_parallelism, settings.vertex_max_parallelism
            ));
        }
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(problems)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (format!("{PREFIX}{k}"), v.to_string()))
            .collect()
    }

    #[test]
    fn flink_durations_are_read_with_their_units() {
        assert_eq!(parse_duration("30 s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5min"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1 h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250"), Ok(Duration::from_millis(250)));
        assert!(
            parse_duration("5 fortnights")
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(
            parse_duration("soon")
                .unwrap_err()
                .contains("is not a duration")
        );
    }

    #[test]
    fn the_legacy_keys_count_where_the_new_ones_are_not_set() {
        let legacy = |key: &str, value: &str| {
            (
                format!("kubernetes.operator.job.autoscaler.{key}"),
                value.to_string(),
            )
        };
        let config: BTreeMap<String, String> = [
            legacy("utilization.target", "0.5"),
            legacy("scale-up.max-factor", "2"),
            (
                "job.autoscaler.scale-up.max-factor".to_string(),
                "3".to_string(),
            ),
            legacy("vertex.max-parallelism", "many"),
        ]
        .into_iter()
        .collect();
        let problems = AutoscalerSettings::from_config(&config).unwrap_err();
        assert_eq!(
            problems,
            vec![
                "job.autoscaler.vertex.max-parallelism: \"many\" is not a parallelism (a whole number, at least 1)"
            ],
            "a bad legacy value is reported under the new name"
        );
        let mut config = config;
        config.remove("kubernetes.operator.job.autoscaler.vertex.max-parallelism");
        let settings = AutoscalerSettings::from_config(&config).unwrap();
        assert_eq!(settings.utilization_target, 0.5);
        assert_eq!(settings.scale_up_max_factor, 3.0, "the new key wins");
    }

    #[test]
    fn the_event_interval_and_the_rest_client_timeout_have_upstreams_defaults() {
        let defaults = AutoscalerSettings::default();
        assert_eq!(defaults.scaling_event_interval, Duration::from_secs(1800));
        assert_eq!(defaults.rest_client_timeout, Duration::from_secs(10));
        let set = AutoscalerSettings::from_config(&config(&[
            ("scaling.event.interval", "5 min"),
            ("flink.rest-client.timeout", "3 s"),
        ]))
        .unwrap();
        assert_eq!(set.scaling_event_interval, Duration::from_secs(300));
        assert_eq!(set.rest_client_timeout, Duration::from_secs(3));
    }

    #[test]
    fn the_deprecated_adjust_mode_counts_only_when_set_and_not_superseded() {
        let of = |pairs: &[(&str, &str)]| AutoscalerSettings::from_config(&config(pairs));
        assert_eq!(of(&[]).unwrap().alignment, AlignmentMode::Balanced);
        let legacy = (
            "scaling.key-group.partitions.adjust.mode",
            "MAXIMIZE_UTILISATION",
        );
        assert_eq!(
            of(&[legacy]).unwrap().alignment,
            AlignmentMode::LegacyMaximizeUtilisation
        );
        assert_eq!(
            of(&[("scaling.key-group.partitions.adjust.mode", "evenly_spread")])
                .unwrap()
                .alignment,
            AlignmentMode::LegacyEvenlySpread,
            "any case, as Flink reads an enum"
        );
        assert_eq!(
            of(&[
                ("scaling.key-group.partitions.adjust.mode", "whatever"),
                ("scaling.parallelism-alignment.mode", "BALANCED")
            ])
            .unwrap()
            .alignment,
            AlignmentMode::Balanced,
            "superseded, the deprecated key is not read at all"
        );
        assert_eq!(
            of(&[legacy, ("scaling.parallelism-alignment.mode", "OFF")])
                .unwrap()
                .alignment,
            AlignmentMode::Off,
            "the key that supersedes it wins"
        );
        let problems = of(&[("scaling.key-group.partitions.adjust.mode", "BALANCED")]).unwrap_err();
        assert!(
            problems.iter().any(|p| p.contains(
                "scaling.key-group.partitions.adjust.mode: \"BALANCED\" is not EVENLY_SPREAD or MAXIMIZE_UTILISATION"
            )),
            "{problems:?}"
        );
    }

    #[test]
    fn settings_come_from_the_job_configuration_with_upstreams_defaults() {
        assert_eq!(
            AutoscalerSettings::from_config(&BTreeMap::new()),
            Ok(AutoscalerSettings::default())
        );
        let settings = AutoscalerSettings::from_config(&config(&[
            ("utilization.target", "0.6"),
            ("catch-up.duration", "10 min"),
            ("vertex.max-parallelism", "24"),
            ("scaling.parallelism-alignment.mode", "evenly-spread"),
        ]))
        .unwrap();
        assert_eq!(settings.utilization_target, 0.6);
        assert_eq!(settings.catch_up, Duration::from_secs(600));
        assert_eq!(settings.vertex_max_parallelism, 24);
        assert_eq!(settings.alignment, AlignmentMode::EvenlySpread);
        let settings = AutoscalerSettings::from_config(&config(&[
            ("enabled", "true"),
            ("scaling.enabled", "false"),
            ("metrics.window", "30 s"),
            ("stabilization.interval", "5s"),
            ("scale-down.interval", "0"),
            ("vertex.exclude.ids", "a1, b2;c3"),
            ("restart.time-tracking.enabled", "true"),
        ]))
        .unwrap();
        assert!(settings.enabled && !settings.scaling_enabled);
        assert_eq!(settings.metrics_window, Duration::from_secs(30));
        assert_eq!(settings.stabilization_interval, Duration::from_secs(5));
        assert_eq!(settings.scale_down_interval, Duration::ZERO);
        assert_eq!(settings.excluded_vertices, ["a1", "b2", "c3"]);
        let quota = AutoscalerSettings::from_config(&config(&[
            ("quota.cpu", "8"),
            ("quota.memory", "16 gb"),
            ("excluded.periods", "22:00-6:00; * * * ? * SAT,SUN"),
        ]))
        .unwrap();
        assert_eq!(quota.quota_cpu, Some(8.0));
        assert_eq!(quota.quota_memory, Some(16 << 30));
        assert_eq!(quota.excluded_periods.len(), 2);
        let bad = AutoscalerSettings::from_config(&config(&[
            ("quota.memory", "lots"),
            ("excluded.periods", "every night"),
        ]))
        .unwrap_err();
        assert_eq!(bad.len(), 2, "{bad:?}");
        assert!(
            bad.iter()
                .any(|p| p.starts_with("job.autoscaler.excluded.periods:"))
        );
        let memory_and_rates = AutoscalerSettings::from_config(&config(&[
            ("memory.gc-pressure.threshold", "0.3"),
            ("memory.heap-usage.threshold", "0.9"),
            ("observed-scalability.enabled", "true"),
            ("observed-scalability.min-observations", "5"),
            ("observed-scalability.coefficient-min", "0.25"),
            ("observed-true-processing-rate.switch-threshold", "0.3"),
            ("observed-true-processing-rate.min-observations", "4"),
            ("metrics.busy-time.aggregator", "avg"),
            ("memory.tuning.enabled", "true"),
            ("memory.tuning.overhead", "0.5"),
            ("memory.tuning.maximize-managed-memory", "true"),
            ("memory.tuning.scale-down-compensation.enabled", "false"),
        ]))
        .unwrap();
        assert_eq!(
            memory_and_rates.memory_tuning,
            crate::memory::TuningSettings {
                enabled: true,
                overhead: 0.5,
                maximize_managed: true,
                scale_down_compensation: false,
            }
        );
        assert_eq!(
            (
                memory_and_rates.gc_pressure_threshold,
                memory_and_rates.heap_usage_threshold
            ),
            (0.3, 0.9)
        );
        assert!(memory_and_rates.observed_scalability);
        assert_eq!(memory_and_rates.observed_scalability_min_observations, 5);
        assert_eq!(memory_and_rates.observed_scalability_coefficient_min, 0.25);
        assert_eq!(memory_and_rates.observed_switch_threshold, 0.3);
        assert_eq!(memory_and_rates.observed_min_observations, 4);
        assert_eq!(
            memory_and_rates.busy_time_aggregator,
            BusyTimeAggregator::Avg
        );
        let bad = AutoscalerSettings::from_config(&config(&[
            ("memory.heap-usage.threshold", "90"),
            ("observed-scalability.coefficient-min", "0"),
            ("metrics.busy-time.aggregator", "median"),
        ]))
        .unwrap_err();
        assert_eq!(bad.len(), 3, "{bad:?}");
        assert!(bad.contains(
            &"job.autoscaler.memory.heap-usage.threshold: 90 is not within [0, 1] (1 disables the check)"
                .to_string()
        ));
        assert_eq!(settings.restart_seconds(&[]), 300.0, "nothing measured yet");
        assert_eq!(settings.restart_seconds(&[4_900, 12_345]), 12.0);
        assert_eq!(
            settings.restart_seconds(&[3_600_000]),
            900.0,
            "capped at the limit"
        );
    }

    #[test]
    fn every_bad_setting_is_named_with_its_fix() {
        let problems = AutoscalerSettings::from_config(&config(&[
            ("utilization.target", "1.5"),
            ("utilization.min", "abc"),
            ("vertex.min-parallelism", "0"),
            ("restart.time", "5 fortnights"),
            ("scaling.parallelism-alignment.mode", "random"),
        ]))
        .unwrap_err();
        assert_eq!(problems.len(), 5, "{problems:#?}");
        assert!(
            problems
                .iter()
                .any(|p| p == "job.autoscaler.utilization.min: \"abc\" is not a number")
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("job.autoscaler.vertex.min-parallelism: \"0\""))
        );
        assert!(
            problems
                .iter()
                .any(|p| p
                    .starts_with("job.autoscaler.restart.time: \"5 fortnights\": unknown unit"))
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("alignment.mode: \"random\""))
        );
        assert!(
            problems.iter().any(|p| p
                == "job.autoscaler.utilization.target: 1.5 is not within [0, 1]; use e.g. 0.7")
        );
        let problems = AutoscalerSettings::from_config(&config(&[
            ("utilization.target", "0.7"),
            ("utilization.max", "0.5"),
        ]))
        .unwrap_err();
        assert_eq!(
            problems,
            vec!["job.autoscaler.utilization.max: 0.5 is not within [utilization.target = 0.7, 1]"]
        );
    }
}
