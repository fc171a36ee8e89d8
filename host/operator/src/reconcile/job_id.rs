//! Fixed Flink job ids. A job is submitted with an id the operator chose and recorded first, so
//! a retried submission finds the job instead of starting a second one.

/// The job id of a resource's deployment at `generation`: 16 hex digits from the resource's uid
/// and 16 from the generation, like upstream (a new generation gets a new id; the same one
/// always the same id). A deploy the operator starts on its own (`revision` > 0: a restart, a
/// rollback) gets its own id too, with the revision in the top 16 bits.
pub fn job_id(uid: &str, generation: i64, revision: i64) -> String {
    let low = (generation as u64) & 0x0000_ffff_ffff_ffff;
    let high = (revision as u64) << 48;
    let number = if revision == 0 {
        generation as u64
    } else {
        high | low
    };
    format!("{:016x}{number:016x}", fnv1a(uid.as_bytes()))
}

/// The trigger id of the `attempt`-th stop-with-savepoint of a resource's upgrade to
/// `generation`: recorded before the request, so a retried request is the same savepoint.
pub fn trigger_id(uid: &str, generation: i64, attempt: i32) -> String {
    format!(
        "{:016x}{:08x}{:08x}",
        fnv1a(uid.as_bytes()) ^ 0x5a5a_5a5a_5a5a_5a5a,
        generation as u32,
        attempt as u32
    )
}

/// Whether `trigger` is one of [`trigger_id`]'s for this resource and generation (any attempt).
pub fn is_trigger_of(trigger: &str, uid: &str, generation: i64) -> bool {
    trigger.len() == 32 && trigger.get(..24) == trigger_id(uid, generation, 0).get(..24)
}

/// The trigger id of a manual or periodic savepoint decided at `now_ms` (one per reconcile).
pub fn snapshot_trigger_id(uid: &str, now_ms: i64) -> String {
    format!(
        "{:016x}{:016x}",
        fnv1a(uid.as_bytes()) ^ 0xa5a5_a5a5_a5a5_a5a5,
        now_ms as u64
    )
}

/// FNV-1a, 64 bit: stable across Rust versions and platforms, unlike `DefaultHasher`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_per_uid_and_generation() {
        let uid = "0b9c7c3e-5a8e-4c52-9d2f-8f0e5c1a2b3c";
        let id = job_id(uid, 3, 0);
        assert_eq!(id.len(), 32);
        assert!(id.ends_with("0000000000000003"), "{id}");
        assert_eq!(id, job_id(uid, 3, 0));
        assert_ne!(id, job_id(uid, 4, 0));
        assert_ne!(id, job_id("another", 3, 0));
        let restarted = job_id(uid, 3, 1);
        assert!(restarted.ends_with("0001000000000003"), "{restarted}");
        assert_ne!(restarted, job_id(uid, 3, 2));
        assert!(flink_rest::JobId::parse(&id).is_ok());
    }
}
