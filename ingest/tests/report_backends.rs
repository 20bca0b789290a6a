//! `report_volume` on real btrfs and real OpenZFS: five daily snapshots, each with its
//! manifest and a few changed blocks. The report's per-snapshot `written` must be the store's
//! own figure — on ZFS checked against `zfs list -o written` itself — and the virtual sizes
//! come from each snapshot's manifest, not the live one.

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;

use ingest::report::report_volume;
use store::cmd::Cmd;
use store::layout::{
    MANIFEST_FORMAT, Manifest, ManifestDevice, SourceFile, VmaIdentity, format_uuid, meta_keys,
};
use store::{Backend, MetaKey, SnapshotName, Store, VolumeName};

const BLOCK: usize = 4096;
const BLOCKS: usize = 64;

fn manifest(day: usize, disk_size: u64) -> Manifest {
    Manifest {
        format: MANIFEST_FORMAT,
        vmid: 100,
        backup_time: 1_759_622_400 + day as i64 * 86_400,
        source: SourceFile {
            name: format!("vzdump-qemu-100-2025_10_0{}-02_00_00.vma.zst", day + 5),
            size: 100_000 + day as u64,
            compression: "zstd".into(),
        },
        vma: VmaIdentity {
            uuid: format_uuid(&[day as u8; 16]),
            ctime: 1_759_622_400,
        },
        devices: vec![ManifestDevice {
            dev_id: 1,
            name: "drive-scsi0".into(),
            size: disk_size,
            file: "disk-drive-scsi0.raw".into(),
        }],
        configs: vec![],
    }
}

fn report_matches_the_stores_written(store: &dyn Store) {
    let vol = VolumeName::new("100").unwrap();
    let path = store.ensure_volume(&vol, &[]).unwrap();
    let image = path.join("disk-drive-scsi0.raw");
    let base: Vec<u8> = (0..BLOCKS * BLOCK)
        .map(|i| (i / BLOCK) as u8 ^ (i % 251) as u8)
        .collect();
    std::fs::write(&image, &base).unwrap();
    let mut names = Vec::new();
    for day in 0..5usize {
        // Day d changes 2·d blocks (none on the first day after the initial write).
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&image)
            .unwrap();
        for k in 0..2 * day {
            f.write_all_at(
                &vec![(day * 16 + k) as u8; BLOCK],
                ((k * 7 % BLOCKS) * BLOCK) as u64,
            )
            .unwrap();
        }
        f.sync_all().unwrap();
        let disk = (BLOCKS * BLOCK) as u64 + day as u64; // distinguishes each day's manifest
        manifest(day, disk).write_to(&path).unwrap();
        let name = SnapshotName::new(format!("2025_10_{:02}-02_00_00", day + 5)).unwrap();
        let mut meta = BTreeMap::new();
        meta.insert(
            MetaKey::new(meta_keys::BACKUP_TIME).unwrap(),
            (1_759_622_400 + day as i64 * 86_400).to_string(),
        );
        meta.insert(
            MetaKey::new(meta_keys::ARCHIVE_SIZE).unwrap(),
            (100_000 + day as u64).to_string(),
        );
        store.snapshot(&vol, &name, &meta).unwrap();
        names.push(name);
    }
    manifest(9, 1).write_to(&path).unwrap(); // the live manifest moves on; snapshots must not

    let r = report_volume(store, &vol).unwrap();
    let listed = store.list_snapshots(&vol).unwrap();
    assert_eq!(r.snapshots.len(), 5);
    for (i, (row, info)) in r.snapshots.iter().zip(&listed).enumerate() {
        assert_eq!(row.snapshot, names[i]);
        assert_eq!(row.written, info.written, "{}", row.snapshot);
        assert_eq!(row.referenced, info.referenced);
        assert_eq!(
            row.virtual_size,
            Some((BLOCKS * BLOCK + i) as u64),
            "from the snapshot's own manifest"
        );
        assert_eq!(row.archive_size, Some(100_000 + i as u64));
        assert_eq!(row.backup_time, Some(1_759_622_400 + i as i64 * 86_400));
        let want = (1.0 - row.written as f64 / (100_000 + i) as f64) * 100.0;
        assert!((row.savings_percent.unwrap() - want).abs() < 1e-9);
    }
    assert_eq!(
        r.totals.written,
        listed.iter().map(|s| s.written).sum::<u64>()
    );
    // The first snapshot holds the whole image (compressed on ZFS, so no exact figure).
    assert!(r.snapshots[0].written > 0);
    if store.backend() == Backend::Btrfs {
        // btrfs without compression: day 1 rewrote 2 blocks in place, day 4 rewrote 8.
        assert!(
            r.snapshots[4].written > r.snapshots[1].written,
            "{:?}",
            r.snapshots
        );
    }

    if store.backend() == Backend::Zfs {
        // ZFS's own figures, asked independently of the store crate's parsing.
        let ds = Cmd::new("zfs")
            .args(["list", "-H", "-o", "name"])
            .arg(&path)
            .run()
            .unwrap()
            .stdout;
        let ds = ds.trim();
        for row in &r.snapshots {
            let out = Cmd::new("zfs")
                .args(["get", "-H", "-p", "-o", "value", "written"])
                .arg(format!("{ds}@{}", row.snapshot))
                .run()
                .unwrap();
            assert_eq!(
                out.stdout.trim().parse::<u64>().unwrap(),
                row.written,
                "{}",
                row.snapshot
            );
        }
    }
}

store::backend_tests!(report_matches_the_stores_written);
