//! `ingest::run` on real btrfs (loop device) and real OpenZFS (the test VM), with synthetic
//! vzdump backups from `ingest::synth`:
//!
//! - a 5-day series (two disks, one grown on day 3, one added on day 4, one removed on day 5,
//!   config edits, `.log`/`.notes`, a protected day, zstd/gzip/lzo/plain in turn) ingested
//!   day by day: every snapshot byte-identical to that day's images; bytes written and zeroed
//!   per device equal to the changed 4 KiB blocks computed from the images alone; the store's
//!   own `written` of each snapshot within a stated bound; re-running is idempotent;
//! - a live-backup-style archive (clusters shuffled, devices interleaved);
//! - every corrupt-archive class leaves the volume at its previous snapshot, no new snapshot,
//!   the input kept, the run marked failed, and another VM still ingested;
//! - a full store (ENOSPC / quota) likewise.

mod ingest_support;

use ingest::summary::Status;
use ingest::synth::check::{compare_volume, expected_day_changes};
use ingest::synth::{Day, Series, SeriesSpec, write_backup};
use ingest_support::*;
use store::Store;
use store::layout::{PROTECTED_HOLD_TAG, meta_keys};
use vma::compress::Compression;

/// 2 MiB first disk: a few MiB per day, fine for the emulated ZFS VM.
const S: u64 = 2 << 20;

/// The store's `written` for a snapshot may exceed the changed bytes by record rounding
/// (ZFS: every touched record is rewritten whole; btrfs: 4 KiB extents) plus metadata and
/// the small files (configs, log, notes, manifest). Bound: touched records × record size
/// + 1 MiB. Records are 64 KiB on ZFS (the test's recordsize) and 4 KiB on btrfs.
fn written_bound(store: &dyn Store, prev: Option<&Day>, day: &Day) -> u64 {
    let rs = match store.backend() {
        store::Backend::Zfs => 64 << 10,
        _ => 4096,
    };
    touched_records(prev, day, rs) * rs as u64 + (1 << 20)
}

