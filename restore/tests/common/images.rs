//! Disk images for the partition, filesystem and mount tests: sparse files, partition tables
//! written by `sfdisk`, filesystems made by `mkfs.*` and copied into place.

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use store::cmd::Cmd;

/// Creates (or truncates) `path` as a sparse file of `size` bytes.
pub fn sparse(path: &Path, size: u64) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(size).unwrap();
}

/// Writes a partition table into `img` from an `sfdisk` script.
pub fn sfdisk(img: &Path, script: &str) {
    Cmd::new("sfdisk")
        .args(["--no-reread", "--no-tell-kernel", "-q"])
        .arg(img)
        .stdin_bytes(script)
        .run()
        .unwrap();
}

/// `mkfs` into the file `dir/name` of `size` bytes, returning its path. xfsprogs refuses
/// small filesystems unless it sees its own test-suite variables; they change nothing else.
pub fn mkfs(dir: &Path, name: &str, size: u64, program: &str, args: &[&str]) -> PathBuf {
    let path = dir.join(name);
    sparse(&path, size);
    Cmd::new(program)
        .args(args)
        .arg(&path)
        .env("TEST_DIR", "1")
        .env("TEST_DEV", "1")
        .env("QA_CHECK_FS", "1")
        .run()
        .unwrap();
    path
}

/// Copies a filesystem image into the disk image at `offset` (what `dd seek=` would do).
pub fn splice(img: &Path, offset: u64, fs: &Path) {
    let data = std::fs::read(fs).unwrap();
    let out = OpenOptions::new().write(true).open(img).unwrap();
    out.write_all_at(&data, offset).unwrap();
}
