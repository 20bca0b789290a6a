//! Filesystem detection by superblock magic, over the first bytes of a partition (pure).
//!
//! Why our own: we decide what to hand to the kernel's `mount`, so we want to know exactly
//! what was checked, and avoid running `blkid` on untrusted data for every partition. Each
//! probe checks the magic plus the fields a real superblock must have, so a stray magic in
//! random data is unlikely to match. Where two signatures could both be present (a fresh
//! filesystem over a stale one), the order below decides: signatures at byte 0 (LUKS, LVM,
//! md 1.1, XFS, NTFS, exFAT, FAT) before those further in (md 1.2, ext, btrfs, ISO 9660,
//! swap, ZFS), since `mkfs` overwrites the start of a device first.
//!
//! | what | where (bytes) | check |
//! | --- | --- | --- |
//! | LUKS 1/2 | 0 | `LUKS\xba\xbe` |
//! | LVM2 PV | sector 0..=3 | `LABELONE` at 0 and `LVM2 001` at 24 of that sector |
//! | Linux md 1.1 / 1.2 | 0 / 4096 | `0xa92b4efc` LE, major version 1 |
//! | XFS | 0 | `XFSB`, block size 512..=65536, power of two |
//! | NTFS | 3 | `NTFS    ` |
//! | exFAT | 3 | `EXFAT   ` |
//! | FAT12/16/32 | 0 | jump, sane BPB (sector size, cluster size, reserved, FATs, media) |
//! | ext2/3/4 | 1024 | `0xEF53` at 1024+56, block size ≤ 64 KiB; feature flags pick 2/3/4 like blkid |
//! | btrfs | 65536 | `_BHRfS_M` at 65536+64 |
//! | ISO 9660 | 32768 | type 1 and `CD001` at 32769 |
//! | swap | page size − 10 | `SWAPSPACE2` / `SWAP-SPACE` for 4, 8, 16, 64 KiB pages |
//! | ZFS member | 128 KiB..256 KiB | uberblock magic `0x00bab10c` in a 1 KiB slot |

use serde::Serialize;

/// How many bytes from the start of a partition [`detect_filesystem`] wants to see (covers the
/// ZFS uberblock ring of label 0). A shorter probe (small partition) is fine.
pub const PROBE_SIZE: usize = 256 * 1024;

/// FAT variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum FatBits {
    Fat12,
    Fat16,
    Fat32,
}

/// What was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FsKind {
    Ext2,
    Ext3,
    Ext4,
    /// An external ext3/4 journal device.
    ExtJournal,
    Xfs,
    Btrfs,
    Vfat(FatBits),
    Ntfs,
    Exfat,
    Iso9660,
    Swap,
    LvmPv,
    Luks,
    LinuxRaid,
    ZfsMember,
}

/// How vzsnap mounts a filesystem: type and the options beyond `ro,nosuid,nodev,noexec`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountSpec {
    /// `mount -t` type (also the name looked up in `/proc/filesystems`).
    pub fstype: &'static str,
    pub options: &'static [&'static str],
}

