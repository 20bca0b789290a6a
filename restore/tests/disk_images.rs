//! Partition-table and filesystem detection on real images made by `sfdisk` and `mkfs.*`,
//! cross-checked against util-linux's own readers (`sfdisk --json`, `blkid`). No root needed.

mod common;

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use common::images::{mkfs, sfdisk, sparse, splice};

use restore::disk::{DiskLayout, inspect_disk};
use restore::fsdetect::{FatBits, FsKind};
use restore::partition::{ImageFile, PartitionError, Scheme, mbr};
use store::cmd::Cmd;

const MIB: u64 = 1 << 20;

fn blkid(path: &Path, tag: &str) -> String {
    Cmd::new("blkid")
        .args(["-p", "-o", "value", "-s", tag])
        .arg(path)
        .run()
        .unwrap()
        .stdout
        .trim()
        .to_string()
}

/// (start sector, size in sectors, type) per partition as `sfdisk --json` reports them.
fn sfdisk_json(img: &Path) -> Vec<(u64, u64, String)> {
    let out = Cmd::new("sfdisk")
        .arg("--json")
        .arg(img)
        .run()
        .unwrap()
        .stdout;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    v["partitiontable"]["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["start"].as_u64().unwrap(),
                p["size"].as_u64().unwrap(),
                p["type"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn open(img: &Path) -> ImageFile {
    ImageFile::open(img).unwrap()
}

#[test]
fn gpt_with_ext4_and_vfat_matches_sfdisk_and_blkid() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("disk.raw");
    sparse(&img, 32 * MIB);
    sfdisk(
        &img,
        "label: gpt\n\
         start=2048, size=32768, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=\"root\"\n\
         start=34816, size=16384, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=\"esp\"\n",
    );
    let ext4 = mkfs(
        dir.path(),
        "p1",
        16 * MIB,
        "mkfs.ext4",
        &["-q", "-F", "-L", "guestroot"],
    );
    let vfat = mkfs(dir.path(), "p2", 8 * MIB, "mkfs.vfat", &["-n", "GUESTESP"]);
    splice(&img, 2048 * 512, &ext4);
    splice(&img, 34816 * 512, &vfat);

    let layout = inspect_disk(&open(&img)).unwrap();
    let DiskLayout::Partitioned { table, partitions } = layout else {
        panic!("{layout:?}")
    };
    assert!(matches!(
        table.scheme,
        Scheme::Gpt {
            used_backup: false,
            ..
        }
    ));
    let ours: Vec<(u64, u64, String)> = partitions
        .iter()
        .map(|p| {
            (
                p.partition.start / 512,
                p.partition.size / 512,
                p.partition.type_id.clone(),
            )
        })
        .collect();
    assert_eq!(ours, sfdisk_json(&img));
    assert_eq!(partitions[0].partition.name.as_deref(), Some("root"));
    assert_eq!(partitions[1].partition.type_name, Some("EFI System"));

    let fs1 = partitions[0].filesystem.clone().unwrap();
    assert_eq!(fs1.kind, FsKind::Ext4);
    assert_eq!(fs1.label.as_deref(), Some("guestroot"));
    assert_eq!(fs1.uuid.unwrap(), blkid(&ext4, "UUID"));
    let fs2 = partitions[1].filesystem.clone().unwrap();
    assert_eq!(fs2.kind, FsKind::Vfat(FatBits::Fat12));
    assert_eq!(blkid(&vfat, "VERSION"), "FAT12");
    assert_eq!(fs2.label.as_deref(), Some("GUESTESP"));
    assert_eq!(fs2.uuid.unwrap(), blkid(&vfat, "UUID"));
}

#[test]
fn mbr_with_logical_partitions_matches_sfdisk() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("disk.raw");
    sparse(&img, 64 * MIB);
    sfdisk(
        &img,
        "label: dos\n\
         start=2048, size=8192, type=83\n\
         start=10240, size=8192, type=82\n\
         start=18432, type=5\n\
         start=20480, size=8192, type=83\n\
         start=30720, size=8192, type=8e\n\
         start=40960, type=83\n",
    );
    let ext2 = mkfs(
        dir.path(),
        "p5",
        4 * MIB,
        "mkfs.ext4",
        &["-q", "-F", "-t", "ext2"],
    );
    splice(&img, 20480 * 512, &ext2);
    let swap = mkfs(dir.path(), "p2", 4 * MIB, "mkswap", &["-L", "guestswap"]);
    splice(&img, 10240 * 512, &swap);

    let DiskLayout::Partitioned { table, partitions } = inspect_disk(&open(&img)).unwrap() else {
        panic!()
    };
    assert!(matches!(table.scheme, Scheme::Mbr { .. }));
    let numbers: Vec<u32> = partitions.iter().map(|p| p.partition.number).collect();
    assert_eq!(numbers, vec![1, 2, 5, 6, 7]);
    // sfdisk lists the extended container too; we list what it contains.
    let theirs: Vec<(u64, u64, String)> = sfdisk_json(&img)
        .into_iter()
        .filter(|(_, _, t)| t != "5")
        .collect();
    let ours: Vec<(u64, u64, String)> = partitions
        .iter()
        .map(|p| {
            (
                p.partition.start / 512,
                p.partition.size / 512,
                p.partition.type_id.trim_start_matches("0x").to_string(),
            )
        })
        .collect();
    assert_eq!(ours, theirs);
    assert_eq!(
        partitions[1].filesystem.as_ref().unwrap().kind,
        FsKind::Swap
    );
    assert_eq!(
        partitions[1].filesystem.as_ref().unwrap().label.as_deref(),
        Some("guestswap")
    );
    assert_eq!(
        partitions[2].filesystem.as_ref().unwrap().kind,
        FsKind::Ext2
    );
    assert_eq!(partitions[0].filesystem, None);
}

#[test]
fn whole_disk_filesystems_match_blkid() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(PathBuf, FsKind)> = vec![
        (
            mkfs(dir.path(), "ext4", 16 * MIB, "mkfs.ext4", &["-q", "-F"]),
            FsKind::Ext4,
        ),
        (
            mkfs(
                dir.path(),
                "ext3",
                16 * MIB,
                "mkfs.ext4",
                &["-q", "-F", "-t", "ext3"],
            ),
            FsKind::Ext3,
        ),
        (
            mkfs(
                dir.path(),
                "xfs",
                64 * MIB,
                "mkfs.xfs",
                &["-q", "-f", "-L", "x"],
            ),
            FsKind::Xfs,
        ),
        (
            mkfs(
                dir.path(),
                "btrfs",
                128 * MIB,
                "mkfs.btrfs",
                &["-q", "-f", "-L", "b"],
            ),
            FsKind::Btrfs,
        ),
        (
            mkfs(dir.path(), "fat12", 2 * MIB, "mkfs.vfat", &["-F", "12"]),
            FsKind::Vfat(FatBits::Fat12),
        ),
        (
            mkfs(dir.path(), "fat16", 16 * MIB, "mkfs.vfat", &["-F", "16"]),
            FsKind::Vfat(FatBits::Fat16),
        ),
        (
            mkfs(dir.path(), "fat32", 64 * MIB, "mkfs.vfat", &["-F", "32"]),
            FsKind::Vfat(FatBits::Fat32),
        ),
        (
            mkfs(dir.path(), "swap", 4 * MIB, "mkswap", &[]),
            FsKind::Swap,
        ),
    ];
    for (path, kind) in cases {
        let layout = inspect_disk(&open(&path)).unwrap();
        let DiskLayout::WholeDisk { filesystem } = layout else {
            panic!("{}: {layout:?}", path.display())
        };
        assert_eq!(filesystem.kind, kind, "{}", path.display());
        assert_eq!(
            filesystem.kind.name(),
            blkid(&path, "TYPE"),
            "{}",
            path.display()
        );
        assert_eq!(
            filesystem.uuid.unwrap_or_default(),
            blkid(&path, "UUID"),
            "{}",
            path.display()
        );
        if let FsKind::Vfat(bits) = kind {
            assert_eq!(
                format!("{bits:?}").to_uppercase(),
                blkid(&path, "VERSION"),
                "{}",
                path.display()
            );
        }
    }
    // A FAT boot sector ends in 55 AA like an MBR; it must still be a whole-disk filesystem.
    let fat = dir.path().join("fat16");
    let mut sector = [0u8; 512];
    std::fs::File::open(&fat)
        .unwrap()
        .read_exact_at(&mut sector, 0)
        .unwrap();
    assert_eq!(&sector[510..], &[0x55, 0xAA]);
}

