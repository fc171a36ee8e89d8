//! Counters per loaded plugin: calls, failures by kind, fuel and time. Lock-free, read by the
//! metrics endpoint and the bench.

use crate::engine::CallFailure;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct PluginStats {
    calls: AtomicU64,
    failures: AtomicU64,
    traps: AtomicU64,
    timeouts: AtomicU64,
    out_of_fuel: AtomicU64,
    memory_exceeded: AtomicU64,
    fuel_used: AtomicU64,
    micros: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsSnapshot {
    pub calls: u64,
    pub failures: u64,
    pub traps: u64,
    pub timeouts: u64,
    pub out_of_fuel: u64,
    pub memory_exceeded: u64,
    pub fuel_used: u64,
    pub micros: u64,
}

impl PluginStats {
    pub(crate) fn record<T>(&self, result: &Result<T, CallFailure>, fuel: u64, elapsed: Duration) {
        self.calls.fetch_add(1, Relaxed);
        self.fuel_used.fetch_add(fuel, Relaxed);
        self.micros.fetch_add(elapsed.as_micros() as u64, Relaxed);
        let Err(failure) = result else { return };
        self.failures.fetch_add(1, Relaxed);
        let counter = match failure {
            CallFailure::Trap { .. } => &self.traps,
            CallFailure::Timeout { .. } => &self.timeouts,
            CallFailure::OutOfFuel { .. } => &self.out_of_fuel,
            CallFailure::MemoryExceeded { .. } => &self.memory_exceeded,
            _ => return,
        };
        counter.fetch_add(1, Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            calls: self.calls.load(Relaxed),
            failures: self.failures.load(Relaxed),
            traps: self.traps.load(Relaxed),
            timeouts: self.timeouts.load(Relaxed),
            out_of_fuel: self.out_of_fuel.load(Relaxed),
            memory_exceeded: self.memory_exceeded.load(Relaxed),
            fuel_used: self.fuel_used.load(Relaxed),
            micros: self.micros.load(Relaxed),
        }
    }
}