impl FsKind {
    /// The blkid-style name (`ext4`, `vfat`, `LVM2_member`…).
    pub fn name(&self) -> &'static str {
        match self {
            FsKind::Ext2 => "ext2",
            FsKind::Ext3 => "ext3",
            FsKind::Ext4 => "ext4",
            FsKind::ExtJournal => "jbd",
            FsKind::Xfs => "xfs",
            FsKind::Btrfs => "btrfs",
            FsKind::Vfat(_) => "vfat",
            FsKind::Ntfs => "ntfs",
            FsKind::Exfat => "exfat",
            FsKind::Iso9660 => "iso9660",
            FsKind::Swap => "swap",
            FsKind::LvmPv => "LVM2_member",
            FsKind::Luks => "crypto_LUKS",
            FsKind::LinuxRaid => "linux_raid_member",
            FsKind::ZfsMember => "zfs_member",
        }
    }

    /// How to mount it read-only, or `None` if vzsnap does not mount it.
    ///
    /// - ext2/3/4 go through the ext4 driver (it handles all three) with `noload`: a journal
    ///   must not be replayed, the device is read-only anyway.
    /// - xfs: `norecovery` (no log replay), `nouuid` (the same guest filesystem may be mounted
    ///   from two snapshots, or while the original is mounted elsewhere).
    /// - btrfs: `rescue=nologreplay`, else a dirty log on a read-only device fails the mount.
    /// - vfat: nothing extra.
    ///
    /// NTFS, exFAT and ISO 9660 are recognised and reported but not mounted: fewer in-kernel
    /// parsers exposed to guest-controlled data.
    pub fn mount_spec(&self) -> Option<MountSpec> {
        match self {
            FsKind::Ext2 | FsKind::Ext3 | FsKind::Ext4 => Some(MountSpec {
                fstype: "ext4",
                options: &["noload"],
            }),
            FsKind::Xfs => Some(MountSpec {
                fstype: "xfs",
                options: &["norecovery", "nouuid"],
            }),
            FsKind::Btrfs => Some(MountSpec {
                fstype: "btrfs",
                options: &["rescue=nologreplay"],
            }),
            FsKind::Vfat(_) => Some(MountSpec {
                fstype: "vfat",
                options: &[],
            }),
            _ => None,
        }
    }

    /// Why it is not mounted and what the admin can do instead (for kinds without a
    /// [`MountSpec`]).
    pub fn not_mounted_reason(&self) -> &'static str {
        match self {
            FsKind::Swap => "swap space: nothing to mount",
            FsKind::LvmPv => {
                "LVM2 physical volume: vzsnap does not attach or activate guest volume groups (the \
                 host's LVM could auto-activate them, and their names may clash with the host's)"
            }
            FsKind::Luks => "LUKS encrypted: vzsnap does not open encrypted volumes",
            FsKind::LinuxRaid => "Linux md RAID member: vzsnap does not assemble arrays",
            FsKind::ZfsMember => "ZFS pool member: vzsnap does not import guest pools",
            FsKind::ExtJournal => "external ext3/4 journal: nothing to mount",
            FsKind::Ntfs | FsKind::Exfat | FsKind::Iso9660 => {
                "recognised but not mounted: vzsnap mounts only ext2/3/4, xfs, btrfs and vfat"
            }
            _ => "",
        }
    }

    /// Whether the signature is written over byte 0 of the device (so it beats an MBR there).
    pub fn owns_first_sector(&self) -> bool {
        matches!(
            self,
            FsKind::Vfat(_)
                | FsKind::Ntfs
                | FsKind::Exfat
                | FsKind::Xfs
                | FsKind::Luks
                | FsKind::LvmPv
        )
    }
}

/// A detected filesystem (or volume-manager member) with its label and UUID when it has them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Filesystem {
    pub kind: FsKind,
    pub label: Option<String>,
    pub uuid: Option<String>,
}

fn at<const N: usize>(b: &[u8], o: usize) -> Option<[u8; N]> {
    b.get(o..o + N)?.try_into().ok()
}

fn u16le(b: &[u8], o: usize) -> Option<u16> {
    at::<2>(b, o).map(u16::from_le_bytes)
}

fn u32le(b: &[u8], o: usize) -> Option<u32> {
    at::<4>(b, o).map(u32::from_le_bytes)
}

fn u32be(b: &[u8], o: usize) -> Option<u32> {
    at::<4>(b, o).map(u32::from_be_bytes)
}

fn has(b: &[u8], o: usize, magic: &[u8]) -> bool {
    b.get(o..o + magic.len()) == Some(magic)
}

