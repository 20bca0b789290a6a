//! `mount` / `umount` on real btrfs and real OpenZFS (`btrfs::*` / `zfs::*`): partitioned
//! disk images built with sfdisk + mkfs, filled through loop mounts (ext4, xfs) and mtools
//! (vfat), stored and snapshotted per day as ingest would; mounted from an older snapshot,
//! checked read-only, and unmounted without leaving a mount, a loop device or a clone.
//!
//! A filesystem the running kernel cannot mount (e.g. vfat on a kernel without it) must be
//! reported by vzsnap as such; the test then prints `NOTE: …` and checks the report instead
//! of the mounted files — it never passes silently.

mod common;

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use common::images::{mkfs, sfdisk, sparse, splice};
use common::{noise, time};
use restore::RestoreError;
use restore::mount::report::{ItemStatus, MountReport};
use restore::mount::{
    MountOptions, destroy_orphan, list_mounts, loopdev, mount_backup, mountinfo, orphan_clones,
    unmount,
};
use restore::select::DateSpec;
use store::cmd::Cmd;
use store::layout::{self, Manifest, ManifestDevice, SourceFile, VmaIdentity, meta_keys};
use store::{MetaKey, SnapshotName, Store, VolumeName};
use vma::vzdump::VmId;

const VMID: u32 = 321;
const MIB: u64 = 1 << 20;
const DAY1: &str = "2026_11_01-03_00_00";
const DAY2: &str = "2026_11_02-03_00_00";

fn vmid() -> VmId {
    VmId::new(VMID).unwrap()
}

fn day(s: &str) -> DateSpec {
    DateSpec::Exact(time(s))
}

/// Writes files into the filesystem at `offset` of `img` through a read-write loop mount
/// (what a guest does to its disk between two backups).
fn write_via_loop_mount(
    img: &Path,
    offset: u64,
    size: u64,
    fstype: &str,
    files: &[(&str, Vec<u8>)],
) {
    assert!(
        try_write_via_loop_mount(img, offset, size, fstype, files),
        "cannot loop-mount {fstype}"
    );
}

/// Like [`write_via_loop_mount`]; `false` if the kernel cannot mount `fstype`.
fn try_write_via_loop_mount(
    img: &Path,
    offset: u64,
    size: u64,
    fstype: &str,
    files: &[(&str, Vec<u8>)],
) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let mounted = Cmd::new("mount")
        .args([
            "-t",
            fstype,
            "-o",
            &format!("loop,offset={offset},sizelimit={size}"),
        ])
        .arg(img)
        .arg(dir.path())
        .run();
    if let Err(e) = mounted {
        eprintln!("loop mount of {fstype} failed: {e}");
        return false;
    }
    let res = std::panic::catch_unwind(|| {
        for (name, data) in files {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, data).unwrap();
        }
    });
    Cmd::new("umount").arg(dir.path()).run().unwrap();
    res.unwrap();
    true
}

/// Writes files into a FAT filesystem at `offset` of `img` with mtools (no kernel needed).
fn write_via_mtools(img: &Path, offset: u64, files: &[(&str, Vec<u8>)]) {
    let target = format!("{}@@{offset}", img.display());
    let src = tempfile::tempdir().unwrap();
    for (name, data) in files {
        if let Some((d, _)) = name.rsplit_once('/') {
            // mmd fails if it exists; that is fine.
            let _ = Cmd::new("mmd")
                .args(["-D", "s", "-i", &target, &format!("::/{d}")])
                .run();
        }
        let local = src.path().join("f");
        std::fs::write(&local, data).unwrap();
        Cmd::new("mcopy")
            .args(["-o", "-i", &target])
            .arg(&local)
            .arg(format!("::/{name}"))
            .run()
            .unwrap();
    }
}

fn read_via_mtools(img: &Path, offset: u64, name: &str) -> Vec<u8> {
    Cmd::new("mtype")
        .args([
            "-i",
            &format!("{}@@{offset}", img.display()),
            &format!("::/{name}"),
        ])
        .run()
        .unwrap()
        .stdout
        .into_bytes()
}

