//! Upstream's per-resource rate limiter (`kubernetes.operator.rate-limiter.limit` reconciles per
//! `.refresh-period`; JOSDK's `LinearRateLimiter`): a resource reconciled that often within its
//! current period waits for the period's end. It bounds what one resource can take of the
//! operator when something keeps waking it (a conflict loop, a flapping watch). A pure protocol
//! with the clock passed in; the controller asks it before each reconcile.
//!
//! Off unless set, where upstream limits to 5 per 15 s: upstream's framework does not wake a
//! resource for the operator's own status writes, this operator does (each write is seen once
//! more), so the same count would hold up every step of an upgrade and a user's change right
//! after one.

use std::collections::HashMap;
use std::time::Duration;

/// How many reconciles of one resource may start within each period; `limit` 0 means none
/// is limited (upstream's `<= 0`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: u32,
    pub period: Duration,
}

impl RateLimit {
    /// No limit (the default here).
    pub const OFF: RateLimit = RateLimit {
        limit: 0,
        period: Duration::from_secs(15),
    };
    /// Upstream's default: 5 reconciles per 15 s.
    pub const UPSTREAM: RateLimit = RateLimit {
        limit: 5,
        period: Duration::from_secs(15),
    };
}

impl Default for RateLimit {
    fn default() -> Self {
        Self::OFF
    }
}

/// The current period of each resource reconciled within its last period.
#[derive(Debug, Default)]
pub struct Windows {
    windows: HashMap<String, Window>,
    /// When expired windows are dropped next (ms).
    next_sweep_ms: i64,
}

#[derive(Debug)]
struct Window {
    started_ms: i64,
    count: u32,
}

impl Windows {
    /// A reconcile of `key` at `now_ms`: `Ok` when it goes ahead (and is counted), `Err(wait)`
    /// when the resource has had its `limit` reconciles in this period; it may go ahead after
    /// `wait`.
    pub fn admit(&mut self, key: &str, limit: RateLimit, now_ms: i64) -> Result<(), Duration> {
        let period_ms = limit.period.as_millis() as i64;
        self.sweep(period_ms, now_ms);
        if limit.limit == 0 {
            return Ok(());
        }
        let window = self.windows.entry(key.to_string()).or_insert(Window {
            started_ms: now_ms,
            count: 0,
        });
        if now_ms - window.started_ms >= period_ms {
            *window = Window {
                started_ms: now_ms,
                count: 0,
            };
        }
        if window.count >= limit.limit {
            let left = window.started_ms + period_ms - now_ms;
            return Err(Duration::from_millis(left.max(1) as u64));
        }
        window.count += 1;
        Ok(())
    }

    /// Forgets a resource that is gone.
    pub fn forget(&mut self, key: &str) {
        self.windows.remove(key);
    }

    /// How many resources are remembered (those reconciled within their last period).
    pub fn len(&self) -> usize {
        self.windows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// Once per period, drops the windows that ended: a quiet resource costs nothing here.
    fn sweep(&mut self, period_ms: i64, now_ms: i64) {
        if now_ms < self.next_sweep_ms {
            return;
        }
        self.windows
            .retain(|_, w| now_ms - w.started_ms < period_ms);
        self.next_sweep_ms = now_ms + period_ms;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resource_gets_its_limit_per_period_then_waits_for_the_periods_end() {
        let limit = RateLimit::UPSTREAM;
        let mut windows = Windows::default();
        for at in [0, 1_000, 2_000, 3_000, 4_000] {
            assert_eq!(windows.admit("d/a", limit, at), Ok(()), "at {at}");
        }
        assert_eq!(
            windows.admit("d/a", limit, 5_000),
            Err(Duration::from_secs(10))
        );
        // Another resource is not held by it.
        assert_eq!(windows.admit("d/b", limit, 5_000), Ok(()));
        // A new period: the resource goes ahead again.
        assert_eq!(windows.admit("d/a", limit, 15_000), Ok(()));
    }

    #[test]
    fn no_limit_admits_everything_and_remembers_nothing() {
        let mut windows = Windows::default();
        for at in 0..100 {
            assert_eq!(windows.admit("d/a", RateLimit::OFF, at), Ok(()));
        }
        assert!(windows.is_empty());
    }

    #[test]
    fn quiet_and_forgotten_resources_are_not_kept() {
        let limit = RateLimit::UPSTREAM;
        let mut windows = Windows::default();
        for i in 0..1_000 {
            windows
                .admit(&format!("d/{i}"), limit, 0)
                .expect("admitted");
        }
        assert_eq!(windows.len(), 1_000);
        windows.forget("d/0");
        assert_eq!(windows.len(), 999);
        // A period later, one reconcile of another resource sweeps the ended windows.
        windows.admit("d/busy", limit, 15_000).expect("admitted");
        assert_eq!(windows.len(), 1);
    }
}