/// A fixed-size, NUL- or space-padded label; `None` if empty.
fn label(bytes: &[u8]) -> Option<String> {
    let end = bytes.iter().position(|&c| c == 0).unwrap_or(bytes.len());
    let s = String::from_utf8_lossy(&bytes[..end])
        .trim_end()
        .to_string();
    (!s.is_empty()).then_some(s)
}

fn uuid_text(b: &[u8; 16]) -> Option<String> {
    (!b.iter().all(|&x| x == 0)).then(|| store::layout::format_uuid(b))
}

fn found(kind: FsKind, label: Option<String>, uuid: Option<String>) -> Option<Filesystem> {
    Some(Filesystem { kind, label, uuid })
}

/// Identifies what the bytes at the start of a partition (or whole disk) hold. `probe` is up
/// to [`PROBE_SIZE`] bytes from the start. `None`: nothing recognised.
pub fn detect_filesystem(probe: &[u8]) -> Option<Filesystem> {
    luks(probe)
        .or_else(|| lvm(probe))
        .or_else(|| md(probe, 0))
        .or_else(|| xfs(probe))
        .or_else(|| ntfs_exfat(probe))
        .or_else(|| fat(probe))
        .or_else(|| md(probe, 4096))
        .or_else(|| ext(probe))
        .or_else(|| btrfs(probe))
        .or_else(|| iso9660(probe))
        .or_else(|| swap(probe))
        .or_else(|| zfs(probe))
}

fn luks(b: &[u8]) -> Option<Filesystem> {
    if !has(b, 0, b"LUKS\xba\xbe") {
        return None;
    }
    found(FsKind::Luks, None, b.get(168..208).and_then(label))
}

fn lvm(b: &[u8]) -> Option<Filesystem> {
    for sector in 0..4 {
        let o = sector * 512;
        if has(b, o, b"LABELONE") && has(b, o + 24, b"LVM2 001") {
            // label_header.offset_xl (o+20) points at the pv_header, whose first 32 bytes are
            // the PV UUID, printed by LVM as 6-4-4-4-4-4-6.
            let pv = o + u32le(b, o + 20)? as usize;
            let uuid = b
                .get(pv..pv + 32)
                .filter(|u| u.iter().all(u8::is_ascii_alphanumeric))
                .map(|u| {
                    let s = String::from_utf8_lossy(u);
                    let cuts = [0, 6, 10, 14, 18, 22, 26, 32];
                    cuts.windows(2)
                        .map(|w| &s[w[0]..w[1]])
                        .collect::<Vec<_>>()
                        .join("-")
                });
            return found(FsKind::LvmPv, None, uuid);
        }
    }
    None
}

fn md(b: &[u8], o: usize) -> Option<Filesystem> {
    if u32le(b, o)? != 0xa92b_4efc || u32le(b, o + 4)? != 1 {
        return None;
    }
    found(
        FsKind::LinuxRaid,
        b.get(o + 32..o + 64).and_then(label),
        at::<16>(b, o + 16).and_then(|u| uuid_text(&u)),
    )
}

fn xfs(b: &[u8]) -> Option<Filesystem> {
    if !has(b, 0, b"XFSB") {
        return None;
    }
    let bs = u32be(b, 4)?;
    if !(512..=65536).contains(&bs) || !bs.is_power_of_two() {
        return None;
    }
    found(
        FsKind::Xfs,
        b.get(108..120).and_then(label),
        at::<16>(b, 32).and_then(|u| uuid_text(&u)),
    )
}

fn ntfs_exfat(b: &[u8]) -> Option<Filesystem> {
    if has(b, 3, b"NTFS    ") {
        let serial = at::<8>(b, 0x48)
            .map(u64::from_le_bytes)
            .filter(|&s| s != 0)
            .map(|s| format!("{s:016X}"));
        return found(FsKind::Ntfs, None, serial);
    }
    if has(b, 3, b"EXFAT   ") {
        let serial = u32le(b, 100)
            .filter(|&s| s != 0)
            .map(|s| format!("{:04X}-{:04X}", s >> 16, s & 0xffff));
        return found(FsKind::Exfat, None, serial);
    }
    None
}

