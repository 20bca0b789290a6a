//! Property: syncing A onto B makes B equal to A, and the engine writes exactly the blocks
//! that differ — new data for blocks that differ and are non-zero in A, zeroing for blocks
//! that differ and are zero in A — whatever the sizes, contents and zero mode.

use proptest::prelude::*;

use super::compare::BLOCK_SIZE;
use super::raw::{RawSyncOptions, sync_file};
use super::{ImageSync, ZeroMode};
use crate::sync::compare::{CLUSTER_SIZE, NewCluster, is_zero};

/// A file as a list of blocks from a tiny alphabet (so equal blocks are common), plus a tail.
fn image() -> impl Strategy<Value = Vec<u8>> {
    (prop::collection::vec(0u8..4, 0..70), 0usize..BLOCK_SIZE).prop_map(|(blocks, tail)| {
        let mut v = Vec::with_capacity(blocks.len() * BLOCK_SIZE + tail);
        for (i, b) in blocks.iter().enumerate() {
            let mut blk = vec![0u8; BLOCK_SIZE];
            if *b != 0 {
                blk[i % BLOCK_SIZE] = *b;
                blk[BLOCK_SIZE - 1] = *b;
            }
            v.extend(blk);
        }
        v.extend(std::iter::repeat_n(7u8, tail));
        v
    })
}

/// Independent count: (bytes of differing non-zero blocks, bytes of blocks that became zero).
fn expected(a: &[u8], b: &[u8]) -> (u64, u64) {
    let mut old = b.to_vec();
    old.resize(a.len(), 0);
    let (mut written, mut zeroed) = (0, 0);
    for (na, ob) in a.chunks(BLOCK_SIZE).zip(old.chunks(BLOCK_SIZE)) {
        if na != ob {
            if na.iter().all(|&x| x == 0) {
                zeroed += na.len() as u64;
            } else {
                written += na.len() as u64;
            }
        }
    }
    (written, zeroed)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn raw_sync_makes_b_equal_a_writing_only_differences(
        a in image(), b in image(), punch in any::<bool>(), b_exists in any::<bool>()
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (pa, pb) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&pa, &a).unwrap();
        let old: &[u8] = if b_exists { std::fs::write(&pb, &b).unwrap(); &b } else { &[] };
        let zero_mode = if punch { ZeroMode::Punch } else { ZeroMode::Write };
        let st = sync_file(&pa, &pb, RawSyncOptions { zero_mode, durable: false }, |_| {}).unwrap();
        prop_assert_eq!(std::fs::read(&pb).unwrap(), a.clone());
        let (w, z) = expected(&a, old);
        prop_assert_eq!((st.written, st.zeroed), (w, z));
        prop_assert_eq!(st.unchanged + st.written + st.zeroed, a.len() as u64);
    }

    #[test]
    fn packed_clusters_in_any_order_give_the_same_result(
        a in image(), b in image(), seed in any::<u64>()
    ) {
        let dir = tempfile::tempdir().unwrap();
        let pb = dir.path().join("b");
        std::fs::write(&pb, &b).unwrap();
        let mut img = ImageSync::open(&pb, "b", a.len() as u64, ZeroMode::Punch).unwrap();
        // Clusters as a VMA writer would store them (only non-zero blocks), shuffled.
        let n = a.len().div_ceil(CLUSTER_SIZE);
        let mut order: Vec<usize> = (0..n).collect();
        let mut s = seed | 1;
        for i in (1..n).rev() {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            order.swap(i, (s % (i as u64 + 1)) as usize);
        }
        for c in order {
            let mut padded = a[c * CLUSTER_SIZE..a.len().min((c + 1) * CLUSTER_SIZE)].to_vec();
            padded.resize(CLUSTER_SIZE, 0);
            let (mut mask, mut data) = (0u16, Vec::new());
            for (i, blk) in padded.chunks(BLOCK_SIZE).enumerate() {
                if !is_zero(blk) {
                    mask |= 1 << i;
                    data.extend_from_slice(blk);
                }
            }
            img.apply(c as u64, NewCluster::Packed { mask, data: &data }).unwrap();
        }
        let st = img.finish(false).unwrap();
        prop_assert_eq!(std::fs::read(&pb).unwrap(), a.clone());
        prop_assert_eq!((st.written, st.zeroed), expected(&a, &b));
    }
}
