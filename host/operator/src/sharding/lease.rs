//! One Lease, as client-go's leader election runs it, as pure decisions over what was read:
//! a holder renews; a candidate takes a Lease over only after seeing its record unchanged for a
//! whole lease duration on its own clock (so clock skew between replicas does not matter); the
//! holder counts itself the owner only until `renew_deadline` after it sent its last successful
//! renewal, which is shorter than the lease duration, so the old and the new owner never
//! overlap.

use std::time::{Duration, Instant};

/// How long a Lease lasts and how often it is renewed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// A candidate takes over a Lease it saw unchanged for this long.
    pub lease_duration: Duration,
    /// The holder owns the Lease until this long after it sent its last successful renewal.
    pub renew_deadline: Duration,
    /// How often Leases are read and renewed.
    pub retry_period: Duration,
}

impl Timing {
    /// client-go's defaults.
    pub const DEFAULT: Timing = Timing {
        lease_duration: Duration::from_secs(15),
        renew_deadline: Duration::from_secs(10),
        retry_period: Duration::from_secs(2),
    };

    /// Why these timings cannot keep two owners apart, if they cannot.
    pub fn problem(&self) -> Option<String> {
        if self.renew_deadline >= self.lease_duration {
            return Some(format!(
                "the renew deadline ({:?}) must be shorter than the lease duration ({:?}): the old owner must stop before a new one may start",
                self.renew_deadline, self.lease_duration
            ));
        }
        if self.retry_period >= self.renew_deadline {
            return Some(format!(
                "the retry period ({:?}) must be shorter than the renew deadline ({:?}), or a holder loses its Lease between two renewals",
                self.retry_period, self.renew_deadline
            ));
        }
        None
    }
}

/// A Lease as read from the API: its resourceVersion and holder.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    pub version: &'a str,
    pub holder: Option<&'a str>,
}

/// What to do with a Lease after reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// It does not exist and we want it.
    Create,
    /// We hold it and keep it.
    Renew,
    /// It is free, or its holder stopped renewing it, and we want it.
    Acquire,
    /// We hold it and give it up (to balance, or when stopping).
    Release,
    /// Someone else holds it, or we do not want it.
    Wait,
}

/// This replica's view of one Lease.
#[derive(Clone, Debug, Default)]
pub struct LeaseView {
    /// The record's resourceVersion when last seen, and when it was first seen so.
    seen: Option<(String, Instant)>,
    /// We own the Lease until then.
    owned_until: Option<Instant>,
}

impl LeaseView {
    /// Folds a read taken at `now` (None: the Lease does not exist) and says what to do.
    pub fn next(
        &mut self,
        record: Option<Record<'_>>,
        me: &str,
        want: bool,
        now: Instant,
        timing: &Timing,
    ) -> Step {
        let Some(record) = record else {
            self.seen = None;
            self.owned_until = None;
            return if want { Step::Create } else { Step::Wait };
        };
        if self.seen.as_ref().map(|(v, _)| v.as_str()) != Some(record.version) {
            self.seen = Some((record.version.to_string(), now));
        }
        match record.holder.filter(|h| !h.is_empty()) {
            Some(holder) if holder == me => {
                if want {
                    Step::Renew
                } else {
                    Step::Release
                }
            }
            None => {
                self.owned_until = None;
                if want { Step::Acquire } else { Step::Wait }
            }
            Some(_) => {
                // Someone else holds it: whatever we believed, we do not own it.
                self.owned_until = None;
                let unchanged_since = self.seen.as_ref().map_or(now, |(_, since)| *since);
                if want && now.saturating_duration_since(unchanged_since) >= timing.lease_duration {
                    Step::Acquire
                } else {
                    Step::Wait
                }
            }
        }
    }

    /// A write that made (or kept) us the holder succeeded; it was sent at `sent`.
    pub fn held(&mut self, sent: Instant, timing: &Timing) {
        self.owned_until = Some(sent + timing.renew_deadline);
    }

    /// We gave the Lease up, or a write to keep it failed for good (a conflict).
    pub fn lost(&mut self) {
        self.owned_until = None;
    }

    /// Whether we own the Lease at `now`.
    pub fn owned(&self, now: Instant) -> bool {
        self.owned_until.is_some_and(|until| now < until)
    }