fn five_day_sequence(store: &dyn Store) {
    let dump = tempfile::tempdir().unwrap();
    let o = opts(dump.path());
    let seed = 11;
    let mut series = Series::new(SeriesSpec::new(100, seed, S));
    let mut prev: Option<Day> = None;
    for d in 1..=5u32 {
        let day = series.day().clone();
        assert_eq!(day.number, d);
        write_backup(dump.path(), 100, seed, &day, false).unwrap();
        let s = ingest(store, &o);
        assert!(!s.has_failures(), "day {d}: {s:#?}");
        let r = result(&s, 100, &day);
        assert_eq!(r.status, Status::Ingested, "day {d}: {r:#?}");
        let ing = r.ingested.as_ref().unwrap();
        // Exact accounting, per device, from the images alone.
        let want = expected_day_changes(prev.as_ref(), &day);
        for (name, w, z) in &want {
            let dev = ing.devices.iter().find(|x| &x.name == name).unwrap();
            assert_eq!(
                (dev.stats.written, dev.stats.zeroed),
                (*w, *z),
                "day {d} {name}"
            );
            assert_eq!(
                dev.stats.unchanged + dev.stats.written + dev.stats.zeroed,
                dev.size
            );
        }
        let changed: u64 = want.iter().map(|(_, w, z)| w + z).sum();
        assert_eq!(ing.stats.changed(), changed);
        assert!(changed > 0 && changed < 3 * S, "day {d}: {changed}");
        // The snapshot (and the live volume) hold exactly this day.
        compare_volume(&snap_path(store, 100, &day), &day)
            .unwrap_or_else(|e| panic!("day {d}: {e}"));
        compare_volume(&store.volume_path(&vol(100)).unwrap(), &day).unwrap();
        let snaps = store.list_snapshots(&vol(100)).unwrap();
        assert_eq!(snaps.len(), d as usize);
        let info = snaps.last().unwrap();
        assert_eq!(info.name.as_str(), day.time.snapshot_name());
        assert_eq!(info.meta[meta_keys::BYTES_WRITTEN], changed.to_string());
        assert_eq!(info.meta[meta_keys::SOURCE], r.archive);
        assert_eq!(
            info.meta[meta_keys::BACKUP_TIME],
            day.time.to_epoch_local().unwrap().to_string()
        );
        assert_eq!(
            info.meta[meta_keys::PROTECTED],
            if day.protected { "1" } else { "0" }
        );
        assert_eq!(info.held, day.protected, "day {d}");
        let bound = written_bound(store, prev.as_ref(), &day);
        assert!(
            info.written <= bound,
            "day {d}: store written {} > bound {bound} (changed {changed})",
            info.written
        );
        eprintln!(
            "{} day {d}: changed {changed} B, store written {} B, bound {bound} B",
            store.backend(),
            info.written
        );
        assert_eq!(r.snapshot_written, Some(info.written));
        // Configs are rewritten only when they change: the firewall config of day 3/4
        // equals day 2's.
        let fw_changed = ing.files_changed.iter().any(|f| f == "qemu-server.fw");
        assert_eq!(
            fw_changed,
            matches!(d, 2 | 5),
            "day {d}: {:?}",
            ing.files_changed
        );
        match d {
            1 => assert!(ing.devices.iter().all(|x| x.previous_size.is_none())),
            3 => assert_eq!(ing.devices[0].previous_size, Some(S)),
            5 => assert_eq!(ing.removed_devices, ["drive-scsi1"]),
            _ => assert!(ing.removed_devices.is_empty()),
        }
        prev = Some(day);
        series.advance();
    }
    // The protected day is held.
    let day2 = ingest::synth::add_days(series.spec().start, 1).snapshot_name();
    let holds = store
        .holds(&vol(100), &store::SnapshotName::new(day2).unwrap())
        .unwrap();
    assert_eq!(holds, [PROTECTED_HOLD_TAG]);
    // Re-running is idempotent: everything already ingested, nothing written, input kept.
    let s = ingest(store, &o);
    assert_eq!(
        (s.totals.ingested, s.totals.skipped, s.totals.failed),
        (0, 5, 0)
    );
    assert!(
        s.backups
            .iter()
            .all(|b| b.reason.as_deref() == Some("already-ingested"))
    );
    assert_eq!(snap_names(store, 100).len(), 5);
    // With delete_input, the inputs of ingested, unprotected backups go; the protected stays.
    let mut o2 = o.clone();
    o2.delete_input = true;
    let s = ingest(store, &o2);
    assert_eq!(s.backups.iter().filter(|b| b.input_deleted).count(), 4);
    let left: Vec<String> = std::fs::read_dir(dump.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        left.len(),
        4,
        "protected archive + log + notes + marker: {left:?}"
    );
    assert!(left.iter().all(|n| n.contains("2026_11_02")), "{left:?}");
}

fn live_backup_order(store: &dyn Store) {
    let dump = tempfile::tempdir().unwrap();
    let o = opts(dump.path());
    let mut spec = SeriesSpec::new(101, 5, S);
    spec.live_order = true;
    let mut series = Series::new(spec);
    for _ in 0..2 {
        let day = series.day().clone();
        write_backup(dump.path(), 101, 5, &day, true).unwrap();
        let s = ingest(store, &o);
        assert_eq!(result(&s, 101, &day).status, Status::Ingested, "{s:#?}");
        compare_volume(&snap_path(store, 101, &day), &day).unwrap();
        series.advance();
    }
}