fn fat(b: &[u8]) -> Option<Filesystem> {
    let jump_ok =
        matches!(b.first(), Some(0xE9)) || (b.first() == Some(&0xEB) && b.get(2) == Some(&0x90));
    if !jump_ok {
        return None;
    }
    let bps = u16le(b, 11)?;
    let spc = *b.get(13)?;
    let reserved = u16le(b, 14)?;
    let fats = *b.get(16)?;
    let root_entries = u16le(b, 17)?;
    let total16 = u16le(b, 19)?;
    let media = *b.get(21)?;
    let spf16 = u16le(b, 22)?;
    let total32 = u32le(b, 32)?;
    if !matches!(bps, 512 | 1024 | 2048 | 4096)
        || spc == 0
        || !spc.is_power_of_two()
        || reserved == 0
        || !(1..=4).contains(&fats)
        || !(media == 0xF0 || media >= 0xF8)
    {
        return None;
    }
    let total = if total16 != 0 {
        u32::from(total16)
    } else {
        total32
    };
    let (spf, ext) = if spf16 != 0 {
        (u32::from(spf16), 36)
    } else {
        (u32le(b, 36)?, 64)
    };
    if total == 0 || spf == 0 {
        return None;
    }
    let root_sectors = (u32::from(root_entries) * 32).div_ceil(u32::from(bps));
    let meta = u32::from(reserved) + u32::from(fats) * spf + root_sectors;
    let clusters = total.checked_sub(meta)? / u32::from(spc);
    let bits = if spf16 == 0 {
        FatBits::Fat32
    } else if clusters < 4085 {
        FatBits::Fat12
    } else {
        FatBits::Fat16
    };
    // Extended BPB (signature 0x29 at ext+2): volume id and label.
    let (mut lbl, mut id) = (None, None);
    if b.get(ext + 2) == Some(&0x29) {
        id = u32le(b, ext + 3).map(|s| format!("{:04X}-{:04X}", s >> 16, s & 0xffff));
        lbl = b
            .get(ext + 7..ext + 18)
            .and_then(label)
            .filter(|l| l != "NO NAME");
    }
    found(FsKind::Vfat(bits), lbl, id)
}

fn ext(b: &[u8]) -> Option<Filesystem> {
    const SB: usize = 1024;
    if u16le(b, SB + 56)? != 0xEF53 || u32le(b, SB + 24)? > 6 {
        return None;
    }
    let compat = u32le(b, SB + 92)?;
    let incompat = u32le(b, SB + 96)?;
    let ro_compat = u32le(b, SB + 100)?;
    const HAS_JOURNAL: u32 = 0x4;
    const JOURNAL_DEV: u32 = 0x8;
    // What ext2/ext3 drivers support (blkid's EXT2/EXT3_FEATURE_*_SUPP).
    const EXT2_INCOMPAT: u32 = 0x2 | 0x10; // FILETYPE | META_BG
    const EXT3_INCOMPAT: u32 = 0x2 | 0x4 | 0x10; // + RECOVER
    const EXT23_RO_COMPAT: u32 = 0x1 | 0x2 | 0x4; // SPARSE_SUPER | LARGE_FILE | BTREE_DIR
    let kind = if incompat & JOURNAL_DEV != 0 {
        FsKind::ExtJournal
    } else if compat & HAS_JOURNAL != 0 {
        if incompat & !EXT3_INCOMPAT != 0 || ro_compat & !EXT23_RO_COMPAT != 0 {
            FsKind::Ext4
        } else {
            FsKind::Ext3
        }
    } else if incompat & !EXT2_INCOMPAT != 0 || ro_compat & !EXT23_RO_COMPAT != 0 {
        FsKind::Ext4
    } else {
        FsKind::Ext2
    };
    found(
        kind,
        b.get(SB + 120..SB + 136).and_then(label),
        at::<16>(b, SB + 104).and_then(|u| uuid_text(&u)),
    )
}

