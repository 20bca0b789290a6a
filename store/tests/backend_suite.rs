//! One behaviour suite for both real backends: every `fn x(&dyn Store)` below runs as
//! `btrfs::x` (loop device, needs root) and `zfs::x` (needs `VZSNAP_ZFS_POOL`, e.g. inside the
//! ZFS VM via scripts/test-zfs). Backend-specific checks follow in `btrfs_only` / `zfs_only`.
//! Data stays small (MiBs): the ZFS VM runs under software emulation.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;

use store::cmd::runs_on_this_thread;
use store::testutil::noise;
use store::{Backend, MetaKey, SnapshotName, Store, StoreError, VolumeName};

const BLOCK: usize = 4096;
const IMAGE: usize = 1 << 20;

fn vol(s: &str) -> VolumeName {
    VolumeName::new(s).unwrap()
}

fn snap(s: &str) -> SnapshotName {
    SnapshotName::new(s).unwrap()
}

fn meta(pairs: &[(&str, &str)]) -> BTreeMap<MetaKey, String> {
    pairs
        .iter()
        .map(|(k, v)| (MetaKey::new(*k).unwrap(), v.to_string()))
        .collect()
}

/// Volume properties the suite uses: 4 KiB records make ZFS's `written` comparable to btrfs'
/// (btrfs ignores properties).
fn props() -> Vec<(String, String)> {
    vec![
        ("recordsize".into(), "4K".into()),
        ("compression".into(), "lz4".into()),
    ]
}

/// Overwrites `count` 4 KiB blocks (every 7th) with new bytes; returns the new image.
fn overwrite_blocks(path: &Path, old: &[u8], first: usize, count: usize, seed: u64) -> Vec<u8> {
    let mut new = old.to_vec();
    let f = OpenOptions::new().write(true).open(path).unwrap();
    for i in 0..count {
        let block = first + i * 7;
        let data = noise(seed + i as u64, BLOCK);
        f.write_all_at(&data, (block * BLOCK) as u64).unwrap();
        new[block * BLOCK..(block + 1) * BLOCK].copy_from_slice(&data);
    }
    f.sync_all().unwrap();
    new
}

/// Upper bound for `written` after changing `blocks` 4 KiB blocks: exact extents on btrfs;
/// on ZFS one 4K record per block plus indirect blocks and dnodes (observed ~80 KiB for 10
/// blocks of a 1 MiB file with OpenZFS 2.3.2).
fn written_bound(s: &dyn Store, blocks: u64) -> u64 {
    match s.backend() {
        Backend::Btrfs => blocks * BLOCK as u64,
        _ => blocks * BLOCK as u64 + 160 * 1024,
    }
}