/// Writes the manifest and configs for the disks now in the volume and snapshots it.
fn snapshot_day(store: &dyn Store, when: &str, disks: &[&str]) {
    let vol = VolumeName::new(VMID.to_string()).unwrap();
    let dir = store.volume_path(&vol).unwrap();
    std::fs::write(
        dir.join("qemu-server.conf"),
        "name: mount-test\n#qmdump#map:scsi0:drive-scsi0:local:raw:\n",
    )
    .unwrap();
    let devices = disks
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let file = layout::disk_file_name(n).unwrap();
            ManifestDevice {
                dev_id: i as u8 + 1,
                name: n.to_string(),
                size: std::fs::metadata(dir.join(&file)).unwrap().len(),
                file,
            }
        })
        .collect();
    let m = Manifest {
        format: layout::MANIFEST_FORMAT,
        vmid: VMID,
        backup_time: 1_793_500_000,
        source: SourceFile {
            name: format!("vzdump-qemu-{VMID}-{when}.vma.zst"),
            size: 1,
            compression: "zstd".into(),
        },
        vma: VmaIdentity {
            uuid: layout::format_uuid(&[5; 16]),
            ctime: 1_793_500_000,
        },
        devices,
        configs: vec!["qemu-server.conf".into()],
    };
    m.write_to(&dir).unwrap();
    let mut meta = BTreeMap::new();
    meta.insert(
        MetaKey::new(meta_keys::SOURCE).unwrap(),
        m.source.name.clone(),
    );
    store
        .snapshot(&vol, &SnapshotName::new(when).unwrap(), &meta)
        .unwrap();
}

/// Undoes whatever a failing test left mounted (a panicking test must not leave loop devices
/// that keep the test's btrfs file system busy). Does nothing after a passing test.
struct Cleanup<'a> {
    store: &'a dyn Store,
    work: &'a Path,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let state_dir = self.work.join("state");
        if let Ok((listed, _)) = list_mounts(&state_dir) {
            for m in listed {
                if let Err(e) = unmount(self.store, &state_dir, &m.mountpoint) {
                    eprintln!("cleanup: {}: {e}", m.mountpoint.display());
                }
            }
        }
        if let Ok(orphans) = orphan_clones(self.store, &state_dir) {
            for c in orphans {
                if let Err(e) = destroy_orphan(self.store, &state_dir, &c) {
                    eprintln!("cleanup: {c}: {e}");
                }
            }
        }
    }
}

fn volume_dir(store: &dyn Store) -> PathBuf {
    // The test's own loop mounts run before vzsnap's code would load the driver.
    loopdev::ensure_loop_driver();
    store
        .ensure_volume(&VolumeName::new(VMID.to_string()).unwrap(), &[])
        .unwrap()
}

fn options(work: &Path, mountpoint: Option<PathBuf>, disk: Option<&str>) -> MountOptions {
    MountOptions {
        disk: disk.map(str::to_string),
        mountpoint,
        mount_root: work.join("mounts"),
        state_dir: work.join("state"),
        store_spec: Some("test".into()),
    }
}

/// After umount: no mount below the mountpoint, no loop device on a clone file, no clone,
/// no state file.
fn assert_all_gone(store: &dyn Store, work: &Path, report: &MountReport) {
    let mounts = mountinfo::read_mountinfo().unwrap();
    let left: Vec<_> = mounts
        .iter()
        .filter(|m| m.target.starts_with(&report.mountpoint))
        .collect();
    assert!(left.is_empty(), "still mounted: {left:?}");
    let loops = loopdev::list_loops().unwrap();
    let left: Vec<_> = loops
        .iter()
        .filter(|l| l.backing_file.starts_with(&report.clone_path))
        .collect();
    assert!(left.is_empty(), "loop devices left: {left:?}");
    let losetup = Cmd::new("losetup").arg("-a").run().unwrap().stdout;
    assert!(
        !losetup.contains(report.clone_path.to_str().unwrap()),
        "losetup -a: {losetup}"
    );
    assert!(
        store.list_clones().unwrap().is_empty(),
        "clones left: {:?}",
        store.list_clones().unwrap()
    );
    assert!(list_mounts(&work.join("state")).unwrap().0.is_empty());
    assert!(
        !report.mountpoint.exists(),
        "{} left behind",
        report.mountpoint.display()
    );
}