#[test]
fn empty_disk_is_unrecognised() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("zero.raw");
    sparse(&img, 4 * MIB);
    assert_eq!(inspect_disk(&open(&img)).unwrap(), DiskLayout::Unrecognised);
}

fn gpt_disk(dir: &Path) -> PathBuf {
    let img = dir.join("gpt.raw");
    sparse(&img, 16 * MIB);
    sfdisk(
        &img,
        "label: gpt\nstart=2048, size=8192\nstart=10240, size=8192\n",
    );
    img
}

fn patch(img: &Path, offset: u64, bytes: &[u8]) {
    OpenOptions::new()
        .write(true)
        .open(img)
        .unwrap()
        .write_all_at(bytes, offset)
        .unwrap();
}

fn read(img: &Path, offset: u64, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    std::fs::File::open(img)
        .unwrap()
        .read_exact_at(&mut b, offset)
        .unwrap();
    b
}

/// Recomputes the header CRC of the GPT header at `lba` after a test edited it.
fn reseal_header(img: &Path, lba: u64) {
    let mut h = read(img, lba * 512, 92);
    h[16..20].fill(0);
    let crc = crc32fast::hash(&h);
    patch(img, lba * 512 + 16, &crc.to_le_bytes());
}

#[test]
fn corrupted_gpt_header_crc_falls_back_to_backup_then_fails() {
    let dir = tempfile::tempdir().unwrap();
    let img = gpt_disk(dir.path());
    let last_lba = 16 * MIB / 512 - 1;
    // Flip one byte of the primary header's disk GUID.
    let b = read(&img, 512 + 60, 1)[0];
    patch(&img, 512 + 60, &[b ^ 0xFF]);
    let DiskLayout::Partitioned { table, partitions } = inspect_disk(&open(&img)).unwrap() else {
        panic!()
    };
    assert!(matches!(
        table.scheme,
        Scheme::Gpt {
            used_backup: true,
            ..
        }
    ));
    assert_eq!(partitions.len(), 2);
    // And the backup too.
    let b = read(&img, last_lba * 512 + 60, 1)[0];
    patch(&img, last_lba * 512 + 60, &[b ^ 0xFF]);
    let err = inspect_disk(&open(&img)).unwrap_err().to_string();
    assert!(
        err.starts_with("byte 528: GPT header CRC32 mismatch"),
        "{err}"
    );
    assert!(
        err.contains(&format!("backup GPT at sector {last_lba} unusable too")),
        "{err}"
    );
}

