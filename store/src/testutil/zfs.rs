//! A throw-away child dataset of a real pool.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::api::Store;
use crate::cmd::Cmd;
use crate::names::DatasetName;
use crate::zfs::ZfsStore;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// `<pool>/t-<pid>-<n>`, created fresh (pool from `VZSNAP_ZFS_POOL`) and used as a
/// [`ZfsStore`] root. Dropping it releases every hold below it and destroys it recursively
/// (including clones), also while a test panics.
#[derive(Debug)]
pub struct TestZfs {
    store: Box<dyn Store>,
    root: DatasetName,
}

impl TestZfs {
    pub fn new() -> Result<TestZfs, String> {
        let pool = std::env::var(super::ZFS_POOL)
            .map_err(|_| format!("{} is not set", super::ZFS_POOL))?;
        if !std::path::Path::new("/dev/zfs").exists() {
            return Err(
                "/dev/zfs does not exist (no ZFS kernel module; see scripts/test-zfs)".into(),
            );
        }
        let pool = DatasetName::new(pool).map_err(|e| e.to_string())?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let root = pool
            .child(&format!("t-{}-{n}", std::process::id()))
            .map_err(|e| e.to_string())?;
        Cmd::new("zfs")
            .args(["create", root.as_str()])
            .run()
            .map_err(|e| e.to_string())?;
        let store = ZfsStore::open(root.clone()).map_err(|e| e.to_string());
        match store {
            Ok(s) => Ok(TestZfs {
                store: Box::new(s),
                root,
            }),
            Err(e) => {
                destroy_tree(&root);
                Err(e)
            }
        }
    }

    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// The store's root dataset.
    pub fn root(&self) -> &DatasetName {
        &self.root
    }
}

/// Releases all holds below `root`, then `zfs destroy -r -R -f` it. `-R` is safe here: every
/// clone of a snapshot below a test root lives below that root too.
fn destroy_tree(root: &DatasetName) {
    if let Ok(out) = Cmd::new("zfs")
        .args([
            "list",
            "-H",
            "-p",
            "-o",
            "name,userrefs",
            "-t",
            "snapshot",
            "-r",
            root.as_str(),
        ])
        .run()
    {
        for line in out.stdout.lines() {
            let Some((snap, refs)) = line.split_once('\t') else {
                continue;
            };
            if refs == "0" {
                continue;
            }
            if let Ok(h) = Cmd::new("zfs").args(["holds", "-H", snap]).run() {
                for tag in h.stdout.lines().filter_map(|l| l.split('\t').nth(1)) {
                    let _ = Cmd::new("zfs").args(["release", tag, snap]).run();
                }
            }
        }
    }
    if let Err(e) = Cmd::new("zfs")
        .args(["destroy", "-r", "-R", "-f", root.as_str()])
        .run()
    {
        eprintln!("TestZfs: cannot destroy {root}: {e}");
    }
}

impl Drop for TestZfs {
    fn drop(&mut self) {
        destroy_tree(&self.root);
    }
}
