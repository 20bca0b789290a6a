//! Crash-safe rollback of a btrfs volume by swapping subvolumes, and the deterministic
//! recovery of an interrupted swap.
//!
//! btrfs cannot roll a subvolume back in place, so a rollback builds the new state beside the
//! live one and swaps names:
//!
//! 1. writable snapshot of the newest read-only snapshot → `rollback/<vol>.new`
//! 2. rename `<vol>` → `rollback/<vol>.old`
//! 3. rename `rollback/<vol>.new` → `<vol>`
//! 4. delete `rollback/<vol>.old`
//!
//! Each step is atomic (a subvolume snapshot appears complete or not at all; renames are
//! atomic and use `RENAME_NOREPLACE`), so after a crash the three names `<vol>`, `.old`,
//! `.new` are in one of the states below, and every state has exactly one way forward that
//! leaves either the old or the new volume in place. The plan is a pure function of which
//! names exist, tested exhaustively.

/// Which of the three names exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Names {
    pub live: bool,
    pub old: bool,
    pub new: bool,
}

/// One repair step, applied in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Delete `.new` (the swap never moved the live volume: undo).
    DeleteNew,
    /// Rename `.new` → `<vol>` (the live volume was already moved away: finish).
    PromoteNew,
    /// Delete `.old` (the new volume is in place: finish).
    DeleteOld,
    /// Rename `.old` → `<vol>` (no new volume to promote: undo).
    RestoreOld,
}

/// What to do for a given state. Normal crash points are marked; the other states cannot
/// arise from steps 1–4 alone (only from outside interference) and are resolved towards the
/// volume that is certainly complete.
pub fn plan(n: Names) -> &'static [Step] {
    match (n.live, n.old, n.new) {
        // Nothing interrupted (or no volume at all).
        (true, false, false) | (false, false, false) => &[],
        // Crash after step 1: undo.
        (true, false, true) => &[Step::DeleteNew],
        // Crash after step 2: finish.
        (false, true, true) => &[Step::PromoteNew, Step::DeleteOld],
        // Crash after step 3: finish.
        (true, true, false) => &[Step::DeleteOld],
        // Not reachable by the swap: the live volume exists, so both leftovers go.
        (true, true, true) => &[Step::DeleteNew, Step::DeleteOld],
        // Not reachable: the live name was moved away but nothing replaces it: put it back.
        (false, true, false) => &[Step::RestoreOld],
        // Not reachable: the live volume never moved (no `.old`), so the swap is undone.
        (false, false, true) => &[Step::DeleteNew],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Applies a plan to a state and returns the final state.
    fn apply(mut n: Names, steps: &[Step]) -> Names {
        for s in steps {
            match s {
                Step::DeleteNew => {
                    assert!(n.new);
                    n.new = false;
                }
                Step::PromoteNew => {
                    assert!(n.new && !n.live);
                    n.new = false;
                    n.live = true;
                }
                Step::DeleteOld => {
                    assert!(n.old);
                    n.old = false;
                }
                Step::RestoreOld => {
                    assert!(n.old && !n.live);
                    n.old = false;
                    n.live = true;
                }
            }
        }
        n
    }

    #[test]
    fn every_state_ends_clean_with_a_live_volume_if_there_was_one() {
        for bits in 0..8u8 {
            let n = Names {
                live: bits & 1 != 0,
                old: bits & 2 != 0,
                new: bits & 4 != 0,
            };
            let end = apply(n, plan(n));
            assert!(!end.old && !end.new, "{n:?} leaves leftovers");
            assert_eq!(end.live, n.live || n.old, "{n:?}");
            // Recovery is idempotent: running it again does nothing.
            assert!(plan(end).is_empty());
        }
    }

    #[test]
    fn the_real_crash_points() {
        // After step 1: the old state stays.
        assert_eq!(
            plan(Names {
                live: true,
                old: false,
                new: true
            }),
            &[Step::DeleteNew]
        );
        // After step 2: the new state wins.
        assert_eq!(
            plan(Names {
                live: false,
                old: true,
                new: true
            }),
            &[Step::PromoteNew, Step::DeleteOld]
        );
        // After step 3: the new state stays.
        assert_eq!(
            plan(Names {
                live: true,
                old: true,
                new: false
            }),
            &[Step::DeleteOld]
        );
    }
}
