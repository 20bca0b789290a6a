//! The ZFS backend: every operation is a `zfs`/`zpool` CLI call through [`crate::cmd::Cmd`]
//! with `-H -p` output parsed by the pure functions in [`parse`].
//!
//! Layout below the root dataset `R` (e.g. `tank/vzsnap`):
//! - `R/<vol>`: one filesystem per VM; snapshots `R/<vol>@<snap>` with user properties
//!   `vzsnap:<key>` set atomically by `zfs snapshot -o`.
//! - `R/.clones` (`canmount=off`): parent of clones `R/.clones/<clone>`, each with the user
//!   property `vzsnap:clone-of=<origin snapshot>`. `.clones` is a valid ZFS name but never a
//!   valid [`VolumeName`], so `list_volumes` cannot mistake it (or a clone) for a VM.

pub mod classify;
#[cfg(test)]
mod fixtures;
pub mod parse;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::api::{Backend, SnapshotInfo, Store};
use crate::cmd::{Cmd, CmdError, Output};
use crate::error::StoreError;
use crate::names::{
    DatasetName, HoldTag, META_PREFIX, MetaKey, SnapshotName, VolumeName, check_meta_value,
};
use classify::{Failure, classify_stderr};
use parse::{ParseError, SNAPSHOT_COLUMNS};

/// Name of the dataset below the root that holds clones.
pub const CLONES_CHILD: &str = ".clones";
/// User property set on every clone: the origin snapshot's full name.
pub const CLONE_OF_PROPERTY: &str = "vzsnap:clone-of";

/// A store rooted at one ZFS dataset.
#[derive(Debug, Clone)]
pub struct ZfsStore {
    root: DatasetName,
}

/// A failed call, typed. The caller decides what `Missing` means (volume or snapshot).
struct ZfsFail {
    kind: Failure,
    err: CmdError,
}

fn zfs<I, S>(args: I) -> Cmd
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Cmd::new("zfs").args(args)
}

/// Runs a command, classifying a failure by its stderr. Spawn/pipe errors are `Unknown`.
fn run(cmd: Cmd) -> Result<Output, ZfsFail> {
    cmd.run().map_err(|err| {
        let kind = match &err {
            CmdError::Failed { stderr, .. } => classify_stderr(stderr),
            _ => Failure::Unknown,
        };
        ZfsFail { kind, err }
    })
}

impl ZfsFail {
    /// The typed error for this failure about `subject`; `missing` builds the error for
    /// `Failure::Missing` (volume or snapshot missing, depending on the call).
    fn into_error(self, subject: &str, missing: impl FnOnce(String) -> StoreError) -> StoreError {
        let subject = subject.to_string();
        let detail = self.err.stderr().unwrap_or("").trim_end().to_string();
        match self.kind {
            Failure::Missing => missing(subject),
            Failure::Exists => StoreError::Exists { subject },
            Failure::Busy => StoreError::Busy { subject, detail },
            Failure::Held => StoreError::Held {
                subject,
                tags: Vec::new(),
            },
            Failure::Permission => StoreError::Permission { subject, detail },
            Failure::NoSpace => StoreError::NoSpace { subject, detail },
            Failure::NoSuchTag | Failure::TagExists | Failure::Unknown => {
                StoreError::unknown(subject, self.err)
            }
        }
    }
}

fn vol_missing(subject: String) -> StoreError {
    StoreError::VolumeMissing { subject }
}

fn snap_missing(subject: String) -> StoreError {
    StoreError::SnapshotMissing { subject }
}

fn parse_err(subject: &str, e: ParseError) -> StoreError {
    StoreError::inconsistent(subject, e.to_string())
}

/// Checks a `zfs create -o` property pair from configuration: a native or user property name
/// and a value without control characters (it is one argv element either way).
fn check_property(key: &str, value: &str) -> Result<(), StoreError> {
    let key_ok = !key.is_empty()
        && key.len() <= 256
        && key.starts_with(|c: char| c.is_ascii_lowercase())
        && key.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | ':' | '.' | '-')
        });
    let value_ok = !value.is_empty() && value.len() <= 8192 && !value.chars().any(char::is_control);
    if key_ok && value_ok {
        Ok(())
    } else {
        Err(StoreError::Spec {
            spec: format!("{key}={value}"),
            reason: "not a valid zfs property assignment".into(),
        })
    }
}