fn snapshot_list_read_and_rollback(s: &dyn Store) {
    let v = vol("100");
    let dir = s.ensure_volume(&v, &props()).unwrap();
    assert_eq!(
        s.ensure_volume(&v, &props()).unwrap(),
        dir,
        "ensure_volume is idempotent"
    );
    assert_eq!(s.volume_path(&v).unwrap(), dir);
    assert_eq!(s.list_volumes().unwrap(), vec![v.clone()]);
    let disk = dir.join("disk-drive-scsi0.raw");
    let v1 = noise(1, IMAGE);
    std::fs::write(&disk, &v1).unwrap();
    std::fs::write(dir.join("qemu-server.conf"), b"memory: 2048\n").unwrap();

    let m1 = meta(&[
        ("source", "vzdump-qemu-100-2026_11_01-02_00_03.vma.zst"),
        ("backup-time", "1793498403"),
    ]);
    s.snapshot(&v, &snap("2026_11_01-02_00_03"), &m1).unwrap();
    let v2 = overwrite_blocks(&disk, &v1, 3, 10, 100);
    s.snapshot(
        &v,
        &snap("2026_11_02-02_00_03"),
        &meta(&[("source", "second one = with spaces")]),
    )
    .unwrap();

    let list = s.list_snapshots(&v).unwrap();
    let names: Vec<&str> = list.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["2026_11_01-02_00_03", "2026_11_02-02_00_03"]);
    assert_eq!(
        list[0].meta.get("source").map(String::as_str),
        Some("vzdump-qemu-100-2026_11_01-02_00_03.vma.zst")
    );
    assert_eq!(
        list[0].meta.get("backup-time").map(String::as_str),
        Some("1793498403")
    );
    assert_eq!(list[0].meta.len(), 2, "{:?}", list[0].meta);
    assert_eq!(
        list[1].meta.get("source").map(String::as_str),
        Some("second one = with spaces")
    );
    assert!(list[0].created > 1_700_000_000 && list[0].created <= list[1].created);
    assert!(!list[0].held && !list[1].held);
    // The first snapshot wrote everything, the second only the changed blocks.
    assert!(list[0].written >= IMAGE as u64, "{list:?}");
    assert!(list[0].referenced >= IMAGE as u64, "{list:?}");
    assert!(list[1].referenced >= IMAGE as u64, "{list:?}");
    let w = list[1].written;
    assert!(
        (10 * BLOCK as u64..=written_bound(s, 10)).contains(&w),
        "written of the second snapshot: {w}"
    );

    // Each snapshot's read-only directory has its own bytes.
    let p1 = s.snapshot_path(&v, &snap("2026_11_01-02_00_03")).unwrap();
    let p2 = s.snapshot_path(&v, &snap("2026_11_02-02_00_03")).unwrap();
    assert!(std::fs::read(p1.join("disk-drive-scsi0.raw")).unwrap() == v1);
    assert!(std::fs::read(p2.join("disk-drive-scsi0.raw")).unwrap() == v2);
    assert_eq!(
        std::fs::read(p1.join("qemu-server.conf")).unwrap(),
        b"memory: 2048\n"
    );
    // Real snapshots are read-only even for root; FakeStore's plain copies are not.
    if s.backend() != Backend::Fake {
        assert!(
            std::fs::write(p1.join("new-file"), b"x").is_err(),
            "snapshot directory must be read-only"
        );
        assert!(
            OpenOptions::new()
                .write(true)
                .open(p1.join("qemu-server.conf"))
                .is_err()
        );
    }

    // Rollback discards data changes, new files and deletions.
    overwrite_blocks(&disk, &v2, 0, 2, 999);
    std::fs::write(dir.join("stray"), b"junk").unwrap();
    std::fs::remove_file(dir.join("qemu-server.conf")).unwrap();
    assert!(s.changed_since_latest(&v).unwrap());
    assert_eq!(
        s.rollback_to_latest(&v).unwrap(),
        Some(snap("2026_11_02-02_00_03"))
    );
    let dir = s.volume_path(&v).unwrap();
    assert!(std::fs::read(dir.join("disk-drive-scsi0.raw")).unwrap() == v2);
    assert!(!dir.join("stray").exists());
    assert_eq!(
        std::fs::read(dir.join("qemu-server.conf")).unwrap(),
        b"memory: 2048\n"
    );
    assert!(!s.changed_since_latest(&v).unwrap());
    assert_eq!(
        s.list_snapshots(&v).unwrap().len(),
        2,
        "rollback keeps the snapshots"
    );
}

