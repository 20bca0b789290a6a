//! Partition tables inside raw disk images: GPT ([`gpt`]) and MBR ([`mbr`]), parsed by us.
//!
//! Why our own parser: the kernels vzsnap runs on may have no partition-table support for loop
//! devices (`losetup -P` creates no `loopNpM` nodes), and even where they do, partition
//! scanning would parse untrusted guest data in the kernel. We compute each partition's byte
//! offset and size here and map it with a read-only loop device by offset.
//!
//! The parsers are pure: they only see bytes through [`ReadAt`], which is implemented for byte
//! slices (tests) and for [`ImageFile`] (a disk image on disk). Sector size is 512 bytes, as
//! for every disk Proxmox VE creates; a 4096-byte-sector GPT is recognised and refused.

pub mod gpt;
pub mod mbr;

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use serde::Serialize;

/// The sector size every offset in a partition table is counted in.
pub const SECTOR_SIZE: u64 = 512;

/// Random-access reads of a disk image. `read_exact_at` fails with `UnexpectedEof` past the end.
pub trait ReadAt {
    /// Fills `buf` from byte `offset`.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// The image size in bytes.
    fn size(&self) -> u64;
}

impl ReadAt for [u8] {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let end = start
            .checked_add(buf.len())
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        let src = self.get(start..end).ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn size(&self) -> u64 {
        self.len() as u64
    }
}

impl ReadAt for Vec<u8> {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.as_slice().read_exact_at(offset, buf)
    }

    fn size(&self) -> u64 {
        self.len() as u64
    }
}

/// A disk image file opened read-only, with its size taken once at open.
#[derive(Debug)]
pub struct ImageFile {
    file: File,
    size: u64,
}

impl ImageFile {
    pub fn open(path: &Path) -> io::Result<ImageFile> {
        let file = File::open(path)?;
        let size = file.metadata()?.len();
        Ok(ImageFile { file, size })
    }
}

impl ReadAt for ImageFile {
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        FileExt::read_exact_at(&self.file, buf, offset)
    }

    fn size(&self) -> u64 {
        self.size
    }
}

/// Reads one 512-byte sector; errors name the byte offset.
pub(crate) fn read_sector(
    src: &(impl ReadAt + ?Sized),
    lba: u64,
) -> Result<[u8; 512], PartitionError> {
    let offset = lba
        .checked_mul(SECTOR_SIZE)
        .ok_or(PartitionError::Invalid {
            offset: u64::MAX,
            reason: format!("sector {lba} is beyond any possible disk"),
        })?;
    let mut buf = [0u8; 512];
    src.read_exact_at(offset, &mut buf)
        .map_err(|source| PartitionError::Io { offset, source })?;
    Ok(buf)
}

/// Why a partition table could not be used. Every variant names a byte offset in the image.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    #[error("byte {offset}: read failed: {source}")]
    Io {
        offset: u64,
        #[source]
        source: io::Error,
    },
    /// A structure is malformed (bad signature, CRC, size field, pointer…).
    #[error("byte {offset}: {reason}")]
    Invalid { offset: u64, reason: String },
    /// A partition lies (partly) outside the disk or the area its table allows.
    #[error(
        "partition {number} (bytes {start}..{end}) lies outside {area} (bytes {area_start}..{area_end})"
    )]
    OutOfBounds {
        number: u32,
        start: u64,
        end: u64,
        area: &'static str,
        area_start: u64,
        area_end: u64,
    },
    /// Two partitions share sectors.
    #[error("partitions {a} and {b} overlap (bytes {a_start}..{a_end} and {b_start}..{b_end})")]
    Overlap {
        a: u32,
        a_start: u64,
        a_end: u64,
        b: u32,
        b_start: u64,
        b_end: u64,
    },
    /// The extended-partition chain points back to an EBR already visited.
    #[error("byte {offset}: the logical-partition (EBR) chain loops back to an EBR already read")]
    EbrLoop { offset: u64 },
}

