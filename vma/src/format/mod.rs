//! The VMA on-disk format: constants and pure (de)serialisation of its structures.
//!
//! Nothing here does I/O. Every structure is parsed by explicit byte offsets (the C structs
//! are not `packed`, but their asserted sizes pin every offset), because a `repr(C)` cast
//! would need `unsafe` and would hide the big-endian conversions. The layouts follow
//! Proxmox's C code (`vma.h`, `vma-reader.c`, `vma-writer.c`), not `vma_spec.txt`, where the
//! two disagree; see `docs/vma-format.md` in the shared docs.

pub mod blob;
pub mod devinfo;
pub mod extent;
pub mod header;

pub use blob::{BlobTable, BlobTableBuilder};
pub use devinfo::DevInfo;
pub use extent::{BlockInfo, ExtentHeader};
pub use header::VmaHeader;

/// Bytes of one block, the unit of zero suppression (`VMA_BLOCK_SIZE`).
pub const BLOCK_SIZE: usize = 4096;
/// Bytes of one cluster, the unit a blockinfo addresses (`VMA_CLUSTER_SIZE`).
pub const CLUSTER_SIZE: usize = 65536;
/// Blocks per cluster; one mask bit each.
pub const BLOCKS_PER_CLUSTER: usize = 16;
/// Bytes of an extent header (`VMA_EXTENT_HEADER_SIZE`).
pub const EXTENT_HEADER_SIZE: usize = 512;
/// Blockinfo slots per extent header (`VMA_BLOCKS_PER_EXTENT`; it counts clusters). The reader
/// accepts all 59.
pub const BLOCKINFO_SLOTS: usize = 59;
/// Clusters the C writer puts into one extent: it flushes once 58 are buffered, so slot 58
/// stays zero in every real archive.
pub const WRITER_CLUSTERS_PER_EXTENT: usize = 58;
/// Largest possible extent: header plus 59 full clusters (`VMA_MAX_EXTENT_SIZE`).
pub const MAX_EXTENT_SIZE: usize = EXTENT_HEADER_SIZE + BLOCKINFO_SLOTS * CLUSTER_SIZE;
/// Largest `block_count` an extent can need: every block of every slot.
pub const MAX_EXTENT_BLOCKS: usize = BLOCKINFO_SLOTS * BLOCKS_PER_CLUSTER;
/// `sizeof(VmaHeader)`: the fixed part of the main header, before the blob buffer.
pub const HEADER_STRUCT_SIZE: usize = 12288;
/// Largest main header (`HEADERBUF_SIZE` in the C writer).
pub const MAX_HEADER_SIZE: usize = 8 * 65536;
/// Config slots in the main header (`VMA_MAX_CONFIGS`).
pub const MAX_CONFIGS: usize = 256;
/// dev_info slots in the main header; slot 0 is unused.
pub const DEV_INFO_SLOTS: usize = 256;
/// The C writer registers at most 254 devices (dev_ids 1..=254).
pub const MAX_WRITER_DEVICES: usize = 254;
/// Largest blob (LE16 length prefix).
pub const MAX_BLOB_LEN: usize = 65535;
/// Magic of the main header.
pub const VMA_MAGIC: [u8; 4] = *b"VMA\0";
/// Magic of an extent header.
pub const EXTENT_MAGIC: [u8; 4] = *b"VMAE";
/// The only format version.
pub const VMA_VERSION: u32 = 1;
/// Name of the legacy RAM-state device, written sequentially to `vmstate.bin`.
pub const VMSTATE_NAME: &str = "vmstate";

/// MD5 over `data` as if the 16 bytes at `md5_at` were zero: how both the main header and the
/// extent header checksums are defined. Hashes around the field instead of copying the data.
pub fn md5_with_zeroed_field(data: &[u8], md5_at: usize) -> [u8; 16] {
    use md5::{Digest, Md5};
    let mut h = Md5::new();
    h.update(&data[..md5_at]);
    h.update([0u8; 16]);
    h.update(&data[md5_at + 16..]);
    h.finalize().into()
}

pub(crate) fn be_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

pub(crate) fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

pub(crate) fn be_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

pub(crate) fn array16(b: &[u8], at: usize) -> [u8; 16] {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[at..at + 16]);
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_extent_size_matches_c_assert() {
        assert_eq!(MAX_EXTENT_SIZE, 3_867_136);
        assert_eq!(
            MAX_EXTENT_BLOCKS * BLOCK_SIZE + EXTENT_HEADER_SIZE,
            MAX_EXTENT_SIZE
        );
    }

    #[test]
    fn md5_ignores_the_field() {
        let mut a = vec![7u8; 100];
        let x = md5_with_zeroed_field(&a, 20);
        a[20..36].fill(0xee);
        assert_eq!(md5_with_zeroed_field(&a, 20), x);
        a[19] = 0;
        assert_ne!(md5_with_zeroed_field(&a, 20), x);
        // equal to hashing a zeroed copy
        let mut z = a.clone();
        z[20..36].fill(0);
        use md5::{Digest, Md5};
        let direct: [u8; 16] = Md5::digest(&z).into();
        assert_eq!(md5_with_zeroed_field(&a, 20), direct);
    }
}
