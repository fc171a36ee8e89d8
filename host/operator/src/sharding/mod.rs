//! More than one operator replica, each doing part of the work: resources are spread over N
//! shards by a stable hash of `namespace/name`, each shard is a `coordination.k8s.io` Lease
//! (`flink-operator-shard-<i>` in the operator's namespace), and a replica reconciles a
//! resource only while it owns its shard. Replicas announce themselves with a member Lease and
//! each takes an even share; the shards of a replica that dies are taken over once its Leases
//! expire. With one shard this is plain leader election (active/standby).
//!
//! `lease.rs` is the protocol as pure decisions; `elector.rs` runs it against the API;
//! [`Shards`] is what the controllers ask before each reconcile.

pub mod elector;
pub mod lease;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Which shard `namespace/name` belongs to: FNV-1a of the key, the same in every replica and
/// every release (unlike std's hasher, whose output may change between Rust versions).
pub fn shard_of(namespace: &str, name: &str, shards: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in namespace.bytes().chain([b'/']).chain(name.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    (hash % u64::from(shards.max(1))) as u32
}

#[derive(Debug, Default, Clone)]
struct Shard {
    owned_until: Option<Instant>,
    in_flight: u32,
}

/// The shards this replica owns now, and the reconciles running in each.
#[derive(Debug)]
pub struct Shards {
    count: u32,
    state: Mutex<Vec<Shard>>,
    /// Bumped whenever a shard is gained: the controllers then reconcile everything again
    /// (resources of a gained shard were skipped until now).
    gained: tokio::sync::watch::Sender<u64>,
}

/// A reconcile in progress in an owned shard; ends with the value.
#[derive(Debug)]
pub struct InFlight<'a> {
    shards: &'a Shards,
    shard: u32,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let mut state = self.shards.lock();
        if let Some(shard) = state.get_mut(self.shard as usize) {
            shard.in_flight = shard.in_flight.saturating_sub(1);
        }
    }
}

impl Shards {
    pub fn new(count: u32) -> Shards {
        Shards {
            count: count.max(1),
            state: Mutex::new(vec![Shard::default(); count.max(1) as usize]),
            gained: tokio::sync::watch::Sender::new(0),
        }
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Shard>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a reconcile of `namespace/name` if this replica owns its shard now.
    pub fn begin(&self, namespace: &str, name: &str) -> Option<InFlight<'_>> {
        let shard = shard_of(namespace, name, self.count);
        let mut state = self.lock();
        let entry = state.get_mut(shard as usize)?;
        if entry
            .owned_until
            .is_none_or(|until| Instant::now() >= until)
        {
            return None;
        }
        entry.in_flight += 1;
        Some(InFlight {
            shards: self,
            shard,
        })
    }

    /// Records that the shard is owned until `until` (None: not owned); a newly gained shard
    /// makes the controllers reconcile everything.
    pub fn set_owned(&self, shard: u32, until: Option<Instant>) {
        let gained = {
            let mut state = self.lock();
            let Some(entry) = state.get_mut(shard as usize) else {
                return;
            };
            let now = Instant::now();
            let was = entry.owned_until.is_some_and(|t| now < t);
            entry.owned_until = until;
            !was && until.is_some_and(|t| now < t)
        };
        if gained {
            self.gained.send_modify(|n| *n += 1);
        }
    }

    /// Reconciles running in `shard`.
    pub fn in_flight(&self, shard: u32) -> u32 {
        self.lock().get(shard as usize).map_or(0, |s| s.in_flight)
    }

    /// The shards owned now.
    pub fn owned(&self) -> Vec<u32> {
        let now = Instant::now();
        self.lock()
            .iter()
            .enumerate()
            .filter(|(_, s)| s.owned_until.is_some_and(|t| now < t))
            .map(|(i, _)| i as u32)
            .collect()
    }

    /// A stream that yields when a shard is gained (and once at the start).
    pub fn gained(&self) -> impl futures::Stream<Item = ()> + Send + 'static {
        use futures::StreamExt;
        tokio_stream::wrappers::WatchStream::new(self.gained.subscribe()).map(|_| ())
    }
}

