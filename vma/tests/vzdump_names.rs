//! vzdump file names, table-driven after pve-storage `src/test/archive_info_test.pm`
//! (VMID 16110, the same archives, the same expected log/notes names and ctimes; PVE's test
//! computes ctime in UTC), plus the names vzdump uses while writing, which must not parse.

use jiff::tz::TimeZone;
use vma::compress::Compression;
use vma::vzdump::{ArchiveCompression, ArchiveFormat, BackupName, BackupTime, GuestKind, VmId};

struct Expect {
    archive: &'static str,
    file: &'static str,
    kind: GuestKind,
    format: ArchiveFormat,
    compression: Option<ArchiveCompression>,
    ctime_utc: i64,
}

fn check(e: &Expect) {
    let n = BackupName::parse(e.archive).unwrap_or_else(|| panic!("{} should parse", e.archive));
    assert_eq!(n.kind, e.kind, "{}", e.archive);
    assert_eq!(n.vmid.get(), 16110);
    assert_eq!(n.format, e.format, "{}", e.archive);
    assert_eq!(n.compression, e.compression, "{}", e.archive);
    assert_eq!(n.archive_name(), e.file);
    assert_eq!(n.to_string(), e.file);
    let base = e.file.split_once('.').unwrap().0;
    assert_eq!(n.base(), base);
    assert_eq!(n.log_name(), format!("{base}.log"));
    assert_eq!(n.notes_name(), format!("{}.notes", e.file));
    assert_eq!(n.protected_name(), format!("{}.protected", e.file));
    assert_eq!(
        n.time.to_epoch(&TimeZone::UTC).unwrap(),
        e.ctime_utc,
        "{}",
        e.archive
    );
    assert_eq!(BackupName::parse(&n.archive_name()), Some(n));
}

#[test]
fn pve_archive_info_valid_cases() {
    use ArchiveCompression::*;
    use ArchiveFormat::*;
    use GuestKind::*;
    let fixed = [
        Expect {
            archive: "backup/vzdump-lxc-16110-3070_01_01-00_00_00.tgz",
            file: "vzdump-lxc-16110-3070_01_01-00_00_00.tgz",
            kind: Lxc,
            format: Tgz,
            compression: Some(Gzip),
            ctime_utc: 60 * 60 * 24 * (365 * 1100 + 267),
        },
        Expect {
            archive: "backup/vzdump-lxc-16110-1970_01_01-02_00_30.tgz",
            file: "vzdump-lxc-16110-1970_01_01-02_00_30.tgz",
            kind: Lxc,
            format: Tgz,
            compression: Some(Gzip),
            ctime_utc: 60 * 60 * 2 + 30,
        },
        Expect {
            archive: "backup/vzdump-lxc-16110-2020_03_30-21_39_30.tgz",
            file: "vzdump-lxc-16110-2020_03_30-21_39_30.tgz",
            kind: Lxc,
            format: Tgz,
            compression: Some(Gzip),
            ctime_utc: 1_585_604_370,
        },
        Expect {
            archive: "backup/vzdump-openvz-16110-2020_03_30-21_39_30.tgz",
            file: "vzdump-openvz-16110-2020_03_30-21_39_30.tgz",
            kind: Openvz,
            format: Tgz,
            compression: Some(Gzip),
            ctime_utc: 1_585_604_370,
        },
        Expect {
            archive: "/here/be/Back-ups/vzdump-qemu-16110-2020_03_30-21_39_30.tgz",
            file: "vzdump-qemu-16110-2020_03_30-21_39_30.tgz",
            kind: Qemu,
            format: Tgz,
            compression: Some(Gzip),
            ctime_utc: 1_585_604_370,
        },
    ];
    for e in &fixed {
        check(e);
    }

    // PVE's generated cases: every kind with its format and every compression suffix.
    let mut n = 0;
    for (kind, word, format, fmt) in [
        (Lxc, "lxc", Tar, "tar"),
        (Openvz, "openvz", Tar, "tar"),
        (Qemu, "qemu", Vma, "vma"),
    ] {
        for (c, ext) in [(Bzip2, "bz2"), (Gzip, "gz"), (Lzo, "lzo"), (Zstd, "zst")] {
            let file = format!("vzdump-{word}-16110-2020_03_30-21_12_40.{fmt}.{ext}");
            let archive = format!("backup/{file}");
            check(&Expect {
                archive: Box::leak(archive.into_boxed_str()),
                file: Box::leak(file.into_boxed_str()),
                kind,
                format,
                compression: Some(c),
                ctime_utc: 1_585_602_760,
            });
            n += 1;
        }
    }
    assert_eq!(n, 12);
}

