//! The record of one `vzsnap mount`, written atomically *before* each step, so that whatever
//! happens (crash, kill, reboot) `vzsnap umount` knows every piece that may exist and removes
//! what is left, idempotently.
//!
//! One JSON file per mount in the state directory (`/run/vzsnap/state` by default), named
//! after the mount's id, which is also the name of its clone. A `/run` state directory is gone
//! after a reboot, and so are the loop devices and mounts; the clone survives and is found by
//! its name prefix ([`CLONE_PREFIX`]): because the state file is written before the clone is
//! created, a prefixed clone without a state file is never one a running mount is building.

use std::fs::File;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use store::VolumeName;

use super::report::MountReport;
use crate::error::{RestoreError, io_err};

/// Format of the state files this code writes and reads.
pub const STATE_FORMAT: u32 = 1;
/// Every clone `vzsnap mount` makes is named `mount-<VMID>-<snapshot>-<8 hex>`.
pub const CLONE_PREFIX: &str = "mount-";

/// A loop device vzsnap attached (or was about to: `device` is `None` until losetup returned).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct LoopRecord {
    pub image: PathBuf,
    pub offset: u64,
    pub size: u64,
    pub device: Option<String>,
}

/// A mount vzsnap made (or was about to make).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct MountRecord {
    pub target: PathBuf,
    pub source: String,
    pub fstype: String,
}

/// Everything one mount did or started to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct MountState {
    pub format: u32,
    /// `mount-<VMID>-<snapshot>-<8 hex>`; the clone's name and the state file's stem.
    pub id: String,
    /// The store spec (`zfs:tank/vzsnap`) the clone lives in, as the CLI was configured.
    pub store: Option<String>,
    pub vmid: u32,
    pub snapshot: String,
    /// `--disk`, if given.
    pub disk: Option<String>,
    pub mountpoint: PathBuf,
    /// Set once the clone exists.
    pub clone_path: Option<PathBuf>,
    /// Directories vzsnap created (removed on umount if empty), in creation order.
    pub created_dirs: Vec<PathBuf>,
    pub loops: Vec<LoopRecord>,
    pub mounts: Vec<MountRecord>,
    /// Epoch seconds.
    pub created: i64,
    /// Every step finished.
    pub complete: bool,
    /// What was found and mounted, once complete.
    pub report: Option<MountReport>,
}

impl MountState {
    /// The clone's name.
    pub fn clone_name(&self) -> Result<VolumeName, RestoreError> {
        VolumeName::new(self.id.clone()).map_err(|e| RestoreError::Refused {
            what: format!("state {}", self.id),
            reason: e.to_string(),
        })
    }

    /// Checks a loaded state only points where vzsnap itself would have put things, so a
    /// damaged or planted file cannot make umount touch anything else.
    pub fn validate(&self) -> Result<(), RestoreError> {
        let bad = |reason: String| {
            Err(RestoreError::Refused {
                what: format!("mount state {:?}", self.id),
                reason,
            })
        };
        if self.format != STATE_FORMAT {
            return bad(format!("format {} is not {STATE_FORMAT}", self.format));
        }
        self.clone_name()?;
        if !self.id.starts_with(CLONE_PREFIX) {
            return bad(format!("id does not start with {CLONE_PREFIX}"));
        }
        if !self.mountpoint.is_absolute() || self.mountpoint.parent().is_none() {
            return bad(format!(
                "mountpoint {} is not an absolute path below /",
                self.mountpoint.display()
            ));
        }
        let inside = |p: &Path| {
            p.starts_with(&self.mountpoint)
                && !p.components().any(|c| c == std::path::Component::ParentDir)
        };
        if let Some(d) = self.created_dirs.iter().find(|d| !inside(d)) {
            return bad(format!(
                "created directory {} is outside the mountpoint",
                d.display()
            ));
        }
        if let Some(m) = self.mounts.iter().find(|m| !inside(&m.target)) {
            return bad(format!(
                "mount target {} is outside the mountpoint",
                m.target.display()
            ));
        }
        for l in &self.loops {
            let in_clone = self
                .clone_path
                .as_ref()
                .is_some_and(|c| l.image.starts_with(c));
            if !in_clone {
                return bad(format!(
                    "loop image {} is not inside the clone",
                    l.image.display()
                ));
            }
            if let Some(d) = &l.device
                && !super::loopdev::is_loop_device_path(d)
            {
                return bad(format!("{d:?} is not a loop device"));
            }
        }
        Ok(())
    }
}

/// The directory holding the state files.
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
}

/// Holds the state directory's lock (released on drop).
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

impl StateDir {
    pub fn new(dir: impl Into<PathBuf>) -> StateDir {
        StateDir { dir: dir.into() }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Creates the directory (mode 0700: it names clones and mountpoints) if needed.
    pub fn ensure(&self) -> Result<(), RestoreError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(io_err(&self.dir))
    }

