//! Choosing and checking a mountpoint: an absolute path whose parent exists (symlinks in the
//! parent resolved), which is either absent (vzsnap creates it, mode 0700) or an empty real
//! directory that is not already a mount point. Nothing is ever mounted over something.

use std::io;
use std::path::{Component, Path, PathBuf};

use super::mountinfo::{MountEntry, is_mount_point};
use crate::error::RestoreError;

fn refuse(path: &Path, reason: impl Into<String>) -> RestoreError {
    RestoreError::Refused {
        what: format!("mountpoint {}", path.display()),
        reason: reason.into(),
    }
}

/// Resolves `requested` (relative to the working directory if relative) and checks it.
/// Returns the path to use and whether it must be created.
pub fn check_mountpoint(
    requested: &Path,
    mounts: &[MountEntry],
) -> Result<(PathBuf, bool), RestoreError> {
    let abs = if requested.is_absolute() {
        requested.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| refuse(requested, e.to_string()))?
            .join(requested)
    };
    if abs.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err(refuse(&abs, "must not contain `..`"));
    }
    let (Some(parent), Some(name)) = (abs.parent(), abs.file_name()) else {
        return Err(refuse(&abs, "must name a directory below /"));
    };
    let parent = parent
        .canonicalize()
        .map_err(|e| refuse(&abs, format!("parent directory: {e}")))?;
    let target = parent.join(name);
    match std::fs::symlink_metadata(&target) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok((target, true)),
        Err(e) => Err(refuse(&target, e.to_string())),
        Ok(m) if m.file_type().is_symlink() => Err(refuse(&target, "is a symbolic link")),
        Ok(m) if !m.is_dir() => Err(refuse(&target, "exists and is not a directory")),
        Ok(_) => {
            if is_mount_point(mounts, &target) {
                return Err(refuse(&target, "is already a mount point"));
            }
            let mut entries =
                std::fs::read_dir(&target).map_err(|e| refuse(&target, e.to_string()))?;
            if entries.next().is_some() {
                return Err(refuse(&target, "is not empty"));
            }
            Ok((target, false))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mount::mountinfo::parse_mountinfo;

    #[test]
    fn accepts_absent_or_empty_and_refuses_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().canonicalize().unwrap();
        let none = [];
        assert_eq!(
            check_mountpoint(&d.join("new"), &none).unwrap(),
            (d.join("new"), true)
        );
        std::fs::create_dir(d.join("empty")).unwrap();
        assert_eq!(
            check_mountpoint(&d.join("empty"), &none).unwrap(),
            (d.join("empty"), false)
        );
        std::fs::create_dir(d.join("full")).unwrap();
        std::fs::write(d.join("full/x"), b"").unwrap();
        assert!(
            check_mountpoint(&d.join("full"), &none)
                .unwrap_err()
                .to_string()
                .contains("is not empty")
        );
        std::fs::write(d.join("file"), b"").unwrap();
        assert!(
            check_mountpoint(&d.join("file"), &none)
                .unwrap_err()
                .to_string()
                .contains("not a directory")
        );
        std::os::unix::fs::symlink(d.join("empty"), d.join("link")).unwrap();
        assert!(
            check_mountpoint(&d.join("link"), &none)
                .unwrap_err()
                .to_string()
                .contains("symbolic link")
        );
        assert!(
            check_mountpoint(&d.join("nope/deeper"), &none)
                .unwrap_err()
                .to_string()
                .contains("parent directory")
        );
        assert!(check_mountpoint(&d.join("empty/../full"), &none).is_err());
        assert!(check_mountpoint(Path::new("/"), &none).is_err());
        // Symlinks in the parent are resolved.
        std::os::unix::fs::symlink(&d, d.join("up")).unwrap();
        assert_eq!(
            check_mountpoint(&d.join("up/new2"), &none).unwrap().0,
            d.join("new2")
        );
        // An empty directory that is a mount point.
        let info = format!(
            "1 0 7:1 / {} ro - ext4 /dev/loop1 ro\n",
            d.join("empty").display()
        );
        let mounts = parse_mountinfo(&info);
        assert!(
            check_mountpoint(&d.join("empty"), &mounts)
                .unwrap_err()
                .to_string()
                .contains("already a mount point")
        );
    }
}
