//! The btrfs backend: a subvolume per VM, read-only snapshot subvolumes, writable snapshots as
//! clones, and small JSON files for what ZFS keeps in properties. btrfs-progs runs through
//! [`crate::cmd::Cmd`]; plain file operations use std.
//!
//! Layout below the store root `R` (a directory on a btrfs file system; docs/store.md):
//! ```text
//! R/<vol>/                                live subvolume of one VM
//! R/.vzsnap/lock                          flock: exclusive for changes, shared for reads
//! R/.vzsnap/snapshots/<vol>/<snap>/data   read-only snapshot subvolume
//!                                 /meta.json   commit marker + metadata (files::SnapMeta)
//!                                 /stats.json  cached referenced/written (files::Stats)
//!                                 /holds/<tag> one empty file per hold
//! R/.vzsnap/clones/<clone>/origin.json    written first (files::CloneOrigin)
//! R/.vzsnap/clones/<clone>/data           writable snapshot subvolume
//! R/.vzsnap/rollback/<vol>.new|.old       only while a rollback runs (rollback.rs)
//! ```
//! `.vzsnap` is not a valid [`VolumeName`], so `list_volumes` never lists it.

pub mod extents;
pub mod fiemap;
pub mod files;
pub mod rollback;
pub mod show;
pub mod signature;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::api::{Backend, SnapshotInfo, Store};
use crate::atomic::sync_dir;
use crate::cmd::Cmd;
use crate::error::StoreError;
use crate::names::{HoldTag, MetaKey, SnapshotName, VolumeName, check_meta_value};
use files::{CloneOrigin, FORMAT, SnapMeta, Stats, read_json, write_json};
use show::SubvolInfo;

/// Inode number of every btrfs subvolume's root directory (BTRFS_FIRST_FREE_OBJECTID).
const SUBVOLUME_ROOT_INO: u64 = 256;
/// The store's bookkeeping directory below the root.
pub const META_DIR: &str = ".vzsnap";

/// A store rooted at a directory on btrfs.
#[derive(Debug, Clone)]
pub struct BtrfsStore {
    root: PathBuf,
}

/// Holds the store lock until dropped (closing the file releases the flock).
#[derive(Debug)]
struct Lock(#[allow(dead_code)] File);

/// One committed snapshot.
#[derive(Debug, Clone)]
struct Entry {
    name: SnapshotName,
    dir: PathBuf,
    meta: SnapMeta,
}

fn io_err(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::io(path.display().to_string(), e)
}

fn btrfs<I, S>(args: I) -> Cmd
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Cmd::new("btrfs").args(args)
}

/// Whether `path` is the root directory of a subvolume (`Ok(false)` if it does not exist).
fn is_subvolume(path: &Path) -> Result<bool, StoreError> {
    use std::os::unix::fs::MetadataExt;
    match std::fs::symlink_metadata(path) {
        Ok(md) => Ok(md.is_dir() && md.ino() == SUBVOLUME_ROOT_INO),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err(path, e)),
    }
}

fn exists(path: &Path) -> Result<bool, StoreError> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err(path, e)),
    }
}

fn subvol_show(path: &Path) -> Result<SubvolInfo, StoreError> {
    let subject = path.display().to_string();
    let out = btrfs(["subvolume", "show"])
        .arg(path)
        .run()
        .map_err(|e| show::classify(&subject, e))?;
    show::parse_subvolume_show(&out.stdout).map_err(|d| StoreError::inconsistent(subject, d))
}

fn subvol_snapshot(src: &Path, dst: &Path, readonly: bool) -> Result<(), StoreError> {
    let mut cmd = btrfs(["subvolume", "snapshot"]);
    if readonly {
        cmd = cmd.arg("-r");
    }
    cmd.arg(src)
        .arg(dst)
        .run()
        .map_err(|e| show::classify(&dst.display().to_string(), e))?;
    Ok(())
}