#[test]
fn pve_archive_info_failing_cases() {
    // PVE: "couldn't determine archive info".
    let mut bad = Vec::new();
    for (virt, suffixes) in [
        ("openvz", &["zip", "tgz.lzo", "zip.gz", ""][..]),
        ("lxc", &["zip", "tgz.lzo", "zip.gz", ""]),
        ("qemu", &["vma.xz", "vms.gz", "vmx.zst", ""]),
        ("none", &["tar.gz"]),
    ] {
        for s in suffixes {
            bad.push(format!(
                "backup/vzdump-{virt}-16110-2020_03_30-21_12_40.{s}"
            ));
        }
    }
    // PVE accepts this one as an archive with is_std_name = 0; it has no backup time, so it
    // is not a standard name and not a BackupName.
    bad.push("backup/vzdump-qemu-16110-whatever-the-name_is_here.tgz".into());
    for b in &bad {
        assert_eq!(BackupName::parse(b), None, "{b}");
    }
}

#[test]
fn more_invalid_names() {
    for b in [
        // VMID out of PVE's range or with a leading zero.
        "vzdump-qemu-99-2020_03_30-21_12_40.vma",
        "vzdump-qemu-0100-2020_03_30-21_12_40.vma",
        "vzdump-qemu-1000000000-2020_03_30-21_12_40.vma",
        // Not a real date or time.
        "vzdump-qemu-100-2021_02_29-21_12_40.vma",
        "vzdump-qemu-100-2020_13_30-21_12_40.vma",
        "vzdump-qemu-100-2020_03_32-21_12_40.vma",
        "vzdump-qemu-100-2020_03_30-24_00_00.vma",
        "vzdump-qemu-100-2020_03_30-21_60_00.vma",
        "vzdump-qemu-100-2020_03_30-21_12_60.vma",
        // Wrong digit counts or separators.
        "vzdump-qemu-100-20_03_30-21_12_40.vma",
        "vzdump-qemu-100-2020-03-30-21_12_40.vma",
        "vzdump-qemu-100-2020_03_30_21_12_40.vma",
        // Wrong case, prefixes and suffixes.
        "vzdump-QEMU-100-2020_03_30-21_12_40.vma",
        "Vzdump-qemu-100-2020_03_30-21_12_40.vma",
        "xvzdump-qemu-100-2020_03_30-21_12_40.vma",
        "vzdump-qemu-100-2020_03_30-21_12_40.VMA",
        "vzdump-qemu-100-2020_03_30-21_12_40.vma.zst.1",
        "vzdump-qemu-100-2020_03_30-21_12_40.vma.",
        "vzdump-qemu-100-2020_03_30-21_12_40.vma.zstd",
        "vzdump-qemu-100-2020_03_30-21_12_40.vma.gz.gz",
        "vzdump-qemu-100-2020_03_30-21_12_40..vma",
        "vzdump-qemu-100-2020_03_30-21_12_40",
        "vzdump-qemu-100-2020_03_30-21_12_40.tgz.gz",
        "vzdump-qemu-100-2020_03_30-21_12_40.vma.zst ",
        "",
        "/",
        "backup/",
    ] {
        assert_eq!(BackupName::parse(b), None, "{b:?}");
    }
}

