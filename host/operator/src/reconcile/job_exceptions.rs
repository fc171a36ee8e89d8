//! `JobException` events from Flink's exception history, as upstream's observer reports them:
//! each exception newer than the last one reported becomes a Warning event with the first
//! lines of its stack trace, newest first, at most
//! `kubernetes.operator.events.exceptions.limit-per-reconciliation` (10) per reconcile, each
//! with at most `...events.exceptions.stacktrace-lines` (5) lines. Pure: the history and what
//! was reported before in, the events and the new mark out.
//!
//! What was reported is kept in the operator's memory, per resource, as upstream keeps it. A
//! replica that first looks at a job reports the exceptions since it started: after an operator
//! restart, exceptions from before are not reported again (nor those of the minutes no operator
//! ran); a replica that takes over a shard reports again what the previous owner reported
//! since the new one started (upstream reads back the events it finds instead).

use super::{Note, Reason};
use flink_api::config::ConfigOption;
use std::collections::BTreeMap;

/// Upstream's keys; read from the operator's defaults under the resource's configuration.
pub const LIMIT: ConfigOption = ConfigOption::new(
    "kubernetes.operator.events.exceptions.limit-per-reconciliation",
    &[],
);
pub const STACKTRACE_LINES: ConfigOption = ConfigOption::new(
    "kubernetes.operator.events.exceptions.stacktrace-lines",
    &[],
);

/// The most events per reconcile and stack-trace lines per event, whatever is configured.
const MAX_EVENTS: usize = 50;
const MAX_LINES: usize = 50;

/// One exception of a job's history.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObservedException {
    /// When Flink recorded it (ms since the epoch).
    pub timestamp: i64,
    pub stacktrace: String,
    pub task_name: Option<String>,
}

/// A job's exception history, as its JobManager answered.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObservedExceptions {
    pub job_id: String,
    pub entries: Vec<ObservedException>,
}

/// What was reported of a job's exceptions: everything up to `until_ms`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reported {
    pub job_id: String,
    pub until_ms: i64,
}

/// The events to publish for `observed`, and what is reported after them.
pub fn report(
    observed: &ObservedExceptions,
    before: Option<&Reported>,
    operator_started_ms: i64,
    config: &BTreeMap<String, String>,
) -> (Vec<Note>, Reported) {
    let number = |option: &ConfigOption, default: usize| {
        option
            .in_flat(config)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(default)
    };
    // Capped: the history is what a tenant's JobManager answers.
    let (limit, lines) = (
        number(&LIMIT, 10).min(MAX_EVENTS),
        number(&STACKTRACE_LINES, 5).min(MAX_LINES),
    );
    let newest = observed.entries.iter().map(|e| e.timestamp).max();
    let since = match before {
        Some(before) if before.job_id == observed.job_id => before.until_ms,
        // A new job's exceptions are all new.
        Some(_) => i64::MIN,
        // First look: those since this operator started.
        None => operator_started_ms,
    };
    let mut new: Vec<&ObservedException> = observed
        .entries
        .iter()
        .filter(|e| e.timestamp > since)
        .collect();
    new.sort_by_key(|e| std::cmp::Reverse(e.timestamp));
    let notes = new
        .iter()
        .take(limit)
        .map(|e| Note::warning(Reason::JobException, message(e, lines)))
        .collect();
    let until_ms = newest.map_or(since, |n| n.max(since));
    (
        notes,
        Reported {
            job_id: observed.job_id.clone(),
            until_ms,
        },
    )
}

/// The first `lines` lines of the stack trace, and how many more there are.
fn message(exception: &ObservedException, lines: usize) -> String {
    let all: Vec<&str> = exception.stacktrace.lines().collect();
    let mut text = all
        .iter()
        .take(lines)
        .copied()
        .collect::<Vec<_>>()
        .join("\n");
    if all.len() > lines {
        text.push_str(&format!("\n... ({} more lines)", all.len() - lines));
    }
    if let Some(task) = &exception.task_name {
        text = format!("{text}\n(task: {task})");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exception(timestamp: i64, lines: usize) -> ObservedException {
        ObservedException {
            timestamp,
            stacktrace: (0..lines)
                .map(|i| format!("line {i} of {timestamp}"))
                .collect::<Vec<_>>()
                .join("\n"),
            task_name: None,
        }
    }

    fn history(job: &str, timestamps: &[i64]) -> ObservedExceptions {
        ObservedExceptions {
            job_id: job.into(),
            entries: timestamps.iter().map(|t| exception(*t, 8)).collect(),
        }
    }

    #[test]
    fn the_first_look_reports_what_came_since_the_operator_started_then_each_new_one_once() {
        let config = BTreeMap::new();
        let (notes, mark) = report(&history("j", &[10, 20]), None, 15, &config);
        let messages: Vec<&str> = notes.iter().map(|n| n.message.as_str()).collect();
        assert_eq!(messages.len(), 1, "not the one from before the start");
        assert!(messages[0].starts_with("line 0 of 20"), "{messages:?}");
        assert_eq!(mark.until_ms, 20);
        let (notes, mark) = report(&history("j", &[10, 20, 30, 40]), Some(&mark), 15, &config);
        let messages: Vec<&str> = notes.iter().map(|n| n.message.as_str()).collect();
        assert_eq!(messages.len(), 2);
        assert!(messages[0].starts_with("line 0 of 40"), "{messages:?}");
        assert!(messages[1].starts_with("line 0 of 30"), "{messages:?}");
        assert!(
            notes
                .iter()
                .all(|n| n.warning && n.reason == Reason::JobException)
        );
        let (notes, _) = report(&history("j", &[10, 20, 30, 40]), Some(&mark), 15, &config);
        assert!(notes.is_empty(), "nothing twice");
    }

    #[test]
    fn the_limits_cut_the_events_and_their_stack_traces_and_a_new_job_starts_over() {
        let config = BTreeMap::from([
            (LIMIT.key.to_string(), "2".to_string()),
            (STACKTRACE_LINES.key.to_string(), "3".to_string()),
        ]);
        let mark = Reported {
            job_id: "old".into(),
            until_ms: 1_000,
        };
        let (notes, mark) = report(&history("new", &[1, 2, 3]), Some(&mark), 15, &config);
        assert_eq!(notes.len(), 2, "at most the limit");
        assert_eq!(
            notes[0].message,
            "line 0 of 3\nline 1 of 3\nline 2 of 3\n... (5 more lines)"
        );
        assert_eq!(mark.until_ms, 3, "the rest are not reported later either");
    }

    #[test]
    fn a_tenants_flood_of_exceptions_is_capped() {
        let config = BTreeMap::from([
            (LIMIT.key.to_string(), "1000000000".to_string()),
            (STACKTRACE_LINES.key.to_string(), "1000000".to_string()),
        ]);
        let timestamps: Vec<i64> = (1..=500).collect();
        let mut flood = history("j", &timestamps);
        flood.entries[499].stacktrace = "x\n".repeat(10_000);
        let (notes, _) = report(&flood, None, 0, &config);
        assert_eq!(notes.len(), MAX_EVENTS);
        assert!(
            notes
                .iter()
                .all(|n| n.message.lines().count() <= MAX_LINES + 1)
        );
    }
}