/// Reports what the kernel could not do, loudly, and says whether the item is mounted.
fn mounted_or_noted(report: &MountReport, disk: &str, part: Option<u32>, fstype: &str) -> bool {
    let (_, item) = report
        .items()
        .find(|(d, i)| d.disk == disk && i.partition == part)
        .unwrap_or_else(|| panic!("{disk} {part:?} missing"));
    assert_eq!(item.filesystem.as_deref(), Some(fstype), "{item:?}");
    match item.status {
        ItemStatus::Mounted => true,
        ItemStatus::Failed => {
            let note = item.note.clone().unwrap_or_default();
            let kernel_fs = if fstype.starts_with("ext") {
                "ext4"
            } else {
                fstype
            };
            assert!(
                note.contains(&format!("the running kernel has no {kernel_fs} support")),
                "{fstype} failed for another reason than missing kernel support: {note}"
            );
            eprintln!(
                "NOTE: {disk} {part:?}: {fstype} cannot be mounted on this kernel; vzsnap reported: {note}"
            );
            false
        }
        ItemStatus::NotMounted => panic!("{fstype} should be mounted: {item:?}"),
    }
}

fn assert_read_only(dir: &Path) {
    let err = std::fs::write(dir.join("vzsnap-write-test"), b"x").unwrap_err();
    assert_eq!(
        err.raw_os_error(),
        Some(libc::EROFS),
        "{}: {err}",
        dir.display()
    );
}