/// Deletes a subvolume and waits until btrfs has freed its space, so that every destroying
/// operation (rollback, destroy of a snapshot, clone or volume) returns with the space
/// available again, as on ZFS.
///
/// Why wait: `subvolume delete` only unlinks the subvolume; the background cleaner frees
/// its extents after the next transaction commit (up to the 30 s commit interval), and the
/// freed space shows only after one more commit. Until then a file system that ran full
/// stays full although the rollback "succeeded" — the next VM of an ingest run that hit
/// ENOSPC would fail as well. So: delete with `--commit-after` (the commit wakes the cleaner
/// now, and the deletion survives a crash), `subvolume sync <fs> <id>` (returns once the
/// cleaner has dropped it) and `filesystem sync` (commits the freed space). Measured on a
/// loop device: ~20 ms in all instead of up to 30 s. A failed wait is logged, not returned:
/// the subvolume is gone either way.
fn subvol_delete(path: &Path) -> Result<(), StoreError> {
    let subject = path.display().to_string();
    let out = btrfs(["inspect-internal", "rootid"])
        .arg(path)
        .run()
        .map_err(|e| show::classify(&subject, e))?;
    let id = show::parse_rootid(&out.stdout).map_err(|d| StoreError::inconsistent(&subject, d))?;
    btrfs(["subvolume", "delete", "--commit-after"])
        .arg(path)
        .run()
        .map_err(|e| show::classify(&subject, e))?;
    // The parent directory is on the same file system and still exists.
    let fs = path.parent().unwrap_or(path);
    let waited = btrfs(["subvolume", "sync"])
        .arg(fs)
        .arg(id.to_string())
        .run()
        .and_then(|_| btrfs(["filesystem", "sync"]).arg(fs).run());
    if let Err(e) = waited {
        tracing::warn!(subvolume = %subject, id, "deleted, but waiting for btrfs to free its space failed: {e}");
    }
    Ok(())
}

/// Deletes the `data` subvolume of a snapshot or clone directory if there is one; anything
/// else under that name is not ours to remove (`Inconsistent`).
fn delete_data_subvolume(data: &Path) -> Result<(), StoreError> {
    if is_subvolume(data)? {
        subvol_delete(data)
    } else if exists(data)? {
        Err(StoreError::inconsistent(
            data.display().to_string(),
            "exists but is not a subvolume; not removing it",
        ))
    } else {
        Ok(())
    }
}

/// `rename` that fails instead of replacing an existing target, then makes it durable.
fn rename_noreplace(from: &Path, to: &Path) -> Result<(), StoreError> {
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE)
        .map_err(|e| io_err(from, std::io::Error::from(e)))?;
    for dir in [from.parent(), to.parent()].into_iter().flatten() {
        sync_dir(dir).map_err(|e| io_err(dir, e))?;
    }
    Ok(())
}

fn now() -> (i64, u128) {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.as_nanos())
}

/// Directory entries whose names are valid `T` names (others are ignored: they are not ours).
fn valid_entries<T>(
    dir: &Path,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<(T, PathBuf)>, StoreError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(dir, e)),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        if let Some(name) = entry.file_name().to_str().and_then(&parse) {
            out.push((name, entry.path()));
        }
    }
    Ok(out)
}

