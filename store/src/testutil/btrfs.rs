//! A throw-away btrfs file system on a loop device.

use std::path::{Path, PathBuf};

use crate::api::Store;
use crate::btrfs::BtrfsStore;
use crate::cmd::Cmd;

/// A sparse image file, formatted with `mkfs.btrfs`, attached with `losetup`, mounted in a
/// temporary directory, with a [`BtrfsStore`] rooted in it. Dropping it (also while a test
/// panics) unmounts the file system, detaches the loop device and removes the image.
#[derive(Debug)]
pub struct TestBtrfs {
    // Fields drop in order: the store first, then the mount.
    store: Box<dyn Store>,
    mount: LoopMount,
}

/// The mounted loop device; its Drop undoes the mount and the attachment.
#[derive(Debug)]
struct LoopMount {
    mountpoint: PathBuf,
    loopdev: String,
    // Dropped after `drop` ran: removes the image file and the mountpoint directory.
    _dir: tempfile::TempDir,
}

impl TestBtrfs {
    /// A 512 MiB file system.
    pub fn new() -> Result<TestBtrfs, String> {
        TestBtrfs::with_size(512 << 20)
    }

    /// A file system of `bytes` (sparse; btrfs needs at least ~114 MiB).
    pub fn with_size(bytes: u64) -> Result<TestBtrfs, String> {
        if !nix::unistd::geteuid().is_root() {
            return Err("needs root for losetup and mount".into());
        }
        if !Cmd::new("mkfs.btrfs")
            .arg("--version")
            .status_ok()
            .unwrap_or(false)
        {
            return Err("mkfs.btrfs not found (install btrfs-progs: scripts/install-deps)".into());
        }
        let dir = tempfile::Builder::new()
            .prefix("vzsnap-btrfs-")
            .tempdir()
            .map_err(|e| format!("tempdir: {e}"))?;
        let image = dir.path().join("fs.img");
        let mountpoint = dir.path().join("mnt");
        std::fs::create_dir(&mountpoint).map_err(|e| format!("{}: {e}", mountpoint.display()))?;
        std::fs::File::create(&image)
            .and_then(|f| f.set_len(bytes))
            .map_err(|e| format!("{}: {e}", image.display()))?;
        Cmd::new("mkfs.btrfs")
            .arg("-q")
            .arg(&image)
            .run()
            .map_err(|e| e.to_string())?;
        let loopdev = Cmd::new("losetup")
            .args(["--find", "--show"])
            .arg(&image)
            .run()
            .map_err(|e| e.to_string())?
            .stdout
            .trim()
            .to_string();
        if let Err(e) = Cmd::new("mount")
            .args(["-t", "btrfs", &loopdev])
            .arg(&mountpoint)
            .run()
        {
            let _ = Cmd::new("losetup").args(["-d", &loopdev]).run();
            return Err(e.to_string());
        }
        // From here on LoopMount's Drop cleans up, also on the error paths below.
        let mount = LoopMount {
            mountpoint,
            loopdev,
            _dir: dir,
        };
        let root = mount.mountpoint.join("store");
        std::fs::create_dir(&root).map_err(|e| format!("{}: {e}", root.display()))?;
        let store = Box::new(BtrfsStore::open(&root).map_err(|e| e.to_string())?);
        Ok(TestBtrfs { store, mount })
    }

    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// Where the whole file system is mounted (the store root is `<mountpoint>/store`).
    pub fn mountpoint(&self) -> &Path {
        &self.mount.mountpoint
    }

    /// The loop device, e.g. `/dev/loop3`.
    pub fn loop_device(&self) -> &str {
        &self.mount.loopdev
    }
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        // A test that panicked (or leaked) may still use files inside: loop devices backed by
        // images in a clone, mounts of those. Release them first, or the unmount below fails
        // and the whole file system stays pinned.
        release_loops_inside(&self.mountpoint);
        // A test may still have a file open for a moment; retry, then detach lazily so the loop
        // device is freed (it is set to auto-clear) when the last user goes away.
        let mut unmounted = false;
        for _ in 0..5 {
            if Cmd::new("umount")
                .arg(&self.mountpoint)
                .status_ok()
                .unwrap_or(false)
            {
                unmounted = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        if !unmounted {
            let _ = Cmd::new("umount").arg("-l").arg(&self.mountpoint).run();
        }
        if let Err(e) = Cmd::new("losetup").args(["-d", &self.loopdev]).run() {
            eprintln!("TestBtrfs: cannot detach {}: {e}", self.loopdev);
        }
    }
}

/// Unmounts whatever is mounted from, and detaches, every loop device whose backing file lies
/// below `dir`.
fn release_loops_inside(dir: &Path) {
    let Ok(out) = Cmd::new("losetup")
        .args([
            "--list",
            "--noheadings",
            "--raw",
            "--output",
            "NAME,BACK-FILE",
        ])
        .run()
    else {
        return;
    };
    let prefix = format!("{}/", dir.display());
    for line in out.stdout.lines() {
        let Some((dev, file)) = line.split_once(' ') else {
            continue;
        };
        if !file.starts_with(&prefix) {
            continue;
        }
        if let Ok(mounts) = Cmd::new("findmnt")
            .args(["-rn", "-o", "TARGET", "-S", dev])
            .run()
        {
            for target in mounts.stdout.lines() {
                let _ = Cmd::new("umount").args(["-l", target]).run();
            }
        }
        eprintln!("TestBtrfs: detaching {dev} left attached to {file}");
        let _ = Cmd::new("losetup").args(["-d", dev]).run();
    }
}