fn gpt_ext4_and_vfat_day1_after_day2(store: &dyn Store) {
    let work = tempfile::tempdir().unwrap();
    let _cleanup = Cleanup {
        store,
        work: work.path(),
    };
    let vol = volume_dir(store);
    let img = vol.join("disk-drive-scsi0.raw");
    sparse(&img, 48 * MIB);
    sfdisk(
        &img,
        "label: gpt\n\
         start=2048, size=32768, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name=\"root\"\n\
         start=34816, size=16384, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name=\"esp\"\n",
    );
    let (p1, p1_size, p2) = (2048 * 512, 16 * MIB, 34816 * 512);
    splice(
        &img,
        p1,
        &mkfs(
            work.path(),
            "p1",
            p1_size,
            "mkfs.ext4",
            &["-q", "-F", "-L", "guestroot"],
        ),
    );
    splice(
        &img,
        p2,
        &mkfs(work.path(), "p2", 8 * MIB, "mkfs.vfat", &["-n", "ESP"]),
    );
    let big1 = noise(1, 300_000);
    write_via_loop_mount(
        &img,
        p1,
        p1_size,
        "ext4",
        &[
            ("etc/hostname", b"day1-host\n".to_vec()),
            ("data/big.bin", big1.clone()),
        ],
    );
    write_via_mtools(&img, p2, &[("EFI/BOOT.TXT", b"day1 boot\n".to_vec())]);
    snapshot_day(store, DAY1, &["drive-scsi0"]);
    // Day 2 changes files in both partitions.
    write_via_loop_mount(
        &img,
        p1,
        p1_size,
        "ext4",
        &[
            ("etc/hostname", b"day2-host\n".to_vec()),
            ("data/big.bin", noise(2, 300_000)),
        ],
    );
    write_via_mtools(
        &img,
        p2,
        &[("EFI/BOOT.TXT", b"day2 boot, longer\n".to_vec())],
    );
    snapshot_day(store, DAY2, &["drive-scsi0"]);

    let mp = work.path().join("mnt");
    let report = mount_backup(
        store,
        vmid(),
        &day(DAY1),
        &options(work.path(), Some(mp.clone()), None),
    )
    .unwrap();
    eprintln!("{}", report.lines().join("\n"));
    assert_eq!(report.mountpoint, mp.canonicalize().unwrap());
    assert_eq!(report.disks.len(), 1);
    assert_eq!(report.disks[0].layout, "gpt");
    assert_eq!(store.list_clones().unwrap().len(), 1);

    let base = report.mountpoint.join("drive-scsi0");
    if mounted_or_noted(&report, "drive-scsi0", Some(1), "ext4") {
        let part1 = base.join("part1");
        assert_eq!(
            std::fs::read(part1.join("etc/hostname")).unwrap(),
            b"day1-host\n"
        );
        assert!(
            std::fs::read(part1.join("data/big.bin")).unwrap() == big1,
            "day-1 big.bin"
        );
        assert_read_only(&part1);
        let m = mountinfo::read_mountinfo().unwrap();
        let e = m.iter().find(|e| e.target == part1).unwrap();
        for opt in ["ro", "nosuid", "nodev", "noexec"] {
            assert!(
                e.options.split(',').any(|o| o == opt),
                "{opt} missing in {}",
                e.options
            );
        }
    }
    if mounted_or_noted(&report, "drive-scsi0", Some(2), "vfat") {
        let part2 = base.join("part2");
        assert_eq!(
            std::fs::read(part2.join("EFI/BOOT.TXT")).unwrap(),
            b"day1 boot\n"
        );
        assert_read_only(&part2);
    } else {
        // The clone still holds day 1 (checked without the kernel's vfat).
        assert_eq!(
            read_via_mtools(&report.disks[0].image, p2, "EFI/BOOT.TXT"),
            b"day1 boot\n"
        );
    }
    // The live volume still has day 2: the mount did not touch it.
    assert_eq!(
        read_via_mtools(&img, p2, "EFI/BOOT.TXT"),
        b"day2 boot, longer\n"
    );

    let (listed, bad) = list_mounts(&work.path().join("state")).unwrap();
    assert!(bad.is_empty());
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].status(), "active");
    assert_eq!(listed[0].id, report.id);

    // Mounting again onto the same (now non-empty) mountpoint is refused; nothing is added.
    let err = mount_backup(
        store,
        vmid(),
        &day(DAY1),
        &options(work.path(), Some(mp.clone()), None),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("is already a mount point")
            || err.to_string().contains("is not empty"),
        "{err}"
    );
    assert_eq!(store.list_clones().unwrap().len(), 1);

    let out = unmount(store, &work.path().join("state"), &mp).unwrap();
    assert!(out.clone_destroyed);
    assert_all_gone(store, work.path(), &report);
    // Twice is an error that says so, not a crash.
    assert!(
        unmount(store, &work.path().join("state"), &mp)
            .unwrap_err()
            .to_string()
            .contains("no vzsnap mount")
    );
}