/// Who reconciles what, across the replicas that share it: a test's witness that no resource
/// is ever reconciled by two replicas at once. Production replicas have none.
#[derive(Debug, Default)]
pub struct Witness {
    log: Mutex<WitnessLog>,
}

#[derive(Debug, Default, Clone)]
pub struct WitnessLog {
    /// Reconciles running now: resource key -> replica.
    pub running: HashMap<String, String>,
    /// "key: replica while other" for every reconcile that started while another replica's
    /// reconcile of the same resource ran.
    pub overlaps: Vec<String>,
    /// Every reconcile started: (key, replica, when).
    pub reconciles: Vec<(String, String, Instant)>,
}

/// A witnessed reconcile; leaves the log when dropped.
#[derive(Debug)]
pub struct Witnessed {
    witness: Arc<Witness>,
    key: String,
    replica: String,
}

impl Witness {
    pub fn enter(self: &Arc<Self>, key: &str, replica: &str) -> Witnessed {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(other) = log.running.get(key)
            && other != replica
        {
            let overlap = format!("{key}: {replica} while {other}");
            log.overlaps.push(overlap);
        }
        log.running.insert(key.to_string(), replica.to_string());
        log.reconciles
            .push((key.to_string(), replica.to_string(), Instant::now()));
        Witnessed {
            witness: self.clone(),
            key: key.to_string(),
            replica: replica.to_string(),
        }
    }

    pub fn log(&self) -> WitnessLog {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for Witnessed {
    fn drop(&mut self) {
        let mut log = self.witness.log.lock().unwrap_or_else(|e| e.into_inner());
        if log.running.get(&self.key) == Some(&self.replica) {
            log.running.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_shard_of_a_resource_is_stable_and_spreads_resources() {
        assert_eq!(
            shard_of("team-a", "orders", 8),
            shard_of("team-a", "orders", 8)
        );
        assert_eq!(shard_of("team-a", "orders", 1), 0);
        // Pinned (FNV-1a 64 of "default/counter" is 12974895418668060181): a change of hash
        // would move every resource to another shard at an upgrade.
        assert_eq!(shard_of("default", "counter", 4), 1);
        assert_eq!(shard_of("default", "counter", 1000), 181);
        let mut per_shard = [0u32; 4];
        for i in 0..400 {
            per_shard[shard_of("ns", &format!("job-{i}"), 4) as usize] += 1;
        }
        assert!(
            per_shard.iter().all(|n| (70..=130).contains(n)),
            "{per_shard:?}"
        );
    }

    #[test]
    fn a_reconcile_starts_only_in_an_owned_shard_and_is_counted_until_done() {
        let shards = Shards::new(2);
        let shard = shard_of("ns", "a", 2);
        assert!(shards.begin("ns", "a").is_none());
        shards.set_owned(shard, Some(Instant::now() + Duration::from_secs(5)));
        let running = shards.begin("ns", "a").expect("owned");
        assert_eq!(shards.in_flight(shard), 1);
        drop(running);
        assert_eq!(shards.in_flight(shard), 0);
        shards.set_owned(shard, Some(Instant::now()));
        assert!(shards.begin("ns", "a").is_none(), "ownership lapsed");
    }

    #[test]
    fn gaining_a_shard_triggers_a_full_reconcile() {
        let shards = Shards::new(2);
        let before = *shards.gained.borrow();
        shards.set_owned(1, Some(Instant::now() + Duration::from_secs(5)));
        shards.set_owned(1, Some(Instant::now() + Duration::from_secs(6)));
        assert_eq!(
            *shards.gained.borrow(),
            before + 1,
            "a renewal is not a gain"
        );
        shards.set_owned(1, None);
        shards.set_owned(1, Some(Instant::now() + Duration::from_secs(5)));
        assert_eq!(*shards.gained.borrow(), before + 2);
    }
}
