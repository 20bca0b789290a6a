//! Writing files into a dump directory so that PVE never sees a partial one and nothing that
//! exists is overwritten.
//!
//! Each file is written under a temporary name PVE's regex never lists (vzdump's own `.dat`
//! for the archive, a dot-prefixed name for the companions), created with `O_EXCL`, fsynced,
//! then moved to its final name with a no-replace rename (`renameat2(RENAME_NOREPLACE)`, or
//! `link` + `unlink` where the file system lacks it, e.g. NFS) — so an existing file is never
//! replaced, even one that appeared while we were writing. Until [`Outputs::commit`] succeeds,
//! dropping [`Outputs`] removes every temporary and every file it already moved into place.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};

use crate::error::{RestoreError, io_err};

/// One file being written: its temporary and final path.
#[derive(Debug)]
struct Pending {
    temp: PathBuf,
    target: PathBuf,
    /// Moved into place already (so a failure later must remove `target`).
    placed: bool,
}

/// The set of files one restore writes.
#[derive(Debug, Default)]
pub struct Outputs {
    files: Vec<Pending>,
    committed: bool,
}

/// Fails with [`RestoreError::Exists`] if `path` exists (as anything, even a dangling link).
pub fn ensure_absent(path: &Path) -> Result<(), RestoreError> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Err(RestoreError::Exists {
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(path)(e)),
    }
}

impl Outputs {
    /// Creates `temp` exclusively (mode 0644 minus umask, like vzdump's files) for a file that
    /// will become `target`. Both must not exist.
    pub fn create(&mut self, temp: PathBuf, target: PathBuf) -> Result<File, RestoreError> {
        ensure_absent(&target)?;
        let file = OpenOptions::new().write(true).create_new(true).mode(0o644).open(&temp).map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                RestoreError::Refused {
                    what: temp.display().to_string(),
                    reason: "a temporary file of that name exists: another restore or a vzdump run is writing it, \
                             or one was interrupted (remove it if nothing is running)"
                        .into(),
                }
            } else {
                io_err(&temp)(e)
            }
        })?;
        self.files.push(Pending {
            temp,
            target,
            placed: false,
        });
        Ok(file)
    }

    /// Sets the modification time of every file to `max(now, not_before)` and syncs it;
    /// call before [`Outputs::commit`].
    ///
    /// Why: with `delete_input`, `vzsnap ingest` deletes an input only if it was modified
    /// before its snapshot was created (docs/ingest.md); a restored archive carries the
    /// original's name and uuid, so its time is what tells them apart. An explicit time is
    /// stored as given — also on NFS, whose server would otherwise stamp its own clock, which
    /// may lag — and `not_before` covers a restore in the very second of the snapshot.
    pub fn stamp_not_before(&self, not_before: SystemTime) -> Result<(), RestoreError> {
        let t = SystemTime::now().max(not_before);
        for p in &self.files {
            let f = OpenOptions::new()
                .write(true)
                .open(&p.temp)
                .map_err(io_err(&p.temp))?;
            f.set_modified(t)
                .and_then(|()| f.sync_all())
                .map_err(io_err(&p.temp))?;
        }
        Ok(())
    }

    /// Moves every temporary to its final name in the order created, the last one last (the
    /// archive goes last, so its appearance means the companions are there). Then fsyncs the
    /// directories. On error every file already moved is removed again.
    pub fn commit(mut self) -> Result<Vec<PathBuf>, RestoreError> {
        for i in 0..self.files.len() {
            let p = &self.files[i];
            place(&p.temp, &p.target)?;
            self.files[i].placed = true;
        }
        let mut dirs: Vec<&Path> = self
            .files
            .iter()
            .filter_map(|p| p.target.parent())
            .collect();
        dirs.dedup();
        for d in dirs {
            store::sync_dir(d).map_err(io_err(d))?;
        }
        self.committed = true;
        Ok(self.files.iter().map(|p| p.target.clone()).collect())
    }
}

impl Drop for Outputs {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        for p in &self.files {
            let path = if p.placed { &p.target } else { &p.temp };
            if let Err(e) = std::fs::remove_file(path)
                && e.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!("cannot remove {}: {e}", path.display());
            }
        }
    }
}