fn mbr_xfs_swap_whole_disk_ext4_and_empty_disk(store: &dyn Store) {
    let work = tempfile::tempdir().unwrap();
    let _cleanup = Cleanup {
        store,
        work: work.path(),
    };
    let vol = volume_dir(store);
    // Disk 1: MBR with ext4 (1), an extended partition holding xfs (5) and swap (6).
    let img = vol.join("disk-drive-scsi0.raw");
    sparse(&img, 64 * MIB);
    sfdisk(
        &img,
        "label: dos\nstart=2048, size=16384, type=83\nstart=18432, type=5\nstart=20480, size=40960, type=83\nstart=63488, size=8192, type=82\n",
    );
    let (p1, p1s, p5, p5s, p6) = (2048 * 512, 8 * MIB, 20480 * 512, 20 * MIB, 63488 * 512);
    splice(
        &img,
        p1,
        &mkfs(work.path(), "p1", p1s, "mkfs.ext4", &["-q", "-F"]),
    );
    splice(
        &img,
        p5,
        &mkfs(work.path(), "p5", p5s, "mkfs.xfs", &["-q", "-f"]),
    );
    splice(
        &img,
        p6,
        &mkfs(work.path(), "p6", 4 * MIB, "mkswap", &["-L", "guestswap"]),
    );
    write_via_loop_mount(
        &img,
        p1,
        p1s,
        "ext4",
        &[("a.txt", b"mbr ext4 day1".to_vec())],
    );
    if !try_write_via_loop_mount(&img, p5, p5s, "xfs", &[("x/y.txt", b"xfs day1".to_vec())]) {
        eprintln!(
            "NOTE: this kernel cannot mount xfs; the xfs partition stays empty and must be reported as unsupported"
        );
    }
    // Disk 2: ext4 on the whole disk, no partition table.
    let whole = vol.join("disk-drive-scsi1.raw");
    sparse(&whole, 12 * MIB);
    Cmd::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "wholedisk"])
        .arg(&whole)
        .run()
        .unwrap();
    write_via_loop_mount(
        &whole,
        0,
        12 * MIB,
        "ext4",
        &[("w.txt", b"whole disk day1".to_vec())],
    );
    // Disk 3: nothing on it (an efidisk-like blank image).
    sparse(&vol.join("disk-drive-efidisk0.raw"), 528 * 1024);
    let disks = ["drive-efidisk0", "drive-scsi0", "drive-scsi1"];
    snapshot_day(store, DAY1, &disks);
    write_via_loop_mount(
        &img,
        p1,
        p1s,
        "ext4",
        &[("a.txt", b"mbr ext4 day2".to_vec())],
    );
    write_via_loop_mount(
        &whole,
        0,
        12 * MIB,
        "ext4",
        &[("w.txt", b"whole disk day2".to_vec())],
    );
    snapshot_day(store, DAY2, &disks);

    // All disks, default mountpoint under the mount root.
    let report = mount_backup(
        store,
        vmid(),
        &"2026-11-01".parse().unwrap(),
        &options(work.path(), None, None),
    )
    .unwrap();
    eprintln!("{}", report.lines().join("\n"));
    assert_eq!(
        report.mountpoint,
        work.path()
            .join("mounts")
            .canonicalize()
            .unwrap()
            .join(format!("{VMID}-{DAY1}"))
    );
    let layouts: Vec<(&str, &str)> = report
        .disks
        .iter()
        .map(|d| (d.disk.as_str(), d.layout.as_str()))
        .collect();
    assert_eq!(
        layouts,
        vec![
            ("drive-efidisk0", "none"),
            ("drive-scsi0", "mbr"),
            ("drive-scsi1", "whole-disk")
        ]
    );
    let parts: Vec<Option<u32>> = report.disks[1].items.iter().map(|i| i.partition).collect();
    assert_eq!(parts, vec![Some(1), Some(5), Some(6)]);
    let mp = report.mountpoint.clone();
    if mounted_or_noted(&report, "drive-scsi0", Some(1), "ext4") {
        assert_eq!(
            std::fs::read(mp.join("drive-scsi0/part1/a.txt")).unwrap(),
            b"mbr ext4 day1"
        );
        assert_read_only(&mp.join("drive-scsi0/part1"));
    }
    if mounted_or_noted(&report, "drive-scsi0", Some(5), "xfs") {
        assert_eq!(
            std::fs::read(mp.join("drive-scsi0/part5/x/y.txt")).unwrap(),
            b"xfs day1"
        );
        assert_read_only(&mp.join("drive-scsi0/part5"));
    }
    let swap = &report.disks[1].items[2];
    assert_eq!(
        (swap.filesystem.as_deref(), swap.status),
        (Some("swap"), ItemStatus::NotMounted)
    );
    assert_eq!(swap.label.as_deref(), Some("guestswap"));
    if mounted_or_noted(&report, "drive-scsi1", None, "ext4") {
        assert_eq!(
            std::fs::read(mp.join("drive-scsi1/disk/w.txt")).unwrap(),
            b"whole disk day1"
        );
    }
    assert_eq!(report.disks[0].items[0].status, ItemStatus::NotMounted);

    // At the same time, one disk of day 2 with --disk: MOUNTPOINT/disk, its own clone.
    let r2 = mount_backup(
        store,
        vmid(),
        &day(DAY2),
        &options(work.path(), None, Some("drive-scsi1")),
    )
    .unwrap();
    assert_eq!(
        r2.mountpoint.file_name().unwrap().to_str().unwrap(),
        format!("{VMID}-{DAY2}-drive-scsi1")
    );
    if mounted_or_noted(&r2, "drive-scsi1", None, "ext4") {
        assert_eq!(
            std::fs::read(r2.mountpoint.join("disk/w.txt")).unwrap(),
            b"whole disk day2"
        );
    }
    assert_eq!(store.list_clones().unwrap().len(), 2);
    assert_eq!(list_mounts(&work.path().join("state")).unwrap().0.len(), 2);

    unmount(store, &work.path().join("state"), &r2.mountpoint).unwrap();
    // umount by id works too.
    unmount(store, &work.path().join("state"), Path::new(&report.id)).unwrap();
    assert_all_gone(store, work.path(), &report);
    assert!(!r2.mountpoint.exists());
}

