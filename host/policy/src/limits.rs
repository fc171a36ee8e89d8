//! What one plugin call may use. Every limit is on by default; a tenant's binding may set its
//! own, which the host takes only up to the operator's maxima (`Limits::within`).

use crate::model::ExtensionPoint;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Limits {
    /// Wasm instructions (roughly) per call: the deterministic CPU budget.
    pub fuel: u64,
    /// Wall-clock deadline for the guest's own code (epoch interruption, 10 ms ticks).
    #[serde(with = "millis")]
    pub deadline: Duration,
    /// The outer timeout around the whole call (instantiation included); a little longer than
    /// the deadline so the deadline, which says more, normally fires first.
    #[serde(with = "millis")]
    pub timeout: Duration,
    /// Largest size of any one linear memory, in bytes.
    pub memory_bytes: u64,
    /// Largest answer (the sum of its strings and lists), in bytes.
    pub output_bytes: u64,
    /// Log lines kept per call; further lines are dropped and counted.
    pub log_lines: u32,
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

const MIB: u64 = 1 << 20;

impl Limits {
    /// The defaults per extension point. Rendering gets more time: pod templates are larger
    /// inputs than a job's metrics. The fuel defaults are about 10x what the example plugins
    /// use on realistic inputs (measured by `cargo bench -p flink-policy`).
    pub fn default_for(point: ExtensionPoint) -> Limits {
        let (deadline_ms, fuel) = match point {
            ExtensionPoint::Scaling | ExtensionPoint::Upgrade => (250, 50_000_000),
            ExtensionPoint::PodTemplate => (500, 100_000_000),
        };
        Limits {
            fuel,
            deadline: Duration::from_millis(deadline_ms),
            timeout: Duration::from_millis(deadline_ms + 50),
            memory_bytes: 64 * MIB,
            output_bytes: MIB,
            log_lines: 50,
        }
    }

    /// The most an operator lets any binding ask for, unless its own configuration says otherwise.
    pub fn operator_maxima() -> Limits {
        Limits {
            fuel: 2_000_000_000,
            deadline: Duration::from_secs(2),
            timeout: Duration::from_millis(2_100),
            memory_bytes: 512 * MIB,
            output_bytes: 8 * MIB,
            log_lines: 1_000,
        }
    }

    /// These limits, each capped at `maxima`. The timeout never drops below the deadline.
    pub fn within(self, maxima: &Limits) -> Limits {
        let deadline = self.deadline.min(maxima.deadline);
        Limits {
            fuel: self.fuel.min(maxima.fuel),
            deadline,
            timeout: self.timeout.min(maxima.timeout).max(deadline),
            memory_bytes: self.memory_bytes.min(maxima.memory_bytes),
            output_bytes: self.output_bytes.min(maxima.output_bytes),
            log_lines: self.log_lines.min(maxima.log_lines),
        }
    }
}

/// A binding's own limits: any field it leaves out keeps the extension point's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LimitOverrides {
    pub fuel: Option<u64>,
    pub deadline_ms: Option<u64>,
    pub memory_bytes: Option<u64>,
    pub output_bytes: Option<u64>,
    pub log_lines: Option<u32>,
}

impl LimitOverrides {
    /// The limits a call gets: defaults, overridden, capped at the operator's maxima.
    pub fn resolve(&self, point: ExtensionPoint, maxima: &Limits) -> Limits {
        let mut limits = Limits::default_for(point);
        if let Some(fuel) = self.fuel {
            limits.fuel = fuel;
        }
        if let Some(ms) = self.deadline_ms {
            limits.deadline = Duration::from_millis(ms);
            limits.timeout = Duration::from_millis(ms + 50);
        }
        if let Some(bytes) = self.memory_bytes {
            limits.memory_bytes = bytes;
        }
        if let Some(bytes) = self.output_bytes {
            limits.output_bytes = bytes;
        }
        if let Some(lines) = self.log_lines {
            limits.log_lines = lines;
        }
        limits.within(maxima)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binding_cannot_raise_a_limit_past_the_operator_maximum() {
        let maxima = Limits::operator_maxima();
        let asked = LimitOverrides {
            fuel: Some(u64::MAX),
            deadline_ms: Some(60_000),
            memory_bytes: Some(64 << 30),
            output_bytes: None,
            log_lines: Some(5),
        };
        let got = asked.resolve(ExtensionPoint::Scaling, &maxima);
        assert_eq!(got.fuel, maxima.fuel);
        assert_eq!(got.deadline, maxima.deadline);
        assert_eq!(got.timeout, maxima.timeout);
        assert_eq!(got.memory_bytes, maxima.memory_bytes);
        assert_eq!(
            got.output_bytes,
            Limits::default_for(ExtensionPoint::Scaling).output_bytes
        );
        assert_eq!(got.log_lines, 5, "lowering a limit is always allowed");
    }

    #[test]
    fn the_timeout_never_undercuts_the_deadline() {
        let mut maxima = Limits::operator_maxima();
        maxima.timeout = Duration::from_millis(10);
        let got = Limits::default_for(ExtensionPoint::PodTemplate).within(&maxima);
        assert_eq!(got.timeout, got.deadline);
    }
}
