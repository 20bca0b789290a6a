//! Snapshot → VMA restore on real btrfs and real OpenZFS (`btrfs::*` / `zfs::*`): three days
//! of a VM stored as ingest stores them, each restored plain and zstd and read back with the
//! vma library; refusals (unknown VM/date, existing files, a full directory) leave nothing.

mod common;

use std::path::Path;

use common::{Day, dir_names, extract, read_all, store_day, three_days};
use restore::RestoreError;
use restore::archive::{RestoreOptions, restore_archive};
use restore::catalog::{list_vm, list_vms};
use restore::select::DateSpec;
use store::Store;
use store::cmd::Cmd;
use vma::compress::Compression;
use vma::progress::NoProgress;
use vma::vzdump::{BackupName, VmId};

const VMID: u32 = 100;

fn vmid() -> VmId {
    VmId::new(VMID).unwrap()
}

fn opts(dir: &Path, c: Option<Compression>) -> RestoreOptions {
    RestoreOptions {
        target_dir: dir.to_path_buf(),
        compression: c,
        level: None,
        threads: 2,
    }
}

fn setup(store: &dyn Store) -> Vec<Day> {
    let days = three_days(VMID);
    for d in &days {
        store_day(store, VMID, d);
    }
    days
}

/// Checks a restored archive against the day it came from.
fn check_restored(dir: &Path, archive: &Path, day: &Day, comp: Compression) {
    let file_name = archive.file_name().unwrap().to_str().unwrap();
    let name =
        BackupName::parse(file_name).unwrap_or_else(|| panic!("PVE would not list {file_name}"));
    assert_eq!(name.vmid, vmid());
    assert_eq!(name.time, day.time);
    assert_eq!(name.readable_compression(), Some(comp));

    let (header, images) = extract(archive);
    assert_eq!(header.uuid, day.uuid);
    assert_eq!(header.ctime, day.ctime);
    let configs: Vec<(String, Vec<u8>)> = header
        .configs
        .iter()
        .map(|c| (c.name.clone(), c.data.clone()))
        .collect();
    assert_eq!(configs, day.configs, "configs in slot order, bytes intact");
    let devices: Vec<(u8, String, u64)> = header
        .devices
        .iter()
        .map(|d| (d.id, d.name.clone(), d.size))
        .collect();
    let want: Vec<(u8, String, u64)> = day
        .disks
        .iter()
        .enumerate()
        .map(|(i, (n, d))| (i as u8 + 1, n.clone(), d.len() as u64))
        .collect();
    assert_eq!(devices, want);
    for ((n, want), got) in day.disks.iter().zip(&images) {
        assert!(want == got, "{file_name}: image {n} differs");
    }

    let mut expect = vec![name.archive_name()];
    let log = dir.join(name.log_name());
    assert_eq!(read_all(&log), day.log.clone().unwrap());
    expect.push(name.log_name());
    if let Some(notes) = &day.notes {
        assert_eq!(&read_all(&dir.join(name.notes_name())), notes);
        expect.push(name.notes_name());
    }
    expect.sort();
    assert_eq!(
        dir_names(dir),
        expect,
        "only the final files, no temporaries"
    );
}

fn restores_every_day_plain_and_zstd(store: &dyn Store) {
    let days = setup(store);
    let out = tempfile::tempdir().unwrap();
    for (i, day) in days.iter().enumerate() {
        for comp in [Compression::None, Compression::Zstd] {
            let dir = out.path().join(format!("day{i}-{comp}"));
            std::fs::create_dir(&dir).unwrap();
            let s = restore_archive(
                store,
                vmid(),
                &DateSpec::Exact(day.time),
                &opts(&dir, Some(comp)),
                &NoProgress,
            )
            .unwrap();
            check_restored(&dir, &s.archive, day, comp);
            assert_eq!(s.snapshot, day.time.snapshot_name());
            assert_eq!(
                s.image_bytes,
                day.disks.iter().map(|(_, d)| d.len() as u64).sum::<u64>()
            );
            assert!(s.data_bytes_read < s.image_bytes, "holes were read: {s:?}");
            assert_eq!(
                s.archive_bytes,
                std::fs::metadata(&s.archive).unwrap().len()
            );
        }
    }
}