impl ZfsStore {
    /// Opens a store rooted at `root`. Checks that the pool exists (the root dataset itself
    /// is created on the first `ensure_volume`).
    pub fn open(root: DatasetName) -> Result<ZfsStore, StoreError> {
        let store = ZfsStore { root };
        let pool = store
            .root
            .as_str()
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        match run(zfs(["list", "-H", "-p", "-o", "name", &pool])) {
            Ok(_) => Ok(store),
            Err(f) => Err(f.into_error(&pool, vol_missing)),
        }
    }

    /// The root dataset.
    pub fn root(&self) -> &DatasetName {
        &self.root
    }

    fn pool(&self) -> &str {
        self.root.as_str().split('/').next().unwrap_or_default()
    }

    fn vol_ds(&self, vol: &VolumeName) -> Result<DatasetName, StoreError> {
        Ok(self.root.child(vol.as_str())?)
    }

    fn clones_ds(&self) -> Result<DatasetName, StoreError> {
        Ok(self.root.child(CLONES_CHILD)?)
    }

    fn clone_ds(&self, clone: &VolumeName) -> Result<DatasetName, StoreError> {
        Ok(self.clones_ds()?.child(clone.as_str())?)
    }

    /// `Some(props)` for an existing dataset, `None` if it does not exist.
    fn get_props(
        &self,
        ds: &str,
        props: &[&str],
    ) -> Result<Option<BTreeMap<String, String>>, StoreError> {
        match run(zfs([
            "get",
            "-H",
            "-p",
            "-o",
            "property,value",
            &props.join(","),
            ds,
        ])) {
            Ok(out) => {
                let map = parse::parse_props(&out.stdout).map_err(|e| parse_err(ds, e))?;
                if let Some(p) = props.iter().find(|p| !map.contains_key(**p)) {
                    return Err(StoreError::inconsistent(
                        ds,
                        format!("zfs get did not report property {p}"),
                    ));
                }
                Ok(Some(map))
            }
            Err(f) if f.kind == Failure::Missing => Ok(None),
            Err(f) => Err(f.into_error(ds, vol_missing)),
        }
    }

    fn exists(&self, ds: &str) -> Result<bool, StoreError> {
        match run(zfs(["list", "-H", "-p", "-o", "name", ds])) {
            Ok(_) => Ok(true),
            Err(f) if f.kind == Failure::Missing => Ok(false),
            Err(f) => Err(f.into_error(ds, vol_missing)),
        }
    }

    /// Creates `ds` (no `-p`: `-p` silently ignores `-o` on an existing dataset) after
    /// creating each missing ancestor one by one. A concurrent creator winning the race is
    /// fine for ancestors; for `ds` itself it is reported as `Exists`.
    fn create(&self, ds: &DatasetName, props: &[(String, String)]) -> Result<(), StoreError> {
        let mut missing = Vec::new();
        let mut cur = ds.parent();
        while let Some(p) = cur {
            if self.exists(p.as_str())? {
                break;
            }
            cur = p.parent();
            missing.push(p);
        }
        for p in missing.iter().rev() {
            match run(zfs(["create", p.as_str()])) {
                Ok(_) => {}
                Err(f) if f.kind == Failure::Exists => {}
                Err(f) => return Err(f.into_error(p.as_str(), vol_missing)),
            }
        }
        let mut cmd = zfs(["create"]);
        for (k, v) in props {
            cmd = cmd.arg("-o").arg(format!("{k}={v}"));
        }
        run(cmd.arg(ds.as_str())).map_err(|f| f.into_error(ds.as_str(), vol_missing))?;
        Ok(())
    }

