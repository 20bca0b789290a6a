//! What a disk image holds: a partition table with a filesystem per partition, or one
//! filesystem over the whole disk, or nothing vzsnap recognises (pure over [`ReadAt`]).
//!
//! Decision order (like blkid's):
//! 1. A protective MBR (type 0xEE) means GPT; a broken GPT is then an error, never "MBR".
//! 2. A filesystem whose signature covers sector 0 (FAT, NTFS, exFAT, XFS, LUKS, LVM) wins
//!    over an MBR: a FAT boot sector also ends in `55 AA`.
//! 3. A valid-looking MBR (boot flags 0x00/0x80, at least one entry) is a partition table.
//! 4. Otherwise any filesystem found at byte 0 (ext4 at 1024, btrfs at 64 KiB…) is a
//!    whole-disk filesystem.

use serde::Serialize;

use crate::fsdetect::{Filesystem, PROBE_SIZE, detect_filesystem};
use crate::partition::{
    Partition, PartitionError, PartitionTable, ReadAt, SECTOR_SIZE, TableProbe, gpt, mbr,
    read_partition_table, read_sector,
};

/// A partition and what is in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionContent {
    #[serde(flatten)]
    pub partition: Partition,
    pub filesystem: Option<Filesystem>,
}

/// The result of [`inspect_disk`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "layout", rename_all = "snake_case")]
pub enum DiskLayout {
    Partitioned {
        #[serde(flatten)]
        table: PartitionTableInfo,
        partitions: Vec<PartitionContent>,
    },
    WholeDisk {
        filesystem: Filesystem,
    },
    Unrecognised,
}

/// The table's scheme without its partitions (those are listed with their contents).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionTableInfo {
    #[serde(flatten)]
    pub scheme: crate::partition::Scheme,
}

/// Reads up to [`PROBE_SIZE`] bytes at `start` (fewer if `len` is smaller) and detects.
pub fn probe_at(
    src: &(impl ReadAt + ?Sized),
    start: u64,
    len: u64,
) -> Result<Option<Filesystem>, PartitionError> {
    let n = len
        .min(PROBE_SIZE as u64)
        .min(src.size().saturating_sub(start)) as usize;
    let mut buf = vec![0u8; n];
    src.read_exact_at(start, &mut buf)
        .map_err(|source| PartitionError::Io {
            offset: start,
            source,
        })?;
    Ok(detect_filesystem(&buf))
}

/// Inspects a disk image; see the module docs for the decision order.
pub fn inspect_disk(src: &(impl ReadAt + ?Sized)) -> Result<DiskLayout, PartitionError> {
    let partitioned = |t: PartitionTable| -> Result<DiskLayout, PartitionError> {
        let mut parts = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let filesystem = probe_at(src, p.start, p.size)?;
            parts.push(PartitionContent {
                partition: p,
                filesystem,
            });
        }
        Ok(DiskLayout::Partitioned {
            table: PartitionTableInfo { scheme: t.scheme },
            partitions: parts,
        })
    };
    let mbr = if src.size() >= SECTOR_SIZE {
        mbr::parse_mbr_sector(&read_sector(src, 0)?)
    } else {
        None
    };
    if mbr.as_ref().is_some_and(mbr::Mbr::is_protective) {
        return partitioned(gpt::read_gpt(src)?);
    }
    let whole = probe_at(src, 0, src.size())?;
    match (mbr, whole) {
        (Some(_), Some(fs)) if fs.kind.owns_first_sector() => {
            Ok(DiskLayout::WholeDisk { filesystem: fs })
        }
        (Some(m), _) => partitioned(mbr::read_mbr(src, &m)?),
        (None, Some(fs)) => Ok(DiskLayout::WholeDisk { filesystem: fs }),
        (None, None) => match read_partition_table(src)? {
            // Only reached for a bare GPT without protective MBR, which is an error there.
            TableProbe::Gpt(t) | TableProbe::Mbr(t) => partitioned(t),
            TableProbe::None => Ok(DiskLayout::Unrecognised),
        },
    }
}
