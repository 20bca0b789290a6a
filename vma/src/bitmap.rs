//! A sparse set of cluster numbers: which clusters of a device were already seen (reader) or
//! written (writer).
//!
//! A header may claim a device of up to 2^32 clusters (256 TiB); a dense bitmap for that is
//! 512 MiB per device, allocated on the word of an untrusted header. Instead the bitmap is
//! split into 4 KiB chunks of 32768 clusters (2 GiB of disk each), allocated on first use, so
//! memory grows with the clusters actually seen (a 10 GiB disk needs 5 chunks = 20 KiB).

use std::collections::BTreeMap;
use std::ops::Range;

const CHUNK_CLUSTERS_BITS: u32 = 15;
const CHUNK_CLUSTERS: u64 = 1 << CHUNK_CLUSTERS_BITS;
const CHUNK_WORDS: usize = (CHUNK_CLUSTERS / 64) as usize;

#[derive(Debug, Default, Clone)]
pub(crate) struct ClusterBitmap {
    chunks: BTreeMap<u32, Box<[u64; CHUNK_WORDS]>>,
    count: u64,
}

fn split(cluster: u32) -> (u32, usize, u64) {
    let chunk = cluster >> CHUNK_CLUSTERS_BITS;
    let within = (cluster as u64) & (CHUNK_CLUSTERS - 1);
    (chunk, (within / 64) as usize, 1u64 << (within % 64))
}

impl ClusterBitmap {
    pub(crate) fn contains(&self, cluster: u32) -> bool {
        let (c, w, bit) = split(cluster);
        self.chunks.get(&c).is_some_and(|words| words[w] & bit != 0)
    }

    /// Adds `cluster`; returns false if it was already there.
    pub(crate) fn insert(&mut self, cluster: u32) -> bool {
        let (c, w, bit) = split(cluster);
        let words = self
            .chunks
            .entry(c)
            .or_insert_with(|| Box::new([0u64; CHUNK_WORDS]));
        if words[w] & bit != 0 {
            return false;
        }
        words[w] |= bit;
        self.count += 1;
        true
    }

    /// Number of clusters in the set.
    pub(crate) fn len(&self) -> u64 {
        self.count
    }

    /// Clusters in `0..total` that are not in the set, as ascending half-open ranges.
    pub(crate) fn missing(&self, total: u64) -> Vec<Range<u64>> {
        let mut out: Vec<Range<u64>> = Vec::new();
        let mut push = |r: Range<u64>| {
            if let Some(last) = out.last_mut()
                && last.end == r.start
            {
                last.end = r.end;
                return;
            }
            out.push(r);
        };
        // Walk only the allocated chunks: the gaps between them are single ranges, so a
        // 2^32-cluster device with few clusters seen costs nothing extra.
        let mut next = 0u64;
        for (&c, words) in &self.chunks {
            let base = u64::from(c) * CHUNK_CLUSTERS;
            if base >= total {
                break;
            }
            if base > next {
                push(next..base);
            }
            let end = (base + CHUNK_CLUSTERS).min(total);
            for (wi, &word) in words.iter().enumerate() {
                let wbase = base + 64 * wi as u64;
                if wbase >= end {
                    break;
                }
                if word == u64::MAX {
                    continue;
                }
                let mut w = !word;
                while w != 0 {
                    let start = u64::from(w.trailing_zeros());
                    // length of the run of missing bits starting at `start`
                    let run = u64::from((w >> start).trailing_ones());
                    let s = wbase + start;
                    let e = (s + run).min(end);
                    if s < e {
                        push(s..e);
                    }
                    if start + run >= 64 {
                        break;
                    }
                    w &= !(((1u64 << run) - 1) << start);
                }
            }
            next = end;
        }
        if next < total {
            push(next..total);
        }
        out
    }

    /// Heap bytes held by the chunks (for tests of the memory bound).
    #[cfg(test)]
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.chunks.len() * CHUNK_WORDS * 8
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn insert_contains_len() {
        let mut b = ClusterBitmap::default();
        assert!(!b.contains(5));
        assert!(b.insert(5));
        assert!(!b.insert(5));
        assert!(b.contains(5));
        assert!(b.insert(u32::MAX));
        assert!(b.contains(u32::MAX));
        assert!(!b.contains(u32::MAX - 1));
        assert_eq!(b.len(), 2);
    }

    #[test]
    fn huge_device_stays_small() {
        let mut b = ClusterBitmap::default();
        for c in [0u32, 1, 100, 4_000_000_000, u32::MAX] {
            b.insert(c);
        }
        assert!(b.allocated_bytes() <= 3 * 4096);
        let m = b.missing(1 << 32);
        assert_eq!(
            m,
            vec![2..100, 101..4_000_000_000, 4_000_000_001..(1u64 << 32) - 1]
        );
    }

    #[test]
    fn missing_of_empty_and_full() {
        let b = ClusterBitmap::default();
        assert_eq!(b.missing(0), vec![]);
        assert_eq!(b.missing(70_000), vec![0..70_000]);
        let mut b = ClusterBitmap::default();
        for c in 0..70_000 {
            b.insert(c);
        }
        assert_eq!(b.missing(70_000), vec![]);
        assert_eq!(b.missing(70_001), vec![70_000..70_001]);
    }

    proptest! {
        #[test]
        fn missing_matches_naive(set in proptest::collection::btree_set(0u32..200_000, 0..300), total in 0u64..200_000) {
            let mut b = ClusterBitmap::default();
            for &c in &set { b.insert(c); }
            let mut naive: Vec<Range<u64>> = Vec::new();
            for c in 0..total {
                if !set.contains(&(c as u32)) {
                    match naive.last_mut() {
                        Some(r) if r.end == c => r.end = c + 1,
                        _ => naive.push(c..c + 1),
                    }
                }
            }
            prop_assert_eq!(b.missing(total), naive);
        }
    }
}
