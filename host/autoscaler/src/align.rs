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
    /// Partitions of the source this vertex reads, 0 when not a source or unknown.
    pub source_partitions: u32,
    /// Whether some input of the vertex is keyed (HASH).
    pub keyed_input: bool,
}

/// The aligned parallelism. Never blocks: when nothing in the search region fits, the
/// computed parallelism is kept.
pub fn align(input: AlignmentInput, mode: AlignmentMode) -> u32 {
    let AlignmentInput {
        current,
        target,
        max_parallelism,
        upper,
        source_partitions,
        keyed_input,
    } = input;
    if mode == AlignmentMode::Off || target == current || (source_partitions == 0 && !keyed_input) {
        return target;
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
    if target == 0 || target > end {
        return target;
    }
    let share = |q: u32| n / q;
    (target..=end)
        .find(|&q| n % q == 0 || (mode == AlignmentMode::Balanced && share(q) < share(target)))
        .unwrap_or(target)
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
            source_partitions: 0,
            keyed_input: true,
        }
    }

    #[test]
    fn keyed_vertices_go_to_the_next_divisor_of_the_key_groups() {
        // 128 key groups: 6 subtasks would hold 21 or 22 groups; 8 hold 16 each.
        assert_eq!(align(keyed(4, 6, 128), AlignmentMode::EvenlySpread), 8);
        // Balanced also accepts 7: the largest share drops from 21 to 18.
        assert_eq!(align(keyed(4, 6, 128), AlignmentMode::Balanced), 7);
        assert_eq!(align(keyed(4, 6, 128), AlignmentMode::Off), 6);
    }

    #[test]
    fn a_scale_down_never_aligns_above_the_current_parallelism() {
        // 10 -> 7 with 100 key groups: divisors 10 (= current) is the only one in [7, 10].
        assert_eq!(align(keyed(10, 7, 100), AlignmentMode::EvenlySpread), 10);
        // With 96 groups, 8 divides: a real scale-down.
        assert_eq!(align(keyed(10, 7, 96), AlignmentMode::EvenlySpread), 8);
    }

    #[test]
    fn sources_align_to_their_partitions_and_unkeyed_vertices_do_not_align() {
        let source = AlignmentInput {
            current: 2,
            target: 5,
            max_parallelism: 128,
            upper: 200,
            source_partitions: 12,
            keyed_input: false,
        };
        assert_eq!(align(source, AlignmentMode::EvenlySpread), 6);
        let forward = AlignmentInput {
            source_partitions: 0,
            keyed_input: false,
            ..source
        };
        assert_eq!(align(forward, AlignmentMode::EvenlySpread), 5);
    }

    #[test]
    fn alignment_stays_in_bounds_and_in_the_scaling_direction() {
        for mode in [AlignmentMode::Balanced, AlignmentMode::EvenlySpread] {
            for max_parallelism in [1u32, 7, 12, 96, 128, 360] {
                for current in 1..=max_parallelism.min(40) {
                    for target in 1..=max_parallelism.min(40) {
                        let aligned = align(keyed(current, target, max_parallelism), mode);
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
}
