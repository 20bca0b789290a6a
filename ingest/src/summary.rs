//! The result of an ingest run: what happened to each backup, as JSON (`--json`; field names
//! documented in docs/ingest.md and kept stable) and as a human table.

use serde::Serialize;

use crate::backup::{Ingested, human_bytes};
use crate::prune::PruneReport;

/// Version of the JSON document; bumped only for incompatible changes.
pub const SUMMARY_FORMAT: u32 = 1;

/// What happened to one backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Synced and snapshotted.
    Ingested,
    /// Would be ingested (`--dry-run`).
    Planned,
    /// Left alone on purpose (see `reason`).
    Skipped,
    /// Tried and failed; the volume is back at its previous snapshot.
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ingested => "ingested",
            Status::Planned => "planned",
            Status::Skipped => "skipped",
            Status::Failed => "failed",
        }
    }
}

/// Where and why a backup failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ErrorInfo {
    pub message: String,
    /// The file the error is about (archive or image) and the byte offset in it, if known.
    pub file: Option<String>,
    pub offset: Option<u64>,
    /// The store or an image ran out of space.
    pub no_space: bool,
    /// Undoing the partial ingest failed too (the next run repairs the volume first).
    pub undo_error: Option<String>,
}

/// One line of the result.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct BackupResult {
    pub vmid: u32,
    /// Archive file name.
    pub archive: String,
    /// Full path of the archive.
    pub path: String,
    /// The backup's time as in its name (`YYYY_MM_DD-HH_MM_SS`), also the snapshot name.
    pub backup_time: String,
    pub status: Status,
    /// Machine-readable reason for `skipped` (`already-ingested`, `older-than-newest`,
    /// `unsupported`, `unreadable-compression`, `settling`, `duplicate`, `earlier-failure`).
    pub reason: Option<String>,
    /// One human sentence for skipped, planned and failed backups.
    pub message: Option<String>,
    /// Details of an ingested backup.
    pub ingested: Option<Ingested>,
    /// The store's own account of the new snapshot's size (ZFS `written`; btrfs: exclusive
    /// extent bytes vs the previous snapshot).
    pub snapshot_written: Option<u64>,
    pub error: Option<ErrorInfo>,
    /// The input files were deleted (after the snapshot existed).
    pub input_deleted: bool,
    /// Why the input of an already-ingested backup was kept although `delete_input` is set
    /// (it is not provably the file the snapshot was made from, e.g. a `vzsnap restore`).
    pub input_kept: Option<String>,
    pub seconds: f64,
}

impl BackupResult {
    pub fn new(vmid: u32, archive: &str, path: &str, backup_time: String, status: Status) -> Self {
        BackupResult {
            vmid,
            archive: archive.to_owned(),
            path: path.to_owned(),
            backup_time,
            status,
            reason: None,
            message: None,
            ingested: None,
            snapshot_written: None,
            error: None,
            input_deleted: false,
            input_kept: None,
            seconds: 0.0,
        }
    }
}

/// Sums over all backups of the run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Totals {
    pub ingested: u64,
    pub planned: u64,
    pub skipped: u64,
    pub failed: u64,
    /// Compressed archive bytes read.
    pub read: u64,
    pub compared: u64,
    pub written: u64,
    pub zeroed: u64,
    pub unchanged: u64,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct RunSummary {
    /// [`SUMMARY_FORMAT`].
    pub format: u32,
    pub dry_run: bool,
    /// Start, epoch seconds.
    pub started: i64,
    pub duration_seconds: f64,
    /// Oldest first per VM, VMs ascending.
    pub backups: Vec<BackupResult>,
    /// Prunes run after ingesting (one per volume that got a new snapshot).
    pub prune: Vec<PruneReport>,
    /// Problems that are not about one backup (a volume that could not be listed or
    /// pruned…).
    pub errors: Vec<String>,
    pub totals: Totals,
}

impl RunSummary {
    /// Recomputes [`RunSummary::totals`] from the backups.
    pub fn compute_totals(&mut self) {
        let mut t = Totals::default();
        for b in &self.backups {
            match b.status {
                Status::Ingested => t.ingested += 1,
                Status::Planned => t.planned += 1,
                Status::Skipped => t.skipped += 1,
                Status::Failed => t.failed += 1,
            }
            if let Some(i) = &b.ingested {
                t.read += i.stats.read;
                t.compared += i.stats.compared;
                t.written += i.stats.written;
                t.zeroed += i.stats.zeroed;
                t.unchanged += i.stats.unchanged;
            }
        }
        self.totals = t;
    }

    /// True if anything failed (exit code 1).
    pub fn has_failures(&self) -> bool {
        self.backups.iter().any(|b| b.status == Status::Failed)
            || !self.errors.is_empty()
            || self.prune.iter().any(|p| p.failed())
    }

    /// The human table printed at the end of a run.
    pub fn render_table(&self) -> String {
        let mut rows: Vec<[String; 8]> = vec![[
            "VMID".into(),
            "BACKUP".into(),
            "STATUS".into(),
            "READ".into(),
            "WRITTEN".into(),
            "ZEROED".into(),
            "UNCHANGED".into(),
            "NOTE".into(),
        ]];
        for b in &self.backups {
            let (read, written, zeroed, unchanged) = match &b.ingested {
                Some(i) => (
                    human_bytes(i.stats.read),
                    human_bytes(i.stats.written),
                    human_bytes(i.stats.zeroed),
                    human_bytes(i.stats.unchanged),
                ),
                None => Default::default(),
            };
            let note = match (&b.error, &b.message) {
                (Some(e), _) => e.message.clone(),
                (None, Some(m)) => m.clone(),
                (None, None) => {
                    let mut n = Vec::new();
                    if let Some(i) = &b.ingested {
                        n.push(format!("@{}", i.snapshot));
                        if i.protected {
                            n.push("held (protected)".into());
                        }
                        if let Some(r) = &i.recovery {
                            n.push(format!("repaired first: {r:?}"));
                        }
                    }
                    if b.input_deleted {
                        n.push("input deleted".into());
                    }
                    if let Some(k) = &b.input_kept {
                        n.push(format!("input kept: {k}"));
                    }
                    n.join(", ")
                }
            };
            rows.push([
                b.vmid.to_string(),
                b.backup_time.clone(),
                b.status.as_str().into(),
                read,
                written,
                zeroed,
                unchanged,
                note,
            ]);
        }
        let mut widths = [0usize; 8];
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        for r in &rows {
            let mut line = String::new();
            for (i, (c, w)) in r.iter().zip(widths).enumerate() {
                if i == 7 {
                    line.push_str(c);
                } else if (3..7).contains(&i) {
                    line.push_str(&format!("{c:>w$}  "));
                } else {
                    line.push_str(&format!("{c:<w$}  "));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        let t = &self.totals;
        out.push_str(&format!(
            "{} ingested, {} skipped, {} failed{}; read {}, wrote {}, zeroed {} in {:.1} s\n",
            t.ingested,
            t.skipped,
            t.failed,
            if self.dry_run {
                format!(", {} planned (dry run)", t.planned)
            } else {
                String::new()
            },
            human_bytes(t.read),
            human_bytes(t.written),
            human_bytes(t.zeroed),
            self.duration_seconds
        ));
        for p in &self.prune {
            out.push_str(&format!("prune {}: {}\n", p.volume, p.summary()));
        }
        for e in &self.errors {
            out.push_str(&format!("error: {e}\n"));
        }
        out
    }
}