#[test]
fn corrupted_gpt_entries_and_overlap_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let img = gpt_disk(dir.path());
    let last_lba = 16 * MIB / 512 - 1;
    // Make entry 2 start inside entry 1 in both arrays, fixing every CRC as a careless tool
    // would: the tables are then consistent but overlap.
    for (hdr, array) in [(1u64, 2u64), (last_lba, last_lba - 32)] {
        patch(&img, array * 512 + 128 + 32, &5000u64.to_le_bytes());
        let arr = read(&img, array * 512, 128 * 128);
        patch(&img, hdr * 512 + 88, &crc32fast::hash(&arr).to_le_bytes());
        reseal_header(&img, hdr);
    }
    let err = inspect_disk(&open(&img)).unwrap_err();
    assert!(
        matches!(err, PartitionError::Overlap { a: 1, b: 2, .. }),
        "{err}"
    );
    // Now break the entry array CRC of both copies without fixing it.
    patch(&img, 2 * 512 + 200, &[0x42]);
    patch(&img, (last_lba - 32) * 512 + 200, &[0x42]);
    let err = inspect_disk(&open(&img)).unwrap_err().to_string();
    assert!(
        err.starts_with("byte 1024: GPT partition entry array CRC32 mismatch"),
        "{err}"
    );
}

#[test]
fn ebr_chain_loop_in_a_real_mbr_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("mbr.raw");
    sparse(&img, 32 * MIB);
    sfdisk(
        &img,
        "label: dos\nstart=2048, size=4096, type=83\nstart=8192, type=5\nstart=10240, size=2048\nstart=14336, size=2048\n",
    );
    let m = mbr::parse_mbr_sector(read(&img, 0, 512).as_slice().try_into().unwrap()).unwrap();
    let ext = m.entries.iter().find(|e| e.is_extended()).unwrap();
    let first_ebr = u64::from(ext.first_lba);
    // Find the second EBR through the first one's link entry, then point it back at the first.
    let link = read(&img, first_ebr * 512 + 446 + 16, 16);
    let second_ebr = first_ebr + u64::from(u32::from_le_bytes(link[8..12].try_into().unwrap()));
    patch(&img, second_ebr * 512 + 446 + 16 + 4, &[0x05]);
    patch(&img, second_ebr * 512 + 446 + 16 + 8, &0u32.to_le_bytes());
    patch(
        &img,
        second_ebr * 512 + 446 + 16 + 12,
        &2048u32.to_le_bytes(),
    );
    let err = inspect_disk(&open(&img)).unwrap_err();
    assert!(
        matches!(err, PartitionError::EbrLoop { offset } if offset == first_ebr * 512),
        "{err}"
    );
}
