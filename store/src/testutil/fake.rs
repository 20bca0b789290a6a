//! `FakeStore`: the `Store` trait over plain directories, for unit tests of logic that uses a
//! store (ingest planning, retention, restore wiring) without root, btrfs or ZFS.
//!
//! A fake, not a mock (omicron's habit): it keeps real state and enforces the same rules as
//! the real backends (names, holds, clones, ordering, rollback), so code tested against it
//! behaves the same on the real thing. Volumes are directories; a snapshot is a full copy,
//! so keep test data small. `written` is counted in 4 KiB blocks that differ from the previous
//! snapshot, `referenced` as the 4 KiB-rounded file sizes. Failures can be injected per
//! operation with [`FakeStore::fail_next`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::api::{Backend, SnapshotInfo, Store};
use crate::error::StoreError;
use crate::names::{HoldTag, MetaKey, SnapshotName, VolumeName, check_meta_value};

const BLOCK: u64 = 4096;

/// Operations whose next call can be made to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FakeOp {
    EnsureVolume,
    Snapshot,
    ListSnapshots,
    Rollback,
    Clone,
    DestroyClone,
    DestroySnapshot,
    Hold,
    Release,
    DestroyVolume,
}

#[derive(Debug, Clone)]
struct FakeSnap {
    name: SnapshotName,
    created: i64,
    meta: BTreeMap<String, String>,
    holds: BTreeSet<String>,
    referenced: u64,
    written: u64,
}

#[derive(Debug, Default)]
struct State {
    volumes: BTreeMap<VolumeName, Vec<FakeSnap>>,
    clones: BTreeMap<VolumeName, (VolumeName, SnapshotName)>,
    fail: BTreeSet<FakeOp>,
    clock: Option<i64>,
}

/// See the module docs.
#[derive(Debug)]
pub struct FakeStore {
    dir: tempfile::TempDir,
    state: Mutex<State>,
}

fn io_err(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::io(path.display().to_string(), e)
}

/// Copies a directory tree (files, directories, symlinks).
fn copy_tree(from: &Path, to: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(to).map_err(|e| io_err(to, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| io_err(from, e))? {
        let entry = entry.map_err(|e| io_err(from, e))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let ft = entry.file_type().map_err(|e| io_err(&src, e))?;
        if ft.is_dir() {
            copy_tree(&src, &dst)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&src).map_err(|e| io_err(&src, e))?;
            std::os::unix::fs::symlink(target, &dst).map_err(|e| io_err(&dst, e))?;
        } else {
            std::fs::copy(&src, &dst).map_err(|e| io_err(&src, e))?;
        }
    }
    Ok(())
}

/// Relative path → (mode, content) of every file (symlinks as their target).
fn read_tree(root: &Path) -> Result<BTreeMap<PathBuf, (u32, Vec<u8>)>, StoreError> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        for entry in std::fs::read_dir(&dir).map_err(|e| io_err(&dir, e))? {
            let entry = entry.map_err(|e| io_err(&dir, e))?;
            let rel_child = rel.join(entry.file_name());
            let path = entry.path();
            let md = std::fs::symlink_metadata(&path).map_err(|e| io_err(&path, e))?;
            let mode = md.permissions().mode();
            if md.is_dir() {
                out.insert(rel_child.clone(), (mode, Vec::new()));
                stack.push(rel_child);
            } else if md.file_type().is_symlink() {
                let t = std::fs::read_link(&path).map_err(|e| io_err(&path, e))?;
                out.insert(rel_child, (mode, t.into_os_string().into_encoded_bytes()));
            } else {
                out.insert(
                    rel_child,
                    (mode, std::fs::read(&path).map_err(|e| io_err(&path, e))?),
                );
            }
        }
    }
    Ok(out)
}

fn blocks(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.chunks(BLOCK as usize)
}

