//! The space report (`vzsnap report`): what each backup cost on disk compared with the
//! vzdump archive it came from — the table from the talk this project started with
//! (date, virtual disk size, VMA size, ZFS delta, savings %).
//!
//! Definitions (also in `vzsnap report --help` and the README):
//!
//! - **virtual size**: the sum of the snapshot's disk sizes from its manifest `vzsnap.json`
//!   (what a full restore writes; a `vmstate` RAM device is not a disk and is left out);
//! - **archive size**: the source archive's size as found in the dump directory (snapshot
//!   metadata `archive-size`, compressed as vzdump wrote it);
//! - **written**: the store's own figure for the snapshot — bytes it references that the
//!   previous snapshot did not (ZFS `written`; btrfs: extent bytes not shared with the
//!   previous snapshot). Every block is counted in the first snapshot that has it, so the
//!   sum over a volume's snapshots is the space all of them use together;
//! - **savings** (per snapshot and in total) = 1 − written / archive size, in percent: how
//!   much less space the snapshot takes than keeping the archive would. It is negative when
//!   the snapshot costs more than the (compressed) archive, typically the first one;
//! - **ratios**: Σ archive sizes / Σ written ("archive ratio": how many times more space the
//!   same backups would need as vzdump files) and Σ virtual sizes / Σ written ("virtual
//!   ratio": logical disk data kept per byte used). A total or ratio whose inputs are not all
//!   known is `null`, never a guess.

use serde::Serialize;
use store::layout::{Manifest, meta_keys};
use store::{SnapshotInfo, SnapshotName, Store, StoreError, VolumeName};

/// The report for one volume could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("volume {volume}: listing snapshots: {source}")]
    List {
        volume: VolumeName,
        #[source]
        source: StoreError,
    },
}

/// One snapshot's row (JSON field names are kebab-case and stable).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct SnapshotRow {
    pub snapshot: SnapshotName,
    /// Backup time (epoch seconds) from the snapshot's metadata, if present.
    pub backup_time: Option<i64>,
    /// Sum of disk sizes from the snapshot's manifest; `null` if it could not be read.
    pub virtual_size: Option<u64>,
    /// Source archive size (metadata `archive-size`); `null` if absent.
    pub archive_size: Option<u64>,
    /// Space written by this snapshot (the store's `written`).
    pub written: u64,
    /// Space referenced by this snapshot (the store's `referenced`).
    pub referenced: u64,
    /// 1 − written / archive size, in percent; `null` without an archive size.
    pub savings_percent: Option<f64>,
    /// Why `virtual-size` is unknown (the manifest could not be read), if it is.
    pub manifest_error: Option<String>,
}

/// Totals over a set of snapshots.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Totals {
    pub snapshots: usize,
    /// Σ virtual sizes; `null` unless every snapshot's is known.
    pub virtual_size: Option<u64>,
    /// Σ archive sizes; `null` unless every snapshot's is known.
    pub archive_size: Option<u64>,
    /// Σ written = the space the snapshots use together.
    pub written: u64,
    /// archive-size / written.
    pub archive_ratio: Option<f64>,
    /// virtual-size / written.
    pub virtual_ratio: Option<f64>,
    /// 1 − written / archive-size, in percent.
    pub savings_percent: Option<f64>,
}

/// One volume's report.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct VolumeReport {
    pub volume: VolumeName,
    /// Oldest first.
    pub snapshots: Vec<SnapshotRow>,
    pub totals: Totals,
}

/// 1 − part / whole, in percent (`None` for a zero or unknown whole).
pub fn savings_percent(written: u64, archive_size: Option<u64>) -> Option<f64> {
    let whole = archive_size.filter(|&a| a > 0)?;
    Some((1.0 - written as f64 / whole as f64) * 100.0)
}

fn ratio(logical: Option<u64>, used: u64) -> Option<f64> {
    (used > 0).then_some(logical? as f64 / used as f64)
}

fn sum_all(mut values: impl Iterator<Item = Option<u64>>) -> Option<u64> {
    values.try_fold(0u64, |acc, v| Some(acc.saturating_add(v?)))
}

/// Totals over `rows` (any set: one volume, or every volume's rows together).
pub fn totals<'a>(rows: impl IntoIterator<Item = &'a SnapshotRow> + Clone) -> Totals {
    let count = rows.clone().into_iter().count();
    let virtual_size = sum_all(rows.clone().into_iter().map(|r| r.virtual_size));
    let archive_size = sum_all(rows.clone().into_iter().map(|r| r.archive_size));
    let written = rows
        .into_iter()
        .fold(0u64, |acc, r| acc.saturating_add(r.written));
    Totals {
        snapshots: count,
        virtual_size,
        archive_size,
        written,
        archive_ratio: ratio(archive_size, written),
        virtual_ratio: ratio(virtual_size, written),
        savings_percent: savings_percent(written, archive_size),
    }
}