impl BtrfsStore {
    /// Opens (and on first use initialises) a store in `root`, which must be an existing
    /// directory on btrfs. Finishes or undoes interrupted rollbacks and removes snapshots whose
    /// creation never completed.
    pub fn open(root: &Path) -> Result<BtrfsStore, StoreError> {
        let md = std::fs::metadata(root).map_err(|e| io_err(root, e))?;
        if !md.is_dir() {
            return Err(StoreError::inconsistent(
                root.display().to_string(),
                "not a directory",
            ));
        }
        let fs = nix::sys::statfs::statfs(root).map_err(|e| io_err(root, e.into()))?;
        if fs.filesystem_type() != nix::sys::statfs::BTRFS_SUPER_MAGIC {
            return Err(StoreError::inconsistent(
                root.display().to_string(),
                "not on a btrfs file system",
            ));
        }
        let store = BtrfsStore {
            root: root.to_path_buf(),
        };
        for d in ["snapshots", "clones", "rollback"] {
            let p = store.meta_dir().join(d);
            std::fs::create_dir_all(&p).map_err(|e| io_err(&p, e))?;
        }
        let _lock = store.lock(true)?;
        store.recover_all()?;
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn meta_dir(&self) -> PathBuf {
        self.root.join(META_DIR)
    }

    fn vol_path(&self, vol: &VolumeName) -> PathBuf {
        self.root.join(vol.as_str())
    }

    fn snaps_dir(&self, vol: &VolumeName) -> PathBuf {
        self.meta_dir().join("snapshots").join(vol.as_str())
    }

    fn clones_dir(&self) -> PathBuf {
        self.meta_dir().join("clones")
    }

    fn rollback_paths(&self, vol: &VolumeName) -> (PathBuf, PathBuf) {
        let d = self.meta_dir().join("rollback");
        (d.join(format!("{vol}.old")), d.join(format!("{vol}.new")))
    }

    /// Serialises multi-step changes between threads and processes (readers share it), so
    /// recovery never mistakes another process's half-done step for a crash.
    fn lock(&self, exclusive: bool) -> Result<Lock, StoreError> {
        let path = self.meta_dir().join("lock");
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        if exclusive { f.lock() } else { f.lock_shared() }.map_err(|e| io_err(&path, e))?;
        Ok(Lock(f))
    }

    // ---- recovery (call with the exclusive lock held) ----

    fn recover_all(&self) -> Result<(), StoreError> {
        let rb = self.meta_dir().join("rollback");
        let vols = valid_entries(&rb, |n| {
            let base = n.strip_suffix(".old").or_else(|| n.strip_suffix(".new"))?;
            VolumeName::new(base).ok()
        })?;
        for (vol, _) in vols {
            self.recover_volume(&vol)?;
        }
        for (vol, _) in valid_entries(&self.meta_dir().join("snapshots"), |n| {
            VolumeName::new(n).ok()
        })? {
            for (_, dir) in valid_entries(&self.snaps_dir(&vol), |n| SnapshotName::new(n).ok())? {
                if !exists(&dir.join("meta.json"))? {
                    self.remove_snapshot_dir(&dir)?;
                }
            }
        }
        Ok(())
    }

    fn recover_volume(&self, vol: &VolumeName) -> Result<(), StoreError> {
        let live = self.vol_path(vol);
        let (old, new) = self.rollback_paths(vol);
        let names = rollback::Names {
            live: exists(&live)?,
            old: exists(&old)?,
            new: exists(&new)?,
        };
        for step in rollback::plan(names) {
            tracing::warn!(volume = %vol, ?names, ?step, "recovering an interrupted rollback");
            match step {
                rollback::Step::DeleteNew => subvol_delete(&new)?,
                rollback::Step::DeleteOld => subvol_delete(&old)?,
                rollback::Step::PromoteNew => rename_noreplace(&new, &live)?,
                rollback::Step::RestoreOld => rename_noreplace(&old, &live)?,
            }
        }
        Ok(())
    }

    /// Removes a snapshot directory: the subvolume first (plain file removal cannot touch a
    /// read-only subvolume and must never descend into one), then the small files.
    fn remove_snapshot_dir(&self, dir: &Path) -> Result<(), StoreError> {
        delete_data_subvolume(&dir.join("data"))?;
        match std::fs::remove_dir_all(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(dir, e)),
        }
        if let Some(parent) = dir.parent() {
            sync_dir(parent).map_err(|e| io_err(parent, e))?;
        }
        Ok(())
    }

    // ---- reading ----

