//! GUID Partition Table (UEFI 2.10 §5.3), 512-byte sectors.
//!
//! Header (LBA 1, little-endian):
//! | offset | size | field |
//! | ---: | ---: | --- |
//! | 0 | 8 | signature `EFI PART` |
//! | 8 | 4 | revision (0x00010000) |
//! | 12 | 4 | header size (92 ≤ n ≤ 512) |
//! | 16 | 4 | CRC32 of the header (`header size` bytes, this field zeroed) |
//! | 20 | 4 | reserved |
//! | 24 | 8 | my LBA |
//! | 32 | 8 | alternate (backup) header LBA |
//! | 40 | 8 | first usable LBA |
//! | 48 | 8 | last usable LBA (inclusive) |
//! | 56 | 16 | disk GUID |
//! | 72 | 8 | partition entry array LBA |
//! | 80 | 4 | number of entries |
//! | 84 | 4 | size of one entry (128 × 2^n) |
//! | 88 | 4 | CRC32 of the entry array |
//!
//! Entry: type GUID (0, 16; all zero = unused), unique GUID (16, 16), first LBA (32, 8),
//! last LBA (40, 8, inclusive), attributes (48, 8), name (56, 72, UTF-16LE).
//!
//! Validation follows the spec and Linux `block/partitions/efi.c`: signature, header size,
//! header CRC, my-LBA, usable range inside the disk, entry size, array CRC; when the primary
//! header or its array fails, the backup header at the disk end is tried (as firmware and
//! Linux do) and the result says so. Entries must lie inside the usable range and must not
//! overlap.

use super::{
    Partition, PartitionError, PartitionTable, ReadAt, SECTOR_SIZE, Scheme, check_no_overlap,
    read_sector,
};

/// The header signature.
pub const SIGNATURE: &[u8; 8] = b"EFI PART";
/// Smallest header the spec allows.
pub const MIN_HEADER_SIZE: u32 = 92;
/// Largest entry array we read (the usual one is 128 × 128 = 16 KiB); bounds memory on hostile
/// input.
pub const MAX_ENTRY_ARRAY: u64 = 4 << 20;

/// A validated GPT header (entry array not yet checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GptHeader {
    pub my_lba: u64,
    pub alternate_lba: u64,
    pub first_usable: u64,
    pub last_usable: u64,
    pub disk_guid: [u8; 16],
    pub entries_lba: u64,
    pub num_entries: u32,
    pub entry_size: u32,
    pub entries_crc: u32,
}