/// (referenced, written) of `cur` relative to `prev`.
fn accounting(
    cur: &BTreeMap<PathBuf, (u32, Vec<u8>)>,
    prev: Option<&BTreeMap<PathBuf, (u32, Vec<u8>)>>,
) -> (u64, u64) {
    let referenced = cur
        .values()
        .map(|(_, d)| (d.len() as u64).div_ceil(BLOCK) * BLOCK)
        .sum();
    let written = cur
        .iter()
        .map(|(p, (_, d))| match prev.and_then(|m| m.get(p)) {
            None => blocks(d).count() as u64 * BLOCK,
            Some((_, old)) => {
                let old: Vec<&[u8]> = blocks(old).collect();
                blocks(d)
                    .enumerate()
                    .filter(|(i, b)| old.get(*i) != Some(b))
                    .count() as u64
                    * BLOCK
            }
        })
        .sum();
    (referenced, written)
}

impl FakeStore {
    pub fn new() -> std::io::Result<FakeStore> {
        let dir = tempfile::Builder::new().prefix("vzsnap-fake-").tempdir()?;
        for d in ["volumes", "snapshots", "clones"] {
            std::fs::create_dir(dir.path().join(d))?;
        }
        Ok(FakeStore {
            dir,
            state: Mutex::new(State::default()),
        })
    }

    /// Makes the next call of `op` fail with [`StoreError::Unknown`] (once).
    pub fn fail_next(&self, op: FakeOp) {
        self.lock().fail.insert(op);
    }

    /// Fixes the creation time recorded for the following snapshots (default: wall clock).
    pub fn set_clock(&self, epoch_seconds: i64) {
        self.lock().clock = Some(epoch_seconds);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn vol_path(&self, vol: &VolumeName) -> PathBuf {
        self.dir.path().join("volumes").join(vol.as_str())
    }

    fn snap_path(&self, vol: &VolumeName, snap: &SnapshotName) -> PathBuf {
        self.dir
            .path()
            .join("snapshots")
            .join(vol.as_str())
            .join(snap.as_str())
    }

    fn clone_path(&self, clone: &VolumeName) -> PathBuf {
        self.dir.path().join("clones").join(clone.as_str())
    }

    fn injected(state: &mut State, op: FakeOp) -> Result<(), StoreError> {
        if state.fail.remove(&op) {
            return Err(StoreError::Unknown {
                subject: format!("{op:?}"),
                command: "fake".into(),
                stderr: "injected failure".into(),
            });
        }
        Ok(())
    }

    fn missing_vol(&self, vol: &VolumeName) -> StoreError {
        StoreError::VolumeMissing {
            subject: self.vol_path(vol).display().to_string(),
        }
    }

    fn find<'a>(
        &self,
        st: &'a mut State,
        vol: &VolumeName,
        snap: &SnapshotName,
    ) -> Result<&'a mut FakeSnap, StoreError> {
        st.volumes
            .get_mut(vol)
            .and_then(|v| v.iter_mut().find(|s| &s.name == snap))
            .ok_or_else(|| StoreError::SnapshotMissing {
                subject: format!("{vol}@{snap}"),
            })
    }
}

impl Store for FakeStore {
    fn backend(&self) -> Backend {
        Backend::Fake
    }

    fn list_volumes(&self) -> Result<Vec<VolumeName>, StoreError> {
        Ok(self.lock().volumes.keys().cloned().collect())
    }

    fn ensure_volume(
        &self,
        vol: &VolumeName,
        _props: &[(String, String)],
    ) -> Result<PathBuf, StoreError> {
        let mut st = self.lock();
        Self::injected(&mut st, FakeOp::EnsureVolume)?;
        let p = self.vol_path(vol);
        if !st.volumes.contains_key(vol) {
            std::fs::create_dir(&p).map_err(|e| io_err(&p, e))?;
            st.volumes.insert(vol.clone(), Vec::new());
        }
        Ok(p)
    }