    fn require_volume(&self, vol: &VolumeName) -> Result<PathBuf, StoreError> {
        let p = self.vol_path(vol);
        if is_subvolume(&p)? {
            Ok(p)
        } else if exists(&p)? {
            Err(StoreError::inconsistent(
                p.display().to_string(),
                "exists but is not a btrfs subvolume",
            ))
        } else {
            Err(StoreError::VolumeMissing {
                subject: p.display().to_string(),
            })
        }
    }

    /// Committed snapshots (with `meta.json`) in creation order.
    fn entries(&self, vol: &VolumeName) -> Result<Vec<Entry>, StoreError> {
        let mut out = Vec::new();
        for (name, dir) in valid_entries(&self.snaps_dir(vol), |n| SnapshotName::new(n).ok())? {
            if let Some(meta) = read_json::<SnapMeta>(&dir.join("meta.json"))? {
                out.push(Entry { name, dir, meta });
            }
        }
        out.sort_by(|a, b| (a.meta.seq, &a.name).cmp(&(b.meta.seq, &b.name)));
        Ok(out)
    }

    fn entry(&self, vol: &VolumeName, snap: &SnapshotName) -> Result<Entry, StoreError> {
        let dir = self.snaps_dir(vol).join(snap.as_str());
        match read_json::<SnapMeta>(&dir.join("meta.json"))? {
            Some(meta) => Ok(Entry {
                name: snap.clone(),
                dir,
                meta,
            }),
            None => Err(StoreError::SnapshotMissing {
                subject: format!("{}@{snap}", self.vol_path(vol).display()),
            }),
        }
    }

    fn hold_tags(&self, e: &Entry) -> Result<Vec<String>, StoreError> {
        let mut tags: Vec<String> = valid_entries(&e.dir.join("holds"), |n| HoldTag::new(n).ok())?
            .into_iter()
            .map(|(t, _)| t.to_string())
            .collect();
        tags.sort();
        Ok(tags)
    }

    /// Clones whose origin is `vol@snap`.
    fn clones_of(&self, vol: &VolumeName, snap: &SnapshotName) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for (clone, dir) in valid_entries(&self.clones_dir(), |n| VolumeName::new(n).ok())? {
            if let Some(o) = read_json::<CloneOrigin>(&dir.join("origin.json"))?
                && &o.volume == vol
                && &o.snapshot == snap
            {
                out.push(clone.to_string());
            }
        }
        Ok(out)
    }

    /// `(referenced, written)` of every entry, from the cache where valid, else computed
    /// from extents (each snapshot's tree scanned at most once per call).
    fn stats(&self, entries: &[Entry]) -> Result<Vec<(u64, u64)>, StoreError> {
        let mut out = Vec::with_capacity(entries.len());
        let mut scanned: Option<(usize, extents::TreeExtents)> = None;
        let scan = |e: &Entry| {
            let data = e.dir.join("data");
            extents::scan_tree(&data).map_err(|err| io_err(&data, err))
        };
        for (i, e) in entries.iter().enumerate() {
            let prev_id = i.checked_sub(1).map(|p| entries[p].meta.id.clone());
            let cache_path = e.dir.join("stats.json");
            if let Some(s) = read_json::<Stats>(&cache_path).ok().flatten()
                && s.prev_id == prev_id
            {
                out.push((s.referenced, s.written));
                continue;
            }
            let cur = scan(e)?;
            let prev = match (i.checked_sub(1), scanned.take()) {
                (None, _) => None,
                (Some(p), Some((j, ext))) if j == p => Some(ext),
                (Some(p), _) => Some(scan(&entries[p])?),
            };
            let (referenced, written) = (cur.referenced(), cur.written_since(prev.as_ref()));
            let stats = Stats {
                format: FORMAT,
                prev_id,
                referenced,
                written,
            };
            // The cache is an optimisation: failing to write it (read-only mount) is not an error.
            if let Err(err) = write_json(&cache_path, &stats) {
                tracing::debug!(path = %cache_path.display(), %err, "cannot cache snapshot stats");
            }
            out.push((referenced, written));
            scanned = Some((i, cur));
        }
        Ok(out)
    }

    // ---- changing (call with the exclusive lock held) ----

    fn destroy_entry(&self, e: &Entry) -> Result<(), StoreError> {
        // Removing the commit marker first makes the snapshot disappear atomically; a crash
        // later leaves an uncommitted directory that recovery removes.
        let marker = e.dir.join("meta.json");
        std::fs::remove_file(&marker).map_err(|err| io_err(&marker, err))?;
        sync_dir(&e.dir).map_err(|err| io_err(&e.dir, err))?;
        self.remove_snapshot_dir(&e.dir)
    }

    fn check_destroyable(&self, vol: &VolumeName, e: &Entry) -> Result<(), StoreError> {
        let subject = format!("{}@{}", self.vol_path(vol).display(), e.name);
        let tags = self.hold_tags(e)?;
        if !tags.is_empty() {
            return Err(StoreError::Held { subject, tags });
        }
        let clones = self.clones_of(vol, &e.name)?;
        if !clones.is_empty() {
            return Err(StoreError::Busy {
                subject,
                detail: format!("has clones: {}", clones.join(", ")),
            });
        }
        Ok(())
    }
}