fn date_forms_and_default_compression(store: &dyn Store) {
    let days = setup(store);
    let out = tempfile::tempdir().unwrap();
    // `latest` is day 3, ingested from a .vma.gz: by default restored as gzip again.
    let dir = out.path().join("latest");
    std::fs::create_dir(&dir).unwrap();
    let s = restore_archive(
        store,
        vmid(),
        &"latest".parse().unwrap(),
        &opts(&dir, None),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(s.compression, "gzip");
    assert!(
        s.archive
            .to_str()
            .unwrap()
            .ends_with("vzdump-qemu-100-2026_11_03-02_00_01.vma.gz")
    );
    check_restored(&dir, &s.archive, &days[2], Compression::Gzip);
    // A day with one backup.
    let dir = out.path().join("day2");
    std::fs::create_dir(&dir).unwrap();
    let s = restore_archive(
        store,
        vmid(),
        &"2026-11-02".parse().unwrap(),
        &opts(&dir, Some(Compression::Lzo)),
        &NoProgress,
    )
    .unwrap();
    check_restored(&dir, &s.archive, &days[1], Compression::Lzo);
}

fn refusals_leave_nothing_behind(store: &dyn Store) {
    let days = setup(store);
    let out = tempfile::tempdir().unwrap();
    let dir = out.path();
    let err = restore_archive(
        store,
        VmId::new(4242).unwrap(),
        &DateSpec::Latest,
        &opts(dir, None),
        &NoProgress,
    )
    .unwrap_err();
    assert!(
        matches!(err, RestoreError::VmMissing { vmid: 4242 }),
        "{err}"
    );
    assert!(err.is_not_found());
    let err = restore_archive(
        store,
        vmid(),
        &"2026-10-31".parse().unwrap(),
        &opts(dir, None),
        &NoProgress,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("available: 2026_11_01-02_00_03, 2026_11_02-02_00_05, 2026_11_03-02_00_01"),
        "{err}"
    );
    assert!(dir_names(dir).is_empty());

    // An existing archive, or only an existing companion: refused, the existing file kept.
    let name = BackupName::new(
        vma::vzdump::GuestKind::Qemu,
        vmid(),
        days[0].time,
        Compression::Zstd,
    );
    for existing in [name.archive_name(), name.log_name(), name.notes_name()] {
        std::fs::write(dir.join(&existing), b"precious").unwrap();
        let err = restore_archive(
            store,
            vmid(),
            &DateSpec::Exact(days[0].time),
            &opts(dir, Some(Compression::Zstd)),
            &NoProgress,
        )
        .unwrap_err();
        assert!(
            matches!(&err, RestoreError::Exists { path } if path.ends_with(&existing)),
            "{err}"
        );
        assert_eq!(dir_names(dir), vec![existing.clone()]);
        assert_eq!(std::fs::read(dir.join(&existing)).unwrap(), b"precious");
        std::fs::remove_file(dir.join(&existing)).unwrap();
    }
}

fn a_full_directory_fails_cleanly(store: &dyn Store) {
    let days = setup(store);
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("tiny");
    std::fs::create_dir(&dir).unwrap();
    // 64 KiB of tmpfs: the companions fit, the archive (~250 KiB uncompressed) does not.
    Cmd::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=64k,mode=0755",
            "vzsnap-test-tiny",
        ])
        .arg(&dir)
        .run()
        .unwrap();
    let result = restore_archive(
        store,
        vmid(),
        &DateSpec::Exact(days[0].time),
        &opts(&dir, Some(Compression::None)),
        &NoProgress,
    );
    let left = dir_names(&dir);
    Cmd::new("umount").arg(&dir).run().unwrap();
    let err = result.unwrap_err();
    match &err {
        RestoreError::Io { source, path } => {
            assert_eq!(source.raw_os_error(), Some(libc::ENOSPC), "{err}");
            assert!(
                path.to_str()
                    .unwrap()
                    .ends_with("vzdump-qemu-100-2026_11_01-02_00_03.dat"),
                "{err}"
            );
        }
        other => panic!("expected ENOSPC, got {other}"),
    }
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn list_reports_backups_disks_and_protection(store: &dyn Store) {
    let days = setup(store);
    let vms = list_vms(store).unwrap();
    assert_eq!(vms.len(), 1);
    let vm = list_vm(store, vmid()).unwrap();
    assert_eq!(vm, vms[0]);
    assert_eq!(vm.vmid, VMID);
    let names: Vec<&str> = vm.backups.iter().map(|b| b.snapshot.as_str()).collect();
    assert_eq!(
        names,
        days.iter()
            .map(|d| d.time.snapshot_name())
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    for (b, d) in vm.backups.iter().zip(&days) {
        assert_eq!(b.manifest_error, None);
        assert_eq!(b.compression.as_deref(), Some(d.compression));
        assert_eq!(
            b.disks
                .iter()
                .map(|x| (x.name.clone(), x.size))
                .collect::<Vec<_>>(),
            d.disks
                .iter()
                .map(|(n, x)| (n.clone(), x.len() as u64))
                .collect::<Vec<_>>()
        );
        assert_eq!(b.held, d.protected);
        assert_eq!(b.protected, d.protected);
        assert_eq!(b.backup_time, Some(d.ctime));
        assert!(b.source.as_deref().unwrap().starts_with("vzdump-qemu-100-"));
        assert!(b.written > 0 && b.referenced > 0, "{b:?}");
    }
    assert!(matches!(
        list_vm(store, VmId::new(555).unwrap()),
        Err(RestoreError::VmMissing { vmid: 555 })
    ));
}

/// Records the target directory's entries whenever the restore reports progress.
struct DirWatch {
    dir: std::path::PathBuf,
    seen: std::sync::Mutex<std::collections::BTreeSet<String>>,
}

impl DirWatch {
    fn look(&self) {
        let names = dir_names(&self.dir);
        self.seen.lock().unwrap().extend(names);
    }
}

impl vma::progress::Progress for DirWatch {
    fn start(&self, _label: &str, _total: Option<u64>) {
        self.look();
    }
    fn set_position(&self, _pos: u64) {
        self.look();
    }
    fn finish(&self, _summary: &str) {
        self.look();
    }
}

/// The names among `names` that PVE would list as backups: pve-storage's
/// `get_subdir_files` (`m!/([^/]+$BACKUP_EXT_RE_2)$!`, vma-format.md §2.1), run by perl.
fn listed_by_pve(names: &[String]) -> Vec<String> {
    let out = Cmd::new("perl")
        .args([
            "-ne",
            r"chomp; print qq($_\n) if m!^([^/]+\.(tgz|(?:(?:tar|vma)(?:\.(gz|lzo|zst|bz2))?)))$!",
        ])
        .stdin_bytes(names.join("\n").into_bytes())
        .run()
        .unwrap()
        .stdout;
    out.lines().map(str::to_string).collect()
}

/// While a restore writes, nothing in the directory is a name PVE lists: the archive is
/// written as vzdump's own `.dat`, the companions under dot-prefixed temporaries; only the
/// finished files (archive last) carry backup names.
fn temporaries_are_never_listed_by_pve(store: &dyn Store) {
    let days = setup(store);
    for comp in [Compression::None, Compression::Zstd] {
        let out = tempfile::tempdir().unwrap();
        let watch = DirWatch {
            dir: out.path().to_path_buf(),
            seen: Default::default(),
        };
        let s = restore_archive(
            store,
            vmid(),
            &DateSpec::Exact(days[0].time),
            &opts(out.path(), Some(comp)),
            &watch,
        )
        .unwrap();
        let seen: Vec<String> = watch.seen.into_inner().unwrap().into_iter().collect();
        let name = BackupName::parse(s.archive.file_name().unwrap().to_str().unwrap()).unwrap();
        assert!(
            seen.contains(&name.temp_archive_name()),
            "the archive was written under vzdump's temporary name: {seen:?}"
        );
        assert!(
            seen.len() >= 3,
            "archive and companion temporaries: {seen:?}"
        );
        assert_eq!(listed_by_pve(&seen), Vec::<String>::new(), "{comp:?}");
        for n in &seen {
            assert_eq!(BackupName::parse(n), None, "{n}");
        }
        // The check is not vacuous: the finished archive is listed.
        assert_eq!(
            listed_by_pve(&dir_names(out.path())),
            vec![name.archive_name()]
        );
    }
}

store::backend_tests!(
    temporaries_are_never_listed_by_pve,
    restores_every_day_plain_and_zstd,
    date_forms_and_default_compression,
    refusals_leave_nothing_behind,
    a_full_directory_fails_cleanly,
    list_reports_backups_disks_and_protection,
);