/// Which scheme a [`PartitionTable`] came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "scheme", rename_all = "lowercase")]
pub enum Scheme {
    Gpt {
        /// Disk GUID, canonical text form.
        disk_guid: String,
        /// The primary header or entry array was damaged and the backup at the disk end was used.
        used_backup: bool,
    },
    Mbr {
        /// The 32-bit disk signature at byte 440, as 8 hex digits.
        disk_signature: String,
    },
}

/// One partition: where it is and what the table says it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partition {
    /// Linux numbering: GPT entry index + 1; MBR primaries 1..=4 by slot, logicals from 5 in
    /// chain order. So `part3` here is what a guest calls `sda3`.
    pub number: u32,
    /// Byte offset in the image.
    pub start: u64,
    /// Size in bytes.
    pub size: u64,
    /// GPT type GUID (canonical text) or MBR type byte (`0x83`).
    pub type_id: String,
    /// Human name of the type when it is well known (`Linux filesystem`, `EFI System`…).
    pub type_name: Option<&'static str>,
    /// GPT partition name (may be empty); `None` for MBR.
    pub name: Option<String>,
}

impl Partition {
    pub fn end(&self) -> u64 {
        self.start + self.size
    }
}

/// A parsed, validated partition table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionTable {
    #[serde(flatten)]
    pub scheme: Scheme,
    /// Sorted by number; never overlapping, always inside the disk.
    pub partitions: Vec<Partition>,
}

/// Fails with [`PartitionError::Overlap`] if any two partitions share a byte. Sorts by start.
pub(crate) fn check_no_overlap(parts: &[Partition]) -> Result<(), PartitionError> {
    let mut by_start: Vec<&Partition> = parts.iter().collect();
    by_start.sort_by_key(|p| (p.start, p.number));
    for w in by_start.windows(2) {
        let (a, b) = (w[0], w[1]);
        if b.start < a.end() {
            return Err(PartitionError::Overlap {
                a: a.number,
                a_start: a.start,
                a_end: a.end(),
                b: b.number,
                b_start: b.start,
                b_end: b.end(),
            });
        }
    }
    Ok(())
}

/// What the start of a disk image holds, in the order the decision is made.
#[derive(Debug)]
pub enum TableProbe {
    /// A protective MBR (type 0xEE) is present: the disk is GPT, and the GPT must be valid.
    Gpt(PartitionTable),
    /// A valid-looking MBR partition table (boot flags 0x00/0x80, at least one entry).
    Mbr(PartitionTable),
    /// Neither. The disk may still hold a whole-disk filesystem.
    None,
}

/// Reads the partition table of a disk, if any: GPT when the MBR is protective, else MBR.
///
/// Deciding between "MBR" and "whole-disk filesystem whose boot sector looks like an MBR"
/// (FAT, NTFS) is the caller's job (see [`crate::disk::inspect_disk`]); this function only
/// looks at partition-table structures.
pub fn read_partition_table(src: &(impl ReadAt + ?Sized)) -> Result<TableProbe, PartitionError> {
    if src.size() < SECTOR_SIZE {
        return Ok(TableProbe::None);
    }
    let sector0 = read_sector(src, 0)?;
    let mbr = mbr::parse_mbr_sector(&sector0);
    match mbr {
        Some(m) if m.is_protective() => Ok(TableProbe::Gpt(gpt::read_gpt(src)?)),
        Some(m) => Ok(TableProbe::Mbr(mbr::read_mbr(src, &m)?)),
        None => {
            // Without an MBR signature, GPT is not valid either (UEFI requires the protective
            // MBR), but say so clearly if someone wrote a bare GPT.
            if gpt::has_gpt_signature_at(src, 1) {
                return Err(PartitionError::Invalid {
                    offset: 0,
                    reason: "GPT header at sector 1 but no protective MBR (type 0xEE) at sector 0"
                        .into(),
                });
            }
            Ok(TableProbe::None)
        }
    }
}
