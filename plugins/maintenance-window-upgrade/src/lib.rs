//! Upgrade strategy for production tenants: spec changes roll out only inside maintenance
//! windows, stateful jobs upgrade through a fresh savepoint, and a job that has state is never
//! upgraded statelessly by accident.
//!
//! Config (JSON, every field optional):
//! ```json
//! { "utcOffsetMinutes": 60,
//!   "windows": [{ "days": ["sat", "sun"], "from": "02:00", "to": "05:00" }],
//!   "forceSavepoint": true,
//!   "refuseStatelessWithState": true }
//! ```
//! Without `windows`, upgrades may run at any time. Times are local (UTC plus
//! `utcOffsetMinutes`); a window whose `to` is before its `from` ends the next day.

use flink_policy_sdk::parse_config;
use flink_policy_sdk::upgrade::{UpgradeDecision, UpgradeInput, UpgradeMode, UpgradePlan, Wait};
use serde::Deserialize;

const MINUTE_MS: i64 = 60_000;
const DAY_MINUTES: i64 = 24 * 60;
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    utc_offset_minutes: i32,
    #[serde(default)]
    windows: Vec<RawWindow>,
    #[serde(default = "yes")]
    force_savepoint: bool,
    #[serde(default = "yes")]
    refuse_stateless_with_state: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawWindow {
    #[serde(default)]
    days: Vec<String>,
    from: String,
    to: String,
}

#[derive(Debug)]
pub struct Config {
    utc_offset_minutes: i64,
    windows: Vec<Window>,
    force_savepoint: bool,
    refuse_stateless_with_state: bool,
}

/// A weekly window: the days it may start on (bit 0 = Sunday) and its minutes of the day.
#[derive(Debug, Clone, Copy)]
struct Window {
    days: u8,
    from: i64,
    length: i64,
}

impl Config {
    pub fn parse(text: &str) -> Result<Config, String> {
        let raw: RawConfig = parse_config(text)?;
        let mut windows = Vec::new();
        for (i, w) in raw.windows.iter().enumerate() {
            let field = |name: &str| format!("config.windows[{i}].{name}");
            let from = minutes(&w.from).map_err(|e| format!("{}: {e}", field("from")))?;
            let to = minutes(&w.to).map_err(|e| format!("{}: {e}", field("to")))?;
            let mut days = 0u8;
            for day in &w.days {
                let Some(index) = DAYS.iter().position(|d| day.eq_ignore_ascii_case(d)) else {
                    return Err(format!(
                        "{}: unknown day {day:?}; use sun, mon, tue, wed, thu, fri or sat",
                        field("days")
                    ));
                };
                days |= 1 << index;
            }
            let length = (to - from).rem_euclid(DAY_MINUTES);
            if length == 0 {
                return Err(format!("{}: the window is empty (from = to)", field("to")));
            }
            windows.push(Window {
                days: if days == 0 { 0x7f } else { days },
                from,
                length,
            });
        }
        Ok(Config {
            utc_offset_minutes: i64::from(raw.utc_offset_minutes),
            windows,
            force_savepoint: raw.force_savepoint,
            refuse_stateless_with_state: raw.refuse_stateless_with_state,
        })
    }

    /// None when `now` is inside a window, else the start of the next one (epoch ms).
    fn next_window(&self, now_epoch_ms: i64) -> Option<i64> {
        if self.windows.is_empty() {
            return None;
        }
        let local = now_epoch_ms.div_euclid(MINUTE_MS) + self.utc_offset_minutes;
        let day = local.div_euclid(DAY_MINUTES);
        let mut next: Option<i64> = None;
        // Yesterday's window may still be open; the next start is at most a week away.
        for start_day in day - 1..=day + 7 {
            let weekday = (start_day + 4).rem_euclid(7); // 1970-01-01 was a Thursday
            for w in &self.windows {
                if w.days & (1 << weekday) == 0 {
                    continue;
                }
                let start = start_day * DAY_MINUTES + w.from;
                if (start..start + w.length).contains(&local) {
                    return None;
                }
                if start > local && next.is_none_or(|n| start < n) {
                    next = Some(start);
                }
            }
        }
        next.map(|start| (start - self.utc_offset_minutes) * MINUTE_MS)
    }
}