/// A small GPT disk with one ext4 partition, two days.
fn simple_disk(store: &dyn Store, work: &Path) {
    let vol = volume_dir(store);
    let img = vol.join("disk-drive-virtio0.raw");
    sparse(&img, 16 * MIB);
    sfdisk(&img, "label: gpt\nstart=2048, size=16384\n");
    splice(
        &img,
        2048 * 512,
        &mkfs(work, "p1", 8 * MIB, "mkfs.ext4", &["-q", "-F"]),
    );
    write_via_loop_mount(&img, 2048 * 512, 8 * MIB, "ext4", &[("f", b"1".to_vec())]);
    snapshot_day(store, DAY1, &["drive-virtio0"]);
    // A blank disk's backup: nothing to mount.
    std::fs::write(&img, b"").unwrap();
    sparse(&img, 16 * MIB);
    snapshot_day(store, DAY2, &["drive-virtio0"]);
}

fn crash_and_reboot_leftovers_are_cleaned(store: &dyn Store) {
    let work = tempfile::tempdir().unwrap();
    let _cleanup = Cleanup {
        store,
        work: work.path(),
    };
    let state_dir = work.path().join("state");
    simple_disk(store, work.path());

    // A crash between losetup and recording its device: the loop device is found by its
    // backing file in the clone all the same.
    let report =
        mount_backup(store, vmid(), &day(DAY1), &options(work.path(), None, None)).unwrap();
    let file = state_dir.join(format!("{}.json", report.id));
    let mut st: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    st["loops"] = serde_json::json!([]);
    st["complete"] = serde_json::json!(false);
    std::fs::write(&file, serde_json::to_vec(&st).unwrap()).unwrap();
    let (listed, _) = list_mounts(&state_dir).unwrap();
    assert_eq!(listed[0].status(), "incomplete");
    let out = unmount(store, &state_dir, &report.mountpoint).unwrap();
    assert_eq!(out.detached.len(), 1, "{out:?}");
    assert_all_gone(store, work.path(), &report);

    // A reboot: mounts and loop devices vanish; the clone stays.
    let report =
        mount_backup(store, vmid(), &day(DAY1), &options(work.path(), None, None)).unwrap();
    simulate_reboot(&report);
    // First a reboot that kept the state (e.g. a persistent state directory): umount copes
    // with every piece being gone except the clone.
    let out = unmount(store, &state_dir, &report.mountpoint).unwrap();
    assert!(
        out.clone_destroyed && out.unmounted.is_empty() && out.detached.is_empty(),
        "{out:?}"
    );
    assert_all_gone(store, work.path(), &report);
    // Then the state is lost while everything is still mounted (a wiped state directory):
    // the clone is an orphan, found by its name; its mounts and loop devices by the clone.
    let report =
        mount_backup(store, vmid(), &day(DAY1), &options(work.path(), None, None)).unwrap();
    std::fs::remove_dir_all(&state_dir).unwrap();
    let orphans = orphan_clones(store, &state_dir).unwrap();
    assert_eq!(
        orphans.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        vec![report.id.clone()]
    );
    let out = destroy_orphan(store, &state_dir, &orphans[0]).unwrap();
    let mounted: Vec<PathBuf> = report
        .items()
        .filter_map(|(_, i)| i.mounted_at.clone())
        .collect();
    assert_eq!(out.unmounted, mounted);
    assert!(out.clone_destroyed);
    // Everything but the (unknowable) directories is gone.
    for dir in &mounted {
        std::fs::remove_dir(dir).unwrap();
        std::fs::remove_dir(dir.parent().unwrap()).unwrap();
    }
    std::fs::remove_dir(&report.mountpoint).unwrap();
    std::fs::create_dir_all(&state_dir).unwrap();
    assert_all_gone(store, work.path(), &report);
    // And after a real reboot (no mounts, no loop devices, no state) only the clone is left.
    let report =
        mount_backup(store, vmid(), &day(DAY1), &options(work.path(), None, None)).unwrap();
    simulate_reboot(&report);
    std::fs::remove_dir_all(&state_dir).unwrap();
    let orphans = orphan_clones(store, &state_dir).unwrap();
    let out = destroy_orphan(store, &state_dir, &orphans[0]).unwrap();
    assert!(
        out.clone_destroyed && out.unmounted.is_empty() && out.detached.is_empty(),
        "{out:?}"
    );
    assert!(store.list_clones().unwrap().is_empty());
}

