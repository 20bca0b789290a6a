//! Volumes, snapshots and clones behind one trait, on real OpenZFS (via the `zfs` CLI) and on
//! btrfs (btrfs-progs plus plain files).
//!
//! - [`cmd`]: the one runner for every external program (also used by ingest and restore).
//! - [`names`]: validated names; nothing unvalidated reaches a command line or a path.
//! - [`Store`]: the trait; [`open`] picks the backend from `zfs:<dataset>` / `btrfs:<path>`.
//! - [`layout`]: what is inside a per-VM volume (file names, the manifest).
//! - `testutil` (feature `testutil`): throw-away real backends and a fake for unit tests.
//!
//! On-disk layout and design notes: docs/store.md.

pub mod api;
mod atomic;
pub mod btrfs;
pub mod cmd;
pub mod error;
pub mod layout;
pub mod names;
#[cfg(any(test, feature = "testutil"))]
pub mod testutil;
pub mod zfs;

pub use api::{Backend, SnapshotInfo, Store};
pub use atomic::{sync_dir, write_file_atomic};
pub use error::StoreError;
pub use names::{DatasetName, HoldTag, MetaKey, NameError, SnapshotName, VolumeName};

/// Opens a store from a config string: `zfs:<dataset>` (e.g. `zfs:tank/vzsnap`) or
/// `btrfs:<absolute path>` (a directory on a mounted btrfs file system).
///
/// ZFS: the root dataset is created (parents one by one) on the first `ensure_volume`, so a
/// fresh pool works; the pool itself must exist. btrfs: the directory must exist; an
/// interrupted rollback of any volume is finished or undone here.
pub fn open(spec: &str) -> Result<Box<dyn Store>, StoreError> {
    let bad = |reason: &str| StoreError::Spec {
        spec: spec.to_string(),
        reason: reason.to_string(),
    };
    if let Some(ds) = spec.strip_prefix("zfs:") {
        let root = DatasetName::new(ds)?;
        Ok(Box::new(zfs::ZfsStore::open(root)?))
    } else if let Some(path) = spec.strip_prefix("btrfs:") {
        let path = std::path::Path::new(path);
        if !path.is_absolute() {
            return Err(bad("the btrfs path must be absolute"));
        }
        Ok(Box::new(btrfs::BtrfsStore::open(path)?))
    } else {
        Err(bad("expected zfs:<dataset> or btrfs:<absolute path>"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_rejects_bad_specs_before_running_anything() {
        let before = cmd::runs_on_this_thread();
        for spec in [
            "",
            "tank/vzsnap",
            "zfs:",
            "zfs:-o",
            "zfs:tank/a b",
            "zfs:tank@x",
            "btrfs:relative/x",
            "lvm:/x",
        ] {
            assert!(open(spec).is_err(), "{spec}");
        }
        assert_eq!(cmd::runs_on_this_thread(), before);
    }
}