fn minutes(text: &str) -> Result<i64, String> {
    let parsed = text.split_once(':').and_then(|(h, m)| {
        let (h, m) = (h.parse::<i64>().ok()?, m.parse::<i64>().ok()?);
        ((0..24).contains(&h) && (0..60).contains(&m)).then_some(h * 60 + m)
    });
    parsed.ok_or_else(|| format!("{text:?} is not a time of day; use HH:MM, e.g. \"02:30\""))
}

/// Whether the job has state to lose: a savepoint or a checkpoint is known (by path, or only by
/// time when the operator has not looked the path up), or the running spec is stateful.
fn has_state(input: &UpgradeInput) -> bool {
    let s = &input.snapshots;
    s.last_savepoint.is_some()
        || s.last_checkpoint.is_some()
        || s.last_savepoint_epoch_ms.is_some()
        || s.last_checkpoint_epoch_ms.is_some()
        || serde_json::from_str::<serde_json::Value>(&input.old_spec).is_ok_and(|spec| {
            matches!(
                spec.pointer("/job/upgradeMode").and_then(|m| m.as_str()),
                Some("savepoint" | "last-state")
            )
        })
}

/// The decision for one input: pure, so unit tests call it natively.
pub fn decide(input: &UpgradeInput, config: &Config) -> UpgradeDecision {
    if input.requested_mode == UpgradeMode::Stateless
        && config.refuse_stateless_with_state
        && has_state(input)
    {
        return UpgradeDecision::Refuse(
            "the job has state (a savepoint or checkpoint) and the new spec asks for a stateless \
             upgrade, which would drop it; set job.upgradeMode to savepoint or last-state, or \
             set refuseStatelessWithState: false in this tenant's policy"
                .into(),
        );
    }
    if let Some(until) = config.next_window(input.now_epoch_ms) {
        return UpgradeDecision::WaitUntil(Wait {
            until_epoch_ms: until,
            reason: "outside the tenant's maintenance windows; the upgrade starts when the next \
                     window opens"
                .into(),
        });
    }
    let stateful = input.requested_mode != UpgradeMode::Stateless;
    let (mode, reason) = if stateful && config.force_savepoint {
        (
            UpgradeMode::Savepoint,
            "stateful job: upgrade through a fresh savepoint",
        )
    } else {
        (input.requested_mode, "the mode the spec asks for")
    };
    UpgradeDecision::Proceed(UpgradePlan {
        mode,
        savepoint_first: false,
        reason: reason.into(),
    })
}

flink_policy_sdk::upgrade_plugin!(config: Config::parse, decide: decide);

#[cfg(test)]
mod tests {
    use super::*;
    use flink_policy_sdk::ResourceRef;
    use flink_policy_sdk::upgrade::SnapshotInfo;

    /// 2024-06-01 00:00 UTC, a Saturday.
    const SATURDAY: i64 = 1_717_200_000_000;
    const HOUR: i64 = 3_600_000;

    fn input(now: i64, mode: UpgradeMode, checkpoint: Option<&str>) -> UpgradeInput {
        UpgradeInput {
            resource: ResourceRef {
                kind: "FlinkDeployment".into(),
                namespace: "team-a".into(),
                name: "orders".into(),
                tenant: "team-a".into(),
                labels: vec![],
            },
            now_epoch_ms: now,
            old_spec: "{}".into(),
            new_spec: "{}".into(),
            requested_mode: mode,
            job_state: "RUNNING".into(),
            snapshots: SnapshotInfo {
                last_savepoint: None,
                last_savepoint_epoch_ms: None,
                last_checkpoint: checkpoint.map(Into::into),
                last_checkpoint_epoch_ms: None,
            },
            config: String::new(),
        }
    }