impl Store for BtrfsStore {
    fn backend(&self) -> Backend {
        Backend::Btrfs
    }

    fn list_volumes(&self) -> Result<Vec<VolumeName>, StoreError> {
        let mut vols = Vec::new();
        for (vol, path) in valid_entries(&self.root, |n| VolumeName::new(n).ok())? {
            if is_subvolume(&path)? {
                vols.push(vol);
            }
        }
        vols.sort();
        Ok(vols)
    }

    fn ensure_volume(
        &self,
        vol: &VolumeName,
        _props: &[(String, String)],
    ) -> Result<PathBuf, StoreError> {
        let _lock = self.lock(true)?;
        self.recover_volume(vol)?;
        let p = self.vol_path(vol);
        if !exists(&p)? {
            btrfs(["subvolume", "create"])
                .arg(&p)
                .run()
                .map_err(|e| show::classify(&p.display().to_string(), e))?;
            sync_dir(&self.root).map_err(|e| io_err(&self.root, e))?;
        }
        self.require_volume(vol)
    }

    fn volume_path(&self, vol: &VolumeName) -> Result<PathBuf, StoreError> {
        let _lock = self.lock(false)?;
        self.require_volume(vol)
    }

    fn snapshot(
        &self,
        vol: &VolumeName,
        snap: &SnapshotName,
        meta: &BTreeMap<MetaKey, String>,
    ) -> Result<(), StoreError> {
        for v in meta.values() {
            check_meta_value(v)?;
        }
        let _lock = self.lock(true)?;
        self.recover_volume(vol)?;
        let live = self.require_volume(vol)?;
        let entries = self.entries(vol)?;
        let seq = entries
            .iter()
            .map(|e| e.meta.seq)
            .max()
            .map_or(1, |s| s + 1);
        let parent = self.snaps_dir(vol);
        std::fs::create_dir_all(&parent).map_err(|e| io_err(&parent, e))?;
        let dir = parent.join(snap.as_str());
        if let Err(e) = std::fs::create_dir(&dir) {
            if e.kind() != ErrorKind::AlreadyExists {
                return Err(io_err(&dir, e));
            }
            if exists(&dir.join("meta.json"))? {
                return Err(StoreError::Exists {
                    subject: format!("{}@{snap}", live.display()),
                });
            }
            // Left over by a crash before the commit marker was written.
            self.remove_snapshot_dir(&dir)?;
            std::fs::create_dir(&dir).map_err(|e| io_err(&dir, e))?;
        }
        let data = dir.join("data");
        let committed = (|| {
            subvol_snapshot(&live, &data, true)?;
            // Never commit a snapshot that could be written to.
            if !subvol_show(&data)?.readonly {
                return Err(StoreError::inconsistent(
                    data.display().to_string(),
                    "snapshot subvolume is not read-only",
                ));
            }
            let (created, nanos) = now();
            let m = SnapMeta {
                format: FORMAT,
                id: format!("{nanos:x}-{:x}-{seq}", std::process::id()),
                seq,
                created,
                meta: meta
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
            };
            write_json(&dir.join("meta.json"), &m)
        })();
        if let Err(e) = committed {
            // Do not leave an uncommitted directory behind (recovery would remove it later).
            if let Err(cleanup) = self.remove_snapshot_dir(&dir) {
                tracing::warn!(dir = %dir.display(), %cleanup, "cannot remove a failed snapshot");
            }
            return Err(e);
        }
        Ok(())
    }