/// What a reboot does to a mount: its mounts and loop devices are gone.
fn simulate_reboot(report: &MountReport) {
    for (_, i) in report.items() {
        if let Some(at) = &i.mounted_at {
            Cmd::new("umount").arg(at).run().unwrap();
        }
        if let Some(dev) = &i.loop_device {
            Cmd::new("losetup").args(["-d", dev]).run().unwrap();
        }
    }
    // The kernel may finish detaching a moment later.
    for _ in 0..50 {
        let busy = loopdev::list_loops()
            .unwrap()
            .iter()
            .any(|l| l.backing_file.starts_with(&report.clone_path));
        if !busy {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!(
        "loop devices on {} did not go away",
        report.clone_path.display()
    );
}

fn refusals_undo_everything(store: &dyn Store) {
    let work = tempfile::tempdir().unwrap();
    let _cleanup = Cleanup {
        store,
        work: work.path(),
    };
    simple_disk(store, work.path());
    let opts = options(work.path(), None, None);
    // Unknown VM, date, disk.
    assert!(matches!(
        mount_backup(store, VmId::new(999).unwrap(), &DateSpec::Latest, &opts),
        Err(RestoreError::VmMissing { vmid: 999 })
    ));
    assert!(matches!(
        mount_backup(store, vmid(), &"2027-01-01".parse().unwrap(), &opts),
        Err(RestoreError::DateNotFound { .. })
    ));
    let err = mount_backup(
        store,
        vmid(),
        &day(DAY1),
        &options(work.path(), None, Some("drive-scsi7")),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("has no disk \"drive-scsi7\"; its disks: drive-virtio0"),
        "{err}"
    );
    // A non-empty mountpoint.
    let full = work.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("keep"), b"").unwrap();
    let err = mount_backup(
        store,
        vmid(),
        &day(DAY1),
        &options(work.path(), Some(full.clone()), None),
    )
    .unwrap_err();
    assert!(err.to_string().contains("is not empty"), "{err}");
    assert!(full.join("keep").exists());
    // Nothing mountable (day 2 is a blank disk): error with the report, all undone.
    let err = mount_backup(store, vmid(), &DateSpec::Latest, &opts)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("nothing could be mounted") && err.contains("drive-virtio0"),
        "{err}"
    );
    assert!(store.list_clones().unwrap().is_empty());
    assert!(
        list_mounts(&work.path().join("state"))
            .unwrap()
            .0
            .is_empty()
    );
    let leftover: Vec<_> = std::fs::read_dir(work.path().join("mounts"))
        .unwrap()
        .collect();
    assert!(leftover.is_empty(), "{leftover:?}");
}

