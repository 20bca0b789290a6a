//! Change detection for btrfs by comparing inode metadata of the live volume with the newest
//! snapshot.
//!
//! Why not generation numbers (`btrfs subvolume show` "Generation" vs the snapshot's "Gen at
//! creation"): reading a file on a `relatime` mount (the default) updates its atime once after
//! every write, which bumps the subvolume generation; observed here, it made a volume look
//! changed after merely reading it. Instead: every change to a file's data or metadata sets its
//! ctime to the current time (userspace cannot set ctime), a read only touches atime, and a
//! snapshot (and a writable snapshot of a snapshot) keeps inode numbers and times. So the live
//! tree differs from the snapshot's iff some path's (type, inode, mode, owner, links, size,
//! mtime, ctime) differs or a path was added or removed.
//!
//! One exception: renaming a subvolume updates its root directory's ctime, and a rollback
//! renames the new subvolume into place; so the root directory's ctime is not compared (its
//! mode, owner and mtime are; an xattr change on the root directory alone would be missed).

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What is compared per path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InodeSig {
    pub kind: u32,
    pub ino: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u64,
    pub size: u64,
    pub mtime: (i64, i64),
    /// `None` for the root directory (see the module docs).
    pub ctime: Option<(i64, i64)>,
}

/// Relative path (`""` for the root) → signature, for the tree below `root` on the same
/// device (nested subvolumes and mounts are not descended into).
pub type TreeSig = BTreeMap<PathBuf, InodeSig>;

fn sig(md: &std::fs::Metadata, is_root: bool) -> InodeSig {
    InodeSig {
        kind: md.mode() & libc::S_IFMT,
        ino: md.ino(),
        mode: md.mode() & !libc::S_IFMT,
        uid: md.uid(),
        gid: md.gid(),
        nlink: md.nlink(),
        size: if md.is_dir() { 0 } else { md.size() },
        mtime: (md.mtime(), md.mtime_nsec()),
        ctime: (!is_root).then(|| (md.ctime(), md.ctime_nsec())),
    }
}

/// Walks `root` and collects every path's signature.
pub fn tree_signature(root: &Path) -> io::Result<TreeSig> {
    let root_md = std::fs::symlink_metadata(root)?;
    let dev = root_md.dev();
    let mut out = TreeSig::new();
    out.insert(PathBuf::new(), sig(&root_md, true));
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in std::fs::read_dir(root.join(&rel))? {
            let entry = entry?;
            let rel_child = rel.join(entry.file_name());
            let md = std::fs::symlink_metadata(entry.path())?;
            out.insert(rel_child.clone(), sig(&md, false));
            if md.is_dir() && md.dev() == dev {
                stack.push(rel_child);
            }
        }
    }
    Ok(out)
}

/// The first difference between two trees, for logging; `None` if they are the same.
pub fn first_difference(live: &TreeSig, snap: &TreeSig) -> Option<String> {
    for (p, s) in live {
        match snap.get(p) {
            None => return Some(format!("{} is new", p.display())),
            Some(o) if o != s => return Some(format!("{} changed: {o:?} -> {s:?}", p.display())),
            _ => {}
        }
    }
    snap.keys()
        .find(|p| !live.contains_key(*p))
        .map(|p| format!("{} was removed", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_writes_chmod_new_and_removed_files_but_not_reads() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"hello").unwrap();
        let before = tree_signature(dir.path()).unwrap();
        assert_eq!(first_difference(&before, &before), None);
        std::fs::read(&f).unwrap();
        assert_eq!(
            first_difference(&tree_signature(dir.path()).unwrap(), &before),
            None,
            "a read is not a change"
        );

        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::OpenOptions::new()
            .write(true)
            .open(&f)
            .and_then(|mut h| std::io::Write::write_all(&mut h, b"J"))
            .unwrap();
        let after = tree_signature(dir.path()).unwrap();
        assert!(
            first_difference(&after, &before)
                .unwrap()
                .contains("f changed")
        );

        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(first_difference(&tree_signature(dir.path()).unwrap(), &after).is_some());

        // New and removed names (the directory's mtime changes too; the first difference
        // reported is the root's, so check the names directly).
        let now = tree_signature(dir.path()).unwrap();
        std::fs::write(dir.path().join("g"), b"").unwrap();
        let with_g = tree_signature(dir.path()).unwrap();
        assert!(first_difference(&with_g, &now).is_some());
        assert!(with_g.contains_key(Path::new("g")) && !now.contains_key(Path::new("g")));
        std::fs::remove_file(dir.path().join("g")).unwrap();
        let d = first_difference(&tree_signature(dir.path()).unwrap(), &with_g).unwrap();
        assert!(!d.is_empty());
        // Only the name changed: a subdirectory's file removal is reported by name.
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/h"), b"").unwrap();
        let with_h = tree_signature(dir.path()).unwrap();
        std::fs::remove_file(dir.path().join("sub/h")).unwrap();
        let mut without_h = tree_signature(dir.path()).unwrap();
        // Pretend the directory's own times did not change, to see the removal itself.
        without_h.insert("sub".into(), with_h[Path::new("sub")].clone());
        without_h.insert(PathBuf::new(), with_h[Path::new("")].clone());
        assert_eq!(
            first_difference(&without_h, &with_h).unwrap(),
            "sub/h was removed"
        );
    }
}