    /// Until when we own it.
    pub fn owned_until(&self) -> Option<Instant> {
        self.owned_until
    }
}

/// How many shards `me` should hold: the shards spread evenly over the live replicas (`live`,
/// sorted, `me` among them), the first `shards % live` of them holding one more, so that the
/// shares add up to every shard.
pub fn fair_share(shards: u32, live: &[String], me: &str) -> u32 {
    let count = u32::try_from(live.len().max(1)).unwrap_or(u32::MAX);
    let rank = live.iter().position(|m| m == me).unwrap_or(live.len());
    let rank = u32::try_from(rank).unwrap_or(u32::MAX);
    shards / count + u32::from(rank < shards % count)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timing = Timing {
        lease_duration: Duration::from_secs(15),
        renew_deadline: Duration::from_secs(10),
        retry_period: Duration::from_secs(2),
    };

    fn record<'a>(version: &'a str, holder: Option<&'a str>) -> Option<Record<'a>> {
        Some(Record { version, holder })
    }

    #[test]
    fn a_missing_or_free_lease_is_taken_only_when_wanted() {
        let now = Instant::now();
        let mut view = LeaseView::default();
        assert_eq!(view.next(None, "a", true, now, &T), Step::Create);
        assert_eq!(view.next(None, "a", false, now, &T), Step::Wait);
        assert_eq!(
            view.next(record("1", None), "a", true, now, &T),
            Step::Acquire
        );
        assert_eq!(
            view.next(record("1", Some("")), "a", false, now, &T),
            Step::Wait
        );
    }

    #[test]
    fn another_holders_lease_is_taken_only_after_a_whole_duration_unchanged() {
        let start = Instant::now();
        let mut view = LeaseView::default();
        assert_eq!(
            view.next(record("1", Some("b")), "a", true, start, &T),
            Step::Wait
        );
        let later = start + Duration::from_secs(14);
        assert_eq!(
            view.next(record("1", Some("b")), "a", true, later, &T),
            Step::Wait
        );
        // b renewed: the clock starts again.
        let renewed = start + Duration::from_secs(16);
        assert_eq!(
            view.next(record("2", Some("b")), "a", true, renewed, &T),
            Step::Wait
        );
        let expired = renewed + T.lease_duration;
        assert_eq!(
            view.next(record("2", Some("b")), "a", true, expired, &T),
            Step::Acquire
        );
    }

    #[test]
    fn the_holder_stops_owning_before_anyone_may_take_over() {
        let sent = Instant::now();
        let mut holder = LeaseView::default();
        holder.held(sent, &T);
        let mut candidate = LeaseView::default();
        // The candidate reads the renewed record no earlier than it was written.
        candidate.next(record("7", Some("a")), "b", true, sent, &T);
        let mut now = sent;
        while now < sent + Duration::from_secs(30) {
            let holder_owns = holder.owned(now);
            let candidate_acquires =
                candidate.next(record("7", Some("a")), "b", true, now, &T) == Step::Acquire;
            assert!(
                !(holder_owns && candidate_acquires),
                "overlap at {:?}",
                now - sent
            );
            now += Duration::from_millis(100);
        }
        assert!(!holder.owned(sent + T.renew_deadline));
    }

    #[test]
    fn seeing_another_holder_ends_our_ownership_at_once() {
        let now = Instant::now();
        let mut view = LeaseView::default();
        view.held(now, &T);
        assert!(view.owned(now));
        view.next(record("9", Some("b")), "a", true, now, &T);
        assert!(!view.owned(now));
    }

    #[test]
    fn shares_round_up_and_timings_that_could_overlap_are_refused() {
        let live: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let shares: Vec<u32> = live.iter().map(|me| fair_share(8, &live, me)).collect();
        assert_eq!(shares, [3, 3, 2]);
        assert_eq!(fair_share(8, &[], "a"), 8);
        let two: Vec<String> = ["a", "b"].map(String::from).to_vec();
        assert_eq!((fair_share(1, &two, "a"), fair_share(1, &two, "b")), (1, 0));
        assert_eq!(T.problem(), None);
        let overlapping = Timing {
            renew_deadline: Duration::from_secs(15),
            ..T
        };
        assert!(overlapping.problem().unwrap().contains("renew deadline"));
    }
}