fn corrupt_archives_leave_the_previous_snapshot(store: &dyn Store) {
    let dump = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let o = opts(dump.path());
    let mut a = Series::new(SeriesSpec::new(100, 21, 8 << 20));
    let mut b = Series::new(SeriesSpec::new(200, 22, 256 << 10));
    write_backup(dump.path(), 100, 21, a.day(), false).unwrap();
    write_backup(dump.path(), 200, 22, b.day(), false).unwrap();
    let s = ingest(store, &o);
    assert_eq!(s.totals.ingested, 2, "{s:#?}");
    let day1 = a.day().clone();
    a.advance();
    let day2 = a.day().clone();
    let plain = std::fs::read(write_as(scratch.path(), 100, 21, &day2, Compression::None)).unwrap();
    let mut classes: Vec<(&str, Vec<u8>, &str)> = CORRUPTIONS
        .iter()
        .map(|c| (*c, corrupt(&plain, c), "vma"))
        .collect();
    // A corrupt lzop block: flip a byte in the middle of the compressed data.
    let mut lzo =
        std::fs::read(write_as(scratch.path(), 100, 21, &day2, Compression::Lzo)).unwrap();
    let mid = lzo.len() / 2;
    lzo[mid] ^= 0x55;
    classes.push(("corrupt-lzop-block", lzo, "vma.lzo"));
    for (class, bytes, ext) in classes {
        b.advance();
        write_backup(dump.path(), 200, 22, b.day(), false).unwrap();
        let name = format!("vzdump-qemu-100-{}.{ext}", day2.time.snapshot_name());
        let path = dump.path().join(&name);
        std::fs::write(&path, &bytes).unwrap();
        let s = ingest(store, &o);
        let r = result(&s, 100, &day2);
        assert_eq!(r.status, Status::Failed, "{class}: {r:#?}");
        let err = r.error.as_ref().unwrap();
        eprintln!("{} {class}: {}", store.backend(), err.message);
        assert!(
            err.message.contains(&name),
            "{class}: error names the file: {}",
            err.message
        );
        assert!(s.has_failures());
        // Previous snapshot only, live volume back at it, input kept.
        assert_eq!(
            snap_names(store, 100),
            [day1.time.snapshot_name()],
            "{class}"
        );
        compare_volume(&store.volume_path(&vol(100)).unwrap(), &day1)
            .unwrap_or_else(|e| panic!("{class}: {e}"));
        assert!(!store.changed_since_latest(&vol(100)).unwrap(), "{class}");
        assert_eq!(
            std::fs::read(&path).unwrap(),
            bytes,
            "{class}: input untouched"
        );
        // The other VM went on.
        assert_eq!(result(&s, 200, b.day()).status, Status::Ingested, "{class}");
        std::fs::remove_file(&path).unwrap();
    }
    // The good archive afterwards ingests normally.
    write_backup(dump.path(), 100, 21, &day2, false).unwrap();
    let s = ingest(store, &o);
    assert_eq!(result(&s, 100, &day2).status, Status::Ingested);
    compare_volume(&snap_path(store, 100, &day2), &day2).unwrap();
}

store::backend_tests!(
    five_day_sequence,
    live_backup_order,
    corrupt_archives_leave_the_previous_snapshot
);

/// Fills the store until a sync fails with ENOSPC/EDQUOT: VM 100 has a small first backup;
/// its second adds a disk of random data larger than the space left. The volume must go back
/// to the first snapshot, the input stays, and VM 300 is still ingested in the same run.
fn full_store(store: &dyn Store, big: u64) {
    let dump = tempfile::tempdir().unwrap();
    let o = opts(dump.path());
    let mut a = Series::new(SeriesSpec::new(100, 31, 1 << 20));
    let mut c = Series::new(SeriesSpec::new(300, 32, 256 << 10));
    write_backup(dump.path(), 100, 31, a.day(), false).unwrap();
    write_backup(dump.path(), 300, 32, c.day(), false).unwrap();
    assert_eq!(ingest(store, &o).totals.ingested, 2);
    let day1 = a.day().clone();
    a.advance();
    c.advance();
    let mut day2 = a.day().clone();
    let mut data = vec![0u8; big as usize];
    ingest::synth::Rng::new(99).fill(&mut data);
    day2.disks.push(ingest::synth::Disk {
        name: "drive-scsi9".into(),
        data,
    });
    day2.compression = Compression::Zstd;
    let w = write_backup(dump.path(), 100, 31, &day2, false).unwrap();
    write_backup(dump.path(), 300, 32, c.day(), false).unwrap();
    let s = ingest(store, &o);
    let r = result(&s, 100, &day2);
    assert_eq!(r.status, Status::Failed, "{r:#?}");
    let err = r.error.as_ref().unwrap();
    eprintln!("{} full store: {}", store.backend(), err.message);
    assert!(err.no_space, "{err:#?}");
    assert!(err.undo_error.is_none(), "{err:#?}");
    assert_eq!(snap_names(store, 100), [day1.time.snapshot_name()]);
    compare_volume(&store.volume_path(&vol(100)).unwrap(), &day1).unwrap();
    assert!(w.archive.exists());
    let r300 = result(&s, 300, c.day());
    assert_eq!(r300.status, Status::Ingested, "{r300:#?}");
}