/// Renames `temp` to `target` unless `target` exists.
fn place(temp: &Path, target: &Path) -> Result<(), RestoreError> {
    match renameat2(
        AT_FDCWD,
        temp,
        AT_FDCWD,
        target,
        RenameFlags::RENAME_NOREPLACE,
    ) {
        Ok(()) => Ok(()),
        Err(Errno::EEXIST) => Err(RestoreError::Exists {
            path: target.to_path_buf(),
        }),
        // No RENAME_NOREPLACE on this file system (NFS, older ones): a hard link fails with
        // EEXIST just the same, and atomically.
        Err(Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) => {
            match std::fs::hard_link(temp, target) {
                Ok(()) => std::fs::remove_file(temp).map_err(io_err(temp)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(RestoreError::Exists {
                    path: target.to_path_buf(),
                }),
                Err(e) => Err(io_err(target)(e)),
            }
        }
        Err(e) => Err(io_err(target)(e.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn commit_places_all_and_drop_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut out = Outputs::default();
        out.create(d.join(".a.tmp"), d.join("a"))
            .unwrap()
            .write_all(b"A")
            .unwrap();
        out.create(d.join("b.dat"), d.join("b"))
            .unwrap()
            .write_all(b"B")
            .unwrap();
        let placed = out.commit().unwrap();
        assert_eq!(placed, vec![d.join("a"), d.join("b")]);
        assert_eq!(std::fs::read(d.join("b")).unwrap(), b"B");
        assert!(!d.join("b.dat").exists() && !d.join(".a.tmp").exists());

        // Dropping uncommitted: temporaries vanish.
        let mut out = Outputs::default();
        out.create(d.join(".c.tmp"), d.join("c")).unwrap();
        drop(out);
        assert_eq!(std::fs::read_dir(d).unwrap().count(), 2);
    }

    #[test]
    fn never_overwrites_and_rolls_back_placed_files() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("exists"), b"keep").unwrap();
        let mut out = Outputs::default();
        assert!(matches!(
            out.create(d.join("x.dat"), d.join("exists")),
            Err(RestoreError::Exists { .. })
        ));
        // A target that appears while writing: the rename refuses, the first file is undone.
        let mut out2 = Outputs::default();
        out2.create(d.join(".log.tmp"), d.join("log")).unwrap();
        out2.create(d.join("late.dat"), d.join("late")).unwrap();
        std::fs::write(d.join("late"), b"someone else").unwrap();
        let err = out2.commit().unwrap_err();
        assert!(matches!(err, RestoreError::Exists { .. }), "{err}");
        assert!(
            !d.join("log").exists() && !d.join(".log.tmp").exists() && !d.join("late.dat").exists()
        );
        assert_eq!(std::fs::read(d.join("late")).unwrap(), b"someone else");
        assert_eq!(std::fs::read(d.join("exists")).unwrap(), b"keep");
        drop(out);
        // A leftover temporary is refused with a hint, not clobbered.
        std::fs::write(d.join("busy.dat"), b"").unwrap();
        let err = Outputs::default()
            .create(d.join("busy.dat"), d.join("busy"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("another restore or a vzdump run"), "{err}");
    }

    #[test]
    fn stamps_every_file_not_before_the_given_time() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let mut out = Outputs::default();
        out.create(d.join(".log.tmp"), d.join("log")).unwrap();
        out.create(d.join("a.dat"), d.join("a")).unwrap();
        let future = SystemTime::now() + std::time::Duration::from_secs(3600);
        out.stamp_not_before(future).unwrap();
        out.commit().unwrap();
        for f in ["log", "a"] {
            let m = std::fs::metadata(d.join(f)).unwrap().modified().unwrap();
            assert_eq!(m, future, "{f}");
        }
        // A time in the past never moves a file back: it gets the current time.
        let mut out = Outputs::default();
        out.create(d.join("b.dat"), d.join("b")).unwrap();
        let before = SystemTime::now();
        out.stamp_not_before(SystemTime::UNIX_EPOCH).unwrap();
        out.commit().unwrap();
        assert!(std::fs::metadata(d.join("b")).unwrap().modified().unwrap() >= before);
    }
}
