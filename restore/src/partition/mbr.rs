//! Master Boot Record partition tables: four primary entries, plus logical partitions in a
//! chain of Extended Boot Records (EBRs) inside one extended partition.
//!
//! Sector 0 (and every EBR):
//! | offset | size | field |
//! | ---: | ---: | --- |
//! | 440 | 4 | disk signature (MBR only) |
//! | 446 | 4 × 16 | partition entries |
//! | 510 | 2 | `55 AA` |
//!
//! Entry: boot flag (0, 1; `0x00` or `0x80`), CHS start (1, 3), type (4, 1), CHS end (5, 3),
//! first LBA (8, 4, LE), sector count (12, 4, LE). CHS values are ignored, like Linux does.
//!
//! In an EBR, entry 0 is the logical partition (start relative to this EBR) and entry 1 points
//! at the next EBR (start relative to the extended partition's start); a type-0 / zero-size
//! entry 1 ends the chain. Numbering follows Linux: primaries 1..=4 by slot, logicals from 5.
//! The chain is walked with a visited set and a length limit, so a looping or endless chain
//! is an error, not a hang.

use std::collections::BTreeSet;

use super::{
    Partition, PartitionError, PartitionTable, ReadAt, SECTOR_SIZE, Scheme, check_no_overlap,
    read_sector,
};

/// Type byte of the GPT protective entry.
pub const TYPE_PROTECTIVE: u8 = 0xEE;
/// Type bytes of extended (container) partitions: DOS, Windows LBA, Linux.
pub const EXTENDED_TYPES: [u8; 3] = [0x05, 0x0F, 0x85];
/// More logical partitions than any real disk has; ends runaway chains.
pub const MAX_LOGICAL: usize = 256;

/// One non-empty entry of an MBR or EBR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MbrEntry {
    /// Slot 0..=3.
    pub slot: usize,
    pub bootable: bool,
    pub type_byte: u8,
    pub first_lba: u32,
    pub sectors: u32,
}

impl MbrEntry {
    pub fn is_extended(&self) -> bool {
        EXTENDED_TYPES.contains(&self.type_byte)
    }
}

/// The partition part of sector 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mbr {
    pub disk_signature: u32,
    /// Non-empty entries (type ≠ 0 and size ≠ 0), by slot.
    pub entries: Vec<MbrEntry>,
}

impl Mbr {
    /// A GPT protective (or hybrid) MBR.
    pub fn is_protective(&self) -> bool {
        self.entries.iter().any(|e| e.type_byte == TYPE_PROTECTIVE)
    }
}

/// Well-known MBR type bytes.
pub fn type_name(t: u8) -> Option<&'static str> {
    Some(match t {
        0x01 => "FAT12",
        0x04 | 0x06 | 0x0E => "FAT16",
        0x07 => "HPFS/NTFS/exFAT",
        0x0B | 0x0C => "W95 FAT32",
        0x05 | 0x0F | 0x85 => "Extended",
        0x27 => "Hidden NTFS WinRE",
        0x82 => "Linux swap",
        0x83 => "Linux",
        0x8E => "Linux LVM",
        0xA5 => "FreeBSD",
        0xEE => "GPT",
        0xEF => "EFI (FAT-12/16/32)",
        0xFD => "Linux raid autodetect",
        _ => return None,
    })
}

/// Pure: the entries of an MBR/EBR sector, or `None` if it is not one (no `55 AA`, or a boot
/// flag other than 0x00/0x80 — which is how a FAT/NTFS boot sector or random data usually
/// shows itself).
pub fn parse_entries(sector: &[u8; 512]) -> Option<Vec<MbrEntry>> {
    if sector[510] != 0x55 || sector[511] != 0xAA {
        return None;
    }
    let mut out = Vec::new();
    for slot in 0..4 {
        let e = &sector[446 + 16 * slot..446 + 16 * (slot + 1)];
        if e[0] != 0x00 && e[0] != 0x80 {
            return None;
        }
        let type_byte = e[4];
        let first_lba = u32::from_le_bytes([e[8], e[9], e[10], e[11]]);
        let sectors = u32::from_le_bytes([e[12], e[13], e[14], e[15]]);
        if type_byte == 0 || sectors == 0 {
            continue;
        }
        out.push(MbrEntry {
            slot,
            bootable: e[0] == 0x80,
            type_byte,
            first_lba,
            sectors,
        });
    }
    Some(out)
}