    fn config(text: &str) -> Config {
        Config::parse(text).unwrap()
    }

    const WEEKEND_NIGHTS: &str =
        r#"{"windows": [{"days": ["sat", "sun"], "from": "02:00", "to": "05:00"}]}"#;

    #[test]
    fn inside_a_window_a_stateful_job_upgrades_through_a_savepoint() {
        let d = decide(
            &input(
                SATURDAY + 3 * HOUR,
                UpgradeMode::LastState,
                Some("file:///c/1"),
            ),
            &config(WEEKEND_NIGHTS),
        );
        assert!(
            matches!(
                d,
                UpgradeDecision::Proceed(UpgradePlan {
                    mode: UpgradeMode::Savepoint,
                    ..
                })
            ),
            "{d:?}"
        );
    }

    #[test]
    fn outside_a_window_it_waits_for_the_next_one() {
        // Saturday 06:00 -> Sunday 02:00.
        let d = decide(
            &input(SATURDAY + 6 * HOUR, UpgradeMode::Savepoint, None),
            &config(WEEKEND_NIGHTS),
        );
        assert!(
            matches!(d, UpgradeDecision::WaitUntil(Wait { until_epoch_ms, .. }) if until_epoch_ms == SATURDAY + 26 * HOUR),
            "{d:?}"
        );
        // Sunday 06:00 -> next Saturday 02:00.
        let d = decide(
            &input(SATURDAY + 30 * HOUR, UpgradeMode::Savepoint, None),
            &config(WEEKEND_NIGHTS),
        );
        assert!(
            matches!(d, UpgradeDecision::WaitUntil(Wait { until_epoch_ms, .. }) if until_epoch_ms == SATURDAY + 7 * 24 * HOUR + 2 * HOUR),
            "{d:?}"
        );
    }

    #[test]
    fn a_window_over_midnight_in_local_time() {
        // 23:00-01:00 at UTC+2 is 21:00-23:00 UTC.
        let cfg =
            config(r#"{"utcOffsetMinutes": 120, "windows": [{"from": "23:00", "to": "01:00"}]}"#);
        let at = |hour| {
            decide(
                &input(SATURDAY + hour * HOUR, UpgradeMode::Savepoint, None),
                &cfg,
            )
        };
        assert!(matches!(at(22), UpgradeDecision::Proceed(_)));
        assert!(
            matches!(at(23), UpgradeDecision::WaitUntil(Wait { until_epoch_ms, .. }) if until_epoch_ms == SATURDAY + 45 * HOUR)
        );
    }

    #[test]
    fn a_stateless_upgrade_of_a_job_with_state_is_refused() {
        let d = decide(
            &input(
                SATURDAY + 3 * HOUR,
                UpgradeMode::Stateless,
                Some("file:///c/1"),
            ),
            &config("{}"),
        );
        assert!(
            matches!(&d, UpgradeDecision::Refuse(r) if r.contains("would drop it")),
            "{d:?}"
        );
        let d = decide(
            &input(SATURDAY, UpgradeMode::Stateless, None),
            &config("{}"),
        );
        assert!(matches!(
            d,
            UpgradeDecision::Proceed(UpgradePlan {
                mode: UpgradeMode::Stateless,
                ..
            })
        ));
    }

    #[test]
    fn bad_config_names_the_field() {
        let err = Config::parse(
            r#"{"windows": [{"days": ["saturday"], "from": "02:00", "to": "05:00"}]}"#,
        )
        .unwrap_err();
        assert!(
            err.starts_with("config.windows[0].days: unknown day"),
            "{err}"
        );
        let err = Config::parse(r#"{"windows": [{"from": "2am", "to": "05:00"}]}"#).unwrap_err();
        assert!(err.starts_with("config.windows[0].from"), "{err}");
    }
}