    fn list_snapshots(&self, vol: &VolumeName) -> Result<Vec<SnapshotInfo>, StoreError> {
        let _lock = self.lock(false)?;
        self.require_volume(vol)?;
        let entries = self.entries(vol)?;
        let stats = self.stats(&entries)?;
        entries
            .into_iter()
            .zip(stats)
            .map(|(e, (referenced, written))| {
                Ok(SnapshotInfo {
                    held: !self.hold_tags(&e)?.is_empty(),
                    name: e.name,
                    created: e.meta.created,
                    meta: e.meta.meta,
                    referenced,
                    written,
                })
            })
            .collect()
    }

    fn changed_since_latest(&self, vol: &VolumeName) -> Result<bool, StoreError> {
        let _lock = self.lock(false)?;
        let live = self.require_volume(vol)?;
        let Some(latest) = self.entries(vol)?.pop() else {
            return Ok(true);
        };
        // See signature.rs for why inode metadata, not generation numbers.
        let data = latest.dir.join("data");
        let live_sig = signature::tree_signature(&live).map_err(|e| io_err(&live, e))?;
        let snap_sig = signature::tree_signature(&data).map_err(|e| io_err(&data, e))?;
        match signature::first_difference(&live_sig, &snap_sig) {
            Some(diff) => {
                tracing::debug!(volume = %vol, snapshot = %latest.name, %diff, "changed since the latest snapshot");
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn rollback_to_latest(&self, vol: &VolumeName) -> Result<Option<SnapshotName>, StoreError> {
        let _lock = self.lock(true)?;
        self.recover_volume(vol)?;
        let live = self.require_volume(vol)?;
        let Some(latest) = self.entries(vol)?.pop() else {
            return Ok(None);
        };
        let (old, new) = self.rollback_paths(vol);
        // See rollback.rs for why each crash point between these steps is recoverable.
        subvol_snapshot(&latest.dir.join("data"), &new, false)?;
        rename_noreplace(&live, &old)?;
        rename_noreplace(&new, &live)?;
        subvol_delete(&old)?;
        Ok(Some(latest.name))
    }

    fn snapshot_path(&self, vol: &VolumeName, snap: &SnapshotName) -> Result<PathBuf, StoreError> {
        let _lock = self.lock(false)?;
        let e = self.entry(vol, snap)?;
        let data = e.dir.join("data");
        if !is_subvolume(&data)? {
            return Err(StoreError::inconsistent(
                data.display().to_string(),
                "snapshot subvolume is missing",
            ));
        }
        Ok(data)
    }

    fn clone_snapshot(
        &self,
        vol: &VolumeName,
        snap: &SnapshotName,
        clone: &VolumeName,
    ) -> Result<PathBuf, StoreError> {
        let _lock = self.lock(true)?;
        let e = self.entry(vol, snap)?;
        let dir = self.clones_dir().join(clone.as_str());
        match std::fs::create_dir(&dir) {
            Ok(()) => {}
            Err(err) if err.kind() == ErrorKind::AlreadyExists => {
                return Err(StoreError::Exists {
                    subject: dir.display().to_string(),
                });
            }
            Err(err) => return Err(io_err(&dir, err)),
        }
        sync_dir(&self.clones_dir()).map_err(|err| io_err(&dir, err))?;
        write_json(
            &dir.join("origin.json"),
            &CloneOrigin {
                format: FORMAT,
                volume: vol.clone(),
                snapshot: snap.clone(),
            },
        )?;
        let data = dir.join("data");
        if let Err(err) = subvol_snapshot(&e.dir.join("data"), &data, false) {
            if let Err(cleanup) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), %cleanup, "cannot remove a failed clone");
            }
            return Err(err);
        }
        Ok(data)
    }