    /// The mountpoint of a mounted filesystem; mounts it once if it is not mounted but could
    /// be. A path to an unmounted dataset would silently point into the parent's directory.
    fn mounted_path(
        &self,
        ds: &str,
        missing: fn(String) -> StoreError,
    ) -> Result<PathBuf, StoreError> {
        let mut mount_error = None;
        for attempt in 0..2 {
            let Some(p) = self.get_props(ds, &["type", "mounted", "mountpoint", "canmount"])?
            else {
                return Err(missing(ds.to_string()));
            };
            if p["type"] != "filesystem" {
                return Err(StoreError::inconsistent(
                    ds,
                    format!("is a {}, not a filesystem", p["type"]),
                ));
            }
            let mp = &p["mountpoint"];
            if !mp.starts_with('/') {
                return Err(StoreError::inconsistent(
                    ds,
                    format!("mountpoint is {mp:?}, not a directory"),
                ));
            }
            if p["mounted"] == "yes" {
                return Ok(PathBuf::from(mp));
            }
            if attempt == 0 && p["canmount"] == "on" {
                // A concurrent mount makes this fail with "already mounted"; the second look
                // decides.
                if let Err(f) = run(zfs(["mount", ds])) {
                    mount_error = Some(f.into_error(ds, missing));
                }
                continue;
            }
            break;
        }
        Err(mount_error.unwrap_or_else(|| StoreError::inconsistent(ds, "not mounted")))
    }

    /// Rows of the batch snapshot listing (one call for all snapshots).
    fn snapshot_rows(&self, ds: &DatasetName) -> Result<Vec<parse::SnapshotRow>, StoreError> {
        let out = run(zfs([
            "list",
            "-H",
            "-p",
            "-o",
            SNAPSHOT_COLUMNS,
            "-t",
            "snapshot",
            "-s",
            "createtxg",
            "-d",
            "1",
            ds.as_str(),
        ]))
        .map_err(|f| f.into_error(ds.as_str(), vol_missing))?;
        parse::parse_snapshot_rows(&out.stdout, ds.as_str()).map_err(|e| parse_err(ds.as_str(), e))
    }

    /// One snapshot's row, `SnapshotMissing` if it does not exist.
    fn snapshot_row(&self, full: &str) -> Result<parse::SnapshotRow, StoreError> {
        let (ds, _) = full.split_once('@').unwrap_or((full, ""));
        let out = run(zfs([
            "list",
            "-H",
            "-p",
            "-o",
            SNAPSHOT_COLUMNS,
            "-t",
            "snapshot",
            full,
        ]))
        .map_err(|f| f.into_error(full, snap_missing))?;
        let mut rows =
            parse::parse_snapshot_rows(&out.stdout, ds).map_err(|e| parse_err(full, e))?;
        match (rows.pop(), rows.is_empty()) {
            (Some(r), true) => Ok(r),
            _ => Err(StoreError::inconsistent(
                full,
                "zfs list returned no single row for the snapshot",
            )),
        }
    }

    fn holds_of(&self, full: &str) -> Result<Vec<String>, StoreError> {
        let out = run(zfs(["holds", "-H", full])).map_err(|f| f.into_error(full, snap_missing))?;
        parse::parse_holds(&out.stdout).map_err(|e| parse_err(full, e))
    }

    /// Forces a txg sync so space accounting (`written`) reflects every completed write.
    fn sync_pool(&self) -> Result<(), StoreError> {
        run(Cmd::new("zpool").args(["sync", self.pool()]))
            .map_err(|f| f.into_error(self.pool(), vol_missing))?;
        Ok(())
    }
}

impl Store for ZfsStore {
    fn backend(&self) -> Backend {
        Backend::Zfs
    }

    fn list_volumes(&self) -> Result<Vec<VolumeName>, StoreError> {
        let root = self.root.as_str();
        let out = match run(zfs([
            "list",
            "-H",
            "-p",
            "-o",
            "name",
            "-t",
            "filesystem",
            "-d",
            "1",
            root,
        ])) {
            Ok(out) => out,
            Err(f) if f.kind == Failure::Missing => return Ok(Vec::new()),
            Err(f) => return Err(f.into_error(root, vol_missing)),
        };
        let prefix = format!("{root}/");
        let mut vols: Vec<VolumeName> = parse::parse_rows(&out.stdout, 1)
            .map_err(|e| parse_err(root, e))?
            .into_iter()
            .filter_map(|r| {
                r[0].strip_prefix(&prefix)
                    .and_then(|n| VolumeName::new(n).ok())
            })
            .collect();
        vols.sort();
        Ok(vols)
    }