/// Pure: sector 0 as an MBR with at least one entry, else `None`.
pub fn parse_mbr_sector(sector: &[u8; 512]) -> Option<Mbr> {
    let entries = parse_entries(sector)?;
    if entries.is_empty() {
        return None;
    }
    let disk_signature = u32::from_le_bytes([sector[440], sector[441], sector[442], sector[443]]);
    Some(Mbr {
        disk_signature,
        entries,
    })
}

fn partition(number: u32, first_lba: u64, sectors: u64, type_byte: u8) -> Partition {
    Partition {
        number,
        start: first_lba * SECTOR_SIZE,
        size: sectors * SECTOR_SIZE,
        type_id: format!("{type_byte:#04x}"),
        type_name: type_name(type_byte),
        name: None,
    }
}

fn check_inside(
    p: &Partition,
    area: &'static str,
    area_start: u64,
    area_end: u64,
) -> Result<(), PartitionError> {
    if p.start < area_start || p.end() > area_end {
        return Err(PartitionError::OutOfBounds {
            number: p.number,
            start: p.start,
            end: p.end(),
            area,
            area_start,
            area_end,
        });
    }
    Ok(())
}

/// Turns a parsed MBR into a validated table, walking the EBR chain of its extended partition.
pub fn read_mbr(src: &(impl ReadAt + ?Sized), mbr: &Mbr) -> Result<PartitionTable, PartitionError> {
    let disk_end = src.size() / SECTOR_SIZE * SECTOR_SIZE;
    let mut parts = Vec::new();
    let mut extended: Option<MbrEntry> = None;
    for e in &mbr.entries {
        let p = partition(
            e.slot as u32 + 1,
            u64::from(e.first_lba),
            u64::from(e.sectors),
            e.type_byte,
        );
        if e.first_lba == 0 {
            return Err(PartitionError::Invalid {
                offset: 446 + 16 * e.slot as u64 + 8,
                reason: format!(
                    "partition {} starts at sector 0 (over the MBR itself)",
                    p.number
                ),
            });
        }
        check_inside(&p, "the disk", SECTOR_SIZE, disk_end)?;
        if e.is_extended() {
            if extended.is_some() {
                return Err(PartitionError::Invalid {
                    offset: 446 + 16 * e.slot as u64,
                    reason: format!(
                        "partition {} is a second extended partition; only one is allowed",
                        p.number
                    ),
                });
            }
            extended = Some(*e);
        }
        parts.push(p);
    }
    // The extended container takes part in the overlap check against the primaries; its
    // logicals are then checked against each other and against the primaries.
    check_no_overlap(&parts)?;
    if let Some(ext) = extended {
        let logicals = read_logicals(src, &ext, disk_end)?;
        parts.retain(|p| p.number != ext.slot as u32 + 1);
        parts.extend(logicals);
        check_no_overlap(&parts)?;
    }
    parts.sort_by_key(|p| p.number);
    Ok(PartitionTable {
        scheme: Scheme::Mbr {
            disk_signature: format!("{:08x}", mbr.disk_signature),
        },
        partitions: parts,
    })
}