/// Disk bytes described by a manifest (every device except a `vmstate` RAM stream).
pub fn virtual_size(manifest: &Manifest) -> u64 {
    manifest
        .devices
        .iter()
        .map(|d| vma::Device {
            id: d.dev_id,
            name: d.name.clone(),
            size: d.size,
        })
        .filter(|d| !d.is_vmstate())
        .fold(0u64, |acc, d| acc.saturating_add(d.size))
}

/// Pure: one volume's report from its snapshot list and, per snapshot, the manifest (or why
/// it could not be read).
pub fn build_volume_report(
    volume: &VolumeName,
    snapshots: &[SnapshotInfo],
    manifests: &[Result<Manifest, String>],
) -> VolumeReport {
    let rows: Vec<SnapshotRow> = snapshots
        .iter()
        .zip(manifests)
        .map(|(s, m)| {
            let archive_size = s
                .meta
                .get(meta_keys::ARCHIVE_SIZE)
                .and_then(|v| v.trim().parse().ok());
            SnapshotRow {
                snapshot: s.name.clone(),
                backup_time: s
                    .meta
                    .get(meta_keys::BACKUP_TIME)
                    .and_then(|v| v.trim().parse().ok()),
                virtual_size: m.as_ref().ok().map(virtual_size),
                archive_size,
                written: s.written,
                referenced: s.referenced,
                savings_percent: savings_percent(s.written, archive_size),
                manifest_error: m.as_ref().err().cloned(),
            }
        })
        .collect();
    let totals = totals(&rows);
    VolumeReport {
        volume: volume.clone(),
        snapshots: rows,
        totals,
    }
}