#[test]
fn in_progress_and_companion_files_are_not_archives() {
    let t = BackupTime::new(2026, 11, 1, 2, 0, 3).unwrap();
    let vmid = VmId::new(100).unwrap();
    for c in [
        Compression::None,
        Compression::Zstd,
        Compression::Gzip,
        Compression::Lzo,
    ] {
        let n = BackupName::new(GuestKind::Qemu, vmid, t, c);
        assert_eq!(BackupName::parse(&n.archive_name()), Some(n));
        for other in [
            n.temp_archive_name(),
            n.temp_dir_name(),
            n.log_name(),
            n.notes_name(),
            n.protected_name(),
        ] {
            assert_eq!(BackupName::parse(&other), None, "{other}");
        }
    }
    // vzdump's own examples: the last extension is replaced by .dat.
    let n = BackupName::new(GuestKind::Qemu, vmid, t, Compression::Zstd);
    assert_eq!(
        n.archive_name(),
        "vzdump-qemu-100-2026_11_01-02_00_03.vma.zst"
    );
    assert_eq!(
        n.temp_archive_name(),
        "vzdump-qemu-100-2026_11_01-02_00_03.vma.dat"
    );
    assert_eq!(n.temp_dir_name(), "vzdump-qemu-100-2026_11_01-02_00_03.tmp");
    let n = BackupName::new(GuestKind::Qemu, vmid, t, Compression::None);
    assert_eq!(n.archive_name(), "vzdump-qemu-100-2026_11_01-02_00_03.vma");
    assert_eq!(
        n.temp_archive_name(),
        "vzdump-qemu-100-2026_11_01-02_00_03.dat"
    );
    let n = BackupName::new(GuestKind::Lxc, vmid, t, Compression::Lzo);
    assert_eq!(
        n.archive_name(),
        "vzdump-lxc-100-2026_11_01-02_00_03.tar.lzo"
    );
    assert_eq!(n.log_name(), "vzdump-lxc-100-2026_11_01-02_00_03.log");
}

#[test]
fn readable_compression_by_name() {
    let p = |s: &str| BackupName::parse(s).unwrap().readable_compression();
    assert_eq!(
        p("vzdump-qemu-100-2026_11_01-02_00_03.vma"),
        Some(Compression::None)
    );
    assert_eq!(
        p("vzdump-qemu-100-2026_11_01-02_00_03.vma.zst"),
        Some(Compression::Zstd)
    );
    assert_eq!(
        p("vzdump-qemu-100-2026_11_01-02_00_03.vma.gz"),
        Some(Compression::Gzip)
    );
    assert_eq!(
        p("vzdump-qemu-100-2026_11_01-02_00_03.vma.lzo"),
        Some(Compression::Lzo)
    );
    assert_eq!(p("vzdump-qemu-100-2026_11_01-02_00_03.vma.bz2"), None);
}

#[test]
fn names_sort_by_time_through_backup_time() {
    let mut names: Vec<BackupName> = [
        "vzdump-qemu-100-2026_11_02-02_00_03.vma.zst",
        "vzdump-qemu-100-2025_12_31-23_59_59.vma.zst",
        "vzdump-qemu-100-2026_11_01-02_00_03.vma.zst",
    ]
    .iter()
    .map(|s| BackupName::parse(s).unwrap())
    .collect();
    names.sort_by_key(|n| n.time);
    let got: Vec<String> = names.iter().map(|n| n.time.snapshot_name()).collect();
    assert_eq!(
        got,
        [
            "2025_12_31-23_59_59",
            "2026_11_01-02_00_03",
            "2026_11_02-02_00_03"
        ]
    );
}

#[test]
fn local_time_follows_tz() {
    // Build the name vzdump would write for an instant in two zones, and back.
    let epoch = 1_785_549_603; // 2026-08-01 02:00:03 UTC
    for (tz, want) in [
        ("UTC", "2026_08_01-02_00_03"),
        ("Europe/Vienna", "2026_08_01-04_00_03"),
        ("America/New_York", "2026_07_31-22_00_03"),
    ] {
        let tz = TimeZone::get(tz).unwrap();
        let t = BackupTime::from_epoch(epoch, &tz).unwrap();
        assert_eq!(t.snapshot_name(), want);
        assert_eq!(t.to_epoch(&tz).unwrap(), epoch);
    }
}
