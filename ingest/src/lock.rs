//! The single-instance lock of `vzsnap ingest`.
//!
//! An `flock` on a file on a **local** file system (default `/run/vzsnap/ingest.lock`; never
//! the NFS dump directory, where flock semantics vary), like vzdump's own
//! `/var/run/vzdump.lock`. The holder writes its pid into the file so a second run can say
//! who holds it. The kernel drops the lock when the holder exits, also on a crash, so there is
//! no stale-lock cleanup.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error("locked by another vzsnap ingest{} (lock file {path})", pid.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    Busy { path: PathBuf, pid: Option<u32> },
    #[error("lock file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Held until dropped (or the process ends).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
    path: PathBuf,
}

impl RunLock {
    /// Takes the lock at `path` (creating the file and its directory). With `wait` it blocks
    /// until the holder is done; without, a held lock is [`LockError::Busy`].
    pub fn acquire(path: &Path, wait: bool) -> Result<RunLock, LockError> {
        let io = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let pid = read_pid(&mut file);
                if !wait {
                    return Err(LockError::Busy {
                        path: path.to_path_buf(),
                        pid,
                    });
                }
                tracing::info!(
                    "waiting for the vzsnap ingest{} holding {}",
                    pid.map(|p| format!(" (pid {p})")).unwrap_or_default(),
                    path.display()
                );
                file.lock().map_err(io)?;
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        Ok(RunLock {
            _file: file,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn read_pid(f: &mut File) -> Option<u32> {
    let mut s = String::new();
    f.seek(SeekFrom::Start(0)).ok()?;
    f.take(32).read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_busy_with_pid_and_free_after_drop() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("sub/ingest.lock");
        let l = RunLock::acquire(&p, false).unwrap();
        assert_eq!(l.path(), p);
        // flock locks belong to the open file description: a second open conflicts even in
        // the same process.
        match RunLock::acquire(&p, false) {
            Err(LockError::Busy { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            other => panic!("{other:?}"),
        }
        let msg = RunLock::acquire(&p, false).unwrap_err().to_string();
        assert!(
            msg.starts_with(&format!(
                "locked by another vzsnap ingest (pid {})",
                std::process::id()
            )),
            "{msg}"
        );
        drop(l);
        RunLock::acquire(&p, false).unwrap();
    }

    #[test]
    fn wait_blocks_until_released() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("ingest.lock");
        let l = RunLock::acquire(&p, false).unwrap();
        let p2 = p.clone();
        let t = std::thread::spawn(move || RunLock::acquire(&p2, true).map(|_| ()));
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(!t.is_finished());
        drop(l);
        t.join().unwrap().unwrap();
    }
}
