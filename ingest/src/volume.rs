//! Getting a VM's volume into a known state before a sync, and back after a failed one.
//!
//! The invariant ingest keeps: **the live volume equals its newest snapshot whenever no
//! ingest is running.** A sync writes into the live volume in place; only a sync that
//! finished and verified the whole archive ends in a snapshot. So:
//! - before touching a volume, one that changed since its newest snapshot (a crashed run) is
//!   rolled back to it;
//! - a volume without any snapshot can only hold the leftovers of an interrupted first
//!   ingest: it is destroyed and created again (leftovers are never snapshotted);
//! - after a failed sync the volume is rolled back (or, for a first ingest, destroyed).

use std::path::PathBuf;

use serde::Serialize;
use store::{Store, StoreError, VolumeName};

/// What [`prepare`] had to repair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Recovery {
    /// Changes since the newest snapshot were discarded.
    RolledBack { to: String },
    /// A volume without snapshots held files; it was recreated empty.
    Recreated,
}

/// A volume ready for a sync.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub path: PathBuf,
    /// False for a first ingest: undo then destroys the volume.
    pub has_snapshots: bool,
    pub recovery: Option<Recovery>,
}

/// Whether a volume directory holds anything (ZFS's `.zfs` control directory, visible with
/// `snapdir=visible`, does not count).
fn has_entries(path: &std::path::Path) -> Result<bool, StoreError> {
    let rd = std::fs::read_dir(path).map_err(|e| StoreError::io(path.display().to_string(), e))?;
    for e in rd {
        let e = e.map_err(|e| StoreError::io(path.display().to_string(), e))?;
        if e.file_name() != ".zfs" {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Creates the volume if needed (with `props`) and brings it to its newest snapshot (or to
/// empty, without snapshots). See the module docs.
pub fn prepare(
    store: &dyn Store,
    vol: &VolumeName,
    props: &[(String, String)],
) -> Result<Prepared, StoreError> {
    let path = store.ensure_volume(vol, props)?;
    let snaps = store.list_snapshots(vol)?;
    if snaps.is_empty() {
        if has_entries(&path)? {
            tracing::warn!(volume = %vol, "volume has no snapshot but holds files (an interrupted first ingest); recreating it empty");
            store.destroy_volume(vol, false)?;
            let path = store.ensure_volume(vol, props)?;
            return Ok(Prepared {
                path,
                has_snapshots: false,
                recovery: Some(Recovery::Recreated),
            });
        }
        return Ok(Prepared {
            path,
            has_snapshots: false,
            recovery: None,
        });
    }
    if store.changed_since_latest(vol)? {
        let to = store.rollback_to_latest(vol)?;
        let to = to.map(|s| s.to_string()).unwrap_or_default();
        tracing::warn!(volume = %vol, snapshot = %to, "volume changed since its newest snapshot (an interrupted ingest); rolled back");
        let path = store.volume_path(vol)?;
        return Ok(Prepared {
            path,
            has_snapshots: true,
            recovery: Some(Recovery::RolledBack { to }),
        });
    }
    Ok(Prepared {
        path,
        has_snapshots: true,
        recovery: None,
    })
}

/// Undoes a failed sync: back to the newest snapshot, or (first ingest) no volume at all.
///
/// After running out of space the next VM of the same run needs the discarded space back:
/// the store returns from a rollback or destroy only once the space is free (btrfs frees
/// deleted subvolumes in a background cleaner; the btrfs backend waits for it).
pub fn undo(store: &dyn Store, vol: &VolumeName, has_snapshots: bool) -> Result<(), StoreError> {
    if has_snapshots {
        store.rollback_to_latest(vol)?;
    } else {
        match store.destroy_volume(vol, false) {
            Ok(()) | Err(StoreError::VolumeMissing { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use store::SnapshotName;
    use store::testutil::FakeStore;

    #[test]
    fn prepare_recreates_leftovers_and_rolls_back_changes() {
        let s = FakeStore::new().unwrap();
        let v = VolumeName::new("100").unwrap();
        let p = prepare(&s, &v, &[]).unwrap();
        assert_eq!((p.has_snapshots, p.recovery), (false, None));
        std::fs::write(p.path.join("disk-drive-scsi0.raw"), b"half").unwrap();
        let p = prepare(&s, &v, &[]).unwrap();
        assert_eq!(p.recovery, Some(Recovery::Recreated));
        assert!(!p.path.join("disk-drive-scsi0.raw").exists());
        std::fs::write(p.path.join("a"), b"1").unwrap();
        s.snapshot(&v, &SnapshotName::new("s1").unwrap(), &BTreeMap::new())
            .unwrap();
        let p = prepare(&s, &v, &[]).unwrap();
        assert_eq!((p.has_snapshots, p.recovery.clone()), (true, None));
        std::fs::write(p.path.join("a"), b"2").unwrap();
        let p = prepare(&s, &v, &[]).unwrap();
        assert_eq!(p.recovery, Some(Recovery::RolledBack { to: "s1".into() }));
        assert_eq!(std::fs::read(p.path.join("a")).unwrap(), b"1");
        std::fs::write(p.path.join("a"), b"3").unwrap();
        undo(&s, &v, true).unwrap();
        assert_eq!(std::fs::read(p.path.join("a")).unwrap(), b"1");
        let w = VolumeName::new("101").unwrap();
        prepare(&s, &w, &[]).unwrap();
        undo(&s, &w, false).unwrap();
        assert!(!s.list_volumes().unwrap().contains(&w));
    }
}