/// Walks the EBR chain. Every logical partition must lie inside the extended partition.
fn read_logicals(
    src: &(impl ReadAt + ?Sized),
    ext: &MbrEntry,
    disk_end: u64,
) -> Result<Vec<Partition>, PartitionError> {
    let ext_start = u64::from(ext.first_lba);
    let ext_end_bytes = ((ext_start + u64::from(ext.sectors)) * SECTOR_SIZE).min(disk_end);
    let mut out = Vec::new();
    let mut visited = BTreeSet::new();
    let mut ebr_lba = ext_start;
    loop {
        let offset = ebr_lba * SECTOR_SIZE;
        if !visited.insert(ebr_lba) {
            return Err(PartitionError::EbrLoop { offset });
        }
        if out.len() >= MAX_LOGICAL {
            return Err(PartitionError::Invalid {
                offset,
                reason: format!("more than {MAX_LOGICAL} logical partitions"),
            });
        }
        if offset + SECTOR_SIZE > ext_end_bytes {
            return Err(PartitionError::Invalid {
                offset,
                reason: "EBR lies outside the extended partition".into(),
            });
        }
        let sector = read_sector(src, ebr_lba)?;
        let Some(entries) = parse_entries(&sector) else {
            // Linux tolerates an empty extended partition whose first EBR is blank.
            if ebr_lba == ext_start && sector.iter().all(|&b| b == 0) {
                return Ok(out);
            }
            return Err(PartitionError::Invalid {
                offset: offset + 510,
                reason: "EBR has no 55 AA signature or bad boot flags".into(),
            });
        };
        let mut next = None;
        for e in entries {
            match e.slot {
                0 if !e.is_extended() => {
                    let p = partition(
                        5 + out.len() as u32,
                        ebr_lba + u64::from(e.first_lba),
                        u64::from(e.sectors),
                        e.type_byte,
                    );
                    if e.first_lba == 0 {
                        return Err(PartitionError::Invalid {
                            offset: offset + 446 + 8,
                            reason: format!("logical partition {} starts on its own EBR", p.number),
                        });
                    }
                    check_inside(
                        &p,
                        "the extended partition",
                        ext_start * SECTOR_SIZE,
                        ext_end_bytes,
                    )?;
                    out.push(p);
                }
                1 if e.is_extended() => next = Some(ext_start + u64::from(e.first_lba)),
                // Other slots are unused in an EBR; Linux ignores them, and so do we.
                _ => {}
            }
        }
        match next {
            Some(n) => ebr_lba = n,
            None => return Ok(out),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn put_entry(
        img: &mut [u8],
        sector: u64,
        slot: usize,
        t: u8,
        first: u32,
        count: u32,
    ) {
        let o = (sector * SECTOR_SIZE) as usize + 446 + 16 * slot;
        img[o + 4] = t;
        img[o + 8..o + 12].copy_from_slice(&first.to_le_bytes());
        img[o + 12..o + 16].copy_from_slice(&count.to_le_bytes());
        let s = (sector * SECTOR_SIZE) as usize;
        img[s + 510] = 0x55;
        img[s + 511] = 0xAA;
    }

    /// 8 MiB disk: primary 1 at 2048 (2048 sectors), extended 2 at 4096..16383 with two
    /// logicals: 5 at 4096+2048 (1024 sectors), 6 at 8192+2048 (1024 sectors).
    fn with_logicals() -> Vec<u8> {
        let mut img = vec![0u8; 8 << 20];
        img[440..444].copy_from_slice(&0xdeadbeefu32.to_le_bytes());
        put_entry(&mut img, 0, 0, 0x83, 2048, 2048);
        put_entry(&mut img, 0, 1, 0x05, 4096, 12288);
        put_entry(&mut img, 4096, 0, 0x83, 2048, 1024);
        put_entry(&mut img, 4096, 1, 0x05, 4096, 4096);
        put_entry(&mut img, 8192, 0, 0x82, 2048, 1024);
        img
    }

    fn read(img: &[u8]) -> Result<PartitionTable, PartitionError> {
        let m = parse_mbr_sector(img[..512].try_into().unwrap()).unwrap();
        read_mbr(img, &m)
    }

    #[test]
    fn primaries_and_logicals_in_linux_numbering() {
        let t = read(&with_logicals()).unwrap();
        assert_eq!(
            t.scheme,
            Scheme::Mbr {
                disk_signature: "deadbeef".into()
            }
        );
        let got: Vec<(u32, u64, u64, &str)> = t
            .partitions
            .iter()
            .map(|p| (p.number, p.start / 512, p.size / 512, p.type_id.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, 2048, 2048, "0x83"),
                (5, 6144, 1024, "0x83"),
                (6, 10240, 1024, "0x82")
            ]
        );
        assert_eq!(t.partitions[2].type_name, Some("Linux swap"));
    }

    #[test]
    fn ebr_loop_is_detected() {
        let mut img = with_logicals();
        // Second EBR points back to the first one.
        put_entry(&mut img, 8192, 1, 0x05, 0, 4096);
        let err = read(&img).unwrap_err();
        assert!(
            matches!(err, PartitionError::EbrLoop { offset } if offset == 4096 * 512),
            "{err}"
        );
        // Self-loop.
        let mut img = with_logicals();
        put_entry(&mut img, 4096, 1, 0x05, 0, 4096);
        assert!(matches!(
            read(&img).unwrap_err(),
            PartitionError::EbrLoop { .. }
        ));
    }

    #[test]
    fn overlap_and_bounds() {
        let mut img = with_logicals();
        put_entry(&mut img, 0, 2, 0x83, 3000, 100); // overlaps primary 1
        let err = read(&img).unwrap_err();
        assert!(
            matches!(err, PartitionError::Overlap { a: 1, b: 3, .. }),
            "{err}"
        );
        let mut img = with_logicals();
        put_entry(&mut img, 0, 2, 0x83, 16000, 1000); // beyond the 16384-sector disk
        let err = read(&img).unwrap_err();
        assert!(
            matches!(
                err,
                PartitionError::OutOfBounds {
                    number: 3,
                    area: "the disk",
                    ..
                }
            ),
            "{err}"
        );
        let mut img = with_logicals();
        put_entry(&mut img, 8192, 0, 0x83, 2048, 9000); // logical beyond the extended partition
        let err = read(&img).unwrap_err();
        assert!(
            matches!(
                err,
                PartitionError::OutOfBounds {
                    number: 6,
                    area: "the extended partition",
                    ..
                }
            ),
            "{err}"
        );
        let mut img = with_logicals();
        put_entry(&mut img, 8192, 0, 0x83, 0, 100); // logical starting on its own EBR
        assert!(
            read(&img)
                .unwrap_err()
                .to_string()
                .contains("starts on its own EBR")
        );
        let mut img = with_logicals();
        put_entry(&mut img, 0, 2, 0x0F, 100, 10);
        assert!(
            read(&img)
                .unwrap_err()
                .to_string()
                .contains("second extended partition")
        );
    }

    #[test]
    fn not_an_mbr() {
        let mut s = [0u8; 512];
        assert!(parse_mbr_sector(&s).is_none());
        s[510] = 0x55;
        s[511] = 0xAA;
        assert!(parse_mbr_sector(&s).is_none(), "no entries");
        s[446] = 0x12; // bad boot flag
        s[446 + 4] = 0x83;
        s[446 + 12] = 1;
        assert!(parse_mbr_sector(&s).is_none());
        s[446] = 0x80;
        let m = parse_mbr_sector(&s).unwrap();
        assert!(m.entries[0].bootable);
        assert!(!m.is_protective());
    }

    proptest::proptest! {
        /// Arbitrary EBR contents never panic and never hang.
        #[test]
        fn arbitrary_ebrs_terminate(ebrs in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 66), 1..8)) {
            let mut img = vec![0u8; 2 << 20];
            put_entry(&mut img, 0, 0, 0x05, 64, 4000);
            for (i, e) in ebrs.iter().enumerate() {
                let o = (64 + i * 8) * 512 + 446;
                img[o..o + 66].copy_from_slice(e);
            }
            let _ = read(&img);
        }
    }
}
