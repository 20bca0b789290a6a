//! `delete_input` never deletes what `vzsnap restore` wrote back into the dump directory.
//!
//! The dangerous case, end to end with the real binary: plain `.vma` backups are ingested
//! with `delete_input = true` (their inputs vanish), then restored into the dump directory —
//! same name, same size and same VMA uuid as the original, exactly what PVE will restore from
//! — and ingested again: the restored archives and their `.log`/`.notes` stay byte for byte,
//! and the run says why. As a control, in the same run an original archive whose snapshot
//! exists (a crash came between snapshot and delete) is still deleted.

use std::path::{Path, PathBuf};

use ingest::synth::{Day, SeriesSpec, write_backup};
use store::layout::meta_keys;
use store::{SnapshotName, VolumeName};
use vma::compress::Compression;
use vma::vzdump::{BackupName, GuestKind, VmId};

use crate::support::{Backend, Setup, days, json, run_ok, vzsnap};

const VMID: u32 = 100;
const SEED: u64 = 23;

fn name(d: &Day) -> BackupName {
    BackupName::new(
        GuestKind::Qemu,
        VmId::new(VMID).unwrap(),
        d.time,
        d.compression,
    )
}

/// Every file of the dump directory with its bytes.
fn dump_files(dump: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dump)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn restored_dump_files_stay(b: &Backend) {
    let s = Setup::new(&b.spec(), "delete_input = true");
    // Three plain `.vma` days, none protected (a protected input is never deleted anyway).
    let mut series = days(SeriesSpec::new(VMID, SEED, 2 << 20), 3);
    for d in &mut series {
        d.compression = Compression::None;
        d.protected = false;
    }
    for d in &series[..2] {
        write_backup(&s.dump, VMID, SEED, d, false).unwrap();
    }
    let sizes: Vec<u64> = series[..2]
        .iter()
        .map(|d| {
            std::fs::metadata(s.dump.join(name(d).archive_name()))
                .unwrap()
                .len()
        })
        .collect();
    run_ok(&mut s.ingest(&["-q"]));
    assert_eq!(dump_files(&s.dump), vec![], "inputs deleted after ingest");

    // Restore both into the dump directory (the default target), as the original names.
    let mut restored: Vec<PathBuf> = Vec::new();
    for (d, size) in series[..2].iter().zip(&sizes) {
        let mut c = vzsnap();
        c.arg("--config")
            .arg(&s.config)
            .args(["restore", "100", &d.time.snapshot_name()]);
        let archive = s.dump.join(name(d).archive_name());
        if d.number == 1 {
            c.arg("--json");
            let out = json(&run_ok(&mut c));
            assert_eq!(PathBuf::from(out["archive"].as_str().unwrap()), archive);
        } else {
            // Without --json: the one-line summary (what, where, sizes, time, throughput).
            let out = run_ok(&mut c);
            let line = String::from_utf8_lossy(&out.stdout);
            let want = format!(
                "restored VM 100 backup {} to {} (",
                d.time.snapshot_name(),
                archive.display()
            );
            assert!(line.starts_with(&want), "{line}");
            assert!(
                line.contains(" MiB of disks, ") && line.trim_end().ends_with(" MiB/s)"),
                "{line}"
            );
        }
        // What makes it dangerous: name, size and uuid all equal the snapshot's metadata.
        let st = b.store();
        let vol = VolumeName::new(VMID.to_string()).unwrap();
        let snap = st
            .list_snapshots(&vol)
            .unwrap()
            .into_iter()
            .find(|x| x.name == SnapshotName::new(d.time.snapshot_name()).unwrap())
            .unwrap();
        assert_eq!(std::fs::metadata(&archive).unwrap().len(), *size);
        assert_eq!(
            snap.meta[meta_keys::ARCHIVE_SIZE],
            size.to_string(),
            "same size as the ingested original"
        );
        let (_, r) =
            vma::compress::open_decompressed(std::fs::File::open(&archive).unwrap()).unwrap();
        let h = vma::VmaReader::new(r).unwrap().header().clone();
        assert_eq!(
            store::layout::format_uuid(&h.uuid),
            snap.meta[meta_keys::UUID]
        );
        restored.push(archive);
    }
    let restored_files = dump_files(&s.dump);
    assert!(restored_files.len() >= 4, "{restored_files:?}");

    // Control: day 3's original, ingested by a run that crashed after the snapshot, i.e.
    // before it could delete the input. The next run must still delete that one.
    write_backup(&s.dump, VMID, SEED, &series[2], false).unwrap();
    let crashed = s
        .ingest(&["-q"])
        .env("VZSNAP_TEST_CRASH_AT", "after-snapshot")
        .output()
        .unwrap();
    assert!(!crashed.status.success());
    assert!(s.dump.join(name(&series[2]).archive_name()).exists());

    let out = run_ok(&mut s.ingest(&["--json"]));
    let j = json(&out);
    assert_eq!(
        dump_files(&s.dump),
        restored_files,
        "the restored archives and companions stay, byte for byte; the original went"
    );
    let backups = j["backups"].as_array().unwrap();
    assert_eq!(backups.len(), 3, "{j}");
    for (r, d) in backups.iter().zip(&series) {
        assert_eq!(r["archive"], name(d).archive_name());
        assert_eq!(r["reason"], "already-ingested", "{r}");
        if d.number == 3 {
            assert_eq!(r["input-deleted"], true, "{r}");
            assert!(r["input-kept"].is_null(), "{r}");
        } else {
            assert_eq!(r["input-deleted"], false, "{r}");
            let why = r["input-kept"].as_str().unwrap();
            assert!(why.contains("modified after the snapshot"), "{why}");
        }
    }
    // The table says so too.
    let table = run_ok(&mut s.ingest(&[]));
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("input kept: modified after"), "{table}");
    assert_eq!(dump_files(&s.dump), restored_files);
}

backend_tests!(restored_dump_files_stay);
