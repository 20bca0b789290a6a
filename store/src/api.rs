//! The `Store` trait: everything ingest and restore need from a snapshotting file system.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use crate::error::StoreError;
use crate::names::{MetaKey, SnapshotName, VolumeName};

/// Which implementation is behind a `dyn Store`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    Zfs,
    Btrfs,
    /// [`crate::testutil::FakeStore`]: in-memory bookkeeping over plain directories.
    Fake,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Zfs => "zfs",
            Backend::Btrfs => "btrfs",
            Backend::Fake => "fake",
        })
    }
}

/// One snapshot of a volume as `list_snapshots` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub name: SnapshotName,
    /// Creation time, seconds since the epoch (ZFS `creation`; btrfs: when vzsnap took it).
    pub created: i64,
    /// The key/value metadata given to `snapshot` (keys without the `vzsnap:` prefix).
    pub meta: BTreeMap<String, String>,
    /// Bytes referenced by the snapshot (ZFS `referenced`; btrfs: distinct physical extent
    /// bytes of its files).
    pub referenced: u64,
    /// Bytes written between the previous snapshot and this one (ZFS `written`; btrfs:
    /// physical extent bytes not shared with the previous snapshot). The first snapshot's
    /// `written` is everything it references.
    pub written: u64,
    /// True while at least one hold tag is set (destroy is refused).
    pub held: bool,
}

/// Volumes (one per VM), their snapshots, and short-lived writable clones.
///
/// All names are validated newtypes, so implementations never see a hostile string. Methods
/// are synchronous and may run external programs through [`crate::cmd::Cmd`].
pub trait Store: Send + Sync + fmt::Debug {
    fn backend(&self) -> Backend;

    /// The per-VM volumes directly below the store root, sorted. Clones and the store's own
    /// bookkeeping are never listed.
    fn list_volumes(&self) -> Result<Vec<VolumeName>, StoreError>;

    /// Creates the volume if it is missing and returns its mounted directory. On ZFS `props`
    /// are `zfs create -o` properties, verified after creation (an existing volume is left as
    /// it is); a volume created without an `atime` property gets `atime=off`, so that merely
    /// reading files does not count as a change. btrfs ignores `props` (documented in
    /// docs/store.md). Also finishes or undoes an interrupted rollback of this volume.
    fn ensure_volume(
        &self,
        vol: &VolumeName,
        props: &[(String, String)],
    ) -> Result<PathBuf, StoreError>;

    /// The mounted, writable directory of an existing volume ([`StoreError::VolumeMissing`]
    /// if absent).
    fn volume_path(&self, vol: &VolumeName) -> Result<PathBuf, StoreError>;

    /// Takes a read-only snapshot with the given metadata (ZFS: user properties `vzsnap:<key>`
    /// set atomically with the snapshot; btrfs: a JSON file beside it). Every value is checked
    /// with [`crate::names::check_meta_value`] first.
    fn snapshot(
        &self,
        vol: &VolumeName,
        snap: &SnapshotName,
        meta: &BTreeMap<MetaKey, String>,
    ) -> Result<(), StoreError>;

    /// Oldest first (creation order), with creation time, metadata, referenced bytes, bytes
    /// written since the previous snapshot, and whether held.
    fn list_snapshots(&self, vol: &VolumeName) -> Result<Vec<SnapshotInfo>, StoreError>;

    /// Whether anything (data or metadata) changed since the newest snapshot. Conservative:
    /// a false "changed" only costs a rollback, a false "unchanged" would hide a half-written
    /// ingest. `true` when the volume has no snapshot at all.
    fn changed_since_latest(&self, vol: &VolumeName) -> Result<bool, StoreError>;

    /// Discards every change since the newest snapshot. `Ok(None)` if there is no snapshot.
    fn rollback_to_latest(&self, vol: &VolumeName) -> Result<Option<SnapshotName>, StoreError>;

    /// The read-only directory holding the snapshot's files (`.zfs/snapshot/<name>/` on ZFS).
    fn snapshot_path(&self, vol: &VolumeName, snap: &SnapshotName) -> Result<PathBuf, StoreError>;

    /// Creates a writable clone of a snapshot and returns its mounted directory. Clones live
    /// apart from volumes (never in `list_volumes`), are found by `list_clones` even after a
    /// crash, and keep their origin snapshot from being destroyed ([`StoreError::Busy`]).
    fn clone_snapshot(
        &self,
        vol: &VolumeName,
        snap: &SnapshotName,
        clone: &VolumeName,
    ) -> Result<PathBuf, StoreError>;

    /// Destroys a clone made by `clone_snapshot` (never a volume).
    fn destroy_clone(&self, clone: &VolumeName) -> Result<(), StoreError>;

    /// Every clone, sorted (including ones left behind by a crashed restore).
    fn list_clones(&self) -> Result<Vec<VolumeName>, StoreError>;

    /// Destroys a snapshot. [`StoreError::Held`] if held, [`StoreError::Busy`] if a clone
    /// depends on it, [`StoreError::SnapshotMissing`] if absent.
    fn destroy_snapshot(&self, vol: &VolumeName, snap: &SnapshotName) -> Result<(), StoreError>;

    /// Adds hold `tag` (idempotent: holding with a tag that is already set is Ok).
    fn hold(&self, vol: &VolumeName, snap: &SnapshotName, tag: &str) -> Result<(), StoreError>;

    /// Removes hold `tag` (idempotent: releasing a tag that is not set is Ok).
    fn release(&self, vol: &VolumeName, snap: &SnapshotName, tag: &str) -> Result<(), StoreError>;

    /// The hold tags set on a snapshot, sorted.
    fn holds(&self, vol: &VolumeName, snap: &SnapshotName) -> Result<Vec<String>, StoreError>;

    /// Destroys a volume. With `with_snapshots == false` it refuses ([`StoreError::Busy`]) if
    /// the volume has snapshots; with `true` it destroys them too, but still refuses if any is
    /// held or has a clone.
    fn destroy_volume(&self, vol: &VolumeName, with_snapshots: bool) -> Result<(), StoreError>;
}
