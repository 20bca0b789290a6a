//! Pure planning: which of a VM's archives to ingest, given the snapshots its volume has.
//!
//! Rules (docs/ingest.md, "What gets ingested"):
//! - oldest backup first, so every snapshot is taken on top of the one before it;
//! - a backup whose snapshot already exists is done (re-running is idempotent); its input
//!   may be deleted if configured and the snapshot records this very archive as its source;
//! - a backup older than the newest backup already in the volume is skipped with a warning
//!   unless forced: ingesting it would make the live volume go back in time, and the
//!   snapshot order would no longer be the backup order.

use serde::Serialize;
use vma::vzdump::BackupTime;

use crate::scan::Archive;

/// What to do with one archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Sync it into the volume and snapshot it.
    Ingest,
    /// Its snapshot exists. `same_source` is true when the snapshot's metadata names this
    /// archive (file name and size), i.e. the input may be deleted.
    AlreadyIngested { same_source: bool },
    /// Older than the newest backup in the volume (its snapshot name is given).
    OlderThanNewest { newest: String },
}

impl Action {
    /// Stable kebab-case code for the JSON output.
    pub fn code(&self) -> &'static str {
        match self {
            Action::Ingest => "ingest",
            Action::AlreadyIngested { .. } => "already-ingested",
            Action::OlderThanNewest { .. } => "older-than-newest",
        }
    }
}

/// A snapshot of the volume as planning sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingSnapshot {
    pub name: String,
    /// `source` metadata (archive file name), if ours.
    pub source: Option<String>,
    /// `archive-size` metadata, if ours.
    pub archive_size: Option<u64>,
}

/// Pure: the action for each archive (given oldest first), in the same order.
pub fn plan_vm(archives: &[Archive], existing: &[ExistingSnapshot], force: bool) -> Vec<Action> {
    // Only snapshots named like ours take part in the order check; an admin's manual
    // snapshot with another name is ignored.
    let mut newest: Option<BackupTime> = existing
        .iter()
        .filter_map(|s| BackupTime::parse_snapshot_name(&s.name))
        .max();
    archives
        .iter()
        .map(|a| {
            let snap = a.name.time.snapshot_name();
            if let Some(s) = existing.iter().find(|s| s.name == snap) {
                let same_source = s.source.as_deref() == Some(a.file_name.as_str())
                    && s.archive_size == Some(a.size);
                return Action::AlreadyIngested { same_source };
            }
            if let Some(n) = newest
                && a.name.time < n
                && !force
            {
                return Action::OlderThanNewest {
                    newest: n.snapshot_name(),
                };
            }
            newest = Some(newest.map_or(a.name.time, |n| n.max(a.name.time)));
            Action::Ingest
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;
    use vma::vzdump::BackupName;

    fn archive(time: &str) -> Archive {
        let file_name = format!("vzdump-qemu-100-{time}.vma.zst");
        Archive {
            path: file_name.clone().into(),
            name: BackupName::parse(&file_name).unwrap(),
            file_name,
            size: 10,
            modified: SystemTime::UNIX_EPOCH,
            log: None,
            notes: None,
            protected: false,
        }
    }

    fn snap(name: &str, source: Option<&str>) -> ExistingSnapshot {
        ExistingSnapshot {
            name: name.into(),
            source: source.map(Into::into),
            archive_size: source.map(|_| 10),
        }
    }

    #[test]
    fn fresh_volume_ingests_everything_in_order() {
        let a = [
            archive("2026_11_01-02_00_00"),
            archive("2026_11_02-02_00_00"),
        ];
        assert_eq!(plan_vm(&a, &[], false), [Action::Ingest, Action::Ingest]);
    }

    #[test]
    fn existing_snapshots_make_it_idempotent_and_guard_the_order() {
        let a = [
            archive("2026_10_30-02_00_00"),
            archive("2026_11_01-02_00_00"),
            archive("2026_11_02-02_00_00"),
            archive("2026_11_03-02_00_00"),
        ];
        let existing = [
            snap("manual-before-upgrade", None),
            snap(
                "2026_11_01-02_00_00",
                Some("vzdump-qemu-100-2026_11_01-02_00_00.vma.zst"),
            ),
            snap(
                "2026_11_02-02_00_00",
                Some("vzdump-qemu-100-2026_11_02-02_00_00.vma.gz"),
            ),
        ];
        let p = plan_vm(&a, &existing, false);
        assert_eq!(
            p,
            [
                Action::OlderThanNewest {
                    newest: "2026_11_02-02_00_00".into()
                },
                Action::AlreadyIngested { same_source: true },
                Action::AlreadyIngested { same_source: false },
                Action::Ingest,
            ]
        );
        let forced = plan_vm(&a, &existing, true);
        assert_eq!(forced[0], Action::Ingest);
        assert_eq!(forced[3], Action::Ingest);
    }
}
