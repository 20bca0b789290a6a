//! Prometheus textfile metrics (node-exporter's textfile collector), written atomically
//! (temporary file + rename in the same directory) so the collector never reads half a file.
//!
//! Per-VM values come from the store (the newest snapshot of each volume), not from this
//! run alone, so a VM that had no backup today keeps its last-success time.

use std::fmt::Write as _;
use std::path::Path;

use store::layout::meta_keys;
use store::{Store, StoreError};

use crate::summary::RunSummary;

/// The newest snapshot of one volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeMetrics {
    pub vmid: String,
    pub snapshots: usize,
    /// Creation time of the newest snapshot (the last successful ingest).
    pub last_success: i64,
    /// `bytes-written` of the newest snapshot (changed image bytes).
    pub bytes_written: u64,
    /// The store's `written` of the newest snapshot.
    pub snapshot_written: u64,
}

/// Reads the metrics of every volume that has a snapshot.
pub fn collect(store: &dyn Store) -> Result<Vec<VolumeMetrics>, StoreError> {
    let mut out = Vec::new();
    for vol in store.list_volumes()? {
        let snaps = store.list_snapshots(&vol)?;
        let Some(newest) = snaps.last() else { continue };
        out.push(VolumeMetrics {
            vmid: vol.to_string(),
            snapshots: snaps.len(),
            last_success: newest.created,
            bytes_written: newest
                .meta
                .get(meta_keys::BYTES_WRITTEN)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            snapshot_written: newest.written,
        });
    }
    Ok(out)
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A per-VM metric: name, help text, value.
type PerVm = (&'static str, &'static str, fn(&VolumeMetrics) -> String);

/// Pure: the textfile contents.
pub fn render(vols: &[VolumeMetrics], run: &RunSummary) -> String {
    let mut o = String::new();
    let per_vm: [PerVm; 4] = [
        (
            "vzsnap_ingest_last_success_timestamp_seconds",
            "When the newest snapshot of the VM was taken.",
            |v| v.last_success.to_string(),
        ),
        (
            "vzsnap_ingest_bytes_written",
            "Image bytes the ingest of the newest backup changed.",
            |v| v.bytes_written.to_string(),
        ),
        (
            "vzsnap_snapshot_written_bytes",
            "Bytes the store accounts to the newest snapshot (ZFS written).",
            |v| v.snapshot_written.to_string(),
        ),
        ("vzsnap_snapshots", "Snapshots of the VM.", |v| {
            v.snapshots.to_string()
        }),
    ];
    for (name, help, value) in per_vm {
        family(&mut o, name, "gauge", help);
        for v in vols {
            let _ = writeln!(o, "{name}{{vmid=\"{}\"}} {}", v.vmid, value(v));
        }
    }
    let t = &run.totals;
    let run_metrics: [(&str, &str, String); 5] = [
        (
            "vzsnap_ingest_last_run_timestamp_seconds",
            "Start of the last ingest run.",
            run.started.to_string(),
        ),
        (
            "vzsnap_ingest_last_run_duration_seconds",
            "Duration of the last ingest run.",
            format!("{:.3}", run.duration_seconds),
        ),
        (
            "vzsnap_ingest_last_run_ingested",
            "Backups ingested by the last run.",
            t.ingested.to_string(),
        ),
        (
            "vzsnap_ingest_last_run_failures",
            "Backups (and prunes) that failed in the last run.",
            (t.failed + run.errors.len() as u64).to_string(),
        ),
        (
            "vzsnap_ingest_last_run_written_bytes",
            "Image bytes written by the last run.",
            t.written.to_string(),
        ),
    ];
    for (name, help, value) in run_metrics {
        family(&mut o, name, "gauge", help);
        let _ = writeln!(o, "{name} {value}");
    }
    o
}

/// Writes the textfile atomically.
pub fn write(path: &Path, text: &str) -> std::io::Result<()> {
    store::write_file_atomic(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::{SUMMARY_FORMAT, Totals};

    #[test]
    fn renders_families_and_values() {
        let run = RunSummary {
            format: SUMMARY_FORMAT,
            dry_run: false,
            started: 1_800_000_000,
            duration_seconds: 12.5,
            backups: vec![],
            prune: vec![],
            errors: vec!["x".into()],
            totals: Totals {
                ingested: 2,
                failed: 1,
                written: 4096,
                ..Default::default()
            },
        };
        let v = [VolumeMetrics {
            vmid: "100".into(),
            snapshots: 3,
            last_success: 1_799_999_000,
            bytes_written: 8192,
            snapshot_written: 12288,
        }];
        let t = render(&v, &run);
        assert!(t.contains("# TYPE vzsnap_ingest_last_success_timestamp_seconds gauge\n"));
        assert!(
            t.contains("vzsnap_ingest_last_success_timestamp_seconds{vmid=\"100\"} 1799999000\n")
        );
        assert!(t.contains("vzsnap_snapshot_written_bytes{vmid=\"100\"} 12288\n"));
        assert!(t.contains("vzsnap_ingest_last_run_failures 2\n"));
        assert!(t.contains("vzsnap_ingest_last_run_duration_seconds 12.500\n"));
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("vzsnap.prom");
        write(&p, &t).unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), t);
    }
}