mod space {
    mod btrfs {
        #[test]
        fn full_store() {
            let Some(b) = store::testutil::TestBtrfs::with_size(200 << 20)
                .map_or_else(|e| store_skip(&e), Some)
            else {
                return;
            };
            super::super::full_store(b.store(), 300 << 20);
        }

        fn store_skip(reason: &str) -> Option<store::testutil::TestBtrfs> {
            if std::env::var(store::testutil::REQUIRE_BTRFS).is_ok_and(|v| v == "1") {
                panic!("btrfs required but unavailable: {reason}");
            }
            eprintln!("SKIPPED (btrfs: {reason})");
            None
        }
    }

    mod zfs {
        #[test]
        fn full_store() {
            let Some(z) = store::testutil::zfs_or_skip() else {
                return;
            };
            // A quota on the store root makes the pool "full" for this test alone.
            store::cmd::Cmd::new("zfs")
                .args(["set", "quota=24M", z.root().as_str()])
                .run()
                .unwrap();
            super::super::full_store(z.store(), 48 << 20);
        }
    }
}

/// The measurement behind the default zero mode (docs/ingest.md, "Zeroed blocks"): the same
/// change — data blocks turned to zeros, scattered single blocks and one large aligned
/// region — ingested once with hole punching and once writing zeros, into two VMs. Punching
/// must not cost more snapshot space than writing zeros (small slack for metadata).
fn zero_mode_snapshot_cost(store: &dyn Store) {
    use ingest::sync::ZeroMode;
    let dump = tempfile::tempdir().unwrap();
    let size = 4usize << 20;
    let mut rng = ingest::synth::Rng::new(5);
    let mut base = vec![0u8; size];
    rng.fill(&mut base);
    let mut zeroed = base.clone();
    // 1 in 16 scattered 4 KiB blocks, and 1 MiB aligned.
    for b in (0..size / 4096).step_by(16) {
        zeroed[b * 4096..(b + 1) * 4096].fill(0);
    }
    zeroed[1 << 20..2 << 20].fill(0);
    let mut written = Vec::new();
    for (vmid, mode) in [(110u32, ZeroMode::Punch), (111, ZeroMode::Write)] {
        let mut o = opts(dump.path());
        o.zero_mode = mode;
        o.scan.include = vec![vmid];
        let mut days = Vec::new();
        let mut s = Series::new(SeriesSpec::new(vmid, 1, 64 << 10));
        for img in [&base, &zeroed] {
            let mut d = s.day().clone();
            d.disks = vec![ingest::synth::Disk {
                name: "drive-scsi0".into(),
                data: img.clone(),
            }];
            d.compression = Compression::Zstd;
            write_backup(dump.path(), vmid, 1, &d, false).unwrap();
            let r = ingest(store, &o);
            assert_eq!(result(&r, vmid, &d).status, Status::Ingested, "{r:#?}");
            days.push(d);
            s.advance();
        }
        let (_, z) = ingest::synth::check::expected_changes(Some(&base), &zeroed);
        let snaps = store.list_snapshots(&vol(vmid)).unwrap();
        compare_volume(&snap_path(store, vmid, &days[1]), &days[1]).unwrap();
        eprintln!(
            "{} zero mode {mode}: {z} B zeroed, snapshot written {} B",
            store.backend(),
            snaps[1].written
        );
        written.push(snaps[1].written);
    }
    assert!(
        written[0] <= written[1] + (256 << 10),
        "punch {} B vs write {} B",
        written[0],
        written[1]
    );
}

mod zero_mode {
    store::backend_tests!(zero_mode_snapshot_cost);
    use super::zero_mode_snapshot_cost;
}