fn btrfs(b: &[u8]) -> Option<Filesystem> {
    const SB: usize = 65536;
    if !has(b, SB + 64, b"_BHRfS_M") {
        return None;
    }
    found(
        FsKind::Btrfs,
        b.get(SB + 0x12b..SB + 0x12b + 256).and_then(label),
        at::<16>(b, SB + 32).and_then(|u| uuid_text(&u)),
    )
}

fn iso9660(b: &[u8]) -> Option<Filesystem> {
    if b.get(32768) != Some(&1) || !has(b, 32769, b"CD001") {
        return None;
    }
    found(
        FsKind::Iso9660,
        b.get(32768 + 40..32768 + 72).and_then(label),
        None,
    )
}

fn swap(b: &[u8]) -> Option<Filesystem> {
    for page in [4096usize, 8192, 16384, 65536] {
        if has(b, page - 10, b"SWAPSPACE2") || has(b, page - 10, b"SWAP-SPACE") {
            return found(
                FsKind::Swap,
                b.get(1024 + 28..1024 + 44).and_then(label),
                at::<16>(b, 1024 + 12).and_then(|u| uuid_text(&u)),
            );
        }
    }
    None
}

fn zfs(b: &[u8]) -> Option<Filesystem> {
    const MAGIC: u64 = 0x00ba_b10c;
    for slot in 0..128 {
        let o = 128 * 1024 + slot * 1024;
        let Some(m) = at::<8>(b, o) else { break };
        if u64::from_le_bytes(m) == MAGIC || u64::from_be_bytes(m) == MAGIC {
            return found(FsKind::ZfsMember, None, None);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext_sb(compat: u32, incompat: u32, ro: u32) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        b[1024 + 56..1024 + 58].copy_from_slice(&0xEF53u16.to_le_bytes());
        b[1024 + 92..1024 + 96].copy_from_slice(&compat.to_le_bytes());
        b[1024 + 96..1024 + 100].copy_from_slice(&incompat.to_le_bytes());
        b[1024 + 100..1024 + 104].copy_from_slice(&ro.to_le_bytes());
        b[1024 + 104..1024 + 120].copy_from_slice(&[0x11; 16]);
        b[1024 + 120..1024 + 125].copy_from_slice(b"root\0");
        b
    }

    #[test]
    fn ext_variants_follow_the_feature_flags() {
        assert_eq!(
            detect_filesystem(&ext_sb(0, 0x2, 0x3)).unwrap().kind,
            FsKind::Ext2
        );
        assert_eq!(
            detect_filesystem(&ext_sb(0x4, 0x2, 0x3)).unwrap().kind,
            FsKind::Ext3
        );
        assert_eq!(
            detect_filesystem(&ext_sb(0x4, 0x2 | 0x40 | 0x80 | 0x200, 0x3))
                .unwrap()
                .kind,
            FsKind::Ext4
        );
        assert_eq!(
            detect_filesystem(&ext_sb(0, 0x2, 0x3 | 0x400))
                .unwrap()
                .kind,
            FsKind::Ext4
        );
        assert_eq!(
            detect_filesystem(&ext_sb(0, 0x8, 0)).unwrap().kind,
            FsKind::ExtJournal
        );
        let fs = detect_filesystem(&ext_sb(0x4, 0x2, 0x3)).unwrap();
        assert_eq!(fs.label.as_deref(), Some("root"));
        assert_eq!(
            fs.uuid.as_deref(),
            Some("11111111-1111-1111-1111-111111111111")
        );
        let mut bad = ext_sb(0, 0, 0);
        bad[1024 + 24] = 9; // block size 2^(10+9)
        assert_eq!(detect_filesystem(&bad), None);
    }

    #[test]
    fn nothing_in_zeros_or_short_probes() {
        assert_eq!(detect_filesystem(&[]), None);
        assert_eq!(detect_filesystem(&[0u8; 100]), None);
        assert_eq!(detect_filesystem(&vec![0u8; PROBE_SIZE]), None);
    }

    #[test]
    fn an_mbr_with_grub_jump_is_not_fat() {
        // GRUB's boot.img starts with EB 63 90 and leaves the BPB area zero.
        let mut b = vec![0u8; 512];
        b[..3].copy_from_slice(&[0xEB, 0x63, 0x90]);
        b[510] = 0x55;
        b[511] = 0xAA;
        assert_eq!(detect_filesystem(&b), None);
    }

    #[test]
    fn small_magic_probes() {
        let mut b = vec![0u8; PROBE_SIZE];
        b[..8].copy_from_slice(b"XFSB\0\0\x10\0");
        b[108..112].copy_from_slice(b"data");
        assert_eq!(
            detect_filesystem(&b).unwrap(),
            Filesystem {
                kind: FsKind::Xfs,
                label: Some("data".into()),
                uuid: None
            }
        );

        let mut b = vec![0u8; PROBE_SIZE];
        b[512..520].copy_from_slice(b"LABELONE");
        b[512 + 20..512 + 24].copy_from_slice(&32u32.to_le_bytes());
        b[512 + 24..512 + 32].copy_from_slice(b"LVM2 001");
        b[512 + 32..512 + 64].copy_from_slice(b"abcdefghijklmnopqrstuvwxyzABCDEF");
        let fs = detect_filesystem(&b).unwrap();
        assert_eq!(fs.kind, FsKind::LvmPv);
        assert_eq!(
            fs.uuid.as_deref(),
            Some("abcdef-ghij-klmn-opqr-stuv-wxyz-ABCDEF")
        );
        assert!(fs.kind.mount_spec().is_none());

        let mut b = vec![0u8; PROBE_SIZE];
        b[4086..4096].copy_from_slice(b"SWAPSPACE2");
        assert_eq!(detect_filesystem(&b).unwrap().kind, FsKind::Swap);

        let mut b = vec![0u8; PROBE_SIZE];
        b[65536 + 64..65536 + 72].copy_from_slice(b"_BHRfS_M");
        assert_eq!(detect_filesystem(&b).unwrap().kind, FsKind::Btrfs);
        // A probe cut short before the btrfs superblock sees nothing.
        assert_eq!(detect_filesystem(&b[..65536]), None);

        let mut b = vec![0u8; PROBE_SIZE];
        b[32768] = 1;
        b[32769..32774].copy_from_slice(b"CD001");
        assert_eq!(detect_filesystem(&b).unwrap().kind, FsKind::Iso9660);

        let mut b = vec![0u8; PROBE_SIZE];
        b[3..11].copy_from_slice(b"NTFS    ");
        assert_eq!(detect_filesystem(&b).unwrap().kind, FsKind::Ntfs);

        let mut b = vec![0u8; PROBE_SIZE];
        b[..6].copy_from_slice(b"LUKS\xba\xbe");
        assert_eq!(detect_filesystem(&b).unwrap().kind, FsKind::Luks);

        let mut b = vec![0u8; PROBE_SIZE];
        b[4096..4100].copy_from_slice(&0xa92b_4efcu32.to_le_bytes());
        b[4100] = 1;
        assert_eq!(detect_filesystem(&b).unwrap().kind, FsKind::LinuxRaid);

        let mut b = vec![0u8; PROBE_SIZE];
        b[128 * 1024 + 5 * 1024..128 * 1024 + 5 * 1024 + 8]
            .copy_from_slice(&0x00ba_b10cu64.to_le_bytes());
        assert_eq!(detect_filesystem(&b).unwrap().kind, FsKind::ZfsMember);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(proptest::num::u8::ANY, 0..70000)) {
            let _ = detect_filesystem(&b);
        }
    }
}
