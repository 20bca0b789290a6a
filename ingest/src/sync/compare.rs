//! Pure comparison of one 64 KiB cluster's new contents with what the destination holds.
//!
//! No I/O here: the caller supplies the old bytes (read from the image, or a static zero page
//! where the image is known to be a hole) and gets back which 4 KiB blocks differ and, for
//! each, whether its new content is all zeros (the zero path punches or writes zeros; see
//! [`super::ZeroMode`]). The common case — nothing changed — costs one `memcmp` of the whole
//! cluster, because slice equality lowers to `bcmp`, which glibc runs at DRAM speed (perf.md
//! §3.2); only a mismatching cluster is compared block by block.

/// Bytes of one block: the unit of comparison and writing (the VMA zero-suppression unit).
pub const BLOCK_SIZE: usize = 4096;
/// Bytes of one cluster: the unit a VMA blockinfo addresses, and of the fast compare.
pub const CLUSTER_SIZE: usize = 65536;
/// Blocks per cluster (one VMA mask bit each).
pub const BLOCKS_PER_CLUSTER: usize = CLUSTER_SIZE / BLOCK_SIZE;

/// A static zero cluster, compared against with `memcmp` (faster than a byte loop, and the
/// "old" contents of known holes).
pub static ZERO_CLUSTER: [u8; CLUSTER_SIZE] = [0u8; CLUSTER_SIZE];

/// True if every byte is zero.
#[inline]
pub fn is_zero(b: &[u8]) -> bool {
    // Chunks of at most one cluster, each compared against the static zero page.
    b.chunks(CLUSTER_SIZE)
        .all(|c| c == &ZERO_CLUSTER[..c.len()])
}

/// The new contents of one cluster.
#[derive(Debug, Clone, Copy)]
pub enum NewCluster<'a> {
    /// VMA style: the blocks whose `mask` bit is set are stored back to back in `data`
    /// (`popcount(mask) * 4096` bytes); the others are zero.
    Packed { mask: u16, data: &'a [u8] },
    /// Every byte present (a raw source); at least as long as the cluster's length.
    Full(&'a [u8]),
}

impl<'a> NewCluster<'a> {
    /// The new bytes of block `i` (`len` bytes, `len <= 4096`), `None` if the block is zero
    /// by the mask. `None` also if the packed data is too short (callers validate first).
    pub fn block(&self, i: usize, len: usize) -> Option<&'a [u8]> {
        match *self {
            NewCluster::Packed { mask, data } => {
                if mask & (1 << i) == 0 {
                    return None;
                }
                let k = (mask & ((1u32 << i) - 1) as u16).count_ones() as usize;
                data.get(k * BLOCK_SIZE..k * BLOCK_SIZE + len)
            }
            NewCluster::Full(data) => data.get(i * BLOCK_SIZE..i * BLOCK_SIZE + len),
        }
    }

    /// Whether the cluster carries enough bytes for a cluster of `len` bytes.
    pub fn is_well_formed(&self, len: usize) -> bool {
        match *self {
            NewCluster::Packed { mask, data } => {
                // Every stored block that starts inside the cluster needs its bytes; stored
                // blocks past `len` (a full mask straddling the device end) are ignored.
                data.len() >= mask.count_ones() as usize * BLOCK_SIZE
            }
            NewCluster::Full(data) => data.len() >= len,
        }
    }
}

/// Result of [`diff_cluster`]: which blocks changed, as bit masks (bit `i` = block `i`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ClusterDiff {
    /// Blocks whose bytes differ.
    pub changed: u16,
    /// The subset of `changed` whose new bytes are all zero (they go the zero path).
    pub zero: u16,
    /// Bytes found equal.
    pub unchanged: u64,
}

/// Number of blocks in a cluster of `len` bytes (the last may be partial).
#[inline]
pub fn blocks_in(len: usize) -> usize {
    len.div_ceil(BLOCK_SIZE)
}