    /// Serialises mount and umount runs (an exclusive lock on `<dir>/.lock`, waiting).
    pub fn lock(&self) -> Result<StateLock, RestoreError> {
        self.ensure()?;
        let path = self.dir.join(".lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        file.lock().map_err(io_err(&path))?;
        Ok(StateLock { _file: file })
    }

    pub fn file_of(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Writes the state atomically (temp file, fsync, rename, fsync dir).
    pub fn save(&self, s: &MountState) -> Result<(), RestoreError> {
        let path = self.file_of(&s.id);
        let mut json = serde_json::to_vec_pretty(s).map_err(|e| io_err(&path)(e.into()))?;
        json.push(b'\n');
        store::write_file_atomic(&path, &json).map_err(io_err(&path))
    }

    pub fn remove(&self, id: &str) -> Result<(), RestoreError> {
        let path = self.file_of(id);
        match std::fs::remove_file(&path) {
            Ok(()) => store::sync_dir(&self.dir).map_err(io_err(&self.dir)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Every state file, sorted by id; unreadable or invalid ones as errors (naming the file).
    pub fn load_all(&self) -> Result<Vec<Result<MountState, RestoreError>>, RestoreError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&self.dir)(e)),
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                p.extension().is_some_and(|x| x == "json")
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        paths.sort();
        Ok(paths.into_iter().map(|p| Self::load(&p)).collect())
    }

    fn load(path: &Path) -> Result<MountState, RestoreError> {
        let bytes = std::fs::read(path).map_err(io_err(path))?;
        let s: MountState = serde_json::from_slice(&bytes).map_err(|e| RestoreError::Refused {
            what: path.display().to_string(),
            reason: format!("not a vzsnap mount state: {e}"),
        })?;
        if path
            .file_stem()
            .is_none_or(|stem| stem.to_string_lossy() != s.id)
        {
            return Err(RestoreError::Refused {
                what: path.display().to_string(),
                reason: format!("file name does not match id {:?}", s.id),
            });
        }
        s.validate()?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> MountState {
        MountState {
            format: STATE_FORMAT,
            id: "mount-100-2026_11_01-02_00_03-0badcafe".into(),
            store: Some("zfs:tank/vzsnap".into()),
            vmid: 100,
            snapshot: "2026_11_01-02_00_03".into(),
            disk: None,
            mountpoint: "/run/vzsnap/mounts/100-2026_11_01-02_00_03".into(),
            clone_path: Some("/tank/vzsnap/.clones/mount-100".into()),
            created_dirs: vec!["/run/vzsnap/mounts/100-2026_11_01-02_00_03".into()],
            loops: vec![LoopRecord {
                image: "/tank/vzsnap/.clones/mount-100/disk-drive-scsi0.raw".into(),
                offset: 1 << 20,
                size: 8 << 20,
                device: Some("/dev/loop3".into()),
            }],
            mounts: vec![MountRecord {
                target: "/run/vzsnap/mounts/100-2026_11_01-02_00_03/drive-scsi0/part1".into(),
                source: "/dev/loop3".into(),
                fstype: "ext4".into(),
            }],
            created: 0,
            complete: true,
            report: None,
        }
    }

    #[test]
    fn round_trip_and_listing() {
        let dir = tempfile::tempdir().unwrap();
        let sd = StateDir::new(dir.path().join("state"));
        let _lock = sd.lock().unwrap();
        let s = sample();
        sd.save(&s).unwrap();
        std::fs::write(sd.path().join("junk.json"), b"{}").unwrap();
        let all = sd.load_all().unwrap();
        assert_eq!(all.len(), 2);
        let (good, bad): (Vec<_>, Vec<_>) = all.into_iter().partition(Result::is_ok);
        assert_eq!(good.into_iter().next().unwrap().unwrap(), s);
        assert!(
            bad[0]
                .as_ref()
                .unwrap_err()
                .to_string()
                .contains("junk.json")
        );
        sd.remove(&s.id).unwrap();
        sd.remove(&s.id).unwrap();
        assert_eq!(sd.load_all().unwrap().len(), 1);
    }

    #[test]
    fn validation_keeps_umount_inside_its_own_paths() {
        assert!(sample().validate().is_ok());
        let mut s = sample();
        s.created_dirs.push("/etc".into());
        assert!(s.validate().is_err());
        let mut s = sample();
        s.mounts[0].target = "/run/vzsnap/mounts/100-2026_11_01-02_00_03/../../../etc".into();
        assert!(s.validate().is_err());
        let mut s = sample();
        s.loops[0].image = "/etc/shadow".into();
        assert!(s.validate().is_err());
        let mut s = sample();
        s.loops[0].device = Some("/dev/sda".into());
        assert!(s.validate().is_err());
        let mut s = sample();
        s.id = "100".into();
        assert!(s.validate().is_err());
        let mut s = sample();
        s.mountpoint = "/".into();
        assert!(s.validate().is_err());
    }
}