impl GptHeader {
    /// Bytes of the entry array.
    pub fn entry_array_len(&self) -> u64 {
        u64::from(self.num_entries) * u64::from(self.entry_size)
    }
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

/// Formats a GUID the way `sfdisk`, `blkid` and the UEFI spec print it: the first three fields
/// are little-endian, the last two big-endian (mixed-endian).
pub fn format_guid(g: &[u8; 16]) -> String {
    format!(
        "{:02X}{:02X}{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
        g[3],
        g[2],
        g[1],
        g[0],
        g[5],
        g[4],
        g[7],
        g[6],
        g[8],
        g[9],
        g[10],
        g[11],
        g[12],
        g[13],
        g[14],
        g[15]
    )
}

/// Well-known partition type GUIDs (canonical text, upper case) and their names.
const KNOWN_TYPES: &[(&str, &str)] = &[
    ("C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "EFI System"),
    ("21686148-6449-6E6F-744E-656564454649", "BIOS boot"),
    ("0FC63DAF-8483-4772-8E79-3D69D8477DE4", "Linux filesystem"),
    (
        "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709",
        "Linux root (x86-64)",
    ),
    ("933AC7E1-2EB4-4F13-B844-0E14E2AEF915", "Linux home"),
    (
        "BC13C2FF-59E6-4262-A352-B275FD6F7172",
        "Linux extended boot",
    ),
    ("0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", "Linux swap"),
    ("E6D6D379-F507-44C2-A23C-238F2A3DF928", "Linux LVM"),
    ("A19D880F-05FC-4D3B-A006-743F0F84911E", "Linux RAID"),
    ("CA7D7CCB-63ED-4C53-861C-1742536059CC", "Linux LUKS"),
    (
        "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7",
        "Microsoft basic data",
    ),
    ("E3C9E316-0B5C-4DB8-817D-F92DF00215AE", "Microsoft reserved"),
    (
        "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC",
        "Windows recovery environment",
    ),
    (
        "6A898CC3-1DD2-11B2-99A6-080020736631",
        "Solaris /usr & Apple ZFS",
    ),
    ("516E7CBA-6ECF-11D6-8FF8-00022D09712B", "FreeBSD ZFS"),
];

/// The human name of a well-known type GUID.
pub fn type_name(guid_text: &str) -> Option<&'static str> {
    KNOWN_TYPES
        .iter()
        .find(|(g, _)| g.eq_ignore_ascii_case(guid_text))
        .map(|(_, n)| *n)
}

/// Whether `EFI PART` is at the start of sector `lba` (no other check).
pub fn has_gpt_signature_at(src: &(impl ReadAt + ?Sized), lba: u64) -> bool {
    read_sector(src, lba).is_ok_and(|s| &s[..8] == SIGNATURE)
}

/// Pure: parses and validates the header in `sector` (the 512 bytes at `lba`) for a disk of
/// `disk_sectors` sectors. Does not look at the entry array.
pub fn parse_header(
    sector: &[u8; 512],
    lba: u64,
    disk_sectors: u64,
) -> Result<GptHeader, PartitionError> {
    let offset = lba * SECTOR_SIZE;
    let bad = |at: usize, reason: String| PartitionError::Invalid {
        offset: offset + at as u64,
        reason,
    };
    if &sector[..8] != SIGNATURE {
        return Err(bad(0, "no GPT header signature \"EFI PART\"".into()));
    }
    let header_size = u32_at(sector, 12);
    if !(MIN_HEADER_SIZE..=SECTOR_SIZE as u32).contains(&header_size) {
        return Err(bad(
            12,
            format!("GPT header size {header_size} is not within {MIN_HEADER_SIZE}..=512"),
        ));
    }
    let stored_crc = u32_at(sector, 16);
    let mut copy = *sector;
    copy[16..20].fill(0);
    let crc = crc32fast::hash(&copy[..header_size as usize]);
    if crc != stored_crc {
        return Err(bad(
            16,
            format!("GPT header CRC32 mismatch (stored {stored_crc:#010x}, computed {crc:#010x})"),
        ));
    }
    let h = GptHeader {
        my_lba: u64_at(sector, 24),
        alternate_lba: u64_at(sector, 32),
        first_usable: u64_at(sector, 40),
        last_usable: u64_at(sector, 48),
        disk_guid: sector[56..72].try_into().expect("16 bytes"),
        entries_lba: u64_at(sector, 72),
        num_entries: u32_at(sector, 80),
        entry_size: u32_at(sector, 84),
        entries_crc: u32_at(sector, 88),
    };
    if h.my_lba != lba {
        return Err(bad(
            24,
            format!(
                "GPT header at sector {lba} says it is at sector {}",
                h.my_lba
            ),
        ));
    }
    if h.first_usable > h.last_usable || h.last_usable >= disk_sectors {
        return Err(bad(
            40,
            format!(
                "GPT usable sectors {}..={} do not fit a disk of {disk_sectors} sectors",
                h.first_usable, h.last_usable
            ),
        ));
    }
    if h.entry_size < 128
        || !(h.entry_size / 128).is_power_of_two()
        || !h.entry_size.is_multiple_of(128)
    {
        return Err(bad(
            84,
            format!("GPT entry size {} is not 128 × 2^n", h.entry_size),
        ));
    }
    let array = h.entry_array_len();
    if array > MAX_ENTRY_ARRAY {
        return Err(bad(
            80,
            format!("GPT entry array of {array} bytes is larger than {MAX_ENTRY_ARRAY}"),
        ));
    }
    let array_sectors = array.div_ceil(SECTOR_SIZE);
    let in_disk = h.entries_lba >= 2
        && h.entries_lba
            .checked_add(array_sectors)
            .is_some_and(|end| end <= disk_sectors);
    if !in_disk {
        return Err(bad(
            72,
            format!(
                "GPT entry array at sector {} ({array} bytes) is outside the disk",
                h.entries_lba
            ),
        ));
    }
    Ok(h)
}

/// Pure: checks the array CRC and turns the used entries into partitions (validated against
/// the header's usable range and each other). `array` is the header's whole entry array.
pub fn parse_entries(h: &GptHeader, array: &[u8]) -> Result<Vec<Partition>, PartitionError> {
    let array_offset = h.entries_lba * SECTOR_SIZE;
    if array.len() as u64 != h.entry_array_len() {
        return Err(PartitionError::Invalid {
            offset: array_offset,
            reason: format!(
                "GPT entry array is {} bytes, header says {}",
                array.len(),
                h.entry_array_len()
            ),
        });
    }
    let crc = crc32fast::hash(array);
    if crc != h.entries_crc {
        return Err(PartitionError::Invalid {
            offset: array_offset,
            reason: format!(
                "GPT partition entry array CRC32 mismatch (stored {:#010x}, computed {crc:#010x})",
                h.entries_crc
            ),
        });
    }
    let mut parts = Vec::new();
    for (i, e) in array.chunks_exact(h.entry_size as usize).enumerate() {
        let type_guid: [u8; 16] = e[..16].try_into().expect("16 bytes");
        if type_guid == [0; 16] {
            continue;
        }
        let entry_offset = array_offset + (i as u64) * u64::from(h.entry_size);
        let number = i as u32 + 1;
        let first = u64_at(e, 32);
        let last = u64_at(e, 40);
        if first > last {
            return Err(PartitionError::Invalid {
                offset: entry_offset + 32,
                reason: format!(
                    "GPT partition {number}: first sector {first} is after last sector {last}"
                ),
            });
        }
        let start = first * SECTOR_SIZE;
        let end = (last + 1) * SECTOR_SIZE;
        if first < h.first_usable || last > h.last_usable {
            return Err(PartitionError::OutOfBounds {
                number,
                start,
                end,
                area: "the GPT usable area",
                area_start: h.first_usable * SECTOR_SIZE,
                area_end: (h.last_usable + 1) * SECTOR_SIZE,
            });
        }
        let name_units: Vec<u16> = e[56..128]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        let type_id = format_guid(&type_guid);
        parts.push(Partition {
            number,
            start,
            size: end - start,
            type_name: type_name(&type_id),
            type_id,
            name: Some(String::from_utf16_lossy(&name_units)),
        });
    }
    check_no_overlap(&parts)?;
    Ok(parts)
}

/// Reads header + array at `lba` and validates both.
fn read_one(
    src: &(impl ReadAt + ?Sized),
    lba: u64,
    disk_sectors: u64,
) -> Result<(GptHeader, Vec<Partition>), PartitionError> {
    let sector = read_sector(src, lba)?;
    let h = parse_header(&sector, lba, disk_sectors)?;
    let mut array = vec![0u8; h.entry_array_len() as usize];
    let offset = h.entries_lba * SECTOR_SIZE;
    src.read_exact_at(offset, &mut array)
        .map_err(|source| PartitionError::Io { offset, source })?;
    let parts = parse_entries(&h, &array)?;
    Ok((h, parts))
}

/// Reads the GPT of a disk whose MBR is protective: the primary header at sector 1, or, if it
/// (or its array) is damaged, the backup header. Both damaged → the primary's error, with the
/// backup's appended.
pub fn read_gpt(src: &(impl ReadAt + ?Sized)) -> Result<PartitionTable, PartitionError> {
    let disk_sectors = src.size() / SECTOR_SIZE;
    if disk_sectors < 3 {
        return Err(PartitionError::Invalid {
            offset: 0,
            reason: "disk too small for a GPT".into(),
        });
    }
    let primary = read_one(src, 1, disk_sectors);
    let (h, parts, used_backup) = match primary {
        Ok((h, parts)) => (h, parts, false),
        Err(primary_err) => {
            // A 4Kn disk puts the header at byte 4096; say that instead of "bad signature".
            if matches!(&primary_err, PartitionError::Invalid { offset: 512, .. })
                && has_gpt_signature_at(src, 8)
            {
                return Err(PartitionError::Invalid {
                    offset: 4096,
                    reason: "GPT for 4096-byte sectors: only 512-byte sectors are supported".into(),
                });
            }
            let backup_lba = disk_sectors - 1;
            match read_one(src, backup_lba, disk_sectors) {
                Ok((h, parts)) => {
                    tracing::warn!(
                        "primary GPT is damaged ({primary_err}); using the backup GPT at sector {backup_lba}"
                    );
                    (h, parts, true)
                }
                Err(backup_err) => {
                    return Err(match primary_err {
                        PartitionError::Invalid { offset, reason } => PartitionError::Invalid {
                            offset,
                            reason: format!(
                                "{reason}; backup GPT at sector {backup_lba} unusable too: {backup_err}"
                            ),
                        },
                        other => other,
                    });
                }
            }
        }
    };
    Ok(PartitionTable {
        scheme: Scheme::Gpt {
            disk_guid: format_guid(&h.disk_guid),
            used_backup,
        },
        partitions: parts,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a GPT disk image in memory (protective MBR, primary and backup header + array).
    pub(crate) fn build_gpt(disk_sectors: u64, entries: &[(u64, u64, [u8; 16])]) -> Vec<u8> {
        let mut img = vec![0u8; (disk_sectors * SECTOR_SIZE) as usize];
        // Protective MBR.
        img[446 + 4] = 0xEE;
        img[446 + 8..446 + 12].copy_from_slice(&1u32.to_le_bytes());
        img[446 + 12..446 + 16]
            .copy_from_slice(&((disk_sectors - 1).min(u32::MAX as u64) as u32).to_le_bytes());
        img[510] = 0x55;
        img[511] = 0xAA;
        let mut array = vec![0u8; 128 * 128];
        for (i, (first, last, ty)) in entries.iter().enumerate() {
            let e = &mut array[i * 128..(i + 1) * 128];
            e[..16].copy_from_slice(ty);
            e[16] = i as u8 + 1;
            e[32..40].copy_from_slice(&first.to_le_bytes());
            e[40..48].copy_from_slice(&last.to_le_bytes());
            for (j, u) in "part".encode_utf16().enumerate() {
                e[56 + 2 * j..58 + 2 * j].copy_from_slice(&u.to_le_bytes());
            }
        }
        let array_crc = crc32fast::hash(&array);
        let backup_array_lba = disk_sectors - 1 - 32;
        for (my, alt, arr) in [
            (1, disk_sectors - 1, 2),
            (disk_sectors - 1, 1, backup_array_lba),
        ] {
            let mut h = [0u8; 512];
            h[..8].copy_from_slice(SIGNATURE);
            h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
            h[12..16].copy_from_slice(&92u32.to_le_bytes());
            h[24..32].copy_from_slice(&my.to_le_bytes());
            h[32..40].copy_from_slice(&alt.to_le_bytes());
            h[40..48].copy_from_slice(&34u64.to_le_bytes());
            h[48..56].copy_from_slice(&(disk_sectors - 34).to_le_bytes());
            h[56..72].copy_from_slice(&[7u8; 16]);
            h[72..80].copy_from_slice(&arr.to_le_bytes());
            h[80..84].copy_from_slice(&128u32.to_le_bytes());
            h[84..88].copy_from_slice(&128u32.to_le_bytes());
            h[88..92].copy_from_slice(&array_crc.to_le_bytes());
            let crc = crc32fast::hash(&h[..92]);
            h[16..20].copy_from_slice(&crc.to_le_bytes());
            let o = (my * SECTOR_SIZE) as usize;
            img[o..o + 512].copy_from_slice(&h);
            let a = (arr * SECTOR_SIZE) as usize;
            img[a..a + array.len()].copy_from_slice(&array);
        }
        img
    }

    const LINUX: [u8; 16] = [
        0xAF, 0x3D, 0xC6, 0x0F, 0x83, 0x84, 0x72, 0x47, 0x8E, 0x79, 0x3D, 0x69, 0xD8, 0x47, 0x7D,
        0xE4,
    ];

    /// Re-seals the primary header's CRC after a test edited it.
    fn reseal(img: &mut [u8], lba: usize) {
        let o = lba * 512;
        img[o + 16..o + 20].fill(0);
        let crc = crc32fast::hash(&img[o..o + 92]);
        img[o + 16..o + 20].copy_from_slice(&crc.to_le_bytes());
    }

    #[test]
    fn guid_text_is_mixed_endian() {
        assert_eq!(format_guid(&LINUX), "0FC63DAF-8483-4772-8E79-3D69D8477DE4");
        assert_eq!(type_name(&format_guid(&LINUX)), Some("Linux filesystem"));
    }

    #[test]
    fn reads_a_valid_table() {
        let img = build_gpt(4096, &[(2048, 3071, LINUX), (3072, 4000, LINUX)]);
        let t = read_gpt(img.as_slice()).unwrap();
        assert!(matches!(
            t.scheme,
            Scheme::Gpt {
                used_backup: false,
                ..
            }
        ));
        assert_eq!(t.partitions.len(), 2);
        assert_eq!(t.partitions[0].number, 1);
        assert_eq!(t.partitions[0].start, 2048 * 512);
        assert_eq!(t.partitions[0].size, 1024 * 512);
        assert_eq!(t.partitions[0].name.as_deref(), Some("part"));
        assert_eq!(t.partitions[1].start, 3072 * 512);
        assert_eq!(t.partitions[1].size, 929 * 512);
    }

    #[test]
    fn damaged_primary_falls_back_to_backup_and_both_damaged_is_an_error() {
        let mut img = build_gpt(4096, &[(2048, 3071, LINUX)]);
        img[512 + 40] ^= 1; // first usable LBA changed without fixing the CRC
        let t = read_gpt(img.as_slice()).unwrap();
        assert!(matches!(
            t.scheme,
            Scheme::Gpt {
                used_backup: true,
                ..
            }
        ));
        assert_eq!(t.partitions.len(), 1);
        let last = 4095 * 512;
        img[last + 16] ^= 0xFF;
        let err = read_gpt(img.as_slice()).unwrap_err().to_string();
        assert!(
            err.starts_with("byte 528: GPT header CRC32 mismatch"),
            "{err}"
        );
        assert!(
            err.contains(
                "backup GPT at sector 4095 unusable too: byte 2096656: GPT header CRC32 mismatch"
            ),
            "{err}"
        );
    }

    #[test]
    fn entry_array_crc_is_checked() {
        let mut img = build_gpt(4096, &[(2048, 3071, LINUX)]);
        img[1024 + 40] = 0x10; // primary array, entry 1 last LBA
        let backup_array = (4095 - 32) * 512;
        img[backup_array + 40] = 0x10;
        let err = read_gpt(img.as_slice()).unwrap_err().to_string();
        assert!(
            err.starts_with("byte 1024: GPT partition entry array CRC32 mismatch"),
            "{err}"
        );
    }

    #[test]
    fn overlapping_and_out_of_bounds_entries_are_rejected() {
        let img = build_gpt(4096, &[(2048, 3071, LINUX), (3000, 3500, LINUX)]);
        let err = read_gpt(img.as_slice()).unwrap_err();
        assert!(
            matches!(err, PartitionError::Overlap { a: 1, b: 2, .. }),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "partitions 1 and 2 overlap (bytes 1048576..1572864 and 1536000..1792512)"
        );
        let img = build_gpt(4096, &[(2048, 4090, LINUX)]);
        let err = read_gpt(img.as_slice()).unwrap_err();
        assert!(
            matches!(err, PartitionError::OutOfBounds { number: 1, .. }),
            "{err}"
        );
        let img = build_gpt(4096, &[(3000, 2048, LINUX)]);
        let err = read_gpt(img.as_slice()).unwrap_err().to_string();
        assert!(
            err.contains("first sector 3000 is after last sector 2048"),
            "{err}"
        );
    }

    #[test]
    fn header_fields_are_validated() {
        let base = build_gpt(4096, &[(2048, 3071, LINUX)]);
        let sector = |img: &[u8]| -> [u8; 512] { img[512..1024].try_into().unwrap() };
        // Usable range beyond the disk.
        let mut img = base.clone();
        img[512 + 48..512 + 56].copy_from_slice(&5000u64.to_le_bytes());
        reseal(&mut img, 1);
        let err = parse_header(&sector(&img), 1, 4096)
            .unwrap_err()
            .to_string();
        assert!(err.contains("do not fit a disk of 4096 sectors"), "{err}");
        // Silly entry size.
        let mut img = base.clone();
        img[512 + 84..512 + 88].copy_from_slice(&200u32.to_le_bytes());
        reseal(&mut img, 1);
        let err = parse_header(&sector(&img), 1, 4096)
            .unwrap_err()
            .to_string();
        assert!(err.contains("entry size 200"), "{err}");
        // Hostile entry count.
        let mut img = base.clone();
        img[512 + 80..512 + 84].copy_from_slice(&u32::MAX.to_le_bytes());
        reseal(&mut img, 1);
        let err = parse_header(&sector(&img), 1, 4096)
            .unwrap_err()
            .to_string();
        assert!(err.contains("larger than"), "{err}");
        // Wrong my-LBA.
        let mut img = base;
        img[512 + 24] = 9;
        reseal(&mut img, 1);
        let err = parse_header(&sector(&img), 1, 4096)
            .unwrap_err()
            .to_string();
        assert!(err.contains("says it is at sector 9"), "{err}");
    }

    #[test]
    fn four_k_sector_gpt_is_named() {
        let mut img = vec![0u8; 64 * 4096];
        img[446 + 4] = 0xEE;
        img[510] = 0x55;
        img[511] = 0xAA;
        img[4096..4104].copy_from_slice(SIGNATURE);
        let err = read_gpt(img.as_slice()).unwrap_err().to_string();
        assert!(err.contains("4096-byte sectors"), "{err}");
    }

    proptest::proptest! {
        /// Arbitrary bytes in the header sector and array never panic the parser.
        #[test]
        fn arbitrary_bytes_never_panic(
            hdr in proptest::collection::vec(proptest::num::u8::ANY, 512),
            tweak in 0u64..u64::MAX,
        ) {
            let mut img = build_gpt(256, &[]);
            img[512..1024].copy_from_slice(&hdr);
            img[512..520].copy_from_slice(SIGNATURE);
            img[512 + 12..512 + 16].copy_from_slice(&92u32.to_le_bytes());
            img[512 + 24..512 + 32].copy_from_slice(&1u64.to_le_bytes());
            img[512 + 72..512 + 80].copy_from_slice(&(tweak % 300).to_le_bytes());
            reseal(&mut img, 1);
            let _ = read_gpt(img.as_slice());
        }
    }
}
