//! [`ExtentBuf`] and [`ClusterRef`]: one extent's bytes and zero-copy views of its clusters.

use crate::format::{
    BLOCK_SIZE, BLOCKINFO_SLOTS, BLOCKS_PER_CLUSTER, BlockInfo, CLUSTER_SIZE, EXTENT_HEADER_SIZE,
    MAX_EXTENT_SIZE,
};

/// One extent's bytes, owned and `Send`, so a reader thread can hand it to a writer thread and
/// get it back for reuse. The buffer (at most 3.7 MiB) grows to the largest extent seen and
/// is then reused, so reading allocates nothing per extent.
pub struct ExtentBuf {
    pub(crate) data: Vec<u8>,
    pub(crate) len: usize,
    pub(crate) offset: u64,
    /// Used blockinfo slots in slot order, with the start of their data in `data`.
    pub(crate) entries: Vec<(BlockInfo, u32)>,
}

impl std::fmt::Debug for ExtentBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtentBuf")
            .field("offset", &self.offset)
            .field("len", &self.len)
            .field("clusters", &self.entries.len())
            .finish()
    }
}

impl Default for ExtentBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl ExtentBuf {
    /// An empty buffer; cheap (the extent storage is allocated by the first read).
    pub fn new() -> Self {
        ExtentBuf {
            data: Vec::new(),
            len: 0,
            offset: 0,
            entries: Vec::with_capacity(BLOCKINFO_SLOTS),
        }
    }

    /// Grows the storage to at least `need` bytes (never beyond [`MAX_EXTENT_SIZE`], which
    /// the reader checks first) and returns it. Growing only on demand keeps archives of
    /// small or empty extents (all-zero disks) from paying for 3.7 MiB; once a full extent
    /// was seen the buffer is never reallocated again.
    pub(crate) fn storage(&mut self, need: usize) -> &mut [u8] {
        debug_assert!(need <= MAX_EXTENT_SIZE);
        if self.data.len() < need {
            self.data.resize(need, 0);
        }
        &mut self.data
    }

    pub(crate) fn clear(&mut self) {
        self.len = 0;
        self.entries.clear();
    }

    /// Archive offset of this extent's header.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The whole extent as stored: 512-byte header plus data (empty before the first read or
    /// after end of file).
    pub fn as_bytes(&self) -> &[u8] {
        &self.data[..self.len]
    }

    /// Number of used blockinfo slots (clusters) in this extent.
    pub fn cluster_count(&self) -> usize {
        self.entries.len()
    }

    /// Number of stored 4 KiB blocks (`block_count`).
    pub fn block_count(&self) -> usize {
        self.len.saturating_sub(EXTENT_HEADER_SIZE) / BLOCK_SIZE
    }

    /// The clusters in blockinfo slot order (archive order, not sorted), borrowing the data.
    pub fn clusters(&self) -> impl ExactSizeIterator<Item = ClusterRef<'_>> + '_ {
        self.entries.iter().map(move |&(bi, start)| {
            let start = start as usize;
            let len = bi.blocks() as usize * BLOCK_SIZE;
            ClusterRef {
                dev_id: bi.dev_id,
                cluster: bi.cluster,
                mask: bi.mask,
                data: &self.data[start..start + len],
            }
        })
    }
}

/// One cluster of an extent: where it belongs and its stored blocks (a slice of the extent
/// buffer, never copied).
///
/// Note: like the C reader, a cluster with a full mask (`0xffff`) that straddles the device
/// end is accepted, so its last blocks may lie past the end; write at most up to the device
/// size. Partial masks never have blocks starting past the end (the reader rejects them).
#[derive(Clone, Copy)]
pub struct ClusterRef<'a> {
    pub dev_id: u8,
    pub cluster: u32,
    pub mask: u16,
    data: &'a [u8],
}

impl std::fmt::Debug for ClusterRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterRef")
            .field("dev_id", &self.dev_id)
            .field("cluster", &self.cluster)
            .field("mask", &format_args!("{:#06x}", self.mask))
            .finish()
    }
}

impl<'a> ClusterRef<'a> {
    /// The stored blocks back to back: `popcount(mask) * 4096` bytes.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Byte offset of this cluster in its device.
    pub fn device_offset(&self) -> u64 {
        u64::from(self.cluster) * CLUSTER_SIZE as u64
    }

    /// True if every block of the cluster is zero (nothing stored).
    pub fn is_zero(&self) -> bool {
        self.mask == 0
    }

    /// The 16 blocks in order: `(index, Some(4 KiB))` if stored, `(index, None)` if zero.
    pub fn blocks(&self) -> ClusterBlocks<'a> {
        ClusterBlocks {
            mask: self.mask,
            data: self.data,
            index: 0,
        }
    }
}

/// Iterator of [`ClusterRef::blocks`].
#[derive(Debug, Clone)]
pub struct ClusterBlocks<'a> {
    mask: u16,
    data: &'a [u8],
    index: usize,
}

impl<'a> Iterator for ClusterBlocks<'a> {
    type Item = (usize, Option<&'a [u8]>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.index >= BLOCKS_PER_CLUSTER {
            return None;
        }
        let i = self.index;
        self.index += 1;
        if self.mask & (1 << i) == 0 {
            return Some((i, None));
        }
        // The reader guarantees popcount(mask) * 4096 bytes, so this split never fails; if it
        // did, ending the iteration is safer than panicking.
        if self.data.len() < BLOCK_SIZE {
            self.index = BLOCKS_PER_CLUSTER;
            return None;
        }
        let (block, rest) = self.data.split_at(BLOCK_SIZE);
        self.data = rest;
        Some((i, Some(block)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = BLOCKS_PER_CLUSTER - self.index;
        (0, Some(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>() {}

    #[test]
    fn extent_buf_is_send() {
        assert_send::<ExtentBuf>();
    }

    #[test]
    fn blocks_follow_the_mask() {
        let mut data = vec![1u8; BLOCK_SIZE];
        data.extend(vec![2u8; BLOCK_SIZE]);
        let c = ClusterRef {
            dev_id: 1,
            cluster: 3,
            mask: 0b1000_0000_0000_0010,
            data: &data,
        };
        let blocks: Vec<_> = c.blocks().collect();
        assert_eq!(blocks.len(), 16);
        assert_eq!(blocks[0], (0, None));
        assert_eq!(blocks[1].1.unwrap()[0], 1);
        assert_eq!(blocks[15].1.unwrap()[0], 2);
        assert!(blocks[2..15].iter().all(|(_, b)| b.is_none()));
        assert_eq!(c.device_offset(), 3 * 65536);
        assert!(!c.is_zero());
        assert_eq!(
            format!("{c:?}"),
            "ClusterRef { dev_id: 1, cluster: 3, mask: 0x8002 }"
        );
    }
}
