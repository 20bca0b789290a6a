//! Pure planning: which of a VM's archives to ingest, given the snapshots its volume has.
//!
//! Rules (docs/ingest.md, "What gets ingested"):
//! - oldest backup first, so every snapshot is taken on top of the one before it;
//! - a backup whose snapshot already exists is done (re-running is idempotent); its input
//!   may be deleted if configured and it is provably the file the snapshot was made from
//!   ([`keep_input`]; a file `vzsnap restore` wrote back from the snapshot never is);
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
    /// Its snapshot exists. `keep` is `None` when the archive is, as far as name, size and
    /// modification time tell, the file the snapshot was made from, i.e. its input may be
    /// deleted (after the content check of [`KeepInput::OtherUuid`]); else why it is kept.
    AlreadyIngested { keep: Option<KeepInput> },
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
    /// `uuid` metadata (the VMA uuid of the archive it was made from), if ours.
    pub uuid: Option<String>,
    /// When the store created the snapshot, epoch seconds.
    pub created: i64,
}

/// Why `delete_input` keeps the input of a backup whose snapshot exists.
///
/// `delete_input` must only ever delete the very file a snapshot was made from. A file of the
/// same name can appear later: `vzsnap restore` writes the rebuilt archive into the dump
/// directory under the original backup's name (for a plain `.vma` even with the same size
/// and, always, the same VMA uuid), and the admin restores PVE from it. So identity needs
/// all three of: the snapshot's `source` and `archive-size` metadata name this file, the file
/// was last modified **before** the snapshot was created (the source of a snapshot existed,
/// complete, before it; `vzsnap restore` stamps what it writes with a time after the
/// snapshot's creation), and the VMA uuid in the file equals the snapshot's `uuid`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum KeepInput {
    /// The snapshot's metadata names another file (or another size).
    OtherSource,
    /// Modified at or after the snapshot's creation (epoch seconds): written after the
    /// snapshot, e.g. by `vzsnap restore`, so not the file it was made from.
    WrittenAfterSnapshot { modified: i64, created: i64 },
    /// The archive's VMA uuid is not the snapshot's (`None`: unreadable or not recorded).
    OtherUuid {
        archive: Option<String>,
        snapshot: Option<String>,
    },
}

impl std::fmt::Display for KeepInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeepInput::OtherSource => {
                write!(
                    f,
                    "the snapshot was made from another file (name or size differ)"
                )
            }
            KeepInput::WrittenAfterSnapshot { modified, created } => write!(
                f,
                "modified after the snapshot was created ({modified} >= {created}): \
                 not the file it was made from (restored by vzsnap restore?)"
            ),
            KeepInput::OtherUuid { archive, snapshot } => write!(
                f,
                "its VMA uuid ({}) is not the snapshot's ({})",
                archive.as_deref().unwrap_or("unreadable"),
                snapshot.as_deref().unwrap_or("not recorded")
            ),
        }
    }
}

/// Pure: the name, size and time part of the identity check of [`KeepInput`] (the uuid
/// needs the archive's header: [`KeepInput::OtherUuid`] is decided by the caller).
///
/// The modification time must be strictly before the creation second: an archive modified
/// in the same second as the snapshot could have been written just after it, and keeping a
/// file is the safe mistake. With the default settle time an original archive is always at
/// least `settle_seconds` older than its snapshot.
pub fn keep_input(a: &Archive, s: &ExistingSnapshot) -> Option<KeepInput> {
    if s.source.as_deref() != Some(a.file_name.as_str()) || s.archive_size != Some(a.size) {
        return Some(KeepInput::OtherSource);
    }
    let modified = epoch_seconds(a.modified);
    if modified >= s.created {
        return Some(KeepInput::WrittenAfterSnapshot {
            modified,
            created: s.created,
        });
    }
    None
}

/// Whole seconds since the epoch, rounded down (negative before 1970).
fn epoch_seconds(t: std::time::SystemTime) -> i64 {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => {
            let d = e.duration();
            -i64::try_from(d.as_secs() + u64::from(d.subsec_nanos() > 0)).unwrap_or(i64::MAX)
        }
    }
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
                return Action::AlreadyIngested {
                    keep: keep_input(a, s),
                };
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
    use std::time::{Duration, SystemTime};
    use vma::vzdump::BackupName;

    /// Creation time of the test snapshots.
    const CREATED: i64 = 1_790_000_000;

    fn archive(time: &str) -> Archive {
        let file_name = format!("vzdump-qemu-100-{time}.vma.zst");
        Archive {
            path: file_name.clone().into(),
            name: BackupName::parse(&file_name).unwrap(),
            file_name,
            size: 10,
            modified: SystemTime::UNIX_EPOCH + Duration::from_secs(CREATED as u64 - 600),
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
            uuid: source.map(|_| "04fc12eb-0fed-4b2b-9c8c-2c1f0c1e5a10".into()),
            created: CREATED,
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
                Action::AlreadyIngested { keep: None },
                Action::AlreadyIngested {
                    keep: Some(KeepInput::OtherSource)
                },
                Action::Ingest,
            ]
        );
        let forced = plan_vm(&a, &existing, true);
        assert_eq!(forced[0], Action::Ingest);
        assert_eq!(forced[3], Action::Ingest);
    }

    #[test]
    fn only_the_file_a_snapshot_was_made_from_may_be_deleted() {
        let s = snap(
            "2026_11_01-02_00_00",
            Some("vzdump-qemu-100-2026_11_01-02_00_00.vma.zst"),
        );
        let mut a = archive("2026_11_01-02_00_00");
        assert_eq!(
            keep_input(&a, &s),
            None,
            "the original, older than its snapshot"
        );
        // One second before the snapshot still counts as before it; the same second not.
        a.modified = SystemTime::UNIX_EPOCH + Duration::from_millis(CREATED as u64 * 1000 - 1);
        assert_eq!(keep_input(&a, &s), None);
        for later in [
            CREATED * 1000,
            CREATED * 1000 + 999,
            (CREATED + 86_400) * 1000,
        ] {
            a.modified = SystemTime::UNIX_EPOCH + Duration::from_millis(later as u64);
            assert_eq!(
                keep_input(&a, &s),
                Some(KeepInput::WrittenAfterSnapshot {
                    modified: later / 1000,
                    created: CREATED
                }),
                "a file written after the snapshot (vzsnap restore) is never its source"
            );
        }
        let mut a = archive("2026_11_01-02_00_00");
        a.size = 11;
        assert_eq!(keep_input(&a, &s), Some(KeepInput::OtherSource));
        let a = archive("2026_11_01-02_00_00");
        let foreign = snap("2026_11_01-02_00_00", None);
        assert_eq!(keep_input(&a, &foreign), Some(KeepInput::OtherSource));
        let gz = ExistingSnapshot {
            source: Some("vzdump-qemu-100-2026_11_01-02_00_00.vma.gz".into()),
            ..s
        };
        assert_eq!(keep_input(&a, &gz), Some(KeepInput::OtherSource));
        assert_eq!(
            epoch_seconds(SystemTime::UNIX_EPOCH - Duration::from_millis(1)),
            -1
        );
    }
}