/// Compares the first `old.len()` bytes (≤ 64 KiB: a whole cluster, or the shorter last
/// cluster of a device) of `new` with `old`. A block is changed if any of its bytes differ;
/// a changed block whose new bytes are all zero is also in [`ClusterDiff::zero`].
pub fn diff_cluster(old: &[u8], new: NewCluster<'_>) -> ClusterDiff {
    let len = old.len();
    // Fast path: one memcmp over the whole cluster.
    let same = match new {
        NewCluster::Packed { mask: 0, .. } => is_zero(old),
        NewCluster::Packed { mask: 0xffff, data } => data.get(..len) == Some(old),
        NewCluster::Packed { .. } => false,
        NewCluster::Full(data) => data.get(..len) == Some(old),
    };
    let mut d = ClusterDiff::default();
    if same {
        d.unchanged = len as u64;
        return d;
    }
    for i in 0..blocks_in(len) {
        let start = i * BLOCK_SIZE;
        let blen = BLOCK_SIZE.min(len - start);
        let oldb = &old[start..start + blen];
        let (changed, zero) = match new.block(i, blen) {
            Some(nb) if nb == oldb => (false, false),
            None if is_zero(oldb) => (false, false),
            Some(nb) => (true, is_zero(nb)),
            None => (true, true),
        };
        if changed {
            d.changed |= 1 << i;
            if zero {
                d.zero |= 1 << i;
            }
        } else {
            d.unchanged += blen as u64;
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(fill: u8) -> Vec<u8> {
        vec![fill; BLOCK_SIZE]
    }

    #[test]
    fn zero_test() {
        assert!(is_zero(&[]));
        assert!(is_zero(&vec![0u8; 3 * CLUSTER_SIZE + 5]));
        let mut v = vec![0u8; 2 * CLUSTER_SIZE];
        v[CLUSTER_SIZE + 7] = 1;
        assert!(!is_zero(&v));
    }

    #[test]
    fn packed_block_lookup_follows_the_mask() {
        let mut data = block(1);
        data.extend(block(2));
        let c = NewCluster::Packed {
            mask: 0b1010,
            data: &data,
        };
        assert_eq!(c.block(0, BLOCK_SIZE), None);
        assert_eq!(c.block(1, BLOCK_SIZE).unwrap()[0], 1);
        assert_eq!(c.block(2, BLOCK_SIZE), None);
        assert_eq!(c.block(3, 100).unwrap(), &[2u8; 100][..]);
        assert!(c.is_well_formed(CLUSTER_SIZE));
        assert!(
            !NewCluster::Packed {
                mask: 0b111,
                data: &data
            }
            .is_well_formed(CLUSTER_SIZE)
        );
    }

    #[test]
    fn equal_cluster_is_one_compare() {
        let old = vec![5u8; CLUSTER_SIZE];
        let d = diff_cluster(&old, NewCluster::Full(&old));
        assert_eq!((d.changed, d.unchanged), (0, CLUSTER_SIZE as u64));
        let d = diff_cluster(
            &old,
            NewCluster::Packed {
                mask: 0xffff,
                data: &old,
            },
        );
        assert_eq!(d.changed, 0);
        let d = diff_cluster(&ZERO_CLUSTER, NewCluster::Packed { mask: 0, data: &[] });
        assert_eq!((d.changed, d.unchanged), (0, CLUSTER_SIZE as u64));
        // A changed cluster with an all-zero mask: every non-zero old block is zeroed.
        let d = diff_cluster(&old, NewCluster::Packed { mask: 0, data: &[] });
        assert_eq!((d.changed, d.zero, d.unchanged), (0xffff, 0xffff, 0));
    }

    #[test]
    fn finds_data_and_zero_changes() {
        // old: block 0 = 1s, block 1 = zeros, block 2 = 3s, rest zero.
        let mut old = vec![0u8; CLUSTER_SIZE];
        old[..BLOCK_SIZE].fill(1);
        old[2 * BLOCK_SIZE..3 * BLOCK_SIZE].fill(3);
        // new (packed): block 0 = 1s (same), block 1 = 9s (data), block 2 absent (zeroed).
        let mut data = block(1);
        data.extend(block(9));
        let d = diff_cluster(
            &old,
            NewCluster::Packed {
                mask: 0b011,
                data: &data,
            },
        );
        assert_eq!((d.changed, d.zero), (0b110, 0b100));
        assert_eq!(d.unchanged, 14 * BLOCK_SIZE as u64);
        // A stored block that happens to be zero counts as zeroing, not data.
        let z = block(0);
        let d = diff_cluster(
            &old,
            NewCluster::Packed {
                mask: 0b1,
                data: &z,
            },
        );
        assert_eq!((d.changed, d.zero), (0b101, 0b101));
    }

    #[test]
    fn short_last_cluster_compares_only_its_bytes() {
        let old = vec![0u8; 5000];
        let mut new = vec![0u8; CLUSTER_SIZE];
        new[6000] = 1; // past the end: ignored
        let d = diff_cluster(&old, NewCluster::Full(&new));
        assert_eq!((d.changed, d.unchanged), (0, 5000));
        new[4500] = 7;
        let d = diff_cluster(&old, NewCluster::Full(&new));
        assert_eq!((d.changed, d.zero, d.unchanged), (0b10, 0, 4096));
    }
}