    fn volume_path(&self, vol: &VolumeName) -> Result<PathBuf, StoreError> {
        if self.lock().volumes.contains_key(vol) {
            Ok(self.vol_path(vol))
        } else {
            Err(self.missing_vol(vol))
        }
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
        let mut st = self.lock();
        Self::injected(&mut st, FakeOp::Snapshot)?;
        let clock = st.clock;
        let Some(snaps) = st.volumes.get(vol) else {
            return Err(self.missing_vol(vol));
        };
        if snaps.iter().any(|s| &s.name == snap) {
            return Err(StoreError::Exists {
                subject: format!("{vol}@{snap}"),
            });
        }
        let prev = match snaps.last() {
            Some(p) => Some(read_tree(&self.snap_path(vol, &p.name))?),
            None => None,
        };
        let cur = read_tree(&self.vol_path(vol))?;
        let (referenced, written) = accounting(&cur, prev.as_ref());
        copy_tree(&self.vol_path(vol), &self.snap_path(vol, snap))?;
        let created = clock.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        });
        st.volumes
            .get_mut(vol)
            .ok_or_else(|| self.missing_vol(vol))?
            .push(FakeSnap {
                name: snap.clone(),
                created,
                meta: meta
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
                holds: BTreeSet::new(),
                referenced,
                written,
            });
        Ok(())
    }

    fn list_snapshots(&self, vol: &VolumeName) -> Result<Vec<SnapshotInfo>, StoreError> {
        let mut st = self.lock();
        Self::injected(&mut st, FakeOp::ListSnapshots)?;
        let snaps = st.volumes.get(vol).ok_or_else(|| self.missing_vol(vol))?;
        Ok(snaps
            .iter()
            .map(|s| SnapshotInfo {
                name: s.name.clone(),
                created: s.created,
                meta: s.meta.clone(),
                referenced: s.referenced,
                written: s.written,
                held: !s.holds.is_empty(),
            })
            .collect())
    }

    fn changed_since_latest(&self, vol: &VolumeName) -> Result<bool, StoreError> {
        let st = self.lock();
        let snaps = st.volumes.get(vol).ok_or_else(|| self.missing_vol(vol))?;
        let Some(latest) = snaps.last() else {
            return Ok(true);
        };
        Ok(read_tree(&self.vol_path(vol))? != read_tree(&self.snap_path(vol, &latest.name))?)
    }

    fn rollback_to_latest(&self, vol: &VolumeName) -> Result<Option<SnapshotName>, StoreError> {
        let mut st = self.lock();
        Self::injected(&mut st, FakeOp::Rollback)?;
        let snaps = st.volumes.get(vol).ok_or_else(|| self.missing_vol(vol))?;
        let Some(latest) = snaps.last() else {
            return Ok(None);
        };
        let live = self.vol_path(vol);
        std::fs::remove_dir_all(&live).map_err(|e| io_err(&live, e))?;
        copy_tree(&self.snap_path(vol, &latest.name), &live)?;
        Ok(Some(latest.name.clone()))
    }

    fn snapshot_path(&self, vol: &VolumeName, snap: &SnapshotName) -> Result<PathBuf, StoreError> {
        let mut st = self.lock();
        self.find(&mut st, vol, snap)?;
        Ok(self.snap_path(vol, snap))
    }

    fn clone_snapshot(
        &self,
        vol: &VolumeName,
        snap: &SnapshotName,
        clone: &VolumeName,
    ) -> Result<PathBuf, StoreError> {
        let mut st = self.lock();
        Self::injected(&mut st, FakeOp::Clone)?;
        self.find(&mut st, vol, snap)?;
        if st.clones.contains_key(clone) {
            return Err(StoreError::Exists {
                subject: self.clone_path(clone).display().to_string(),
            });
        }
        copy_tree(&self.snap_path(vol, snap), &self.clone_path(clone))?;
        st.clones.insert(clone.clone(), (vol.clone(), snap.clone()));
        Ok(self.clone_path(clone))
    }

    fn destroy_clone(&self, clone: &VolumeName) -> Result<(), StoreError> {
        let mut st = self.lock();
        Self::injected(&mut st, FakeOp::DestroyClone)?;
        let p = self.clone_path(clone);
        if st.clones.remove(clone).is_none() {
            return Err(StoreError::VolumeMissing {
                subject: p.display().to_string(),
            });
        }
        std::fs::remove_dir_all(&p).map_err(|e| io_err(&p, e))
    }

    fn list_clones(&self) -> Result<Vec<VolumeName>, StoreError> {
        Ok(self.lock().clones.keys().cloned().collect())
    }

    fn destroy_snapshot(&self, vol: &VolumeName, snap: &SnapshotName) -> Result<(), StoreError> {
        let mut st = self.lock();
        Self::injected(&mut st, FakeOp::DestroySnapshot)?;
        let s = self.find(&mut st, vol, snap)?;
        if !s.holds.is_empty() {
            return Err(StoreError::Held {
                subject: format!("{vol}@{snap}"),
                tags: s.holds.iter().cloned().collect(),
            });
        }
        if st.clones.values().any(|(v, s)| v == vol && s == snap) {
            return Err(StoreError::Busy {
                subject: format!("{vol}@{snap}"),
                detail: "has clones".into(),
            });
        }
        let snaps = st
            .volumes
            .get_mut(vol)
            .ok_or_else(|| self.missing_vol(vol))?;
        let i = snaps.iter().position(|s| &s.name == snap).unwrap_or(0);
        snaps.remove(i);
        // As in ZFS, the next snapshot's `written` now counts from the one before.
        if let Some(next) = snaps.get(i).map(|s| s.name.clone()) {
            let prev = match i.checked_sub(1).and_then(|p| snaps.get(p)) {
                Some(p) => Some(read_tree(&self.snap_path(vol, &p.name))?),
                None => None,
            };
            let cur = read_tree(&self.snap_path(vol, &next))?;
            snaps[i].written = accounting(&cur, prev.as_ref()).1;
        }
        let p = self.snap_path(vol, snap);
        std::fs::remove_dir_all(&p).map_err(|e| io_err(&p, e))
    }

    fn hold(&self, vol: &VolumeName, snap: &SnapshotName, tag: &str) -> Result<(), StoreError> {
        let tag = HoldTag::new(tag)?;
        let mut st = self.lock();
        Self::injected(&mut st, FakeOp::Hold)?;
        self.find(&mut st, vol, snap)?.holds.insert(tag.to_string());
        Ok(())
    }

    fn release(&self, vol: &VolumeName, snap: &SnapshotName, tag: &str) -> Result<(), StoreError> {
        let tag = HoldTag::new(tag)?;
        let mut st = self.lock();
        Self::injected(&mut st, FakeOp::Release)?;
        self.find(&mut st, vol, snap)?.holds.remove(tag.as_str());
        Ok(())
    }

    fn holds(&self, vol: &VolumeName, snap: &SnapshotName) -> Result<Vec<String>, StoreError> {
        let mut st = self.lock();
        Ok(self
            .find(&mut st, vol, snap)?
            .holds
            .iter()
            .cloned()
            .collect())
    }

    fn destroy_volume(&self, vol: &VolumeName, with_snapshots: bool) -> Result<(), StoreError> {
        let mut st = self.lock();
        Self::injected(&mut st, FakeOp::DestroyVolume)?;
        let snaps = st.volumes.get(vol).ok_or_else(|| self.missing_vol(vol))?;
        if !snaps.is_empty() && !with_snapshots {
            return Err(StoreError::Busy {
                subject: vol.to_string(),
                detail: format!("has {} snapshots", snaps.len()),
            });
        }
        for s in snaps {
            if !s.holds.is_empty() {
                return Err(StoreError::Held {
                    subject: format!("{vol}@{}", s.name),
                    tags: s.holds.iter().cloned().collect(),
                });
            }
            if st.clones.values().any(|(v, c)| v == vol && c == &s.name) {
                return Err(StoreError::Busy {
                    subject: format!("{vol}@{}", s.name),
                    detail: "has clones".into(),
                });
            }
        }
        st.volumes.remove(vol);
        for p in [
            self.vol_path(vol),
            self.dir.path().join("snapshots").join(vol.as_str()),
        ] {
            match std::fs::remove_dir_all(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&p, e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounting_counts_changed_blocks() {
        let mut a = BTreeMap::new();
        a.insert(PathBuf::from("d"), (0o644, vec![0u8; 40960]));
        let mut b = a.clone();
        b.get_mut(Path::new("d")).unwrap().1[4096] = 1;
        b.get_mut(Path::new("d")).unwrap().1[20000] = 1;
        assert_eq!(accounting(&a, None), (40960, 40960));
        assert_eq!(accounting(&b, Some(&a)), (40960, 8192));
        assert_eq!(accounting(&a, Some(&a)), (40960, 0));
    }
}