    fn ensure_volume(
        &self,
        vol: &VolumeName,
        props: &[(String, String)],
    ) -> Result<PathBuf, StoreError> {
        let ds = self.vol_ds(vol)?;
        for (k, v) in props {
            check_property(k, v)?;
        }
        if !self.exists(ds.as_str())? {
            let mut props = props.to_vec();
            if !props.iter().any(|(k, _)| k == "atime") {
                props.push(("atime".into(), "off".into()));
            }
            match self.create(&ds, &props) {
                Ok(()) => {
                    let keys: Vec<&str> = props.iter().map(|(k, _)| k.as_str()).collect();
                    let got = self
                        .get_props(ds.as_str(), &keys)?
                        .ok_or_else(|| vol_missing(ds.to_string()))?;
                    for (k, v) in &props {
                        if !parse::prop_matches(k, v, &got[k]) {
                            // Just created and still empty: remove it, so a later
                            // ensure_volume does not accept it unverified.
                            if let Err(f) = run(zfs(["destroy", ds.as_str()])) {
                                tracing::warn!(dataset = %ds, err = %f.err, "cannot remove a volume created with wrong properties");
                            }
                            return Err(StoreError::inconsistent(
                                ds.as_str(),
                                format!("property {k} is {:?} after create, wanted {v:?}", got[k]),
                            ));
                        }
                    }
                }
                // Someone else created it meanwhile: it exists, which is what we want.
                Err(StoreError::Exists { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        self.mounted_path(ds.as_str(), vol_missing)
    }

    fn volume_path(&self, vol: &VolumeName) -> Result<PathBuf, StoreError> {
        let ds = self.vol_ds(vol)?;
        self.mounted_path(ds.as_str(), vol_missing)
    }

    fn snapshot(
        &self,
        vol: &VolumeName,
        snap: &SnapshotName,
        meta: &BTreeMap<MetaKey, String>,
    ) -> Result<(), StoreError> {
        let ds = self.vol_ds(vol)?;
        let full = ds.snapshot(snap)?;
        let mut cmd = zfs(["snapshot"]);
        for (k, v) in meta {
            check_meta_value(v)?;
            cmd = cmd.arg("-o").arg(format!("{}={v}", k.zfs_property()));
        }
        match run(cmd.arg(&full)) {
            Ok(_) => Ok(()),
            Err(f) if f.kind == Failure::Missing => Err(vol_missing(ds.to_string())),
            Err(f) => Err(f.into_error(&full, snap_missing)),
        }
    }

    fn list_snapshots(&self, vol: &VolumeName) -> Result<Vec<SnapshotInfo>, StoreError> {
        let ds = self.vol_ds(vol)?;
        let rows = self.snapshot_rows(&ds)?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let out = run(zfs([
            "get",
            "-H",
            "-p",
            "-o",
            "name,property,value",
            "-s",
            "local",
            "-t",
            "snapshot",
            "-d",
            "1",
            "all",
            ds.as_str(),
        ]))
        .map_err(|f| f.into_error(ds.as_str(), vol_missing))?;
        let mut meta = parse::parse_snapshot_user_props(&out.stdout, ds.as_str(), META_PREFIX)
            .map_err(|e| parse_err(ds.as_str(), e))?;
        rows.into_iter()
            .filter_map(|r| {
                // A snapshot someone else made with a name we would not produce is skipped,
                // not fatal: the listing is about ours.
                let name = SnapshotName::new(&r.snapshot).ok()?;
                Some(Ok(SnapshotInfo {
                    meta: meta.remove(&r.snapshot).unwrap_or_default(),
                    name,
                    created: r.creation,
                    referenced: r.referenced,
                    written: r.written,
                    held: r.userrefs > 0,
                }))
            })
            .collect()
    }

    fn changed_since_latest(&self, vol: &VolumeName) -> Result<bool, StoreError> {
        let ds = self.vol_ds(vol)?;
        if !self.exists(ds.as_str())? {
            return Err(vol_missing(ds.to_string()));
        }
        // `written` is space accounting, updated when a txg syncs; without this a write from
        // the last few seconds would not show.
        self.sync_pool()?;
        let out = run(zfs([
            "list",
            "-H",
            "-p",
            "-o",
            parse::WRITTEN_COLUMNS,
            "-t",
            "filesystem,snapshot",
            "-d",
            "1",
            ds.as_str(),
        ]))
        .map_err(|f| f.into_error(ds.as_str(), vol_missing))?;
        let (written, latest) = parse::parse_written_and_latest(&out.stdout, ds.as_str())
            .map_err(|e| parse_err(ds.as_str(), e))?;
        let Some(latest) = latest else {
            return Ok(true);
        };
        // Nothing born since the latest snapshot: certainly unchanged (data and metadata
        // changes both allocate new blocks).
        if written == 0 {
            return Ok(false);
        }
        // `written > 0` is not proof: right after `zfs rollback` to a snapshot that has a
        // predecessor, OpenZFS 2.3.2 reports `written` = the bytes freed between the two
        // snapshots (8192 in our test) although nothing changed (docs/store.md). `zfs diff`
        // lists every changed object, including metadata-only changes, so it decides.
        let snap = SnapshotName::new(&latest)?;
        let full = ds.snapshot(&snap)?;
        let diff =
            run(zfs(["diff", "-H", &full])).map_err(|f| f.into_error(&full, snap_missing))?;
        let changed = !diff.stdout.trim().is_empty();
        if !changed {
            tracing::debug!(dataset = %ds, written, "written > 0 but zfs diff is empty: unchanged");
        }
        Ok(changed)
    }

    fn rollback_to_latest(&self, vol: &VolumeName) -> Result<Option<SnapshotName>, StoreError> {
        let ds = self.vol_ds(vol)?;
        let Some(latest) = self.snapshot_rows(&ds)?.pop() else {
            return Ok(None);
        };
        let snap = SnapshotName::new(&latest.snapshot)?;
        let full = ds.snapshot(&snap)?;
        run(zfs(["rollback", &full])).map_err(|f| f.into_error(&full, snap_missing))?;
        Ok(Some(snap))
    }

    fn snapshot_path(&self, vol: &VolumeName, snap: &SnapshotName) -> Result<PathBuf, StoreError> {
        let ds = self.vol_ds(vol)?;
        let full = ds.snapshot(snap)?;
        self.snapshot_row(&full)?;
        let path = self
            .mounted_path(ds.as_str(), vol_missing)?
            .join(".zfs")
            .join("snapshot")
            .join(snap.as_str());
        // Touching the directory triggers the automount; fail here rather than later.
        std::fs::metadata(&path).map_err(|e| StoreError::io(path.display().to_string(), e))?;
        Ok(path)
    }

    fn clone_snapshot(
        &self,
        vol: &VolumeName,
        snap: &SnapshotName,
        clone: &VolumeName,
    ) -> Result<PathBuf, StoreError> {
        let ds = self.vol_ds(vol)?;
        let full = ds.snapshot(snap)?;
        self.snapshot_row(&full)?;
        let parent = self.clones_ds()?;
        if !self.exists(parent.as_str())? {
            match run(zfs(["create", "-o", "canmount=off", parent.as_str()])) {
                Ok(_) => {}
                Err(f) if f.kind == Failure::Exists => {}
                Err(f) => return Err(f.into_error(parent.as_str(), vol_missing)),
            }
        }
        let target = self.clone_ds(clone)?;
        run(zfs([
            "clone",
            "-o",
            &format!("{CLONE_OF_PROPERTY}={full}"),
            &full,
            target.as_str(),
        ]))
        .map_err(|f| f.into_error(target.as_str(), snap_missing))?;
        self.mounted_path(target.as_str(), vol_missing)
    }

    fn destroy_clone(&self, clone: &VolumeName) -> Result<(), StoreError> {
        let target = self.clone_ds(clone)?;
        let Some(p) = self.get_props(target.as_str(), &["origin"])? else {
            return Err(vol_missing(target.to_string()));
        };
        if p["origin"] == "-" {
            return Err(StoreError::inconsistent(
                target.as_str(),
                "is not a clone; refusing to destroy it",
            ));
        }
        run(zfs(["destroy", target.as_str()]))
            .map_err(|f| f.into_error(target.as_str(), vol_missing))?;
        Ok(())
    }

    fn list_clones(&self) -> Result<Vec<VolumeName>, StoreError> {
        let parent = self.clones_ds()?;
        let out = match run(zfs([
            "list",
            "-H",
            "-p",
            "-o",
            "name,origin",
            "-t",
            "filesystem",
            "-d",
            "1",
            parent.as_str(),
        ])) {
            Ok(out) => out,
            Err(f) if f.kind == Failure::Missing => return Ok(Vec::new()),
            Err(f) => return Err(f.into_error(parent.as_str(), vol_missing)),
        };
        let prefix = format!("{}/", parent.as_str());
        let mut clones: Vec<VolumeName> = parse::parse_name_origin(&out.stdout)
            .map_err(|e| parse_err(parent.as_str(), e))?
            .into_iter()
            .filter(|(_, origin)| origin.is_some())
            .filter_map(|(name, _)| {
                name.strip_prefix(&prefix)
                    .and_then(|n| VolumeName::new(n).ok())
            })
            .collect();
        clones.sort();
        Ok(clones)
    }

    fn destroy_snapshot(&self, vol: &VolumeName, snap: &SnapshotName) -> Result<(), StoreError> {
        let full = self.vol_ds(vol)?.snapshot(snap)?;
        // Pre-checks instead of stderr text (the held message differs between versions).
        let row = self.snapshot_row(&full)?;
        if row.userrefs > 0 {
            return Err(StoreError::Held {
                subject: full.clone(),
                tags: self.holds_of(&full)?,
            });
        }
        if !row.clones.is_empty() {
            return Err(StoreError::Busy {
                subject: full,
                detail: format!("has clones: {}", row.clones.join(", ")),
            });
        }
        run(zfs(["destroy", &full])).map_err(|f| f.into_error(&full, snap_missing))?;
        Ok(())
    }

    fn hold(&self, vol: &VolumeName, snap: &SnapshotName, tag: &str) -> Result<(), StoreError> {
        let tag = HoldTag::new(tag)?;
        let full = self.vol_ds(vol)?.snapshot(snap)?;
        if self.holds_of(&full)?.iter().any(|t| t == tag.as_str()) {
            return Ok(());
        }
        match run(zfs(["hold", tag.as_str(), &full])) {
            Ok(_) => Ok(()),
            Err(f) if f.kind == Failure::TagExists => Ok(()),
            Err(f) => Err(f.into_error(&full, snap_missing)),
        }
    }

    fn release(&self, vol: &VolumeName, snap: &SnapshotName, tag: &str) -> Result<(), StoreError> {
        let tag = HoldTag::new(tag)?;
        let full = self.vol_ds(vol)?.snapshot(snap)?;
        if !self.holds_of(&full)?.iter().any(|t| t == tag.as_str()) {
            return Ok(());
        }
        match run(zfs(["release", tag.as_str(), &full])) {
            Ok(_) => Ok(()),
            Err(f) if f.kind == Failure::NoSuchTag => Ok(()),
            Err(f) => Err(f.into_error(&full, snap_missing)),
        }
    }

    fn holds(&self, vol: &VolumeName, snap: &SnapshotName) -> Result<Vec<String>, StoreError> {
        let full = self.vol_ds(vol)?.snapshot(snap)?;
        self.holds_of(&full)
    }

    fn destroy_volume(&self, vol: &VolumeName, with_snapshots: bool) -> Result<(), StoreError> {
        let ds = self.vol_ds(vol)?;
        let rows = self.snapshot_rows(&ds)?;
        if !rows.is_empty() && !with_snapshots {
            return Err(StoreError::Busy {
                subject: ds.to_string(),
                detail: format!("has {} snapshots", rows.len()),
            });
        }
        for r in &rows {
            let full = format!("{}@{}", ds.as_str(), r.snapshot);
            if r.userrefs > 0 {
                return Err(StoreError::Held {
                    tags: self.holds_of(&full)?,
                    subject: full,
                });
            }
            if !r.clones.is_empty() {
                return Err(StoreError::Busy {
                    subject: full,
                    detail: format!("has clones: {}", r.clones.join(", ")),
                });
            }
        }
        let args: &[&str] = if with_snapshots {
            &["destroy", "-r"]
        } else {
            &["destroy"]
        };
        run(zfs(args.iter().copied().chain([ds.as_str()])))
            .map_err(|f| f.into_error(ds.as_str(), vol_missing))?;
        Ok(())
    }
}
