//! Small files in a volume (configs, log, notes): replaced only when their contents change.
//!
//! A rewrite of an unchanged file would still cost a new block in the next snapshot and make
//! `changed_since_latest` less useful, so every write first compares. Writes go through a
//! temporary file in the same directory, `fsync` and `rename`, so a crash leaves either the
//! old or the new file, never a torn one.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use store::write_file_atomic;

/// Writes `data` to `path` unless it already holds exactly that. Returns whether it wrote.
pub fn write_if_changed(path: &Path, data: &[u8]) -> io::Result<bool> {
    match std::fs::read(path) {
        Ok(old) if old == data => return Ok(false),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    write_file_atomic(path, data)?;
    Ok(true)
}

/// Copies `src` to `dst` unless both already hold the same bytes (compared in streaming
/// chunks, so a large log does not need to fit in memory). Returns whether it copied.
pub fn copy_if_changed(src: &Path, dst: &Path) -> io::Result<bool> {
    if same_contents(src, dst)? {
        return Ok(false);
    }
    let dir = dst.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    io::copy(&mut File::open(src)?, tmp.as_file_mut())?;
    tmp.as_file().sync_all()?;
    tmp.persist(dst).map_err(|e| e.error)?;
    store::sync_dir(dir)?;
    Ok(true)
}

fn same_contents(a: &Path, b: &Path) -> io::Result<bool> {
    let mut fb = match File::open(b) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    let mut fa = File::open(a)?;
    if fa.metadata()?.len() != fb.metadata()?.len() {
        return Ok(false);
    }
    let (mut ba, mut bb) = (vec![0u8; 64 << 10], vec![0u8; 64 << 10]);
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Removes `path` if it exists. Returns whether it did.
pub fn remove_if_present(path: &Path) -> io::Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn writes_only_on_change() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("qemu-server.conf");
        assert!(write_if_changed(&p, b"a").unwrap());
        let ino = std::fs::metadata(&p).unwrap().ino();
        assert!(!write_if_changed(&p, b"a").unwrap());
        assert_eq!(
            std::fs::metadata(&p).unwrap().ino(),
            ino,
            "unchanged file untouched"
        );
        assert!(write_if_changed(&p, b"b").unwrap());
        assert_eq!(std::fs::read(&p).unwrap(), b"b");
        let src = d.path().join("src.log");
        std::fs::write(&src, vec![7u8; 200_000]).unwrap();
        let dst = d.path().join("vzdump.log");
        assert!(copy_if_changed(&src, &dst).unwrap());
        assert!(!copy_if_changed(&src, &dst).unwrap());
        let mut v = vec![7u8; 200_000];
        v[150_000] = 8;
        std::fs::write(&src, &v).unwrap();
        assert!(copy_if_changed(&src, &dst).unwrap());
        assert_eq!(std::fs::read(&dst).unwrap(), v);
        assert!(remove_if_present(&dst).unwrap());
        assert!(!remove_if_present(&dst).unwrap());
    }
}