    fn destroy_clone(&self, clone: &VolumeName) -> Result<(), StoreError> {
        let _lock = self.lock(true)?;
        let dir = self.clones_dir().join(clone.as_str());
        if !exists(&dir)? {
            return Err(StoreError::VolumeMissing {
                subject: dir.display().to_string(),
            });
        }
        delete_data_subvolume(&dir.join("data"))?;
        std::fs::remove_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        sync_dir(&self.clones_dir()).map_err(|e| io_err(&dir, e))
    }

    fn list_clones(&self) -> Result<Vec<VolumeName>, StoreError> {
        let mut clones: Vec<VolumeName> =
            valid_entries(&self.clones_dir(), |n| VolumeName::new(n).ok())?
                .into_iter()
                .map(|(c, _)| c)
                .collect();
        clones.sort();
        Ok(clones)
    }

    fn destroy_snapshot(&self, vol: &VolumeName, snap: &SnapshotName) -> Result<(), StoreError> {
        let _lock = self.lock(true)?;
        let e = self.entry(vol, snap)?;
        self.check_destroyable(vol, &e)?;
        self.destroy_entry(&e)
    }

    fn hold(&self, vol: &VolumeName, snap: &SnapshotName, tag: &str) -> Result<(), StoreError> {
        let tag = HoldTag::new(tag)?;
        let _lock = self.lock(true)?;
        let e = self.entry(vol, snap)?;
        let holds = e.dir.join("holds");
        std::fs::create_dir_all(&holds).map_err(|err| io_err(&holds, err))?;
        let p = holds.join(tag.as_str());
        File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(|err| io_err(&p, err))?;
        sync_dir(&holds).map_err(|err| io_err(&holds, err))
    }

    fn release(&self, vol: &VolumeName, snap: &SnapshotName, tag: &str) -> Result<(), StoreError> {
        let tag = HoldTag::new(tag)?;
        let _lock = self.lock(true)?;
        let e = self.entry(vol, snap)?;
        let holds = e.dir.join("holds");
        match std::fs::remove_file(holds.join(tag.as_str())) {
            Ok(()) => sync_dir(&holds).map_err(|err| io_err(&holds, err)),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(()),
            Err(err) => Err(io_err(&holds, err)),
        }
    }

    fn holds(&self, vol: &VolumeName, snap: &SnapshotName) -> Result<Vec<String>, StoreError> {
        let _lock = self.lock(false)?;
        let e = self.entry(vol, snap)?;
        self.hold_tags(&e)
    }

    fn destroy_volume(&self, vol: &VolumeName, with_snapshots: bool) -> Result<(), StoreError> {
        let _lock = self.lock(true)?;
        self.recover_volume(vol)?;
        let live = self.require_volume(vol)?;
        let entries = self.entries(vol)?;
        if !entries.is_empty() && !with_snapshots {
            return Err(StoreError::Busy {
                subject: live.display().to_string(),
                detail: format!("has {} snapshots", entries.len()),
            });
        }
        for e in &entries {
            self.check_destroyable(vol, e)?;
        }
        for e in &entries {
            self.destroy_entry(e)?;
        }
        subvol_delete(&live)?;
        let snaps = self.snaps_dir(vol);
        for (_, dir) in valid_entries(&snaps, |n| SnapshotName::new(n).ok())? {
            self.remove_snapshot_dir(&dir)?;
        }
        match std::fs::remove_dir(&snaps) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&snaps, e)),
        }
    }
}
