//! Aligning a parallelism to the key groups (max parallelism) or the source's partitions, so
//! every subtask gets an even share (upstream's `ParallelismAligner`, built-in modes).

use crate::settings::AlignmentMode;

/// What alignment needs to know about a vertex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlignmentInput {
    pub current: u32,
    /// The computed parallelism, already within `[lower, upper]` bounds.
    pub target: u32,
    pub max_parallelism: u32,
    /// The upper bound (`max(current, vertex.max-parallelism)`).
    pub upper: u32,
    /// The lower bound (`min(current, vertex.min-parallelism)`).
    pub lower: u32,
    /// Partitions of the source this vertex reads, 0 when not a source or unknown.
    pub source_partitions: u32,
    /// Whether some input of the vertex is keyed (HASH).
    pub keyed_input: bool,
}

/// An aligned parallelism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alignment {
    pub parallelism: u32,
    /// A legacy mode fell back (upstream's `ScalingLimited` event): nothing in the search
    /// region fitted, so it walked down from the target, or kept the current parallelism
    /// where walking down would have turned the scaling around.
    pub limited: bool,
}

/// The aligned parallelism. The built-in modes never block: when nothing in the search
/// region fits, the computed parallelism is kept. The legacy modes fall back as upstream's
/// deprecated `KeyGroupOrPartitionsAdjustMode` does.
pub fn align(input: AlignmentInput, mode: AlignmentMode) -> Alignment {
    let AlignmentInput {
        current,
        target,
        max_parallelism,
        upper,
        lower,
        source_partitions,
        keyed_input,
    } = input;
    let kept = Alignment {
        parallelism: target,
        limited: false,
    };
    if mode == AlignmentMode::Off || target == current || (source_partitions == 0 && !keyed_input) {
        return kept;
    }
    let n = if source_partitions > 0 {
        source_partitions
    } else {
        max_parallelism
    };
    let bound = n.min(max_parallelism.min(upper));
    let end = if target > current {
        bound
    } else {
        current.min(bound)
    };
    if target == 0 {
        return kept;
    }
    let share = |q: u32| n / q;
    let lower_share = matches!(
        mode,
        AlignmentMode::Balanced | AlignmentMode::LegacyMaximizeUtilisation
    );
    let found = (target..=end).find(|&q| n % q == 0 || (lower_share && share(q) < share(target)));
    match (found, mode) {
        (Some(q), _) => Alignment {
            parallelism: q,
            limited: false,
        },
        (None, AlignmentMode::LegacyEvenlySpread | AlignmentMode::LegacyMaximizeUtilisation) => {
            let walked = walk_down(n, target, lower);
            let turned = if target > current {
                walked <= current
            } else {
                walked >= current
            };
            Alignment {
                parallelism: if turned { current } else { walked },
                limited: turned || walked != target,
            }
        }
        (None, _) => kept,
    }
}