/// Lists a volume's snapshots and reads each one's manifest from its read-only path.
pub fn report_volume(store: &dyn Store, volume: &VolumeName) -> Result<VolumeReport, ReportError> {
    let snapshots = store
        .list_snapshots(volume)
        .map_err(|source| ReportError::List {
            volume: volume.clone(),
            source,
        })?;
    let manifests: Vec<Result<Manifest, String>> = snapshots
        .iter()
        .map(|s| {
            let dir = store
                .snapshot_path(volume, &s.name)
                .map_err(|e| e.to_string())?;
            Manifest::read_from(&dir).map_err(|e| e.to_string())
        })
        .collect();
    for (s, m) in snapshots.iter().zip(&manifests) {
        if let Err(e) = m {
            tracing::warn!(volume = %volume, snapshot = %s.name, error = %e, "no manifest: virtual size unknown");
        }
    }
    Ok(build_volume_report(volume, &snapshots, &manifests))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use store::layout::{MANIFEST_FORMAT, ManifestDevice, SourceFile, VmaIdentity, format_uuid};
    use store::testutil::FakeStore;

    use super::*;

    fn manifest(sizes: &[(&str, u64)]) -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT,
            vmid: 100,
            backup_time: 1_759_276_800,
            source: SourceFile {
                name: "vzdump-qemu-100-2025_10_01-00_00_00.vma.zst".into(),
                size: 1,
                compression: "zstd".into(),
            },
            vma: VmaIdentity {
                uuid: format_uuid(&[7; 16]),
                ctime: 1_759_276_800,
            },
            devices: sizes
                .iter()
                .enumerate()
                .map(|(i, (n, s))| ManifestDevice {
                    dev_id: i as u8 + 1,
                    name: n.to_string(),
                    size: *s,
                    file: store::layout::disk_file_name(n).unwrap(),
                })
                .collect(),
            configs: vec![],
        }
    }

    fn info(name: &str, written: u64, archive: Option<u64>) -> SnapshotInfo {
        let mut meta = BTreeMap::new();
        if let Some(a) = archive {
            meta.insert(meta_keys::ARCHIVE_SIZE.to_string(), a.to_string());
        }
        meta.insert(meta_keys::BACKUP_TIME.to_string(), "1759276800".to_string());
        SnapshotInfo {
            name: SnapshotName::new(name).unwrap(),
            created: 0,
            meta,
            referenced: written * 2,
            written,
            held: false,
        }
    }

    /// The first three rows of the talk's daily table (MB): the first backup costs more than
    /// its lzop archive, the next ones save about 91 % and 93 % (the slide rounds these
    /// to −60 %, 91 % and 94 %; the formula gives −61.3 %, 90.9 % and 93.3 %).
    #[test]
    fn the_talks_table() {
        let mb = 1_000_000u64;
        let snaps = [
            info("2017_09_28-00_00_00", 2_411 * mb, Some(1_495 * mb)),
            info("2017_10_02-00_00_00", 1_487 * mb, Some(16_261 * mb)),
            info("2017_10_03-00_00_00", 1_362 * mb, Some(20_418 * mb)),
        ];
        let m = [
            Ok(manifest(&[("drive-scsi0", 34_359 * mb)])),
            Ok(manifest(&[
                ("drive-scsi0", 34_359 * mb),
                ("drive-scsi1", 38_653 * mb),
            ])),
            Ok(manifest(&[
                ("drive-scsi0", 90_191 * mb),
                ("vmstate", 4_000 * mb),
            ])),
        ];
        let r = build_volume_report(&VolumeName::new("100").unwrap(), &snaps, &m);
        let pct: Vec<i64> = r
            .snapshots
            .iter()
            .map(|s| s.savings_percent.unwrap().round() as i64)
            .collect();
        assert_eq!(pct, [-61, 91, 93]);
        let virt: Vec<u64> = r
            .snapshots
            .iter()
            .map(|s| s.virtual_size.unwrap() / mb)
            .collect();
        assert_eq!(virt, [34_359, 73_012, 90_191], "vmstate is not a disk");
        let t = &r.totals;
        assert_eq!(t.snapshots, 3);
        assert_eq!(t.written, (2_411 + 1_487 + 1_362) * mb);
        assert_eq!(t.archive_size, Some((1_495 + 16_261 + 20_418) * mb));
        assert_eq!(t.virtual_size, Some((34_359 + 73_012 + 90_191) * mb));
        let ar = t.archive_ratio.unwrap();
        assert!((ar - 38_174.0 / 5_260.0).abs() < 1e-9, "{ar}");
        assert!((t.savings_percent.unwrap() - (1.0 - 5_260.0 / 38_174.0) * 100.0).abs() < 1e-9);
    }

    #[test]
    fn unknown_inputs_give_null_totals_not_guesses() {
        let snaps = [info("a", 10, Some(100)), info("b", 10, None)];
        let m = [
            Ok(manifest(&[("drive-scsi0", 1000)])),
            Err("no manifest".to_string()),
        ];
        let r = build_volume_report(&VolumeName::new("100").unwrap(), &snaps, &m);
        assert_eq!(r.snapshots[1].savings_percent, None);
        assert_eq!(r.snapshots[1].virtual_size, None);
        assert_eq!(
            r.snapshots[1].manifest_error.as_deref(),
            Some("no manifest")
        );
        assert_eq!(r.totals.archive_size, None);
        assert_eq!(r.totals.virtual_size, None);
        assert_eq!(r.totals.archive_ratio, None);
        assert_eq!(r.totals.written, 20);
        // Nothing written: no ratio (no division by zero).
        let r = build_volume_report(
            &VolumeName::new("100").unwrap(),
            &[info("a", 0, Some(5))],
            &[Ok(manifest(&[]))],
        );
        assert_eq!(r.totals.archive_ratio, None);
        assert_eq!(r.totals.savings_percent, Some(100.0));
        assert_eq!(savings_percent(5, Some(0)), None);
    }

    #[test]
    fn reads_manifests_from_the_snapshots() {
        let store = FakeStore::new().unwrap();
        let vol = VolumeName::new("100").unwrap();
        let path = store.ensure_volume(&vol, &[]).unwrap();
        let mut meta = BTreeMap::new();
        meta.insert(
            store::MetaKey::new(meta_keys::ARCHIVE_SIZE).unwrap(),
            "50000".to_string(),
        );
        for (i, size) in [8192u64, 16384].into_iter().enumerate() {
            manifest(&[("drive-scsi0", size)]).write_to(&path).unwrap();
            std::fs::write(
                path.join("disk-drive-scsi0.raw"),
                vec![i as u8 + 1; size as usize],
            )
            .unwrap();
            store
                .snapshot(
                    &vol,
                    &SnapshotName::new(format!("2025_10_0{}-00_00_00", i + 1)).unwrap(),
                    &meta,
                )
                .unwrap();
        }
        // The live manifest changing later does not change what the snapshots say.
        manifest(&[("drive-scsi0", 1)]).write_to(&path).unwrap();
        let r = report_volume(&store, &vol).unwrap();
        let virt: Vec<Option<u64>> = r.snapshots.iter().map(|s| s.virtual_size).collect();
        assert_eq!(virt, [Some(8192), Some(16384)]);
        let listed = store.list_snapshots(&vol).unwrap();
        let written: Vec<u64> = r.snapshots.iter().map(|s| s.written).collect();
        assert_eq!(
            written,
            listed.iter().map(|s| s.written).collect::<Vec<_>>()
        );
        assert_eq!(r.totals.archive_size, Some(100_000));
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["snapshots"][0]["archive-size"], 50_000);
        assert_eq!(v["snapshots"][0]["virtual-size"], 8192);
        assert!(v["snapshots"][0]["savings-percent"].is_number());
        assert!(v["totals"]["archive-ratio"].is_number());
        assert_eq!(v["totals"]["snapshots"], 2);
    }
}