/// An LVM physical volume is detected and reported, never attached: the item is not
/// mounted, and its note says why and how to look inside by hand (with the partition's own
/// offset and size); the ext4 next to it is mounted as usual, and umount leaves nothing.
fn lvm_pv_is_reported_not_attached(store: &dyn Store) {
    let work = tempfile::tempdir().unwrap();
    let _cleanup = Cleanup {
        store,
        work: work.path(),
    };
    let vol = volume_dir(store);
    let img = vol.join("disk-drive-scsi0.raw");
    sparse(&img, 24 * MIB);
    sfdisk(
        &img,
        "label: gpt\n\
         start=2048, size=16384, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n\
         start=18432, size=8192, type=E6D6D379-F507-44C2-A23C-238F2A3DF928\n",
    );
    let (p1, p2, p2_size) = (2048 * 512, 18432 * 512, 8192 * 512);
    splice(
        &img,
        p1,
        &mkfs(work.path(), "p1", 8 * MIB, "mkfs.ext4", &["-q", "-F"]),
    );
    // An LVM2 PV label in sector 1 of partition 2, as pvcreate writes it (label header:
    // "LABELONE", offset of the PV header 32, type "LVM2 001", then the PV uuid).
    let mut label = vec![0u8; 512];
    label[..8].copy_from_slice(b"LABELONE");
    label[20..24].copy_from_slice(&32u32.to_le_bytes());
    label[24..32].copy_from_slice(b"LVM2 001");
    label[32..64].copy_from_slice(b"Pv0123456789abcdefghijklmnopqrst");
    OpenOptions::new()
        .write(true)
        .open(&img)
        .unwrap()
        .write_all_at(&label, p2 + 512)
        .unwrap();
    snapshot_day(store, DAY1, &["drive-scsi0"]);

    let report =
        mount_backup(store, vmid(), &day(DAY1), &options(work.path(), None, None)).unwrap();
    eprintln!("{}", report.lines().join("\n"));
    mounted_or_noted(&report, "drive-scsi0", Some(1), "ext4");
    let (_, pv) = report
        .items()
        .find(|(_, i)| i.partition == Some(2))
        .unwrap();
    assert_eq!(pv.filesystem.as_deref(), Some("LVM2_member"), "{pv:?}");
    assert_eq!(pv.status, ItemStatus::NotMounted);
    assert!(
        pv.loop_device.is_none() && pv.mounted_at.is_none(),
        "{pv:?}"
    );
    let note = pv.note.clone().unwrap_or_default();
    for want in [
        "LVM2 physical volume",
        "does not attach or activate guest volume groups",
        &format!("--offset {p2} --sizelimit {p2_size}"),
        "pvs --devices",
    ] {
        assert!(note.contains(want), "{want:?} not in: {note}");
    }
    unmount(store, &work.path().join("state"), &report.mountpoint).unwrap();
    assert_all_gone(store, work.path(), &report);
}

store::backend_tests!(
    lvm_pv_is_reported_not_attached,
    gpt_ext4_and_vfat_day1_after_day2,
    mbr_xfs_swap_whole_disk_ext4_and_empty_disk,
    crash_and_reboot_leftovers_are_cleaned,
    refusals_undo_everything,
);