/// The lowest parallelism that gives each subtask no more than the target's share: down from
/// the target to where the share grows, then up to the next divisor (upstream's relaxed
/// downward fallback), not below `lower`.
fn walk_down(n: u32, target: u32, lower: u32) -> u32 {
    let mut p = target;
    while p > 0 {
        if n / p > n / target {
            if !n.is_multiple_of(p) {
                p += 1;
            }
            break;
        }
        p -= 1;
    }
    p.max(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyed(current: u32, target: u32, max_parallelism: u32) -> AlignmentInput {
        AlignmentInput {
            current,
            target,
            max_parallelism,
            upper: 200,
            lower: 1,
            source_partitions: 0,
            keyed_input: true,
        }
    }

    fn at(input: AlignmentInput, mode: AlignmentMode) -> u32 {
        let aligned = align(input, mode);
        assert!(
            !aligned.limited
                || matches!(
                    mode,
                    AlignmentMode::LegacyEvenlySpread | AlignmentMode::LegacyMaximizeUtilisation
                ),
            "{mode:?} never falls back"
        );
        aligned.parallelism
    }

    #[test]
    fn keyed_vertices_go_to_the_next_divisor_of_the_key_groups() {
        // 128 key groups: 6 subtasks would hold 21 or 22 groups; 8 hold 16 each.
        assert_eq!(at(keyed(4, 6, 128), AlignmentMode::EvenlySpread), 8);
        // Balanced also accepts 7: the largest share drops from 21 to 18.
        assert_eq!(at(keyed(4, 6, 128), AlignmentMode::Balanced), 7);
        assert_eq!(at(keyed(4, 6, 128), AlignmentMode::Off), 6);
    }

    #[test]
    fn a_scale_down_never_aligns_above_the_current_parallelism() {
        // 10 -> 7 with 100 key groups: divisors 10 (= current) is the only one in [7, 10].
        assert_eq!(at(keyed(10, 7, 100), AlignmentMode::EvenlySpread), 10);
        // With 96 groups, 8 divides: a real scale-down.
        assert_eq!(at(keyed(10, 7, 96), AlignmentMode::EvenlySpread), 8);
    }

    #[test]
    fn sources_align_to_their_partitions_and_unkeyed_vertices_do_not_align() {
        let source = AlignmentInput {
            current: 2,
            target: 5,
            max_parallelism: 128,
            upper: 200,
            lower: 1,
            source_partitions: 12,
            keyed_input: false,
        };
        assert_eq!(at(source, AlignmentMode::EvenlySpread), 6);
        let forward = AlignmentInput {
            source_partitions: 0,
            keyed_input: false,
            ..source
        };
        assert_eq!(at(forward, AlignmentMode::EvenlySpread), 5);
    }

    #[test]
    fn alignment_stays_in_bounds_and_in_the_scaling_direction() {
        for mode in [AlignmentMode::Balanced, AlignmentMode::EvenlySpread] {
            for max_parallelism in [1u32, 7, 12, 96, 128, 360] {
                for current in 1..=max_parallelism.min(40) {
                    for target in 1..=max_parallelism.min(40) {
                        let aligned = at(keyed(current, target, max_parallelism), mode);
                        assert!(
                            aligned <= max_parallelism,
                            "{mode:?} {current}->{target}/{max_parallelism}: {aligned}"
                        );
                        if target > current {
                            assert!(
                                aligned >= target,
                                "scale-up went down: {current}->{target} gave {aligned}"
                            );
                        } else if target < current {
                            assert!(
                                aligned >= target && aligned <= current,
                                "scale-down left its region: {current}->{target} gave {aligned}"
                            );
                        }
                        if mode == AlignmentMode::EvenlySpread && aligned != target {
                            assert_eq!(
                                max_parallelism % aligned,
                                0,
                                "evenly spread moved to a non-divisor"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_legacy_modes_walk_down_where_nothing_above_fits() {
        // 12 partitions, 5 -> 7 with at most 8 subtasks: no divisor in [7, 8]. The built-in
        // modes keep 7; the legacy ones walk down to 6 (2 partitions each), a smaller scale-up.
        let capped = AlignmentInput {
            max_parallelism: 8,
            source_partitions: 12,
            keyed_input: false,
            ..keyed(5, 7, 8)
        };
        assert_eq!(at(capped, AlignmentMode::EvenlySpread), 7);
        assert_eq!(at(capped, AlignmentMode::Balanced), 7);
        let legacy = align(capped, AlignmentMode::LegacyEvenlySpread);
        assert_eq!((legacy.parallelism, legacy.limited), (6, true));
        // 13 key groups, 10 -> 6: no divisor in [6, 10]; walking down lands on 5 (3 groups at
        // most, as at 6), so the legacy scale-down goes further than computed.
        assert_eq!(at(keyed(10, 6, 13), AlignmentMode::EvenlySpread), 6);
        assert_eq!(at(keyed(10, 6, 13), AlignmentMode::LegacyEvenlySpread), 5);
        // Where the search region fits, legacy and built-in modes agree.
        assert_eq!(at(keyed(4, 6, 128), AlignmentMode::LegacyEvenlySpread), 8);
        assert_eq!(
            at(keyed(4, 6, 128), AlignmentMode::LegacyMaximizeUtilisation),
            7
        );
        assert!(!align(keyed(4, 6, 128), AlignmentMode::LegacyEvenlySpread).limited);
    }

    #[test]
    fn the_legacy_modes_block_a_change_that_alignment_would_turn_around() {
        // 35 partitions, 22 -> 25 with at most 30 subtasks and at least 20: nothing in [25, 30]
        // divides 35 and walking down lands on 18, raised to 20, below the current 22: a
        // scale-up would become a scale-down, so the vertex stays at 22 (and it is reported).
        let input = AlignmentInput {
            current: 22,
            target: 25,
            max_parallelism: 128,
            upper: 30,
            lower: 20,
            source_partitions: 35,
            keyed_input: false,
        };
        assert_eq!(at(input, AlignmentMode::EvenlySpread), 25);
        for mode in [
            AlignmentMode::LegacyEvenlySpread,
            AlignmentMode::LegacyMaximizeUtilisation,
        ] {
            assert_eq!(
                align(input, mode),
                Alignment {
                    parallelism: 22,
                    limited: true
                }
            );
        }
    }

    #[test]
    fn the_legacy_modes_never_turn_a_scaling_around_nor_leave_the_bounds() {
        for mode in [
            AlignmentMode::LegacyEvenlySpread,
            AlignmentMode::LegacyMaximizeUtilisation,
        ] {
            for max_parallelism in [1u32, 7, 12, 96, 128, 360] {
                for current in 1..=max_parallelism.min(40) {
                    for target in 1..=max_parallelism.min(40) {
                        let input = AlignmentInput {
                            lower: current.min(target).min(3),
                            ..keyed(current, target, max_parallelism)
                        };
                        let aligned = at(input, mode);
                        let case =
                            format!("{mode:?} {current}->{target}/{max_parallelism}: {aligned}");
                        assert!(aligned <= max_parallelism.max(current), "{case}");
                        assert!(aligned >= input.lower, "{case}");
                        if target > current {
                            assert!(aligned >= current, "{case}");
                        } else if target < current {
                            assert!(aligned <= current, "{case}");
                        }
                    }
                }
            }
        }
    }
}