fn change_detection(s: &dyn Store) {
    let v = vol("101");
    let dir = s.ensure_volume(&v, &props()).unwrap();
    let disk = dir.join("disk.raw");
    let data = noise(7, 256 * 1024);
    std::fs::write(&disk, &data).unwrap();
    assert!(
        s.changed_since_latest(&v).unwrap(),
        "no snapshot yet counts as changed"
    );
    s.snapshot(&v, &snap("s1"), &BTreeMap::new()).unwrap();
    assert!(
        !s.changed_since_latest(&v).unwrap(),
        "untouched right after the snapshot"
    );
    // Reading from the snapshot and listing are not changes.
    let p = s.snapshot_path(&v, &snap("s1")).unwrap();
    assert!(std::fs::read(p.join("disk.raw")).unwrap() == data);
    s.list_snapshots(&v).unwrap();
    assert!(!s.changed_since_latest(&v).unwrap(), "still untouched");

    // One 4 KiB overwrite is a change.
    overwrite_blocks(&disk, &data, 5, 1, 55);
    assert!(
        s.changed_since_latest(&v).unwrap(),
        "a 4 KiB overwrite must be detected"
    );
    s.rollback_to_latest(&v).unwrap();
    assert!(!s.changed_since_latest(&v).unwrap());

    // A metadata-only change (permissions) counts too: conservative.
    std::fs::set_permissions(&disk, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(
        s.changed_since_latest(&v).unwrap(),
        "chmod must be detected"
    );
    s.rollback_to_latest(&v).unwrap();
    let mode = std::fs::metadata(s.volume_path(&v).unwrap().join("disk.raw"))
        .unwrap()
        .permissions()
        .mode();
    assert_ne!(mode & 0o777, 0o600, "rollback restores the mode");
    assert!(!s.changed_since_latest(&v).unwrap());

    // A new empty file is a change.
    std::fs::write(s.volume_path(&v).unwrap().join("empty"), b"").unwrap();
    assert!(
        s.changed_since_latest(&v).unwrap(),
        "a new empty file must be detected"
    );
}

fn clone_lifecycle(s: &dyn Store) {
    let v = vol("102");
    let dir = s.ensure_volume(&v, &props()).unwrap();
    let data = noise(3, 128 * 1024);
    std::fs::write(dir.join("disk.raw"), &data).unwrap();
    s.snapshot(&v, &snap("s1"), &BTreeMap::new()).unwrap();
    let c = vol("restore-102-1");
    let cdir = s.clone_snapshot(&v, &snap("s1"), &c).unwrap();
    assert!(std::fs::read(cdir.join("disk.raw")).unwrap() == data);
    overwrite_blocks(&cdir.join("disk.raw"), &data, 0, 3, 9);
    std::fs::write(cdir.join("scratch"), b"clone only").unwrap();
    assert_eq!(s.list_clones().unwrap(), vec![c.clone()]);
    assert_eq!(
        s.list_volumes().unwrap(),
        vec![v.clone()],
        "a clone is not a volume"
    );
    assert!(matches!(
        s.clone_snapshot(&v, &snap("s1"), &c),
        Err(StoreError::Exists { .. })
    ));
    assert!(matches!(
        s.destroy_snapshot(&v, &snap("s1")),
        Err(StoreError::Busy { .. })
    ));

    s.destroy_clone(&c).unwrap();
    assert!(s.list_clones().unwrap().is_empty());
    assert!(matches!(
        s.destroy_clone(&c),
        Err(StoreError::VolumeMissing { .. })
    ));
    // The snapshot and the volume are untouched by everything done to the clone.
    let p = s.snapshot_path(&v, &snap("s1")).unwrap();
    assert!(std::fs::read(p.join("disk.raw")).unwrap() == data);
    assert!(!p.join("scratch").exists());
    assert!(std::fs::read(s.volume_path(&v).unwrap().join("disk.raw")).unwrap() == data);
    assert_eq!(s.list_snapshots(&v).unwrap().len(), 1);
    // Without the clone the snapshot can go.
    s.destroy_snapshot(&v, &snap("s1")).unwrap();
}

fn hold_blocks_destroy(s: &dyn Store) {
    let v = vol("103");
    let dir = s.ensure_volume(&v, &props()).unwrap();
    std::fs::write(dir.join("f"), b"data").unwrap();
    let s1 = snap("s1");
    s.snapshot(&v, &s1, &BTreeMap::new()).unwrap();
    s.hold(&v, &s1, "vzsnap-protected").unwrap();
    s.hold(&v, &s1, "vzsnap-protected").unwrap();
    s.hold(&v, &s1, "restore").unwrap();
    assert_eq!(s.holds(&v, &s1).unwrap(), ["restore", "vzsnap-protected"]);
    assert!(s.list_snapshots(&v).unwrap()[0].held);
    match s.destroy_snapshot(&v, &s1) {
        Err(StoreError::Held { tags, .. }) => assert_eq!(tags, ["restore", "vzsnap-protected"]),
        other => panic!("expected Held, got {other:?}"),
    }
    assert!(matches!(
        s.destroy_volume(&v, true),
        Err(StoreError::Held { .. })
    ));
    s.release(&v, &s1, "restore").unwrap();
    assert!(matches!(
        s.destroy_snapshot(&v, &s1),
        Err(StoreError::Held { .. })
    ));
    s.release(&v, &s1, "vzsnap-protected").unwrap();
    s.release(&v, &s1, "vzsnap-protected").unwrap();
    assert!(s.holds(&v, &s1).unwrap().is_empty());
    assert!(!s.list_snapshots(&v).unwrap()[0].held);
    s.destroy_snapshot(&v, &s1).unwrap();
    assert!(s.list_snapshots(&v).unwrap().is_empty());
    assert!(matches!(
        s.destroy_snapshot(&v, &s1),
        Err(StoreError::SnapshotMissing { .. })
    ));
    assert!(matches!(
        s.hold(&v, &s1, "x"),
        Err(StoreError::SnapshotMissing { .. })
    ));
}

fn typed_errors(s: &dyn Store) {
    let missing = vol("404");
    let s1 = snap("s1");
    assert!(matches!(
        s.snapshot(&missing, &s1, &BTreeMap::new()),
        Err(StoreError::VolumeMissing { .. })
    ));
    assert!(matches!(
        s.volume_path(&missing),
        Err(StoreError::VolumeMissing { .. })
    ));
    assert!(matches!(
        s.list_snapshots(&missing),
        Err(StoreError::VolumeMissing { .. })
    ));
    assert!(matches!(
        s.changed_since_latest(&missing),
        Err(StoreError::VolumeMissing { .. })
    ));
    assert!(matches!(
        s.destroy_volume(&missing, true),
        Err(StoreError::VolumeMissing { .. })
    ));

    let v = vol("104");
    let dir = s.ensure_volume(&v, &props()).unwrap();
    std::fs::write(dir.join("f"), b"data").unwrap();
    assert_eq!(
        s.rollback_to_latest(&v).unwrap(),
        None,
        "nothing to roll back to"
    );
    s.snapshot(&v, &s1, &meta(&[("source", "a")])).unwrap();
    assert!(matches!(
        s.snapshot(&v, &s1, &BTreeMap::new()),
        Err(StoreError::Exists { .. })
    ));
    let nope = snap("nope");
    assert!(matches!(
        s.destroy_snapshot(&v, &nope),
        Err(StoreError::SnapshotMissing { .. })
    ));
    assert!(matches!(
        s.snapshot_path(&v, &nope),
        Err(StoreError::SnapshotMissing { .. })
    ));
    assert!(matches!(
        s.clone_snapshot(&v, &nope, &vol("c")),
        Err(StoreError::SnapshotMissing { .. })
    ));
    assert!(matches!(
        s.holds(&v, &nope),
        Err(StoreError::SnapshotMissing { .. })
    ));
    assert!(
        s.list_clones().unwrap().is_empty(),
        "a failed clone leaves nothing behind"
    );
    // The failed duplicate did not change the existing snapshot's metadata.
    assert_eq!(
        s.list_snapshots(&v).unwrap()[0]
            .meta
            .get("source")
            .map(String::as_str),
        Some("a")
    );

    assert!(matches!(
        s.destroy_volume(&v, false),
        Err(StoreError::Busy { .. })
    ));
    s.destroy_volume(&v, true).unwrap();
    assert!(s.list_volumes().unwrap().is_empty());
    assert!(matches!(
        s.volume_path(&v),
        Err(StoreError::VolumeMissing { .. })
    ));
    // The name is free again, without old snapshots.
    s.ensure_volume(&v, &props()).unwrap();
    assert!(s.list_snapshots(&v).unwrap().is_empty());
    s.destroy_volume(&v, false).unwrap();
}

fn hostile_names_never_reach_a_command(s: &dyn Store) {
    let v = vol("105");
    s.ensure_volume(&v, &props()).unwrap();
    let s1 = snap("s1");
    s.snapshot(&v, &s1, &BTreeMap::new()).unwrap();
    let hostile = [
        "", "a b", "-o", "--help", "../x", "x/y", "x@y", "x#y", ".", "..", "a\0b", "a\nb",
        "zürich", "$(id)",
    ];
    let long = "x".repeat(300);
    let before = runs_on_this_thread();
    for h in hostile.iter().copied().chain([long.as_str()]) {
        assert!(VolumeName::new(h).is_err(), "{h:?}");
        assert!(SnapshotName::new(h).is_err(), "{h:?}");
        assert!(MetaKey::new(h).is_err(), "{h:?}");
        assert!(
            matches!(s.hold(&v, &s1, h), Err(StoreError::InvalidName(_))),
            "{h:?}"
        );
        assert!(
            matches!(s.release(&v, &s1, h), Err(StoreError::InvalidName(_))),
            "{h:?}"
        );
    }
    for bad_value in ["", "-", "a\nb", "a\tb", "a\0b"] {
        let m = meta(&[("source", bad_value)]);
        assert!(
            matches!(
                s.snapshot(&v, &snap("s2"), &m),
                Err(StoreError::InvalidName(_))
            ),
            "{bad_value:?}"
        );
    }
    for spec in [
        "zfs:-o",
        "zfs:tank/a b",
        "zfs:tank/../x",
        "zfs:tank@x",
        "btrfs:../x",
        "zfs:tank/x;id",
    ] {
        assert!(store::open(spec).is_err(), "{spec}");
    }
    assert_eq!(
        runs_on_this_thread(),
        before,
        "a command ran for a hostile name"
    );
    assert_eq!(s.list_snapshots(&v).unwrap().len(), 1);
}

fn order_is_creation_not_name(s: &dyn Store) {
    let v = vol("106");
    let dir = s.ensure_volume(&v, &props()).unwrap();
    for (i, name) in ["b", "a", "c"].iter().enumerate() {
        std::fs::write(dir.join("f"), noise(i as u64, 8192)).unwrap();
        s.snapshot(&v, &snap(name), &BTreeMap::new()).unwrap();
    }
    let names: Vec<String> = s
        .list_snapshots(&v)
        .unwrap()
        .into_iter()
        .map(|i| i.name.to_string())
        .collect();
    assert_eq!(names, ["b", "a", "c"]);
    assert_eq!(s.rollback_to_latest(&v).unwrap(), Some(snap("c")));
    s.ensure_volume(&vol("099"), &props()).unwrap();
    assert_eq!(s.list_volumes().unwrap(), vec![vol("099"), v]);
}

fn destroying_a_middle_snapshot_moves_its_written_bytes(s: &dyn Store) {
    let v = vol("107");
    let dir = s.ensure_volume(&v, &props()).unwrap();
    let disk = dir.join("disk.raw");
    let d1 = noise(11, 512 * 1024);
    std::fs::write(&disk, &d1).unwrap();
    s.snapshot(&v, &snap("s1"), &BTreeMap::new()).unwrap();
    let d2 = overwrite_blocks(&disk, &d1, 1, 5, 200);
    s.snapshot(&v, &snap("s2"), &BTreeMap::new()).unwrap();
    overwrite_blocks(&disk, &d2, 2, 5, 300);
    s.snapshot(&v, &snap("s3"), &BTreeMap::new()).unwrap();
    let before = s.list_snapshots(&v).unwrap();
    assert!(
        (5 * BLOCK as u64..=written_bound(s, 5)).contains(&before[2].written),
        "{before:?}"
    );
    s.destroy_snapshot(&v, &snap("s2")).unwrap();
    let after = s.list_snapshots(&v).unwrap();
    assert_eq!(after.len(), 2);
    assert_eq!(after[1].name.as_str(), "s3");
    // s3 is now measured against s1: both sets of changed blocks.
    assert!(
        (10 * BLOCK as u64..=written_bound(s, 10)).contains(&after[1].written),
        "{after:?}"
    );
}

store::backend_tests!(
    snapshot_list_read_and_rollback,
    change_detection,
    clone_lifecycle,
    hold_blocks_destroy,
    typed_errors,
    hostile_names_never_reach_a_command,
    order_is_creation_not_name,
    destroying_a_middle_snapshot_moves_its_written_bytes,
);

/// btrfs crash recovery: the on-disk states a crash can leave, built by hand, then the store
/// reopened as after a restart.
mod btrfs_only {
    use super::*;
    use store::btrfs::BtrfsStore;
    use store::cmd::Cmd;
    use store::testutil::btrfs_or_skip;

    fn btrfs(args: &[&str]) {
        Cmd::new("btrfs").args(args).run().unwrap();
    }

    fn setup() -> Option<(
        store::testutil::TestBtrfs,
        std::path::PathBuf,
        Vec<u8>,
        Vec<u8>,
    )> {
        let t = btrfs_or_skip()?;
        let root = t.mountpoint().join("store");
        let s = t.store();
        let v = vol("200");
        let dir = s.ensure_volume(&v, &[]).unwrap();
        let old = noise(1, 64 * 1024);
        std::fs::write(dir.join("f"), &old).unwrap();
        s.snapshot(&v, &snap("s1"), &BTreeMap::new()).unwrap();
        let live = noise(2, 64 * 1024);
        std::fs::write(dir.join("f"), &live).unwrap();
        Some((t, root, old, live))
    }

    /// Does the first `steps` steps of a rollback of volume 200 to s1 by hand, as a crash
    /// after that step leaves them (rollback.rs: build `.new`, move the live volume to
    /// `.old`, move `.new` into place). Returns the rollback directory.
    fn interrupt_rollback(root: &Path, steps: u8) -> std::path::PathBuf {
        let rb = root.join(".vzsnap/rollback");
        btrfs(&[
            "subvolume",
            "snapshot",
            root.join(".vzsnap/snapshots/200/s1/data").to_str().unwrap(),
            rb.join("200.new").to_str().unwrap(),
        ]);
        if steps >= 2 {
            std::fs::rename(root.join("200"), rb.join("200.old")).unwrap();
        }
        if steps >= 3 {
            std::fs::rename(rb.join("200.new"), root.join("200")).unwrap();
        }
        rb
    }

    fn read_f(s: &dyn Store) -> Vec<u8> {
        std::fs::read(s.volume_path(&vol("200")).unwrap().join("f")).unwrap()
    }

    /// Bytes available to an unprivileged writer on the file system of `p`.
    fn available(p: &std::path::Path) -> u64 {
        let v = nix::sys::statvfs::statvfs(p).unwrap();
        v.blocks_available() * v.fragment_size()
    }

    /// A rollback, a destroyed clone and a destroyed volume have freed their space when they
    /// return (btrfs otherwise frees deleted subvolumes in a background cleaner, up to a
    /// commit interval later: an ingest that ran out of space would not find it again).
    #[test]
    fn destroying_frees_the_space_before_returning() {
        let Some(t) = btrfs_or_skip() else {
            return;
        };
        const MIB: u64 = 1 << 20;
        let s = t.store();
        let mnt = t.mountpoint().to_path_buf();
        let v = vol("300");
        let dir = s.ensure_volume(&v, &[]).unwrap();
        std::fs::write(dir.join("f"), noise(1, 16 << 20)).unwrap();
        s.snapshot(&v, &snap("s1"), &BTreeMap::new()).unwrap();
        // 32 MiB only the live volume references.
        std::fs::write(dir.join("f"), noise(2, 32 << 20)).unwrap();
        Cmd::new("sync").arg("-f").arg(&dir).run().unwrap();
        let before = available(&mnt);
        s.rollback_to_latest(&v).unwrap();
        let freed = available(&mnt).saturating_sub(before);
        assert!(freed >= 28 * MIB, "rollback freed only {freed} bytes");

        let c = vol("clone-1");
        let cdir = s.clone_snapshot(&v, &snap("s1"), &c).unwrap();
        std::fs::write(cdir.join("g"), noise(3, 32 << 20)).unwrap();
        Cmd::new("sync").arg("-f").arg(&cdir).run().unwrap();
        let before = available(&mnt);
        s.destroy_clone(&c).unwrap();
        let freed = available(&mnt).saturating_sub(before);
        assert!(freed >= 28 * MIB, "destroy_clone freed only {freed} bytes");

        let before = available(&mnt);
        s.destroy_volume(&v, true).unwrap();
        let freed = available(&mnt).saturating_sub(before);
        assert!(freed >= 12 * MIB, "destroy_volume freed only {freed} bytes");
    }

    #[test]
    fn rollback_interrupted_after_building_the_new_volume_is_undone() {
        let Some((_t, root, _old, live)) = setup() else {
            return;
        };
        let rb = interrupt_rollback(&root, 1);
        let s = BtrfsStore::open(&root).unwrap();
        assert!(read_f(&s) == live, "the live volume stays");
        assert!(!rb.join("200.new").exists());
    }

    #[test]
    fn rollback_interrupted_after_moving_the_live_volume_is_finished() {
        let Some((_t, root, old, _live)) = setup() else {
            return;
        };
        let rb = interrupt_rollback(&root, 2);
        let s = BtrfsStore::open(&root).unwrap();
        assert!(read_f(&s) == old, "the rolled-back volume is in place");
        assert!(!rb.join("200.new").exists() && !rb.join("200.old").exists());
        // The finished rollback equals the snapshot: not "changed".
        assert!(!s.changed_since_latest(&vol("200")).unwrap());
    }

    #[test]
    fn rollback_interrupted_before_deleting_the_old_volume_is_finished() {
        let Some((_t, root, old, _live)) = setup() else {
            return;
        };
        let rb = interrupt_rollback(&root, 3);
        // ensure_volume repairs too, not only open.
        let t_store = BtrfsStore::open(&root).unwrap();
        t_store.ensure_volume(&vol("200"), &[]).unwrap();
        assert!(read_f(&t_store) == old);
        assert!(!rb.join("200.old").exists());
    }

    #[test]
    fn snapshot_without_commit_marker_is_removed_and_the_name_reusable() {
        let Some((t, root, _old, live)) = setup() else {
            return;
        };
        let dir = root.join(".vzsnap/snapshots/200/s2");
        std::fs::create_dir(&dir).unwrap();
        btrfs(&[
            "subvolume",
            "snapshot",
            "-r",
            root.join("200").to_str().unwrap(),
            dir.join("data").to_str().unwrap(),
        ]);
        let names = |s: &dyn Store| -> Vec<String> {
            s.list_snapshots(&vol("200"))
                .unwrap()
                .into_iter()
                .map(|i| i.name.to_string())
                .collect()
        };
        assert_eq!(
            names(t.store()),
            ["s1"],
            "uncommitted snapshots are not listed"
        );
        let s = BtrfsStore::open(&root).unwrap();
        assert!(!dir.exists(), "recovery removes it");
        std::fs::create_dir(&dir).unwrap();
        s.snapshot(&vol("200"), &snap("s2"), &BTreeMap::new())
            .unwrap();
        assert_eq!(names(&s), ["s1", "s2"]);
        assert!(
            std::fs::read(s.snapshot_path(&vol("200"), &snap("s2")).unwrap().join("f")).unwrap()
                == live
        );
    }

    #[test]
    fn clone_left_half_made_by_a_crash_is_found_and_destroyable() {
        let Some((t, root, _old, _live)) = setup() else {
            return;
        };
        let dir = root.join(".vzsnap/clones/crashed");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(
            dir.join("origin.json"),
            b"{\"format\":1,\"volume\":\"200\",\"snapshot\":\"s1\"}\n",
        )
        .unwrap();
        assert_eq!(t.store().list_clones().unwrap(), vec![vol("crashed")]);
        t.store().destroy_clone(&vol("crashed")).unwrap();
        assert!(t.store().list_clones().unwrap().is_empty());
        assert!(!dir.exists());
    }

    #[test]
    fn written_is_exact_and_cached() {
        let Some(t) = btrfs_or_skip() else { return };
        let s = t.store();
        let v = vol("201");
        let dir = s.ensure_volume(&v, &[]).unwrap();
        let d1 = noise(5, IMAGE);
        std::fs::write(dir.join("disk.raw"), &d1).unwrap();
        s.snapshot(&v, &snap("s1"), &BTreeMap::new()).unwrap();
        overwrite_blocks(&dir.join("disk.raw"), &d1, 3, 10, 77);
        s.snapshot(&v, &snap("s2"), &BTreeMap::new()).unwrap();
        let list = s.list_snapshots(&v).unwrap();
        assert_eq!(list[0].written, IMAGE as u64);
        assert_eq!(list[0].referenced, IMAGE as u64);
        assert_eq!(list[1].written, 10 * BLOCK as u64);
        assert_eq!(list[1].referenced, IMAGE as u64);
        let cache = t
            .mountpoint()
            .join("store/.vzsnap/snapshots/201/s2/stats.json");
        assert!(cache.exists());
        assert_eq!(
            s.list_snapshots(&v).unwrap(),
            list,
            "cached values are the same"
        );
    }

    #[test]
    fn drop_releases_loop_devices_a_test_left_inside() {
        let Some(t) = btrfs_or_skip() else { return };
        let dir = t.store().ensure_volume(&vol("210"), &[]).unwrap();
        let img = dir.join("disk.raw");
        std::fs::File::create(&img)
            .unwrap()
            .set_len(8 << 20)
            .unwrap();
        // As a panicking restore test would: a loop device on a file inside, never detached.
        Cmd::new("losetup")
            .args(["--find", "--show"])
            .arg(&img)
            .run()
            .unwrap();
        let tempdir = t.mountpoint().parent().unwrap().to_path_buf();
        drop(t);
        let loops = Cmd::new("losetup")
            .args(["--list", "--noheadings", "--raw", "--output", "BACK-FILE"])
            .run()
            .unwrap()
            .stdout;
        let prefix = tempdir.display().to_string();
        assert!(
            !loops.lines().any(|l| l.starts_with(&prefix)),
            "loop devices left: {loops}"
        );
        assert!(!tempdir.exists());
    }

    #[test]
    fn open_refuses_a_directory_that_is_not_on_btrfs() {
        let dir = tempfile::tempdir().unwrap();
        if nix::sys::statfs::statfs(dir.path())
            .unwrap()
            .filesystem_type()
            == nix::sys::statfs::BTRFS_SUPER_MAGIC
        {
            return;
        }
        let spec = format!("btrfs:{}", dir.path().display());
        assert!(matches!(
            store::open(&spec),
            Err(StoreError::Inconsistent { .. })
        ));
    }
}

/// ZFS specifics: properties, where metadata and clones live.
mod zfs_only {
    use super::*;
    use store::cmd::Cmd;
    use store::testutil::zfs_or_skip;

    fn get(prop: &str, ds: &str) -> String {
        Cmd::new("zfs")
            .args(["get", "-H", "-p", "-o", "value", prop, ds])
            .run()
            .unwrap()
            .stdout
            .trim()
            .to_string()
    }

    #[test]
    fn properties_are_applied_and_verified() {
        let Some(t) = zfs_or_skip() else { return };
        let s = t.store();
        s.ensure_volume(&vol("300"), &[("recordsize".into(), "64K".into())])
            .unwrap();
        let ds = format!("{}/300", t.root());
        assert_eq!(get("recordsize", &ds), "65536");
        assert_eq!(get("atime", &ds), "off", "atime=off unless asked otherwise");
        s.ensure_volume(&vol("301"), &[("atime".into(), "on".into())])
            .unwrap();
        assert_eq!(get("atime", &format!("{}/301", t.root())), "on");
        // A property zfs rejects is an error, and no volume is left behind.
        let e = s
            .ensure_volume(&vol("302"), &[("recordsize".into(), "4x".into())])
            .unwrap_err();
        assert!(matches!(e, StoreError::Unknown { .. }), "{e:?}");
        assert!(!s.list_volumes().unwrap().contains(&vol("302")));
        // Hostile property assignments are refused before running zfs.
        let before = runs_on_this_thread();
        assert!(
            s.ensure_volume(&vol("303"), &[("-o".into(), "x".into())])
                .is_err()
        );
        assert!(
            s.ensure_volume(&vol("303"), &[("atime".into(), "off\nx".into())])
                .is_err()
        );
        assert_eq!(runs_on_this_thread(), before);
    }

    #[test]
    fn metadata_is_user_properties_and_clones_live_apart() {
        let Some(t) = zfs_or_skip() else { return };
        let s = t.store();
        let v = vol("310");
        s.ensure_volume(&v, &[]).unwrap();
        s.snapshot(&v, &snap("s1"), &meta(&[("source", "x.vma.zst")]))
            .unwrap();
        let full = format!("{}/310@s1", t.root());
        assert_eq!(get("vzsnap:source", &full), "x.vma.zst");
        let c = vol("c1");
        let path = s.clone_snapshot(&v, &snap("s1"), &c).unwrap();
        let clone_ds = format!("{}/.clones/c1", t.root());
        assert_eq!(get("origin", &clone_ds), full);
        assert_eq!(get("vzsnap:clone-of", &clone_ds), full);
        assert_eq!(get("mountpoint", &clone_ds), path.display().to_string());
        assert_eq!(s.list_volumes().unwrap(), vec![v]);
        // A fresh store object on the same root finds the clone (state is on disk only).
        let again = store::open(&format!("zfs:{}", t.root())).unwrap();
        assert_eq!(again.list_clones().unwrap(), vec![c.clone()]);
        again.destroy_clone(&c).unwrap();
    }

    #[test]
    fn snapshot_path_is_under_dot_zfs() {
        let Some(t) = zfs_or_skip() else { return };
        let s = t.store();
        let v = vol("320");
        let dir = s.ensure_volume(&v, &[]).unwrap();
        s.snapshot(&v, &snap("s1"), &BTreeMap::new()).unwrap();
        assert_eq!(
            s.snapshot_path(&v, &snap("s1")).unwrap(),
            dir.join(".zfs/snapshot/s1")
        );
    }
}

/// The same suite on `FakeStore`, so the fake other crates' unit tests rely on keeps behaving
/// like the real backends.
mod fake {
    use store::testutil::FakeStore;

    macro_rules! on_fake {
        ($($name:ident),* $(,)?) => {
            $(
                #[test]
                fn $name() {
                    super::$name(&FakeStore::new().unwrap());
                }
            )*
        };
    }

    on_fake!(
        snapshot_list_read_and_rollback,
        change_detection,
        clone_lifecycle,
        hold_blocks_destroy,
        typed_errors,
        hostile_names_never_reach_a_command,
        order_is_creation_not_name,
        destroying_a_middle_snapshot_moves_its_written_bytes,
    );
}
